"""Pooling layer: ``t(p') = pool(y(Omega_p'))`` for every map (47.1187, 47.1208).

forward ....... ``Pooling.pool`` on all maps and samples at once: ``(t, g)`` (47.1196)
vjp ........... ``permute#(upv(v, g))`` on a matrix with ``N D`` columns (47.1244, 47.1260)
vjp_literal ... the same chain map by map, as the listing of (47.1275) writes it
operator ...... ``T^T`` times the region-spreading matrix of the gradient vectors
                (47.1197-47.1204), block diagonal over maps
reference ..... region by region, from the window (or the region lists) alone
"""
from __future__ import annotations

import itertools

import numpy as np

from ..algebra import SCIPY
from ..pooling import KINDS, Pooling
from .base import Layer, register


@register
class Pool(Layer):
    """Pool every map over non-overlapping windows or explicit regions (Tables 47.13-47.14).

    Parameters
    ----------
    kind : str
        One of ``'mean'``, ``'max'``, ``'l2'``, ``'lp'``, ``'correlation'``, ``'subsample'``.
    window : int or tuple, optional
        The pooling window (non-overlapping). Either ``window`` or ``pooling``.
    pooling : Pooling, optional
        A ready :class:`~partitionnet.Pooling` over the incoming maps (e.g. from
        :meth:`Pooling.from_regions`).
    **options
        The options of :meth:`Pooling.windows`: ``p``, ``mask``, ``retain``,
        ``rng``, ``drop_remainder``.

    Examples
    --------
    >>> import numpy as np
    >>> from partitionnet import Network, layers as L
    >>> net = Network((4, 4), 1, [L.Pool("max", 2)])
    >>> net.forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """

    kind = "pool"
    prefix = "pool"
    equations = "47.1187, 47.1196, 47.1197-47.1204, 47.1244, 47.1260"

    def __init__(self, kind="max", window=None, *, pooling=None, name=None, **options):
        if not isinstance(kind, str):
            raise TypeError(f"kind must be a pooling kind name, got {type(kind).__name__}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if pooling is not None and not isinstance(pooling, Pooling):
            raise TypeError(f"pooling must be a Pooling, got {type(pooling).__name__}")
        if (pooling is None) == (window is None):
            raise ValueError("Pool needs exactly one of window=... (a window size) or pooling=... (a Pooling)")
        self.pool_kind = pooling.kind if pooling is not None else kind
        self.window, self.pooling, self.options, self.name = window, pooling, dict(options), name

    @classmethod
    def examples(cls):
        """Small cases for the layer contract: every kind, ``(layer, in_maps, in_shape)``."""
        return [(cls("max", 2), 2, (4, 4)), (cls("mean", (2, 1)), 1, (4, 3)), (cls("l2", 2), 1, (4,)),
                (cls("lp", 3, p=3.0), 1, (6,)), (cls("correlation", 2, mask=[0.5, -1.0, 2.0, 1.5]), 1, (4,)),
                (cls("subsample", 2, retain=[1, 0]), 2, (4,)),
                (cls("max", pooling=Pooling.from_regions([[0, 3], [1, 2, 4]], 5)), 1, (5,))]

    @property
    def linear(self) -> bool:
        """Mean, mask-weighted and subsampling pooling are linear maps; the others are not."""
        return self.pool_kind in ("mean", "correlation", "subsample")

    def _build(self) -> None:
        where = f"layer {self.name or self.prefix}"
        if self.pooling is not None:
            T = self.pooling
            if T.P != self.P_in:
                raise ValueError(f"{where}: pooling acts on maps of size {T.P}, but the layer receives maps of "
                                 f"size P={self.P_in} (shape {self.in_shape})")
        else:
            try:
                T = Pooling.windows(self.in_shape, self.window, kind=self.pool_kind, **self.options)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{where}: {exc}") from None
        self.T = T
        self.out_maps, self.out_shape, self.out_vector = self.in_maps, T.output_shape, self.in_vector

    # ------------------------------------------------------------------ forward (47.1187, 47.1196)
    def forward(self, p, x):
        P, N, D = x.shape
        t, g = self.T.pool(x.reshape(P, N * D))
        return t.reshape(self.T.P_out, N, D), g

    # ------------------------------------------------------------------ backward (47.1244, 47.1260)
    def vjp(self, p, g, dt, *, need_input=True):
        if not need_input:
            return None, {}
        P_out, N, D = dt.shape
        return self.T.backward(dt.reshape(P_out, N * D), g).reshape(self.T.P, N, D), {}

    def vjp_literal(self, p, g, dt, *, need_input=True):
        """Map by map: ``permute#(upv(v^(d), g^(d)))`` (47.1244, 47.1260), as the listing writes it."""
        if not need_input:
            return None, {}
        P_out, N, D = dt.shape
        g3 = g.reshape(g.shape[0], N, D)
        dx = np.empty((self.T.P, N, D))
        for d in range(D):
            dx[:, :, d] = self.T.permute_adjoint(self.T.upv(dt[:, :, d], g3[:, :, d]))
        return dx, {}

    # ------------------------------------------------------------------ operator
    def operator(self, p, x=None, *, algebra=SCIPY):
        """``J^T`` of one sample: per map, ``T^T U`` with ``U`` spreading region p' by ``g_p'`` (47.1200, 47.1204).

        ``x`` is one sample ``(P, D)``. With the SymPy algebra the gradient
        vectors are the closed forms of Table 47.14 (exact at rational ``x``).
        """
        if x is None:
            if not self.linear:
                raise ValueError(f"Pool.operator needs the input x (one sample, (P, D)): {self.pool_kind} pooling "
                                 "is nonlinear")
            x = np.ones((self.P_in, self.in_maps))            # a linear pooling's g does not depend on x
        T = self.T
        owner = np.repeat(np.arange(T.P_out), T.sizes)                 # region of each row of col{g_p'}
        blocks = []
        for d in range(self.in_maps):
            if algebra is SCIPY:
                g = T.pool(np.asarray(x[:, d], dtype=np.float64))[1]
            else:
                from ..symbolic import gradient_vectors

                g = list(gradient_vectors(T, list(x[:, d]), mask=T.mask))
            U = algebra.matrix(np.arange(owner.size), owner, g, (T.P, T.P_out))   # upv, region order
            blocks.append(algebra.matmul(algebra.T(algebra.permutation(T)), U))  # permute# (47.1204)
        return algebra.block([[blocks[d] if e == d else algebra.zeros(T.P, T.P_out)
                               for e in range(self.in_maps)] for d in range(self.in_maps)])

    # ------------------------------------------------------------------ reference
    @staticmethod
    def reference(config, p, x):
        """Region by region over each map of one sample ``(D, *shape)`` (47.1187)."""
        x = np.asarray(x)
        D, shape = x.shape[0], x.shape[1:]
        regions, out_shape = _reference_regions(config, shape)
        kind = config["pool_kind"]
        out = np.empty((D, len(regions)), dtype=object if x.dtype == object else np.float64)
        for d in range(D):
            flat = np.reshape(x[d], -1, order="F")
            for q, region in enumerate(regions):
                vals = [flat[i] for i in region]
                out[d, q] = _pool_values(kind, vals, region, q, config)
        return np.stack([np.reshape(out[d], out_shape, order="F") for d in range(D)])

    # ------------------------------------------------------------------ description
    def config(self) -> dict:
        out = {"kind": self.kind, "pool_kind": self.pool_kind}
        T = getattr(self, "T", None) or self.pooling
        if self.pooling is not None:
            out["regions"] = [r.tolist() for r in self.pooling.regions]
            out["size"] = self.pooling.P
        else:
            out["window"] = list(self.window) if isinstance(self.window, tuple) else self.window
        opts = {k: v for k, v in self.options.items() if k != "rng"}
        if T is not None:                       # the resolved options, so a copy pools the same way
            if T.p is not None:
                opts["p"] = float(T.p)
            if T.mask is not None:
                opts["mask"] = np.asarray(T.mask).tolist()
            if T.retain is not None:
                opts["retain"] = np.asarray(T.retain).tolist()
        out.update({k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in opts.items()})
        return out

    @classmethod
    def from_config(cls, config):
        options = {k: v for k, v in config.items() if k not in ("kind", "pool_kind")}
        kind = config["pool_kind"]
        if "regions" in options:
            regions, size = options.pop("regions"), options.pop("size")
            for key in ("mask", "retain"):
                if key in options:
                    options[key] = np.asarray(options[key])
            return cls(kind, pooling=Pooling.from_regions(regions, size, kind=kind, **options))
        window = options.pop("window")
        for key in ("mask", "retain"):
            if key in options:
                options[key] = np.asarray(options[key])
        return cls(kind, tuple(window) if isinstance(window, list) else window, **options)

    def to_torch(self, p):
        from ..torch_bridge import pooling_module

        return pooling_module(self.T)


def _pool_values(kind, vals, region, q, config):
    if kind == "mean":
        return sum(vals) / len(vals) if not hasattr(vals[0], "free_symbols") else sum(vals) / len(vals)
    if kind == "max":
        if hasattr(vals[0], "free_symbols"):
            import sympy

            return sympy.Max(*vals)
        best = vals[0]
        for v in vals[1:]:
            best = v if v > best else best
        return best
    if kind in ("l2", "lp"):
        p = 2 if kind == "l2" else config["p"]
        if hasattr(vals[0], "free_symbols"):
            import sympy

            p = sympy.nsimplify(p)
            return sum(sympy.Abs(v) ** p for v in vals) ** (1 / p)
        return float(sum(abs(v) ** p for v in vals) ** (1.0 / p))
    if kind == "correlation":
        mask = np.asarray(config["mask"]).reshape(-1, order="F") if np.ndim(config["mask"]) > 1 else config["mask"]
        return sum(mask[i] * v for i, v in zip(region, vals))
    if kind == "subsample":
        return vals[int(config["retain"][q])]
    raise ValueError(f"unknown pooling kind {kind!r}")


def _reference_regions(config, shape):
    """The regions, column-stacked, from the window alone (or the given region lists)."""
    if "regions" in config:
        return [list(r) for r in config["regions"]], (len(config["regions"]),)
    nd = len(shape)
    window = config["window"]
    window = tuple(window) if isinstance(window, (list, tuple)) else (int(window),) * nd
    out_shape = tuple(n // w for n, w in zip(shape, window))
    strides_f = np.cumprod((1,) + tuple(shape[:-1]))
    regions = []
    for o in _column_major(out_shape):
        regions.append([int(np.dot([oi * w + ki for oi, ki, w in zip(o, k, window)], strides_f))
                        for k in _column_major(window)])
    return regions, out_shape


def _column_major(shape):
    for rev in itertools.product(*(range(n) for n in reversed(shape))):
        yield tuple(reversed(rev))
