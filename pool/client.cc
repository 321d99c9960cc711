// `vmfork serve` client (see client.h).
#include "pool/client.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>

namespace vmfork::pool {

Result<Client> Client::connect(const std::filesystem::path& socket) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& p = socket.native();
  if (p.empty() || p.size() >= sizeof addr.sun_path)
    return plain_error("socket path " + p + ": empty or longer than " + std::to_string(sizeof addr.sun_path - 1) +
                       " bytes");
  p.copy(addr.sun_path, p.size());
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return errno_error("socket");
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) break;
    if (errno != EINTR) return errno_error("connect " + p);
  }
  return Client(std::move(fd));
}

Status Client::send_line(std::string_view line) {
  std::string owned;
  if (line.empty() || line.back() != '\n') {
    owned.reserve(line.size() + 1);
    owned.append(line);
    owned += '\n';
    line = owned;
  }
  while (!line.empty()) {
    ssize_t n = ::send(fd_.get(), line.data(), line.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("send to server");
    line.remove_prefix(size_t(n));
  }
  return Status::Ok();
}

Result<std::string> Client::read_line(size_t max_bytes) {
  char chunk[64 << 10];
  for (;;) {
    const size_t nl = buf_.find('\n', scanned_);
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      scanned_ = 0;
      return line;
    }
    scanned_ = buf_.size();
    if (buf_.size() > max_bytes)
      return plain_error("response line longer than " + std::to_string(max_bytes) + " bytes");
    ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("recv from server");
    if (n == 0) return plain_error("server closed the connection");
    buf_.append(chunk, size_t(n));
  }
}

Result<std::string> Client::call(std::string_view request_line) {
  VF_TRY(send_line(request_line));
  return read_line();
}

Result<Response> Client::run(const Request& request) {
  VF_ASSIGN(std::string line, call(serialize_request(request)));
  return parse_response(line);
}

}  // namespace vmfork::pool
