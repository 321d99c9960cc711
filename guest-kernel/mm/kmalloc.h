// Kernel heap for small objects (file system nodes, names, open files): power-of-two size
// classes from 32 to 2048 bytes carved out of 4 KiB pages from the page allocator, with a free
// list per class. Larger objects take whole pages (kpage_alloc). Single vCPU: no locking.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace k::mm {

/// `n` bytes (1..2032), zeroed, 16-byte aligned; nullptr when guest memory ran out.
void* kmalloc(size_t n);
/// Returns memory from kmalloc (nullptr is ignored).
void kfree(void* p);
/// A zeroed kernel page (kernel-virtual address), or nullptr; kpage_free gives it back.
void* kpage_alloc();
void kpage_free(void* p);

}  // namespace k::mm
