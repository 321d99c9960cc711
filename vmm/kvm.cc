// /dev/kvm wrappers (see kvm.h).
#include "vmm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cstring>
#include <string>

namespace vmfork::vmm {

namespace {

// An ioctl that sets up VM state, retried on EINTR. KVM_CREATE_VM registers an MMU notifier,
// which gives up with EINTR whenever signal_pending() is true, and io_uring task work queued
// for this thread (the page store's reads) makes it true until the next return to user mode:
// seen as "KVM_CREATE_VM: Interrupted system call" right after a template was read.
int setup_ioctl(int fd, unsigned long req, unsigned long arg) {
  int r;
  for (int attempt = 0; attempt < 100; attempt++) {
    r = ioctl(fd, req, arg);
    if (r >= 0 || errno != EINTR) break;
  }
  return r;
}

}  // namespace

Result<std::shared_ptr<const Kvm>> Kvm::open() {
  auto kvm = std::make_shared<Kvm>();
  kvm->fd_ = Fd(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (!kvm->fd_.valid()) return errno_error("open /dev/kvm");
  int version = ioctl(kvm->fd(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION)
    return plain_error("KVM_GET_API_VERSION returned " + std::to_string(version) + ", want 12");
  int size = ioctl(kvm->fd(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (size < int(sizeof(kvm_run))) return errno_error("KVM_GET_VCPU_MMAP_SIZE");
  kvm->vcpu_mmap_size_ = size_t(size);
  // KVM_GET_MSR_INDEX_LIST fails with E2BIG and sets nmsrs to the count needed.
  for (uint32_t n = 256; n <= 16384; n *= 2) {
    std::vector<uint32_t> buf(1 + n);
    buf[0] = n;  // struct kvm_msr_list { __u32 nmsrs; __u32 indices[]; }
    if (ioctl(kvm->fd(), KVM_GET_MSR_INDEX_LIST, buf.data()) == 0) {
      kvm->msr_list_.assign(buf.begin() + 1, buf.begin() + 1 + buf[0]);
      break;
    }
    if (errno != E2BIG) return errno_error("KVM_GET_MSR_INDEX_LIST");
  }
  if (kvm->check_extension(KVM_CAP_XSAVE) > 0) {
    int x2 = kvm->check_extension(KVM_CAP_XSAVE2);
    kvm->xsave_bytes_ = x2 > int(sizeof(kvm_xsave)) ? size_t(x2) : sizeof(kvm_xsave);
  }
  kvm->has_xcrs_ = kvm->check_extension(KVM_CAP_XCRS) > 0;
  kvm->has_adjust_clock_ = kvm->check_extension(KVM_CAP_ADJUST_CLOCK) > 0;
  // KVM_GET_SUPPORTED_CPUID fails with E2BIG until nent is large enough, and each try runs
  // CPUID on the host for every leaf (~0.3 ms): start at 256 (this host needs 76).
  for (uint32_t n = 256; n <= 4096; n *= 2) {
    std::vector<uint8_t> buf(sizeof(kvm_cpuid2) + n * sizeof(kvm_cpuid_entry2));
    auto* c = reinterpret_cast<kvm_cpuid2*>(buf.data());
    c->nent = n;
    if (ioctl(kvm->fd(), KVM_GET_SUPPORTED_CPUID, c) == 0) {
      kvm->cpuid_.assign(c->entries, c->entries + c->nent);
      return std::shared_ptr<const Kvm>(std::move(kvm));
    }
    if (errno != E2BIG) return errno_error("KVM_GET_SUPPORTED_CPUID");
  }
  return plain_error("KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
}

int Kvm::check_extension(long cap) const { return ioctl(fd(), KVM_CHECK_EXTENSION, cap); }

Result<std::unique_ptr<Vm>> Vm::create(std::shared_ptr<const Kvm> kvm) {
  Fd fd(setup_ioctl(kvm->fd(), KVM_CREATE_VM, 0));
  if (!fd.valid()) return errno_error("KVM_CREATE_VM");
  return std::unique_ptr<Vm>(new Vm(std::move(kvm), std::move(fd)));
}

Status Vm::set_memslot(uint32_t slot, uint64_t gpa, void* host, uint64_t bytes, bool read_only) {
  kvm_userspace_memory_region r{};
  r.slot = slot;
  r.flags = read_only ? KVM_MEM_READONLY : 0;
  r.guest_phys_addr = gpa;
  r.memory_size = bytes;
  r.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (setup_ioctl(fd(), KVM_SET_USER_MEMORY_REGION, reinterpret_cast<unsigned long>(&r)) < 0)
    return errno_error("KVM_SET_USER_MEMORY_REGION slot " + std::to_string(slot));
  return {};
}

Result<std::unique_ptr<Vcpu>> Vm::create_vcpu(uint32_t id) {
  Fd fd(setup_ioctl(this->fd(), KVM_CREATE_VCPU, id));
  if (!fd.valid()) return errno_error("KVM_CREATE_VCPU");
  size_t size = kvm_->vcpu_mmap_size();
  void* run = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (run == MAP_FAILED) return errno_error("mmap of the vCPU's kvm_run");
  auto vcpu = std::make_unique<Vcpu>(kvm_, std::move(fd), static_cast<kvm_run*>(run), size);
  VF_TRY(vcpu->set_cpuid(kvm_->supported_cpuid()));
  return vcpu;
}

Vcpu::~Vcpu() {
  if (run_) munmap(run_, run_size_);
}

Result<bool> Vcpu::run() {
  if (ioctl(fd(), KVM_RUN, 0) == 0) return true;
  if (errno == EINTR) return false;
  return errno_error("KVM_RUN");
}

Status Vcpu::get_regs(kvm_regs* r) const {
  if (ioctl(fd(), KVM_GET_REGS, r) < 0) return errno_error("KVM_GET_REGS");
  return {};
}
Status Vcpu::set_regs(const kvm_regs& r) {
  if (ioctl(fd(), KVM_SET_REGS, &r) < 0) return errno_error("KVM_SET_REGS");
  return {};
}
Status Vcpu::get_sregs(kvm_sregs* s) const {
  if (ioctl(fd(), KVM_GET_SREGS, s) < 0) return errno_error("KVM_GET_SREGS");
  return {};
}
Status Vcpu::set_sregs(const kvm_sregs& s) {
  if (ioctl(fd(), KVM_SET_SREGS, &s) < 0) return errno_error("KVM_SET_SREGS");
  return {};
}

Status Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) {
  std::vector<uint8_t> buf(sizeof(kvm_cpuid2) + entries.size() * sizeof(kvm_cpuid_entry2));
  auto* c = reinterpret_cast<kvm_cpuid2*>(buf.data());
  c->nent = uint32_t(entries.size());
  std::memcpy(c->entries, entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  if (ioctl(fd(), KVM_SET_CPUID2, c) < 0) return errno_error("KVM_SET_CPUID2");
  return {};
}

Status Vcpu::set_msrs(const std::vector<MsrValue>& msrs) {
  std::vector<uint8_t> buf(sizeof(kvm_msrs) + msrs.size() * sizeof(kvm_msr_entry));
  auto* m = reinterpret_cast<kvm_msrs*>(buf.data());
  m->nmsrs = uint32_t(msrs.size());
  for (size_t i = 0; i < msrs.size(); i++) {
    m->entries[i] = kvm_msr_entry{};
    m->entries[i].index = msrs[i].index;
    m->entries[i].data = msrs[i].value;
  }
  int n = ioctl(fd(), KVM_SET_MSRS, m);
  if (n < 0) return errno_error("KVM_SET_MSRS");
  if (size_t(n) != msrs.size()) {
    char hex[16];
    snprintf(hex, sizeof hex, "%#x", msrs[size_t(n)].index);
    return plain_error(std::string("KVM_SET_MSRS refused MSR ") + hex);
  }
  return {};
}

Result<uint64_t> Vcpu::get_msr(uint32_t index) const {
  alignas(kvm_msrs) uint8_t buf[sizeof(kvm_msrs) + sizeof(kvm_msr_entry)] = {};
  auto* m = reinterpret_cast<kvm_msrs*>(buf);
  m->nmsrs = 1;
  m->entries[0].index = index;
  int n = ioctl(fd(), KVM_GET_MSRS, m);
  if (n < 0) return errno_error("KVM_GET_MSRS");
  if (n != 1) {
    char hex[16];
    snprintf(hex, sizeof hex, "%#x", index);
    return plain_error(std::string("KVM_GET_MSRS: no MSR ") + hex);
  }
  return m->entries[0].data;
}

}  // namespace vmfork::vmm
