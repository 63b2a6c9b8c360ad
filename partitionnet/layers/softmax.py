"""Softmax over all entries of one sample: ``y = exp(z) / 1^T exp(z)``.

forward ....... shifted by the maximum for stability
vjp ........... ``J^T dy = y * (dy - y^T dy)`` (the full Jacobian, not a diagonal)
operator ...... ``J^T = diag(y) - y y^T``
reference ..... the definition, unshifted

With the cross-entropy loss the network fuses this layer with the loss:
``delta = y * sum(gamma) - gamma`` (``y - gamma`` for one-hot targets).
"""
from __future__ import annotations

import numpy as np

from ..algebra import SCIPY
from .base import Layer, register


@register
class Softmax(Layer):
    """Softmax over every entry of a sample (normally the output vector of a classifier).

    >>> import numpy as np
    >>> from partitionnet import Network, layers as L
    >>> y = Network((3,), 1, [L.Flatten(), L.Softmax()]).forward(np.zeros((1, 1, 3)))
    >>> y.round(4).tolist()
    [[0.3333, 0.3333, 0.3333]]
    """

    kind = "softmax"
    prefix = "softmax"
    equations = "47.1233"

    def __init__(self, *, name=None):
        self.name = name

    @classmethod
    def examples(cls):
        return [(cls(), 1, (4,)), (cls(), 2, (3,))]

    def forward(self, p, x):
        e = np.exp(x - x.max(axis=(0, 2), keepdims=True))
        y = e / e.sum(axis=(0, 2), keepdims=True)
        return y, y

    def vjp(self, p, y, dy, *, need_input=True):
        if not need_input:
            return None, {}
        return y * (dy - np.sum(y * dy, axis=(0, 2), keepdims=True)), {}

    def operator(self, p, x=None, *, algebra=SCIPY):
        """``diag(y) - y y^T`` at one sample ``x`` (``(P, D)``)."""
        if x is None:
            raise ValueError("Softmax.operator needs the input x (one sample, (P, D))")
        z = np.asarray(x).T.reshape(-1)                   # col{x^(1), ..., x^(D)}
        e = algebra.function("exp", z - z.max() if algebra is SCIPY else z)
        y = e / e.sum()
        return algebra.diag(y) - algebra.outer(y)

    @staticmethod
    def reference(config, p, x):
        x = np.asarray(x)
        if x.dtype == object:
            import sympy

            e = np.vectorize(sympy.exp, otypes=[object])(x)
        else:
            e = np.exp(x)
        return e / e.sum()

    def config(self) -> dict:
        return {"kind": self.kind}

    def to_torch(self, p):
        import torch

        if self.in_vector or (self.in_maps == 1 and len(self.in_shape) == 1):
            return torch.nn.Softmax(dim=-1)
        raise NotImplementedError("a Softmax over several maps has no single PyTorch module; flatten first")
