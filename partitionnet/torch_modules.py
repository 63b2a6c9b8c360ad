"""The PyTorch modules the twins are made of, and the optional import of torch.

This module imports nothing else from partitionnet but its layout helpers, so
that layers (``to_torch``) and the bridge (:mod:`partitionnet.torch_bridge`)
can both use it without importing each other.
"""
from __future__ import annotations

import numpy as np

from .vec import unvec

try:  # optional dependency
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError:  # pragma: no cover - exercised only without torch
    torch = None

_INSTALL_HINT = ("PyTorch is an optional dependency of partitionnet; install it with "
                 "`pip install partitionnet[torch]` (or `pip install torch`)")


def _require_torch() -> None:
    if torch is None:
        raise ImportError(f"this function needs PyTorch. {_INSTALL_HINT}")


# ---------------------------------------------------------------------------- layout helpers
def _fortran_to_c_index(flat_f: np.ndarray, shape: tuple) -> np.ndarray:
    """Column-stacked flat indices into ``shape`` -> row-major (torch) flat indices."""
    return np.ravel_multi_index(np.unravel_index(flat_f, shape, order="F"), shape)


_unvec = unvec


# ---------------------------------------------------------------------------- modules
if torch is not None:

    _CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
    _AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
    _MAX = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
    _AVG_MODULE = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}

    def _window_sum(x, window):
        """Sum over non-overlapping windows (an average pool times the window size)."""
        return _AVG[len(window)](x, window, window) * float(np.prod(window))

    class MaskedConv(nn.Module):
        """A convolution whose weight is multiplied by a fixed 0/1 connection mask (47.1213).

        ``weight`` and ``bias`` are ordinary parameters; the mask is a buffer,
        so gradients of unconnected weights are exactly zero.
        """

        def __init__(self, weight, bias, mask, *, stride, padding, dilation):
            super().__init__()
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(bias)
            self.register_buffer("connection_mask", mask)
            self.stride, self.padding, self.dilation = tuple(stride), tuple(padding), tuple(dilation)
            self._conv = _CONV[weight.ndim - 2]

        def forward(self, x):
            return self._conv(x, self.weight * self.connection_mask, self.bias,
                              self.stride, self.padding, self.dilation)

        def extra_repr(self) -> str:
            return (f"{self.weight.shape[1]}, {self.weight.shape[0]}, kernel_size={tuple(self.weight.shape[2:])}, "
                    f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, masked")

    class LpPool(nn.Module):
        """``t = (sum_{window} |y|^p)^(1/p)`` over non-overlapping windows (Table 47.13, Prob. 47.163).

        ``torch.nn.LPPool`` sums ``y^p`` without the absolute value, which
        differs for negative entries and odd ``p``; this takes ``|y|``.
        """

        def __init__(self, window, p):
            super().__init__()
            self.window, self.p = tuple(window), float(p)

        def forward(self, x):
            return _window_sum(x.abs() ** self.p, self.window) ** (1.0 / self.p)

        def extra_repr(self) -> str:
            return f"window={self.window}, p={self.p}"

    class MaskedSumPool(nn.Module):
        """'correlation' pooling: ``t = sum_{window} m(p) y(p)`` (47.1196e), mask a buffer of the map's shape."""

        def __init__(self, window, mask_map):
            super().__init__()
            self.window = tuple(window)
            self.register_buffer("mask", mask_map)

        def forward(self, x):
            return _window_sum(x * self.mask, self.window)

        def extra_repr(self) -> str:
            return f"window={self.window}"

    class RetainPool(nn.Module):
        """'subsample' pooling: ``t(p') = y(p_o)``, a gather of each window's retained entry (47.1196c)."""

        def __init__(self, index, output_shape):
            super().__init__()
            self.output_shape = tuple(output_shape)
            self.register_buffer("index", index)

        def forward(self, x):
            return x.flatten(2)[:, :, self.index].reshape(x.shape[:2] + self.output_shape)

        def extra_repr(self) -> str:
            return f"output_shape={self.output_shape}"

    class ColumnStackReshape(nn.Module):
        """Reshape the spatial axes of ``(N, D, *shape)`` in column-stacking (vec) order."""

        def __init__(self, shape):
            super().__init__()
            self.shape = tuple(shape)

        def forward(self, x):
            n = x.ndim - 2
            x = x.permute((0, 1) + tuple(range(n + 1, 1, -1))).reshape(x.shape[:2] + tuple(reversed(self.shape)))
            m = len(self.shape)
            return x.permute((0, 1) + tuple(range(m + 1, 1, -1)))

        def extra_repr(self) -> str:
            return f"shape={self.shape}"

    class ColumnStackFlatten(nn.Module):
        """``y_1 = col{t^(1)}, ..., t^(D)}`` with each map column-stacked (47.1215)."""

        def forward(self, x):
            n = x.ndim - 2
            return x.permute((0, 1) + tuple(range(n + 1, 1, -1))).flatten(1)




# ---------------------------------------------------------------------------- builders
def pooling_module(pool):
    """The torch module for a window pooling (see the module docstring); ``None`` for no pooling."""
    _require_torch()
    if pool.is_identity:
        return None
    if pool.window is None:
        raise NotImplementedError(f"pooling over explicit regions ({pool.P_out} regions of a map of {pool.P}) has "
                                  "no PyTorch module: torch pools windows that tile the map")
    window, n = pool.window, len(pool.window)
    kind = pool.kind
    if kind == "max":
        return _MAX[n](window, stride=window)
    if kind == "mean":
        return _AVG_MODULE[n](window, stride=window)
    if kind in ("l2", "lp"):
        return LpPool(window, 2.0 if kind == "l2" else pool.p)
    if kind == "correlation":
        return MaskedSumPool(window, torch.from_numpy(_unvec(pool.mask, pool.input_shape).copy()))
    if kind == "subsample":
        keep = np.array([r[k] for r, k in zip(pool.regions, pool.retain)])   # column-stacked entries of y
        index = _fortran_to_c_index(keep, pool.input_shape)             # region p' is column-stacked too
        index = _unvec(index, pool.output_shape).ravel()                # row-major over the output map
        return RetainPool(torch.from_numpy(index.astype(np.int64)), pool.output_shape)
    raise ValueError(f"pooling kind {kind!r} has no PyTorch export")  # pragma: no cover


def column_stack_flatten():
    """The torch module flattening ``(N, D, *map)`` to ``col{t^(1), ..., t^(D)}`` per sample (47.1215)."""
    _require_torch()
    return ColumnStackFlatten()
