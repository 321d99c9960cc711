// check_erofs_image (see erofs_check.h). On-disk offsets below are those of struct
// erofs_super_block, erofs_inode_compact, erofs_inode_extended and erofs_dirent in Linux
// fs/erofs/erofs_fs.h; all little-endian.
#include "rootfs/erofs_check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <set>
#include <string>
#include <vector>

#include "common/fd.h"

namespace vmfork::rootfs {

namespace {

constexpr uint64_t kSuperOffset = 1024;
constexpr uint32_t kMagic = 0xE0F5E1E2;
constexpr uint64_t kBlock = 4096;
constexpr uint16_t kLayoutFlatPlain = 0, kLayoutFlatInline = 2;
constexpr uint8_t kFtReg = 1, kFtDir = 2, kFtSymlink = 7;
constexpr uint64_t kDirentBytes = 12;
constexpr uint64_t kMaxSymlinkBytes = 4096;

uint16_t le16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
uint32_t le32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }
uint64_t le64(const uint8_t* p) { return uint64_t(le32(p)) | uint64_t(le32(p + 4)) << 32; }

struct Inode {
  uint64_t nid = 0;
  bool extended = false;
  uint16_t layout = 0, mode = 0;
  uint64_t size = 0;
  uint32_t raw_blkaddr = 0;
  uint64_t inline_off = 0;  // byte offset of the inline tail (right after the inode)
};

class Reader {
 public:
  Reader(int fd, uint64_t size, std::string name) : fd_(fd), size_(size), name_(std::move(name)) {}

  Status read(uint64_t off, void* buf, uint64_t n, const std::string& what) const {
    if (off > size_ || n > size_ - off)
      return plain_error(name_ + ": " + what + " (bytes " + std::to_string(off) + "+" + std::to_string(n) +
                         ") lies beyond the image end " + std::to_string(size_));
    uint64_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_, static_cast<char*>(buf) + done, n - done, off_t(off + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return errno_error("pread " + name_);
      done += uint64_t(r);
    }
    return {};
  }

  // The bytes of an inode's data from `pos` (up to one block; never crossing a block of the
  // layout). FLAT_PLAIN: all blocks from raw_blkaddr. FLAT_INLINE: full blocks from raw_blkaddr,
  // the last partial block right after the inode.
  Result<std::vector<uint8_t>> data_block(const Inode& in, uint64_t pos) const {
    const uint64_t n = std::min(kBlock, in.size - pos);
    std::vector<uint8_t> b(n);
    const uint64_t full_blocks = in.size / kBlock;
    const bool tail = in.layout == kLayoutFlatInline && pos / kBlock >= full_blocks;
    const uint64_t off = tail ? in.inline_off : uint64_t(in.raw_blkaddr) * kBlock + pos;
    VF_TRY(read(off, b.data(), n, "nid " + std::to_string(in.nid) + " data"));
    return b;
  }

  uint64_t size() const { return size_; }
  uint64_t meta_base = 0;

 private:
  int fd_;
  uint64_t size_;
  std::string name_;
};

Result<Inode> read_inode(const Reader& r, uint64_t nid, const std::string& name) {
  Inode in;
  in.nid = nid;
  const std::string where = name + ": nid " + std::to_string(nid);
  if (nid >= r.size() / 32) return plain_error(where + ": nid beyond the image end");
  const uint64_t off = r.meta_base + nid * 32;
  uint8_t b[64];
  VF_TRY(r.read(off, b, 32, "inode"));
  const uint16_t format = le16(b);
  in.extended = format & 1;
  in.layout = (format >> 1) & 7;
  if (format >> 4) return plain_error(where + ": unknown i_format bits " + std::to_string(format));
  if (le16(b + 2) != 0) return plain_error(where + ": has extended attributes (images are made with -x-1)");
  in.mode = le16(b + 4);
  if (in.extended) {
    VF_TRY(r.read(off, b, 64, "extended inode"));
    in.size = le64(b + 8);
  } else {
    in.size = le32(b + 8);
  }
  in.raw_blkaddr = le32(b + 16);
  in.inline_off = off + (in.extended ? 64 : 32);
  if (in.layout != kLayoutFlatPlain && in.layout != kLayoutFlatInline)
    return plain_error(where + ": data layout " + std::to_string(in.layout) +
                       " (the guest reads only FLAT_PLAIN 0 and FLAT_INLINE 2)");
  if (!S_ISREG(in.mode) && !S_ISDIR(in.mode) && !S_ISLNK(in.mode))
    return plain_error(where + ": file type " + std::to_string(in.mode & S_IFMT) + " (only files, dirs, symlinks)");
  if (in.layout == kLayoutFlatInline && in.size % kBlock) {
    // The tail sits after the inode and must not cross into the next block.
    const uint64_t tail = in.size % kBlock;
    if (in.inline_off / kBlock != (in.inline_off + tail - 1) / kBlock)
      return plain_error(where + ": inline tail crosses a block boundary");
  }
  if (S_ISLNK(in.mode) && (in.size == 0 || in.size > kMaxSymlinkBytes))
    return plain_error(where + ": symlink size " + std::to_string(in.size));
  return in;
}

}  // namespace

Result<ErofsSummary> check_erofs_image(const std::filesystem::path& image) {
  const std::string name = image.string();
  Fd fd(::open(name.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + name);
  struct stat st;
  if (::fstat(fd.get(), &st) < 0) return errno_error("fstat " + name);
  Reader r(fd.get(), uint64_t(st.st_size), name);
  uint8_t sb[128];
  VF_TRY(r.read(kSuperOffset, sb, sizeof sb, "superblock"));
  if (le32(sb) != kMagic) return plain_error(name + ": not an EROFS image (bad magic)");
  if (sb[12] != 12) return plain_error(name + ": block size 2^" + std::to_string(sb[12]) + " (want 4096)");
  const uint32_t incompat = le32(sb + 80);
  if (incompat != 0)
    return plain_error(name + ": incompatible features 0x" + std::to_string(incompat) +
                       " (compression, chunks or devices: the guest reads none)");
  ErofsSummary s;
  s.blocks = le32(sb + 36);
  if (s.blocks * kBlock > uint64_t(st.st_size)) return plain_error(name + ": superblock claims more blocks than the file has");
  r.meta_base = uint64_t(le32(sb + 40)) * kBlock;
  const uint64_t root = le16(sb + 14);

  std::set<uint64_t> seen{root};
  std::deque<uint64_t> dirs{root};
  VF_ASSIGN(Inode ri, read_inode(r, root, name));
  if (!S_ISDIR(ri.mode)) return plain_error(name + ": root is not a directory");
  auto count = [&](const Inode& in) {
    (in.extended ? s.extended_inodes : s.compact_inodes)++;
    (in.layout == kLayoutFlatPlain ? s.flat_plain : s.flat_inline)++;
    if (S_ISREG(in.mode)) s.regular++;
    else if (S_ISDIR(in.mode)) s.dirs++;
    else s.symlinks++;
  };
  count(ri);
  while (!dirs.empty()) {
    VF_ASSIGN(Inode dir, read_inode(r, dirs.front(), name));
    dirs.pop_front();
    const std::string where = name + ": directory nid " + std::to_string(dir.nid);
    for (uint64_t pos = 0; pos < dir.size; pos += kBlock) {
      VF_ASSIGN(std::vector<uint8_t> b, r.data_block(dir, pos));
      if (b.size() < kDirentBytes) return plain_error(where + ": block too short for a dirent");
      const uint64_t n = le16(b.data() + 8) / kDirentBytes;  // nameoff of the first dirent
      if (n == 0 || n * kDirentBytes > b.size()) return plain_error(where + ": bad dirent count");
      for (uint64_t i = 0; i < n; ++i) {
        const uint8_t* d = b.data() + i * kDirentBytes;
        const uint64_t nid = le64(d), nameoff = le16(d + 8), type = d[10];
        uint64_t end = i + 1 < n ? le16(d + kDirentBytes + 8) : b.size();
        if (nameoff < n * kDirentBytes || end > b.size() || nameoff >= end)
          return plain_error(where + ": dirent " + std::to_string(i) + " name out of bounds");
        if (i + 1 == n)  // the last name ends at the block end or at the first NUL
          for (uint64_t k = nameoff; k < end; ++k)
            if (b[k] == 0) {
              end = k;
              break;
            }
        const std::string entry(reinterpret_cast<const char*>(b.data()) + nameoff, end - nameoff);
        if (entry.empty()) return plain_error(where + ": empty name");
        if (entry == "." || entry == "..") continue;
        if (type != kFtReg && type != kFtDir && type != kFtSymlink)
          return plain_error(where + ": entry " + entry + " has file type " + std::to_string(type));
        if (!seen.insert(nid).second) continue;  // a hard link: counted once
        VF_ASSIGN(Inode child, read_inode(r, nid, name));
        count(child);
        if (S_ISDIR(child.mode)) dirs.push_back(nid);
        // The data must lie inside the image: read its last byte's block.
        if (child.size > 0 && !S_ISDIR(child.mode)) {
          const uint64_t last = (child.size - 1) / kBlock * kBlock;
          auto tail = r.data_block(child, last);
          if (!tail.ok()) return tail.error();
        }
      }
    }
  }
  s.files = s.regular + s.dirs + s.symlinks;
  return s;
}

}  // namespace vmfork::rootfs
