// libFuzzer target for the guest kernel's EROFS reader (guest-kernel/fs/erofs.cc): the input is
// an image; it is mounted and everything reachable is walked. Run by fuzz/run.sh (CI smoke) and
// fuzz/build.sh (longer runs with fresh mkfs.erofs seeds).
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <memory>
#include <set>
#include <vector>

#include "fs/erofs.h"

namespace erofs = k::erofs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes, so ASan catches any read past the image.
  std::unique_ptr<uint8_t[]> img(new uint8_t[size ? size : 1]);
  if (size) memcpy(img.get(), data, size);
  if (erofs::mount(img.get(), size) != 0) return 0;
  std::vector<uint64_t> todo = {erofs::root_nid()};
  std::set<uint64_t> seen;
  static uint8_t buf[16384];
  while (!todo.empty() && seen.size() < 512) {
    uint64_t nid = todo.back();
    todo.pop_back();
    if (!seen.insert(nid).second) continue;
    erofs::Inode ino;
    if (erofs::get_inode(nid, &ino) != 0) continue;
    uint64_t pos = 0, found;
    erofs::Dirent e;
    for (int i = 0; i < 4096 && erofs::readdir(ino, &pos, &e) == 1; i++) {
      if (e.name_len < 1 || e.name_len > 255 || reinterpret_cast<const uint8_t*>(e.name) < img.get() ||
          reinterpret_cast<const uint8_t*>(e.name) + e.name_len > img.get() + size)
        __builtin_trap();
      erofs::lookup(ino, e.name, e.name_len, &found);
      todo.push_back(e.nid);
    }
    erofs::lookup(ino, "a", 1, &found);
    for (uint64_t off = 0; off < ino.size && off <= size; off += sizeof buf)
      if (erofs::read(ino, off, buf, sizeof buf) <= 0) break;
    for (uint64_t off = 0; off < ino.size && off <= size; off += erofs::kBlock) {
      int64_t at = erofs::page_offset(ino, off);
      if (at >= 0 && (uint64_t(at) + erofs::kBlock > size || at % erofs::kBlock)) __builtin_trap();
    }
    erofs::readlink(ino, reinterpret_cast<char*>(buf), sizeof buf);
  }
  return 0;
}
