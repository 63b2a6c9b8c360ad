"""Rendering operators for people: exact LaTeX for small matrices, spy plots for large ones.

Jupyter asks an object for ``_repr_latex_`` and ``_repr_png_``; :class:`~partitionnet.Partition`
and :class:`~partitionnet.Pooling` answer through the helpers here. A matrix small enough to
read (:data:`LATEX_MAX` rows and columns at most) is written out entry by entry; a larger one
is drawn as a spy plot, with the patch blocks of ``V`` (47.1153) or the regions of ``T``
(47.1203) marked by lines. matplotlib is an optional extra (``pip install partitionnet[plot]``):
without it :func:`spy_png` returns ``None`` and Jupyter shows the text form instead.

Examples
--------
>>> import numpy as np
>>> print(latex_matrix(np.array([[1.0, 0.0], [0.5, -2.0]])))
\\left[\\begin{array}{rr}1 & 0\\\\ 0.5 & -2\\end{array}\\right]
"""
from __future__ import annotations

import io

import numpy as np
import scipy.sparse as sp

from . import _validate as val

__all__ = ["LATEX_MAX", "latex_matrix", "spy_png", "describe_sparse", "symbolic_operator"]

#: the largest number of rows or columns written out entry by entry
LATEX_MAX = 24


def _entry(v) -> str:
    """One entry: integers without a decimal point, others in the shortest round-tripping form."""
    if hasattr(v, "free_symbols"):          # a SymPy expression
        import sympy

        return sympy.latex(v)
    v = float(v)
    if v == 0:
        return "0"
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def latex_matrix(A, *, max_size: int = LATEX_MAX):
    """A matrix as exact LaTeX (an ``array`` in brackets), or ``None`` when a side exceeds ``max_size``.

    Parameters
    ----------
    A : array-like, scipy.sparse matrix or sympy Matrix
        Numbers are printed exactly (``repr`` of the float), SymPy entries with ``sympy.latex``.
    max_size : int
        Larger matrices return ``None`` (Jupyter then falls back to another representation).
    """
    max_size = val.as_positive_int(max_size, "max_size")
    if sp.issparse(A):
        A = A.toarray()
    elif hasattr(A, "tolist") and hasattr(A, "free_symbols"):    # sympy matrix
        A = np.array(A.tolist(), dtype=object)
    A = np.asarray(A)
    if A.ndim == 1:
        A = A[:, None]
    if A.ndim != 2:
        raise ValueError(f"A must be a matrix (2-D), got shape {A.shape}")
    if max(A.shape) > max_size:
        return None
    body = "\\\\ ".join(" & ".join(_entry(v) for v in row) for row in A)
    return "\\left[\\begin{array}{" + "r" * A.shape[1] + "}" + body + "\\end{array}\\right]"


def spy_png(A, *, row_blocks=None, col_blocks=None, title: str | None = None, markersize: float | None = None):
    """A spy plot of a sparse matrix as PNG bytes, or ``None`` when matplotlib is not installed.

    Parameters
    ----------
    A : scipy.sparse matrix or array
    row_blocks, col_blocks : sequence of int, optional
        Boundaries (row or column indices) where a block starts, drawn as thin lines: for ``V`` the
        first row of each patch ``h_p``, for ``T`` the first row of each region.
    title : str, optional
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure
    except ImportError:
        return None
    A = sp.coo_array(A)
    fig = Figure(figsize=(5, 5 * min(2.0, max(0.25, A.shape[0] / max(A.shape[1], 1)))))
    ax = fig.add_subplot()
    if markersize is None:
        markersize = float(np.clip(300.0 / max(A.shape), 0.05, 4.0))
    ax.plot(A.col, A.row, "s", markersize=markersize, color="black", linestyle="none")
    ax.set_xlim(-0.5, A.shape[1] - 0.5)
    ax.set_ylim(A.shape[0] - 0.5, -0.5)
    for r in (row_blocks if row_blocks is not None else ()):
        ax.axhline(r - 0.5, color="tab:blue", linewidth=0.4)
    for c in (col_blocks if col_blocks is not None else ()):
        ax.axvline(c - 0.5, color="tab:orange", linewidth=0.4)
    ax.set_xlabel(f"{A.shape[1]} columns")
    ax.set_ylabel(f"{A.shape[0]} rows")
    ax.set_title(title or f"{A.shape[0]} x {A.shape[1]}, {A.nnz} nonzeros")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return buf.getvalue()


def describe_sparse(A) -> str:
    """``'rows x cols, nnz nonzeros (density d)'`` for any matrix.

    >>> describe_sparse(np.eye(4))
    '4 x 4, 4 nonzeros (density 0.25)'
    """
    A = sp.csr_array(A)
    density = A.nnz / max(A.shape[0] * A.shape[1], 1)
    return f"{A.shape[0]} x {A.shape[1]}, {A.nnz} nonzeros (density {density:.3g})"


def symbolic_operator(layer, x=None):
    """A built layer's operator ``J^T`` with symbolic weights, as an exact SymPy matrix.

    Every existing entry of every parameter becomes a symbol named after it
    (``W_0_1`` is ``W[0, 1]``; a structural zero of a connection table,
    47.1213, stays 0). For a correlation the blocks are the ``V^(j,d)`` of
    (47.1257) written out. A nonlinear layer needs ``x``, one sample
    ``(P_in, D_in)``, at which its Jacobian is taken. Jupyter shows the result
    as LaTeX; :func:`latex_matrix` gives the string.

    Examples
    --------
    A 1-D correlation with a mask of 2 over 3 entries: each column of ``J^T`` is one output,
    and the mask slides down the rows.

    >>> from partitionnet import Network, layers as L
    >>> net = Network((3,), 1, [L.Correlation(1, kernel=2)], rng=0)
    >>> symbolic_operator(net.layers[0]).tolist()
    [[W_0_0, 0], [W_1_0, W_0_0], [0, W_1_0]]
    """
    import sympy

    from .algebra import SYMPY
    from .layers.base import Layer

    if not isinstance(layer, Layer):
        raise TypeError(f"layer must be a built partitionnet layer, got {val.kind_of(layer)}")
    if not layer.built:
        raise ValueError(f"{type(layer).__name__} is not built: take it from a network (net.layers[i]), "
                         "or call layer.build(in_maps, in_shape)")
    if x is None and not getattr(layer, "linear", False):
        raise ValueError(f"{type(layer).__name__} is not linear: pass x, one sample (P_in, D_in), where its "
                         "Jacobian is taken")
    p = {}
    for name, shape in layer.parameter_shapes().items():
        arr = np.empty(shape, dtype=object)
        mask = layer.structural_mask(name)
        for index in np.ndindex(*shape):
            present = mask is None or bool(mask[index])
            arr[index] = sympy.Symbol(f"{name}_{'_'.join(map(str, index))}") if present else sympy.Integer(0)
        p[name] = arr
    return sympy.Matrix(layer.operator(p, x, algebra=SYMPY))
