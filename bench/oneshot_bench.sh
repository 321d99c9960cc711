#!/bin/sh
# One-shot clones from a fresh process (issue 11): `vmfork run --template` against the same
# static program started on the host, with hyperfine (-N: no shell), plus the floors under it:
# the vmfork binary starting and exiting (`vmfork --help`: exec, dynamic linking, static
# initializers) and a cold `vmfork run` of the same program. Figures go in
# docs/performance.md ("One-shot clones"); they are wall-clock and depend on the machine's load.
#   VMFORK=path/to/vmfork (default build/vmfork)  RUNS=50  VMFORK_BENCH_DIR=/var/tmp/vmfork-bench
#   JSON=out.json to keep hyperfine's raw results.
set -eu
VF=${VMFORK:-build/vmfork}
RUNS=${RUNS:-50}
STORE=${VMFORK_BENCH_DIR:-/var/tmp/vmfork-bench}/oneshot
command -v hyperfine >/dev/null || { echo "oneshot_bench: hyperfine not installed (apt-get install hyperfine)" >&2; exit 1; }
rm -rf "$STORE"
"$VF" template --store "$STORE" create base --mem 256M >/dev/null
"$VF" template --store "$STORE" create cat --mem 256M -- /bin/busybox cat >/dev/null
# The first clone after create finds the image ready; run one anyway so nothing is built below.
"$VF" run --store "$STORE" --template cat </dev/null
# hyperfine gives each command /dev/null as stdin, so the cat clone reads EOF and exits.
set -- -N -w 5 -r "$RUNS"
[ -n "${JSON:-}" ] && set -- "$@" --export-json "$JSON"
hyperfine "$@" \
  "/bin/busybox true" \
  "$VF --help" \
  "$VF run --store $STORE --template base -- /bin/busybox true" \
  "$VF run --store $STORE --template cat" \
  "$VF run --mem 256M -- /bin/busybox true"
rm -rf "$STORE"
