"""Flatten: ``y_1 = col{t^(1), ..., t^(D)}``, every map column-stacked (47.1215, 47.1217).

forward ....... a reshape: map d fills entries ``d P .. d P + P - 1`` (the index map 47.1217)
vjp ........... the inverse reshape: block d of ``W_1^T delta_2`` is map d's sensitivity (47.1220, 47.1241)
operator ...... the identity: with maps vectorised map by map, flattening does not move an entry
reference ..... concatenation of the column-stacked maps
"""
from __future__ import annotations

import numpy as np

from ..algebra import SCIPY
from .base import Layer, register


@register
class Flatten(Layer):
    """Stack all maps into one vector per sample, in the order of (47.1215).

    >>> import numpy as np
    >>> from partitionnet import Network, layers as L
    >>> x = np.arange(8.0).reshape(1, 2, 2, 2)           # two 2x2 maps
    >>> Network((2, 2), 2, [L.Flatten()]).forward(x).tolist()
    [[0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]]
    """

    kind = "flatten"
    prefix = "flatten"
    equations = "47.1215, 47.1217, 47.1220, 47.1241"

    def __init__(self, *, name=None):
        self.name = name

    linear = True

    @classmethod
    def examples(cls):
        return [(cls(), 2, (3, 2)), (cls(), 3, (2,))]

    def _build(self) -> None:
        self.out_maps, self.out_shape, self.out_vector = 1, (self.in_maps * self.P_in,), True

    def forward(self, p, x):
        P, N, D = x.shape
        return x.transpose(2, 0, 1).reshape(D * P, N, 1), None

    def vjp(self, p, res, dy, *, need_input=True):
        if not need_input:
            return None, {}
        return dy.reshape(self.in_maps, self.P_in, -1).transpose(1, 2, 0), {}

    def operator(self, p, x=None, *, algebra=SCIPY):
        return algebra.eye(self.in_maps * self.P_in)

    @staticmethod
    def reference(config, p, x):
        x = np.asarray(x)
        return np.concatenate([np.reshape(x[d], -1, order="F") for d in range(x.shape[0])])[None, :]

    def config(self) -> dict:
        return {"kind": self.kind}

    def to_torch(self, p):
        from ..torch_bridge import column_stack_flatten

        return column_stack_flatten()
