// Pipes, eventfds and their readiness in one process: prints what each call returns so the same
// binary's output on the host and in a vmfork job can be compared byte for byte. Nothing here
// may block for good (one process: a blocking read of an empty pipe would never end).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static char big[1 << 17];

// "name -> result" or "name -> -1 ENAME".
static void show(const char* what, long r) {
  if (r >= 0) {
    printf("%s -> %ld\n", what, r);
    return;
  }
  const char* e = errno == EAGAIN ? "EAGAIN" : errno == EPIPE ? "EPIPE" : errno == EINVAL ? "EINVAL"
                : errno == ESPIPE ? "ESPIPE" : errno == EBADF ? "EBADF" : errno == EBUSY ? "EBUSY" : "other";
  printf("%s -> -1 %s\n", what, e);
}

static int revents(int fd, short events) {
  struct pollfd p = {fd, events, 0};
  int r = poll(&p, 1, 0);
  return r < 0 ? -1 : p.revents;
}

static void basics(void) {
  int p[2];
  show("pipe", pipe(p));
  show("write hello", write(p[1], "hello", 5));
  int avail = -1;
  ioctl(p[0], FIONREAD, &avail);
  printf("FIONREAD %d\n", avail);
  struct stat st;
  fstat(p[0], &st);
  printf("fstat fifo %d size %ld\n", S_ISFIFO(st.st_mode), (long)st.st_size);
  printf("F_GETFL read %o write %o\n", fcntl(p[0], F_GETFL), fcntl(p[1], F_GETFL));
  show("F_GETPIPE_SZ", fcntl(p[0], F_GETPIPE_SZ));
  char buf[64] = {0};
  show("read", read(p[0], buf, sizeof buf));
  printf("got %s\n", buf);
  show("lseek", lseek(p[0], 0, SEEK_SET));
  show("pread", pread(p[0], buf, 1, 0));
  show("pwrite", pwrite(p[1], buf, 1, 0));

  // readv returns what is there without waiting to fill the second buffer.
  write(p[1], "abcde", 5);
  char a[3], b[10];
  struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
  show("readv", readv(p[0], iov, 2));
  struct iovec wv[2] = {{"12", 2}, {"345", 3}};
  show("writev", writev(p[1], wv, 2));
  show("read after writev", read(p[0], buf, sizeof buf));

  // /proc/self/fd names the pipe "pipe:[inode]".
  char path[64], link[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
  ssize_t n = readlink(path, link, sizeof link - 1);
  link[n > 0 ? n : 0] = 0;
  printf("link pipe ok %d\n", strncmp(link, "pipe:[", 6) == 0 && link[n - 1] == ']');

  // Readers and writers are open file descriptions: a dup keeps the write side open.
  int w2 = dup(p[1]);
  close(p[1]);
  show("write via dup", write(w2, "x", 1));
  show("read via dup", read(p[0], buf, sizeof buf));
  int hi = dup2(w2, 700);  // beyond the first chunks of the fd table
  printf("dup2 700 -> %d, F_DUPFD 500 -> %d\n", hi, fcntl(w2, F_DUPFD, 500));
  close(w2);
  show("write via 700", write(700, "yz", 2));
  close(700);
  printf("poll read end with data, writer left via 500: %#x\n", revents(p[0], POLLIN));
  close(500);
  printf("poll read end, no writer: %#x\n", revents(p[0], POLLIN));
  show("read rest", read(p[0], buf, sizeof buf));
  show("read at EOF", read(p[0], buf, sizeof buf));
  printf("poll read end at EOF: %#x\n", revents(p[0], POLLIN));
  close(p[0]);

  // EPIPE when every read end is closed (SIGPIPE is ignored here; the job gets none yet).
  pipe(p);
  close(p[0]);
  show("write no reader", write(p[1], "x", 1));
  printf("poll write end, no reader: %#x\n", revents(p[1], POLLOUT));
  close(p[1]);
  show("pipe2 bad flag", pipe2(p, 0x1));
  pipe2(p, O_DIRECT | O_CLOEXEC);
  printf("O_DIRECT F_GETFL %o FD_CLOEXEC %d\n", fcntl(p[1], F_GETFL), fcntl(p[1], F_GETFD));
  close(p[0]);
  close(p[1]);
}

static void nonblocking(void) {
  int p[2];
  show("pipe2 O_NONBLOCK", pipe2(p, O_NONBLOCK));
  char buf[4096];
  show("read empty", read(p[0], buf, sizeof buf));
  printf("poll empty: read end %#x write end %#x\n", revents(p[0], POLLIN), revents(p[1], POLLOUT));
  long total = 0, r;
  memset(big, 'p', sizeof big);
  while ((r = write(p[1], big, 4096)) > 0) total += r;
  show("write when full", r);
  printf("filled %ld bytes\n", total);
  printf("poll full: read end %#x write end %#x\n", revents(p[0], POLLIN), revents(p[1], POLLOUT | POLLIN));
  fd_set rd, wr;
  FD_ZERO(&rd);
  FD_ZERO(&wr);
  FD_SET(p[0], &rd);
  FD_SET(p[1], &wr);
  struct timeval tv = {0, 0};
  int n = select(p[1] + 1, &rd, &wr, NULL, &tv);
  printf("select full: %d read %d write %d\n", n, FD_ISSET(p[0], &rd), FD_ISSET(p[1], &wr));
  show("F_SETPIPE_SZ 4096 while full", fcntl(p[0], F_SETPIPE_SZ, 4096));
  show("read 4096", read(p[0], buf, 4096));
  printf("poll after read: write end %#x\n", revents(p[1], POLLOUT));
  show("F_SETPIPE_SZ 100000", fcntl(p[1], F_SETPIPE_SZ, 100000));
  show("write 70000 into the bigger pipe", write(p[1], big, 70000));
  long drained = 0;
  while ((r = read(p[0], big, sizeof big)) > 0) drained += r;
  printf("drained %ld\n", drained);
  show("F_SETPIPE_SZ 1", fcntl(p[1], F_SETPIPE_SZ, 1));
  show("F_GETPIPE_SZ", fcntl(p[1], F_GETPIPE_SZ));
  show("F_SETPIPE_SZ 65536", fcntl(p[1], F_SETPIPE_SZ, 65536));

  // PIPE_BUF: a small write goes in whole or not at all.
  show("write 65436", write(p[1], big, 65436));
  show("write 200 into 100 free", write(p[1], big, 200));
  while (read(p[0], big, sizeof big) > 0) {
  }
  // A large non-blocking write takes what fits.
  show("write 70000", write(p[1], big, 70000));
  close(p[0]);
  close(p[1]);

  // Blocking pipe made non-blocking by fcntl and by FIONBIO.
  pipe(p);
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  show("read after F_SETFL O_NONBLOCK", read(p[0], buf, 1));
  fcntl(p[0], F_SETFL, 0);
  int on = 1;
  ioctl(p[0], FIONBIO, &on);
  show("read after FIONBIO", read(p[0], buf, 1));
  printf("F_GETFL %o\n", fcntl(p[0], F_GETFL));

  // poll with a timeout on an empty pipe ends at its timeout with 0.
  struct pollfd pf[3] = {{p[0], POLLIN, 0}, {-1, POLLIN, 0}, {999, POLLIN, 0}};
  n = poll(pf, 1, 30);
  printf("poll timeout: %d revents %#x\n", n, pf[0].revents);
  struct timespec ts = {0, 10000000};
  n = ppoll(pf, 1, &ts, NULL);
  printf("ppoll timeout: %d left %ld\n", n, (long)(ts.tv_sec + ts.tv_nsec));
  n = poll(pf, 3, 30);
  printf("poll bad fds: %d revents %#x %#x %#x\n", n, pf[0].revents, pf[1].revents, pf[2].revents);
  FD_ZERO(&rd);
  FD_SET(p[0], &rd);
  tv.tv_sec = 0;
  tv.tv_usec = 20000;
  n = select(p[0] + 1, &rd, NULL, NULL, &tv);
  printf("select timeout: %d read %d left %ld\n", n, FD_ISSET(p[0], &rd), (long)(tv.tv_sec + tv.tv_usec));
  close(p[0]);
  close(p[1]);
}

static void eventfds(void) {
  int e = eventfd(3, 0);
  uint64_t v = 0;
  show("eventfd read", read(e, &v, 8));
  printf("value %llu\n", (unsigned long long)v);
  printf("poll zero: %#x\n", revents(e, POLLIN | POLLOUT));
  v = 5;
  write(e, &v, 8);
  v = 7;
  write(e, &v, 8);
  printf("poll 12: %#x\n", revents(e, POLLIN | POLLOUT));
  show("eventfd read", read(e, &v, 8));
  printf("value %llu\n", (unsigned long long)v);
  show("short read", read(e, &v, 4));
  v = ~0ull;
  show("write 2^64-1", write(e, &v, 8));
  struct stat st;
  fstat(e, &st);
  printf("fstat mode %o\n", st.st_mode);
  char path[64], link[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", e);
  ssize_t n = readlink(path, link, sizeof link - 1);
  link[n > 0 ? n : 0] = 0;
  printf("link %s\n", link);
  close(e);

  e = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
  printf("F_GETFL %o\n", fcntl(e, F_GETFL));
  for (int i = 0; i < 3; i++) {
    v = 0;
    show("semaphore read", read(e, &v, 8));
    printf("value %llu\n", (unsigned long long)v);
  }
  v = ~0ull - 1;
  show("write max", write(e, &v, 8));
  printf("poll max: %#x\n", revents(e, POLLIN | POLLOUT));
  v = 1;
  show("write past max", write(e, &v, 8));
  close(e);
  show("eventfd2 bad flag", eventfd(0, 0x2));
}

static void epolls(void) {
  int p[2], e = eventfd(0, EFD_NONBLOCK), ep = epoll_create1(EPOLL_CLOEXEC);
  pipe2(p, O_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 11};
  show("epoll_ctl pipe", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = 22;
  show("epoll_ctl eventfd ET", epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev));
  struct epoll_event out[4];
  show("epoll_wait nothing", epoll_wait(ep, out, 4, 0));
  show("epoll_wait 20 ms", epoll_wait(ep, out, 4, 20));
  printf("poll epoll fd: %#x\n", revents(ep, POLLIN));
  write(p[1], "x", 1);
  uint64_t one = 1;
  write(e, &one, 8);
  printf("poll epoll fd: %#x\n", revents(ep, POLLIN));
  int n = epoll_wait(ep, out, 4, 0);
  printf("epoll_wait: %d", n);
  for (int i = 0; i < n; i++) printf(" [%llu %#x]", (unsigned long long)out[i].data.u64, out[i].events);
  printf("\n");
  n = epoll_wait(ep, out, 4, 0);  // level-triggered pipe again, edge-triggered eventfd not
  printf("epoll_wait again: %d", n);
  for (int i = 0; i < n; i++) printf(" [%llu %#x]", (unsigned long long)out[i].data.u64, out[i].events);
  printf("\n");
  write(e, &one, 8);  // a new edge
  n = epoll_wait(ep, out, 4, 0);
  printf("epoll_wait after a write: %d", n);
  for (int i = 0; i < n; i++) printf(" [%llu %#x]", (unsigned long long)out[i].data.u64, out[i].events);
  printf("\n");
  close(p[1]);
  n = epoll_wait(ep, out, 4, 0);
  printf("epoll_wait writer gone: %d", n);
  for (int i = 0; i < n; i++) printf(" [%llu %#x]", (unsigned long long)out[i].data.u64, out[i].events);
  printf("\n");
  close(p[0]);
  close(e);
  close(ep);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  basics();
  nonblocking();
  eventfds();
  epolls();
  printf("done\n");
  return 0;
}
