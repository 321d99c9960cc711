// Root file system image mapping (see rootfs_image.h).
#include "vmm/rootfs_image.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "guest-kernel/abi/vmfork_abi.h"

namespace vmfork::vmm {

Result<std::shared_ptr<const RootfsImage>> RootfsImage::open(const std::string& path, uint64_t expected_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd.valid()) return errno_error("open rootfs image " + path);
  struct stat st;
  if (fstat(fd.get(), &st) < 0) return errno_error("fstat " + path);
  if (!S_ISREG(st.st_mode)) return plain_error(path + ": rootfs image is not a regular file");
  uint64_t bytes = uint64_t(st.st_size);
  if (bytes == 0 || bytes > abi::kRootfsMaxBytes)
    return plain_error(path + ": rootfs image of " + std::to_string(bytes) + " bytes is empty or above the " +
                       std::to_string(abi::kRootfsMaxBytes >> 30) + " GiB limit");
  if (expected_bytes && bytes != expected_bytes)
    return plain_error(path + ": rootfs image is " + std::to_string(bytes) + " bytes, expected " +
                       std::to_string(expected_bytes));
  // MAP_SHARED of a file opened read-only: KVM reads the page cache itself, shared by all VMs.
  void* p = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return errno_error("mmap rootfs image " + path);
  return std::shared_ptr<const RootfsImage>(new RootfsImage(path, static_cast<uint8_t*>(p), bytes));
}

RootfsImage::~RootfsImage() { munmap(base_, bytes_); }

}  // namespace vmfork::vmm
