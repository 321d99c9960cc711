// run_mkfs_erofs: posix_spawn, stderr through a pipe, a deadline (see mkfs.h).
#include "rootfs/mkfs.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/fd.h"

extern char** environ;

namespace vmfork::rootfs {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::vector<std::string> mkfs_erofs_args(const fs::path& image, const fs::path& dir) {
  return {"mkfs.erofs", "--quiet", "-x-1", "--preserve-mtime", std::string("-U") + kImageUuid, "--all-root",
          image.string(), dir.string()};
}

namespace {
// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as Linux's crc32c(): no final inversion.
uint32_t crc32c(uint32_t crc, const uint8_t* p, size_t n) {
  while (n--) {
    crc ^= *p++;
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
  }
  return crc;
}
}  // namespace

Status normalize_superblock(const fs::path& image) {
  constexpr size_t kSbOffset = 1024, kBlock = 4096;
  Fd fd(::open(image.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return errno_error("open " + image.string());
  uint8_t sb[kBlock - kSbOffset];
  if (::pread(fd.get(), sb, sizeof sb, kSbOffset) != ssize_t(sizeof sb)) return errno_error("read superblock of " + image.string());
  uint32_t magic, stored, compat;
  std::memcpy(&magic, sb, 4);
  std::memcpy(&stored, sb + 4, 4);
  std::memcpy(&compat, sb + 8, 4);
  if (magic != 0xE0F5E1E2u) return plain_error(image.string() + ": not an EROFS image (superblock magic)");
  const bool has_crc = compat & 1;
  std::memset(sb + 4, 0, 4);
  if (has_crc && crc32c(~0u, sb, sizeof sb) != stored)
    return plain_error(image.string() + ": superblock checksum from mkfs.erofs does not verify");
  std::memset(sb + 24, 0, 12);  // build_time (u64) and build_time_nsec (u32)
  uint32_t crc = has_crc ? crc32c(~0u, sb, sizeof sb) : 0;
  std::memcpy(sb + 4, &crc, 4);
  if (::pwrite(fd.get(), sb, sizeof sb, kSbOffset) != ssize_t(sizeof sb)) return errno_error("write superblock of " + image.string());
  return {};
}

Result<std::string> find_mkfs_erofs() {
  std::string dirs = getenv("PATH") ? getenv("PATH") : "";
  dirs += ":/usr/sbin:/sbin:/usr/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    if (end > start) {
      std::string cand = dirs.substr(start, end - start) + "/mkfs.erofs";
      if (::access(cand.c_str(), X_OK) == 0) return cand;
    }
    start = end + 1;
  }
  return Error{"mkfs.erofs not found (install Debian's erofs-utils: scripts/install-deps.sh)", ENOENT};
}

Status run_mkfs_erofs(const fs::path& image, const fs::path& dir, std::chrono::milliseconds deadline) {
  VF_ASSIGN(std::string exe, find_mkfs_erofs());
  const std::vector<std::string> args = mkfs_erofs_args(image, dir);
  std::string cmdline = exe;
  for (size_t i = 1; i < args.size(); ++i) cmdline += " " + args[i];
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return errno_error("pipe2");
  Fd rd(p[0]), wr(p[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), STDERR_FILENO);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Error{"posix_spawn " + exe, rc};
  wr.reset();

  const auto end = Clock::now() + deadline;
  std::string err;
  bool timed_out = false, eof = false;
  while (!eof) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd pf{rd.get(), POLLIN, 0};
    int n = ::poll(&pf, 1, int(std::min<long long>(left, 1000)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    char buf[4096];
    ssize_t r = ::read(rd.get(), buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      eof = true;
      break;
    }
    if (err.size() < 8192) err.append(buf, std::min<size_t>(size_t(r), 8192 - err.size()));
  }
  int status = 0;
  if (timed_out) ::kill(pid, SIGKILL);
  for (;;) {
    pid_t w = ::waitpid(pid, &status, timed_out ? 0 : WNOHANG);
    if (w == pid) break;
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno_error("waitpid " + exe);
    }
    // Its stderr is closed but it has not exited yet: keep to the same deadline.
    if (Clock::now() >= end) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  if (timed_out)
    return plain_error(cmdline + ": timed out after " + std::to_string(deadline.count() / 1000) + " s");
  if (WIFSIGNALED(status))
    return plain_error(cmdline + ": killed by signal " + std::to_string(WTERMSIG(status)) + (err.empty() ? "" : ": " + err));
  if (WEXITSTATUS(status) != 0)
    return plain_error(cmdline + ": exit status " + std::to_string(WEXITSTATUS(status)) + (err.empty() ? "" : ": " + err));
  return {};
}

}  // namespace vmfork::rootfs
