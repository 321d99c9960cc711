// Integration tests: boot real VMs with the vmfork guest kernel and run unmodified static
// programs in them (busybox-static, glibc, musl, static-PIE, C++), in PVM native mode and in
// emulated mode, checking output, exit status and how bad jobs end. Needs /dev/kvm.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "engine/cold_run.h"
#include "kvm_test_util.h"

using namespace vmfork;
using engine::ExitReason;
using engine::RunResult;

namespace {

const std::string kPrograms = VMFORK_TEST_PROGRAMS;
const std::string kBusybox = "/bin/busybox";

struct Job {
  std::string program;
  std::vector<std::string> argv;
  std::string stdin_data;
  vmm::AccelRequest accel = vmm::AccelRequest::kNative;
  std::chrono::nanoseconds timeout = std::chrono::seconds(20);
  uint64_t max_output = 64ull << 20;
  uint64_t mem = 256ull << 20;
};

RunResult run(const Job& j) {
  engine::RunSpec spec;
  spec.program = j.program;
  spec.argv = j.argv.empty() ? std::vector<std::string>{j.program} : j.argv;
  spec.env = engine::default_env();
  spec.accel = j.accel;
  spec.timeout = j.timeout;
  spec.max_output = j.max_output;
  spec.mem_bytes = j.mem;
  vmm::StringInput in(j.stdin_data);
  spec.stdin_source = &in;
  auto r = engine::run_cold(spec);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return r.ok() ? std::move(r).value() : RunResult{};
}

// Runs a shell command on the host with `input` on stdin; returns its stdout.
std::string host_output(const std::string& cmd, const std::string& input) {
  // One file per process: ctest -j runs several test processes at once.
  std::string path = testing::TempDir() + "/vmfork_host_input_" + std::to_string(getpid());
  std::ofstream(path, std::ios::binary) << input;
  FILE* p = popen((cmd + " < " + path).c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  std::remove(path.c_str());
  return out;
}

std::string prog(const std::string& name) { return kPrograms + "/" + name; }

class Modes : public testing::TestWithParam<vmm::AccelRequest> {
 protected:
  void SetUp() override { VMFORK_REQUIRE_KVM(); }
  Job job(std::string program, std::vector<std::string> argv = {}, std::string in = "") {
    Job j;
    j.program = std::move(program);
    j.argv = std::move(argv);
    j.stdin_data = std::move(in);
    j.accel = GetParam();
    return j;
  }
};

std::string mode_name(const testing::TestParamInfo<vmm::AccelRequest>& i) {
  return i.param == vmm::AccelRequest::kNative ? "Native" : "Emulated";
}

const std::string kText =
    "banana 3\napple 10\ncherry 7\napple 2\nfoo bar baz\ndate 1\nelder 5\nfig 12\n";

}  // namespace

// ---- busybox-static applets, output compared with the same binary run on the host -----------
struct Applet {
  const char* name;
  std::vector<std::string> args;
};

class Busybox : public Modes {};

TEST_P(Busybox, AppletsMatchHost) {
  const std::vector<Applet> applets = {
      {"echo", {"echo", "hello", "from", "vmfork"}},
      {"cat", {"cat"}},
      {"sort", {"sort"}},
      {"wc", {"wc"}},
      {"sha256sum", {"sha256sum"}},
      {"awk", {"awk", "{s+=$2} END {print s, NR}"}},
      {"seq", {"seq", "1", "25"}},
      {"sed", {"sed", "s/a/A/g"}},
      {"grep", {"grep", "apple"}},
      {"tr", {"tr", "a-z", "A-Z"}},
      {"head", {"head", "-n", "3"}},
  };
  for (const auto& a : applets) {
    std::vector<std::string> argv = a.args;
    std::string cmd = kBusybox;
    for (auto& s : argv) cmd += " '" + s + "'";
    RunResult r = run(job(kBusybox, argv, kText));
    EXPECT_EQ(r.reason, ExitReason::kExited) << a.name;
    EXPECT_EQ(r.exit_code, 0) << a.name;
    EXPECT_EQ(r.stdout_data, host_output(cmd, kText)) << a.name;
    EXPECT_EQ(r.unknown_syscalls, r.unknown_by_nr.empty() ? 0u : r.unknown_syscalls) << a.name;
  }
}

TEST_P(Busybox, LargeInputThroughSha256) {
  std::string big;
  for (int i = 0; i < 300000; i++) big += "line " + std::to_string(i) + "\n";  // ~3.6 MB: several refills
  RunResult r = run(job(kBusybox, {"sha256sum"}, big));
  EXPECT_EQ(r.reason, ExitReason::kExited);
  EXPECT_EQ(r.stdout_data, host_output(kBusybox + " sha256sum", big));
}

INSTANTIATE_TEST_SUITE_P(Accel, Busybox,
                         testing::Values(vmm::AccelRequest::kNative, vmm::AccelRequest::kEmulated),
                         mode_name);

// ---- C and C++ programs --------------------------------------------------------------------
class Programs : public Modes {};

TEST_P(Programs, NbodyGlibcMuslAndStaticPie) {
  for (const char* variant : {"nbody.glibc", "nbody.musl", "nbody.pie"}) {
    RunResult r = run(job(prog(variant), {variant, "1000"}));
    EXPECT_EQ(r.reason, ExitReason::kExited) << variant;
    EXPECT_EQ(r.stdout_data, host_output(prog("nbody.glibc") + " 1000", "")) << variant;
    EXPECT_EQ(r.stdout_data, "-0.004282724\n-0.004283039\n") << variant;
  }
}

TEST_P(Programs, ExitCodesAndStderr) {
  for (const char* variant : {"exit_code.glibc", "exit_code.musl"}) {
    RunResult r = run(job(prog(variant), {variant, "3"}));
    EXPECT_EQ(r.reason, ExitReason::kExited);
    EXPECT_EQ(r.exit_code, 3) << variant;
    EXPECT_EQ(r.stderr_data, "exiting with 3\n") << variant;
  }
}

TEST_P(Programs, MemorySyscallsRefuseBadRangesAsLinuxDoes) {
  for (const char* variant : {"memory_args.glibc", "memory_args.musl"}) {
    RunResult r = run(job(prog(variant), {variant}));
    EXPECT_EQ(r.reason, ExitReason::kExited) << variant << " " << (r.fault ? r.fault->message : "");
    EXPECT_EQ(r.stdout_data, host_output(prog(variant), "")) << variant;  // musl checks mremap itself
    EXPECT_NE(r.stdout_data.find("done"), std::string::npos) << variant;
  }
}

TEST_P(Programs, ReadsAllOfStdin) {
  std::string in;
  for (int i = 0; i < 50000; i++) in += "some input line number " + std::to_string(i) + "\n";
  for (const char* variant : {"read_stdin.glibc", "read_stdin.musl"}) {
    RunResult r = run(job(prog(variant), {variant}, in));
    EXPECT_EQ(r.reason, ExitReason::kExited) << variant;
    EXPECT_EQ(r.stdout_data, host_output(prog("read_stdin.glibc"), in)) << variant;
  }
}

TEST_P(Programs, CxxIostreamsContainersExceptions) {
  RunResult r = run(job(prog("cxx_features.glibc"), {"cxx"}, kText));
  EXPECT_EQ(r.reason, ExitReason::kExited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_data, host_output(prog("cxx_features.glibc"), kText));
  EXPECT_NE(r.stdout_data.find("PASS"), std::string::npos);
}

TEST_P(Programs, UnknownSyscallIsEnosysAndCounted) {
  RunResult r = run(job(prog("unknown_syscall.glibc")));
  EXPECT_EQ(r.reason, ExitReason::kExited);
  EXPECT_EQ(r.stdout_data, "999 -> -1 errno=38\nacct -> -1 errno=38\n");
  EXPECT_GE(r.unknown_syscalls, 2u);
  EXPECT_EQ(r.unknown_by_nr[163], 1u);                          // acct
  EXPECT_EQ(r.unknown_by_nr[511], 1u);  // 999 shares the last slot (abi::kSyscallCountSlots - 1)
}

TEST_P(Programs, CrashesAreReportedNotFatal) {
  RunResult segv = run(job(prog("crash_segv.glibc")));
  EXPECT_EQ(segv.reason, ExitReason::kCrashed);
  ASSERT_TRUE(segv.fault);
  EXPECT_EQ(segv.fault->name, "#PF");
  EXPECT_EQ(segv.fault->address, 0x10u);
  EXPECT_FALSE(segv.fault->in_kernel);
  EXPECT_EQ(segv.exit_code, 139);
  RunResult ud = run(job(prog("crash_ud2.musl")));
  EXPECT_EQ(ud.reason, ExitReason::kCrashed);
  EXPECT_EQ(ud.exit_code, 132);
  RunResult ab = run(job(prog("abort.glibc")));
  EXPECT_EQ(ab.reason, ExitReason::kCrashed);
  ASSERT_TRUE(ab.fault);
  EXPECT_EQ(ab.fault->name, "SIGABRT");
  EXPECT_EQ(ab.exit_code, 134);
}

INSTANTIATE_TEST_SUITE_P(Accel, Programs,
                         testing::Values(vmm::AccelRequest::kNative, vmm::AccelRequest::kEmulated),
                         mode_name);

// ---- Native-mode-only (longer) jobs --------------------------------------------------------
class NativeJobs : public Modes {};

TEST_P(NativeJobs, HeavyMalloc) {
  for (const char* variant : {"malloc_stress.glibc", "malloc_stress.musl"}) {
    RunResult r = run(job(prog(variant)));
    EXPECT_EQ(r.reason, ExitReason::kExited) << variant;
    EXPECT_EQ(r.stdout_data, "ok 440d97411a464c23\n") << variant;
  }
}

TEST_P(NativeJobs, LargePrintfOutput) {
  for (const char* variant : {"big_output.glibc", "big_output.musl"}) {
    RunResult r = run(job(prog(variant), {variant, "100000"}));
    EXPECT_EQ(r.reason, ExitReason::kExited) << variant;
    EXPECT_EQ(r.stdout_data, host_output(prog("big_output.glibc") + " 100000", "")) << variant;
  }
}

TEST_P(NativeJobs, RunawayLoopTimesOut) {
  Job j = job(prog("spin.glibc"));
  j.timeout = std::chrono::milliseconds(300);
  RunResult r = run(j);
  EXPECT_EQ(r.reason, ExitReason::kTimeout);
  EXPECT_EQ(r.exit_code, 124);
  EXPECT_EQ(r.stdout_data, "spinning\n");  // output written before the timeout is kept
  EXPECT_LT(r.timings.total_us, 5e6);
}

TEST_P(NativeJobs, OutputFloodHitsLimit) {
  Job j = job(prog("flood.musl"));
  j.max_output = 3 << 20;
  RunResult r = run(j);
  EXPECT_EQ(r.reason, ExitReason::kOutputLimit);
  EXPECT_EQ(r.stdout_data.size(), 3u << 20);
}

TEST_P(NativeJobs, MemoryExhaustionHitsLimit) {
  Job j = job(prog("alloc_forever.glibc"));
  j.mem = 64 << 20;
  RunResult r = run(j);
  EXPECT_EQ(r.reason, ExitReason::kMemoryLimit);
  EXPECT_EQ(r.exit_code, 137);
}

// The value printed after "key=" on its own line of `out`.
static std::string field(const std::string& out, const std::string& key) {
  size_t p = out.find("\n" + key + "=");
  if (p == std::string::npos) return "";
  p += key.size() + 2;
  return out.substr(p, out.find('\n', p) - p);
}

TEST_P(NativeJobs, EveryRunGetsFreshEntropyAndTrueTime) {
  for (const char* variant : {"env_auxv.glibc", "env_auxv.musl"}) {
    RunResult a = run(job(prog(variant), {"env_auxv", "x y"}));
    RunResult b = run(job(prog(variant), {"env_auxv", "x y"}));
    ASSERT_EQ(a.reason, ExitReason::kExited) << variant;
    EXPECT_EQ(field(a.stdout_data, "argv[1]"), "x y") << a.stdout_data;
    EXPECT_EQ(field(a.stdout_data, "AT_PAGESZ"), "4096");
    EXPECT_EQ(field(a.stdout_data, "exe"), prog(variant));
    EXPECT_EQ(field(a.stdout_data, "sysname"), "Linux machine=x86_64");
    for (const char* k : {"getrandom", "at_random", "urandom"}) {
      EXPECT_EQ(field(a.stdout_data, k).size(), 32u) << k;
      EXPECT_NE(field(a.stdout_data, k), field(b.stdout_data, k)) << k << " repeats across runs";
    }
    long long t = std::stoll(field(a.stdout_data, "time"));
    EXPECT_LE(std::llabs(t - (long long)time(nullptr)), 5) << "guest clock is off";
  }
}

INSTANTIATE_TEST_SUITE_P(Accel, NativeJobs, testing::Values(vmm::AccelRequest::kNative), mode_name);

// ---- Bad input gets a clear error ----------------------------------------------------------
TEST(BadPrograms, DynamicAndNonElfAreRejectedBeforeBoot) {
  VMFORK_REQUIRE_KVM();
  engine::RunSpec spec;
  spec.program = "/bin/sh";  // dynamically linked
  spec.argv = {"sh"};
  auto r = engine::run_cold(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().what.find("dynamically linked"), std::string::npos);
  spec.program = kPrograms + "/../CMakeFiles/CMakeDirectoryInformation.cmake";
  r = engine::run_cold(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().what.find("not an ELF file"), std::string::npos);
  spec.program = "/nonexistent";
  r = engine::run_cold(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().sys_errno, ENOENT);
}

// ---- The command line ----------------------------------------------------------------------
TEST(Cli, StreamsOutputAndPropagatesExitCode) {
  VMFORK_REQUIRE_KVM();
  std::string out = host_output(std::string(VMFORK_BINARY) + " run -- busybox tr a-z A-Z", "shout\n");
  EXPECT_EQ(out, "SHOUT\n");
  int st = system((std::string(VMFORK_BINARY) + " run -- " + prog("exit_code.musl") + " 7 2>/dev/null").c_str());
  EXPECT_EQ(WEXITSTATUS(st), 7);
  std::string json = host_output(std::string(VMFORK_BINARY) + " run --json -- busybox echo hi", "");
  EXPECT_NE(json.find("\"reason\":\"exited\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"stdout\":\"hi\\n\""), std::string::npos) << json;
}
