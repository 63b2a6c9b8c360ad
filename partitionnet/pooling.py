"""Pooling, its gradient vectors, upsampling and the permutation T (47.1168-47.1204).

A pooling layer reduces a feature map ``y`` (size P) to ``t`` (size P') by
applying one scalar function to each region Omega_p' of ``y`` (47.1187). The
regions never overlap, so each entry of ``y`` feeds at most one entry of
``t``; that is what lets the backward pass be written with three simple
pieces:

* the gradient vector ``g_p' = d t(p') / d y(Omega_p')`` of each region
  (Table 47.14, 47.1196);
* ``upv(v) = col{v(p') g_p'}``, which spreads one number per region back
  over the region's entries (47.1200);
* the permutation ``T`` whose rows list the regions' entries one region
  after another (47.1201-47.1203), so ``T^T`` puts them back in map order
  (``permute#``, 47.1204).

The sensitivity of ``y`` for an upstream sensitivity ``v`` of ``t`` is
therefore ``permute_adjoint(upv(v, g))``.

Everything is vectorised over regions with ``ufunc.reduceat`` and works on a
vector or on a matrix whose columns are samples (or maps).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from . import _validate as val
from ._windows import window_indices
from .vec import vec

KINDS = ("mean", "max", "l2", "lp", "correlation", "subsample")


class Pooling:
    """Non-overlapping pooling of a map of size ``P`` into ``P'`` values.

    Build one with :meth:`from_regions`, :meth:`windows` or :meth:`identity`.

    Kinds (Tables 47.13-47.14):

    ``'mean'``
        ``t = mean(y(Omega))``, ``g = 1/|Omega|`` (47.1196a).
    ``'max'``
        ``t = max(y(Omega))``, ``g = e_{p_o}`` at one maximiser (47.1196b). On
        ties: for windows, the first in row-major order of the window (the rule
        PyTorch's max pooling follows); for given regions, the first in region order.
    ``'l2'``
        ``t = ||y(Omega)||_2``, ``g = y(Omega) / t`` (47.1196d).
    ``'lp'``
        ``t = ||y(Omega)||_p`` (Prob. 47.163), ``g = sign(y)|y|^(p-1) / t^(p-1)``; needs ``p >= 1``.
    ``'correlation'``
        ``t = sum m(p) y(p)`` over the region, ``g = m(Omega)`` (47.1196e).
    ``'subsample'``
        ``t = y(p_o)`` for a retained position ``p_o``, ``g = e_{p_o}`` (47.1196c).

    For ``'l2'`` and ``'lp'`` a region that is all zeros has no derivative;
    its gradient vector is defined as 0 (the subgradient of smallest norm).
    Both are computed scaled by the region's largest ``|y|``, so a large
    ``p`` or large values never overflow.

    Attributes
    ----------
    kind : str
    P : int
        Size of the map being pooled.
    P_out : int
        Number of regions, P'.
    input_shape, output_shape : tuple of int
    order : ndarray of int64
        The regions' entries, one region after another: the nonzero columns
        of the first ``sum |Omega|`` rows of T.
    sizes : ndarray of int64
        ``|Omega_p'|`` for every region.
    dropped : ndarray of int64
        Entries of the map in no region (only with ``drop_remainder=True``).

    Examples
    --------
    The regions of Fig. 47.95 / (47.1201), typed as printed:

    >>> pool = Pooling.from_regions([[1, 2, 4, 8], [3, 5, 7, 9, 11], [6, 10, 12]], 12, one_based=True)
    >>> (pool.permute(np.arange(1, 13.0))).astype(int).tolist()
    [1, 2, 4, 8, 3, 5, 7, 9, 11, 6, 10, 12]
    """

    def __init__(self, order, sizes, size, *, kind="max", input_shape=None, output_shape=None,
                 window=None, mask=None, p=None, retain=None):
        self.kind = kind
        self.P = int(size)
        self.order = np.asarray(order, dtype=np.int64)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.P_out = int(self.sizes.size)
        self._starts = np.concatenate(([0], np.cumsum(self.sizes)[:-1])).astype(np.int64)
        covered = np.zeros(self.P, dtype=bool)
        covered[self.order] = True
        self.dropped = np.flatnonzero(~covered)
        self._perm = np.concatenate((self.order, self.dropped))
        self.input_shape = tuple(input_shape) if input_shape is not None else (self.P,)
        self.output_shape = tuple(output_shape) if output_shape is not None else (self.P_out,)
        self.window = None if window is None else tuple(window)
        self.mask = mask
        self.p = p
        self.retain = retain
        self._equal = bool(np.all(self.sizes == self.sizes[0]))
        for arr in (self.order, self.sizes, self.dropped):
            arr.setflags(write=False)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_regions(cls, regions, size, *, kind: str = "max", one_based: bool = False,
                     drop_remainder: bool = False, mask=None, p=None, retain=None, rng=None) -> "Pooling":
        """Pooling over explicit regions Omega_p' of a map of ``size`` entries (47.1187).

        Parameters
        ----------
        regions : sequence of sequences of int
            ``regions[p']`` lists the entries of Omega_p'. Sizes may differ
            (47.1201 has 4, 5 and 3); regions must not overlap.
        size : int
            P, the size of the map.
        kind : str
            One of ``'mean', 'max', 'l2', 'lp', 'correlation', 'subsample'``.
        one_based : bool
            Read region entries (and an integer ``retain``) as 1-based.
        drop_remainder : bool
            Allow entries that belong to no region; they get zero sensitivity.
        mask : array of length ``size``
            Coefficients ``m(p)`` for ``kind='correlation'``.
        p : float >= 1
            Exponent for ``kind='lp'``.
        retain : int, array of length P', or ``'random'``
            Retained position inside each region for ``kind='subsample'``
            (default: the first).
        rng : int or numpy Generator
            Seed for ``retain='random'``.
        """
        size = val.as_positive_int(size, "size")
        one_based = val.as_bool(one_based, "one_based")
        drop_remainder = val.as_bool(drop_remainder, "drop_remainder")
        if isinstance(regions, (str, bytes)) or not isinstance(regions, (Sequence, np.ndarray)):
            raise TypeError(f"regions must be a sequence of index lists, got {type(regions).__name__}")
        if len(regions) == 0:
            raise ValueError("regions must contain at least one region, got none")
        arrays = []
        for i, region in enumerate(regions):
            if isinstance(region, (str, bytes)) or not isinstance(region, (Sequence, np.ndarray)):
                raise TypeError(f"regions[{i}] must be a sequence of integers, got {type(region).__name__}")
            arr = np.asarray(region)
            if arr.ndim != 1 or arr.size == 0:
                raise ValueError(f"regions[{i}] must be a non-empty list of indices, got {region!r}")
            if not np.issubdtype(arr.dtype, np.integer):
                raise TypeError(f"regions[{i}] must hold integers, got dtype {arr.dtype}")
            lo, hi = (1, size) if one_based else (0, size - 1)
            if arr.min() < lo or arr.max() > hi:
                bad = arr[(arr < lo) | (arr > hi)][0]
                raise ValueError(f"regions[{i}] holds {int(bad)}, outside [{lo}, {hi}] for size={size}")
            uniq, counts = np.unique(arr, return_counts=True)
            if (counts > 1).any():
                raise ValueError(f"regions[{i}] lists entry {int(uniq[counts > 1][0])} more than once; "
                                 "a pooling region is a set of distinct entries")
            arrays.append(arr.astype(np.int64) - (1 if one_based else 0))
        order = np.concatenate(arrays)
        sizes = np.array([a.size for a in arrays], dtype=np.int64)
        _check_partition_of_map(order, size, drop_remainder, one_based)
        params = _kind_parameters(kind, mask, p, retain, rng, sizes, order, size, one_based, window=None)
        return cls(order, sizes, size, kind=kind, **params)

    @classmethod
    def windows(cls, input_shape, window, *, kind: str = "max", drop_remainder: bool = False,
                partial: bool = False, mask=None, p=None, retain=None, rng=None) -> "Pooling":
        """Non-overlapping windows tiling a 1-D, 2-D or 3-D map.

        Regions and the entries inside each window are both in column-stacking
        order. A map the windows do not tile raises ``ValueError`` unless
        ``drop_remainder=True``, which leaves the last rows/columns out (they
        then receive zero sensitivity), or ``partial=True``, which keeps them
        as smaller windows at the far end of each axis (PyTorch's
        ``ceil_mode``): subsampling a 7 x 9 map by 3 then retains rows and
        columns 1, 4 and 7, the 3 x 3 result of (47.1177). ``mask`` for
        ``'correlation'`` may also be an array of the window's shape, used in
        every window (not with ``partial=True``, whose windows differ in size).

        >>> pool = Pooling.windows((4, 4), 2, kind="max")
        >>> pool.P_out, pool.output_shape
        (4, (2, 2))
        >>> Pooling.windows((7, 9), 3, kind="subsample", retain=0, partial=True).output_shape
        (3, 3)
        """
        input_shape = val.as_shape(input_shape, "input_shape")
        ndim = len(input_shape)
        window = val.as_int_tuple(window, "window", ndim)
        drop_remainder = val.as_bool(drop_remainder, "drop_remainder")
        partial = val.as_bool(partial, "partial")
        if partial and drop_remainder:
            raise ValueError("drop_remainder=True and partial=True exclude each other: the remainder is either "
                             "left out or kept as smaller windows")
        out_shape = []
        for a, (n, w) in enumerate(zip(input_shape, window)):
            if w > n:
                raise ValueError(f"window {window} is larger than input_shape {input_shape} on axis {a}")
            if n % w and not (drop_remainder or partial):
                raise ValueError(
                    f"window {window} does not tile input_shape {input_shape} ({n} % {w} = {n % w} on axis {a}); "
                    "pass drop_remainder=True to leave the remainder out, or partial=True to keep it as "
                    "smaller windows"
                )
            out_shape.append(-(-n // w) if partial else n // w)
        idx = window_indices(input_shape, window, window, (0,) * ndim, (1,) * ndim, out_shape)
        size = int(np.prod(input_shape))
        inside = idx >= 0                        # entries of a partial window past the map's end are -1
        sizes = inside.sum(axis=1).astype(np.int64)
        order = idx[inside]                      # row by row, each window's entries in column-stacked order
        full = bool(np.all(inside))
        params = _kind_parameters(kind, mask, p, retain, rng, sizes, order, size, False,
                                  window=window if full else None)
        return cls(order, sizes, size, kind=kind, input_shape=input_shape, output_shape=tuple(out_shape),
                   window=window if full else None, **params)

    @classmethod
    def identity(cls, input_shape) -> "Pooling":
        """No pooling: every entry is its own region (T = I, g = 1)."""
        input_shape = val.as_shape(input_shape, "input_shape")
        size = int(np.prod(input_shape))
        return cls(np.arange(size), np.ones(size, dtype=np.int64), size, kind="mean",
                   input_shape=input_shape, output_shape=input_shape,
                   window=(1,) * len(input_shape))

    # ------------------------------------------------------------------ properties
    @property
    def regions(self) -> list[np.ndarray]:
        """The regions Omega_p' as a list of index arrays (0-based)."""
        return np.split(np.asarray(self.order), self._starts[1:])

    @property
    def is_identity(self) -> bool:
        return self.P_out == self.P and self.kind == "mean" and bool(np.all(self.order == np.arange(self.P)))

    # ------------------------------------------------------------------ forward + gradient vectors
    def pool(self, y):
        """Pool ``y`` and return ``(t, g)`` (47.1187, 47.1196).

        Parameters
        ----------
        y : array (P,) or (P, N)
            The map, or maps/samples as columns. Must be finite.

        Returns
        -------
        t : array (P',) or (P', N)
        g : array (sum |Omega|,) or (sum |Omega|, N)
            The gradient vectors ``col{g_1, ..., g_P'}`` stacked in region order.

        >>> pool = Pooling.windows((4, 4), 2, kind="mean")
        >>> t, g = pool.pool(np.arange(16.0))
        >>> t.tolist(), g[:4].tolist()
        ([2.5, 4.5, 10.5, 12.5], [0.25, 0.25, 0.25, 0.25])
        """
        y = val.as_vector_or_columns(y, "y", self.P)
        val.require_finite(y, "y")
        yo = y[self.order]
        return _POOLERS[self.kind](self, yo)

    def upv(self, v, g) -> np.ndarray:
        """``col{v(p') g_p'}``: each region's value spread by its gradient vector (47.1197-47.1200).

        The result is in region order, padded with zeros for dropped entries,
        so it has length P and ``permute_adjoint`` maps it back to the map.
        """
        v = val.as_vector_or_columns(v, "v", self.P_out)
        g = val.as_vector_or_columns(g, "g", self.order.size)
        if v.ndim != g.ndim or (v.ndim == 2 and v.shape[1] != g.shape[1]):
            raise ValueError(f"v and g must both be vectors or both have N columns, got shapes {v.shape} and {g.shape}")
        out = self._expand(v) * g
        if self.dropped.size:
            out = np.concatenate((out, np.zeros((self.dropped.size,) + out.shape[1:], dtype=out.dtype)))
        return out

    # ------------------------------------------------------------------ permutation T
    def permutation(self) -> sp.csr_array:
        """T, the square permutation that lists the regions' entries region by region (47.1201-47.1203).

        Dropped entries (``drop_remainder=True``) come last, so T stays a
        permutation and ``T T^T = I``.
        """
        return sp.csr_array((np.ones(self.P), self._perm, np.arange(self.P + 1)), shape=(self.P, self.P))

    def permute(self, y) -> np.ndarray:
        """``permute(y) = T y`` (47.1202)."""
        y = val.as_vector_or_columns(y, "y", self.P)
        return y[self._perm]

    def permute_adjoint(self, y_o) -> np.ndarray:
        """``permute#(y_o) = T^T y_o`` (47.1204): back to map order."""
        y_o = val.as_vector_or_columns(y_o, "y_o", self.P)
        out = np.empty_like(y_o)
        out[self._perm] = y_o
        return out

    def backward(self, v, g) -> np.ndarray:
        """Sensitivity of ``y`` for upstream ``v``: ``permute#(upv(v, g))`` (47.1244, 47.1260)."""
        return self.permute_adjoint(self.upv(v, g))

    # ------------------------------------------------------------------ helpers
    def _expand(self, t: np.ndarray) -> np.ndarray:
        """Repeat each region's value over its entries (region order)."""
        if self._equal:
            return np.repeat(t, int(self.sizes[0]), axis=0)
        return np.repeat(t, self.sizes, axis=0)

    def _segment(self, ufunc, a: np.ndarray) -> np.ndarray:
        """Apply a reducing ufunc over each region of ``a`` (in region order)."""
        if self._equal:
            r = int(self.sizes[0])
            return ufunc.reduce(a.reshape((self.P_out, r) + a.shape[1:]), axis=1)
        return ufunc.reduceat(a, self._starts, axis=0)

    def __repr__(self) -> str:
        if self.is_identity:
            return f"Pooling.identity({self.input_shape})"
        where = f"windows {self.window} over {self.input_shape}" if self.window else f"{self.P_out} regions of {self.P}"
        return f"Pooling(kind={self.kind!r}, {where}, P={self.P}, P'={self.P_out})"

    # ------------------------------------------------------------------ T as a matrix
    # As a matrix, a Pooling is its permutation T (47.1203): ``pool @ y == pool.permute(y)``. The pooling
    # itself (max, l2, ...) is not linear; its linear part is T followed by the region reductions.
    __array_ufunc__ = None       # ``array @ pool`` goes to __rmatmul__
    ndim = 2

    @property
    def shape(self) -> tuple[int, int]:
        """``(P, P)``, the shape of T."""
        return (self.P, self.P)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float64)

    @property
    def nnz(self) -> int:
        """T is a permutation: P ones."""
        return self.P

    def __matmul__(self, other):
        """``T @ y`` for a vector (P,), a matrix (P, N) of sample columns, or a sparse matrix.

        >>> pool = Pooling.windows((2, 4), 2)
        >>> (pool @ np.arange(8.0)).astype(int).tolist()
        [0, 1, 2, 3, 4, 5, 6, 7]
        >>> (pool.T @ (pool @ np.arange(8.0))).astype(int).tolist()
        [0, 1, 2, 3, 4, 5, 6, 7]
        """
        if sp.issparse(other):
            return self.permutation() @ other
        return self.permute(_pool_operand(other, "T @ y", self.P, 0))

    def __rmatmul__(self, other):
        """``y @ T`` for a row vector (P,) or a matrix (N, P): ``(T^T y^T)^T``."""
        if sp.issparse(other):
            return other @ self.permutation()
        return self.permute_adjoint(_pool_operand(other, "y @ T", self.P, -1).T).T

    def matvec(self, y) -> np.ndarray:
        """``T y`` (for ``scipy.sparse.linalg.aslinearoperator``)."""
        return self.permute(_pool_operand(y, "T.matvec(y)", self.P, 0))

    matmat = matvec

    def rmatvec(self, y_o) -> np.ndarray:
        """``T^T y_o``, :meth:`permute_adjoint`."""
        return self.permute_adjoint(_pool_operand(y_o, "T.rmatvec(y)", self.P, 0))

    rmatmat = rmatvec

    @property
    def T(self) -> sp.csr_array:
        """``T^T`` as a sparse array (the inverse permutation, 47.1204)."""
        return sp.csr_array(self.permutation().T)

    def __str__(self) -> str:
        """Sizes, region sizes and geometry: what ``print(pool)`` shows.

        >>> print(Pooling.windows((4, 6), 2, kind="mean"))
        Pooling 'mean': map of P=24 entries -> P'=6 regions, T is 24 x 24 (24 nonzeros)
          windows (2, 2) over (4, 6) -> (2, 3); every region has 4 entries
        """
        head = (f"Pooling {self.kind!r}: map of P={self.P} entries -> P'={self.P_out} regions, "
                f"T is {self.P} x {self.P} ({self.P} nonzeros)")
        lo, hi = int(self.sizes.min()), int(self.sizes.max())
        sizes = f"every region has {lo} entries" if lo == hi else f"regions of {lo} to {hi} entries"
        where = (f"windows {self.window} over {self.input_shape} -> {self.output_shape}" if self.window
                 else f"regions over a map of shape {self.input_shape}")
        dropped = f", {self.dropped.size} entries in no region" if self.dropped.size else ""
        return f"{head}\n  {where}; {sizes}{dropped}"

    def _repr_latex_(self):
        """T entry by entry when it has at most :data:`partitionnet.display.LATEX_MAX` rows."""
        from .display import latex_matrix

        body = latex_matrix(self.permutation())
        return None if body is None else f"$T = {body}$"

    def _repr_png_(self):
        """A spy plot of a large T with the regions' first rows marked (``None`` when small or without matplotlib)."""
        from .display import LATEX_MAX, spy_png

        if self.P <= LATEX_MAX:
            return None
        blocks = self._starts if self.P_out <= 200 else None
        return spy_png(self.permutation(), row_blocks=blocks,
                       title=f"T: {self.P} x {self.P}, {self.P_out} regions")


def _pool_operand(y, what: str, n: int, axis: int) -> np.ndarray:
    """A dense vector or matrix operand of ``@`` whose ``axis`` has ``n`` entries (clear errors otherwise)."""
    from .partition import _operand

    return _operand(y, what, n, axis)


# -------------------------------------------------------------------------- the kinds
# Each function receives the map already in region order (``yo``) and returns
# (t, g); forward value and gradient vector sit side by side.

def _pool_mean(pool: Pooling, yo):
    inv = 1.0 / pool.sizes.astype(yo.dtype)
    inv = inv.reshape((-1,) + (1,) * (yo.ndim - 1))
    t = pool._segment(np.add, yo) * inv
    g = np.broadcast_to(pool._expand(inv), yo.shape).copy()
    return t, g


def _pool_max(pool: Pooling, yo):
    if pool._equal:
        r = int(pool.sizes[0])
        blocks = yo.reshape((pool.P_out, r) + yo.shape[1:])
        order = _tie_order(pool, r)
        # The first maximiser in tie order (row-major within a window, as PyTorch): walk the r window
        # positions (never the regions or samples) and mark an entry that equals its window's maximum
        # unless an earlier one did. An argmax along the window axis would loop window by window instead.
        t = blocks.max(axis=1)
        g = np.zeros(blocks.shape, dtype=yo.dtype)
        taken = np.zeros(t.shape, dtype=bool)
        for k in (range(r) if order is None else order):
            first = (blocks[:, k] == t) & ~taken
            g[:, k] = first
            taken |= first
        return t, g.reshape(yo.shape)
    t = pool._segment(np.maximum, yo)
    # First maximiser of each region: smallest region-order position that hits the max.
    hits = yo == pool._expand(t)
    pos = np.arange(yo.shape[0]).reshape((-1,) + (1,) * (yo.ndim - 1))
    first = pool._segment(np.minimum, np.where(hits, pos, yo.shape[0]))
    g = np.zeros_like(yo)
    if yo.ndim == 1:
        g[first] = 1.0
    else:
        g[first, np.arange(yo.shape[1])[None, :]] = 1.0
    return t, g


def _tie_order(pool: Pooling, r: int):
    """For windows over a 2-D or 3-D map: region positions in row-major order of the window (PyTorch's
    tie rule for max pooling); ``None`` where region order is already that order (1-D, given regions)."""
    window = pool.window
    if window is None or len(window) < 2 or int(np.prod(window)) != r or all(w == 1 for w in window[:-1]):
        return None
    return np.ravel_multi_index(np.unravel_index(np.arange(r), window, order="C"), window, order="F")


def _pool_lp(pool: Pooling, yo, p=None):
    """``t = ||y(Omega)||_p`` and ``g = sign(y) (|y| / t)^(p-1)``, both computed in scaled form.

    With ``m = max |y(Omega)|`` and ``r = |y| / m`` (so ``0 <= r <= 1`` and
    one ``r`` is 1), ``t = m (sum r^p)^(1/p)`` and ``|y| / t = r / (sum r^p)^(1/p)``.
    The sum lies in ``[1, |Omega|]``, so no power overflows however large
    ``p`` or ``y`` are; the unscaled ``sum |y|^p`` is inf already for
    ``|y| = 10, p = 400``. An all-zero region (``m = 0``) has no derivative;
    its ``t`` and its gradient vector are 0.
    """
    p = pool.p if p is None else p
    a = np.abs(yo)
    peak = pool._segment(np.maximum, a)
    m = pool._expand(peak)
    r = np.divide(a, m, out=np.zeros_like(a), where=m > 0)
    rp = r * r if p == 2.0 else r ** p
    s = pool._segment(np.add, rp)
    root = np.sqrt(s) if p == 2.0 else s ** (1.0 / p)
    t = peak * root
    q = np.divide(r, pool._expand(root), out=np.zeros_like(r), where=m > 0)   # |y| / t, in [0, 1]
    g = np.sign(yo) * (q if p == 2.0 else q ** (p - 1.0))
    return t, g


def _pool_l2(pool: Pooling, yo):
    return _pool_lp(pool, yo, 2.0)


def _pool_correlation(pool: Pooling, yo):
    m = pool.mask[pool.order].reshape((-1,) + (1,) * (yo.ndim - 1))
    t = pool._segment(np.add, yo * m)
    return t, np.broadcast_to(m, yo.shape).astype(yo.dtype)


def _pool_subsample(pool: Pooling, yo):
    keep = pool._starts + pool.retain
    g = np.zeros_like(yo)
    g[keep] = 1.0
    return yo[keep], g


_POOLERS = {"mean": _pool_mean, "max": _pool_max, "l2": _pool_l2, "lp": _pool_lp,
            "correlation": _pool_correlation, "subsample": _pool_subsample}


# -------------------------------------------------------------------------- validation
def _check_partition_of_map(order: np.ndarray, size: int, drop_remainder: bool, one_based: bool) -> None:
    shift = 1 if one_based else 0
    uniq, counts = np.unique(order, return_counts=True)
    if (counts > 1).any():
        shared = (uniq[counts > 1] + shift).tolist()
        raise ValueError(
            f"pooling regions overlap at entries {shared[:10]}; the book's pooling (47.1187) needs "
            "non-overlapping regions so that every entry feeds one output"
        )
    if uniq.size < size and not drop_remainder:
        missing = np.setdiff1d(np.arange(size), uniq) + shift
        raise ValueError(
            f"pooling regions leave entries {missing[:10].tolist()} of {size} uncovered; "
            "pass drop_remainder=True to give them zero sensitivity"
        )


def _kind_parameters(kind, mask, p, retain, rng, sizes, order, size, one_based, window):
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a string, got {type(kind).__name__}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    out = {"mask": None, "p": None, "retain": None}
    if kind != "correlation" and mask is not None:
        raise ValueError(f"mask is only used with kind='correlation', got kind={kind!r}")
    if kind != "lp" and p is not None:
        raise ValueError(f"p is only used with kind='lp', got kind={kind!r}")
    if kind != "subsample" and retain is not None:
        raise ValueError(f"retain is only used with kind='subsample', got kind={kind!r}")
    if kind == "correlation":
        out["mask"] = _resolve_mask(mask, size, order, sizes, window)
    elif kind == "lp":
        if p is None:
            raise ValueError("kind='lp' needs the exponent p (a number >= 1)")
        out["p"] = val.as_real(p, "p", low=1.0)
    elif kind == "subsample":
        out["retain"] = _resolve_retain(retain, sizes, one_based, rng)
    return out


def _resolve_mask(mask, size, order, sizes, window):
    if mask is None:
        raise ValueError("kind='correlation' needs mask: one coefficient per map entry, or a window-shaped array")
    m = val.as_float_array(mask, "mask")
    val.require_finite(m, "mask")
    if m.ndim == 1 and m.size == size:
        return m.astype(np.float64)
    if window is not None and m.shape == tuple(window):
        full = np.zeros(size)
        full[order] = np.tile(vec(m), sizes.size)
        return full
    expected = f"({size},)" + (f" or the window shape {tuple(window)}" if window is not None else "")
    raise ValueError(f"mask must have shape {expected}, got {m.shape}")


def _resolve_retain(retain, sizes, one_based, rng):
    if retain is None:
        return np.zeros(sizes.size, dtype=np.int64)
    if isinstance(retain, str):
        if retain != "random":
            raise ValueError(f"retain must be an int, an array of positions, or 'random', got {retain!r}")
        gen = val.as_rng(rng, "rng")
        return gen.integers(0, sizes).astype(np.int64)
    r = np.asarray(retain)
    if not np.issubdtype(r.dtype, np.integer):
        raise TypeError(f"retain must hold integers, got dtype {r.dtype}")
    r = np.broadcast_to(r, sizes.shape) if r.ndim == 0 else r
    if r.shape != sizes.shape:
        raise ValueError(f"retain must be one int or {sizes.size} positions (one per region), got shape {r.shape}")
    r = r.astype(np.int64) - (1 if one_based else 0)
    if (r < 0).any() or (r >= sizes).any():
        i = int(np.flatnonzero((r < 0) | (r >= sizes))[0])
        raise ValueError(f"retain[{i}] = {int(r[i]) + (1 if one_based else 0)} is outside region {i} "
                         f"of size {int(sizes[i])}")
    return r.copy()
