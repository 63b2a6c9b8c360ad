"""The exact spectral norm of a conv layer (issue 12): build its matrix, then svds, against a torch power iteration.

Case: ``torch.nn.Conv2d(64, 64, 3, padding=1)`` on 64 maps of 32 x 32 (A is 65,536 x 65,536, 36.2 M nonzeros).

Measured in one run:

* ``convolution_matrix`` (the CSR build, O(nnz)), median of ``--repeats``;
* one product ``A x`` and one ``A^T x`` with scipy, to read the svds time in products;
* ``spectral_norm`` on the built matrix (ARPACK on A^T A, machine-precision tolerance) and how many products
  of each kind it took;
* the peer: power iteration on the same layer in PyTorch (conv2d then conv_transpose2d with the same weight),
  for as many steps as it needs to agree with svds to 1e-8 relative (at most ``--max-steps``).

Run:  python benchmarks/bench_spectral_norm.py [--maps 64] [--size 32] [--repeats 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.sparse.linalg as spla


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--maps", type=int, default=64)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=3000)
    args = ap.parse_args()

    import torch

    from partitionnet import convolution_matrix, spectral_norm

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    C, n = args.maps, args.size
    conv = torch.nn.Conv2d(C, C, 3, padding=1, bias=False).double()
    shape = (C, n, n)

    builds = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        A = convolution_matrix(conv, shape, layout="torch")
        builds.append(time.perf_counter() - t)
    print(f"Conv2d({C}, {C}, 3, padding=1) on {shape}: A {A.shape[0]:,} x {A.shape[1]:,}, {A.nnz:,} nonzeros")
    print(f"convolution_matrix: median {statistics.median(builds):.2f} s ({min(builds):.2f} .. {max(builds):.2f}), "
          f"{1e9 * statistics.median(builds) / A.nnz:.0f} ns per nonzero")

    x = np.random.default_rng(0).standard_normal(A.shape[1])
    AT = A.T.tocsr()
    t = time.perf_counter()
    A @ x
    t_mv = time.perf_counter() - t
    t = time.perf_counter()
    AT @ x
    t_rmv = time.perf_counter() - t
    print(f"one A x: {1e3 * t_mv:.0f} ms; one A^T x: {1e3 * t_rmv:.0f} ms")

    counts = [0, 0]

    def mv(v):
        counts[0] += 1
        return A @ v

    def rmv(v):
        counts[1] += 1
        return AT @ v

    counted = spla.LinearOperator(A.shape, matvec=mv, rmatvec=rmv, dtype=np.float64)
    t = time.perf_counter()
    sigma = spectral_norm(counted)
    t_svds = time.perf_counter() - t
    print(f"spectral_norm (svds): sigma_1 = {sigma:.12f} in {t_svds:.1f} s, {counts[0]} products A x and "
          f"{counts[1]} products A^T x")

    w = conv.weight.detach()
    v = torch.from_numpy(x.reshape(1, *shape).copy())
    v /= v.norm()
    t = time.perf_counter()
    steps, est = 0, 0.0
    with torch.no_grad():
        while steps < args.max_steps:
            u = torch.nn.functional.conv2d(v, w, padding=1)
            est = float(u.norm())
            steps += 1
            if abs(est - sigma) <= 1e-8 * sigma:
                break
            v = torch.nn.functional.conv_transpose2d(u, w, padding=1)
            v /= v.norm()
    t_pow = time.perf_counter() - t
    reached = abs(est - sigma) <= 1e-8 * sigma
    print(f"torch power iteration: {steps} steps, {t_pow:.1f} s, estimate {est:.12f} "
          f"({'within' if reached else 'not within'} 1e-8 of svds)")
    print(f"ratio svds / power iteration time: {t_svds / t_pow:.2f}")


if __name__ == "__main__":
    main()
