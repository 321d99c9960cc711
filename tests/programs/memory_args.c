// Memory syscalls with arguments Linux refuses or clamps: each must answer as Linux does, never
// end the job (issue 10, defect 6). Prints one line per check and "done".
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static void check(const char* what, long r) { printf("%s: %ld errno %d\n", what, r, r == -1 ? errno : 0); }

int main(void) {
  long cur = syscall(SYS_brk, 0);
  printf("brk(-1) keeps the break: %d\n", syscall(SYS_brk, (long)-1) == cur);
  printf("brk(2^62) keeps the break: %d\n", syscall(SYS_brk, (long)(1ull << 62)) == cur);
  check("munmap(0, 2^63)", syscall(SYS_munmap, 0L, (long)(1ull << 63)));
  check("munmap(2^62, 4096)", syscall(SYS_munmap, (long)(1ull << 62), 4096L));
  check("madvise(2^62, 4096)", syscall(SYS_madvise, (long)(1ull << 62), 4096L, 4L));
  void* p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  check("mremap to 2^63", mremap(p, 4096, 1ull << 63, MREMAP_MAYMOVE) == MAP_FAILED ? -1 : 0);
  printf("mmap still works: %d\n", mmap(0, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED);
  puts("done");
  return 0;
}
