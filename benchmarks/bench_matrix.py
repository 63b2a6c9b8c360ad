"""The speed matrix of issue 14: forward + backward against idiomatic PyTorch, float64 and float32, in blocks.

Cases (each one network of :mod:`partitionnet.layers`, squared loss summed over the batch):

    lenet-b64   1x28x28 -> 3x3 'same' corr 8 -> relu -> max 2 -> 3x3 'same' corr 16 -> relu -> max 2 -> dense 10
    lenet-b1    the same, batch 1
    lenet-b256  the same, batch 256
    cifar-b32   3x32x32 -> 3x3 'same' 32 -> relu -> max 2 -> 3x3 'same' 64 -> relu -> max 2 -> dense 10, batch 32
    mnist1d     1x40 -> 5 'same' 32 -> relu -> max 2 -> 5 'same' 32 -> relu -> max 2 -> dense 10, batch 100
    decoder     16x7x7 -> transposed 2x2 stride 2 to 8 -> relu -> transposed 2x2 stride 2 to 1 (28x28), batch 64
    local       1x16x16 -> locally connected 3x3 to 8 (14x14, unshared) -> relu -> dense 10, batch 64

The peer is written the way a PyTorch user would write it: ``torch.nn.functional`` convolution with
bias, ``relu``, ``max_pool``, ``linear``, ``conv_transpose`` and the squared loss, in the same dtype,
with the same weights (taken from ``Network.to_torch``; the gradients are compared once before timing).
The locally connected peer is ``unfold`` followed by one ``einsum`` (torch has no such layer).

Timing is done in blocks: ``k`` consecutive calls of one engine, then ``k`` of the other, A B A B,
and the median of the per-call times of the blocks is reported. Calls are never alternated one by one,
since torch's OpenMP workers spin-wait after each call and starve NumPy's BLAS threads.

The GEMM-bound limit of a case is its multiply-adds (forward, weight gradient, and the input
sensitivity of every layer but the first) divided by the rate of one large GEMM measured in the same
run, in the same dtype and with the same threads: the time a perfect im2col + GEMM engine would need.

Run:  python benchmarks/bench_matrix.py [--quick] [--threads N] [--markdown FILE] [--cases lenet-b64 ...]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

from partitionnet import Network, layers as L
from partitionnet import threads as pn_threads

DTYPES = {"float64": np.float64, "float32": np.float32}
#: Largest relative gradient difference from the peer before a case is timed.
TOLERANCE = {"float64": 1e-10, "float32": 1e-3}


# ---------------------------------------------------------------------- the networks
def _convnet(input_shape, in_maps, maps, kernel, batch):
    layers = []
    for m in maps:
        layers += [L.Correlation(m, kernel=kernel, padding="same", bias="tied"), L.Activation("relu"),
                   L.Pool("max", 2)]
    return layers + [L.Flatten(order="C"), L.Dense(10)], input_shape, in_maps, batch


CASES = {
    "lenet-b64": lambda: _convnet((28, 28), 1, (8, 16), 3, 64),
    "lenet-b1": lambda: _convnet((28, 28), 1, (8, 16), 3, 1),
    "lenet-b256": lambda: _convnet((28, 28), 1, (8, 16), 3, 256),
    "cifar-b32": lambda: _convnet((32, 32), 3, (32, 64), 3, 32),
    "mnist1d": lambda: _convnet((40,), 1, (32, 32), 5, 100),
    "decoder": lambda: ([L.TransposedCorrelation(8, kernel=2, stride=2, bias="tied"), L.Activation("relu"),
                         L.TransposedCorrelation(1, kernel=2, stride=2, bias="tied")], (7, 7), 16, 64),
    "local": lambda: ([L.LocallyConnected(8, kernel=3), L.Activation("relu"), L.Flatten(order="C"),
                       L.Dense(10)], (16, 16), 1, 64),
}


def build(case: str, dtype, seed: int = 0):
    layers, shape, in_maps, batch = CASES[case]()
    net = Network(shape, in_maps, layers, rng=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((batch, in_maps) + shape).astype(dtype)
    gamma = rng.standard_normal((batch,) + net.output_shape).astype(dtype)
    return net, x, gamma


def multiply_adds(net: Network, batch: int) -> int:
    """Multiply-adds of one forward + backward pass: forward, weight gradient, and dx except for the first layer."""
    total, first = 0, True
    for layer in net.layers:
        kind = type(layer).__name__
        if kind == "Correlation":
            one = layer.V.P * layer.S * layer.group_in * layer.maps
        elif kind == "TransposedCorrelation":
            one = layer.V.P * layer.V.S * (layer.in_maps // layer.groups) * layer.maps
        elif kind in ("LocallyConnected", "TiledCorrelation"):
            one = layer.V.P * layer.S * layer.in_maps * layer.maps
        elif kind == "Dense":
            one = layer.in_shape[0] * layer.n
        else:
            continue
        total += batch * one * (2 if first else 3)
        first = False
    return total


# ---------------------------------------------------------------------- the idiomatic PyTorch peer
def torch_peer(net: Network, x: np.ndarray, gamma: np.ndarray):
    """``(step, gradients)``: one forward + squared loss + backward in ``torch.nn.functional``, same weights."""
    import torch
    import torch.nn.functional as F

    tdt = torch.float32 if net.dtype == np.float32 else torch.float64
    params, ops = [], []

    def leaf(t):
        t = t.detach().to(tdt).clone().requires_grad_(True)
        params.append(t)
        return t

    for layer in net.layers:
        kind = type(layer).__name__
        if kind == "LocallyConnected":
            ops.append(_local_peer(layer, net.layer_parameters(layer.name), leaf, tdt))
            continue
        m = layer.to_torch({k: v.copy() for k, v in net.layer_parameters(layer.name).items()})
        name = type(m).__name__
        if name.startswith("Conv") and not name.startswith("ConvTranspose"):
            f = getattr(F, f"conv{len(layer.in_shape)}d")
            ops.append(lambda h, f=f, m=m, w=leaf(m.weight), b=leaf(m.bias):
                       f(h, w, b, m.stride, m.padding, m.dilation, m.groups))
        elif name.startswith("ConvTranspose"):
            f = getattr(F, f"conv_transpose{len(layer.in_shape)}d")
            ops.append(lambda h, f=f, m=m, w=leaf(m.weight), b=leaf(m.bias):
                       f(h, w, b, m.stride, m.padding, m.output_padding, m.groups, m.dilation))
        elif name == "ReLU":
            ops.append(F.relu)
        elif name.startswith("MaxPool"):
            f = getattr(F, f"max_pool{len(layer.in_shape)}d")
            ops.append(lambda h, f=f, m=m: f(h, m.kernel_size, m.stride))
        elif name == "Flatten":
            ops.append(lambda h: h.flatten(1))
        elif name == "Linear":
            ops.append(lambda h, w=leaf(m.weight), b=leaf(m.bias): F.linear(h, w, b))
        else:
            raise ValueError(f"no functional peer for {name} (layer {layer.name})")
    xt, gt = torch.from_numpy(x), torch.from_numpy(gamma)

    def step():
        for t in params:
            t.grad = None
        h = xt
        for op in ops:
            h = op(h)
        loss = ((h - gt) ** 2).sum()
        loss.backward()
        return loss

    def gradients():
        step()
        return [t.grad.double().numpy().copy() for t in params]

    return step, gradients


def _local_peer(layer, p, leaf, tdt):
    """A locally connected layer as ``unfold`` + ``einsum`` with the layer's weights in torch's orders."""
    import torch
    import torch.nn.functional as F

    out, kern = layer.V.output_shape, layer.V.kernel_shape
    to_f = lambda shape: np.ravel_multi_index(np.unravel_index(np.arange(int(np.prod(shape))), shape),  # noqa: E731
                                              shape, order="F")
    pf, sf = to_f(out), to_f(kern)
    rows = (np.arange(layer.in_maps)[:, None] * layer.S + sf[None, :]).reshape(-1)   # torch's (j, s row-major)
    W = np.asarray(p["W"])[pf][:, rows, :]                                           # (P, D_in S, D), torch order
    w = leaf(torch.from_numpy(np.ascontiguousarray(W)))
    b = leaf(torch.from_numpy(np.ascontiguousarray(np.asarray(p["Theta"])[pf].T)))  # (D, P)
    n = len(out)

    def op(h):
        cols = F.unfold(h, kern) if n == 2 else h.unfold(2, kern[0], 1).transpose(2, 3).flatten(1, 2)
        z = torch.einsum("nkp,pkd->ndp", cols, w) - b
        return z.reshape(z.shape[:2] + tuple(out))
    return op


# ---------------------------------------------------------------------- timing
def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def calibrate(fn, target: float) -> int:
    """Calls per block so that a block lasts about ``target`` seconds (at least 1)."""
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return max(1, int(round(target / max(dt, 1e-6))))


def blocks(engines: dict, repeats: int, target: float, warmup: int) -> dict:
    """Median per-call seconds of every engine, timed in blocks A B A B."""
    for fn in engines.values():
        for _ in range(warmup):
            fn()
    inner = {name: calibrate(fn, target) for name, fn in engines.items()}
    times = {name: [] for name in engines}
    for _ in range(repeats):
        for name, fn in engines.items():
            k = inner[name]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            times[name].append((time.perf_counter() - t0) / k)
    return {name: statistics.median(t) for name, t in times.items()}


def gemm_rate(dtype, n: int, repeats: int, target: float) -> float:
    """Multiply-adds per second of one ``n x n`` GEMM in ``dtype`` (median of blocks)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
    med = blocks({"gemm": lambda: a @ b}, repeats, target, 2)["gemm"]
    return n ** 3 / med


def relative_error(ours, theirs) -> float:
    return max(float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)) for a, b in zip(ours, theirs))


# ---------------------------------------------------------------------- main
def run(args) -> list[dict]:
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for dname in args.dtypes:
        dtype = DTYPES[dname]
        rate = gemm_rate(dtype, args.gemm_size, args.repeats, args.block)
        print(f"# {dname}: GEMM {args.gemm_size}^3 at {rate / 1e9:.2f} G multiply-adds/s (load {load()})",
              file=sys.stderr)
        for case in args.cases:
            net, x, gamma = build(case, dtype)
            step, peer_grads = torch_peer(net, x, gamma)
            err = check(net, x, gamma, peer_grads())
            if not err < TOLERANCE[dname]:
                raise SystemExit(f"{case} {dname}: the gradients differ from the peer's by {err:.1e} "
                                 f"(tolerance {TOLERANCE[dname]:.0e}); the timings would compare different work")
            med = blocks({"pn": lambda: net.gradients(x, gamma), "torch": step}, args.repeats, args.block,
                         args.warmup)
            macs = multiply_adds(net, x.shape[0])
            row = {"case": case, "dtype": dname, "batch": x.shape[0], "pn": med["pn"], "torch": med["torch"],
                   "ratio": med["pn"] / med["torch"], "limit": macs / rate, "macs": macs, "err": err,
                   "load": load()}
            rows.append(row)
            print(f"# {case:11s} {dname}: pn {1e3 * row['pn']:8.3f} ms, torch {1e3 * row['torch']:8.3f} ms, "
                  f"ratio {row['ratio']:.2f}, limit {1e3 * row['limit']:.3f} ms, grad diff {err:.1e}, "
                  f"load {row['load']}", file=sys.stderr)
    return rows


def check(net, x, gamma, theirs) -> float:
    """Largest relative difference between the network's gradients and the peer's (same order)."""
    g = net.gradients(x, gamma)
    ours = []
    for layer in net.layers:
        keys = [k for k in g if k.startswith(layer.name + ".")]
        if not keys:
            continue
        local = {k.split(".", 1)[1]: np.asarray(g[k], dtype=np.float64) for k in keys}
        kind = type(layer).__name__
        if kind == "LocallyConnected":
            out, kern = layer.V.output_shape, layer.V.kernel_shape
            to_f = lambda shape: np.ravel_multi_index(  # noqa: E731
                np.unravel_index(np.arange(int(np.prod(shape))), shape), shape, order="F")
            pf, sf = to_f(out), to_f(kern)
            rows = (np.arange(layer.in_maps)[:, None] * layer.S + sf[None, :]).reshape(-1)
            ours += [local["W"][pf][:, rows, :], local["Theta"][pf].T]
            continue
        # A gradient has its parameter's layout: the layer's torch twin converts both alike. The twin's bias
        # is -sum(Theta), so the bias gradient flips sign back.
        m = layer.to_torch({k: v for k, v in local.items()})
        bias_grad = -local["Theta"].sum(axis=0) if "Theta" in local else -local["theta"]
        ours += [m.weight.detach().numpy(), bias_grad]
    return relative_error(ours, theirs)


def table(rows, header: str) -> str:
    out = [header, "",
           "| case | dtype | batch | partitionnet ms | torch ms | ratio pn/torch | GEMM-bound ms | load (1/5/15 min) |",
           "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| {r['case']} | {r['dtype']} | {r['batch']} | {1e3 * r['pn']:.3f} | {1e3 * r['torch']:.3f} | "
                   f"{r['ratio']:.2f} | {1e3 * r['limit']:.3f} | {r['load']} |")
    for dname in dict.fromkeys(r["dtype"] for r in rows):
        ratios = [r["ratio"] for r in rows if r["dtype"] == dname]
        out.append("")
        out.append(f"{dname}: median ratio {statistics.median(ratios):.2f}, max {max(ratios):.2f} "
                   f"over {len(ratios)} cases")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run: few repeats, short blocks, small GEMM")
    ap.add_argument("--repeats", type=int, default=None, help="blocks per engine (median reported); default 9")
    ap.add_argument("--warmup", type=int, default=None, help="untimed calls per engine first; default 3")
    ap.add_argument("--block", type=float, default=None, help="seconds per block; default 0.25")
    ap.add_argument("--gemm-size", type=int, default=None, help="side of the reference GEMM; default 1024")
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS and torch threads (default: partitionnet.threads.default_threads())")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES), metavar="CASE")
    ap.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    ap.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    ap.add_argument("--default-allocator", action="store_true",
                    help="leave glibc malloc's thresholds alone (default: partitionnet.threads.tune_allocator(), "
                         "which applies to both engines alike)")
    args = ap.parse_args(argv)
    quick = dict(repeats=2, warmup=1, block=0.0, gemm_size=256)
    full = dict(repeats=9, warmup=3, block=0.25, gemm_size=1024)
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ("repeats", "gemm_size"):
        if getattr(args, key) < 1:
            ap.error(f"--{key.replace('_', '-')} must be at least 1, got {getattr(args, key)}")
    if args.warmup < 0 or args.block < 0:
        ap.error("--warmup and --block must not be negative")
    if args.threads is None:
        args.threads = pn_threads.default_threads()
    if args.threads < 1:
        ap.error(f"--threads must be at least 1, got {args.threads}")
    if args.markdown:
        try:
            open(args.markdown, "a").close()
        except OSError as exc:
            ap.error(f"cannot write --markdown {args.markdown}: {exc.strerror}")
    try:
        import torch
    except ImportError:
        ap.error("the peer needs PyTorch: pip install torch")
    tuned = False if args.default_allocator else pn_threads.tune_allocator()
    start_load = load()
    with pn_threads.limit(args.threads):
        blas = pn_threads.describe()                     # as limited for the run
        rows = run(args)
    header = (f"Forward + backward per batch, medians of {args.repeats} blocks of {args.block:g} s, "
              f"{args.threads} thread(s) for BLAS and torch; python {platform.python_version()}, "
              f"numpy {np.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs; "
              f"allocator {'tuned (tune_allocator)' if tuned else 'default'}; "
              f"load {start_load} at the start. BLAS: {blas}")
    text = table(rows, header)
    sys.stdout.write(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
