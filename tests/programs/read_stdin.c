/* read_stdin.c: reads all of stdin with read(0) into a growing buffer; prints "bytes=%zu lines=%zu fnv=%016llx" (64-bit FNV-1a); exit 0 (1 on read/alloc error). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return 1;
    for (;;) {
        if (len == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                perror("realloc");
                return 1;
            }
            buf = nb;
        }
        ssize_t r = read(0, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            perror("read");
            return 1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    size_t lines = 0;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\n')
            lines++;
        h ^= c;
        h *= 1099511628211ull;
    }
    printf("bytes=%zu lines=%zu fnv=%016llx\n", len, lines, (unsigned long long)h);
    free(buf);
    return 0;
}
