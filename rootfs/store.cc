// Store: opening (and sweeping dead temp files), finding, listing and removing images, and the
// cached automatic image of a host program (see store.h).
#include "rootfs/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "rootfs/store_files.h"

namespace vmfork::rootfs {

namespace fs = std::filesystem;

namespace {

Result<std::vector<std::string>> dir_names(const fs::path& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return errno_error("opendir " + dir.string());
  std::vector<std::string> out;
  while (dirent* e = ::readdir(d.get()))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) out.emplace_back(e->d_name);
  std::sort(out.begin(), out.end());
  return out;
}

Status make_dir(const fs::path& p) {
  if (::mkdir(p.c_str(), 0755) < 0 && errno != EEXIST) return errno_error("mkdir " + p.string());
  return {};
}

// Removes temp dirs and files of creates that no longer run: a running create holds the
// flock on tmp/<id>.lock; a temp dir without a lock file is left over from a crash.
Status sweep_tmp(const fs::path& tmp) {
  VF_ASSIGN(auto names, dir_names(tmp));
  std::error_code ec;
  for (const auto& n : names) {
    if (!n.ends_with(".lock")) {
      if (::access((tmp / (n + ".lock")).c_str(), F_OK) != 0) fs::remove_all(tmp / n, ec);
      continue;
    }
    Fd fd(::open((tmp / n).c_str(), O_RDWR | O_CLOEXEC));
    if (!fd.valid() || ::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) continue;  // in use (or gone)
    fs::remove_all(tmp / n.substr(0, n.size() - 5), ec);
    ::unlink((tmp / n).c_str());
  }
  return {};
}

}  // namespace

Status check_image_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '.')
    return plain_error("rootfs name '" + std::string(name) + "': want 1..64 characters of [A-Za-z0-9._-], not starting with '.'");
  for (char c : name)
    if (!isalnum(uint8_t(c)) && c != '.' && c != '_' && c != '-')
      return plain_error("rootfs name '" + std::string(name) + "': want 1..64 characters of [A-Za-z0-9._-], not starting with '.'");
  return {};
}

Result<Store> Store::open(const fs::path& store_dir, Limits limits) {
  std::error_code ec;
  fs::path abs = fs::absolute(store_dir, ec);
  if (ec) return Error{"absolute " + store_dir.string(), ec.value()};
  fs::create_directories(abs, ec);
  if (ec) return Error{"mkdir " + abs.string(), ec.value()};
  const fs::path dir = abs / "rootfs";
  VF_TRY(make_dir(dir));
  for (const fs::path& d : {files::images_dir(dir), files::names_dir(dir), files::tmp_dir(dir)}) VF_TRY(make_dir(d));
  VF_TRY(sweep_tmp(files::tmp_dir(dir)));
  return Store(dir, limits);
}

Result<ImageInfo> Store::find(std::string_view name) const {
  VF_ASSIGN(ImageInfo info, files::read_name(dir_, name));
  struct stat st;
  if (::stat(info.path.c_str(), &st) < 0) return errno_error("rootfs " + info.name + ": image " + info.path.string());
  return info;
}

Result<std::vector<ImageInfo>> Store::list() const {
  VF_ASSIGN(auto names, dir_names(files::names_dir(dir_)));
  std::vector<ImageInfo> out;
  for (const auto& n : names) {
    if (!n.ends_with(".json")) continue;
    // A name file that cannot be read is left out here; `find` reports why.
    auto info = files::read_name(dir_, n.substr(0, n.size() - 5));
    if (info.ok()) out.push_back(std::move(*info));
  }
  return out;
}

// The name goes first (durably), then every image no name refers to: this one if it was its
// last name, and any left unnamed by a crash between a create's two renames. A crash in
// between leaves an unnamed image, never a name without its image. Under the exclusive flock,
// so no create is between its image rename and its name write.
Status Store::remove(std::string_view name) {
  VF_TRY(check_image_name(name));
  VF_ASSIGN(Fd lock, files::lock_exclusive(dir_));
  VF_ASSIGN(ImageInfo info, files::read_name(dir_, name));
  const fs::path np = files::name_path(dir_, name);
  if (::unlink(np.c_str()) < 0) return errno_error("unlink " + np.string());
  VF_TRY(files::fsync_dir(files::names_dir(dir_)));
  std::set<std::string> named;
  VF_ASSIGN(auto others, dir_names(files::names_dir(dir_)));
  for (const auto& n : others) {
    if (!n.ends_with(".json")) continue;
    auto o = files::read_name(dir_, n.substr(0, n.size() - 5));
    // A name file that cannot be read might name anything: then no image is reclaimed.
    if (!o.ok()) return {};
    named.insert(o->hash + ".erofs");
  }
  VF_ASSIGN(auto images, dir_names(files::images_dir(dir_)));
  bool removed = false;
  for (const auto& f : images) {
    if (!f.ends_with(".erofs") || named.count(f)) continue;
    const fs::path p = files::images_dir(dir_) / f;
    if (::unlink(p.c_str()) < 0 && errno != ENOENT) return errno_error("unlink " + p.string());
    removed = true;
  }
  return removed ? files::fsync_dir(files::images_dir(dir_)) : Status{};
}

Result<fs::path> Store::image_path(std::string_view hash) const {
  bool hex = hash.size() == 32;
  for (char c : hash) hex = hex && (isdigit(uint8_t(c)) || (c >= 'a' && c <= 'f'));
  if (!hex) return plain_error("rootfs image '" + std::string(hash) + "': not 32 lowercase hex digits");
  fs::path p = files::image_path(dir_, hash);
  struct stat st;
  if (::stat(p.c_str(), &st) < 0) {
    if (errno == ENOENT) return Error{"rootfs image " + std::string(hash) + ": not found", ENOENT};
    return errno_error("stat " + p.string());
  }
  return p;
}

Status verify_image(const fs::path& image, std::string_view hash) {
  VF_ASSIGN(std::string have, files::hash_file(image, nullptr));
  if (have != hash)
    return plain_error("rootfs image " + image.string() + ": content hash " + have + ", want " + std::string(hash));
  return {};
}

Status Store::verify(std::string_view name) const {
  VF_ASSIGN(ImageInfo info, find(name));
  uint64_t bytes = 0;
  VF_ASSIGN(std::string hash, files::hash_file(info.path, &bytes));
  if (hash != info.hash)
    return plain_error("rootfs " + info.name + ": " + info.path.string() + ": XXH3-128 " + hash + ", expected " + info.hash);
  if (bytes != info.bytes)
    return plain_error("rootfs " + info.name + ": " + info.path.string() + ": " + std::to_string(bytes) +
                       " bytes, expected " + std::to_string(info.bytes));
  return {};
}

Result<uint64_t> Store::gc() {
  VF_ASSIGN(Fd lock, files::lock_exclusive(dir_));
  VF_TRY(sweep_tmp(files::tmp_dir(dir_)));
  std::set<std::string> live;
  VF_ASSIGN(auto names, dir_names(files::names_dir(dir_)));
  for (const auto& n : names) {
    if (!n.ends_with(".json")) continue;
    VF_ASSIGN(ImageInfo info, files::read_name(dir_, n.substr(0, n.size() - 5)));
    live.insert(info.hash + ".erofs");
  }
  uint64_t freed = 0;
  bool removed = false;
  VF_ASSIGN(auto images, dir_names(files::images_dir(dir_)));
  for (const auto& f : images) {
    if (live.count(f)) continue;
    const fs::path p = files::images_dir(dir_) / f;
    struct stat st;
    if (::lstat(p.c_str(), &st) == 0) freed += uint64_t(st.st_size);
    if (::unlink(p.c_str()) < 0 && errno != ENOENT) return errno_error("unlink " + p.string());
    removed = true;
  }
  if (removed) VF_TRY(files::fsync_dir(files::images_dir(dir_)));
  return freed;
}

Result<ImageInfo> Store::ensure_program_image(const fs::path& program) {
  std::error_code ec;
  const fs::path canon = fs::canonical(program, ec);
  if (ec) return Error{"realpath " + program.string(), ec.value()};
  struct stat st;
  if (::stat(canon.c_str(), &st) < 0) return errno_error("stat " + canon.string());
  if (!S_ISREG(st.st_mode)) return plain_error(program.string() + ": not a regular file");
  // The key changes when the program is replaced or rebuilt (size or mtime), so a stale image
  // is never reused; a library upgraded under an unchanged program is not noticed (docs/rootfs.md).
  std::string key = canon.string();
  key.push_back('\0');
  key += std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
  char name[32];
  snprintf(name, sizeof name, "auto-%016llx", static_cast<unsigned long long>(XXH3_64bits(key.data(), key.size())));
  auto have = find(name);
  if (have.ok() || have.error().sys_errno != ENOENT) return have;
  auto made = create_from_host(name, {program.is_absolute() ? program.string() : canon.string()});
  if (!made.ok() && made.error().sys_errno == EEXIST) return find(name);  // another process built it first
  return made;
}

}  // namespace vmfork::rootfs
