// FaultyFs: count, log and fail mutating file-system operations on request.
#include "snapshot/faulty_fs.h"

namespace vmfork::snapshot {

FaultyFs::FaultyFs(std::shared_ptr<StoreFs> base) : base_(base ? std::move(base) : real_fs()) {}

void FaultyFs::fail_at(uint64_t n, int err, bool sticky) {
  std::lock_guard lock(mu_);
  ops_ = 0;
  fail_at_ = n;
  errno_ = err;
  sticky_ = sticky;
  log_.clear();
  failed_op_.clear();
}

uint64_t FaultyFs::ops() const {
  std::lock_guard lock(mu_);
  return ops_;
}

std::vector<std::string> FaultyFs::log() const {
  std::lock_guard lock(mu_);
  return log_;
}

std::string FaultyFs::failed_op() const {
  std::lock_guard lock(mu_);
  return failed_op_;
}

Status FaultyFs::count(const std::string& what) {
  std::lock_guard lock(mu_);
  ++ops_;
  log_.push_back(what);
  bool fail = fail_at_ != 0 && (ops_ == fail_at_ || (sticky_ && ops_ > fail_at_));
  if (!fail) return Status::Ok();
  if (failed_op_.empty()) failed_op_ = what;
  return Error{what + " (injected fault at operation " + std::to_string(ops_) + ")", errno_};
}

Result<Fd> FaultyFs::create_file(const std::filesystem::path& path) {
  VF_TRY(count("create " + path.string()));
  return base_->create_file(path);
}

Status FaultyFs::write_batch(UringIo& io, int fd, const std::filesystem::path& path, std::span<const WriteReq> reqs) {
  Status s = count("io_uring write " + path.string());
  if (!s.ok()) {
    // Torn write: half of the first request reaches the file before the failure.
    if (!reqs.empty() && reqs[0].buf.size() >= 2) {
      WriteReq half{reqs[0].offset, reqs[0].buf.first(reqs[0].buf.size() / 2)};
      (void)base_->write_batch(io, fd, path, {&half, 1});
    }
    return s;
  }
  return base_->write_batch(io, fd, path, reqs);
}

Status FaultyFs::fsync(int fd, const std::filesystem::path& path) {
  VF_TRY(count("fsync " + path.string()));
  return base_->fsync(fd, path);
}

Status FaultyFs::rename(const std::filesystem::path& from, const std::filesystem::path& to) {
  VF_TRY(count("rename " + from.string() + " to " + to.string()));
  return base_->rename(from, to);
}

Status FaultyFs::unlink(const std::filesystem::path& path) {
  VF_TRY(count("unlink " + path.string()));
  return base_->unlink(path);
}

Status FaultyFs::fsync_dir(const std::filesystem::path& dir) {
  VF_TRY(count("fsync directory " + dir.string()));
  return base_->fsync_dir(dir);
}

Status FaultyFs::punch_hole(int fd, const std::filesystem::path& path, uint64_t offset, uint64_t bytes) {
  VF_TRY(count("fallocate(PUNCH_HOLE) " + path.string() + " at offset " + std::to_string(offset)));
  return base_->punch_hole(fd, path, offset, bytes);
}

Status FaultyFs::make_dir(const std::filesystem::path& path) {
  VF_TRY(count("mkdir " + path.string()));
  return base_->make_dir(path);
}

Status FaultyFs::set_size(int fd, const std::filesystem::path& path, uint64_t bytes) {
  VF_TRY(count("ftruncate " + path.string()));
  return base_->set_size(fd, path, bytes);
}

}  // namespace vmfork::snapshot
