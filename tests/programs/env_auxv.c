/* env_auxv.c: prints argc/argv/envp, auxv (AT_PAGESZ, AT_RANDOM, AT_ENTRY, AT_PHDR), getrandom and /dev/urandom success, uname sysname/machine, readlink /proc/self/exe, time(NULL) sanity and value, and the random bytes it got (hex); exit 0. Output depends on argv/env/host. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv, char **envp)
{
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    for (int i = 0; envp[i]; i++)
        printf("envp[%d]=%s\n", i, envp[i]);

    printf("AT_PAGESZ=%lu\n", getauxval(AT_PAGESZ));
    printf("AT_RANDOM_nonnull=%d\n", getauxval(AT_RANDOM) != 0);
    printf("AT_ENTRY_nonzero=%d\n", getauxval(AT_ENTRY) != 0);
    printf("AT_PHDR_nonzero=%d\n", getauxval(AT_PHDR) != 0);

    unsigned char rnd[16];
    ssize_t g = getrandom(rnd, sizeof rnd, 0);
    printf("getrandom_ok=%d\n", g == (ssize_t)sizeof rnd);
    printf("getrandom=");
    for (unsigned i = 0; i < sizeof rnd; i++) printf("%02x", rnd[i]);
    printf("\nat_random=");
    for (unsigned i = 0; i < 16; i++) printf("%02x", ((unsigned char *)getauxval(AT_RANDOM))[i]);
    printf("\n");

    int ok = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ok = read(fd, rnd, sizeof rnd) == (ssize_t)sizeof rnd;
        printf("urandom=");
        for (unsigned i = 0; i < sizeof rnd; i++) printf("%02x", rnd[i]);
        printf("\n");
        if (close(fd) != 0)
            ok = 0;
    }
    printf("urandom_ok=%d\n", ok);

    struct utsname u;
    if (uname(&u) == 0)
        printf("sysname=%s machine=%s\n", u.sysname, u.machine);
    else
        printf("uname failed\n");

    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n >= 0) {
        exe[n] = '\0';
        printf("exe=%s\n", exe);
    } else {
        printf("exe=(readlink failed)\n");
    }

    time_t now = time(NULL);
    printf("time_sane=%d\n", now > 1700000000);
    printf("time=%lld\n", (long long)now);
    return 0;
}
