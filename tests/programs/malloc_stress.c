/* malloc_stress.c: heavy malloc/realloc/free (fixed-seed xorshift, some >1 MiB blocks via mmap/mremap) with content checks; prints "ok 440d97411a464c23" and exits 0, or "mismatch ..." and exits 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define SLOTS 1024
#define ROUNDS 20000

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t xorshift64(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

struct slot {
    unsigned char *p;
    size_t size;
    uint8_t seed; /* byte i holds (seed + i * 131) & 0xff */
};

static struct slot slots[SLOTS];
static uint64_t checksum = 1469598103934665603ull;
static int bad;

static void fill(unsigned char *p, size_t from, size_t to, uint8_t seed)
{
    for (size_t i = from; i < to; i++)
        p[i] = (unsigned char)(seed + i * 131u);
}

static void verify(const struct slot *s, const char *what)
{
    for (size_t i = 0; i < s->size; i++) {
        unsigned char want = (unsigned char)(s->seed + i * 131u);
        if (s->p[i] != want) {
            printf("mismatch (%s) at offset %zu of %zu: got %u want %u\n", what, i,
                   s->size, s->p[i], want);
            bad = 1;
            return;
        }
    }
    /* fold a sparse sample of the block into the global checksum */
    for (size_t i = 0; i < s->size; i += 61) {
        checksum ^= s->p[i];
        checksum *= 1099511628211ull;
    }
    checksum ^= s->size;
    checksum *= 1099511628211ull;
}

static size_t pick_size(void)
{
    uint64_t r = xorshift64();
    switch (r % 100) {
    case 0: /* large: 1-4 MiB, served by mmap in glibc */
        return (1u << 20) + (size_t)((r >> 8) % (3u << 20));
    case 1: case 2: case 3: case 4: /* medium: up to 128 KiB */
        return 1 + (size_t)((r >> 8) % (128u << 10));
    default: /* small: up to 512 bytes */
        return 1 + (size_t)((r >> 8) % 512);
    }
}

static void release(struct slot *s, const char *why)
{
    verify(s, why);
    free(s->p);
    s->p = NULL;
    s->size = 0;
}

int main(void)
{
#ifdef __GLIBC__
    /* pin the threshold so glibc keeps serving >1 MiB blocks with mmap/mremap/munmap
       (by default it raises the threshold dynamically after the first mmapped free) */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
    for (long round = 0; round < ROUNDS && !bad; round++) {
        struct slot *s = &slots[xorshift64() % SLOTS];
        uint64_t op = xorshift64() % 10;
        if (s->p == NULL) {
            size_t n = pick_size();
            s->p = malloc(n);
            if (!s->p) {
                printf("malloc(%zu) failed\n", n);
                return 1;
            }
            s->size = n;
            s->seed = (uint8_t)xorshift64();
            fill(s->p, 0, n, s->seed);
        } else if (op < 3) {
            /* grow via realloc; old contents must survive */
            size_t n = s->size + s->size / 2 + 1 + (size_t)(xorshift64() % 4096);
            if (xorshift64() % 50 == 0)
                n += 2u << 20; /* occasionally push it past the mmap threshold */
            verify(s, "before realloc");
            unsigned char *q = realloc(s->p, n);
            if (!q) {
                printf("realloc(%zu) failed\n", n);
                return 1;
            }
            s->p = q;
            size_t old = s->size;
            s->size = old; /* check preserved prefix first */
            verify(s, "after realloc");
            fill(s->p, old, n, s->seed);
            s->size = n;
            if (n > (6u << 20)) /* keep memory bounded */
                release(s, "shrink cap");
        } else if (op < 8) {
            release(s, "free");
        } else {
            verify(s, "check");
        }
    }
    /* free everything left, in a random order (Fisher-Yates over slot indices) */
    static int order[SLOTS];
    for (int i = 0; i < SLOTS; i++)
        order[i] = i;
    for (int i = SLOTS - 1; i > 0; i--) {
        int j = (int)(xorshift64() % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < SLOTS && !bad; i++)
        if (slots[order[i]].p)
            release(&slots[order[i]], "final");
    if (bad)
        return 1;
    printf("ok %016llx\n", (unsigned long long)checksum);
    return 0;
}
