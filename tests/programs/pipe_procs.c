/* pipe_procs.c: pipes between processes: the parent streams 1 MiB (16x a pipe's buffer) to a child
 * that counts and checksums it and answers on a second pipe; then two children form a pipeline
 * (writer | line counter) while the parent waits. Prints fixed figures; exit 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) { perror("write"); exit(1); }
        p += w;
        n -= (size_t)w;
    }
}

int main(void)
{
    int down[2], up[2];
    if (pipe(down) || pipe(up)) { perror("pipe"); return 1; }
    pid_t child = fork();
    if (child == 0) {
        close(down[1]);
        close(up[0]);
        char buf[8192];
        unsigned long count = 0, sum = 0;
        ssize_t n;
        while ((n = read(down[0], buf, sizeof buf)) > 0)
            for (ssize_t i = 0; i < n; i++) { count++; sum = sum * 31 + (unsigned char)buf[i]; }
        char reply[64];
        int len = snprintf(reply, sizeof reply, "%lu %lx", count, sum);
        write_all(up[1], reply, (size_t)len);
        _exit(0);
    }
    close(down[0]);
    close(up[1]);
    static char data[1 << 20];
    unsigned long want = 0;
    for (size_t i = 0; i < sizeof data; i++) { data[i] = (char)('a' + i % 26); want = want * 31 + (unsigned char)data[i]; }
    write_all(down[1], data, sizeof data);
    close(down[1]);
    char reply[64] = {0};
    ssize_t got = 0, n;
    while ((n = read(up[0], reply + got, sizeof reply - 1 - (size_t)got)) > 0) got += n;
    int st;
    waitpid(child, &st, 0);
    char expect[64];
    snprintf(expect, sizeof expect, "%lu %lx", (unsigned long)sizeof data, want);
    printf("child read: %s (%s), exit %d\n", reply, strcmp(reply, expect) == 0 ? "matches" : "WRONG", WEXITSTATUS(st));

    int p[2];
    if (pipe(p)) { perror("pipe"); return 1; }
    fflush(stdout);
    pid_t writer = fork();
    if (writer == 0) {
        close(p[0]);
        for (int i = 0; i < 5000; i++) write_all(p[1], "hello through a pipe\n", 21);
        _exit(0);
    }
    pid_t counter = fork();
    if (counter == 0) {
        close(p[1]);
        char buf[4096];
        long lines = 0;
        ssize_t r;
        while ((r = read(p[0], buf, sizeof buf)) > 0)
            for (ssize_t i = 0; i < r; i++) lines += buf[i] == '\n';
        printf("counter saw %ld lines\n", lines);
        fflush(stdout);
        _exit(lines == 5000 ? 0 : 1);
    }
    close(p[0]);
    close(p[1]);
    int s1, s2;
    waitpid(writer, &s1, 0);
    waitpid(counter, &s2, 0);
    printf("pipeline: writer %d counter %d\n", WEXITSTATUS(s1), WEXITSTATUS(s2));
    return 0;
}
