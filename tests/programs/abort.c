/* abort.c: calls abort() -> raises SIGABRT (exit status 134 from a shell); prints nothing. */
#include <stdlib.h>

int main(void)
{
    abort();
}
