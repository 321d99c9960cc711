// libFuzzer target for the serve protocol (pool/protocol.cc, pool/base64.cc): the input is one
// request or response line, as a client or a server could send it. Parsing must never crash,
// throw or leak; a request that parses must serialize to a line that parses to the same fields.
// Built and run by fuzz/run.sh.
#include <stddef.h>
#include <stdint.h>

#include <cstdlib>
#include <string_view>

#include "pool/base64.h"
#include "pool/protocol.h"

using namespace vmfork;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  nlohmann::json id;
  auto req = pool::parse_request(line, &id);
  if (req.ok()) {
    // Round trip: what submit would send for this request is read back the same.
    const std::string again = pool::serialize_request(*req);
    nlohmann::json id2;
    auto back = pool::parse_request(std::string_view(again).substr(0, again.size() - 1), &id2);
    if (!back.ok() || back->argv != req->argv || back->stdin_data != req->stdin_data ||
        back->timeout_ms != req->timeout_ms || back->max_output_bytes != req->max_output_bytes ||
        back->template_name != req->template_name || back->op != req->op)
      std::abort();
    (void)pool::serialize_error(req->id, pool::ErrorCode::kBadRequest, "fuzz");
  }
  (void)pool::parse_response(line);
  // Non-zero pad bits are accepted (RFC 4648 section 3.5 lets a decoder), so the property is
  // on the bytes: what decodes re-encodes to text that decodes to the same bytes.
  auto decoded = pool::base64_decode(line);
  if (decoded.ok()) {
    auto again = pool::base64_decode(pool::base64_encode(*decoded));
    if (!again.ok() || *again != *decoded) std::abort();
  }
  return 0;
}
