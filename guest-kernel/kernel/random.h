// The guest's CSPRNG: ChaCha20 (RFC 8439 block function) keyed by 32 bytes of host entropy from
// BootInfo, behind getrandom(2), /dev/urandom and AT_RANDOM. Single vCPU: no locking.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace k::random {

/// Keys the generator with `key` (32 bytes) and resets the block counter.
void seed(const uint64_t key[4]);
/// Fills dst[0..n) with generator output.
void fill(void* dst, size_t n);

}  // namespace k::random
