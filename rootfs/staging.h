// The staging directory of one image being built: host files copied in at their own absolute
// paths (--from-host), a whole tree copied in (--from-dir), or OCI layers unpacked into it
// (oci.h), then the directories every image has. mkfs.erofs turns it into the image.
// Thread-safety: one Staging per thread; it is the only writer of its directory.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace vmfork::rootfs {

/// Caps on one image: the content staged (file bytes, each file rounded up to a 4096-byte block,
/// as EROFS stores it) and the number of entries (files, directories, symlinks).
struct Limits {
  uint64_t max_bytes = 4ull << 30;
  uint64_t max_files = 1'000'000;
};

/// What has been staged so far against the Limits; charge() fails once a cap is passed.
struct Budget {
  Limits limits;
  uint64_t bytes = 0, files = 0;
  /// Counts one entry of `file_bytes` bytes; error "image too large: more than N bytes (at PATH)".
  Status charge(uint64_t file_bytes, const std::string& what);
};

class Staging {
 public:
  /// `root` must be an empty directory.
  Staging(std::filesystem::path root, Limits limits) : root_(std::move(root)), budget_{limits} {}

  const std::filesystem::path& root() const { return root_; }
  Budget& budget() { return budget_; }

  /// Copies host path `host` (absolute) to the same path under root(): every directory on the
  /// way with the host's mode, every symlink met on the way as a symlink plus what it points to.
  /// A directory is copied recursively when `recursive`; inside it, a symlink is kept as a
  /// symlink and its target is staged too (a directory target only as an empty directory,
  /// unless it is itself under a recursively copied path). Sockets, FIFOs and device nodes are
  /// skipped. Directories on kernel pseudo file systems (/proc, /sys, cgroups, ...) are made
  /// but not entered; a file on one is an error. ELF64 x86-64 regular files are remembered in
  /// elf_files().
  Status add_host_path(const std::string& host, bool recursive);

  /// Copies the contents of directory `dir` to root() as they are (symlinks as symlinks, not
  /// followed; hard links within the tree kept; special files skipped).
  Status add_tree(const std::filesystem::path& dir);

  /// Stages the targets of symlinks met so far (add_host_path); call before finish().
  Status add_pending_link_targets();

  /// Adds what every image has, when missing: directories /tmp (1777), /root (0700), /home,
  /// /dev, /proc, /etc, and a minimal /etc/passwd and /etc/group (root and nobody); then gives
  /// every copied directory its source mode (deferred so read-only directories could be filled).
  Status finish();

  /// Host paths of the ELF64 x86-64 regular files copied by add_host_path.
  const std::vector<std::string>& elf_files() const { return elf_files_; }

 private:
  Status make_dirs(const std::filesystem::path& host_dir);  // mirrors a link-free host dir chain
  Status copy_entry(const std::filesystem::path& src, const std::filesystem::path& dst, bool recursive,
                    bool host_mode);
  Status copy_file(const std::filesystem::path& src, const std::filesystem::path& dst, const struct stat& st,
                   bool note_elf);
  Status copy_symlink(const std::filesystem::path& src, const std::filesystem::path& dst, bool host_mode);
  std::filesystem::path staged(const std::string& host_abs) const;
  // Sets the mtime of every directory and symlink, and of the files finish() wrote, to 0.
  Status zero_made_mtimes();

  std::filesystem::path root_;
  Budget budget_;
  std::vector<std::filesystem::path> made_files_;             // written by finish(), not copied
  std::map<std::string, mode_t> dir_modes_;                 // staged dir -> mode to apply in finish()
  std::map<std::pair<dev_t, ino_t>, std::string> links_;     // source inode -> first staged path
  std::set<std::string> done_;                              // host paths staged (recursive ones with "/r")
  std::vector<std::string> pending_targets_;                // symlink targets to stage
  std::vector<std::string> elf_files_;
};

}  // namespace vmfork::rootfs
