// Cost of the job-thread seccomp filter (vmm/seccomp.h) on one system call: ns per gettid()
// and per read() of 0 bytes, before and after the calling thread is confined. A job thread makes
// ~20 system calls per served job (strace, docs/performance.md "seccomp"), so the job's cost is
// ~20 x the difference. Figures, not pass/fail. Thread-safety: single-threaded.
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "vmm/seccomp.h"

namespace {

template <typename F>
double ns_per_call(F f, int n) {
  auto a = std::chrono::steady_clock::now();
  for (int i = 0; i < n; i++) f();
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - a).count() / n;
}

}  // namespace

int main() {
  constexpr int kCalls = 2'000'000;
  char c;
  auto tid = [] { syscall(SYS_gettid); };
  auto rd = [&] { (void)!read(STDIN_FILENO, &c, 0); };
  double tid0 = ns_per_call(tid, kCalls), rd0 = ns_per_call(rd, kCalls);
  if (!vmfork::vmm::confine_job_thread().ok()) return 1;
  double tid1 = ns_per_call(tid, kCalls), rd1 = ns_per_call(rd, kCalls);
  printf("gettid: %.1f ns unconfined, %.1f ns confined (+%.1f ns)\n", tid0, tid1, tid1 - tid0);
  printf("read(0 bytes): %.1f ns unconfined, %.1f ns confined (+%.1f ns)\n", rd0, rd1, rd1 - rd0);
  return 0;
}
