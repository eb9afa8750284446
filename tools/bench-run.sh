#!/usr/bin/env bash
# tools/bench-run.sh smoke|full DIR : runs every Google Benchmark executable DIR/bench_*.
#   full   each suite as configured (plus any BENCH_ARGS)
#   smoke  each suite for --benchmark_min_time=0.01 on small sizes only: the benchmarks whose first argument is at
#          most 256, or that take no argument (HEADLENS_BENCH_SMOKE_FILTER overrides the regex). A suite where the
#          filter matches nothing runs whole, briefly, so every binary is exercised. A crash fails the run.
set -euo pipefail
mode=$1
dir=$2
shopt -s nullglob
bins=()
for b in "$dir"/bench_*; do
  [[ -f $b && -x $b ]] && bins+=("$b")
done
if [[ ${#bins[@]} -eq 0 ]]; then
  echo "bench-run: no benchmarks in $dir (bench/bench_*.cpp), nothing to run"
  exit 0
fi
default_filter='^[^/]+$|^[^/]+/([A-Za-z_]+:)?([0-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-6])(/|$)'
filter=${HEADLENS_BENCH_SMOKE_FILTER:-$default_filter}
# shellcheck disable=SC2206
extra=(${BENCH_ARGS:-})
for b in "${bins[@]}"; do
  echo "==== $(basename "$b") ($mode)"
  if [[ $mode == smoke ]]; then
    if [[ -n "$("$b" --benchmark_list_tests --benchmark_filter="$filter" 2>/dev/null)" ]]; then
      "$b" --benchmark_min_time=0.01 --benchmark_filter="$filter" "${extra[@]}"
    else
      echo "bench-run: no small-size benchmark matched in $(basename "$b"); running all of it briefly"
      "$b" --benchmark_min_time=0.01 "${extra[@]}"
    fi
  else
    "$b" "${extra[@]}"
  fi
done
echo "bench-run: ${#bins[@]} benchmark suite(s) ran"
