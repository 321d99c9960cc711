// Kernel heap (see kmalloc.h). Each block has a 16-byte header holding its size class, so kfree
// needs no size; pages are never returned from a class to the page allocator (the heap only
// lives as long as the job).
#include "mm/kmalloc.h"

#include "kernel.h"
#include "mm/pmm.h"

namespace k::mm {
namespace {

constexpr int kClasses = 7;  // 32, 64, ..., 2048 bytes including the header
constexpr size_t kHeader = 16;
struct FreeBlock {
  FreeBlock* next;
};
FreeBlock* g_free[kClasses];

int class_of(size_t n) {
  size_t need = n + kHeader;
  for (int c = 0; c < kClasses; c++)
    if (need <= (size_t(32) << c)) return c;
  return -1;
}

}  // namespace

void* kpage_alloc() {
  uint64_t pa = pmm::alloc();
  return pa ? phys(pa) : nullptr;
}

void kpage_free(void* p) {
  if (p) pmm::free(reinterpret_cast<uint64_t>(p) - kDirectMapBase);
}

void* kmalloc(size_t n) {
  int c = class_of(n);
  if (c < 0) panic("kmalloc: object too large");
  if (!g_free[c]) {
    auto* page = static_cast<uint8_t*>(kpage_alloc());
    if (!page) return nullptr;
    size_t sz = size_t(32) << c;
    for (size_t off = 0; off + sz <= kPage; off += sz) {
      auto* b = reinterpret_cast<FreeBlock*>(page + off);
      b->next = g_free[c];
      g_free[c] = b;
    }
  }
  FreeBlock* b = g_free[c];
  g_free[c] = b->next;
  auto* raw = reinterpret_cast<uint8_t*>(b);
  memset(raw, 0, size_t(32) << c);
  *reinterpret_cast<uint64_t*>(raw) = uint64_t(c);
  return raw + kHeader;
}

void kfree(void* p) {
  if (!p) return;
  auto* raw = static_cast<uint8_t*>(p) - kHeader;
  uint64_t c = *reinterpret_cast<uint64_t*>(raw);
  if (c >= kClasses) panic("kfree: corrupt block header");
  auto* b = reinterpret_cast<FreeBlock*>(raw);
  b->next = g_free[c];
  g_free[c] = b;
}

}  // namespace k::mm
