/* Pool isolation test job. "dirty SECRET": fills 32 MiB of heap and the stack with SECRET,
 * leaves fds open, prints SECRET and exits. "check SECRET": allocates the same memory and
 * reports whether any of it, or its initial stack, holds SECRET, whether any fd above 2 is
 * open, and prints "clean" or what it found. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEAP (32u << 20)

static int contains(const char* p, size_t n, const char* s) {
  size_t l = strlen(s);
  for (size_t i = 0; i + l <= n; i++)
    if (p[i] == s[0] && memcmp(p + i, s, l) == 0) return 1;
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const char* secret = argv[2];
  size_t l = strlen(secret);
  char* heap = malloc(HEAP);
  char stack[65536];
  if (strcmp(argv[1], "dirty") == 0) {
    for (size_t i = 0; i + l <= HEAP; i += l) memcpy(heap + i, secret, l);
    for (size_t i = 0; i + l <= sizeof stack; i += l) memcpy(stack + i, secret, l);
    for (int i = 0; i < 5; i++) open("/dev/null", O_RDONLY);
    printf("%s %d\n", secret, stack[100]);
    return 0;
  }
  int found = 0;
  /* The secret is split so that argv itself does not match a scan of the stack. */
  char probe[64];
  snprintf(probe, sizeof probe, "%s", secret);
  argv[2][0] = 0;
  if (contains(heap, HEAP, probe)) { printf("heap holds the secret\n"); found = 1; }
  if (contains(stack, sizeof stack, probe)) { printf("stack holds the secret\n"); found = 1; }
  for (int fd = 3; fd < 64; fd++)
    if (fcntl(fd, F_GETFD) >= 0) { printf("fd %d is open\n", fd); found = 1; }
  if (!found) printf("clean\n");
  return found;
}
