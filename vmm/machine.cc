// VM, run loop and exit switch (see machine.h).
#include "vmm/machine.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "common/timing.h"
#include "guest-kernel/abi/vmfork_abi.h"
#include "vmm/run_deadline.h"

namespace vmfork::vmm {

namespace abi = vmfork::abi;

Result<std::unique_ptr<Machine>> Machine::create(std::shared_ptr<const Kvm> kvm, uint64_t mem_bytes) {
  VF_ASSIGN(GuestMemory mem, GuestMemory::create_anonymous(mem_bytes));
  return create(std::move(kvm), std::move(mem));
}

Result<std::unique_ptr<Machine>> Machine::create(std::shared_ptr<const Kvm> kvm, GuestMemory mem,
                                                 bool irqchip) {
  // The channel and boot pages are reached at fixed addresses: refuse memory too small for them.
  if (mem.size() < abi::kMinMemBytes)
    return plain_error("guest memory of " + std::to_string(mem.size()) + " bytes is below the ABI minimum of " +
                       std::to_string(abi::kMinMemBytes) + " bytes");
  VF_ASSIGN(auto vm, Vm::create(std::move(kvm)));
  if (irqchip) VF_TRY(vm->create_irqchip());
  VF_TRY(vm->set_memslot(0, 0, mem.host(), mem.size()));
  VF_ASSIGN(auto vcpu, vm->create_vcpu(0));
  bool sync_regs = (vm->kvm().check_extension(KVM_CAP_SYNC_REGS) & KVM_SYNC_X86_REGS) != 0;
  auto m = std::unique_ptr<Machine>(new Machine(std::move(mem), std::move(vm), std::move(vcpu)));
  m->sync_regs_ = sync_regs;
  return m;
}

Status Machine::attach_rootfs(std::shared_ptr<const RootfsImage> image) {
  if (mem_.size() > abi::kRootfsGpa) return plain_error("guest memory overlaps the rootfs image's GPA range");
  // Read-only: a write is an MMIO exit (a guest error), so no guest can change what others see.
  VF_TRY(vm_->set_memslot(1, abi::kRootfsGpa, const_cast<uint8_t*>(image->host()), image->slot_bytes(), true));
  rootfs_ = std::move(image);
  return {};
}

Status Machine::complete_pending_io() {
  kvm_run* run = vcpu_->run_struct();
  run->immediate_exit = 1;
  auto entered = vcpu_->run();  // completes a pending KVM_EXIT_IO, then returns EINTR at once
  run->immediate_exit = 0;
  if (!entered.ok()) return entered.error();
  return {};
}

// A reused clone keeps at most this many private pages (32 MiB) between jobs; beyond it a reset
// drops them all (Machine::reset).
constexpr uint64_t kResetKeepMaxPages = 8192;

Status Machine::reset(const State& s, ResetAbi guest) {
  VF_TRY(complete_pending_io());
  // Pages the job changed go back to the template's bytes in place (they stay mapped, so the
  // next job does not fault on them again), and the guest learns which ones, so that the host's
  // shadow of its page tables forgets them (BootInfo.reset_pages). The guest can only do that
  // through translations the job cannot have bent: those of the kernel half, which run through
  // the upper half of the PML4 the clone resumes on (the template's CR3) and the VMM-built
  // kernel tables (abi::kPageTableGpa..kPageTableEnd; the boot PML4 first, whose lower half a
  // kernel-ready job's first process uses). If the job changed any of that, too many pages, or
  // the clone would keep too many private pages, memory is dropped instead and the memslot
  // deleted and re-added, which zaps every shadow page.
  auto* list = mem_.at<uint64_t>(abi::kResetListGpa);
  uint64_t listed = 0;
  bool drop = !mem_.is_file_mapping() || guest == ResetAbi::kDrop;
  if (!drop) {
    // Listed into a host buffer first: the list's own pages are among those copied back.
    reset_list_.resize(abi::kResetListCap);
    const uint64_t resume_pml4 = s.vcpu.sregs.cr3 & ~uint64_t(0xfff);
    auto classify = [](uint64_t gpa, const uint8_t* now, const uint8_t* file, const void* ctx) {
      using Change = GuestMemory::PageChange;
      // Whether 8-byte entries [first, last) differ in more than the accessed and dirty bits
      // (5, 6), which the CPU (here the shadow MMU) sets in the guest's page-table entries as
      // the job touches memory (Intel SDM vol. 3A, 4.8 "Accessed and Dirty Flags").
      auto bent = [&](size_t first, size_t last) {
        constexpr uint64_t kAccessedDirty = 0x60;
        for (size_t i = first; i < last; i++) {
          uint64_t a, b;
          std::memcpy(&a, now + 8 * i, 8);
          std::memcpy(&b, file + 8 * i, 8);
          if ((a ^ b) & ~kAccessedDirty) return true;
        }
        return false;
      };
      // A page that differs only in those bits maps the same frames with the same rights,
      // whether or not it is a page table: no cached translation can be wrong, so it is not
      // listed, and the shadow pages built from it (the job's program, stack and kernel data
      // each sit behind one) survive the reset. Listing it would have the next job fault
      // every translation through it again (~34 us each here).
      if (!bent(0, 512)) return Change::kQuiet;
      const uint64_t pml4 = *static_cast<const uint64_t*>(ctx);
      if (gpa == pml4 || gpa == abi::kPageTableGpa)  // a PML4: its kernel half
        return bent(256, 512) ? Change::kCritical : Change::kList;
      return gpa >= abi::kPageTableGpa && gpa < abi::kPageTableEnd ? Change::kCritical : Change::kList;
    };
    VF_ASSIGN(auto copy, mem_.copy_back_changed(reset_list_.data(), reset_list_.size(), classify,
                                                &resume_pml4));
    drop = copy.critical || copy.listed > abi::kResetListCap || copy.private_pages > kResetKeepMaxPages;
    if (!drop) {
      std::memcpy(list, reset_list_.data(), copy.listed * sizeof(uint64_t));
      listed = copy.listed;
    }
  }
  if (drop) {
    VF_TRY(mem_.discard_private());
    VF_TRY(forget_all_translations());
  }
  // Listed pages: the guest drops their shadows on resume, and unsynchronized shadow pages
  // must be checked again (the CR3 reload the guest would do, on PVM an emulated instruction
  // on the next job's path): done here, off that path, with one more KVM_SET_SREGS.
  uint64_t resynced = 0;
  if (listed && guest == ResetAbi::kListAndResync) {
    VF_TRY(vcpu_->resync_mmu(s.vcpu.sregs));
    resynced = abi::kResetMmuResynced;
  }
  if (vm_->has_irqchip()) {
    VF_TRY(restore(s));
  } else {
    // No in-kernel devices: the VM-wide state is only the kvmclock base (Vm::restore), which
    // no guest can move (a guest's MSR_KVM_SYSTEM_TIME_NEW only says where to publish it, and
    // is among the MSRs reset here), so the vCPU is all there is to put back.
    VF_TRY(vcpu_->reset(s.vcpu));
    serial_.restore(s.serial);
  }
  mem_.at<abi::BootInfo>(abi::kBootInfoGpa)->reset_pages = listed | resynced;
  last_reset_pages_ = listed;
  serial_.clear_log();
  return {};
}

Status Machine::forget_all_translations() {
  VF_TRY(vm_->set_memslot(0, 0, mem_.host(), 0));
  return vm_->set_memslot(0, 0, mem_.host(), mem_.size());
}

Result<Machine::State> Machine::save() {
  VF_TRY(complete_pending_io());
  State s;
  VF_ASSIGN(s.vm, vm_->save());
  VF_ASSIGN(s.vcpu, vcpu_->save(vm_->has_irqchip()));
  s.serial = serial_.save();
  return s;
}

Status Machine::restore(const State& s) {
  VF_TRY(vm_->restore(s.vm));
  VF_TRY(vcpu_->restore(s.vcpu));
  serial_.restore(s.serial);
  return {};
}

// Tick periods the guest may ask for are clamped to [kMinTickNs, kMaxTickNs]: a hostile guest must
// not make the VMM spin on a 1 ns timer.
constexpr uint64_t kMinTickNs = 1000000, kMaxTickNs = 1000000000;

Status Machine::tick_period(ChannelDevice& channel, RunDeadline& timer, Clock::time_point deadline) {
  uint64_t want = channel.page().tick_ns;  // guest-written
  if (want) want = std::clamp(want, kMinTickNs, kMaxTickNs);
  if (want == timer.period_ns()) return {};
  VF_TRY(timer.set_period(want, deadline));
  channel.mutable_page()->tick_armed = want;
  // With KVM_CAP_SYNC_REGS every exit leaves the registers in kvm_run (no KVM_GET_REGS, ~13 us
  // per ioctl on PVM): ask for them only while ticks run (Documentation/virt/kvm/api.rst,
  // kvm_valid_regs / kvm_dirty_regs).
  if (sync_regs_) vcpu_->run_struct()->kvm_valid_regs = want ? KVM_SYNC_X86_REGS : 0;
  return {};
}

// A tick: if the vCPU is in the job, save the job's registers into the channel and send it to the
// kernel's trampoline (docs/guest-abi.md "Preemption"); in the kernel, do nothing (the kernel
// checks its time slice on every return to the job). The trampoline address is guest-written;
// any value only moves the guest's own RIP.
Status Machine::tick(ChannelDevice& channel, RunDeadline& timer, Clock::time_point deadline) {
  abi::Channel* c = channel.mutable_page();
  if (!c->tick_ns) {
    c->tick_armed = 0;
    if (sync_regs_) vcpu_->run_struct()->kvm_valid_regs = 0;
    return timer.set_period(0, deadline);
  }
  if (c->tick_ns != timer.period_ns()) VF_TRY(tick_period(channel, timer, deadline));
  kvm_run* run = vcpu_->run_struct();
  bool synced = sync_regs_ && (run->kvm_valid_regs & KVM_SYNC_X86_REGS);
  kvm_regs local;
  if (!synced) VF_TRY(vcpu_->get_regs(&local));
  kvm_regs& r = synced ? run->s.regs.regs : local;
  if (r.rip >= 0x800000000000ull || !c->tick_entry) return {};
  const uint64_t regs[18] = {r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8,
                             r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags};
  std::memcpy(c->tick_regs, regs, sizeof regs);
  c->tick_count++;
  r.rip = c->tick_entry;
  r.rflags &= ~0x10100ull;  // no single-step (TF) or resume flag (RF) into the trampoline
  if (!synced) return vcpu_->set_regs(r);
  run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
  return {};
}

static std::string hex(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "%#llx", static_cast<unsigned long long>(v));
  return b;
}

Result<StopInfo> Machine::run(ChannelDevice& channel, Clock::time_point deadline) {
  const uint64_t cpu0 = thread_cpu_ns();
  const auto wall0 = std::chrono::steady_clock::now();
  auto stop = run_loop(channel, deadline);
  // Whatever stopped the job (timeout, fault, a guest error), the output the guest kernel had
  // already written into the channel buffers is the job's: drain it. A guest that corrupted
  // the buffer lengths loses only that output; the stop reason stands.
  if (stop.ok() && stop->kind != StopInfo::kFreezePoint) (void)channel.drain_output();
  if (stop.ok()) {
    stop->cpu_ns = thread_cpu_ns() - cpu0;
    stop->wall_ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now() - wall0).count());
  }
  return stop;
}

Result<StopInfo> Machine::run_loop(ChannelDevice& channel, Clock::time_point deadline) {
  kvm_run* run = vcpu_->run_struct();
  // Ticks (and synced registers) start when the guest asks. kvm_dirty_regs stays: a reset
  // (Vcpu::reset) leaves the template's registers there for this KVM_RUN to apply.
  run->kvm_valid_regs = 0;
  VF_ASSIGN(auto timer, RunDeadline::arm(run, deadline));
  StopInfo stop{StopInfo::kGuestError};
  const size_t run_size = vm_->kvm().vcpu_mmap_size();
  for (;;) {
    VF_ASSIGN(bool exited, vcpu_->run());
    stop.exits++;
    if (!exited || run->exit_reason == KVM_EXIT_INTR) {
      // Clear the kick flag before reading the clock: a deadline signal landing in between
      // then still stops the next KVM_RUN at once.
      run->immediate_exit = 0;
      if (Clock::now() >= deadline) {
        stop.kind = StopInfo::kTimeout;
        return stop;
      }
      if (timer->period_ns()) VF_TRY(tick(channel, *timer, deadline));
      continue;
    }
    switch (run->exit_reason) {
      case KVM_EXIT_IO: {
        auto& io = run->io;
        // data_offset and size come from KVM, but check them before touching the page.
        uint64_t bytes = uint64_t(io.size) * io.count;
        if (io.data_offset > run_size || bytes > run_size - io.data_offset) {
          stop.detail = "KVM_EXIT_IO with out-of-range data";
          return stop;
        }
        uint8_t* data = reinterpret_cast<uint8_t*>(run) + io.data_offset;
        if (io.port == abi::kDoorbellPort && io.direction == KVM_EXIT_IO_OUT && io.size == 4 && io.count == 1) {
          uint32_t value;
          std::memcpy(&value, data, 4);
          auto action = channel.on_doorbell(value, deadline);
          if (!action.ok()) {
            stop.detail = action.error().what;
            return stop;
          }
          switch (*action) {
            case ChannelDevice::Action::kResume: break;
            case ChannelDevice::Action::kJobEnded:
              stop.kind = StopInfo::kJobEnded;
              stop.request = value;
              return stop;
            case ChannelDevice::Action::kOutputLimit:
              stop.kind = StopInfo::kOutputLimit;
              return stop;
            case ChannelDevice::Action::kTimeout:
              stop.kind = StopInfo::kTimeout;
              return stop;
            case ChannelDevice::Action::kTicks:
              VF_TRY(tick_period(channel, *timer, deadline));
              break;
            case ChannelDevice::Action::kFreezePoint:
              stop.kind = StopInfo::kFreezePoint;
              stop.request = value;
              return stop;
          }
        } else if (Serial::handles(io.port) && io.size == 1) {
          for (uint32_t i = 0; i < io.count; i++) {
            if (io.direction == KVM_EXIT_IO_OUT) serial_.out(io.port, data[i]);
            else data[i] = serial_.in(io.port);
          }
        } else if (io.direction == KVM_EXIT_IO_IN) {
          std::memset(data, 0xff, bytes);  // no device: the bus floats high
        }
        break;
      }
      case KVM_EXIT_HLT:
        stop.detail = "guest executed HLT";
        return stop;
      case KVM_EXIT_SHUTDOWN: {
        stop.detail = "triple fault (KVM_EXIT_SHUTDOWN)";
        // In PVM native mode a fault in the job pushes its frame on the job's own stack; when
        // that stack is exhausted the push faults again and the VM shuts down.
        kvm_regs r;
        if (vcpu_->get_regs(&r).ok() && r.rip < 0x800000000000ull) {
          stop.user_shutdown = true;
          stop.shutdown_rip = r.rip;
          stop.shutdown_rsp = r.rsp;
          stop.detail += " in the job at rip " + hex(r.rip) + ", rsp " + hex(r.rsp) +
                         ": a fault whose frame could not be pushed on the job's stack (stack overflow)";
        }
        return stop;
      }
      case KVM_EXIT_MMIO:
        stop.detail = "access to unmapped guest-physical address " + hex(run->mmio.phys_addr);
        return stop;
      case KVM_EXIT_FAIL_ENTRY:
        stop.detail = "KVM_EXIT_FAIL_ENTRY, hardware reason " + hex(run->fail_entry.hardware_entry_failure_reason);
        return stop;
      case KVM_EXIT_INTERNAL_ERROR:
        stop.detail = "KVM_EXIT_INTERNAL_ERROR, suberror " + std::to_string(run->internal.suberror);
        return stop;
      default:
        stop.detail = "unexpected KVM exit " + std::to_string(run->exit_reason);
        return stop;
    }
  }
}

}  // namespace vmfork::vmm
