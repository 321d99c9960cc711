// Pipes (see pipe.h): semantics from pipe(7), read(2), write(2) and Linux fs/pipe.c's observable
// behaviour. Single vCPU: no locking; every wait is followed by a re-check.
#include "fs/pipe.h"

#include "fs/readiness.h"
#include "kernel/sched.h"
#include "linux_abi.h"
#include "mm/kmalloc.h"
#include "mm/mm.h"

namespace k::pipe {
namespace {

// The ring: `len` bytes starting at byte `head` of a ring of `npages` 4 KiB kernel pages, each
// allocated on first write so a pipe that carries little costs little. The page pointer array
// is kmalloc'd (16 pointers by default), or a kernel page beyond kmalloc's largest size.
struct Pipe {
  uint8_t** pages;
  uint64_t npages;
  uint64_t head;       // byte offset in [0, npages * 4096) of the oldest buffered byte
  uint64_t len;        // bytes buffered
  uint32_t readers;    // open file descriptions that can read
  uint32_t writers;    // ... and write
  uint64_t gen;        // bumped on every change of poll() state
  sched::WaitQueue readq, writeq;
};

constexpr uint64_t kMaxKmalloc = 2032;  // mm::kmalloc's largest request

Pipe* of(const fs::Node* n) { return static_cast<Pipe*>(n->priv); }

uint8_t** alloc_ptrs(uint64_t n) {
  void* p = n * 8 <= kMaxKmalloc ? mm::kmalloc(n * 8) : mm::kpage_alloc();
  return static_cast<uint8_t**>(p);
}

void free_ring(uint8_t** pages, uint64_t n) {
  for (uint64_t i = 0; i < n; i++) mm::kpage_free(pages[i]);
  if (n * 8 <= kMaxKmalloc) mm::kfree(pages);
  else mm::kpage_free(pages);
}

uint64_t cap(const Pipe* p) { return p->npages * kPage; }

void changed(Pipe* p) {
  p->gen++;
  readiness::notify();
}

// Copies `len` bytes between the ring at byte `at` (wrapping) and `buf`. Writes allocate
// missing pages first; false when memory ran out (nothing is copied then).
bool ring_copy(Pipe* p, uint64_t at, uint8_t* buf, uint64_t len, bool to_ring) {
  if (to_ring) {
    for (uint64_t i = 0; i < len;) {
      uint64_t pos = (at + i) % cap(p), pg = pos / kPage;
      if (!p->pages[pg] && !(p->pages[pg] = static_cast<uint8_t*>(mm::kpage_alloc()))) return false;
      i += kPage - pos % kPage;
    }
  }
  for (uint64_t i = 0; i < len;) {
    uint64_t pos = (at + i) % cap(p), off = pos % kPage;
    uint64_t take = len - i < kPage - off ? len - i : kPage - off;
    uint8_t* page = p->pages[pos / kPage] + off;
    if (to_ring) memcpy(page, buf + i, take);
    else memcpy(buf + i, page, take);
    i += take;
  }
  return true;
}

}  // namespace

fs::Node* create() {
  fs::Node* n = fs::new_anonymous_file();
  if (!n) return nullptr;
  auto* p = static_cast<Pipe*>(mm::kmalloc(sizeof(Pipe)));
  uint8_t** pages = alloc_ptrs(kDefaultSize / kPage);
  if (!p || !pages) {
    mm::kfree(p);
    mm::kfree(pages);
    mm::kfree(n);
    return nullptr;
  }
  p->pages = pages;
  p->npages = kDefaultSize / kPage;
  p->gen = 1;
  n->mode = S_IFIFO | 0600;
  n->nlink = 1;
  n->special = fs::Special::kPipe;
  n->priv = p;
  return n;
}

void open_end(fs::Node* n, bool reads, bool writes) {
  Pipe* p = of(n);
  if (reads) p->readers++;
  if (writes) p->writers++;
  changed(p);
}

void close_end(fs::Node* n, bool reads, bool writes) {
  Pipe* p = of(n);
  if (reads) p->readers--;
  if (writes) p->writers--;
  // Blocked writers see EPIPE, blocked readers EOF; pollers see POLLERR/POLLHUP.
  sched::wake_all(&p->readq);
  sched::wake_all(&p->writeq);
  changed(p);
  if (n->opens) return;
  free_ring(p->pages, p->npages);
  mm::kfree(p);
  mm::kfree(n);  // a pipe node is in no directory: nothing else points at it
}

int64_t read(fs::Node* n, uint8_t* dst, uint64_t len, bool nonblock, bool user) {
  Pipe* p = of(n);
  for (;;) {
    if (p->len) {
      uint64_t take = len < p->len ? len : p->len;
      if (user && !mm::user_ok(uint64_t(dst), take, true)) return -EFAULT;
      ring_copy(p, p->head, dst, take, false);
      p->head = (p->head + take) % cap(p);
      p->len -= take;
      if (!p->len) p->head = 0;  // keep small transfers on the first page
      sched::wake_all(&p->writeq);
      changed(p);
      return int64_t(take);
    }
    if (!p->writers) return 0;
    if (nonblock) return -EAGAIN;
    int64_t r = sched::wait(&p->readq, 0);
    if (r == -EINTR) return -EINTR;
  }
}

int64_t write(fs::Node* n, const uint8_t* src, uint64_t len, bool nonblock, bool user) {
  Pipe* p = of(n);
  uint64_t done = 0;
  for (;;) {
    // SIGPIPE: raised by the caller (the scheduler's signal code), which sees -EPIPE.
    if (!p->readers) return done ? int64_t(done) : -EPIPE;
    uint64_t room = cap(p) - p->len, want = len - done;
    // pipe(7): up to PIPE_BUF bytes go in whole or not at all; larger writes may be split.
    uint64_t take = want <= room ? want : (len <= kPipeBuf ? 0 : room);
    if (take) {
      if (user && !mm::user_ok(uint64_t(src + done), take, false)) return done ? int64_t(done) : -EFAULT;
      if (!ring_copy(p, p->head + p->len, const_cast<uint8_t*>(src + done), take, true))
        return done ? int64_t(done) : -ENOMEM;
      p->len += take;
      done += take;
      sched::wake_all(&p->readq);
      changed(p);
      if (done == len) return int64_t(done);
    }
    if (nonblock) return done ? int64_t(done) : -EAGAIN;
    int64_t r = sched::wait(&p->writeq, 0);
    if (r == -EINTR) return done ? int64_t(done) : -EINTR;
  }
}

uint32_t poll(const fs::Node* n, bool reads, bool writes) {
  const Pipe* p = of(n);
  uint32_t m = 0;
  if (reads) {
    if (p->len) m |= readiness::POLLIN | readiness::POLLRDNORM;
    if (!p->writers) m |= readiness::POLLHUP;
  }
  if (writes) {
    if (cap(p) - p->len >= kPipeBuf) m |= readiness::POLLOUT | readiness::POLLWRNORM;
    if (!p->readers) m |= readiness::POLLERR;
  }
  return m;
}

uint64_t generation(const fs::Node* n) { return of(n)->gen; }
uint64_t buffered(const fs::Node* n) { return of(n)->len; }
uint64_t size(const fs::Node* n) { return cap(of(n)); }

int64_t set_size(fs::Node* n, uint64_t bytes) {
  Pipe* p = of(n);
  if (!bytes || bytes > (1ull << 31)) return -EINVAL;
  uint64_t pages = 1;
  while (pages * kPage < bytes) pages *= 2;
  if (pages * kPage > kMaxSize && pages > p->npages) return -EPERM;  // the job has no CAP_SYS_RESOURCE
  if (p->len > pages * kPage) return -EBUSY;
  if (pages == p->npages) return int64_t(cap(p));
  // Move the data into a fresh ring laid out from byte 0; the old pages go back afterwards.
  Pipe fresh = *p;
  fresh.pages = alloc_ptrs(pages);
  if (!fresh.pages) return -ENOMEM;
  fresh.npages = pages;
  fresh.head = 0;
  for (uint64_t i = 0; i < pages; i++) fresh.pages[i] = nullptr;
  uint8_t* bounce = static_cast<uint8_t*>(mm::kpage_alloc());
  bool ok = bounce != nullptr;
  for (uint64_t i = 0; ok && i < p->len; i += kPage) {
    uint64_t take = p->len - i < kPage ? p->len - i : kPage;
    ring_copy(p, p->head + i, bounce, take, false);
    ok = ring_copy(&fresh, i, bounce, take, true);
  }
  mm::kpage_free(bounce);
  if (!ok) {
    free_ring(fresh.pages, pages);
    return -ENOMEM;
  }
  free_ring(p->pages, p->npages);
  p->pages = fresh.pages;
  p->npages = pages;
  p->head = 0;
  sched::wake_all(&p->writeq);  // a bigger ring may take a blocked write
  changed(p);
  return int64_t(cap(p));
}

}  // namespace k::pipe
