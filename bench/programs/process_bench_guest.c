/* process_bench_guest.c: the timed loops of bench/process_bench.cc, run the same way inside a
 * vmfork guest and on the host; one figure per line, "name value" (microseconds unless the name
 * says otherwise). Usage: process_bench_guest TRUE_PATH ROUNDS STEPS; TRUE_PATH is a static
 * program that exits 0. Everything runs pinned to CPU 0 where sched_setaffinity works, so the
 * host figures are one-CPU figures like the guest's. Single-threaded except where it measures
 * threads. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <sys/time.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double thread_cpu_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return -1;
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void fork_exec(const char *true_path, int rounds)
{
    double t = now_us();
    for (int i = 0; i < rounds; i++) {
        pid_t pid = fork();
        if (pid < 0) { printf("fork_exec_wait_us error\n"); return; }
        if (pid == 0) {
            char *argv[] = {(char *)true_path, NULL};
            execv(true_path, argv);
            _exit(127);
        }
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("fork_exec_wait_us error\n");
            return;
        }
    }
    printf("fork_exec_wait_us %.2f\n", (now_us() - t) / rounds);
}

static void *nothing(void *arg) { return arg; }

static void thread_create(int rounds)
{
    double t = now_us();
    for (int i = 0; i < rounds; i++) {
        pthread_t th;
        if (pthread_create(&th, NULL, nothing, NULL) != 0) { printf("pthread_create_join_us error\n"); return; }
        pthread_join(th, NULL);
    }
    printf("pthread_create_join_us %.2f\n", (now_us() - t) / rounds);
}

/* Futex ping-pong: `turn` alternates 0 -> 1 -> 0; each side waits on the futex until it is its
 * turn and wakes the other (futex(2): FUTEX_WAIT returns at once when the value differs). */
static atomic_int turn;
static int futex_rounds;

static void futex_wait(int expected) { syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0); }
static void futex_wake(void) { syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

static void *futex_partner(void *arg)
{
    for (int i = 0; i < futex_rounds; i++) {
        while (atomic_load(&turn) != 1) futex_wait(0);
        atomic_store(&turn, 0);
        futex_wake();
    }
    return arg;
}

static void futex_pingpong(int rounds)
{
    futex_rounds = rounds;
    pthread_t th;
    if (pthread_create(&th, NULL, futex_partner, NULL) != 0) { printf("futex_pingpong_us error\n"); return; }
    double t = now_us();
    for (int i = 0; i < rounds; i++) {
        atomic_store(&turn, 1);
        futex_wake();
        while (atomic_load(&turn) != 0) futex_wait(1);
    }
    double us = (now_us() - t) / rounds;
    pthread_join(th, NULL);
    printf("futex_pingpong_us %.2f\n", us);
}

static void pipe_pingpong(int rounds)
{
    int a[2], b[2];
    if (pipe(a) || pipe(b)) { printf("pipe_pingpong_us error\n"); return; }
    pid_t pid = fork();
    if (pid == 0) {
        close(a[1]);
        close(b[0]);
        char c;
        while (read(a[0], &c, 1) == 1)
            if (write(b[1], &c, 1) != 1) break;
        _exit(0);
    }
    close(a[0]);
    close(b[1]);
    double t = now_us();
    char c = 'x';
    for (int i = 0; i < rounds; i++)
        if (write(a[1], &c, 1) != 1 || read(b[0], &c, 1) != 1) { printf("pipe_pingpong_us error\n"); return; }
    double us = (now_us() - t) / rounds;
    close(a[1]);
    waitpid(pid, NULL, 0);
    printf("pipe_pingpong_us %.2f\n", us);
}

/* The n-body of tests/programs/nbody.c in miniature: a pure floating-point loop, no syscalls. */
static double nbody(long steps)
{
    double x[5] = {0, 4.84, 8.34, 12.89, 15.37}, v[5] = {0, 0.606, 0.276, 0.088, 0.099}, m[5] = {39.47, 0.037, 0.011, 0.0017, 0.002};
    double y[5] = {0, -1.16, 4.12, -15.11, -25.91}, w[5] = {0, 2.81, 1.83, 0.865, 0.587};
    for (long s = 0; s < steps; s++) {
        for (int i = 0; i < 5; i++)
            for (int j = i + 1; j < 5; j++) {
                double dx = x[i] - x[j], dy = y[i] - y[j], d2 = dx * dx + dy * dy + 0.01;
                double f = 0.001 / (d2 * __builtin_sqrt(d2));
                v[i] -= dx * m[j] * f; w[i] -= dy * m[j] * f;
                v[j] += dx * m[i] * f; w[j] += dy * m[i] * f;
            }
        for (int i = 0; i < 5; i++) { x[i] += 0.001 * v[i]; y[i] += 0.001 * w[i]; }
    }
    return x[1] + y[1];
}

static atomic_int stop_spinner;

static void *spinner(void *arg)
{
    volatile unsigned long n = 0;
    while (!atomic_load_explicit(&stop_spinner, memory_order_relaxed)) n++;
    return arg;
}

static void nbody_pair(long steps)
{
    double t = now_us(), c = thread_cpu_us();
    volatile double r = nbody(steps);
    double alone = now_us() - t, alone_cpu = thread_cpu_us() - c;
    printf("nbody_alone_us %.0f\n", alone);
    if (c >= 0) printf("nbody_alone_cpu_us %.0f\n", alone_cpu);
    /* The timer on: an interval timer armed far in the future makes the guest kernel take
     * preemption ticks (docs/guest-abi.md) while nothing else runs; on the host it costs nothing. */
    struct itimerval far = {{0, 0}, {3600, 0}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &far, NULL);
    t = now_us();
    r = nbody(steps);
    printf("nbody_ticks_us %.0f\n", now_us() - t);
    setitimer(ITIMER_REAL, &off, NULL);
    fflush(stdout);
    pthread_t th;
    if (pthread_create(&th, NULL, spinner, NULL) != 0) { printf("nbody_with_spinner_us error\n"); return; }
    t = now_us();
    c = thread_cpu_us();
    r = nbody(steps);
    double with = now_us() - t, with_cpu = thread_cpu_us() - c;
    atomic_store(&stop_spinner, 1);
    pthread_join(th, NULL);
    (void)r;
    printf("nbody_with_spinner_us %.0f\n", with);
    if (c >= 0) printf("nbody_with_spinner_cpu_us %.0f\n", with_cpu);
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: process_bench_guest TRUE_PATH ROUNDS STEPS\n"); return 2; }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    printf("pinned %d\n", sched_setaffinity(0, sizeof one, &one) == 0);
    int rounds = atoi(argv[2]);
    fflush(stdout);
    fork_exec(argv[1], rounds);
    fflush(stdout);
    thread_create(rounds);
    futex_pingpong(rounds * 10);
    fflush(stdout);
    pipe_pingpong(rounds * 10);
    nbody_pair(atol(argv[3]));
    return 0;
}
