// Page keys of the content-addressed store: the XXH3-128 of a 4 KiB page (libxxhash), and the
// all-zero test that keeps zero pages out of the store. Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace vmfork::snapshot {

/// XXH3-128 of one page's bytes: `lo`/`hi` are XXH128_hash_t's low64/high64. Stored on disk
/// as u64 lo then u64 hi (docs/snapshot-format.md, pack index).
struct PageHash {
  uint64_t lo = 0, hi = 0;
  friend bool operator==(const PageHash&, const PageHash&) = default;
};

/// Hasher for unordered containers: XXH3's low half is already well mixed.
struct PageHashHasher {
  size_t operator()(const PageHash& h) const { return static_cast<size_t>(h.lo); }
};

/// XXH3-128 of `page` (any length; the store passes kPageBytes).
PageHash hash_page(std::span<const uint8_t> page);

/// True if every byte of `page` is zero. `page.size()` must be a multiple of 64.
bool is_zero_page(std::span<const uint8_t> page);

/// "0x" and 16 hex digits, for error messages.
std::string hex64(uint64_t v);
/// The 128-bit key as 32 hex digits (high half first), for error messages.
std::string to_hex(const PageHash& h);

/// XXH3-64 of `bytes`: the checksum of frames, pack headers/footers/indexes and manifest bodies.
uint64_t checksum64(std::span<const uint8_t> bytes);

}  // namespace vmfork::snapshot
