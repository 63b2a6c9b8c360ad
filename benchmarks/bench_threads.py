"""BLAS thread counts for partitionnet's forward + backward: small and large batches, quiet and under load.

For every case (networks of ``bench_matrix.py``) and every BLAS thread count (set with threadpoolctl
through :func:`partitionnet.threads.limit`), one call is ``net.gradients(x, gamma)`` in float32 and
float64. Thread counts are timed in blocks (k calls with 1 thread, k with 2, ...), medians reported.
Each condition adds a known background load started by this script:

    none      nothing added (the machine's own load is printed beside every row)
    busy-1    one process spinning in pure Python (one core taken)
    busy-N    one spinning process per core (the machine oversubscribed)
    torch     torch's OpenMP pool kept warm: a torch convolution call after every partitionnet call,
              so its workers spin-wait while NumPy's BLAS runs (the mode of issue 14)

The figures chose :data:`partitionnet.threads.DEFAULT_THREADS`.

Run:  python benchmarks/bench_threads.py [--quick] [--threads 1 2] [--markdown FILE]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_matrix import build, load  # noqa: E402

from partitionnet import threads as pn_threads  # noqa: E402

CASES = ("lenet-b1", "lenet-b64", "lenet-b256", "cifar-b32", "mnist1d")


def _spin(stop):
    while not stop.is_set():
        sum(range(10000))


def measure(fn, counts, repeats, block):
    """Median seconds per call for every BLAS thread count, in blocks."""
    inner = {}
    for n in counts:
        with pn_threads.limit(n):
            fn()
            t0 = time.perf_counter()
            fn()
            inner[n] = max(1, int(block / max(time.perf_counter() - t0, 1e-6)))
    times = {n: [] for n in counts}
    for _ in range(repeats):
        for n in counts:
            with pn_threads.limit(n):
                t0 = time.perf_counter()
                for _ in range(inner[n]):
                    fn()
                times[n].append((time.perf_counter() - t0) / inner[n])
    return {n: statistics.median(t) for n, t in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--conditions", nargs="+", default=["none", "busy-1", "busy-N", "torch"],
                    choices=["none", "busy-1", "busy-N", "torch"])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    ap.add_argument("--markdown", metavar="FILE")
    args = ap.parse_args(argv)
    if any(n < 1 for n in args.threads):
        ap.error(f"--threads must be positive, got {args.threads}")
    repeats, block = (2, 0.0) if args.quick else (7, 0.3)
    pn_threads.tune_allocator()
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(os.cpu_count() or 1)
    tx, tw = torch.randn(64, 8, 14, 14), torch.randn(16, 8, 3, 3)
    lines = [f"BLAS threads for net.gradients (median of {repeats} blocks of {block:g} s), {os.cpu_count()} CPUs, "
             f"BLAS: {pn_threads.describe()}", "",
             "| condition | case | dtype | " + " | ".join(f"{n} thread{'s' * (n > 1)} ms" for n in args.threads)
             + " | best | load (1/5/15 min) |",
             "|---|---|---|" + "---:|" * len(args.threads) + "---|---|"]
    for condition in args.conditions:
        stop, procs = mp.Event(), []
        spinners = {"busy-1": 1, "busy-N": os.cpu_count() or 1}.get(condition, 0)
        for _ in range(spinners):
            p = mp.Process(target=_spin, args=(stop,), daemon=True)
            p.start()
            procs.append(p)
        try:
            for case in args.cases:
                for dname in args.dtypes:
                    net, x, gamma = build(case, np.float32 if dname == "float32" else np.float64)
                    if condition == "torch":
                        def fn():
                            net.gradients(x, gamma)
                            F.conv2d(tx, tw, padding=1)
                    else:
                        def fn():
                            net.gradients(x, gamma)
                    med = measure(fn, args.threads, repeats, block)
                    best = min(med, key=med.get)
                    row = (f"| {condition} | {case} | {dname} | "
                           + " | ".join(f"{1e3 * med[n]:.2f}" for n in args.threads) + f" | {best} | {load()} |")
                    lines.append(row)
                    print(row, file=sys.stderr)
        finally:
            stop.set()
            for p in procs:
                p.join()
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
