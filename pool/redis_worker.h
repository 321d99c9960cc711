// `vmfork worker`: a consumer in a Redis Streams consumer group that runs each job entry through
// a Service (pool/service.h) and stores its response in the results stream. At-least-once: an
// entry is acknowledged (XACK) only in the same MULTI/EXEC that stores its result, so a result
// is stored if and only if its job is acknowledged. Entries left pending by a dead worker are
// taken over with XAUTOCLAIM once idle for claim_idle (a live worker renews the entries it holds
// every claim_idle/3, so only a dead or cut-off worker's go idle); one delivered more than max_deliveries
// times goes to the dead-letter stream with the reason (and an error result), so a poison job
// cannot cycle forever. Redis going away: both connections retry with exponential backoff;
// finished results are kept in memory (at most `inflight` of them: nothing new is read while
// they wait) until they can be stored. Layout: pool/redis_queue.h; design: docs/queue.md.
// Thread-safety: start/stop/wait/metrics_text/stats may be called from any thread; the worker
// runs a reader thread and a writer thread, each with its own connection.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "pool/redis_conn.h"
#include "pool/service.h"

namespace vmfork::pool {

struct RedisWorkerOptions {
  RedisUrl url;
  std::string stream;    // the job stream
  std::string group;     // consumer group, created (with the stream, from ID 0) if missing
  std::string consumer;  // this worker's name in the group; unique per live worker
  std::string results;   // empty: results_stream_of(stream)
  std::string dead;      // empty: dead_stream_of(stream)
  uint64_t results_maxlen = 100'000;  // XADD MAXLEN ~ bound of the results and dead streams
  /// A pending entry idle this long is claimed from whoever holds it (XAUTOCLAIM). A worker
  /// renews its own entries every claim_idle/3, however long their jobs run.
  std::chrono::milliseconds claim_idle{30'000};
  /// Deliveries after which an entry is dead-lettered instead of run again (1..1000).
  uint32_t max_deliveries = 3;
  /// Entries read and not yet finished (stored, or left for another delivery); 0: twice the
  /// service's workers. Bounds both what this worker holds back from others and the results
  /// it keeps while Redis is away.
  size_t inflight = 0;
  /// XREADGROUP BLOCK: how long the reader waits for an entry before it looks at claims,
  /// lag and stop again (well below timeouts.command).
  std::chrono::milliseconds block{500};
  RedisTimeouts timeouts;
  std::chrono::milliseconds backoff_min{100}, backoff_max{5'000};
  /// After stop: the longest wait for results to be stored once every job finished.
  std::chrono::milliseconds drain_timeout{30'000};
};

/// Counters and gauges of the queue side (the Service has its own, pool/metrics.h).
struct RedisWorkerStats {
  uint64_t read = 0;         // entries delivered by XREADGROUP
  uint64_t claimed = 0;      // entries taken over with XAUTOCLAIM and run
  uint64_t acked = 0;        // results stored and entries acknowledged
  uint64_t retried = 0;      // left pending for another delivery (unknown_template, internal, busy)
  uint64_t dead = 0;         // dead-lettered
  uint64_t redis_errors = 0; // failed or timed-out Redis calls (each is retried)
  bool redis_up = false;     // the last Redis call of each connection succeeded
  size_t inflight = 0;       // read, not yet finished
  size_t unstored = 0;       // finished results waiting to be stored
  int64_t lag = -1;          // group lag (XINFO GROUPS, Redis >= 7), -1 unknown
  int64_t pending = -1;      // the group's pending entries, -1 unknown
};

class RedisWorker {
 public:
  /// Checks the options. `service` must outlive the worker; the worker calls its shutdown().
  /// Errors: an empty stream/group/consumer, max_deliveries or block out of range.
  static Result<std::unique_ptr<RedisWorker>> create(Service& service, RedisWorkerOptions opts);

  /// stop() and wait().
  ~RedisWorker();
  RedisWorker(const RedisWorker&) = delete;
  RedisWorker& operator=(const RedisWorker&) = delete;

  /// Starts the reader and writer threads. They connect on their own (retrying with backoff),
  /// so a Redis that is down at start is not an error.
  void start();
  /// Stops reading new entries (within one `block`). Callable from any thread.
  void stop();
  /// After stop(): waits for the jobs in flight to finish (Service::shutdown) and for their
  /// results to be stored and acknowledged, then ends the threads. Errors: results still
  /// unstored after drain_timeout (their entries stay pending, so another worker runs them
  /// again: nothing is lost). Idempotent.
  Status wait();

  /// The Service's metrics text followed by the queue's (README.md, "Redis Streams worker").
  std::string metrics_text() const;
  RedisWorkerStats stats() const;
  const RedisWorkerOptions& options() const { return opts_; }

 private:
  struct Done {
    std::string entry;   // job entry ID
    std::string result;  // response JSON, no '\n'
  };
  struct Flight {
    uint64_t deliveries = 1;
  };

  RedisWorker(Service& service, RedisWorkerOptions opts);
  void reader_loop();
  void writer_loop();
  /// One XREADGROUP of up to `count` entries, blocking up to `block`; false on a connection failure.
  bool read_batch(RedisConn& conn, size_t count, std::chrono::milliseconds block);
  /// Resets the idle time of the entries this worker still holds (it owns them), so a live
  /// worker's long job is never claimed; false on a connection failure.
  bool renew(RedisConn& conn);
  /// One XAUTOCLAIM pass; false on a connection failure.
  bool claim_pass(RedisConn& conn, size_t count);
  bool ensure_group(RedisConn& conn);
  /// XINFO GROUPS into stats_.lag/pending; false on a connection failure.
  bool refresh_lag(RedisConn& conn);
  /// Hands an entry to the service (or answers it at once when it has no job field).
  void dispatch(const std::string& entry, const RedisReply& fields, uint64_t deliveries);
  void on_answer(const std::string& entry, std::string line);
  /// Writes the dead-letter entry, an error result and the XACK in one MULTI; false on a
  /// connection failure.
  bool dead_letter(RedisConn& conn, const std::string& entry, const RedisReply& fields, uint64_t deliveries);
  void note_redis(bool ok, const std::string& who, const std::string& error);
  /// Sleeps `*backoff` (woken early by stop when `on_stop`), then doubles it up to the max.
  void back_off(std::chrono::milliseconds* backoff, bool wake_on_stop);

  Service& service_;
  RedisWorkerOptions opts_;

  mutable std::mutex mu_;
  std::condition_variable cv_;  // stopping_, a slot freed, a result done, writer_quit_
  bool stopping_ = false;
  bool writer_quit_ = false;   // the writer gives up (drain finished or timed out)
  bool writer_busy_ = false;   // the writer holds a batch it has not stored yet
  size_t writer_batch_ = 0;    // ... of this many results
  std::map<std::string, Flight> flights_;  // entries read and not finished, by ID
  std::deque<Done> done_;                  // finished results, oldest first
  std::map<std::string, std::string> last_failure_;  // entry -> why this worker left it pending (bounded)
  RedisWorkerStats stats_;
  // The writer calls Redis only with results to store and retries until it can, so it is up
  // unless its last call failed.
  bool reader_up_ = false, writer_up_ = true;
  bool reader_told_ = false, writer_told_ = false;  // a first state was seen (see note_redis)
  // Reader thread only.
  std::string claim_cursor_ = "0-0";  // XAUTOCLAIM's scan position
  bool group_missing_ = false;        // Redis answered NOGROUP: create the group again

  std::mutex wait_mu_;  // serializes wait()
  bool started_ = false;
  std::thread reader_, writer_;
};

}  // namespace vmfork::pool
