// The Unix-socket transport of `vmfork serve`: an AF_UNIX SOCK_STREAM listener (mode 0600),
// one thread per connection reading '\n'-framed request lines and writing one response line
// each, in order, through a Service. A malformed line gets a bad_request answer and the
// connection stays open; a line longer than kMaxRequestLine gets bad_request and the
// connection is closed (its framing is lost). A client that goes away mid-job costs nothing
// but its answer (writes use MSG_NOSIGNAL). Beyond max_connections, a new connection gets one
// busy answer and is closed.
// Stopping (stop(), or stop_fd readable, e.g. a signalfd for SIGTERM/SIGINT): the listener is
// closed and the socket file removed, Service::shutdown() lets queued and running jobs finish
// (new requests on open connections are answered busy), each connection writes its last
// answer, and serve() returns.
// Thread-safety: serve() runs on one thread; stop() may be called from any thread (and is
// async-signal-safe).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "common/fd.h"
#include "common/status.h"
#include "pool/service.h"

namespace vmfork::pool {

struct ServerOptions {
  std::filesystem::path socket_path;  // shorter than sockaddr_un's 108 bytes
  size_t max_connections = 256;       // open connections served at once (1..65536)
  int stop_fd = -1;                   // optional: becoming readable stops the server (not read)
  /// A client that does not read its answer for this long loses its connection.
  std::chrono::milliseconds send_timeout = std::chrono::seconds(30);
};

class Server {
 public:
  /// Binds and listens on `opts.socket_path`. A stale socket file there (no server answering)
  /// is replaced; a live one, or a file that is not a socket, is an error. `service` must
  /// outlive the Server. Errors: path too long, socket/bind/chmod/listen/eventfd failed,
  /// "PATH: another server is listening", "PATH: exists and is not a socket".
  static Result<std::unique_ptr<Server>> listen(Service& service, ServerOptions opts);

  /// Stops if serve() did not (closing the listener, shutting the service down, joining the
  /// connections). Destroy a Server only once serve() has returned (or was never called).
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Accepts and serves connections until stopped, then drains (see above) and returns.
  /// Errors: poll or accept failed for a reason other than a transient one (EINTR, a client
  /// that went away, running out of file descriptors: those are retried).
  Status serve();

  /// Makes serve() stop and drain. Callable from any thread or a signal handler.
  void stop();

  const std::filesystem::path& socket_path() const { return opts_.socket_path; }
  /// Connections open right now.
  size_t connections() const { return open_.load(); }

 private:
  struct Conn {
    Fd fd;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  Server(Service& service, ServerOptions opts);
  void serve_connection(Conn* c);
  /// Answers busy on a connection that will not be served (the caller closes it).
  void refuse(int fd);
  void reap(bool all);
  void drain();

  Service& service_;
  ServerOptions opts_;
  Fd listen_fd_;
  Fd wake_fd_;     // eventfd written by stop()
  ino_t socket_ino_ = 0;  // to remove only our own socket file
  bool drained_ = false;

  std::mutex conns_mu_;
  std::list<std::unique_ptr<Conn>> conns_;
  std::atomic<size_t> open_{0};
};

}  // namespace vmfork::pool
