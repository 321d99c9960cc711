// Standard base64 (RFC 4648 section 4, with '=' padding, no line breaks) for the bytes carried
// in `vmfork serve` requests and responses, on top of OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace vmfork::pool {

/// The base64 text of `bytes` (4 * ceil(n / 3) characters).
std::string base64_encode(std::string_view bytes);

/// The bytes of `text`. Strict: the length must be a multiple of 4, only the 64 alphabet
/// characters may appear, and '=' only as one or two final padding characters; no whitespace.
/// Errors: "base64: ..." naming the first violation and its offset.
Result<std::string> base64_decode(std::string_view text);

}  // namespace vmfork::pool
