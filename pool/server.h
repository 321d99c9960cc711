// The Unix-socket transport of `vmfork serve`: an AF_UNIX SOCK_STREAM listener (mode 0600) and
// one epoll event loop on the serve() thread that serves every connection (no thread per
// connection: an idle one costs a few hundred bytes and an fd). Each connection reads
// '\n'-framed request lines and gets one response line each, in order: a line goes to the
// Service, and the connection reads no further line until its answer is written. A malformed
// line gets bad_request and the connection stays open; a line longer than kMaxRequestLine gets
// bad_request and the connection is closed (its framing is lost).
// Deadlines (ServerOptions): a connection with nothing in progress is closed after
// idle_timeout; a request line must be complete within line_timeout of its first byte
// (bad_request, closed); an answer the client does not take within send_timeout closes it.
// Memory: the bytes held for all connections together (unfinished lines, requests with the
// service, answers not yet sent) stay under max_buffered_bytes: a read that would go beyond is
// answered busy and the connection closed; large buffers are given back as soon as their line
// is done (see server.cc).
// Beyond max_connections, a new connection gets one busy answer and is closed.
// Stopping (stop(), or stop_fd readable, e.g. a signalfd for SIGTERM/SIGINT): the listener is
// closed and the socket file removed, Service::shutdown() lets queued and running jobs finish
// (new requests on open connections are answered busy), each connection writes its last answer
// and is closed, and serve() returns.
// Thread-safety: serve() runs on one thread; stop() may be called from any thread (and is
// async-signal-safe); connections() from any thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/fd.h"
#include "common/status.h"
#include "pool/service.h"

namespace vmfork::pool {

struct ServerOptions {
  std::filesystem::path socket_path;  // shorter than sockaddr_un's 108 bytes
  size_t max_connections = 4096;      // open connections served at once (1..1048576); each needs an fd
  int stop_fd = -1;                   // optional: becoming readable stops the server (not read)
  /// Optional: becoming readable calls on_hup_fd on the loop thread (which must read the fd
  /// and return quickly; `vmfork serve` passes a SIGHUP signalfd and starts a reload thread).
  int hup_fd = -1;
  std::function<void()> on_hup_fd;
  /// A client that does not take its answer for this long loses its connection.
  std::chrono::milliseconds send_timeout = std::chrono::seconds(30);
  /// A connection with no request in progress and no byte received for this long is closed.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  /// A request line must be complete (its '\n' received) this long after its first byte;
  /// else bad_request and the connection is closed (a byte-a-second client holds nothing).
  std::chrono::milliseconds line_timeout = std::chrono::seconds(30);
  /// Bytes held for all connections together: unfinished lines (buffer capacity), request
  /// lines with the service (until answered) and answers not yet sent. A read that would pass
  /// it is answered busy and that connection closed. At least 2 * kMaxRequestLine.
  size_t max_buffered_bytes = 256u << 20;
};

class Server {
 public:
  /// Binds and listens on `opts.socket_path`. A stale socket file there (no server answering)
  /// is replaced; a live one, or a file that is not a socket, is an error. `service` must
  /// outlive the Server. Also sets glibc's mmap threshold to 1 MiB (mallopt M_MMAP_THRESHOLD),
  /// process-wide: request and response buffers are then mmap'ed and unmapped when freed,
  /// instead of the dynamic threshold keeping freed multi-MiB buffers in the heap. Errors:
  /// bad options, path too long, socket/bind/chmod/listen/eventfd/epoll failed, "PATH:
  /// another server is listening", "PATH: exists and is not a socket".
  static Result<std::unique_ptr<Server>> listen(Service& service, ServerOptions opts);

  /// Stops if serve() did not (closing the listener and the connections, shutting the
  /// service down). Destroy a Server only once serve() has returned (or was never called).
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Serves connections until stopped, then drains (see above) and returns. Errors: epoll or
  /// accept failed for a reason other than a transient one (EINTR, a client that went away,
  /// running out of file descriptors: those are retried).
  Status serve();

  /// Makes serve() stop and drain. Callable from any thread or a signal handler.
  void stop();

  const std::filesystem::path& socket_path() const { return opts_.socket_path; }
  /// Connections open right now.
  size_t connections() const { return open_.load(); }
  /// Bytes held for connections right now (see ServerOptions::max_buffered_bytes).
  size_t buffered_bytes() const { return buffered_.load(); }

 private:
  struct Conn;
  using Clock = std::chrono::steady_clock;

  Server(Service& service, ServerOptions opts);
  void accept_all();
  void on_readable(Conn& c);
  void on_writable(Conn& c);
  /// Hands complete lines to the service while no answer is pending; reads on when none is.
  void process(Conn& c);
  void queue_answer(Conn& c, std::string line, bool close_after);
  void take_answers();
  void sweep(Clock::time_point now);
  void update_events(Conn& c);
  void close_conn(Conn& c);
  void charge(Conn& c, size_t bytes);
  /// Gives buffers back to the system (malloc_trim) after large ones were freed.
  void maybe_trim();
  void begin_drain();
  void close_listener();
  void hard_stop();

  Service& service_;
  ServerOptions opts_;
  Fd listen_fd_;
  Fd wake_fd_;     // eventfd written by stop()
  Fd answer_fd_;   // eventfd written when a worker leaves an answer in answers_
  Fd epoll_fd_;
  ino_t socket_ino_ = 0;  // to remove only our own socket file
  bool stopped_ = false;  // serve() finished or hard_stop() ran

  // Loop-thread state.
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  uint64_t next_id_ = 16;  // ids below 16 are the fixed fds' epoll tags
  bool draining_ = false;
  bool accept_paused_ = false;  // the listener is out of the epoll set until the next sweep
  size_t freed_since_trim_ = 0;
  /// Bytes still charged for requests whose connection closed before their answer came.
  std::unordered_map<uint64_t, size_t> orphans_;

  // Answers from worker threads: (connection id, line).
  std::mutex answers_mu_;
  std::vector<std::pair<uint64_t, std::string>> answers_;
  std::atomic<bool> service_down_{false};

  std::atomic<size_t> open_{0};
  std::atomic<size_t> buffered_{0};
};

}  // namespace vmfork::pool
