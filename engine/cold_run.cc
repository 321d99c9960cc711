// Cold run (see cold_run.h): create -> boot -> load -> run -> teardown, each phase timed.
#include "engine/cold_run.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "common/fd.h"
#include "engine/fault_names.h"
#include "engine/kernel_image.h"
#include "guest-kernel/abi/vmfork_abi.h"
#include "vmm/boot.h"
#include "vmm/elf.h"
#include "vmm/machine.h"

namespace vmfork::engine {

namespace abi = vmfork::abi;
using vmm::Clock;

namespace {

double us_since(Clock::time_point t) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

Result<std::shared_ptr<const vmm::Kvm>> shared_kvm() {
  static std::mutex mu;
  static std::shared_ptr<const vmm::Kvm> kvm;
  std::lock_guard<std::mutex> lock(mu);
  if (!kvm) {
    VF_ASSIGN(kvm, vmm::Kvm::open());
  }
  return kvm;
}

Result<std::vector<uint8_t>> read_file(const std::string& path, uint64_t max_bytes) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + path);
  struct stat st;
  if (fstat(fd.get(), &st) < 0) return errno_error("fstat " + path);
  if (!S_ISREG(st.st_mode)) return plain_error(path + ": not a regular file");
  if (uint64_t(st.st_size) > max_bytes)
    return plain_error(path + ": " + std::to_string(st.st_size) + " bytes does not fit in guest memory");
  std::vector<uint8_t> buf(size_t(st.st_size));
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = read(fd.get(), buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read " + path);
    if (n == 0) return plain_error(path + ": file shrank while being read");
    got += size_t(n);
  }
  return buf;
}

// argc, envc, then argv, envp and the executable path as NUL-terminated strings.
Result<std::vector<uint8_t>> build_args(const RunSpec& spec, const std::string& exe) {
  std::vector<uint8_t> out(sizeof(abi::ArgsHeader));
  abi::ArgsHeader h{spec.argv.size(), spec.env.size()};
  std::memcpy(out.data(), &h, sizeof h);
  auto add = [&](const std::string& s) { out.insert(out.end(), s.begin(), s.end()); out.push_back(0); };
  for (const auto& a : spec.argv) add(a);
  for (const auto& e : spec.env) add(e);
  add(exe);
  if (out.size() > abi::kArgsCap) return plain_error("arguments and environment exceed 1 MiB");
  return out;
}

uint64_t tsc_khz(vmm::Vcpu& vcpu, const vmm::AccelProbe& probe) {
  int khz = ioctl(vcpu.fd(), KVM_GET_TSC_KHZ, 0);
  if (khz > 0) return uint64_t(khz);
  return probe.pvm_tsc_khz;
}

int signal_of_vector(uint64_t v) {
  switch (v) {
    case 0: case 16: case 19: return 8;   // #DE, #MF, #XM -> SIGFPE
    case 1: case 3: return 5;             // #DB, #BP -> SIGTRAP
    case 6: return 4;                     // #UD -> SIGILL
    case 17: return 7;                    // #AC -> SIGBUS
    default: return 11;                   // #GP, #PF, ... -> SIGSEGV
  }
}

// Fills reason, exit code and fault from how the run stopped.
void classify(const vmm::StopInfo& stop, const abi::Channel& ch, RunResult* r) {
  auto crash = [&](Fault f) {
    r->reason = ExitReason::kCrashed;
    r->exit_code = 128 + (f.signal ? f.signal : 11);
    r->fault = std::move(f);
  };
  switch (stop.kind) {
    case vmm::StopInfo::kTimeout:
      r->reason = ExitReason::kTimeout;
      r->exit_code = 124;
      return;
    case vmm::StopInfo::kOutputLimit:
      r->reason = ExitReason::kOutputLimit;
      r->exit_code = 128 + 25;  // SIGXFSZ, as for a file size limit
      return;
    case vmm::StopInfo::kGuestError: {
      Fault f;
      f.kind = stop.detail.rfind("triple", 0) == 0 ? "triple-fault" : "vm-exit";
      f.message = stop.detail;
      f.signal = 11;
      crash(f);
      return;
    }
    case vmm::StopInfo::kJobEnded: break;
  }
  std::string msg(ch.panic_msg, strnlen(ch.panic_msg, sizeof ch.panic_msg));
  switch (stop.request) {
    case abi::kReqExit:
      r->reason = ExitReason::kExited;
      r->exit_code = int(ch.exit_status & 0xff);
      return;
    case abi::kReqMemLimit:
      r->reason = ExitReason::kMemoryLimit;
      r->exit_code = 128 + 9;
      return;
    case abi::kReqSignal: {
      Fault f;
      f.kind = "signal";
      f.signal = int(ch.exit_status & 0x7f);
      f.name = signal_name(f.signal);
      f.message = "the job raised " + f.name;
      crash(f);
      return;
    }
    case abi::kReqFault: {
      Fault f;
      f.kind = "exception";
      f.vector = ch.fault_vector;
      f.name = exception_name(ch.fault_vector);
      f.error_code = ch.fault_error;
      f.rip = ch.fault_rip;
      f.address = ch.fault_addr;
      f.in_kernel = !ch.fault_user;
      f.signal = signal_of_vector(ch.fault_vector);
      f.message = msg;
      crash(f);
      return;
    }
    default: {  // kReqPanic
      Fault f;
      f.kind = "kernel-panic";
      f.message = msg;
      f.signal = 6;
      crash(f);
      return;
    }
  }
}

}  // namespace

std::vector<std::string> default_env() {
  return {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "TERM=dumb"};
}

Result<RunResult> run_cold(const RunSpec& spec) {
  const auto t_start = Clock::now();
  const auto deadline = spec.timeout.count() > 0 ? t_start + spec.timeout : Clock::time_point::max();
  RunResult result;
  if (spec.argv.empty()) return plain_error("argv must have at least argv[0]");
  uint64_t mem_bytes = (spec.mem_bytes + (2u << 20) - 1) & ~uint64_t((2u << 20) - 1);
  if (mem_bytes < 32u << 20) return plain_error("--mem must be at least 32 MiB");

  // Host-side checks first, so a bad program fails before any VM exists.
  VF_ASSIGN(auto program, read_file(spec.program, mem_bytes / 2));
  VF_TRY(vmm::check_static_program(program, spec.program));
  // /proc/self/exe must be absolute: glibc asserts it (_dl_get_origin).
  char* real = realpath(spec.program.c_str(), nullptr);
  std::string exe = real ? real : spec.program;
  free(real);
  VF_ASSIGN(auto args, build_args(spec, exe));

  // ---- create
  VF_ASSIGN(auto kvm, shared_kvm());
  VF_ASSIGN(auto probe, vmm::probe_accel(*kvm));
  VF_ASSIGN(vmm::Accel accel, vmm::choose_accel(spec.accel, probe));
  result.accel = vmm::accel_name(accel);
  const auto t_create = Clock::now();
  VF_ASSIGN(auto machine, vmm::Machine::create(kvm, mem_bytes));
  result.timings.create_us = us_since(t_create);

  // ---- boot (host part): kernel, page tables, vCPU state
  const auto t_boot = Clock::now();
  auto& mem = machine->memory();
  VF_ASSIGN(uint64_t entry, vmm::load_kernel(mem, embedded_kernel()));
  VF_TRY(vmm::build_kernel_address_space(mem));
  VF_TRY(vmm::setup_boot_vcpu(machine->vcpu(), entry, accel == vmm::Accel::kNative));
  double boot_host_us = us_since(t_boot);

  // ---- load (host part): program image, arguments, boot info
  const auto t_load = Clock::now();
  uint64_t program_end = abi::kProgramGpa + ((program.size() + 4095) & ~uint64_t(4095));
  if (program_end + (16u << 20) > mem_bytes) return plain_error(spec.program + ": too large for --mem");
  VF_TRY(mem.write(abi::kProgramGpa, program));
  VF_TRY(mem.write(abi::kArgsGpa, args));
  auto* boot = mem.at<abi::BootInfo>(abi::kBootInfoGpa);
  *boot = abi::BootInfo{};
  boot->magic = abi::kBootMagic;
  boot->abi_version = (uint64_t(abi::kAbiMajor) << 32) | abi::kAbiMinor;
  boot->flags = (accel == vmm::Accel::kNative ? abi::kFlagNativePvm : 0) |
                (accel == vmm::Accel::kEmulated ? abi::kFlagPvmEmulated : 0) |
                (spec.verbose ? abi::kFlagVerbose : 0);
  boot->mem_bytes = mem_bytes;
  boot->free_gpa = program_end;
  boot->program_gpa = abi::kProgramGpa;
  boot->program_bytes = program.size();
  boot->args_gpa = abi::kArgsGpa;
  boot->args_bytes = args.size();
  boot->stack_bytes = spec.stack_bytes;
  boot->tsc_khz = tsc_khz(machine->vcpu(), probe);
  if (getrandom(boot->entropy, sizeof boot->entropy, 0) != sizeof boot->entropy)
    return errno_error("getrandom for guest entropy");
  // The guest's RDTSC reads the host TSC on these hosts; pair it with CLOCK_REALTIME now.
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  boot->clock_tsc = __rdtsc();
  boot->clock_realtime_ns = uint64_t(now.tv_sec) * 1000000000 + uint64_t(now.tv_nsec);
  std::string captured_out, captured_err;
  vmm::OutputSink out = spec.stdout_sink, err = spec.stderr_sink;
  if (!out) out = [&](std::span<const uint8_t> b) { captured_out.append(reinterpret_cast<const char*>(b.data()), b.size()); };
  if (!err) err = [&](std::span<const uint8_t> b) { captured_err.append(reinterpret_cast<const char*>(b.data()), b.size()); };
  vmm::ChannelDevice channel(mem, spec.stdin_source, out, err, spec.max_output);
  VF_TRY(channel.start());
  double load_host_us = us_since(t_load);

  // ---- run
  const auto t_run = Clock::now();
  VF_ASSIGN(vmm::StopInfo stop, machine->run(channel, deadline));
  double wall_us = us_since(t_run);
  const abi::Channel& ch = channel.page();
  classify(stop, ch, &result);

  // Guest phase split from its TSC stamps (0 when a phase was not reached).
  auto tsc_us = [&](uint64_t a, uint64_t b) {
    return (a && b > a && boot->tsc_khz) ? double(b - a) * 1000.0 / double(boot->tsc_khz) : 0.0;
  };
  double guest_load = tsc_us(ch.tsc_ready, ch.tsc_user_entry);
  double guest_run = tsc_us(ch.tsc_user_entry, ch.tsc_exit);
  result.timings.run_us = guest_run;
  result.timings.load_us = load_host_us + guest_load;
  // Boot gets the rest of the guest's wall time: entry, kernel init and the final exit.
  double rest = wall_us - guest_load - guest_run;
  result.timings.boot_us = boot_host_us + (rest > 0 ? rest : 0);

  result.stdout_data = std::move(captured_out);
  result.stderr_data = std::move(captured_err);
  auto st = channel.save();
  result.stdout_bytes = st.stdout_bytes;
  result.stderr_bytes = st.stderr_bytes;
  result.syscalls = ch.syscalls;
  result.unknown_syscalls = ch.unknown_syscalls;
  result.guest_pages_peak = ch.pages_peak;
  const auto* counts = mem.at<uint32_t>(abi::kSyscallCountGpa);
  for (uint32_t nr = 0; nr < abi::kSyscallCountSlots; nr++)
    if (counts[nr]) result.unknown_by_nr[nr] = counts[nr];
  result.kernel_log = machine->serial().log();

  // ---- teardown
  const auto t_teardown = Clock::now();
  machine.reset();
  result.timings.teardown_us = us_since(t_teardown);
  result.timings.total_us = us_since(t_start);
  return result;
}

}  // namespace vmfork::engine
