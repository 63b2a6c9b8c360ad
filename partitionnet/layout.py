"""The one place that converts between the library's layouts and the user's.

* A stack of maps is held internally as ``(P, N, D)``: map position
  (column-stacked, :mod:`partitionnet.vec`), sample, map index. Users pass and
  receive ``(N, D, *map)``, batch first and channels first, as numpy and
  PyTorch users expect.
* A correlation's weights are the book's ``W_c`` (``S D_in x D``, 47.1224):
  row ``j*S + s`` of column ``d`` is entry ``s`` of the column-stacked window
  ``w_j^(d)``. PyTorch holds the same numbers as ``(D, D_in, *kernel)`` in C order.

>>> import numpy as np
>>> x = np.arange(12.0).reshape(2, 1, 2, 3)          # two samples, one 2x3 map
>>> stack = to_stack(x)
>>> stack.shape, stack[:, 0, 0].tolist()             # column-stacked positions
((6, 2, 1), [0.0, 3.0, 1.0, 4.0, 2.0, 5.0])
>>> bool(np.array_equal(from_stack(stack, (2, 3)), x))
True
"""
from __future__ import annotations

import numpy as np

__all__ = ["to_stack", "from_stack", "kernel_to_torch", "kernel_from_torch"]


def to_stack(x: np.ndarray) -> np.ndarray:
    """``(N, D, *map)`` -> ``(P, N, D)`` with map positions column-stacked."""
    N, D = x.shape[:2]
    axes = (0, 1) + tuple(range(x.ndim - 1, 1, -1))
    return x.transpose(axes).reshape(N, D, -1).transpose(2, 0, 1)


def from_stack(stack: np.ndarray, shape: tuple) -> np.ndarray:
    """Inverse of :func:`to_stack`: ``(P, N, D)`` -> ``(N, D, *shape)``."""
    P, N, D = stack.shape
    maps = stack.transpose(1, 2, 0).reshape((N, D) + tuple(shape)[::-1])
    return maps.transpose((0, 1) + tuple(range(len(shape) + 1, 1, -1)))


def kernel_to_torch(W: np.ndarray, D_in: int, D: int, kernel_shape: tuple) -> np.ndarray:
    """``W_c`` (``S D_in x D``) -> torch weight ``(D, D_in, *kernel)``.

    A C-order reshape to the *reversed* kernel shape followed by reversing
    those axes undoes the column stacking.
    """
    n = len(kernel_shape)
    w = W.T.reshape((D, D_in) + tuple(reversed(kernel_shape)))
    return np.ascontiguousarray(w.transpose((0, 1) + tuple(range(n + 1, 1, -1))))


def kernel_from_torch(weight: np.ndarray) -> np.ndarray:
    """Inverse of :func:`kernel_to_torch`: torch weight ``(D, D_in, *k)`` -> ``W_c``."""
    D, D_in = weight.shape[:2]
    n = weight.ndim - 2
    w = weight.transpose((0, 1) + tuple(range(n + 1, 1, -1)))
    return np.ascontiguousarray(w.reshape(D, -1).T)
