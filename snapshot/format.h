// On-disk constants of the page store: magics, versions, fixed sizes and the caps every reader
// checks before it allocates. The byte layouts are documented in docs/snapshot-format.md; a
// change here is a format change (an incompatible one bumps the major version).
// Thread-safety: constants only.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmfork::snapshot {

/// Guest memory is stored in pages of this many bytes (x86-64 base page).
inline constexpr size_t kPageBytes = 4096;

namespace format {

// ---- Versions. A reader rejects any major other than its own and any minor newer than its
// own (house style rule 5, ../shared/docs/style.md); older minors of the same major are read.

/// Pack file (`packs/<8-digit id>.vfp`) format version.
inline constexpr uint16_t kPackMajor = 1;
inline constexpr uint16_t kPackMinor = 0;
/// Template manifest (`templates/<name>.vft`) format version.
inline constexpr uint16_t kManifestMajor = 1;
inline constexpr uint16_t kManifestMinor = 0;

// ---- Pack file: header, zstd frames back to back, index, footer.

/// First 8 bytes of a pack file.
inline constexpr char kPackMagic[8] = {'V', 'M', 'F', 'K', 'P', 'A', 'C', 'K'};
/// Last 8 bytes of a pack file (the footer ends with it, so a truncated pack is recognised).
inline constexpr char kPackEndMagic[8] = {'V', 'M', 'F', 'K', 'P', 'E', 'N', 'D'};
/// Pack header: magic[8], u16 major, u16 minor, u32 page_bytes (4096), u32 pack_id,
/// u32 flags (0), u64 nonce (random, also recorded by every manifest that uses the pack, so a
/// reused pack id is never mistaken for the old pack), u64 XXH3-64 of the preceding 32 bytes.
inline constexpr size_t kPackHeaderBytes = 40;
/// Pack footer: u64 index_offset, u64 index_bytes, u64 XXH3-64 of the index, u64 XXH3-64 of the
/// preceding 24 footer bytes, end magic[8].
inline constexpr size_t kPackFooterBytes = 40;
/// Index entry of one frame without its page keys: u64 offset, u32 compressed_bytes,
/// u32 pages, u64 XXH3-64 of the compressed bytes. Followed by `pages` keys of 16 bytes
/// (u64 low, u64 high half of the page's XXH3-128).
inline constexpr size_t kFrameEntryBytes = 24;
inline constexpr size_t kPageKeyBytes = 16;
/// Largest frame a reader accepts, in pages (4 MiB uncompressed). Writers are limited to it
/// too (StoreOptions::frame_pages).
inline constexpr uint32_t kMaxFramePages = 1024;
/// Largest pack index a reader accepts, in bytes (also checked against the file size).
inline constexpr uint64_t kMaxPackIndexBytes = 1ull << 30;
/// Largest pack id; ids are printed with 8 decimal digits.
inline constexpr uint32_t kMaxPackId = 99'999'999;

// ---- Template manifest: fixed header, then a body covered by the header's checksum.

/// First 8 bytes of a manifest.
inline constexpr char kManifestMagic[8] = {'V', 'M', 'F', 'K', 'T', 'M', 'P', 'L'};
/// Manifest header: magic[8], u16 major, u16 minor, u32 flags (0), u64 body_bytes,
/// u64 XXH3-64 of the body. The file is exactly header + body.
inline constexpr size_t kManifestHeaderBytes = 32;
/// Template names: [A-Za-z0-9._-]{1,64}, not starting with '.' (so temp files, which start
/// with '.', never look like templates).
inline constexpr size_t kMaxNameBytes = 64;
/// Guest memory size cap (bytes); mem_bytes is a non-zero multiple of kPageBytes.
inline constexpr uint64_t kMaxMemBytes = 64ull << 30;
/// Metadata JSON string cap (bytes); the store does not parse it.
inline constexpr uint64_t kMaxMetadataBytes = 64 * 1024;
/// State sections: at most this many, each at most kMaxSectionBytes, tags unique.
inline constexpr uint32_t kMaxSections = 64;
inline constexpr uint64_t kMaxSectionBytes = 16ull << 20;
/// Packs one template may reference.
inline constexpr uint32_t kMaxTemplatePacks = 1u << 20;
/// Page map run: u64 first_gpn, u32 pages, u32 pack_id, u32 frame, u32 first_slot.
inline constexpr size_t kRunBytes = 24;
/// Pack table entry: u32 pack_id, u64 nonce.
inline constexpr size_t kPackRefBytes = 12;
/// Largest manifest body a reader accepts (sections + metadata + the worst-case page map of a
/// kMaxMemBytes guest, rounded up), also checked against the file size.
inline constexpr uint64_t kMaxManifestBodyBytes = 2ull << 30;

static_assert(kMaxSections * kMaxSectionBytes + kMaxMetadataBytes + (kMaxMemBytes / kPageBytes) * kRunBytes +
                      uint64_t(kMaxTemplatePacks) * kPackRefBytes <
                  kMaxManifestBodyBytes,
              "manifest body cap too small for its parts: see docs/snapshot-format.md");
static_assert(kMaxFramePages * kPageBytes <= (1u << 30), "a frame must fit one io_uring op");

}  // namespace format
}  // namespace vmfork::snapshot
