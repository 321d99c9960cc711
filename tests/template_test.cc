// Template round trips on real VMs: freeze a guest (kernel-ready and stdin-wait), store it in a
// page store, restore it into a fresh VM and check it resumes exactly (memory, registers, the
// program continuing to its correct output); every stateful part through save -> encode ->
// decode -> restore on real KVM state; and a damaged store failing the restore with a clear
// error. Runs in PVM native and emulated mode. Needs /dev/kvm.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>
#include <xxhash.h>

#include <filesystem>
#include <set>
#include <fstream>
#include <iterator>
#include <string>

#include "engine/guest_job.h"
#include "engine/restore.h"
#include "engine/template.h"
#include "kvm_test_util.h"
#include "vcpu_compare.h"

using namespace vmfork;
using engine::ExitReason;

namespace {

const std::string kPrograms = VMFORK_TEST_PROGRAMS;

std::filesystem::path temp_store() {
  std::string tmpl = testing::TempDir() + "/vmfork_store_XXXXXX";
  char* d = mkdtemp(tmpl.data());
  EXPECT_NE(d, nullptr);
  return std::filesystem::path(tmpl) / "store";
}

uint64_t memory_hash(const vmm::GuestMemory& m) { return XXH3_64bits(m.host(), m.size()); }

std::string mode_name(const testing::TestParamInfo<vmm::AccelRequest>& i) {
  return i.param == vmm::AccelRequest::kNative ? "Native" : "Emulated";
}

class Templates : public testing::TestWithParam<vmm::AccelRequest> {
 protected:
  void SetUp() override {
    VMFORK_REQUIRE_KVM();
    auto s = snapshot::PageStore::open(temp_store());
    ASSERT_TRUE(s.ok()) << s.error().message();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    if (store_) std::filesystem::remove_all(store_->dir().parent_path());
  }
  engine::TemplateSpec spec(const std::string& name, const std::string& program = "") {
    engine::TemplateSpec s;
    s.name = name;
    s.accel = GetParam();
    s.mem_bytes = 128ull << 20;
    if (!program.empty()) {
      s.program = program;
      s.argv = {program};
      s.env = engine::default_env();
    }
    return s;
  }
  std::unique_ptr<snapshot::PageStore> store_;
};

engine::RunResult run_job(engine::Clone clone, const std::string& program, std::vector<std::string> argv,
                          const std::string& input) {
  vmm::StringInput in(input);
  engine::CloneJob job;
  job.program = program;
  job.argv = std::move(argv);
  job.env = engine::default_env();
  job.stdin_source = &in;
  auto r = engine::run_clone(std::move(clone), job);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return r.ok() ? std::move(r).value() : engine::RunResult{};
}

// Stores a frozen guest the way create_template does, keeping the frozen machine to compare.
void store_frozen(snapshot::PageStore& store, const std::string& name, const engine::Frozen& f) {
  snapshot::TemplateInput in;
  in.name = name;
  in.created_unix_ns = 1;
  in.metadata_json = f.metadata_json;
  in.sections = engine::encode_state(f.state);
  in.memory = std::span<const uint8_t>(f.machine->memory().host(), f.machine->memory().size());
  auto put = store.put(in);
  ASSERT_TRUE(put.ok()) << put.error().message();
}

TEST_P(Templates, KernelReadyRestoresExactlyAndRunsJobs) {
  auto frozen = engine::freeze_template(spec("kernel"));
  ASSERT_TRUE(frozen.ok()) << frozen.error().message();
  EXPECT_EQ(frozen->point, engine::FreezePoint::kKernelReady);
  store_frozen(*store_, "kernel", *frozen);

  auto clone = engine::restore_clone(*store_, "kernel");
  ASSERT_TRUE(clone.ok()) << clone.error().message();
  // Memory and every register came back exactly.
  EXPECT_EQ(memory_hash(clone->machine->memory()), memory_hash(frozen->machine->memory()));
  vmm::VcpuState now;
  {
    auto s = clone->machine->vcpu().save(false);
    ASSERT_TRUE(s.ok()) << s.error().message();
    now = *s;
  }
  expect_same_vcpu(frozen->state.machine.vcpu, now);

  auto r = run_job(std::move(*clone), "/bin/busybox", {"busybox", "echo", "hello", "clone"}, "");
  EXPECT_EQ(r.reason, ExitReason::kExited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_data, "hello clone\n");

  // A second clone of the same template runs a different program with stdin.
  auto clone2 = engine::restore_clone(*store_, "kernel");
  ASSERT_TRUE(clone2.ok()) << clone2.error().message();
  auto r2 = run_job(std::move(*clone2), "/bin/busybox", {"busybox", "wc", "-c"}, "12345");
  EXPECT_EQ(r2.stdout_data, "5\n");
}

TEST_P(Templates, StdinWaitProgramContinuesToItsOutput) {
  auto frozen = engine::freeze_template(spec("warm", kPrograms + "/warm_server.glibc"));
  ASSERT_TRUE(frozen.ok()) << frozen.error().message();
  EXPECT_EQ(frozen->point, engine::FreezePoint::kStdinWait);
  EXPECT_EQ(frozen->output, "warm: ready\n");  // printed before the freeze, not by clones
  store_frozen(*store_, "warm", *frozen);

  std::string sum;
  std::set<std::string> random_bytes;
  for (const char* input : {"first clone", "second"}) {
    auto clone = engine::restore_clone(*store_, "warm");
    ASSERT_TRUE(clone.ok()) << clone.error().message();
    EXPECT_EQ(memory_hash(clone->machine->memory()), memory_hash(frozen->machine->memory()));
    auto r = run_job(std::move(*clone), "", {}, input);
    EXPECT_EQ(r.reason, ExitReason::kExited) << r.stdout_data << r.stderr_data;
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.stdout_data.rfind(std::string("input=") + input + "|sum=", 0), 0u) << r.stdout_data;
    // The state the program built before the freeze is the same in every clone.
    auto s = r.stdout_data.substr(r.stdout_data.find("sum="), 20);
    if (sum.empty()) sum = s;
    EXPECT_EQ(s, sum);
    // Fresh entropy per clone, although both resume the same frozen CSPRNG: getrandom and the
    // AT_RANDOM bytes differ between clones (BootInfo.generation).
    auto field = [&](const char* key) {
      size_t at = r.stdout_data.find(key);
      return at == std::string::npos ? std::string() : r.stdout_data.substr(at, strlen(key) + 32);
    };
    EXPECT_TRUE(random_bytes.insert(field("rnd=")).second) << r.stdout_data;
    EXPECT_TRUE(random_bytes.insert(field("at_random=")).second) << r.stdout_data;
    // The clock is the host's, not the template's.
    auto t = std::stoll(r.stdout_data.substr(r.stdout_data.find("time=") + 5));
    EXPECT_NEAR(double(t), double(::time(nullptr)), 5.0);
  }
}

TEST_P(Templates, CreateTemplateThroughTheStoreAndInspect) {
  auto c = engine::create_template(spec("made"), *store_);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_GT(c->put.pages_zero, c->put.pages_total / 2);  // a fresh kernel touches little
  auto c2 = engine::create_template(spec("made-again"), *store_);
  ASSERT_TRUE(c2.ok()) << c2.error().message();
  // The same kernel frozen twice: every page is already in the store except the few that hold
  // per-boot values (BootInfo's entropy and clock, the channel page's TSC stamps, the stack).
  EXPECT_GE(c2->put.pages_deduped + 4, c2->put.pages_total - c2->put.pages_zero);
  auto names = store_->list();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"made", "made-again"}));
  EXPECT_TRUE(store_->verify("made").ok());
  EXPECT_FALSE(engine::create_template(spec("made"), *store_).ok());  // name taken
}

TEST_P(Templates, GuestThatNeverFreezesIsAnError) {
  auto s = spec("bad", kPrograms + "/exit_code.glibc");
  s.argv = {s.program, "7"};
  auto f = engine::freeze_template(s);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message().find("exited with status 7"), std::string::npos) << f.error().message();
}

TEST_P(Templates, IrqchipStateRoundTrips) {
  auto s = spec("chip");
  s.irqchip = true;
  auto frozen = engine::freeze_template(s);
  ASSERT_TRUE(frozen.ok()) << frozen.error().message();
  ASSERT_TRUE(frozen->state.machine.vm.irqchip.has_value());
  ASSERT_TRUE(frozen->state.machine.vcpu.lapic.has_value());
  store_frozen(*store_, "chip", *frozen);
  auto clone = engine::restore_clone(*store_, "chip");
  ASSERT_TRUE(clone.ok()) << clone.error().message();
  auto vm_now = clone->machine->save();
  ASSERT_TRUE(vm_now.ok()) << vm_now.error().message();
  const auto& a = *frozen->state.machine.vm.irqchip;
  const auto& b = *vm_now->vm.irqchip;
  EXPECT_EQ(0, memcmp(&a.pic_master, &b.pic_master, sizeof a.pic_master));
  EXPECT_EQ(0, memcmp(&a.ioapic, &b.ioapic, sizeof a.ioapic));
  EXPECT_EQ(0, memcmp(&frozen->state.machine.vcpu.lapic->regs, &vm_now->vcpu.lapic->regs,
                      sizeof vm_now->vcpu.lapic->regs));
  auto r = run_job(std::move(*clone), "/bin/busybox", {"busybox", "echo", "irqchip"}, "");
  EXPECT_EQ(r.stdout_data, "irqchip\n");
}

TEST_P(Templates, DamagedStoreFailsRestoreWithWhere) {
  auto c = engine::create_template(spec("victim"), *store_);
  ASSERT_TRUE(c.ok()) << c.error().message();
  // Without its memory image the restore must decode the packs again (to rebuild it).
  std::filesystem::remove_all(store_->dir() / "images");
  // Flip one byte in the middle of the (only) pack: the restore must fail, naming the pack.
  std::filesystem::path pack;
  for (auto& e : std::filesystem::directory_iterator(store_->dir() / "packs")) pack = e.path();
  ASSERT_FALSE(pack.empty());
  {
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 + 100);
    char b = 0;
    f.read(&b, 1);
    f.seekp(4096 + 100);
    b = char(b ^ 0x5a);
    f.write(&b, 1);
  }
  auto clone = engine::restore_clone(*store_, "victim");
  ASSERT_FALSE(clone.ok());
  EXPECT_NE(clone.error().message().find(pack.filename().string()), std::string::npos) << clone.error().message();
  EXPECT_FALSE(store_->verify("victim").ok());
}

void flip_byte(const std::filesystem::path& p, uint64_t offset) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(std::streamoff(offset));
  char b = 0;
  f.read(&b, 1);
  f.seekp(std::streamoff(offset));
  b = char(b ^ 0x5a);
  f.write(&b, 1);
  ASSERT_TRUE(f.good()) << p;
}

// Issue 11: the store keeps a ready-to-map image of each template's memory, built with the
// template, used by every later load without decoding the packs, rebuilt when damaged, and
// removed with the template.
TEST_P(Templates, MemoryImageIsBuiltUsedRebuiltAndRemoved) {
  auto s = spec("img", "/bin/busybox");
  s.argv = {"/bin/busybox", "cat"};
  auto c = engine::create_template(s, *store_);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->image_error, "");
  auto t = store_->load("img");
  ASSERT_TRUE(t.ok()) << t.error().message();
  const auto images = store_->dir() / "images";
  const auto path = images / (t->digest() + ".img");
  ASSERT_TRUE(std::filesystem::exists(path));
  ASSERT_TRUE(std::filesystem::exists(images / (t->digest() + ".sum")));
  EXPECT_EQ(std::filesystem::file_size(path), t->mem_bytes());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_LE(uint64_t(st.st_blocks) * 512, (t->nonzero_pages() + 64) * 4096) << "zero pages must be holes";

  auto run_echo = [&](const std::shared_ptr<const engine::TemplateImage>& img, const std::string& word) {
    auto clone = engine::restore_clone(img);
    ASSERT_TRUE(clone.ok()) << clone.error().message();
    auto r = run_job(std::move(*clone), "", {}, word);
    EXPECT_EQ(r.reason, ExitReason::kExited);
    EXPECT_EQ(r.stdout_data, word);
    EXPECT_GE(r.host.vm_exits, 1u);
  };

  // Used as is: with a frame in the pack damaged, a load that decoded the packs would fail.
  std::filesystem::path pack;
  for (auto& e : std::filesystem::directory_iterator(store_->dir() / "packs")) pack = e.path();
  flip_byte(pack, 4096 + 100);
  {
    auto img = engine::TemplateImage::load(*store_, "img");
    ASSERT_TRUE(img.ok()) << img.error().message();
    EXPECT_TRUE((*img)->mapped_image()) << (*img)->image_error();
    EXPECT_FALSE((*img)->image_built());
    run_echo(*img, "mapped\n");
  }
  flip_byte(pack, 4096 + 100);  // repaired
  ASSERT_TRUE(store_->verify("img").ok());

  // A flipped byte in a data page: detected (the write moved the stamp, the content digest
  // differs) and rebuilt from the packs.
  off_t data = 0;
  {
    Fd fd(::open(path.c_str(), O_RDONLY));
    data = ::lseek(fd.get(), 0, SEEK_DATA);
    ASSERT_GE(data, 0);
  }
  flip_byte(path, uint64_t(data) + 17);
  {
    auto img = engine::TemplateImage::load(*store_, "img");
    ASSERT_TRUE(img.ok()) << img.error().message();
    EXPECT_TRUE((*img)->mapped_image());
    EXPECT_TRUE((*img)->image_built());
    EXPECT_NE((*img)->image_rebuilt_because().find("content digest"), std::string::npos)
        << (*img)->image_rebuilt_because();
    run_echo(*img, "rebuilt\n");
  }
  // Truncated: rebuilt.
  std::filesystem::resize_file(path, t->mem_bytes() / 2);
  {
    auto img = engine::TemplateImage::load(*store_, "img");
    ASSERT_TRUE(img.ok()) << img.error().message();
    EXPECT_TRUE((*img)->image_built());
    EXPECT_NE((*img)->image_rebuilt_because().find("size"), std::string::npos) << (*img)->image_rebuilt_because();
    run_echo(*img, "again\n");
  }
  // A byte flipped behind the stamp's back (the stamp rewritten to match, as bit rot under
  // the file system would leave it): only a full verify sees it, and it rebuilds the image.
  {
    auto img = engine::TemplateImage::load(*store_, "img");
    ASSERT_TRUE(img.ok());
    EXPECT_FALSE((*img)->image_built());
  }
  flip_byte(path, uint64_t(data) + 17);
  {
    const auto side = images / (t->digest() + ".sum");
    std::ifstream in(side);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    auto ns = [](const timespec& ts) { return std::to_string(uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec)); };
    text = text.substr(0, text.find("stamp ")) + "stamp " + std::to_string(st.st_dev) + " " + std::to_string(st.st_ino) +
           " " + std::to_string(st.st_size) + " " + ns(st.st_mtim) + " " + ns(st.st_ctim) + "\n";
    std::ofstream(side, std::ios::trunc) << text;
  }
  {
    auto trusted = store_->open_image(*t);  // the stamp matches: trusted without reading it
    ASSERT_TRUE(trusted.ok()) << trusted.error().message();
    EXPECT_FALSE(trusted->built);
    EXPECT_FALSE(trusted->content_checked);
  }
  auto checked = store_->verify_image("img");
  ASSERT_TRUE(checked.ok()) << checked.error().message();
  EXPECT_NE(checked->find("content digest"), std::string::npos) << *checked;
  checked = store_->verify_image("img");  // rebuilt: good now
  ASSERT_TRUE(checked.ok()) << checked.error().message();
  EXPECT_EQ(*checked, "");

  // Missing: rebuilt lazily.
  std::filesystem::remove(path);
  {
    auto img = engine::TemplateImage::load(*store_, "img");
    ASSERT_TRUE(img.ok()) << img.error().message();
    EXPECT_TRUE((*img)->image_built());
    EXPECT_EQ((*img)->image_rebuilt_because(), "");
  }
  // Removed with the template, and gc clears what an interrupted build left.
  { std::ofstream(images / ".stale.1.0.img.tmp") << "x"; }
  ASSERT_TRUE(store_->remove("img").ok());
  EXPECT_TRUE(std::filesystem::is_empty(images));
}

INSTANTIATE_TEST_SUITE_P(Accel, Templates,
                         testing::Values(vmm::AccelRequest::kNative, vmm::AccelRequest::kEmulated), mode_name);

// ---- The command line, end to end through the vmfork binary.

std::string sh(const std::string& cmd, int* status) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = WEXITSTATUS(pclose(p));
  return out;
}

TEST(TemplateCli, CreateListInspectVerifyRunRemove) {
  VMFORK_REQUIRE_KVM();
  auto store = temp_store();
  std::string vf = std::string(VMFORK_BINARY) + " ";
  std::string st = " --store " + store.string() + " ";
  int rc;
  std::string out = sh(vf + "template" + st + "create base --mem 64M", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("frozen at kernel-ready"), std::string::npos) << out;
  out = sh(vf + "template" + st + "create sha --mem 64M -- /bin/busybox sha256sum", &rc);
  ASSERT_EQ(rc, 0) << out;
  out = sh(vf + "template" + st + "ls", &rc);
  EXPECT_EQ(out, "base\nsha\n");
  out = sh(vf + "template" + st + "inspect sha --json", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"pages_shared\":"), std::string::npos) << out;
  EXPECT_NE(out.find("\"freeze_point\":\"stdin-wait\""), std::string::npos) << out;
  out = sh(vf + "template" + st + "verify sha", &rc);
  EXPECT_EQ(rc, 0) << out;
  out = sh("printf abc | " + vf + "run" + st + "--template sha", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  -\n");
  out = sh(vf + "run" + st + "--template base -- /bin/busybox echo from a clone", &rc);
  EXPECT_EQ(out, "from a clone\n");
  out = sh(vf + "run" + st + "--template sha -- /bin/busybox echo no", &rc);
  EXPECT_EQ(rc, 125) << out;  // the template's program is already running
  out = sh(vf + "run" + st + "--template nope -- /bin/true", &rc);
  EXPECT_EQ(rc, 125);
  EXPECT_NE(out.find("nope"), std::string::npos) << out;
  out = sh(vf + "template" + st + "rm sha", &rc);
  EXPECT_EQ(rc, 0) << out;
  out = sh(vf + "template" + st + "ls", &rc);
  EXPECT_EQ(out, "base\n");
  std::filesystem::remove_all(store.parent_path());
}

// ---- save -> encode -> decode -> restore of each stateful part, on real KVM state.

TEST(StateSections, VcpuAndVmRoundTripThroughTheirEncodings) {
  VMFORK_REQUIRE_KVM();
  engine::TemplateSpec s;
  s.name = "x";
  s.mem_bytes = 64ull << 20;
  s.irqchip = true;
  auto frozen = engine::freeze_template(s);
  ASSERT_TRUE(frozen.ok()) << frozen.error().message();
  const auto& st = frozen->state;
  auto vcpu = engine::decode_vcpu(engine::encode_vcpu(st.machine.vcpu));
  ASSERT_TRUE(vcpu.ok()) << vcpu.error().message();
  auto vm = engine::decode_vm(engine::encode_vm(st.machine.vm));
  ASSERT_TRUE(vm.ok()) << vm.error().message();
  auto serial = engine::decode_serial(engine::encode_serial(st.machine.serial));
  ASSERT_TRUE(serial.ok());
  auto channel = engine::decode_channel(engine::encode_channel(st.channel));
  ASSERT_TRUE(channel.ok());
  EXPECT_EQ(channel->stdout_bytes, st.channel.stdout_bytes);
  EXPECT_EQ(serial->lcr, st.machine.serial.lcr);

  // Restore the decoded state into a fresh VM with a copy of the memory and read it back.
  auto kvm = engine::shared_kvm();
  ASSERT_TRUE(kvm.ok());
  auto mem = vmm::GuestMemory::create_anonymous(frozen->machine->memory().size());
  ASSERT_TRUE(mem.ok());
  std::memcpy(mem->host(), frozen->machine->memory().host(), mem->size());
  auto m = vmm::Machine::create(*kvm, std::move(*mem), true);
  ASSERT_TRUE(m.ok()) << m.error().message();
  vmm::Machine::State decoded{*vm, *vcpu, *serial};
  ASSERT_TRUE((*m)->restore(decoded).ok());
  auto again = (*m)->save();
  ASSERT_TRUE(again.ok()) << again.error().message();
  expect_same_vcpu(st.machine.vcpu, again->vcpu);
  EXPECT_EQ(0, memcmp(&st.machine.vcpu.events, &again->vcpu.events, sizeof again->vcpu.events));
  // PIT channels come back with their programmed state; count_load_time is a host ktime that
  // KVM re-stamps on every load, so it is not compared.
  for (int c = 0; c < 3; c++) {
    const auto& p0 = st.machine.vm.irqchip->pit.channels[c];
    const auto& p1 = again->vm.irqchip->pit.channels[c];
    EXPECT_EQ(p0.count, p1.count);
    EXPECT_EQ(p0.mode, p1.mode);
    EXPECT_EQ(p0.rw_mode, p1.rw_mode);
    EXPECT_EQ(p0.gate, p1.gate);
  }
  // The PVM control MSR is part of the saved set in native mode.
  bool has_ctl = false;
  for (auto& msr : again->vcpu.msrs) has_ctl |= msr.index == vmm::kMsrPvmControl;
  EXPECT_TRUE(has_ctl);
}

TEST(StateSections, TruncatedOrBadSectionsAreRejected) {
  vmm::VcpuState v;
  v.msrs = {{0x10, 1}, {0xc0000080, 0xd01}};
  auto bytes = engine::encode_vcpu(v);
  for (size_t cut : {size_t(0), size_t(3), bytes.size() / 2, bytes.size() - 1}) {
    auto r = engine::decode_vcpu(std::span<const uint8_t>(bytes.data(), cut));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("offset"), std::string::npos) << r.error().message();
  }
  auto bad_version = bytes;
  bad_version[0] = 99;
  auto r = engine::decode_vcpu(bad_version);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("version 99"), std::string::npos) << r.error().message();
  auto trailing = bytes;
  trailing.push_back(0);
  EXPECT_FALSE(engine::decode_vcpu(trailing).ok());
}

}  // namespace

namespace {

TEST(TemplateMeta, OldOrForeignTemplatesAreRefusedWithAReason) {
  vmm::AccelProbe pvm_native{true, true, 2000000};
  engine::TemplateMeta m;
  m.abi_major = 1;
  m.abi_minor = 2;
  m.accel = vmm::Accel::kNative;
  EXPECT_TRUE(engine::check_restorable(m, pvm_native).ok());
  m.abi_minor = 1;  // kernel without BootInfo.generation: clones would share random bytes
  auto r = engine::check_restorable(m, pvm_native);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("re-create"), std::string::npos);
  m.abi_minor = 2;
  m.abi_major = 2;
  EXPECT_FALSE(engine::check_restorable(m, pvm_native).ok());
  m.abi_major = 1;
  EXPECT_FALSE(engine::check_restorable(m, vmm::AccelProbe{}).ok());  // native template, no PVM
  // Metadata from disk: wrong types and out-of-range numbers are errors, never exceptions.
  EXPECT_FALSE(engine::meta_from_json("{\"abi_major\": 4294967297}").ok());
  EXPECT_FALSE(engine::meta_from_json("[1,2]").ok());
  EXPECT_FALSE(engine::meta_from_json("not json").ok());
  m.freeze_point = "kernel-ready";
  auto round = engine::meta_from_json(engine::meta_to_json(m));
  ASSERT_TRUE(round.ok()) << round.error().message();
  EXPECT_EQ(round->abi_minor, 2u);
}

}  // namespace
