// Integration tests of the guest kernel's file objects that block or wake: pipes, eventfds,
// timerfds, signalfds and poll/select/epoll readiness (waking at a timerfd's expiry or a blocked
// signal's arrival). Each runs a program of tests/programs (glibc and musl builds) in a VM and on
// the host and compares their output byte for byte. Needs /dev/kvm. Test-thread only.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "engine/cold_run.h"
#include "kvm_test_util.h"

using namespace vmfork;

namespace {

const std::string kPrograms = VMFORK_TEST_PROGRAMS;

// The program's stdout when run on the host (stdin from /dev/null).
std::string host_stdout(const std::string& path) {
  FILE* p = popen((path + " < /dev/null").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (p) pclose(p);
  return out;
}

class FdObjects : public testing::TestWithParam<vmm::AccelRequest> {
 protected:
  void SetUp() override { VMFORK_REQUIRE_KVM(); }

  // Runs `program`'s glibc and musl builds in a VM and on the host: exit 0, a "done" line on the
  // host, and the same stdout.
  void expect_matches_host(const std::string& program) {
    for (const std::string& variant : {program + ".glibc", program + ".musl"}) {
      const std::string path = kPrograms + "/" + variant;
      engine::RunSpec spec;
      spec.program = path;
      spec.argv = {variant};
      spec.env = engine::default_env();
      spec.accel = GetParam();
      spec.timeout = std::chrono::seconds(20);
      vmm::StringInput in("");
      spec.stdin_source = &in;
      auto r = engine::run_cold(spec);
      ASSERT_TRUE(r.ok()) << r.error().message();
      EXPECT_EQ(r->reason, engine::ExitReason::kExited) << variant << " " << r->stderr_data;
      EXPECT_EQ(r->exit_code, 0) << variant;
      std::string host = host_stdout(path);
      ASSERT_NE(host.find("done\n"), std::string::npos) << "host run of " << variant << " failed";
      EXPECT_EQ(r->stdout_data, host) << variant;
    }
  }
};

TEST_P(FdObjects, PipesEventfdsAndPollMatchHost) { expect_matches_host("pipes"); }

TEST_P(FdObjects, TimerfdSignalfdMatchHost) { expect_matches_host("timerfd_signalfd"); }

INSTANTIATE_TEST_SUITE_P(Accel, FdObjects, testing::Values(vmm::AccelRequest::kNative, vmm::AccelRequest::kEmulated),
                         [](const testing::TestParamInfo<vmm::AccelRequest>& i) {
                           return std::string(i.param == vmm::AccelRequest::kNative ? "Native" : "Emulated");
                         });

}  // namespace
