#!/usr/bin/env bash
# Builds and runs the EROFS reader fuzzer with clang's libFuzzer (ASan + UBSan), seeded with
# small mkfs.erofs images. Usage: fuzz/build.sh [seconds, default 60]. Output under build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-fuzz
mkdir -p "$out/corpus" "$out/tree/d/e"
clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -Iguest-kernel fuzz/erofs_fuzz.cc guest-kernel/fs/erofs.cc -o "$out/erofs_fuzz"
# Seeds: a few small trees covering inline tails, plain blocks, symlinks and a multi-block dir.
echo hello > "$out/tree/a"
head -c 5000 /dev/zero | tr '\0' x > "$out/tree/d/b"
ln -sf a "$out/tree/link"
for i in $(seq 1 300); do : > "$out/tree/d/e/file-$i"; done
mkfs.erofs --quiet "$out/corpus/seed1.img" "$out/tree"
mkfs.erofs --quiet -Eforce-inode-compact "$out/corpus/seed2.img" "$out/tree"
mkfs.erofs --quiet -Enoinline_data "$out/corpus/seed3.img" "$out/tree/d"
"$out/erofs_fuzz" -max_len=65536 -max_total_time="${1:-60}" "$out/corpus"
