// futex(2): wait/wake/requeue/wake-op/bitset on 32-bit words, keyed by guest-physical address so
// that a MAP_SHARED word is one futex in every process that maps it. Robust lists
// (set_robust_list(2), Documentation/locking/robust-futex-ABI.rst) are walked at thread exit.
#pragma once

#include <stdint.h>

#include "kernel/task.h"

namespace k::futex {

/// futex(uaddr, op, val, timeout/val2, uaddr2, val3). Returns the man page's result or -errno.
int64_t call(uint64_t uaddr, uint64_t op, uint64_t val, uint64_t utimeout, uint64_t uaddr2, uint64_t val3);
/// Wakes up to `n` waiters of the word at user address `uaddr` (CLONE_CHILD_CLEARTID).
int wake(uint64_t uaddr, int n);
/// At thread exit: marks every robust futex `t` holds FUTEX_OWNER_DIED and wakes a waiter.
void exit_robust_list(sched::Task* t);

}  // namespace k::futex
