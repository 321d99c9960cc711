// Prometheus counters and histograms (see metrics.h).
#include "pool/metrics.h"

#include <cstdio>

namespace vmfork::pool {

namespace {

// Restores from a memfd take tens of microseconds to milliseconds; a job's whole path from
// under a millisecond to its timeout.
const std::vector<double> kRestoreBounds = {25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3,
                                            5e-3,  10e-3, 25e-3,  50e-3,  0.1,    0.25, 1};
const std::vector<double> kJobBounds = {250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 0.1,
                                        0.25,   0.5,    1,    2.5,    5,    10,    30,    60,    300};

// Every reason a run request can fail for, so each series exists from the start (a counter
// that appears only after its first increment hides that first event from rate()).
const char* const kFailureReasons[] = {"timeout", "crashed",          "output-limit", "memory-limit",
                                       "busy",    "bad_request",      "unknown_template", "internal"};

std::string number(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

// A label value with \, " and newline escaped as the exposition format requires.
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void header(std::string* out, const char* name, const char* type, const char* help) {
  *out += "# HELP ";
  *out += name;
  *out += ' ';
  *out += help;
  *out += "\n# TYPE ";
  *out += name;
  *out += ' ';
  *out += type;
  *out += '\n';
}

void sample(std::string* out, const std::string& series, double v) { *out += series + ' ' + number(v) + '\n'; }

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) i++;
  counts_[i]++;
  sum_ += value;
  count_++;
}

void Histogram::render(const std::string& name, std::string* out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts_.size(); i++) {
    cumulative += counts_[i];
    std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
    sample(out, name + "_bucket{le=\"" + le + "\"}", double(cumulative));
  }
  sample(out, name + "_sum", sum_);
  sample(out, name + "_count", double(count_));
}

Metrics::Metrics() : restore_seconds_(kRestoreBounds), job_seconds_(kJobBounds), vcpu_cpu_seconds_(kJobBounds),
      job_exits_({1, 2, 3, 4, 8, 16, 64, 256}) {
  for (const char* r : kFailureReasons) failures_[r] = 0;
}

void Metrics::job_finished(std::string_view reason) {
  std::lock_guard lock(mu_);
  jobs_++;
  if (reason != "exited") failures_[std::string(reason)]++;
}

void Metrics::request_failed(std::string_view code) {
  std::lock_guard lock(mu_);
  jobs_++;
  failures_[std::string(code)]++;
}

void Metrics::observe_restore(double seconds) {
  std::lock_guard lock(mu_);
  restore_seconds_.observe(seconds);
}

void Metrics::observe_exits(uint64_t exits) {
  std::lock_guard lock(mu_);
  job_exits_.observe(double(exits));
}

void Metrics::observe_job(double seconds) {
  std::lock_guard lock(mu_);
  job_seconds_.observe(seconds);
}

void Metrics::observe_vcpu_cpu(double seconds) {
  std::lock_guard lock(mu_);
  vcpu_cpu_seconds_.observe(seconds);
}

std::string Metrics::render(std::span<const PoolGauge> pools, size_t queue_depth, size_t jobs_running) const {
  std::string out;
  std::lock_guard lock(mu_);
  header(&out, "vmfork_jobs_total", "counter", "Run requests answered, with a job result or an error.");
  sample(&out, "vmfork_jobs_total", double(jobs_));
  header(&out, "vmfork_job_failures_total", "counter",
         "Run requests whose job did not exit normally (timeout, crashed, output-limit, memory-limit) "
         "or that got an error answer (busy, bad_request, unknown_template, internal).");
  for (const auto& [reason, n] : failures_)
    sample(&out, "vmfork_job_failures_total{reason=\"" + label(reason) + "\"}", double(n));

  struct PoolSeries {
    const char* name;
    const char* type;
    const char* help;
    uint64_t PoolStats::*field;
  };
  const PoolSeries series[] = {
      {"vmfork_pool_restores_total", "counter", "Clones restored by the pool's refill thread.", &PoolStats::restores},
      {"vmfork_pool_restore_failures_total", "counter", "Clone restores that failed (the clone was discarded).",
       &PoolStats::restore_failures},
      {"vmfork_pool_resets_total", "counter", "Clones reset in place for reuse (--mode reset).", &PoolStats::resets},
      {"vmfork_pool_reset_failures_total", "counter", "In-place resets that failed (the clone was discarded).",
       &PoolStats::reset_failures},
      {"vmfork_pool_acquire_waits_total", "counter", "Jobs that found no ready clone and waited for one.",
       &PoolStats::acquire_waits},
  };
  header(&out, "vmfork_pool_ready", "gauge", "Clones restored, paused and ready for a job.");
  for (const auto& p : pools)
    sample(&out, "vmfork_pool_ready{template=\"" + label(p.template_name) + "\"}", double(p.stats.ready));
  for (const auto& s : series) {
    header(&out, s.name, s.type, s.help);
    for (const auto& p : pools)
      sample(&out, std::string(s.name) + "{template=\"" + label(p.template_name) + "\"}", double(p.stats.*s.field));
  }

  header(&out, "vmfork_queue_depth", "gauge", "Accepted run requests waiting for a worker.");
  sample(&out, "vmfork_queue_depth", double(queue_depth));
  header(&out, "vmfork_jobs_running", "gauge", "Jobs a worker is running right now.");
  sample(&out, "vmfork_jobs_running", double(jobs_running));
  header(&out, "vmfork_restore_seconds", "histogram", "Time to restore the clone a job ran in (off the job's path).");
  restore_seconds_.render("vmfork_restore_seconds", &out);
  header(&out, "vmfork_job_seconds", "histogram", "Run requests from accepted to response ready.");
  job_seconds_.render("vmfork_job_seconds", &out);
  header(&out, "vmfork_job_vm_exits", "histogram",
         "Returns from KVM_RUN per job that ran: exits to vmfork, deadline kicks and preemption ticks.");
  job_exits_.render("vmfork_job_vm_exits", &out);
  header(&out, "vmfork_job_vcpu_cpu_seconds", "histogram",
         "CPU time of each job's vCPU thread, measured by the host (guest cannot change it).");
  vcpu_cpu_seconds_.render("vmfork_job_vcpu_cpu_seconds", &out);
  return out;
}

}  // namespace vmfork::pool
