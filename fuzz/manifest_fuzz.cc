// libFuzzer target for the manifest reader (snapshot/manifest.cc): the input is a whole
// manifest file. Decoding must never crash or read out of bounds; a manifest that decodes
// must encode to bytes that decode to the same template. Built and run by fuzz/run.sh.
#include <stddef.h>
#include <stdint.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "snapshot/format.h"
#include "snapshot/manifest.h"

using namespace vmfork::snapshot;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes, so that ASan catches any read past the file.
  std::unique_ptr<uint8_t[]> file(new uint8_t[size ? size : 1]);
  if (size) std::memcpy(file.get(), data, size);
  std::span<const uint8_t> bytes(file.get(), size);
  if (size >= format::kManifestHeaderBytes) (void)check_manifest_header(bytes.first(format::kManifestHeaderBytes), size, "fuzz");
  auto t = decode_manifest(bytes, "fuzz");
  if (!t.ok()) return 0;
  auto again = encode_manifest(*t);
  auto back = decode_manifest(again, "fuzz-again");
  if (!back.ok() || encode_manifest(*back) != again) std::abort();
  return 0;
}
