// Vcpu::save() and Vcpu::restore(): every KVM vCPU state ioctl, in the order vcpu_state.h
// documents. Thread-safety: as Vcpu (one thread, vCPU not running).
#include "vmm/vcpu_state.h"

#include <sys/ioctl.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace vmfork::vmm {

namespace {

constexpr uint32_t kMsrTscDeadline = 0x6e0;
constexpr uint32_t kMsrTscAdjust = 0x3b;
// KVM_GET_MSRS / KVM_SET_MSRS refuse more than this many entries per call (E2BIG).
constexpr size_t kMsrsPerCall = 255;

// One state ioctl; `arg` is only written for GET requests.
Status kvm_ioctl(int fd, unsigned long req, const void* arg, const char* name) {
  if (ioctl(fd, req, const_cast<void*>(arg)) < 0) return errno_error(name);
  return {};
}

// One KVM_GET_MSRS or KVM_SET_MSRS of entries[0..n), n <= kMsrsPerCall. KVM processes the
// entries in order and returns how many succeeded, stopping at the first it refuses.
Result<size_t> msrs_call(int fd, unsigned long req, kvm_msr_entry* entries, size_t n) {
  alignas(kvm_msrs) uint8_t buf[sizeof(kvm_msrs) + kMsrsPerCall * sizeof(kvm_msr_entry)];
  auto* m = reinterpret_cast<kvm_msrs*>(buf);
  *m = kvm_msrs{};
  m->nmsrs = uint32_t(n);
  std::memcpy(m->entries, entries, n * sizeof(kvm_msr_entry));
  int done = ioctl(fd, req, m);
  if (done < 0) return errno_error(req == KVM_GET_MSRS ? "KVM_GET_MSRS" : "KVM_SET_MSRS");
  std::memcpy(entries, m->entries, n * sizeof(kvm_msr_entry));
  return size_t(done);
}

kvm_msr_entry entry(uint32_t index, uint64_t value = 0) {
  kvm_msr_entry e{};
  e.index = index;
  e.data = value;
  return e;
}

// Reads every MSR of `wanted` the vCPU can read; an unreadable one is skipped.
Result<std::vector<MsrValue>> read_msrs(int fd, const std::vector<uint32_t>& wanted) {
  std::vector<MsrValue> out;
  size_t next = 0;
  while (next < wanted.size()) {
    kvm_msr_entry e[kMsrsPerCall];
    size_t n = std::min(kMsrsPerCall, wanted.size() - next);
    for (size_t i = 0; i < n; i++) e[i] = entry(wanted[next + i]);
    VF_ASSIGN(size_t done, msrs_call(fd, KVM_GET_MSRS, e, n));
    for (size_t i = 0; i < done; i++) out.push_back({e[i].index, e[i].data});
    next += done < n ? done + 1 : done;  // skip the MSR this host cannot read
  }
  return out;
}

// Writes `msrs` with as few KVM_SET_MSRS calls as KVM allows (one per kMsrsPerCall entries
// when it accepts them all). Some MSRs in KVM_GET_MSR_INDEX_LIST are readable but refuse every
// write in some VM configurations (MSR_KVM_ASYNC_PF_INT 0x4b564d06 without an in-kernel LAPIC;
// KVM applies the same check to the guest's own WRMSR). Such an MSR is accepted only if the
// vCPU already holds the saved value; otherwise the restore fails naming it, because the clone
// would not match the template. `refused` lists the MSRs this vCPU refused before: they are
// not offered again (each refusal costs one more KVM_SET_MSRS call for the entries after it)
// but checked, all together, with one KVM_GET_MSRS; new refusals are added to it.
// `check_refused` false skips that KVM_GET_MSRS: Vcpu::reset passes it once the refused MSRs
// were found to hold the state's values, since the guest's own WRMSR of them is refused too.
Status restore_msrs(int fd, const std::vector<MsrValue>& msrs, std::vector<uint32_t>* refused,
                    bool check_refused = true) {
  auto known = [&](uint32_t i) { return std::find(refused->begin(), refused->end(), i) != refused->end(); };
  std::vector<MsrValue> offer, check;
  offer.reserve(msrs.size());
  for (const auto& m : msrs) (known(m.index) ? check : offer).push_back(m);
  size_t next = 0;
  while (next < offer.size()) {
    kvm_msr_entry e[kMsrsPerCall];
    size_t n = std::min(kMsrsPerCall, offer.size() - next);
    for (size_t i = 0; i < n; i++) e[i] = entry(offer[next + i].index, offer[next + i].value);
    VF_ASSIGN(size_t done, msrs_call(fd, KVM_SET_MSRS, e, n));
    next += done;
    if (done == n) continue;
    check.push_back(offer[next]);
    refused->push_back(offer[next].index);
    next++;
  }
  if (check.empty() || !check_refused) return {};
  std::vector<uint32_t> indices;
  for (const auto& m : check) indices.push_back(m.index);
  VF_ASSIGN(auto current, read_msrs(fd, indices));
  for (const auto& want : check) {
    bool same = false;
    for (const auto& c : current) same |= c.index == want.index && c.value == want.value;
    if (!same) {
      char what[96];
      snprintf(what, sizeof what, "KVM_SET_MSRS refused MSR %#x = %#llx", want.index,
               static_cast<unsigned long long>(want.value));
      return plain_error(what);
    }
  }
  return {};
}

// The MSRs of `s` in the order Vcpu::restore writes them: `early` before the LAPIC, `late`
// after it (IA32_TSC_DEADLINE is ignored unless the LAPIC timer is already in TSC-deadline
// mode). A snapshot taken before msrs_saved_explicitly() were saved lacks them: they get their
// power-on value, 0 for every one but the PAT (Intel SDM vol. 3A, 13.12.4 "Programming the
// PAT": 0x0007040600070406), which is what the template's vCPU held, since the guest kernel
// writes neither.
void split_msrs(const VcpuState& s, std::vector<MsrValue>* early, std::vector<MsrValue>* late) {
  early->reserve(s.msrs.size() + msrs_saved_explicitly().size());
  for (const auto& m : s.msrs) (m.index == kMsrTscDeadline && s.lapic ? *late : *early).push_back(m);
  for (uint32_t i : msrs_saved_explicitly()) {
    bool have = false;
    for (const auto& m : s.msrs) have |= m.index == i;
    if (!have) early->push_back({i, i == 0x277 ? 0x0007040600070406ull : 0});
  }
}

// The FPU and extended state: KVM_SET_XSAVE when saved (its legacy region holds everything
// KVM_SET_FPU would set: x87, SSE registers and MXCSR; Intel SDM vol. 1, 13.4.1), else
// KVM_SET_FPU; then the XCRs.
Status restore_fpu(int fd, const VcpuState& s, size_t xsave_bytes) {
  if (s.xsave.empty()) {
    VF_TRY(kvm_ioctl(fd, KVM_SET_FPU, &s.fpu, "KVM_SET_FPU"));
  } else {
    if (s.xsave.size() != xsave_bytes)
      return plain_error("KVM_SET_XSAVE: saved area is " + std::to_string(s.xsave.size()) +
                         " bytes, this host's is " + std::to_string(xsave_bytes));
    VF_TRY(kvm_ioctl(fd, KVM_SET_XSAVE, s.xsave.data(), "KVM_SET_XSAVE"));
  }
  if (s.xcrs) VF_TRY(kvm_ioctl(fd, KVM_SET_XCRS, &*s.xcrs, "KVM_SET_XCRS"));
  return {};
}

}  // namespace

bool msr_excluded_from_snapshot(uint32_t index) {
  switch (index) {
    // The time-stamp counter: a clone keeps reading the host TSC, so the guest's (clock_tsc,
    // clock_realtime_ns) pair from BootInfo stays a correct wall clock after a restore on the
    // same host. Writing the template's TSC back would move the clone's clock back to the moment
    // the template was frozen. IA32_TSC_ADJUST (0x3b) is saved and restored: KVM's
    // host-initiated write of it only sets the register and leaves the TSC offset alone
    // (arch/x86/kvm/x86.c, MSR_IA32_TSC_ADJUST), so restoring it cannot move the clock, and a
    // job's value must not reach the next job (docs/snapshot-format.md, "MSRs").
    case 0x10:  // IA32_TIME_STAMP_COUNTER
      return true;
    default:
      return false;
  }
}

const std::vector<uint32_t>& msrs_saved_explicitly() {
  // Guest-writable MSRs KVM saves and restores but leaves out of KVM_GET_MSR_INDEX_LIST (QEMU
  // saves them by name too). MTRRs (Intel SDM vol. 3A, 12.11 "Memory Type Range Registers"):
  // the variable-range base/mask pairs 0x200-0x20f (KVM gives a vCPU 8, MTRRcap 0xfe VCNT;
  // MTRRcap itself is read-only), the fixed ranges 0x250, 0x258, 0x259, 0x268-0x26f and
  // MTRRdefType 0x2ff; the PAT (0x277) and IA32_TSC_ADJUST (0x3b) are in the index list, but
  // named here as well so that a host whose list lacks them still resets them.
  static const std::vector<uint32_t> list = [] {
    std::vector<uint32_t> l;
    for (uint32_t i = 0x200; i <= 0x20f; i++) l.push_back(i);
    l.insert(l.end(), {0x250, 0x258, 0x259});
    for (uint32_t i = 0x268; i <= 0x26f; i++) l.push_back(i);
    l.insert(l.end(), {0x2ff, 0x277, kMsrTscAdjust});
    return l;
  }();
  return list;
}

const std::vector<uint32_t>& msrs_saved_if_present() {
  // Readable and writable on this PVM host yet absent from its KVM_GET_MSR_INDEX_LIST (probed
  // with KVM_GET_MSRS/KVM_SET_MSRS on a fresh vCPU), and writable by a guest whose CPUID has the
  // feature: IA32_SPEC_CTRL 0x48, IA32_TSX_CTRL 0x122, IA32_XFD/XFD_ERR 0x1c4/0x1c5,
  // TSC_AUX 0xc0000103 (what RDTSCP/RDPID return), and the machine-check banks: MCi_CTL,
  // MCi_STATUS, MCi_ADDR, MCi_MISC at 0x400 + 4i for the 32 banks KVM gives a vCPU
  // (IA32_MCG_CAP 0x179 count; a guest may write MCi_STATUS once HWCR bit 18 is set on AMD).
  static const std::vector<uint32_t> list = [] {
    std::vector<uint32_t> l = {0x48, 0x122, 0x1c4, 0x1c5, 0xc0000103};
    for (uint32_t i = 0x400; i < 0x480; i++) l.push_back(i);
    return l;
  }();
  return list;
}

Result<VcpuState> Vcpu::save(bool with_lapic) const {
  VcpuState s;
  const int fd = this->fd();
  VF_TRY(kvm_ioctl(fd, KVM_GET_MP_STATE, &s.mp_state, "KVM_GET_MP_STATE"));
  VF_TRY(get_regs(&s.regs));
  VF_TRY(get_sregs(&s.sregs));
  VF_TRY(kvm_ioctl(fd, KVM_GET_FPU, &s.fpu, "KVM_GET_FPU"));
  if (size_t n = kvm_->xsave_bytes()) {
    s.xsave.resize(n);
    if (n > sizeof(kvm_xsave)) {
      VF_TRY(kvm_ioctl(fd, KVM_GET_XSAVE2, s.xsave.data(), "KVM_GET_XSAVE2"));
    } else {
      VF_TRY(kvm_ioctl(fd, KVM_GET_XSAVE, s.xsave.data(), "KVM_GET_XSAVE"));
    }
  }
  if (kvm_->has_xcrs()) {
    kvm_xcrs x{};
    VF_TRY(kvm_ioctl(fd, KVM_GET_XCRS, &x, "KVM_GET_XCRS"));
    s.xcrs = x;
  }
  VF_TRY(kvm_ioctl(fd, KVM_GET_DEBUGREGS, &s.debugregs, "KVM_GET_DEBUGREGS"));
  if (with_lapic) {
    kvm_lapic_state l{};
    VF_TRY(kvm_ioctl(fd, KVM_GET_LAPIC, &l, "KVM_GET_LAPIC"));
    s.lapic = l;
  }
  std::vector<uint32_t> wanted;
  for (uint32_t i : kvm_->msr_index_list())
    if (!msr_excluded_from_snapshot(i)) wanted.push_back(i);
  for (const auto* l : {&msrs_saved_explicitly(), &msrs_saved_if_present()})
    for (uint32_t i : *l)
      if (std::find(wanted.begin(), wanted.end(), i) == wanted.end()) wanted.push_back(i);
  if (std::find(wanted.begin(), wanted.end(), kMsrPvmControl) == wanted.end())
    wanted.push_back(kMsrPvmControl);  // read fails (and is skipped) on a host without PVM
  VF_ASSIGN(s.msrs, read_msrs(fd, wanted));
  VF_TRY(kvm_ioctl(fd, KVM_GET_VCPU_EVENTS, &s.events, "KVM_GET_VCPU_EVENTS"));
  return s;
}

Status Vcpu::restore(const VcpuState& s) {
  const int fd = this->fd();
  VF_TRY(set_sregs(s.sregs));
  std::vector<MsrValue> early, late;
  split_msrs(s, &early, &late);
  VF_TRY(restore_msrs(fd, early, &msr_refused_));
  VF_TRY(set_regs(s.regs));
  VF_TRY(restore_fpu(fd, s, kvm_->xsave_bytes()));
  if (s.lapic) VF_TRY(kvm_ioctl(fd, KVM_SET_LAPIC, &*s.lapic, "KVM_SET_LAPIC"));
  VF_TRY(restore_msrs(fd, late, &msr_refused_));
  VF_TRY(kvm_ioctl(fd, KVM_SET_DEBUGREGS, &s.debugregs, "KVM_SET_DEBUGREGS"));
  VF_TRY(kvm_ioctl(fd, KVM_SET_VCPU_EVENTS, &s.events, "KVM_SET_VCPU_EVENTS"));
  VF_TRY(kvm_ioctl(fd, KVM_SET_MP_STATE, &s.mp_state, "KVM_SET_MP_STATE"));
  refused_checked_for_ = &s;
  return {};
}

Status Vcpu::reset(const VcpuState& s) {
  constexpr uint32_t kSync = KVM_SYNC_X86_REGS | KVM_SYNC_X86_EVENTS;
  if (sync_fields_ < 0) sync_fields_ = kvm_->check_extension(KVM_CAP_SYNC_REGS);
  // With a LAPIC the documented order matters (TSC deadline after the LAPIC): the full restore.
  if ((uint32_t(sync_fields_) & kSync) != kSync || s.lapic) return restore(s);
  const int fd = this->fd();
  // The sregs by ioctl and before the MSRs, as in restore(): PVM's native mode (the control
  // MSR kMsrPvmControl) does not survive a later write of CR0/CR4/EFER. Measured: with the
  // sregs synced at the next KVM_RUN instead, the guest kernel ran emulated after the reset,
  // ~600 instructions at ~1 us each per job.
  VF_TRY(set_sregs(s.sregs));
  std::vector<MsrValue> early, late;
  split_msrs(s, &early, &late);
  if (!restore_msrs(fd, early, &msr_refused_, refused_checked_for_ != &s).ok()) return restore(s);
  refused_checked_for_ = &s;
  VF_TRY(restore_fpu(fd, s, kvm_->xsave_bytes()));
  VF_TRY(kvm_ioctl(fd, KVM_SET_DEBUGREGS, &s.debugregs, "KVM_SET_DEBUGREGS"));
  // Without an in-kernel LAPIC a vCPU's MP state stays RUNNABLE: HLT exits to user space
  // instead of halting in KVM (arch/x86/kvm/x86.c, __kvm_emulate_halt), and INIT/SIPI need a
  // LAPIC. Only a state that is not RUNNABLE has to be written.
  if (s.mp_state.mp_state != KVM_MP_STATE_RUNNABLE)
    VF_TRY(kvm_ioctl(fd, KVM_SET_MP_STATE, &s.mp_state, "KVM_SET_MP_STATE"));
  // Registers and events ride in kvm_run (KVM_CAP_SYNC_REGS, Documentation/virt/kvm/api.rst
  // "kvm_valid_regs / kvm_dirty_regs"): KVM applies them on the next KVM_RUN, before the guest
  // runs, as KVM_SET_REGS and KVM_SET_VCPU_EVENTS would; two ioctls fewer.
  run_->s.regs.regs = s.regs;
  run_->s.regs.events = s.events;
  run_->kvm_dirty_regs |= kSync;
  return {};
}

Status Vcpu::resync_mmu(const kvm_sregs& sregs) {
  kvm_sregs flipped = sregs;
  flipped.cr3 ^= 1u << 3;  // PWT: a valid CR3 in every paging mode, and not the value set next
  return set_sregs(flipped);
}

}  // namespace vmfork::vmm
