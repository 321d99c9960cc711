// The Redis Streams job queue's layout and its producer side: key and field names shared by the
// worker (pool/redis_worker.h), `vmfork submit --redis`, the tests and the benchmark. A job is a
// stream entry whose field `job` holds one protocol request (pool/protocol.h); its answer is an
// entry of the results stream with the response in `result` and the job's entry ID in
// `job_entry`. Layout and guarantees: README.md ("Redis Streams worker"), docs/queue.md.
// Thread-safety: pure functions; each call uses the caller's RedisConn.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "pool/redis_conn.h"

namespace vmfork::pool {

/// Fields of a job entry, a result entry and a dead-letter entry.
inline constexpr std::string_view kJobField = "job";            // job stream: the request JSON
inline constexpr std::string_view kResultField = "result";      // results: the response JSON
inline constexpr std::string_view kJobEntryField = "job_entry"; // results, dead: the job's entry ID
inline constexpr std::string_view kConsumerField = "consumer";  // results, dead: who wrote it
inline constexpr std::string_view kReasonField = "reason";      // dead: why it was given up
inline constexpr std::string_view kDeliveriesField = "deliveries";  // dead: times delivered

/// The default results and dead-letter stream names of job stream `stream`.
inline std::string results_stream_of(std::string_view stream) { return std::string(stream) + ":results"; }
inline std::string dead_stream_of(std::string_view stream) { return std::string(stream) + ":dead"; }

/// XADD `stream` * job `request_line` ('\n' stripped). Returns the new entry's ID.
/// Errors: the connection failed, or Redis answered an error (e.g. WRONGTYPE).
Result<std::string> enqueue_job(RedisConn& conn, std::string_view stream, std::string_view request_line);

/// The ID of the newest entry of `stream`, "0-0" when it is empty or missing. A producer reads
/// it before enqueuing and then waits for results after it, so it cannot miss its own.
Result<std::string> last_entry_id(RedisConn& conn, std::string_view stream);

/// One result entry.
struct QueueResult {
  std::string entry_id;   // of the result entry
  std::string job_entry;  // of the job it answers
  std::string result;     // the response JSON (pool/protocol.h)
};

/// Reads `results` after entry `*after` (XREAD BLOCK, at most `block` per call) until an entry
/// whose job_entry is `job_entry` appears or `deadline` passes (then nullopt). `*after` is
/// advanced past every entry read. Errors: the connection failed.
Result<std::optional<QueueResult>> wait_result(RedisConn& conn, std::string_view results, std::string* after,
                                               std::string_view job_entry,
                                               std::chrono::steady_clock::time_point deadline,
                                               std::chrono::milliseconds block = std::chrono::milliseconds(500));

/// Parses an XREAD/XREADGROUP/XRANGE reply's entries ([[id, [field, value, ...]], ...]) and
/// calls `fn(id, fields)` for each well-formed one (fields may be nil for an entry deleted
/// while pending). Returns false if the reply does not have that shape.
template <typename Fn>
bool for_each_entry(const RedisReply& entries, Fn&& fn) {
  if (!entries.is_array()) return false;
  for (const auto& e : entries.elements) {
    if (!e.is_array() || e.elements.size() != 2 || e.elements[0].type != RedisReply::Type::kString) return false;
    fn(e.elements[0].str, e.elements[1]);
  }
  return true;
}

}  // namespace vmfork::pool
