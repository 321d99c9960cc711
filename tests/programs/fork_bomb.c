/* fork_bomb.c: hostile: forks forever (each child forks too); prints "bomb\n" first. Never exits
 * on its own: a job must end by its timeout or memory limit while vmfork survives. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    printf("bomb\n");
    fflush(stdout);
    for (;;) fork();
}
