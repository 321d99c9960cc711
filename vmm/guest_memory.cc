// Guest-physical memory (see guest_memory.h).
#include "vmm/guest_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

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
  void* f = mmap(nullptr, bytes, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (f == MAP_FAILED) {
    munmap(p, bytes);
    return errno_error("mmap MAP_SHARED of " + std::to_string(bytes >> 20) + " MiB template memory");
  }
  return GuestMemory(static_cast<uint8_t*>(p), bytes, static_cast<const uint8_t*>(f));
}

Status GuestMemory::discard_private() {
  if (madvise(base_, size_, MADV_DONTNEED) < 0) return errno_error("madvise MADV_DONTNEED of guest memory");
  return {};
}

Result<uint64_t> GuestMemory::copy_back_changed(uint64_t* changed, uint64_t cap) {
  if (!file_) return plain_error("copy_back_changed: guest memory is not a file's private mapping");
  static const int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap < 0) return errno_error("open /proc/self/pagemap");
  constexpr uint64_t kPage = 4096, kBatch = 4096;  // pages per pread: 32 KiB of entries
  constexpr uint64_t kPresent = 1ull << 63, kFileOrShared = 1ull << 61;
  uint64_t entries[kBatch];
  uint64_t copied = 0;
  const uint64_t pages = size_ / kPage;
  for (uint64_t first = 0; first < pages; first += kBatch) {
    const uint64_t n = std::min(kBatch, pages - first);
    const off_t off = off_t((reinterpret_cast<uintptr_t>(base_) / kPage + first) * sizeof(uint64_t));
    ssize_t got = pread(pagemap, entries, n * sizeof(uint64_t), off);
    if (got != ssize_t(n * sizeof(uint64_t))) return errno_error("pread /proc/self/pagemap");
    for (uint64_t i = 0; i < n; i++) {
      if ((entries[i] & (kPresent | kFileOrShared)) != kPresent) continue;
      const uint64_t at = (first + i) * kPage;
      if (std::memcmp(base_ + at, file_ + at, kPage) == 0) continue;
      std::memcpy(base_ + at, file_ + at, kPage);
      if (copied < cap) changed[copied] = at;
      copied++;
    }
  }
  return copied;
}

GuestMemory::GuestMemory(GuestMemory&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)),
      file_(std::exchange(o.file_, nullptr)) {}

GuestMemory& GuestMemory::operator=(GuestMemory&& o) noexcept {
  if (this != &o) {
    if (base_) munmap(base_, size_);
    if (file_) munmap(const_cast<uint8_t*>(file_), size_);
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    file_ = std::exchange(o.file_, nullptr);
  }
  return *this;
}

GuestMemory::~GuestMemory() {
  if (base_) munmap(base_, size_);
  if (file_) munmap(const_cast<uint8_t*>(file_), size_);
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
