// `vmfork bench`: summaries, ratios and the Markdown table on fixed inputs, and a real
// `vmfork bench --quick --out DIR` whose results.json must hold every peer, each with figures or
// the reason it could not run. No figure is asserted (they are measurements, not limits).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "bench/suite/report.h"
#include "bench/suite/stats.h"
#include "tests/kvm_test_util.h"

using namespace vmfork;

TEST(BenchStats, Summary) {
  auto s = bench::summarize({5, 1, 4, 2, 3});
  EXPECT_EQ(s.n, 5u);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.median, 3);
  EXPECT_EQ(s.max, 5);
  EXPECT_DOUBLE_EQ(s.p99, 4.96);  // common/stats.h: linear between ranks (Hyndman-Fan 7)
  EXPECT_EQ(bench::summarize({1, 2, 3, 4}).median, 2.5);
  EXPECT_EQ(bench::summarize({}).n, 0u);
}

TEST(BenchReport, RatiosAndTable) {
  bench::PeerResult a{"vmfork", "a"}, b{"naive", "b"}, c{"qemu", "c"};
  a.ran = b.ran = true;
  a.samples["job_us"] = {100, 200, 300};
  b.samples["job_us"] = {400, 600, 800};
  c.reason = "not here";
  nlohmann::json r;
  r["peers"] = {bench::to_json(a), bench::to_json(b), bench::to_json(c)};
  bench::add_ratios(r);
  EXPECT_DOUBLE_EQ(r["ratios"]["naive"]["job_us"].get<double>(), 3.0);
  EXPECT_FALSE(r["ratios"]["qemu"].contains("job_us"));
  std::string md = bench::markdown_table(r);
  EXPECT_NE(md.find("| job_us (µs) | 200 (100-300, 3) | 600 (400-800, 3) x3.00 | - |"), std::string::npos) << md;
  EXPECT_NE(md.find("Not measured: not here"), std::string::npos) << md;
}

TEST(BenchCommand, QuickWritesEveryPeer) {
  VMFORK_REQUIRE_KVM();
  auto out = std::filesystem::temp_directory_path() / ("vmfork-bench-test-" + std::to_string(getpid()));
  std::filesystem::remove_all(out);
  std::string cmd = std::string(VMFORK_BINARY) + " bench --quick --out " + out.string() + " >/dev/null";
  int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << cmd;
  std::ifstream f(out / "results.json");
  auto r = nlohmann::json::parse(f, nullptr, false);
  ASSERT_FALSE(r.is_discarded());
  std::set<std::string> names;
  for (const auto& p : r["peers"]) {
    std::string name = p["name"];
    names.insert(name);
    if (p["ran"].get<bool>()) {
      EXPECT_FALSE(p["metrics"].empty()) << name;
      for (const auto& [key, m] : p["metrics"].items()) {
        EXPECT_GE(m["n"].get<int>(), 1) << name << " " << key;
        EXPECT_LE(m["min"].get<double>(), m["median"].get<double>()) << name << " " << key;
        EXPECT_LE(m["median"].get<double>(), m["max"].get<double>()) << name << " " << key;
      }
    } else {
      EXPECT_FALSE(p["reason"].get<std::string>().empty()) << name;
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"vmfork", "firecracker-style", "naive", "bare-process", "kvm-floor", "qemu"}));
  bool vf_ran = false;
  for (const auto& p : r["peers"])
    if (p["name"] == "vmfork") vf_ran = p["ran"].get<bool>();
  EXPECT_TRUE(vf_ran);
  EXPECT_TRUE(std::filesystem::exists(out / "results.md"));
  ASSERT_TRUE(r.contains("plots")) << r.value("plots_error", "");
  for (const auto& svg : r["plots"]) {
    std::ifstream s(out / svg.get<std::string>());
    std::string text((std::istreambuf_iterator<char>(s)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("<svg"), std::string::npos) << svg;
  }
  std::filesystem::remove_all(out);
}
