// Store files: lock, durable writes, name files, image hashes (see store_files.h).
#include "rootfs/store_files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

namespace vmfork::rootfs::files {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr uint64_t kMaxNameFileBytes = 64 << 10;

bool is_hex32(const std::string& s) {
  if (s.size() != 32) return false;
  for (char c : s)
    if (!isdigit(uint8_t(c)) && !(c >= 'a' && c <= 'f')) return false;
  return true;
}
}  // namespace

Result<Fd> lock_exclusive(const fs::path& dir) {
  const fs::path p = dir / "lock";
  Fd fd(::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return errno_error("open " + p.string());
  while (::flock(fd.get(), LOCK_EX) < 0)
    if (errno != EINTR) return errno_error("flock(LOCK_EX) " + p.string());
  return fd;
}

Status fsync_dir(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + dir.string());
  if (::fsync(fd.get()) < 0) return errno_error("fsync " + dir.string());
  return {};
}

Status write_durably(const fs::path& tmp, const fs::path& final, std::string_view bytes) {
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return errno_error("create " + tmp.string());
    for (size_t done = 0; done < bytes.size();) {
      ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_error("write " + tmp.string());
      done += size_t(n);
    }
    if (::fsync(fd.get()) < 0) return errno_error("fsync " + tmp.string());
  }
  if (::rename(tmp.c_str(), final.c_str()) < 0) return errno_error("rename " + tmp.string() + " " + final.string());
  return fsync_dir(final.parent_path());
}

std::string name_json(const ImageInfo& info) {
  json j = {{"format", 1},           {"hash", info.hash},   {"source", info.source},
            {"created_unix", info.created_unix}, {"files", info.files}, {"bytes", info.bytes}};
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<ImageInfo> read_name(const fs::path& dir, std::string_view name) {
  VF_TRY(check_image_name(name));
  const fs::path p = name_path(dir, name);
  Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return Error{"rootfs " + std::string(name) + ": not found", ENOENT};
    return errno_error("open " + p.string());
  }
  std::string text(kMaxNameFileBytes + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read " + p.string());
    if (n == 0) break;
    got += size_t(n);
  }
  if (got > kMaxNameFileBytes) return plain_error(p.string() + ": larger than 64 KiB");
  text.resize(got);
  json j = json::parse(text, nullptr, false);
  auto bad = [&](const char* why) { return plain_error(p.string() + ": " + why); };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  auto field = [&](const char* k) { return j.find(k); };
  if (field("format") == j.end() || !field("format")->is_number_integer() || field("format")->get<int64_t>() != 1)
    return bad("unknown format (want 1)");
  if (field("hash") == j.end() || !field("hash")->is_string() || !is_hex32(field("hash")->get<std::string>()))
    return bad("hash is not 32 hex digits");
  if (field("source") == j.end() || !field("source")->is_string()) return bad("source is not a string");
  for (const char* k : {"created_unix", "files", "bytes"})
    if (field(k) == j.end() || !field(k)->is_number_integer()) return bad("a count is not an integer");
  ImageInfo info;
  info.name = std::string(name);
  info.hash = field("hash")->get<std::string>();
  info.source = field("source")->get<std::string>();
  info.created_unix = field("created_unix")->get<int64_t>();
  info.files = field("files")->get<uint64_t>();
  info.bytes = field("bytes")->get<uint64_t>();
  info.path = fs::absolute(image_path(dir, info.hash));
  return info;
}

Result<std::string> hash_file(const fs::path& path, uint64_t* bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + path.string());
  std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> st(XXH3_createState(), XXH3_freeState);
  if (!st || XXH3_128bits_reset(st.get()) != XXH_OK) return plain_error("XXH3_createState failed");
  std::vector<char> buf(1 << 20);
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read " + path.string());
    if (n == 0) break;
    XXH3_128bits_update(st.get(), buf.data(), size_t(n));
    total += uint64_t(n);
  }
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st.get()));
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (uint8_t b : c.digest) out += hex[b >> 4], out += hex[b & 15];
  if (bytes) *bytes = total;
  return out;
}

}  // namespace vmfork::rootfs::files
