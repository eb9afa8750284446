#!/usr/bin/env bash
# tools/bench_compare.sh [OUT.md] : headlens against PyTorch and a straightforward Eigen attention, in one run.
#
# Builds three small programs (tools/bench_compare/*.cpp) with -O3 -march=native -fopenmp, then, with the fair
# settings of PERFORMANCE.md exported before any process starts (OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = THREADS,
# OMP_WAIT_POLICY=PASSIVE), runs ROUNDS rounds of: an FMA-peak probe; headlens forward (T = 128, 512, 2048; d 768,
# 12 heads, float, batch 1), forward with every pattern delivered to a hook, forward with streaming statistics,
# the fused QKV GEMM alone, a decode step at context 4096; torch.nn.MultiheadAttention(need_weights=False) and
# its decode step (/usr/bin/python3, tools/bench_compare/torch_runner.py); the Eigen baseline. Each figure is a
# median of samples >= 0.1 s; ratios are taken within a round, then the median over rounds is reported, so only
# same-run comparisons enter the table. Prints a Markdown table (and writes it to OUT.md when given).
#
# Variables: THREADS (2), ROUNDS (3), SIZES ("128 512 2048"), DECODE_CONTEXT (4096), PYTHON (/usr/bin/python3),
#            BENCH_COMPARE_BUILD (build/bench-compare), CXX (g++), QUICK=1 (one round, short samples: a smoke run),
#            HEADLENS_SKIP_DEPS=1 (do not install libopenblas-dev when it is missing), BENCH_ANY_BLAS=1 (accept a
#            libblas.so that is not OpenBLAS).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=$root/tools/bench_compare
build=${BENCH_COMPARE_BUILD:-$root/build/bench-compare}
threads=${THREADS:-2}
rounds=${ROUNDS:-3}
sizes=${SIZES:-128 512 2048}
decode_context=${DECODE_CONTEXT:-4096}
python=${PYTHON:-/usr/bin/python3}
cxx=${CXX:-g++}
out=${1:-}
if [[ ${QUICK:-0} == 1 ]]; then
  rounds=1
  export SAMPLES=3 SAMPLE_SECONDS=0.02
fi

mkdir -p "$build"
flags=(-std=c++17 -O3 -DNDEBUG -march=native -fopenmp -isystem /usr/include/eigen3 -I"$root/include")
build_one() {  # name source [flags...] [-- libs...]: rebuilds when the source or a header is newer than the binary
  local name=$1 source=$src/$2
  shift 2
  local opts=() libs=()
  while [[ $# -gt 0 && $1 != -- ]]; do opts+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift && libs=("$@")
  local bin=$build/$name
  if [[ ! -x $bin || -n $(find "$source" "$root/include" "$root/bench/support" -newer "$bin" -print -quit) ]]; then
    echo "bench_compare: building $name" >&2
    "$cxx" "${flags[@]}" "${opts[@]}" "$source" -o "$bin" "${libs[@]}"
  fi
}
build_one fma_probe fma_probe.cpp -I"$root/bench"  # the probe lives in bench/support/fma_peak.hpp
build_one headlens_runner headlens_runner.cpp -DEIGEN_DONT_PARALLELIZE  # as the CMake target defines it
build_one eigen_baseline eigen_baseline.cpp  # Eigen threads its own GEMMs here, as users get by default
# The BLAS backend (HEADLENS_USE_BLAS) needs a real BLAS behind -lblas: Debian's libopenblas-dev (which makes
# libblas.so OpenBLAS). It is installed like every other dependency, by tools/install-deps.sh (only when missing;
# HEADLENS_SKIP_DEPS=1 skips it). A reference BLAS would link but measure nothing worth reporting, so the libblas.so
# the compiler finds must be OpenBLAS (or MKL/BLIS, when BENCH_ANY_BLAS=1 says it is real); otherwise the BLAS
# columns are left out with one line saying why.
have_blas=0
HEADLENS_EXTRA_PACKAGES="libopenblas-dev" bash "$root/tools/install-deps.sh" >&2 || true
blas_lib=$(readlink -f "$("$cxx" -print-file-name=libblas.so)" 2>/dev/null || true)
if [[ -e $blas_lib && ( $blas_lib == *openblas* || ${BENCH_ANY_BLAS:-0} == 1 ) ]]; then
  if build_one headlens_runner_blas headlens_runner.cpp -DEIGEN_DONT_PARALLELIZE -DHEADLENS_USE_BLAS -- -lblas; then
    have_blas=1
  fi
fi
[[ $have_blas == 1 ]] ||
  echo "bench_compare: the BLAS backend columns need OpenBLAS (Debian: apt-get install libopenblas-dev);" \
       "libblas.so is '${blas_lib:-missing}', skipping them" >&2

export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OMP_WAIT_POLICY=PASSIVE
results=$build/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl
: > "$results"
echo "bench_compare: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uptime | sed 's/.*load/load/'), threads $threads," \
     "rounds $rounds; raw results in $results" >&2

torch_specs=()
for t in $sizes; do torch_specs+=("forward:$t"); done
torch_specs+=("decode:$decode_context")
have_torch=1
"$python" -c 'import torch' 2>/dev/null || { have_torch=0; echo "bench_compare: no torch for $python" >&2; }

for round in $(seq 1 "$rounds"); do
  echo "bench_compare: round $round/$rounds ($(uptime | sed 's/.*load average: //'))" >&2
  tag() { sed "s/^{/{\"round\": $round, /" >> "$results"; }
  "$build/fma_probe" 0.3 | tag
  for t in $sizes; do
    "$build/headlens_runner" forward "$t" | tag
    "$build/headlens_runner" pattern "$t" | tag
    "$build/headlens_runner" stats "$t" | tag
    "$build/headlens_runner" gemm "$t" | tag
    if [[ $have_blas == 1 ]]; then
      "$build/headlens_runner_blas" forward "$t" | tag
      "$build/headlens_runner_blas" gemm "$t" | tag
    fi
    "$build/eigen_baseline" "$t" | tag
    # Eigen's own GEMM threading synchronises by spinning and collapses when another process wants the cores;
    # the baseline is also timed on 1 thread and the table uses the faster of the two.
    OMP_NUM_THREADS=1 "$build/eigen_baseline" "$t" | sed 's/"impl": "eigen"/"impl": "eigen1"/' | tag
  done
  "$build/headlens_runner" decode "$decode_context" | tag
  if [[ $have_torch == 1 ]]; then
    "$python" "$src/torch_runner.py" "$threads" "${torch_specs[@]}" | tag
    # PyTorch's decode step is far slower on 2 threads than on 1 here (OpenBLAS threading a batch of 1-row
    # products), so it is also timed on 1 thread and the table compares against the faster of the two.
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
      "$python" "$src/torch_runner.py" 1 "decode:$decode_context" | sed 's/"impl": "torch"/"impl": "torch1"/' | tag
  fi
done

"$python" "$src/summarise.py" "$results" "$threads" "$(uptime | sed 's/.*load average: //')" | tee ${out:+"$out"}
