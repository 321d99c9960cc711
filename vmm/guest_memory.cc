// Guest-physical memory (see guest_memory.h).
#include "vmm/guest_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>


namespace vmfork::vmm {

namespace {

// /proc/self/pagemap, opened once per process. The first call comes from create_anonymous or
// map_private, on the thread that sets a VM up: a seccomp-confined job thread (vmm/seccomp.h)
// may not open files, yet reads the page map after its job (private_resident_pages).
int pagemap_fd() {
  static const int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  return fd;
}

constexpr uint64_t kPage = 4096;

// A page the host backs privately: present or swapped, and not a file page or shared
// (Documentation/admin-guide/mm/pagemap.rst: bits 63, 62, 61). In a MAP_PRIVATE mapping of a
// file these are the copy-on-write copies, the only pages whose bytes can differ from the file.
bool is_private(uint64_t entry) {
  constexpr uint64_t kPresent = 1ull << 63, kSwapped = 1ull << 62, kFileOrShared = 1ull << 61;
  return (entry & (kPresent | kSwapped)) && !(entry & kFileOrShared);
}

}  // namespace

Result<GuestMemory> GuestMemory::create_anonymous(uint64_t bytes) {
  if (bytes == 0 || bytes % (2u << 20)) return plain_error("guest memory must be a multiple of 2 MiB");
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return errno_error("mmap of " + std::to_string(bytes >> 20) + " MiB guest memory");
  pagemap_fd();
  return GuestMemory(static_cast<uint8_t*>(p), bytes);
}

Result<GuestMemory> GuestMemory::map_private(int fd, uint64_t bytes) {
  if (bytes == 0 || bytes % (2u << 20)) return plain_error("guest memory must be a multiple of 2 MiB");
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
  if (p == MAP_FAILED) return errno_error("mmap MAP_PRIVATE of " + std::to_string(bytes >> 20) + " MiB template memory");
  pagemap_fd();
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

template <typename Fn>
Status GuestMemory::scan_pagemap(Fn&& fn) const {
  const int fd = pagemap_fd();
  if (fd < 0) return plain_error("open /proc/self/pagemap failed when the first guest memory was mapped");
  constexpr uint64_t kBatch = 8192;  // 64 KiB of entries: 32 MiB of guest memory per read
  uint64_t entries[kBatch];
  const uint64_t first = reinterpret_cast<uintptr_t>(base_) / kPage, pages = size_ / kPage;
  for (uint64_t done = 0; done < pages;) {
    const size_t want = size_t(std::min(kBatch, pages - done));
    ssize_t n = pread(fd, entries, want * 8, off_t((first + done) * 8));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || n % 8) return errno_error("read /proc/self/pagemap");
    fn(done, entries, uint64_t(n) / 8);
    done += uint64_t(n) / 8;
  }
  return {};
}

Result<uint64_t> GuestMemory::private_resident_pages() const {
  uint64_t count = 0;
  VF_TRY(scan_pagemap([&](uint64_t, const uint64_t* e, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) count += is_private(e[i]);
  }));
  return count;
}

Result<GuestMemory::CopyBack> GuestMemory::copy_back_changed(uint64_t* changed, uint64_t cap,
                                                             CriticalFn is_critical, const void* ctx) {
  if (!file_) return plain_error("copy_back_changed: guest memory is not a file's private mapping");
  uint64_t copied = 0, priv = 0;
  bool critical = false;
  VF_TRY(scan_pagemap([&](uint64_t first, const uint64_t* e, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
      if (!is_private(e[i])) continue;
      priv++;
      const uint64_t at = (first + i) * kPage;
      if (std::memcmp(base_ + at, file_ + at, kPage) == 0) continue;
      if (!critical && is_critical) critical = is_critical(at, base_ + at, file_ + at, ctx);
      std::memcpy(base_ + at, file_ + at, kPage);
      if (copied < cap) changed[copied] = at;
      copied++;
    }
  }));
  return CopyBack{copied, priv, critical};
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
