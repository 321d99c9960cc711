// Guest-physical page allocator. 4 KiB pages come from a bump pointer rising from the bottom of
// free memory, 2 MiB pages from one falling from the top; both hand out never-used (hence zero)
// memory first, then recycled pages from free lists, zeroed when handed out again.
// Single vCPU: no locking.
#pragma once

#include <stdint.h>

namespace k::pmm {

inline constexpr uint64_t kHugePage = 2ull << 20;
/// v rounded up to a multiple of kHugePage.
inline uint64_t huge_up(uint64_t v) { return (v + kHugePage - 1) & ~(kHugePage - 1); }

/// Takes ownership of guest-physical [start, end) (the VMM guarantees it is zero).
void init(uint64_t start, uint64_t end);
/// A zeroed 4 KiB page's guest-physical address, or 0 when guest memory is exhausted.
uint64_t alloc();
/// A zeroed 4 KiB page that is likely not backed by the host yet (known-zero or fresh memory,
/// else any): for large mappings a job touches sparsely (stacks), so that alloc() keeps the
/// host-backed pages for what is written at once. 0 when guest memory is exhausted.
uint64_t alloc_cold();
/// A zeroed 4 KiB page at an odd frame (GPA bit 12 set), for a PML4 (PVM runs native mode only
/// with such a CR3, docs/architecture.md); 0 when memory ran out.
uint64_t alloc_odd();
/// A zeroed, 2 MiB-aligned 2 MiB page, or 0 if no such chunk is left (callers fall back to 4 KiB).
uint64_t alloc_huge();
/// Returns a page from alloc(); pages outside the managed range (the program image) are ignored.
void free(uint64_t gpa);
/// Returns a page that is still all zero (a job's page whose D bit stayed clear): alloc() hands
/// it out again without zeroing 4 KiB. Pages outside the managed range are ignored.
void free_clean(uint64_t gpa);
/// Returns a chunk from alloc_huge().
void free_huge(uint64_t gpa);
/// 4 KiB pages currently handed out (a 2 MiB page counts 512).
uint64_t used();

}  // namespace k::pmm
