// Guest-physical page allocator: a bump pointer over never-used (hence zero) memory plus a free
// list of recycled pages, which are zeroed when handed out again. Single vCPU: no locking.
#pragma once

#include <stdint.h>

namespace k::pmm {

/// Takes ownership of guest-physical [start, end) (page-aligned; the VMM guarantees it is zero).
void init(uint64_t start, uint64_t end);
/// A zeroed 4 KiB page's guest-physical address, or 0 when guest memory is exhausted.
uint64_t alloc();
/// Returns a page from alloc(); pages below the managed range (the program image) are ignored.
void free(uint64_t gpa);
/// Pages currently handed out.
uint64_t used();

}  // namespace k::pmm
