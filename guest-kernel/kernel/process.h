// Process and thread lifecycle syscalls: clone/clone3/fork/vfork, exit/exit_group, wait4/waitid,
// ids, process groups and sessions, set_tid_address, prctl(PR_SET_PDEATHSIG), and futex(2).
// Semantics from each call's man page; layouts from include/uapi/linux/sched.h (clone_args).
#pragma once

#include <stdint.h>

#include "kernel.h"

namespace k::process {

/// The syscalls above, by Linux x86-64 number; true (and *ret) if `nr` is one of them.
bool dispatch(uint64_t nr, const uint64_t a[6], Regs* r, int64_t* ret);
/// Ends the current process with wait(2) status word `status` (code << 8, or a signal number
/// with 0x80 for a core dump). Process 1's end is the job's end.
[[noreturn]] void exit_group_status(int32_t status);
/// The current thread leaves now (its process is exiting).
[[noreturn]] void exit_thread_now();

}  // namespace k::process
