// Size and duration parsing (see units.h).
#include "engine/units.h"

#include <cmath>
#include <cstdlib>

namespace vmfork::engine {

Result<uint64_t> parse_size(const std::string& s) {
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || end == s.c_str() || errno || s[0] == '-') return plain_error("bad size '" + s + "'");
  std::string suf(end);
  for (const char* tail : {"iB", "B"})
    if (suf.size() > 1 && suf.ends_with(tail)) suf.resize(suf.size() - std::char_traits<char>::length(tail));
  int shift = 0;
  if (suf.empty() || suf == "B") shift = 0;
  else if (suf == "K" || suf == "k") shift = 10;
  else if (suf == "M" || suf == "m") shift = 20;
  else if (suf == "G" || suf == "g") shift = 30;
  else if (suf == "T" || suf == "t") shift = 40;
  else return plain_error("bad size suffix in '" + s + "' (want K, M, G or T)");
  if (shift && n > (~0ull >> shift)) return plain_error("size '" + s + "' overflows");
  return uint64_t(n) << shift;
}

Result<std::chrono::nanoseconds> parse_duration(const std::string& s) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end == s.c_str() || errno || !std::isfinite(v) || v < 0)
    return plain_error("bad duration '" + s + "'");
  std::string suf(end);
  double ns_per = 1e9;
  if (suf.empty() || suf == "s") ns_per = 1e9;
  else if (suf == "ms") ns_per = 1e6;
  else if (suf == "us") ns_per = 1e3;
  else if (suf == "ns") ns_per = 1;
  else if (suf == "m") ns_per = 60e9;
  else if (suf == "h") ns_per = 3600e9;
  else return plain_error("bad duration suffix in '" + s + "' (want ns, us, ms, s, m or h)");
  double ns = v * ns_per;
  if (ns > 9e18) return plain_error("duration '" + s + "' too long");
  return std::chrono::nanoseconds(int64_t(ns));
}

}  // namespace vmfork::engine
