#!/usr/bin/env bash
# Noise of `vmfork measure` against hyperfine on the same machine, in one run (issue 13): the
# coefficient of variation of an n-body run measured both ways, interleaved in time as closely
# as a script can (vmfork first, then hyperfine, then vmfork again). Figures go to
# docs/performance.md ("vmfork measure: noise").
# Usage: bench/measure_noise.sh [BUILD_DIR=build] [RUNS=30] [STEPS=2000000]
set -euo pipefail
BUILD=${1:-build}
RUNS=${2:-30}
STEPS=${3:-2000000}
VMFORK=$BUILD/vmfork
NBODY=$BUILD/tests/programs/nbody.glibc
command -v hyperfine >/dev/null || { echo "hyperfine missing (apt-get install hyperfine)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cv_vmfork() {  # file -> "cv_cpu cv_wall mean_cpu_ms mean_wall_ms"
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["programs"][0]["summary"]
print("%.4f %.4f %.3f %.3f" % (s["vcpu_cpu_us"]["cv"], s["wall_us"]["cv"], s["vcpu_cpu_us"]["mean"]/1e3, s["wall_us"]["mean"]/1e3))' "$1"
}
cv_hyperfine() {  # file -> "cv mean_ms mean_cpu_ms" (hyperfine keeps only the mean of user + system)
  python3 -c 'import json,sys,statistics as st; r=json.load(open(sys.argv[1]))["results"][0]; t=r["times"]
m=st.mean(t); print("%.4f %.3f %.3f" % (st.stdev(t)/m, m*1e3, (r["user"]+r["system"])*1e3))' "$1"
}

"$VMFORK" measure --json --repeat "$RUNS" --warmup 3 -- "$NBODY" "$STEPS" >"$tmp/v1.json"
hyperfine --style none --warmup 3 --runs "$RUNS" --export-json "$tmp/h.json" "$NBODY $STEPS" >/dev/null
"$VMFORK" measure --json --repeat "$RUNS" --warmup 3 -- "$NBODY" "$STEPS" >"$tmp/v2.json"

read -r c1 w1 m1 mw1 <<<"$(cv_vmfork "$tmp/v1.json")"
read -r hc hm hcpu <<<"$(cv_hyperfine "$tmp/h.json")"
read -r c2 w2 m2 mw2 <<<"$(cv_vmfork "$tmp/v2.json")"
echo "n-body $STEPS steps, $RUNS runs each, load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %10s %8s\n' "" "mean ms" "cv"
printf '%-34s %10s %8s\n' "vmfork measure, vCPU CPU (1st)" "$m1" "$c1"
printf '%-34s %10s %8s\n' "vmfork measure, wall (1st)" "$mw1" "$w1"
printf '%-34s %10s %8s\n' "hyperfine on the host, wall" "$hm" "$hc"
printf '%-34s %10s %8s\n' "hyperfine on the host, user+sys" "$hcpu" "-"
printf '%-34s %10s %8s\n' "vmfork measure, vCPU CPU (2nd)" "$m2" "$c2"
printf '%-34s %10s %8s\n' "vmfork measure, wall (2nd)" "$mw2" "$w2"
