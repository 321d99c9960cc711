// A host-side reader of the parts of EROFS the guest kernel reads, used to check every image
// right after mkfs.erofs writes it: the image must use nothing else (so another erofs-utils
// version cannot slip in a layout the guest cannot read). Format facts: Linux
// fs/erofs/erofs_fs.h and Documentation/filesystems/erofs.rst. Thread-safety: pure function.
#pragma once

#include <cstdint>
#include <filesystem>

#include "common/status.h"

namespace vmfork::rootfs {

/// What the walk found; files = regular + dirs + symlinks, each inode counted once.
struct ErofsSummary {
  uint64_t regular = 0, dirs = 0, symlinks = 0, files = 0;
  uint64_t compact_inodes = 0, extended_inodes = 0;
  uint64_t flat_plain = 0, flat_inline = 0;  // inodes per data layout
  uint64_t blocks = 0;                       // superblock `blocks`
};

/// Reads the superblock at byte 1024 (magic 0xE0F5E1E2, 4096-byte blocks, no incompat
/// features) and walks the tree from the root nid, checking that every inode is compact (32 B)
/// or extended (64 B), has no xattrs, is a regular file, directory or symlink, and stores its
/// data FLAT_PLAIN or FLAT_INLINE within the image (an inline tail within one block), and that
/// every directory block's dirents are well formed. Error "IMAGE: nid N: ..." otherwise.
Result<ErofsSummary> check_erofs_image(const std::filesystem::path& image);

}  // namespace vmfork::rootfs
