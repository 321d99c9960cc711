/* thread_bomb.c: hostile: creates threads (default attributes: 8 MiB stacks) that block forever
 * until pthread_create fails, then prints "thread bomb stopped: <errno name>" and exits 3.
 * Do not run it on a shared host: there it creates tens of thousands of threads. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *sleeper(void *arg)
{
    for (;;) pause();
    return arg;
}

int main(void)
{
    printf("thread bomb\n");
    fflush(stdout);
    for (long n = 0;; n++) {
        pthread_t t;
        int rc = pthread_create(&t, NULL, sleeper, NULL);
        if (rc != 0) {
            printf("thread bomb stopped: %s\n", rc == EAGAIN ? "EAGAIN" : rc == ENOMEM ? "ENOMEM" : "other");
            fflush(stdout);
            _exit(3);
        }
    }
}
