// eventfd objects (eventfd(2)): a 64-bit counter on a node outside the tree (Special::kEventfd)
// that write adds to and read takes from. Single vCPU: no locking; waits re-check after a wake.
#pragma once

#include <stdint.h>

#include "fs/vfs.h"

namespace k::eventfd {

/// eventfd(2) flags (include/uapi/linux/eventfd.h).
inline constexpr uint64_t EFD_SEMAPHORE = 1, EFD_NONBLOCK = 04000, EFD_CLOEXEC = 02000000;

/// A new counter holding `initval`; `semaphore` gives EFD_SEMAPHORE reads. nullptr on no memory.
fs::Node* create(uint64_t initval, bool semaphore);
/// The last open file description of `n` closed (n->opens == 0): frees the counter and `n`.
void close(fs::Node* n);

/// read(2): `len` must be >= 8 (-EINVAL). Stores the counter (or 1 with EFD_SEMAPHORE) as a
/// host-endian u64 at `dst` and resets it (or decrements it); waits while it is 0 unless
/// `nonblock` (-EAGAIN). Returns 8, -EINTR, -EFAULT (`user`: dst re-validated after a wait).
int64_t read(fs::Node* n, uint8_t* dst, uint64_t len, bool nonblock, bool user);
/// write(2): adds the u64 at `src` (validated by the caller and read before any wait; len >= 8
/// and value != 2^64-1, else -EINVAL); waits while the sum would exceed 2^64-2 unless
/// `nonblock` (-EAGAIN). Returns 8 or -EINTR.
int64_t write(fs::Node* n, const uint8_t* src, uint64_t len, bool nonblock);

/// poll(2) events: POLLIN when the counter is > 0, POLLOUT when 1 more can be added.
uint32_t poll(const fs::Node* n);
/// Changes counter for epoll's EPOLLET.
uint64_t generation(const fs::Node* n);

}  // namespace k::eventfd
