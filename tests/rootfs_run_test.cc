// Integration tests: real Debian programs (dynamically linked, interpreted) run from a root file
// system image in a fresh VM, their output compared byte for byte with the same program on the
// host. Images are built with the rootfs store (--from-host: the files plus their library
// closure). Needs /dev/kvm, python3.11, coreutils, dash, gzip and sqlite3 from Debian.
#include <gtest/gtest.h>
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

// One image for the whole suite: python3 with its standard library, a few tools, and the test
// scripts under /box.
class RootfsRun : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::TempDir() + "/vmfork_rootfs_run_" + std::to_string(getpid());
    std::filesystem::create_directories(dir_ + "/box");
    write(dir_ + "/box/script.sh", "#!/bin/dash\necho script \"$0\" \"$@\"\nexit 7\n", 0755);
    write(dir_ + "/box/fs.py", R"py(import os, sys, json, re, hashlib, zlib, collections, heapq, sqlite3
print(2**200 % 1000007, sum(range(10**5)))
print(json.dumps({"a": [1, {"b": None}]}, sort_keys=True), re.findall(r"\d+", "a1b22"))
print(hashlib.sha256(b"x").hexdigest(), len(zlib.compress(b"a" * 1000)))
print(collections.Counter("mississippi").most_common(2), heapq.nsmallest(2, [5, 1, 4]))
db = sqlite3.connect(":memory:"); db.execute("create table t(x)")
db.executemany("insert into t values (?)", [(i,) for i in range(100)])
print(db.execute("select sum(x) from t").fetchone())
data = sys.stdin.read(); print(len(data), data.count("\n"))
d = sys.argv[1]
os.makedirs(d + "/e", exist_ok=True)
with open(d + "/e/f.txt", "w") as f: f.write("hello\n" * 3)
os.symlink("e/f.txt", d + "/link")
print(open(d + "/link").read().count("hello"), sorted(os.listdir(d)), os.path.getsize(d + "/e/f.txt"))
os.rename(d + "/e/f.txt", d + "/g.txt"); os.remove(d + "/g.txt"); print(os.listdir(d + "/e"))
print(os.path.exists("/usr/lib/python3.11/os.py"))
sys.exit(3)
)py", 0644);
    write(dir_ + "/box/raise.py", "def f():\n    raise ValueError('boom')\nf()\n", 0644);
    auto store = rootfs::Store::open(dir_ + "/store");
    ASSERT_TRUE(store.ok()) << store.error().message();
    auto img = store->create_from_host("suite", {"/usr/bin/python3", "/usr/lib/python3.11", "/bin/ls",
                                                 "/bin/dash", "/usr/bin/sort", "/usr/bin/wc",
                                                 "/usr/bin/sha256sum", "/usr/bin/find", "/bin/gzip",
                                                 "/usr/bin/sqlite3", "/bin/cat", dir_ + "/box"});
    ASSERT_TRUE(img.ok()) << img.error().message();
    image_ = img->path.string();
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

  static void write(const std::string& path, const std::string& text, int mode) {
    std::ofstream(path, std::ios::binary) << text;
    chmod(path.c_str(), mode_t(mode));
  }

  RunResult run(std::vector<std::string> argv, const std::string& input = "",
                vmm::AccelRequest accel = vmm::AccelRequest::kNative, engine::JobFiles files = {}) {
    engine::RunSpec spec;
    spec.files = std::move(files);
    spec.rootfs = image_;
    spec.program = argv[0];
    spec.argv = argv;
    spec.env = engine::default_env();
    spec.accel = accel;
    spec.timeout = std::chrono::seconds(60);
    vmm::StringInput in(input);
    spec.stdin_source = &in;
    auto r = engine::run_cold(spec);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() ? std::move(r).value() : RunResult{};
  }

  // The same command on the host (from the suite's directory, where /box files live).
  static std::string host(const std::string& cmd, const std::string& input, int* status = nullptr) {
    std::string in = dir_ + "/host_input";
    std::ofstream(in, std::ios::binary) << input;
    // stdin through a pipe, as the job's stdin is one (programs such as wc format by it).
    FILE* p = popen(("cd / && cat " + in + " | " + cmd + " 2>&1").c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = pclose(p);
    if (status) *status = WEXITSTATUS(st);
    return out;
  }

  static std::string dir_, image_;
};
std::string RootfsRun::dir_, RootfsRun::image_;

TEST_F(RootfsRun, PythonScriptMatchesHost) {
  VMFORK_REQUIRE_KVM();
  std::string input = "line one\nline two\n";
  int host_status;
  std::string work = dir_ + "/host_work";
  std::filesystem::remove_all(work);
  std::string want = host("/usr/bin/python3 " + dir_ + "/box/fs.py " + work, input, &host_status);
  auto r = run({"/usr/bin/python3", dir_ + "/box/fs.py", "/tmp/work"}, input);
  EXPECT_EQ(r.reason, ExitReason::kExited) << r.stderr_data;
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(host_status, 3);
  EXPECT_EQ(r.stdout_data + r.stderr_data, want);
}

TEST_F(RootfsRun, PythonTracebackAndExitCode) {
  VMFORK_REQUIRE_KVM();
  auto r = run({"python3", dir_ + "/box/raise.py"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.stdout_data, "");
  EXPECT_EQ(r.stderr_data, host("/usr/bin/python3 " + dir_ + "/box/raise.py", ""));
}

TEST_F(RootfsRun, PythonInEmulatedMode) {
  VMFORK_REQUIRE_KVM();
  auto r = run({"/usr/bin/python3", "-c", "print(sum(range(10**6)))"}, "", vmm::AccelRequest::kEmulated);
  EXPECT_EQ(r.reason, ExitReason::kExited) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "499999500000\n");
}

TEST_F(RootfsRun, CoreutilsMatchHost) {
  VMFORK_REQUIRE_KVM();
  std::string text = "pear\napple\nfig\napple\n";
  for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
           {"/usr/bin/sort"}, {"/usr/bin/wc"}, {"/usr/bin/sha256sum"}, {"/bin/cat", "-n"}}) {
    auto r = run(argv, text);
    std::string cmd;
    for (auto& a : argv) cmd += a + " ";
    EXPECT_EQ(r.exit_code, 0) << cmd << r.stderr_data;
    EXPECT_EQ(r.stdout_data, host(cmd, text)) << cmd;
  }
}

TEST_F(RootfsRun, LsAndFindSeeTheImage) {
  VMFORK_REQUIRE_KVM();
  auto r = run({"/bin/ls", "-la", "/usr/lib/python3.11/json"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_NE(r.stdout_data.find("decoder.py"), std::string::npos) << r.stdout_data;
  auto f = run({"/usr/bin/find", dir_ + "/box", "-name", "*.py"});
  EXPECT_EQ(f.exit_code, 0) << f.stderr_data;
  EXPECT_EQ(f.stdout_data, host("/usr/bin/find " + dir_ + "/box -name '*.py'", ""));
}

TEST_F(RootfsRun, GzipAndSqliteCli) {
  VMFORK_REQUIRE_KVM();
  std::string text(100000, 'z');
  auto g = run({"/bin/gzip", "-c"}, text);
  ASSERT_EQ(g.exit_code, 0) << g.stderr_data;
  auto back = run({"/bin/gzip", "-dc"}, g.stdout_data);
  EXPECT_EQ(back.stdout_data, text);
  auto q = run({"/usr/bin/sqlite3", ":memory:", "select 6*7; select group_concat(value) from json_each('[1,2,3]');"});
  EXPECT_EQ(q.exit_code, 0) << q.stderr_data;
  EXPECT_EQ(q.stdout_data, "42\n1,2,3\n");
}

TEST_F(RootfsRun, ShebangScriptRunsThroughItsInterpreter) {
  VMFORK_REQUIRE_KVM();
  auto r = run({dir_ + "/box/script.sh", "a", "b"});
  EXPECT_EQ(r.exit_code, 7) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "script " + dir_ + "/box/script.sh a b\n");
}

TEST_F(RootfsRun, MissingProgramIs127) {
  VMFORK_REQUIRE_KVM();
  auto r = run({"/usr/bin/no-such-program"});
  EXPECT_EQ(r.reason, ExitReason::kExited);
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_NE(r.stderr_data.find("No such file or directory"), std::string::npos) << r.stderr_data;
}

TEST_F(RootfsRun, WritesAreGoneWithTheVm) {
  VMFORK_REQUIRE_KVM();
  auto w = run({"/usr/bin/python3", "-c", "open('/tmp/left','w').write('x'); print('ok')"});
  EXPECT_EQ(w.stdout_data, "ok\n") << w.stderr_data;
  auto r = run({"/bin/ls", "/tmp"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_data.find("left"), std::string::npos) << r.stdout_data;
}

TEST_F(RootfsRun, JobMayChangeEtcForItself) {
  VMFORK_REQUIRE_KVM();
  auto r = run({"/usr/bin/python3", "-c",
                "open('/etc/vmfork-test','w').write('mine'); print(open('/etc/vmfork-test').read())"});
  EXPECT_EQ(r.stdout_data, "mine\n") << r.stderr_data;
  auto again = run({"/bin/cat", "/etc/vmfork-test"});
  EXPECT_NE(again.exit_code, 0);  // the next VM sees the image as built
}

TEST_F(RootfsRun, JobFilesGoInAndCollectedFilesComeBack) {
  VMFORK_REQUIRE_KVM();
  engine::JobFiles f;
  std::string big(1500000, '\0');  // larger than the 512 KiB files window, both ways
  for (size_t i = 0; i < big.size(); i++) big[i] = char('a' + i % 23);
  f.files.push_back({"/box/in/big.bin", big, 0600});
  f.files.push_back({"/box/run.py",
                     "import os, shutil\n"
                     "print(os.getcwd(), oct(os.stat('/box/in/big.bin').st_mode & 0o777))\n"
                     "shutil.copy('/box/in/big.bin', 'copy.bin')\n"
                     "open('empty', 'w').close()\n",
                     0644});
  f.workdir = "/work/dir";
  f.collect = {"/work/dir/copy.bin", "/work/dir/empty", "/work/dir/never"};
  auto r = run({"/usr/bin/python3", "/box/run.py"}, "", vmm::AccelRequest::kNative, f);
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "/work/dir 0o600\n");
  ASSERT_EQ(r.collected.size(), 3u);
  EXPECT_EQ(r.collected[0].path, "/work/dir/copy.bin");
  EXPECT_EQ(r.collected[0].data, big);
  EXPECT_FALSE(r.collected[0].truncated);
  EXPECT_EQ(r.collected[1].data, "");
  EXPECT_FALSE(r.collected[1].missing);
  EXPECT_TRUE(r.collected[2].missing);
}

// Compiles `source` with `cmd` (the output path appended) into the suite's directory and runs
// the program in a VM from its automatic image (the program and its library closure).
RunResult compile_and_run(const std::string& dir, const std::string& name, const std::string& source,
                          const std::string& cmd) {
  std::string src = dir + "/" + name + (cmd.rfind("rustc", 0) == 0 ? ".rs" : ".cc");
  std::string bin = dir + "/" + name;
  std::ofstream(src) << source;
  int rc = std::system((cmd + " " + src + " -o " + bin + " 2>&1").c_str());
  EXPECT_EQ(rc, 0) << cmd << " failed";
  auto store = rootfs::Store::open(dir + "/store");
  EXPECT_TRUE(store.ok());
  auto img = store->ensure_program_image(bin);
  EXPECT_TRUE(img.ok()) << (img.ok() ? "" : img.error().message());
  if (!img.ok()) return {};
  engine::RunSpec spec;
  spec.rootfs = img->path.string();
  spec.program = bin;
  spec.argv = {bin};
  spec.env = engine::default_env();
  spec.env.push_back("TMPDIR=/tmp");
  spec.timeout = std::chrono::seconds(60);
  vmm::StringInput in("");
  spec.stdin_source = &in;
  auto r = engine::run_cold(spec);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return r.ok() ? std::move(r).value() : RunResult{};
}

TEST_F(RootfsRun, CxxProgramWritesTempFiles) {
  VMFORK_REQUIRE_KVM();
  auto r = compile_and_run(dir_, "cxx_tmp", R"cc(
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
int main() {
  auto dir = std::filesystem::temp_directory_path() / "cxx";
  std::filesystem::create_directories(dir);
  for (int i = 0; i < 3; i++) std::ofstream(dir / ("f" + std::to_string(i))) << "line " << i << "\n";
  std::string line;
  std::ifstream(dir / "f2") >> line;
  size_t n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) n += e.file_size();
  std::filesystem::rename(dir / "f0", dir / "g0");
  std::cout << dir << " " << line << " " << n << " " << std::filesystem::exists(dir / "g0") << "\n";
}
)cc", "g++ -O1 -std=c++17");
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "\"/tmp/cxx\" line 21 1\n");
}

TEST_F(RootfsRun, RustProgramWritesTempFiles) {
  VMFORK_REQUIRE_KVM();
  auto r = compile_and_run(dir_, "rust_tmp", R"rs(
use std::io::{Read, Write};
fn main() {
    let dir = std::env::temp_dir().join("rs");
    std::fs::create_dir_all(&dir).unwrap();
    let mut f = std::fs::File::create(dir.join("a.txt")).unwrap();
    writeln!(f, "written by rust").unwrap();
    drop(f);
    let mut s = String::new();
    std::fs::File::open(dir.join("a.txt")).unwrap().read_to_string(&mut s).unwrap();
    let n = std::fs::read_dir(&dir).unwrap().count();
    print!("{} {} {}", dir.display(), n, s);
}
)rs", "rustc -O");
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "/tmp/rs 1 written by rust\n");
}

TEST_F(RootfsRun, ProcFilesAreThere) {
  VMFORK_REQUIRE_KVM();
  auto r = run({"/usr/bin/python3", "-c",
                "import os,resource; print(os.readlink('/proc/self/exe')); "
                "print('VmRSS' in open('/proc/self/status').read(), 'MemTotal' in open('/proc/meminfo').read()); "
                "print(len(open('/proc/sys/kernel/random/uuid').read().strip())); "
                "print(sorted(os.listdir('/proc/self/fd'))[:3]); print(os.getcwd())"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "/usr/bin/python3.11\nTrue True\n36\n['0', '1', '2']\n/\n");
}

}  // namespace
