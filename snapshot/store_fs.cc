// RealFs: the page store's mutating file-system calls, each error naming the call and path.
#include "snapshot/store_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace vmfork::snapshot {

Result<Fd> RealFs::create_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_error("create " + path.string());
  return Fd(fd);
}

Status RealFs::write_batch(UringIo& io, int fd, const std::filesystem::path& path, std::span<const WriteReq> reqs) {
  return io.write(fd, path, reqs);
}

Status RealFs::fsync(int fd, const std::filesystem::path& path) {
  if (::fsync(fd) < 0) return errno_error("fsync " + path.string());
  return Status::Ok();
}

Status RealFs::rename(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::rename(from.c_str(), to.c_str()) < 0) return errno_error("rename " + from.string() + " to " + to.string());
  return Status::Ok();
}

Status RealFs::unlink(const std::filesystem::path& path) {
  if (::unlink(path.c_str()) < 0) return errno_error("unlink " + path.string());
  return Status::Ok();
}

Status RealFs::fsync_dir(const std::filesystem::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open directory " + dir.string());
  if (::fsync(fd.get()) < 0) return errno_error("fsync directory " + dir.string());
  return Status::Ok();
}

Status RealFs::punch_hole(int fd, const std::filesystem::path& path, uint64_t offset, uint64_t bytes) {
  if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(bytes)) < 0)
    return errno_error("fallocate(PUNCH_HOLE) " + path.string() + " at offset " + std::to_string(offset) + " (" +
                       std::to_string(bytes) + " bytes)");
  return Status::Ok();
}

Status RealFs::make_dir(const std::filesystem::path& path) {
  if (::mkdir(path.c_str(), 0755) == 0) return Status::Ok();
  if (errno != EEXIST) return errno_error("mkdir " + path.string());
  struct stat st;
  if (::stat(path.c_str(), &st) < 0) return errno_error("stat " + path.string());
  if (!S_ISDIR(st.st_mode)) return Error{"mkdir " + path.string() + ": exists and is not a directory", ENOTDIR};
  return Status::Ok();
}

Status RealFs::set_size(int fd, const std::filesystem::path& path, uint64_t bytes) {
  if (::ftruncate(fd, static_cast<off_t>(bytes)) < 0)
    return errno_error("ftruncate " + path.string() + " to " + std::to_string(bytes) + " bytes");
  return Status::Ok();
}

std::shared_ptr<StoreFs> real_fs() {
  static const std::shared_ptr<StoreFs> fs = std::make_shared<RealFs>();
  return fs;
}

}  // namespace vmfork::snapshot
