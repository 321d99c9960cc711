// The Redis Streams queue layout and producer helpers (see redis_queue.h).
#include "pool/redis_queue.h"

#include <algorithm>

namespace vmfork::pool {

namespace {

Error reply_error(std::string_view cmd, const RedisReply& r) {
  return plain_error(std::string(cmd) + ": " + describe(r));
}

}  // namespace

Result<std::string> enqueue_job(RedisConn& conn, std::string_view stream, std::string_view request_line) {
  if (!request_line.empty() && request_line.back() == '\n') request_line.remove_suffix(1);
  auto r = conn.command({"XADD", std::string(stream), "*", std::string(kJobField), std::string(request_line)});
  if (!r.ok()) return r.error();
  if (r->type != RedisReply::Type::kString) return reply_error("XADD " + std::string(stream), *r);
  return r->str;
}

Result<std::string> last_entry_id(RedisConn& conn, std::string_view stream) {
  auto r = conn.command({"XREVRANGE", std::string(stream), "+", "-", "COUNT", "1"});
  if (!r.ok()) return r.error();
  if (!r->is_array()) return reply_error("XREVRANGE " + std::string(stream), *r);
  std::string id = "0-0";
  if (!for_each_entry(*r, [&](const std::string& e, const RedisReply&) { id = e; }))
    return reply_error("XREVRANGE " + std::string(stream), *r);
  return id;
}

Result<std::optional<QueueResult>> wait_result(RedisConn& conn, std::string_view results, std::string* after,
                                               std::string_view job_entry,
                                               std::chrono::steady_clock::time_point deadline,
                                               std::chrono::milliseconds block) {
  using Clock = std::chrono::steady_clock;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::optional<QueueResult>();
    auto wait = std::max<std::chrono::milliseconds>(std::min(left, block), std::chrono::milliseconds(1));
    auto r = conn.command({"XREAD", "COUNT", "256", "BLOCK", std::to_string(wait.count()), "STREAMS",
                           std::string(results), *after});
    if (!r.ok()) return r.error();
    if (r->is_nil()) continue;  // BLOCK ran out
    // [[stream, [entries...]]]
    if (!r->is_array() || r->elements.size() != 1 || !r->elements[0].is_array() ||
        r->elements[0].elements.size() != 2)
      return reply_error("XREAD " + std::string(results), *r);
    std::optional<QueueResult> found;
    bool shaped = for_each_entry(r->elements[0].elements[1], [&](const std::string& id, const RedisReply& fields) {
      *after = id;
      const std::string* je = entry_field(fields, kJobEntryField);
      const std::string* res = entry_field(fields, kResultField);
      if (!found && je && res && *je == job_entry) found = QueueResult{id, *je, *res};
    });
    if (!shaped) return reply_error("XREAD " + std::string(results), *r);
    if (found) return found;
  }
}

}  // namespace vmfork::pool
