// The synthetic /proc: /proc/self (a link to /proc/1), its exe, fd/, maps, status, stat,
// cmdline, and the system files real programs read (/proc/cpuinfo, meminfo, stat, uptime,
// sys/kernel/random/uuid). Text files are generated when opened. Single vCPU: no locking.
#pragma once

#include <stdint.h>

#include "fs/vfs.h"

namespace k::fs {

/// Adds the generated files under /proc and /proc/1 (`pid`).
void proc_populate(Node* proc, Node* pid);
/// A fresh anonymous file holding the current text of generated node `n` (Special::kProcGen),
/// or nullptr when memory ran out.
Node* proc_generate(const Node* n);
/// The node open on fd `fd` of the job, or nullptr (for /proc/self/fd/N).
Node* proc_fd_target(uint32_t fd);
/// readlink of /proc/self/fd/N: the file's path, "pipe:[ino]" for the streams and pipes,
/// "anon_inode:[eventfd]", "anon_inode:[timerfd]", "anon_inode:[signalfd]" or "anon_inode:[eventpoll]".
int64_t proc_fd_link(uint32_t fd, char* buf, uint64_t cap);
/// The executable's absolute path (readlink /proc/self/exe).
const char* proc_exe_path();

}  // namespace k::fs
