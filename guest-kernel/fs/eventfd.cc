// eventfd objects (see eventfd.h); semantics from eventfd(2). Single vCPU: no locking.
#include "fs/eventfd.h"

#include "fs/readiness.h"
#include "kernel/sched.h"
#include "linux_abi.h"
#include "mm/kmalloc.h"
#include "mm/mm.h"

namespace k::eventfd {
namespace {

constexpr uint64_t kMax = ~0ull - 1;  // eventfd(2): the counter never exceeds 0xfffffffffffffffe

struct Counter {
  uint64_t value;
  bool semaphore;
  uint64_t gen;
  sched::WaitQueue readq, writeq;
};

Counter* of(const fs::Node* n) { return static_cast<Counter*>(n->priv); }

void changed(Counter* c) {
  c->gen++;
  readiness::notify();
}

}  // namespace

fs::Node* create(uint64_t initval, bool semaphore) {
  fs::Node* n = fs::new_anonymous_file();
  if (!n) return nullptr;
  auto* c = static_cast<Counter*>(mm::kmalloc(sizeof(Counter)));
  if (!c) {
    mm::kfree(n);
    return nullptr;
  }
  c->value = initval;
  c->semaphore = semaphore;
  c->gen = 1;
  n->mode = 0600;  // an anonymous inode: no file type bits, as Linux reports it
  n->nlink = 1;
  n->special = fs::Special::kEventfd;
  n->priv = c;
  return n;
}

void close(fs::Node* n) {
  if (n->opens) return;
  mm::kfree(of(n));
  mm::kfree(n);  // in no directory: nothing else points at it
}

int64_t read(fs::Node* n, uint8_t* dst, uint64_t len, bool nonblock, bool user) {
  if (len < 8) return -EINVAL;
  Counter* c = of(n);
  for (;;) {
    if (c->value) {
      if (user && !mm::user_ok(uint64_t(dst), 8, true)) return -EFAULT;
      uint64_t v = c->semaphore ? 1 : c->value;
      memcpy(dst, &v, 8);
      c->value -= v;
      sched::wake_all(&c->writeq);
      changed(c);
      return 8;
    }
    if (nonblock) return -EAGAIN;
    if (sched::wait(&c->readq, 0) == -EINTR) return -EINTR;
  }
}

int64_t write(fs::Node* n, const uint8_t* src, uint64_t len, bool nonblock) {
  if (len < 8) return -EINVAL;
  Counter* c = of(n);
  uint64_t v;
  memcpy(&v, src, 8);
  if (v == ~0ull) return -EINVAL;
  for (;;) {
    if (kMax - c->value >= v) {
      c->value += v;
      if (v) {
        sched::wake_all(&c->readq);
        changed(c);
      }
      return 8;
    }
    if (nonblock) return -EAGAIN;
    if (sched::wait(&c->writeq, 0) == -EINTR) return -EINTR;
  }
}

uint32_t poll(const fs::Node* n) {
  const Counter* c = of(n);
  uint32_t m = 0;
  if (c->value) m |= readiness::POLLIN | readiness::POLLRDNORM;
  if (c->value < kMax) m |= readiness::POLLOUT | readiness::POLLWRNORM;
  return m;
}

uint64_t generation(const fs::Node* n) { return of(n)->gen; }

}  // namespace k::eventfd
