"""`partitionnet train` / `partitionnet evaluate` end to end on tiny settings."""
from __future__ import annotations

import argparse
import sys

import numpy as np
import pytest

from partitionnet import datasets, train_cli
from partitionnet import io as nio

try:  # the package's command line; fall back to train_cli's own parser while it is absent
    from partitionnet.cli import main as cli_main
except ImportError:  # pragma: no cover
    cli_main = train_cli.main

TINY = ["--n-train", "16", "--n-test", "8"]


def run(argv, capsys):
    code = cli_main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_save_plot_then_evaluate(tmp_path, capsys):
    model, curve = tmp_path / "model.npz", tmp_path / "curve.png"
    code, out, err = run(["train", *TINY, "--epochs", "2", "--seed", "3", "--save", str(model),
                          "--plot", str(curve)], capsys)
    assert code == 0, err
    lines = out.splitlines()
    epoch_lines = [l for l in lines if l.startswith("epoch ")]
    assert len(epoch_lines) == 2 and epoch_lines[0].startswith("epoch 1/2")
    for part in ("loss", "train acc", "test acc", " s"):
        assert part in epoch_lines[1]
    assert any(l.startswith("done: test accuracy") for l in lines)
    assert model.exists() and curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert err == ""                                            # no progress bar when not a terminal

    code, out, err = run(["evaluate", str(model), *TINY], capsys)
    assert code == 0, err
    assert "accuracy" in out and "confusion matrix" in out and "square" in out and "diamond" in out
    net = nio.load(model)
    ds = datasets.squares_diamonds(16, 8)
    acc = np.mean(net.forward(ds.x_test).argmax(axis=1) == ds.y_test)
    assert f"accuracy {100 * acc:.2f}%" in out

    code, out, _ = run(["evaluate", str(model), *TINY, "--split", "train"], capsys)
    assert code == 0 and "train set, 16 samples" in out


def test_same_seed_same_model(tmp_path, capsys):
    paths = [tmp_path / "a.npz", tmp_path / "b.npz"]
    for p in paths:
        assert run(["train", *TINY, "--epochs", "1", "--seed", "5", "--save", str(p)], capsys)[0] == 0
    a, b = (nio.load(p) for p in paths)
    assert all(np.array_equal(a.parameters()[k], b.parameters()[k]) for k in a.parameters())


def test_architecture_overrides_and_kronecker_engine(tmp_path, capsys):
    model = tmp_path / "m.npz"
    code, out, err = run(["train", *TINY, "--epochs", "1", "--engine", "kronecker", "--maps", "2,3",
                          "--kernel", "3,2x2", "--padding", "same,valid", "--pooling", "max,none",
                          "--window", "3,1", "--dense", "4", "--activation", "tanh", "--output", "sigmoid",
                          "--loss", "squared", "--bias", "per_input", "--batch-size", "4", "--lr", "0.2",
                          "--rho1", "0.01", "--rho2", "0.01", "--save", str(model)], capsys)
    assert code == 0, err
    net = nio.load(model)
    assert [st.maps for st in net.conv] == [2, 3]
    assert net.conv[1].partition.kernel_shape == (2, 2)
    assert net.conv[1].pooling.is_identity
    assert net.dense_sizes[1:] == [4, 2]
    assert (net.activation, net.output, net.loss_name, net.bias) == ("tanh", "sigmoid", "squared", "per_input")
    assert "engine 'kronecker'" in out and "batch size 4" in out


def test_changing_the_depth_keeps_the_default_layers_in_order(tmp_path, capsys):
    model = tmp_path / "one.npz"
    assert run(["train", *TINY, "--epochs", "1", "--maps", "4", "--save", str(model)], capsys)[0] == 0
    net = nio.load(model)
    assert len(net.conv) == 1 and net.conv[0].pooling.window == (3, 3) and net.conv[0].P_out == 25
    code, _, err = run(["train", *TINY, "--epochs", "1", "--maps", "4,4,4"], capsys)   # 15 -> 5 -> 1 -> ?
    assert code == 2 and "layer 3" in err


def test_defaults_build_for_every_data_set():
    shapes = {"squares_diamonds": ((15, 15), 2), "mnist1d": ((40,), 10), "digits": ((8, 8), 10)}
    for name, cfg in train_cli.DEFAULTS.items():
        shape, q = shapes[name]
        net = train_cli.build_network(cfg, 1, shape, q, rng=0)
        assert net.forward(np.zeros((2, 1) + shape)).shape == (2, q)


@pytest.mark.parametrize("dataset, extra", [("mnist1d", ["--n-train", "30", "--n-test", "10"]),
                                            ("digits", [])])
def test_other_data_sets_run(dataset, extra, capsys):
    pytest.importorskip("mnist1d" if dataset == "mnist1d" else "sklearn")
    code, out, err = run(["train", "--dataset", dataset, *extra, "--epochs", "1", "--maps", "2",
                          "--dense", "none"], capsys)
    assert code == 0, err
    assert "done: test accuracy" in out and dataset in out


@pytest.mark.parametrize("argv, code, match", [
    (["train", *TINY, "--epochs", "0"], 2, "epochs must be an integer >= 1"),
    (["train", *TINY, "--lr", "-1"], 2, "learning_rate must be a finite number > 0"),
    (["train", *TINY, "--maps", "2,2", "--kernel", "3,3,3"], 2, "--kernel needs one value or one per layer"),
    (["train", *TINY, "--kernel", "40", "--padding", "valid"], 2, "the architecture is not valid"),
    (["train", "--dataset", "digits", "--n-train", "5"], 2, "not available for digits"),
    (["train", *TINY, "--lr", "1e9", "--epochs", "3", "--activation", "identity", "--output", "identity"], 1,
     "diverged"),
])
def test_bad_options_give_a_clear_error(argv, code, match, capsys):
    with np.errstate(all="ignore"):
        got, out, err = run(argv, capsys)
    assert got == code
    assert match in err


@pytest.mark.parametrize("argv", [["train", "--dataset", "cifar10"], ["train", "--engine", "gpu"],
                                  ["train", "--pooling", "median"], ["train", "--kernel", "a"],
                                  ["evaluate"]])
def test_argparse_rejects_unknown_choices(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_evaluate_errors(tmp_path, capsys):
    code, _, err = run(["evaluate", str(tmp_path / "none.npz")], capsys)
    assert code == 1 and "no network file" in err
    (tmp_path / "junk.npz").write_text("junk")
    code, _, err = run(["evaluate", str(tmp_path / "junk.npz")], capsys)
    assert code == 1 and "not a readable partitionnet network file" in err
    model = tmp_path / "m.npz"
    assert run(["train", *TINY, "--epochs", "1", "--save", str(model)], capsys)[0] == 0
    pytest.importorskip("sklearn")
    code, _, err = run(["evaluate", str(model), "--dataset", "digits"], capsys)
    assert code == 2 and "takes inputs" in err


def test_missing_matplotlib_is_reported_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run(["train", *TINY, "--epochs", "1", "--plot", str(tmp_path / "c.png")], capsys)
    assert code == 1 and "pip install 'partitionnet[plot]'" in err and "epoch" not in out


def test_add_parsers_sets_func_on_a_fresh_parser():
    parser = argparse.ArgumentParser()
    train_cli.add_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train"])
    assert args.func is train_cli.run_train and args.dataset == "squares_diamonds"
    args = parser.parse_args(["evaluate", "m.npz", "--dataset", "digits"])
    assert args.func is train_cli.run_evaluate and args.model == "m.npz"


def test_training_follows_the_thread_policy(monkeypatch, capsys):
    """partitionnet train trains inside threads.limit() (one BLAS thread unless PARTITIONNET_THREADS says otherwise)."""
    from partitionnet import threads, training

    seen = []
    fit = training.fit

    def spying_fit(*args, **kwargs):
        seen.append(threads.current())
        return fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit", spying_fit)
    monkeypatch.delenv("PARTITIONNET_THREADS", raising=False)
    code, _, _ = run(["train", "--epochs", "1"], capsys)
    assert code == 0 and seen == [1]
    monkeypatch.setenv("PARTITIONNET_THREADS", "2")
    code, _, _ = run(["train", "--epochs", "1"], capsys)
    assert code == 0 and seen[-1] == 2
    monkeypatch.setenv("PARTITIONNET_THREADS", "none")
    code, _, err = run(["train", "--epochs", "1"], capsys)
    assert code == 2 and "PARTITIONNET_THREADS" in err
