/* entropy_clock.c: prints what a job sees of its entropy and clock: 16 bytes of getrandom(2),
 * the 16 AT_RANDOM bytes (getauxval(3)) in hex, and time(NULL); for `vmfork measure
 * --deterministic`, which must make the output identical run after run. */
#include <stdio.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <time.h>

int main(void)
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != sizeof r) return 1;
    const unsigned char* at = (const unsigned char*)getauxval(AT_RANDOM);
    for (int i = 0; i < 16; i++) printf("%02x", r[i]);
    printf(" ");
    for (int i = 0; i < 16 && at; i++) printf("%02x", at[i]);
    printf(" %lld\n", (long long)time(NULL));
    return 0;
}
