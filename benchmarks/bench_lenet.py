"""Forward + backward time per batch: the 'fast' and 'kronecker' engines against a PyTorch twin.

The LeNet-like network of issue 3, float64:

    1 x 28 x 28 -> 3x3 'same' correlation to 8 maps -> 2x2 max pooling
                -> 3x3 'same' correlation to 16 maps -> 2x2 max pooling -> dense to 10 (softmax, cross-entropy)

batch 64. Every timing is one full ``net.gradients(x, labels, engine=...)``
(forward pass with its trace + backward pass) or, for PyTorch, the module's
forward, the loss and ``backward()`` on the twin built by
``partitionnet.torch_bridge.to_torch``. The three are measured in the same
run, interleaved round-robin (the machines are shared and noisy), after
warm-up calls, and the median of the repeats is reported together with the
ratios fast/torch (target < 2) and kronecker/fast (target < 5).

It also reports how long building the partition of a 512 x 512 map with a
3 x 3 'same' window takes (index array and sparse V), with smaller sizes to
show that the cost grows with the number of nonzeros.

Run:  python benchmarks/bench_lenet.py [--repeats 15] [--threads 2] [--batch 64]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

from partitionnet import ConvLayer, ConvNet, Partition


def lenet(activation: str, rng) -> ConvNet:
    return ConvNet((28, 28), 1,
                   [ConvLayer(8, kernel=3, padding="same", window=2),
                    ConvLayer(16, kernel=3, padding="same", window=2)],
                   [10], activation=activation, output="softmax", loss="cross_entropy", rng=rng)


def blas_report(threads: int):
    """Limit the BLAS numpy uses to ``threads`` (as torch) and describe it; None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return None, "threadpoolctl not installed: BLAS threads left at their default"
    limiter = threadpool_limits(limits=threads, user_api="blas")
    info = [f"{d.get('internal_api')} {d.get('version')} ({d.get('threading_layer', '?')}), "
            f"{d.get('num_threads')} threads, {d.get('architecture', '?')}" for d in threadpool_info()
            if d.get("user_api") == "blas"]
    return limiter, "; ".join(info) or "no BLAS found by threadpoolctl"


def median_ms(samples):
    return 1e3 * statistics.median(samples)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=15, help="timed repeats per engine (median reported)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed calls per engine first")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads and the BLAS thread limit")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--activation", default="relu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    net = lenet(args.activation, rng)
    x = rng.standard_normal((args.batch, 1, 28, 28))
    labels = rng.integers(0, 10, args.batch)
    _limiter, blas = blas_report(args.threads)

    print("LeNet-like network, float64, forward + backward per batch")
    print(f"  input  x: {x.shape} (N, D_0, 28, 28), labels: {labels.shape}")
    for st in net.conv:
        print(f"  conv{st.index}: {st.in_maps} -> {st.maps} maps, 3x3 'same' over {st.partition.input_shape}, "
              f"P={st.P}, S={st.S}; {st.pooling.kind} pool {st.pooling.window} -> {st.pooling.output_shape}")
    print(f"  dense : {' -> '.join(map(str, net.dense_sizes))} (softmax, cross-entropy), "
          f"activation {args.activation}")
    print(f"  python {platform.python_version()}, numpy {np.__version__}; BLAS: {blas}")

    engines = {
        "fast": lambda: net.gradients(x, labels, engine="fast"),
        "kronecker": lambda: net.gradients(x, labels, engine="kronecker"),
    }
    try:
        import torch

        from partitionnet import torch_bridge

        torch.set_num_threads(args.threads)
        module = torch_bridge.to_torch(net)
        xt, lt = torch.from_numpy(x), torch.from_numpy(labels)

        def torch_step():
            module.zero_grad(set_to_none=True)
            loss = torch_bridge.torch_loss(net, module(xt), lt)
            loss.backward()
            return loss

        engines["torch"] = torch_step
        print(f"  torch {torch.__version__}, {torch.get_num_threads()} threads")
        # Same numbers before timing anything.
        torch_step()
        g_t = torch_bridge.gradients_from_torch(net, module)
        g_f = net.gradients(x, labels, engine="fast")
        err = max(np.abs(g_t[k] - g_f[k]).max() / np.abs(g_f[k]).max() for k in g_f)
        print(f"  check: max relative gradient difference fast vs torch = {err:.1e}")
    except ImportError:
        print("  torch not installed: PyTorch twin skipped")

    for fn in engines.values():
        for _ in range(args.warmup):
            fn()
    times = {name: [] for name in engines}
    for _ in range(args.repeats):                       # round-robin: drift hits all engines alike
        for name, fn in engines.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)

    print(f"\nmedian of {args.repeats} repeats (min .. max), ms per batch of {args.batch}:")
    med = {name: median_ms(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"  {name:9s} {med[name]:9.2f}   ({1e3 * min(t):.2f} .. {1e3 * max(t):.2f})")
    if "torch" in med:
        print(f"  ratio fast / torch      = {med['fast'] / med['torch']:.2f}   (target < 2)")
    print(f"  ratio kronecker / fast  = {med['kronecker'] / med['fast']:.2f}   (target < 5)")

    print("\npartition build, 3x3 'same' window (median of 5):")
    for n in (128, 256, 512):
        t_idx, t_mat = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            V = Partition.sliding_window((n, n), 3, padding="same")
            t1 = time.perf_counter()
            A = V.matrix()
            t2 = time.perf_counter()
            t_idx.append(t1 - t0)
            t_mat.append(t2 - t1)
        print(f"  {n:3d} x {n:<3d}: P={V.P}, S={V.S}, nnz(V)={A.nnz}; indices {median_ms(t_idx):7.1f} ms, "
              f"csr V {median_ms(t_mat):7.1f} ms; {1e9 * statistics.median(t_idx) / A.nnz:.1f} + "
              f"{1e9 * statistics.median(t_mat) / A.nnz:.1f} ns per nonzero")


if __name__ == "__main__":
    main()
