// Address spaces: per-Space page tables and VMA lists, and the calls on the current one (see mm.h).
#include "mm/mm.h"

#include "arch/arch.h"
#include "linux_abi.h"
#include "kernel.h"
#include "mm/kmalloc.h"
#include "mm/pmm.h"

namespace k::mm {
namespace {

constexpr uint64_t kP = 1, kW = 2, kU = 4, kA = 0x20, kD = 0x40, kPs = 0x80;
constexpr uint64_t kBacked = 1ull << 9;  // software bit: page owned, currently PROT_NONE
constexpr uint64_t kImage = 1ull << 10;  // software bit: page belongs to the program image
constexpr uint64_t kAddrMask = 0x000ffffffffff000ull;
constexpr uint64_t kHuge = pmm::kHugePage;

struct Vma {
  uint64_t start, end;
  uint32_t prot;
};
// The VMA list lives in 4 KiB chunks (kpage_alloc) indexed through the Space: no allocation is
// larger than a page, and a process with a few VMAs costs one page, not the worst case.
constexpr int kVmasPerChunk = int(kPage / sizeof(Vma));
constexpr int kMaxChunks = (kMaxVmas + kVmasPerChunk - 1) / kVmasPerChunk;

}  // namespace

struct Space {
  uint64_t pml4;  // guest-physical address of the PML4
  int refs;
  int nvmas;      // VMAs in use, sorted by address, no two adjacent ones with equal prot
  int nchunks;    // chunks allocated: room for nchunks * kVmasPerChunk VMAs
  Vma* chunks[kMaxChunks];
};
static_assert(sizeof(Space) <= 2032, "Space must fit one kmalloc block (mm/kmalloc.h)");

namespace {

// The boot space's descriptor is static: it exists before the page allocator does.
Space g_boot_space{kPageTableGpa, 1, 0, 0, {}};
Space* g_cur = &g_boot_space;
Space* g_loaded = &g_boot_space;  // the space in CR3 (differs from g_cur while one is staged)

Vma& vma(Space* s, int i) { return s->chunks[i / kVmasPerChunk][i % kVmasPerChunk]; }
Vma& vma(int i) { return vma(g_cur, i); }

// Makes room for `n` VMAs in `s`. False if n > kMaxVmas or memory ran out.
bool reserve(Space* s, int n) {
  if (n > kMaxVmas) return false;
  while (s->nchunks * kVmasPerChunk < n) {
    auto* c = static_cast<Vma*>(kpage_alloc());
    if (!c) return false;
    s->chunks[s->nchunks++] = c;
  }
  return true;
}

uint64_t* table(uint64_t entry) { return phys<uint64_t>(entry & kAddrMask); }

// Pointer to the page-directory entry (level 2) for va, creating upper tables if `create`.
uint64_t* pde_for(uint64_t va, bool create) {
  uint64_t* t = phys<uint64_t>(g_cur->pml4);
  for (int shift = 39; shift > 21; shift -= 9) {
    uint64_t& e = t[(va >> shift) & 511];
    if (!(e & kP)) {
      if (!create) return nullptr;
      uint64_t pa = pmm::alloc();
      if (!pa) return nullptr;
      e = pa | kP | kW | kU;
    }
    t = table(e);
  }
  return &t[(va >> 21) & 511];
}

// Replaces a 2 MiB mapping by a page table of 512 4 KiB entries with the same flags. The new
// table is filled before it is linked: on PVM every write to a live page table traps (~8 us).
bool split(uint64_t* pde) {
  uint64_t pt = pmm::alloc();
  if (!pt) return false;
  uint64_t e = *pde, base = e & kAddrMask & ~(kHuge - 1);
  uint64_t flags = e & (kW | kU | kP | kA | kD | kBacked | kImage);
  auto* t = phys<uint64_t>(pt);
  for (uint64_t i = 0; i < 512; i++) t[i] = (base + i * kPage) | flags;
  *pde = pt | kP | kW | kU;
  return true;
}

// Pointer to the leaf entry mapping va: a PTE, or a PDE with PS set (*huge = true). With
// `create`, missing tables are made; with `split_huge`, a 2 MiB mapping is split first.
// nullptr if absent (or no memory for tables).
uint64_t* leaf_for(uint64_t va, bool create, bool split_huge, bool* huge) {
  *huge = false;
  uint64_t* pde = pde_for(va, create);
  if (!pde) return nullptr;
  if ((*pde & kPs) && (*pde & (kP | kBacked))) {
    if (!split_huge) {
      *huge = true;
      return pde;
    }
    if (!split(pde)) return nullptr;
  }
  if (!(*pde & kP)) {
    if (!create) return nullptr;
    uint64_t pa = pmm::alloc();
    if (!pa) return nullptr;
    *pde = pa | kP | kW | kU;
  }
  return &table(*pde)[(va >> 12) & 511];
}

uint64_t* pte_for(uint64_t va, bool create) {
  bool huge;
  return leaf_for(va, create, true, &huge);
}

uint64_t pte_flags(uint32_t prot) {
  if (!prot) return 0;
  return kP | kU | ((prot & kWrite) ? kW : 0);
}

// Frees the memory behind a leaf entry (owned pages only) and clears it.
// Frees the owned page behind a 4 KiB leaf. A page whose D bit is clear was never written since
// it was mapped zeroed (the kernel sets D when it fills one through the direct map, see
// map_page): it goes back as known-zero, so a later alloc() need not clear it. An exec maps an
// 8 MiB stack of which a job writes a few pages: this saves zeroing the rest each time.
void free_user_page(uint64_t e) {
  if (e & kD) pmm::free(e & kAddrMask);
  else pmm::free_clean(e & kAddrMask);
}

void release(uint64_t* leaf, bool huge) {
  uint64_t e = *leaf;
  if ((e & (kP | kBacked)) && !(e & kImage)) {
    if (huge) pmm::free_huge(e & kAddrMask & ~(kHuge - 1));
    else free_user_page(e);
  }
  *leaf = 0;
}

// Index of the first VMA of the current space that ends above va (nvmas if none).
int vma_after(uint64_t va) {
  int lo = 0, hi = g_cur->nvmas;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (vma(mid).end <= va) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Index of the VMA containing va, or -1.
int vma_find(uint64_t va) {
  int i = vma_after(va);
  return i < g_cur->nvmas && vma(i).start <= va ? i : -1;
}

// Sets [start, end) to `prot` in the current space's VMA list (remove = drop it), keeping it
// sorted and merging neighbours with equal protection. The VMAs overlapping the range are
// replaced in place by at most three (the part left of it, the range, the part right of it).
void vma_set(uint64_t start, uint64_t end, uint32_t prot, bool remove) {
  Space* s = g_cur;
  int first = vma_after(start), last = first;
  while (last < s->nvmas && vma(last).start < end) last++;
  Vma repl[3];
  int k = 0;
  if (first < last && vma(first).start < start) {
    repl[k++] = {vma(first).start, start, vma(first).prot};
  }
  if (!remove) repl[k++] = {start, end, prot};
  if (first < last && vma(last - 1).end > end) {
    repl[k++] = {end, vma(last - 1).end, vma(last - 1).prot};
  }
  // Merge within the replacement, then with the untouched neighbours on either side.
  int m = 0;
  for (int i = 0; i < k; i++) {
    bool joins = m && repl[m - 1].end == repl[i].start && repl[m - 1].prot == repl[i].prot;
    if (joins) repl[m - 1].end = repl[i].end;
    else repl[m++] = repl[i];
  }
  k = m;
  if (k && first > 0 && vma(first - 1).end == repl[0].start &&
      vma(first - 1).prot == repl[0].prot) {
    repl[0].start = vma(--first).start;
  }
  if (k && last < s->nvmas && vma(last).start == repl[k - 1].end &&
      vma(last).prot == repl[k - 1].prot) {
    repl[k - 1].end = vma(last++).end;
  }
  int delta = k - (last - first), n = s->nvmas;
  // Too many VMAs or no page for the list: the job's mappings outgrew what the kernel keeps.
  if (delta > 0 && !reserve(s, n + delta)) end_job(kReqMemLimit, 0);
  if (delta > 0) {
    for (int i = n - 1; i >= last; i--) vma(i + delta) = vma(i);
  } else if (delta < 0) {
    for (int i = last; i < n; i++) vma(i + delta) = vma(i);
  }
  for (int i = 0; i < k; i++) vma(first + i) = repl[i];
  s->nvmas = n + delta;
}

// Large unmaps flush the whole TLB once instead of one (trapped) INVLPG per page.
constexpr uint64_t kInvlpgMaxPages = 16;
void flush_range(uint64_t va, uint64_t pages) {
  if (pages > kInvlpgMaxPages) {
    arch::reload_cr3();
    return;
  }
  for (uint64_t i = 0; i < pages; i++) arch::invlpg(va + i * kPage);
}

bool range_ok(uint64_t va, uint64_t len) {
  return len && (va & (kPage - 1)) == 0 && va >= kUserMin && va <= kUserMax && len <= kUserMax - va;
}

}  // namespace

// ---- Spaces -------------------------------------------------------------------------------------
namespace {

constexpr int kUserEntries = 256;  // PML4 entries 0..255: the lower half, the job's
constexpr uint64_t kLeafFlags = kP | kW | kU | kA | kD | kBacked | kImage;

// A page for a PML4 at an odd 4 KiB frame (GPA bit 12 set): PVM runs the vCPU in native mode
// only with such a CR3 (docs/architecture.md, "PVM facts"; the boot PML4 is at 0x11000).
uint64_t alloc_pml4() { return pmm::alloc_odd(); }

// Frees every owned page and every page-table page below the user half of `pml4` and clears
// its user entries. `pml4` must not be live: nothing is flushed.
void free_user_half(uint64_t pml4) {
  uint64_t* l4 = phys<uint64_t>(pml4);
  for (int i = 0; i < kUserEntries; i++) {
    if (!(l4[i] & kP)) continue;
    uint64_t* l3 = table(l4[i]);
    for (int j = 0; j < 512; j++) {
      if (!(l3[j] & kP)) continue;
      uint64_t* l2 = table(l3[j]);
      for (int k = 0; k < 512; k++) {
        uint64_t e = l2[k];
        if (e & kPs) {
          if (e & (kP | kBacked)) pmm::free_huge(e & kAddrMask & ~(kHuge - 1));
        } else if (e & kP) {
          uint64_t* l1 = table(e);
          for (int l = 0; l < 512; l++)
            if ((l1[l] & (kP | kBacked)) && !(l1[l] & kImage)) free_user_page(l1[l]);
          pmm::free(e & kAddrMask);
        }
      }
      pmm::free(l3[j] & kAddrMask);
    }
    pmm::free(l4[i] & kAddrMask);
    l4[i] = 0;
  }
}

// Frees everything `s` holds. pmm::free ignores the boot PML4 (below the managed range).
void destroy(Space* s) {
  free_user_half(s->pml4);
  for (int i = 0; i < s->nchunks; i++) kpage_free(s->chunks[i]);
  s->nchunks = s->nvmas = 0;
  if (s == &g_boot_space) return;
  pmm::free(s->pml4);
  kfree(s);
}

// A new, zeroed table page linked at `*entry` (an entry of a table that is not live). 0 if
// memory ran out.
uint64_t* new_table(uint64_t* entry) {
  uint64_t pa = pmm::alloc();
  if (!pa) return nullptr;
  *entry = pa | kP | kW | kU;
  return phys<uint64_t>(pa);
}

// True if the 4 KiB page at kernel address p holds only zero bytes.
bool page_is_zero(const uint64_t* p) {
  for (uint64_t i = 0; i < kPage / 8; i++)
    if (p[i]) return false;
  return true;
}

// Copies `bytes` (a multiple of 4 KiB) from src to the zeroed dst, skipping 4 KiB pages that
// are zero in src: the untouched pages of dst then cost no host first touch.
void copy_nonzero(uint64_t dst, uint64_t src, uint64_t bytes) {
  for (uint64_t o = 0; o < bytes; o += kPage)
    if (!page_is_zero(phys<uint64_t>(src + o))) memcpy(phys(dst + o), phys(src + o), kPage);
}

// Copies one leaf entry of the parent into `*dst` (a table that is not live): owned pages get a
// new page with the same bytes, pages mapped in place are shared. False if memory ran out.
// An owned page whose D (dirty) bit is clear was never written since it was mapped zeroed: the
// CPU (under PVM, the host's shadow MMU) sets D on the first write through the mapping, and the
// kernel sets it where it fills a page through the direct map (map_page, protect). Such a page
// gets a zeroed page without a copy, so the untouched part of an 8 MiB stack or a large
// malloc costs no host first touch at fork (docs/performance.md "fork's address-space copy").
bool copy_pte(uint64_t e, uint64_t* dst) {
  if (!(e & (kP | kBacked)) || (e & kImage)) {
    *dst = e;
    return true;
  }
  uint64_t pa = pmm::alloc();
  if (!pa) return false;
  if (e & kD) copy_nonzero(pa, e & kAddrMask, kPage);
  *dst = pa | (e & ~kAddrMask);
  return true;
}

// Copies a 2 MiB leaf PDE `e` into `*dst`: into a new 2 MiB page, or, when none is left, into a
// page table of 512 new 4 KiB pages with the same flags. False if memory ran out.
bool copy_huge(uint64_t e, uint64_t* dst) {
  uint64_t src = e & kAddrMask & ~(kHuge - 1);
  if (uint64_t pa = pmm::alloc_huge()) {
    if (e & kD) copy_nonzero(pa, src, kHuge);
    *dst = pa | (e & (kLeafFlags | kPs));
    return true;
  }
  uint64_t* pt = new_table(dst);
  if (!pt) return false;
  uint64_t flags = e & kLeafFlags;
  for (int i = 0; i < 512; i++)
    if (!copy_pte((src + uint64_t(i) * kPage) | flags, &pt[i])) return false;
  return true;
}

// Copies the user page tables of `src` into the empty user half of `dst`. On failure the part
// already copied stays linked in `dst` for the caller to free.
bool copy_user_half(uint64_t src, uint64_t dst) {
  uint64_t *s4 = phys<uint64_t>(src), *d4 = phys<uint64_t>(dst);
  for (int i = 0; i < kUserEntries; i++) {
    if (!(s4[i] & kP)) continue;
    uint64_t *s3 = table(s4[i]), *d3 = new_table(&d4[i]);
    if (!d3) return false;
    for (int j = 0; j < 512; j++) {
      if (!(s3[j] & kP)) continue;
      uint64_t *s2 = table(s3[j]), *d2 = new_table(&d3[j]);
      if (!d2) return false;
      for (int k = 0; k < 512; k++) {
        uint64_t e = s2[k];
        if (e & kPs) {
          if ((e & (kP | kBacked)) && !copy_huge(e, &d2[k])) return false;
          continue;
        }
        if (!(e & kP)) continue;
        uint64_t *s1 = table(e), *d1 = new_table(&d2[k]);
        if (!d1) return false;
        for (int l = 0; l < 512; l++)
          if (!copy_pte(s1[l], &d1[l])) return false;
      }
    }
  }
  return true;
}

}  // namespace

Space* current_space() { return g_cur; }

Space* space_create() {
  auto* s = static_cast<Space*>(kmalloc(sizeof(Space)));
  if (!s) return nullptr;
  s->pml4 = alloc_pml4();
  if (!s->pml4) {
    kfree(s);
    return nullptr;
  }
  // The kernel half: the boot PML4's entries. The kernel never adds PML4 entries after boot
  // (it maps below them), so a copy made now stays in step.
  memcpy(phys<uint64_t>(s->pml4) + kUserEntries, phys<uint64_t>(kPageTableGpa) + kUserEntries,
         kUserEntries * sizeof(uint64_t));
  s->refs = 1;
  return s;
}

Space* space_fork(Space* src) {
  Space* s = space_create();
  if (!s) return nullptr;
  if (!reserve(s, src->nvmas) || !copy_user_half(src->pml4, s->pml4)) {
    destroy(s);
    return nullptr;
  }
  for (int i = 0; i < src->nvmas; i++) vma(s, i) = vma(src, i);
  s->nvmas = src->nvmas;
  return s;
}

void space_activate(Space* s) {
  g_cur = s;
  if (s == g_loaded) return;
  g_loaded = s;
  arch::write_cr3(s->pml4);
}

void space_stage(Space* s) { g_cur = s; }

void space_get(Space* s) { s->refs++; }

void space_put(Space* s) {
  if (s->refs <= 0) panic("space_put: no reference left");
  if (--s->refs) return;
  if (s == g_cur || s == g_loaded) panic("space_put: freeing the current or loaded address space");
  destroy(s);
}

int64_t map_anon(uint64_t va, uint64_t len, uint32_t prot) {
  if (!range_ok(va, len)) return -EINVAL;
  len = page_up(len);
  if (!prot) {  // a reservation: no pages until mprotect makes it accessible
    vma_set(va, va + len, 0, false);
    return 0;
  }
  uint64_t flags = pte_flags(prot);
  for (uint64_t a = va; a < va + len;) {
    // Whole, aligned 2 MiB stretches get a page table filled before it is linked: one write to
    // the live tables (a trap on PVM) instead of 512. 4 KiB pages rather than one 2 MiB page so
    // that fork copies only the 4 KiB pages a job wrote (their D bits): a dirty 2 MiB page has
    // to be read whole, and reading guest pages the host never touched costs 40-100 us per
    // 4 KiB here (docs/performance.md "fork").
    if (a % kHuge == 0 && va + len - a >= kHuge) {
      uint64_t* pde = pde_for(a, true);
      if (pde && !(*pde & (kP | kBacked))) {
        uint64_t pt = pmm::alloc();
        if (!pt) {
          unmap(va, a - va);
          return -ENOMEM;
        }
        auto* t = phys<uint64_t>(pt);
        for (uint64_t i = 0; i < 512; i++) {
          uint64_t pa = pmm::alloc_cold();
          if (!pa) {
            for (uint64_t j = 0; j < i; j++) pmm::free(t[j] & kAddrMask);
            memset(t, 0, kPage);
            pmm::free(pt);
            unmap(va, a - va);
            return -ENOMEM;
          }
          t[i] = pa | flags;
        }
        *pde = pt | kP | kW | kU;
        a += kHuge;
        continue;
      }
    }
    uint64_t* pte = pte_for(a, true);
    uint64_t pa = pte ? pmm::alloc() : 0;
    if (!pa) {
      unmap(va, a - va);
      return -ENOMEM;
    }
    *pte = pa | flags;
    a += kPage;
  }
  vma_set(va, va + len, prot, false);
  return 0;
}

bool map_page(uint64_t va, uint64_t pa, uint32_t prot, bool owned) {
  uint64_t* pte = pte_for(va, true);
  if (!pte) return false;
  // The caller fills owned pages through the direct map, which leaves the D bit clear: set it,
  // or space_fork would take the page for one never written (see copy_pte).
  if (*pte & kP) {
    *pte |= pte_flags(prot) | (owned ? kD : 0);
    return true;
  }
  *pte = pa | pte_flags(prot) | (owned ? kD : kImage);
  return true;
}

void note_vma(uint64_t va, uint64_t len, uint32_t prot) { vma_set(va, va + len, prot, false); }

void unmap(uint64_t va, uint64_t len) {
  if (!len) return;
  len = page_up(len);
  uint64_t end = va + len, cleared = 0;
  for (uint64_t a = va; a < end;) {
    uint64_t* pde = pde_for(a, false);
    if (!pde || !(*pde & (kP | kBacked))) {  // nothing mapped here: skip to the next 2 MiB
      a = (a | (kHuge - 1)) + 1;
      continue;
    }
    bool huge = *pde & kPs;
    if (huge && a % kHuge == 0 && end - a >= kHuge) {
      release(pde, true);
      cleared++;
      a += kHuge;
      continue;
    }
    uint64_t* pte = pte_for(a, false);  // splits a partly unmapped 2 MiB page
    if (pte && (*pte & (kP | kBacked))) {
      release(pte, false);
      cleared++;
    }
    a += kPage;
  }
  if (cleared) flush_range(va, len / kPage);
  vma_set(va, end, 0, true);
}

int64_t protect(uint64_t va, uint64_t len, uint32_t prot) {
  if (!range_ok(va, len)) return -EINVAL;
  len = page_up(len);
  for (uint64_t a = va; a < va + len; a += kPage)
    if (vma_find(a) < 0) return -ENOMEM;
  for (uint64_t a = va; a < va + len;) {
    bool huge;
    bool whole = a % kHuge == 0 && va + len - a >= kHuge;
    uint64_t* leaf = leaf_for(a, true, !whole, &huge);
    if (!leaf) end_job(kReqMemLimit, 0);
    uint64_t e = *leaf, step = huge ? kHuge : kPage;
    if (!(e & (kP | kBacked))) {  // never backed (mapped PROT_NONE): back it now
      if (prot) {
        uint64_t pa = pmm::alloc();
        if (!pa) end_job(kReqMemLimit, 0);
        *leaf = pa | pte_flags(prot);
      }
    } else if ((prot & kWrite) && (e & kImage) && (e & kAddrMask) >= kRootfsGpa) {
      // A page of the read-only rootfs image becomes writable: the job gets its own copy.
      uint64_t pa = pmm::alloc();
      if (!pa) end_job(kReqMemLimit, 0);
      memcpy(phys(pa), phys(e & kAddrMask), kPage);
      *leaf = pa | pte_flags(prot) | kD;  // written through the direct map (see map_page)
    } else {
      uint64_t keep = e & (kAddrMask | kImage | kA | kD | (huge ? kPs : 0));
      *leaf = keep | (prot ? pte_flags(prot) : kBacked);
    }
    a += step;
  }
  flush_range(va, len / kPage);
  vma_set(va, va + len, prot, false);
  return 0;
}

void move(uint64_t from, uint64_t to, uint64_t len) {
  int i = vma_find(from);
  uint32_t prot = i >= 0 ? vma(i).prot : kRead | kWrite;
  for (uint64_t off = 0; off < len;) {
    uint64_t* pde = pde_for(from + off, false);
    if (!pde || !(*pde & (kP | kBacked))) {
      off = ((from + off) | (kHuge - 1)) + 1 - from;
      continue;
    }
    // A 2 MiB page moves whole when both sides are aligned; otherwise page by page.
    if ((*pde & kPs) && (from + off) % kHuge == 0 && (to + off) % kHuge == 0 && len - off >= kHuge) {
      uint64_t e = *pde;
      *pde = 0;
      uint64_t* dst = pde_for(to + off, true);
      if (!dst) end_job(kReqMemLimit, 0);
      *dst = e;
      off += kHuge;
      continue;
    }
    uint64_t* src = pte_for(from + off, false);
    if (src && *src) {
      uint64_t e = *src;
      *src = 0;
      uint64_t* dst = pte_for(to + off, true);
      if (!dst) end_job(kReqMemLimit, 0);
      *dst = e;
    }
    off += kPage;
  }
  flush_range(from, len / kPage);
  vma_set(from, from + len, 0, true);
  vma_set(to, to + len, prot, false);
}

uint64_t find_free(uint64_t len) {
  const uint64_t align = len >= kHuge ? kHuge : kPage;
  uint64_t top = kMmapTop;
  for (int i = g_cur->nvmas; i >= 0; i--) {
    // The gap between VMA i-1 and `top` (below VMA i).
    uint64_t floor = i > 0 ? vma(i - 1).end : kUserMin;
    if (i < g_cur->nvmas && vma(i).start < top) top = vma(i).start;
    if (top < floor || top - floor < len) continue;
    uint64_t cand = (top - len) & ~(align - 1);
    if (cand >= floor) return cand;
  }
  return 0;
}

bool is_free(uint64_t va, uint64_t len) {
  if (!len) return true;
  int i = vma_after(va);
  return i == g_cur->nvmas || vma(i).start >= va + len;
}

bool user_ok(uint64_t va, uint64_t len, bool write) {
  if (va + len < va || va + len > kUserMax + kPage) return false;
  uint64_t end = va + len;
  while (true) {
    int i = vma_find(va);
    if (i < 0) return false;
    uint32_t p = vma(i).prot;
    if (!(p & kRead) || (write && !(p & kWrite))) return false;
    if (vma(i).end >= end) return true;
    va = vma(i).end;
  }
}

int64_t prot_at(uint64_t va) {
  int i = vma_find(va);
  return i < 0 ? -1 : vma(i).prot;
}

uint64_t translate(uint64_t va) {
  bool huge;
  uint64_t* leaf = leaf_for(va, false, false, &huge);
  if (!leaf || !(*leaf & kP)) return 0;
  return huge ? (*leaf & kAddrMask & ~(kHuge - 1)) + (va & (kHuge - 1) & ~(kPage - 1))
              : (*leaf & kAddrMask);
}

uint64_t owned_page(uint64_t va) {
  bool huge;
  uint64_t* leaf = leaf_for(va, false, false, &huge);
  if (!leaf || !(*leaf & kP) || (*leaf & kImage)) return 0;
  return translate(va);
}

int vma_count() { return g_cur->nvmas; }

void vma_at(int i, uint64_t* start, uint64_t* end, uint32_t* prot) {
  *start = vma(i).start;
  *end = vma(i).end;
  *prot = vma(i).prot;
}

}  // namespace k::mm
