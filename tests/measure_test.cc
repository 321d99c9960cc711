// `vmfork measure` end to end (issue 13): the vmfork binary on real KVM with small N, its --json
// read back. Needs /dev/kvm.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "kvm_test_util.h"

namespace {

const std::string kPrograms = VMFORK_TEST_PROGRAMS;

struct Out {
  int status = -1;
  std::string text;
};

Out vmfork(const std::string& args) {
  Out o;
  std::string cmd = std::string(VMFORK_BINARY) + " " + args + " </dev/null 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) o.text.append(buf, n);
  int st = pclose(p);
  o.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return o;
}

nlohmann::json measure_json(const std::string& args, int want_status = 0) {
  Out o = vmfork("measure --json " + args);
  EXPECT_EQ(o.status, want_status) << o.text;
  auto j = nlohmann::json::parse(o.text, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << o.text;
  return j;
}

std::set<std::string> hashes(const nlohmann::json& program) {
  std::set<std::string> out;
  for (const auto& r : program["runs"]) out.insert(r["stdout_xxh3"].get<std::string>());
  return out;
}

class Measure : public testing::Test {
 protected:
  void SetUp() override { VMFORK_REQUIRE_KVM(); }
};

TEST_F(Measure, ReportsHostTimesOfEveryRun) {
  auto j = measure_json("--repeat 3 --warmup 1 -- " + kPrograms + "/nbody.musl 20000");
  ASSERT_TRUE(j.is_object());
  ASSERT_EQ(j["programs"].size(), 1u);
  const auto& p = j["programs"][0];
  EXPECT_EQ(p["runs"].size(), 4u);  // 1 warm-up + 3
  EXPECT_EQ(p["summary"]["vcpu_cpu_us"]["n"], 3);
  for (const auto& r : p["runs"]) {
    EXPECT_EQ(r["exit_code"], 0);
    EXPECT_GT(r["host"]["vcpu_cpu_us"].get<double>(), 0);
    EXPECT_LE(r["guest_reported"]["run_us"].get<double>(), r["host"]["wall_us"].get<double>());
  }
  EXPECT_EQ(hashes(p).size(), 1u);  // n-body's output does not depend on entropy or clock
  auto s = p["summary"]["wall_us"];
  EXPECT_LE(s["min"].get<double>(), s["median"].get<double>());
  EXPECT_LE(s["median"].get<double>(), s["max"].get<double>());
}

TEST_F(Measure, DeterministicRunsAreIdentical) {
  auto det = measure_json("--deterministic --repeat 3 --warmup 0 -- " + kPrograms + "/entropy_clock.musl");
  EXPECT_EQ(hashes(det["programs"][0]).size(), 1u);
  auto fresh = measure_json("--repeat 3 --warmup 0 -- " + kPrograms + "/entropy_clock.musl");
  EXPECT_EQ(hashes(fresh["programs"][0]).size(), 3u);  // new entropy per clone
}

TEST_F(Measure, VsInterleavesAndGivesARatio) {
  auto j = measure_json("--repeat 3 --warmup 0 -- " + kPrograms + "/nbody.musl 2000 --vs -- " + kPrograms +
                        "/nbody.musl 40000");
  ASSERT_EQ(j["programs"].size(), 2u);
  auto r = j["ratio_b_over_a"]["vcpu_cpu_us"];
  EXPECT_LE(r["low"].get<double>(), r["ratio"].get<double>());
  EXPECT_GE(r["high"].get<double>(), r["ratio"].get<double>());
  EXPECT_GT(r["ratio"].get<double>(), 1.0);  // 20 times the steps
}

TEST_F(Measure, ExitCodeAsVmforkRun) {
  auto j = measure_json("--repeat 2 --warmup 0 -- " + kPrograms + "/exit_code.musl 3", 3);
  EXPECT_EQ(j["programs"][0]["runs"][0]["exit_code"], 3);
  Out o = vmfork("measure --repeat 1 -- /nonexistent/program");
  EXPECT_EQ(o.status, 125);
}

TEST_F(Measure, TableForPeople) {
  Out o = vmfork("measure --repeat 2 --warmup 0 -- " + kPrograms + "/nbody.musl 1000");
  EXPECT_EQ(o.status, 0);
  EXPECT_NE(o.text.find("vCPU CPU (host)"), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("guest TSC (guest)"), std::string::npos) << o.text;
}

}  // namespace
