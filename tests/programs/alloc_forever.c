/* alloc_forever.c: malloc(1 MiB) + memset forever, chunks kept in a linked list (memory exhaustion); if malloc ever returns NULL prints "malloc failed after N MiB" to stderr and exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Chunks are chained through their first word and the head is volatile, so the
   compiler cannot treat the allocations as dead and remove them. */
static void *volatile head;

int main(void)
{
    for (unsigned long mib = 0;; mib++) {
        char *p = malloc(1u << 20);
        if (!p) {
            fprintf(stderr, "malloc failed after %lu MiB\n", mib);
            return 1;
        }
        memset(p, (int)(mib & 0xff) | 1, 1u << 20);
        *(void **)p = head;
        head = p;
    }
}
