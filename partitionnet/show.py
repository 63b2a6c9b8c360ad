"""Text and LaTeX renderings of small operators, for ``partitionnet show``."""
from __future__ import annotations

import scipy.sparse as sp


def grid(matrix, *, block_rows: int | None = None, max_rows: int = 1000, max_cols: int = 100) -> str:
    """A 0/1 (or small-integer) sparse matrix as a text grid, '.' for zeros.

    ``block_rows`` draws a rule every that many rows (S for a partition
    matrix, so each subvector h_p reads as one block).
    """
    A = sp.csr_array(matrix)
    if A.shape[0] > max_rows or A.shape[1] > max_cols:
        return (f"(a {A.shape[0]} x {A.shape[1]} matrix is too large to print as a grid; "
                f"at most {max_rows} rows and {max_cols} columns)")
    dense = A.toarray()
    width = max(1, max(len(_fmt(v)) for v in dense.ravel()))
    lines = []
    for r, row in enumerate(dense):
        if block_rows and r and r % block_rows == 0:
            lines.append("-" * ((width + 1) * dense.shape[1] - 1))
        lines.append(" ".join(_fmt(v).rjust(width) for v in row))
    return "\n".join(lines)


def latex(matrix, *, max_rows: int = 1000, max_cols: int = 100) -> str:
    """The matrix as a LaTeX ``bmatrix`` (rows joined by ``\\``)."""
    A = sp.csr_array(matrix)
    if A.shape[0] > max_rows or A.shape[1] > max_cols:
        return (f"% a {A.shape[0]} x {A.shape[1]} matrix is too large for LaTeX output "
                f"(at most {max_rows} rows and {max_cols} columns)")
    rows = [" & ".join(_fmt(v, zero="0") for v in row) for row in A.toarray()]
    return "\\begin{bmatrix}\n" + " \\\\\n".join(rows) + "\n\\end{bmatrix}"


def _fmt(v, zero: str = ".") -> str:
    if v == 0:
        return zero
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.3g}"


def describe(name: str, matrix) -> str:
    A = sp.csr_array(matrix)
    return f"{name}: shape {A.shape[0]} x {A.shape[1]}, nnz {A.nnz}"
