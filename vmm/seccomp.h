// The two seccomp layers: a tight allow-list on each thread that runs an untrusted guest (job
// thread), and a deny-list on the whole `serve` / `worker` process once it is set up. Thread-
// safety: confine_job_thread acts on the calling thread only, any thread, any time;
// confine_process acts on every thread and must be called before any job thread is confined.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace vmfork::vmm {

/// Exit status of vmfork when a confined thread makes a forbidden system call: 128 + SIGSYS,
/// what a shell reports for a process killed by SIGSYS, without a core dump of guest memory.
inline constexpr int kSeccompViolationExit = 159;

/// Puts the calling thread under the job-thread filter (seccomp(2) SECCOMP_SET_MODE_FILTER via
/// libseccomp, no TSYNC: other threads keep their own rights; threads this one creates later
/// inherit it). Idempotent per thread: a second call on a confined thread does nothing, so a
/// worker may call it before every job. Sets PR_SET_NO_NEW_PRIVS on the thread (required for
/// an unprivileged filter, seccomp(2)).
///
/// What the filter allows and why is in vmm/seccomp.cc (kAllowed, kKvmIoctls). Anything else
/// raises SIGSYS (SCMP_ACT_TRAP); the handler, installed process-wide on the first call,
/// writes "vmfork: seccomp: forbidden system call NR (NAME) on a job thread" to stderr and
/// ends the whole process with exit_group(kSeccompViolationExit): a forbidden call on a job
/// thread means the VMM was subverted or has a bug, and neither should keep serving.
///
/// Test hook: when the environment has VMFORK_SECCOMP_TEST=exec at the first call, the thread
/// calls execve("/bin/true") right after the filter is in place (tests/seccomp_test.cc).
/// Errors: the libseccomp call that failed (seccomp_init / seccomp_rule_add / seccomp_load)
/// with its errno, or sigaction for SIGSYS.
Status confine_job_thread();

/// Which long-running process confine_process is for; it names the process in errors. Both
/// get the same list today (a deny-list: what neither may ever do).
enum class ProcessRole { kServe, kWorker };

/// Puts the WHOLE process (every thread, now and later) under the process filter: libseccomp
/// with SCMP_FLTATR_CTL_TSYNC (seccomp(2) SECCOMP_FILTER_FLAG_TSYNC) and PR_SET_NO_NEW_PRIVS.
/// Call it once, after set-up (socket bound, store opened, templates loaded, threads started)
/// and before the first job: TSYNC fails if a thread already has a filter that is not an
/// ancestor of the caller's (a job thread confined by confine_job_thread). Filters stack, so
/// job threads are then under both.
///
/// A deny-list with default ALLOW, not an allow-list: the process runs many libraries (glibc,
/// liburing, hiredis, spdlog, OpenSSL, libzstd) whose exact calls change with versions and code
/// paths, and an allow-list missing one call kills the server in production. It forbids what
/// vmfork never does after set-up and an attacker needs (list and reasons in vmm/seccomp.cc,
/// kProcessDenied): start programs (execve, execveat, fork, vfork, clone without CLONE_THREAD;
/// clone3 fails with ENOSYS because seccomp cannot read its flags, so glibc falls back to
/// clone), touch other processes (ptrace, process_vm_*, pidfd_getfd, kcmp), mounts and
/// namespaces, kernel modules, bpf, kexec, reboot, the setuid family, keyrings,
/// perf_event_open, userfaultfd. A forbidden call raises SIGSYS; the handler writes "vmfork:
/// seccomp: forbidden system call NR (NAME) on the vmfork process; ..." (or "on a job thread"
/// when the caller is a confined job thread) and exits with kSeccompViolationExit.
///
/// Test hook: when the environment has VMFORK_SECCOMP_TEST=process-exec, the calling thread
/// calls execve("/bin/true") right after the filter is loaded (tests/seccomp_test.cc).
/// Errors: sigaction SIGSYS, or the libseccomp call that failed with its errno (seccomp_load
/// with TSYNC: the id of a thread that could not be synchronised is not reported by libseccomp).
Status confine_process(ProcessRole role);

/// True once confine_process succeeded in this process.
bool process_confined();

/// The system call names the process filter refuses (sorted; clone appears although only its
/// forms without CLONE_THREAD are refused, clone3 although it fails with ENOSYS). For docs/tests.
std::vector<std::string> process_denied_syscalls();

/// True when the calling thread is under the job-thread filter.
bool job_thread_confined();

/// The system call names the job-thread filter allows (sorted; ioctl appears once although
/// only the requests in kKvmIoctls pass). For docs and tests.
std::vector<std::string> job_thread_allowed_syscalls();

}  // namespace vmfork::vmm
