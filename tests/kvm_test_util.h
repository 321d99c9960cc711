// Shared helpers for tests that need /dev/kvm: they fail (not skip) under CI=true when it is
// missing, as the project's CI rules require. Thread-safety: test-thread only.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace vmfork::test {

/// Skips the current test when /dev/kvm cannot be opened, except under CI=true, where it fails.
#define VMFORK_REQUIRE_KVM()                                                        \
  do {                                                                              \
    if (access("/dev/kvm", R_OK | W_OK) != 0) {                                     \
      const char* ci = std::getenv("CI");                                           \
      if (ci && std::string(ci) == "true") FAIL() << "/dev/kvm is required in CI";  \
      GTEST_SKIP() << "/dev/kvm not available";                                     \
    }                                                                               \
  } while (0)

}  // namespace vmfork::test
