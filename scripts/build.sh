#!/usr/bin/env bash
# Installs dependencies and builds vmfork into build/ (build-asan/ with VMFORK_SANITIZE=1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
dir=build
args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${VMFORK_SANITIZE:-0}" = 1 ]; then dir=build-asan; args+=(-DVMFORK_SANITIZE=ON); fi
cmake -S . -B "$dir" "${args[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
