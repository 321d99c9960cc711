// Tasks (threads) and processes of the job. A process owns an address space, a file table, its
// signal actions and its children; each of its threads is a Task with a kernel stack, saved user
// FPU state, its TLS base, a signal mask and pending set. Single vCPU; see sched.h for when the
// current task may change.
#pragma once

#include <stdint.h>

#include "kernel.h"
#include "kernel/sched.h"

namespace k::mm { struct Space; }
namespace k::files { struct Table; }
namespace k::loader { struct ProcInfo; }

namespace k::sched {

/// Linux struct k_sigaction for rt_sigaction(2) on x86-64 (handler, flags, restorer, mask).
struct SigAction {
  uint64_t handler;  // SIG_DFL 0, SIG_IGN 1, or the handler's address
  uint64_t flags;    // SA_*
  uint64_t restorer;
  uint64_t mask;     // bit (sig - 1)
};

/// One queued signal's siginfo fields (siginfo_t, include/uapi/asm-generic/siginfo.h).
struct SigInfo {
  int32_t signo, code;
  int32_t pid;            // kill: the sender; SIGCHLD: the child
  int32_t status;         // SIGCHLD: si_status
  uint64_t addr;          // faults: si_addr; timers: si_value
};

struct Process;

struct Task {
  int32_t tid;
  enum State : uint8_t { kRunnable, kBlocked, kDead } state;
  bool exiting;              // exit_group or a fatal signal: leave at the next kernel exit
  Process* proc;
  // Kernel stack (kStackBytes) and the stack pointer switch_to saved.
  uint8_t* kstack;
  uint64_t ksp;
  // Run queue (circular, runnable tasks only) and the list of all tasks.
  Task *rq_next, *rq_prev;
  Task *all_next, *all_prev;
  // Blocking: the queue waited on (nullptr for a plain sleep), FIFO links, deadline.
  WaitQueue* wq;
  Task* wq_next;
  uint64_t wake_at_ns;       // CLOCK_MONOTONIC deadline, 0 = none
  int8_t wait_result;        // 0 woken, 1 timed out, 2 interrupted
  uint64_t futex_key;        // guest-physical address of the futex word waited on
  uint32_t futex_bitset;
  // Thread state (clone(2), set_tid_address(2), set_robust_list(2)).
  uint64_t fs_base;
  uint64_t clear_child_tid;
  uint64_t robust_list;
  // Signals (signal(7)): blocked mask, thread-directed pending set and their siginfo.
  uint64_t sigmask;
  uint64_t pending;
  SigInfo info[64];
  uint64_t saved_mask;       // rt_sigsuspend / pselect: restore after the handler runs
  bool restore_mask;
  uint64_t altstack_sp, altstack_size;
  int32_t altstack_flags;
  // CPU time: ns run so far and the TSC when it last got the vCPU.
  uint64_t cpu_ns;
  uint64_t ran_since_tsc;
  // vfork(2): the parent task waiting for this child to exec or exit.
  Task* vfork_parent;
  bool vfork_done;           // (in the parent) its vfork child let it go
  bool uninterruptible;      // blocked in a wait signals must not end (vfork)
  uint64_t set_child_tid;    // CLONE_CHILD_SETTID: written in the child's memory at its first run
  alignas(16) uint8_t fpu[512];  // FXSAVE image (Intel SDM vol. 1, 10.5.1)
};

/// An interval timer (setitimer(2)) or alarm: next expiry and period, 0 = disarmed.
struct ITimer {
  uint64_t next_ns;   // CLOCK_MONOTONIC for ITIMER_REAL, process CPU ns for the others
  uint64_t interval_ns;
};

struct Process {
  Process* all_next;         // list of every process
  int32_t pid, pgid, sid;
  Process* parent;
  Process *child_first, *sib_next;  // children, linked through sib_next
  int32_t live_threads;
  bool zombie;               // exited, waiting for the parent's wait4
  bool exiting;              // exit_group in progress: threads leave at their next kernel exit
  int32_t wait_status;       // wait(2) status word once zombie
  int32_t exit_signal;       // clone's exit signal for the parent (SIGCHLD normally)
  mm::Space* space;
  files::Table* files;
  loader::ProcInfo* info;
  uint64_t brk_start, brk;
  SigAction actions[64];     // by signal number - 1
  uint64_t pending;          // process-directed pending signals
  SigInfo info_shared[64];
  WaitQueue child_wait;      // wait4 callers; woken when a child changes state
  WaitQueue thread_exit;     // execve waiting for the other threads to leave
  ITimer itimer[3];          // ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF
  uint64_t cpu_ns_dead;      // CPU time of exited threads
  uint64_t children_cpu_ns;  // reaped children's CPU time (RUSAGE_CHILDREN)
  int32_t pdeath_signal;     // prctl(PR_SET_PDEATHSIG)
  void* ptimers;             // POSIX timers (kernel/timer.h), made on first timer_create
};

inline constexpr uint64_t kStackBytes = 16384;  // per task kernel stack

/// The task and process running now.
Task* current();
inline Process* current_proc() { return current()->proc; }
/// The task's Regs frame at the top of its kernel stack (what the job resumes with).
Regs* regs_of(Task* t);
/// Task by id, or nullptr. Process by id (its thread-group leader's tid), or nullptr.
Task* find_task(int32_t tid);
Process* find_process(int32_t pid);
/// Iterates all tasks: first, then next(t) until nullptr.
Task* first_task();
Task* next_task(Task* t);
/// Iterates all processes, alive and zombie.
Process* first_process();
Process* next_process(Process* p);
/// Frees a zombie process whose status was collected (or nobody will collect).
void reap(Process* p);
/// Asks every thread of `keep`'s process but `keep` to leave (exit_group, execve): each is
/// interrupted and exits at its next return towards the job.
void kill_other_threads(Task* keep);
/// Blocks (uninterruptibly) until `self` is the only thread of its process (execve); false if
/// `self` was itself told to leave meanwhile (another thread's exec or exit_group won).
bool wait_other_threads_gone(Task* self);
/// Wakes up to `max` waiters of `q` for which match(task, arg) holds; returns how many.
int wake_if(WaitQueue* q, int max, bool (*match)(Task*, void*), void* arg);
/// A preemption tick arrived (the kNrTick pseudo-syscall): load the job's registers the VMM
/// saved into `r`, fire timers, and switch tasks if another one is runnable.
void tick(Regs* r);
/// The pseudo-syscall number tick_trampoline (entry.S) uses.
inline constexpr uint64_t kNrTick = 0x7f564d01;

/// Makes the boot context the first task of process 1 (before the job's first instruction).
void init();
/// A new task for process `p`, runnable, that resumes in the job with `regs` and FPU state
/// `fpu` (512 bytes). nullptr when guest memory ran out.
Task* spawn(Process* p, const Regs& regs, const uint8_t* fpu);
/// A new process (zeroed state, pid allocated, linked under `parent`), or nullptr (-ENOMEM)
/// / nullptr with *eagain when --max-procs is reached.
Process* new_process(Process* parent, bool* eagain);
/// Number of processes alive or zombie (for the --max-procs limit and /proc).
int process_count();

/// Gives up the vCPU if the time slice ran out and another task is runnable.
void maybe_preempt();
/// Gives up the vCPU to the next runnable task (sched_yield).
void yield();
/// Ends the current task (it never runs again). Frees it once another task runs.
[[noreturn]] void exit_current();
/// wait() that signals do not interrupt (vfork's parent).
int64_t wait_uninterruptible(WaitQueue* q);
/// Makes `t` runnable if it is blocked (a signal arrived): its wait returns -EINTR.
void interrupt(Task* t);
/// Sleeps the current task until CLOCK_MONOTONIC `deadline_ns`: 0 or -EINTR.
int64_t sleep_until(uint64_t deadline_ns);
/// The ITIMER/alarm timers changed: recompute whether ticks are needed.
void timers_changed();
/// CPU time of the current task, up to now, in ns.
uint64_t task_cpu_ns(Task* t);
uint64_t process_cpu_ns(Process* p);

/// Per-task work before returning to the job: preemption and signal delivery.
void exit_to_user(Regs* r);

}  // namespace k::sched
