// libFuzzer target for the host side of the guest channel (vmm/devices/channel.cc) driven by
// guest-written bytes, with no KVM: the input is the channel page, the output buffers' first
// bytes, the job-files window, and a list of doorbell values. Each doorbell goes to
// ChannelDevice::on_doorbell (output drain, stdin refill, job-file serving and collection into
// engine::CollectDecoder), then the stop is decoded as the engine does (engine::classify_stop)
// and the collected files rendered. Nothing may crash or read outside guest memory.
// Thread-safety: libFuzzer's single thread. Built and run by fuzz/run.sh.
#include <stddef.h>
#include <stdint.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/guest_job.h"
#include "engine/job_files.h"
#include "guest-kernel/abi/vmfork_abi.h"
#include "vmm/devices/channel.h"
#include "vmm/guest_memory.h"
#include "vmm/machine.h"

using namespace vmfork;
namespace abi = vmfork::abi;

namespace {

// Input layout: [doorbells: 1 byte count n (mod 9), n x 4 bytes] [channel page: up to 4096]
// [window: the rest, into the files window and the start of the stdout/stderr buffers].
struct Reader {
  const uint8_t* p;
  size_t left;
  size_t take(void* dst, size_t n) {
    n = std::min(n, left);
    std::memcpy(dst, p, n);
    p += n;
    left -= n;
    return n;
  }
};

vmm::GuestMemory& memory() {
  static vmm::GuestMemory* mem = [] {
    auto m = vmm::GuestMemory::create_anonymous(abi::kMinMemBytes);
    if (!m.ok()) std::abort();
    return new vmm::GuestMemory(std::move(m).value());
  }();
  return *mem;
}

// A bundle for kReqFiles to serve (its content does not matter to the guest-facing checks).
const std::vector<uint8_t>& bundle() {
  static const std::vector<uint8_t> b = [] {
    engine::JobFiles f;
    f.files.push_back({"/box/in.txt", std::string(3000, 'x'), 0644});
    f.collect = {"/box/out.txt"};
    auto e = engine::encode_job_files(f);
    if (!e.ok()) std::abort();
    return *e;
  }();
  return b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vmm::GuestMemory& mem = memory();
  Reader in{data, size};
  uint8_t count = 0;
  in.take(&count, 1);
  uint32_t bells[8];
  size_t n_bells = count % 9;
  for (size_t i = 0; i < n_bells; i++) {
    bells[i] = 0;
    in.take(&bells[i], 4);
    // Mostly the requests the protocol knows, sometimes anything.
    if (!(bells[i] & 0x80000000u)) bells[i] %= 32;
  }
  auto* page = mem.at<abi::Channel>(abi::kChannelGpa);
  std::memset(static_cast<void*>(page), 0, 4096);
  in.take(page, 4096);
  uint8_t* window = mem.host() + abi::kFilesWindowGpa;
  size_t w = in.take(window, abi::kFilesWindowCap);
  std::memset(window + w, 0, 64 < abi::kFilesWindowCap - w ? 64 : abi::kFilesWindowCap - w);
  // The guest's page as it wrote it, kept for the fields the device resets.
  abi::Channel written;
  std::memcpy(&written, page, sizeof written);

  std::string out, err;
  vmm::StringInput input(std::string(reinterpret_cast<const char*>(data), std::min<size_t>(size, 300)));
  vmm::ChannelDevice channel(
      mem, &input, [&](std::span<const uint8_t> b) { out.append(reinterpret_cast<const char*>(b.data()), b.size()); },
      [&](std::span<const uint8_t> b) { err.append(reinterpret_cast<const char*>(b.data()), b.size()); },
      1 << 16);  // a small output limit: the limit path is reached without copying MiBs per input
  channel.set_files(bundle());
  engine::CollectDecoder decoder(1 << 16);
  channel.set_collect_sink([&](std::span<const uint8_t> b) { return decoder.take(b); });
  // No wait: a kReqSleep or a stdin wait must not stall the fuzzer.
  const auto deadline = vmm::Clock::now();
  vmm::StopInfo stop{vmm::StopInfo::kGuestError};
  for (size_t i = 0; i < n_bells; i++) {
    // The guest writes between doorbells: put its fields back as the input had them.
    page->stdout_len = written.stdout_len;
    page->stderr_len = written.stderr_len;
    page->files_pos = written.files_pos;
    page->files_len = written.files_len;
    if (bells[i] == abi::kReqSleep) page->sleep_until_ns = 0;  // never sleep
    auto a = channel.on_doorbell(bells[i], deadline);
    if (!a.ok()) break;
    if (*a == vmm::ChannelDevice::Action::kJobEnded) {
      stop.kind = vmm::StopInfo::kJobEnded;
      stop.request = bells[i];
      break;
    }
  }
  (void)channel.drain_output();
  engine::RunResult result;
  engine::classify_stop(stop, channel.page(), &result);
  stop.kind = vmm::StopInfo::kJobEnded;
  for (uint32_t req : {abi::kReqExit, abi::kReqFault, abi::kReqSignal, abi::kReqPanic, abi::kReqMemLimit}) {
    stop.request = req;
    engine::RunResult r;
    engine::classify_stop(stop, channel.page(), &r);
    if (r.fault && r.fault->message.size() > sizeof page->panic_msg) std::abort();
  }
  // The decoder keeps at most its byte budget, whatever the records claim.
  size_t kept = 0;
  for (const auto& f : decoder.files()) kept += f.data.size();
  if (kept > (1u << 16)) std::abort();
  return 0;
}
