// The job's file descriptors and the file syscalls, on top of the merged tree (fs/vfs.h): fds
// refer to open file descriptions (offset, status flags) shared by dup; fds 0-2 are the host
// streams (channel buffers). Semantics follow each call's Linux man page. Single vCPU: no locking.
#pragma once

#include <stdint.h>

#include "fs/vfs.h"
#include "kernel.h"

namespace k::files {

/// Opens fds 0, 1, 2 on stdin, stdout, stderr (fs::init must have run).
void init();

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

// TEMPORARY (replaced by the per-process file table work): one table.
namespace k::files {
struct Table;
Table* current_table();
void set_current_table(Table* t);
Table* table_fork(Table* t);
void table_get(Table* t);
void table_put(Table* t);
}  // namespace k::files
namespace k::files {
void close_on_exec(Table* t);
}
