// signalfd objects (signalfd(2)): a signal mask on a node outside the tree (Special::kSignalfd);
// reading dequeues the reader's pending signals in the mask as struct signalfd_siginfo records.
// The signals belong to the task that reads or polls, not to the fd. Single vCPU: no locking.
#pragma once

#include <stdint.h>

#include "fs/vfs.h"

namespace k::signalfd {

/// signalfd4(2) flags (include/uapi/linux/signalfd.h).
inline constexpr uint64_t SFD_NONBLOCK = 04000, SFD_CLOEXEC = 02000000;
/// sizeof(struct signalfd_siginfo) (include/uapi/linux/signalfd.h).
inline constexpr uint64_t kInfoBytes = 128;

/// A new signalfd for the signals of `mask` (bit sig - 1; SIGKILL and SIGSTOP are dropped, as
/// signalfd(2) says they are silently ignored). nullptr on no memory.
fs::Node* create(uint64_t mask);
/// signalfd(2) on an existing signalfd: replaces its mask.
void set_mask(fs::Node* n, uint64_t mask);
/// The last open file description of `n` closed (n->opens == 0): frees its state and `n`.
void close(fs::Node* n);

/// read(2): `len` must be >= 128 (-EINVAL). Dequeues as many of the current task's and its
/// process's pending signals in the mask as fit (thread-directed first, then lowest number
/// first, as the signal code picks them) and stores one 128-byte signalfd_siginfo each at
/// `dst`. Waits while none is pending unless `nonblock` (-EAGAIN). Returns the bytes stored,
/// -EINTR, -EFAULT (`user`: dst re-validated after a wait).
int64_t read(fs::Node* n, uint8_t* dst, uint64_t len, bool nonblock, bool user);

/// poll(2) events: POLLIN | POLLRDNORM when the current task has a pending signal in the mask.
uint32_t poll(const fs::Node* n);
/// Changes counter for epoll's EPOLLET: moves when the pending set in the mask changes (the
/// caller's own signals, sampled at the call).
uint64_t generation(const fs::Node* n);

}  // namespace k::signalfd
