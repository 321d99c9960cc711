// Address spaces of the job's processes: per Space, 4 KiB/2 MiB user page tables in the lower
// half under a PML4 whose upper half is the kernel's, and a list of VMAs (regions with
// protections). Memory is mapped eagerly: in PVM native mode a fault in the job pushes its
// frame onto the job's own stack (pvm-host.md, "red-zone hazard"), so the kernel never relies on
// demand paging and any fault ends the job. Single vCPU, a task switches only inside the kernel
// (kernel/sched.h): no locking.
#pragma once

#include <stdint.h>

namespace k::mm {

inline constexpr uint32_t kRead = 1, kWrite = 2, kExec = 4;  // PROT_* values
inline constexpr uint64_t kUserMin = 0x10000;
inline constexpr uint64_t kUserMax = 0x7fffffe00000ull;   // top of the job's stack (2 MiB-aligned)
inline constexpr uint64_t kMmapTop = 0x7f0000000000ull;   // mmap searches down from here
/// Most VMAs one Space may hold (Linux's default vm.max_map_count is 65530). Past it, or when
/// the VMA list cannot grow for lack of memory, the job ends with kReqMemLimit.
inline constexpr int kMaxVmas = 32768;

// ---- Address spaces ---------------------------------------------------------------------------
// Every function under "Functions on the current space" acts on current_space(). A Space is
// shared by the threads of a process and by a vfork child until it execs (reference counted).
//
// Memory that a Space owns (anonymous memory, private copies of file pages, page tables, the
// VMA list) returns to the page allocator when its last reference goes. Pages mapped in place
// and not owned (the program image, pages of the read-only rootfs image, pages of a writable-
// layer file mapped MAP_SHARED; kernel/syscall.cc map_file) belong to their file and are only
// ever shared. MAP_SHARED|MAP_ANONYMOUS memory is private to one process today (sys_mmap), so
// fork copies it like any other anonymous memory.

/// An address space: a PML4 whose entries 256..511 are the boot PML4's (the direct map and the
/// kernel image, vmm/boot.cc; the VMM maps nothing of the kernel's in the lower half), the user
/// page tables under entries 0..255, the VMA list, and a reference count.
struct Space;

/// The space every function below acts on. At boot it is the boot space: the VMM's PML4 at
/// kPageTableGpa, with one reference held by the first process.
Space* current_space();
/// A new space with an empty user half and one reference, for execve. Costs one page-table page
/// plus a ~1.6 KiB descriptor (the VMA list grows a 4 KiB page of 170 VMAs at a time). nullptr
/// when guest memory ran out.
Space* space_create();
/// A copy of `src` for fork(), with one reference: every page `src` owns (4 KiB and 2 MiB) is
/// copied into a new page of the same size (a 2 MiB page becomes 512 4 KiB pages when no 2 MiB
/// chunk is left), pages mapped in place and not owned are shared, PROT_NONE pages keep their
/// backing, and the VMA list is copied. The copy is EAGER, not copy-on-write: a write fault in
/// PVM native mode pushes its frame onto the job's stack (pvm-host.md, "red-zone hazard"), so
/// the job must never fault. The child's tables are filled while they are not loaded, which is
/// cheap on PVM (only writes to live page tables trap). An owned page whose D (dirty) bit is
/// clear was never written since it was mapped zeroed and gets a fresh zero page, not a copy:
/// so kernel code that writes an owned user page through the direct map (not through its user
/// address) must leave D set in its entry. Of a dirty page, only the 4 KiB parts that are not
/// all zero are copied (the new page is zeroed). `src` is not changed. nullptr when guest
/// memory ran out; everything the copy had allocated is freed again. Cost: see
/// docs/performance.md "fork's address-space copy".
Space* space_fork(Space* src);
/// Makes `s` the current space and loads its PML4 into CR3 (which also flushes the TLB). A no-op
/// if `s` is already current. The caller holds a reference to `s`.
void space_activate(Space* s);
/// Makes `s` the space every call below acts on WITHOUT loading it into CR3: its tables are not
/// live, so filling them costs no write traps (execve maps the new program this way), but user
/// addresses still reach the loaded space. space_activate(s) loads it.
void space_stage(Space* s);
/// Takes one more reference to `s` (a new thread, a vfork child).
void space_get(Space* s);
/// Drops one reference; the last one frees every page `s` owns, its page-table pages, its VMA
/// list and the descriptor. Panics if that would free the space loaded in CR3: the caller
/// activates another space first.
void space_put(Space* s);

// ---- Functions on the current space ------------------------------------------------------------

/// Maps [va, va+len) (page-aligned) to fresh zero pages with `prot` (no backing if prot == 0).
/// Returns 0, -ENOMEM when guest memory ran out (nothing stays mapped), -EINVAL on a bad range.
int64_t map_anon(uint64_t va, uint64_t len, uint32_t prot);
/// Maps the page at `va` to guest-physical `pa` with `prot`. `owned` pages return to the page
/// allocator on unmap; others (the program image) do not. If `va` is already mapped, its page
/// stays and gains `prot`. An owned page is marked dirty, as the caller fills it through the
/// direct map (see space_fork). Returns false when page-table memory ran out.
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
/// True if [va, va+len) is mapped in the current space with read (and, if `write`, write) access.
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

