// Tests for command-line size and duration parsing.
#include "engine/units.h"

#include <gtest/gtest.h>

using namespace vmfork::engine;
using namespace std::chrono_literals;

TEST(ParseSize, SuffixesArePowersOf1024) {
  EXPECT_EQ(*parse_size("4096"), 4096u);
  EXPECT_EQ(*parse_size("64K"), 64u << 10);
  EXPECT_EQ(*parse_size("256M"), 256u << 20);
  EXPECT_EQ(*parse_size("256MiB"), 256u << 20);
  EXPECT_EQ(*parse_size("2G"), 2ull << 30);
  EXPECT_EQ(*parse_size("1GB"), 1ull << 30);
}

TEST(ParseSize, RejectsGarbage) {
  EXPECT_FALSE(parse_size("").ok());
  EXPECT_FALSE(parse_size("M").ok());
  EXPECT_FALSE(parse_size("-5M").ok());
  EXPECT_FALSE(parse_size("5X").ok());
  EXPECT_FALSE(parse_size("99999999999T").ok());
}

TEST(ParseDuration, Units) {
  EXPECT_EQ(*parse_duration("10"), 10s);
  EXPECT_EQ(*parse_duration("1.5s"), 1500ms);
  EXPECT_EQ(*parse_duration("250ms"), 250ms);
  EXPECT_EQ(*parse_duration("2m"), 120s);
  EXPECT_EQ(*parse_duration("7us"), 7us);
  EXPECT_FALSE(parse_duration("-1s").ok());
  EXPECT_FALSE(parse_duration("3 days").ok());
}
