// Small helpers of the vmfork command line (see util.h).
#include "cli/util.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "common/fd.h"

#include <cerrno>
#include <cstdlib>

namespace vmfork::cli {

// Finds `name` on $PATH like execvp(3) when it has no slash.
std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string cand = dirs.substr(start, end - start) + "/" + name;
    struct stat st;
    if (stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return cand;
    start = end + 1;
  }
  return name;
}

void write_all(int fd, std::span<const uint8_t> b) {
  while (!b.empty()) {
    ssize_t n = write(fd, b.data(), b.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // reader went away: drop the rest, the job keeps its own exit status
    b = b.subspan(size_t(n));
  }
}

int fail(const std::string& msg) {
  spdlog::error("{}", msg);
  return 125;  // like env(1)/timeout(1): vmfork itself failed
}

namespace {
// "GUEST[:HOST]" of --collect.
std::pair<std::string, std::string> collect_spec(const std::string& c) {
  auto colon = c.find(':');
  std::string guest = c.substr(0, colon);
  std::string host = colon == std::string::npos ? std::filesystem::path(guest).filename().string() : c.substr(colon + 1);
  return {guest, host};
}
}  // namespace

Result<engine::JobFiles> read_job_files(const std::vector<std::string>& files, const std::string& workdir,
                                        const std::vector<std::string>& collect) {
  engine::JobFiles out;
  uint64_t total = 0;
  for (const auto& f : files) {
    auto colon = f.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == f.size())
      return plain_error("--file wants HOST:GUEST, got '" + f + "'");
    std::string host = f.substr(0, colon), guest = f.substr(colon + 1);
    Fd fd(::open(host.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd.valid()) return errno_error("--file: open " + host);
    struct stat st;
    if (fstat(fd.get(), &st) < 0) return errno_error("--file: fstat " + host);
    if (!S_ISREG(st.st_mode)) return plain_error("--file " + host + ": not a regular file");
    total += uint64_t(st.st_size);
    if (total > (256ull << 20)) return plain_error("--file: more than 256 MiB of job files");
    std::string data(size_t(st.st_size), '\0');
    size_t got = 0;
    while (got < data.size()) {
      ssize_t n = ::read(fd.get(), data.data() + got, data.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_error("--file: read " + host);
      if (n == 0) break;
      got += size_t(n);
    }
    data.resize(got);
    out.files.push_back(engine::JobFile{guest, std::move(data), uint32_t(st.st_mode & 07777)});
  }
  out.workdir = workdir;
  for (const auto& c : collect) out.collect.push_back(collect_spec(c).first);
  return out;
}

bool write_collected(const std::vector<engine::CollectedFile>& got, const std::vector<std::string>& collect) {
  bool ok = true;
  for (size_t i = 0; i < got.size() && i < collect.size(); i++) {
    const auto& f = got[i];
    auto [guest, host] = collect_spec(collect[i]);
    if (f.missing) {
      spdlog::warn("--collect {}: the job left no regular file there", guest);
      continue;
    }
    if (f.truncated) spdlog::warn("--collect {}: cut at the output limit", guest);
    Fd fd(::open(host.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, f.mode ? f.mode : 0644));
    if (!fd.valid()) {
      spdlog::error("--collect {}: open {}: {}", guest, host, std::strerror(errno));
      ok = false;
      continue;
    }
    write_all(fd.get(), std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(f.data.data()), f.data.size()));
  }
  return ok;
}

}  // namespace vmfork::cli
