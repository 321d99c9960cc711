// File descriptor tables and the file syscalls, on top of the merged tree (fs/vfs.h): each
// process has a Table of fds referring to open file descriptions (offset, status flags) shared
// by dup and fork; fds 0-2 start on the host streams (channel buffers). Pipes and eventfds block
// through kernel/sched.h. Semantics follow each call's Linux man page. Single vCPU: code between
// two scheduler calls runs alone, so no locking.
#pragma once

#include <stdint.h>

#include "fs/vfs.h"
#include "kernel.h"

namespace k::files {

/// A process's open files, working directory and umask (Linux's files_struct and fs_struct in
/// one): fds 0..1023, each an open file description plus its close-on-exec flag. The fd array
/// grows in chunks of 63 slots as fds are opened, so a process with 3 fds costs 1.25 KiB of
/// kernel heap (the table's 256-byte block and one 1 KiB chunk).
/// Reference counted: tasks sharing it (threads, CLONE_FILES) each hold a reference.
struct Table;

/// Makes the first process's table with fds 0, 1, 2 on stdin, stdout, stderr and cwd "/", and
/// makes it current (fs::init must have run). Panics when memory runs out at boot.
void init();

/// The table of the task on the vCPU; the scheduler sets it on every task switch.
Table* current_table();
void set_current_table(Table* t);
/// For fork/clone without CLONE_FILES: a new table (1 reference) with the same open file
/// descriptions in the same fds (each gains a reference), close-on-exec flags kept, the cwd and
/// umask copied. nullptr when memory ran out.
Table* table_fork(Table* t);
/// Takes / drops a reference; the last put closes every fd (as close(2) would) and frees `t`.
/// `t` must not be current when its last reference goes.
void table_get(Table* t);
void table_put(Table* t);
/// execve(2): closes every fd marked close-on-exec (O_CLOEXEC, FD_CLOEXEC).
void close_on_exec(Table* t);

/// The syscalls, by Linux x86-64 number; nullptr result means "not a file syscall".
/// Returns true and sets *ret when `nr` is handled here.
bool dispatch(uint64_t nr, const uint64_t a[6], int64_t* ret);

/// For mmap: the node open on `fd` and whether it was opened for writing. -EBADF, -EACCES.
int64_t mmap_node(int64_t fd, fs::Node** node, bool* writable);

/// Node open on `fd`, or nullptr.
fs::Node* node_of(uint32_t fd);

/// Flushes buffered job output to the VMM (one exit) if there is any.
void flush();

}  // namespace k::files
