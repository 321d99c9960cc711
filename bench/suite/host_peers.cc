// Bare host process and the KVM floor (see host_peers.h).
#include "bench/suite/host_peers.h"

#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "engine/guest_job.h"
#include "vmm/guest_memory.h"
#include "vmm/kvm.h"

extern char** environ;

namespace vmfork::bench {

namespace {

using Clock = std::chrono::steady_clock;
double us_since(Clock::time_point t) { return std::chrono::duration<double, std::micro>(Clock::now() - t).count(); }

// posix_spawn(3) of PROGRAM ARGS with stdio inherited, then waitpid(2). Returns microseconds.
Result<double> spawn_wait(const SuiteOptions& opt) {
  std::vector<char*> argv;
  for (const auto& a : opt.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const auto t0 = Clock::now();
  pid_t pid;
  int e = posix_spawn(&pid, opt.program.c_str(), nullptr, nullptr, argv.data(), environ);
  if (e != 0) return Error{"posix_spawn " + opt.program, e};
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return errno_error("waitpid");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return plain_error(opt.program + " did not exit 0");
  return us_since(t0);
}

}  // namespace

PeerResult run_bare_process(const SuiteOptions& opt) {
  PeerResult p{"bare-process", "posix_spawn + waitpid of the same program on the host, no isolation"};
  p.not_measured["restore_us"] = "no snapshot: a process starts from its executable";
  p.not_measured["snapshot_create_us"] = "no snapshot";
  p.not_measured["bytes_on_disk"] = "no snapshot";
  p.not_measured["private_kib_per_clone"] = "not comparable: a short-lived host process, not a clone";
  opt.say("bare-process: " + std::to_string(opt.latency_reps) + " spawns");
  for (int i = 0; i < opt.latency_reps + 1; i++) {
    auto r = spawn_wait(opt);
    if (!r.ok()) {
      p.reason = r.error().message();
      return p;
    }
    if (i) p.samples["job_us"].push_back(*r);
  }
  for (int workers : {1, 2}) {
    opt.say("bare-process: jobs/s with " + std::to_string(workers) + " worker(s)");
    for (int round = 0; round < opt.throughput_rounds; round++) {
      std::atomic<uint64_t> done{0};
      std::atomic<bool> failed{false};
      const auto t0 = Clock::now();
      const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.throughput_round_s));
      std::vector<std::thread> threads;
      for (int w = 0; w < workers; w++)
        threads.emplace_back([&] {
          while (!failed && Clock::now() < end) {
            if (!spawn_wait(opt).ok()) failed = true;
            else done++;
          }
        });
      for (auto& t : threads) t.join();
      if (failed) {
        p.reason = "spawn failed during the throughput round";
        return p;
      }
      p.samples["jobs_per_s_" + std::to_string(workers)].push_back(double(done) / (us_since(t0) / 1e6));
    }
  }
  p.ran = true;
  return p;
}

PeerResult run_kvm_floor(const SuiteOptions& opt) {
  PeerResult p{"kvm-floor",
               "KVM_CREATE_VM + 2 MiB memslot + vCPU (with CPUID) + first KVM_RUN of one HLT; teardown apart"};
  p.not_measured["job_us"] = "runs no job";
  p.not_measured["jobs_per_s_1"] = p.not_measured["jobs_per_s_2"] = "runs no job";
  p.not_measured["snapshot_create_us"] = p.not_measured["bytes_on_disk"] = "no snapshot";
  p.not_measured["private_kib_per_clone"] = "no guest state";
  auto kvm = engine::shared_kvm();
  if (!kvm.ok()) {
    p.reason = kvm.error().message();
    return p;
  }
  opt.say("kvm-floor: " + std::to_string(opt.latency_reps) + " create + first KVM_RUN");
  std::vector<double> teardown;
  std::string exit_reason;
  for (int i = 0; i < opt.latency_reps + 1; i++) {
    auto once = [&]() -> Result<double> {
      const auto t0 = Clock::now();
      VF_ASSIGN(auto vm, vmm::Vm::create(*kvm));
      VF_ASSIGN(vmm::GuestMemory mem, vmm::GuestMemory::create_anonymous(2ull << 20));
      VF_TRY(vm->set_memslot(0, 0, mem.host(), mem.size()));
      VF_ASSIGN(auto vcpu, vm->create_vcpu(0));
      // Real mode at 0x1000: CS base 0, IP 0x1000, one HLT (0xF4).
      mem.host()[0x1000] = 0xF4;
      kvm_sregs s{};
      VF_TRY(vcpu->get_sregs(&s));
      s.cs.base = 0;
      s.cs.selector = 0;
      VF_TRY(vcpu->set_sregs(s));
      kvm_regs r{};
      r.rip = 0x1000;
      r.rflags = 2;
      VF_TRY(vcpu->set_regs(r));
      for (int tries = 0; tries < 100; tries++) {
        VF_ASSIGN(bool exited, vcpu->run());
        if (exited) break;
      }
      const double us = us_since(t0);
      exit_reason = std::to_string(vcpu->run_struct()->exit_reason);
      const auto t1 = Clock::now();
      vcpu.reset();
      vm.reset();
      { vmm::GuestMemory gone = std::move(mem); }
      teardown.push_back(us_since(t1));
      return us;
    };
    auto r = once();
    if (!r.ok()) {
      p.reason = r.error().message();
      return p;
    }
    if (i) p.samples["restore_us"].push_back(*r);
  }
  auto t = summarize(teardown);
  p.extra["teardown_us"] = {{"min", t.min}, {"median", t.median}, {"max", t.max}};
  p.extra["first_exit_reason"] = exit_reason;  // KVM_EXIT_* number (5 = HLT)
  p.ran = true;
  return p;
}

}  // namespace vmfork::bench
