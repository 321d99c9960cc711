// libFuzzer target for the pack reader (snapshot/pack.cc): the input is a whole pack file,
// read through a memfd with the store's own io_uring path. Reading the header, index and
// footer must never crash or over-allocate; for a pack whose index validates, every frame is
// checked and decompressed as a clone's load would (errors, never a crash). Built and run by
// fuzz/run.sh.
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "common/fd.h"
#include "snapshot/format.h"
#include "snapshot/pack.h"
#include "snapshot/uring_io.h"

using namespace vmfork;
using namespace vmfork::snapshot;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static UringIo* io = [] {
    auto r = UringIo::create(8);
    if (!r.ok()) std::abort();
    return new UringIo(std::move(r).value());
  }();
  static FrameCodec* codec = new FrameCodec();
  static int fd = memfd_create("pack_fuzz", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, 0) != 0) std::abort();
  size_t off = 0;
  while (off < size) {
    ssize_t n = pwrite(fd, data + off, size - off, off_t(off));
    if (n <= 0) std::abort();
    off += size_t(n);
  }
  // The id a pack file name would give: the header must carry it.
  auto index = read_pack_index(*io, fd, "fuzz.vfp", 1, size);
  if (!index.ok()) return 0;
  std::vector<uint8_t> pages;
  for (uint32_t f = 0; f < index->frames.size() && f < 16; f++) {
    const FrameInfo& info = index->frames[f];
    if (info.offset + info.compressed_bytes > size) std::abort();  // validated by the reader
    pages.assign(size_t(info.pages) * kPageBytes, 0);
    std::span<const uint8_t> compressed(data + info.offset, info.compressed_bytes);
    if (!codec->decompress(compressed, info, f, "fuzz.vfp", pages).ok()) continue;
    auto keys = index->frame_keys(f);
    for (uint32_t s = 0; s < info.pages; s++)
      (void)check_page(std::span<const uint8_t>(pages).subspan(size_t(s) * kPageBytes, kPageBytes),
                       keys[s], f, s, info, "fuzz.vfp");
  }
  return 0;
}
