// PageStore: opening, locking, reading and validating manifests and pack indexes (with the
// index cache), load, list, inspect and stats. put is in page_store_put.cc, read_memory and
// verify in page_store_read.cc, remove and reclaim in page_store_reclaim.cc.
#include "snapshot/page_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <set>
#include <unordered_map>

#include "snapshot/store_layout.h"

namespace vmfork::snapshot {

using namespace format;
namespace fs = std::filesystem;

// ---- Opening, locking, reading manifests and packs.

PageStore::PageStore(fs::path dir, StoreOptions opts) : dir_(std::move(dir)), opts_(std::move(opts)) {}

Result<std::unique_ptr<PageStore>> PageStore::open(const fs::path& dir, StoreOptions opts) {
  if (opts.frame_pages < 1 || opts.frame_pages > kMaxFramePages)
    return plain_error("page store option frame_pages = " + std::to_string(opts.frame_pages) + ", expected 1.." +
                       std::to_string(kMaxFramePages));
  if (opts.zstd_level < ZSTD_minCLevel() || opts.zstd_level > ZSTD_maxCLevel())
    return plain_error("page store option zstd_level = " + std::to_string(opts.zstd_level) + ", expected " +
                       std::to_string(ZSTD_minCLevel()) + ".." + std::to_string(ZSTD_maxCLevel()));
  if (opts.queue_depth < 1 || opts.queue_depth > 4096)
    return plain_error("page store option queue_depth = " + std::to_string(opts.queue_depth) + ", expected 1..4096");
  if (opts.threads < 1 || opts.threads > 64)
    return plain_error("page store option threads = " + std::to_string(opts.threads) + ", expected 1..64");
  if (!opts.fs) opts.fs = real_fs();

  // Only what is missing is created (missing parents of `dir` too), so opening an existing
  // store mutates nothing.
  struct stat st;
  std::vector<fs::path> missing;
  for (fs::path d = dir; !d.empty() && ::stat(d.c_str(), &st) < 0; d = d.parent_path()) {
    missing.push_back(d);
    if (d == d.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) VF_TRY(opts.fs->make_dir(*it));
  for (const fs::path& d : {dir / "packs", dir / "templates"})
    if (::stat(d.c_str(), &st) < 0) VF_TRY(opts.fs->make_dir(d));
  const fs::path lock_path = dir / "lock";
  if (::stat(lock_path.c_str(), &st) < 0) {
    if (errno != ENOENT) return errno_error("stat " + lock_path.string());
    VF_ASSIGN(Fd created, opts.fs->create_file(lock_path));
  }
  return std::unique_ptr<PageStore>(new PageStore(dir, std::move(opts)));
}

fs::path PageStore::manifest_path(std::string_view name) const {
  return dir_ / "templates" / (std::string(name) + ".vft");
}

fs::path PageStore::pack_path(uint32_t id) const { return dir_ / "packs" / pack_file_name(id); }

Result<Fd> PageStore::lock(bool exclusive) const {
  const fs::path p = dir_ / "lock";
  Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + p.string());
  while (::flock(fd.get(), exclusive ? LOCK_EX : LOCK_SH) < 0) {
    if (errno != EINTR) return errno_error(std::string(exclusive ? "flock(LOCK_EX) " : "flock(LOCK_SH) ") + p.string());
  }
  return fd;
}

Result<Template> PageStore::read_manifest(UringIo& io, std::string_view name) const {
  const fs::path p = manifest_path(name);
  Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return Error{"template " + std::string(name) + " not found (no " + p.string() + ")", ENOENT};
    return errno_error("open " + p.string());
  }
  struct stat st;
  if (::fstat(fd.get(), &st) < 0) return errno_error("fstat " + p.string());
  const uint64_t size = uint64_t(st.st_size);
  uint8_t head[kManifestHeaderBytes];
  ReadReq hreq{0, std::span<uint8_t>(head, std::min<uint64_t>(size, sizeof head))};
  VF_TRY(io.read(fd.get(), p, {&hreq, 1}));
  // The header's body length is checked against its cap and the file size before the body
  // is allocated.
  VF_ASSIGN(uint64_t body_bytes, check_manifest_header(hreq.buf, size, p.string()));
  std::vector<uint8_t> file(kManifestHeaderBytes + body_bytes);
  ReadReq freq{0, file};
  VF_TRY(io.read(fd.get(), p, {&freq, 1}));
  VF_ASSIGN(Template t, decode_manifest(file, p.string()));
  if (t.name() != name)
    return plain_error("manifest " + p.string() + ": name at offset " + std::to_string(kManifestHeaderBytes) + ": \"" +
                       t.name() + "\", expected \"" + std::string(name) + "\" (from the file name)");
  return t;
}

Result<std::vector<Template>> PageStore::read_catalog(UringIo& io) const {
  VF_ASSIGN(auto files, list_dir(dir_ / "templates"));
  std::vector<Template> all;
  for (const std::string& f : files) {
    std::string name = template_of(f);
    if (name.empty()) continue;
    VF_ASSIGN(Template t, read_manifest(io, name));
    all.push_back(std::move(t));
  }
  return all;
}

Result<PageStore::OpenPack> PageStore::open_pack(UringIo& io, uint32_t id, const uint64_t* nonce, bool fresh) const {
  OpenPack op;
  op.id = id;
  op.path = pack_path(id);
  op.fd = Fd(::open(op.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!op.fd.valid()) {
    if (errno == ENOENT) return Error{"pack " + op.path.string() + " is missing", ENOENT};
    return errno_error("open " + op.path.string());
  }
  struct stat st;
  if (::fstat(op.fd.get(), &st) < 0) return errno_error("fstat " + op.path.string());
  // A cached index is reused only for the very same file: same inode, size and mtime.
  CachedIndex key{uint64_t(st.st_dev), uint64_t(st.st_ino), uint64_t(st.st_size),
                  uint64_t(st.st_mtim.tv_sec) * 1'000'000'000ull + uint64_t(st.st_mtim.tv_nsec), nullptr};
  if (!fresh) {
    std::lock_guard g(cache_mu_);
    auto it = cache_.find(id);
    if (it != cache_.end() && it->second.dev == key.dev && it->second.ino == key.ino && it->second.size == key.size &&
        it->second.mtime_ns == key.mtime_ns)
      op.index = it->second.index;
  }
  if (!op.index) {
    VF_ASSIGN(PackIndex pi, read_pack_index(io, op.fd.get(), op.path, id, uint64_t(st.st_size)));
    op.index = std::make_shared<const PackIndex>(std::move(pi));
    key.index = op.index;
    std::lock_guard g(cache_mu_);
    cache_[id] = key;
  }
  if (nonce && op.index->nonce != *nonce)
    return plain_error("pack " + op.path.string() + ": nonce at offset 24: " + hex64(op.index->nonce) + ", expected " +
                       hex64(*nonce) + " (recorded by the manifest): the pack was replaced");
  return op;
}

Result<std::vector<PageStore::OpenPack>> PageStore::open_template_packs(UringIo& io, const Template& t,
                                                                        bool fresh) const {
  std::vector<OpenPack> packs;
  packs.reserve(t.packs().size());
  for (const PackRef& ref : t.packs()) {
    auto op = open_pack(io, ref.id, &ref.nonce, fresh);
    if (!op.ok()) return Error{"template " + t.name() + ": " + op.error().what, op.error().sys_errno};
    packs.push_back(std::move(*op));
  }
  const uint64_t mem_pages = t.mem_pages();
  for (size_t i = 0; i < t.runs().size(); ++i) {
    const PageRun& r = t.runs()[i];
    const std::string what = "template " + t.name() + ": page map run " + std::to_string(i) + " (guest pages " +
                             std::to_string(r.first_gpn) + "+" + std::to_string(r.pages) + ")";
    if (r.pages == 0 || r.first_gpn >= mem_pages || r.pages > mem_pages - r.first_gpn)
      return plain_error(what + ": outside the " + std::to_string(mem_pages) + " guest pages");
    auto p = std::lower_bound(packs.begin(), packs.end(), r.loc.pack,
                              [](const OpenPack& op, uint32_t id) { return op.id < id; });
    if (p == packs.end() || p->id != r.loc.pack)
      return plain_error(what + ": pack " + std::to_string(r.loc.pack) + " is not in the template's pack table");
    const PackIndex& idx = *p->index;
    if (r.loc.frame >= idx.frames.size())
      return plain_error(what + ": frame " + std::to_string(r.loc.frame) + " does not exist, pack " + p->path.string() +
                         " has " + std::to_string(idx.frames.size()) + " frames");
    const FrameInfo& f = idx.frames[r.loc.frame];
    if (r.loc.slot >= f.pages || r.pages > f.pages - r.loc.slot)
      return plain_error(what + ": slots " + std::to_string(r.loc.slot) + "+" + std::to_string(r.pages) +
                         " do not exist, frame " + std::to_string(r.loc.frame) + " of pack " + p->path.string() +
                         " has " + std::to_string(f.pages) + " pages");
  }
  return packs;
}

// ---- load and list.

Result<Template> PageStore::load(std::string_view name) const {
  VF_TRY(check_template_name(name));
  VF_ASSIGN(UringIo io, UringIo::create(opts_.queue_depth));
  VF_ASSIGN(Fd held_lock, lock(false));
  VF_ASSIGN(Template t, read_manifest(io, name));
  VF_TRY(open_template_packs(io, t, false));
  return t;
}

Result<std::vector<std::string>> PageStore::list() const {
  VF_ASSIGN(auto files, list_dir(dir_ / "templates"));
  std::vector<std::string> names;
  for (const std::string& f : files)
    if (std::string n = template_of(f); !n.empty()) names.push_back(std::move(n));
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::string> PageStore::identity(std::string_view name) const {
  if (template_of(std::string(name) + ".vft") != name) return plain_error("bad template name '" + std::string(name) + "'");
  const fs::path p = manifest_path(name);
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return errno_error("stat " + p.string());
  // rename(2) of a new manifest gives a new inode; the mtime and size tell apart an inode
  // number the file system reused.
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// ---- Figures.

Result<TemplateStats> PageStore::inspect(std::string_view name) const {
  VF_TRY(check_template_name(name));
  VF_ASSIGN(UringIo io, UringIo::create(opts_.queue_depth));
  VF_ASSIGN(Fd held_lock, lock(false));
  VF_ASSIGN(Template t, read_manifest(io, name));
  VF_ASSIGN(auto packs, open_template_packs(io, t, false));
  VF_ASSIGN(std::vector<Template> catalog, read_catalog(io));
  // Slots of each (pack, frame) that other templates use.
  std::unordered_map<uint64_t, std::vector<bool>> others;
  for (const Template& o : catalog) {
    if (o.name() == t.name()) continue;
    for (const PageRun& r : o.runs()) {
      auto& used = others[frame_key(r.loc.pack, r.loc.frame)];
      if (used.size() < uint64_t(r.loc.slot) + r.pages) used.resize(uint64_t(r.loc.slot) + r.pages);
      std::fill(used.begin() + r.loc.slot, used.begin() + r.loc.slot + r.pages, true);
    }
  }
  TemplateStats s;
  s.pages_total = t.mem_pages();
  s.pages_zero = t.mem_pages() - t.nonzero_pages();
  std::set<uint64_t> frames;
  uint64_t compressed = 0;
  for (const PageRun& r : t.runs()) {
    const uint64_t key = frame_key(r.loc.pack, r.loc.frame);
    auto it = others.find(key);
    for (uint32_t i = 0; i < r.pages; ++i) {
      bool shared = it != others.end() && r.loc.slot + i < it->second.size() && it->second[r.loc.slot + i];
      ++(shared ? s.pages_shared : s.pages_unique);
    }
    if (!frames.insert(key).second) continue;
    auto p = std::lower_bound(packs.begin(), packs.end(), r.loc.pack,
                              [](const OpenPack& op, uint32_t id) { return op.id < id; });
    const FrameInfo& f = p->index->frames[r.loc.frame];
    compressed += f.compressed_bytes;
    s.bytes_stored_uncompressed += uint64_t(f.pages) * kPageBytes;
  }
  s.frames = frames.size();
  s.bytes_on_disk = t.manifest_bytes() + compressed;
  s.compression_ratio = compressed ? double(s.bytes_stored_uncompressed) / double(compressed) : 0;
  return s;
}

Result<StoreStats> PageStore::stats() const {
  VF_ASSIGN(UringIo io, UringIo::create(opts_.queue_depth));
  VF_ASSIGN(Fd held_lock, lock(false));
  VF_ASSIGN(std::vector<Template> catalog, read_catalog(io));
  StoreStats s;
  s.templates = catalog.size();
  std::set<uint64_t> live;
  for (const Template& t : catalog)
    for (const PageRun& r : t.runs()) live.insert(frame_key(r.loc.pack, r.loc.frame));
  s.live_frames = live.size();
  for (const fs::path& d : {dir_, dir_ / "packs", dir_ / "templates", dir_ / "images"}) {
    auto listed = list_dir(d);
    if (!listed.ok() && listed.error().sys_errno == ENOENT && d == dir_ / "images") continue;  // no image built yet
    VF_ASSIGN(auto files, std::move(listed));
    for (const std::string& f : files) {
      struct stat st;
      const fs::path p = d / f;
      if (::lstat(p.c_str(), &st) < 0) {
        if (errno == ENOENT) continue;  // a temp file that went away meanwhile
        return errno_error("lstat " + p.string());
      }
      if (S_ISDIR(st.st_mode)) continue;
      s.bytes_on_disk += uint64_t(st.st_blocks) * 512;
      if (d == dir_ / "packs" && parse_pack_file_name(f)) ++s.packs;
    }
  }
  return s;
}

}  // namespace vmfork::snapshot
