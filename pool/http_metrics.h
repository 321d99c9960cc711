// The Prometheus scrape endpoint of `vmfork worker --metrics-listen ADDR`: a minimal HTTP/1.1
// server answering GET (or HEAD) /metrics and / with the text exposition format 0.0.4, anything
// else 404 (405 for other methods); one request per connection (`Connection: close`). Two
// accepting threads, a 5 s deadline per connection and an 8 KiB request limit, so a slow or
// hostile scraper holds nothing for long. Own code rather than cpp-httplib: Debian ships that
// only as a shared library (pulling libstdc++, OpenSSL and brotli into every `vmfork` process's
// dynamic linking, see docs/performance.md "One-shot clones from a fresh process").
// Thread-safety: start() and the destructor from one thread; `render` runs on the accepting
// threads (possibly both at once) and must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "common/status.h"

namespace vmfork::pool {

class MetricsHttp {
 public:
  /// Listens on `addr`: "HOST:PORT", "[V6]:PORT" or ":PORT" (all interfaces); HOST is a name or
  /// a numeric address (getaddrinfo(3)); port 0 picks a free one (see port()). Errors: a
  /// malformed address, getaddrinfo, socket/bind/listen failed.
  static Result<std::unique_ptr<MetricsHttp>> start(std::string_view addr, std::function<std::string()> render);

  /// Stops listening and joins the accepting threads (each finishes at most the one connection
  /// it serves, bounded by its 5 s deadline).
  ~MetricsHttp();
  MetricsHttp(const MetricsHttp&) = delete;
  MetricsHttp& operator=(const MetricsHttp&) = delete;

  int port() const { return port_; }

 private:
  MetricsHttp() = default;
  void accept_loop();
  void serve(int fd);

  std::function<std::string()> render_;
  Fd listen_;
  Fd stop_;  // an eventfd, written once by the destructor
  std::vector<std::thread> threads_;
  int port_ = 0;
};

}  // namespace vmfork::pool
