/* spin.c: writes "spinning\n" with write(2), then an infinite busy loop on a volatile counter, no
 * syscalls; never exits (for timeout/kill tests: the line must survive the timeout). */
#include <unistd.h>

int main(void)
{
    volatile unsigned long counter = 0;
    if (write(1, "spinning\n", 9) != 9) return 1;
    for (;;)
        counter++;
}
