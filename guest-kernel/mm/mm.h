// The job's address space: 4 KiB user page tables in the lower half and a list of VMAs (regions
// with protections). Memory is mapped eagerly: in PVM native mode a fault in the job pushes its
// frame onto the job's own stack (pvm-host.md, "red-zone hazard"), so the kernel never relies on
// demand paging and any fault ends the job. Single vCPU: no locking.
#pragma once

#include <stdint.h>

namespace k::mm {

inline constexpr uint32_t kRead = 1, kWrite = 2, kExec = 4;  // PROT_* values
inline constexpr uint64_t kUserMin = 0x10000;
inline constexpr uint64_t kUserMax = 0x7fffffe00000ull;   // top of the job's stack (2 MiB-aligned)
inline constexpr uint64_t kMmapTop = 0x7f0000000000ull;   // mmap searches down from here

/// Maps [va, va+len) (page-aligned) to fresh zero pages with `prot` (no backing if prot == 0).
/// Returns 0, -ENOMEM when guest memory ran out (nothing stays mapped), -EINVAL on a bad range.
int64_t map_anon(uint64_t va, uint64_t len, uint32_t prot);
/// Maps the page at `va` to guest-physical `pa` with `prot`. `owned` pages return to the page
/// allocator on unmap; others (the program image) do not. If `va` is already mapped, its page
/// stays and gains `prot`. Returns false when page-table memory ran out.
bool map_page(uint64_t va, uint64_t pa, uint32_t prot, bool owned);
/// Records [va, va+len) as a VMA with `prot` without touching page tables (after map_image_page).
void note_vma(uint64_t va, uint64_t len, uint32_t prot);
/// Unmaps [va, va+len), freeing owned pages. Never fails.
void unmap(uint64_t va, uint64_t len);
/// Changes protection of mapped pages in [va, va+len); backs pages that become accessible.
int64_t protect(uint64_t va, uint64_t len, uint32_t prot);
/// Moves the pages of [from, from+len) to [to, to+len) without copying; `to` must be free.
void move(uint64_t from, uint64_t to, uint64_t len);
/// Highest free range of `len` bytes below kMmapTop, or 0. Ranges of 2 MiB or more start
/// 2 MiB-aligned so that map_anon can use 2 MiB pages for them.
uint64_t find_free(uint64_t len);
/// True if no VMA overlaps [va, va+len).
bool is_free(uint64_t va, uint64_t len);
/// True if [va, va+len) is mapped in the job with read (and, if `write`, write) access.
bool user_ok(uint64_t va, uint64_t len, bool write);
/// Protection of the VMA containing va, or -1.
int64_t prot_at(uint64_t va);
/// Guest-physical address behind user va, or 0 if not present.
uint64_t translate(uint64_t va);
/// Guest-physical address behind user va if it is a page the job owns (not one mapped in place
/// from a file or the program image), else 0.
uint64_t owned_page(uint64_t va);
/// The job's VMAs in address order, for /proc/self/maps: count, then [start, end) and prot of #i.
int vma_count();
void vma_at(int i, uint64_t* start, uint64_t* end, uint32_t* prot);

}  // namespace k::mm

// TEMPORARY (replaced by the per-process address space work): one address space.
namespace k::mm {
struct Space;
Space* current_space();
Space* space_fork(Space* src);
void space_activate(Space* s);
void space_get(Space* s);
void space_put(Space* s);
}  // namespace k::mm
namespace k::mm {
Space* space_create();
}
