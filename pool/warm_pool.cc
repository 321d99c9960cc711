// Warm pool (see warm_pool.h). One refill thread per pool does all slow work: restoring new
// clones, destroying used ones (kFresh) and resetting used ones (kReset). Job threads only take
// a ready clone, run the job and queue the clone as used.
#include "pool/warm_pool.h"

namespace vmfork::pool {

using Clock = std::chrono::steady_clock;

const char* mode_name(Mode m) { return m == Mode::kFresh ? "fresh" : "reset"; }

Result<std::unique_ptr<WarmPool>> WarmPool::create(std::shared_ptr<const engine::TemplateImage> image,
                                                   PoolOptions opts) {
  if (opts.depth < 1 || opts.depth > 1024)
    return plain_error("pool depth " + std::to_string(opts.depth) + " is outside 1..1024");
  std::unique_ptr<WarmPool> p(new WarmPool(std::move(image), opts));
  p->refill_ = std::thread([raw = p.get()] { raw->refill_loop(); });
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
  if (refill_.joinable()) refill_.join();
}

void WarmPool::refill_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || !used_.empty() || owned() < opts_.depth; });
    if (stopping_) break;
    if (!used_.empty()) {
      engine::Clone used = std::move(used_.front());
      used_.pop_front();
      if (opts_.mode == Mode::kFresh) {
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
  // Destroy what is left outside the lock.
  std::deque<engine::Clone> ready = std::move(ready_), used = std::move(used_);
  lock.unlock();
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
  changed_.notify_all();  // a slot freed: the refill thread restores the next one
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
  auto result = engine::run_job_in(clone, job);
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
  return s;
}

}  // namespace vmfork::pool
