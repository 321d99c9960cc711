/* flood.c: writes 'x' to stdout forever in 64 KiB write(1) calls (output flood); exits 1 only if write fails (e.g. EPIPE/EBADF). */
#include <string.h>
#include <unistd.h>

int main(void)
{
    static char buf[65536];
    memset(buf, 'x', sizeof buf);
    for (;;) {
        if (write(1, buf, sizeof buf) < 0)
            return 1;
    }
}
