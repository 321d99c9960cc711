// The page store's directory: listing it, telling manifests from temp files, and the key
// used for (pack, frame) pairs in sets and maps. Internal to snapshot/page_store*.cc.
// Thread-safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace vmfork::snapshot {

/// Names in directory `dir` other than "." and "..", sorted. Errors: "opendir DIR", "readdir DIR".
Result<std::vector<std::string>> list_dir(const std::filesystem::path& dir);

/// The template name of a manifest file name ("web.vft" -> "web"); empty for anything else
/// (temp files, which start with '.', and names that break the template name rules).
std::string template_of(std::string_view file_name);

/// Key of a (pack id, frame number) pair in sets and maps.
inline uint64_t frame_key(uint32_t pack, uint32_t frame) { return (uint64_t(pack) << 32) | frame; }

}  // namespace vmfork::snapshot
