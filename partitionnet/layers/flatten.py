"""Flatten: ``y_1 = col{t^(1), ..., t^(D)}``, every map column-stacked (47.1215, 47.1217).

forward ....... a reshape: map d fills entries ``d P .. d P + P - 1`` (the index map 47.1217)
vjp ........... the inverse reshape: block d of ``W_1^T delta_2`` is map d's sensitivity (47.1220, 47.1241)
operator ...... the identity: with maps vectorised map by map, flattening does not move an entry
reference ..... concatenation of the column-stacked maps

``order='C'`` flattens as PyTorch's ``nn.Flatten`` does (each map in row-major
order); its operator is then a permutation. :func:`partitionnet.from_torch`
uses it so that an imported ``Linear`` keeps its weights as they are.
"""
from __future__ import annotations

import numpy as np

from ..algebra import SCIPY
from .base import Layer, register

ORDERS = ("F", "C")


@register
class Flatten(Layer):
    """Stack all maps into one vector per sample, in the order of (47.1215).

    Parameters
    ----------
    order : {'F', 'C'}
        'F' (default): each map column-stacked, the book's order. 'C': row-major
        within each map, as ``torch.nn.Flatten``.

    >>> import numpy as np
    >>> from partitionnet import Network, layers as L
    >>> x = np.arange(8.0).reshape(1, 2, 2, 2)           # two 2x2 maps
    >>> Network((2, 2), 2, [L.Flatten()]).forward(x).tolist()
    [[0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]]
    >>> Network((2, 2), 2, [L.Flatten(order="C")]).forward(x).tolist()
    [[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]]
    """

    kind = "flatten"
    prefix = "flatten"
    equations = "47.1215, 47.1217, 47.1220, 47.1241"
    linear = True

    def __init__(self, *, order="F", name=None):
        if not isinstance(order, str):
            raise TypeError(f"order must be 'F' or 'C', got {type(order).__name__}")
        if order not in ORDERS:
            raise ValueError(f"order must be 'F' (the book's column stacking) or 'C' (torch's), got {order!r}")
        self.order, self.name = order, name

    @classmethod
    def examples(cls):
        return [(cls(), 2, (3, 2)), (cls(), 3, (2,)), (cls(order="C"), 2, (3, 2, 2))]

    def _build(self) -> None:
        self.out_maps, self.out_shape, self.out_vector = 1, (self.in_maps * self.P_in,), True
        # positions in the output order: for 'C', entry i of a flattened map is column-stacked position perm[i]
        P = self.P_in
        self.perm = (np.arange(P) if self.order == "F" else
                     np.ravel_multi_index(np.unravel_index(np.arange(P), self.in_shape, order="C"),
                                          self.in_shape, order="F"))
        self.unperm = np.argsort(self.perm)

    def forward(self, p, x):
        P, N, D = x.shape
        if self.order == "C":
            x = np.take(x, self.perm, axis=0)
        return x.transpose(2, 0, 1).reshape(D * P, N, 1), None

    def vjp(self, p, res, dy, *, need_input=True):
        if not need_input:
            return None, {}
        dx = dy.reshape(self.in_maps, self.P_in, -1).transpose(1, 2, 0)
        if self.order == "C":                          # the inverse permutation, as a gather
            return np.take(dx, self.unperm, axis=0), {}
        return dx, {}

    def operator(self, p, x=None, *, algebra=SCIPY):
        """The identity for 'F'; for 'C' the permutation taking entry ``d P + perm[i]`` to ``d P + i``."""
        n = self.in_maps * self.P_in
        if self.order == "F":
            return algebra.eye(n)
        offsets = np.repeat(np.arange(self.in_maps) * self.P_in, self.P_in)
        rows = offsets + np.tile(self.perm, self.in_maps)
        return algebra.matrix(rows, np.arange(n), [1] * n, (n, n))

    @staticmethod
    def reference(config, p, x):
        x = np.asarray(x)
        order = config.get("order", "F")
        return np.concatenate([np.reshape(x[d], -1, order=order) for d in range(x.shape[0])])[None, :]

    def config(self) -> dict:
        return {"kind": self.kind, "order": self.order}

    def to_torch(self, p):
        if self.order == "C":
            import torch

            return torch.nn.Flatten()
        from ..torch_modules import column_stack_flatten

        return column_stack_flatten()
