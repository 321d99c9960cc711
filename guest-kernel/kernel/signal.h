// Signals (signal(7)): sending, the default actions, handler frames on the job's stack
// (x86-64 struct rt_sigframe, arch/x86/include/asm/sigframe.h) and rt_sigreturn, and the
// signal syscalls. Standard and real-time signals alike are kept as one pending bit each (a
// second real-time signal of a number already pending is merged, unlike Linux's queue).
#pragma once

#include <stdint.h>

#include "kernel.h"
#include "kernel/task.h"

namespace k::signal {

/// si_code values (include/uapi/asm-generic/siginfo.h).
inline constexpr int32_t kCodeUser = 0;       // SI_USER: kill(2)
inline constexpr int32_t kCodeKernel = 0x80;  // SI_KERNEL
inline constexpr int32_t kCodeTkill = -6;     // SI_TKILL: tgkill(2)
inline constexpr int32_t kCodeTimer = -2;     // SI_TIMER

/// Sends `sig` (1..64) to process `p` (any thread that does not block it takes it).
void send_process(sched::Process* p, int sig, int32_t code, uint64_t addr, int32_t pid = 0);
/// Sends `sig` to thread `t`.
void send_task(sched::Task* t, int sig, int32_t code, uint64_t addr, int32_t pid = 0);
/// True if `t` has a pending signal it does not block (blocking calls return -EINTR).
bool pending_for(sched::Task* t);
/// Delivers pending signals to the current task before it returns to the job: runs default
/// actions (which may end the process) or builds a handler frame in `r`. Also restarts or fails
/// an interrupted syscall (r->rax == -ERESTARTSYS) per SA_RESTART.
void deliver(Regs* r);
/// A fault the job took (vector, error code, CR2): delivers SIGSEGV/SIGBUS/SIGFPE/SIGILL/SIGTRAP
/// to a handler; returns false when the job has none (the caller reports a crash).
bool on_fault(Regs* r, uint64_t vector, uint64_t error, uint64_t addr);
/// The process's wait status and its end for a fatal signal's default action: ends the job if it
/// is process 1.
[[noreturn]] void die(int sig);

/// Syscalls: rt_sigaction, rt_sigprocmask, rt_sigreturn, sigaltstack, rt_sigpending,
/// rt_sigsuspend, rt_sigtimedwait, kill, tkill, tgkill. True if `nr` was one of them.
bool dispatch(uint64_t nr, const uint64_t a[6], Regs* r, int64_t* ret);

/// Linux's internal "restart this syscall" result (include/linux/errno.h); never reaches the job.
inline constexpr int64_t kErestartSys = 512;

}  // namespace k::signal
