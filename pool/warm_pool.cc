// Warm pool (see warm_pool.h). `refill_threads` threads per pool do all slow work: restoring new
// clones, destroying used ones (kFresh) and resetting used ones (kReset); any of them does any
// of it, one piece at a time, restores first. Job threads only take a ready clone, run the job
// and queue the clone as used. All shared state is under mu_; the slow work runs unlocked.
#include "pool/warm_pool.h"

#include <unistd.h>

#include <system_error>

namespace vmfork::pool {

using Clock = std::chrono::steady_clock;

const char* mode_name(Mode m) { return m == Mode::kFresh ? "fresh" : "reset"; }

size_t default_refill_threads() {
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  return cpus > 2 ? size_t(cpus) : 2;
}

Result<std::unique_ptr<WarmPool>> WarmPool::create(std::shared_ptr<const engine::TemplateImage> image,
                                                   PoolOptions opts) {
  if (opts.depth < 1 || opts.depth > 1024)
    return plain_error("pool depth " + std::to_string(opts.depth) + " is outside 1..1024");
  if (opts.refill_threads == 0) opts.refill_threads = default_refill_threads();
  if (opts.refill_threads > 256)
    return plain_error("pool refill threads " + std::to_string(opts.refill_threads) + " is outside 1..256");
  std::unique_ptr<WarmPool> p(new WarmPool(std::move(image), opts));
  try {
    for (size_t i = 0; i < opts.refill_threads; i++)
      p->refill_.emplace_back([raw = p.get()] { raw->refill_loop(); });
  } catch (const std::system_error& e) {
    // ~WarmPool stops and joins the threads that did start.
    return Error{"pool refill thread: std::thread", e.code().value()};
  }
  return p;
}

WarmPool::WarmPool(std::shared_ptr<const engine::TemplateImage> image, PoolOptions opts)
    : image_(std::move(image)), opts_(opts) {}

WarmPool::~WarmPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& t : refill_)
    if (t.joinable()) t.join();
  // Each thread destroyed what it found before it left; this only catches a pool whose threads
  // never started.
  ready_.clear();
  used_.clear();
}

void WarmPool::refill_loop() {
  // Work order, chosen so a job finds a clone ready (acquire_waits stays low):
  //   1. kReset: reset a used clone (that is the refill of a reset pool);
  //   2. restore while fewer than depth clones are ready or on their way, unless (kFresh)
  //      depth used clones already wait for teardown: then tear one down first, so used
  //      clones (each a VM and its private pages) never pile up behind the restores;
  //   3. kFresh: destroy a used clone.
  // Teardown (~0.4 ms of CPU on PVM here, pool_bench RestoreTeardown) thus runs only on a
  // thread with no restore to do, and never makes a job wait while another thread is free.
  std::unique_lock lock(mu_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || !used_.empty() || owned() < opts_.depth; });
    if (stopping_) break;
    const bool reset = opts_.mode == Mode::kReset;
    const bool want_restore = owned() < opts_.depth;
    if (!used_.empty() && (reset || !want_restore || used_.size() >= opts_.depth)) {
      engine::Clone used = std::move(used_.front());
      used_.pop_front();
      if (!reset) {
        stats_.teardowns++;  // counted as taken, so teardowns + used is exact at any moment
        lock.unlock();
        used.machine.reset();  // teardown, off the job's path
        lock.lock();
        continue;
      }
      in_flight_++;
      lock.unlock();
      Status st = engine::reset_clone(used);
      if (!st.ok()) used.machine.reset();
      lock.lock();
      in_flight_--;
      if (st.ok()) {
        stats_.resets++;
        ready_.push_back(std::move(used));
      } else {
        stats_.reset_failures++;  // never handed out; a fresh restore replaces it
      }
      changed_.notify_all();
      continue;
    }
    // owned() < depth: restore one more.
    in_flight_++;
    lock.unlock();
    auto clone = engine::restore_clone(image_);
    lock.lock();
    in_flight_--;
    if (clone.ok()) {
      stats_.restores++;
      ready_.push_back(std::move(clone).value());
    } else {
      stats_.restore_failures++;
      // Back off so a persistent failure (e.g. out of memory) does not spin.
      changed_.wait_for(lock, std::chrono::milliseconds(50), [&] { return stopping_; });
    }
    changed_.notify_all();
  }
  // Stopping: destroy what is left, one clone at a time outside the lock, so the threads share
  // the teardowns. A clone this thread restored was pushed above before it got here, so the
  // last thread out leaves nothing behind.
  for (;;) {
    std::deque<engine::Clone>* from = !ready_.empty() ? &ready_ : !used_.empty() ? &used_ : nullptr;
    if (!from) break;
    engine::Clone c = std::move(from->front());
    from->pop_front();
    lock.unlock();
    c.machine.reset();
    lock.lock();
  }
}

size_t WarmPool::owned() const {
  // kFresh: a clone that ran a job is destroyed, so only ready and restoring ones count.
  // kReset: clones out on a job or waiting for their reset come back, so they count too.
  size_t n = ready_.size() + in_flight_;
  if (opts_.mode == Mode::kReset) n += out_ + used_.size();
  return n;
}

Result<engine::Clone> WarmPool::take(std::chrono::nanoseconds wait, PoolJobTimings* timings) {
  const auto t0 = Clock::now();
  std::unique_lock lock(mu_);
  if (ready_.empty()) {
    stats_.acquire_waits++;
    if (!changed_.wait_for(lock, wait, [&] { return stopping_ || !ready_.empty(); }) || ready_.empty())
      return plain_error("pool for template " + image_->name() + ": no clone ready after " +
                         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count()) + " ms");
  }
  engine::Clone c = std::move(ready_.front());
  ready_.pop_front();
  stats_.acquires++;
  out_++;
  lock.unlock();
  changed_.notify_all();  // a slot freed: a refill thread restores the next one
  if (timings) timings->acquire_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  return c;
}

void WarmPool::give_back(engine::Clone clone) {
  {
    std::lock_guard lock(mu_);
    out_--;
    used_.push_back(std::move(clone));
  }
  changed_.notify_all();
}

Result<engine::RunResult> WarmPool::run(const engine::CloneJob& job, std::chrono::nanoseconds wait,
                                        PoolJobTimings* timings) {
  VF_ASSIGN(engine::Clone clone, take(wait, timings));
  auto result = engine::run_job_in(clone, job, &programs_);
  give_back(std::move(clone));
  return result;
}

bool WarmPool::wait_ready(std::chrono::nanoseconds timeout) {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, timeout, [&] { return ready_.size() >= opts_.depth; });
}

PoolStats WarmPool::stats() const {
  std::lock_guard lock(mu_);
  PoolStats s = stats_;
  s.ready = ready_.size();
  s.used = used_.size();
  return s;
}

}  // namespace vmfork::pool
