// XXH3 page keys and checksums, and the zero-page test.
#include "snapshot/page_hash.h"

#include <xxhash.h>

#include <cstdio>
#include <cstring>

namespace vmfork::snapshot {

PageHash hash_page(std::span<const uint8_t> page) {
  XXH128_hash_t h = XXH3_128bits(page.data(), page.size());
  return PageHash{h.low64, h.high64};
}

bool is_zero_page(std::span<const uint8_t> page) {
  // OR of eight 64-bit words per 64-byte block (vectorised by the compiler), one branch per
  // block; memcpy makes no alignment or aliasing assumption about the caller's buffer.
  const uint8_t* p = page.data();
  for (size_t off = 0; off < page.size(); off += 64) {
    uint64_t w[8];
    std::memcpy(w, p + off, sizeof w);
    if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) != 0) return false;
  }
  return true;
}

std::string hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string to_hex(const PageHash& h) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(h.hi),
                static_cast<unsigned long long>(h.lo));
  return buf;
}

uint64_t checksum64(std::span<const uint8_t> bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

}  // namespace vmfork::snapshot
