// The Prometheus scrape endpoint of `vmfork worker --metrics-listen ADDR`: an HTTP/1.1 server
// (cpp-httplib, Debian's libcpp-httplib-dev) answering GET /metrics (and GET /) with the text
// exposition format 0.0.4, anything else 404. Two handler threads, 5 s read and write timeouts
// and a 8 KiB request limit, so a slow or hostile scraper holds nothing for long.
// Thread-safety: start() and the destructor from one thread; `render` runs on handler threads
// and must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "common/status.h"

namespace httplib {
class Server;
}

namespace vmfork::pool {

class MetricsHttp {
 public:
  /// Listens on `addr`: "HOST:PORT", "[V6]:PORT" or ":PORT" (all interfaces); port 0 picks a
  /// free one (see port()). Errors: a malformed address, bind/listen failed.
  static Result<std::unique_ptr<MetricsHttp>> start(std::string_view addr, std::function<std::string()> render);

  /// Stops listening and joins the server thread.
  ~MetricsHttp();
  MetricsHttp(const MetricsHttp&) = delete;
  MetricsHttp& operator=(const MetricsHttp&) = delete;

  int port() const { return port_; }

 private:
  MetricsHttp() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace vmfork::pool
