"""Global pooling: one value per map, the whole map being a single pooling region.

forward ....... ``Pooling.pool`` with one region covering the map, on all maps and samples at once (47.1187, 47.1196)
vjp ........... ``permute#(upv(v, g))`` on a matrix with ``N D`` columns (47.1244, 47.1260)
vjp_literal ... the same chain map by map, as the listing of (47.1275) writes it
operator ...... per map ``T^T U``, ``U`` spreading the one output by the gradient vector g (47.1200, 47.1204)
reference ..... the mean, maximum or p-norm of each map, written out

A global pool is the pooling of (47.1187) with a single region ``Omega = {1, ..., P}``:
T is the identity permutation (the region lists the map in column-stacked
order), and the gradient vector ``g`` is that of Table 47.14 over the whole
map. The output keeps the map axes, each of size 1, so that a
:class:`~partitionnet.layers.Flatten` (or another map layer) can follow, as
``torch.nn.AdaptiveAvgPool2d(1)`` keeps ``(N, D, 1, 1)``.
"""
from __future__ import annotations

import numpy as np

from .. import _validate as val
from ..algebra import SCIPY
from ..pooling import Pooling
from .base import Layer, register

__all__ = ["GlobalPool", "GLOBAL_KINDS"]

#: the pooling kinds a global (or channel) pool takes
GLOBAL_KINDS = ("mean", "max", "l2", "lp")


@register
class GlobalPool(Layer):
    """Pool every whole map to one value: ``'mean'``, ``'max'``, ``'l2'`` or ``'lp'`` (with ``p``).

    Parameters
    ----------
    kind : {'mean', 'max', 'l2', 'lp'}
        The pooling function of Table 47.13 (``'lp'``: ``||y||_p``, Prob. 47.163).
    p : float, optional
        The exponent (``>= 1``) for ``kind='lp'`` only.
    name : str, optional
        The layer's name in a network (default ``gpool<k>``).

    Notes
    -----
    Maps of shape ``(n_1, ..., n_k)`` become maps of shape ``(1, ..., 1)``.
    Max pooling's tie rule is PyTorch's: among equal maxima the first in
    row-major (C) order of the map receives the whole sensitivity. The
    PyTorch twin is ``AdaptiveAvgPoolNd(1)`` / ``AdaptiveMaxPoolNd(1)``, and
    ``LPPoolNd`` over the whole map for ``'l2'`` and even integer ``p``.

    Examples
    --------
    >>> import numpy as np
    >>> from partitionnet import Network, layers as L
    >>> net = Network((2, 3), 2, [L.GlobalPool("max")])
    >>> x = np.arange(12.0).reshape(1, 2, 2, 3)
    >>> net.forward(x).tolist()
    [[[[5.0]], [[11.0]]]]
    """

    kind = "global_pool"
    prefix = "gpool"
    equations = "47.1187, 47.1196, 47.1197-47.1204, 47.1244, 47.1260"

    def __init__(self, kind="mean", *, p=None, name=None):
        if not isinstance(kind, str):
            raise TypeError(f"kind must be a pooling kind name, one of {GLOBAL_KINDS}, got {type(kind).__name__}")
        if kind not in GLOBAL_KINDS:
            raise ValueError(f"kind must be one of {GLOBAL_KINDS}, got {kind!r}")
        self.p = _exponent(kind, p)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type(name).__name__}")
        self.pool_kind, self.name = kind, name

    @classmethod
    def examples(cls):
        """Small cases for the layer contract: every kind, ``(layer, in_maps, in_shape)``."""
        return [(cls("mean"), 2, (3, 2)), (cls("max"), 2, (2, 3)), (cls("l2"), 1, (4,)),
                (cls("lp", p=3.0), 2, (2, 1, 2)), (cls("max"), 1, (2, 2, 2))]

    @property
    def linear(self) -> bool:
        """Only the mean is linear in the input."""
        return self.pool_kind == "mean"

    def _build(self) -> None:
        self.T = Pooling.windows(self.in_shape, self.in_shape, kind=self.pool_kind,
                                 p=self.p if self.pool_kind == "lp" else None)
        self.out_maps, self.out_shape, self.out_vector = self.in_maps, (1,) * len(self.in_shape), self.in_vector

    # ------------------------------------------------------------------ forward (47.1187, 47.1196)
    def forward(self, p, x):
        P, N, D = x.shape
        t, g = self.T.pool(x.reshape(P, N * D))
        return t.reshape(1, N, D), g

    # ------------------------------------------------------------------ backward (47.1244, 47.1260)
    def vjp(self, p, g, dt, *, need_input=True):
        if not need_input:
            return None, {}
        _, N, D = dt.shape
        return self.T.backward(dt.reshape(1, N * D), g).reshape(self.T.P, N, D), {}

    def vjp_literal(self, p, g, dt, *, need_input=True):
        """Map by map: ``permute#(upv(v^(d), g^(d)))`` (47.1244, 47.1260)."""
        if not need_input:
            return None, {}
        _, N, D = dt.shape
        g3 = g.reshape(self.T.P, N, D)
        dx = np.empty((self.T.P, N, D), dtype=dt.dtype)
        for d in range(D):
            dx[:, :, d] = self.T.permute_adjoint(self.T.upv(dt[:, :, d], g3[:, :, d]))
        return dx, {}

    # ------------------------------------------------------------------ operator
    def operator(self, p, x=None, *, algebra=SCIPY):
        """``J^T`` of one sample ``(P, D)``: block-diagonal, per map ``T^T U`` with ``U = g`` (one column)."""
        if x is None:
            if not self.linear:
                raise ValueError(f"GlobalPool.operator needs the input x (one sample, (P, D)): {self.pool_kind} "
                                 "pooling is nonlinear")
            x = np.ones((self.P_in, self.in_maps))
        T, P = self.T, self.T.P
        blocks = []
        for d in range(self.in_maps):
            if algebra is SCIPY:
                g = T.pool(np.asarray(x[:, d], dtype=np.float64))[1]
            else:
                from ..symbolic import gradient_vectors

                g = list(gradient_vectors(T, list(x[:, d])))
            U = algebra.matrix(np.arange(P), np.zeros(P, dtype=np.int64), g, (P, 1))    # upv (47.1200)
            blocks.append(algebra.matmul(algebra.T(algebra.permutation(T)), U))          # permute# (47.1204)
        return algebra.block([[blocks[d] if e == d else algebra.zeros(P, 1) for e in range(self.in_maps)]
                              for d in range(self.in_maps)])

    # ------------------------------------------------------------------ reference
    @staticmethod
    def reference(config, p, x):
        """The mean, maximum or ``(sum |y|^p)^(1/p)`` of every map of one sample ``(D, *shape)``."""
        x = np.asarray(x)
        D, nd = x.shape[0], x.ndim - 1
        kind = config["pool_kind"]
        out = np.empty((D,) + (1,) * nd, dtype=object if x.dtype == object else np.float64)
        for d in range(D):
            out[(d,) + (0,) * nd] = pool_values(kind, list(x[d].reshape(-1)), config.get("p"))
        return out

    # ------------------------------------------------------------------ description
    def config(self) -> dict:
        out = {"kind": self.kind, "pool_kind": self.pool_kind}
        if self.pool_kind == "lp":
            out["p"] = self.p
        return out

    @classmethod
    def from_config(cls, config):
        return cls(config["pool_kind"], **{k: v for k, v in config.items() if k not in ("kind", "pool_kind")})

    def to_torch(self, p):
        """``AdaptiveAvgPoolNd(1)``, ``AdaptiveMaxPoolNd(1)``, or ``LPPoolNd`` over the whole map (even ``p``)."""
        import torch

        n = len(self.in_shape)
        if self.pool_kind == "mean":
            return getattr(torch.nn, f"AdaptiveAvgPool{n}d")(1)
        if self.pool_kind == "max":
            return getattr(torch.nn, f"AdaptiveMaxPool{n}d")(1)
        q = 2.0 if self.pool_kind == "l2" else self.p
        if q == int(q) and int(q) % 2 == 0:           # y^q = |y|^q only for even q
            kernel = self.in_shape[0] if n == 1 else tuple(self.in_shape)
            return getattr(torch.nn, f"LPPool{n}d")(q, kernel)
        raise NotImplementedError(f"layer {self.name or self.prefix}: torch's LPPool takes y^p, not |y|^p, so an "
                                  f"odd or fractional p ({q}) has no PyTorch twin")


def pool_values(kind, values, p=None):
    """One region's pooled value from its entries (numbers or SymPy expressions), summing directly."""
    symbolic = any(hasattr(v, "free_symbols") for v in values)
    if kind == "mean":
        total = 0
        for v in values:
            total = total + v
        return total / len(values)
    if kind == "max":
        if symbolic:
            import sympy

            return sympy.Max(*values, evaluate=False)
        best = values[0]
        for v in values[1:]:
            best = v if v > best else best
        return best
    q = 2 if kind == "l2" else p
    if symbolic:
        import sympy

        q = sympy.nsimplify(q)
        return sum(sympy.Abs(v) ** q for v in values) ** (1 / q)
    return float(sum(abs(float(v)) ** q for v in values) ** (1.0 / q))


def _exponent(kind, p):
    """Validate ``p``: required (>= 1, finite) for ``'lp'``, refused otherwise."""
    if kind != "lp":
        if p is not None:
            raise ValueError(f"p is only used with kind='lp', got kind={kind!r} and p={p!r}")
        return None
    if p is None:
        raise ValueError("kind='lp' needs the exponent p (a number >= 1)")
    return val.as_real(p, "p", low=1.0)
