/* spin_beside.c: a thread spins forever (no syscalls) beside the main thread, which waits until
 * the spinner has started, does some work, prints and exits the whole process: on one CPU only
 * preemption lets main run again. Prints "spinner started\nmain done 5000050000\n"; exit 0. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_int started;

static void *spinner(void *arg)
{
    atomic_store(&started, 1);
    volatile unsigned long n = 0;
    for (;;) n++;
    return arg;
}

int main(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, spinner, NULL) != 0) { perror("pthread_create"); return 1; }
    while (!atomic_load(&started)) {}
    printf("spinner started\n");
    volatile unsigned long sum = 0;
    for (unsigned long i = 1; i <= 100000; i++) sum += i;
    printf("main done %lu\n", sum);
    fflush(stdout);
    exit(0);
}
