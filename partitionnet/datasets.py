"""Small classification data sets, built locally with nothing downloaded.

Every loader returns a :class:`Dataset` whose inputs are batch-first and
channels-first, ``(N, D_0, *map)`` float64, with int64 labels, and whose
train/test split is fixed by ``seed``:

``squares_diamonds``
    Outlines of squares and diamonds on a small black/white grid: the
    template-matching task of Fig. 8.4 and exercise E8.10 of the convolution
    chapter.  Shape ``(N, 1, size, size)``.  Generated here with NumPy.
``mnist1d``
    MNIST-1D signals of length 40, generated offline by the ``mnist1d``
    package's ``make_dataset`` (its download path is never used).
    Shape ``(N, 1, 40)``.
``digits``
    scikit-learn's bundled 8x8 handwritten digits, scaled to [0, 1].
    Shape ``(N, 1, 8, 8)``.

``load(name, **kwargs)`` dispatches on the name; ``one_hot`` turns labels into
target columns.  The optional loaders need ``pip install 'partitionnet[data]'``.
"""
from __future__ import annotations

import importlib
import math
import random
from dataclasses import dataclass

import numpy as np

from . import _validate
from ._validate import as_positive_int

__all__ = [
    "AVAILABLE",
    "Dataset",
    "digits",
    "load",
    "mnist1d",
    "one_hot",
    "squares_diamonds",
]

AVAILABLE = ("squares_diamonds", "mnist1d", "digits")

_INSTALL_HINT = "pip install 'partitionnet[data]'"


# --------------------------------------------------------------------------- #
# argument checking (TypeError for the wrong kind, ValueError for the wrong value)
# --------------------------------------------------------------------------- #
def _check_seed(seed, *, maximum: int | None = None) -> int:
    seed = as_positive_int(seed, "seed", minimum=0)
    if maximum is not None and seed > maximum:
        raise ValueError(f"seed must be an integer in [0, {maximum}], got {seed}")
    return seed


def _import_optional(module: str, loader: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"datasets.{loader}() needs the optional package behind '{module}' "
            f"({exc}); install it with: {_INSTALL_HINT}"
        ) from exc


# --------------------------------------------------------------------------- #
# the container
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A train/test pair of batch-first, channels-first arrays.

    Parameters
    ----------
    x_train, x_test : numpy.ndarray
        Inputs shaped ``(N, D_0, *map)``: sample, input map (channel), then
        the map's own axes.
    y_train, y_test : numpy.ndarray
        Integer labels shaped ``(N,)``, values in ``[0, len(classes))``.
    classes : tuple of str
        Class names; label ``q`` means ``classes[q]``.
    name : str
        Which loader built it.

    Examples
    --------
    >>> from partitionnet import datasets
    >>> ds = datasets.squares_diamonds(10, 4, size=9, seed=1)
    >>> ds.x_train.shape, ds.in_maps, ds.input_shape, ds.n_classes
    ((10, 1, 9, 9), 1, (9, 9), 2)
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple
    name: str

    def __post_init__(self):
        for field in ("x_train", "y_train", "x_test", "y_test"):
            if not isinstance(getattr(self, field), np.ndarray):
                raise TypeError(f"{field} must be a numpy array, got {_validate.kind_of(getattr(self, field))}")
        if not isinstance(self.classes, tuple) or not all(isinstance(c, str) for c in self.classes):
            raise TypeError(f"classes must be a tuple of str, got {self.classes!r}")
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {_validate.kind_of(self.name)}")
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.ndim < 3:
                raise ValueError(
                    f"x_{part} must have shape (N, D_0, *map) with at least one map axis, got shape {x.shape}"
                )
            if y.ndim != 1 or y.shape[0] != x.shape[0]:
                raise ValueError(
                    f"y_{part} must have shape ({x.shape[0]},) to match x_{part}, got shape {y.shape}"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                "x_train and x_test must share (D_0, *map), got "
                f"{self.x_train.shape[1:]} and {self.x_test.shape[1:]}"
            )

    @property
    def in_maps(self) -> int:
        """D_0, the number of input maps (channels)."""
        return int(self.x_train.shape[1])

    @property
    def input_shape(self) -> tuple:
        """The shape of one input map, e.g. ``(15, 15)`` or ``(40,)``."""
        return tuple(int(s) for s in self.x_train.shape[2:])

    @property
    def n_classes(self) -> int:
        """Q, the number of classes."""
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, x_train={self.x_train.shape}, x_test={self.x_test.shape}, "
            f"classes={self.classes!r})"
        )


# --------------------------------------------------------------------------- #
# squares and diamonds (Fig. 8.4, E8.10)
# --------------------------------------------------------------------------- #
def _balanced_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """0/1 labels whose counts differ by at most one, in random order."""
    return rng.permutation(np.arange(n, dtype=np.int64) % 2)


def squares_diamonds(n_train=200, n_test=100, *, size=15, seed=0, noise=0.0):
    """Outlines of squares (class 0) and diamonds (class 1).

    The template-matching task of Fig. 8.4 / exercise E8.10: each image is a
    ``size`` x ``size`` grid, 1 (black) on a one-pixel-wide outline and 0
    (white) elsewhere.  A square is the border of an axis-aligned L x L block;
    a diamond is the set ``|r - r0| + |c - c0| = k`` (a square turned 45
    degrees, width ``2k + 1``).  Sizes and positions are random; every shape
    keeps one white pixel of margin to the image border, so each outline pixel
    is the centre of a full 3 x 3 window (what a 'valid' 3 x 3 template sees).

    Both classes draw an extent ``e`` uniformly from ``3 .. size - 2``; a
    square gets side ``e``, a diamond width ``e`` rounded down to odd.  Labels
    are balanced within each split (counts differ by at most one).

    Parameters
    ----------
    n_train, n_test : int, default 200, 100
        Number of training and test images (>= 1).
    size : int, default 15
        Image side in pixels (>= 5).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; fixes images, labels and split.
    noise : float, default 0.0
        Standard deviation of additive Gaussian noise (>= 0).  The shapes do
        not depend on ``noise``: the same seed draws the same outlines, and
        the noise is added on top.

    Returns
    -------
    Dataset
        ``x_*`` shaped ``(N, 1, size, size)`` float64, ``y_*`` int64,
        ``classes == ('square', 'diamond')``.

    Examples
    --------
    >>> from partitionnet import datasets
    >>> ds = datasets.squares_diamonds(6, 2, size=7, seed=0)
    >>> ds.x_train.shape, ds.y_train.tolist().count(0)
    ((6, 1, 7, 7), 3)
    >>> sorted(set(ds.x_train.ravel().tolist()))
    [0.0, 1.0]
    """
    n_train = as_positive_int(n_train, "n_train", minimum=1)
    n_test = as_positive_int(n_test, "n_test", minimum=1)
    size = as_positive_int(size, "size", minimum=5)
    seed = _check_seed(seed)
    noise = _validate.as_real(noise, "noise", low=0.0)

    rng = _validate.as_rng(seed, "seed")
    y = np.concatenate([_balanced_labels(n_train, rng), _balanced_labels(n_test, rng)])
    n = y.shape[0]

    # Geometry: extent e in [3, size-2]; the bounding box is e_eff x e_eff with
    # top-left corner (r0, c0) in [1, size-1-e_eff], leaving a one-pixel margin.
    extent = rng.integers(3, size - 1, size=n)                  # 3 .. size-2
    is_diamond = y == 1
    half = (extent - 1) // 2                                    # diamond radius k
    box = np.where(is_diamond, 2 * half + 1, extent)            # bounding-box side
    top = rng.integers(1, size - box)                           # 1 .. size-1-box
    left = rng.integers(1, size - box)

    r = np.arange(size)[None, :, None]
    c = np.arange(size)[None, None, :]
    top, left, box, half = (a[:, None, None] for a in (top, left, box, half))
    dr, dc = r - top, c - left                                  # offsets inside the box
    inside = (dr >= 0) & (dr < box) & (dc >= 0) & (dc < box)
    on_square = inside & ((dr == 0) | (dr == box - 1) | (dc == 0) | (dc == box - 1))
    on_diamond = np.abs(dr - half) + np.abs(dc - half) == half
    images = np.where(is_diamond[:, None, None], on_diamond, on_square).astype(np.float64)

    if noise > 0.0:
        images += noise * rng.standard_normal(images.shape)
    x = images[:, None, :, :]
    return Dataset(
        x_train=np.ascontiguousarray(x[:n_train]),
        y_train=y[:n_train].copy(),
        x_test=np.ascontiguousarray(x[n_train:]),
        y_test=y[n_train:].copy(),
        classes=("square", "diamond"),
        name="squares_diamonds",
    )


# --------------------------------------------------------------------------- #
# MNIST-1D (generated offline)
# --------------------------------------------------------------------------- #
def mnist1d(*, seed=0, n_train=4000, n_test=1000):
    """MNIST-1D, generated locally by the ``mnist1d`` package.

    Calls ``mnist1d.data.make_dataset`` with the package's default arguments
    (``get_dataset_args()``: ten 1-D digit templates, padded, scaled,
    translated, sheared, with correlated and i.i.d. noise, resampled to
    length 40) and ``args.seed = seed``.  Nothing is downloaded and no file
    is written; ``mnist1d.get_dataset`` (which downloads and pickles to the
    working directory) is never called.

    ``make_dataset`` reseeds Python's ``random`` and NumPy's legacy global
    generator; both states are saved and restored here, so calling this
    function leaves the caller's global random state untouched (it is not
    thread-safe while it runs).

    The package builds ``num_samples // 10`` signals per class, shuffles them
    and standardises the whole set to mean 0 and standard deviation 1.  Here
    ``num_samples`` is ``n_train + n_test`` rounded up to a multiple of 10;
    the first ``n_train`` shuffled signals are the training set, the next
    ``n_test`` the test set, and any surplus is dropped.  With the defaults
    (4000 / 1000) this is exactly the package's own 80 / 20 split.  Changing
    the counts changes every signal, not only how many there are.

    Parameters
    ----------
    seed : int, default 0
        Seed passed to ``make_dataset`` (in ``[0, 2**32 - 1]``).  The package's
        own default is 42.
    n_train, n_test : int, default 4000, 1000
        Number of training and test signals (>= 1).

    Returns
    -------
    Dataset
        ``x_*`` shaped ``(N, 1, 40)`` float64, ``y_*`` int64 in ``0..9``,
        ``classes == ('0', ..., '9')``.

    Raises
    ------
    ImportError
        If the ``mnist1d`` package is not installed.

    Examples
    --------
    >>> from partitionnet import datasets
    >>> ds = datasets.mnist1d(seed=0, n_train=80, n_test=20)  # doctest: +SKIP
    >>> ds.x_train.shape, ds.n_classes                        # doctest: +SKIP
    ((80, 1, 40), 10)
    """
    seed = _check_seed(seed, maximum=2**32 - 1)
    n_train = as_positive_int(n_train, "n_train", minimum=1)
    n_test = as_positive_int(n_test, "n_test", minimum=1)
    data = _import_optional("mnist1d.data", "mnist1d")

    args = data.get_dataset_args()
    n_classes = len(data.get_templates()["y"])
    total = n_train + n_test
    args.num_samples = -(-total // n_classes) * n_classes
    args.seed = seed

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = data.make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)

    x = np.concatenate([raw["x"], raw["x_test"]]).astype(np.float64, copy=False)
    y = np.concatenate([raw["y"], raw["y_test"]]).astype(np.int64, copy=False)
    x = x[:, None, :]
    return Dataset(
        x_train=np.ascontiguousarray(x[:n_train]),
        y_train=y[:n_train].copy(),
        x_test=np.ascontiguousarray(x[n_train:total]),
        y_test=y[n_train:total].copy(),
        classes=tuple(str(q) for q in range(n_classes)),
        name="mnist1d",
    )


# --------------------------------------------------------------------------- #
# scikit-learn's 8x8 digits
# --------------------------------------------------------------------------- #
def _stratified_split(y: np.ndarray, test_fraction: float, rng: np.random.Generator):
    """Indices (train, test): class q sends floor(fraction * n_q + 1/2) samples to test."""
    train, test = [], []
    for q in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == q))
        n_test_q = int(math.floor(test_fraction * members.size + 0.5))
        test.append(members[:n_test_q])
        train.append(members[n_test_q:])
    train, test = np.concatenate(train), np.concatenate(test)
    return rng.permutation(train), rng.permutation(test)


def digits(*, seed=0, test_fraction=0.25):
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, no download).

    Pixel values 0..16 are divided by 16, so inputs lie in [0, 1].  The split
    is stratified: each class puts ``floor(test_fraction * n_q + 1/2)`` of its
    ``n_q`` images in the test set (the nearest integer, halves rounded up), chosen by ``numpy.random.default_rng(seed)``;
    both sets are then shuffled.

    Parameters
    ----------
    seed : int, default 0
        Seed that fixes the split and the order of samples.
    test_fraction : float, default 0.25
        Fraction of each class held out for testing, in (0, 1).

    Returns
    -------
    Dataset
        ``x_*`` shaped ``(N, 1, 8, 8)`` float64, ``y_*`` int64 in ``0..9``,
        ``classes == ('0', ..., '9')``.

    Raises
    ------
    ImportError
        If scikit-learn is not installed.

    Examples
    --------
    >>> from partitionnet import datasets
    >>> ds = datasets.digits(seed=0)                      # doctest: +SKIP
    >>> ds.x_train.shape, ds.x_test.shape                 # doctest: +SKIP
    ((1346, 1, 8, 8), (451, 1, 8, 8))
    """
    seed = _check_seed(seed)
    test_fraction = _validate.as_real(test_fraction, "test_fraction", low=0.0, high=1.0,
                                      low_open=True, high_open=True)
    skd = _import_optional("sklearn.datasets", "digits")

    bunch = skd.load_digits()
    x = np.asarray(bunch.images, dtype=np.float64)[:, None, :, :] / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)

    rng = _validate.as_rng(seed, "seed")
    train, test = _stratified_split(y, test_fraction, rng)
    if train.size == 0 or test.size == 0:
        raise ValueError(
            f"test_fraction={test_fraction!r} leaves an empty {'training' if train.size == 0 else 'test'} "
            f"set for {y.size} samples; choose a value further from 0 and 1"
        )
    return Dataset(
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        classes=tuple(str(q) for q in range(10)),
        name="digits",
    )


# --------------------------------------------------------------------------- #
# dispatch and targets
# --------------------------------------------------------------------------- #
_LOADERS = {"squares_diamonds": squares_diamonds, "mnist1d": mnist1d, "digits": digits}


def load(name, **kwargs):
    """Build the data set called ``name``, passing ``kwargs`` to its loader.

    Parameters
    ----------
    name : {'squares_diamonds', 'mnist1d', 'digits'}
        Which loader to call (see :data:`AVAILABLE`).
    **kwargs
        Options of that loader, e.g. ``seed=1``.

    Returns
    -------
    Dataset

    Examples
    --------
    >>> from partitionnet import datasets
    >>> datasets.load("squares_diamonds", n_train=4, n_test=2, size=5).input_shape
    (5, 5)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {AVAILABLE}, got {_validate.kind_of(name)} {name!r}")
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ValueError(f"name must be one of {AVAILABLE}, got {name!r}") from None
    return loader(**kwargs)


def one_hot(labels, n_classes):
    """Targets with one 1 per row: ``out[i, labels[i]] = 1``.

    Parameters
    ----------
    labels : array_like of int, shape (N,)
        Class indices in ``[0, n_classes)``.
    n_classes : int
        Q, the number of classes (>= 1).

    Returns
    -------
    numpy.ndarray, shape (N, Q), float64
        Transpose it (``.T``) for the library's samples-as-columns layout.

    Examples
    --------
    >>> from partitionnet import datasets
    >>> datasets.one_hot([2, 0], 3)
    array([[0., 0., 1.],
           [1., 0., 0.]])
    """
    n_classes = as_positive_int(n_classes, "n_classes", minimum=1)
    if isinstance(labels, (str, bytes)):
        raise TypeError(f"labels must be an array of integers, got {_validate.kind_of(labels)}")
    arr = np.asarray(labels)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        if arr.size == 0 and arr.ndim == 1:
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"labels must be integers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"labels must have shape (N,), got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        bad = arr[(arr < 0) | (arr >= n_classes)][0]
        raise ValueError(f"labels must lie in [0, {n_classes}) (n_classes={n_classes}), found {bad}")
    out = np.zeros((arr.size, n_classes), dtype=np.float64)
    out[np.arange(arr.size), arr] = 1.0
    return out
