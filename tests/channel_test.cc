// Tests for the host side of the host<->guest channel, driven without a VM: the test plays the
// guest by writing the shared page, as a hostile guest could.
#include "vmm/devices/channel.h"

#include <gtest/gtest.h>

#include <cstring>

#include "guest-kernel/abi/vmfork_abi.h"

using namespace vmfork::vmm;
namespace gabi = vmfork::abi;

namespace {

struct Fixture {
  GuestMemory mem = std::move(GuestMemory::create_anonymous(16u << 20).value());
  std::string out, err;
  gabi::Channel* page() { return mem.at<gabi::Channel>(gabi::kChannelGpa); }
  void guest_write(uint64_t gpa, uint64_t* len, const std::string& s) {
    std::memcpy(mem.host() + gpa + *len, s.data(), s.size());
    *len += s.size();
  }
  OutputSink sink(std::string* s) {
    return [s](std::span<const uint8_t> b) { s->append(reinterpret_cast<const char*>(b.data()), b.size()); };
  }
};

const auto kFar = Clock::now() + std::chrono::hours(1);

}  // namespace

TEST(Channel, DrainsOutputOnFlush) {
  Fixture f;
  ChannelDevice ch(f.mem, nullptr, f.sink(&f.out), f.sink(&f.err), 1 << 20);
  ASSERT_TRUE(ch.start().ok());
  f.guest_write(gabi::kStdoutGpa, &f.page()->stdout_len, "hello ");
  f.guest_write(gabi::kStderrGpa, &f.page()->stderr_len, "oops");
  auto a = ch.on_doorbell(gabi::kReqFlush, kFar);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, ChannelDevice::Action::kResume);
  EXPECT_EQ(f.out, "hello ");
  EXPECT_EQ(f.err, "oops");
  EXPECT_EQ(f.page()->stdout_len, 0u);
  EXPECT_EQ(ch.save().stdout_bytes, 6u);
}

TEST(Channel, OutputLimitStopsTheJob) {
  Fixture f;
  ChannelDevice ch(f.mem, nullptr, f.sink(&f.out), f.sink(&f.err), 4);
  ASSERT_TRUE(ch.start().ok());
  f.guest_write(gabi::kStdoutGpa, &f.page()->stdout_len, "abcdefgh");
  auto a = ch.on_doorbell(gabi::kReqFlush, kFar);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, ChannelDevice::Action::kOutputLimit);
  EXPECT_EQ(f.out, "abcd");  // delivered up to the limit, not beyond
}

TEST(Channel, HostileLengthIsAProtocolError) {
  Fixture f;
  ChannelDevice ch(f.mem, nullptr, f.sink(&f.out), f.sink(&f.err), 1 << 20);
  ASSERT_TRUE(ch.start().ok());
  f.page()->stdout_len = gabi::kStdoutCap + 1;
  EXPECT_FALSE(ch.on_doorbell(gabi::kReqFlush, kFar).ok());
  f.page()->stdout_len = ~0ull;
  EXPECT_FALSE(ch.on_doorbell(gabi::kReqFlush, kFar).ok());
  EXPECT_TRUE(f.out.empty());
  EXPECT_FALSE(ch.on_doorbell(12345, kFar).ok());  // unknown request
}

TEST(Channel, PreloadsAndRefillsStdin) {
  Fixture f;
  std::string big(gabi::kStdinCap + 10, 'z');
  big[0] = 'a';
  StringInput in(big);
  ChannelDevice ch(f.mem, &in, nullptr, nullptr, 1 << 20);
  ASSERT_TRUE(ch.start().ok());
  EXPECT_EQ(f.page()->stdin_len, gabi::kStdinCap);  // preloaded before the guest runs
  EXPECT_EQ(f.mem.host()[gabi::kStdinGpa], 'a');
  EXPECT_EQ(f.page()->stdin_eof, 0u);
  f.page()->stdin_pos = f.page()->stdin_len;  // the guest consumed it all
  auto a = ch.on_doorbell(gabi::kReqStdin, kFar);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(f.page()->stdin_len, 10u);
  EXPECT_EQ(f.page()->stdin_pos, 0u);
  EXPECT_EQ(f.page()->stdin_eof, 1u);
}

TEST(Channel, SleepPastDeadlineTimesOut) {
  Fixture f;
  ChannelDevice ch(f.mem, nullptr, nullptr, nullptr, 1 << 20);
  ASSERT_TRUE(ch.start().ok());
  f.page()->sleep_until_ns = ~0ull >> 1;  // far future
  auto a = ch.on_doorbell(gabi::kReqSleep, Clock::now() + std::chrono::milliseconds(20));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, ChannelDevice::Action::kTimeout);
}

TEST(Channel, SaveRestoreRoundTrip) {
  Fixture f;
  ChannelDevice a(f.mem, nullptr, f.sink(&f.out), nullptr, 1 << 20);
  ASSERT_TRUE(a.start().ok());
  f.guest_write(gabi::kStdoutGpa, &f.page()->stdout_len, "12345");
  ASSERT_TRUE(a.drain_output().ok());
  ChannelDevice b(f.mem, nullptr, nullptr, nullptr, 1 << 20);
  b.restore(a.save());
  EXPECT_EQ(b.save().stdout_bytes, 5u);
  EXPECT_EQ(b.save().output_limited, false);
}
