// Shared job plumbing (see guest_job.h).
#include "engine/guest_job.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "common/fd.h"
#include "engine/kernel_image.h"
#include "vmm/boot.h"
#include "vmm/elf.h"

namespace vmfork::engine {

namespace abi = vmfork::abi;

Result<std::shared_ptr<const vmm::Kvm>> shared_kvm() {
  static std::mutex mu;
  static std::shared_ptr<const vmm::Kvm> kvm;
  std::lock_guard<std::mutex> lock(mu);
  if (!kvm) {
    VF_ASSIGN(kvm, vmm::Kvm::open());
  }
  return kvm;
}

Result<Fd> open_program(const std::string& path, uint64_t max_bytes) {
  Fd fd(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + path);
  struct stat st;
  if (fstat(fd.get(), &st) < 0) return errno_error("fstat " + path);
  if (!S_ISREG(st.st_mode)) return plain_error(path + ": not a regular file");
  if (uint64_t(st.st_size) > max_bytes)
    return plain_error(path + ": " + std::to_string(st.st_size) + " bytes is more than " + std::to_string(max_bytes));
  return fd;
}

namespace {

// The whole of regular file `fd` (at most `max_bytes`), read with pread from offset 0.
Result<std::vector<uint8_t>> read_program(int fd, const std::string& path, uint64_t max_bytes) {
  VF_ASSIGN(const struct stat st, stat_program(fd, path, max_bytes));
  std::vector<uint8_t> buf(size_t(st.st_size));
  VF_TRY(read_program_bytes(fd, buf.data(), buf.size(), path));
  return buf;
}

}  // namespace

// argc, envc, then argv, envp and the executable path as NUL-terminated strings.
Result<std::vector<uint8_t>> build_args(const std::vector<std::string>& argv,
                                        const std::vector<std::string>& env, const std::string& exe) {
  std::vector<uint8_t> out(sizeof(abi::ArgsHeader));
  abi::ArgsHeader h{argv.size(), env.size()};
  std::memcpy(out.data(), &h, sizeof h);
  auto add = [&](const std::string& s) { out.insert(out.end(), s.begin(), s.end()); out.push_back(0); };
  for (const auto& a : argv) add(a);
  for (const auto& e : env) add(e);
  add(exe);
  if (out.size() > abi::kArgsCap) return plain_error("arguments and environment exceed 512 KiB");
  return out;
}

Result<JobImage> prepare_job(const std::string& path, const std::vector<std::string>& argv,
                             const std::vector<std::string>& env, uint64_t max_bytes, int program_fd,
                             ProgramCache* programs) {
  if (argv.empty()) return plain_error("argv must have at least argv[0]");
  JobImage job;
  job.path = path;
  Fd opened;
  if (program_fd < 0) {
    VF_ASSIGN(opened, open_program(path, max_bytes));
    program_fd = opened.get();
  }
  if (programs) {
    VF_ASSIGN(job.shared, programs->get(program_fd, path, max_bytes));
  } else {
    VF_ASSIGN(job.program, read_program(program_fd, path, max_bytes));
    VF_TRY(vmm::check_static_program(job.program, path));
  }
  // /proc/self/exe must be absolute: glibc asserts it (_dl_get_origin). The opened file's own
  // name (its /proc/self/fd link) is what ran, whatever the path points to by now.
  std::string exe = path;
  char link[PATH_MAX];
  const std::string fd_link = "/proc/self/fd/" + std::to_string(program_fd);
  ssize_t n = readlink(fd_link.c_str(), link, sizeof link - 1);
  if (n > 0 && link[0] == '/') exe.assign(link, size_t(n));
  VF_ASSIGN(job.args, build_args(argv, env, exe));
  return job;
}

Result<JobImage> prepare_rootfs_job(const std::string& guest_path, const std::vector<std::string>& argv,
                                    const std::vector<std::string>& env) {
  if (argv.empty()) return plain_error("argv must have at least argv[0]");
  if (guest_path.empty()) return plain_error("the program's path is empty");
  JobImage job;
  job.path = guest_path;
  VF_ASSIGN(job.args, build_args(argv, env, guest_path));
  return job;
}

Status link_job_files(vmm::GuestMemory& mem, vmm::ChannelDevice& channel, const JobFiles& files,
                      uint64_t max_collect, JobFilesLink* link) {
  auto* boot = mem.at<abi::BootInfo>(abi::kBootInfoGpa);
  link->decoder = CollectDecoder(max_collect);
  if (files.empty()) {
    link->bundle.clear();
  } else {
    VF_ASSIGN(link->bundle, encode_job_files(files));
  }
  boot->files_bytes = link->bundle.size();
  channel.set_files(link->bundle);
  CollectDecoder* d = &link->decoder;
  channel.set_collect_sink([d](std::span<const uint8_t> w) { return d->take(w); });
  return {};
}

Status refresh_entropy_and_clock(abi::BootInfo* boot) {
  if (getrandom(boot->entropy, sizeof boot->entropy, 0) != sizeof boot->entropy)
    return errno_error("getrandom for guest entropy");
  // The guest's RDTSC reads the host TSC on these hosts; pair it with CLOCK_REALTIME now.
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  boot->clock_tsc = __rdtsc();
  boot->clock_realtime_ns = uint64_t(now.tv_sec) * 1000000000 + uint64_t(now.tv_nsec);
  boot->generation++;  // the guest notices at its next doorbell and takes all of the above
  return {};
}

Result<uint64_t> guest_mem_bytes(uint64_t requested) {
  uint64_t bytes = (requested + (2u << 20) - 1) & ~uint64_t((2u << 20) - 1);
  if (bytes < kMinGuestBytes || bytes < requested)
    return plain_error("guest memory must be at least " + std::to_string(kMinGuestBytes >> 20) + " MiB");
  return bytes;
}

Result<BootedMachine> boot_machine(uint64_t mem_bytes, vmm::Accel accel, const vmm::AccelProbe& probe,
                                   uint64_t stack_bytes, bool verbose, bool irqchip,
                                   std::shared_ptr<const vmm::RootfsImage> rootfs) {
  BootedMachine b;
  const auto t_create = std::chrono::steady_clock::now();
  VF_ASSIGN(auto kvm, shared_kvm());
  VF_ASSIGN(vmm::GuestMemory mem, vmm::GuestMemory::create_anonymous(mem_bytes));
  VF_ASSIGN(b.machine, vmm::Machine::create(kvm, std::move(mem), irqchip));
  vmm::release_probe_vm();  // only now: this VM keeps the host's VM count above zero
  uint64_t rootfs_bytes = rootfs ? rootfs->bytes() : 0;
  if (rootfs) VF_TRY(b.machine->attach_rootfs(std::move(rootfs)));
  b.create_us = us_since(t_create);
  const auto t_boot = std::chrono::steady_clock::now();
  auto& m = b.machine->memory();
  VF_ASSIGN(uint64_t entry, vmm::load_kernel(m, embedded_kernel()));
  VF_TRY(vmm::build_kernel_address_space(m, rootfs_bytes));
  VF_TRY(vmm::setup_boot_vcpu(b.machine->vcpu(), entry, accel == vmm::Accel::kNative));
  b.params = BootParams{accel, verbose, mem_bytes, stack_bytes, guest_tsc_khz(b.machine->vcpu(), probe),
                        rootfs_bytes};
  VF_TRY(init_boot_info(m, b.params));
  b.boot_us = us_since(t_boot);
  return b;
}

Status init_boot_info(vmm::GuestMemory& mem, const BootParams& p) {
  auto* boot = mem.at<abi::BootInfo>(abi::kBootInfoGpa);
  *boot = abi::BootInfo{};
  boot->magic = abi::kBootMagic;
  boot->abi_version = (uint64_t(abi::kAbiMajor) << 32) | abi::kAbiMinor;
  boot->flags = (p.accel == vmm::Accel::kNative ? abi::kFlagNativePvm : 0) |
                (p.accel == vmm::Accel::kEmulated ? abi::kFlagPvmEmulated : 0) |
                (p.verbose ? abi::kFlagVerbose : 0);
  boot->mem_bytes = p.mem_bytes;
  boot->free_gpa = abi::kProgramGpa;
  boot->program_gpa = abi::kProgramGpa;
  boot->args_gpa = abi::kArgsGpa;
  boot->stack_bytes = p.stack_bytes;
  boot->tsc_khz = p.tsc_khz;
  boot->rootfs_gpa = p.rootfs_bytes ? abi::kRootfsGpa : 0;
  boot->rootfs_bytes = p.rootfs_bytes;
  return refresh_entropy_and_clock(boot);
}

Status place_job(vmm::GuestMemory& mem, const JobImage& job) {
  uint64_t program_end = abi::kProgramGpa + ((job.program_bytes() + 4095) & ~uint64_t(4095));
  if (program_end + (16u << 20) > mem.size()) return plain_error(job.path + ": too large for --mem");
  if (job.shared) {
    VF_TRY(mem.overlay(abi::kProgramGpa, job.shared->memfd.get(), job.shared->mapped_bytes));
  } else {
    VF_TRY(mem.write(abi::kProgramGpa, job.program));
  }
  VF_TRY(mem.write(abi::kArgsGpa, job.args));
  auto* boot = mem.at<abi::BootInfo>(abi::kBootInfoGpa);
  boot->free_gpa = program_end;
  boot->program_gpa = abi::kProgramGpa;
  boot->program_bytes = job.program_bytes();
  boot->args_gpa = abi::kArgsGpa;
  boot->args_bytes = job.args.size();
  if (!job.shared && job.program.empty()) {
    if (!boot->rootfs_bytes) return plain_error(job.path + ": no root file system to run it from");
    boot->flags |= abi::kFlagExecPath;
  }
  return {};
}

uint64_t guest_tsc_khz(vmm::Vcpu& vcpu, const vmm::AccelProbe& probe) {
  int khz = ioctl(vcpu.fd(), KVM_GET_TSC_KHZ, 0);
  if (khz > 0) return uint64_t(khz);
  return probe.pvm_tsc_khz;
}

void collect_counters(const vmm::ChannelDevice& channel, vmm::Machine& machine, RunResult* r) {
  const abi::Channel& ch = channel.page();
  auto st = channel.save();
  r->stdout_bytes = st.stdout_bytes;
  r->stderr_bytes = st.stderr_bytes;
  // Guest-written counts, bounded by what the host saw: no syscall takes less than a nanosecond
  // of vCPU time (r->host comes first, from measure_run).
  const uint64_t cpu_ns = uint64_t(r->host.vcpu_cpu_us * 1000);
  r->syscalls = std::min<uint64_t>(ch.syscalls, cpu_ns);
  r->unknown_syscalls = std::min<uint64_t>(ch.unknown_syscalls, r->syscalls);
  // Guest-written: clamp to what the guest has, so a huge claim cannot overflow a byte count.
  const uint64_t mem_pages = machine.memory().size() / 4096;
  r->guest_pages_peak = std::min<uint64_t>(ch.pages_peak, mem_pages);
  r->guest.memory_peak_bytes = r->guest_pages_peak * 4096;
  const auto* counts = machine.memory().at<uint32_t>(abi::kSyscallCountGpa);
  for (uint32_t nr = 0; nr < abi::kSyscallCountSlots; nr++)
    if (counts[nr]) r->unknown_by_nr[nr] = counts[nr];
  r->kernel_log = machine.serial().log();
}

void measure_run(const vmm::StopInfo& stop, const abi::Channel& ch, uint64_t tsc_khz, uint64_t tsc_floor,
                 const vmm::GuestMemory* mem, RunResult* r) {
  r->host.wall_us = double(stop.wall_ns) / 1000.0;
  r->host.vcpu_cpu_us = double(stop.cpu_ns) / 1000.0;
  r->host.vm_exits = stop.exits;
  if (mem) {
    auto pages = mem->private_resident_pages();
    r->host.memory_bytes = pages.ok() ? *pages * 4096 : 0;
  }
  // Guest TSC stamps: only a pair written after this job's clock was set (tsc_floor) and in
  // order counts, and no phase is longer than the host saw the vCPU run.
  const double wall = r->host.wall_us;
  auto tsc_us = [&](uint64_t a, uint64_t b) {
    if (!tsc_khz || a < tsc_floor || b <= a) return 0.0;
    return std::min(wall, double(b - a) * 1000.0 / double(tsc_khz));
  };
  r->guest.load_us = tsc_us(ch.tsc_ready, ch.tsc_user_entry);
  r->guest.run_us = tsc_us(ch.tsc_user_entry, ch.tsc_exit);
  if (r->guest.load_us + r->guest.run_us > wall) r->guest.load_us = wall - r->guest.run_us;
}

static vmm::OutputSink append_to(std::string* s) {
  return [s](std::span<const uint8_t> b) { s->append(reinterpret_cast<const char*>(b.data()), b.size()); };
}

vmm::OutputSink CapturedOutput::stdout_sink(const vmm::OutputSink& given) {
  return given ? given : append_to(&out);
}

vmm::OutputSink CapturedOutput::stderr_sink(const vmm::OutputSink& given) {
  return given ? given : append_to(&err);
}

std::vector<std::string> default_env() {
  return {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "TERM=dumb"};
}

}  // namespace vmfork::engine
