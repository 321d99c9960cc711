// Guest-physical page allocator (see pmm.h).
#include "mm/pmm.h"

#include "kernel.h"

namespace k::pmm {
namespace {
uint64_t g_start, g_next, g_huge_top, g_end;
uint64_t g_free_head;       // gpa of the first free 4 KiB page; its first 8 bytes link the next
uint64_t g_clean_head;      // free 4 KiB pages known to be zero but for their link word
uint64_t g_free_huge_head;  // same for 2 MiB chunks
uint64_t g_used;

// Pops a recycled chunk of `bytes` off a free list and zeroes it.
uint64_t pop_zeroed(uint64_t* head, uint64_t bytes) {
  uint64_t pa = *head;
  *head = *phys<uint64_t>(pa);
  memset(phys(pa), 0, bytes);
  return pa;
}

void account(int64_t pages) {
  g_used += uint64_t(pages);
  if (g_used > chan->pages_peak) chan->pages_peak = g_used;
}
}  // namespace

void init(uint64_t start, uint64_t end) {
  g_start = g_next = page_up(start);
  g_end = page_down(end);
  g_huge_top = g_end & ~(kHugePage - 1);
  g_free_head = g_free_huge_head = g_clean_head = 0;
  g_used = 0;
}

uint64_t alloc() {
  uint64_t pa;
  if (g_clean_head) {  // zero already: clear only the link word
    pa = g_clean_head;
    g_clean_head = *phys<uint64_t>(pa);
    *phys<uint64_t>(pa) = 0;
  } else if (g_free_head) {
    pa = pop_zeroed(&g_free_head, kPage);
  } else if (g_next < g_huge_top) {
    pa = g_next;  // never touched since boot: already zero
    g_next += kPage;
  } else {
    return 0;
  }
  account(1);
  return pa;
}

uint64_t alloc_odd() {
  // Walk the free list (bounded) for an odd frame and unlink it.
  uint64_t* link = &g_free_head;
  for (int i = 0; i < 4096 && *link; i++) {
    uint64_t pa = *link;
    if (pa & kPage) {
      *link = *phys<uint64_t>(pa);
      memset(phys(pa), 0, kPage);
      account(1);
      return pa;
    }
    link = phys<uint64_t>(pa);
  }
  // Else from never-used memory: an even frame there goes to the free list for others.
  if (g_next + 2 * kPage > g_huge_top) return 0;
  if (!(g_next & kPage)) {
    uint64_t even = g_next;
    g_next += kPage;
    *phys<uint64_t>(even) = g_free_head;
    g_free_head = even;
  }
  uint64_t pa = g_next;
  g_next += kPage;
  account(1);
  return pa;
}

uint64_t alloc_huge() {
  uint64_t pa;
  if (g_free_huge_head) {
    pa = pop_zeroed(&g_free_huge_head, kHugePage);
  } else if (g_huge_top >= g_next + kHugePage) {
    g_huge_top -= kHugePage;
    pa = g_huge_top;
  } else {
    return 0;
  }
  account(512);
  return pa;
}

void free(uint64_t pa) {
  if (pa < g_start || pa >= g_end) return;
  *phys<uint64_t>(pa) = g_free_head;
  g_free_head = pa;
  g_used--;
}

void free_clean(uint64_t pa) {
  if (pa < g_start || pa >= g_end) return;
  *phys<uint64_t>(pa) = g_clean_head;
  g_clean_head = pa;
  g_used--;
}

void free_huge(uint64_t pa) {
  if (pa < g_start || pa >= g_end) return;
  *phys<uint64_t>(pa) = g_free_huge_head;
  g_free_huge_head = pa;
  g_used -= 512;
}

uint64_t used() { return g_used; }

}  // namespace k::pmm
