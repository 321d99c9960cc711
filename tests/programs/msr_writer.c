/* Reset-isolation test job for MSRs. A job can write an MSR through the guest kernel's
 * privileged-op trap: a call to the kernel symbol priv_trap_insn (a ud2 that the kernel's #UD
 * path treats as a privileged request: rdi = 2 for WRMSR, rsi = index, rdx = value), reachable
 * because every page is user-accessible in PVM native mode. The WRMSR is done; the return to
 * the job then takes a #GP in the kernel's IRETQ, which ends the job: one MSR per job.
 *   "write ADDR INDEX VALUE" (hex): writes one MSR that way (ADDR is priv_trap_insn).
 *   "tsc": prints "tsc VALUE" (RDTSC) and exits 0. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t (*trap_fn)(uint64_t op, uint64_t a, uint64_t b);

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "tsc") == 0) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    printf("tsc %llu\n", (unsigned long long)(((uint64_t)hi << 32) | lo));
    return 0;
  }
  if (argc != 5 || strcmp(argv[1], "write") != 0) return 2;
  trap_fn trap = (trap_fn)strtoull(argv[2], 0, 16);
  trap(2, strtoull(argv[3], 0, 16), strtoull(argv[4], 0, 16));
  printf("returned\n");
  return 0;
}
