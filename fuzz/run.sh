#!/usr/bin/env bash
# Builds the host-side libFuzzer targets with clang (ASan + UBSan) and runs each for N seconds
# on its seed corpus (fuzz/corpus/<target>/; new inputs go to build-fuzz/corpus/<target>/).
# Usage: fuzz/run.sh [seconds per target, default 60] [target...]; fuzz/run.sh --seeds rewrites
# the binary seeds (fuzz/make_seeds.cc).
# Targets: protocol (pool/protocol.cc: request and response lines), manifest
# (snapshot/manifest.cc), pack (snapshot/pack.cc: index, frames), state
# (engine/snapshot_state.cc: vCPU, VM, serial, channel sections), channel (vmm/devices/channel.cc,
# engine/job_files.cc, engine/classify_stop.cc: guest-written channel page, windows and
# doorbells), erofs (guest-kernel/fs/erofs.cc: a root file system image; seeds are mkfs.erofs
# images, fuzz/build.sh makes more). A crash leaves crash-* in build-fuzz/ and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--seeds" ]; then seeds=1; shift; else seeds=0; fi
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(protocol manifest pack state channel erofs)
out=build-fuzz
mkdir -p "$out/obj"
CXX="${CXX_FUZZ:-clang++}"
flags=(-std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -I.)

# The code under test, with coverage, into one archive: the linker takes only what a target uses.
srcs=(pool/protocol.cc pool/base64.cc engine/result_json.cc engine/fault_names.cc engine/snapshot_state.cc
      engine/classify_stop.cc engine/job_files.cc vmm/guest_memory.cc
      snapshot/manifest.cc snapshot/pack.cc snapshot/page_hash.cc snapshot/uring_io.cc
      vmm/vcpu_state.cc vmm/vm_state.cc vmm/kvm.cc vmm/accel.cc vmm/devices/serial.cc vmm/devices/channel.cc)
objs=()
for s in "${srcs[@]}"; do
  o="$out/obj/${s//\//_}.o"
  if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ -n "$(find "$(dirname "$s")" common -name '*.h' -newer "$o" -print -quit)" ]; then
    "$CXX" "${flags[@]}" -fsanitize=fuzzer-no-link -c "$s" -o "$o"
  fi
  objs+=("$o")
done
rm -f "$out/libfuzzed.a"
ar rcs "$out/libfuzzed.a" "${objs[@]}"
libs=(-luring -lzstd -lxxhash -lcrypto)
if [ "$seeds" = 1 ]; then
  "$CXX" "${flags[@]}" fuzz/make_seeds.cc "$out/libfuzzed.a" "${libs[@]}" -o "$out/make_seeds"
  "$out/make_seeds"
  exit 0
fi

status=0
for t in "${targets[@]}"; do
  if [ "$t" = erofs ]; then
    # The guest kernel's reader, built for the host; only it sees guest-kernel/ as an include root.
    "$CXX" "${flags[@]}" -Iguest-kernel -fsanitize=fuzzer fuzz/erofs_fuzz.cc guest-kernel/fs/erofs.cc \
      -o "$out/erofs_fuzz"
  else
    "$CXX" "${flags[@]}" -fsanitize=fuzzer "fuzz/${t}_fuzz.cc" "$out/libfuzzed.a" "${libs[@]}" -o "$out/${t}_fuzz"
  fi
  mkdir -p "$out/corpus/$t"
  echo "== $t: ${seconds}s"
  if ! (cd "$out" && "./${t}_fuzz" -max_len=65536 -max_total_time="$seconds" -print_final_stats=1 \
          "corpus/$t" "../fuzz/corpus/$t" 2>&1 | tee "$t.log" | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)"); then
    :
  fi
  if grep -qE "==[0-9]+==ERROR|SUMMARY: (Address|Undefined|libFuzzer)|deadly signal" "$out/$t.log"; then
    echo "$t: CRASH (see build-fuzz/$t.log)"
    status=1
  fi
done
exit $status
