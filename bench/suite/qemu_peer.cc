// QEMU save / restore through QMP (see qemu_peer.h).
#include "bench/suite/qemu_peer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "bench/suite/qmp.h"

extern char** environ;

namespace vmfork::bench {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
double us_since(Clock::time_point t) { return std::chrono::duration<double, std::micro>(Clock::now() - t).count(); }

const char* kQemu = "/usr/bin/qemu-system-x86_64";

// A QEMU child: killed (SIGKILL) and reaped when this goes away, whatever happened.
class QemuProcess {
 public:
  /// Starts `args` with stdin /dev/null, stderr appended to `log`, and stdout (the guest's serial
  /// port, -serial stdio) on `stdout_fd`.
  static Result<QemuProcess> spawn(const std::vector<std::string>& args, const std::filesystem::path& log,
                                   int stdout_fd) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, stdout_fd, 1);
    pid_t pid;
    int e = posix_spawn(&pid, args[0].c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0) return Error{"posix_spawn " + args[0], e};
    return QemuProcess(pid);
  }
  QemuProcess(QemuProcess&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
  QemuProcess& operator=(QemuProcess&&) = delete;
  ~QemuProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }

 private:
  explicit QemuProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
};

// True if the ELF at `path` has a PT_NOTE with a Xen note of type 18 (XEN_ELFNOTE_PHYS32_ENTRY,
// xen/include/public/elfnote.h): what QEMU's PVH -kernel loader looks for.
bool has_pvh_note(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::string elf((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto rd = [&](size_t off, size_t n) -> uint64_t {
    uint64_t v = 0;
    if (off + n <= elf.size()) std::memcpy(&v, elf.data() + off, n);
    return v;
  };
  if (elf.size() < 64 || elf.compare(0, 4, "\x7f" "ELF") != 0) return false;
  const uint64_t phoff = rd(32, 8), phentsize = rd(54, 2), phnum = rd(56, 2);
  for (uint64_t i = 0; i < phnum; i++) {
    const uint64_t ph = phoff + i * phentsize;
    if (rd(ph, 4) != 4) continue;  // PT_NOTE
    uint64_t off = rd(ph + 8, 8), end = off + rd(ph + 32, 8);
    while (off + 12 <= end && end <= elf.size()) {
      uint64_t namesz = rd(off, 4), descsz = rd(off + 4, 4), type = rd(off + 8, 4);
      if (type == 18 && namesz == 4 && elf.compare(off + 12, 3, "Xen") == 0) return true;
      off += 12 + ((namesz + 3) & ~3ull) + ((descsz + 3) & ~3ull);
    }
  }
  return false;
}

std::vector<std::string> base_args(const SuiteOptions& opt, const std::filesystem::path& sock,
                                   const std::filesystem::path& kernel, bool pvh) {
  std::vector<std::string> a = {kQemu, "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-smp", "1",
                                "-m", std::to_string(opt.mem_bytes >> 20) + "M",
                                "-display", "none", "-nodefaults", "-no-user-config", "-no-reboot",
                                "-serial", pvh ? "stdio" : "none", "-qmp", "unix:" + sock.string() + ",server=on,wait=off"};
  if (pvh) {
    a.push_back("-kernel");
    a.push_back(kernel.string());
  }
  return a;
}

struct Cycle {
  double save_us = 0, restore_us = 0, file_bytes = 0;
};

// Waits until `fd` (a pipe from the guest's serial port) has a byte; reads what is there.
Status wait_serial_byte(int fd, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return plain_error("no byte from the guest's serial port before the deadline");
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, int(std::min<long long>(left, 1000)));
    if (r < 0 && errno != EINTR) return errno_error("poll serial pipe");
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) return {};
    if (n == 0) return plain_error("QEMU exited before the guest wrote a byte");
    if (errno != EINTR) return errno_error("read serial pipe");
  }
}

// A pipe whose read end the caller polls; the write end goes to QEMU and is closed here after
// spawning, so EOF means QEMU exited.
struct Pipe {
  Fd r, w;
  static Result<Pipe> make() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return errno_error("pipe2");
    return Pipe{Fd(fds[0]), Fd(fds[1])};
  }
};

Result<Cycle> one_cycle(const SuiteOptions& opt, const std::filesystem::path& dir,
                        const std::filesystem::path& kernel, bool pvh) {
  Cycle c;
  const auto sock = dir / "qmp.sock", file = dir / "state.mig", log = dir / "qemu.log";
  { std::error_code e_; std::filesystem::remove(sock, e_); }
  { std::error_code e_; std::filesystem::remove(file, e_); }
  {
    VF_ASSIGN(Pipe serial, Pipe::make());
    VF_ASSIGN(QemuProcess q, QemuProcess::spawn(base_args(opt, sock, kernel, pvh), log, serial.w.get()));
    serial.w = Fd();
    VF_ASSIGN(QmpClient qmp, QmpClient::connect(sock, Clock::now() + 10s));
    // The guest has booted and idles when saved (with PVH: it has written to its serial port).
    if (pvh) VF_TRY(wait_serial_byte(serial.r.get(), Clock::now() + 30s));
    else std::this_thread::sleep_for(100ms);
    VF_ASSIGN(auto st, qmp.execute("query-status", nullptr, Clock::now() + 5s));
    if (st.value("status", "") != "running") return plain_error("QEMU guest not running before save: " + st.dump());
    const auto t0 = Clock::now();
    VF_TRY(qmp.execute("migrate", {{"uri", "exec:cat > " + file.string()}}, Clock::now() + 5s));
    for (;;) {
      VF_ASSIGN(auto m, qmp.execute("query-migrate", nullptr, Clock::now() + 5s));
      std::string s = m.value("status", "");
      if (s == "completed") break;
      if (s == "failed" || s == "cancelled") return plain_error("QEMU migrate to file: " + m.dump());
      if (Clock::now() - t0 > 30s) return plain_error("QEMU migrate to file: not done in 30 s");
      std::this_thread::sleep_for(1ms);
    }
    c.save_us = us_since(t0);
    (void)qmp.execute("quit", nullptr, Clock::now() + 2s);
  }
  struct stat sb {};
  if (stat(file.c_str(), &sb) != 0) return errno_error("stat " + file.string());
  c.file_bytes = double(sb.st_blocks) * 512;
  { std::error_code e_; std::filesystem::remove(sock, e_); }
  {
    auto args = base_args(opt, sock, kernel, pvh);
    args.push_back("-incoming");
    args.push_back("exec:cat " + file.string());
    VF_ASSIGN(Pipe serial, Pipe::make());
    const auto t0 = Clock::now();
    VF_ASSIGN(QemuProcess q, QemuProcess::spawn(args, log, serial.w.get()));
    serial.w = Fd();
    if (pvh) {
      // The restored guest's first byte on its serial port: it runs again.
      VF_TRY(wait_serial_byte(serial.r.get(), t0 + 30s));
      c.restore_us = us_since(t0);
    }
    VF_ASSIGN(QmpClient qmp, QmpClient::connect(sock, Clock::now() + 10s));
    // Without a guest that writes: QMP query-status "running" (the vCPUs resumed).
    for (; !pvh;) {
      VF_ASSIGN(auto st, qmp.execute("query-status", nullptr, Clock::now() + 5s));
      if (st.value("status", "") == "running") break;
      if (Clock::now() - t0 > 30s) return plain_error("QEMU restore: not running after 30 s: " + st.dump());
      std::this_thread::sleep_for(200us);
    }
    if (!pvh) c.restore_us = us_since(t0);
    (void)qmp.execute("quit", nullptr, Clock::now() + 2s);
  }
  return c;
}

}  // namespace

PeerResult run_qemu(const SuiteOptions& opt, const std::filesystem::path& kernel) {
  PeerResult p{"qemu", ""};
  p.not_measured["job_us"] = "QEMU runs no vmfork job: the guest has no vmfork channel device under QEMU";
  p.not_measured["jobs_per_s_1"] = p.not_measured["jobs_per_s_2"] = p.not_measured["job_us"];
  p.not_measured["private_kib_per_clone"] = "each restore is a separate QEMU process with its own copy";
  if (access(kQemu, X_OK) != 0) {
    p.reason = std::string(kQemu) + " not found (apt-get install qemu-system-x86)";
    return p;
  }
  const bool pvh = has_pvh_note(kernel);
  if (pvh) {
    p.what = "qemu-system-x86_64 -M microvm -accel kvm -m MEM -kernel <the vmfork guest kernel ELF>, entered "
             "by its PVH note (guest-kernel/arch/pvh.S: long mode, then an idle loop in the kernel's text "
             "writing a byte to COM1 every 2^19 TSC cycles; kmain is not run); save = QMP migrate "
             "exec:cat > FILE; restore = process start with -incoming exec:cat FILE until the guest's "
             "first serial byte";
  } else {
    p.what = "qemu-system-x86_64 -M microvm -accel kvm running its own microvm firmware (qboot) idle, "
             "same memory size; save = migrate exec:cat > FILE; restore = new process with -incoming "
             "until QMP query-status says running";
    p.extra["deviation"] = "the vmfork guest kernel has no PVH entry note yet, so QEMU cannot boot it; "
                           "QEMU's restore is measured on its idle firmware instead (a smaller guest "
                           "state than the vmfork kernel's)";
  }
  p.extra["running_signal"] = pvh ? "first byte the restored guest writes to its serial port (resolution: "
                                    "the idle loop's period, about 0.2 ms)"
                                  : "QMP query-status == running (the vCPUs resumed), not a byte from the guest";
  const auto dir = opt.work_dir / "qemu";
  // QEMU runs "exec:" migration URIs through /bin/sh: allow only plain path characters in them.
  for (char ch : dir.string())
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || std::strchr("/._-+", ch))) {
      p.reason = "work directory " + dir.string() + " has a character QEMU's exec: migration would hand to the shell";
      return p;
    }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    p.reason = "mkdir " + dir.string() + ": " + ec.message();
    return p;
  }
  for (int i = 0; i < opt.qemu_reps + 1; i++) {
    opt.say("qemu: save + restore " + std::to_string(i + 1) + "/" + std::to_string(opt.qemu_reps + 1));
    auto c = one_cycle(opt, dir, kernel, pvh);
    if (!c.ok()) {
      std::ifstream f(dir / "qemu.log");
      std::string log((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      p.reason = c.error().message() + (log.empty() ? "" : "; QEMU said: " + log.substr(0, 500));
      p.samples.clear();
      return p;
    }
    if (i == 0) continue;  // warm-up: QEMU's own binary and firmware into the page cache
    p.samples["restore_us"].push_back(c->restore_us);
    p.samples["snapshot_create_us"].push_back(c->save_us);
    p.samples["bytes_on_disk"].push_back(c->file_bytes);
  }
  { std::error_code e_; std::filesystem::remove_all(dir, e_); }
  p.ran = true;
  return p;
}

}  // namespace vmfork::bench
