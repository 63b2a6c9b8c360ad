"""``partitionnet train`` and ``partitionnet evaluate``.

``add_parsers(subparsers)`` registers both sub-commands on an argparse
sub-parsers object; each sets ``func`` so the caller dispatches with
``args.func(args)``, which returns the process exit code (0 on success, 1
when a run fails, 2 for unusable options).

``partitionnet train`` with no options trains the embedded default
(squares and diamonds, Fig. 8.4) to 100% test accuracy in a few seconds.
Every data set has its own architecture and schedule (:data:`DEFAULTS`);
each option overrides one piece of it.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time

import numpy as np

__all__ = ["DEFAULTS", "add_parsers", "build_network", "main"]

# Per-layer lists (maps, kernel, padding, pooling, window) have one entry per
# correlation layer; "dense" lists the hidden feedforward sizes (the output
# layer of Q units, one per class, is always added).
DEFAULTS = {
    "squares_diamonds": dict(
        maps=[8, 8], kernel=[3, 3], padding=["same", "same"], pooling=["max", "max"], window=[3, 5], dense=[],
        activation="relu", output="sigmoid", loss="squared", bias="tied",
        epochs=10, batch_size=1, lr=0.05, rho1=0.0, rho2=0.0),
    "mnist1d": dict(
        maps=[32, 32, 32, 32], kernel=[7, 5, 5, 3], padding=["same"] * 4,
        pooling=["none", "max", "max", "max"], window=[1, 2, 2, 2], dense=[],
        activation="relu", output="softmax", loss="cross_entropy", bias="tied",
        epochs=30, batch_size=32, lr=0.1, rho1=0.0, rho2=0.0),
    "digits": dict(
        maps=[32, 64], kernel=[3, 3], padding=["same", "same"], pooling=["max", "max"], window=[2, 2],
        dense=[64], activation="relu", output="softmax", loss="cross_entropy", bias="tied",
        epochs=30, batch_size=16, lr=0.05, rho1=0.0, rho2=0.0),
}

#: Pooling kinds of the command line. ``lp`` takes its exponent from ``--p``, ``subsample`` the retained
#: position from ``--retain`` and ``correlation`` its window mask from ``--mask`` (47.1176-47.1186).
_POOLINGS = ("max", "mean", "l2", "lp", "subsample", "correlation", "none")
#: Extensions of the learning-curve file that matplotlib's Agg canvas writes.
_PLOT_FORMATS = ("png", "pdf", "svg", "svgz", "eps", "ps", "jpg", "jpeg", "tif", "tiff", "webp")
_PADDINGS = ("same", "valid", "full")


# --------------------------------------------------------------------------- #
# option parsing helpers
# --------------------------------------------------------------------------- #
def _int_token(text: str, option: str, minimum: int = 0, why: str = ""):
    """'3' -> 3, '3x5' -> (3, 5)."""
    try:
        parts = [int(t) for t in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer (or AxB for one per axis)") from None
    if any(p < minimum for p in parts):
        need = "must not be negative" if minimum == 0 else f"must be at least {minimum}"
        raise argparse.ArgumentTypeError(f"{text!r} {need}{why}")
    return parts[0] if len(parts) == 1 else tuple(parts)


def _int_list(option, minimum: int = 0, why: str = ""):
    def parse(text: str):
        if text.strip().lower() in ("", "none"):
            return []
        return [_int_token(t.strip(), option, minimum, why) for t in text.split(",")]
    return parse


def _count(option: str, minimum: int):
    """An integer option with a lower bound, named in the error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value
    return parse


def _floats(text: str):
    try:
        return [float(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _check_output(path: str, option: str, extensions=None) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    from pathlib import Path

    p = Path(path)
    if extensions is not None and p.suffix.lower().lstrip(".") not in extensions:
        raise ValueError(f"{option} {path!r}: the file name must end in one of "
                         f"{', '.join('.' + e for e in extensions)} (the format follows the extension)")
    if p.is_dir():
        raise ValueError(f"{option} {path!r} is a directory; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"{option} {path!r}: the folder {str(parent)!r} does not exist")
    import os

    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ValueError(f"{option} {path!r} is not writable")


def _padding_list(text: str):
    out = []
    for t in text.split(","):
        t = t.strip().lower()
        out.append(t if t in _PADDINGS else _int_token(t, "--padding"))
    return out


def _pooling_list(text: str):
    out = []
    for t in text.split(","):
        t = t.strip().lower()
        if t not in _POOLINGS:
            raise argparse.ArgumentTypeError(f"{t!r} is not one of {', '.join(_POOLINGS)}")
        out.append(t)
    return out


def _per_layer(values, name: str, n: int) -> list:
    """Broadcast a one-entry list to n layers; otherwise require n entries."""
    if len(values) == 1:
        return list(values) * n
    if len(values) != n:
        raise ValueError(f"--{name} needs one value or one per layer ({n} layers from --maps), got {len(values)}")
    return list(values)


def _settings(args) -> dict:
    """The data set's defaults, overridden by the options the user gave."""
    cfg = dict(DEFAULTS[args.dataset])
    for key in cfg:
        value = getattr(args, key, None)
        if value is not None:
            cfg[key] = value
    n = len(cfg["maps"])
    if n == 0:
        raise ValueError("--maps must list at least one correlation layer")
    user_maps = args.maps is not None
    for key in ("kernel", "padding", "pooling", "window"):
        values = cfg[key]
        if user_maps and getattr(args, key) is None and len(values) != n:
            # a new depth: the default's first n layers, the last one repeated if more are asked for
            values = (list(values) + [values[-1]] * n)[:n]
        cfg[key] = _per_layer(values, key.replace("_", "-"), n)
    for key, kind in (("p", "lp"), ("retain", "subsample"), ("mask", "correlation")):
        cfg[key] = getattr(args, key, None)
        if cfg[key] is not None and kind not in cfg["pooling"]:
            raise ValueError(f"--{key} is used only by --pooling {kind}, and no layer uses it "
                             f"(--pooling is {','.join(cfg['pooling'])})")
    return cfg


def _pool_options(pooling: str, window, cfg: dict, c: int) -> dict:
    """The kind options of one layer's pooling from ``--p``, ``--retain`` and ``--mask``."""
    opts = {"drop_remainder": True}
    if pooling == "lp":
        if cfg.get("p") is None:
            raise ValueError(f"--pooling lp (layer {c}) needs the exponent --p (a number >= 1)")
        opts["p"] = cfg["p"]
    elif pooling == "subsample":
        opts["retain"] = cfg.get("retain") or 0
    elif pooling == "correlation":
        mask = cfg.get("mask")
        if mask is None:
            raise ValueError(f"--pooling correlation (layer {c}) needs --mask: one coefficient per window entry")
        shape = window if isinstance(window, tuple) else None
        size = int(np.prod(shape)) if shape is not None else None
        if size is not None and len(mask) != size:
            raise ValueError(f"--mask has {len(mask)} coefficients, but the {'x'.join(map(str, shape))} windows "
                             f"of layer {c} have {size} entries")
        opts["mask"] = np.asarray(mask, dtype=np.float64).reshape(shape, order="F") if shape else \
            np.asarray(mask, dtype=np.float64)
    return opts


def build_network(cfg: dict, in_maps: int, input_shape: tuple, n_classes: int, *, rng=None):
    """The ConvNet described by a settings dict (see :data:`DEFAULTS`).

    The kind options ``p`` (for ``lp``), ``retain`` (for ``subsample``) and
    ``mask`` (for ``correlation``, a window's coefficients in column-stacked
    order) are read from ``cfg`` when a layer uses that kind.
    """
    from .network import ConvLayer, ConvNet

    layers = []
    for c, (maps, kernel, padding, pooling, window) in enumerate(zip(cfg["maps"], cfg["kernel"], cfg["padding"],
                                                                     cfg["pooling"], cfg["window"]), start=1):
        no_pool = pooling == "none" or window in (1, 0) or (isinstance(window, tuple) and all(w <= 1 for w in window))
        if not no_pool and pooling == "correlation" and not isinstance(window, tuple):
            window = (window,) * len(input_shape)
        layers.append(ConvLayer(maps, kernel=kernel, padding=padding, pooling=None if no_pool else pooling,
                                window=None if no_pool else window,
                                pool_options=None if no_pool else _pool_options(pooling, window, cfg, c)))
    return ConvNet(input_shape, in_maps, layers, list(cfg["dense"]) + [n_classes], activation=cfg["activation"],
                   output=cfg["output"], loss=cfg["loss"], bias=cfg["bias"], rng=rng)


def _load_data(args):
    from . import datasets

    kwargs = {}
    if args.data_seed is not None:
        kwargs["seed"] = args.data_seed
    for opt in ("n_train", "n_test"):
        value = getattr(args, opt, None)
        if value is not None:
            if args.dataset == "digits":
                raise ValueError(f"--{opt.replace('_', '-')} is not available for digits (its split is fixed)")
            kwargs[opt] = value
    return datasets.load(args.dataset, **kwargs)


def _error(command: str, message: str, code: int = 2) -> int:
    print(f"partitionnet {command}: error: {message}", file=sys.stderr)
    return code


def _format_confusion(cm: np.ndarray, classes) -> str:
    names = [str(c) for c in classes]
    width = max(max(len(n) for n in names), len(str(int(cm.max(initial=0)))), 4)
    head = " " * (width + 2) + " ".join(f"{n:>{width}}" for n in names)
    rows = [f"{names[i]:>{width}}  " + " ".join(f"{int(v):>{width}d}" for v in cm[i]) for i in range(len(names))]
    return "\n".join(["confusion matrix (rows: true class, columns: predicted)", head] + rows)


def _plot(history, path: str, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = np.arange(1, history.epochs + 1)
    fig = Figure(figsize=(9, 3.6))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(epochs, history.loss, marker="o", label="train")
    if history.val_loss and history.val_loss[0] is not None:
        ax1.plot(epochs, history.val_loss, marker="o", label="test")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss per sample")
    ax1.set_yscale("log")
    ax1.legend()
    if history.accuracy and history.accuracy[0] is not None:
        ax2.plot(epochs, 100 * np.asarray(history.accuracy), marker="o", label="train")
        if history.val_accuracy and history.val_accuracy[0] is not None:
            ax2.plot(epochs, 100 * np.asarray(history.val_accuracy), marker="o", label="test")
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("accuracy (%)")
        ax2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# --------------------------------------------------------------------------- #
# the commands
# --------------------------------------------------------------------------- #
def run_train(args) -> int:
    from . import io, threads
    from .training import evaluate, fit

    out = sys.stdout
    try:  # output paths are checked before any work
        if args.save:
            _check_output(args.save, "--save")
        if args.plot:
            _check_output(args.plot, "--plot", _PLOT_FORMATS)
    except ValueError as exc:
        return _error("train", str(exc))
    if args.plot:
        try:  # checked before training, so a missing extra does not cost a run
            importlib.import_module("matplotlib")
        except ImportError:
            return _error("train", "--plot needs matplotlib, which is not installed; "
                                   "install it with: pip install 'partitionnet[plot]'", 1)
    try:
        cfg = _settings(args)
        data = _load_data(args)
    except ImportError as exc:
        return _error("train", str(exc), 1)
    except (TypeError, ValueError) as exc:
        return _error("train", str(exc))
    seeds = np.random.SeedSequence(args.seed).spawn(2)
    try:
        net = build_network(cfg, data.in_maps, data.input_shape, data.n_classes,
                            rng=np.random.default_rng(seeds[0]))
    except (TypeError, ValueError) as exc:
        return _error("train", f"the architecture is not valid: {exc}")

    print(f"data: {data.name}, {data.x_train.shape[0]} train / {data.x_test.shape[0]} test samples of shape "
          f"{data.x_train.shape[1:]}, {data.n_classes} classes", file=out)
    print(repr(net), file=out)
    print(f"training: {_plural(cfg['epochs'], 'epoch')}, batch size {cfg['batch_size']}, "
          f"learning rate {cfg['lr']:g}, "
          f"rho1 {cfg['rho1']:g}, rho2 {cfg['rho2']:g}, engine {args.engine!r}, seed {args.seed}", file=out)
    out.flush()

    def report(epoch, history):
        i = epoch - 1
        width = len(str(cfg["epochs"]))
        print(f"epoch {epoch:>{width}}/{cfg['epochs']}  loss {history.loss[i]:.4f}  "
              f"train acc {100 * history.accuracy[i]:6.2f}%  test acc {100 * history.val_accuracy[i]:6.2f}%  "
              f"{history.seconds[i]:6.2f} s", file=out, flush=True)

    try:
        # The measured thread policy (partitionnet.threads: one BLAS thread unless PARTITIONNET_THREADS says
        # otherwise) and glibc's allocator kept from returning the step's temporaries to the system.
        threads.tune_allocator()
        with threads.limit():
            history = fit(net, data.x_train, data.y_train, epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                          learning_rate=cfg["lr"], rho1=cfg["rho1"], rho2=cfg["rho2"], engine=args.engine,
                          rng=np.random.default_rng(seeds[1]), validation=(data.x_test, data.y_test),
                          progress=out.isatty() if hasattr(out, "isatty") else False, callback=report)
    except FloatingPointError as exc:
        return _error("train", str(exc), 1)
    except (TypeError, ValueError) as exc:
        return _error("train", str(exc))
    acc, cm = evaluate(net, data.x_test, data.y_test)
    n_test = data.y_test.shape[0]
    print(f"done: test accuracy {100 * acc:.2f}% ({int(np.trace(cm))}/{n_test}), final train loss "
          f"{history.loss[-1]:.4f}, {sum(history.seconds):.2f} s training", file=out)
    if args.save:
        try:
            path = io.save(net, args.save, metadata=_metadata(args, cfg, data))
        except OSError as exc:
            return _error("train", f"cannot write {args.save!r}: {exc}", 1)
        print(f"saved the network to {path}", file=out)
    if args.plot:
        try:
            _plot(history, args.plot, f"partitionnet train --dataset {data.name}")
        except OSError as exc:
            return _error("train", f"cannot write {args.plot!r}: {exc}", 1)
        print(f"saved the learning curve to {args.plot}", file=out)
    return 0


def _metadata(args, cfg: dict, data) -> dict:
    """What ``evaluate`` needs to find the data again, and the settings of the run, stored with the network."""
    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, np.ndarray):
            return v.tolist()
        return v.item() if isinstance(v, np.generic) else v

    return {"dataset": data.name, "data_seed": args.data_seed, "n_train": args.n_train, "n_test": args.n_test,
            "seed": args.seed, "engine": args.engine, "settings": {k: plain(v) for k, v in cfg.items()},
            "command": "partitionnet train"}


def run_evaluate(args) -> int:
    from . import io
    from .training import evaluate

    try:
        net = io.load(args.model)
        meta = io.load_metadata(args.model)
    except ValueError as exc:
        return _error("evaluate", str(exc), 1)
    except OSError as exc:
        if exc.strerror is None:                          # the loader's own message names the path
            return _error("evaluate", str(exc), 1)
        return _error("evaluate", f"cannot read {args.model!r}: {exc.strerror}", 1)
    recorded = meta.get("dataset")
    if args.dataset is None:
        if recorded is None:
            return _error("evaluate", f"{args.model} does not record its data set (it was saved by an older "
                                      "release or from Python); pass --dataset")
        from .datasets import AVAILABLE

        if recorded not in AVAILABLE:
            return _error("evaluate", f"{args.model} records the data set {recorded!r}, which this release does "
                                      f"not have; pass --dataset (one of {', '.join(AVAILABLE)})")
        args.dataset = recorded
    if args.dataset == recorded:  # the same data as in training unless overridden
        for key in ("data_seed", "n_train", "n_test"):
            if getattr(args, key) is None and isinstance(meta.get(key), int):
                setattr(args, key, meta[key])
    try:
        data = _load_data(args)
    except ImportError as exc:
        return _error("evaluate", str(exc), 1)
    except (TypeError, ValueError) as exc:
        return _error("evaluate", str(exc))
    x, y = (data.x_test, data.y_test) if args.split == "test" else (data.x_train, data.y_train)
    expected = (net.in_maps,) + net.input_shape
    if x.shape[1:] != expected or net.dense_sizes[-1] != data.n_classes:
        return _error("evaluate", f"the network takes inputs {expected} with {net.dense_sizes[-1]} outputs, but "
                                  f"{data.name} has inputs {x.shape[1:]} and {data.n_classes} classes")
    start = time.perf_counter()
    acc, cm = evaluate(net, x, y)
    seconds = time.perf_counter() - start
    print(f"{args.model}: {data.name} {args.split} set, {y.shape[0]} samples", file=sys.stdout)
    print(f"accuracy {100 * acc:.2f}% ({int(np.trace(cm))}/{y.shape[0]}) in {seconds:.2f} s", file=sys.stdout)
    print(_format_confusion(cm, data.classes), file=sys.stdout)
    return 0


# --------------------------------------------------------------------------- #
# parsers
# --------------------------------------------------------------------------- #
def _add_data_options(p, *, recorded: bool = False) -> None:
    from .datasets import AVAILABLE

    if recorded:
        p.add_argument("--dataset", choices=AVAILABLE, default=None,
                       help="data set (default: the one recorded in the file by 'train --save', with the same "
                            "--data-seed, --n-train and --n-test)")
    else:
        p.add_argument("--dataset", choices=AVAILABLE, default="squares_diamonds",
                       help="data set (default: squares_diamonds, generated in the package)")
    p.add_argument("--data-seed", type=_count("--data-seed", 0), default=None, metavar="S",
                   help="seed of the data set and its train/test split (default: the loader's)")
    p.add_argument("--n-train", type=_count("--n-train", 1), default=None, metavar="N",
                   help="training samples (not for digits)")
    p.add_argument("--n-test", type=_count("--n-test", 1), default=None, metavar="N",
                   help="test samples (not for digits)")


def _defaults_text() -> str:
    def show(v):
        return ",".join("x".join(map(str, x)) if isinstance(x, tuple) else str(x) for x in v) if isinstance(
            v, list) else str(v)

    lines = ["defaults per data set:"]
    for name, cfg in DEFAULTS.items():
        lines.append(f"  {name}:")
        lines.append("    " + "  ".join(f"--{k.replace('_', '-')} {show(cfg[k]) or 'none'}"
                                        for k in ("maps", "kernel", "padding", "pooling", "window", "dense")))
        lines.append("    " + "  ".join(f"--{k.replace('_', '-')} {show(cfg[k])}"
                                        for k in ("activation", "output", "loss", "bias")))
        lines.append("    " + "  ".join(f"--{k.replace('_', '-')} {show(cfg[k])}"
                                        for k in ("epochs", "batch_size", "lr", "rho1", "rho2")))
    return "\n".join(lines)


def add_parsers(subparsers) -> None:
    """Register ``train`` and ``evaluate`` on an argparse sub-parsers object."""
    t = subparsers.add_parser(
        "train", help="train a network on a built-in data set",
        description="Train a convolutional network with the book's stochastic-gradient algorithm (47.1276). "
                    "Every data set has its own default architecture and schedule; the options below override "
                    "them. Per-layer options take one comma-separated value per correlation layer (or one "
                    "value for all); AxB gives one size per axis.",
        epilog=_defaults_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_data_options(t)
    run = t.add_argument_group("schedule")
    run.add_argument("--epochs", type=int, default=None, help="passes over the training set")
    run.add_argument("--batch-size", type=int, default=None, help="samples per step (1: the book's per-sample SGD)")
    run.add_argument("--lr", type=float, default=None, metavar="MU", help="step size mu")
    run.add_argument("--rho1", type=float, default=None, help="regularisation of the correlation weights (47.1228)")
    run.add_argument("--rho2", type=float, default=None, help="regularisation of the dense weights (47.1228)")
    run.add_argument("--engine", choices=("fast", "kronecker"), default="fast", help="backward engine (default: fast)")
    run.add_argument("--seed", type=_count("--seed", 0), default=0,
                     help="seed of the initial weights and the shuffling, an integer >= 0 (default: 0)")
    arch = t.add_argument_group("architecture")
    arch.add_argument("--maps", type=_int_list("--maps", 1), default=None, metavar="D1,D2,...",
                      help="maps per correlation layer; the list's length sets the number of layers, and "
                           "per-layer options not given follow the data set's default layers in order")
    arch.add_argument("--kernel", type=_int_list("--kernel", 1), default=None, metavar="K1,K2,...",
                      help="kernel size per layer")
    arch.add_argument("--padding", type=_padding_list, default=None, metavar="P1,...",
                      help="padding per layer: same, valid, full or an integer")
    arch.add_argument("--pooling", type=_pooling_list, default=None, metavar="KIND1,...",
                      help=f"pooling per layer: one of {', '.join(_POOLINGS)} (lp needs --p, correlation "
                           "needs --mask, subsample keeps --retain)")
    arch.add_argument("--window", type=_int_list("--window", 1, " (1 means no pooling)"), default=None,
                      metavar="W1,...", help="pooling window per layer, at least 1 (1: no pooling)")
    arch.add_argument("--p", type=float, default=None, metavar="P",
                      help="exponent of --pooling lp (a number >= 1; lp with p = 2 is l2)")
    arch.add_argument("--retain", type=_count("--retain", 0), default=None, metavar="J",
                      help="position kept in each window by --pooling subsample, 0-based in column-stacked "
                           "order (default 0)")
    arch.add_argument("--mask", type=_floats, default=None, metavar="M1,M2,...",
                      help="coefficients of --pooling correlation, one per window entry in column-stacked order, "
                           "the same in every window")
    arch.add_argument("--dense", type=_int_list("--dense"), default=None, metavar="N1,...",
                      help="hidden dense layer sizes ('none' for none); the output layer of Q units is added")
    arch.add_argument("--activation", choices=("tanh", "relu", "sigmoid", "identity"), default=None)
    arch.add_argument("--output", choices=("identity", "sigmoid", "tanh", "relu", "softmax"), default=None)
    arch.add_argument("--loss", choices=("squared", "cross_entropy"), default=None)
    arch.add_argument("--bias", choices=("tied", "per_input"), default=None,
                      help="one bias per output map (tied) or one per input map (the book's Theta_c)")
    out = t.add_argument_group("output")
    out.add_argument("--save", default=None, metavar="PATH", help="write the trained network (.npz)")
    out.add_argument("--plot", default=None, metavar="PNG", help="write the learning curve (needs matplotlib)")
    t.set_defaults(func=run_train, batch_size=None)

    e = subparsers.add_parser("evaluate", help="accuracy and confusion matrix of a saved network",
                              description="Load a network saved by 'partitionnet train --save' and report its "
                                          "accuracy and confusion matrix on a data set.")
    e.add_argument("model", help="network file written by --save")
    _add_data_options(e, recorded=True)
    e.add_argument("--split", choices=("test", "train"), default="test", help="which part of the data set")
    e.set_defaults(func=run_evaluate)


def main(argv=None) -> int:
    """Stand-alone entry point with only these two commands (the package CLI is :mod:`partitionnet.cli`)."""
    parser = argparse.ArgumentParser(prog="partitionnet")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
