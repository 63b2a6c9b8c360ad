"""Dense (feedforward) layer: ``z_{l+1} = W_l y_l - theta_l`` (47.1216).

forward ....... one GEMM over the batch (samples are columns)
vjp ........... ``dW_l = delta y^T`` (47.1263), ``dtheta_l = -sum_n delta`` (47.1264), ``dy = W_l^T delta`` (47.1234)
operator ...... ``W_l^T``
reference ..... the matrix-vector product written out
"""
from __future__ import annotations

import numpy as np

from .. import _validate as val
from ..algebra import SCIPY
from .base import Layer, register


@register
class Dense(Layer):
    """A fully connected layer with ``n`` outputs; it takes a vector (put :class:`Flatten` before it).

    Parameters ``W`` (``n x n_in``) and ``theta`` (``n``), with the book's sign
    ``z = W y - theta``.

    >>> import numpy as np
    >>> from partitionnet import Network, layers as L
    >>> net = Network((2, 2), 1, [L.Flatten(), L.Dense(3)], rng=0)
    >>> net.forward(np.ones((5, 1, 2, 2))).shape, net.parameter_shapes()["dense1.W"]
    ((5, 3), (3, 4))
    """

    kind = "dense"
    prefix = "dense"
    equations = "47.1216, 47.1234, 47.1263-47.1264"

    def __init__(self, n, *, name=None):
        self.n = val.as_positive_int(n, "n")
        self.name = name

    linear = True

    @classmethod
    def examples(cls):
        return [(cls(3), 1, (4,)), (cls(1), 1, (2,))]

    def _build(self) -> None:
        if self.in_maps != 1 or len(self.in_shape) != 1:
            raise ValueError(f"layer {self.name or self.prefix}: Dense takes one vector per sample, but receives "
                             f"{self.in_maps} maps of shape {self.in_shape}; put a Flatten() layer before it")
        self.out_maps, self.out_shape, self.out_vector = 1, (self.n,), True

    def parameter_shapes(self) -> dict:
        return {"W": (self.n, self.in_shape[0]), "theta": (self.n,)}

    def init_parameters(self, rng):
        """Weights normal with variance 1/fan-in, biases 0."""
        n_in = self.in_shape[0]
        return {"W": rng.standard_normal((self.n, n_in)) / np.sqrt(n_in), "theta": np.zeros(self.n)}

    def forward(self, p, x):
        y = x[:, :, 0]
        return (p["W"] @ y - p["theta"][:, None])[:, :, None], y

    def vjp(self, p, y, dz, *, need_input=True):
        delta = dz[:, :, 0]
        # one sample: the outer product as a broadcast product (a GEMM with one inner term is slower)
        dW = delta * y.T if delta.shape[1] == 1 else delta @ y.T
        grads = {"W": dW, "theta": -delta.sum(axis=1)}
        return ((p["W"].T @ delta)[:, :, None] if need_input else None), grads

    def operator(self, p, x=None, *, algebra=SCIPY):
        return algebra.T(algebra.dense(p["W"]))

    @staticmethod
    def reference(config, p, x):
        v = np.asarray(x).reshape(-1)
        W, theta = np.asarray(p["W"]), np.asarray(p["theta"])
        return np.array([[sum(W[i, k] * v[k] for k in range(v.size)) - theta[i] for i in range(W.shape[0])]],
                        dtype=object if (v.dtype == object or W.dtype == object) else np.float64)

    def config(self) -> dict:
        return {"kind": self.kind, "n": self.n}

    def to_torch(self, p):
        import torch

        lin = torch.nn.Linear(self.in_shape[0], self.n, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.asarray(p["W"], dtype=np.float64)))
            lin.bias.copy_(torch.from_numpy(-np.asarray(p["theta"], dtype=np.float64)))
        return lin
