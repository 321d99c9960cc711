// Guest-physical memory: one host mapping backing memslot 0 at GPA 0, with bounds-checked
// access. Every pointer into guest memory comes from span(), which checks [gpa, gpa+len) lies
// inside the mapping, so a hostile guest value can never reach outside it.
// Thread-safety: the mapping is fixed after creation; contents follow the vCPU's rules.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <utility>

#include "common/fd.h"
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
  /// An overlay is dropped first (drop_overlay). The memslot stays valid (KVM re-faults the
  /// pages). Errors: the overlay's mmap, madvise failed.
  Status discard_private();

  /// Shows `bytes` (a multiple of 4 KiB) of file `fd`, from its offset 0, at guest-physical
  /// [gpa, gpa+bytes) of this map_private() mapping, copy-on-write: mmap(2) MAP_FIXED |
  /// MAP_PRIVATE over that part of the mapping. Clones overlaying the same file share its pages
  /// (page-cache or shmem pages, not counted by private_resident_pages); a guest write makes
  /// a private copy and never reaches `fd`. The host range of memslot 0 stays the same: KVM
  /// learns of the new pages through its MMU notifier and faults them in on the next access.
  /// One overlay at a time; it lasts until drop_overlay (which copy_back_changed and
  /// discard_private call first), so a reset clone shows the template's bytes there again.
  /// `fd` may be closed once this returns (the mapping holds the file). Errors: not a
  /// map_private() mapping, an overlay already present, the range unaligned or outside guest
  /// memory, mmap.
  Status overlay(uint64_t gpa, int fd, uint64_t bytes);

  /// Maps the template file's own bytes back over the overlay's range (mmap(2) MAP_FIXED |
  /// MAP_PRIVATE of the file at offset gpa), dropping the overlay and any private copies made
  /// in it; nothing when there is no overlay. Errors: mmap (the range is then in an unknown
  /// state: the caller must destroy the clone).
  Status drop_overlay();

  /// Pages (4 KiB) of this mapping the host now backs privately: present or swapped and not
  /// file or shared pages, per /proc/self/pagemap (Documentation/admin-guide/mm/pagemap.rst:
  /// bit 63 present, 62 swapped, 61 file-page or shared-anon). For a clone these are the pages
  /// the guest wrote since it was restored (copy-on-write copies; a reset that copies pages back
  /// keeps them, so a reused clone also counts what earlier jobs wrote); for an anonymous
  /// mapping, every page the guest touched. Host-measured, so the guest cannot shrink it: any page the
  /// guest wrote is counted. Costs one PAGEMAP_SCAN ioctl (Linux 6.7+), which skips unmapped
  /// ranges in the kernel; older kernels: one pread of 2 bytes per KiB of guest memory.
  /// Errors: open or read of /proc/self/pagemap failed.
  Result<uint64_t> private_resident_pages() const;

  /// What a changed page means for the translations the host caches from the guest's page
  /// tables (copy_back_changed asks the caller about each one before copying it back).
  enum class PageChange {
    kList,      // list it: it may be a page table whose translations the next job must not keep
    kQuiet,     // copy it back unlisted: whatever it is, no cached translation depends on the change
    kCritical,  // the caller cannot reset it in place (CopyBack::critical)
  };
  /// `now` and `file`: the page's 4 KiB as the guest left them and as the file holds them.
  using ClassifyFn = PageChange (*)(uint64_t gpa, const uint8_t* now, const uint8_t* file, const void* ctx);
  struct CopyBack {
    uint64_t changed = 0;        // pages whose bytes differed, now the file's again
    uint64_t listed = 0;         // of those, classified kList or kCritical (may exceed `cap`)
    uint64_t private_pages = 0;  // private pages after the copy (changed or not)
    bool critical = false;       // some changed page was classified kCritical
  };

  /// Returns every page of a map_private() mapping whose bytes differ from the file's to the
  /// file's bytes by copying them back in place, so the pages stay mapped: the next touch costs
  /// no host page fault. Only private (copy-on-write copied) pages can differ; they are found
  /// with /proc/self/pagemap's PAGEMAP_SCAN ioctl (present or swapped, not PAGE_IS_FILE), or on
  /// older kernels its entries (bit 63 present, bit 61 clear: an anonymous page;
  /// Documentation/admin-guide/mm/pagemap.rst). `classify(gpa, now, file, ctx)` is asked about
  /// each differing page before it is copied; the GPAs of pages it does not call kQuiet go to
  /// `listed[0..cap)` in ascending order (beyond `cap` they are counted, not written; every
  /// differing page is still copied back). The copies stay private. An overlay is dropped
  /// first (drop_overlay) and its range neither compared nor listed: overlay only memory the
  /// guest never uses as page tables (the job's program image).
  /// Errors: not a map_private() mapping, the overlay's mmap, open, PAGEMAP_SCAN or pread of pagemap.
  Result<CopyBack> copy_back_changed(uint64_t* listed, uint64_t cap, ClassifyFn classify, const void* ctx);

  GuestMemory(GuestMemory&& o) noexcept;
  GuestMemory& operator=(GuestMemory&& o) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  ~GuestMemory();

  uint8_t* host() const { return base_; }
  /// True for a map_private() mapping (copy_back_changed works), false for anonymous memory.
  bool is_file_mapping() const { return file_ != nullptr; }
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
  GuestMemory(uint8_t* base, uint64_t size, const uint8_t* file = nullptr, Fd file_fd = Fd())
      : base_(base), size_(size), file_(file), file_fd_(std::move(file_fd)) {}
  // Calls fn(page_index) for each private page of this mapping (is_private in the .cc), in
  // ascending order, found with the PAGEMAP_SCAN ioctl or, on kernels before 6.7, by reading
  // every /proc/self/pagemap entry. Errors: the pagemap could not be opened, read or scanned.
  template <typename Fn>
  Status for_each_private_page(Fn&& fn) const;

  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  const uint8_t* file_ = nullptr;  // read-only MAP_SHARED view of the file behind a map_private()
  Fd file_fd_;                     // that file (a dup), to map its bytes back over an overlay
  uint64_t overlay_gpa_ = 0, overlay_bytes_ = 0;  // the overlay's range; bytes 0: none
};

/// The PAGEMAP_SCAN ioctl request (_IOWR('f', 16, struct pm_scan_arg), include/uapi/linux/fs.h):
/// the job threads' seccomp filter (vmm/seccomp.h) allows it on them, since a job's end counts
/// its clone's private pages with it.
unsigned long pagemap_scan_ioctl();

}  // namespace vmfork::vmm
