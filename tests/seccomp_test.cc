// The job-thread and process seccomp filters (vmm/seccomp.h): a forbidden call is refused and
// named, in a forked child and in real `vmfork run` / `vmfork serve` processes (test hooks
// VMFORK_SECCOMP_TEST=exec and =process-exec), and the normal paths work with them on.
// Thread-safety: test-thread only; the fork tests run before this process has other threads
// (ctest runs each test in its own process).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "engine/program_cache.h"
#include "tests/kvm_test_util.h"
#include "vmm/seccomp.h"

namespace {

const std::string kVmfork = VMFORK_BINARY;
const std::string kPrograms = VMFORK_TEST_PROGRAMS;

// Runs `cmd` under sh with stderr folded into stdout; returns the exit status (128 + signal
// for a signal death) and the output.
int sh(const std::string& cmd, std::string* out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  out->clear();
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Forks; the child sends its stderr into a pipe, runs `body` and _exits with its value.
// Returns the child's exit status and its stderr.
template <typename F>
int in_child(F body, std::string* err) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    _exit(body());
  }
  close(fds[1]);
  char buf[512];
  ssize_t n;
  err->clear();
  while ((n = read(fds[0], buf, sizeof buf)) > 0) err->append(buf, size_t(n));
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(Seccomp, AllowListHasTheRunLoopAndNotExecOrOpen) {
  auto names = vmfork::vmm::job_thread_allowed_syscalls();
  auto has = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  EXPECT_TRUE(has("ioctl"));
  EXPECT_TRUE(has("write"));
  EXPECT_TRUE(has("mmap"));
  EXPECT_TRUE(has("timer_settime"));
  EXPECT_FALSE(has("execve"));
  EXPECT_FALSE(has("openat"));
  EXPECT_FALSE(has("socket"));
  EXPECT_FALSE(has("clone"));
}

TEST(Seccomp, ForbiddenCallKillsTheProcessAndIsNamed) {
  std::string err;
  int code = in_child(
      [] {
        if (!vmfork::vmm::confine_job_thread().ok()) return 3;
        int fd = open("/etc/hostname", O_RDONLY);  // openat: not allowed
        return fd >= 0 ? 4 : 5;
      },
      &err);
  EXPECT_EQ(code, vmfork::vmm::kSeccompViolationExit) << err;
  EXPECT_NE(err.find("forbidden system call 257 (openat) on a job thread"), std::string::npos) << err;
}

TEST(Seccomp, IoctlOtherThanTheRunLoopsIsRefused) {
  std::string err;
  int code = in_child(
      [] {
        if (!vmfork::vmm::confine_job_thread().ok()) return 3;
        int n = 0;
        ioctl(STDIN_FILENO, FIONREAD, &n);  // an ioctl, but not a vCPU one
        return 4;
      },
      &err);
  EXPECT_EQ(code, vmfork::vmm::kSeccompViolationExit) << err;
  EXPECT_NE(err.find("(ioctl)"), std::string::npos) << err;
}

TEST(Seccomp, AllowedCallsWorkAndConfiningTwiceIsANoOp) {
  std::string err;
  int code = in_child(
      [] {
        if (vmfork::vmm::job_thread_confined()) return 2;
        if (!vmfork::vmm::confine_job_thread().ok()) return 3;
        if (!vmfork::vmm::job_thread_confined() || !vmfork::vmm::confine_job_thread().ok()) return 4;
        void* p = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return 5;
        static_cast<char*>(p)[0] = 1;
        if (madvise(p, 1 << 20, MADV_DONTNEED) != 0 || munmap(p, 1 << 20) != 0) return 6;
        struct stat st;
        if (fstat(STDERR_FILENO, &st) != 0) return 7;  // newfstatat(fd, "", AT_EMPTY_PATH)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (write(STDERR_FILENO, "ok", 2) != 2) return 8;
        return 0;
      },
      &err);
  EXPECT_EQ(code, 0) << err;
  EXPECT_EQ(err, "ok");
}

// A pool's first job with a program loads it into a ProgramCache on the (already confined)
// job thread: the sealed memfd's calls pass, with exactly the cache's flags and nothing else.
TEST(Seccomp, ProgramCacheLoadsOnAConfinedJobThread) {
  std::string err;
  int code = in_child(
      [] {
        int fd = open("/bin/busybox", O_RDONLY | O_CLOEXEC);  // as serve does, before the job
        if (fd < 0) return 2;
        if (!vmfork::vmm::confine_job_thread().ok()) return 3;
        vmfork::engine::ProgramCache cache;
        auto p = cache.get(fd, "/bin/busybox", 1ull << 30);
        if (!p.ok()) {
          fprintf(stderr, "%s", p.error().message().c_str());
          return 4;
        }
        if (!cache.get(fd, "/bin/busybox", 1ull << 30).ok() || cache.stats().hits != 1) return 5;
        if (write(STDERR_FILENO, "ok", 2) != 2) return 6;
        memfd_create("other", 0);  // other flags: refused
        return 7;
      },
      &err);
  EXPECT_EQ(code, vmfork::vmm::kSeccompViolationExit) << err;
  EXPECT_NE(err.find("ok"), std::string::npos) << err;
  EXPECT_NE(err.find("(memfd_create)"), std::string::npos) << err;
}

TEST(Seccomp, ProcessDenyListHasExecAndNotWhatServeNeeds) {
  auto names = vmfork::vmm::process_denied_syscalls();
  auto has = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
#if !defined(__SANITIZE_ADDRESS__)  // LeakSanitizer needs ptrace (vmm/seccomp.cc)
  EXPECT_TRUE(has("ptrace"));
#endif
  for (const char* n : {"execve", "execveat", "fork", "vfork", "clone", "clone3", "process_vm_readv",
                        "mount", "init_module", "bpf", "kexec_load", "reboot", "setuid", "keyctl",
                        "perf_event_open", "userfaultfd"})
    EXPECT_TRUE(has(n)) << n;
  for (const char* n : {"socket", "connect", "accept4", "ioctl", "openat", "mmap", "io_uring_enter", "futex"})
    EXPECT_FALSE(has(n)) << n;
}

TEST(Seccomp, ProcessFilterCoversEveryThreadAndNamesTheProcess) {
  std::string err;
  int code = in_child(
      [] {
        std::atomic<int> go{0};
        // Started before the filter: TSYNC must put it under the filter too.
        std::thread early([&] {
          while (go.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
          execve("/bin/true", argv, environ);
          _exit(4);
        });
        if (!vmfork::vmm::confine_process(vmfork::vmm::ProcessRole::kServe).ok()) _exit(3);
        if (!vmfork::vmm::process_confined()) _exit(5);
        go = 1;
        early.join();
        return 6;
      },
      &err);
  EXPECT_EQ(code, vmfork::vmm::kSeccompViolationExit) << err;
  EXPECT_NE(err.find("forbidden system call 59 (execve) on the vmfork process"), std::string::npos) << err;
}

TEST(Seccomp, ProcessFilterLetsThreadsFilesAndSocketsWorkButNotFork) {
  std::string err;
  int code = in_child(
      [] {
        if (!vmfork::vmm::confine_process(vmfork::vmm::ProcessRole::kWorker).ok()) return 3;
        // A thread after the filter: clone3 answers ENOSYS, glibc falls back to clone(CLONE_THREAD).
        int from_thread = 0;
        std::thread t([&] { from_thread = 1; });
        t.join();
        if (from_thread != 1) return 4;
        int fd = open("/etc/hostname", O_RDONLY);
        if (fd < 0) return 5;
        close(fd);
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0) return 6;
        close(s);
        if (write(STDERR_FILENO, "ok\n", 3) != 3) return 7;
        pid_t pid = fork();  // clone without CLONE_THREAD: refused
        if (pid == 0) _exit(0);
        return 8;
      },
      &err);
  EXPECT_EQ(code, vmfork::vmm::kSeccompViolationExit) << err;
  EXPECT_EQ(err.rfind("ok\n", 0), 0u) << err;
  EXPECT_NE(err.find("(clone) on the vmfork process"), std::string::npos) << err;
}

TEST(Seccomp, JobFilterStacksOnTheProcessFilter) {
  std::string err;
  int code = in_child(
      [] {
        if (!vmfork::vmm::confine_process(vmfork::vmm::ProcessRole::kServe).ok()) return 3;
        if (!vmfork::vmm::confine_job_thread().ok()) return 4;
        int fd = open("/etc/hostname", O_RDONLY);  // allowed by the process filter, not the job one
        return fd >= 0 ? 5 : 6;
      },
      &err);
  EXPECT_EQ(code, vmfork::vmm::kSeccompViolationExit) << err;
  EXPECT_NE(err.find("forbidden system call 257 (openat) on a job thread"), std::string::npos) << err;
}

TEST(Seccomp, VmforkRunRefusesExecFromTheVcpuThread) {
  VMFORK_REQUIRE_KVM();
  std::string out;
  int code = sh("VMFORK_SECCOMP_TEST=exec " + kVmfork + " run -- busybox echo hi", &out);
  EXPECT_EQ(code, vmfork::vmm::kSeccompViolationExit) << out;
  EXPECT_NE(out.find("forbidden system call 59 (execve) on a job thread"), std::string::npos) << out;
  EXPECT_EQ(out.find("hi\n"), std::string::npos) << out;
  // --no-seccomp: no filter, so the hook does not fire and the job runs.
  code = sh("VMFORK_SECCOMP_TEST=exec " + kVmfork + " run --no-seccomp -- busybox echo hi", &out);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "hi\n");
}

TEST(Seccomp, VmforkRunPathsWorkWithTheFilter) {
  VMFORK_REQUIRE_KVM();
  std::string out;
  // stdin through the channel, output to the terminal-less stdout
  EXPECT_EQ(sh("printf 'shout\\n' | " + kVmfork + " run -- busybox tr a-z A-Z", &out), 0) << out;
  EXPECT_EQ(out, "SHOUT\n");
  // exit code, crash, timeout, output limit, JSON result
  EXPECT_EQ(sh(kVmfork + " run -- " + kPrograms + "/exit_code.musl 7", &out), 7) << out;
  EXPECT_EQ(sh(kVmfork + " run -- " + kPrograms + "/crash_segv.glibc", &out), 139) << out;
  sh(kVmfork + " run --json --timeout 300ms -- " + kPrograms + "/spin.glibc", &out);
  EXPECT_NE(out.find("\"timeout\""), std::string::npos) << out;
  sh(kVmfork + " run --json --max-output 1K -- " + kPrograms + "/big_output.glibc 100000", &out);
  EXPECT_NE(out.find("output-limit"), std::string::npos) << out;
  EXPECT_EQ(out.find("seccomp"), std::string::npos) << out;
}

TEST(Seccomp, TemplateRunAndServeWorkAndServeRefusesExec) {
  VMFORK_REQUIRE_KVM();
  const std::string dir = testing::TempDir() + "/seccomp_store";
  std::filesystem::remove_all(dir);
  const std::string vf = kVmfork + " ";
  std::string out;
  ASSERT_EQ(sh(vf + "template --store " + dir + " create base", &out), 0) << out;
  ASSERT_EQ(sh(vf + "template --store " + dir + " create cat -- busybox cat", &out), 0) << out;
  EXPECT_EQ(sh(vf + "run --store " + dir + " --template base -- busybox echo warm", &out), 0) << out;
  EXPECT_EQ(out, "warm\n");
  EXPECT_EQ(sh("printf 'x\\n' | " + vf + "run --store " + dir + " --template cat", &out), 0) << out;
  EXPECT_EQ(out, "x\n");

  // serve with the hook: its worker thread dies on the first job, naming execve.
  const std::string sock = dir + "/s.sock", log = dir + "/serve.log";
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDERR_FILENO);
    setenv("VMFORK_SECCOMP_TEST", "exec", 1);
    execl(kVmfork.c_str(), kVmfork.c_str(), "serve", "--store", dir.c_str(), "--template", "cat", "--socket",
          sock.c_str(), "--pool", "1", static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 300 && !std::filesystem::exists(sock); i++) usleep(100'000);
  sh("echo x | " + vf + "submit --socket " + sock + " --template cat", &out);  // the server dies mid-job
  int st = 0;
  pid_t got = 0;
  for (int i = 0; i < 200 && got == 0; i++) {  // 20 s deadline
    got = waitpid(pid, &st, WNOHANG);
    if (got == 0) usleep(100'000);
  }
  if (got == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
  }
  EXPECT_EQ(got, pid) << "serve did not stop";
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == vmfork::vmm::kSeccompViolationExit) << st;
  std::string log_text;
  sh("cat " + log, &log_text);
  EXPECT_NE(log_text.find("forbidden system call 59 (execve) on a job thread"), std::string::npos) << log_text;

  // serve with the process hook: its main thread, set up and about to serve, calls execve.
  std::filesystem::remove(sock);
  pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDERR_FILENO);
    setenv("VMFORK_SECCOMP_TEST", "process-exec", 1);
    execl(kVmfork.c_str(), kVmfork.c_str(), "serve", "--store", dir.c_str(), "--template", "cat", "--socket",
          sock.c_str(), "--pool", "1", static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  got = 0;
  for (int i = 0; i < 600 && got == 0; i++) {  // 60 s deadline: pools fill before the filter
    got = waitpid(pid, &st, WNOHANG);
    if (got == 0) usleep(100'000);
  }
  if (got == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
  }
  EXPECT_EQ(got, pid) << "serve did not stop";
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == vmfork::vmm::kSeccompViolationExit) << st;
  sh("cat " + log, &log_text);
  EXPECT_NE(log_text.find("forbidden system call 59 (execve) on the vmfork process"), std::string::npos)
      << log_text;
  std::filesystem::remove_all(dir);
}

}  // namespace
