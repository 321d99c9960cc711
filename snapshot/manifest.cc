// Template manifests: encoding and validating decoding.
#include "snapshot/manifest.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "snapshot/codec.h"
#include "snapshot/page_hash.h"

namespace vmfork::snapshot {

using namespace format;

Template::Template(std::string name, uint64_t mem_bytes, uint64_t created_unix_ns, std::string metadata_json,
                   std::vector<Section> sections, std::vector<PackRef> packs, std::vector<PageRun> runs)
    : name_(std::move(name)),
      mem_bytes_(mem_bytes),
      created_unix_ns_(created_unix_ns),
      metadata_json_(std::move(metadata_json)),
      sections_(std::move(sections)),
      packs_(std::move(packs)),
      runs_(std::move(runs)) {
  for (const PageRun& r : runs_) nonzero_pages_ += r.pages;
}

const Section* Template::section(uint32_t tag) const {
  for (const Section& s : sections_)
    if (s.tag == tag) return &s;
  return nullptr;
}

std::optional<PageLoc> Template::page(uint64_t gpn) const {
  // The last run starting at or before gpn is the only one that can hold it.
  auto it =
      std::upper_bound(runs_.begin(), runs_.end(), gpn, [](uint64_t g, const PageRun& r) { return g < r.first_gpn; });
  if (it == runs_.begin()) return std::nullopt;
  --it;
  if (gpn - it->first_gpn >= it->pages) return std::nullopt;
  PageLoc loc = it->loc;
  loc.slot += static_cast<uint32_t>(gpn - it->first_gpn);
  return loc;
}

Status check_template_name(std::string_view name) {
  const std::string quoted = "template name \"" + std::string(name.substr(0, 80)) + "\"";
  if (name.empty()) return plain_error("template name is empty");
  if (name.size() > kMaxNameBytes)
    return plain_error(quoted + " is " + std::to_string(name.size()) + " bytes, at most " +
                       std::to_string(kMaxNameBytes) + " allowed");
  if (name[0] == '.') return plain_error(quoted + " starts with '.'");
  for (char c : name) {
    bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return plain_error(quoted + " has a character outside [A-Za-z0-9._-]");
  }
  return Status::Ok();
}

Status check_template_fields(std::string_view name, uint64_t mem_bytes, std::string_view metadata_json,
                             std::span<const Section> sections) {
  VF_TRY(check_template_name(name));
  if (mem_bytes == 0 || mem_bytes % kPageBytes != 0 || mem_bytes > kMaxMemBytes)
    return plain_error("template " + std::string(name) + ": memory size " + std::to_string(mem_bytes) +
                       " bytes is not a non-zero multiple of " + std::to_string(kPageBytes) + " up to " +
                       std::to_string(kMaxMemBytes));
  if (metadata_json.size() > kMaxMetadataBytes)
    return plain_error("template " + std::string(name) + ": metadata JSON is " + std::to_string(metadata_json.size()) +
                       " bytes, at most " + std::to_string(kMaxMetadataBytes) + " allowed");
  if (sections.size() > kMaxSections)
    return plain_error("template " + std::string(name) + ": " + std::to_string(sections.size()) +
                       " state sections, at most " + std::to_string(kMaxSections) + " allowed");
  std::set<uint32_t> tags;
  for (const Section& s : sections) {
    if (s.bytes.size() > kMaxSectionBytes)
      return plain_error("template " + std::string(name) + ": state section " + std::to_string(s.tag) + " is " +
                         std::to_string(s.bytes.size()) + " bytes, at most " + std::to_string(kMaxSectionBytes) +
                         " allowed");
    if (!tags.insert(s.tag).second)
      return plain_error("template " + std::string(name) + ": state section tag " + std::to_string(s.tag) +
                         " appears twice");
  }
  return Status::Ok();
}

std::vector<uint8_t> encode_manifest(const Template& t) {
  Writer body;
  body.str(t.name());
  body.u64(t.mem_bytes());
  body.u64(t.created_unix_ns());
  body.str(t.metadata_json());
  body.u32(static_cast<uint32_t>(t.sections().size()));
  for (const Section& s : t.sections()) {
    body.u32(s.tag);
    body.blob(s.bytes);
  }
  body.u32(static_cast<uint32_t>(t.packs().size()));
  for (const PackRef& p : t.packs()) {
    body.u32(p.id);
    body.u64(p.nonce);
  }
  body.u64(t.runs().size());
  for (const PageRun& r : t.runs()) {
    body.u64(r.first_gpn);
    body.u32(r.pages);
    body.u32(r.loc.pack);
    body.u32(r.loc.frame);
    body.u32(r.loc.slot);
  }
  Writer file;
  file.raw(kManifestMagic, sizeof kManifestMagic);
  file.u16(kManifestMajor);
  file.u16(kManifestMinor);
  file.u32(0);  // flags
  file.u64(body.size());
  file.u64(checksum64(body.bytes()));
  file.raw(body.bytes().data(), body.size());
  return file.take();
}

Result<uint64_t> check_manifest_header(std::span<const uint8_t> header, uint64_t file_bytes, const std::string& path) {
  const std::string ctx = "manifest " + path;
  if (file_bytes < kManifestHeaderBytes || header.size() < kManifestHeaderBytes)
    return plain_error(ctx + ": file is " + std::to_string(file_bytes) + " bytes, expected at least the " +
                       std::to_string(kManifestHeaderBytes) + "-byte header: truncated");
  Reader r(header.first(kManifestHeaderBytes), ctx);
  VF_ASSIGN(auto magic, r.take("magic", sizeof kManifestMagic));
  if (std::memcmp(magic.data(), kManifestMagic, sizeof kManifestMagic) != 0)
    return r.bad_value("magic", 0, "expected \"VMFKTMPL\": not a vmfork template manifest");
  VF_ASSIGN(uint16_t major, r.u16("major version"));
  VF_ASSIGN(uint16_t minor, r.u16("minor version"));
  if (major != kManifestMajor || minor > kManifestMinor)
    return r.bad_value("version", 8,
                       "version " + std::to_string(major) + "." + std::to_string(minor) +
                           " is not supported (expected major " + std::to_string(kManifestMajor) +
                           ", minor <= " + std::to_string(kManifestMinor) + ")");
  VF_ASSIGN(uint32_t flags, r.u32("flags"));
  if (flags != 0) return r.bad_value("flags", 12, hex64(flags) + ", expected 0 (no flags are defined)");
  VF_ASSIGN(uint64_t body_bytes, r.u64("body_bytes"));
  if (body_bytes > kMaxManifestBodyBytes)
    return r.bad_value("body_bytes", 16,
                       std::to_string(body_bytes) + " exceeds the limit of " + std::to_string(kMaxManifestBodyBytes));
  if (body_bytes != file_bytes - kManifestHeaderBytes)
    return r.bad_value("body_bytes", 16,
                       std::to_string(body_bytes) + ", but the file holds " +
                           std::to_string(file_bytes - kManifestHeaderBytes) + " bytes after the header" +
                           (body_bytes > file_bytes - kManifestHeaderBytes ? " (truncated)" : ""));
  return body_bytes;
}

Result<Template> decode_manifest(std::span<const uint8_t> file, const std::string& path) {
  const std::string ctx = "manifest " + path;
  VF_ASSIGN(uint64_t body_bytes, check_manifest_header(file, file.size(), path));
  uint64_t want_sum;
  std::memcpy(&want_sum, file.data() + 24, 8);
  auto body = file.subspan(kManifestHeaderBytes, body_bytes);
  uint64_t sum = checksum64(body);
  if (sum != want_sum)
    return plain_error(ctx + ": body at offset " + std::to_string(kManifestHeaderBytes) + " (" +
                       std::to_string(body_bytes) + " bytes): checksum mismatch: expected XXH3-64 " + hex64(want_sum) +
                       " (from the header), found " + hex64(sum));

  Reader r(body, ctx, kManifestHeaderBytes);
  size_t at = r.offset();
  VF_ASSIGN(std::string name, r.str("name", kMaxNameBytes));
  if (Status s = check_template_name(name); !s.ok()) return r.bad_value("name", at, s.error().what);
  at = r.offset();
  VF_ASSIGN(uint64_t mem_bytes, r.u64("mem_bytes"));
  if (mem_bytes == 0 || mem_bytes % kPageBytes != 0 || mem_bytes > kMaxMemBytes)
    return r.bad_value("mem_bytes", at,
                       std::to_string(mem_bytes) + ", expected a non-zero multiple of " + std::to_string(kPageBytes) +
                           " up to " + std::to_string(kMaxMemBytes));
  const uint64_t mem_pages = mem_bytes / kPageBytes;
  VF_ASSIGN(uint64_t created, r.u64("created_unix_ns"));
  VF_ASSIGN(std::string metadata, r.str("metadata_json", kMaxMetadataBytes));

  at = r.offset();
  VF_ASSIGN(uint32_t section_count, r.u32("section_count"));
  if (section_count > kMaxSections)
    return r.bad_value("section_count", at,
                       std::to_string(section_count) + " exceeds the limit of " + std::to_string(kMaxSections));
  std::vector<Section> sections(section_count);
  std::set<uint32_t> tags;
  for (Section& s : sections) {
    at = r.offset();
    VF_ASSIGN(s.tag, r.u32("section tag"));
    if (!tags.insert(s.tag).second)
      return r.bad_value("section tag", at, "tag " + std::to_string(s.tag) + " appears twice");
    VF_ASSIGN(auto bytes, r.blob("section bytes", kMaxSectionBytes));
    s.bytes.assign(bytes.begin(), bytes.end());
  }

  at = r.offset();
  VF_ASSIGN(uint32_t pack_count, r.u32("pack_count"));
  if (pack_count > kMaxTemplatePacks || uint64_t(pack_count) * kPackRefBytes > r.remaining())
    return r.bad_value("pack_count", at,
                       std::to_string(pack_count) + " exceeds the limit of " + std::to_string(kMaxTemplatePacks) +
                           " or the " + std::to_string(r.remaining()) + " bytes left");
  std::vector<PackRef> packs(pack_count);
  for (uint32_t i = 0; i < pack_count; ++i) {
    at = r.offset();
    VF_ASSIGN(packs[i].id, r.u32("pack id"));
    VF_ASSIGN(packs[i].nonce, r.u64("pack nonce"));
    if (packs[i].id > kMaxPackId || (i > 0 && packs[i].id <= packs[i - 1].id))
      return r.bad_value(
          "pack id", at,
          std::to_string(packs[i].id) + ", expected ids in increasing order up to " + std::to_string(kMaxPackId));
  }
  std::vector<bool> pack_used(pack_count, false);

  at = r.offset();
  VF_ASSIGN(uint64_t run_count, r.u64("run_count"));
  if (run_count > mem_pages || run_count * kRunBytes > r.remaining())
    return r.bad_value("run_count", at,
                       std::to_string(run_count) + " exceeds the " + std::to_string(mem_pages) +
                           " guest pages or the " + std::to_string(r.remaining()) + " bytes left");
  std::vector<PageRun> runs(run_count);
  uint64_t next_free_gpn = 0;  // runs must start at or after the end of the previous one
  for (uint64_t i = 0; i < run_count; ++i) {
    PageRun& run = runs[i];
    at = r.offset();
    VF_ASSIGN(run.first_gpn, r.u64("run first_gpn"));
    VF_ASSIGN(run.pages, r.u32("run pages"));
    VF_ASSIGN(run.loc.pack, r.u32("run pack"));
    VF_ASSIGN(run.loc.frame, r.u32("run frame"));
    VF_ASSIGN(run.loc.slot, r.u32("run slot"));
    const std::string what = "run " + std::to_string(i);
    if (run.pages == 0) return r.bad_value(what.c_str(), at + 8, "0 pages, expected at least 1");
    if (run.first_gpn < next_free_gpn)
      return r.bad_value(what.c_str(), at,
                         "first_gpn " + std::to_string(run.first_gpn) +
                             ", expected >= " + std::to_string(next_free_gpn) + " (runs sorted, not overlapping)");
    if (run.first_gpn >= mem_pages || run.pages > mem_pages - run.first_gpn)
      return r.bad_value(what.c_str(), at,
                         "pages " + std::to_string(run.first_gpn) + "+" + std::to_string(run.pages) + " exceed the " +
                             std::to_string(mem_pages) + " guest pages");
    if (run.loc.slot >= kMaxFramePages || run.pages > kMaxFramePages - run.loc.slot)
      return r.bad_value(what.c_str(), at + 20,
                         "slots " + std::to_string(run.loc.slot) + "+" + std::to_string(run.pages) +
                             " exceed a frame's " + std::to_string(kMaxFramePages) + " pages");
    auto p = std::lower_bound(packs.begin(), packs.end(), run.loc.pack,
                              [](const PackRef& ref, uint32_t id) { return ref.id < id; });
    if (p == packs.end() || p->id != run.loc.pack)
      return r.bad_value(what.c_str(), at + 12, "pack " + std::to_string(run.loc.pack) + " is not in the pack table");
    pack_used[p - packs.begin()] = true;
    next_free_gpn = run.first_gpn + run.pages;
  }
  VF_TRY(r.expect_end());
  for (uint32_t i = 0; i < pack_count; ++i)
    if (!pack_used[i])
      return plain_error(ctx + ": pack table entry " + std::to_string(i) + " (pack " + std::to_string(packs[i].id) +
                         ") is used by no run");

  Template t(std::move(name), mem_bytes, created, std::move(metadata), std::move(sections), std::move(packs),
             std::move(runs));
  t.set_manifest_bytes(file.size());
  t.set_digest(to_hex(hash_page(file)));
  return t;
}

}  // namespace vmfork::snapshot
