"""Memory of the Kronecker-built backprop operators V^(d,d',c+1) (47.1257) for a 64 x 64 map pair.

Network: 1 input map of 16 x 16 -> layer 1 with 64 maps (3x3 'same', no
pooling) -> layer 2 with 64 maps (3x3 'same' over the 16 x 16 maps of
layer 1). The operators linking the two layers are

    V^(d,d',2) = (V_1^T o (1 1^T kron w_d^(d',2)T)) (I kron 1_S),   d, d' = 1..64,

4096 sparse P'_1 x P_2 = 256 x 256 matrices, built here with
``net.backprop_operator(1, d, d')`` and all kept alive at once (as the
Kronecker engine keeps them during one backward pass). The script reports
their total number of nonzeros, the bytes of their CSR arrays
(data + indices + indptr), the peak memory traced by ``tracemalloc`` while
building them, and what the same operators would take as dense P'_1 x P_2
float64 matrices. The peak should be a small multiple of the CSR bytes,
i.e. proportional to the nonzeros, and far below the dense figure.

Run:  python benchmarks/bench_backprop_operator_memory.py [--maps 64] [--size 16]
"""
from __future__ import annotations

import argparse
import time
import tracemalloc


from partitionnet import ConvLayer, ConvNet


def csr_bytes(A) -> int:
    return A.data.nbytes + A.indices.nbytes + A.indptr.nbytes


def measure(maps: int, size: int, kernel: int, seed: int = 0) -> dict:
    net = ConvNet((size, size), 1,
                  [ConvLayer(maps, kernel=kernel, padding="same", pooling=None),
                   ConvLayer(maps, kernel=kernel, padding="same", pooling=None)],
                  [2], rng=seed)
    nxt = net.conv[1]
    nnz_V = nxt.partition.matrix().nnz                 # build (and cache) V_1 before tracing
    tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    t0 = time.perf_counter()
    ops = [net.backprop_operator(1, d, dp) for d in range(1, maps + 1) for dp in range(1, maps + 1)]
    seconds = time.perf_counter() - t0
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rows, cols = ops[0].shape
    return {
        "pairs": len(ops), "shape": (rows, cols), "nnz_V": nnz_V, "S": nxt.S,
        "nnz": sum(A.nnz for A in ops), "csr_bytes": sum(csr_bytes(A) for A in ops),
        "index_dtype": ops[0].indices.dtype, "held": current - base, "peak": peak - base,
        "dense_bytes": len(ops) * rows * cols * 8, "seconds": seconds,
    }


def report(r: dict) -> None:
    mib = 2.0 ** 20
    print(f"  operators: {r['pairs']} pairs (d, d'), each {r['shape'][0]} x {r['shape'][1]} csr_array "
          f"(S = {r['S']}, nnz(V_1) = {r['nnz_V']}, index dtype {r['index_dtype']})")
    print(f"  build time           : {r['seconds']:.2f} s ({1e3 * r['seconds'] / r['pairs']:.2f} ms per operator)")
    print(f"  total nonzeros       : {r['nnz']}  (= {r['nnz'] / r['pairs']:.0f} per operator = nnz(V_1))")
    print(f"  CSR arrays           : {r['csr_bytes'] / mib:9.1f} MiB  ({r['csr_bytes'] / r['nnz']:.2f} B per nonzero)")
    print(f"  held after building  : {r['held'] / mib:9.1f} MiB  (tracemalloc, all operators alive)")
    print(f"  peak while building  : {r['peak'] / mib:9.1f} MiB  ({r['peak'] / r['nnz']:.2f} B per nonzero, "
          f"{r['peak'] / r['csr_bytes']:.2f} x the CSR arrays)")
    print(f"  dense P'_1 x P_2     : {r['dense_bytes'] / mib:9.1f} MiB  "
          f"({r['dense_bytes'] / r['peak']:.0f} x the traced peak)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--maps", type=int, default=64, help="D_1 = D_2")
    ap.add_argument("--size", type=int, default=16, help="map side (maps are size x size)")
    ap.add_argument("--kernel", type=int, default=3)
    args = ap.parse_args(argv)

    print(f"V^(d,d',2) for a {args.maps} x {args.maps} map pair, {args.kernel}x{args.kernel} 'same' kernels, "
          f"{args.size} x {args.size} maps")
    report(measure(args.maps, args.size, args.kernel))
    # Proportionality: the same layer at half and double the map side.
    print("\nscaling with the map side (same maps and kernel): peak bytes per nonzero should stay flat")
    for side in (args.size // 2, args.size, 2 * args.size):
        r = measure(args.maps, side, args.kernel)
        print(f"  {side:3d} x {side:<3d}: nnz {r['nnz']:>10d}, CSR {r['csr_bytes'] / 2**20:8.1f} MiB, "
              f"peak {r['peak'] / 2**20:8.1f} MiB ({r['peak'] / r['nnz']:.2f} B/nnz), "
              f"dense {r['dense_bytes'] / 2**20:10.1f} MiB, {r['seconds']:.2f} s")


if __name__ == "__main__":
    main()
