// timerfd and signalfd in one process (plus a child and a thread that send signals): prints
// what each call returns, with times reduced to booleans, so the same binary's output on the
// host and in a vmfork job can be compared byte for byte. Every wait has an end.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000L

// "name -> result" or "name -> -1 ENAME".
static void show(const char* what, long r) {
  if (r >= 0) {
    printf("%s -> %ld\n", what, r);
    return;
  }
  const char* e = errno == EAGAIN ? "EAGAIN" : errno == EINVAL ? "EINVAL" : errno == EBADF ? "EBADF"
                : errno == EINTR ? "EINTR" : errno == ESPIPE ? "ESPIPE" : "other";
  printf("%s -> -1 %s\n", what, e);
}

static int64_t now_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct itimerspec spec(long value_ns, long interval_ns) {
  struct itimerspec s = {{interval_ns / 1000000000, interval_ns % 1000000000},
                         {value_ns / 1000000000, value_ns % 1000000000}};
  return s;
}

static long ns_of(struct timespec t) { return t.tv_sec * 1000000000L + t.tv_nsec; }

static void link_of(int fd) {
  char path[64], buf[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, buf, sizeof buf - 1);
  buf[n < 0 ? 0 : n] = 0;
  printf("link %s\n", buf);
}

static void timers(void) {
  show("timerfd_create bad clock", timerfd_create(99, 0));
  show("timerfd_create bad flags", timerfd_create(CLOCK_MONOTONIC, 1));
  int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  printf("timerfd_create ok %d\n", t >= 0);
  printf("F_GETFL %o FD_CLOEXEC %d\n", fcntl(t, F_GETFL), fcntl(t, F_GETFD));
  link_of(t);
  uint64_t count = 0;
  struct itimerspec cur;
  show("gettime disarmed", timerfd_gettime(t, &cur));
  printf("disarmed %ld %ld\n", ns_of(cur.it_value), ns_of(cur.it_interval));
  show("read disarmed nonblock", read(t, &count, 8));
  show("read short", read(t, &count, 4));
  show("write", write(t, &count, 8));
  show("lseek", lseek(t, 0, SEEK_SET));
  struct itimerspec bad = spec(0, 0);
  bad.it_value.tv_nsec = 1000000000;
  show("settime bad nsec", timerfd_settime(t, 0, &bad, NULL));
  struct itimerspec s = spec(20 * MS, 0);
  show("settime bad flags", timerfd_settime(t, 4, &s, NULL));
  int p[2];
  if (pipe(p)) return;
  show("settime on a pipe", timerfd_settime(p[0], 0, &s, NULL));
  show("gettime on a pipe", timerfd_gettime(p[0], &cur));
  show("settime bad fd", timerfd_settime(99, 0, &s, NULL));
  close(p[0]);
  close(p[1]);

  // One-shot, relative: not yet expired, then poll(-1) wakes at the expiry.
  int64_t t0 = now_ns(CLOCK_MONOTONIC);
  show("settime one-shot 20ms", timerfd_settime(t, 0, &s, NULL));
  timerfd_gettime(t, &cur);
  printf("armed left in (0,20ms] %d interval %ld\n", ns_of(cur.it_value) > 0 && ns_of(cur.it_value) <= 20 * MS,
         ns_of(cur.it_interval));
  show("read before expiry", read(t, &count, 8));
  struct pollfd pf = {t, POLLIN, 0};
  show("poll 0 before expiry", poll(&pf, 1, 0));
  show("poll -1", poll(&pf, 1, -1));
  printf("revents %d waited >= 19ms %d\n", pf.revents, now_ns(CLOCK_MONOTONIC) - t0 >= 19 * MS);
  show("read one-shot", read(t, &count, 8));
  printf("count %llu\n", (unsigned long long)count);
  timerfd_gettime(t, &cur);
  printf("after one-shot %ld %ld\n", ns_of(cur.it_value), ns_of(cur.it_interval));
  show("read again", read(t, &count, 8));

  // Interval: several expirations while asleep are counted together.
  s = spec(10 * MS, 10 * MS);
  struct itimerspec old;
  show("settime interval 10ms", timerfd_settime(t, 0, &s, &old));
  printf("old %ld %ld\n", ns_of(old.it_value), ns_of(old.it_interval));
  usleep(55000);
  show("read interval", read(t, &count, 8));
  printf("count > 1 %d count <= 6 %d\n", count > 1, count <= 6);
  timerfd_gettime(t, &cur);
  printf("interval %ld left in (0,10ms] %d\n", ns_of(cur.it_interval),
         ns_of(cur.it_value) > 0 && ns_of(cur.it_value) <= 10 * MS);
  s = spec(0, 0);
  show("disarm", timerfd_settime(t, 0, &s, &old));
  printf("old interval %ld\n", ns_of(old.it_interval));
  timerfd_gettime(t, &cur);
  printf("disarmed %ld %ld\n", ns_of(cur.it_value), ns_of(cur.it_interval));
  close(t);

  // Absolute time on CLOCK_MONOTONIC, with a blocking read.
  t = timerfd_create(CLOCK_MONOTONIC, 0);
  int64_t target = now_ns(CLOCK_MONOTONIC) + 30 * MS;
  s = spec(target, 0);
  show("settime abstime +30ms", timerfd_settime(t, TFD_TIMER_ABSTIME, &s, NULL));
  show("blocking read", read(t, &count, 8));
  printf("count %llu reached %d\n", (unsigned long long)count, now_ns(CLOCK_MONOTONIC) >= target);
  close(t);

  // CLOCK_REALTIME absolute in the past: expired at once; CLOCK_BOOTTIME relative.
  t = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
  s = spec(now_ns(CLOCK_REALTIME) - 1000 * MS, 0);
  show("settime realtime past", timerfd_settime(t, TFD_TIMER_ABSTIME, &s, NULL));
  show("read", read(t, &count, 8));
  printf("count %llu\n", (unsigned long long)count);
  close(t);
  t = timerfd_create(CLOCK_BOOTTIME, 0);
  s = spec(5 * MS, 0);
  show("settime boottime 5ms", timerfd_settime(t, 0, &s, NULL));
  show("read", read(t, &count, 8));
  printf("count %llu\n", (unsigned long long)count);
  close(t);

  // epoll_wait(-1) and select(NULL) on a timerfd: woken at the expiry.
  t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  int ep = epoll_create1(0);
  struct epoll_event ev = {EPOLLIN, {.u64 = 42}};
  show("epoll_ctl add", epoll_ctl(ep, EPOLL_CTL_ADD, t, &ev));
  s = spec(20 * MS, 0);
  timerfd_settime(t, 0, &s, NULL);
  struct epoll_event got = {0, {0}};
  show("epoll_wait 0", epoll_wait(ep, &got, 1, 0));
  show("epoll_wait -1", epoll_wait(ep, &got, 1, -1));
  printf("events %u data %llu\n", got.events, (unsigned long long)got.data.u64);
  read(t, &count, 8);
  show("epoll_wait after read", epoll_wait(ep, &got, 1, 0));
  s = spec(15 * MS, 0);
  timerfd_settime(t, 0, &s, NULL);
  show("epoll_wait 1000ms", epoll_wait(ep, &got, 1, 1000));
  read(t, &count, 8);
  close(ep);
  timerfd_settime(t, 0, &s, NULL);
  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(t, &rd);
  show("select", select(t + 1, &rd, NULL, NULL, NULL));
  printf("isset %d\n", FD_ISSET(t, &rd));
  close(t);
}

static void show_info(const char* what, int fd, long len) {
  struct signalfd_siginfo si[2];
  memset(si, 0, sizeof si);
  long r = read(fd, si, len);
  show(what, r);
  for (long i = 0; i < r / (long)sizeof si[0]; i++)
    printf("  signo %u code %d pid is me %d uid ok %d\n", si[i].ssi_signo, si[i].ssi_code,
           si[i].ssi_pid == (uint32_t)getpid(), si[i].ssi_uid == (uint32_t)getuid());
}

static void* thread_kill(void* arg) {
  (void)arg;
  usleep(20000);
  kill(getpid(), SIGUSR1);
  return NULL;
}

static void signals(void) {
  sigset_t mask, both;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  both = mask;
  sigaddset(&both, SIGUSR2);
  show("sigprocmask block", sigprocmask(SIG_BLOCK, &both, NULL));
  show("signalfd bad flags", signalfd(-1, &mask, 1));
  show("signalfd4 bad size", syscall(289, -1, &mask, 4, 0));
  show("signalfd bad fd", signalfd(99, &mask, 0));
  int p[2];
  if (pipe(p)) return;
  show("signalfd on a pipe", signalfd(p[0], &mask, 0));
  close(p[0]);
  close(p[1]);
  int s = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  printf("signalfd ok %d\n", s >= 0);
  printf("F_GETFL %o FD_CLOEXEC %d\n", fcntl(s, F_GETFL), fcntl(s, F_GETFD));
  link_of(s);
  struct signalfd_siginfo si;
  show("read none", read(s, &si, sizeof si));
  show("read short", read(s, &si, 64));
  show("write", write(s, &si, sizeof si));
  show("lseek", lseek(s, 0, SEEK_SET));
  struct pollfd pf = {s, POLLIN, 0};
  show("poll none", poll(&pf, 1, 0));
  raise(SIGUSR1);
  show("poll raised", poll(&pf, 1, 0));
  printf("revents %d\n", pf.revents);
  show_info("read raised", s, sizeof si);
  show("read drained", read(s, &si, sizeof si));
  kill(getpid(), SIGUSR1);
  show_info("read killed", s, sizeof si);

  // USR2 is blocked but outside the mask: not readable until the mask is widened.
  raise(SIGUSR2);
  raise(SIGUSR1);
  show_info("read with USR2 outside the mask", s, 2 * sizeof si);
  raise(SIGUSR1);
  show("widen mask", signalfd(s, &both, 0) == s);
  show_info("read two", s, 2 * sizeof si);
  sigset_t pend;
  sigpending(&pend);
  printf("pending after reads %d %d\n", sigismember(&pend, SIGUSR1), sigismember(&pend, SIGUSR2));

  // A blocking read woken by a child's kill.
  int b = signalfd(-1, &both, 0);
  pid_t c = fork();
  if (c == 0) {
    usleep(20000);
    kill(getppid(), SIGUSR2);
    _exit(0);
  }
  memset(&si, 0, sizeof si);
  show("blocking read (child kills)", read(b, &si, sizeof si));
  printf("  signo %u code %d pid is child %d\n", si.ssi_signo, si.ssi_code, si.ssi_pid == (uint32_t)c);
  int st;
  waitpid(c, &st, 0);

  // poll(-1) on it woken by a child's kill, then epoll.
  c = fork();
  if (c == 0) {
    usleep(20000);
    kill(getppid(), SIGUSR1);
    _exit(0);
  }
  pf.fd = b;
  pf.revents = 0;
  show("poll -1 (child kills)", poll(&pf, 1, -1));
  printf("revents %d\n", pf.revents);
  show_info("read", b, sizeof si);
  waitpid(c, &st, 0);

  // A thread of this process sends it: the main thread's blocking read takes it.
  pthread_t th;
  pthread_create(&th, NULL, thread_kill, NULL);
  int ep = epoll_create1(0);
  struct epoll_event ev = {EPOLLIN, {.u64 = 7}}, got = {0, {0}};
  epoll_ctl(ep, EPOLL_CTL_ADD, b, &ev);
  show("epoll_wait -1 (thread kills)", epoll_wait(ep, &got, 1, -1));
  printf("events %u data %llu\n", got.events, (unsigned long long)got.data.u64);
  show_info("read", b, sizeof si);
  pthread_join(th, NULL);
  close(ep);
  close(b);
  close(s);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  timers();
  signals();
  printf("done\n");
  return 0;
}
