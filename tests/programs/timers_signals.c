/* timers_signals: POSIX timers (timer_create/settime/gettime/getoverrun/delete, SIGEV_SIGNAL,
 * SIGEV_THREAD_ID, SIGEV_NONE), ITIMER_VIRTUAL, sigtimedwait, sigsuspend, SIGCHLD with
 * SA_SIGINFO, waitid, kill of a process group, PR_SET_PDEATHSIG. Prints one line per check;
 * the output is the same on every run (compared with the host). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_rt, got_vt, chld_code, chld_status, chld_pid_ok;
static volatile long rt_value;

static void on_rt(int sig, siginfo_t* si, void* uc) {
  (void)uc;
  got_rt = sig;
  rt_value = si->si_value.sival_int;
}
static void on_vt(int sig) { got_vt = sig; }
static void show_stat(const char* who) {
  int pid = 0, ppid = 0, pgrp = 0;
  char state = 0;
  FILE* f = fopen("/proc/self/stat", "r");
  if (!f || fscanf(f, "%d (%*[^)]) %c %d %d", &pid, &state, &ppid, &pgrp) != 4) printf("%s: no stat\n", who);
  else printf("%s: /proc/self/stat pid %d ppid %d pgrp %d\n", who, pid == getpid(), ppid == getppid(), pgrp == getpgrp());
  if (f) fclose(f);
}
static volatile sig_atomic_t q_code, q_value, q_pid_ok;
static void on_queue(int sig, siginfo_t* si, void* uc) {
  (void)sig, (void)uc;
  q_code = si->si_code;
  q_value = si->si_value.sival_int;
  q_pid_ok = si->si_pid == getpid();
}
static void on_chld(int sig, siginfo_t* si, void* uc) {
  (void)sig, (void)uc;
  chld_code = si->si_code;
  chld_status = si->si_status;
  chld_pid_ok = si->si_pid > 1;
}

int main(void) {
  /* 1. A POSIX timer with SIGEV_SIGNAL and a value, one-shot in 20 ms. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_rt;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGRTMIN + 1, &sa, 0);
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGRTMIN + 1;
  ev.sigev_value.sival_int = 42;
  timer_t t;
  if (timer_create(CLOCK_MONOTONIC, &ev, &t)) perror("timer_create");
  struct itimerspec its = {{0, 0}, {0, 20000000}};
  timer_settime(t, 0, &its, 0);
  struct itimerspec cur;
  timer_gettime(t, &cur);
  printf("armed: %s\n", cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 20000000 ? "yes" : "no");
  while (!got_rt) pause();
  printf("timer signal %s value %ld\n", got_rt == SIGRTMIN + 1 ? "SIGRTMIN+1" : "other", rt_value);
  timer_delete(t);
  printf("delete twice: %d\n", timer_delete(t) == -1 && errno == EINVAL);

  /* 2. A periodic timer, signal blocked: sigtimedwait collects it; overruns pile up. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  sigprocmask(SIG_BLOCK, &set, 0);
  ev.sigev_signo = SIGUSR2;
  timer_create(CLOCK_REALTIME, &ev, &t);
  struct itimerspec per = {{0, 5000000}, {0, 5000000}};
  timer_settime(t, 0, &per, 0);
  siginfo_t si;
  struct timespec to = {2, 0};
  int s = sigtimedwait(&set, &si, &to);
  printf("sigtimedwait: %s code SI_TIMER %d\n", s == SIGUSR2 ? "SIGUSR2" : "other", si.si_code == SI_TIMER);
  struct timespec nap = {0, 30000000};
  nanosleep(&nap, 0);
  s = sigtimedwait(&set, &si, &to);
  printf("overrun after 30 ms of 5 ms periods: %s\n", timer_getoverrun(t) >= 2 ? ">= 2" : "< 2");
  timer_delete(t);
  struct timespec zero = {0, 0};
  while (sigtimedwait(&set, &si, &zero) > 0) {
  }
  to.tv_sec = 0;
  to.tv_nsec = 10000000;
  printf("sigtimedwait timeout: %d\n", sigtimedwait(&set, &si, &to) == -1 && errno == EAGAIN);

  /* 3. ITIMER_VIRTUAL counts CPU time: a spinning loop gets SIGVTALRM. */
  signal(SIGVTALRM, on_vt);
  struct itimerval iv = {{0, 0}, {0, 50000}};
  setitimer(ITIMER_VIRTUAL, &iv, 0);
  volatile unsigned long spin = 0;
  while (!got_vt) spin++;
  printf("SIGVTALRM after spinning: %d\n", got_vt == SIGVTALRM);

  /* 4. SIGCHLD with SA_SIGINFO, and sigsuspend waiting for it. */
  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old);
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_chld;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGCHLD, &sa, 0);
  pid_t p = fork();
  if (p == 0) _exit(9);
  sigset_t waitmask = old;
  sigdelset(&waitmask, SIGCHLD);
  while (!chld_code) sigsuspend(&waitmask);
  printf("SIGCHLD: CLD_EXITED %d status %d pid %d\n", chld_code == CLD_EXITED, (int)chld_status, (int)chld_pid_ok);
  siginfo_t wi;
  memset(&wi, 0, sizeof wi);
  waitid(P_PID, p, &wi, WEXITED);
  printf("waitid: code CLD_EXITED %d status %d\n", wi.si_code == CLD_EXITED, wi.si_status);
  sigprocmask(SIG_SETMASK, &old, 0);
  signal(SIGCHLD, SIG_DFL);

  /* 5. kill(-pgid): a child in its own group is killed; waitpid reports the signal. */
  p = fork();
  if (p == 0) {
    setpgid(0, 0);
    for (;;) pause();
  }
  setpgid(p, p);
  usleep(20000);
  kill(-p, SIGTERM);
  int st;
  waitpid(p, &st, 0);
  printf("group kill: signaled %d SIGTERM %d\n", WIFSIGNALED(st), WTERMSIG(st) == SIGTERM);

  /* 6. A child's SIGSEGV without a handler: the parent sees it (core bit set). */
  p = fork();
  if (p == 0) {
    *(volatile int*)16 = 1;
    _exit(0);
  }
  waitpid(p, &st, 0);
  printf("child SIGSEGV: signaled %d SIGSEGV %d\n", WIFSIGNALED(st), WTERMSIG(st) == SIGSEGV);

  /* 7. PR_SET_PDEATHSIG: a grandchild learns that its parent died. */
  int fds[2];
  pipe(fds);
  p = fork();
  if (p == 0) {
    pid_t g = fork();
    if (g == 0) {
      signal(SIGUSR1, SIG_DFL);
      prctl(PR_SET_PDEATHSIG, SIGUSR1);
      close(fds[0]);
      write(fds[1], "r", 1);  /* registered */
      for (;;) pause();
    }
    char c;
    read(fds[0], &c, 1);
    _exit(0);
  }
  waitpid(p, &st, 0);
  close(fds[1]);
  char c;
  printf("pdeathsig: grandchild %s\n", read(fds[0], &c, 1) == 0 ? "gone" : "alive");

  /* 8. sigqueue: the handler gets SI_QUEUE, the value and the sender's pid. */
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_queue;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGUSR1, &sa, 0);
  union sigval v;
  v.sival_int = 77;
  sigqueue(getpid(), SIGUSR1, v);
  printf("sigqueue: SI_QUEUE %d value %d own pid %d\n", q_code == SI_QUEUE, (int)q_value, (int)q_pid_ok);

  /* 9. /proc/self is the reader: a forked child sees its own ids. */
  show_stat("parent");
  fflush(stdout);
  p = fork();
  if (p == 0) {
    show_stat("child");
    fflush(stdout);
    _exit(0);
  }
  waitpid(p, &st, 0);
  return 0;
}
