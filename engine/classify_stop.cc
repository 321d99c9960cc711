// classify_stop (declared in engine/guest_job.h): how a run ended, decoded from the stop and the
// guest-written channel page. A file of its own so that the channel fuzzer (fuzz/channel_fuzz.cc)
// links it without the VM code. Thread-safety: a pure function.
#include <cstring>

#include "engine/fault_names.h"
#include "engine/guest_job.h"

namespace vmfork::engine {

namespace abi = vmfork::abi;

namespace {

int signal_of_vector(uint64_t v) {
  switch (v) {
    case 0: case 16: case 19: return 8;   // #DE, #MF, #XM -> SIGFPE
    case 1: case 3: return 5;             // #DB, #BP -> SIGTRAP
    case 6: return 4;                     // #UD -> SIGILL
    case 17: return 7;                    // #AC -> SIGBUS
    default: return 11;                   // #GP, #PF, ... -> SIGSEGV
  }
}

}  // namespace

void classify_stop(const vmm::StopInfo& stop, const abi::Channel& ch, RunResult* r) {
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
    case vmm::StopInfo::kGuestError:
      if (stop.user_shutdown) {
        // The job's stack overflowed (or RSP left its memory): report the page fault the CPU
        // could not deliver, as SIGSEGV at the address below RSP that the frame push hit.
        Fault f;
        f.kind = "exception";
        f.vector = 14;
        f.name = exception_name(14);
        f.rip = stop.shutdown_rip;
        f.address = stop.shutdown_rsp - 8;
        f.error_code = 0x6;  // a user-mode write to a page not present
        f.signal = 11;
        f.message = "stack overflow: " + stop.detail;
        f.vmm_observed = true;
        crash(f);
        return;
      }
      [[fallthrough]];
    case vmm::StopInfo::kFreezePoint: {  // only a template creation asks for one
      Fault f;
      f.kind = stop.detail.rfind("triple", 0) == 0 ? "triple-fault" : "vm-exit";
      f.message = stop.kind == vmm::StopInfo::kFreezePoint
                      ? "the guest stopped at a template freeze point during a job"
                      : stop.detail;
      f.signal = 11;
      f.vmm_observed = true;
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
      // The exit code must stay one the job could get from its own exit_group (128 + a real
      // signal): a number outside 1..64 is reported as the SIGSEGV of a broken report.
      const uint64_t sig = ch.exit_status;
      f.signal = sig >= 1 && sig <= 64 ? int(sig) : 11;
      f.name = signal_name(f.signal);
      // The kernel names a reason it chose the signal itself (a deadlock), else the job raised it.
      f.message = sig >= 1 && sig <= 64 ? (msg.empty() ? "the job raised " + f.name : msg)
                                        : "the guest reported signal " + std::to_string(sig) + ", not a signal";
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

}  // namespace vmfork::engine
