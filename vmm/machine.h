// A one-vCPU VM with its guest memory and devices, and the run loop with the KVM exit switch.
// The guest is untrusted: every exit it causes either resumes it or ends the run with a reason;
// none can crash the host process. Thread-safety: one thread drives a Machine at a time.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "vmm/devices/channel.h"
#include "vmm/devices/serial.h"
#include "vmm/guest_memory.h"
#include "vmm/kvm.h"
#include "vmm/rootfs_image.h"
#include "vmm/vcpu_state.h"

namespace vmfork::vmm {

class RunDeadline;

/// Why Machine::run returned.
struct StopInfo {
  enum Kind {
    kJobEnded,     // the guest rang an end-of-job doorbell; `request` tells which
    kTimeout,      // the deadline passed
    kOutputLimit,  // the job exceeded max_output
    kGuestError,   // a VM exit the guest should never cause (triple fault, HLT, MMIO, ...)
    kFreezePoint,  // the guest reached the point a template is frozen at (ChannelDevice::Action)
  } kind;
  uint32_t request = 0;   // kJobEnded: the abi::Request
  std::string detail;     // kGuestError: what happened ("triple fault", "KVM_EXIT_MMIO at 0x...")
  // Returns from KVM_RUN during this run: every exit to vmfork (doorbells, serial, faults) and
  // every signal kick (deadline, guest ticks). KVM-internal exits (EPT faults, interrupts KVM
  // handles itself) never reach user space and are not counted.
  uint64_t exits = 0;
  // Host-measured, around the whole run (every KVM_RUN and the exits handled between them):
  // CLOCK_THREAD_CPUTIME_ID of the vCPU thread (clock_gettime(2)), which on PVM also holds the
  // guest's time in the host's world switcher, and CLOCK_MONOTONIC wall time. Nanoseconds.
  uint64_t cpu_ns = 0, wall_ns = 0;
  // kGuestError from a triple fault while the vCPU ran the job (PVM native mode pushes a fault's
  // frame on the job's stack; with the stack exhausted that push faults too): where it was.
  bool user_shutdown = false;
  uint64_t shutdown_rip = 0, shutdown_rsp = 0;
};

class Machine {
 public:
  /// Everything of a paused machine that is not guest memory (devices outside Machine, such as
  /// the channel, save their own). Restore order: VM, then vCPU, then devices.
  struct State {
    VmState vm;
    VcpuState vcpu;
    Serial::State serial;
  };

  /// Creates the VM, a memslot of `mem_bytes` anonymous memory at GPA 0 and vCPU 0.
  static Result<std::unique_ptr<Machine>> create(std::shared_ptr<const Kvm> kvm, uint64_t mem_bytes);
  /// Same, with guest memory the caller prepared (a restored template's pages).
  /// `irqchip`: create an in-kernel irqchip and PIT before the vCPU.
  static Result<std::unique_ptr<Machine>> create(std::shared_ptr<const Kvm> kvm, GuestMemory mem,
                                                 bool irqchip = false);

  GuestMemory& memory() { return mem_; }
  Vcpu& vcpu() { return *vcpu_; }
  Serial& serial() { return serial_; }

  /// Runs the vCPU until the job ends, the deadline passes, or the guest misbehaves.
  /// Errors: a KVM ioctl failed (a host problem, not the guest's).
  Result<StopInfo> run(ChannelDevice& channel, Clock::time_point deadline);

  /// Captures VM, vCPU and serial state. The vCPU must be stopped (run() returned); an I/O exit
  /// it stopped in is completed first with one KVM_RUN under immediate_exit, as
  /// Documentation/virt/kvm/api.rst (struct kvm_run, immediate_exit) requires before reading
  /// state. Errors: the failing ioctl.
  Result<State> save();
  /// Loads `s` into this (fresh) machine: VM state, then vCPU (vcpu_state.h order), then the
  /// serial device. Errors: the failing ioctl; the machine must then be discarded.
  Status restore(const State& s);
  /// Returns a used machine to `s` in place: completes any pending I/O exit, returns guest memory
  /// to the template's bytes, loads `s` as restore() does and clears the serial log. Memory: the
  /// pages the job changed are copied back in place (GuestMemory::copy_back_changed), so they
  /// stay mapped, and those that differed in more than page-table accessed/dirty bits are listed
  /// for the guest (abi BootInfo.reset_pages); beyond abi::kResetListCap listed pages (or for
  /// anonymous memory, or a job that changed the kernel's translations) every private page is dropped instead
  /// (GuestMemory::discard_private) and the memslot is re-registered, which drops every shadow
  /// translation. `guest`: what the guest kernel takes of a reset (its guest ABI): with kDrop
  /// memory is always dropped and the memslot re-registered; with kListAndResync the vCPU's
  /// MMU is resynced by the VMM when pages are listed (Vcpu::resync_mmu, abi::kResetMmuResynced),
  /// so the guest skips its own CR3 reload.
  /// Errors: the failing pagemap read, madvise or ioctl; the machine must then be discarded.
  enum class ResetAbi {
    kDrop,           // before guest ABI 1.5
    kList,           // 1.5: BootInfo.reset_pages and the reset list
    kListAndResync,  // 1.6 and later: also abi::kResetMmuResynced
  };
  Status reset(const State& s, ResetAbi guest);
  /// Pages the last reset() copied back and listed (0: none, or it dropped memory instead).
  uint64_t last_reset_pages() const { return last_reset_pages_; }
  bool has_irqchip() const { return vm_->has_irqchip(); }

  /// Maps `image` as a read-only memslot (slot 1) at abi::kRootfsGpa and keeps it alive as long
  /// as the machine. Guest memory must end below kRootfsGpa. Errors: the memslot ioctl.
  Status attach_rootfs(std::shared_ptr<const RootfsImage> image);
  const RootfsImage* rootfs() const { return rootfs_.get(); }

 private:
  Machine(GuestMemory mem, std::unique_ptr<Vm> vm, std::unique_ptr<Vcpu> vcpu)
      : mem_(std::move(mem)), vm_(std::move(vm)), vcpu_(std::move(vcpu)) {}

  Status complete_pending_io();
  // Deletes and re-adds memslot 0: KVM then drops every shadow page (all translations).
  Status forget_all_translations();
  Result<StopInfo> run_loop(ChannelDevice& channel, Clock::time_point deadline);
  // Preemption ticks (Channel.tick_*): follow the guest's wanted period; inject one tick.
  Status tick_period(ChannelDevice& channel, RunDeadline& timer, Clock::time_point deadline);
  Status tick(ChannelDevice& channel, RunDeadline& timer, Clock::time_point deadline);
  bool sync_regs_ = false;  // KVM_CAP_SYNC_REGS covers KVM_SYNC_X86_REGS
  std::vector<uint64_t> reset_list_;  // reset(): GPAs of changed pages (abi::kResetListCap)
  uint64_t last_reset_pages_ = 0;

  GuestMemory mem_;  // declared first: destroyed after the VM that maps it
  std::shared_ptr<const RootfsImage> rootfs_;  // likewise
  std::unique_ptr<Vm> vm_;
  std::unique_ptr<Vcpu> vcpu_;
  Serial serial_;
};

}  // namespace vmfork::vmm
