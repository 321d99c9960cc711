// Job programs shared between clones (see program_cache.h).
#include "engine/program_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <span>

#include "vmm/elf.h"

namespace vmfork::engine {

namespace {

constexpr uint64_t kPage = 4096;

int64_t ns(const timespec& t) { return int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec; }

// A sealed memfd holding the `bytes` of `fd` checked by check_static_program.
Result<std::shared_ptr<SharedProgram>> load(int fd, const std::string& path, uint64_t bytes) {
  auto p = std::make_shared<SharedProgram>();
  p->bytes = bytes;
  p->mapped_bytes = (bytes + kPage - 1) & ~(kPage - 1);
  p->memfd = Fd(memfd_create("vmfork-program", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!p->memfd.valid()) return errno_error("memfd_create for " + path);
  if (ftruncate(p->memfd.get(), off_t(p->mapped_bytes)) < 0) return errno_error("ftruncate of the memfd for " + path);
  if (bytes) {
    void* m = mmap(nullptr, p->mapped_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, p->memfd.get(), 0);
    if (m == MAP_FAILED) return errno_error("mmap of the memfd for " + path);
    auto* dst = static_cast<uint8_t*>(m);
    Status st = read_program_bytes(fd, dst, bytes, path);
    if (st.ok()) {
      auto elf = vmm::check_static_program(std::span<const uint8_t>(dst, bytes), path);
      if (!elf.ok()) st = elf.error();
    }
    munmap(m, p->mapped_bytes);  // F_SEAL_WRITE refuses while a shared writable mapping exists
    VF_TRY(st);
  } else {
    VF_TRY(vmm::check_static_program({}, path));
  }
  if (fcntl(p->memfd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
    return errno_error("fcntl F_ADD_SEALS on the memfd for " + path);
  return p;
}

}  // namespace

Result<struct stat> stat_program(int fd, const std::string& path, uint64_t max_bytes) {
  struct stat st;
  if (fstat(fd, &st) < 0) return errno_error("fstat " + path);
  if (!S_ISREG(st.st_mode)) return plain_error(path + ": not a regular file");
  if (uint64_t(st.st_size) > max_bytes)
    return plain_error(path + ": " + std::to_string(st.st_size) + " bytes does not fit in guest memory");
  return st;
}

Status read_program_bytes(int fd, uint8_t* dst, uint64_t bytes, const std::string& path) {
  for (uint64_t got = 0; got < bytes;) {
    ssize_t n = pread(fd, dst + got, bytes - got, off_t(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read " + path);
    if (n == 0) return plain_error(path + ": file shrank while being read");
    got += uint64_t(n);
  }
  return {};
}

ProgramCache::Key ProgramCache::key_of(const struct stat& st) {
  return {st.st_dev, st.st_ino, st.st_size, ns(st.st_mtim), ns(st.st_ctim)};
}

Result<std::shared_ptr<const SharedProgram>> ProgramCache::get(int fd, const std::string& path, uint64_t max_bytes) {
  VF_ASSIGN(const struct stat st, stat_program(fd, path, max_bytes));
  const Key key = key_of(st);
  {
    std::lock_guard lock(mu_);
    for (auto it = lru_.begin(); it != lru_.end(); ++it) {
      if (!(it->key == key)) continue;
      hits_++;
      lru_.splice(lru_.begin(), lru_, it);
      return lru_.front().program;
    }
    misses_++;
  }
  VF_ASSIGN(std::shared_ptr<const SharedProgram> program, load(fd, path, uint64_t(st.st_size)));
  // Kept only if the file did not change while it was read: otherwise its bytes may mix two
  // versions under the first version's key.
  struct stat after;
  if (fstat(fd, &after) < 0) return errno_error("fstat " + path);
  if (!(key_of(after) == key) || program->mapped_bytes > max_bytes_) return program;
  std::lock_guard lock(mu_);
  for (const auto& e : lru_)
    if (e.key == key) return e.program;  // another thread read it meanwhile: one copy is kept
  lru_.push_front(Entry{key, program});
  bytes_ += program->mapped_bytes;
  while (lru_.size() > max_entries_ || bytes_ > max_bytes_) {
    bytes_ -= lru_.back().program->mapped_bytes;
    lru_.pop_back();
  }
  return program;
}

ProgramCache::Stats ProgramCache::stats() const {
  std::lock_guard lock(mu_);
  return Stats{hits_, misses_, lru_.size(), bytes_};
}

}  // namespace vmfork::engine
