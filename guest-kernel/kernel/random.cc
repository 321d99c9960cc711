// ChaCha20 keystream generator (see random.h). RFC 8439 section 2.3.
#include "kernel/random.h"

#include "kernel.h"

namespace k::random {
namespace {

uint32_t g_key[8];
uint64_t g_counter;
uint8_t g_block[64];
size_t g_avail;

inline uint32_t rotl(uint32_t v, int n) { return (v << n) | (v >> (32 - n)); }
inline void quarter(uint32_t* s, int a, int b, int c, int d) {
  s[a] += s[b]; s[d] = rotl(s[d] ^ s[a], 16);
  s[c] += s[d]; s[b] = rotl(s[b] ^ s[c], 12);
  s[a] += s[b]; s[d] = rotl(s[d] ^ s[a], 8);
  s[c] += s[d]; s[b] = rotl(s[b] ^ s[c], 7);
}

void refill() {
  uint32_t in[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};  // "expand 32-byte k"
  for (int i = 0; i < 8; i++) in[4 + i] = g_key[i];
  in[12] = uint32_t(g_counter);
  in[13] = uint32_t(g_counter >> 32);
  g_counter++;
  uint32_t s[16];
  memcpy(s, in, sizeof s);
  for (int i = 0; i < 10; i++) {
    quarter(s, 0, 4, 8, 12); quarter(s, 1, 5, 9, 13);
    quarter(s, 2, 6, 10, 14); quarter(s, 3, 7, 11, 15);
    quarter(s, 0, 5, 10, 15); quarter(s, 1, 6, 11, 12);
    quarter(s, 2, 7, 8, 13); quarter(s, 3, 4, 9, 14);
  }
  for (int i = 0; i < 16; i++) s[i] += in[i];
  memcpy(g_block, s, sizeof g_block);
  g_avail = sizeof g_block;
}

}  // namespace

void seed(const uint64_t key[4]) {
  memcpy(g_key, key, sizeof g_key);
  g_counter = 0;
  g_avail = 0;
}

void fill(void* dst, size_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  while (n) {
    if (!g_avail) refill();
    size_t take = n < g_avail ? n : g_avail;
    memcpy(d, g_block + (sizeof g_block - g_avail), take);
    // Each output byte is used once: erase it so a later dump of guest memory cannot replay it.
    memset(g_block + (sizeof g_block - g_avail), 0, take);
    g_avail -= take;
    d += take;
    n -= take;
  }
}

}  // namespace k::random
