/* exit_races: process and thread exits that must release what blocked threads hold.
 * 1. clone() with an exit signal above 64 (Linux accepts it and does not notify the parent).
 * 2. A child whose second thread is blocked writing a full pipe calls exit_group: the reader
 *    sees EOF (the blocked writer's reference to the pipe is released).
 * 3. A process with a thread blocked in read() calls execve: the exec waits for it, then runs.
 * Prints one line per case; deterministic (compared with the host). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int pfd[2], rfd[2];

static void* blocked_writer(void* a) {
  (void)a;
  static char buf[1 << 20];
  if (write(pfd[1], buf, sizeof buf) < 0) return 0;
  return 0;
}

static void* blocked_reader(void* a) {
  (void)a;
  char c;
  if (read(rfd[0], &c, 1) < 0) return 0;
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 1) {  /* the exec'd image */
    printf("exec'd image runs: %s\n", argv[1]);
    return 0;
  }
  long c = syscall(SYS_clone, 0x41 /* exit signal 65 */, 0, 0, 0, 0);
  if (c == 0) _exit(0);
  printf("clone with exit signal 65: %s\n", c > 0 ? "created" : "refused");
  usleep(20000);

  if (pipe(pfd)) return 1;
  pid_t p = fork();
  if (p == 0) {
    pthread_t t;
    pthread_create(&t, 0, blocked_writer, 0);
    usleep(20000);
    _exit(3);
  }
  close(pfd[1]);
  char buf[65536];
  long total = 0;
  ssize_t n;
  while ((n = read(pfd[0], buf, sizeof buf)) > 0) total += n;
  int st;
  waitpid(p, &st, 0);
  printf("EOF after the writer's exit_group: %s, child exit %d\n", total > 0 ? "yes" : "no data", WEXITSTATUS(st));

  fflush(stdout);
  p = fork();
  if (p == 0) {
    if (pipe(rfd)) _exit(1);
    pthread_t t;
    pthread_create(&t, 0, blocked_reader, 0);
    usleep(10000);
    execl("/proc/self/exe", argv[0], "after a blocked thread", (char*)0);
    _exit(127);
  }
  waitpid(p, &st, 0);
  printf("exec child exit %d\n", WEXITSTATUS(st));
  return 0;
}
