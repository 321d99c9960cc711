// A minimal QMP client (QEMU Machine Protocol, docs/interop/qmp-spec.rst in QEMU's source): one
// JSON object per line over a unix socket; commands answer {"return":...} or {"error":...},
// asynchronous {"event":...} lines may come between. Every read has a deadline: QEMU is a child
// we do not trust to answer. Thread-safety: one thread per QmpClient.
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/status.h"

namespace vmfork::bench {

class QmpClient {
 public:
  using Clock = std::chrono::steady_clock;

  /// Connects to `socket` (retrying until it exists or `deadline`), reads the greeting and
  /// negotiates capabilities (qmp_capabilities). Errors: connect, timeout, or a QMP error.
  static Result<QmpClient> connect(const std::filesystem::path& socket, Clock::time_point deadline);

  /// Sends `command` with `args` and returns its "return" value; events read meanwhile are kept
  /// for wait_event. Errors: I/O, timeout, or the command's QMP error (its desc).
  Result<nlohmann::json> execute(const std::string& command, const nlohmann::json& args, Clock::time_point deadline);

  /// Returns once an event named `name` has arrived (earlier ones included). Errors: timeout, EOF.
  Status wait_event(const std::string& name, Clock::time_point deadline);

 private:
  explicit QmpClient(Fd fd) : fd_(std::move(fd)) {}
  Result<nlohmann::json> read_message(Clock::time_point deadline);
  Fd fd_;
  std::string buf_;
  std::vector<std::string> events_;
};

}  // namespace vmfork::bench
