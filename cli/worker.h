// `vmfork worker` (a consumer of a Redis Streams job queue, pool/redis_worker.h) and the Redis
// side of `vmfork submit --redis` (pool/redis_queue.h). Thread-safety: single-threaded main.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/serve.h"
#include "common/status.h"

namespace vmfork::cli {

/// Options of `vmfork worker`, filled by CLI11.
struct WorkerCli {
  CLI::App* cmd = nullptr;
  std::string redis, stream, group, consumer, results, store, metrics_listen;
  std::vector<std::string> templates;
  size_t pool = 4, refill_threads = 0, workers = 2, inflight = 0;
  uint64_t results_maxlen = 100'000;
  uint32_t max_deliveries = 3;
  std::string mode = "fresh", claim_idle = "30s", drain_timeout = "30s", log_level = "info";
  bool no_seccomp = false;
};

/// Registers `worker` on `app`; `cli` must outlive parsing.
void add_worker_cli(CLI::App& app, WorkerCli* cli);

/// Runs the worker until SIGTERM or SIGINT, then drains: stops reading, finishes and
/// acknowledges the jobs in flight. Returns 0 after a clean drain, 1 when results could not
/// be stored before the drain timeout, 125 after printing why it could not start.
int run_worker_cli(const WorkerCli& cli);

/// `vmfork submit --redis`: enqueues `request_line` on `cli.stream` and waits for its result
/// (at most --wait, default the job's timeout plus 60 s). Returns the raw response JSON.
/// Errors: bad URL, Redis unreachable, no result in time (the job stays queued).
Result<std::string> submit_via_redis(const SubmitCli& cli, const std::string& request_line, uint64_t timeout_ms);

}  // namespace vmfork::cli
