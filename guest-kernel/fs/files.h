// The job's file descriptors and I/O syscalls. A job sees only its three streams (backed by the
// host channel buffers) and a few devices (/dev/null, /dev/zero, /dev/urandom); there is no file
// system. Single vCPU: no locking.
#pragma once

#include <stdint.h>

#include "kernel.h"

namespace k::files {

/// Opens fds 0, 1, 2 on stdin, stdout, stderr.
void init();

int64_t sys_read(uint64_t fd, uint64_t buf, uint64_t n);
int64_t sys_write(uint64_t fd, uint64_t buf, uint64_t n);
int64_t sys_readv(uint64_t fd, uint64_t iov, uint64_t cnt);
int64_t sys_writev(uint64_t fd, uint64_t iov, uint64_t cnt);
int64_t sys_pread(uint64_t fd, uint64_t buf, uint64_t n, uint64_t off);
int64_t sys_openat(int64_t dirfd, uint64_t path, uint64_t flags);
int64_t sys_close(uint64_t fd);
int64_t sys_fstat(uint64_t fd, uint64_t st);
int64_t sys_newfstatat(int64_t dirfd, uint64_t path, uint64_t st, uint64_t flags);
int64_t sys_statx(int64_t dirfd, uint64_t path, uint64_t flags, uint64_t mask, uint64_t stx);
int64_t sys_lseek(uint64_t fd, int64_t off, uint64_t whence);
int64_t sys_ioctl(uint64_t fd, uint64_t req, uint64_t arg);
int64_t sys_fcntl(uint64_t fd, uint64_t cmd, uint64_t arg);
int64_t sys_dup(uint64_t fd);
int64_t sys_dup3(uint64_t oldfd, uint64_t newfd, uint64_t flags, bool dup2);
int64_t sys_faccessat(int64_t dirfd, uint64_t path, uint64_t mode);
int64_t sys_readlinkat(int64_t dirfd, uint64_t path, uint64_t buf, uint64_t n);
int64_t sys_getcwd(uint64_t buf, uint64_t n);
int64_t sys_poll(uint64_t fds, uint64_t n);

/// True if fd is open on /dev/zero (mmap of it is anonymous memory).
bool is_dev_zero(uint64_t fd);

/// Flushes buffered job output to the VMM (one exit) if there is any.
void flush();

}  // namespace k::files
