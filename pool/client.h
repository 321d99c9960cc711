// A client of `vmfork serve` (pool/server.h): connects to the Unix socket, writes request lines
// and reads response lines. Used by `vmfork submit`, the tests and the benchmark.
// Thread-safety: one Client per thread (it owns a connection and a read buffer).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/fd.h"
#include "common/status.h"
#include "pool/protocol.h"

namespace vmfork::pool {

class Client {
 public:
  /// Connects to the server at `socket`. Errors: path too long, socket or connect failed
  /// ("connect /run/vmfork.sock: No such file or directory").
  static Result<Client> connect(const std::filesystem::path& socket);

  Client(Client&&) = default;
  Client& operator=(Client&&) = default;

  /// Writes `line`, adding the '\n' if it lacks one. Errors: the server went away (send).
  Status send_line(std::string_view line);

  /// Reads the next line, '\n' removed. Errors: the server closed the connection first
  /// ("server closed the connection"), a line longer than `max_bytes`, recv failed.
  Result<std::string> read_line(size_t max_bytes = kMaxResponseLine);

  /// send_line then read_line: one request, its raw response line.
  Result<std::string> call(std::string_view request_line);

  /// serialize_request, call, parse_response. Errors: as call, or an unparseable response.
  Result<Response> run(const Request& request);

  int fd() const { return fd_.get(); }

 private:
  explicit Client(Fd fd) : fd_(std::move(fd)) {}

  Fd fd_;
  std::string buf_;      // bytes read past the last returned line
  size_t scanned_ = 0;   // bytes of buf_ known to hold no '\n'
};

}  // namespace vmfork::pool
