// <linux/kvm.h> made safe for C++. The uapi headers wrap flexible arrays in
// __DECLARE_FLEX_ARRAY, whose empty struct has size 1 in C++ but 0 in C: that moves
// kvm_cpuid2::entries and kvm_msrs::entries and changes the ioctl numbers derived from their
// sizes (KVM_GET_SUPPORTED_CPUID fails with EINVAL). Include this instead of <linux/kvm.h>.
#pragma once

#include <linux/stddef.h>
#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[]
#include <linux/kvm.h>

#include <cstddef>

static_assert(sizeof(kvm_cpuid2) == 8 && offsetof(kvm_cpuid2, entries) == 8,
              "kvm_cpuid2 must have its C layout (Documentation/virt/kvm/api.rst 4.46)");
static_assert(sizeof(kvm_msrs) == 8 && offsetof(kvm_msrs, entries) == 8,
              "kvm_msrs must have its C layout (Documentation/virt/kvm/api.rst 4.18)");
