/* A warm runtime for template tests: builds state before reading stdin (a heap table, a
 * banner on stdout), then, per clone, reads all of stdin and answers with what it read, a
 * checksum over the state built before the freeze, 16 fresh random bytes, AT_RANDOM and the
 * time. Clones of one template must agree on the checksum and differ in the random bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int main(void) {
  /* 8 MiB of state touched before the freeze: it must come back exactly. */
  size_t n = 1 << 20;
  uint64_t* table = malloc(n * sizeof *table);
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    table[i] = x;
  }
  printf("warm: ready\n");
  fflush(stdout);

  char buf[65536];
  size_t len = 0;
  ssize_t r;
  while ((r = read(0, buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)r;
  buf[len] = 0;
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++) sum += table[i] * (i | 1);
  unsigned char rnd[16];
  if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd) return 3;
  const unsigned char* at = (const unsigned char*)getauxval(AT_RANDOM);
  printf("input=%s|sum=%016llx|rnd=", buf, (unsigned long long)sum);
  for (int i = 0; i < 16; i++) printf("%02x", rnd[i]);
  printf("|at_random=");
  for (int i = 0; i < 16; i++) printf("%02x", at[i]);
  printf("|time=%lld\n", (long long)time(NULL));
  return 0;
}
