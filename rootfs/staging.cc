// Staging: copying host files and trees into the staging directory (see staging.h).
#include "rootfs/staging.h"

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/fd.h"
#include "rootfs/elf_deps.h"

namespace vmfork::rootfs {

namespace fs = std::filesystem;

namespace {

constexpr int kMaxDepth = 256;  // directory nesting copied; deeper trees are refused, not recursed into

Result<std::vector<std::string>> sorted_entries(const fs::path& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return errno_error("opendir " + dir.string());
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d.get())) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    errno = 0;
  }
  if (errno) return errno_error("readdir " + dir.string());
  std::sort(names.begin(), names.end());
  return names;
}

// Kernel pseudo file systems: their files are not data (a read of /proc/kmsg blocks forever,
// /sys files change under the reader), so they are never copied; their directories stay empty.
bool is_pseudo_fs(const char* path) {
  struct statfs sf;
  if (::statfs(path, &sf) < 0) return false;
  switch (sf.f_type) {
    case PROC_SUPER_MAGIC: case SYSFS_MAGIC: case DEBUGFS_MAGIC: case TRACEFS_MAGIC: case SECURITYFS_MAGIC:
    case CGROUP_SUPER_MAGIC: case CGROUP2_SUPER_MAGIC: case BPF_FS_MAGIC: case DEVPTS_SUPER_MAGIC:
      return true;
    default:
      return false;
  }
}

bool is_elf64_x86_64_header(int fd) {
  Elf64_Ehdr eh;
  if (::pread(fd, &eh, sizeof eh, 0) != ssize_t(sizeof eh)) return false;
  return memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_ident[EI_CLASS] == ELFCLASS64 &&
         eh.e_ident[EI_DATA] == ELFDATA2LSB && eh.e_machine == EM_X86_64;
}

Status write_file(const fs::path& p, const std::string& text, mode_t mode) {
  Fd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd.valid()) return errno_error("create " + p.string());
  if (::write(fd.get(), text.data(), text.size()) != ssize_t(text.size())) return errno_error("write " + p.string());
  if (::fchmod(fd.get(), mode) < 0) return errno_error("fchmod " + p.string());
  return {};
}

}  // namespace

Status Budget::charge(uint64_t file_bytes, const std::string& what) {
  files += 1;
  bytes += (file_bytes + 4095) & ~uint64_t(4095);
  if (files > limits.max_files)
    return plain_error("image has too many files: more than " + std::to_string(limits.max_files) + " (at " + what + ")");
  if (bytes > limits.max_bytes)
    return plain_error("image too large: more than " + std::to_string(limits.max_bytes) + " bytes (at " + what + ")");
  return {};
}

fs::path Staging::staged(const std::string& host_abs) const { return root_ / fs::path(host_abs).relative_path(); }

Status Staging::make_dirs(const fs::path& host_dir) {
  fs::path host = "/";
  for (const auto& c : host_dir.relative_path()) {
    host /= c;
    const fs::path dst = staged(host.string());
    struct stat st;
    if (::lstat(dst.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return Error{"stage " + host.string() + ": staged as a non-directory", ENOTDIR};
      continue;
    }
    if (::lstat(host.c_str(), &st) < 0) return errno_error("lstat " + host.string());
    if (!S_ISDIR(st.st_mode)) return Error{"stage " + host_dir.string() + ": " + host.string(), ENOTDIR};
    VF_TRY(budget_.charge(0, host.string()));
    if (::mkdir(dst.c_str(), 0700) < 0) return errno_error("mkdir " + dst.string());
    dir_modes_[dst.string()] = st.st_mode & 07777;
  }
  return {};
}

Status Staging::add_host_path(const std::string& host, bool recursive) {
  if (host.empty() || host[0] != '/') return plain_error("--from-host: not an absolute path: " + host);
  std::string norm = fs::path(host).lexically_normal().string();
  while (norm.size() > 1 && norm.back() == '/') norm.pop_back();
  if (done_.count(norm + "/r") || (!recursive && done_.count(norm))) return {};
  done_.insert(recursive ? norm + "/r" : norm);
  auto chain = symlink_chain(norm);
  if (!chain.ok()) {
    struct stat st;
    // A dangling symlink is kept as it is (as ls(1) shows it); anything else missing is an error.
    if (chain.error().sys_errno == ENOENT && ::lstat(norm.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      std::string parent = fs::path(norm).parent_path().string();
      VF_TRY(add_host_path(parent, false));
      VF_ASSIGN(auto pchain, symlink_chain(parent));
      return copy_symlink(fs::path(pchain.back()) / fs::path(norm).filename(),
                          staged(pchain.back()) / fs::path(norm).filename(), true);
    }
    return chain.error();
  }
  const auto& c = *chain;
  for (size_t i = c.size() == 1 ? 0 : 1; i + 1 < c.size(); ++i) {
    // Every element but the last is a symlink whose parent is free of links (symlink_chain).
    const fs::path link(c[i]);
    VF_TRY(make_dirs(link.parent_path()));
    VF_TRY(copy_symlink(link, staged(c[i]), false));
  }
  const fs::path final_path(c.back());
  if (final_path != "/") VF_TRY(make_dirs(final_path.parent_path()));
  return copy_entry(final_path, staged(c.back()), recursive, true);
}

Status Staging::add_pending_link_targets() {
  while (!pending_targets_.empty()) {
    std::string t = std::move(pending_targets_.back());
    pending_targets_.pop_back();
    Status s = add_host_path(t, false);
    // A link to nothing (or through an unreadable directory) stays a dangling link.
    const int e = s.ok() ? 0 : s.error().sys_errno;
    if (!s.ok() && e != ENOENT && e != ENOTDIR && e != EACCES && e != ELOOP && e != ENAMETOOLONG) return s;
  }
  return {};
}

Status Staging::add_tree(const fs::path& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) < 0) return errno_error("--from-dir: stat " + dir.string());
  if (!S_ISDIR(st.st_mode)) return Error{"--from-dir: " + dir.string(), ENOTDIR};
  VF_ASSIGN(auto names, sorted_entries(dir));
  for (const auto& n : names) VF_TRY(copy_entry(dir / n, root_ / n, true, false));
  return {};
}

Status Staging::copy_entry(const fs::path& src, const fs::path& dst, bool recursive, bool host_mode) {
  struct stat st;
  if (::lstat(src.c_str(), &st) < 0) return errno_error("lstat " + src.string());
  if (S_ISREG(st.st_mode)) return copy_file(src, dst, st, host_mode);
  if (S_ISLNK(st.st_mode)) return copy_symlink(src, dst, host_mode);
  if (!S_ISDIR(st.st_mode)) return {};  // sockets, FIFOs, devices: the guest provides its own /dev
  // An explicit stack instead of recursion bounds the depth.
  struct Dir {
    fs::path src, dst;
    int depth;
  };
  std::vector<Dir> todo{{src, dst, 0}};
  while (!todo.empty()) {
    Dir d = std::move(todo.back());
    todo.pop_back();
    struct stat ds;
    if (::lstat(d.src.c_str(), &ds) < 0) return errno_error("lstat " + d.src.string());
    struct stat have;
    if (::lstat(d.dst.c_str(), &have) < 0) {
      VF_TRY(budget_.charge(0, d.src.string()));
      if (::mkdir(d.dst.c_str(), 0700) < 0) return errno_error("mkdir " + d.dst.string());
      dir_modes_[d.dst.string()] = ds.st_mode & 07777;
    } else if (!S_ISDIR(have.st_mode)) {
      return Error{"stage " + d.src.string() + ": staged as a non-directory", ENOTDIR};
    }
    if (!recursive || is_pseudo_fs(d.src.c_str())) continue;
    if (d.depth >= kMaxDepth) return plain_error("stage " + d.src.string() + ": directories nested deeper than " +
                                                 std::to_string(kMaxDepth));
    VF_ASSIGN(auto names, sorted_entries(d.src));
    for (auto it = names.rbegin(); it != names.rend(); ++it) {
      const fs::path s = d.src / *it, t = d.dst / *it;
      struct stat cs;
      if (::lstat(s.c_str(), &cs) < 0) return errno_error("lstat " + s.string());
      if (S_ISDIR(cs.st_mode)) {
        todo.push_back({s, t, d.depth + 1});
      } else if (S_ISREG(cs.st_mode)) {
        VF_TRY(copy_file(s, t, cs, host_mode));
      } else if (S_ISLNK(cs.st_mode)) {
        VF_TRY(copy_symlink(s, t, host_mode));
      }
    }
  }
  return {};
}

Status Staging::copy_file(const fs::path& src, const fs::path& dst, const struct stat& st, bool note_elf) {
  struct stat have;
  if (::lstat(dst.c_str(), &have) == 0) return {};  // staged already (through another path)
  const auto key = std::make_pair(st.st_dev, st.st_ino);
  if (st.st_nlink > 1) {
    if (auto it = links_.find(key); it != links_.end()) {
      if (::link(it->second.c_str(), dst.c_str()) < 0) return errno_error("link " + dst.string());
      return {};
    }
  }
  if (is_pseudo_fs(src.c_str())) return plain_error("stage " + src.string() + ": on a kernel pseudo file system (not copied)");
  VF_TRY(budget_.charge(uint64_t(st.st_size), src.string()));
  Fd in(::open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in.valid()) return errno_error("open " + src.string());
  Fd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out.valid()) return errno_error("create " + dst.string());
  // copy_file_range copies in the kernel (or reflinks); fall back to read/write across file systems
  // that refuse it.
  bool fallback = false;
  for (;;) {
    ssize_t n = fallback ? 0 : ::copy_file_range(in.get(), nullptr, out.get(), nullptr, 1 << 30, 0);
    if (!fallback && n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
      fallback = true;
      continue;
    }
    if (fallback) {
      char buf[1 << 16];
      n = ::read(in.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_error("read " + src.string());
      for (ssize_t off = 0; off < n;) {
        ssize_t w = ::write(out.get(), buf + off, size_t(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno_error("write " + dst.string());
        off += w;
      }
    } else if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("copy_file_range " + src.string());
    }
    if (n == 0) break;
  }
  if (::fchmod(out.get(), st.st_mode & 07777) < 0) return errno_error("fchmod " + dst.string());
  // The file keeps its mtime (mkfs.erofs --preserve-mtime): CPython checks .pyc files by it.
  const struct timespec times[2] = {st.st_mtim, st.st_mtim};
  if (::futimens(out.get(), times) < 0) return errno_error("futimens " + dst.string());
  if (st.st_nlink > 1) links_[key] = dst.string();
  if (note_elf && is_elf64_x86_64_header(in.get())) elf_files_.push_back(src.string());
  return {};
}

Status Staging::copy_symlink(const fs::path& src, const fs::path& dst, bool host_mode) {
  char buf[4096];
  ssize_t n = ::readlink(src.c_str(), buf, sizeof buf);
  if (n < 0) return errno_error("readlink " + src.string());
  if (size_t(n) == sizeof buf) return Error{"readlink " + src.string(), ENAMETOOLONG};
  const std::string target(buf, size_t(n));
  struct stat have;
  if (::lstat(dst.c_str(), &have) < 0) {
    VF_TRY(budget_.charge(0, src.string()));
    if (::symlink(target.c_str(), dst.c_str()) < 0) return errno_error("symlink " + dst.string());
  }
  if (host_mode) {
    fs::path t(target);
    pending_targets_.push_back((t.is_absolute() ? t : src.parent_path() / t).lexically_normal().string());
  }
  return {};
}

Status Staging::finish() {
  VF_TRY(add_pending_link_targets());
  const std::pair<const char*, mode_t> dirs[] = {{"tmp", 01777}, {"root", 0700}, {"home", 0755},
                                                 {"dev", 0755},  {"proc", 0555}, {"etc", 0755}};
  for (const auto& [name, mode] : dirs) {
    const fs::path p = root_ / name;
    struct stat st;
    if (::lstat(p.c_str(), &st) == 0) continue;  // the source's own (even a symlink) wins
    VF_TRY(budget_.charge(0, p.string()));
    if (::mkdir(p.c_str(), 0700) < 0) return errno_error("mkdir " + p.string());
    dir_modes_[p.string()] = mode;
  }
  struct stat st;
  if (::lstat((root_ / "etc").c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    const std::pair<const char*, const char*> files[] = {
        {"etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"},
        {"etc/group", "root:x:0:\nnogroup:x:65534:\n"}};
    for (const auto& [name, text] : files) {
      const fs::path p = root_ / name;
      if (::lstat(p.c_str(), &st) == 0) continue;
      VF_TRY(budget_.charge(strlen(text), p.string()));
      VF_TRY(write_file(p, text, 0644));
      made_files_.push_back(p);
    }
  }
  // Deepest first: a directory's mode may take away the search permission its children need.
  for (auto it = dir_modes_.rbegin(); it != dir_modes_.rend(); ++it)
    if (::chmod(it->first.c_str(), it->second) < 0) return errno_error("chmod " + it->first);
  if (::chmod(root_.c_str(), 0755) < 0) return errno_error("chmod " + root_.string());
  // Directories and symlinks are made here, so their mtimes are the build's: set them to 0 so
  // that equal trees give equal images (regular files keep the source's mtime).
  return zero_made_mtimes();
}

Status Staging::zero_made_mtimes() {
  const struct timespec zero[2] = {{0, 0}, {0, 0}};
  std::error_code ec;
  std::vector<fs::path> paths = made_files_;
  paths.push_back(root_);
  for (auto it = fs::recursive_directory_iterator(root_, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    auto type = it->symlink_status(ec).type();
    if (type == fs::file_type::directory || type == fs::file_type::symlink) paths.push_back(it->path());
  }
  if (ec) return Error{"walk " + root_.string(), ec.value()};
  for (const auto& p : paths)
    if (::utimensat(AT_FDCWD, p.c_str(), zero, AT_SYMLINK_NOFOLLOW) < 0) return errno_error("utimensat " + p.string());
  return {};
}

}  // namespace vmfork::rootfs
