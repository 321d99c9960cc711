// Pipe round trips for docs/performance.md: writes and reads back one CHUNK-byte block through
// a pipe N times in one process and prints ns per round trip and MB/s (CLOCK_MONOTONIC).
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000, chunk = argc > 2 ? atol(argv[2]) : 4096;
  static char buf[65536];
  if (chunk < 1 || chunk > (long)sizeof buf) return 2;
  int p[2];
  if (pipe(p)) return 1;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    if (write(p[1], buf, chunk) != chunk || read(p[0], buf, chunk) != chunk) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  printf("%ld round trips of %ld bytes: %.0f ns each, %.0f MB/s\n", n, chunk, ns / n, n * chunk / ns * 1e3);
  return 0;
}
