/* Pool isolation test job. "dirty SECRET": fills 32 MiB of heap and the stack with SECRET,
 * leaves fds open, maps memory at fixed addresses, prints SECRET and exits. "map SECRET": only
 * the fixed mappings (a job that changes few pages, so a reset copies them back in place). "check SECRET": allocates the same memory and
 * reports whether any of it, or its initial stack, holds SECRET, whether any fd above 2 is
 * open, and prints "clean" or what it found. "stdin": the mode and secret come as one line
 * "MODE SECRET" on stdin, for a template frozen at that read; there the process, and so its
 * page tables, are the template's in every job, and the fixed mappings include one page (NEAR)
 * whose page-table entry lands in a table the process already had. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEAP (32u << 20)
/* A mapping the dirty job makes and the check job must not find: after a reset, no translation
 * of the previous job (in the guest's page tables or in the host's shadow of them) may survive. */
#define STALE ((char*)0x200000000000ul)
#define STALE_READ ((char*)0x300000000000ul) /* mapped and only read: zero pages, never copied */

static sigjmp_buf segv_jump;
static void on_segv(int sig) { siglongjmp(segv_jump, sig); }

static int contains(const char* p, size_t n, const char* s) {
  size_t l = strlen(s);
  for (size_t i = 0; i + l <= n; i++)
    if (p[i] == s[0] && memcmp(p + i, s, l) == 0) return 1;
  return 0;
}

/* "stdin" mode: a page mapped and touched before the stdin read (so in the template), and a
 * page 64 KiB above it that jobs map: its entry goes into the page table the first one made. */
#define ANCHOR ((char*)0x100000000000ul)
#define NEAR (ANCHOR + (64u << 10))

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  char line[256];
  const char* mode = argv[1];
  char* secret = argv[2];
  char* near = NULL;
  if (strcmp(mode, "stdin") == 0) {
    char* a = mmap(ANCHOR, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (a != ANCHOR) return 3;
    a[0] = 1;
    near = NEAR;
    if (!fgets(line, sizeof line, stdin)) return 2;
    line[strcspn(line, "\n")] = 0;
    char* sp = strchr(line, ' ');
    if (!sp) return 2;
    *sp = 0;
    mode = line;
    secret = sp + 1;
    if (strcmp(mode, "check") == 0) {  /* first thing: before any flush the job itself causes */
      signal(SIGSEGV, on_segv);
      if (sigsetjmp(segv_jump, 1) == 0) {
        volatile char c = NEAR[0];
        printf("the last job's page near the template's own mapping is still readable (%d)\n", c);
        return 1;
      }
    }
  }
  size_t l = strlen(secret);
  char* heap = malloc(HEAP);
  char stack[65536];
  if (strcmp(mode, "kernel") == 0) {
    /* Boot PML4 at GPA 0x11000 through the direct map (guest-kernel/abi/vmfork_abi.h). */
    volatile unsigned long* pml4 = (volatile unsigned long*)(0xffff888000000000ul + 0x11000);
    pml4[300] = pml4[273];
    printf("kernel\n");
    return 0;
  }
  /* "maphang": "map", then spin until the VMM stops the job (a timeout), so the job ends
   * with this process's page tables still loaded. */
  const int hang = strcmp(mode, "maphang") == 0;
  const int map_only = strcmp(mode, "map") == 0 || hang;
  if (strcmp(mode, "dirty") == 0 || map_only) {
    if (!map_only)
      for (size_t i = 0; i + l <= HEAP; i += l) memcpy(heap + i, secret, l);
    for (size_t i = 0; i + l <= sizeof stack; i += l) memcpy(stack + i, secret, l);
    for (int i = 0; i < 5; i++) open("/dev/null", O_RDONLY);
    char* m = mmap(STALE, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m != STALE) { printf("mmap at %p failed\n", (void*)STALE); return 1; }
    for (size_t i = 0; i + l <= (1u << 20); i += 4096) memcpy(m + i, secret, l);
    volatile char* r = mmap(STALE_READ, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (r != (volatile char*)STALE_READ) { printf("mmap at %p failed\n", (void*)STALE_READ); return 1; }
    for (size_t i = 0; i < (1u << 20); i += 4096) (void)r[i];
    if (near) {
      char* n = mmap(near, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (n != near) { printf("mmap at %p failed\n", (void*)near); return 1; }
      memcpy(n, secret, l);
    }
    printf("%s %d\n", secret, stack[100]);
    if (hang) {
      fflush(stdout);
      for (volatile unsigned long spin = 0;; spin++) {
      }
    }
    return 0;
  }
  int found = 0;
  /* The secret is split so that argv itself does not match a scan of the stack. */
  char probe[64];
  snprintf(probe, sizeof probe, "%s", secret);
  secret[0] = 0;
  if (contains(heap, HEAP, probe)) { printf("heap holds the secret\n"); found = 1; }
  if (contains(stack, sizeof stack, probe)) { printf("stack holds the secret\n"); found = 1; }
  for (int fd = 3; fd < 64; fd++)
    if (fcntl(fd, F_GETFD) >= 0) { printf("fd %d is open\n", fd); found = 1; }
  signal(SIGSEGV, on_segv);
  if (sigsetjmp(segv_jump, 1) == 0) {
    volatile char c = STALE[0];
    printf("the last job's mapping is still readable (%d)\n", c);
    found = 1;
  }
  if (sigsetjmp(segv_jump, 1) == 0) {
    volatile char c = STALE_READ[0];
    printf("the last job's read-only mapping is still readable (%d)\n", c);
    found = 1;
  }
  if (near && sigsetjmp(segv_jump, 1) == 0) {
    volatile char c = near[0];
    printf("the last job's page near the template's own mapping is still readable (%d)\n", c);
    found = 1;
  }
  if (!found) printf("clean\n");
  return found;
}
