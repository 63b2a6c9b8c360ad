"""Training to a known accuracy: `partitionnet train` defaults against a PyTorch twin, in one run.

For each data set (default: mnist1d, squares_diamonds, digits) this trains
the network that ``partitionnet train --dataset NAME`` builds, with the same
defaults and seed, using the 'fast' engine, and beside it a PyTorch twin:

* the same architecture and the same initial weights: the module returned
  by ``partitionnet.torch_bridge.to_torch(net)`` before training, float64;
* the same schedule: plain SGD (``torch.optim.SGD``, no momentum, no weight
  decay unless rho1/rho2 are set), the same learning rate, batch size and
  number of epochs, and the *same shuffled order* (both draw their
  permutations from generators seeded alike), the loss averaged over each
  batch exactly as :func:`partitionnet.fit` averages its gradients;
* ``torch.set_num_threads(--threads)`` and, through ``threadpoolctl`` when
  installed, the same limit on NumPy's BLAS (default: the policy of
  :mod:`partitionnet.threads`, one thread);
* ``--dtype float32`` runs both in single precision: the same initial weights
  rounded to float32, the network rebuilt from its config with that dtype;
* :func:`partitionnet.threads.tune_allocator` for the whole process (both runs)
  unless ``--default-allocator``.

The two trainings are interleaved epoch by epoch (the machines are shared;
drift then hits both alike). Reported per data set: test accuracy of both,
total training wall time of both (evaluation excluded), the median epoch
time of both and the ratio partitionnet / torch (target: within 3x for
mnist1d), and how far the two runs (same dtype) drifted apart (they compute the
same algorithm; only rounding differs).

The partitionnet run is exactly ``partitionnet train --dataset NAME``: same
architecture, same seed, same shuffles, hence the same accuracy.

Run:  python benchmarks/bench_mnist1d.py [--datasets mnist1d squares_diamonds digits] [--threads 1]
                                         [--seed 0] [--no-torch] [--dtype float32] [--default-allocator]
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time

import numpy as np

from partitionnet import Network, datasets
from partitionnet import threads as pn_threads
from partitionnet.train_cli import DEFAULTS, build_network
from partitionnet.training import evaluate, fit

TARGETS = {"mnist1d": 0.96, "squares_diamonds": 1.0, "digits": 0.97}


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def blas_limit(threads: int):
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return None, "threadpoolctl not installed: NumPy's BLAS threads left at their default"
    limiter = threadpool_limits(limits=threads, user_api="blas")
    info = [f"{d.get('internal_api')} {d.get('version')}, {d.get('num_threads')} threads"
            for d in threadpool_info() if d.get("user_api") == "blas"]
    return limiter, "; ".join(info) or "no BLAS found by threadpoolctl"


def torch_twin(net, cfg):
    """The PyTorch module, its optimiser and one-epoch step function (or None without torch)."""
    try:
        import torch
        from partitionnet.torch_bridge import to_torch, torch_loss
    except ImportError:
        return None
    module = to_torch(net)
    opt = torch.optim.SGD(module.parameters(), lr=cfg["lr"], momentum=0.0)
    decay = {}
    if cfg["rho1"] or cfg["rho2"]:
        for name, p in module.named_parameters():   # W <- (1 - 2 mu rho) W: weight decay 2 rho, weights only
            if name.endswith("weight"):
                decay[p] = 2.0 * (cfg["rho1"] if name.startswith("conv") else cfg["rho2"])

    def epoch(x, y, order, batch_size):
        module.train()
        for lo in range(0, order.size, batch_size):
            idx = torch.from_numpy(order[lo:lo + batch_size])
            out = module(x[idx])
            loss = torch_loss(net, out, y[idx]) / idx.numel()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if decay:
                with torch.no_grad():
                    for p, wd in decay.items():
                        p.grad.add_(p, alpha=wd)
            opt.step()

    def accuracy(x, y):
        with torch.no_grad():
            return float((module(x).argmax(dim=1) == y).double().mean())

    return module, epoch, accuracy


def bench(name: str, seed: int, use_torch: bool, dtype=np.float64) -> dict:
    data = datasets.load(name)
    cfg = DEFAULTS[name]
    seeds = np.random.SeedSequence(seed).spawn(2)               # as `partitionnet train --seed`
    net = build_network(cfg, data.in_maps, data.input_shape, data.n_classes, rng=np.random.default_rng(seeds[0]))
    ours_rng = np.random.default_rng(seeds[1])
    twin_rng = np.random.default_rng(seeds[1])                  # the same shuffles, drawn independently
    twin = torch_twin(net, cfg) if use_torch else None
    x_train, x_test = data.x_train.astype(dtype), data.x_test.astype(dtype)
    float64_net = net
    if dtype != np.float64:                                     # the same network and initial weights, in dtype
        net = Network.from_config({**float64_net.config(), "dtype": np.dtype(dtype).name})
        net.set_parameters(float64_net.parameters())
    if twin is not None:
        import torch

        module, twin_epoch, twin_accuracy = twin
        module.to(torch.float32 if dtype == np.float32 else torch.float64)
        xt, yt = torch.from_numpy(x_train), torch.from_numpy(data.y_train)
        xs, ys = torch.from_numpy(x_test), torch.from_numpy(data.y_test)

    print(f"\n== {name}: {data.x_train.shape[0]} train / {data.x_test.shape[0]} test, input {data.x_train.shape[1:]}, "
          f"{data.n_classes} classes")
    print("\n".join("   " + line for line in repr(net).splitlines()))
    print(f"   {cfg['epochs']} epochs, batch {cfg['batch_size']}, lr {cfg['lr']}, rho1 {cfg['rho1']}, "
          f"rho2 {cfg['rho2']}, engine 'fast', seed {seed}")
    ours_t, twin_t = [], []
    for _ in range(cfg["epochs"]):
        h = fit(net, x_train, data.y_train, epochs=1, batch_size=cfg["batch_size"], learning_rate=cfg["lr"],
                rho1=cfg["rho1"], rho2=cfg["rho2"], engine="fast", rng=ours_rng, progress=False)
        ours_t.append(h.seconds[0])
        if twin is not None:
            order = twin_rng.permutation(data.x_train.shape[0])
            start = time.perf_counter()
            twin_epoch(xt, yt, order, cfg["batch_size"])
            twin_t.append(time.perf_counter() - start)
    acc, _ = evaluate(net, x_test, data.y_test)
    res = {"name": name, "acc": acc, "ours_total": sum(ours_t), "ours_epoch": statistics.median(ours_t),
           "load": load()}
    if twin is not None:
        res.update(twin_acc=twin_accuracy(xs, ys), twin_total=sum(twin_t), twin_epoch=statistics.median(twin_t))
        from partitionnet.torch_bridge import parameters_from_torch

        theirs = parameters_from_torch(float64_net, copy.deepcopy(module).to(torch.float64))   # under our names
        ours = net.parameters()
        res["drift"] = max(float(np.max(np.abs(ours[k] - theirs[k])) / max(1.0, np.max(np.abs(ours[k]))))
                           for k in ours)
        with torch.no_grad():
            res["agree"] = float(np.mean(module(xs).argmax(dim=1).numpy() == net.forward(x_test).argmax(axis=1)))
    target = TARGETS[name]
    print(f"   partitionnet: test accuracy {100 * acc:.2f}% (target >= {100 * target:.0f}%: "
          f"{'ok' if acc >= target else 'MISSED'}), training {res['ours_total']:.2f} s, "
          f"median epoch {1e3 * res['ours_epoch']:.1f} ms")
    if twin is not None:
        print(f"   torch twin  : test accuracy {100 * res['twin_acc']:.2f}%, training {res['twin_total']:.2f} s, "
              f"median epoch {1e3 * res['twin_epoch']:.1f} ms")
        print(f"   ratio partitionnet / torch: {res['ours_total'] / res['twin_total']:.2f}x total, "
              f"{res['ours_epoch'] / res['twin_epoch']:.2f}x median epoch (target within 3x)")
        print(f"   the two {np.dtype(dtype).name} runs: largest relative parameter difference {res['drift']:.1e}, "
              f"test predictions agree on {100 * res['agree']:.1f}%")
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["mnist1d", "squares_diamonds", "digits"],
                    choices=datasets.AVAILABLE)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch and BLAS threads (default: partitionnet.threads.default_threads())")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                    help="precision of both runs (the same initial weights, rounded)")
    ap.add_argument("--default-allocator", action="store_true",
                    help="leave glibc malloc's thresholds alone (default: partitionnet.threads.tune_allocator())")
    ap.add_argument("--seed", type=int, default=0, help="as `partitionnet train --seed`")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch twin")
    args = ap.parse_args(argv)

    if args.threads is None:
        args.threads = pn_threads.default_threads() or 1
    if args.threads < 1:
        ap.error(f"--threads must be at least 1, got {args.threads}")
    tuned = False if args.default_allocator else pn_threads.tune_allocator()
    limiter, blas = blas_limit(args.threads)
    versions = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    use_torch = not args.no_torch
    if use_torch:
        try:
            import torch

            torch.set_num_threads(args.threads)
            versions.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
        except ImportError:
            use_torch = False
            versions.append("torch not installed: twin skipped")
    print("; ".join(versions))
    print(f"BLAS: {blas}")
    print(f"dtype {args.dtype}; allocator {'tuned' if tuned else 'default'}; load {load()} at the start")
    results = [bench(name, args.seed, use_torch, np.dtype(args.dtype).type) for name in args.datasets]
    print("\nsummary")
    print(f"  {'data set':<18}{'partitionnet':>14}{'torch twin':>12}{'time (s)':>18}{'ratio':>8}")
    for r in results:
        twin = f"{100 * r['twin_acc']:.2f}%" if "twin_acc" in r else "-"
        times = (f"{r['ours_total']:.1f} / {r['twin_total']:.1f}" if "twin_total" in r else f"{r['ours_total']:.1f}")
        ratio = f"{r['ours_total'] / r['twin_total']:.2f}x" if "twin_total" in r else "-"
        print(f"  {r['name']:<18}{100 * r['acc']:>13.2f}%{twin:>12}{times:>18}{ratio:>8}   load {r['load']}")
    del limiter


if __name__ == "__main__":
    main()
