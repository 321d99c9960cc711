// Helpers for the page store tests: a self-deleting temp directory, deterministic page
// contents, and guest memory images built page by page. Thread-safety: plain values.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "snapshot/format.h"

namespace vmfork::snapshot::testutil {

/// A fresh directory under testing::TempDir(), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = testing::TempDir() + "vmfork-snap-XXXXXX";
    char* d = ::mkdtemp(tmpl.data());
    EXPECT_NE(d, nullptr) << "mkdtemp " << tmpl;
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// splitmix64: deterministic pseudo-random words.
inline uint64_t mix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// A guest memory image of `pages` zero pages.
inline std::vector<uint8_t> zero_image(uint64_t pages) { return std::vector<uint8_t>(pages * kPageBytes, 0); }

/// Fills page `gpn` of `img` with incompressible bytes derived from `seed` (seed != 0), so
/// equal seeds give equal pages.
inline void fill_page(std::vector<uint8_t>& img, uint64_t gpn, uint64_t seed) {
  uint64_t s = seed * 0x1000193ull;
  for (size_t i = 0; i < kPageBytes; i += 8) {
    uint64_t w = mix(s);
    std::memcpy(img.data() + gpn * kPageBytes + i, &w, 8);
  }
}

/// Fills page `gpn` with compressible text-like bytes from `seed`.
inline void fill_text_page(std::vector<uint8_t>& img, uint64_t gpn, uint64_t seed) {
  static const char kWords[] = "the quick brown fox jumps over the lazy dog; vmfork page store ";
  uint64_t s = seed;
  for (size_t i = 0; i < kPageBytes; ++i)
    img[gpn * kPageBytes + i] = uint8_t(kWords[(i + mix(s) % 3) % (sizeof kWords - 1)]);
}

/// Whole file contents.
inline std::vector<uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

/// Replaces a file's contents.
inline void write_file(const std::filesystem::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

/// Names of the files in `dir` (not recursive).
inline std::vector<std::string> files_in(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace vmfork::snapshot::testutil
