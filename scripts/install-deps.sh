#!/usr/bin/env bash
# Installs what vmfork needs to build and test, from Debian packages (run as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  cmake make g++ pkg-config rustc golang-go \
  liburing-dev libxxhash-dev libzstd-dev libseccomp-dev \
  nlohmann-json3-dev libcli11-dev libspdlog-dev \
  libgtest-dev libgmock-dev libbenchmark-dev \
  libssl-dev musl-tools busybox-static \
  erofs-utils libarchive-dev libpython3.11-stdlib python3 sqlite3 gzip findutils dash \
  libhiredis-dev libcpp-httplib-dev redis-server \
  hyperfine \
  clang libclang-rt-14-dev \
  qemu-system-x86 gnuplot-nox >/dev/null  # clang + libFuzzer runtime: fuzz/run.sh; hyperfine: bench/measure_noise.sh, bench/oneshot_bench.sh; QEMU peer + plots: vmfork bench
