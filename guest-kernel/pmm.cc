// Guest-physical page allocator (see pmm.h).
#include "pmm.h"

#include "kernel.h"

namespace k::pmm {
namespace {
uint64_t g_start, g_next, g_end;
uint64_t g_free_head;  // gpa of the first free page; its first 8 bytes link to the next
uint64_t g_used;
}  // namespace

void init(uint64_t start, uint64_t end) {
  g_start = g_next = page_up(start);
  g_end = page_down(end);
  g_free_head = 0;
  g_used = 0;
}

uint64_t alloc() {
  uint64_t pa;
  if (g_free_head) {
    pa = g_free_head;
    g_free_head = *phys<uint64_t>(pa);
    memset(phys(pa), 0, kPage);
  } else if (g_next < g_end) {
    pa = g_next;  // never touched since boot: already zero
    g_next += kPage;
  } else {
    return 0;
  }
  g_used++;
  if (g_used > chan->pages_peak) chan->pages_peak = g_used;
  return pa;
}

void free(uint64_t pa) {
  if (pa < g_start || pa >= g_end) return;
  *phys<uint64_t>(pa) = g_free_head;
  g_free_head = pa;
  g_used--;
}

uint64_t used() { return g_used; }

}  // namespace k::pmm
