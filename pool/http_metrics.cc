// The metrics HTTP endpoint (see http_metrics.h).
#include "pool/http_metrics.h"

#include <httplib.h>

#include <charconv>
#include <chrono>

namespace vmfork::pool {

Result<std::unique_ptr<MetricsHttp>> MetricsHttp::start(std::string_view addr, std::function<std::string()> render) {
  std::string host;
  std::string_view port_text;
  if (addr.starts_with("[")) {
    size_t close = addr.find("]:");
    if (close == std::string_view::npos) return plain_error("--metrics-listen: want [V6]:PORT, got '" + std::string(addr) + "'");
    host = std::string(addr.substr(1, close - 1));
    port_text = addr.substr(close + 2);
  } else {
    size_t colon = addr.rfind(':');
    if (colon == std::string_view::npos) return plain_error("--metrics-listen: want HOST:PORT, got '" + std::string(addr) + "'");
    host = std::string(addr.substr(0, colon));
    port_text = addr.substr(colon + 1);
  }
  if (host.empty()) host = "0.0.0.0";
  int port = -1;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || p != port_text.data() + port_text.size() || port < 0 || port > 65535)
    return plain_error("--metrics-listen: bad port '" + std::string(port_text) + "'");

  std::unique_ptr<MetricsHttp> m(new MetricsHttp());
  m->server_ = std::make_unique<httplib::Server>();
  auto& s = *m->server_;
  s.new_task_queue = [] { return new httplib::ThreadPool(2); };
  s.set_read_timeout(std::chrono::seconds(5));
  s.set_write_timeout(std::chrono::seconds(5));
  s.set_keep_alive_timeout(5);
  s.set_payload_max_length(8 << 10);
  auto handler = [render = std::move(render)](const httplib::Request&, httplib::Response& res) {
    res.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
  };
  s.Get("/metrics", handler);
  s.Get("/", handler);
  if (port == 0) {
    port = s.bind_to_any_port(host);
    if (port < 0) return errno_error("--metrics-listen " + std::string(addr) + ": bind");
  } else if (!s.bind_to_port(host, port)) {
    return errno_error("--metrics-listen " + std::string(addr) + ": bind");
  }
  m->port_ = port;
  m->thread_ = std::thread([&s] { s.listen_after_bind(); });
  // stop() only takes effect once the server runs; wait for that so the destructor cannot hang.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!s.is_running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return m;
}

MetricsHttp::~MetricsHttp() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace vmfork::pool
