// Integration tests: the warm CPython template (`template create --rootfs R --runtime python3`).
// A clone runs each job as `python3 ARGV` would on the host (stdout, stderr tracebacks, exit
// status, compared byte for byte), with its own files; clones and reset clones never see one
// another's files; and the serve protocol carries files in and collected files out. Needs
// /dev/kvm and Debian's python3.11.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/restore.h"
#include "engine/template.h"
#include "kvm_test_util.h"
#include "pool/base64.h"
#include "pool/protocol.h"
#include "pool/service.h"
#include "rootfs/store.h"

using namespace vmfork;
using engine::ExitReason;
using engine::RunResult;

namespace {

class WarmPython : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (access("/dev/kvm", R_OK | W_OK) != 0) return;  // each test reports it (VMFORK_REQUIRE_KVM)
    dir_ = testing::TempDir() + "/vmfork_runtime_" + std::to_string(getpid());
    std::filesystem::create_directories(dir_);
    auto rstore = rootfs::Store::open(dir_);
    ASSERT_TRUE(rstore.ok()) << rstore.error().message();
    auto img = rstore->create_from_host("py", {"/usr/bin/python3", "/usr/lib/python3.11"});
    ASSERT_TRUE(img.ok()) << img.error().message();
    auto store = snapshot::PageStore::open(dir_);
    ASSERT_TRUE(store.ok()) << store.error().message();
    engine::TemplateSpec spec;
    spec.name = "pyt";
    spec.accel = vmm::AccelRequest::kNative;
    ASSERT_TRUE(engine::use_runtime(&spec, "python3").ok());
    engine::use_rootfs(&spec, *img);
    auto created = engine::create_template(spec, **store);
    ASSERT_TRUE(created.ok()) << created.error().message();
    ASSERT_EQ(created->point, engine::FreezePoint::kRuntime);
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  RunResult run(std::vector<std::string> argv, engine::JobFiles files = {}, const std::string& input = "") {
    auto store = snapshot::PageStore::open(dir_);
    EXPECT_TRUE(store.ok());
    auto clone = engine::restore_clone(**store, "pyt");
    EXPECT_TRUE(clone.ok()) << (clone.ok() ? "" : clone.error().message());
    if (!clone.ok()) return {};
    engine::CloneJob job;
    job.argv = std::move(argv);
    job.files = std::move(files);
    vmm::StringInput in(input);
    job.stdin_source = &in;
    job.timeout = std::chrono::seconds(60);
    auto r = engine::run_clone(std::move(clone).value(), job);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() ? std::move(r).value() : RunResult{};
  }

  // `python3 ARGS` on the host, from the directory where the test's scripts are, stdin piped.
  static std::string host(const std::string& args, const std::string& input, int* status) {
    std::string in = dir_ + "/host_input";
    std::ofstream(in, std::ios::binary) << input;
    FILE* p = popen(("cd " + dir_ + " && cat " + in + " | /usr/bin/python3 " + args + " 2>&1").c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    *status = WEXITSTATUS(pclose(p));
    return out;
  }

  static std::string dir_;
};
std::string WarmPython::dir_;

// Each script runs as box/<name> from the suite's directory, on the host and in a clone (where
// the job's files and working directory are put at the same absolute paths).
struct Script {
  const char* name;
  const char* source;
  const char* input;
};
const Script kScripts[] = {
    {"arith.py", "import sys\nprint(sum(range(10**6)), 3**100, 7/3)\nprint(sys.argv[1:])\n", ""},
    {"stdin.py", "import sys\nd = sys.stdin.read()\nprint(len(d), d.split())\nsys.exit(3)\n", "a b\nc\n"},
    {"trace.py", "def f(x):\n    return 1 / x\nprint('before', flush=True)\nf(0)\n", ""},
    {"exit_msg.py", "import sys\nsys.exit('bad input')\n", ""},
    {"mods.py",
     "import json, re, hashlib, zlib, collections, heapq, sqlite3, argparse, os\n"
     "print(json.dumps({'k': [1, 2]}), re.sub('a+', '-', 'caaat'), hashlib.sha1(b'x').hexdigest())\n"
     "db = sqlite3.connect(':memory:'); print(db.execute('select 6*7').fetchone())\n"
     "open('/tmp/t.txt', 'w').write('x' * 10); print(os.path.getsize('/tmp/t.txt'))\n",
     ""},
    {"atexit.py", "import atexit\natexit.register(lambda: print('bye'))\nprint('hi')\n", ""},
    // Threads, a subprocess and a fork from a warm clone (the template froze one thread).
    {"procs.py",
     "import os, subprocess, sys, threading\n"
     "out = []\n"
     "ts = [threading.Thread(target=lambda i=i: out.append(i * i)) for i in range(4)]\n"
     "[t.start() for t in ts]; [t.join() for t in ts]\n"
     "print(sorted(out))\n"
     "print(subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True).stdout.strip())\n"
     "r, w = os.pipe()\n"
     "pid = os.fork()\n"
     "if pid == 0:\n    os.write(w, b'from the child'); os._exit(3)\n"
     "os.close(w)\n"
     "print(os.read(r, 100).decode(), os.waitpid(pid, 0)[1] >> 8)\n",
     ""},
};

TEST_F(WarmPython, ScriptsMatchHostPython) {
  VMFORK_REQUIRE_KVM();
  std::filesystem::create_directories(dir_ + "/box");
  for (const auto& s : kScripts) {
    std::ofstream(dir_ + "/box/" + s.name) << s.source;
    int host_status;
    std::string want = host(std::string("box/") + s.name + " one two", s.input, &host_status);
    engine::JobFiles f;  // the same absolute paths as on the host: tracebacks print them
    f.files.push_back({dir_ + "/box/" + s.name, s.source, 0644});
    f.workdir = dir_;
    auto r = run({std::string("box/") + s.name, "one", "two"}, f, s.input);
    EXPECT_EQ(r.reason, ExitReason::kExited) << s.name << ": " << r.stderr_data;
    EXPECT_EQ(r.exit_code, host_status) << s.name;
    EXPECT_EQ(r.stdout_data + r.stderr_data, want) << s.name;
  }
}

TEST_F(WarmPython, DashCAndDashM) {
  VMFORK_REQUIRE_KVM();
  auto c = run({"-c", "import sys; print(sys.argv)", "x"});
  EXPECT_EQ(c.stdout_data, "['-c', 'x']\n") << c.stderr_data;
  auto m = run({"-m", "json.tool"}, {}, "{\"a\":1}");
  EXPECT_EQ(m.stdout_data, "{\n    \"a\": 1\n}\n") << m.stderr_data;
}

TEST_F(WarmPython, ClonesNeverSeeEachOthersFilesOrRandomness) {
  VMFORK_REQUIRE_KVM();
  engine::JobFiles f;
  f.files.push_back({"/tmp/secret", "clone one", 0600});
  auto a = run({"-c", "import os, random; print(sorted(os.listdir('/tmp')), random.random())"}, f);
  auto b = run({"-c", "import os, random; print(sorted(os.listdir('/tmp')), random.random())"});
  EXPECT_NE(a.stdout_data.find("'secret'"), std::string::npos) << a.stdout_data << a.stderr_data;
  EXPECT_EQ(b.stdout_data.find("secret"), std::string::npos) << b.stdout_data;
  EXPECT_NE(a.stdout_data.substr(a.stdout_data.find(']')), b.stdout_data.substr(b.stdout_data.find(']')));
}

TEST_F(WarmPython, ServeCarriesFilesInAndOutAndResetClonesForget) {
  VMFORK_REQUIRE_KVM();
  auto store = snapshot::PageStore::open(dir_);
  ASSERT_TRUE(store.ok());
  pool::ServiceOptions opts;
  opts.templates = {"pyt"};
  opts.pool.depth = 1;
  opts.pool.mode = pool::Mode::kReset;
  opts.workers = 1;
  auto service = pool::Service::create(**store, opts);
  ASSERT_TRUE(service.ok()) << service.error().message();
  const std::string code = pool::base64_encode("import os\nprint(sorted(os.listdir('.')))\n"
                                                "open('out.txt', 'w').write('made in the clone')\n");
  std::string line = (*service)->call(R"({"id": 1, "argv": ["/job/main.py"], "workdir": "/job", )"
                                      R"("files": {"/job/main.py": ")" + code + R"("}, "collect": ["/job/out.txt"]})");
  auto r = pool::parse_response(line);
  ASSERT_TRUE(r.ok()) << r.error().message() << line;
  ASSERT_TRUE(r->ok) << line;
  EXPECT_EQ(r->stdout_data, "['main.py']\n") << r->stderr_data;
  ASSERT_EQ(r->collected.size(), 1u);
  EXPECT_EQ(r->collected[0].data, "made in the clone");
  // The next job, in the same clone reset in place, finds none of it.
  line = (*service)->call(R"js({"id": 2, "argv": ["-c", "import os; print(os.path.exists('/job'))"]})js");
  r = pool::parse_response(line);
  ASSERT_TRUE(r.ok() && r->ok) << line;
  EXPECT_EQ(r->stdout_data, "False\n") << r->stderr_data;
  (*service)->shutdown();
}

}  // namespace
