// The Redis Streams worker (see redis_worker.h): a reader thread (XREADGROUP, XAUTOCLAIM,
// dead letters, lag) and a writer thread (results and XACKs), each on its own connection so a
// blocked read never delays storing a result.
#include "pool/redis_worker.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "pool/protocol.h"
#include "pool/redis_queue.h"

namespace vmfork::pool {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Stores a batch of results and acknowledges their jobs. XADD first and through redis.call, so
// an XADD that fails (WRONGTYPE, OOM) stops the script before that job's XACK: a job is never
// acknowledged without its result. XACK through redis.pcall: a group lost with Redis's data
// (a restart without persistence) must not stop results from being stored.
// KEYS: results, stream. ARGV: maxlen, group, consumer, n, then n pairs (job entry, result).
constexpr const char* kStoreScript = R"lua(
local n = tonumber(ARGV[4])
for i = 1, n do
  local e = ARGV[3 + 2 * i]
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'result', ARGV[4 + 2 * i], 'job_entry', e, 'consumer', ARGV[3])
  redis.pcall('XACK', KEYS[2], ARGV[2], e)
end
return n
)lua";

// Dead-letters one entry: the dead entry, an error result for whoever waits on it, the XACK.
// KEYS: dead, results, stream. ARGV: maxlen, group, consumer, entry, job, reason, deliveries, result.
constexpr const char* kDeadScript = R"lua(
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'job', ARGV[5], 'reason', ARGV[6], 'deliveries', ARGV[7], 'job_entry', ARGV[4], 'consumer', ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'result', ARGV[8], 'job_entry', ARGV[4], 'consumer', ARGV[3])
redis.pcall('XACK', KEYS[3], ARGV[2], ARGV[4])
return 1
)lua";

// Renews this consumer's hold on the entries it is still running: XCLAIM ... JUSTID resets an
// entry's idle time without counting a delivery, and only where XPENDING shows this consumer
// still owns it (a worker cut off for longer than claim-idle must not take back an entry that
// another worker claimed meanwhile). KEYS: stream. ARGV: group, consumer, entry IDs...
constexpr const char* kRenewScript = R"lua(
local n = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    n = n + 1
  end
end
return n
)lua";

constexpr size_t kMaxBatch = 64;              // results per store script
constexpr size_t kMaxBatchBytes = 8u << 20;   // ... and their bytes, so one script stays short
constexpr size_t kMaxFailuresKept = 4096;     // last_failure_ entries

std::string strip_newline(std::string line) {
  if (!line.empty() && line.back() == '\n') line.pop_back();
  return line;
}

// Looks up `key` in a flat [key, value, ...] array (XINFO GROUPS' per-group reply).
const RedisReply* info_field(const RedisReply& flat, std::string_view key) {
  if (!flat.is_array()) return nullptr;
  for (size_t i = 0; i + 1 < flat.elements.size(); i += 2)
    if (flat.elements[i].text() == key) return &flat.elements[i + 1];
  return nullptr;
}

}  // namespace

RedisWorker::RedisWorker(Service& service, RedisWorkerOptions opts) : service_(service), opts_(std::move(opts)) {}

Result<std::unique_ptr<RedisWorker>> RedisWorker::create(Service& service, RedisWorkerOptions opts) {
  if (opts.stream.empty()) return plain_error("worker: --stream is empty");
  if (opts.group.empty()) return plain_error("worker: --group is empty");
  if (opts.consumer.empty()) return plain_error("worker: --consumer is empty");
  if (opts.results.empty()) opts.results = results_stream_of(opts.stream);
  if (opts.dead.empty()) opts.dead = dead_stream_of(opts.stream);
  if (opts.results == opts.stream || opts.dead == opts.stream || opts.dead == opts.results)
    return plain_error("worker: the job, results and dead-letter streams must differ");
  if (opts.max_deliveries < 1 || opts.max_deliveries > 1000) return plain_error("worker: --max-deliveries must be 1..1000");
  if (opts.claim_idle.count() < 1) return plain_error("worker: --claim-idle must be at least 1ms");
  if (opts.results_maxlen < 1) return plain_error("worker: --results-maxlen must be at least 1");
  if (opts.block.count() < 1 || opts.block >= opts.timeouts.command)
    return plain_error("worker: the read block time must be 1ms..the command timeout");
  if (opts.inflight == 0) opts.inflight = 2 * service.options().workers;
  if (opts.inflight > service.options().queue_capacity + service.options().workers)
    return plain_error("worker: inflight " + std::to_string(opts.inflight) + " exceeds what the service queues (" +
                       std::to_string(service.options().queue_capacity) + " + " +
                       std::to_string(service.options().workers) + " running)");
  return std::unique_ptr<RedisWorker>(new RedisWorker(service, std::move(opts)));
}

RedisWorker::~RedisWorker() {
  stop();
  (void)wait();
}

void RedisWorker::start() {
  std::lock_guard w(wait_mu_);
  if (started_) return;
  started_ = true;
  reader_ = std::thread([this] { reader_loop(); });
  writer_ = std::thread([this] { writer_loop(); });
}

void RedisWorker::stop() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  cv_.notify_all();
}

Status RedisWorker::wait() {
  std::lock_guard w(wait_mu_);
  if (!started_) return {};
  stop();
  reader_.join();
  // Every job handed to the service is answered before shutdown returns, so every result is
  // in done_ (or stored) after it.
  service_.shutdown();
  size_t unstored = 0;
  {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, opts_.drain_timeout, [&] { return done_.empty() && !writer_busy_; });
    writer_quit_ = true;
    cv_.notify_all();
  }
  writer_.join();
  {
    std::lock_guard lock(mu_);
    unstored = done_.size();
    done_.clear();
    flights_.clear();
  }
  started_ = false;
  if (unstored)
    return plain_error("worker: " + std::to_string(unstored) + " results could not be stored in Redis within " +
                       std::to_string(opts_.drain_timeout.count()) +
                       " ms; their jobs stay pending and another worker will run them again");
  return {};
}

void RedisWorker::note_redis(bool ok, const std::string& who, const std::string& error) {
  std::lock_guard lock(mu_);
  const bool reader = who == "reader";
  bool& up = reader ? reader_up_ : writer_up_;
  bool& told = reader ? reader_told_ : writer_told_;
  if (ok && !up) spdlog::info("redis {}: {} connected", opts_.url.where(), who);
  if (!ok) {
    stats_.redis_errors++;
    const size_t kept = done_.size() + writer_batch_;
    // Once per outage (and for a Redis that is down from the start), not once per retry.
    if (up || !told) spdlog::warn("{}; {} retrying with backoff ({} finished results kept)", error, who, kept);
    else spdlog::debug("{}; {} still retrying", error, who);
  }
  told = true;
  up = ok;
  stats_.redis_up = reader_up_ && writer_up_;
}

void RedisWorker::back_off(milliseconds* backoff, bool wake_on_stop) {
  // Half to all of the backoff, at random: a fleet that lost Redis together does not come back
  // in lockstep.
  thread_local std::minstd_rand rng(std::random_device{}());
  const milliseconds sleep(backoff->count() / 2 + int64_t(rng() % uint64_t(backoff->count() / 2 + 1)));
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, sleep, [&] { return wake_on_stop ? stopping_ : writer_quit_; });
  *backoff = std::min(opts_.backoff_max, *backoff * 2);
}

// ---------------------------------------------------------------- reader

void RedisWorker::reader_loop() {
  RedisConn conn(opts_.url, opts_.timeouts);
  auto backoff = opts_.backoff_min;
  bool group_ok = false;
  const auto claim_period = std::clamp<milliseconds>(opts_.claim_idle / 4, milliseconds(50), milliseconds(5000));
  const auto renew_period = std::max<milliseconds>(opts_.claim_idle / 3, milliseconds(10));
  auto next_claim = Clock::now();
  auto next_lag = Clock::now();
  auto next_renew = Clock::now() + renew_period;
  // A read must not outlast a renewal period, or a live worker's entries could go idle.
  const milliseconds block = std::min(opts_.block, renew_period);
  for (;;) {
    size_t free = 0;
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
      free = opts_.inflight - std::min(opts_.inflight, flights_.size());
    }
    bool ok = true;
    if (!group_ok) {
      ok = group_ok = ensure_group(conn);
    }
    if (ok && Clock::now() >= next_lag) {
      // Also the reader's only Redis call while every slot waits for the writer, so a Redis
      // that went away then shows in the log and in vmfork_redis_up.
      ok = refresh_lag(conn);
      next_lag = Clock::now() + std::chrono::seconds(5);  // scrapes come every 15-60 s
    }
    if (ok && Clock::now() >= next_renew) {
      ok = renew(conn);
      next_renew = Clock::now() + renew_period;
    }
    if (ok && free > 0 && Clock::now() >= next_claim) {
      ok = claim_pass(conn, free);
      next_claim = Clock::now() + claim_period;
      std::lock_guard lock(mu_);
      free = opts_.inflight - std::min(opts_.inflight, flights_.size());
    }
    if (ok && free == 0) {
      // Every slot is taken: wait for one (or stop), looking at claims and lag meanwhile.
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, block, [&] { return stopping_ || flights_.size() < opts_.inflight; });
      continue;
    }
    if (ok) ok = read_batch(conn, free, block);
    if (ok) {
      backoff = opts_.backoff_min;
    } else {
      back_off(&backoff, true);
      group_ok = group_ok && conn.connected();  // after a reconnect, make sure the group exists
    }
    // A NOGROUP answer (Redis restarted without its data) closes nothing but asks for the group.
    if (group_missing_) {
      group_ok = false;
      group_missing_ = false;
    }
  }
}

bool RedisWorker::ensure_group(RedisConn& conn) {
  // From ID 0, not $: jobs enqueued before the first worker started are run too.
  auto r = conn.command({"XGROUP", "CREATE", opts_.stream, opts_.group, "0", "MKSTREAM"});
  if (!r.ok()) {
    note_redis(false, "reader", r.error().message());
    return false;
  }
  note_redis(true, "reader", "");
  if (r->is_error() && !r->str.starts_with("BUSYGROUP")) {
    spdlog::error("redis {}: XGROUP CREATE {} {}: {}", opts_.url.where(), opts_.stream, opts_.group, r->str);
    return false;
  }
  if (!r->is_error()) spdlog::info("created consumer group {} on {}", opts_.group, opts_.stream);
  return true;
}

bool RedisWorker::refresh_lag(RedisConn& conn) {
  auto r = conn.command({"XINFO", "GROUPS", opts_.stream});
  if (!r.ok()) {
    note_redis(false, "reader", r.error().message());
    return false;
  }
  note_redis(true, "reader", "");
  if (!r->is_array()) return true;  // no stream yet (ERR no such key): the read recreates it
  for (const auto& g : r->elements) {
    const RedisReply* name = info_field(g, "name");
    if (!name || name->text() != opts_.group) continue;
    const RedisReply* lag = info_field(g, "lag");
    const RedisReply* pending = info_field(g, "pending");
    std::lock_guard lock(mu_);
    stats_.lag = lag && lag->type == RedisReply::Type::kInteger ? lag->integer : -1;
    stats_.pending = pending && pending->type == RedisReply::Type::kInteger ? pending->integer : -1;
  }
  return true;
}

bool RedisWorker::renew(RedisConn& conn) {
  std::vector<std::string> cmd = {"EVAL", kRenewScript, "1", opts_.stream, opts_.group, opts_.consumer};
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, f] : flights_) cmd.push_back(id);
  }
  if (cmd.size() == 6) return true;
  auto r = conn.command(cmd);
  if (!r.ok()) {
    note_redis(false, "reader", r.error().message());
    return false;
  }
  if (r->is_error()) spdlog::debug("redis {}: renewing pending entries: {}", opts_.url.where(), r->str);
  return true;
}

bool RedisWorker::read_batch(RedisConn& conn, size_t count, milliseconds block) {
  auto r = conn.command({"XREADGROUP", "GROUP", opts_.group, opts_.consumer, "COUNT", std::to_string(count), "BLOCK",
                         std::to_string(block.count()), "STREAMS", opts_.stream, ">"});
  if (!r.ok()) {
    note_redis(false, "reader", r.error().message());
    return false;
  }
  note_redis(true, "reader", "");
  if (r->is_nil()) return true;  // nothing within the block time
  if (r->is_error()) {
    if (r->str.starts_with("NOGROUP")) {
      spdlog::warn("redis {}: consumer group {} is gone (Redis restarted without its data?); creating it again",
                   opts_.url.where(), opts_.group);
      group_missing_ = true;
      return true;
    }
    spdlog::error("redis {}: XREADGROUP {}: {}", opts_.url.where(), opts_.stream, r->str);
    return false;
  }
  // [[stream, [[id, [field, value, ...]], ...]]]
  if (!r->is_array() || r->elements.size() != 1 || !r->elements[0].is_array() || r->elements[0].elements.size() != 2) {
    spdlog::error("redis {}: XREADGROUP: unexpected reply shape", opts_.url.where());
    return false;
  }
  std::vector<std::pair<std::string, const RedisReply*>> entries;
  for_each_entry(r->elements[0].elements[1],
                 [&](const std::string& id, const RedisReply& fields) { entries.emplace_back(id, &fields); });
  {
    std::lock_guard lock(mu_);
    stats_.read += entries.size();
  }
  for (auto& [id, fields] : entries) dispatch(id, *fields, 1);
  return true;
}

bool RedisWorker::claim_pass(RedisConn& conn, size_t count) {
  auto r = conn.command({"XAUTOCLAIM", opts_.stream, opts_.group, opts_.consumer,
                         std::to_string(opts_.claim_idle.count()), claim_cursor_, "COUNT", std::to_string(count)});
  if (!r.ok()) {
    note_redis(false, "reader", r.error().message());
    return false;
  }
  if (r->is_error()) {
    if (r->str.starts_with("NOGROUP")) group_missing_ = true;
    else spdlog::error("redis {}: XAUTOCLAIM {}: {}", opts_.url.where(), opts_.stream, r->str);
    return true;
  }
  // [next-cursor, [[id, fields|nil], ...], [deleted ids] (Redis >= 7)]
  if (!r->is_array() || r->elements.size() < 2 || r->elements[0].type != RedisReply::Type::kString) {
    spdlog::error("redis {}: XAUTOCLAIM: unexpected reply shape", opts_.url.where());
    return true;
  }
  claim_cursor_ = r->elements[0].str;
  std::vector<std::pair<std::string, const RedisReply*>> claimed;
  for_each_entry(r->elements[1], [&](const std::string& id, const RedisReply& f) { claimed.emplace_back(id, &f); });
  if (claimed.empty()) return true;

  // XAUTOCLAIM does not say how often each entry was delivered; XPENDING with the ID as both
  // ends does ([[id, consumer, idle-ms, deliveries]]).
  std::vector<std::vector<std::string>> cmds;
  for (auto& [id, f] : claimed) cmds.push_back({"XPENDING", opts_.stream, opts_.group, id, id, "1"});
  auto counts = conn.pipeline(cmds);
  if (!counts.ok()) {
    note_redis(false, "reader", counts.error().message());
    return false;
  }
  for (size_t i = 0; i < claimed.size(); i++) {
    const auto& [id, fields] = claimed[i];
    const RedisReply& p = (*counts)[i];
    uint64_t deliveries = 0;
    if (p.is_array() && p.elements.size() == 1 && p.elements[0].is_array() && p.elements[0].elements.size() == 4 &&
        p.elements[0].elements[3].type == RedisReply::Type::kInteger)
      deliveries = uint64_t(std::max<int64_t>(0, p.elements[0].elements[3].integer));
    if (deliveries == 0) continue;  // no longer pending: acknowledged meanwhile
    {
      std::lock_guard lock(mu_);
      if (flights_.count(id)) continue;  // ours, still running (or its result waiting to be stored)
    }
    if (fields->is_nil()) {  // deleted from the stream while pending: nothing to run
      auto a = conn.command({"XACK", opts_.stream, opts_.group, id});
      if (!a.ok()) return false;
      continue;
    }
    if (deliveries > opts_.max_deliveries) {
      if (!dead_letter(conn, id, *fields, deliveries)) return false;
      continue;
    }
    {
      std::lock_guard lock(mu_);
      stats_.claimed++;
    }
    spdlog::debug("claimed {} (delivery {})", id, deliveries);
    dispatch(id, *fields, deliveries);
  }
  return true;
}

bool RedisWorker::dead_letter(RedisConn& conn, const std::string& entry, const RedisReply& fields,
                              uint64_t deliveries) {
  const std::string* job = entry_field(fields, kJobField);
  std::string reason = "delivered " + std::to_string(deliveries) + " times (max-deliveries " +
                       std::to_string(opts_.max_deliveries) + ")";
  {
    std::lock_guard lock(mu_);
    auto it = last_failure_.find(entry);
    reason += it != last_failure_.end()
                  ? "; last failure here: " + it->second
                  : "; no failure seen by this worker (a worker died or ran it past claim-idle)";
  }
  nlohmann::json id;
  if (job) (void)parse_request(*job, &id);  // only for the id to echo
  const std::string result = strip_newline(serialize_error(id, ErrorCode::kInternal, "dead-lettered: " + reason));
  auto r = conn.command({"EVAL", kDeadScript, "3", opts_.dead, opts_.results, opts_.stream,
                         std::to_string(opts_.results_maxlen), opts_.group, opts_.consumer, entry, job ? *job : "",
                         reason, std::to_string(deliveries), result});
  if (!r.ok()) {
    note_redis(false, "reader", r.error().message());
    return false;
  }
  if (r->is_error()) {
    spdlog::error("redis {}: dead-lettering {}: {}", opts_.url.where(), entry, r->str);
    return true;
  }
  std::lock_guard lock(mu_);
  stats_.dead++;
  last_failure_.erase(entry);
  spdlog::warn("job {} dead-lettered to {}: {}", entry, opts_.dead, reason);
  return true;
}

void RedisWorker::dispatch(const std::string& entry, const RedisReply& fields, uint64_t deliveries) {
  {
    std::lock_guard lock(mu_);
    if (!flights_.emplace(entry, Flight{deliveries}).second) return;  // already running here
  }
  const std::string* job = entry_field(fields, kJobField);
  if (!job) {
    on_answer(entry, serialize_error(nullptr, ErrorCode::kBadRequest, "entry has no 'job' field"));
    return;
  }
  service_.submit(*job, [this, entry](std::string line) { on_answer(entry, std::move(line)); });
}

void RedisWorker::on_answer(const std::string& entry, std::string line) {
  line = strip_newline(std::move(line));
  // Whether to store the answer: a job result or a bad request (which no retry can fix) is
  // stored; unknown_template (another worker may serve it), internal and busy are left pending
  // for another delivery, which max_deliveries bounds.
  bool store = true;
  std::string summary;
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_object() && j.contains("ok") && j["ok"] == true) {
    summary = "exit " + (j.contains("exit") ? j["exit"].dump() : "?") + " " +
              (j.contains("reason") && j["reason"].is_string() ? j["reason"].get<std::string>() : "");
  } else {
    std::string code = "internal", message;
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
      const auto& e = j["error"];
      if (e.contains("code") && e["code"].is_string()) code = e["code"].get<std::string>();
      if (e.contains("message") && e["message"].is_string()) message = e["message"].get<std::string>();
    }
    summary = code + ": " + message;
    store = code == "bad_request";
  }
  std::lock_guard lock(mu_);
  auto it = flights_.find(entry);
  const uint64_t deliveries = it == flights_.end() ? 0 : it->second.deliveries;
  if (store) {
    spdlog::debug("job {} (delivery {}): {}", entry, deliveries, summary);
    done_.push_back(Done{entry, std::move(line)});
  } else {
    spdlog::debug("job {} (delivery {}): {}; left pending for another delivery", entry, deliveries, summary);
    if (it != flights_.end()) flights_.erase(it);
    last_failure_[entry] = summary;
    if (last_failure_.size() > kMaxFailuresKept) last_failure_.erase(last_failure_.begin());  // oldest ID
    stats_.retried++;
  }
  cv_.notify_all();
}

// ---------------------------------------------------------------- writer

void RedisWorker::writer_loop() {
  RedisConn conn(opts_.url, opts_.timeouts);
  auto backoff = opts_.backoff_min;
  for (;;) {
    std::vector<Done> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return writer_quit_ || !done_.empty(); });
      if (writer_quit_) return;
      size_t bytes = 0;
      while (!done_.empty() && batch.size() < kMaxBatch && (batch.empty() || bytes + done_.front().result.size() <= kMaxBatchBytes)) {
        bytes += done_.front().result.size();
        batch.push_back(std::move(done_.front()));
        done_.pop_front();
      }
      writer_busy_ = true;
      writer_batch_ = batch.size();
    }
    std::vector<std::string> cmd = {"EVAL", kStoreScript, "2", opts_.results, opts_.stream,
                                    std::to_string(opts_.results_maxlen), opts_.group, opts_.consumer,
                                    std::to_string(batch.size())};
    for (const auto& d : batch) {
      cmd.push_back(d.entry);
      cmd.push_back(d.result);
    }
    bool stored = false;
    for (;;) {
      auto r = conn.command(cmd);
      if (r.ok()) {
        note_redis(true, "writer", "");
        if (!r->is_error()) {
          stored = true;
          backoff = opts_.backoff_min;
          break;
        }
        // Not a connection problem (WRONGTYPE results key, OOM): keep the results, say why.
        {
          std::lock_guard lock(mu_);
          stats_.redis_errors++;
        }
        spdlog::error("redis {}: storing {} results in {}: {}; retrying", opts_.url.where(), batch.size(),
                      opts_.results, r->str);
      } else {
        note_redis(false, "writer", r.error().message());
      }
      back_off(&backoff, false);
      std::lock_guard lock(mu_);
      if (writer_quit_) break;
    }
    std::lock_guard lock(mu_);
    if (stored) {
      for (const auto& d : batch) {
        flights_.erase(d.entry);
        last_failure_.erase(d.entry);
      }
      stats_.acked += batch.size();
    } else {
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) done_.push_front(std::move(*it));  // for wait() to count
    }
    writer_busy_ = false;
    writer_batch_ = 0;
    cv_.notify_all();
  }
}

// ---------------------------------------------------------------- metrics

RedisWorkerStats RedisWorker::stats() const {
  std::lock_guard lock(mu_);
  RedisWorkerStats s = stats_;
  s.inflight = flights_.size();
  s.unstored = done_.size() + writer_batch_;
  return s;
}

std::string RedisWorker::metrics_text() const {
  const RedisWorkerStats s = stats();
  std::string out = service_.metrics_text();
  auto metric = [&](const char* name, const char* type, const char* help, double value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " ";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", value);
    out += buf;
    out += "\n";
  };
  metric("vmfork_queue_entries_read_total", "counter", "Job entries delivered to this worker by XREADGROUP.",
         double(s.read));
  metric("vmfork_queue_claims_total", "counter", "Pending job entries this worker took over with XAUTOCLAIM.",
         double(s.claimed));
  metric("vmfork_queue_acked_total", "counter", "Results stored and their job entries acknowledged.", double(s.acked));
  metric("vmfork_queue_retries_total", "counter",
         "Jobs left pending for another delivery (unknown_template, internal, busy).", double(s.retried));
  metric("vmfork_queue_dead_letters_total", "counter", "Job entries moved to the dead-letter stream.", double(s.dead));
  metric("vmfork_queue_inflight", "gauge", "Job entries read and not yet finished.", double(s.inflight));
  metric("vmfork_queue_unstored_results", "gauge", "Finished results waiting to be stored in Redis.",
         double(s.unstored));
  metric("vmfork_queue_lag", "gauge",
         "Entries of the stream not yet delivered to the group (XINFO GROUPS lag; -1 unknown).", double(s.lag));
  metric("vmfork_queue_pending", "gauge", "Entries delivered to the group and not acknowledged (-1 unknown).",
         double(s.pending));
  metric("vmfork_redis_up", "gauge", "1 when both Redis connections work.", s.redis_up ? 1 : 0);
  metric("vmfork_redis_errors_total", "counter", "Redis calls that failed or timed out (each is retried).",
         double(s.redis_errors));
  return out;
}

}  // namespace vmfork::pool
