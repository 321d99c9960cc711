/* fork_limit.c: forks children that wait on a pipe until fork fails (at most argv[1], default
 * 1000), then prints "forked N then EAGAIN|<errno>|cap", releases and reaps them all; exit 0.
 * Under `vmfork run --max-procs P` fork must fail with EAGAIN once P processes exist. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long cap = argc > 1 ? atol(argv[1]) : 1000;
    int hold[2];
    if (pipe(hold)) { perror("pipe"); return 1; }
    long forked = 0;
    int err = 0;
    while (forked < cap) {
        pid_t pid = fork();
        if (pid < 0) { err = errno; break; }
        if (pid == 0) {
            close(hold[1]);
            char c;
            while (read(hold[0], &c, 1) > 0) {}
            _exit(0);
        }
        forked++;
    }
    close(hold[1]);
    long reaped = 0;
    while (wait(NULL) > 0) reaped++;
    if (err == EAGAIN) printf("forked %ld then EAGAIN, reaped %ld\n", forked, reaped);
    else if (err) printf("forked %ld then errno %d, reaped %ld\n", forked, err, reaped);
    else printf("forked %ld then cap, reaped %ld\n", forked, reaped);
    return 0;
}
