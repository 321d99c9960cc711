#!/usr/bin/env bash
# Installs what vmfork needs to build and test, from Debian packages (run as root). The -dev
# packages of libarchive's own dependencies (nettle ... libxml2) are there for their static
# archives: the default build links them into `vmfork` (VMFORK_STATIC_DEPS, CMakeLists.txt).
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
  libhiredis-dev redis-server \
  nettle-dev libacl1-dev liblzma-dev liblz4-dev libbz2-dev zlib1g-dev libxml2-dev \
  hyperfine \
  clang libclang-rt-14-dev \
  qemu-system-x86 gnuplot-nox >/dev/null  # clang + libFuzzer runtime: fuzz/run.sh; hyperfine: bench/measure_noise.sh, bench/oneshot_bench.sh; QEMU peer + plots: vmfork bench
