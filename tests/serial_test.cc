// Tests for the 8250 subset: register behaviour, bounded log, save/restore round trip.
#include "vmm/devices/serial.h"

#include <gtest/gtest.h>

using vmfork::vmm::Serial;

TEST(Serial, TransmitsAndReportsEmpty) {
  Serial s;
  for (char c : std::string("hi\n")) s.out(0x3f8, uint8_t(c));
  EXPECT_EQ(s.log(), "hi\n");
  EXPECT_EQ(s.in(0x3f8 + 5) & 0x60, 0x60);  // LSR: THR and transmitter empty
  EXPECT_EQ(s.in(0x3f8 + 2), 0x01);          // IIR: nothing pending
}

TEST(Serial, DivisorLatch) {
  Serial s;
  s.out(0x3fb, 0x80);  // LCR.DLAB
  s.out(0x3f8, 0x0c);
  s.out(0x3f9, 0x00);
  EXPECT_EQ(s.in(0x3f8), 0x0c);
  EXPECT_TRUE(s.log().empty());  // divisor writes are not output
  s.out(0x3fb, 0x03);
  s.out(0x3f8, 'x');
  EXPECT_EQ(s.log(), "x");
}

TEST(Serial, LogIsBounded) {
  Serial s(16);
  for (int i = 0; i < 1000; i++) s.out(0x3f8, 'a');
  EXPECT_EQ(s.log().size(), 16u);
}

TEST(Serial, SaveRestoreRoundTrip) {
  Serial a;
  a.out(0x3fb, 0x83);
  a.out(0x3f8, 0x01);
  a.out(0x3f9, 0x02);
  a.out(0x3fb, 0x03);
  a.out(0x3f9, 0x05);
  a.out(0x3fc, 0x0b);
  a.out(0x3ff, 0x5a);
  Serial b;
  b.restore(a.save());
  for (uint16_t p = 0x3f8; p < 0x400; p++) EXPECT_EQ(a.in(p), b.in(p)) << "port " << p;
  b.out(0x3fb, 0x83);
  EXPECT_EQ(b.in(0x3f8), 0x01);
  EXPECT_EQ(b.in(0x3f9), 0x02);
}
