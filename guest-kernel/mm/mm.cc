// The job's address space (see mm.h).
#include "mm/mm.h"

#include "arch/arch.h"
#include "linux_abi.h"
#include "kernel.h"
#include "mm/pmm.h"

namespace k::mm {
namespace {

constexpr uint64_t kP = 1, kW = 2, kU = 4, kPs = 0x80;
constexpr uint64_t kBacked = 1ull << 9;  // software bit: page owned, currently PROT_NONE
constexpr uint64_t kImage = 1ull << 10;  // software bit: page belongs to the program image
constexpr uint64_t kAddrMask = 0x000ffffffffff000ull;
constexpr uint64_t kHuge = pmm::kHugePage;

struct Vma {
  uint64_t start, end;
  uint32_t prot;
};
constexpr int kMaxVmas = 2048;
Vma g_vmas[kMaxVmas];
int g_nvmas;
Vma g_tmp[kMaxVmas];

uint64_t* table(uint64_t entry) { return phys<uint64_t>(entry & kAddrMask); }

// Pointer to the page-directory entry (level 2) for va, creating upper tables if `create`.
uint64_t* pde_for(uint64_t va, bool create) {
  uint64_t* t = phys<uint64_t>(kPageTableGpa);
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
  uint64_t e = *pde, base = e & kAddrMask & ~(kHuge - 1), flags = e & (kW | kU | kP | kBacked | kImage);
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
void release(uint64_t* leaf, bool huge) {
  uint64_t e = *leaf;
  if ((e & (kP | kBacked)) && !(e & kImage)) {
    if (huge) pmm::free_huge(e & kAddrMask & ~(kHuge - 1));
    else pmm::free(e & kAddrMask);
  }
  *leaf = 0;
}

// Sets [start, end) to `prot` in the VMA list (remove = drop it). Keeps the list sorted.
void vma_set(uint64_t start, uint64_t end, uint32_t prot, bool remove) {
  int n = 0;
  bool inserted = remove;
  for (int i = 0; i < g_nvmas; i++) {
    Vma v = g_vmas[i];
    if (!inserted && v.start >= start) {
      g_tmp[n++] = {start, end, prot};
      inserted = true;
    }
    if (v.end <= start || v.start >= end) {
      g_tmp[n++] = v;
      continue;
    }
    if (v.start < start) g_tmp[n++] = {v.start, start, v.prot};
    if (v.end > end) {
      if (!inserted) {
        g_tmp[n++] = {start, end, prot};
        inserted = true;
      }
      g_tmp[n++] = {end, v.end, v.prot};
    }
    if (n >= kMaxVmas - 3) panic("too many memory mappings");
  }
  if (!inserted) g_tmp[n++] = {start, end, prot};
  // Merge neighbours with equal protection.
  g_nvmas = 0;
  for (int i = 0; i < n; i++) {
    if (g_nvmas && g_vmas[g_nvmas - 1].end == g_tmp[i].start &&
        g_vmas[g_nvmas - 1].prot == g_tmp[i].prot) {
      g_vmas[g_nvmas - 1].end = g_tmp[i].end;
    } else {
      g_vmas[g_nvmas++] = g_tmp[i];
    }
  }
}

// Index of the VMA containing va, or -1.
int vma_find(uint64_t va) {
  int lo = 0, hi = g_nvmas - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (va < g_vmas[mid].start) hi = mid - 1;
    else if (va >= g_vmas[mid].end) lo = mid + 1;
    else return mid;
  }
  return -1;
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

int64_t map_anon(uint64_t va, uint64_t len, uint32_t prot) {
  if (!range_ok(va, len)) return -EINVAL;
  len = page_up(len);
  if (!prot) {  // a reservation: no pages until mprotect makes it accessible
    vma_set(va, va + len, 0, false);
    return 0;
  }
  uint64_t flags = pte_flags(prot);
  for (uint64_t a = va; a < va + len;) {
    // Whole, aligned 2 MiB stretches get one 2 MiB page: one PDE write instead of 512 PTEs.
    if (a % kHuge == 0 && va + len - a >= kHuge) {
      uint64_t* pde = pde_for(a, true);
      if (pde && !(*pde & kP)) {
        uint64_t pa = pmm::alloc_huge();
        if (pa) {
          *pde = pa | flags | kPs;
          a += kHuge;
          continue;
        }
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
  if (*pte & kP) {
    *pte |= pte_flags(prot);
    return true;
  }
  *pte = pa | pte_flags(prot) | (owned ? 0 : kImage);
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
      *leaf = pa | pte_flags(prot);
    } else {
      uint64_t keep = e & (kAddrMask | kImage | (huge ? kPs : 0));
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
  uint32_t prot = i >= 0 ? g_vmas[i].prot : kRead | kWrite;
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
  for (int i = g_nvmas; i >= 0; i--) {
    // The gap between VMA i-1 and `top` (below VMA i).
    uint64_t floor = i > 0 ? g_vmas[i - 1].end : kUserMin;
    if (i < g_nvmas && g_vmas[i].start < top) top = g_vmas[i].start;
    if (top < floor || top - floor < len) continue;
    uint64_t cand = (top - len) & ~(align - 1);
    if (cand >= floor) return cand;
  }
  return 0;
}

bool is_free(uint64_t va, uint64_t len) {
  for (int i = 0; i < g_nvmas; i++)
    if (g_vmas[i].start < va + len && g_vmas[i].end > va) return false;
  return true;
}

bool user_ok(uint64_t va, uint64_t len, bool write) {
  if (va + len < va || va + len > kUserMax + kPage) return false;
  uint64_t end = va + len;
  while (true) {
    int i = vma_find(va);
    if (i < 0) return false;
    uint32_t p = g_vmas[i].prot;
    if (!(p & kRead) || (write && !(p & kWrite))) return false;
    if (g_vmas[i].end >= end) return true;
    va = g_vmas[i].end;
  }
}

int64_t prot_at(uint64_t va) {
  int i = vma_find(va);
  return i < 0 ? -1 : g_vmas[i].prot;
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

int vma_count() { return g_nvmas; }

void vma_at(int i, uint64_t* start, uint64_t* end, uint32_t* prot) {
  *start = g_vmas[i].start;
  *end = g_vmas[i].end;
  *prot = g_vmas[i].prot;
}

}  // namespace k::mm
