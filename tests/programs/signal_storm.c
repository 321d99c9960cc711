/* signal_storm.c: hostile: the parent sends 20000 SIGUSR1 to a child (and raises 20000 at
 * itself), then SIGTERM; the child counts in handlers and exits 0 once it got some and the TERM.
 * Prints "storm done: child got signals 1, exit 0, self 20000". With argv[1] "forever" the parent
 * and child signal each other without end (a job that must time out). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got, term, self_count;

static void on_usr1(int sig) { (void)sig; got++; }
static void on_term(int sig) { (void)sig; term = 1; }
static void on_usr2(int sig) { (void)sig; self_count++; }

int main(int argc, char **argv)
{
    int forever = argc > 1 && strcmp(argv[1], "forever") == 0;
    signal(SIGUSR1, on_usr1);
    signal(SIGTERM, on_term);
    signal(SIGUSR2, on_usr2);
    int ready[2];
    if (pipe(ready)) { perror("pipe"); return 1; }
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        close(ready[0]);
        if (write(ready[1], "r", 1) != 1) _exit(1);
        if (forever)
            for (;;) kill(parent, SIGUSR1);
        sigset_t none;
        sigemptyset(&none);
        while (!term) sigsuspend(&none);
        _exit(got > 0 ? 0 : 1);
    }
    close(ready[1]);
    char c;
    if (read(ready[0], &c, 1) != 1) { perror("read"); return 1; }
    for (int i = 0; !forever && i < 20000; i++) {
        kill(child, SIGUSR1);
        raise(SIGUSR2);
    }
    while (forever) kill(child, SIGUSR1);
    kill(child, SIGTERM);
    int st;
    waitpid(child, &st, 0);
    printf("storm done: child got signals %d, exit %d, self %d\n", WIFEXITED(st), WEXITSTATUS(st), self_count);
    return 0;
}
