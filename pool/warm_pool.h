// A warm pool of clones of one template: N clones restored ahead of time and kept paused, so a
// job never waits for a restore. Two modes:
//   kFresh : each clone runs one job and is destroyed; the pool's refill threads destroy it and
//            restore a new one, so teardown and refill happen off the job's path.
//   kReset : after its job a clone is reset in place and reused, again on a refill thread:
//            the pages its job changed go back to the template's bytes (engine::reset_clone,
//            vmm::Machine::reset) and VM, vCPU and device state are loaded again from the
//            template. Nothing of the previous job survives (tests/pool_test.cc proves it for
//            memory, files, registers and output).
// A clone whose restore or reset failed is destroyed and counted, never handed out.
// Thread-safety: every public method may be called from any thread concurrently. The pool owns
// `refill_threads` threads that do all slow work (restore, reset, teardown); see warm_pool.cc.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "engine/program_cache.h"
#include "engine/restore.h"
#include "engine/run_result.h"
#include "engine/template_image.h"

namespace vmfork::pool {

enum class Mode { kFresh, kReset };

/// "fresh" or "reset".
const char* mode_name(Mode m);

struct PoolOptions {
  size_t depth = 4;          // clones kept ready (1..1024)
  Mode mode = Mode::kFresh;
  /// Threads that restore, reset and destroy clones (1..256); 0 = default_refill_threads().
  /// One restore runs on one thread, so at most this many restores are in flight at once.
  size_t refill_threads = 0;
};

/// The default number of refill threads: the online CPUs (sysconf(_SC_NPROCESSORS_ONLN)), at
/// least 2, so a teardown never holds up the only thread that could restore.
size_t default_refill_threads();

/// Counters since the pool was created.
struct PoolStats {
  uint64_t restores = 0, restore_failures = 0;  // clones restored by the refill threads
  uint64_t resets = 0, reset_failures = 0;      // in-place resets (kReset)
  uint64_t acquires = 0;                        // clones handed to jobs
  uint64_t acquire_waits = 0;                   // acquires that found no ready clone
  uint64_t teardowns = 0;                       // used clones destroyed or being destroyed (kFresh)
  size_t ready = 0;                             // clones ready right now
  size_t used = 0;                              // used clones waiting for a teardown or reset
};

/// What one pooled job cost on top of its RunResult, in microseconds.
struct PoolJobTimings {
  double acquire_us = 0;  // waiting for and taking a ready clone
};

class WarmPool {
 public:
  /// Starts the refill threads, which restore `opts.depth` clones of `image` in the background.
  /// Errors: bad options, a thread that could not start (std::system_error's errno). Restore
  /// failures are counted in stats(), not returned.
  static Result<std::unique_ptr<WarmPool>> create(std::shared_ptr<const engine::TemplateImage> image,
                                                  PoolOptions opts);
  /// Stops and joins the refill threads (a restore or reset in progress finishes first, at most
  /// one per thread) and destroys the ready and used clones, spread over those threads. No
  /// run() may be in progress (the owner, e.g. pool::Service, drains its jobs first).
  ~WarmPool();
  WarmPool(const WarmPool&) = delete;
  WarmPool& operator=(const WarmPool&) = delete;

  /// Runs `job` in a ready clone (waiting up to `wait` for one; a kernel-ready clone maps the
  /// program from the pool's engine::ProgramCache, so its jobs share the program's pages), then hands the used clone to
  /// a refill thread to be destroyed (kFresh) or reset (kReset); the caller does not wait
  /// for that. Errors: no clone became ready within `wait` ("pool for T: no clone ready after ..."), or
  /// the job could not be given to the clone (as engine::run_clone).
  Result<engine::RunResult> run(const engine::CloneJob& job, std::chrono::nanoseconds wait,
                                PoolJobTimings* timings = nullptr);

  /// Blocks until `depth` clones are ready or `timeout` passes; true if they are.
  bool wait_ready(std::chrono::nanoseconds timeout);

  PoolStats stats() const;
  const engine::TemplateImage& image() const { return *image_; }
  const PoolOptions& options() const { return opts_; }

 private:
  WarmPool(std::shared_ptr<const engine::TemplateImage> image, PoolOptions opts);
  void refill_loop();
  Result<engine::Clone> take(std::chrono::nanoseconds wait, PoolJobTimings* timings);
  void give_back(engine::Clone clone);
  size_t owned() const;  // clones that count against depth; mu_ held

  std::shared_ptr<const engine::TemplateImage> image_;
  PoolOptions opts_;
  mutable std::mutex mu_;
  std::condition_variable changed_;   // ready_, used_ or in_flight_ changed, or stopping_
  std::deque<engine::Clone> ready_;
  std::deque<engine::Clone> used_;    // ran a job: to destroy (kFresh) or reset (kReset)
  size_t in_flight_ = 0;              // restores or resets in progress
  size_t out_ = 0;                    // clones taken by run() and not yet given back
  bool stopping_ = false;
  PoolStats stats_;
  engine::ProgramCache programs_;     // kernel-ready jobs' programs, mapped by every clone
  std::vector<std::thread> refill_;   // written only by create() and the destructor
};

}  // namespace vmfork::pool
