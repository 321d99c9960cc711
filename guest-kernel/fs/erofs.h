// Read-only reader of the uncompressed EROFS root image the VMM maps into guest memory
// (format: docs/erofs-reader.md). Single vCPU kernel: no locking; the image never changes.
#pragma once

#include <stdint.h>

namespace k::erofs {

inline constexpr uint64_t kBlock = 4096;

/// An inode's decoded header (EROFS on-disk inode, compact 32 B or extended 64 B).
struct Inode {
  uint64_t nid = 0;          // inode number in the image (also used as st_ino)
  uint16_t mode = 0;         // S_IFMT type bits | permission bits, as stat(2) st_mode
  uint16_t layout = 0;       // data layout: 0 FLAT_PLAIN, 2 FLAT_INLINE (others: -EIO from get_inode)
  uint32_t nlink = 0;
  uint32_t uid = 0, gid = 0;
  uint64_t size = 0;         // bytes
  uint64_t mtime = 0;        // seconds since the epoch (compact inodes: the superblock's build time)
  uint32_t mtime_nsec = 0;
  uint32_t rdev = 0;         // device number for character/block device inodes, already in the
                             // Linux new_encode_dev() form that stat(2) reports as st_rdev
  uint64_t data_blkaddr = 0; // first data block (FLAT_PLAIN; FLAT_INLINE's full blocks)
  uint64_t inline_off = 0;   // image byte offset of the inline tail (FLAT_INLINE), else 0
};

/// One directory entry. `name` points into the image and is NOT NUL-terminated.
struct Dirent {
  uint64_t nid;
  uint8_t type;              // Linux DT_* value (DT_REG 8, DT_DIR 4, DT_LNK 10, DT_CHR 2, ...)
  const char* name;
  uint32_t name_len;
};

/// Validates the superblock of the image at kernel-virtual `base`, `size` bytes, and remembers
/// it (one image per kernel). 0, or -EINVAL: bad magic, block size other than 4096, a field out
/// of range, an incompatible feature bit this reader does not know.
int64_t mount(const uint8_t* base, uint64_t size);

/// The root directory's nid (after mount()).
uint64_t root_nid();

/// Decodes inode `nid`. 0, or -EIO when it lies outside the image or uses an unsupported
/// layout/format. On success every data range of the inode lies inside the image.
int64_t get_inode(uint64_t nid, Inode* out);

/// Looks `name` (`len` bytes, no '/', not "." or ".." handled specially: use what the image
/// stores) up in directory `dir`: 0 with *nid set, -ENOENT, -ENOTDIR (dir is not a directory),
/// -EIO (corrupt). Binary search: EROFS keeps a directory's entries sorted by name.
int64_t lookup(const Inode& dir, const char* name, uint64_t len, uint64_t* nid);

/// Directory iteration. *pos is an opaque cursor (start at 0; it may be stored and passed back
/// later, as getdents64's d_off / lseek does; it is the byte offset of the next dirent in the
/// directory's data, and any value is accepted). Returns 1 with *out filled and *pos advanced,
/// 0 at the end, <0 (-ENOTDIR, -EIO) on error. Includes "." and ".." as the image stores them.
int64_t readdir(const Inode& dir, uint64_t* pos, Dirent* out);

/// Copies up to n bytes of file data from byte offset `off` into dst: returns bytes copied
/// (0 at or past EOF) or -EIO.
int64_t read(const Inode& ino, uint64_t off, void* dst, uint64_t n);

/// For mapping file pages without copying: the image byte offset at which the file's data for
/// [off, off + 4096) is stored contiguously and 4096-aligned, or -1 when it is not (an inline
/// tail; past EOF entirely; `off` not a multiple of 4096). The last page of a FLAT_PLAIN file is
/// a full image block: bytes past EOF in it are whatever the image holds (mkfs.erofs 1.5 writes
/// zeros there, but a mapper that must guarantee zeros has to clear them itself).
int64_t page_offset(const Inode& ino, uint64_t off);

/// Reads a symlink's target into buf (at most n bytes, not NUL-terminated): length or -EINVAL
/// (not a symlink), -EIO.
int64_t readlink(const Inode& ino, char* buf, uint64_t n);

}  // namespace k::erofs
