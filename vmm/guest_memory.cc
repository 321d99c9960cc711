// Guest-physical memory (see guest_memory.h).
#include "vmm/guest_memory.h"

#include <sys/mman.h>

#include <string>
#include <utility>

namespace vmfork::vmm {

Result<GuestMemory> GuestMemory::create_anonymous(uint64_t bytes) {
  if (bytes == 0 || bytes % (2u << 20)) return plain_error("guest memory must be a multiple of 2 MiB");
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return errno_error("mmap of " + std::to_string(bytes >> 20) + " MiB guest memory");
  return GuestMemory(static_cast<uint8_t*>(p), bytes);
}

Result<GuestMemory> GuestMemory::map_private(int fd, uint64_t bytes) {
  if (bytes == 0 || bytes % (2u << 20)) return plain_error("guest memory must be a multiple of 2 MiB");
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
  if (p == MAP_FAILED) return errno_error("mmap MAP_PRIVATE of " + std::to_string(bytes >> 20) + " MiB template memory");
  return GuestMemory(static_cast<uint8_t*>(p), bytes);
}

Status GuestMemory::discard_private() {
  if (madvise(base_, size_, MADV_DONTNEED) < 0) return errno_error("madvise MADV_DONTNEED of guest memory");
  return {};
}

GuestMemory::GuestMemory(GuestMemory&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)) {}

GuestMemory& GuestMemory::operator=(GuestMemory&& o) noexcept {
  if (this != &o) {
    if (base_) munmap(base_, size_);
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

GuestMemory::~GuestMemory() {
  if (base_) munmap(base_, size_);
}

Result<std::span<uint8_t>> GuestMemory::span(uint64_t gpa, uint64_t len) const {
  if (!contains(gpa, len))
    return plain_error("guest-physical range " + std::to_string(gpa) + "+" + std::to_string(len) +
                       " outside " + std::to_string(size_) + " bytes of guest memory");
  return std::span<uint8_t>(base_ + gpa, len);
}

Status GuestMemory::write(uint64_t gpa, std::span<const uint8_t> src) {
  VF_ASSIGN(auto dst, span(gpa, src.size()));
  if (!src.empty()) std::memcpy(dst.data(), src.data(), src.size());
  return {};
}

}  // namespace vmfork::vmm
