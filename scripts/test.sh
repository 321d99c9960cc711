#!/usr/bin/env bash
# Builds (if needed) and runs every test: unit tests, then integration tests that boot VMs.
# VMFORK_SANITIZE=1 runs them on the AddressSanitizer + UBSan build instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
dir=build
[ "${VMFORK_SANITIZE:-0}" = 1 ] && dir=build-asan
ctest --test-dir "$dir" --output-on-failure
