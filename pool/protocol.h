// The `vmfork serve` wire protocol: one JSON object per line ('\n'-terminated, UTF-8) each way,
// one response per request, in request order on each connection. Fields are listed in
// README.md ("Serving jobs"). Parsing never throws: the JSON is parsed without exceptions and
// every field is type-checked; any violation is a message for a "bad_request" answer.
// Thread-safety: pure functions and plain values.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/job_files.h"
#include "engine/run_result.h"

namespace vmfork::pool {

/// Longest request line accepted, '\n' excluded. A longer line cannot be re-synchronized, so
/// the server answers bad_request and closes the connection.
inline constexpr size_t kMaxRequestLine = 16u << 20;
/// Longest response line a client accepts: the output limit's bytes in base64 plus the rest.
inline constexpr size_t kMaxResponseLine = 128u << 20;

inline constexpr uint64_t kDefaultTimeoutMs = 30'000;
inline constexpr uint64_t kMaxTimeoutMs = 3'600'000;
/// stdout + stderr bytes a job may write (limits.max_output_bytes): default and maximum.
inline constexpr uint64_t kDefaultMaxOutput = 16ull << 20;
inline constexpr uint64_t kMaxMaxOutput = 64ull << 20;
/// Bounds on fields that are not otherwise bounded by the line length.
inline constexpr size_t kMaxIdBytes = 256;          // a string id
inline constexpr size_t kMaxArgs = 4096;            // argv entries
inline constexpr size_t kMaxArgBytes = 512u << 10;  // argv bytes together (the guest's block is 1 MiB with env)

enum class Op { kRun, kMetrics };

/// Why a request got no job result.
enum class ErrorCode {
  kBusy,             // queue full or server shutting down: try again later
  kBadRequest,       // the line is not a valid request (the message says which field)
  kUnknownTemplate,  // the server does not serve that template
  kInternal,         // vmfork could not run the job (no clone ready, the program unreadable, ...)
};

/// "busy", "bad_request", "unknown_template", "internal".
const char* error_code_name(ErrorCode c);

/// One parsed request.
struct Request {
  nlohmann::json id;                // a string or a number, echoed in the response
  Op op = Op::kRun;
  std::string template_name;        // empty: the server's only template
  std::vector<std::string> argv;    // kernel-ready templates: argv[0] is the program's host path
  std::string stdin_data;           // decoded bytes
  uint64_t timeout_ms = kDefaultTimeoutMs;          // 1..kMaxTimeoutMs
  uint64_t max_output_bytes = kDefaultMaxOutput;    // 1..kMaxMaxOutput
  engine::JobFiles files;           // `files` (path -> base64 or {data, mode}), `workdir`, `collect`
};

/// Parses one request line (without its '\n'). Errors: the message for a bad_request answer
/// ("argv[2]: not a string", "stdin: base64: invalid character at offset 7"). Whenever the
/// line held a valid id, `*id` receives it (else null) so that the error answer can echo it.
Result<Request> parse_request(std::string_view line, nlohmann::json* id);

/// The request as one line ending in '\n' (what `vmfork submit` sends). Fields at their
/// defaults are left out.
std::string serialize_request(const Request& r);

/// What the server measured for one job, in microseconds.
struct JobTimings {
  double queue_us = 0;    // request accepted -> a worker took it
  double acquire_us = 0;  // waiting for a ready clone (WarmPool)
  double run_us = 0;      // the job in its clone (pool run minus acquire)
  double total_us = 0;    // request accepted -> response ready
};

/// A successful run's response line ('\n'-terminated): id, ok=true, exit, reason, stdout and
/// stderr (base64), their byte counts, fault (as `vmfork run --json`), timings_us.
std::string serialize_result(const nlohmann::json& id, const engine::RunResult& r, const JobTimings& t);

/// An error response line: id, ok=false, error {code, message}.
std::string serialize_error(const nlohmann::json& id, ErrorCode code, std::string_view message);

/// A metrics response line: id, ok=true, metrics (Prometheus text).
std::string serialize_metrics(const nlohmann::json& id, std::string_view text);

/// One parsed response (the client's view).
struct Response {
  nlohmann::json id;
  bool ok = false;
  // ok, run
  int exit_code = 0;
  std::string reason;
  std::string stdout_data, stderr_data;  // decoded
  uint64_t stdout_bytes = 0, stderr_bytes = 0;
  nlohmann::json fault;                  // null or the fault object
  JobTimings timings;
  nlohmann::json host;                   // null or the trusted figures (engine::host_json)
  nlohmann::json guest_reported;         // null or the bounded guest figures (engine::guest_json)
  uint64_t vm_exits = 0;                 // returns from KVM_RUN during the job (0 if absent)
  std::vector<engine::CollectedFile> collected;  // `collected`, decoded
  // ok, metrics
  bool has_metrics = false;
  std::string metrics;
  // !ok
  std::string error_code;                // "busy", ...
  std::string error_message;
};

/// Parses a response line. Errors: not JSON or a field missing or of the wrong type.
Result<Response> parse_response(std::string_view line);

}  // namespace vmfork::pool
