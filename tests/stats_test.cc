// common/stats.h: quantiles, summaries and the delta-method ratio interval against values
// worked out by hand (and with R's quantile(type = 7)).
#include <gtest/gtest.h>

#include <cmath>

#include "common/stats.h"

using namespace vmfork;

TEST(Stats, QuantileInterpolatesLikeType7) {
  std::vector<double> xs = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_DOUBLE_EQ(stats::quantile(xs, 0.5), 5.5);
  EXPECT_DOUBLE_EQ(stats::quantile(xs, 0.9), 9.1);
  EXPECT_DOUBLE_EQ(stats::quantile(xs, 0.99), 9.91);
  EXPECT_DOUBLE_EQ(stats::quantile(xs, 0), 1);
  EXPECT_DOUBLE_EQ(stats::quantile(xs, 1), 10);
  EXPECT_DOUBLE_EQ(stats::quantile({7}, 0.9), 7);
}

TEST(Stats, Summary) {
  auto s = stats::summarize({4, 2, 6, 8});  // any order
  EXPECT_EQ(s.n, 4u);
  EXPECT_DOUBLE_EQ(s.min, 2);
  EXPECT_DOUBLE_EQ(s.max, 8);
  EXPECT_DOUBLE_EQ(s.median, 5);
  EXPECT_DOUBLE_EQ(s.mean, 5);
  EXPECT_NEAR(s.stddev, 2.5819889, 1e-6);  // sqrt(20 / 3)
  EXPECT_NEAR(s.cv, 2.5819889 / 5, 1e-6);
  EXPECT_EQ(stats::summarize({}).n, 0u);
  auto one = stats::summarize({3});
  EXPECT_DOUBLE_EQ(one.stddev, 0);
  EXPECT_DOUBLE_EQ(one.p99, 3);
}

TEST(Stats, RatioOfMeansDeltaMethod) {
  std::vector<double> a = {10, 12, 8, 10}, b = {20, 24, 16, 20};
  auto r = stats::ratio_of_means(a, b);
  EXPECT_DOUBLE_EQ(r.ratio, 2);
  // rel se: sqrt(2 * (s^2 / (n m^2))) with s = sqrt(8/3), m = 10, n = 4 for a (b is a scaled copy).
  double rel = std::sqrt(2 * (8.0 / 3) / (4 * 100.0));
  EXPECT_NEAR(r.low, 2 * (1 - 1.959964 * rel), 1e-5);
  EXPECT_NEAR(r.high, 2 * (1 + 1.959964 * rel), 1e-5);
  auto same = stats::ratio_of_means({5, 5, 5}, {5, 5, 5});
  EXPECT_DOUBLE_EQ(same.low, 1);
  EXPECT_DOUBLE_EQ(same.high, 1);
  EXPECT_DOUBLE_EQ(stats::ratio_of_means({0, 0}, {1, 2}).ratio, 0);  // no division by zero
  auto r99 = stats::ratio_of_means(a, b, 0.99);
  EXPECT_LT(r99.low, r.low);
}
