/* fork_wait.c: fork + waitpid: children see their own copy of memory and the right parent, exit
 * codes and a death by SIGKILL come back through waitpid, waitpid(-1) reaps every child, and with
 * none left it fails with ECHILD. Output is fixed (the parent prints only after each wait); exit 0. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int x = 1;

int main(void)
{
    pid_t parent = getpid();
    for (int i = 0; i < 3; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) {
            x = 100 + i;
            printf("child %d: own pid %d, parent right %d, x=%d\n", i, getpid() != parent, getppid() == parent, x);
            exit(10 + i);
        }
        int st;
        pid_t w = waitpid(pid, &st, 0);
        printf("parent: waited right pid %d, exited %d code %d, x=%d\n", w == pid, WIFEXITED(st), WEXITSTATUS(st), x);
    }
    fflush(stdout);
    pid_t victim = fork();
    if (victim == 0) { raise(SIGKILL); _exit(99); }
    int st;
    waitpid(victim, &st, 0);
    printf("killed child: signaled %d signal %d\n", WIFSIGNALED(st), WTERMSIG(st));
    for (int i = 0; i < 5; i++)
        if (fork() == 0) _exit(i + 1);
    int sum = 0, reaped = 0;
    pid_t w;
    while ((w = waitpid(-1, &st, 0)) > 0) { sum += WEXITSTATUS(st); reaped++; }
    printf("reaped %d, codes sum %d, then %s\n", reaped, sum, errno == ECHILD ? "ECHILD" : "other error");
    return 0;
}
