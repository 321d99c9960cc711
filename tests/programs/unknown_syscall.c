/* unknown_syscall: calls syscall 999 (no such call) and an unimplemented real one (acct, 163);
 * prints each result and errno; exits 0. Expected: "999 -> -1 errno=38\nacct -> -1 errno=38\n". */
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
  long r = syscall(999);
  printf("999 -> %ld errno=%d\n", r, errno);
  errno = 0;
  r = syscall(SYS_acct, 0);
  printf("acct -> %ld errno=%d\n", r, errno);
  return 0;
}
