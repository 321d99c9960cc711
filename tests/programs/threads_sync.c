/* threads_sync.c: pthread_create + mutex + condition variables: 4 threads add 100000 each to a
 * counter under a mutex; a producer hands 1..1000 to a consumer through a one-slot buffer guarded
 * by two condition variables. Prints "counter=400000 handed=1000 sum=500500 joined=4"; exit 0. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t full = PTHREAD_COND_INITIALIZER, empty = PTHREAD_COND_INITIALIZER;
static long counter, slot;
static int has_item;

static void *adder(void *arg)
{
    for (int i = 0; i < 100000; i++) {
        pthread_mutex_lock(&mu);
        counter++;
        pthread_mutex_unlock(&mu);
    }
    return arg;
}

static void *producer(void *arg)
{
    for (long i = 1; i <= 1000; i++) {
        pthread_mutex_lock(&mu);
        while (has_item) pthread_cond_wait(&empty, &mu);
        slot = i;
        has_item = 1;
        pthread_cond_signal(&full);
        pthread_mutex_unlock(&mu);
    }
    return arg;
}

static void *consumer(void *arg)
{
    long *out = arg, sum = 0, n = 0;
    while (n < 1000) {
        pthread_mutex_lock(&mu);
        while (!has_item) pthread_cond_wait(&full, &mu);
        sum += slot;
        n++;
        has_item = 0;
        pthread_cond_signal(&empty);
        pthread_mutex_unlock(&mu);
    }
    out[0] = n;
    out[1] = sum;
    return NULL;
}

int main(void)
{
    pthread_t add[4], prod, cons;
    long result[2] = {0, 0};
    int joined = 0;
    for (intptr_t i = 0; i < 4; i++)
        if (pthread_create(&add[i], NULL, adder, (void *)i) != 0) { perror("pthread_create"); return 1; }
    if (pthread_create(&cons, NULL, consumer, result) != 0 || pthread_create(&prod, NULL, producer, NULL) != 0) {
        perror("pthread_create");
        return 1;
    }
    for (intptr_t i = 0; i < 4; i++) {
        void *ret;
        pthread_join(add[i], &ret);
        joined += ret == (void *)i;
    }
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    printf("counter=%ld handed=%ld sum=%ld joined=%d\n", counter, result[0], result[1], joined);
    return 0;
}
