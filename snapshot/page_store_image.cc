// PageStore::open_image and verify_image: each template's memory as a sparse file beside the
// packs, checked by a stamp on the hot path and by a content digest otherwise (see page_store.h).
// Thread-safety: as PageStore; builds in several processes at once each write their own temp file.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>

#include "snapshot/page_store.h"

namespace vmfork::snapshot {

using namespace format;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double us_since(Clock::time_point t) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

// The identity of one version of a file. ctime cannot be set from user space (utimensat(2)
// sets only atime and mtime; any write, truncate, chmod or rename moves ctime to "now"), so a
// file whose stamp still matches has not been changed through the file system since it was
// checked.
struct Stamp {
  uint64_t dev = 0, ino = 0, size = 0, mtime_ns = 0, ctime_ns = 0;
  friend bool operator==(const Stamp&, const Stamp&) = default;
};

Stamp stamp_of(const struct stat& st) {
  auto ns = [](const timespec& t) { return uint64_t(t.tv_sec) * 1'000'000'000ull + uint64_t(t.tv_nsec); };
  return {uint64_t(st.st_dev), uint64_t(st.st_ino), uint64_t(st.st_size), ns(st.st_mtim), ns(st.st_ctim)};
}

// The side file: five lines of text (docs/snapshot-format.md, "Memory images").
struct SideFile {
  std::string template_digest;
  uint64_t mem_bytes = 0;
  std::string content;  // content digest, 32 hex digits
  Stamp stamp;
};

constexpr const char* kSideMagic = "vmfork-image 1";

std::string format_side(const SideFile& s) {
  std::ostringstream o;
  o << kSideMagic << "\ntemplate " << s.template_digest << "\nmem_bytes " << s.mem_bytes << "\ncontent " << s.content
    << "\nstamp " << s.stamp.dev << ' ' << s.stamp.ino << ' ' << s.stamp.size << ' ' << s.stamp.mtime_ns << ' '
    << s.stamp.ctime_ns << '\n';
  return o.str();
}

// Reads and parses a side file; any deviation from format_side's output is an error (the
// image is then rebuilt, never trusted).
Result<SideFile> read_side(const fs::path& p) {
  Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + p.string());
  char buf[512];
  ssize_t n = ::pread(fd.get(), buf, sizeof buf, 0);
  if (n < 0) return errno_error("read " + p.string());
  if (size_t(n) == sizeof buf) return plain_error(p.string() + ": longer than " + std::to_string(sizeof buf) + " bytes");
  std::istringstream in(std::string(buf, size_t(n)));
  SideFile s;
  std::string magic, k1, k2, k3, k4;
  std::getline(in, magic);
  in >> k1 >> s.template_digest >> k2 >> s.mem_bytes >> k3 >> s.content >> k4 >> s.stamp.dev >> s.stamp.ino >>
      s.stamp.size >> s.stamp.mtime_ns >> s.stamp.ctime_ns;
  if (!in || magic != kSideMagic || k1 != "template" || k2 != "mem_bytes" || k3 != "content" || k4 != "stamp" ||
      format_side(s) != std::string(buf, size_t(n)))
    return plain_error(p.string() + ": not a valid image side file");
  return s;
}

// The content digest: XXH3-128 over (gpn as u64 little-endian, the page's 4096 bytes) for each
// non-zero page in ascending gpn. Zero pages are left out whether they are holes or written
// zeros, so the digest depends on the memory's bytes alone, not on how the file is laid out.
class ContentHash {
 public:
  ContentHash() : st_(XXH3_createState()) { XXH3_128bits_reset(st_); }
  ~ContentHash() { XXH3_freeState(st_); }
  ContentHash(const ContentHash&) = delete;
  ContentHash& operator=(const ContentHash&) = delete;
  bool ok() const { return st_ != nullptr; }
  void page(uint64_t gpn, const uint8_t* p) {
    if (is_zero_page({p, kPageBytes})) return;
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = uint8_t(gpn >> (8 * i));
    XXH3_128bits_update(st_, le, sizeof le);
    XXH3_128bits_update(st_, p, kPageBytes);
  }
  std::string hex() const {
    XXH128_hash_t h = XXH3_128bits_digest(st_);
    return to_hex(PageHash{h.low64, h.high64});
  }

 private:
  XXH3_state_t* st_;
};

// Content digest of an image file `bytes` long: only its data extents are read (SEEK_DATA and
// SEEK_HOLE, lseek(2)); holes read as zeros, which the digest skips anyway.
Result<std::string> hash_file(int fd, const fs::path& p, uint64_t bytes) {
  ContentHash h;
  if (!h.ok()) return plain_error("XXH3_createState: out of memory");
  constexpr uint64_t kChunk = 1ull << 20;
  std::vector<uint8_t> buf(kChunk);
  uint64_t off = 0;
  while (off < bytes) {
    off_t data = ::lseek(fd, off_t(off), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // no data after off
      if (errno != EINVAL) return errno_error("lseek(SEEK_DATA) " + p.string());
      data = off_t(off);  // the file system cannot tell: read everything
    }
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) hole = off_t(bytes);
    // Whole pages, none twice: a data extent that starts inside the page the last one ended in
    // (sub-page extents) continues from there.
    uint64_t a = std::max(off, uint64_t(data) / kPageBytes * kPageBytes);
    uint64_t b = std::min<uint64_t>(bytes, (uint64_t(hole) + kPageBytes - 1) / kPageBytes * kPageBytes);
    for (uint64_t pos = a; pos < b;) {
      const uint64_t want = std::min(kChunk, b - pos);
      ssize_t n = ::pread(fd, buf.data(), want, off_t(pos));
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_error("pread " + p.string() + " at offset " + std::to_string(pos));
      }
      if (uint64_t(n) != want)
        return plain_error(p.string() + ": short read at offset " + std::to_string(pos) + " (file shrank?)");
      for (uint64_t q = 0; q < want; q += kPageBytes) h.page((pos + q) / kPageBytes, buf.data() + q);
      pos += want;
    }
    off = std::max(b, off + kPageBytes);
  }
  return h.hex();
}

fs::path images_dir(const fs::path& store) { return store / "images"; }

// Writes `text` to `path` atomically: temp file, fsync, rename, directory fsync.
Status write_small_file(StoreFs& fsys, UringIo& io, const fs::path& path, const fs::path& tmp, std::string_view text) {
  {
    VF_ASSIGN(Fd fd, fsys.create_file(tmp));
    WriteReq w{0, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size())};
    VF_TRY(fsys.write_batch(io, fd.get(), tmp, {&w, 1}));
    VF_TRY(fsys.fsync(fd.get(), tmp));
  }
  VF_TRY(fsys.rename(tmp, path));
  return fsys.fsync_dir(path.parent_path());
}

// A temp name no other build (in this process or another) uses at the same time.
fs::path temp_name(const fs::path& dir, const std::string& digest, const char* ext) {
  static std::atomic<uint64_t> counter{0};
  return dir / ("." + digest + "." + std::to_string(::getpid()) + "." + std::to_string(counter++) + ext + ".tmp");
}

}  // namespace

Status PageStore::build_image(const Template& t) const {
  StoreFs& fsys = *opts_.fs;
  const fs::path dir = images_dir(dir_);
  VF_TRY(fsys.make_dir(dir));
  const fs::path path = dir / (t.digest() + ".img"), side = dir / (t.digest() + ".sum");
  const std::string what = "image of template " + t.name();

  // The memory, decoded and checked page by page, in anonymous memory: only non-zero pages
  // are touched.
  void* p = ::mmap(nullptr, t.mem_bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return errno_error("mmap of " + std::to_string(t.mem_bytes()) + " bytes for the " + what);
  struct Unmap {
    void* p;
    uint64_t n;
    ~Unmap() { ::munmap(p, n); }
  } unmap{p, t.mem_bytes()};
  std::span<uint8_t> mem(static_cast<uint8_t*>(p), t.mem_bytes());
  VF_TRY(read_memory(t, mem));

  // Only the page map's runs are written; the rest of the file stays a hole.
  ContentHash h;
  if (!h.ok()) return plain_error("XXH3_createState: out of memory");
  std::vector<WriteReq> reqs;
  for (const PageRun& r : t.runs()) {
    const uint64_t off = r.first_gpn * kPageBytes, len = uint64_t(r.pages) * kPageBytes;
    for (uint64_t i = 0; i < r.pages; i++) h.page(r.first_gpn + i, mem.data() + off + i * kPageBytes);
    if (!reqs.empty() && reqs.back().offset + reqs.back().buf.size() == off)
      reqs.back().buf = std::span<const uint8_t>(reqs.back().buf.data(), reqs.back().buf.size() + len);
    else
      reqs.push_back({off, std::span<const uint8_t>(mem.data() + off, len)});
  }
  VF_ASSIGN(UringIo io, UringIo::create(opts_.queue_depth));
  const fs::path tmp = temp_name(dir, t.digest(), ".img");
  Status st = [&]() -> Status {
    VF_ASSIGN(Fd fd, fsys.create_file(tmp));
    VF_TRY(fsys.set_size(fd.get(), tmp, t.mem_bytes()));
    VF_TRY(fsys.write_batch(io, fd.get(), tmp, reqs));
    VF_TRY(fsys.fsync(fd.get(), tmp));
    VF_TRY(fsys.rename(tmp, path));
    VF_TRY(fsys.fsync_dir(dir));
    // The stamp of the file as renamed (rename may move its ctime).
    struct stat sb;
    if (::fstat(fd.get(), &sb) < 0) return errno_error("fstat " + path.string());
    SideFile s{t.digest(), t.mem_bytes(), h.hex(), stamp_of(sb)};
    return write_small_file(fsys, io, side, temp_name(dir, t.digest(), ".sum"), format_side(s));
  }();
  if (!st.ok()) (void)::unlink(tmp.c_str());  // best effort; reclaim removes what is left
  return st;
}

Result<MemoryImage> PageStore::open_image(const Template& t) const {
  const auto t0 = Clock::now();
  if (t.digest().empty()) return plain_error("open_image " + t.name() + ": template not read from the store");
  const fs::path dir = images_dir(dir_);
  MemoryImage img;
  img.path = dir / (t.digest() + ".img");
  const fs::path side = dir / (t.digest() + ".sum");
  // Two rounds at most: use what is there, or build and use that. A build that cannot be
  // used (another process replaced it in between with a damaged file) is an error.
  for (int round = 0; round < 2; round++) {
    std::string problem;
    Fd fd(::open(img.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno != ENOENT) return errno_error("open " + img.path.string());
      problem = "missing";
    } else {
      struct stat sb;
      if (::fstat(fd.get(), &sb) < 0) return errno_error("fstat " + img.path.string());
      auto s = read_side(side);
      if (!s.ok())
        problem = s.error().message();
      else if (s->template_digest != t.digest() || s->mem_bytes != t.mem_bytes())
        problem = side.string() + " describes another template";
      else if (uint64_t(sb.st_size) != t.mem_bytes())
        problem = "size " + std::to_string(sb.st_size) + " bytes, expected " + std::to_string(t.mem_bytes());
      else if (!(stamp_of(sb) == s->stamp)) {
        // Changed, copied or restored since it was checked: check the content itself.
        img.content_checked = true;
        VF_ASSIGN(std::string got, hash_file(fd.get(), img.path, t.mem_bytes()));
        if (got != s->content) {
          problem = "content digest " + got + ", expected " + s->content;
        } else {
          s->stamp = stamp_of(sb);
          VF_ASSIGN(UringIo io, UringIo::create(1));
          VF_TRY(write_small_file(*opts_.fs, io, side, temp_name(dir, t.digest(), ".sum"), format_side(*s)));
        }
      }
    }
    if (problem.empty()) {
      img.fd = std::move(fd);
      img.open_us = us_since(t0);
      return img;
    }
    if (round == 1) return plain_error("image " + img.path.string() + " is unusable right after it was built: " + problem);
    if (problem != "missing") img.rebuilt_because = problem;
    const auto tb = Clock::now();
    {
      // Shared lock: reclaim (exclusive) neither removes this build's temp file nor the image.
      VF_ASSIGN(Fd held_lock, lock(false));
      VF_TRY(build_image(t));
    }
    img.built = true;
    img.build_us = us_since(tb);
  }
  return plain_error("open_image: unreachable");
}

Result<std::string> PageStore::verify_image(std::string_view name) const {
  VF_ASSIGN(Template t, load(name));
  const fs::path dir = images_dir(dir_);
  const fs::path path = dir / (t.digest() + ".img"), side = dir / (t.digest() + ".sum");
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::string();
    return errno_error("open " + path.string());
  }
  struct stat sb;
  if (::fstat(fd.get(), &sb) < 0) return errno_error("fstat " + path.string());
  // The expected digest comes from the packs, not from the side file.
  std::string problem;
  if (uint64_t(sb.st_size) != t.mem_bytes()) {
    problem = "size " + std::to_string(sb.st_size) + " bytes, expected " + std::to_string(t.mem_bytes());
  } else {
    void* p = ::mmap(nullptr, t.mem_bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return errno_error("mmap of " + std::to_string(t.mem_bytes()) + " bytes to verify " + path.string());
    std::span<uint8_t> mem(static_cast<uint8_t*>(p), t.mem_bytes());
    Status read = read_memory(t, mem);
    ContentHash h;
    for (const PageRun& r : t.runs())
      for (uint64_t i = 0; read.ok() && h.ok() && i < r.pages; i++)
        h.page(r.first_gpn + i, mem.data() + (r.first_gpn + i) * kPageBytes);
    ::munmap(p, t.mem_bytes());
    VF_TRY(read);
    if (!h.ok()) return plain_error("XXH3_createState: out of memory");
    VF_ASSIGN(std::string got, hash_file(fd.get(), path, t.mem_bytes()));
    if (got != h.hex()) problem = "content digest " + got + ", the packs say " + h.hex();
  }
  if (problem.empty()) return std::string();
  {
    VF_ASSIGN(Fd held_lock, lock(false));
    VF_TRY(opts_.fs->unlink(path));
    VF_TRY(build_image(t));
  }
  return problem;
}

}  // namespace vmfork::snapshot
