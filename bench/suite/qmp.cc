// QMP client over a unix socket (see qmp.h).
#include "bench/suite/qmp.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

namespace vmfork::bench {

Result<QmpClient> QmpClient::connect(const std::filesystem::path& socket, Clock::time_point deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.string().size() >= sizeof(addr.sun_path)) return plain_error("QMP socket path too long: " + socket.string());
  std::copy_n(socket.c_str(), socket.string().size(), addr.sun_path);
  for (;;) {
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return errno_error("socket(AF_UNIX)");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      QmpClient c(std::move(fd));
      VF_ASSIGN(auto greeting, c.read_message(deadline));
      if (!greeting.contains("QMP")) return plain_error("QMP: no greeting from " + socket.string());
      VF_TRY(c.execute("qmp_capabilities", nullptr, deadline));
      return c;
    }
    if (errno != ENOENT && errno != ECONNREFUSED) return errno_error("connect " + socket.string());
    if (Clock::now() >= deadline) return plain_error("QMP: " + socket.string() + " not ready before the deadline");
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

Result<nlohmann::json> QmpClient::read_message(Clock::time_point deadline) {
  for (;;) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object()) return plain_error("QMP: not a JSON object: " + line.substr(0, 200));
      return j;
    }
    if (buf_.size() > (1u << 20)) return plain_error("QMP: line longer than 1 MiB");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return plain_error("QMP: no answer before the deadline");
    pollfd p{fd_.get(), POLLIN, 0};
    int r = poll(&p, 1, int(std::min<long long>(left, 1000)));
    if (r < 0 && errno != EINTR) return errno_error("poll QMP socket");
    if (r <= 0) continue;
    char chunk[4096];
    ssize_t n = read(fd_.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read QMP socket");
    if (n == 0) return plain_error("QMP: QEMU closed the socket");
    buf_.append(chunk, size_t(n));
  }
}

Result<nlohmann::json> QmpClient::execute(const std::string& command, const nlohmann::json& args,
                                          Clock::time_point deadline) {
  nlohmann::json m = {{"execute", command}};
  if (!args.is_null()) m["arguments"] = args;
  std::string line = m.dump() + "\n";
  for (size_t off = 0; off < line.size();) {
    ssize_t n = write(fd_.get(), line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_error("write QMP socket");
    off += size_t(n);
  }
  for (;;) {
    VF_ASSIGN(auto j, read_message(deadline));
    if (j.contains("event")) {
      events_.push_back(j["event"].is_string() ? j["event"].get<std::string>() : "");
      continue;
    }
    if (j.contains("error")) {
      std::string desc = j["error"].value("desc", j["error"].dump());
      return plain_error("QMP " + command + ": " + desc);
    }
    if (j.contains("return")) return j["return"];
  }
}

Status QmpClient::wait_event(const std::string& name, Clock::time_point deadline) {
  for (;;) {
    if (std::find(events_.begin(), events_.end(), name) != events_.end()) return {};
    VF_ASSIGN(auto j, read_message(deadline));
    if (j.contains("event") && j["event"].is_string()) events_.push_back(j["event"].get<std::string>());
  }
}

}  // namespace vmfork::bench
