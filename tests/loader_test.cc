// Integration tests of the guest kernel's program loader (guest-kernel/fs/loader.cc) through the
// job's first program, the path execve shares: "#!" chains against the host kernel, the argument
// limit, /proc/self/cmdline, and the 126/127 failures. Needs /dev/kvm, dash and python3.11.
// Thread-safety: test-thread only.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/cold_run.h"
#include "kvm_test_util.h"
#include "rootfs/store.h"

using namespace vmfork;
using engine::ExitReason;
using engine::RunResult;

namespace {

class Loader : public testing::Test {
 protected:
  // One image: dash, python3, and scripts under <dir>/box at the same path as on the host, so
  // the same command can run on both.
  static void SetUpTestSuite() {
    dir_ = testing::TempDir() + "/vmfork_loader_" + std::to_string(getpid());
    box_ = dir_ + "/box";
    std::filesystem::create_directories(box_ + "/subdir");
    // A chain of five scripts (c1 -> ... -> c5 -> dash), Linux's most, and one more (c0).
    write(box_ + "/c5", "#!/bin/dash\necho \"$0\" \"$@\"\n", 0755);
    for (int i = 4; i >= 0; i--)
      write(box_ + "/c" + std::to_string(i), "#!" + box_ + "/c" + std::to_string(i + 1) + "\n", 0755);
    // The optional argument: one string, inner blanks kept, trailing ones dropped.
    write(box_ + "/argscript", "#!" + box_ + "/c5  one  two \t\n", 0755);
    write(box_ + "/cmdline.py",
          "#!/usr/bin/python3\nimport os, sys\n"
          "print(open('/proc/self/cmdline', 'rb').read())\n"
          "env = open('/proc/self/environ', 'rb').read().split(b'\\0')[:-1]\n"
          "print(len(env) == len(os.environ), sys.argv[1:])\n",
          0755);
    write(box_ + "/noexec", "#!/bin/dash\necho never\n", 0644);
    write(box_ + "/nointerp", "#!/no/such/interpreter\n", 0755);
    write(box_ + "/garbage", "this is neither ELF nor a script\n", 0755);
    auto store = rootfs::Store::open(dir_ + "/store");
    ASSERT_TRUE(store.ok()) << store.error().message();
    auto img = store->create_from_host("loader", {"/bin/dash", "/usr/bin/python3", "/usr/lib/python3.11", box_});
    ASSERT_TRUE(img.ok()) << img.error().message();
    image_ = img->path.string();
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

  static void write(const std::string& path, const std::string& text, int mode) {
    std::ofstream(path, std::ios::binary) << text;
    chmod(path.c_str(), mode_t(mode));
  }

  RunResult run(std::vector<std::string> argv, uint64_t stack_bytes = 8ull << 20) {
    engine::RunSpec spec;
    spec.rootfs = image_;
    spec.program = argv[0];
    spec.argv = argv;
    spec.env = engine::default_env();
    spec.stack_bytes = stack_bytes;
    spec.timeout = std::chrono::seconds(60);
    auto r = engine::run_cold(spec);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() ? std::move(r).value() : RunResult{};
  }

  // The same command on the host kernel (stdout only).
  static std::string host(const std::string& cmd) {
    FILE* p = popen((cmd + " 2>/dev/null </dev/null").c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
  }

  static std::string dir_, box_, image_;
};
std::string Loader::dir_, Loader::box_, Loader::image_;

TEST_F(Loader, FiveNestedScriptsBuildArgvAsLinuxDoes) {
  VMFORK_REQUIRE_KVM();
  auto r = run({box_ + "/c1", "a", "b c"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, host(box_ + "/c1 a 'b c'"));
  EXPECT_EQ(r.stdout_data, box_ + "/c5 " + box_ + "/c4 " + box_ + "/c3 " + box_ + "/c2 " + box_ + "/c1 a b c\n");
}

TEST_F(Loader, SixNestedScriptsAreTooMany) {
  VMFORK_REQUIRE_KVM();
  auto r = run({box_ + "/c0"});
  EXPECT_EQ(r.reason, ExitReason::kExited);
  EXPECT_EQ(r.exit_code, 126);
  EXPECT_NE(r.stderr_data.find("Too many levels of interpreters"), std::string::npos) << r.stderr_data;
  EXPECT_EQ(host(box_ + "/c0"), "");  // the host refuses it too (ELOOP)
}

TEST_F(Loader, ScriptArgumentIsOneString) {
  VMFORK_REQUIRE_KVM();
  auto r = run({box_ + "/argscript", "x"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, host(box_ + "/argscript x"));
  EXPECT_EQ(r.stdout_data, box_ + "/c5 one  two " + box_ + "/argscript x\n");
}

TEST_F(Loader, ProcCmdlineShowsTheInterpreterArgv) {
  VMFORK_REQUIRE_KVM();
  auto r = run({box_ + "/cmdline.py", "x", ""});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, host(box_ + "/cmdline.py x ''"));
  EXPECT_EQ(r.stdout_data, "b'/usr/bin/python3\\x00" + box_ + "/cmdline.py\\x00x\\x00\\x00'\nTrue ['x', '']\n");
}

TEST_F(Loader, ArgumentsUpToTheLimitArrive) {
  VMFORK_REQUIRE_KVM();
  // 400 KiB of arguments: under the 2 MiB limit of an 8 MiB stack (and the VMM's 512 KiB block).
  std::vector<std::string> argv = {"/bin/dash", "-c", "echo $# ${#1} ${#400}", "sh"};
  for (int i = 0; i < 400; i++) argv.push_back(std::string(1023, char('a' + i % 26)));
  auto r = run(argv);
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "400 1023 1023\n");
}

TEST_F(Loader, ArgumentsBeyondAQuarterOfTheStackAreE2big) {
  VMFORK_REQUIRE_KVM();
  // A 512 KiB stack allows 128 KiB of arguments and pointers (Linux's ARG_MAX floor).
  std::vector<std::string> argv = {"/bin/dash", "-c", "echo $#", "sh"};
  for (int i = 0; i < 200; i++) argv.push_back(std::string(1023, 'x'));
  auto r = run(argv, 512u << 10);
  EXPECT_EQ(r.exit_code, 126);
  EXPECT_NE(r.stderr_data.find("Argument list too long"), std::string::npos) << r.stderr_data;
  argv.resize(4 + 100);  // ~100 KiB fits
  auto ok = run(argv, 512u << 10);
  EXPECT_EQ(ok.exit_code, 0) << ok.stderr_data;
  EXPECT_EQ(ok.stdout_data, "100\n");
}

TEST_F(Loader, OneStringLongerThan32PagesIsE2big) {
  VMFORK_REQUIRE_KVM();
  auto r = run({"/bin/dash", "-c", "echo $#", std::string(32 * 4096, 'y')});
  EXPECT_EQ(r.exit_code, 126);
  EXPECT_NE(r.stderr_data.find("Argument list too long"), std::string::npos) << r.stderr_data;
  auto ok = run({"/bin/dash", "-c", "echo ${#0}", std::string(32 * 4096 - 1, 'y')});
  EXPECT_EQ(ok.stdout_data, "131071\n") << ok.stderr_data;
}

TEST_F(Loader, FailuresEndTheJobAsAShellReportsThem) {
  VMFORK_REQUIRE_KVM();
  struct Case {
    std::string program;
    int status;
    std::string message;
  };
  const Case cases[] = {
      {box_ + "/noexec", 126, box_ + "/noexec: Permission denied"},
      {box_ + "/subdir", 126, box_ + "/subdir: Is a directory"},
      {box_ + "/nointerp", 127, "/no/such/interpreter: No such file or directory"},
      {box_ + "/garbage", 126, box_ + "/garbage: Exec format error"},
      {box_ + "/missing", 127, box_ + "/missing: No such file or directory"},
  };
  for (const Case& c : cases) {
    auto r = run({c.program});
    EXPECT_EQ(r.reason, ExitReason::kExited) << c.program;
    EXPECT_EQ(r.exit_code, c.status) << c.program;
    EXPECT_NE(r.stderr_data.find(c.message), std::string::npos) << c.program << ": " << r.stderr_data;
  }
}

}  // namespace
