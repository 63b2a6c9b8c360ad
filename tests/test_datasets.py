"""Tests for partitionnet.datasets: shapes, reproducibility, the geometry of the
squares/diamonds outlines, the offline MNIST-1D and digits loaders, and errors."""
from __future__ import annotations

import dataclasses
import doctest
import math
import os
import random
import socket
import sys

import numpy as np
import pytest
from scipy import ndimage

from partitionnet import datasets

HINT = "pip install 'partitionnet[data]'"


# --------------------------------------------------------------------------- #
# squares and diamonds
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def sd():
    return datasets.squares_diamonds(300, 101, seed=0)


def _neighbours(on: np.ndarray, offsets) -> np.ndarray:
    """For each pixel, how many of the given neighbour offsets are on (zero outside)."""
    padded = np.pad(on.astype(int), 1)
    n, m = on.shape
    return sum(padded[1 + dr:1 + dr + n, 1 + dc:1 + dc + m] for dr, dc in offsets)


FOUR = [(-1, 0), (1, 0), (0, -1), (0, 1)]
DIAG = [(-1, -1), (-1, 1), (1, -1), (1, 1)]
EIGHT = FOUR + DIAG


def _bbox(on):
    rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
    return rows[0], rows[-1], cols[0], cols[-1]


def is_square_outline(img: np.ndarray) -> bool:
    """ON pixels are exactly the border of a square block of side >= 3, and
    form one closed 4-connected curve with exactly 4 corners."""
    on = img == 1
    if not on.any():
        return False
    r0, r1, c0, c1 = _bbox(on)
    side = r1 - r0 + 1
    if side != c1 - c0 + 1 or side < 3:
        return False
    expected = np.zeros_like(on)
    expected[r0:r1 + 1, c0:c1 + 1] = True
    expected[r0 + 1:r1, c0 + 1:c1] = False
    if not np.array_equal(on, expected):
        return False
    # a closed curve: one 4-connected component, every pixel has 2 on 4-neighbours
    deg = _neighbours(on, FOUR)
    _, n_comp = ndimage.label(on)  # default structure is 4-connectivity
    if n_comp != 1 or not np.all(deg[on] == 2):
        return False
    # corners: the two neighbours are perpendicular (one vertical, one horizontal)
    vert = _neighbours(on, [(-1, 0), (1, 0)])
    corners = on & (vert == 1)
    return int(corners.sum()) == 4 and len(np.flatnonzero(on)) == 4 * (side - 1)


def is_diamond_outline(img: np.ndarray) -> bool:
    """ON pixels are exactly {|r-r0| + |c-c0| = k}, k >= 1: no two 4-adjacent,
    each with exactly 2 diagonal ON neighbours, one 8-connected closed curve."""
    on = img == 1
    if not on.any():
        return False
    r0, r1, c0, c1 = _bbox(on)
    width = r1 - r0 + 1
    if width != c1 - c0 + 1 or width < 3 or width % 2 == 0:
        return False
    k = (width - 1) // 2
    rr, cc = np.indices(on.shape)
    expected = np.abs(rr - (r0 + k)) + np.abs(cc - (c0 + k)) == k
    if not np.array_equal(on, expected):
        return False
    if np.any(_neighbours(on, FOUR)[on] != 0):
        return False
    if np.any(_neighbours(on, DIAG)[on] != 2):
        return False
    _, n_comp = ndimage.label(on, structure=np.ones((3, 3)))
    return n_comp == 1 and int(on.sum()) == 4 * k


def test_outline_checkers_on_hand_made_shapes():
    # the checkers themselves must accept the right shape and reject the other
    sq = np.zeros((7, 7))
    sq[1, 1:5] = sq[4, 1:5] = sq[1:5, 1] = sq[1:5, 4] = 1
    dm = np.zeros((7, 7))
    for r, c in [(1, 3), (2, 2), (2, 4), (3, 1), (3, 5), (4, 2), (4, 4), (5, 3)]:
        dm[r, c] = 1
    assert is_square_outline(sq) and not is_diamond_outline(sq)
    assert is_diamond_outline(dm) and not is_square_outline(dm)
    filled = np.zeros((7, 7))
    filled[1:4, 1:4] = 1
    broken = sq.copy()
    broken[1, 2] = 0
    for img in (filled, broken, np.zeros((7, 7))):
        assert not is_square_outline(img) and not is_diamond_outline(img)


def test_squares_diamonds_shapes_and_dtypes(sd):
    assert sd.x_train.shape == (300, 1, 15, 15) and sd.x_test.shape == (101, 1, 15, 15)
    assert sd.y_train.shape == (300,) and sd.y_test.shape == (101,)
    assert sd.x_train.dtype == np.float64 and sd.y_train.dtype == np.int64
    assert sd.classes == ("square", "diamond") and sd.name == "squares_diamonds"
    assert sd.in_maps == 1 and sd.input_shape == (15, 15) and sd.n_classes == 2
    small = datasets.squares_diamonds(3, 2, size=5)
    assert small.x_train.shape == (3, 1, 5, 5) and small.input_shape == (5, 5)


def test_squares_diamonds_balanced(sd):
    assert np.bincount(sd.y_train).tolist() == [150, 150]
    counts = np.bincount(sd.y_test, minlength=2)
    assert counts.sum() == 101 and abs(counts[0] - counts[1]) <= 1
    # labels are shuffled, not alternating or sorted
    assert 0 < np.abs(np.diff(sd.y_train)).sum() < 299


def test_squares_diamonds_binary_with_margin(sd):
    x = np.concatenate([sd.x_train, sd.x_test])[:, 0]
    assert set(np.unique(x).tolist()) == {0.0, 1.0}
    border = np.concatenate([x[:, 0, :], x[:, -1, :], x[:, :, 0], x[:, :, -1]], axis=1)
    assert not border.any(), "outlines keep one white pixel of margin"


def test_squares_diamonds_outlines_match_labels(sd):
    for x, y in ((sd.x_train, sd.y_train), (sd.x_test, sd.y_test)):
        for img, label in zip(x[:, 0], y):
            if label == 0:
                assert is_square_outline(img) and not is_diamond_outline(img)
            else:
                assert is_diamond_outline(img) and not is_square_outline(img)


def test_squares_diamonds_vary_in_size_and_position(sd):
    boxes = {0: set(), 1: set()}
    corners = {0: set(), 1: set()}
    for img, label in zip(sd.x_train[:, 0], sd.y_train):
        r0, r1, c0, _ = _bbox(img == 1)
        boxes[label].add(r1 - r0 + 1)
        corners[label].add((r0, c0))
    assert boxes[0] == set(range(3, 14))          # every side 3 .. size-2
    assert boxes[1] == {3, 5, 7, 9, 11, 13}       # every odd width
    assert len(corners[0]) > 20 and len(corners[1]) > 20


@pytest.mark.parametrize("size", [5, 6, 9])
def test_squares_diamonds_small_sizes_are_valid(size):
    ds = datasets.squares_diamonds(40, 10, size=size, seed=3)
    for img, label in zip(ds.x_train[:, 0], ds.y_train):
        assert (is_square_outline if label == 0 else is_diamond_outline)(img)
        assert not img[[0, -1], :].any() and not img[:, [0, -1]].any()


def test_squares_diamonds_seed():
    a = datasets.squares_diamonds(50, 20, seed=7)
    b = datasets.squares_diamonds(50, 20, seed=7)
    c = datasets.squares_diamonds(50, 20, seed=8)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x_train, c.x_train)


def test_squares_diamonds_noise_added_on_top():
    clean = datasets.squares_diamonds(200, 50, seed=2)
    noisy = datasets.squares_diamonds(200, 50, seed=2, noise=0.3)
    np.testing.assert_array_equal(clean.y_train, noisy.y_train)
    diff = noisy.x_train - clean.x_train
    assert abs(diff.std() - 0.3) < 0.01 and abs(diff.mean()) < 0.01


def test_squares_diamonds_fast():
    import time

    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        datasets.squares_diamonds(1000, 1)
        best = min(best, time.perf_counter() - t)
    assert best < 0.1, f"1000 images took {best:.3f} s"


BAD_SQUARES = [
    ({"n_train": 0}, ValueError, "n_train"),
    ({"n_train": -3}, ValueError, "n_train"),
    ({"n_train": 2.0}, TypeError, "n_train"),
    ({"n_train": True}, TypeError, "n_train"),
    ({"n_test": 0}, ValueError, "n_test"),
    ({"n_test": "5"}, TypeError, "n_test"),
    ({"size": 4}, ValueError, "size"),
    ({"size": 15.0}, TypeError, "size"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": "0"}, TypeError, "seed"),
    ({"seed": None}, TypeError, "seed"),
    ({"noise": -0.1}, ValueError, "noise"),
    ({"noise": float("nan")}, ValueError, "noise"),
    ({"noise": float("inf")}, ValueError, "noise"),
    ({"noise": "0.1"}, TypeError, "noise"),
]


@pytest.mark.parametrize("kwargs, exc, arg", BAD_SQUARES)
def test_squares_diamonds_bad_inputs(kwargs, exc, arg):
    with pytest.raises(exc, match=arg):
        datasets.squares_diamonds(**kwargs)


def test_squares_diamonds_options_are_keyword_only():
    with pytest.raises(TypeError):
        datasets.squares_diamonds(10, 10, 15)


# --------------------------------------------------------------------------- #
# MNIST-1D
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def m1d(tmp_path_factory):
    pytest.importorskip("mnist1d")
    workdir = tmp_path_factory.mktemp("mnist1d_cwd")
    np.random.seed(1234)
    random.seed(99)
    np_state, py_state = np.random.get_state(), random.getstate()

    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d() tried to open a network connection")

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        mp.setattr(socket.socket, "connect", no_network)
        ds = datasets.mnist1d()
    assert os.listdir(workdir) == [], "mnist1d() must not write files"
    after_np, after_py = np.random.get_state(), random.getstate()
    assert np.array_equal(after_np[1], np_state[1]) and after_np[2] == np_state[2]
    assert after_py == py_state, "global random state must be restored"
    return ds


def test_mnist1d_defaults(m1d):
    assert m1d.x_train.shape == (4000, 1, 40) and m1d.x_test.shape == (1000, 1, 40)
    assert m1d.x_train.dtype == np.float64 and m1d.y_train.dtype == np.int64
    assert m1d.n_classes == 10 and m1d.in_maps == 1 and m1d.input_shape == (40,)
    assert set(m1d.y_train.tolist()) == set(range(10)) == set(m1d.y_test.tolist())
    y = np.concatenate([m1d.y_train, m1d.y_test])
    assert np.bincount(y).tolist() == [500] * 10
    x = np.concatenate([m1d.x_train, m1d.x_test])
    assert abs(x.mean()) < 1e-9 and abs(x.std() - 1) < 1e-9   # the package standardises
    assert m1d.name == "mnist1d"


def test_mnist1d_matches_package_make_dataset():
    data = pytest.importorskip("mnist1d.data")
    ours = datasets.mnist1d(seed=5, n_train=80, n_test=20)
    args = data.get_dataset_args()
    args.seed, args.num_samples = 5, 100
    theirs = data.make_dataset(args)
    np.testing.assert_array_equal(ours.x_train[:, 0], theirs["x"])
    np.testing.assert_array_equal(ours.x_test[:, 0], theirs["x_test"])
    np.testing.assert_array_equal(ours.y_train, theirs["y"])
    np.testing.assert_array_equal(ours.y_test, theirs["y_test"])


def test_mnist1d_counts_and_seed():
    pytest.importorskip("mnist1d")
    a = datasets.mnist1d(seed=1, n_train=33, n_test=4)      # 37 -> 40 generated, 3 dropped
    assert a.x_train.shape == (33, 1, 40) and a.x_test.shape == (4, 1, 40)
    b = datasets.mnist1d(seed=1, n_train=33, n_test=4)
    c = datasets.mnist1d(seed=2, n_train=33, n_test=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)


@pytest.mark.parametrize(
    "kwargs, exc, arg",
    [
        ({"n_train": 0}, ValueError, "n_train"),
        ({"n_test": 1.5}, TypeError, "n_test"),
        ({"seed": 2**32}, ValueError, "seed"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.0}, TypeError, "seed"),
    ],
)
def test_mnist1d_bad_inputs(kwargs, exc, arg):
    with pytest.raises(exc, match=arg):
        datasets.mnist1d(**kwargs)


def test_mnist1d_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match=r"pip install 'partitionnet\[data\]'"):
        datasets.mnist1d(n_train=10, n_test=10)


# --------------------------------------------------------------------------- #
# digits
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def dg():
    pytest.importorskip("sklearn")
    return datasets.digits(seed=0)


def test_digits_shapes_and_scale(dg):
    assert dg.x_train.shape[1:] == (1, 8, 8) and dg.x_test.shape[1:] == (1, 8, 8)
    assert dg.x_train.shape[0] + dg.x_test.shape[0] == 1797
    assert dg.x_train.dtype == np.float64 and dg.y_train.dtype == np.int64
    x = np.concatenate([dg.x_train, dg.x_test])
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.allclose(x * 16, np.round(x * 16))
    assert dg.n_classes == 10 and dg.input_shape == (8, 8)


def test_digits_split_is_stratified_partition(dg):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    n_q = np.bincount(bunch.target)
    test_q = np.bincount(dg.y_test, minlength=10)
    np.testing.assert_array_equal(test_q, np.floor(0.25 * n_q + 0.5).astype(int))
    np.testing.assert_array_equal(np.bincount(dg.y_train, minlength=10), n_q - test_q)
    # the split is a partition of the original (image, label) pairs
    ours = np.column_stack([np.concatenate([dg.x_train, dg.x_test]).reshape(-1, 64) * 16,
                            np.concatenate([dg.y_train, dg.y_test])])
    orig = np.column_stack([bunch.data, bunch.target])
    np.testing.assert_array_equal(ours[np.lexsort(ours.T)], orig[np.lexsort(orig.T)])
    # the images keep their row-major layout (image[r, c] = data[8 r + c])
    assert np.array_equal(bunch.images[:, None], bunch.data.reshape(-1, 1, 8, 8))


def test_digits_seed_and_fraction(dg):
    same = datasets.digits(seed=0)
    other = datasets.digits(seed=1)
    np.testing.assert_array_equal(dg.x_train, same.x_train)
    np.testing.assert_array_equal(dg.y_test, same.y_test)
    assert not np.array_equal(dg.x_train, other.x_train)
    half = datasets.digits(seed=0, test_fraction=0.5)
    assert abs(half.x_test.shape[0] - 1797 / 2) <= 5


@pytest.mark.parametrize(
    "kwargs, exc, arg",
    [
        ({"test_fraction": 0.0}, ValueError, "test_fraction"),
        ({"test_fraction": 1.0}, ValueError, "test_fraction"),
        ({"test_fraction": 1.5}, ValueError, "test_fraction"),
        ({"test_fraction": float("nan")}, ValueError, "test_fraction"),
        ({"test_fraction": 0.001}, ValueError, "test_fraction"),  # empty test set
        ({"test_fraction": "0.2"}, TypeError, "test_fraction"),
        ({"seed": -2}, ValueError, "seed"),
        ({"seed": 0.5}, TypeError, "seed"),
    ],
)
def test_digits_bad_inputs(kwargs, exc, arg):
    pytest.importorskip("sklearn")
    with pytest.raises(exc, match=arg):
        datasets.digits(**kwargs)


def test_digits_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'partitionnet\[data\]'"):
        datasets.digits()


# --------------------------------------------------------------------------- #
# load, one_hot, Dataset
# --------------------------------------------------------------------------- #
def test_load_dispatches():
    assert datasets.AVAILABLE == ("squares_diamonds", "mnist1d", "digits")
    a = datasets.load("squares_diamonds", n_train=10, n_test=4, size=7, seed=3)
    b = datasets.squares_diamonds(10, 4, size=7, seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.name == "squares_diamonds"


@pytest.mark.parametrize(
    "name, exc, pattern",
    [
        ("mnist", ValueError, "squares_diamonds.*mnist1d.*digits"),
        ("Digits", ValueError, "one of"),
        (3, TypeError, "name"),
        (None, TypeError, "name"),
    ],
)
def test_load_bad_name(name, exc, pattern):
    with pytest.raises(exc, match=pattern):
        datasets.load(name)


def test_load_unknown_option():
    with pytest.raises(TypeError):
        datasets.load("squares_diamonds", sizes=7)


def test_one_hot():
    out = datasets.one_hot(np.array([2, 0, 1, 2], dtype=np.int32), 3)
    assert out.shape == (4, 3) and out.dtype == np.float64
    np.testing.assert_array_equal(out, np.eye(3)[[2, 0, 1, 2]])
    assert datasets.one_hot([], 4).shape == (0, 4)
    assert datasets.one_hot([0], np.int64(1)).tolist() == [[1.0]]


@pytest.mark.parametrize(
    "labels, n_classes, exc, arg",
    [
        ([0, 3], 3, ValueError, "labels"),
        ([-1, 0], 3, ValueError, "labels"),
        ([0.0, 1.0], 3, ValueError, "labels"),
        ([True, False], 3, ValueError, "labels"),
        ([[0, 1]], 3, ValueError, "labels"),
        (1, 3, ValueError, "labels"),
        ("01", 3, TypeError, "labels"),
        ([0, 1], 0, ValueError, "n_classes"),
        ([0, 1], 2.0, TypeError, "n_classes"),
    ],
)
def test_one_hot_bad_inputs(labels, n_classes, exc, arg):
    with pytest.raises(exc, match=arg):
        datasets.one_hot(labels, n_classes)


def test_dataset_is_frozen_and_checked(sd):
    with pytest.raises(dataclasses.FrozenInstanceError):
        sd.name = "other"
    assert "(300, 1, 15, 15)" in repr(sd) and len(repr(sd)) < 200
    x, y = np.zeros((4, 1, 5)), np.zeros(4, dtype=np.int64)
    ok = datasets.Dataset(x, y, x, y, ("a", "b"), "mine")
    assert ok.input_shape == (5,) and ok.in_maps == 1 and ok.n_classes == 2
    with pytest.raises(ValueError, match="x_train"):
        datasets.Dataset(np.zeros((4, 5)), y, x, y, ("a",), "bad")
    with pytest.raises(ValueError, match="y_test"):
        datasets.Dataset(x, y, x, y[:3], ("a",), "bad")
    with pytest.raises(TypeError, match="classes"):
        datasets.Dataset(x, y, x, y, ["a"], "bad")
    with pytest.raises(TypeError, match="x_train"):
        datasets.Dataset(x.tolist(), y, x, y, ("a",), "bad")


def test_docstring_examples():
    result = doctest.testmod(datasets, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
