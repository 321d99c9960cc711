// Tasks and the round-robin scheduler (see sched.h, task.h). Runnable tasks sit on one circular
// run queue; a blocked task is off it, on at most one WaitQueue, with an optional deadline. When
// nothing is runnable the vCPU sleeps in the VMM (kReqSleep) until the earliest deadline.
// Preemption: while more than one task is runnable, a task sleeps with a deadline or a timer is
// armed, the kernel asks the VMM for ticks (Channel.tick_ns, docs/guest-abi.md "Preemption").
#include "kernel/sched.h"

#include "arch/arch.h"
#include "fs/files.h"
#include "fs/loader.h"
#include "kernel.h"
#include "kernel/clock.h"
#include "kernel/signal.h"
#include "kernel/task.h"
#include "kernel/timer.h"
#include "linux_abi.h"
#include "mm/kmalloc.h"
#include "mm/mm.h"
#include "mm/pmm.h"

extern "C" uint64_t g_kstack_top;
extern "C" char fork_return[];
extern "C" char tick_trampoline[];
extern "C" void switch_to(uint64_t* prev_ksp, uint64_t next_ksp);

namespace k::sched {
namespace {

// The boot context becomes task 1; it keeps running on the boot stack until it first blocks.
extern "C" char kernel_stack_top[];

Task* g_current;
Task* g_all;                  // every live task, linked through all_next/all_prev
Process* g_procs;             // every process (alive or zombie)
Task* g_rq;                   // some runnable task (the queue is circular)
int g_nrunnable;
int g_nprocs;
Task* g_dead;                 // exited task to free once another task runs
int32_t g_next_id = 2;
uint64_t g_slice_start_tsc;
constexpr uint64_t kTickNs = 10000000;  // time slice and tick period: 10 ms (docs/performance.md)
constexpr int32_t kDefaultMaxProcs = 256;

// ---- Kernel stacks: 16 KiB slots carved out of 2 MiB pages (physically contiguous) --------
struct FreeStack { FreeStack* next; };
FreeStack* g_free_stacks;

uint8_t* alloc_kstack() {
  if (!g_free_stacks) {
    uint64_t chunk = pmm::alloc_huge();
    if (!chunk) return nullptr;
    for (uint64_t off = 0; off < pmm::kHugePage; off += kStackBytes) {
      auto* s = phys<FreeStack>(chunk + off);
      s->next = g_free_stacks;
      g_free_stacks = s;
    }
  }
  FreeStack* s = g_free_stacks;
  g_free_stacks = s->next;
  return reinterpret_cast<uint8_t*>(s);
}

void free_kstack(uint8_t* p) {
  auto* s = reinterpret_cast<FreeStack*>(p);
  s->next = g_free_stacks;
  g_free_stacks = s;
}

// The boot stack's top 16 KiB serve as task 1's kernel stack (never freed).
uint8_t* boot_kstack() { return reinterpret_cast<uint8_t*>(reinterpret_cast<uint64_t>(kernel_stack_top) - kStackBytes); }

uint64_t stack_top(Task* t) { return reinterpret_cast<uint64_t>(t->kstack) + kStackBytes - 8; }

// ---- Run queue ----------------------------------------------------------------------------
void rq_add(Task* t) {
  if (!g_rq) {
    t->rq_next = t->rq_prev = t;
    g_rq = t;
  } else {
    t->rq_next = g_rq;
    t->rq_prev = g_rq->rq_prev;
    g_rq->rq_prev->rq_next = t;
    g_rq->rq_prev = t;
  }
  g_nrunnable++;
}

void rq_remove(Task* t) {
  if (t->rq_next == t) {
    g_rq = nullptr;
  } else {
    t->rq_prev->rq_next = t->rq_next;
    t->rq_next->rq_prev = t->rq_prev;
    if (g_rq == t) g_rq = t->rq_next;
  }
  t->rq_next = t->rq_prev = nullptr;
  g_nrunnable--;
}

void wq_remove(Task* t) {
  WaitQueue* q = t->wq;
  if (!q) return;
  Task* prev = nullptr;
  for (Task* w = q->first; w; prev = w, w = w->wq_next) {
    if (w != t) continue;
    if (prev) prev->wq_next = w->wq_next;
    else q->first = w->wq_next;
    if (q->last == w) q->last = prev;
    break;
  }
  t->wq = nullptr;
  t->wq_next = nullptr;
}

// Makes a blocked task runnable with `result` (0 woken, 1 timed out, 2 interrupted).
void unblock(Task* t, int8_t result) {
  if (t->state != Task::kBlocked) return;
  wq_remove(t);
  t->wake_at_ns = 0;
  t->wait_result = result;
  t->state = Task::kRunnable;
  rq_add(t);
}

// ---- Ticks --------------------------------------------------------------------------------
bool timers_armed() {
  for (Process* p = g_procs; p; p = p->all_next) {
    if (p->zombie) continue;
    if (p->itimer[0].next_ns || p->itimer[1].next_ns || p->itimer[2].next_ns) return true;
    bool armed;
    timer::earliest(p, &armed);
    if (armed) return true;
  }
  return false;
}

bool sleepers() {
  for (Task* t = g_all; t; t = t->all_next)
    if (t->state == Task::kBlocked && t->wake_at_ns) return true;
  return false;
}

// Ticks are wanted while a running task could keep another from its turn or its deadline.
void update_ticks() {
  bool want = g_nrunnable > 1 || timers_armed() || sleepers();
  if (!want) {
    chan->tick_ns = 0;  // the VMM stops its timer at the next firing
    return;
  }
  chan->tick_entry = reinterpret_cast<uint64_t>(tick_trampoline);
  chan->tick_ns = kTickNs;
  if (!chan->tick_armed) ring(kReqTick);
}

// Fires expired interval timers (setitimer(2)): SIGALRM, SIGVTALRM, SIGPROF.
void run_timers(uint64_t now) {
  static constexpr int kSig[3] = {14, 26, 27};  // SIGALRM, SIGVTALRM, SIGPROF
  for (Process* p = g_procs; p; p = p->all_next) {
    if (p->zombie) continue;
    for (int i = 0; i < 3; i++) {
      ITimer& it = p->itimer[i];
      if (!it.next_ns) continue;
      uint64_t t = i == 0 ? now : process_cpu_ns(p);
      if (t < it.next_ns) continue;
      it.next_ns = it.interval_ns ? t + it.interval_ns : 0;
      signal::send_process(p, kSig[i], signal::kCodeKernel, 0);
    }
    timer::run(p, now);
  }
}

// Wakes tasks whose deadline passed and fires timers.
void run_deadlines() {
  uint64_t now = clock::monotonic_ns();
  for (Task* t = g_all; t; t = t->all_next)
    if (t->state == Task::kBlocked && t->wake_at_ns && t->wake_at_ns <= now) unblock(t, 1);
  run_timers(now);
}

// Nothing is runnable: sleep in the VMM until the earliest deadline. With no deadline at all,
// every task waits for another one: a deadlock, which ends the job (rather than hanging until
// the VMM's timeout).
void idle() {
  uint64_t earliest = ~0ull;
  for (Task* t = g_all; t; t = t->all_next)
    if (t->state == Task::kBlocked && t->wake_at_ns && t->wake_at_ns < earliest) earliest = t->wake_at_ns;
  for (Process* p = g_procs; p; p = p->all_next) {
    if (p->zombie) continue;
    if (p->itimer[0].next_ns && p->itimer[0].next_ns < earliest) earliest = p->itimer[0].next_ns;
    bool armed;
    uint64_t e = timer::earliest(p, &armed);
    if (e < earliest) earliest = e;
  }
  if (earliest == ~0ull) {
    files::flush();
    const char msg[] = "deadlock: every task of the job waits and none has a deadline";
    memcpy(chan->panic_msg, msg, sizeof msg);
    end_job(kReqSignal, SIGKILL);
  }
  uint64_t now = clock::monotonic_ns();
  if (earliest > now) {
    files::flush();
    chan->sleep_until_ns = clock::realtime_ns() + (earliest - now);
    ring(kReqSleep);
  }
}

void account(Task* t) {
  uint64_t now = arch::rdtsc();
  if (t->ran_since_tsc && now > t->ran_since_tsc) t->cpu_ns += clock::tsc_to_ns(now - t->ran_since_tsc);
  t->ran_since_tsc = now;
}

// Frees a task that exited (never the current one: its stack is in use until the switch).
void free_task(Task* t) {
  for (Task* o = g_all; o; o = o->all_next)
    if (o->vfork_parent == t) o->vfork_parent = nullptr;  // its vfork parent is gone
  if (t->all_prev) t->all_prev->all_next = t->all_next;
  else g_all = t->all_next;
  if (t->all_next) t->all_next->all_prev = t->all_prev;
  if (t->kstack != boot_kstack()) free_kstack(t->kstack);
  mm::kpage_free(t);
}

// Runs on the new task after every switch: frees the task that just exited and what its
// process no longer needs now that its address space is not loaded.
void after_switch() {
  if (Task* d = g_dead) {
    g_dead = nullptr;
    Process* p = d->proc;
    free_task(d);
    if (p->live_threads == 0 && p->space) {
      mm::space_put(p->space);
      p->space = nullptr;
    }
    if (p->live_threads == 0 && p->zombie && !p->parent) reap(p);
  }
}

void context_switch(Task* next) {
  Task* prev = g_current;
  account(prev);
  asm volatile("fxsave64 %0" : "=m"(*reinterpret_cast<uint8_t(*)[512]>(prev->fpu)));
  if (next->proc->space != prev->proc->space) mm::space_activate(next->proc->space);
  if (next->proc->files != prev->proc->files) files::set_current_table(next->proc->files);
  if (next->proc->info != prev->proc->info) loader::set_current_info(next->proc->info);
  if (next->fs_base != prev->fs_base) arch::wrmsr(arch::kMsrFsBase, next->fs_base);
  asm volatile("fxrstor64 %0" ::"m"(*reinterpret_cast<const uint8_t(*)[512]>(next->fpu)));
  g_kstack_top = stack_top(next);
  g_current = next;
  next->ran_since_tsc = arch::rdtsc();
  g_slice_start_tsc = next->ran_since_tsc;
  switch_to(&prev->ksp, next->ksp);
  after_switch();
}

// Picks the next runnable task after the current one (round robin) and switches to it; sleeps
// while nothing is runnable. Returns when the current task runs again.
void schedule() {
  Task* next;
  for (;;) {
    run_deadlines();
    if (g_current->state == Task::kRunnable) next = g_current->rq_next;
    else next = g_rq;
    if (next) break;
    idle();
  }
  if (next != g_current) context_switch(next);
  update_ticks();
}

}  // namespace

Task* current() { return g_current; }

Regs* regs_of(Task* t) { return reinterpret_cast<Regs*>(stack_top(t) - sizeof(Regs)); }

Task* find_task(int32_t tid) {
  for (Task* t = g_all; t; t = t->all_next)
    if (t->tid == tid && t->state != Task::kDead) return t;
  return nullptr;
}

Process* find_process(int32_t pid) {
  for (Process* p = g_procs; p; p = p->all_next)
    if (p->pid == pid) return p;
  return nullptr;
}

Task* first_task() { return g_all; }
Task* next_task(Task* t) { return t->all_next; }
Process* first_process() { return g_procs; }
Process* next_process(Process* p) { return p->all_next; }
int process_count() { return g_nprocs; }

Process* new_process(Process* parent, bool* eagain) {
  *eagain = false;
  int32_t limit = boot->max_procs ? int32_t(boot->max_procs) : kDefaultMaxProcs;
  if (g_nprocs >= limit) {
    *eagain = true;
    return nullptr;
  }
  auto* p = static_cast<Process*>(mm::kpage_alloc());
  if (!p) return nullptr;
  static_assert(sizeof(Process) <= kPage, "Process must fit a page");
  p->pid = g_next_id++;
  p->parent = parent;
  if (parent) {
    p->pgid = parent->pgid;
    p->sid = parent->sid;
    p->sib_next = parent->child_first;
    parent->child_first = p;
  }
  p->all_next = g_procs;
  g_procs = p;
  g_nprocs++;
  return p;
}

void reap(Process* p) {
  if (Process* par = p->parent) {
    for (Process** pp = &par->child_first; *pp; pp = &(*pp)->sib_next)
      if (*pp == p) {
        *pp = p->sib_next;
        break;
      }
    par->children_cpu_ns += p->cpu_ns_dead + p->children_cpu_ns;
  }
  for (Process** pp = &g_procs; *pp; pp = &(*pp)->all_next)
    if (*pp == p) {
      *pp = p->all_next;
      break;
    }
  g_nprocs--;
  mm::kpage_free(p);
}

void init() {
  static_assert(sizeof(Task) <= kPage, "Task must fit a page");
  auto* t = static_cast<Task*>(mm::kpage_alloc());
  auto* p = static_cast<Process*>(mm::kpage_alloc());
  if (!t || !p) end_job(kReqMemLimit, 0);
  p->pid = p->pgid = p->sid = 1;
  p->live_threads = 1;
  p->exit_signal = 0;
  p->space = mm::current_space();
  p->files = files::current_table();
  p->info = loader::current_info();
  g_procs = p;
  g_nprocs = 1;
  t->tid = 1;
  t->proc = p;
  t->state = Task::kRunnable;
  t->kstack = boot_kstack();
  asm volatile("fxsave64 %0" : "=m"(*reinterpret_cast<uint8_t(*)[512]>(t->fpu)));
  g_all = t;
  g_current = t;
  rq_add(t);
  g_kstack_top = stack_top(t);
  t->ran_since_tsc = arch::rdtsc();
  g_slice_start_tsc = t->ran_since_tsc;
}

Task* spawn(Process* p, const Regs& regs, const uint8_t* fpu) {
  auto* t = static_cast<Task*>(mm::kpage_alloc());
  if (!t) return nullptr;
  t->kstack = alloc_kstack();
  if (!t->kstack) {
    mm::kpage_free(t);
    return nullptr;
  }
  t->tid = p->live_threads == 0 ? p->pid : g_next_id++;
  t->proc = p;
  p->live_threads++;
  memcpy(t->fpu, fpu, sizeof t->fpu);
  Regs* r = regs_of(t);
  *r = regs;
  // switch_to's frame: six callee-saved registers, then the return address fork_return.
  auto* sp = reinterpret_cast<uint64_t*>(r);
  *--sp = reinterpret_cast<uint64_t>(fork_return);
  for (int i = 0; i < 6; i++) *--sp = 0;
  t->ksp = reinterpret_cast<uint64_t>(sp);
  t->all_next = g_all;
  if (g_all) g_all->all_prev = t;
  g_all = t;
  t->state = Task::kRunnable;
  rq_add(t);
  update_ticks();
  return t;
}

extern "C" void task_first_entry(Regs* r) {
  after_switch();
  Task* t = g_current;
  if (t->set_child_tid) {
    uint32_t tid = uint32_t(t->tid);
    if (mm::user_ok(t->set_child_tid, 4, true)) memcpy(reinterpret_cast<void*>(t->set_child_tid), &tid, 4);
    t->set_child_tid = 0;
  }
  update_ticks();
  exit_to_user(r);
}

void maybe_preempt() {
  if (g_nrunnable < 2) return;
  if (clock::tsc_to_ns(arch::rdtsc() - g_slice_start_tsc) < kTickNs) return;
  schedule();
}

void yield() { schedule(); }

int64_t wait(WaitQueue* q, uint64_t deadline_ns) {
  Task* t = g_current;
  if (signal_pending()) return -EINTR;
  if (deadline_ns && deadline_ns <= clock::monotonic_ns()) return -ETIMEDOUT;
  t->wq = q;
  t->wq_next = nullptr;
  if (q) {
    if (q->last) q->last->wq_next = t;
    else q->first = t;
    q->last = t;
  }
  t->wake_at_ns = deadline_ns;
  t->wait_result = 0;
  t->state = Task::kBlocked;
  rq_remove(t);
  schedule();
  return t->wait_result == 1 ? -ETIMEDOUT : t->wait_result == 2 ? -EINTR : 0;
}

void wake_all(WaitQueue* q) {
  while (q->first) unblock(q->first, 0);
}

bool wake_one(WaitQueue* q) {
  if (!q->first) return false;
  unblock(q->first, 0);
  return true;
}

int wake_if(WaitQueue* q, int max, bool (*match)(Task*, void*), void* arg) {
  int n = 0;
  for (Task* t = q->first; t && n < max;) {
    Task* next = t->wq_next;
    if (match(t, arg)) {
      unblock(t, 0);
      n++;
    }
    t = next;
  }
  return n;
}

bool signal_pending() { return signal::pending_for(g_current); }

void interrupt(Task* t) {
  if (t->state == Task::kBlocked && !t->uninterruptible) unblock(t, 2);
}

int64_t wait_uninterruptible(WaitQueue* q) {
  Task* t = g_current;
  t->uninterruptible = true;
  t->wq = q;
  t->wq_next = nullptr;
  if (q->last) q->last->wq_next = t;
  else q->first = t;
  q->last = t;
  t->wake_at_ns = 0;
  t->wait_result = 0;
  t->state = Task::kBlocked;
  rq_remove(t);
  schedule();
  t->uninterruptible = false;
  return 0;
}

int64_t sleep_until(uint64_t deadline_ns) {
  int64_t r = wait(nullptr, deadline_ns);
  return r == -ETIMEDOUT ? 0 : r;
}

void timers_changed() { update_ticks(); }

uint64_t task_cpu_ns(Task* t) {
  uint64_t ns = t->cpu_ns;
  if (t == g_current) {
    uint64_t now = arch::rdtsc();
    if (t->ran_since_tsc && now > t->ran_since_tsc) ns += clock::tsc_to_ns(now - t->ran_since_tsc);
  }
  return ns;
}

uint64_t process_cpu_ns(Process* p) {
  uint64_t ns = p->cpu_ns_dead;
  for (Task* t = g_all; t; t = t->all_next)
    if (t->proc == p && t->state != Task::kDead) ns += task_cpu_ns(t);
  return ns;
}

void kill_other_threads(Task* keep) {
  // Each other thread leaves through its own kernel stack (its blocked call returns -EINTR, its
  // exit_to_user sees `exiting`), so whatever its syscall holds (a pipe end, an epoll
  // reference) is released on the way out.
  for (Task* t = g_all; t; t = t->all_next) {
    if (t->proc != keep->proc || t == keep || t->state == Task::kDead) continue;
    t->exiting = true;
    t->uninterruptible = false;
    interrupt(t);
  }
}

bool wait_other_threads_gone(Task* self) {
  Process* p = self->proc;
  while (p->live_threads > 1) {
    if (self->exiting || p->exiting) return false;  // another thread's exec or exit won
    wait_uninterruptible(&p->thread_exit);
  }
  return !(self->exiting || p->exiting);
}

void exit_current() {
  Task* t = g_current;
  Process* p = t->proc;
  account(t);
  p->cpu_ns_dead += t->cpu_ns;
  p->live_threads--;
  wake_all(&p->thread_exit);
  t->state = Task::kDead;
  rq_remove(t);
  g_dead = t;
  schedule();
  panic("a dead task was scheduled");
}

void exit_to_user(Regs* r) {
  maybe_preempt();
  signal::deliver(r);
}

void tick(Regs* r) {
  static constexpr int kOrder[18] = {
      offsetof(Regs, rax) / 8, offsetof(Regs, rbx) / 8, offsetof(Regs, rcx) / 8, offsetof(Regs, rdx) / 8,
      offsetof(Regs, rsi) / 8, offsetof(Regs, rdi) / 8, offsetof(Regs, rbp) / 8, offsetof(Regs, rsp) / 8,
      offsetof(Regs, r8) / 8,  offsetof(Regs, r9) / 8,  offsetof(Regs, r10) / 8, offsetof(Regs, r11) / 8,
      offsetof(Regs, r12) / 8, offsetof(Regs, r13) / 8, offsetof(Regs, r14) / 8, offsetof(Regs, r15) / 8,
      offsetof(Regs, rip) / 8, offsetof(Regs, rflags) / 8};
  auto* words = reinterpret_cast<uint64_t*>(r);
  for (int i = 0; i < 18; i++) words[kOrder[i]] = chan->tick_regs[i];
  // The job's own flags only (CF PF AF ZF SF TF DF OF, and AC), with IF set: the channel is
  // job-writable, so IOPL/NT/VM must not come from it.
  r->rflags = (r->rflags & 0x40dd5) | 0x202;
  r->cs = kUserCs;
  r->ss = kUserDs;
  r->orig_rax = ~0ull;  // not a syscall: nothing to restart
  if (r->rip >= 0x800000000000ull) signal::die(11);  // only a job calling the pseudo-syscall itself
  run_deadlines();
  if (g_nrunnable > 1) schedule();
}

}  // namespace k::sched
