/* exit_code.c: writes "exiting with N\n" to stderr and exits with status N = argv[1] (default 42; the shell sees N & 255). */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    int code = argc > 1 ? atoi(argv[1]) : 42;
    fprintf(stderr, "exiting with %d\n", code);
    return code;
}
