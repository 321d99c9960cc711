// Unix-socket listener and the epoll event loop that serves every connection (see server.h).
#include "pool/server.h"

#include <malloc.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <thread>

namespace vmfork::pool {

namespace {

// epoll tags of the fixed fds; connections are tagged with their id (>= 16).
enum : uint64_t { kTagListen = 1, kTagWake = 2, kTagAnswer = 3, kTagStop = 4, kTagHup = 5 };

constexpr size_t kChunk = 64u << 10;          // bytes read per recv
constexpr size_t kSmallBuffer = 16u << 10;    // kept after a line is done; more is given back
constexpr size_t kOutHighWater = 1u << 20;    // answers waiting to be sent: read no new line beyond
constexpr size_t kTrimAfter = 8u << 20;       // freed bytes between malloc_trim calls

// A byte buffer with an exact, known capacity (malloc/realloc: a large one is mmap'ed and
// grows with mremap), so that what a connection holds can be charged precisely.
class Buffer {
 public:
  Buffer() = default;
  ~Buffer() { std::free(p_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  char* data() { return p_; }
  size_t size() const { return len_; }
  size_t capacity() const { return cap_; }
  bool empty() const { return len_ == 0; }
  /// Makes room for `need` bytes in all, growing by half at least (capped at `cap_limit`).
  bool reserve(size_t need, size_t cap_limit) {
    if (need <= cap_) return true;
    size_t want = std::max({need, cap_ + cap_ / 2, kSmallBuffer});
    want = std::max(need, std::min(want, cap_limit));
    void* q = std::realloc(p_, want);
    if (!q) return false;
    p_ = static_cast<char*>(q);
    cap_ = want;
    return true;
  }
  size_t growth_for(size_t need, size_t cap_limit) const {
    if (need <= cap_) return cap_;
    size_t want = std::max({need, cap_ + cap_ / 2, kSmallBuffer});
    return std::max(need, std::min(want, cap_limit));
  }
  void append(const char* d, size_t n) {
    std::memcpy(p_ + len_, d, n);
    len_ += n;
  }
  /// Drops the first `n` bytes; a buffer mostly unused afterwards is shrunk (or freed).
  /// Returns the bytes of capacity given back.
  size_t consume(size_t n) {
    std::memmove(p_, p_ + n, len_ - n);
    len_ -= n;
    if (cap_ <= kSmallBuffer || len_ > cap_ / 4) return 0;
    const size_t before = cap_;
    if (len_ == 0) {
      std::free(p_);
      p_ = nullptr;
      cap_ = 0;
    } else if (void* q = std::realloc(p_, std::max(len_, kSmallBuffer))) {
      p_ = static_cast<char*>(q);
      cap_ = std::max(len_, kSmallBuffer);
    }
    return before - cap_;
  }

 private:
  char* p_ = nullptr;
  size_t len_ = 0, cap_ = 0;
};

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

std::string ms_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace

/// One connection, owned by the loop thread.
struct Server::Conn {
  uint64_t id = 0;
  Fd fd;
  Buffer in;                 // received bytes not yet handed to the service
  size_t scanned = 0;        // bytes of `in` known to hold no '\n'
  std::string out;           // answers not yet sent, from out_off
  size_t out_off = 0;
  bool in_flight = false;    // a request is with the service; no further line until answered
  size_t in_flight_bytes = 0;
  bool read_closed = false;  // the client sent EOF, or the server stopped reading
  bool close_after = false;  // close once `out` is sent (the framing is lost)
  bool dead = false;         // closed; erased at the end of the loop iteration
  uint32_t events = 0;       // registered with epoll
  size_t charged = 0;        // bytes counted in buffered_
  Clock::time_point last_active;
  bool line_open = false;    // `in` holds the start of a line
  Clock::time_point line_start;
  bool writing = false;      // `out` waits for the socket to drain
  Clock::time_point write_start;
};

Server::Server(Service& service, ServerOptions opts) : service_(service), opts_(std::move(opts)) {}

Result<std::unique_ptr<Server>> Server::listen(Service& service, ServerOptions opts) {
  if (opts.max_connections < 1 || opts.max_connections > (1u << 20))
    return plain_error("serve: max connections must be 1..1048576");
  if (opts.max_buffered_bytes < 2 * kMaxRequestLine)
    return plain_error("serve: max buffered bytes must be at least " + std::to_string(2 * kMaxRequestLine));
  if (opts.idle_timeout.count() < 1 || opts.line_timeout.count() < 1 || opts.send_timeout.count() < 1)
    return plain_error("serve: timeouts must be at least 1 ms");
  VF_ASSIGN(sockaddr_un addr, socket_address(opts.socket_path));
  VF_TRY(remove_stale_socket(opts.socket_path, addr));
  std::unique_ptr<Server> s(new Server(service, std::move(opts)));
  const std::string path = s->opts_.socket_path.string();

  // Freed request and answer buffers of a MiB or more go straight back to the system; glibc's
  // dynamic threshold would otherwise rise to 32 MiB after the first large free and keep them.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  // One fd per connection, plus the service's own (templates, clones, programs of queued jobs).
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    const rlim_t want = rlim_t(s->opts_.max_connections) + 1024;
    if (rl.rlim_cur < want) {
      rl.rlim_cur = std::min(want, rl.rlim_max);
      setrlimit(RLIMIT_NOFILE, &rl);  // best effort: accept backs off on EMFILE
    }
  }

  // Non-blocking, so that a client that connects and vanishes before accept() cannot block
  // the loop.
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
  auto fail = [&](const char* what) {
    Error e = errno_error(what);
    unlink(path.c_str());
    return e;
  };
  if (::listen(s->listen_fd_.get(), SOMAXCONN) != 0) return fail(("listen " + path).c_str());
  s->wake_fd_ = Fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  s->answer_fd_ = Fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!s->wake_fd_.valid() || !s->answer_fd_.valid()) return fail("eventfd");
  s->epoll_fd_ = Fd(epoll_create1(EPOLL_CLOEXEC));
  if (!s->epoll_fd_.valid()) return fail("epoll_create1");
  auto add = [&](int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    return epoll_ctl(s->epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
  };
  if (!add(s->listen_fd_.get(), kTagListen) || !add(s->wake_fd_.get(), kTagWake) ||
      !add(s->answer_fd_.get(), kTagAnswer) || (s->opts_.stop_fd >= 0 && !add(s->opts_.stop_fd, kTagStop)) ||
      (s->opts_.hup_fd >= 0 && !add(s->opts_.hup_fd, kTagHup)))
    return fail("epoll_ctl ADD");
  return s;
}

Server::~Server() { hard_stop(); }

void Server::stop() {
  uint64_t one = 1;
  ssize_t r = ::write(wake_fd_.get(), &one, sizeof one);  // EAGAIN: already woken
  (void)r;
}

Status Server::serve() {
  if (stopped_) return plain_error("serve: the server was already stopped");
  std::thread shutdown_thread;  // runs Service::shutdown() while the loop delivers answers
  const auto tick = std::clamp<std::chrono::milliseconds>(
      std::min({opts_.idle_timeout, opts_.line_timeout, opts_.send_timeout}) / 8, std::chrono::milliseconds(5),
      std::chrono::milliseconds(1000));
  auto next_sweep = Clock::now() + tick;
  std::vector<epoll_event> events(256);
  Status result;
  for (;;) {
    const auto now = Clock::now();
    const int wait_ms = int(std::max<int64_t>(
        0, std::chrono::ceil<std::chrono::milliseconds>(next_sweep - now).count()));
    const int n = epoll_wait(epoll_fd_.get(), events.data(), int(events.size()), wait_ms);
    if (n < 0 && errno != EINTR) {
      result = errno_error("epoll_wait");
      break;
    }
    for (int i = 0; i < n; i++) {
      const uint64_t tag = events[i].data.u64;
      const uint32_t ev = events[i].events;
      if (tag == kTagListen) {
        accept_all();
      } else if (tag == kTagWake || tag == kTagStop) {
        if (tag == kTagWake) {  // level-triggered: read it, or every wait returns at once
          uint64_t v;
          ssize_t r = ::read(wake_fd_.get(), &v, sizeof v);
          (void)r;
        }
        if (!draining_) {
          begin_drain();
          shutdown_thread = std::thread([this] {
            service_.shutdown();
            service_down_ = true;
            uint64_t one = 1;
            ssize_t r = ::write(answer_fd_.get(), &one, sizeof one);
            (void)r;
          });
        }
      } else if (tag == kTagAnswer) {
        uint64_t v;
        ssize_t r = ::read(answer_fd_.get(), &v, sizeof v);
        (void)r;
      } else if (tag == kTagHup) {
        if (opts_.on_hup_fd) opts_.on_hup_fd();
      } else {
        auto it = conns_.find(tag);
        if (it == conns_.end() || it->second->dead) continue;
        Conn& c = *it->second;
        // Both directions shut (the client closed): nothing can be read or answered.
        if (ev & (EPOLLERR | EPOLLHUP)) close_conn(c);
        else if (ev & EPOLLOUT) on_writable(c);
        if (!c.dead && (ev & EPOLLIN)) on_readable(c);
      }
    }
    take_answers();
    const auto after = Clock::now();
    if (after >= next_sweep) {
      sweep(after);
      next_sweep = after + tick;
    }
    if (draining_ && service_down_.load()) {
      // Every request has its answer: stop reading; close each connection once it is sent.
      for (auto& [id, c] : conns_) {
        if (c->dead) continue;
        c->read_closed = true;
        if (!c->in_flight && c->out.size() == c->out_off) close_conn(*c);
        else update_events(*c);
      }
    }
    for (auto it = conns_.begin(); it != conns_.end();)
      it = it->second->dead ? conns_.erase(it) : std::next(it);
    if (draining_ && service_down_.load() && conns_.empty()) break;
  }
  if (!result.ok() && !draining_) begin_drain();
  if (shutdown_thread.joinable()) shutdown_thread.join();
  hard_stop();
  return result;
}

void Server::accept_all() {
  for (;;) {
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      // Out of descriptors or memory (or anything else): the pending client waits in the
      // backlog. Stop watching the listener until the next sweep instead of spinning on it.
      epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, listen_fd_.get(), nullptr);
      accept_paused_ = true;
      return;
    }
    if (open_.load() >= opts_.max_connections || draining_) {
      const std::string answer = serialize_error(
          nullptr, ErrorCode::kBusy, "too many connections (" + std::to_string(opts_.max_connections) + ")");
      // Never block the loop on a client: if the answer does not fit, it only sees the close.
      ssize_t n = ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)n;
      ::close(fd);
      continue;
    }
    auto conn = std::make_unique<Conn>();
    conn->id = next_id_++;
    conn->fd = Fd(fd);
    conn->last_active = Clock::now();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = conn->id;
    if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) continue;  // closed with `conn`
    conn->events = EPOLLIN;
    open_++;
    conns_.emplace(conn->id, std::move(conn));
  }
}

void Server::charge(Conn& c, size_t bytes) {
  if (bytes >= c.charged) buffered_ += bytes - c.charged;
  else buffered_ -= c.charged - bytes;
  c.charged = bytes;
}

void Server::on_readable(Conn& c) {
  if (c.read_closed || c.close_after || c.in_flight) return;
  char chunk[kChunk];
  // A few reads per wake-up, then the other connections get their turn (level-triggered
  // epoll comes back for the rest).
  for (int round = 0; round < 4; round++) {
    ssize_t n = ::recv(c.fd.get(), chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {  // EOF or a reset: answer what is in flight, then close
      c.read_closed = true;
      break;
    }
    const size_t need = c.in.size() + size_t(n);
    const size_t cap_limit = kMaxRequestLine + 1 + kChunk;
    const size_t new_cap = c.in.growth_for(need, cap_limit);
    const size_t others = buffered_.load() - c.charged;
    const size_t mine = c.charged - c.in.capacity() + new_cap;
    if (others + mine > opts_.max_buffered_bytes || !c.in.reserve(need, cap_limit)) {
      queue_answer(c,
                   serialize_error(nullptr, ErrorCode::kBusy,
                                   "server is holding its limit of buffered request bytes (" +
                                       std::to_string(opts_.max_buffered_bytes) + "); closing the connection"),
                   /*close_after=*/true);
      return;
    }
    c.in.append(chunk, size_t(n));
    charge(c, c.in.capacity() + c.in_flight_bytes + c.out.capacity());
    c.last_active = Clock::now();
    if (!c.line_open) {
      c.line_open = true;
      c.line_start = c.last_active;
    }
    // Stop reading once a whole line is here or the line is too long already.
    if (std::memchr(c.in.data() + c.scanned, '\n', c.in.size() - c.scanned) || c.in.size() > kMaxRequestLine) break;
    c.scanned = c.in.size();
  }
  process(c);
}

void Server::process(Conn& c) {
  while (!c.dead && !c.in_flight && !c.close_after && c.out.size() - c.out_off < kOutHighWater) {
    const char* base = c.in.data();
    const void* nlp = c.in.empty() ? nullptr : std::memchr(base + c.scanned, '\n', c.in.size() - c.scanned);
    const size_t line_len = nlp ? size_t(static_cast<const char*>(nlp) - base) : c.in.size();
    if (line_len > kMaxRequestLine) {
      queue_answer(c,
                   serialize_error(nullptr, ErrorCode::kBadRequest,
                                   "request line longer than " + std::to_string(kMaxRequestLine) +
                                       " bytes; closing the connection"),
                   /*close_after=*/true);
      return;
    }
    if (!nlp) {
      c.scanned = c.in.size();
      if (c.in.empty()) c.line_open = false;
      if (c.read_closed && !c.writing && c.out.size() == c.out_off) close_conn(c);  // nothing more can come
      else update_events(c);
      return;
    }
    std::string_view line(base, line_len);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    c.in_flight = true;
    c.in_flight_bytes = line.size();
    const uint64_t id = c.id;
    // The reply may come at once (on this thread) or from a worker; either way it is taken
    // from answers_ by the loop, so the connection is never touched off the loop thread.
    service_.submit(line, [this, id](std::string answer) {
      {
        std::lock_guard lock(answers_mu_);
        answers_.emplace_back(id, std::move(answer));
      }
      uint64_t one = 1;
      ssize_t r = ::write(answer_fd_.get(), &one, sizeof one);
      (void)r;
    });
    freed_since_trim_ += c.in.consume(line_len + 1);
    c.scanned = 0;
    c.line_open = !c.in.empty();
    if (c.line_open) c.line_start = Clock::now();
    charge(c, c.in.capacity() + c.in_flight_bytes + c.out.capacity());
    update_events(c);
  }
  if (!c.dead) update_events(c);
}

void Server::queue_answer(Conn& c, std::string line, bool close_after) {
  if (c.out_off == c.out.size()) {
    c.out = std::move(line);
    c.out_off = 0;
  } else {
    c.out.append(line);
  }
  if (close_after) {
    c.close_after = true;
    c.read_closed = true;
  }
  charge(c, c.in.capacity() + c.in_flight_bytes + c.out.capacity());
  on_writable(c);
}

void Server::on_writable(Conn& c) {
  while (c.out_off < c.out.size()) {
    ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c.writing) {
        c.writing = true;
        c.write_start = Clock::now();
      }
      update_events(c);
      return;
    }
    if (n <= 0) {  // the client went away: its answers cost nothing more
      close_conn(c);
      return;
    }
    c.out_off += size_t(n);
  }
  c.writing = false;
  if (c.out.capacity() > kSmallBuffer) freed_since_trim_ += c.out.capacity();
  if (c.out.capacity() > kSmallBuffer) std::string().swap(c.out);
  else c.out.clear();
  c.out_off = 0;
  c.last_active = Clock::now();
  charge(c, c.in.capacity() + c.in_flight_bytes + c.out.capacity());
  if (c.close_after) {
    close_conn(c);
    return;
  }
  process(c);
}

void Server::take_answers() {
  std::vector<std::pair<uint64_t, std::string>> got;
  {
    std::lock_guard lock(answers_mu_);
    got.swap(answers_);
  }
  for (auto& [id, line] : got) {
    if (auto o = orphans_.find(id); o != orphans_.end()) {  // its connection closed meanwhile
      buffered_ -= o->second;
      orphans_.erase(o);
      freed_since_trim_ += line.capacity();
      continue;
    }
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second->dead) continue;
    Conn& c = *it->second;
    c.in_flight = false;
    c.in_flight_bytes = 0;
    if (c.line_open) c.line_start = Clock::now();  // the next line's clock starts now
    queue_answer(c, std::move(line), false);
  }
}

void Server::update_events(Conn& c) {
  if (c.dead) return;
  uint32_t want = 0;
  if (!c.in_flight && !c.read_closed && !c.close_after && c.out.size() - c.out_off < kOutHighWater) want |= EPOLLIN;
  if (c.writing) want |= EPOLLOUT;
  if (want == c.events) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = c.id;
  epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
  c.events = want;
}

void Server::close_conn(Conn& c) {
  if (c.dead) return;
  c.dead = true;
  freed_since_trim_ += c.in.capacity() + c.out.capacity();
  // A request still with the service keeps its bytes charged until its answer comes back.
  const size_t keep = c.in_flight ? c.in_flight_bytes : 0;
  charge(c, keep);
  if (c.in_flight) orphans_[c.id] = keep;
  c.charged = 0;
  c.fd.reset();  // also leaves the epoll set
  open_--;
}

void Server::sweep(Clock::time_point now) {
  if (accept_paused_ && listen_fd_.valid()) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTagListen;
    if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, listen_fd_.get(), &ev) == 0) accept_paused_ = false;
  }
  for (auto& [id, cp] : conns_) {
    Conn& c = *cp;
    if (c.dead) continue;
    if (c.writing && now - c.write_start > opts_.send_timeout) {
      close_conn(c);
      continue;
    }
    if (c.in_flight || c.close_after) continue;
    if (c.line_open && now - c.line_start > opts_.line_timeout) {
      queue_answer(c,
                   serialize_error(nullptr, ErrorCode::kBadRequest,
                                   "request line not complete within " + ms_text(opts_.line_timeout) +
                                       "; closing the connection"),
                   /*close_after=*/true);
      continue;
    }
    if (!c.line_open && !c.writing && now - c.last_active > opts_.idle_timeout) close_conn(c);
  }
  maybe_trim();
}

void Server::maybe_trim() {
  if (freed_since_trim_ < kTrimAfter) return;
  freed_since_trim_ = 0;
  malloc_trim(0);
}

void Server::close_listener() {
  if (!listen_fd_.valid()) return;
  listen_fd_.reset();
  struct stat st;
  if (lstat(opts_.socket_path.c_str(), &st) == 0 && st.st_ino == socket_ino_) unlink(opts_.socket_path.c_str());
}

void Server::begin_drain() {
  draining_ = true;
  // No new connections: close the listener and remove the socket file (if still ours).
  close_listener();
  if (opts_.stop_fd >= 0) epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, opts_.stop_fd, nullptr);  // not read: level
}

void Server::hard_stop() {
  if (stopped_) return;
  stopped_ = true;
  close_listener();
  service_.shutdown();  // every job finishes; answers to closed connections are dropped
  for (auto& [id, c] : conns_) close_conn(*c);
  conns_.clear();
  {
    std::lock_guard lock(answers_mu_);
    answers_.clear();
  }
  for (auto& [id, bytes] : orphans_) buffered_ -= bytes;
  orphans_.clear();
  maybe_trim();
}

}  // namespace vmfork::pool
