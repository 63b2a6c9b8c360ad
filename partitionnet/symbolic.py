"""SymPy twins of the operators, built from the library's own index structures.

The library works in floating point; a proof needs exact objects. These
helpers turn a :class:`~partitionnet.Partition` or :class:`~partitionnet.Pooling`
into explicit sparse SymPy matrices (using the very index arrays the numeric
code uses) and provide the few sparse products the closed forms need
(Kronecker, Hadamard), so that nothing large is ever densified.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sps
import sympy

from .vec import vec as _vec


def col(name: str, n: int, **assumptions) -> sympy.Matrix:
    """Column vector of fresh symbols ``name0 .. name{n-1}``."""
    return sympy.Matrix(n, 1, sympy.symbols(f"{name}0:{n}", **assumptions))


def grid(name: str, shape, **assumptions) -> np.ndarray:
    """Object array of symbols ``name_i_j..`` with the given shape (a symbolic map or kernel)."""
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        out[idx] = sympy.Symbol(f"{name}_{'_'.join(map(str, idx))}", **assumptions)
    return out


def vec(a) -> sympy.Matrix:
    """``partitionnet.vec`` (column stacking) of a symbolic map, as a SymPy column."""
    return sympy.Matrix(list(_vec(np.asarray(a, dtype=object))))


def from_scipy(A) -> sympy.SparseMatrix:
    """Exact SymPy copy of a scipy.sparse 0/1 (or integer) matrix."""
    A = sps.coo_array(A)
    entries = {}
    for i, j, v in zip(A.row, A.col, A.data):
        entries[(int(i), int(j))] = entries.get((int(i), int(j)), 0) + sympy.Integer(int(v))
    return sympy.SparseMatrix(A.shape[0], A.shape[1], entries)


def ones(n: int, m: int = 1) -> sympy.SparseMatrix:
    return sympy.SparseMatrix(n, m, {(i, j): 1 for i in range(n) for j in range(m)})


def eye(n: int) -> sympy.SparseMatrix:
    return sympy.SparseMatrix(n, n, {(i, i): 1 for i in range(n)})


def kron(A, B) -> sympy.SparseMatrix:
    """Sparse Kronecker product: only products of stored entries are formed."""
    A, B = sympy.SparseMatrix(A), sympy.SparseMatrix(B)
    (ra, ca), (rb, cb) = A.shape, B.shape
    out = {}
    for (i, j), a in A.todok().items():
        for (k, l), b in B.todok().items():
            out[(i * rb + k, j * cb + l)] = a * b
    return sympy.SparseMatrix(ra * rb, ca * cb, out)


def hadamard(A, B) -> sympy.SparseMatrix:
    """Sparse elementwise product; shapes must match exactly."""
    A, B = sympy.SparseMatrix(A), sympy.SparseMatrix(B)
    if A.shape != B.shape:
        raise sympy.ShapeError(f"Hadamard product of {A.shape} and {B.shape}")
    Bd = B.todok()
    return sympy.SparseMatrix(A.rows, A.cols, {k: v * Bd[k] for k, v in A.todok().items() if k in Bd})


def permutation(pool) -> sympy.SparseMatrix:
    """T of a pooling (47.1203), exact."""
    return from_scipy(pool.permutation())


def region_of_entry(pool) -> np.ndarray:
    """For each position of ``col{g_p'}`` (region order), the region p' it belongs to."""
    return np.repeat(np.arange(pool.P_out), pool.sizes)


def upv(pool, v, g) -> sympy.Matrix:
    """``col{v(p') g_p'}`` (47.1200) with zeros for dropped entries, as ``Pooling.upv``."""
    owner = region_of_entry(pool)
    out = [v[int(owner[k])] * g[k] for k in range(len(owner))]
    return sympy.Matrix(out + [0] * (pool.P - len(owner)))


def gradient_vectors(pool, y, mask=None) -> sympy.Matrix:
    """The gradient vectors of Table 47.14 as closed forms, stacked in region order.

    ``y`` is the symbolic map (length P). Max pooling needs numbers in ``y``
    to locate the maximiser; every other kind is fully symbolic.
    """
    out = []
    for r, region in enumerate(pool.regions):
        ys = [y[int(i)] for i in region]
        if pool.kind == "mean":
            out += [sympy.Rational(1, len(ys))] * len(ys)
        elif pool.kind in ("max", "subsample"):
            keep = int(np.argmax([float(v) for v in ys])) if pool.kind == "max" else int(pool.retain[r])
            out += [sympy.Integer(int(k == keep)) for k in range(len(ys))]
        elif pool.kind == "l2":
            t = sympy.sqrt(sympy.Add(*[v ** 2 for v in ys]))
            out += [v / t for v in ys]
        elif pool.kind == "lp":
            p = sympy.nsimplify(pool.p)
            t = sympy.Add(*[sympy.Abs(v) ** p for v in ys]) ** (1 / p)
            out += [sympy.sign(v) * sympy.Abs(v) ** (p - 1) / t ** (p - 1) for v in ys]
        elif pool.kind == "correlation":
            out += [mask[int(i)] for i in region]
        else:
            raise ValueError(f"unknown pooling kind {pool.kind!r}")
    return sympy.Matrix(out)
