/* stuck: ways a job stops that the kernel and VMM must name. argv[1]:
 *   deadlock  - prints a line, then reads a pipe whose only writer is itself (waits forever)
 *   overflow  - prints a line, then recurses without bound (the stack overflows)
 * Neither returns normally. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int depth(volatile char* prev) {
  volatile char frame[4096];
  frame[0] = prev ? prev[0] + 1 : 0;
  return depth(frame) + frame[1];
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  printf("stuck: %s\n", mode);
  fflush(stdout);
  if (!strcmp(mode, "deadlock")) {
    int p[2];
    char c;
    if (pipe(p)) return 1;
    return (int)read(p[0], &c, 1);
  }
  if (!strcmp(mode, "overflow")) return depth(0);
  return 2;
}
