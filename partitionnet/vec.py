"""Column-stacking vectorisation: the one place that decides the order.

The book (Fig. 47.82, eq. 47.1127) and the convolution chapter (eq. 8.12,
8.26) both stack the *columns* of a matrix, i.e. Fortran order. Every other
module goes through :func:`vec` / :func:`unvec` (or reuses their order via
``order="F"`` with a comment pointing here).
"""
from __future__ import annotations

import numpy as np

from ._validate import as_shape

#: The memory order that matches column stacking.
ORDER = "F"


def vec(A) -> np.ndarray:
    """Stack the columns of ``A`` into one vector (47.1127).

    For an N-d array the first axis varies fastest, which is the natural
    generalisation of stacking columns.

    >>> import numpy as np
    >>> vec(np.array([[1, 2], [3, 4]]))
    array([1, 3, 2, 4])
    """
    return np.asarray(A).reshape(-1, order=ORDER)


def unvec(v, shape) -> np.ndarray:
    """Invert :func:`vec`: refill an array of ``shape`` column by column.

    >>> unvec([1, 3, 2, 4], (2, 2))
    array([[1, 2],
           [3, 4]])
    """
    shape = as_shape(shape, "shape", max_ndim=None)
    arr = np.asarray(v)
    if arr.ndim != 1:
        raise ValueError(f"v must be a vector, got an array of shape {arr.shape}")
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"v has {arr.size} entries but shape {shape} needs {int(np.prod(shape))}")
    return arr.reshape(shape, order=ORDER)
