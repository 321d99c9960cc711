// Store::create_from_*: stage the tree in a private temp dir, run mkfs.erofs, check and hash the
// image, then commit it under the store's flock (see store.h and docs/rootfs.md).
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "rootfs/elf_deps_internal.h"
#include "rootfs/erofs_check.h"
#include "rootfs/mkfs.h"
#include "rootfs/oci.h"
#include "rootfs/store.h"
#include "rootfs/store_files.h"

namespace vmfork::rootfs {

namespace fs = std::filesystem;

namespace {

// A create's private directory tmp/<id>/ and the flocked tmp/<id>.lock that tells Store::open
// it is alive; both removed when the create ends, however it ends.
class TempWork {
 public:
  static Result<TempWork> make(const fs::path& tmp) {
    static std::atomic<uint64_t> counter{0};
    // Store::open's sweep may lock and delete a lock file between its creation and our flock;
    // then the path no longer names our file, and we start again under a new id.
    for (int attempt = 0; attempt < 8; ++attempt) {
      uint64_t r = 0;
      if (::getrandom(&r, sizeof r, 0) != sizeof r) r = uint64_t(::time(nullptr));
      char id[64];
      snprintf(id, sizeof id, "%d-%llu-%016llx", int(::getpid()), static_cast<unsigned long long>(counter++),
               static_cast<unsigned long long>(r));
      TempWork w;
      w.dir_ = tmp / id;
      w.lock_path_ = tmp / (std::string(id) + ".lock");
      Fd fd(::open(w.lock_path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
      if (!fd.valid()) return errno_error("create " + w.lock_path_.string());
      while (::flock(fd.get(), LOCK_EX) < 0)
        if (errno != EINTR) return errno_error("flock " + w.lock_path_.string());
      struct stat mine, named;
      if (::fstat(fd.get(), &mine) < 0) return errno_error("fstat " + w.lock_path_.string());
      if (::stat(w.lock_path_.c_str(), &named) < 0 || named.st_ino != mine.st_ino || named.st_dev != mine.st_dev)
        continue;
      w.lock_ = std::move(fd);
      if (::mkdir(w.dir_.c_str(), 0700) < 0) return errno_error("mkdir " + w.dir_.string());
      return w;
    }
    return plain_error("create a temp dir in " + tmp.string() + ": lost the race with Store::open 8 times");
  }
  TempWork() = default;
  TempWork(TempWork&&) = default;
  TempWork& operator=(TempWork&&) = default;
  ~TempWork() {
    if (!lock_.valid()) return;
    std::error_code ec;
    // Staged directories may have lost their write permission (source modes): give it back first.
    for (auto it = fs::recursive_directory_iterator(dir_, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
    fs::remove_all(dir_, ec);
    ::unlink(lock_path_.c_str());
  }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_, lock_path_;
  Fd lock_;
};

std::string join_paths(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& p : v) s += (s.empty() ? "" : " ") + p;
  return s;
}

}  // namespace

template <typename Fill>
Result<ImageInfo> Store::build(std::string_view name_view, std::string source, Fill fill) {
  const std::string name(name_view);
  VF_TRY(check_image_name(name));
  const fs::path np = files::name_path(dir_, name);
  if (::access(np.c_str(), F_OK) == 0) return Error{"rootfs " + name + ": already exists", EEXIST};
  VF_ASSIGN(TempWork work, TempWork::make(files::tmp_dir(dir_)));
  const fs::path root = work.dir() / "root";
  if (::mkdir(root.c_str(), 0755) < 0) return errno_error("mkdir " + root.string());

  Staging staging(root, limits_);
  VF_TRY(fill(staging, work.dir()));
  VF_TRY(staging.finish());

  // mkfs.erofs writes at disk speed; the deadline only catches a hung tool, so it is generous.
  const fs::path image = work.dir() / "image.erofs";
  const auto deadline = std::chrono::milliseconds(120'000 + staging.budget().bytes / (10 << 20) * 1000);
  VF_TRY(run_mkfs_erofs(image, root, deadline));
  VF_TRY(normalize_superblock(image));
  auto summary = check_erofs_image(image);
  if (!summary.ok()) return Error{"rootfs " + name + ": mkfs.erofs wrote an image the guest cannot read: " +
                                      summary.error().what, summary.error().sys_errno};
  ImageInfo info;
  info.name = name;
  info.source = std::move(source);
  info.files = summary->files;
  VF_ASSIGN(info.hash, files::hash_file(image, &info.bytes));
  if (info.bytes > limits_.max_bytes)
    return plain_error("rootfs " + name + ": image of " + std::to_string(info.bytes) + " bytes is over the cap of " +
                       std::to_string(limits_.max_bytes));
  info.created_unix = int64_t(::time(nullptr));
  info.path = files::image_path(dir_, info.hash);
  {
    Fd fd(::open(image.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return errno_error("open " + image.string());
    if (::fchmod(fd.get(), 0444) < 0) return errno_error("fchmod " + image.string());
    if (::fsync(fd.get()) < 0) return errno_error("fsync " + image.string());
  }

  // Commit: the image (unless the same bytes are stored already), then the name; a crash
  // between the two leaves an unnamed image that the same content's next create reuses.
  VF_ASSIGN(Fd lock, files::lock_exclusive(dir_));
  if (::access(np.c_str(), F_OK) == 0) return Error{"rootfs " + name + ": already exists", EEXIST};
  struct stat st;
  if (::stat(info.path.c_str(), &st) < 0 || uint64_t(st.st_size) != info.bytes) {
    if (::rename(image.c_str(), info.path.c_str()) < 0)
      return errno_error("rename " + image.string() + " " + info.path.string());
    VF_TRY(files::fsync_dir(files::images_dir(dir_)));
  }
  VF_TRY(files::write_durably(work.dir() / "name.json", np, files::name_json(info)));
  return info;
}

Result<ImageInfo> Store::create_from_host(std::string_view name, const std::vector<std::string>& paths) {
  if (paths.empty()) return plain_error("--from-host: no paths given");
  return build(name, "host: " + join_paths(paths), [&](Staging& st, const fs::path&) -> Status {
    for (const auto& p : paths) {
      std::string abs = p;
      if (abs.empty() || abs[0] != '/') {
        std::error_code ec;
        abs = fs::absolute(p, ec).lexically_normal().string();
        if (ec) return Error{"absolute " + p, ec.value()};
      }
      Status s = st.add_host_path(abs, true);
      if (!s.ok()) return Error{"--from-host " + p + ": " + s.error().what, s.error().sys_errno};
    }
    VF_TRY(st.add_pending_link_targets());
    VF_ASSIGN(Closure c, library_closure_report(st.elf_files()));
    // A module whose optional library is not installed fails to load in the guest as it does
    // here; the image is still useful, so a miss is a warning.
    for (const auto& m : c.missing) spdlog::warn("rootfs {}: library not found: {}", std::string(name), m);
    for (const auto& p : c.paths) {
      Status s = st.add_host_path(p, false);
      if (!s.ok()) return Error{"library " + p + ": " + s.error().what, s.error().sys_errno};
    }
    return {};
  });
}

Result<ImageInfo> Store::create_from_dir(std::string_view name, const fs::path& dir) {
  std::error_code ec;
  const fs::path abs = fs::absolute(dir, ec);
  if (ec) return Error{"absolute " + dir.string(), ec.value()};
  return build(name, "dir: " + abs.string(), [&](Staging& st, const fs::path&) { return st.add_tree(abs); });
}

Result<ImageInfo> Store::create_from_oci(std::string_view name, const fs::path& oci) {
  std::error_code ec;
  const fs::path abs = fs::absolute(oci, ec);
  if (ec) return Error{"absolute " + oci.string(), ec.value()};
  return build(name, "oci: " + abs.string(), [&](Staging& st, const fs::path& work) {
    return import_oci(abs, work, st.root(), st.budget());
  });
}

}  // namespace vmfork::rootfs
