// Base64 over OpenSSL (see base64.h).
#include "pool/base64.h"

#include <openssl/evp.h>

#include <climits>

namespace vmfork::pool {

namespace {

bool in_alphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// EVP_*Block take an int length; callers' inputs are bounded by the 16 MiB request line, but a
// library caller could pass more, so large inputs go through in pieces. A piece is a multiple
// of 3 bytes (encode) or 4 characters (decode), so pieces join without padding in between.
constexpr size_t kEncodePiece = 3u << 20;
constexpr size_t kDecodePiece = 4u << 20;

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.resize((bytes.size() + 2) / 3 * 4);
  size_t at = 0;
  unsigned char tail[5];  // EVP_EncodeBlock writes a NUL after the text
  for (size_t off = 0; off < bytes.size(); off += kEncodePiece) {
    const size_t n = std::min(kEncodePiece, bytes.size() - off);
    const auto* src = reinterpret_cast<const unsigned char*>(bytes.data() + off);
    const size_t whole = n / 3 * 3;
    // The NUL terminator lands on the next piece's first character (or on the string's own
    // terminator, which std::string keeps one past size()).
    if (whole) at += size_t(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + at), src, int(whole)));
    if (n > whole) {
      EVP_EncodeBlock(tail, src + whole, int(n - whole));
      out.replace(at, 4, reinterpret_cast<const char*>(tail), 4);
      at += 4;
    }
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4)
    return plain_error("base64: length " + std::to_string(text.size()) + " is not a multiple of 4");
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < text.size() - pad; i++)
    if (!in_alphabet(text[i]))
      return plain_error("base64: invalid character at offset " + std::to_string(i));
  // EVP_DecodeBlock would also skip leading and trailing whitespace and accept '=' in odd
  // places; the checks above leave it only well-formed text.
  std::string out;
  out.resize(text.size() / 4 * 3);
  size_t at = 0;
  for (size_t off = 0; off < text.size(); off += kDecodePiece) {
    const size_t n = std::min(kDecodePiece, text.size() - off);
    int got = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data() + at),
                              reinterpret_cast<const unsigned char*>(text.data() + off), int(n));
    if (got < 0) return plain_error("base64: EVP_DecodeBlock rejected the text near offset " + std::to_string(off));
    at += size_t(got);
  }
  // EVP_DecodeBlock counts padding characters as decoded zero bytes.
  out.resize(at - pad);
  return out;
}

}  // namespace vmfork::pool
