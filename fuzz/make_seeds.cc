// Writes the seed corpora of the binary-format targets under fuzz/corpus/ (run from the
// repository root): a small valid manifest, small valid packs, and default-valued state
// sections. Regenerate after a format change: `fuzz/run.sh --seeds`.
// Thread-safety: a single-threaded tool.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/snapshot_state.h"
#include "snapshot/format.h"
#include "snapshot/manifest.h"
#include "snapshot/pack.h"
#include "snapshot/page_hash.h"

using namespace vmfork;
using namespace vmfork::snapshot;

namespace {

void write(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::perror(path.c_str());
  if (f) std::fclose(f);
}

std::vector<uint8_t> pack(uint32_t pages, uint32_t frame_pages) {
  std::vector<uint8_t> mem(size_t(pages) * kPageBytes);
  for (size_t i = 0; i < mem.size(); i++) mem[i] = uint8_t((i / 7) % 5 == 0 ? i : 'a' + i % 3);
  std::vector<PageHash> keys;
  for (uint32_t p = 0; p < pages; p++)
    keys.push_back(hash_page({mem.data() + size_t(p) * kPageBytes, kPageBytes}));
  std::vector<uint8_t> bytes = encode_pack_header(1, 0xfeed);
  std::vector<FrameInfo> frames;
  FrameCodec codec(3);
  for (uint32_t first = 0; first < pages; first += frame_pages) {
    uint32_t n = std::min(frame_pages, pages - first);
    std::vector<uint8_t> out;
    if (!codec.compress({mem.data() + size_t(first) * kPageBytes, size_t(n) * kPageBytes}, &out).ok())
      std::abort();
    frames.push_back({bytes.size(), uint32_t(out.size()), n, checksum64(out), first});
    bytes.insert(bytes.end(), out.begin(), out.end());
  }
  auto tail = encode_pack_tail(frames, keys, bytes.size());
  bytes.insert(bytes.end(), tail.begin(), tail.end());
  return bytes;
}

std::vector<uint8_t> tagged(uint8_t tag, std::vector<uint8_t> b) {
  b.insert(b.begin(), tag);
  return b;
}

}  // namespace

int main() {
  std::vector<Section> sections{{1, {1, 2, 3}}, {7, std::vector<uint8_t>(100, 0xab)}, {3, {}}};
  std::vector<PackRef> packs{{1, 0x1111}, {4, 0x4444}};
  std::vector<PageRun> runs{{0, 3, {1, 0, 0}}, {3, 1, {4, 2, 5}}, {10, 4, {1, 1, 0}}, {100, 1, {4, 0, 0}}};
  Template t("web-1.0_x", 128 * kPageBytes, 1'700'000'000'123'456'789ull, R"({"accel":"native"})",
             std::move(sections), std::move(packs), std::move(runs));
  write("fuzz/corpus/manifest/sample", encode_manifest(t));
  Template empty("e", 8 * kPageBytes, 0, "{}", {}, {}, {});
  write("fuzz/corpus/manifest/empty", encode_manifest(empty));
  write("fuzz/corpus/pack/one-frame", pack(2, 4));
  write("fuzz/corpus/pack/three-frames", pack(5, 2));
  write("fuzz/corpus/state/vcpu", tagged(0, engine::encode_vcpu(vmm::VcpuState{})));
  write("fuzz/corpus/state/vm", tagged(1, engine::encode_vm(vmm::VmState{})));
  write("fuzz/corpus/state/serial", tagged(2, engine::encode_serial(vmm::Serial::State{})));
  write("fuzz/corpus/state/channel", tagged(3, engine::encode_channel(vmm::ChannelDevice::State{})));
  return 0;
}
