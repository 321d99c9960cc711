// Small helpers of the vmfork command line (see cli_util.h).
#include "cli/util.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

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

}  // namespace vmfork::cli
