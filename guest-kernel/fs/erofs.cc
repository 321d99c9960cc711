// Read-only EROFS reader over the image mapped in guest memory (see erofs.h). Format facts come
// from the Linux kernel's fs/erofs/erofs_fs.h (layouts), dir.c / namei.c (directory blocks)
// and data.c (block mapping); docs/erofs-reader.md lists them. Single-threaded, like the kernel.
//
// Everything read from the image is untrusted: each offset and length is checked against the
// image size before use, loops are bounded by small constants or log2 of a validated size, and
// there is no recursion. This file must also build for the host (tests/erofs_test.cc): it uses
// only <stdint.h>, linux_abi.h's errno values and the compiler's memcpy/memcmp.
#include "fs/erofs.h"

#include "linux_abi.h"

namespace k::erofs {
namespace {

// erofs_fs.h: the superblock sits at byte 1024; its fields, by byte offset inside it.
constexpr uint64_t kSuperOffset = 1024, kSuperSize = 128;
constexpr uint32_t kMagic = 0xE0F5E1E2;
constexpr uint64_t kSbMagic = 0, kSbBlkszBits = 12, kSbRootNid = 14, kSbBuildTime = 24,
                   kSbBuildTimeNsec = 32, kSbBlocks = 36, kSbMetaBlkaddr = 40,
                   kSbFeatureIncompat = 80, kSbExtraDevices = 86, kSbDirBlkBits = 90;
// Incompatible features an uncompressed reader may ignore: they only concern compressed,
// chunk-based or multi-device inodes (refused one by one in get_inode) or xattrs (not read).
// Any other bit may change what the fields below mean, so mount() refuses it.
constexpr uint32_t kKnownIncompat = 0x7f;

// erofs_fs.h: inodes live at meta_blkaddr * block + nid * 32.
constexpr uint64_t kSlotSize = 32, kCompactSize = 32, kExtendedSize = 64;
constexpr uint16_t kFormatAllBits = 0xf;  // bit 0: version (extended), bits 1..3: data layout
constexpr uint16_t kFlatPlain = 0, kFlatInline = 2;
constexpr uint64_t kXattrHeaderSize = 12, kXattrSlotSize = 4;

constexpr uint64_t kDirentSize = 12;  // nid u64, nameoff u16, file_type u8, reserved u8
constexpr uint64_t kNameMax = 255;    // EROFS_NAME_LEN

// st_mode type bits (Linux include/uapi/linux/stat.h).
constexpr uint16_t kIfmt = 0170000, kIfSock = 0140000, kIfLnk = 0120000, kIfReg = 0100000,
                   kIfBlk = 0060000, kIfDir = 0040000, kIfChr = 0020000, kIfIfo = 0010000;

// EROFS_FT_* (erofs_fs.h: the generic FT_* order of include/linux/fs_types.h) -> DT_* values.
constexpr uint8_t kFtToDt[] = {0 /*UNKNOWN*/, 8 /*REG*/, 4 /*DIR*/, 2 /*CHR*/,
                               6 /*BLK*/,     1 /*FIFO*/, 12 /*SOCK*/, 10 /*LNK*/};

struct Image {
  const uint8_t* base = nullptr;
  uint64_t size = 0;
  uint64_t meta_off = 0;  // byte offset of nid 0
  uint64_t root_nid = 0;
  uint64_t build_time = 0;
  uint32_t build_time_nsec = 0;
};
Image g;

// Little-endian loads from possibly unaligned image bytes (GCC folds these into single loads).
uint16_t le16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
uint32_t le32(const uint8_t* p) { return uint32_t(le16(p)) | uint32_t(le16(p + 2)) << 16; }
uint64_t le64(const uint8_t* p) { return uint64_t(le32(p)) | uint64_t(le32(p + 4)) << 32; }

// True when [off, off + len) lies inside image `im`, without overflow.
bool inside(const Image& im, uint64_t off, uint64_t len) {
  return off <= im.size && len <= im.size - off;
}

uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

bool has_data(uint16_t mode) {
  uint16_t t = mode & kIfmt;
  return t == kIfReg || t == kIfDir || t == kIfLnk;
}

// Blocks stored at data_blkaddr: all of them for FLAT_PLAIN; all but the inline tail for
// FLAT_INLINE (data.c: the last block of a tail-packed inode is its inline data).
uint64_t full_blocks(const Inode& ino) {
  uint64_t blocks = ino.size / kBlock + (ino.size % kBlock != 0);
  return ino.layout == kFlatInline && blocks ? blocks - 1 : blocks;
}

// Image bytes holding file data from `off` (< size) on: the image offset and how many bytes
// of the file are contiguous there. False when the inode's ranges leave the image.
bool locate(const Inode& ino, uint64_t off, uint64_t* img_off, uint64_t* len) {
  if (off >= ino.size || (ino.layout != kFlatPlain && ino.layout != kFlatInline)) return false;
  uint64_t full = full_blocks(ino);
  if (off / kBlock < full) {
    if (ino.data_blkaddr > g.size / kBlock) return false;
    *img_off = ino.data_blkaddr * kBlock + off;
    *len = min64(ino.size, full * kBlock) - off;  // full * kBlock <= size rounded up: no overflow
  } else {
    uint64_t tail_start = full * kBlock;
    if (ino.inline_off > g.size) return false;
    *img_off = ino.inline_off + (off - tail_start);
    *len = ino.size - off;
  }
  return inside(g, *img_off, *len);
}

int64_t decode_inode(const Image& im, uint64_t nid, Inode* out) {
  if (im.base == nullptr || im.meta_off > im.size || nid > (im.size - im.meta_off) / kSlotSize)
    return -EIO;
  uint64_t off = im.meta_off + nid * kSlotSize;
  if (!inside(im, off, kCompactSize)) return -EIO;
  const uint8_t* p = im.base + off;
  uint16_t format = le16(p);
  if (format & ~kFormatAllBits) return -EIO;
  bool extended = format & 1;
  uint16_t layout = (format >> 1) & 7;
  if (layout != kFlatPlain && layout != kFlatInline) return -EIO;  // compressed, chunk-based
  uint64_t isize = extended ? kExtendedSize : kCompactSize;
  uint16_t icount = le16(p + 2);
  uint64_t xattr_size = icount ? kXattrHeaderSize + (icount - 1) * kXattrSlotSize : 0;
  if (!inside(im, off, isize + xattr_size)) return -EIO;

  Inode ino;
  ino.nid = nid;
  ino.layout = layout;
  ino.mode = le16(p + 4);
  uint32_t iu = le32(p + 16);  // raw_blkaddr for flat data, rdev for device inodes
  if (extended) {
    ino.size = le64(p + 8);
    ino.uid = le32(p + 24);
    ino.gid = le32(p + 28);
    ino.mtime = le64(p + 32);
    ino.mtime_nsec = le32(p + 40);
    ino.nlink = le32(p + 44);
  } else {
    ino.nlink = le16(p + 6);
    ino.size = le32(p + 8);
    ino.uid = le16(p + 24);
    ino.gid = le16(p + 26);
    ino.mtime = im.build_time;
    ino.mtime_nsec = im.build_time_nsec;
  }

  switch (ino.mode & kIfmt) {
    case kIfReg: case kIfDir: case kIfLnk: break;
    case kIfChr: case kIfBlk: case kIfIfo: case kIfSock:
      // No data: a size would make read() treat rdev as a block address.
      if (ino.size != 0) return -EIO;
      ino.rdev = iu;
      *out = ino;
      return 0;
    default: return -EIO;
  }

  ino.data_blkaddr = iu;
  uint64_t full = full_blocks(ino);
  // Without full blocks mkfs.erofs stores raw_blkaddr as EROFS_NULL_ADDR (~0): not checked.
  if (full && (full > im.size / kBlock || !inside(im, ino.data_blkaddr * kBlock, full * kBlock)))
    return -EIO;
  if (layout == kFlatInline) {
    ino.inline_off = off + isize + xattr_size;
    uint64_t tail = ino.size - full * kBlock;
    // data.c: the inline tail must not cross a block boundary.
    if (!inside(im, ino.inline_off, tail) || ino.inline_off % kBlock + tail > kBlock) return -EIO;
  }
  *out = ino;
  return 0;
}

// One directory block (dir.c / namei.c): `count` 12-byte dirents, then their names; the block
// holds `maxsize` valid bytes (4096, or less for the directory's last block).
struct DirBlock {
  const uint8_t* p;
  uint32_t maxsize;
  uint32_t count;
};

int64_t dir_block(const Inode& dir, uint64_t blk, DirBlock* b) {
  uint64_t start = blk * kBlock, img_off, len;
  if (blk > dir.size / kBlock || !locate(dir, start, &img_off, &len)) return -EIO;
  uint64_t maxsize = min64(kBlock, dir.size - start);
  if (len < maxsize || maxsize < kDirentSize) return -EIO;
  b->p = g.base + img_off;
  b->maxsize = uint32_t(maxsize);
  // The first dirent's name starts right after the dirent table, so it gives the count.
  uint32_t nameoff0 = le16(b->p + 8);
  if (nameoff0 < kDirentSize || nameoff0 >= maxsize) return -EIO;
  b->count = nameoff0 / kDirentSize;
  return 0;
}

// Entry `i` (< b.count) of a directory block. A name runs to the next entry's name, the last
// one to the first NUL or the block's end.
int64_t dir_entry(const DirBlock& b, uint32_t i, Dirent* d) {
  const uint8_t* de = b.p + i * kDirentSize;
  uint32_t start = le16(de + 8), end;
  if (start < b.count * kDirentSize || start >= b.maxsize) return -EIO;
  if (i + 1 < b.count) {
    end = le16(de + kDirentSize + 8);
    if (end <= start || end > b.maxsize) return -EIO;
  } else {
    end = start;
    while (end < b.maxsize && b.p[end] != 0) end++;
    if (end == start) return -EIO;
  }
  uint8_t ft = de[10];
  if (end - start > kNameMax || ft >= sizeof(kFtToDt)) return -EIO;
  d->nid = le64(de);
  d->type = kFtToDt[ft];
  d->name = reinterpret_cast<const char*>(b.p + start);
  d->name_len = end - start;
  return 0;
}

// strcmp order (mkfs.erofs sorts names bytewise) for names that hold no NUL.
int compare(const char* a, uint64_t alen, const Dirent& d) {
  int c = __builtin_memcmp(a, d.name, min64(alen, d.name_len));
  if (c) return c;
  return alen < d.name_len ? -1 : alen > d.name_len ? 1 : 0;
}

}  // namespace

int64_t mount(const uint8_t* base, uint64_t size) {
  if (base == nullptr || size < kSuperOffset + kSuperSize) return -EINVAL;
  const uint8_t* sb = base + kSuperOffset;
  if (le32(sb + kSbMagic) != kMagic || sb[kSbBlkszBits] != 12) return -EINVAL;
  if (le32(sb + kSbFeatureIncompat) & ~kKnownIncompat) return -EINVAL;
  // Directory blocks other than the block size, and data on other devices, are not for us.
  if (sb[kSbDirBlkBits] != 0 || le16(sb + kSbExtraDevices) != 0) return -EINVAL;
  // The image must hold every block the superblock counts.
  if (le32(sb + kSbBlocks) > size / kBlock) return -EINVAL;
  Image im;
  im.base = base;
  im.size = size;
  im.meta_off = uint64_t(le32(sb + kSbMetaBlkaddr)) * kBlock;
  im.root_nid = le16(sb + kSbRootNid);
  im.build_time = le64(sb + kSbBuildTime);
  im.build_time_nsec = le32(sb + kSbBuildTimeNsec);
  if (im.meta_off >= size) return -EINVAL;
  Inode root;
  if (decode_inode(im, im.root_nid, &root) != 0 || (root.mode & kIfmt) != kIfDir) return -EINVAL;
  g = im;
  return 0;
}

uint64_t root_nid() { return g.root_nid; }

int64_t get_inode(uint64_t nid, Inode* out) { return decode_inode(g, nid, out); }

int64_t lookup(const Inode& dir, const char* name, uint64_t len, uint64_t* nid) {
  if ((dir.mode & kIfmt) != kIfDir) return -ENOTDIR;
  if (len == 0 || len > kNameMax) return -ENOENT;
  uint64_t blocks = dir.size / kBlock + (dir.size % kBlock != 0);
  // namei.c: names are sorted across blocks too, so find the last block whose first name is
  // <= name, then search inside it.
  uint64_t lo = 0, hi = blocks, found = blocks;
  DirBlock b;
  Dirent d;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    int64_t err = dir_block(dir, mid, &b);
    if (err == 0) err = dir_entry(b, 0, &d);
    if (err) return err;
    int c = compare(name, len, d);
    if (c == 0) {
      *nid = d.nid;
      return 0;
    }
    if (c > 0) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (found == blocks) return -ENOENT;
  if (int64_t err = dir_block(dir, found, &b)) return err;
  uint32_t l = 1, h = b.count;  // entry 0 compared less than name above
  while (l < h) {
    uint32_t mid = l + (h - l) / 2;
    if (int64_t err = dir_entry(b, mid, &d)) return err;
    int c = compare(name, len, d);
    if (c == 0) {
      *nid = d.nid;
      return 0;
    }
    if (c > 0)
      l = mid + 1;
    else
      h = mid;
  }
  return -ENOENT;
}

int64_t readdir(const Inode& dir, uint64_t* pos, Dirent* out) {
  if ((dir.mode & kIfmt) != kIfDir) return -ENOTDIR;
  // At most two passes: a cursor past a block's last entry moves to the next block, whose
  // entry 0 always exists.
  for (int pass = 0; pass < 2; pass++) {
    if (*pos >= dir.size) return 0;
    uint64_t blk = *pos / kBlock;
    uint64_t idx = (*pos % kBlock + kDirentSize - 1) / kDirentSize;  // round a foreign cursor up
    DirBlock b;
    if (int64_t err = dir_block(dir, blk, &b)) return err;
    if (idx >= b.count) {
      *pos = (blk + 1) * kBlock;
      continue;
    }
    if (int64_t err = dir_entry(b, uint32_t(idx), out)) return err;
    *pos = idx + 1 < b.count ? blk * kBlock + (idx + 1) * kDirentSize : (blk + 1) * kBlock;
    return 1;
  }
  return -EIO;  // unreachable: pass 1 starts at entry 0 of a valid block
}

int64_t read(const Inode& ino, uint64_t off, void* dst, uint64_t n) {
  if (!has_data(ino.mode)) return -EIO;
  if (off >= ino.size) return 0;
  n = min64(n, ino.size - off);
  auto* out = static_cast<uint8_t*>(dst);
  uint64_t done = 0;
  // At most two spans: the blocks at data_blkaddr, then the inline tail.
  for (int span = 0; span < 2 && done < n; span++) {
    uint64_t img_off, len;
    if (!locate(ino, off + done, &img_off, &len)) return -EIO;
    uint64_t take = min64(len, n - done);
    __builtin_memcpy(out + done, g.base + img_off, take);
    done += take;
  }
  return done == n ? int64_t(n) : -EIO;
}

int64_t page_offset(const Inode& ino, uint64_t off) {
  if (!has_data(ino.mode) || off % kBlock != 0 || off >= ino.size) return -1;
  if (ino.layout != kFlatPlain && ino.layout != kFlatInline) return -1;
  if (off / kBlock >= full_blocks(ino) || ino.data_blkaddr > g.size / kBlock) return -1;
  uint64_t img_off = ino.data_blkaddr * kBlock + off;
  return inside(g, img_off, kBlock) ? int64_t(img_off) : -1;
}

int64_t readlink(const Inode& ino, char* buf, uint64_t n) {
  if ((ino.mode & kIfmt) != kIfLnk) return -EINVAL;
  return read(ino, 0, buf, n);
}

}  // namespace k::erofs
