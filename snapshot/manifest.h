// Template manifests (`templates/<name>.vft`): what a template is (name, guest memory size,
// creation time, opaque metadata JSON and state sections) and its page map, which says for
// every non-zero guest page where its bytes are stored (pack, frame, slot). Encoding and fully
// validating decoding of the file; byte layout in format.h and docs/snapshot-format.md.
// Thread-safety: plain values; const members may be used from several threads.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "snapshot/format.h"

namespace vmfork::snapshot {

/// One opaque state section (encoded vCPU, VM or device state, filled by the engine). Tags are
/// unique within a template; bytes.size() <= format::kMaxSectionBytes.
struct Section {
  uint32_t tag = 0;
  std::vector<uint8_t> bytes;
  friend bool operator==(const Section&, const Section&) = default;
};

/// Where one stored page is: page `slot` of frame `frame` (index in the pack's frame list) of
/// pack file `pack` (its id).
struct PageLoc {
  uint32_t pack = 0, frame = 0, slot = 0;
  friend bool operator==(const PageLoc&, const PageLoc&) = default;
};

/// `pages` consecutive guest pages starting at guest page number `first_gpn` (gpn = guest
/// physical address / kPageBytes) stored in consecutive slots of one frame: page first_gpn + i
/// is at {loc.pack, loc.frame, loc.slot + i}.
struct PageRun {
  uint64_t first_gpn = 0;
  uint32_t pages = 0;
  PageLoc loc;
  friend bool operator==(const PageRun&, const PageRun&) = default;
};

/// A pack a template uses and the nonce its header must carry (so a pack id reused after a
/// reclaim is never taken for the pack the template was written against).
struct PackRef {
  uint32_t id = 0;
  uint64_t nonce = 0;
  friend bool operator==(const PackRef&, const PackRef&) = default;
};

/// A template as recorded by its manifest.
class Template {
 public:
  Template() = default;
  /// `runs` sorted by first_gpn, not overlapping; `packs` sorted by id, one per pack the runs use.
  /// decode_manifest() validates all of that for data from disk.
  Template(std::string name, uint64_t mem_bytes, uint64_t created_unix_ns, std::string metadata_json,
           std::vector<Section> sections, std::vector<PackRef> packs, std::vector<PageRun> runs);

  const std::string& name() const { return name_; }
  /// Guest memory size in bytes (a multiple of kPageBytes).
  uint64_t mem_bytes() const { return mem_bytes_; }
  /// Guest memory size in pages.
  uint64_t mem_pages() const { return mem_bytes_ / kPageBytes; }
  /// When the template was made: nanoseconds since the Unix epoch (as given to put).
  uint64_t created_unix_ns() const { return created_unix_ns_; }
  /// The caller's metadata, stored verbatim (the store never parses it).
  const std::string& metadata_json() const { return metadata_json_; }
  const std::vector<Section>& sections() const { return sections_; }
  /// The section with `tag`, or null.
  const Section* section(uint32_t tag) const;
  /// Packs the page map uses, sorted by id.
  const std::vector<PackRef>& packs() const { return packs_; }
  /// The page map: runs sorted by first_gpn, not overlapping; guest pages in no run are zero.
  const std::vector<PageRun>& runs() const { return runs_; }
  /// Where guest page `gpn` is stored, or nullopt if it is a zero page (or gpn >= mem_pages()).
  std::optional<PageLoc> page(uint64_t gpn) const;
  /// Number of guest pages that are not zero (stored, possibly shared).
  uint64_t nonzero_pages() const { return nonzero_pages_; }
  /// Size of the manifest file in bytes (0 for a Template not read from a file).
  uint64_t manifest_bytes() const { return manifest_bytes_; }
  /// Records the size of the file the template was decoded from (decode_manifest does).
  void set_manifest_bytes(uint64_t n) { manifest_bytes_ = n; }
  /// XXH3-128 of the whole manifest file, 32 hex digits ("" for a Template not read from a
  /// file): names the template's mapped memory image (docs/snapshot-format.md, "Memory images").
  /// The page map names immutable packs by id and nonce, so equal digests mean equal memory.
  const std::string& digest() const { return digest_; }
  void set_digest(std::string d) { digest_ = std::move(d); }

 private:
  std::string name_;
  uint64_t mem_bytes_ = 0;
  uint64_t created_unix_ns_ = 0;
  std::string metadata_json_;
  std::vector<Section> sections_;
  std::vector<PackRef> packs_;
  std::vector<PageRun> runs_;
  std::string digest_;
  uint64_t nonzero_pages_ = 0;
  uint64_t manifest_bytes_ = 0;
};

/// OK if `name` is a valid template name: [A-Za-z0-9._-]{1,64}, not starting with '.'.
/// The error says which rule it breaks.
Status check_template_name(std::string_view name);

/// Checks the caller-supplied parts of a template against the format's caps: name, mem_bytes
/// (non-zero multiple of kPageBytes, <= kMaxMemBytes), metadata (<= 64 KiB), sections (<= 64,
/// each <= 16 MiB, unique tags).
Status check_template_fields(std::string_view name, uint64_t mem_bytes, std::string_view metadata_json,
                             std::span<const Section> sections);

/// The manifest file for `t`: header (magic, version, body length, body XXH3-64) + body.
std::vector<uint8_t> encode_manifest(const Template& t);

/// Checks a manifest header (the first kManifestHeaderBytes bytes of a `file_bytes`-long file
/// `path`): magic, version, flags, body length against its cap and the file size. Returns the
/// body length. Lets a reader reject a file before allocating its body.
Result<uint64_t> check_manifest_header(std::span<const uint8_t> header, uint64_t file_bytes, const std::string& path);

/// Decodes a whole manifest file `path` and validates everything that can be checked without
/// the packs: header, body checksum, every length cap, name and mem_bytes rules, unique section
/// tags, pack table sorted and unique, runs sorted, in range, not overlapping, within one frame
/// (slot + pages <= kMaxFramePages) and naming packs of the table. Errors name the path, the
/// byte offset and what was expected.
Result<Template> decode_manifest(std::span<const uint8_t> file, const std::string& path);

}  // namespace vmfork::snapshot
