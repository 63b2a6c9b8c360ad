"""Index arithmetic for windows sliding over an N-d map (no Python loops).

Both the partition matrix of a correlation layer and the regions of a
pooling layer are "for every output position, the list of input entries its
window covers". This module computes that list as one integer array, in
column-stacking order on both sides (see :mod:`partitionnet.vec`).
"""
from __future__ import annotations

import numpy as np


def output_length(n: int, k: int, stride: int, pad_before: int, pad_after: int, dilation: int) -> int:
    """Number of window positions along one axis (Eq. 8.18-8.19, with floor).

    ``floor((n + pad_before + pad_after - dilation*(k-1) - 1) / stride) + 1``;
    zero or negative means the window does not fit.
    """
    span = dilation * (k - 1) + 1
    return (n + pad_before + pad_after - span) // stride + 1


def window_indices(input_shape, kernel, stride, pad_before, dilation, out_shape) -> np.ndarray:
    """Flat (column-stacked) input index of every (position, window entry).

    Returns an int64 array of shape ``(P, S)``, ``P = prod(out_shape)`` and
    ``S = prod(kernel)``, where row ``p`` lists the entries of window ``p``
    and ``-1`` marks an entry that falls in the zero padding (47.1129).
    Positions and window entries are both enumerated with the first axis
    varying fastest, so row ``p`` is ``vec`` of the window placed at output
    position ``unvec(p)``.
    """
    ndim = len(input_shape)
    # Column-stacking strides of the input: axis a moves by prod(n_0..n_{a-1}).
    flat_stride = np.cumprod((1,) + tuple(input_shape[:-1]))
    full_shape = tuple(out_shape) + tuple(kernel)
    flat = np.zeros(full_shape, dtype=np.int64)
    inside = np.ones(full_shape, dtype=bool)
    for a in range(ndim):  # loop over axes (at most 3), never over positions
        coord = (np.arange(out_shape[a])[:, None] * stride[a] - pad_before[a]
                 + np.arange(kernel[a])[None, :] * dilation[a])
        view = [1] * (2 * ndim)
        view[a], view[ndim + a] = out_shape[a], kernel[a]
        coord = coord.reshape(view)
        flat += coord * flat_stride[a]
        inside &= (coord >= 0) & (coord < input_shape[a])
    P = int(np.prod(out_shape))
    S = int(np.prod(kernel))
    # A Fortran-order reshape makes the first output axis fastest in p and the
    # first kernel axis fastest in s: column stacking on both sides.
    flat = flat.reshape((P, S), order="F")
    inside = inside.reshape((P, S), order="F")
    return np.where(inside, flat, -1)


def same_padding(n: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """``(before, after)`` zeros for ``padding='same'`` on one axis (the TensorFlow rule).

    The output has ``ceil(n / stride)`` positions; the total padding is
    ``max((out - 1)*stride + dilation*(k - 1) + 1 - n, 0)``, split with the
    smaller half before and the odd zero after. PyTorch's ``padding='same'``
    (stride 1) and ``scipy.signal.correlate2d(..., 'same')`` place it the same
    way; ``scipy.signal.correlate(..., 'same')`` puts it before instead.

    >>> same_padding(5, 2, 1, 1), same_padding(5, 3, 1, 1), same_padding(7, 3, 2, 1)
    ((0, 1), (1, 1), (1, 1))
    """
    out = -(-n // stride)
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def padding_pairs(padding, ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Split a resolved padding (per-axis ints, or per-axis ``(before, after)`` pairs) into two tuples.

    >>> padding_pairs((1, 2), 2)
    ((1, 2), (1, 2))
    >>> padding_pairs(((0, 1), (2, 2)), 2)
    ((0, 2), (1, 2))
    """
    before, after = [], []
    for a in range(ndim):
        item = padding[a]
        if isinstance(item, (tuple, list)):
            before.append(int(item[0]))
            after.append(int(item[1]))
        else:
            before.append(int(item))
            after.append(int(item))
    return tuple(before), tuple(after)
