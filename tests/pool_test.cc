// Warm pool on real VMs: clones are handed out ready, jobs in them give correct results, and in
// reset mode a job in a reused clone sees nothing of the previous job: not its memory (checked
// inside the guest and byte for byte against the template from the host), not its open files,
// not its registers, not its output. Needs /dev/kvm.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <xxhash.h>

#include <filesystem>
#include <set>
#include <string>

#include "engine/guest_job.h"
#include "guest-kernel/abi/vmfork_abi.h"
#include "engine/restore.h"
#include "engine/template.h"
#include "kvm_test_util.h"
#include "pool/warm_pool.h"

using namespace vmfork;
using namespace std::chrono_literals;

namespace {

const std::string kPrograms = VMFORK_TEST_PROGRAMS;

class Pool : public testing::Test {
 protected:
  void SetUp() override {
    VMFORK_REQUIRE_KVM();
    std::string tmpl = testing::TempDir() + "/vmfork_pool_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto s = snapshot::PageStore::open(dir_ / "store");
    ASSERT_TRUE(s.ok()) << s.error().message();
    store_ = std::move(s).value();
    engine::TemplateSpec spec;
    spec.name = "base";
    spec.mem_bytes = 128ull << 20;
    auto c = engine::create_template(spec, *store_);
    ASSERT_TRUE(c.ok()) << c.error().message();
    auto img = engine::TemplateImage::load(*store_, "base");
    ASSERT_TRUE(img.ok()) << img.error().message();
    image_ = *img;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  engine::RunResult run(pool::WarmPool& p, std::vector<std::string> argv, const std::string& in = "") {
    vmm::StringInput input(in);
    engine::CloneJob job;
    job.program = argv[0];
    job.argv = std::move(argv);
    job.env = engine::default_env();
    job.stdin_source = &input;
    auto r = p.run(job, 10s);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() ? std::move(r).value() : engine::RunResult{};
  }

  std::filesystem::path dir_;
  std::unique_ptr<snapshot::PageStore> store_;
  std::shared_ptr<const engine::TemplateImage> image_;
};

TEST_F(Pool, FreshModeHandsOutReadyClonesAndRefills) {
  auto p = pool::WarmPool::create(image_, {2, pool::Mode::kFresh});
  ASSERT_TRUE(p.ok()) << p.error().message();
  ASSERT_TRUE((*p)->wait_ready(10s));
  for (int i = 0; i < 6; i++) {
    auto r = run(**p, {"/bin/busybox", "echo", "job", std::to_string(i)});
    EXPECT_EQ(r.stdout_data, "job " + std::to_string(i) + "\n");
  }
  ASSERT_TRUE((*p)->wait_ready(10s));
  auto st = (*p)->stats();
  EXPECT_EQ(st.acquires, 6u);
  EXPECT_GE(st.restores, 8u);  // 2 to start, one per job
  EXPECT_EQ(st.restore_failures, 0u);
  EXPECT_EQ(st.ready, 2u);
}

TEST_F(Pool, ClonesGetFreshEntropyEveryTime) {
  auto p = pool::WarmPool::create(image_, {2, pool::Mode::kReset});
  ASSERT_TRUE(p.ok());
  std::set<std::string> seen;
  for (int i = 0; i < 4; i++) {
    auto r = run(**p, {"/bin/busybox", "od", "-An", "-tx1", "-N16", "/dev/urandom"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_TRUE(seen.insert(r.stdout_data).second) << "repeated random bytes: " << r.stdout_data;
  }
}

uint64_t memfd_hash(const engine::TemplateImage& img) {
  void* p = mmap(nullptr, img.mem_bytes(), PROT_READ, MAP_PRIVATE, img.memfd(), 0);
  EXPECT_NE(p, MAP_FAILED);
  uint64_t h = XXH3_64bits(p, img.mem_bytes());
  munmap(p, img.mem_bytes());
  return h;
}

TEST_F(Pool, ResetCloneKeepsNothingOfThePreviousJob) {
  // Directly on one clone, so the host can inspect it between jobs.
  auto clone = engine::restore_clone(image_);
  ASSERT_TRUE(clone.ok()) << clone.error().message();
  const std::string prog = kPrograms + "/leave_traces.glibc";
  vmm::StringInput none("");
  engine::CloneJob dirty;
  dirty.program = prog;
  dirty.argv = {prog, "dirty", "XYZZY-SECRET-4711"};
  dirty.env = engine::default_env();
  dirty.stdin_source = &none;
  auto r1 = engine::run_job_in(*clone, dirty);
  ASSERT_TRUE(r1.ok()) << r1.error().message();
  EXPECT_EQ(r1->exit_code, 0);
  EXPECT_NE(r1->stdout_data.find("XYZZY-SECRET-4711"), std::string::npos);

  ASSERT_TRUE(engine::reset_clone(*clone).ok());
  // Memory: byte for byte the template's again; registers: the template's.
  auto& mem = clone->machine->memory();
  EXPECT_EQ(XXH3_64bits(mem.host(), mem.size()), memfd_hash(*image_));
  auto regs = clone->machine->vcpu().save(false);
  ASSERT_TRUE(regs.ok());
  EXPECT_EQ(0, memcmp(&regs->regs, &image_->state().machine.vcpu.regs, sizeof regs->regs));
  EXPECT_EQ(regs->sregs.cr3, image_->state().machine.vcpu.sregs.cr3);

  // And the next job, run in the same clone, finds nothing: no secret, no open fds, no output.
  vmm::StringInput none2("");
  engine::CloneJob check = dirty;
  check.argv = {prog, "check", "XYZZY-SECRET-4711"};
  check.stdin_source = &none2;
  auto r2 = engine::run_job_in(*clone, check);
  ASSERT_TRUE(r2.ok()) << r2.error().message();
  EXPECT_EQ(r2->stdout_data, "clean\n");
  EXPECT_EQ(r2->exit_code, 0);
  EXPECT_EQ(r2->stdout_bytes, 6u);  // only its own output
}

TEST_F(Pool, ResetForgetsTheLastJobsTranslations) {
  // A job that changes few pages: the reset copies them back in place and the guest makes the
  // host's shadow page tables forget them (BootInfo.reset_pages). The next job must fault on
  // the addresses the last one mapped, as on a fresh clone, not reach the pages behind them.
  auto clone = engine::restore_clone(image_);
  ASSERT_TRUE(clone.ok()) << clone.error().message();
  const std::string prog = kPrograms + "/leave_traces.glibc";
  for (int round = 0; round < 3; round++) {
    vmm::StringInput none("");
    engine::CloneJob job;
    job.program = prog;
    job.argv = {prog, "map", "XYZZY-SECRET-4711"};
    job.env = engine::default_env();
    job.stdin_source = &none;
    auto r1 = engine::run_job_in(*clone, job);
    ASSERT_TRUE(r1.ok()) << r1.error().message();
    EXPECT_EQ(r1->exit_code, 0) << r1->stdout_data;
    ASSERT_TRUE(engine::reset_clone(*clone).ok());
    EXPECT_GT(clone->machine->last_reset_pages(), 0u) << "the reset copied nothing back in place";
    auto& mem = clone->machine->memory();
    // Memory is the template's but for the reset list and its count, which the next job reads.
    auto* boot = mem.at<vmfork::abi::BootInfo>(vmfork::abi::kBootInfoGpa);
    EXPECT_EQ(boot->reset_pages, clone->machine->last_reset_pages());

    vmm::StringInput none2("");
    job.argv = {prog, "check", "XYZZY-SECRET-4711"};
    job.stdin_source = &none2;
    auto r2 = engine::run_job_in(*clone, job);
    ASSERT_TRUE(r2.ok()) << r2.error().message();
    EXPECT_EQ(r2->stdout_data, "clean\n");
    EXPECT_EQ(r2->exit_code, 0);
    ASSERT_TRUE(engine::reset_clone(*clone).ok());
  }
}

TEST_F(Pool, ResetModeReusesClonesAndStaysCorrect) {
  auto p = pool::WarmPool::create(image_, {2, pool::Mode::kReset});
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*p)->wait_ready(10s));
  const std::string prog = kPrograms + "/leave_traces.glibc";
  for (int i = 0; i < 4; i++) {
    auto d = run(**p, {prog, "dirty", "SECRET-" + std::to_string(i)});
    EXPECT_EQ(d.exit_code, 0);
    auto c = run(**p, {prog, "check", "SECRET-" + std::to_string(i)});
    EXPECT_EQ(c.stdout_data, "clean\n");
  }
  ASSERT_TRUE((*p)->wait_ready(10s));
  auto st = (*p)->stats();
  EXPECT_EQ(st.restores, 2u);  // never more clones than the depth
  EXPECT_EQ(st.resets, 8u);
  EXPECT_EQ(st.reset_failures, 0u);
}

TEST_F(Pool, NoCloneReadyIsAnErrorNotAHang) {
  auto p = pool::WarmPool::create(image_, {1, pool::Mode::kFresh});
  ASSERT_TRUE(p.ok());
  vmm::StringInput in("");
  engine::CloneJob job;
  job.program = "/bin/busybox";
  job.argv = {"busybox", "true"};
  job.stdin_source = &in;
  // A zero wait right at creation usually finds nothing ready; either outcome must be clean.
  auto r = (*p)->run(job, 0s);
  if (!r.ok()) {
    EXPECT_NE(r.error().message().find("no clone ready"), std::string::npos);
  }
  EXPECT_FALSE(pool::WarmPool::create(image_, {0, pool::Mode::kFresh}).ok());
}

}  // namespace
