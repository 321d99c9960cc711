// Guest-physical memory (see guest_memory.h).
#include "vmm/guest_memory.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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
  Fd own(fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!own.valid()) {
    munmap(p, bytes);
    munmap(f, bytes);
    return errno_error("fcntl F_DUPFD_CLOEXEC of the template memory fd");
  }
  return GuestMemory(static_cast<uint8_t*>(p), bytes, static_cast<const uint8_t*>(f), std::move(own));
}

Status GuestMemory::discard_private() {
  VF_TRY(drop_overlay());
  if (madvise(base_, size_, MADV_DONTNEED) < 0) return errno_error("madvise MADV_DONTNEED of guest memory");
  return {};
}

Status GuestMemory::overlay(uint64_t gpa, int fd, uint64_t bytes) {
  if (!file_fd_.valid()) return plain_error("overlay: guest memory is not a file's private mapping");
  if (overlay_bytes_) return plain_error("overlay: guest memory already has one");
  if (bytes == 0 || gpa % kPage || bytes % kPage || !contains(gpa, bytes))
    return plain_error("overlay: guest-physical range " + std::to_string(gpa) + "+" + std::to_string(bytes) +
                       " is not whole pages inside guest memory");
  // Recorded first: a failed MAP_FIXED may already have unmapped the range (mmap(2)), and
  // drop_overlay must then still put the template's bytes back.
  overlay_gpa_ = gpa;
  overlay_bytes_ = bytes;
  void* p = mmap(base_ + gpa, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) return errno_error("mmap MAP_FIXED of a " + std::to_string(bytes) + "-byte overlay");
  return {};
}

Status GuestMemory::drop_overlay() {
  if (!overlay_bytes_) return {};
  void* p = mmap(base_ + overlay_gpa_, overlay_bytes_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED, file_fd_.get(), off_t(overlay_gpa_));
  if (p == MAP_FAILED) return errno_error("mmap MAP_FIXED of template memory over the overlay");
  overlay_bytes_ = 0;
  return {};
}

namespace {

// PAGEMAP_SCAN (Linux 6.7+, Documentation/admin-guide/mm/pagemap.rst "PAGEMAP_SCAN", ioctl_pagemap_scan(2)):
// the kernel walks the page tables and returns only runs of pages in the asked categories, so
// holes and unpopulated page tables cost nothing. Debian 12's headers predate it: the UAPI
// layout from include/uapi/linux/fs.h.
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
struct PageRegion {
  uint64_t start, end, categories;
};
constexpr uint64_t kPageIsFile = 1u << 2, kPageIsPresent = 1u << 3, kPageIsSwapped = 1u << 4;

// 0: not tried yet, 1: PAGEMAP_SCAN works, 2: this kernel lacks it (ENOTTY/EINVAL): pread.
std::atomic<int> pagemap_scan_state{0};

}  // namespace

unsigned long pagemap_scan_ioctl() { return _IOWR('f', 16, PmScanArg); }

template <typename Fn>
Status GuestMemory::for_each_private_page(Fn&& fn) const {
  const int fd = pagemap_fd();
  if (fd < 0) return plain_error("open /proc/self/pagemap failed when the first guest memory was mapped");
  const uint64_t base = reinterpret_cast<uintptr_t>(base_);
  if (pagemap_scan_state.load(std::memory_order_relaxed) != 2) {
    // Private pages: present or swapped (anyof), and not file pages (mask + inverted).
    constexpr uint64_t kRuns = 512;
    PageRegion runs[kRuns];
    PmScanArg arg{};
    arg.size = sizeof arg;
    arg.start = base;
    arg.end = base + size_;
    arg.vec = reinterpret_cast<uintptr_t>(runs);
    arg.vec_len = kRuns;
    arg.category_inverted = kPageIsFile;
    arg.category_mask = kPageIsFile;
    arg.category_anyof_mask = kPageIsPresent | kPageIsSwapped;
    arg.return_mask = kPageIsPresent | kPageIsSwapped;
    for (;;) {
      const int n = ioctl(fd, pagemap_scan_ioctl(), &arg);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == ENOTTY || errno == EINVAL) && pagemap_scan_state.load() == 0) {
        pagemap_scan_state.store(2);
        break;  // an older kernel: read the entries below
      }
      if (n < 0) return errno_error("ioctl PAGEMAP_SCAN of /proc/self/pagemap");
      pagemap_scan_state.store(1, std::memory_order_relaxed);
      for (int r = 0; r < n; r++)
        for (uint64_t a = runs[r].start; a < runs[r].end; a += kPage) fn((a - base) / kPage);
      if (arg.walk_end >= arg.end) return {};
      arg.start = arg.walk_end;  // the vector filled up: go on from where the walk stopped
    }
  }
  constexpr uint64_t kBatch = 8192;  // 64 KiB of entries: 32 MiB of guest memory per read
  uint64_t entries[kBatch];
  const uint64_t first = base / kPage, pages = size_ / kPage;
  for (uint64_t done = 0; done < pages;) {
    const size_t want = size_t(std::min(kBatch, pages - done));
    ssize_t n = pread(fd, entries, want * 8, off_t((first + done) * 8));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || n % 8) return errno_error("read /proc/self/pagemap");
    for (uint64_t i = 0; i < uint64_t(n) / 8; i++)
      if (is_private(entries[i])) fn(done + i);
    done += uint64_t(n) / 8;
  }
  return {};
}

Result<uint64_t> GuestMemory::private_resident_pages() const {
  uint64_t count = 0;
  VF_TRY(for_each_private_page([&](uint64_t) { count++; }));
  return count;
}

Result<GuestMemory::CopyBack> GuestMemory::copy_back_changed(uint64_t* listed, uint64_t cap,
                                                             ClassifyFn classify, const void* ctx) {
  if (!file_) return plain_error("copy_back_changed: guest memory is not a file's private mapping");
  VF_TRY(drop_overlay());
  CopyBack out;
  VF_TRY(for_each_private_page([&](uint64_t page) {
    out.private_pages++;
    const uint64_t at = page * kPage;
    if (std::memcmp(base_ + at, file_ + at, kPage) == 0) return;
    const PageChange what = classify(at, base_ + at, file_ + at, ctx);
    std::memcpy(base_ + at, file_ + at, kPage);
    out.changed++;
    if (what == PageChange::kQuiet) return;
    out.critical |= what == PageChange::kCritical;
    if (out.listed < cap) listed[out.listed] = at;
    out.listed++;
  }));
  return out;
}

GuestMemory::GuestMemory(GuestMemory&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)),
      file_(std::exchange(o.file_, nullptr)), file_fd_(std::move(o.file_fd_)),
      overlay_gpa_(std::exchange(o.overlay_gpa_, 0)), overlay_bytes_(std::exchange(o.overlay_bytes_, 0)) {}

GuestMemory& GuestMemory::operator=(GuestMemory&& o) noexcept {
  if (this != &o) {
    if (base_) munmap(base_, size_);
    if (file_) munmap(const_cast<uint8_t*>(file_), size_);
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    file_ = std::exchange(o.file_, nullptr);
    file_fd_ = std::move(o.file_fd_);
    overlay_gpa_ = std::exchange(o.overlay_gpa_, 0);
    overlay_bytes_ = std::exchange(o.overlay_bytes_, 0);
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
