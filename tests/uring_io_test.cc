// UringIo: batched reads and writes, more requests than the queue depth, short transfers
// resubmitted for the remainder, end of file and bad descriptors reported with path and offset.
#include "snapshot/uring_io.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fd.h"
#include "snapshot_test_util.h"

namespace vmfork::snapshot {
namespace {

using testing::HasSubstr;
using testutil::TempDir;

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(seed + i * 7 + (i >> 9));
  return v;
}

Fd open_rw(const std::filesystem::path& p) {
  return Fd(::open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
}

TEST(UringIo, WritesAndReadsBackBatchesAtOffsets) {
  TempDir dir;
  auto p = dir.path() / "f";
  Fd fd = open_rw(p);
  ASSERT_TRUE(fd.valid());
  auto io = UringIo::create(4);
  ASSERT_TRUE(io.ok()) << io.error().message();
  // 50 requests of odd sizes at scattered offsets: more than the queue depth of 4.
  std::vector<std::vector<uint8_t>> data;
  std::vector<WriteReq> writes;
  uint64_t off = 0;
  for (int i = 0; i < 50; ++i) {
    data.push_back(pattern(1 + i * 977 % 9000, uint8_t(i)));
    off += 13 + i;  // gaps between requests
    writes.push_back({off, data.back()});
    off += data.back().size();
  }
  ASSERT_TRUE(io->write(fd.get(), p, writes).ok());
  std::vector<std::vector<uint8_t>> back(data.size());
  std::vector<ReadReq> reads;
  for (size_t i = 0; i < data.size(); ++i) {
    back[i].resize(data[i].size());
    reads.push_back({writes[i].offset, back[i]});
  }
  Status s = io->read(fd.get(), p, reads);
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(back, data);
}

TEST(UringIo, ShortTransfersAreResubmittedForTheRemainder) {
  TempDir dir;
  auto p = dir.path() / "f";
  Fd fd = open_rw(p);
  // Every op moves at most 1000 bytes, so each 1 MiB request completes short ~1000 times and
  // must be continued where it stopped.
  auto io = UringIo::create({.queue_depth = 2, .max_op_bytes = 1000});
  ASSERT_TRUE(io.ok());
  auto a = pattern(1 << 20, 1), b = pattern((1 << 20) + 123, 2);
  WriteReq w[2] = {{0, a}, {a.size(), b}};
  ASSERT_TRUE(io->write(fd.get(), p, w).ok());
  std::vector<uint8_t> all(a.size() + b.size());
  ReadReq r{0, all};
  ASSERT_TRUE(io->read(fd.get(), p, {&r, 1}).ok());
  EXPECT_TRUE(std::equal(a.begin(), a.end(), all.begin()));
  EXPECT_TRUE(std::equal(b.begin(), b.end(), all.begin() + a.size()));
}

TEST(UringIo, ReadPastEndOfFileNamesFileOffsetAndExpectedBytes) {
  TempDir dir;
  auto p = dir.path() / "short";
  Fd fd = open_rw(p);
  auto data = pattern(100, 3);
  auto io = UringIo::create({.queue_depth = 8, .max_op_bytes = 30});
  ASSERT_TRUE(io.ok());
  WriteReq w{0, data};
  ASSERT_TRUE(io->write(fd.get(), p, {&w, 1}).ok());
  std::vector<uint8_t> buf(250);
  ReadReq r{10, buf};
  Status s = io->read(fd.get(), p, {&r, 1});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message(), HasSubstr("io_uring read " + p.string()));
  EXPECT_THAT(s.error().message(), HasSubstr("unexpected end of file at offset 100, expected 160 more bytes"));
  // The bytes that were there arrived before the error.
  EXPECT_TRUE(std::equal(data.begin() + 10, data.end(), buf.begin()));
}

TEST(UringIo, FailedRequestReportsErrnoAndDrainsTheRest) {
  TempDir dir;
  auto p = dir.path() / "ro";
  { Fd make = open_rw(p); }
  Fd ro(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  auto io = UringIo::create(4);
  ASSERT_TRUE(io.ok());
  auto data = pattern(4096, 4);
  std::vector<WriteReq> w(10, WriteReq{0, data});
  Status s = io->write(ro.get(), p, w);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().sys_errno, EBADF);
  EXPECT_THAT(s.error().message(), HasSubstr("io_uring write " + p.string() + " at offset 0"));
  // The ring is still usable afterwards.
  Fd rw = open_rw(p);
  EXPECT_TRUE(io->write(rw.get(), p, w).ok());
}

TEST(UringIo, EmptyBatchAndEmptyRequestsAreFine) {
  TempDir dir;
  auto p = dir.path() / "f";
  Fd fd = open_rw(p);
  auto io = UringIo::create(1);
  ASSERT_TRUE(io.ok());
  EXPECT_TRUE(io->read(fd.get(), p, {}).ok());
  ReadReq r{0, {}};
  EXPECT_TRUE(io->read(fd.get(), p, {&r, 1}).ok());
}

TEST(UringIo, RejectsBadQueueDepth) {
  EXPECT_FALSE(UringIo::create(0).ok());
  EXPECT_FALSE(UringIo::create(5000).ok());
}

}  // namespace
}  // namespace vmfork::snapshot
