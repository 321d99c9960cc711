/* big_output.c: large stdout via printf: argv[1] lines (default 100000) of "line %d: ..." (~6.6 MB by default); exit 0. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
    for (long i = 0; i < n; i++)
        printf("line %ld: the quick brown fox jumps over the lazy dog 0123456789\n", i);
    return 0;
}
