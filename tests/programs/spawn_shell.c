/* spawn_shell.c: system(), popen (both directions) and posix_spawn/posix_spawnp, which need
 * /bin/sh, /bin/echo and /usr/bin/wc (run it from a root file system). Fixed output; exit 0. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(void)
{
    fflush(stdout);
    int st = system("echo from system; exit 3");
    printf("system -> exited %d code %d\n", WIFEXITED(st), WEXITSTATUS(st));

    FILE *p = popen("echo from popen; echo second line", "r");
    char line[256];
    while (p && fgets(line, sizeof line, p)) printf("popen read: %s", line);
    printf("pclose -> %d\n", p ? WEXITSTATUS(pclose(p)) : -1);

    fflush(stdout);
    p = popen("/usr/bin/wc -c", "w");
    for (int i = 0; i < 100; i++) fputs("0123456789", p);
    printf("pclose(w) -> %d\n", WEXITSTATUS(pclose(p)));

    fflush(stdout);
    pid_t pid;
    char *echo_argv[] = {"echo", "from", "posix_spawn", NULL};
    int rc = posix_spawn(&pid, "/bin/echo", NULL, NULL, echo_argv, environ);
    if (rc == 0) waitpid(pid, &st, 0);
    printf("posix_spawn -> %s, code %d\n", rc == 0 ? "ok" : strerror(rc), rc == 0 ? WEXITSTATUS(st) : -1);

    char *sh_argv[] = {"sh", "-c", "exit 5", NULL};
    rc = posix_spawnp(&pid, "sh", NULL, NULL, sh_argv, environ);
    if (rc == 0) waitpid(pid, &st, 0);
    printf("posix_spawnp -> %s, code %d\n", rc == 0 ? "ok" : strerror(rc), rc == 0 ? WEXITSTATUS(st) : -1);

    char *missing_argv[] = {"missing", NULL};
    rc = posix_spawn(&pid, "/no/such/program", NULL, NULL, missing_argv, environ);
    if (rc == 0) { waitpid(pid, &st, 0); rc = WEXITSTATUS(st); }
    printf("posix_spawn missing -> %s\n", rc == 0 ? "ok" : "failed");
    return 0;
}
