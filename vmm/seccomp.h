// The seccomp filter on the threads that run untrusted guests (vCPU / job threads): an
// allow-list of the system calls a job thread makes once its VM exists. Thread-safety: every
// function acts on the calling thread only and may be called from any thread at any time.
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

/// True when the calling thread is under the job-thread filter.
bool job_thread_confined();

/// The system call names the job-thread filter allows (sorted; ioctl appears once although
/// only the requests in kKvmIoctls pass). For docs and tests.
std::vector<std::string> job_thread_allowed_syscalls();

}  // namespace vmfork::vmm
