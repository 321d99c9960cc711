/* A warm runtime with a realistic working set for template benchmarks: touches argv[1] MiB
 * (default 32) of heap the way a language runtime would (a quarter each of pointer-rich
 * nodes, text, floating-point arrays and mostly-sparse buffers), then waits for stdin and
 * prints a checksum over all of it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct node {
  struct node* next;
  uint32_t key, len;
  char tag[16];
};

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 32;
  size_t quarter = mib << 18;  /* bytes per kind */
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  /* 1. linked nodes */
  size_t nodes = quarter / sizeof(struct node);
  struct node* pool = malloc(nodes * sizeof *pool);
  for (size_t i = 0; i < nodes; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    pool[i].next = &pool[(i * 7 + 3) % nodes];
    pool[i].key = (uint32_t)(seed >> 40) & 0xffff;
    pool[i].len = (uint32_t)(i % 97);
    snprintf(pool[i].tag, sizeof pool[i].tag, "n%zu", i % 5000);
  }
  /* 2. text: words from a small vocabulary */
  static const char* words[] = {"the", "sandbox", "clone", "memory", "page", "frame", "runtime",
                                "value", "object", "string", "return", "function", "import"};
  char* text = malloc(quarter);
  size_t pos = 0;
  while (pos + 16 < quarter) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    const char* w = words[(seed >> 33) % 13];
    size_t l = strlen(w);
    memcpy(text + pos, w, l);
    text[pos + l] = (seed >> 20) % 9 ? ' ' : '\n';
    pos += l + 1;
  }
  /* 3. doubles */
  size_t nd = quarter / sizeof(double);
  double* d = malloc(nd * sizeof *d);
  for (size_t i = 0; i < nd; i++) d[i] = (double)(i % 1000) * 0.25 + 1.0;
  /* 4. sparse: one small record per 4 KiB page, the rest zero */
  uint8_t* sparse = calloc(1, quarter);
  for (size_t i = 0; i < quarter; i += 4096) memcpy(sparse + i, &i, sizeof i);

  printf("working set: %zu MiB ready\n", mib);
  fflush(stdout);
  char buf[4096];
  size_t in = 0;
  ssize_t r;
  while ((r = read(0, buf, sizeof buf)) > 0) in += (size_t)r;
  uint64_t sum = in;
  for (size_t i = 0; i < nodes; i += 17) sum += pool[i].key + pool[i].next->len;
  for (size_t i = 0; i < quarter; i += 4093) sum += (uint8_t)text[i] + sparse[i];
  for (size_t i = 0; i < nd; i += 511) sum += (uint64_t)d[i];
  printf("checksum %016llx\n", (unsigned long long)sum);
  return 0;
}
