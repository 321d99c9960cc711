/* crash_segv.c: stores to address 0x10 through a volatile pointer -> page fault (SIGSEGV natively, exit status 139 from a shell); prints nothing. */
#include <stdint.h>

int main(void)
{
    /* the address goes through a volatile object so the compiler neither warns
       (-Warray-bounds) nor folds the store into a trap */
    volatile uintptr_t addr = 0x10;
    *(volatile int *)addr = 1;
    return 0;
}
