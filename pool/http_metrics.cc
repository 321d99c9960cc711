// The metrics HTTP endpoint (see http_metrics.h). Request syntax: RFC 9112 section 3 (request
// line) and 2.2 (CRLF line ends; a bare LF is accepted too, as 2.2 allows).
#include "pool/http_metrics.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

namespace vmfork::pool {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kConnectionDeadline = std::chrono::seconds(5);
constexpr size_t kMaxRequest = 8 << 10;  // bytes of request line + headers

// Milliseconds left until `deadline`, for poll(2); 0 once it has passed.
int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? int(left) : 0;
}

// Writes all of `data` to the non-blocking socket `fd` before `deadline`; false if the peer
// went away or was too slow (the connection is dropped either way).
bool send_all(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return false;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, ms_left(deadline)) <= 0) return false;
  }
  return true;
}

std::string response(std::string_view status, std::string_view type, std::string_view body, bool head) {
  std::string r = "HTTP/1.1 ";
  r += status;
  r += "\r\nContent-Type: ";
  r += type;
  r += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  if (!head) r += body;
  return r;
}

}  // namespace

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

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string port_str = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), port_str.c_str(), &hints, &found); rc != 0)
    return plain_error("--metrics-listen " + std::string(addr) + ": getaddrinfo: " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(found, ::freeaddrinfo);

  std::unique_ptr<MetricsHttp> m(new MetricsHttp());
  Error last = plain_error("--metrics-listen " + std::string(addr) + ": no address");
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    Fd s(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!s.valid()) {
      last = errno_error("--metrics-listen " + std::string(addr) + ": socket");
      continue;
    }
    int one = 1;
    ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(s.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      last = errno_error("--metrics-listen " + std::string(addr) + ": bind");
      continue;
    }
    if (::listen(s.get(), 16) != 0) {
      last = errno_error("--metrics-listen " + std::string(addr) + ": listen");
      continue;
    }
    m->listen_ = std::move(s);
    break;
  }
  if (!m->listen_.valid()) return last;
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(m->listen_.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0)
    return errno_error("--metrics-listen " + std::string(addr) + ": getsockname");
  m->port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  m->stop_ = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!m->stop_.valid()) return errno_error("--metrics-listen: eventfd");
  m->render_ = std::move(render);
  // Two threads accept from the one socket, so one slow scraper (held up to its deadline)
  // never blocks the next.
  for (int i = 0; i < 2; i++) m->threads_.emplace_back([mp = m.get()] { mp->accept_loop(); });
  return m;
}

MetricsHttp::~MetricsHttp() {
  if (stop_.valid()) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_.get(), &one, sizeof one);
  }
  for (auto& t : threads_) t.join();
}

void MetricsHttp::accept_loop() {
  for (;;) {
    pollfd p[2] = {{stop_.get(), POLLIN, 0}, {listen_.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[0].revents) return;
    // Non-blocking: the other thread may have taken this connection (EAGAIN).
    Fd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (c.valid()) serve(c.get());
  }
}

void MetricsHttp::serve(int fd) {
  const auto deadline = Clock::now() + kConnectionDeadline;
  std::string req;
  size_t head_end = std::string::npos;
  while (head_end == std::string::npos) {
    if (req.size() >= kMaxRequest) {
      send_all(fd, response("431 Request Header Fields Too Large", "text/plain", "request too large\n", false), deadline);
      return;
    }
    char buf[2048];
    ssize_t n = ::recv(fd, buf, std::min(sizeof buf, kMaxRequest - req.size()), 0);
    if (n == 0) return;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, ms_left(deadline)) <= 0) return;  // deadline passed: drop it
      continue;
    }
    req.append(buf, size_t(n));
    head_end = req.find("\n\r\n");
    if (head_end == std::string::npos) head_end = req.find("\n\n");
  }
  // Request line: METHOD SP TARGET SP VERSION.
  std::string_view line(req.data(), req.find('\n'));
  if (line.ends_with('\r')) line.remove_suffix(1);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || !line.substr(sp2 + 1).starts_with("HTTP/")) {
    send_all(fd, response("400 Bad Request", "text/plain", "bad request line\n", false), deadline);
    return;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));
  const bool head = method == "HEAD";
  if (method != "GET" && !head) {
    send_all(fd, response("405 Method Not Allowed", "text/plain", "GET only\n", false), deadline);
    return;
  }
  if (path != "/metrics" && path != "/") {
    send_all(fd, response("404 Not Found", "text/plain", "not found\n", head), deadline);
    return;
  }
  send_all(fd, response("200 OK", "text/plain; version=0.0.4; charset=utf-8", render_(), head), deadline);
}

}  // namespace vmfork::pool
