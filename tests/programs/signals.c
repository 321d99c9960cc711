/* signals.c: signal handling, one case per argv[1]: "alarm" (alarm(1) ends a busy loop through a
 * SIGALRM handler), "segv" (a SIGSEGV handler siglongjmps out of three bad loads; the mask is
 * restored), "raise" (SA_SIGINFO handler via raise, a blocked signal stays pending until
 * unblocked). Fixed output; exit 0 (2 on a bad argument). */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t fired, usr1_count, usr2_seen, info_ok = 1;
static sigjmp_buf env;

static void on_alarm(int sig) { fired = sig; }
static void on_segv(int sig) { (void)sig; siglongjmp(env, 1); }
static void on_usr(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    if (si->si_signo != sig) info_ok = 0;
    if (sig == SIGUSR1) usr1_count++;
    else usr2_seen = 1;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "alarm") == 0) {
        signal(SIGALRM, on_alarm);
        alarm(1);
        unsigned long spins = 0;
        while (!fired) spins++;
        printf("alarm ended the loop: signal %d, spun %s\n", fired, spins > 0 ? "yes" : "no");
        return 0;
    }
    if (strcmp(mode, "segv") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_segv;
        sigaction(SIGSEGV, &sa, NULL);
        int recovered = 0;
        for (int i = 0; i < 3; i++) {
            if (sigsetjmp(env, 1) == 0) {
                volatile int *bad = (volatile int *)(unsigned long)(0x10 + 8 * i);
                printf("never %d\n", *bad);
            } else {
                recovered++;
            }
        }
        sigset_t now;
        sigprocmask(SIG_BLOCK, NULL, &now);
        printf("recovered %d times, SIGSEGV blocked after: %d\n", recovered, sigismember(&now, SIGSEGV));
        return 0;
    }
    if (strcmp(mode, "raise") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_usr;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGUSR1, &sa, NULL);
        sigaction(SIGUSR2, &sa, NULL);
        for (int i = 0; i < 5; i++) raise(SIGUSR1);
        sigset_t block, pending;
        sigemptyset(&block);
        sigaddset(&block, SIGUSR2);
        sigprocmask(SIG_BLOCK, &block, NULL);
        raise(SIGUSR2);
        sigpending(&pending);
        int was_pending = sigismember(&pending, SIGUSR2), seen_while_blocked = usr2_seen;
        sigprocmask(SIG_UNBLOCK, &block, NULL);
        printf("usr1 handled %d, si_signo right %d, usr2 pending %d, ran while blocked %d, ran after unblock %d\n",
               usr1_count, info_ok, was_pending, seen_while_blocked, usr2_seen);
        signal(SIGUSR1, SIG_IGN);
        raise(SIGUSR1);
        printf("ignored signal: still here\n");
        return 0;
    }
    fprintf(stderr, "usage: signals alarm|segv|raise\n");
    return 2;
}
