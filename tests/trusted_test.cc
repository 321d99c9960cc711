// Issue 10, results the host can trust: a hostile job that fakes the figures in the shared
// channel page and rings the doorbell itself still gets its real CPU time, wall time and memory
// from the host; its own figures come back bounded and named guest-reported, and a forged end
// of job cannot yield an exit code its own exit_group could not. Needs /dev/kvm (real VMs).
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "engine/cold_run.h"
#include "engine/result_json.h"
#include "kvm_test_util.h"

using namespace vmfork;
using engine::ExitReason;
using engine::RunResult;

namespace {

const std::string kPrograms = VMFORK_TEST_PROGRAMS;
constexpr uint64_t kMem = 256ull << 20;

// priv_trap's address in the guest kernel: the gate a job can call to ring the doorbell.
std::string priv_trap_address() {
  std::string cmd = std::string("nm ") + VMFORK_KERNEL_ELF + " | awk '$3 == \"priv_trap\" {print $1}'";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[64] = {};
  std::string out = fgets(buf, sizeof buf, p) ? buf : "";
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

RunResult run(const std::string& program, std::vector<std::string> argv, vmm::AccelRequest accel) {
  engine::RunSpec spec;
  spec.program = program;
  spec.argv = std::move(argv);
  spec.env = engine::default_env();
  spec.accel = accel;
  spec.mem_bytes = kMem;
  spec.timeout = std::chrono::seconds(30);
  auto r = engine::run_cold(spec);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return r.ok() ? std::move(r).value() : RunResult{};
}

class Trusted : public testing::TestWithParam<vmm::AccelRequest> {
 protected:
  void SetUp() override {
    VMFORK_REQUIRE_KVM();
    gate_ = priv_trap_address();
    ASSERT_FALSE(gate_.empty()) << "no priv_trap symbol in " << VMFORK_KERNEL_ELF;
  }
  // 800 M iterations of a volatile add: ~0.35 s of CPU here (2026-11-30), well above 150 ms.
  RunResult hostile(const std::string& mode, int spin_millions = 800, int touch_mib = 0) {
    return run(kPrograms + "/hostile_report.musl",
               {"hostile_report", mode, std::to_string(spin_millions), std::to_string(touch_mib), gate_}, GetParam());
  }
  // Whatever the job wrote, guest-reported figures stay inside the host's bounds.
  static void expect_bounded(const RunResult& r) {
    EXPECT_LE(r.guest.run_us, r.host.wall_us);
    EXPECT_LE(r.guest.load_us + r.guest.run_us, r.host.wall_us + 1);
    EXPECT_LE(r.guest.memory_peak_bytes, kMem);
    EXPECT_LE(r.guest_pages_peak * 4096, kMem);
    EXPECT_LE(double(r.syscalls), r.host.vcpu_cpu_us * 1000);  // it wrote 2^64 - 1
    EXPECT_LE(r.timings.run_us + r.timings.load_us, r.timings.total_us);
    auto j = engine::to_json(r);
    EXPECT_LE(j["guest_memory_peak_bytes"].get<uint64_t>(), kMem);
    EXPECT_LE(j["guest_reported"]["run_us"].get<double>(), j["host"]["wall_us"].get<double>());
    EXPECT_LE(j["timings_us"]["load"].get<double>(), j["timings_us"]["total"].get<double>());
  }
  std::string gate_;
};

TEST_P(Trusted, SpinningJobGetsItsCpuTimeFromTheHost) {
  RunResult r = hostile("exit");
  EXPECT_EQ(r.reason, ExitReason::kExited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_data, "faking\n");
  // CPU-bound: the vCPU thread's CPU time is real and close to its wall time.
  EXPECT_GE(r.host.vcpu_cpu_us, 150'000) << r.host.wall_us;
  EXPECT_LE(r.host.vcpu_cpu_us, r.host.wall_us * 1.05 + 2000);
  EXPECT_GT(r.host.vm_exits, 0u);
  EXPECT_EQ(r.guest.memory_peak_bytes, 0u);  // it claimed nothing; the host still counts
  EXPECT_GT(r.host.memory_bytes, 0u);  // kernel, program and stack pages it touched
  expect_bounded(r);
}

TEST_P(Trusted, HugeGuestPeakIsClamped) {
  RunResult r = hostile("huge-peak", 1);
  EXPECT_EQ(r.reason, ExitReason::kExited);
  expect_bounded(r);
}

TEST_P(Trusted, HostCountsTouchedMemoryWhateverTheJobClaims) {
  RunResult r = hostile("exit", 1, 64);
  EXPECT_EQ(r.reason, ExitReason::kExited);
  EXPECT_EQ(r.guest.memory_peak_bytes, 0u);
  EXPECT_GE(r.host.memory_bytes, 64ull << 20);
  EXPECT_LE(r.host.memory_bytes, kMem);
}

TEST_P(Trusted, SleepingJobUsesLittleCpu) {
  RunResult r = run("/bin/busybox", {"sleep", "0.3"}, GetParam());
  EXPECT_EQ(r.reason, ExitReason::kExited);
  EXPECT_GE(r.host.wall_us, 290'000);
  EXPECT_LT(r.host.vcpu_cpu_us, r.host.wall_us / 4);
}

TEST_P(Trusted, RingingExitItselfEndsTheJobButKeepsItsCpuTime) {
  RunResult r = hostile("ring-exit");
  EXPECT_EQ(r.reason, ExitReason::kExited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_GE(r.host.vcpu_cpu_us, 150'000);
  expect_bounded(r);
}

TEST_P(Trusted, ForgedFaultIsNamedGuestReported) {
  RunResult r = hostile("ring-fault", 1);
  EXPECT_EQ(r.reason, ExitReason::kCrashed);
  EXPECT_EQ(r.exit_code, 128 + 11);  // what a real #PF in the job (or exit(139)) gives
  ASSERT_TRUE(r.fault.has_value());
  EXPECT_FALSE(r.fault->vmm_observed);
  EXPECT_EQ(engine::to_json(r)["fault"]["reported_by"], "guest");
  expect_bounded(r);
}

TEST_P(Trusted, ForgedSignalOutsideRangeGivesAnExitCodeTheJobCouldGive) {
  RunResult r = hostile("ring-signal", 1);
  EXPECT_EQ(r.reason, ExitReason::kCrashed);
  EXPECT_GE(r.exit_code, 0);
  EXPECT_LE(r.exit_code, 255);
  EXPECT_EQ(r.exit_code, 128 + 11);  // signal 127 is no signal: reported as SIGSEGV
  ASSERT_TRUE(r.fault.has_value());
  EXPECT_FALSE(r.fault->vmm_observed);
}

TEST_P(Trusted, ForgedPanicIsNamedGuestReported) {
  RunResult r = hostile("ring-panic", 1);
  EXPECT_EQ(r.reason, ExitReason::kCrashed);
  EXPECT_EQ(r.exit_code, 128 + 6);  // as abort() in the job
  ASSERT_TRUE(r.fault.has_value());
  EXPECT_FALSE(r.fault->vmm_observed);
}

TEST_P(Trusted, TimeoutIsDecidedByTheVmm) {
  engine::RunSpec spec;
  spec.program = kPrograms + "/spin.musl";
  spec.argv = {"spin"};
  spec.accel = GetParam();
  spec.timeout = std::chrono::milliseconds(300);
  auto r = engine::run_cold(spec);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->reason, ExitReason::kTimeout);
  EXPECT_EQ(r->exit_code, 124);
  EXPECT_GE(r->host.wall_us, 250'000);
}

INSTANTIATE_TEST_SUITE_P(Accel, Trusted, testing::Values(vmm::AccelRequest::kNative, vmm::AccelRequest::kEmulated),
                         [](const testing::TestParamInfo<vmm::AccelRequest>& i) {
                           return i.param == vmm::AccelRequest::kNative ? "Native" : "Emulated";
                         });

}  // namespace
