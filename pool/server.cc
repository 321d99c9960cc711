// Unix-socket listener and connection threads (see server.h).
#include "pool/server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <exception>

namespace vmfork::pool {

namespace {

// Writes all of `data`; false when the client went away or stopped reading (SO_SNDTIMEO).
bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(size_t(n));
  }
  return true;
}

Result<sockaddr_un> socket_address(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& p = path.native();
  if (p.empty() || p.size() >= sizeof addr.sun_path)
    return plain_error("socket path " + p + ": empty or longer than " + std::to_string(sizeof addr.sun_path - 1) +
                       " bytes");
  p.copy(addr.sun_path, p.size());
  return addr;
}

// A socket file left by a server that is gone refuses connections; remove it. A live server's
// socket, or anything that is not a socket, is left alone.
Status remove_stale_socket(const std::filesystem::path& path, const sockaddr_un& addr) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return errno_error("lstat " + path.string());
  }
  if (!S_ISSOCK(st.st_mode)) return plain_error(path.string() + ": exists and is not a socket");
  Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return errno_error("socket");
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
    return plain_error(path.string() + ": another server is listening");
  if (errno != ECONNREFUSED) return errno_error("connect " + path.string() + " (probing an existing socket)");
  if (unlink(path.c_str()) != 0) return errno_error("unlink stale socket " + path.string());
  return Status::Ok();
}

}  // namespace

Server::Server(Service& service, ServerOptions opts) : service_(service), opts_(std::move(opts)) {}

Result<std::unique_ptr<Server>> Server::listen(Service& service, ServerOptions opts) {
  if (opts.max_connections < 1 || opts.max_connections > 65536)
    return plain_error("serve: max connections must be 1..65536");
  VF_ASSIGN(sockaddr_un addr, socket_address(opts.socket_path));
  VF_TRY(remove_stale_socket(opts.socket_path, addr));
  std::unique_ptr<Server> s(new Server(service, std::move(opts)));
  const std::string path = s->opts_.socket_path.string();

  // Non-blocking, so that a client that connects and vanishes before accept() cannot block
  // the accept loop.
  s->listen_fd_ = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s->listen_fd_.valid()) return errno_error("socket");
  if (::bind(s->listen_fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    return errno_error("bind " + path);
  // Until listen() every connect is refused, so tightening the mode here leaves no window in
  // which another user could connect (connect(2) on a Unix socket needs write permission).
  struct stat st;
  if (chmod(path.c_str(), 0600) != 0 || stat(path.c_str(), &st) != 0) {
    Error e = errno_error("chmod/stat " + path);
    unlink(path.c_str());
    return e;
  }
  s->socket_ino_ = st.st_ino;
  if (::listen(s->listen_fd_.get(), SOMAXCONN) != 0) {
    Error e = errno_error("listen " + path);
    unlink(path.c_str());
    return e;
  }
  s->wake_fd_ = Fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!s->wake_fd_.valid()) {
    Error e = errno_error("eventfd");
    unlink(path.c_str());
    return e;
  }
  return s;
}

Server::~Server() { drain(); }

void Server::stop() {
  uint64_t one = 1;
  ssize_t r = ::write(wake_fd_.get(), &one, sizeof one);  // EAGAIN: already woken
  (void)r;
}

Status Server::serve() {
  if (drained_) return plain_error("serve: the server was already stopped");
  pollfd fds[3] = {{listen_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}, {opts_.stop_fd, POLLIN, 0}};
  const nfds_t nfds = opts_.stop_fd >= 0 ? 3 : 2;
  for (;;) {
    if (::poll(fds, nfds, -1) < 0) {
      if (errno == EINTR) continue;
      Error e = errno_error("poll");
      drain();
      return e;
    }
    if (fds[1].revents || (nfds == 3 && fds[2].revents)) break;
    if (!fds[0].revents) continue;
    for (;;) {
      int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors or memory: the pending client waits in the backlog; back off
          // instead of spinning on a listener that stays readable.
          reap(false);
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          break;
        }
        Error e = errno_error("accept4 " + opts_.socket_path.string());
        drain();
        return e;
      }
      reap(false);
      if (open_.load() >= opts_.max_connections) {
        refuse(fd);
        ::close(fd);
        continue;
      }
      timeval tv{};
      tv.tv_sec = opts_.send_timeout.count() / 1000;
      tv.tv_usec = (opts_.send_timeout.count() % 1000) * 1000;
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      auto conn = std::make_unique<Conn>();
      conn->fd = Fd(fd);
      Conn* c = conn.get();
      std::lock_guard lock(conns_mu_);
      try {
        open_++;
        c->thread = std::thread(&Server::serve_connection, this, c);
        conns_.push_back(std::move(conn));
      } catch (const std::exception&) {  // no thread could be made: answer busy, carry on
        open_--;
        refuse(conn->fd.get());  // closed with `conn`
      }
    }
  }
  drain();
  return Status::Ok();
}

void Server::refuse(int fd) {
  const std::string answer =
      serialize_error(nullptr, ErrorCode::kBusy, "too many connections (" + std::to_string(opts_.max_connections) + ")");
  // Never block the accept loop on a client: if the answer does not fit, the client only sees
  // the connection close.
  ssize_t n = ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)n;
}

void Server::serve_connection(Conn* c) {
  const int fd = c->fd.get();
  try {
    std::string buf;
    size_t scanned = 0;  // bytes of buf known to hold no '\n'
    char chunk[64 << 10];
    for (;;) {
      const size_t nl = buf.find('\n', scanned);
      const size_t line_len = nl == std::string::npos ? buf.size() : nl;
      if (line_len > kMaxRequestLine) {
        send_all(fd, serialize_error(nullptr, ErrorCode::kBadRequest,
                                     "request line longer than " + std::to_string(kMaxRequestLine) +
                                         " bytes; closing the connection"));
        break;
      }
      if (nl == std::string::npos) {
        scanned = buf.size();
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // the client closed, or the server is draining (SHUT_RD)
        buf.append(chunk, size_t(n));
        continue;
      }
      std::string_view line(buf.data(), nl);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      const std::string answer = service_.call(line);
      buf.erase(0, nl + 1);
      scanned = 0;
      if (!send_all(fd, answer)) break;
    }
  } catch (const std::exception&) {
    // Allocation failure: drop this connection, never the server.
  }
  ::shutdown(fd, SHUT_RDWR);  // the client sees EOF now; the fd is closed when reaped
  open_--;
  c->done = true;
}

void Server::reap(bool all) {
  std::list<std::unique_ptr<Conn>> finished;
  {
    std::lock_guard lock(conns_mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (all || (*it)->done.load()) {
        finished.push_back(std::move(*it));
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished)
    if (c->thread.joinable()) c->thread.join();
}

void Server::drain() {
  if (drained_) return;
  drained_ = true;
  // 1. No new connections: close the listener and remove the socket file (if still ours).
  listen_fd_.reset();
  struct stat st;
  if (lstat(opts_.socket_path.c_str(), &st) == 0 && st.st_ino == socket_ino_) unlink(opts_.socket_path.c_str());
  // 2. Every queued and running job finishes and is answered; requests arriving meanwhile on
  //    open connections are answered busy.
  service_.shutdown();
  // 3. Connections stop reading (recv returns 0) once they have written their last answer.
  {
    std::lock_guard lock(conns_mu_);
    for (auto& c : conns_)
      if (!c->done.load()) ::shutdown(c->fd.get(), SHUT_RD);
  }
  reap(true);
}

}  // namespace vmfork::pool
