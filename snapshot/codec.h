// Little-endian byte encoding for snapshot files and state sections: a Writer that appends
// fixed-width integers and length-prefixed blobs, and a bounds-checked Reader whose every
// failure names the field and the byte offset where the data ran out or was out of range.
// Header-only. Thread-safety: plain values, one thread per instance.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/status.h"

namespace vmfork::snapshot {

/// Appends little-endian fields to a byte vector (x86-64 is little-endian, so a memcpy).
class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) { raw(&v, 2); }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  /// A u64 byte count followed by the bytes.
  void blob(std::span<const uint8_t> b) {
    u64(b.size());
    raw(b.data(), b.size());
  }
  void str(std::string_view s) { blob({reinterpret_cast<const uint8_t*>(s.data()), s.size()}); }
  /// The bytes of a trivially copyable struct as they are in memory (used for KVM structs,
  /// whose layout is fixed by the Linux UAPI).
  template <typename T>
  void pod(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    raw(&v, sizeof v);
  }
  void raw(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  size_t size() const { return out_.size(); }
  std::vector<uint8_t>& bytes() { return out_; }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

/// Reads fields back from a span; never reads past its end. `context` prefixes every error
/// ("manifest web.vft", "vcpu state") so the message says which data was bad. `base_offset` is
/// added to every offset an error reports, so that a Reader over part of a file (a manifest
/// body, a pack index) names file offsets.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> data, std::string context = {}, uint64_t base_offset = 0)
      : data_(data), context_(std::move(context)), base_(base_offset) {}

  Result<uint8_t> u8(const char* field) { return fixed<uint8_t>(field); }
  Result<uint16_t> u16(const char* field) { return fixed<uint16_t>(field); }
  Result<uint32_t> u32(const char* field) { return fixed<uint32_t>(field); }
  Result<uint64_t> u64(const char* field) { return fixed<uint64_t>(field); }

  /// A blob written by Writer::blob; rejects a length above `max_bytes` before reading it.
  Result<std::span<const uint8_t>> blob(const char* field, uint64_t max_bytes) {
    size_t at = pos_;
    VF_ASSIGN(uint64_t n, u64(field));
    if (n > max_bytes) return fail(field, at, "length " + std::to_string(n) + " exceeds the limit of " +
                                                   std::to_string(max_bytes) + " bytes");
    return take(field, n);
  }
  Result<std::string> str(const char* field, uint64_t max_bytes) {
    VF_ASSIGN(auto b, blob(field, max_bytes));
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  template <typename T>
  Status pod(const char* field, T* out) {
    static_assert(std::is_trivially_copyable_v<T>);
    VF_ASSIGN(auto b, take(field, sizeof(T)));
    std::memcpy(out, b.data(), sizeof(T));
    return Status::Ok();
  }
  /// The next `n` bytes, without copying.
  Result<std::span<const uint8_t>> take(const char* field, uint64_t n) {
    if (n > remaining()) return fail(field, pos_, "needs " + std::to_string(n) + " bytes, " +
                                                      std::to_string(remaining()) + " left");
    auto s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  /// Fails unless every byte was consumed (trailing garbage is corruption too).
  Status expect_end() const {
    if (remaining() == 0) return Status::Ok();
    return fail("end", pos_, std::to_string(remaining()) + " unexpected trailing bytes");
  }

  size_t offset() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }
  /// An error for a field whose value (not its size) is wrong, at the offset it was read from.
  Error bad_value(const char* field, size_t at, const std::string& why) const { return fail(field, at, why); }

 private:
  template <typename T>
  Result<T> fixed(const char* field) {
    VF_ASSIGN(auto b, take(field, sizeof(T)));
    T v;
    std::memcpy(&v, b.data(), sizeof(T));
    return v;
  }
  Error fail(const char* field, size_t at, const std::string& why) const {
    return plain_error((context_.empty() ? std::string() : context_ + ": ") + field + " at offset " +
                       std::to_string(base_ + at) + ": " + why);
  }

  std::span<const uint8_t> data_;
  std::string context_;
  uint64_t base_ = 0;
  size_t pos_ = 0;
};

}  // namespace vmfork::snapshot
