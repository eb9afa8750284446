"""PyTorch side of tools/bench_compare.sh: torch.nn.MultiheadAttention (need_weights=False) and a KV-cache decode
step written with the same module's weights, on the shapes given, one JSON line each.

Fair settings (../shared/anchors/PERFORMANCE.md): the caller sets OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and
OMP_WAIT_POLICY=PASSIVE before Python starts; here torch.set_num_threads, inference_mode, warm-up, and the median
of samples of at least SAMPLE_SECONDS (0.1 s) each.

usage: torch_runner.py THREADS forward:T [forward:T ...] [decode:CONTEXT ...]
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

D, HEADS = 768, 12
HD = D // HEADS
SAMPLE_SECONDS = float(os.environ.get("SAMPLE_SECONDS", "0.1"))
SAMPLES = int(os.environ.get("SAMPLES", "7"))


def median_ms(fn):
    for _ in range(2):
        fn()
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    calls = max(1, int(SAMPLE_SECONDS / max(one, 1e-9)))
    times = []
    for _ in range(SAMPLES):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) * 1e3 / calls)
    times.sort()
    return times[len(times) // 2]


def main():
    threads = int(sys.argv[1])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(D, HEADS, batch_first=True).eval()
    with torch.inference_mode():
        for spec in sys.argv[2:]:
            mode, n = spec.split(":")
            n = int(n)
            if mode == "forward":
                x = torch.randn(1, n, D)
                ms = median_ms(lambda: mha(x, x, x, need_weights=False))
                flops = 8.0 * n * D * D + 4.0 * n * n * D
            elif mode == "decode":
                # One new token after n cached ones: project it, append its k and v to preallocated caches, attend
                # over n + 1 keys, project out. The cache is rolled back between calls, as headlens's runner does.
                k_cache = torch.randn(1, HEADS, n + 1, HD)
                v_cache = torch.randn(1, HEADS, n + 1, HD)
                x = torch.randn(1, 1, D)
                scale = 1.0 / math.sqrt(HD)

                def step():
                    q, k, v = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).split(D, dim=-1)
                    k_cache[:, :, n:n + 1] = k.view(1, 1, HEADS, HD).transpose(1, 2)
                    v_cache[:, :, n:n + 1] = v.view(1, 1, HEADS, HD).transpose(1, 2)
                    q = q.view(1, 1, HEADS, HD).transpose(1, 2)
                    p = torch.softmax(torch.matmul(q * scale, k_cache.transpose(-1, -2)), dim=-1)
                    z = torch.matmul(p, v_cache).transpose(1, 2).reshape(1, 1, D)
                    return F.linear(z, mha.out_proj.weight, mha.out_proj.bias)

                ms = median_ms(step)
                flops = 8.0 * D * D + 4.0 * (n + 1) * D
            else:
                raise SystemExit("torch_runner: unknown mode " + mode)
            print(json.dumps({"impl": "torch", "mode": mode, "n": n, "ms": round(ms, 4),
                              "gflops": round(flops / ms * 1e-6, 2), "threads": torch.get_num_threads()}),
                  flush=True)


if __name__ == "__main__":
    main()
