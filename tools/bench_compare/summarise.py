"""Summarises tools/bench_compare.sh's JSON lines into the Markdown table of docs/performance.md.

Every ratio is taken inside one round (same minute, same load) and the median over rounds is reported; absolute
times are medians over rounds too, shown for orientation only.
usage: summarise.py RESULTS.jsonl THREADS LOAD
"""
import json
import platform
import statistics
import sys
from collections import defaultdict
from datetime import datetime, timezone

FLOPS = lambda t: 8.0 * t * 768 * 768 + 4.0 * t * t * 768  # noqa: E731


def main():
    path, threads, load = sys.argv[1], sys.argv[2], sys.argv[3]
    rows = [json.loads(line) for line in open(path) if line.strip()]
    by = defaultdict(dict)  # (impl, mode, n) -> round -> record
    for r in rows:
        by[(r["impl"], r["mode"], r["n"])][r["round"]] = r

    def ms(impl, mode, n):
        rec = by.get((impl, mode, n), {})
        return statistics.median(v["ms"] for v in rec.values()) if rec else None

    def ratio(a, b):  # median over rounds of a.ms / b.ms within each round
        ra, rb = by.get(a, {}), by.get(b, {})
        both = [ra[k]["ms"] / rb[k]["ms"] for k in ra if k in rb]
        return statistics.median(both) if both else None

    # The Eigen baseline at its faster thread setting, per round (see bench_compare.sh).
    for key in [k for k in by if k[0] == "eigen1"]:
        two = by.get(("eigen",) + key[1:], {})
        best = {r: min([rec, two[r]], key=lambda v: v["ms"]) if r in two else rec for r, rec in by[key].items()}
        by[("eigen_best",) + key[1:]] = best

    peak = statistics.median(v["gflops"] for v in by[("probe", "fma_peak", 0)].values())
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rounds = len(by[("probe", "fma_peak", 0)])
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Measured {now} on {platform.node()} ({cpu}, {threads} threads), {rounds} round(s), "
          f"load average at the end {load}. FMA peak probe: {peak:.0f} GFLOP/s.\n")
    print("| shape | headlens ms | PyTorch ms | Eigen ms (faster of 1, N threads) | headlens / PyTorch | PyTorch / headlens | GFLOP/s | % of peak "
          "| with BLAS: ms | PyTorch / headlens+BLAS |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ns = sorted({k[2] for k in by if k[0] == "headlens" and k[1] == "forward"})
    for n in ns:
        eigen = "eigen_best" if ("eigen_best", "forward", n) in by else "eigen"
        h, t, e = ms("headlens", "forward", n), ms("torch", "forward", n), ms(eigen, "forward", n)
        r = ratio(("headlens", "forward", n), ("torch", "forward", n))
        gf = FLOPS(n) / h * 1e-6
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        hb = ms("headlens_blas", "forward", n)
        rb = ratio(("torch", "forward", n), ("headlens_blas", "forward", n))
        print(f"| forward T={n} | {h:.2f} | {fmt(t)} | {fmt(e)} | {fmt(r)} | {fmt(None if r is None else 1 / r)} "
              f"| {gf:.0f} | {100 * gf / peak:.0f}% | {fmt(hb)} | {fmt(rb)} |")
    for (impl, mode, n) in sorted(k for k in by if k[0] == "headlens" and k[1] == "decode"):
        # PyTorch's faster thread setting for this step (see bench_compare.sh), chosen per round.
        h = ms("headlens", "decode", n)
        t2, t1 = ms("torch", "decode", n), ms("torch1", "decode", n)
        best = "torch1" if t1 is not None and (t2 is None or t1 < t2) else "torch"
        t = ms(best, "decode", n)
        r = ratio(("headlens", "decode", n), (best, "decode", n))
        gf = (8.0 * 768 * 768 + 4.0 * (n + 1) * 768) / h * 1e-6
        note = f" (PyTorch on {'1 thread' if best == 'torch1' else threads + ' threads'}; other setting: " \
               f"{(t2 if best == 'torch1' else t1) or float('nan'):.2f} ms)"
        print(f"| decode 1 token, context {n}{note} | {h:.3f} | {'-' if t is None else f'{t:.3f}'} | - | "
              f"{'-' if r is None else f'{r:.2f}'} | {'-' if r is None else f'{1 / r:.2f}'} | {gf:.0f} | - | - | - |")
    print("\nSame-run ratios inside headlens (median over rounds):\n")
    print("| shape | pattern hook / no hook | statistics / no hook | vs Eigen baseline (Eigen / headlens) "
          "| QKV GEMM GFLOP/s | GEMM % of peak | BLAS GEMM GFLOP/s (% of peak) | attention core GFLOP/s (est.) "
          "| core % of peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in ns:
        p = ratio(("headlens", "pattern", n), ("headlens", "forward", n))
        s = ratio(("headlens", "stats", n), ("headlens", "forward", n))
        eigen = "eigen_best" if ("eigen_best", "forward", n) in by else "eigen"
        e = ratio((eigen, "forward", n), ("headlens", "forward", n))
        g = statistics.median(v["gflops"] for v in by[("headlens", "gemm", n)].values())
        gb = by.get(("headlens_blas", "gemm", n))
        gb = statistics.median(v["gflops"] for v in gb.values()) if gb else None
        # The core (QK^T, softmax, PV: 4 T^2 d FLOP) is the forward less the projections, estimated per round as
        # 4/3 of the QKV GEMM's time (the output projection is a third of its size).
        cores = []
        fw, gm = by[("headlens", "forward", n)], by[("headlens", "gemm", n)]
        for k in fw:
            if k in gm and fw[k]["ms"] > gm[k]["ms"] * 4 / 3:
                cores.append(4.0 * n * n * 768 / (fw[k]["ms"] - gm[k]["ms"] * 4 / 3) * 1e-6)
        c = statistics.median(cores) if cores else None
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        blas = "-" if gb is None else f"{gb:.0f} ({100 * gb / peak:.0f}%)"
        print(f"| T={n} | {fmt(p)} | {fmt(s)} | {fmt(e)} | {g:.0f} | {100 * g / peak:.0f}% | {blas} | "
              f"{'-' if c is None else f'{c:.0f}'} | {'-' if c is None else f'{100 * c / peak:.0f}%'} |")


if __name__ == "__main__":
    main()
