// PageStore::remove and reclaim: unlink a manifest, then free what no manifest references
// (temp files, dead frames punched out of packs, packs with no live frame).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <set>

#include "snapshot/page_store.h"
#include "snapshot/store_layout.h"

namespace vmfork::snapshot {

using namespace format;
namespace fs = std::filesystem;

namespace {

/// True if [begin, end) of `fd` holds no data (already a hole), so punching it is a no-op.
bool is_hole(int fd, uint64_t begin, uint64_t end) {
  off_t d = ::lseek(fd, static_cast<off_t>(begin), SEEK_DATA);
  if (d < 0) return errno == ENXIO;  // no data at or after begin
  return uint64_t(d) >= end;
}

}  // namespace

Status PageStore::remove(std::string_view name) {
  VF_TRY(check_template_name(name));
  VF_ASSIGN(UringIo io, UringIo::create(opts_.queue_depth));
  VF_ASSIGN(Fd held_lock, lock(true));
  const fs::path m = manifest_path(name);
  struct stat st;
  if (::lstat(m.c_str(), &st) < 0) {
    if (errno == ENOENT)
      return Error{"remove " + std::string(name) + ": no such template (no " + m.string() + ")", ENOENT};
    return errno_error("lstat " + m.string());
  }
  VF_TRY(opts_.fs->unlink(m));
  VF_TRY(opts_.fs->fsync_dir(dir_ / "templates"));
  return reclaim_locked(io);
}

Status PageStore::reclaim() {
  VF_ASSIGN(UringIo io, UringIo::create(opts_.queue_depth));
  VF_ASSIGN(Fd held_lock, lock(true));
  return reclaim_locked(io);
}

// Under the exclusive lock no put is running, so every temp file is a failed put's, and the
// manifests on disk are exactly the templates: a frame none of them references is dead. Dead
// frames are never revived (put dedups only against live ones), so deleting them is safe.
Status PageStore::reclaim_locked(UringIo& io) {
  StoreFs& fsys = *opts_.fs;
  const fs::path packs_dir = dir_ / "packs", templates_dir = dir_ / "templates";
  bool packs_dir_changed = false;
  {
    VF_ASSIGN(auto files, list_dir(templates_dir));
    for (const std::string& f : files)
      if (f[0] == '.' && f.ends_with(".vft.tmp")) VF_TRY(fsys.unlink(templates_dir / f));
  }
  // Manifests first, then the pack listing: every pack a manifest references is in the listing.
  VF_ASSIGN(std::vector<Template> catalog, read_catalog(io));
  std::map<uint32_t, std::set<uint32_t>> live;  // pack id -> live frames
  for (const Template& t : catalog)
    for (const PageRun& r : t.runs()) live[r.loc.pack].insert(r.loc.frame);

  VF_ASSIGN(auto files, list_dir(packs_dir));
  for (const std::string& f : files) {
    const fs::path p = packs_dir / f;
    if (f.ends_with(".vfp.tmp")) {
      VF_TRY(fsys.unlink(p));
      packs_dir_changed = true;
      continue;
    }
    auto id = parse_pack_file_name(f);
    if (!id) continue;
    auto lv = live.find(*id);
    if (lv == live.end()) {
      VF_TRY(fsys.unlink(p));
      packs_dir_changed = true;
      std::lock_guard g(cache_mu_);
      cache_.erase(*id);
      continue;
    }
    VF_ASSIGN(OpenPack op, open_pack(io, *id, nullptr));
    Fd wfd(::open(p.c_str(), O_RDWR | O_CLOEXEC));
    if (!wfd.valid()) return errno_error("open " + p.string() + " for punching holes");
    // Runs of dead frames, shrunk to whole 4 KiB blocks: the partial blocks at their ends may
    // hold a live neighbour's bytes, and a range already punched is skipped.
    const auto& frames = op.index->frames;
    for (uint32_t f0 = 0; f0 < frames.size();) {
      if (lv->second.count(f0)) {
        ++f0;
        continue;
      }
      uint32_t f1 = f0;
      while (f1 < frames.size() && !lv->second.count(f1)) ++f1;
      const uint64_t begin = frames[f0].offset, end = frames[f1 - 1].offset + frames[f1 - 1].compressed_bytes;
      const uint64_t a = (begin + kPageBytes - 1) / kPageBytes * kPageBytes, b = end / kPageBytes * kPageBytes;
      f0 = f1;
      if (a >= b || is_hole(wfd.get(), a, b)) continue;
      Status s = fsys.punch_hole(wfd.get(), p, a, b - a);
      if (!s.ok() && s.error().sys_errno == EOPNOTSUPP) break;  // the file system cannot: keep the bytes
      VF_TRY(s);
    }
  }
  if (packs_dir_changed) VF_TRY(fsys.fsync_dir(packs_dir));

  // Images: temp files of interrupted builds, and images of templates that are gone. Under the
  // exclusive lock no build (which holds the shared lock) is running.
  const fs::path images_dir = dir_ / "images";
  struct stat st;
  if (::stat(images_dir.c_str(), &st) == 0) {
    std::set<std::string> digests;
    for (const Template& t : catalog) digests.insert(t.digest());
    VF_ASSIGN(auto images, list_dir(images_dir));
    bool changed = false;
    for (const std::string& f : images) {
      const bool tmp = f[0] == '.' && f.ends_with(".tmp");
      const bool ours = f.ends_with(".img") || f.ends_with(".sum");
      if (!tmp && !(ours && !digests.count(f.substr(0, f.size() - 4)))) continue;
      VF_TRY(fsys.unlink(images_dir / f));
      changed = true;
    }
    if (changed) VF_TRY(fsys.fsync_dir(images_dir));
  } else if (errno != ENOENT) {
    return errno_error("stat " + images_dir.string());
  }
  return Status::Ok();
}

}  // namespace vmfork::snapshot
