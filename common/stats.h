// Descriptive statistics of repeated timings (`vmfork measure`, cli/measure.h): a summary of one
// sample and a confidence interval for the ratio of two means. Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <vector>

namespace vmfork::stats {

/// A sample's distribution, in the sample's own unit. All fields are 0 for an empty sample;
/// stddev and cv are 0 for a single value.
struct Summary {
  size_t n = 0;
  double min = 0, max = 0, median = 0, mean = 0;
  double stddev = 0;    // sample standard deviation (n - 1 in the denominator)
  double p90 = 0, p99 = 0;
  double cv = 0;        // coefficient of variation: stddev / mean (0 when mean is 0)
};

/// The `q`-quantile (0 <= q <= 1) of `sorted` (ascending, non-empty), interpolated linearly
/// between the two closest ranks: h = (n - 1) q (Hyndman and Fan 1996, definition 7, the
/// default of R and NumPy).
double quantile(const std::vector<double>& sorted, double q);

/// Summary of `xs` (any order).
Summary summarize(std::vector<double> xs);

/// Ratio mean(b) / mean(a) with a two-sided confidence interval by the delta method: the
/// relative standard errors of the two independent means add in quadrature,
/// se(r) = r * sqrt(s_a^2 / (n_a mean_a^2) + s_b^2 / (n_b mean_b^2)), and the bounds are
/// r -+ z se with z the normal quantile of the confidence (1.96 for 95 %). Valid when both
/// means are well away from 0 (cv / sqrt(n) small); with n < 2 on a side the interval is [r, r].
struct RatioInterval {
  double ratio = 0, low = 0, high = 0;
  double confidence = 0.95;
};
/// Errors are not possible: a zero mean of `a` gives ratio 0 and a [0, 0] interval.
RatioInterval ratio_of_means(const std::vector<double>& a, const std::vector<double>& b, double confidence = 0.95);

}  // namespace vmfork::stats
