// Descriptive statistics (see stats.h).
#include "common/stats.h"

#include <algorithm>
#include <cmath>

namespace vmfork::stats {

double quantile(const std::vector<double>& sorted, double q) {
  const double h = double(sorted.size() - 1) * std::clamp(q, 0.0, 1.0);
  const size_t lo = size_t(std::floor(h));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - double(lo)) * (sorted[hi] - sorted[lo]);
}

Summary summarize(std::vector<double> xs) {
  Summary s;
  if (xs.empty()) return s;
  std::sort(xs.begin(), xs.end());
  s.n = xs.size();
  s.min = xs.front();
  s.max = xs.back();
  s.median = quantile(xs, 0.5);
  s.p90 = quantile(xs, 0.9);
  s.p99 = quantile(xs, 0.99);
  double sum = 0;
  for (double x : xs) sum += x;
  s.mean = sum / double(s.n);
  if (s.n > 1) {
    double ss = 0;
    for (double x : xs) ss += (x - s.mean) * (x - s.mean);
    s.stddev = std::sqrt(ss / double(s.n - 1));
  }
  s.cv = s.mean != 0 ? s.stddev / s.mean : 0;
  return s;
}

namespace {

// The standard normal quantile of `p` in (0, 1): Acklam's rational approximation (relative error
// below 1.2e-9), enough for a confidence bound.
double normal_quantile(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  p = std::clamp(p, 1e-12, 1 - 1e-12);
  if (p < 0.02425) {
    double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - 0.02425) return -normal_quantile(1 - p);
  double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

}  // namespace

RatioInterval ratio_of_means(const std::vector<double>& a, const std::vector<double>& b, double confidence) {
  RatioInterval out;
  out.confidence = confidence;
  const Summary sa = summarize(a), sb = summarize(b);
  if (sa.mean == 0) return out;
  out.ratio = sb.mean / sa.mean;
  out.low = out.high = out.ratio;
  if (sa.n < 2 || sb.n < 2 || sb.mean == 0) return out;
  const double rel = std::sqrt(sa.stddev * sa.stddev / (double(sa.n) * sa.mean * sa.mean) +
                               sb.stddev * sb.stddev / (double(sb.n) * sb.mean * sb.mean));
  const double z = normal_quantile(0.5 + confidence / 2);
  out.low = out.ratio * (1 - z * rel);
  out.high = out.ratio * (1 + z * rel);
  return out;
}

}  // namespace vmfork::stats
