// expect_same_vcpu: GoogleTest expectations that two saved vCPU states match, field by field
// (the parts a restore or a reset must put back). Header-only, for template and pool tests.
#pragma once

#include <gtest/gtest.h>

#include <cstring>

#include "vmm/vcpu_state.h"

namespace vmfork {

inline void expect_same_vcpu(const vmm::VcpuState& a, const vmm::VcpuState& b) {
  EXPECT_EQ(0, memcmp(&a.regs, &b.regs, sizeof a.regs));
  EXPECT_EQ(a.sregs.cr0, b.sregs.cr0);
  EXPECT_EQ(a.sregs.cr3, b.sregs.cr3);
  EXPECT_EQ(a.sregs.cr4, b.sregs.cr4);
  EXPECT_EQ(a.sregs.efer, b.sregs.efer);
  EXPECT_EQ(0, memcmp(&a.sregs.cs, &b.sregs.cs, sizeof a.sregs.cs));
  EXPECT_EQ(0, memcmp(&a.sregs.gdt, &b.sregs.gdt, sizeof a.sregs.gdt));
  EXPECT_EQ(0, memcmp(&a.sregs.idt, &b.sregs.idt, sizeof a.sregs.idt));
  EXPECT_EQ(0, memcmp(&a.sregs, &b.sregs, sizeof a.sregs)) << "some other sregs field differs";
  EXPECT_EQ(0, memcmp(&a.events, &b.events, sizeof a.events));
  EXPECT_EQ(0, memcmp(&a.fpu, &b.fpu, sizeof a.fpu));
  EXPECT_EQ(a.xsave, b.xsave);
  EXPECT_EQ(a.mp_state.mp_state, b.mp_state.mp_state);
  EXPECT_EQ(0, memcmp(&a.debugregs, &b.debugregs, sizeof a.debugregs));
  ASSERT_EQ(a.msrs.size(), b.msrs.size());
  for (size_t i = 0; i < a.msrs.size(); i++) {
    EXPECT_EQ(a.msrs[i].index, b.msrs[i].index);
    EXPECT_EQ(a.msrs[i].value, b.msrs[i].value) << "MSR " << std::hex << a.msrs[i].index;
  }
}

}  // namespace vmfork
