"""Cross-channel pooling (maxout): pool groups of consecutive maps at every position.

forward ....... all groups at once: ``(P, N, D_in)`` viewed as ``(P, N, D, group)``, reduced over the group
vjp ........... ``g * v`` spread back over each group's maps (the upv of 47.1197-47.1200)
vjp_literal ... ``permute#(upv(v, g))`` (47.1244) with T the pooling permutation of the stacked sample vector
operator ...... ``T^T U`` over the whole sample, ``U`` spreading each output by its gradient vector (47.1200-47.1204)
reference ..... the pooled value of every group, position by position, written out

The slides "004:cross-channel pooling" (see SOURCES.md) pool across maps, not positions:
output map e at position q pools the entries ``x^(e g + k)(q)``,
``k = 0, ..., g - 1`` (``g = group``), and max pooling over such groups is a
maxout unit. In the stacked sample vector ``col{x^(1), ..., x^(D_in)}`` of
(47.1215) these groups are non-overlapping regions, so the layer *is* a
pooling (47.1187) of that vector, with regions numbered like the output
``col{t^(1), ..., t^(D)}``: the permutation T and the gradient vectors of
Table 47.14 apply unchanged (:meth:`ChannelPool.pooling`).
"""
from __future__ import annotations

import numpy as np

from .. import _validate as val
from ..algebra import SCIPY
from ..pooling import Pooling
from .base import Layer, register
from .global_pool import GLOBAL_KINDS, _exponent, pool_values

__all__ = ["ChannelPool"]


@register
class ChannelPool(Layer):
    """Pool over groups of ``group`` consecutive maps at every position (cross-channel pooling; maxout for max).

    Parameters
    ----------
    kind : {'max', 'mean', 'l2', 'lp'}
        The pooling function of Table 47.13 applied to each group.
    group : int
        The number of consecutive maps pooled together; it must divide the
        number of input maps. ``D = D_in / group`` maps come out, of the input's shape.
    p : float, optional
        The exponent (``>= 1``) for ``kind='lp'`` only.
    name : str, optional
        The layer's name in a network (default ``cpool<k>``).

    Notes
    -----
    Max ties go to the first map of the group (lowest index). PyTorch has no
    built-in module for this; :meth:`to_torch` returns a small
    ``torch.nn.Module`` that reshapes the channels into groups and reduces them.

    Examples
    --------
    A maxout over pairs of maps:

    >>> import numpy as np
    >>> from partitionnet import Network, layers as L
    >>> net = Network((3,), 4, [L.ChannelPool("max", 2)])
    >>> x = np.array([[[1.0, 5, 2], [4, 0, 3], [-1, -2, -3], [0, -5, 9]]])
    >>> net.forward(x).tolist()
    [[[4.0, 5.0, 3.0], [0.0, -2.0, 9.0]]]
    """

    kind = "channel_pool"
    prefix = "cpool"
    equations = "47.1187, 47.1196, 47.1197-47.1204, 47.1215, 47.1244"

    def __init__(self, kind="max", group=2, *, p=None, name=None):
        if not isinstance(kind, str):
            raise TypeError(f"kind must be a pooling kind name, one of {GLOBAL_KINDS}, got {type(kind).__name__}")
        if kind not in GLOBAL_KINDS:
            raise ValueError(f"kind must be one of {GLOBAL_KINDS}, got {kind!r}")
        self.group = val.as_positive_int(group, "group")
        self.p = _exponent(kind, p)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type(name).__name__}")
        self.pool_kind, self.name = kind, name

    @classmethod
    def examples(cls):
        """Small cases for the layer contract: every kind, ``(layer, in_maps, in_shape)``."""
        return [(cls("max", 2), 4, (3, 2)), (cls("mean", 3), 3, (2,)), (cls("l2", 2), 2, (2, 2)),
                (cls("lp", 2, p=3.0), 4, (2,)), (cls("max", 3), 6, (1, 2, 1))]

    @property
    def linear(self) -> bool:
        """Only the mean is linear in the input."""
        return self.pool_kind == "mean"

    def _build(self) -> None:
        if self.in_maps % self.group:
            raise ValueError(f"layer {self.name or self.prefix}: group={self.group} must divide the number of "
                             f"input maps, got {self.in_maps} maps")
        self._T = None
        self.out_maps, self.out_shape, self.out_vector = self.in_maps // self.group, self.in_shape, self.in_vector

    def pooling(self) -> Pooling:
        """The pooling of the stacked sample vector ``col{x^(1), ..., x^(D_in)}`` that this layer is (47.1187).

        Region ``e P + q`` (the order of ``col{t^(1), ..., t^(D)}``) holds
        entries ``(e g + k) P + q``, ``k = 0 .. g-1``. Built on first use.
        """
        if self._T is None:
            P, g, D = self.P_in, self.group, self.out_maps
            e = np.arange(D)[:, None, None]
            q = np.arange(P)[None, :, None]
            k = np.arange(g)[None, None, :]
            regions = ((e * g + k) * P + q).reshape(D * P, g)
            self._T = Pooling.from_regions(regions, self.in_maps * P, kind=self.pool_kind,
                                           p=self.p if self.pool_kind == "lp" else None)
        return self._T

    # ------------------------------------------------------------------ forward (47.1187, 47.1196)
    def forward(self, p, x):
        """``t`` ``(P, N, D)`` and the gradient vectors ``g`` ``(P, N, D, group)`` (Table 47.14)."""
        P, N, _ = x.shape
        y = x.reshape(P, N, self.out_maps, self.group)
        kind = self.pool_kind
        if kind == "mean":
            return y.mean(axis=3), np.full(y.shape, 1.0 / self.group, dtype=x.dtype)
        if kind == "max":
            first = np.argmax(y, axis=3)[..., None]                         # ties: the first map of the group
            g = np.zeros_like(y)
            np.put_along_axis(g, first, 1.0, axis=3)
            return np.take_along_axis(y, first, axis=3)[..., 0], g
        q = 2.0 if kind == "l2" else self.p                                 # scaled by the group's largest |y|
        a = np.abs(y)
        m = a.max(axis=3, keepdims=True)
        r = np.divide(a, m, out=np.zeros_like(a), where=m > 0)
        root = (r ** q).sum(axis=3, keepdims=True) ** (1.0 / q)             # in [1, group^(1/q)] where m > 0
        g = np.sign(y) * np.divide(r, root, out=np.zeros_like(r), where=m > 0) ** (q - 1.0)
        return (m * root)[..., 0], g                                        # an all-zero group: t = 0, g = 0

    # ------------------------------------------------------------------ backward (47.1197-47.1200, 47.1244)
    def vjp(self, p, g, dt, *, need_input=True):
        if not need_input:
            return None, {}
        P, N, _ = dt.shape
        return (g * dt[..., None]).reshape(P, N, self.in_maps), {}

    def vjp_literal(self, p, g, dt, *, need_input=True):
        """``permute#(upv(v, g))`` (47.1244) over the stacked sample vectors, samples as columns."""
        if not need_input:
            return None, {}
        P, N, D = dt.shape
        T = self.pooling()
        v = dt.transpose(2, 0, 1).reshape(D * P, N)                         # col{t^(1), ..., t^(D)} per sample
        g_regions = g.transpose(2, 0, 3, 1).reshape(D * P * self.group, N)  # region order: (e, q), then k
        dx = T.permute_adjoint(T.upv(v, g_regions))                         # (D_in P, N)
        return dx.reshape(self.in_maps, P, N).transpose(1, 2, 0), {}

    # ------------------------------------------------------------------ operator
    def operator(self, p, x=None, *, algebra=SCIPY):
        """``J^T = T^T U`` for one sample ``(P, D_in)``: ``U`` puts region r's gradient vector in column r."""
        if x is None:
            if not self.linear:
                raise ValueError(f"ChannelPool.operator needs the input x (one sample, (P, D_in)): "
                                 f"{self.pool_kind} pooling is nonlinear")
            x = np.ones((self.P_in, self.in_maps))
        T = self.pooling()
        vec = np.asarray(x).T.reshape(-1)                                   # col{x^(1), ..., x^(D_in)}
        if algebra is SCIPY:
            g = T.pool(np.asarray(vec, dtype=np.float64))[1]
        else:
            from ..symbolic import gradient_vectors

            g = list(gradient_vectors(T, list(vec)))
        owner = np.repeat(np.arange(T.P_out), T.sizes)
        U = algebra.matrix(np.arange(owner.size), owner, g, (T.P, T.P_out))        # upv (47.1200)
        return algebra.matmul(algebra.T(algebra.permutation(T)), U)                # permute# (47.1204)

    # ------------------------------------------------------------------ reference
    @staticmethod
    def reference(config, p, x):
        """Output map e at each position: the pooled value of input maps ``e g .. e g + g - 1`` there."""
        x = np.asarray(x)
        D_in, shape = x.shape[0], x.shape[1:]
        g = int(config["group"])
        out = np.empty((D_in // g,) + shape, dtype=object if x.dtype == object else np.float64)
        for e in range(D_in // g):
            for pos in np.ndindex(*shape):
                out[(e,) + pos] = pool_values(config["pool_kind"], [x[(e * g + k,) + pos] for k in range(g)],
                                              config.get("p"))
        return out

    # ------------------------------------------------------------------ description
    def config(self) -> dict:
        out = {"kind": self.kind, "pool_kind": self.pool_kind, "group": self.group}
        if self.pool_kind == "lp":
            out["p"] = self.p
        return out

    @classmethod
    def from_config(cls, config):
        rest = {k: v for k, v in config.items() if k not in ("kind", "pool_kind", "group")}
        return cls(config["pool_kind"], config["group"], **rest)

    def to_torch(self, p):
        """A small ``torch.nn.Module``: channels reshaped to ``(D, group)`` and reduced over the group."""
        return _torch_channel_pool(self.pool_kind, self.group, 2.0 if self.pool_kind == "l2" else self.p)


def _torch_channel_pool(kind, group, q):
    import torch

    class ChannelPoolTorch(torch.nn.Module):
        """Cross-channel pooling over groups of consecutive channels (no built-in PyTorch module)."""

        def __init__(self):
            super().__init__()
            self.kind, self.group, self.q = kind, group, q

        def forward(self, x):
            y = x.reshape((x.shape[0], x.shape[1] // self.group, self.group) + tuple(x.shape[2:]))
            if self.kind == "max":
                return y.amax(dim=2)
            if self.kind == "mean":
                return y.mean(dim=2)
            return torch.linalg.vector_norm(y, ord=self.q, dim=2)

        def extra_repr(self):
            return f"kind={self.kind!r}, group={self.group}"

    return ChannelPoolTorch()
