"""Text and LaTeX renderings of small operators (used by ``partitionnet show``).

:func:`grid` prints a sparse 0/1 or small-integer matrix as a text grid,
:func:`latex` as an amsmath ``bmatrix`` that compiles at any width up to
``max_cols`` columns, and :func:`describe` gives its shape and nonzeros.
"""
from __future__ import annotations

import scipy.sparse as sp

__all__ = ["grid", "latex", "describe"]

#: Columns an amsmath matrix environment accepts unless ``MaxMatrixCols`` is raised.
AMSMATH_MAX_COLS = 10


def _sparse(matrix, name: str = "matrix"):
    # a Partition is its V (47.1149), a Pooling its permutation T (47.1203)
    for method in ("matrix", "permutation"):
        if callable(getattr(matrix, method, None)) and hasattr(matrix, "nnz"):
            matrix = getattr(matrix, method)()
            break
    try:
        A = sp.csr_array(matrix)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a 2-D array or scipy sparse matrix, got {type(matrix).__name__} "
                        f"({exc})") from None
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got {A.ndim} dimensions")
    return A


def grid(matrix, *, block_rows: int | None = None, max_rows: int = 1000, max_cols: int = 100) -> str:
    """A sparse or dense matrix as a text grid, ``.`` for zeros.

    Parameters
    ----------
    matrix : array_like, scipy.sparse matrix, Partition or Pooling
        A 2-D matrix, typically a partition matrix V (47.1149), its
        membership matrix (47.1151) or a pooling permutation T (47.1201);
        a ``Partition`` stands for its V and a ``Pooling`` for its T.
    block_rows : int, optional
        Draw a rule every that many rows; pass S for a partition matrix, so
        that each subvector h_p = V_p h reads as one block.
    max_rows, max_cols : int
        Larger matrices are not printed; a one-line note says why.

    Returns
    -------
    str
        One line per row, entries right-aligned: integers as integers,
        others with three significant digits.

    Examples
    --------
    >>> from partitionnet import Partition
    >>> V = Partition.from_indices([[1, 2], [2, 3]], 3, one_based=True)
    >>> print(grid(V.matrix(), block_rows=V.S))
    1 . .
    . 1 .
    -----
    . 1 .
    . . 1
    >>> print(grid([[0.5, 0], [0, 2]]))
    0.5   .
      .   2
    """
    A = _sparse(matrix)
    if A.shape[0] > max_rows or A.shape[1] > max_cols:
        return (f"(a {A.shape[0]} x {A.shape[1]} matrix is too large to print as a grid; "
                f"at most {max_rows} rows and {max_cols} columns)")
    dense = A.toarray()
    width = max(1, max((len(_fmt(v)) for v in dense.ravel()), default=1))
    lines = []
    for r, row in enumerate(dense):
        if block_rows and r and r % block_rows == 0:
            lines.append("-" * ((width + 1) * dense.shape[1] - 1))
        lines.append(" ".join(_fmt(v).rjust(width) for v in row))
    return "\n".join(lines)


def latex(matrix, *, display: bool = False, max_rows: int = 1000, max_cols: int = 100) -> str:
    r"""The matrix as an amsmath ``bmatrix``.

    amsmath's matrix environments accept at most 10 columns unless the
    counter ``MaxMatrixCols`` is raised, so a wider matrix is preceded by
    ``\setcounter{MaxMatrixCols}{n}`` (which a document body may contain).
    With ``display=True`` the matrix is wrapped in ``\[ ... \]``, so the
    result is a fragment that compiles as it is in an article that loads
    amsmath.

    Examples
    --------
    >>> print(latex([[1, 0], [0, 1]], display=True))
    \[
    \begin{bmatrix}
    1 & 0 \\
    0 & 1
    \end{bmatrix}
    \]
    >>> latex([[1] * 12]).splitlines()[0]
    '\\setcounter{MaxMatrixCols}{12}'
    """
    A = _sparse(matrix)
    if A.shape[0] > max_rows or A.shape[1] > max_cols:
        return (f"% a {A.shape[0]} x {A.shape[1]} matrix is too large for LaTeX output "
                f"(at most {max_rows} rows and {max_cols} columns)")
    rows = [" & ".join(_fmt(v, zero="0") for v in row) for row in A.toarray()]
    body = "\\begin{bmatrix}\n" + " \\\\\n".join(rows) + "\n\\end{bmatrix}"
    if display:
        body = "\\[\n" + body + "\n\\]"
    if A.shape[1] > AMSMATH_MAX_COLS:
        body = f"\\setcounter{{MaxMatrixCols}}{{{A.shape[1]}}}\n" + body
    return body


def _fmt(v, zero: str = ".") -> str:
    if v == 0:
        return zero
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.3g}"


def describe(name: str, matrix) -> str:
    """``name: shape R x C, nnz N`` for a matrix.

    >>> describe("V", [[1, 0], [0, 1], [1, 0]])
    'V: shape 3 x 2, nnz 3'
    """
    A = _sparse(matrix)
    return f"{name}: shape {A.shape[0]} x {A.shape[1]}, nnz {A.nnz}"
