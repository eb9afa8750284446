#!/usr/bin/env bash
# tools/bench-run.sh smoke|full DIR : runs every Google Benchmark executable DIR/bench_*.
#   full   each suite as configured (plus any BENCH_ARGS)
#   smoke  each suite for --benchmark_min_time=0.01 on small sizes only: the benchmarks whose first numeric
#          argument is at most HEADLENS_BENCH_SMOKE_MAX (256), or that take none. A suite with no such benchmark
#          runs whole, briefly, so every binary is exercised. A crash or a non-zero exit fails the run.
set -euo pipefail
mode=$1
dir=$2
max=${HEADLENS_BENCH_SMOKE_MAX:-256}
shopt -s nullglob
bins=()
for b in "$dir"/bench_*; do
  [[ -f $b && -x $b ]] && bins+=("$b")
done
if [[ ${#bins[@]} -eq 0 ]]; then
  echo "bench-run: no benchmarks in $dir (bench/bench_*.cpp), nothing to run"
  exit 0
fi
# shellcheck disable=SC2206
extra=(${BENCH_ARGS:-})
for b in "${bins[@]}"; do
  echo "==== $(basename "$b") ($mode)"
  if [[ $mode != smoke ]]; then
    "$b" "${extra[@]}"
    continue
  fi
  # Names look like family/variant/128/768 or family/T:128/real_time: the first all-digit component after the
  # first (an `arg_name:` prefix allowed) is the size.
  small=$("$b" --benchmark_list_tests | awk -F/ -v max="$max" '{
      size = ""
      for (i = 2; i <= NF; i++) { c = $i; sub(/^[A-Za-z_]+:/, "", c); if (c ~ /^[0-9]+$/) { size = c; break } }
      if (size == "" || size + 0 <= max) print }')
  if [[ -z $small ]]; then
    echo "bench-run: no benchmark of size <= $max in $(basename "$b"); running all of it briefly"
    "$b" --benchmark_min_time=0.01 --benchmark_color=false "${extra[@]}"
    continue
  fi
  # Exact names, regex-escaped, as one alternation.
  filter=$(sed -E 's/[][\.*^$+?(){}|]/\\&/g; s/^/^/; s/$/$/' <<<"$small" | paste -sd'|')
  "$b" --benchmark_min_time=0.01 --benchmark_color=false --benchmark_filter="$filter" "${extra[@]}"
done
echo "bench-run: ${#bins[@]} benchmark suite(s) ran ($mode)"
