// Counters and fixed-bucket histograms of `vmfork serve`, rendered in the Prometheus text
// exposition format 0.0.4 (# HELP and # TYPE lines; histograms as cumulative `_bucket{le=...}`
// series ending with le="+Inf", then `_sum` and `_count`). Names and labels: README.md,
// "Serving jobs".
// Thread-safety: every method may be called from any thread concurrently (one mutex; a job
// touches it a few times, far below what would contend).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pool/warm_pool.h"

namespace vmfork::pool {

/// A histogram with fixed upper bounds (seconds, or counts for VM exits), cumulative as Prometheus wants it.
class Histogram {
 public:
  /// `bounds`: strictly increasing finite upper bounds; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);
  /// Counts `value` in every bucket whose bound is >= value. Not thread-safe by itself.
  void observe(double value);
  /// Appends the `_bucket`, `_sum` and `_count` lines of metric `name`.
  void render(const std::string& name, std::string* out) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

/// A pool's figures at the moment of rendering.
struct PoolGauge {
  std::string template_name;
  PoolStats stats;
};

class Metrics {
 public:
  Metrics();

  /// A run request was answered with a job result that ended for `reason`
  /// (engine::reason_name; anything but "exited" also counts as a failure).
  void job_finished(std::string_view reason);
  /// A request was answered with an error `code`: "busy", "bad_request", "unknown_template",
  /// "internal". It counts as a job and as a failure for that reason.
  void request_failed(std::string_view code);
  /// A job's clone returned from KVM_RUN `exits` times (engine::RunResult host.vm_exits).
  void observe_exits(uint64_t exits);
  /// A clone's restore took `seconds` (engine::RunResult timings.create_us).
  void observe_restore(double seconds);
  /// A run request took `seconds` from accepted to response ready.
  void observe_job(double seconds);
  /// A job's vCPU thread used `seconds` of CPU, host-measured (engine::RunResult host.vcpu_cpu_us).
  void observe_vcpu_cpu(double seconds);

  /// The exposition text: the counters above plus the gauges passed in.
  std::string render(std::span<const PoolGauge> pools, size_t queue_depth, size_t jobs_running) const;

 private:
  mutable std::mutex mu_;
  uint64_t jobs_ = 0;
  std::map<std::string, uint64_t, std::less<>> failures_;  // reason -> count
  Histogram restore_seconds_;
  Histogram job_seconds_;
  Histogram vcpu_cpu_seconds_;
  Histogram job_exits_;  // VM exits per job (bounds are counts, not seconds)
};

}  // namespace vmfork::pool
