// Process and thread lifecycle (see process.h). clone flags: include/uapi/linux/sched.h; wait
// status words: wait(2) and include/uapi/linux/wait.h; orphans are reaped automatically (as if
// their new parent ignored SIGCHLD), so a job that never waits leaks no process slots.
#include "kernel/process.h"

#include "arch/arch.h"
#include "fs/files.h"
#include "fs/jobfiles.h"
#include "fs/loader.h"
#include "kernel/futex.h"
#include "kernel/signal.h"
#include "kernel/task.h"
#include "kernel/timer.h"
#include "linux_abi.h"
#include "mm/mm.h"

namespace k::process {
namespace {

using sched::Process;
using sched::Task;

constexpr uint64_t CLONE_VM = 0x100, CLONE_FS = 0x200, CLONE_FILES = 0x400, CLONE_SIGHAND = 0x800,
                   CLONE_PIDFD = 0x1000, CLONE_VFORK = 0x4000, CLONE_PARENT = 0x8000,
                   CLONE_THREAD = 0x10000, CLONE_NEWNS = 0x20000, CLONE_SETTLS = 0x80000,
                   CLONE_PARENT_SETTID = 0x100000, CLONE_CHILD_CLEARTID = 0x200000,
                   CLONE_CHILD_SETTID = 0x1000000, CLONE_NEW_ANY = 0x7e020000ull & ~0x0ull,
                   CLONE_CLEAR_SIGHAND = 0x100000000ull;
constexpr int SIGCHLD = 17;
constexpr int32_t CLD_EXITED = 1, CLD_KILLED = 2, CLD_DUMPED = 3;

sched::WaitQueue g_vfork_wait;

bool put_u32(uint64_t va, uint32_t v) {
  if (!mm::user_ok(va, 4, true)) return false;
  memcpy(reinterpret_cast<void*>(va), &v, 4);
  return true;
}

// The parent of a vfork child may go on: the child exec'd or is exiting.
void release_vfork(Task* t) {
  if (!t->vfork_parent) return;
  t->vfork_parent->vfork_done = true;
  t->vfork_parent = nullptr;
  sched::wake_all(&g_vfork_wait);
}

int64_t do_clone(uint64_t flags, uint64_t stack, uint64_t parent_tid, uint64_t child_tid, uint64_t tls,
                 int exit_signal, Regs* r) {
  if ((flags & CLONE_THREAD) && !(flags & CLONE_SIGHAND)) return -EINVAL;
  if ((flags & CLONE_SIGHAND) && !(flags & CLONE_VM)) return -EINVAL;
  if (flags & (CLONE_NEW_ANY | CLONE_PIDFD)) return -EINVAL;  // namespaces, pidfds: not here
  if ((flags & CLONE_SETTLS) && tls >= 0x800000000000ull) return -EPERM;
  if (exit_signal < 0 || exit_signal > 64) return -EINVAL;  // valid_signal(), kernel/fork.c
  Task* self = sched::current();
  Process* cur = self->proc;
  Process* p = cur;
  if (!(flags & CLONE_THREAD)) {
    bool eagain;
    Process* parent = (flags & CLONE_PARENT) && cur->parent ? cur->parent : cur;
    p = sched::new_process(parent, &eagain);
    if (!p) return eagain ? -EAGAIN : -ENOMEM;
    p->exit_signal = exit_signal;
    memcpy(p->actions, cur->actions, sizeof p->actions);
    if (flags & CLONE_CLEAR_SIGHAND)
      for (auto& a : p->actions)
        if (a.handler > 1) a.handler = 0;
    p->brk_start = cur->brk_start;
    p->brk = cur->brk;
    if (flags & CLONE_VM) {
      p->space = cur->space;
      mm::space_get(p->space);
    } else {
      p->space = mm::space_fork(cur->space);
    }
    if (flags & CLONE_FILES) {
      p->files = cur->files;
      files::table_get(p->files);
    } else {
      p->files = files::table_fork(cur->files);
    }
    p->info = loader::info_clone(cur->info);
    if (!p->space || !p->files || !p->info) {
      if (p->space) mm::space_put(p->space);
      if (p->files) files::table_put(p->files);
      if (p->info) loader::info_free(p->info);
      p->zombie = true;
      sched::reap(p);
      return -ENOMEM;
    }
  }
  Regs child = *r;
  child.rax = 0;
  if (stack) child.rsp = stack;
  alignas(16) uint8_t fpu[512];
  asm volatile("fxsave64 %0" : "=m"(fpu));
  Task* t = sched::spawn(p, child, fpu);
  if (!t) {
    if (p != cur) {
      mm::space_put(p->space);
      files::table_put(p->files);
      loader::info_free(p->info);
      p->zombie = true;
      sched::reap(p);
    }
    return -ENOMEM;
  }
  t->fs_base = (flags & CLONE_SETTLS) ? tls : self->fs_base;
  t->sigmask = self->sigmask;
  if (!(flags & CLONE_VM) || (flags & CLONE_VFORK)) {
    t->altstack_sp = self->altstack_sp;
    t->altstack_size = self->altstack_size;
    t->altstack_flags = self->altstack_flags;
  }
  if (flags & CLONE_CHILD_SETTID) t->set_child_tid = child_tid;
  if (flags & CLONE_CHILD_CLEARTID) t->clear_child_tid = child_tid;
  if (flags & CLONE_PARENT_SETTID) put_u32(parent_tid, uint32_t(t->tid));
  int32_t tid = t->tid;
  if (flags & CLONE_VFORK) {
    t->vfork_parent = self;
    self->vfork_done = false;
    while (!self->vfork_done && !self->exiting && !cur->exiting) sched::wait_uninterruptible(&g_vfork_wait);
  }
  return tid;
}

int64_t sys_clone3(uint64_t uargs, uint64_t size, Regs* r) {
  // struct clone_args (include/uapi/linux/sched.h): 64 bytes in v0, 88 with set_tid, 96 cgroup.
  uint64_t a[11] = {};
  if (size < 64 || size > 4096) return -EINVAL;
  uint64_t n = size < sizeof a ? size : sizeof a;
  if (!mm::user_ok(uargs, n, false)) return -EFAULT;
  memcpy(a, reinterpret_cast<const void*>(uargs), n);
  uint64_t flags = a[0], exit_signal = a[4], stack = a[5], stack_size = a[6];
  if (exit_signal > 64 || (a[8] | a[9])) return -EINVAL;  // set_tid: not supported
  if (stack && !stack_size) return -EINVAL;
  return do_clone(flags, stack ? stack + stack_size : 0, a[3], a[2], a[7], int(exit_signal), r);
}

// execve(2)/execveat(2): everything that can fail with an errno is checked by exec_prepare
// before the process changes; after it, only running out of memory can stop the exec (the
// process is then killed, as Linux does past its point of no return).
int64_t sys_execve(int64_t dirfd, uint64_t upath, uint64_t uargv, uint64_t uenvp, uint64_t flags, Regs* r) {
  loader::ExecImage* img;
  int64_t err = loader::exec_prepare(dirfd, upath, uargv, uenvp, flags, &img);
  if (err) return err;
  Task* t = sched::current();
  Process* p = t->proc;
  sched::kill_other_threads(t);
  if (!sched::wait_other_threads_gone(t)) {
    loader::exec_free(img);
    exit_thread_now();
  }
  t->tid = p->pid;  // the exec'ing thread becomes the leader (execve(2), "All threads ...")
  mm::Space* fresh = mm::space_create();
  if (!fresh) {
    loader::exec_free(img);
    signal::die(9);
  }
  mm::Space* old = p->space;
  // The new program is mapped into the fresh space while it is only staged (not in CR3), so its
  // page-table writes do not trap; exec_commit loads it before it writes the stack.
  mm::space_stage(fresh);
  p->space = fresh;
  files::close_on_exec(p->files);
  timer::release(p);  // execve(2): POSIX timers are not preserved
  p->brk_start = p->brk = 0;
  for (auto& a : p->actions)
    if (a.handler > 1) a = {};  // handlers do not survive the exec; ignored signals stay ignored
  t->altstack_sp = t->altstack_size = 0;
  t->altstack_flags = 2;  // SS_DISABLE
  t->robust_list = 0;
  t->clear_child_tid = 0;
  t->fs_base = 0;
  arch::wrmsr(arch::kMsrFsBase, 0);
  uint64_t entry, sp;
  loader::exec_commit(img, &entry, &sp);
  mm::space_put(old);
  p->info = loader::current_info();
  release_vfork(t);
  // A fresh FPU (FNINIT, default MXCSR) and zeroed registers, as the psABI's process entry.
  uint32_t mxcsr = 0x1f80;
  asm volatile("fninit; ldmxcsr %0" ::"m"(mxcsr));
  *r = Regs{};
  r->rip = entry;
  r->rsp = sp;
  r->rflags = 0x202;
  r->cs = kUserCs;
  r->ss = kUserDs;
  r->orig_rax = ~0ull;
  return 0;
}

// Process `p` ended (its last thread is leaving): tell its parent, hand its children over.
void process_exit(Process* p) {
  files::table_put(p->files);
  p->files = nullptr;
  loader::info_free(p->info);
  p->info = nullptr;
  p->zombie = true;
  p->itimer[0] = p->itimer[1] = p->itimer[2] = {};
  timer::release(p);
  for (Process* c = p->child_first; c;) {
    Process* next = c->sib_next;
    c->parent = nullptr;
    c->sib_next = nullptr;
    if (c->pdeath_signal) signal::send_process(c, c->pdeath_signal, signal::kCodeUser, 0);
    if (c->zombie && c->live_threads == 0) sched::reap(c);
    c = next;
  }
  p->child_first = nullptr;
  Process* par = p->parent;
  if (!par) return;
  sched::SigAction& a = par->actions[SIGCHLD - 1];
  constexpr uint64_t SA_NOCLDWAIT = 2;
  bool autoreap = a.handler == 1 || (a.flags & SA_NOCLDWAIT);
  if (p->exit_signal > 0 && p->exit_signal <= 64) {
    int st = p->wait_status;
    int32_t code = (st & 0x7f) == 0 ? CLD_EXITED : (st & 0x80) ? CLD_DUMPED : CLD_KILLED;
    signal::send_process(par, p->exit_signal, code, 0, p->pid);
    par->info_shared[p->exit_signal - 1].status = (st & 0x7f) ? (st & 0x7f) : (st >> 8) & 0xff;
  }
  if (autoreap) {
    for (Process** pp = &par->child_first; *pp; pp = &(*pp)->sib_next)
      if (*pp == p) {
        *pp = p->sib_next;
        break;
      }
    p->parent = nullptr;  // freed by the scheduler once its last task is gone
  }
  sched::wake_all(&par->child_wait);
}

[[noreturn]] void end_job_with(int32_t status) {
  files::flush();
  jobfiles::collect();
  if (status & 0x7f) end_job(kReqSignal, uint64_t(status & 0x7f));
  end_job(kReqExit, uint64_t((status >> 8) & 0xff));
}

// The current thread leaves; the last one ends its process with `status`.
[[noreturn]] void exit_thread(int32_t status) {
  Task* t = sched::current();
  Process* p = t->proc;
  if (p->live_threads == 1) {
    if (!p->exiting) p->wait_status = status;
    if (p->pid == 1) end_job_with(p->wait_status);
  }
  if (t->clear_child_tid && p->live_threads > 1) {
    // set_tid_address(2): write 0 and wake one waiter (pthread_join) while the memory is shared.
    if (put_u32(t->clear_child_tid, 0)) futex::wake(t->clear_child_tid, 1);
  }
  futex::exit_robust_list(t);
  release_vfork(t);
  if (p->live_threads == 1) process_exit(p);
  sched::exit_current();
}

bool child_matches(Process* c, int64_t pid, Process* self) {
  if (pid > 0) return c->pid == pid;
  if (pid == -1) return true;
  if (pid == 0) return c->pgid == self->pgid;
  return c->pgid == -pid;
}

// wait4/waitid: finds a matching child that ended. 0 with *out set, -ECHILD, or 0 with
// *out == nullptr (none ended yet).
int64_t find_child(int64_t pid, Process** out) {
  Process* self = sched::current_proc();
  bool any = false;
  *out = nullptr;
  for (Process* c = self->child_first; c; c = c->sib_next) {
    if (!child_matches(c, pid, self)) continue;
    any = true;
    if (c->zombie && c->live_threads == 0) {
      *out = c;
      return 0;
    }
  }
  return any ? 0 : -ECHILD;
}

constexpr uint64_t WNOHANG = 1, WEXITED = 4, WNOWAIT = 0x01000000;

int64_t sys_wait4(int64_t pid, uint64_t ustatus, uint64_t options, uint64_t urusage) {
  if (options & ~(WNOHANG | 2 | 8 | 0x20000000ull | 0x40000000ull | 0x80000000ull)) return -EINVAL;
  Process* self = sched::current_proc();
  for (;;) {
    Process* c;
    int64_t r = find_child(pid, &c);
    if (r) return r;
    if (c) {
      int32_t st = c->wait_status, cpid = c->pid;
      if (ustatus && !put_u32(ustatus, uint32_t(st))) return -EFAULT;
      if (urusage) {
        uint8_t ru[144] = {};
        uint64_t us = (c->cpu_ns_dead + c->children_cpu_ns) / 1000;
        int64_t tv[2] = {int64_t(us / 1000000), int64_t(us % 1000000)};
        memcpy(ru, tv, sizeof tv);
        if (!mm::user_ok(urusage, sizeof ru, true)) return -EFAULT;
        memcpy(reinterpret_cast<void*>(urusage), ru, sizeof ru);
      }
      sched::reap(c);
      return cpid;
    }
    if (options & WNOHANG) return 0;
    if (sched::wait(&self->child_wait, 0) == -EINTR) return -signal::kErestartSys;
  }
}

int64_t sys_waitid(uint64_t idtype, uint64_t id, uint64_t uinfo, uint64_t options) {
  if (!(options & WEXITED)) return -EINVAL;
  int64_t pid;
  switch (idtype) {
    case 0: pid = -1; break;               // P_ALL
    case 1: pid = int64_t(id); if (pid <= 0) return -EINVAL; break;  // P_PID
    case 2: pid = id ? -int64_t(id) : 0; break;  // P_PGID
    default: return -EINVAL;
  }
  Process* self = sched::current_proc();
  for (;;) {
    Process* c;
    int64_t r = find_child(pid, &c);
    if (r) return r;
    if (c || (options & WNOHANG)) {
      if (uinfo) {
        // siginfo_t: si_signo, si_errno, si_code, pad, si_pid, si_uid, si_status.
        int32_t info[32] = {};
        if (c) {
          int32_t st = c->wait_status;
          info[0] = SIGCHLD;
          info[2] = (st & 0x7f) == 0 ? CLD_EXITED : (st & 0x80) ? CLD_DUMPED : CLD_KILLED;
          info[4] = c->pid;
          info[5] = 1000;
          info[6] = (st & 0x7f) ? (st & 0x7f) : (st >> 8) & 0xff;
        }
        if (!mm::user_ok(uinfo, sizeof info, true)) return -EFAULT;
        memcpy(reinterpret_cast<void*>(uinfo), info, sizeof info);
      }
      if (c && !(options & WNOWAIT)) sched::reap(c);
      return 0;
    }
    if (sched::wait(&self->child_wait, 0) == -EINTR) return -signal::kErestartSys;
  }
}

int64_t sys_setpgid(int64_t pid, int64_t pgid) {
  Process* self = sched::current_proc();
  Process* p = pid ? sched::find_process(int32_t(pid)) : self;
  if (!p || (p != self && p->parent != self)) return -ESRCH;
  if (pgid < 0) return -EINVAL;
  p->pgid = pgid ? int32_t(pgid) : p->pid;
  return 0;
}

int64_t sys_getpgid(int64_t pid) {
  Process* p = pid ? sched::find_process(int32_t(pid)) : sched::current_proc();
  return p ? p->pgid : -ESRCH;
}

int64_t sys_getsid(int64_t pid) {
  Process* p = pid ? sched::find_process(int32_t(pid)) : sched::current_proc();
  return p ? p->sid : -ESRCH;
}

int64_t sys_setsid() {
  Process* p = sched::current_proc();
  if (p->pgid == p->pid) return -EPERM;  // already a group leader
  p->sid = p->pgid = p->pid;
  return p->sid;
}

}  // namespace

void exit_group_status(int32_t status) {
  Task* t = sched::current();
  Process* p = t->proc;
  if (p->pid == 1) end_job_with(status);
  if (!p->exiting) {
    p->exiting = true;
    p->wait_status = status;
  }
  sched::kill_other_threads(t);
  exit_thread(status);
}

void exit_thread_now() {
  Process* p = sched::current_proc();
  exit_thread(p->wait_status);
}

bool dispatch(uint64_t nr, const uint64_t a[6], Regs* r, int64_t* ret) {
  Task* t = sched::current();
  Process* p = t->proc;
  switch (nr) {
    case 56: {
      // Legacy clone takes the exit signal from the low byte; Linux accepts one above 64 and
      // then just does not notify the parent.
      int exit_signal = int(a[0] & 0xff);
      *ret = do_clone(a[0] & ~0xffull, a[1], a[2], a[3], a[4], exit_signal > 64 ? 0 : exit_signal, r);
      return true;
    }
    case 435: *ret = sys_clone3(a[0], a[1], r); return true;
    case 57: *ret = do_clone(0, 0, 0, 0, 0, SIGCHLD, r); return true;                      // fork
    case 58: *ret = do_clone(CLONE_VM | CLONE_VFORK, 0, 0, 0, 0, SIGCHLD, r); return true;  // vfork
    case 60: exit_thread(int32_t((a[0] & 0xff) << 8));
    case 231: exit_group_status(int32_t((a[0] & 0xff) << 8));
    case 59: *ret = sys_execve(AT_FDCWD, a[0], a[1], a[2], 0, r); return true;
    case 322: *ret = sys_execve(int64_t(a[0]), a[1], a[2], a[3], a[4], r); return true;    // execveat
    case 61: *ret = sys_wait4(int64_t(int32_t(a[0])), a[1], a[2], a[3]); return true;
    case 247: *ret = sys_waitid(a[0], a[1], a[2], a[3]); return true;
    case 39: *ret = p->pid; return true;                                                  // getpid
    case 186: *ret = t->tid; return true;                                                 // gettid
    case 110: *ret = p->parent ? p->parent->pid : 0; return true;                         // getppid
    case 109: *ret = sys_setpgid(int64_t(int32_t(a[0])), int64_t(int32_t(a[1]))); return true;
    case 111: *ret = p->pgid; return true;                                                // getpgrp
    case 121: *ret = sys_getpgid(int64_t(int32_t(a[0]))); return true;
    case 124: *ret = sys_getsid(int64_t(int32_t(a[0]))); return true;
    case 112: *ret = sys_setsid(); return true;
    case 218: t->clear_child_tid = a[0]; *ret = t->tid; return true;                      // set_tid_address
    case 273: *ret = a[1] == 24 ? (t->robust_list = a[0], 0) : -EINVAL; return true;      // set_robust_list
    case 274:                                                                             // get_robust_list
      *ret = (a[0] && a[0] != uint64_t(t->tid)) ? -EPERM
             : (mm::user_ok(a[1], 8, true) && mm::user_ok(a[2], 8, true))
                 ? (memcpy(reinterpret_cast<void*>(a[1]), &t->robust_list, 8), *reinterpret_cast<uint64_t*>(a[2]) = 24, 0)
                 : -EFAULT;
      return true;
    case 202: *ret = futex::call(a[0], a[1], a[2], a[3], a[4], a[5]); return true;
    case 24: sched::yield(); *ret = 0; return true;                                       // sched_yield
    default: return false;
  }
}

}  // namespace k::process
