// A root file system image mapped for guests: the read-only EROFS file (docs/rootfs.md) mapped
// once per process with MAP_SHARED | PROT_READ, so every VM's read-only memslot at
// abi::kRootfsGpa points at the same page-cache pages: one copy in host memory, never one per
// clone. Thread-safety: immutable after open(); share it between machines with shared_ptr.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/fd.h"
#include "common/status.h"

namespace vmfork::vmm {

class RootfsImage {
 public:
  /// Opens and maps the image file at `path`. `expected_bytes` (when non-zero) must equal its
  /// size. Errors: open/fstat/mmap, not a regular file, empty, larger than abi::kRootfsMaxBytes.
  static Result<std::shared_ptr<const RootfsImage>> open(const std::string& path, uint64_t expected_bytes = 0);
  ~RootfsImage();
  RootfsImage(const RootfsImage&) = delete;
  RootfsImage& operator=(const RootfsImage&) = delete;

  const uint8_t* host() const { return base_; }
  /// The file's size in bytes.
  uint64_t bytes() const { return bytes_; }
  /// The memslot's size: bytes() rounded up to 4 KiB (the tail of the last page reads as zero).
  uint64_t slot_bytes() const { return (bytes_ + 4095) & ~uint64_t(4095); }
  const std::string& path() const { return path_; }

 private:
  RootfsImage(std::string path, uint8_t* base, uint64_t bytes) : path_(std::move(path)), base_(base), bytes_(bytes) {}
  std::string path_;
  uint8_t* base_;
  uint64_t bytes_;
};

}  // namespace vmfork::vmm
