// Tests for the VMM-built kernel address space: walking the page tables the boot loader writes
// must translate the direct map and the kernel alias to the right guest-physical pages, with
// U=1 at every level (PVM native mode needs it).
#include "vmm/boot.h"

#include <gtest/gtest.h>

#include "engine/kernel_image.h"
#include "guest-kernel/abi/vmfork_abi.h"

using namespace vmfork::vmm;
namespace gabi = vmfork::abi;

namespace {

// Walks 4-level paging (SDM vol. 3A 4.5) in guest memory; returns the GPA or ~0 if unmapped.
uint64_t walk(GuestMemory& mem, uint64_t va, bool* all_user) {
  uint64_t table = gabi::kPageTableGpa;
  *all_user = true;
  for (int shift = 39; shift >= 21; shift -= 9) {
    uint64_t e = mem.at<uint64_t>(table)[(va >> shift) & 511];
    if (!(e & 1)) return ~0ull;
    *all_user &= (e & 4) != 0;
    if (shift == 21) {
      EXPECT_TRUE(e & 0x80) << "the VMM maps 2 MiB pages";
      return (e & 0x000fffffffe00000ull) + (va & 0x1fffff);
    }
    table = e & 0x000ffffffffff000ull;
  }
  return ~0ull;
}

}  // namespace

TEST(Boot, DirectMapAndKernelAlias) {
  auto mem = GuestMemory::create_anonymous(1536u << 20);  // 1.5 GiB: two page directories
  ASSERT_TRUE(mem.ok());
  ASSERT_TRUE(build_kernel_address_space(*mem).ok());
  bool user = false;
  for (uint64_t gpa : {0ull, 0x2000ull, 0x12345678ull, (1536ull << 20) - 1}) {
    EXPECT_EQ(walk(*mem, gabi::kDirectMapBase + gpa, &user), gpa);
    EXPECT_TRUE(user);
  }
  EXPECT_EQ(walk(*mem, gabi::kKernelVirtBase + 0x100000, &user), 0x100000u);
  EXPECT_EQ(walk(*mem, gabi::kDirectMapBase + (1536ull << 20), &user), ~0ull);  // past the end
  EXPECT_EQ(walk(*mem, 0x400000, &user), ~0ull);  // the lower half is the job's
}

TEST(Boot, LoadsEmbeddedKernel) {
  auto mem = GuestMemory::create_anonymous(32u << 20);
  ASSERT_TRUE(mem.ok());
  auto entry = load_kernel(*mem, vmfork::engine::embedded_kernel());
  ASSERT_TRUE(entry.ok()) << entry.error().message();
  EXPECT_EQ(*entry, gabi::kKernelVirtBase + gabi::kKernelGpa);
}

TEST(Boot, RejectsMemoryTooLargeToMap) {
  auto mem = GuestMemory::create_anonymous(300ull << 30);  // NORESERVE: nothing is touched
  if (!mem.ok()) GTEST_SKIP() << "cannot reserve 300 GiB of address space here";
  EXPECT_FALSE(build_kernel_address_space(*mem).ok());
}
