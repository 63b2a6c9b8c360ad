"""Reference models written by direct summation, never through V or T.

Every formula here is the textbook definition typed as a loop: correlation
(47.1133, Eq. 8.13) sums ``x[o*stride - pad + k*dilation] * w[k]`` over the
kernel offsets ``k``; pooling (Table 47.13) loops over the regions. The same
functions work on float arrays and on object arrays of SymPy expressions, so
one model serves both the exact proofs and the numeric checks.
"""
from __future__ import annotations

import numpy as np
import sympy


def _as_array(a) -> np.ndarray:
    a = np.asarray(a)
    return a if a.dtype == object or np.issubdtype(a.dtype, np.floating) else a.astype(float)


def correlate(x, w, *, stride=1, padding=0, dilation=1) -> np.ndarray:
    """``F(o) = sum_k x(o*stride - padding + k*dilation) w(k)``, zero outside the map.

    Any number of axes; ``stride``, ``padding`` and ``dilation`` are ints or
    per-axis tuples. One slice of the padded input per kernel offset.
    """
    x, w = _as_array(x), _as_array(w)
    nd = x.ndim
    stride, padding, dilation = (tuple(v) if np.ndim(v) else (v,) * nd for v in (stride, padding, dilation))
    xp = np.pad(x, [(p, p) for p in padding])
    out_shape = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                      for n, k, s, p, d in zip(x.shape, w.shape, stride, padding, dilation))
    out = np.zeros(out_shape, dtype=object if object in (x.dtype, w.dtype) else float)
    for k in np.ndindex(*w.shape):
        window = tuple(slice(k[a] * dilation[a], k[a] * dilation[a] + stride[a] * (out_shape[a] - 1) + 1, stride[a])
                       for a in range(nd))
        out = out + w[k] * xp[window]
    return out


def convolve_full(x, w) -> np.ndarray:
    """Full convolution ``(x * w)(m) = sum_k w(k) x(m - k)``, size ``n + k - 1`` per axis."""
    x, w = _as_array(x), _as_array(w)
    shape = tuple(n + k - 1 for n, k in zip(x.shape, w.shape))
    out = np.zeros(shape, dtype=object if object in (x.dtype, w.dtype) else float)
    for k in np.ndindex(*w.shape):
        out[tuple(slice(k[a], k[a] + x.shape[a]) for a in range(x.ndim))] += w[k] * x
    return out


def gather(x, index_lists) -> list:
    """The subvectors of an unstructured partition, read entry by entry (Fig. 47.86, right)."""
    return [[x[i] for i in row] for row in index_lists]


def correlate_lists(x, w, index_lists) -> list:
    """``z(p) = sum_s x(idx[p][s]) w(s)`` for an unstructured partition (47.1155 without f, θ)."""
    return [sum((xi * ws for xi, ws in zip(row, w)), sympy.Integer(0)) for row in gather(x, index_lists)]


def pool(y, regions, kind, *, mask=None, p=None, retain=None) -> list:
    """Table 47.13 by direct loops over the regions (``y`` is a flat sequence).

    ``retain`` (subsampling) gives the kept position inside each region.
    """
    out = []
    for r, region in enumerate(regions):
        ys = [y[int(i)] for i in region]
        if kind == "mean":
            out.append(sympy.Add(*ys) / len(ys) if _symbolic(ys) else sum(ys) / len(ys))
        elif kind == "max":
            out.append(sympy.Max(*ys, evaluate=False) if _symbolic(ys) else max(ys))
        elif kind == "l2":
            out.append(sympy.sqrt(sympy.Add(*[v ** 2 for v in ys])) if _symbolic(ys)
                       else float(np.sqrt(sum(v * v for v in ys))))
        elif kind == "lp":
            q = sympy.nsimplify(p)
            out.append(sympy.Add(*[sympy.Abs(v) ** q for v in ys]) ** (1 / q) if _symbolic(ys)
                       else float(sum(abs(v) ** p for v in ys) ** (1.0 / p)))
        elif kind == "correlation":
            out.append(sum(v * mask[int(i)] for v, i in zip(ys, region)))
        elif kind == "subsample":
            out.append(ys[int(retain[r])])
        else:
            raise ValueError(f"unknown pooling kind {kind!r}")
    return out


def _symbolic(values) -> bool:
    return any(isinstance(v, sympy.Basic) for v in values)


def pool_windows(Y, window, kind) -> np.ndarray:
    """Non-overlapping windows of a float map, remainder dropped, by slicing block after block."""
    Y = np.asarray(Y, dtype=float)
    out_shape = tuple(n // w for n, w in zip(Y.shape, window))
    reduce = {"mean": np.mean, "max": np.max, "l2": lambda b: np.sqrt(np.sum(b * b))}[kind]
    out = np.empty(out_shape)
    for o in np.ndindex(*out_shape):
        out[o] = reduce(Y[tuple(slice(i * w, (i + 1) * w) for i, w in zip(o, window))])
    return out
