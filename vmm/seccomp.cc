// The job-thread and process seccomp filters (see seccomp.h). The job-thread allow-list was
// found with `strace -f` on `vmfork run` (cold, --template, --rootfs, job files, timeouts,
// crashes, output limits) and `vmfork serve` (fresh and reset pools) and is checked by the KVM
// test suites running with it on. Thread-safety: the SIGSYS handler and the name table are set
// up once (std::call_once).
#include "vmm/seccomp.h"

#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <mutex>

#include "vmm/guest_memory.h"
#include "vmm/kvm_uapi.h"

namespace vmfork::vmm {
namespace {

// What a job thread does after its VM exists, and the calls each part needs:
//  - KVM_RUN and the exit handling around it (ioctl, below), the channel and serial devices
//    writing guest output to vmfork's stdout/stderr or to memory (write, writev), reading
//    stdin for the guest (read, readv, poll, ppoll: the wait has a deadline);
//  - the run deadline (vmm/run_deadline.cc): a POSIX timer per job that signals this thread
//    (timer_create, timer_settime, timer_gettime, timer_delete, rt_sigaction for its handler,
//    rt_sigprocmask, rt_sigreturn after it);
//  - loading the next job into a clone: reading the already opened program (pread64, read,
//    lseek, fstat/newfstatat on an fd; readlink of its /proc/self/fd link, which names it as
//    /proc/self/exe for the guest: it reads a link target, it opens nothing), fresh entropy (getrandom) and clock pairs
//    (clock_gettime: the vDSO falls back to the syscall for CPU-time clocks); a pool's first
//    job with a program copies it into a sealed memfd (engine/program_cache.cc): memfd_create
//    with exactly MFD_CLOEXEC | MFD_ALLOW_SEALING, ftruncate, and fcntl F_ADD_SEALS only
//    (anonymous memory, no host path; the rules are below kAllowed);
//  - the C++ runtime: memory (mmap, munmap, mremap, mprotect, madvise, brk), locks and
//    condition variables (futex, sched_yield), sleeps with a deadline (nanosleep,
//    clock_nanosleep), handing a clone back and waking the event loop (write to an eventfd),
//    closing descriptors of a clone or a job (close), thread ids for logs (gettid, getpid),
//    restart_syscall after a signal, and ending (exit, exit_group); sigaltstack, which the
//    sanitizer runtime calls when a thread ends (it only moves where this thread's signals are
//    delivered).
// Left out on purpose: open/openat (a job thread never names a host path: the program is
// opened on the loop thread, rootfs images are mapped before), socket calls, clone/fork/execve,
// kill/tgkill, ptrace, process_vm_*, mount, bpf, and every KVM ioctl that creates objects.
constexpr int kAllowed[] = {
    SCMP_SYS(read),          SCMP_SYS(write),         SCMP_SYS(readv),          SCMP_SYS(writev),
    SCMP_SYS(pread64),       SCMP_SYS(pwrite64),      SCMP_SYS(lseek),          SCMP_SYS(close),
    SCMP_SYS(fstat),         SCMP_SYS(poll),          SCMP_SYS(ppoll),          SCMP_SYS(mmap),
    SCMP_SYS(munmap),        SCMP_SYS(mremap),        SCMP_SYS(mprotect),       SCMP_SYS(madvise),
    SCMP_SYS(brk),           SCMP_SYS(futex),         SCMP_SYS(sched_yield),    SCMP_SYS(nanosleep),
    SCMP_SYS(clock_nanosleep), SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(getrandom),
    SCMP_SYS(timer_create),  SCMP_SYS(timer_settime), SCMP_SYS(timer_gettime),  SCMP_SYS(timer_delete),
    SCMP_SYS(rt_sigaction),  SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),  SCMP_SYS(restart_syscall),
    SCMP_SYS(gettid),        SCMP_SYS(getpid),        SCMP_SYS(exit),           SCMP_SYS(exit_group),
    SCMP_SYS(readlink),      SCMP_SYS(sigaltstack),
};

// The vCPU ioctls of the run loop (vmm/machine.cc): KVM_RUN, and the registers for preemption
// ticks and fault reports when KVM_CAP_SYNC_REGS does not carry them. Also PAGEMAP_SCAN on
// /proc/self/pagemap (vmm::pagemap_scan_ioctl), which counts a clone's private pages at a
// job's end: it only reads this process's page tables (no flags are ever passed). Resets, saves and
// restores happen on the pool's refill thread, not here. Nothing that creates a VM, vCPU or
// memslot, maps memory into the guest, or changes CPUID or MSRs.
constexpr unsigned long kKvmIoctls[] = {KVM_RUN, KVM_GET_REGS, KVM_SET_REGS};

// The process filter's deny-list (default ALLOW; why a deny-list: seccomp.h). Each entry is
// something serve/worker never does once set up (its event loop, refill, reload, Redis and
// metrics threads only use sockets, epoll, files in the store, /dev/kvm ioctls, memory,
// io_uring, threads, futexes, signals and clocks) and that an attacker holding the process
// would want:
//  - start another program: execve, execveat, fork, vfork (and clone without CLONE_THREAD,
//    and clone3, handled in confine_process); posix_spawn of mkfs.erofs happens only in
//    `vmfork rootfs` / `template create`, never in serve or worker;
//  - reach into other processes: ptrace, process_vm_readv/writev, process_madvise,
//    pidfd_getfd, kcmp;
//  - change the file system view or namespaces: mount, umount2, pivot_root, chroot,
//    move_mount, open_tree, fsopen, fsconfig, fsmount, fspick, mount_setattr, unshare, setns;
//  - change the kernel: init_module, finit_module, delete_module, bpf, kexec_load,
//    kexec_file_load, reboot, swapon, swapoff, acct, syslog, quotactl, iopl, ioperm,
//    settimeofday, clock_settime, clock_adjtime, adjtimex, sethostname, setdomainname,
//    vhangup, lookup_dcookie, uselib;
//  - change identity or keys: setuid, setgid, setreuid, setregid, setresuid, setresgid,
//    setfsuid, setfsgid, setgroups, capset, keyctl, add_key, request_key;
//  - kernel attack surface vmfork does not use: perf_event_open, userfaultfd, fanotify_init,
//    open_by_handle_at, name_to_handle_at.
// Names, not SCMP_SYS numbers: one unknown to this libseccomp is skipped, not a build error.
// ioctl stays allowed broadly: the refill thread creates VMs, vCPUs and memslots on /dev/kvm
// and VM fds, and the KVM request set is large; the job-thread filter narrows it where guests
// run. Known gap: io_uring operations (liburing store I/O) do not pass through seccomp; none
// of them runs a program, and the rings are set up by vmfork's own code.
// AddressSanitizer's leak check (LeakSanitizer, at exit) stops the world from a task it
// clones with CLONE_VM | CLONE_UNTRACED (no CLONE_THREAD) that then ptrace-attaches the
// threads: in a sanitizer build (VMFORK_SANITIZE=1, tests only) ptrace stays allowed and
// clones with CLONE_UNTRACED pass. Release builds refuse both.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitizerBuild = true;
#else
constexpr bool kSanitizerBuild = false;
#endif

constexpr const char* kProcessDenied[] = {
    "execve",        "execveat",       "fork",          "vfork",           kSanitizerBuild ? "" : "ptrace",
    "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd", "kcmp",
    "mount",         "umount2",        "pivot_root",    "chroot",          "move_mount",
    "open_tree",     "fsopen",         "fsconfig",      "fsmount",         "fspick",
    "mount_setattr", "unshare",        "setns",         "init_module",     "finit_module",
    "delete_module", "bpf",            "kexec_load",    "kexec_file_load", "reboot",
    "swapon",        "swapoff",        "acct",          "syslog",          "quotactl",
    "iopl",          "ioperm",         "settimeofday",  "clock_settime",   "clock_adjtime",
    "adjtimex",      "sethostname",    "setdomainname", "vhangup",         "lookup_dcookie",
    "uselib",        "setuid",         "setgid",        "setreuid",        "setregid",
    "setresuid",     "setresgid",      "setfsuid",      "setfsgid",        "setgroups",
    "capset",        "keyctl",         "add_key",       "request_key",     "perf_event_open",
    "userfaultfd",   "fanotify_init",  "open_by_handle_at", "name_to_handle_at",
};

// si_code of a SIGSYS raised by SECCOMP_RET_TRAP (SYS_SECCOMP in <asm-generic/siginfo.h>).
constexpr int kSysSeccomp = 1;

// SIGSYS handler state: syscall names resolved before any filter exists (the handler may not
// allocate), so the message can name the call.
constexpr int kMaxNr = 512;
char g_names[kMaxNr][32];
std::once_flag g_setup_once;
int g_setup_errno = 0;
thread_local bool t_confined = false;
std::atomic<bool> g_process_confined{false};

// Async-signal-safe: only write(2) and exit_group(2), both allowed by the filter.
void put(const char* s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= size_t(w);
  }
}

void on_sigsys(int, siginfo_t* info, void*) {
  if (info->si_code != kSysSeccomp) {  // someone sent SIGSYS: die as SIGSYS would
    put("vmfork: SIGSYS (not from seccomp)\n");
    syscall(SYS_exit_group, kSeccompViolationExit);
  }
  int nr = info->si_syscall;
  char num[16];
  int i = sizeof num - 1;
  num[i] = 0;
  unsigned v = unsigned(nr);
  do {
    num[--i] = char('0' + v % 10);
    v /= 10;
  } while (v && i > 0);
  put("vmfork: seccomp: forbidden system call ");
  put(num + i);
  put(" (");
  put(nr >= 0 && nr < kMaxNr && g_names[nr][0] ? g_names[nr] : "unknown");
  // t_confined is a static-TLS bool of this executable: reading it here is signal-safe.
  put(t_confined ? ") on a job thread" : ") on the vmfork process");
  put("; vmfork stops (run with --no-seccomp to debug)\n");
  syscall(SYS_exit_group, kSeccompViolationExit);
}

void setup_once() {
  for (int nr = 0; nr < kMaxNr; nr++) {
    char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    if (name) {
      strncpy(g_names[nr], name, sizeof g_names[nr] - 1);
      free(name);
    }
  }
  struct sigaction sa{};
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSYS, &sa, nullptr) != 0) g_setup_errno = errno;
}

Status libseccomp_error(const char* call, int rc, const char* which = "job-thread filter") {
  return Error{std::string(call) + " (" + which + ")", -rc};
}

}  // namespace

// The VMFORK_SECCOMP_TEST=`hook` test: execve("/bin/true") right after a filter is loaded. It
// must not return: SIGSYS ends the process first.
static Status exec_under_filter(const char* hook) {
  char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
  execve("/bin/true", argv, environ);
  return errno_error(std::string("VMFORK_SECCOMP_TEST=") + hook + ": execve returned");
}

Status confine_job_thread() {
  if (t_confined) return Status::Ok();
  std::call_once(g_setup_once, setup_once);
  if (g_setup_errno) return Error{"sigaction SIGSYS", g_setup_errno};
  const char* hook = getenv("VMFORK_SECCOMP_TEST");
  const bool test_exec = hook && strcmp(hook, "exec") == 0;

  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
  if (!ctx) return plain_error("seccomp_init failed");
  struct Release {
    scmp_filter_ctx c;
    ~Release() { seccomp_release(c); }
  } release{ctx};
  int rc = 0;
  for (int nr : kAllowed)
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) < 0) return libseccomp_error("seccomp_rule_add", rc);
#if defined(__SANITIZE_ADDRESS__)
  // ASan builds only (CI's sanitizer run): the sanitizer runtime probes whether memory is
  // readable by writing it into a pipe (IsAccessibleMemoryRange: pipe2, write, close).
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(pipe2), 0)) < 0)
    return libseccomp_error("seccomp_rule_add pipe2", rc);
#endif
  unsigned long ioctls[std::size(kKvmIoctls) + 1];
  std::copy(std::begin(kKvmIoctls), std::end(kKvmIoctls), ioctls);
  ioctls[std::size(kKvmIoctls)] = pagemap_scan_ioctl();
  for (unsigned long req : ioctls)
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, req))) < 0)
      return libseccomp_error("seccomp_rule_add ioctl", rc);
  // A ProgramCache's sealed memfd (see the list above kAllowed): those flags, that fcntl.
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(memfd_create), 1,
                             SCMP_A1(SCMP_CMP_EQ, MFD_CLOEXEC | MFD_ALLOW_SEALING))) < 0)
    return libseccomp_error("seccomp_rule_add memfd_create", rc);
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ftruncate), 0)) < 0)
    return libseccomp_error("seccomp_rule_add ftruncate", rc);
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1, SCMP_A1(SCMP_CMP_EQ, F_ADD_SEALS))) < 0)
    return libseccomp_error("seccomp_rule_add fcntl", rc);
  // glibc 2.33+ implements fstat(fd) as newfstatat(fd, "", AT_EMPTY_PATH): allow only that form.
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
                             SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH))) < 0)
    return libseccomp_error("seccomp_rule_add newfstatat", rc);
  // Sets PR_SET_NO_NEW_PRIVS itself (SCMP_FLTATR_CTL_NNP defaults to on); without TSYNC the
  // filter goes on this thread only.
  if ((rc = seccomp_load(ctx)) < 0) return libseccomp_error("seccomp_load", rc);
  t_confined = true;
  if (test_exec) return exec_under_filter("exec");
  return Status::Ok();
}

bool job_thread_confined() { return t_confined; }

Status confine_process(ProcessRole role) {
  const char* which = role == ProcessRole::kServe ? "process filter of vmfork serve" : "process filter of vmfork worker";
  std::call_once(g_setup_once, setup_once);
  if (g_setup_errno) return Error{"sigaction SIGSYS", g_setup_errno};
  const char* hook = getenv("VMFORK_SECCOMP_TEST");
  const bool test_exec = hook && strcmp(hook, "process-exec") == 0;

  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) return plain_error(std::string("seccomp_init failed (") + which + ")");
  struct Release {
    scmp_filter_ctx c;
    ~Release() { seccomp_release(c); }
  } release{ctx};
  int rc = 0;
  for (const char* name : kProcessDenied) {
    if (!*name) continue;
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // unknown to this libseccomp: nothing to refuse
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_TRAP, nr, 0)) < 0) return libseccomp_error("seccomp_rule_add", rc, which);
  }
  // clone(2) on x86-64: flags are arg 0. Threads (pthread_create) pass CLONE_THREAD; fork,
  // posix_spawn (CLONE_VM | CLONE_VFORK) and new processes do not.
  const scmp_datum_t exempt = CLONE_THREAD | (kSanitizerBuild ? CLONE_UNTRACED : 0);
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_TRAP, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, exempt, 0))) < 0)
    return libseccomp_error("seccomp_rule_add clone", rc, which);
  // clone3 passes its flags in memory, which seccomp cannot read: refuse it with ENOSYS, the
  // answer glibc (2.34+) takes as "use clone", so threads still start and are checked above.
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) < 0)
    return libseccomp_error("seccomp_rule_add clone3", rc, which);
  // Every thread, including ones already running (refill, workers, Redis, metrics); fails if
  // one of them has a filter that is not an ancestor of ours (seccomp(2), TSYNC).
  if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0)
    return libseccomp_error("seccomp_attr_set SCMP_FLTATR_CTL_TSYNC", rc, which);
  if ((rc = seccomp_load(ctx)) < 0) return libseccomp_error("seccomp_load with TSYNC", rc, which);
  g_process_confined = true;
  if (test_exec) return exec_under_filter("process-exec");
  return Status::Ok();
}

bool process_confined() { return g_process_confined; }

std::vector<std::string> process_denied_syscalls() {
  std::vector<std::string> out;
  for (const char* name : kProcessDenied)
    if (*name && seccomp_syscall_resolve_name(name) != __NR_SCMP_ERROR) out.emplace_back(name);
  out.emplace_back("clone");
  out.emplace_back("clone3");
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> job_thread_allowed_syscalls() {
  std::vector<std::string> out;
  auto add = [&](int nr) {
    char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    if (name) out.emplace_back(name);
    free(name);
  };
  for (int nr : kAllowed) add(nr);
  add(SCMP_SYS(ioctl));
  add(SCMP_SYS(newfstatat));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace vmfork::vmm
