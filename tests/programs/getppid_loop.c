/* getppid_loop.c: syscall(SYS_getppid) argv[1] times (default 1000000); prints "ns_per_syscall=%.1f" (timing-dependent) and "calls=%ld"; exit 0. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("ns_per_syscall=%.1f\n", n > 0 ? ns / (double)n : 0.0);
    printf("calls=%ld\n", n);
    return 0;
}
