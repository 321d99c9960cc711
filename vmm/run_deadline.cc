// vCPU deadline timer (see run_deadline.h).
#include "vmm/run_deadline.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

namespace vmfork::vmm {

namespace {
thread_local kvm_run* tl_run = nullptr;
int kick_signal() { return SIGRTMIN + 4; }

void on_kick(int) {
  if (kvm_run* r = tl_run) r->immediate_exit = 1;  // async-signal-safe: one byte store
}

Status install_handler() {
  static std::once_flag once;
  static int err = 0;
  std::call_once(once, [] {
    struct sigaction sa{};
    sa.sa_handler = on_kick;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    if (sigaction(kick_signal(), &sa, nullptr) < 0) err = errno;
  });
  if (err) return Error{"sigaction for the vCPU kick signal", err};
  return {};
}
}  // namespace

Result<std::unique_ptr<RunDeadline>> RunDeadline::arm(kvm_run* run, std::chrono::steady_clock::time_point deadline) {
  VF_TRY(install_handler());
  tl_run = run;
  run->immediate_exit = 0;
  sigevent sev{};
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = kick_signal();
  sev._sigev_un._tid = pid_t(syscall(SYS_gettid));
  timer_t t;
  if (timer_create(CLOCK_MONOTONIC, &sev, &t) < 0) return errno_error("timer_create");
  auto left = deadline - std::chrono::steady_clock::now();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
  if (ns < 1) ns = 1;
  itimerspec its{};
  its.it_value.tv_sec = ns / 1000000000;
  its.it_value.tv_nsec = ns % 1000000000;
  if (timer_settime(t, 0, &its, nullptr) < 0) {
    int e = errno;
    timer_delete(t);
    return Error{"timer_settime", e};
  }
  return std::unique_ptr<RunDeadline>(new RunDeadline(t));
}

Status RunDeadline::set_period(uint64_t period_ns, std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now()).count();
  int64_t first = left < 1 ? 1 : left;
  if (period_ns && int64_t(period_ns) < first) first = int64_t(period_ns);
  itimerspec its{};
  its.it_value.tv_sec = first / 1000000000;
  its.it_value.tv_nsec = first % 1000000000;
  its.it_interval.tv_sec = int64_t(period_ns / 1000000000);
  its.it_interval.tv_nsec = int64_t(period_ns % 1000000000);
  if (timer_settime(timer_, 0, &its, nullptr) < 0) return errno_error("timer_settime");
  period_ns_ = period_ns;
  return {};
}

RunDeadline::~RunDeadline() {
  timer_delete(timer_);
  tl_run = nullptr;
}

}  // namespace vmfork::vmm
