// Job-files bundle and collected files (see job_files.h). Little-endian as the ABI header.
#include "engine/job_files.h"

#include <cstring>

#include "guest-kernel/abi/vmfork_abi.h"

namespace vmfork::engine {

namespace abi = vmfork::abi;

namespace {
constexpr size_t kMaxEntries = 4096;
constexpr size_t kMaxPath = 4095;

Status check_path(const std::string& p, const char* what) {
  if (p.empty() || p[0] != '/') return plain_error(std::string(what) + " '" + p + "': the guest path must be absolute");
  if (p.size() > kMaxPath) return plain_error(std::string(what) + ": guest path longer than 4095 bytes");
  if (p.find('\0') != std::string::npos) return plain_error(std::string(what) + ": guest path contains NUL");
  // Every component a plain name (repeated slashes are fine, as in any Linux path): no . or ..
  for (size_t i = 1; i <= p.size();) {
    size_t end = p.find('/', i);
    if (end == std::string::npos) end = p.size();
    std::string_view c(p.data() + i, end - i);
    if (c == "." || c == "..") return plain_error(std::string(what) + " '" + p + "': '.' or '..' path component");
    if (c.size() > 255) return plain_error(std::string(what) + " '" + p + "': a component longer than 255 bytes");
    i = end + 1;
  }
  if (p.find_first_not_of('/') == std::string::npos && std::string(what) != "--workdir")
    return plain_error(std::string(what) + ": '/' is not a file");
  return {};
}

void put_record(std::vector<uint8_t>& out, uint32_t kind, uint32_t mode, const std::string& path,
                const std::string* data) {
  abi::FileRecord r{};
  r.kind = kind;
  r.mode = mode;
  r.path_len = uint32_t(path.size());
  r.data_len = data ? data->size() : 0;
  const auto* rb = reinterpret_cast<const uint8_t*>(&r);
  out.insert(out.end(), rb, rb + sizeof r);
  out.insert(out.end(), path.begin(), path.end());
  if (data) out.insert(out.end(), data->begin(), data->end());
  out.resize((out.size() + 7) & ~size_t(7));
}
}  // namespace

Result<std::vector<uint8_t>> encode_job_files(const JobFiles& f) {
  if (f.files.size() + f.collect.size() + 1 > kMaxEntries) return plain_error("more than 4096 job files");
  std::vector<uint8_t> out(sizeof(abi::FilesHeader));
  uint64_t count = 0;
  for (const auto& file : f.files) {
    VF_TRY(check_path(file.path, "--file"));
    put_record(out, abi::kFileData, file.mode & 07777, file.path, &file.data);
    count++;
  }
  if (!f.workdir.empty()) {
    VF_TRY(check_path(f.workdir, "--workdir"));
    put_record(out, abi::kFileWorkdir, 0755, f.workdir, nullptr);
    count++;
  }
  for (const auto& c : f.collect) {
    VF_TRY(check_path(c, "--collect"));
    put_record(out, abi::kFileCollect, 0, c, nullptr);
    count++;
  }
  abi::FilesHeader h{abi::kFilesMagic, count};
  std::memcpy(out.data(), &h, sizeof h);
  return out;
}

Status CollectDecoder::take(std::span<const uint8_t> w) {
  size_t pos = 0;
  while (pos < w.size()) {
    abi::FileRecord r;
    if (w.size() - pos < sizeof r) return plain_error("collect: truncated record header");
    std::memcpy(&r, w.data() + pos, sizeof r);
    pos += sizeof r;
    if (r.path_len == 0 || r.path_len > kMaxPath || r.path_len > w.size() - pos)
      return plain_error("collect: record path out of range");
    std::string path(reinterpret_cast<const char*>(w.data() + pos), r.path_len);
    pos += r.path_len;
    // Every record costs its path against the bound too, and no more files than can be asked
    // for: a hostile guest cannot grow this past the output limit.
    if (files_.size() > 4096 && r.data_off == 0) return plain_error("collect: more files than were asked for");
    if (room_ < r.path_len) return plain_error("collect: records beyond the output limit");
    room_ -= r.path_len;
    if (r.kind == abi::kFileMissing) {
      files_.push_back(CollectedFile{path, {}, 0, true, false});
    } else if (r.kind == abi::kFileData) {
      if (r.data_len > w.size() - pos) return plain_error("collect: chunk beyond the window");
      // A new file starts at offset 0; later chunks continue the last file, in order.
      if (r.data_off == 0) files_.push_back(CollectedFile{path, {}, r.mode & 07777, false, false});
      if (files_.empty() || files_.back().path != path || files_.back().missing ||
          (!files_.back().truncated && r.data_off != files_.back().data.size()))
        return plain_error("collect: chunk out of order for " + path);
      CollectedFile& f = files_.back();
      uint64_t take = std::min<uint64_t>(r.data_len, room_);
      if (!f.truncated) f.data.append(reinterpret_cast<const char*>(w.data() + pos), take);
      room_ -= take;
      if (take < r.data_len) f.truncated = true;
      pos += r.data_len;
    } else {
      return plain_error("collect: unknown record kind " + std::to_string(r.kind));
    }
    pos = (pos + 7) & ~size_t(7);
  }
  return {};
}

}  // namespace vmfork::engine
