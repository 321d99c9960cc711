// Interrupts a vCPU thread's KVM_RUN at a deadline: a POSIX timer sends a signal to that thread
// (SIGEV_THREAD_ID), whose handler sets kvm_run.immediate_exit so that a signal landing just
// before KVM_RUN is not lost (Documentation/virt/kvm/api.rst, KVM_CAP_IMMEDIATE_EXIT).
// Thread-safety: arm and destroy on the vCPU thread; one armed deadline per thread.
#pragma once

#include "vmm/kvm_uapi.h"
#include <time.h>

#include <chrono>
#include <memory>

#include "common/status.h"

namespace vmfork::vmm {

class RunDeadline {
 public:
  /// Arms a one-shot timer for `deadline` on the calling thread, which runs `run`'s vCPU.
  /// Errors: timer_create / timer_settime / sigaction failed.
  static Result<std::unique_ptr<RunDeadline>> arm(kvm_run* run, std::chrono::steady_clock::time_point deadline);
  /// Also fires every `period_ns` before the deadline (0: only at the deadline), for preemption
  /// ticks; each firing makes KVM_RUN return EINTR. Errors: timer_settime failed.
  Status set_period(uint64_t period_ns, std::chrono::steady_clock::time_point deadline);
  uint64_t period_ns() const { return period_ns_; }
  ~RunDeadline();
  RunDeadline(const RunDeadline&) = delete;
  RunDeadline& operator=(const RunDeadline&) = delete;

 private:
  explicit RunDeadline(timer_t t) : timer_(t) {}
  timer_t timer_;
  uint64_t period_ns_ = 0;
};

}  // namespace vmfork::vmm
