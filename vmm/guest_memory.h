// Guest-physical memory: one host mapping backing memslot 0 at GPA 0, with bounds-checked
// access. Every pointer into guest memory comes from span(), which checks [gpa, gpa+len) lies
// inside the mapping, so a hostile guest value can never reach outside it.
// Thread-safety: the mapping is fixed after creation; contents follow the vCPU's rules.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

#include "common/status.h"

namespace vmfork::vmm {

class GuestMemory {
 public:
  /// Anonymous private memory of `bytes` (a multiple of 2 MiB), MAP_NORESERVE: pages cost host
  /// memory only once the guest touches them. Errors: mmap failed.
  static Result<GuestMemory> create_anonymous(uint64_t bytes);
  /// A copy-on-write view of `fd` (a file of `bytes`, a multiple of 2 MiB, holding a template's
  /// memory: the store's image opened read-only, or a sealed memfd): MAP_PRIVATE | MAP_NORESERVE, so clones mapping the same fd share every page until
  /// one writes it, and a write never reaches the file (mmap(2), MAP_PRIVATE). Errors: mmap.
  static Result<GuestMemory> map_private(int fd, uint64_t bytes);

  /// Drops every private page of this mapping (madvise(2) MADV_DONTNEED): a file-backed
  /// mapping shows the file's bytes again on the next access, an anonymous one reads zeros.
  /// The memslot stays valid (KVM re-faults the pages). Errors: madvise failed.
  Status discard_private();

  /// Pages (4 KiB) of this mapping the host now backs privately: present or swapped and not
  /// file or shared pages, per /proc/self/pagemap (Documentation/admin-guide/mm/pagemap.rst:
  /// bit 63 present, 62 swapped, 61 file-page or shared-anon). For a clone these are the pages
  /// the guest wrote since the last discard (copy-on-write copies); for an anonymous mapping,
  /// every page the guest touched. Host-measured, so the guest cannot shrink it: any page the
  /// guest wrote is counted. Costs one pread of 2 bytes per KiB of guest memory.
  /// Errors: open or read of /proc/self/pagemap failed.
  Result<uint64_t> private_resident_pages() const;

  GuestMemory(GuestMemory&& o) noexcept;
  GuestMemory& operator=(GuestMemory&& o) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  ~GuestMemory();

  uint8_t* host() const { return base_; }
  uint64_t size() const { return size_; }
  /// True if [gpa, gpa+len) is inside guest memory.
  bool contains(uint64_t gpa, uint64_t len) const {
    return gpa <= size_ && len <= size_ - gpa;
  }
  /// Bytes [gpa, gpa+len), or an error naming the range.
  Result<std::span<uint8_t>> span(uint64_t gpa, uint64_t len) const;
  /// Copies `src` to guest-physical `gpa`. Errors: out of range.
  Status write(uint64_t gpa, std::span<const uint8_t> src);
  /// Pointer to a T at gpa; the caller guarantees contains(gpa, sizeof(T)) (fixed ABI addresses).
  template <typename T>
  T* at(uint64_t gpa) const {
    return reinterpret_cast<T*>(base_ + gpa);
  }

 private:
  GuestMemory(uint8_t* base, uint64_t size) : base_(base), size_(size) {}
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace vmfork::vmm
