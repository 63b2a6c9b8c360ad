"""Elementwise activation: ``y = f(z)`` (47.1154, Table 47.11).

forward ....... ``f`` on every entry
vjp ........... ``f'(z) * dy``, the factor of (47.1233), (47.1234), (47.1245), (47.1262)
operator ...... ``diag(f'(z))``: the Jacobian of an elementwise map is diagonal
reference ..... ``f`` written from its definition (sigmoid as ``(1 + tanh(z/2))/2``)
"""
from __future__ import annotations

import numpy as np

from .. import activations as act
from ..algebra import SCIPY
from .base import Layer, register


@register
class Activation(Layer):
    """An elementwise nonlinearity: ``'tanh'``, ``'relu'``, ``'sigmoid'`` or ``'identity'``.

    >>> import numpy as np
    >>> from partitionnet import Network, layers as L
    >>> Network((3,), 1, [L.Activation("relu")]).forward(np.array([[[-1.0, 0.0, 2.0]]])).tolist()
    [[[0.0, 0.0, 2.0]]]
    """

    kind = "activation"
    prefix = "act"
    equations = "47.1154, 47.1233-47.1234, 47.1245, 47.1262"

    def __init__(self, function="tanh", *, name=None):
        self.f, self.f_prime = act.get(function, "function")
        self.function, self.name = function, name

    @classmethod
    def examples(cls):
        return [(cls(name), 2, (3, 2)) for name in ("tanh", "relu", "sigmoid", "identity")]

    def forward(self, p, x):
        return self.f(x), x

    def vjp(self, p, z, dy, *, need_input=True):
        if not need_input:
            return None, {}
        if self.function == "relu":                     # f'(z) = [z > 0]: a mask, no float copy of it
            return np.multiply(dy, z > 0), {}
        return self.f_prime(z) * dy, {}

    def operator(self, p, x=None, *, algebra=SCIPY):
        """``diag(f'(x))`` with ``x`` one sample ``(P, D)``, vectorised map by map."""
        if x is None:
            raise ValueError("Activation.operator needs the input x (one sample, (P, D))")
        z = np.asarray(x).T.reshape(-1)                   # col{x^(1), ..., x^(D)}
        return algebra.diag(algebra.function(self.function + "'", z))

    @staticmethod
    def reference(config, p, x):
        x = np.asarray(x)
        name = config["function"]
        if x.dtype == object:
            import sympy

            forms = {"tanh": sympy.tanh, "relu": lambda v: sympy.Max(v, 0), "identity": lambda v: v,
                     "sigmoid": lambda v: (1 + sympy.tanh(v / 2)) / 2}
            return np.vectorize(forms[name], otypes=[object])(x)
        forms = {"tanh": np.tanh, "relu": lambda v: np.where(v > 0, v, 0.0), "identity": lambda v: v,
                 "sigmoid": lambda v: 0.5 * (1.0 + np.tanh(0.5 * v))}
        return forms[name](x)

    def config(self) -> dict:
        return {"kind": self.kind, "function": self.function}

    def to_torch(self, p):
        import torch

        return {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid,
                "identity": torch.nn.Identity}[self.function]()
