// Guest-physical page allocator (see pmm.h).
#include "mm/pmm.h"

#include "kernel.h"

namespace k::pmm {
namespace {
uint64_t g_start, g_next, g_huge_top, g_end;
uint64_t g_free_head;       // gpa of the first free 4 KiB page; its first 8 bytes link the next
// Free 4 KiB pages known to be zero, kept as addresses in chunk pages so that freeing them does
// not write into them: the host's first touch of a guest page costs 40-100 us on PVM, and an
// exec frees an 8 MiB stack of which the job touched a few pages.
struct CleanChunk {
  uint64_t next;  // gpa of the next chunk
  uint64_t n;     // addresses held
  uint64_t pa[510];
};
static_assert(sizeof(CleanChunk) == 4096, "a chunk is one page");
uint64_t g_clean_chunk;     // gpa of the top chunk (itself a free page, not zero)
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
  g_free_head = g_free_huge_head = g_clean_chunk = 0;
  g_used = 0;
}

// Pops a known-zero page off the clean chunks (0 if none).
uint64_t pop_clean() {
  if (!g_clean_chunk) return 0;
  auto* c = phys<CleanChunk>(g_clean_chunk);
  if (c->n) return c->pa[--c->n];  // zero already, and not touched by the free
  uint64_t pa = g_clean_chunk;     // the empty chunk page itself
  g_clean_chunk = c->next;
  memset(c, 0, kPage);
  return pa;
}

uint64_t alloc() {
  // Pages the host already backs first (recycled: a 4 KiB memset costs far less than the
  // host's first touch of a page, 30-100 us on PVM), then known-zero ones, then fresh memory.
  uint64_t pa;
  if (g_free_head) pa = pop_zeroed(&g_free_head, kPage);
  else if ((pa = pop_clean())) {
  } else if (g_next < g_huge_top) {
    pa = g_next;  // never touched since boot: already zero
    g_next += kPage;
  } else {
    return 0;
  }
  account(1);
  return pa;
}

uint64_t alloc_cold() {
  uint64_t pa = pop_clean();
  if (!pa && g_next < g_huge_top) {
    pa = g_next;
    g_next += kPage;
  }
  if (!pa) return alloc();
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
  g_used--;
  if (g_clean_chunk) {
    auto* c = phys<CleanChunk>(g_clean_chunk);
    if (c->n < 510) {
      c->pa[c->n++] = pa;
      return;
    }
  }
  auto* c = phys<CleanChunk>(pa);  // this page becomes the new chunk (no longer zero)
  c->next = g_clean_chunk;
  c->n = 0;
  g_clean_chunk = pa;
}

void free_huge(uint64_t pa) {
  if (pa < g_start || pa >= g_end) return;
  *phys<uint64_t>(pa) = g_free_huge_head;
  g_free_huge_head = pa;
  g_used -= 512;
}

uint64_t used() { return g_used; }

}  // namespace k::pmm
