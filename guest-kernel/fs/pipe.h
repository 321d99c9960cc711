// Pipes (pipe(7)): a byte ring shared by the read and write ends, kept on a node outside the
// tree (S_IFIFO, Special::kPipe). Single vCPU: code between two sched calls runs alone; a
// blocked reader or writer re-checks the ring after every wake.
#pragma once

#include <stdint.h>

#include "fs/vfs.h"

namespace k::pipe {

/// PIPE_BUF (pipe(7)): writes of at most this many bytes are atomic.
inline constexpr uint64_t kPipeBuf = 4096;
/// Default capacity in bytes (pipe(7): 16 pages since Linux 2.6.11).
inline constexpr uint64_t kDefaultSize = 65536;
/// Largest capacity an unprivileged F_SETPIPE_SZ may ask for (/proc/sys/fs/pipe-max-size default).
inline constexpr uint64_t kMaxSize = 1 << 20;

/// A new pipe with no ends open yet (open_end counts them). nullptr when memory ran out.
fs::Node* create();
/// An open file description of `n` was made that `reads` and/or `writes` (an O_PATH one does
/// neither): counts readers and writers, which are open file descriptions, not fds (dup and
/// fork share one).
void open_end(fs::Node* n, bool reads, bool writes);
/// The last reference to such a description went away: wakes the other side (EOF, EPIPE) and,
/// when the node has no open description left (n->opens == 0), frees the pipe and `n`.
void close_end(fs::Node* n, bool reads, bool writes);

/// read(2) of at most `len` bytes into `dst` (a user address if `user`, re-validated after each
/// wait): bytes read (what is there, up to len), 0 at EOF (no writer left), -EAGAIN when empty
/// and `nonblock`, -EINTR when a signal interrupts the wait, -EFAULT.
int64_t read(fs::Node* n, uint8_t* dst, uint64_t len, bool nonblock, bool user);
/// write(2) of `len` bytes from `src`: bytes written, -EPIPE with no reader (the caller raises
/// SIGPIPE), -EAGAIN when `nonblock` and nothing fits (a write of <= kPipeBuf bytes fits whole
/// or not at all), -EINTR when interrupted before anything was written, -EFAULT. Blocks until
/// all `len` bytes are in unless `nonblock`.
int64_t write(fs::Node* n, const uint8_t* src, uint64_t len, bool nonblock, bool user);

/// poll(2) events of an end that `reads` and/or `writes`: POLLIN|POLLRDNORM with data, POLLHUP
/// with no writer, POLLOUT|POLLWRNORM with room for kPipeBuf bytes, POLLERR with no reader.
uint32_t poll(const fs::Node* n, bool reads, bool writes);
/// Changes counter, bumped by every operation that can change poll(); epoll's EPOLLET uses it.
uint64_t generation(const fs::Node* n);
/// Bytes buffered (FIONREAD).
uint64_t buffered(const fs::Node* n);
/// Capacity in bytes (F_GETPIPE_SZ).
uint64_t size(const fs::Node* n);
/// F_SETPIPE_SZ (fcntl(2)): rounds `bytes` up to a power-of-two number of pages; returns the
/// new capacity, -EINVAL (0 or above 2^31), -EPERM above kMaxSize, -EBUSY if the buffered data
/// would not fit, -ENOMEM.
int64_t set_size(fs::Node* n, uint64_t bytes);

}  // namespace k::pipe
