"""Pooling layer: ``t(p') = pool(y(Omega_p'))`` for every map (47.1187, 47.1208).

forward ....... ``Pooling.pool`` on all maps and samples at once: ``(t, g)`` (47.1196)
vjp ........... ``permute#(upv(v, g))`` on a matrix with ``N D`` columns (47.1244, 47.1260)
vjp_literal ... the same chain map by map, as the listing of (47.1275) writes it
operator ...... ``T^T`` times the region-spreading matrix of the gradient vectors
                (47.1197-47.1204), block diagonal over maps
reference ..... region by region, from the window (or the region lists) alone

With a ``stride`` smaller than the window, or ``padding``, regions overlap or
reach outside the map, and T is no longer a permutation. The regions are then
the rows of a *pooling partition* ``V_pool`` (the sliding windows of
:meth:`Partition.sliding_window`, 47.1149), and the backward identity that
replaces ``permute#(upv(v, g))`` of (47.1204) is

    dy = V_pool^T col{v(p') g_p'}

a scatter-add of every region's spread gradient onto the entries it read:
an entry in several regions collects from each. For non-overlapping windows
``V_pool`` is the first rows of T and the two forms coincide. The layer
contract proves the identity exactly in SymPy on overlapping, padded cases.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..algebra import SCIPY
from ..partition import Partition
from ..pooling import KINDS, Pooling
from .base import Layer, register
from .global_pool import pool_values

#: Fused max pooling with at most this many outputs gathers its windows by a cached index, takes one
#: argmax, and writes the backward pass in one ``np.put``: fewer NumPy calls, which is what a small batch
#: pays for. Larger outputs keep the running maximum, whose cost follows the data rather than the calls
#: (an indexed write of 25,088 outputs took 0.69 ms against 0.05 ms for the per-offset products).
SMALL_POOL = 2048


@register
class Pool(Layer):
    """Pool every map over sliding windows or explicit regions (Tables 47.13-47.14).

    Windows tile the map by default (``stride = window``, the book's case, where T
    is a permutation); a smaller ``stride`` or a ``padding`` makes them overlap or
    reach outside the map, as PyTorch's pools do (see the module docstring for the
    pooling partition that then replaces T).

    Parameters
    ----------
    kind : str
        One of ``'mean'``, ``'max'``, ``'l2'``, ``'lp'``, ``'correlation'``, ``'subsample'``.
    window : int or tuple, optional
        The pooling window. Either ``window`` or ``pooling``.
    stride : int or tuple, optional
        The step between windows; default ``window`` (windows that tile the map).
    padding : int or tuple, default 0
        Zeros around the map (for ``'max'``, padded entries never win).
    count_include_pad : bool, default True
        For ``'mean'`` with padding: divide by the whole window (True, PyTorch's
        default) or by the entries inside the map.
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
    >>> overlapping = Network((4, 4), 1, [L.Pool("max", 3, stride=1)])
    >>> overlapping.forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0].tolist()
    [[10.0, 11.0], [14.0, 15.0]]
    """

    kind = "pool"
    prefix = "pool"
    equations = "47.1187, 47.1196, 47.1197-47.1204, 47.1244, 47.1260"

    def __init__(self, kind="max", window=None, *, stride=None, padding=0, count_include_pad=True, pooling=None,
                 name=None, **options):
        if not isinstance(kind, str):
            raise TypeError(f"kind must be a pooling kind name, got {type(kind).__name__}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if pooling is not None and not isinstance(pooling, Pooling):
            raise TypeError(f"pooling must be a Pooling, got {type(pooling).__name__}")
        if (pooling is None) == (window is None):
            raise ValueError("Pool needs exactly one of window=... (a window size) or pooling=... (a Pooling)")
        if pooling is not None and (stride is not None or padding != 0):
            raise ValueError("stride and padding describe windows; a Pooling over given regions takes neither")
        if not isinstance(count_include_pad, bool):
            raise TypeError(f"count_include_pad must be True or False, got {type(count_include_pad).__name__}")
        self.pool_kind = pooling.kind if pooling is not None else kind
        self.window, self.pooling, self.options, self.name = window, pooling, dict(options), name
        self.stride, self.padding, self.count_include_pad = stride, padding, count_include_pad

    @classmethod
    def examples(cls):
        """Small cases for the layer contract: every kind, ``(layer, in_maps, in_shape)``."""
        return [(cls("max", 2), 2, (4, 4)), (cls("mean", (2, 1)), 1, (4, 3)), (cls("l2", 2), 1, (4,)),
                (cls("lp", 3, p=3.0), 1, (6,)), (cls("correlation", 2, mask=[0.5, -1.0, 2.0, 1.5]), 1, (4,)),
                (cls("subsample", 2, retain=[1, 0]), 2, (4,)),
                (cls("max", pooling=Pooling.from_regions([[0, 3], [1, 2, 4]], 5)), 1, (5,)),
                (cls("max", (2, 3), drop_remainder=True), 2, (5, 7)), (cls("mean", 2), 1, (4, 2, 6)),
                # overlapping and padded windows: the pooling partition V_pool replaces T
                (cls("max", 3, stride=2, padding=1), 2, (5, 4)), (cls("mean", 2, stride=1), 1, (3, 3)),
                (cls("mean", 3, stride=2, padding=1, count_include_pad=False), 1, (5,)),
                (cls("l2", 2, stride=1), 1, (4,)), (cls("lp", 3, stride=2, padding=1, p=3.0), 1, (6,)),
                (cls("correlation", 2, stride=1, mask=[0.5, -1.0, 2.0, 1.5, 3.0]), 1, (5,)),
                (cls("subsample", (2, 2), stride=1, retain=[3, 0, 1, 2]), 1, (3, 3))]

    @property
    def linear(self) -> bool:
        """Mean, mask-weighted and subsampling pooling are linear maps; the others are not."""
        return self.pool_kind in ("mean", "correlation", "subsample")

    @property
    def sliding(self) -> bool:
        """True when windows overlap or are padded: the regions are a pooling partition, not a permutation."""
        return getattr(self, "V", None) is not None

    def _build(self) -> None:
        where = f"layer {self.name or self.prefix}"
        nd = len(self.in_shape)
        window = _per_axis(self.window, nd) if self.window is not None else None
        stride = _per_axis(self.stride, nd) if self.stride is not None else window
        padding = _per_axis(self.padding, nd)
        self.V = None
        self.fused = False
        if self.pooling is None and (stride != window or any(padding)):
            self._build_sliding(where, window, stride, padding)
            return
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
        # Max and mean over windows that tile the map run fused on strided views (no gather, no T):
        # the maps reshape into (window, block) axes, pooled in place. The T form stays the literal one.
        self.fused = (self.pooling is None and self.pool_kind in ("max", "mean") and T.window is not None
                      and len(T.window) == len(self.in_shape))
        self.out_maps, self.out_shape, self.out_vector = self.in_maps, T.output_shape, self.in_vector

    def _geometry(self, N: int, D: int) -> dict:
        """The fused path's shapes and axis orders for a batch of ``N`` samples of ``D`` maps, kept per shape."""
        cache = self.__dict__.setdefault("_fused_geometry", {})
        key = (N, D)
        if key not in cache:
            shape, window, nd = self.in_shape, self.T.window, len(self.in_shape)
            split = []
            for n, w in zip(reversed(shape), reversed(window)):
                split += [n // w, w]
            # blocks axes run (o_last, w_last, ..., o_first, w_first, N, D); the window offsets in row-major
            # order of the map's axes are w_first slowest ... w_last fastest
            to_window_last = tuple(range(0, 2 * nd, 2)) + (2 * nd, 2 * nd + 1) + tuple(range(2 * nd - 1, 0, -2))
            size = int(np.prod(window))
            cache[key] = dict(
                maps=tuple(reversed(shape)) + (N, D),                     # column-stacked: the last axis slowest
                cut=tuple(slice(0, (n // w) * w) for n, w in zip(reversed(shape), reversed(window))),
                blocks=tuple(split) + (N, D),
                offsets=[_offset_index(o, nd) for o in np.ndindex(*window)],
                tiled=all(n % w == 0 for n, w in zip(shape, window)),
                to_window_last=to_window_last, size=size)
        return cache[key]

    def _window_index(self, geo: dict, N: int, D: int) -> tuple:
        """``(index, base)``: where every window entry lies in the flattened ``(P, N, D)`` stack, a row per
        output and the window's offsets in row-major order; ``base`` is each row's start in ``index``."""
        if "index" not in geo:
            where = np.arange(self.P_in * N * D).reshape(geo["maps"])[geo["cut"]].reshape(geo["blocks"])
            geo["index"] = np.ascontiguousarray(where.transpose(geo["to_window_last"])).reshape(-1, geo["size"])
            geo["base"] = np.arange(geo["index"].shape[0], dtype=np.intp) * geo["size"]
        return geo["index"], geo["base"]

    def _blocks(self, x, geo):
        """``x`` (P, N, D) as a view ``(o_k, w_k, ..., o_1, w_1, N, D)`` over the tiled part of the map."""
        return x.reshape(geo["maps"])[geo["cut"]].reshape(geo["blocks"])

    def _fused_forward(self, x):
        P_out, N, D = self.T.P_out, x.shape[1], x.shape[2]
        geo = self._geometry(N, D)
        if self.pool_kind == "max" and P_out * N * D <= SMALL_POOL:
            # Few entries: the cost is the number of NumPy calls. Gather the windows side by side and take
            # argmax, which returns the first maximiser (PyTorch's tie rule); keep where each maximiser lies
            # in x, so that the backward pass is one indexed write.
            index, base = self._window_index(geo, N, D)
            which = np.take(x, index).argmax(axis=1)
            at = np.take(index, base + which)                                # flat positions in x
            return np.take(x, at).reshape(P_out, N, D), at
        blocks = self._blocks(x, geo)
        views = [blocks[index] for index in geo["offsets"]]                  # row-major window offsets
        if self.pool_kind == "mean":
            t = views[0].copy()
            for v in views[1:]:
                t += v
            t *= t.dtype.type(1.0 / len(views))
            return t.reshape(P_out, N, D), None
        # A running maximum over the window offsets in row-major order; an offset replaces the best so far
        # only when strictly larger, so ties keep the first maximiser (PyTorch's rule). ``which`` is updated
        # by arithmetic, not by a masked copy: a data-dependent mask costs a branch misprediction per entry.
        t = views[0].copy()
        which = np.zeros(t.shape, dtype=np.int8 if len(views) <= 127 else np.int32)
        step = np.empty_like(which)
        for k in range(1, len(views)):
            larger = np.greater(views[k], t)
            np.maximum(t, views[k], out=t)
            np.subtract(which.dtype.type(k), which, out=step)                # which = larger ? k : which
            np.multiply(step, larger, out=step)
            which += step
        return t.reshape(P_out, N, D), which

    def _fused_backward(self, x_shape, which, dt):
        if self.pool_kind == "max" and dt.size <= SMALL_POOL:   # ``which`` holds the maximisers' places in x
            dx = np.zeros(x_shape, dtype=dt.dtype)
            np.put(dx, which, dt)
            return dx
        geo = self._geometry(x_shape[1], x_shape[2])
        dx = (np.empty if geo["tiled"] else np.zeros)(x_shape, dtype=dt.dtype)   # a dropped remainder stays 0
        blocks = self._blocks(dx, geo)                                      # a view: writing it fills dx
        if self.pool_kind == "mean":
            share = dt.reshape(blocks[geo["offsets"][0]].shape) * dt.dtype.type(1.0 / geo["size"])
            for index in geo["offsets"]:
                blocks[index] = share
            return dx
        dt = dt.reshape(blocks[geo["offsets"][0]].shape)
        for k, index in enumerate(geo["offsets"]):                          # every entry written exactly once
            np.multiply(dt, which.reshape(dt.shape) == k, out=blocks[index])
        return dx

    def _build_sliding(self, where, window, stride, padding) -> None:
        for name, value in (("window", window), ("stride", stride)):
            if any(v < 1 for v in value):
                raise ValueError(f"{where}: {name} must be positive, got {value}")
        if any(p < 0 or 2 * p > w for p, w in zip(padding, window)):
            raise ValueError(f"{where}: padding must lie in [0, window // 2] on every axis (as in PyTorch), got "
                             f"padding {padding} for window {window}")
        if any(n + 2 * p < w for n, p, w in zip(self.in_shape, padding, window)):
            raise ValueError(f"{where}: window {window} is larger than the padded input {self.in_shape} "
                             f"(padding {padding})")
        unknown = set(self.options) - {"p", "mask", "retain", "rng"}
        if unknown:
            raise ValueError(f"{where}: options {sorted(unknown)} do not apply to overlapping or padded pooling")
        self.V = Partition.sliding_window(self.in_shape, window, stride=stride, padding=padding)
        self.T = None
        V, kind, opts = self.V, self.pool_kind, self.options
        self.valid = (V.indices.T >= 0)                                     # (S, P'): window entry inside the map
        self.p = None
        if kind == "lp":
            p = opts.get("p")
            if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
                raise TypeError(f"{where}: kind='lp' needs the exponent p (a number >= 1), got {p!r}")
            if not np.isfinite(p) or p < 1:
                raise ValueError(f"{where}: p must be a finite number >= 1, got {p}")
            self.p = float(p)
        elif kind == "l2":
            self.p = 2.0
        self.mask = None
        if kind == "correlation":
            mask = np.asarray(opts.get("mask"), dtype=np.float64) if opts.get("mask") is not None else None
            if mask is None or mask.size != V.M:
                raise ValueError(f"{where}: kind='correlation' needs mask=... with one coefficient per map entry "
                                 f"({V.M}), got {None if mask is None else mask.shape}")
            self.mask = mask.reshape(-1, order="F") if mask.ndim > 1 else mask
        self.retain = None
        if kind == "subsample":
            retain = opts.get("retain")
            if retain is None:
                retain = np.random.default_rng(opts.get("rng")).integers(0, V.S, V.P)
            retain = np.asarray(retain)
            if retain.shape != (V.P,) or not np.issubdtype(retain.dtype, np.integer) or retain.min() < 0 \
                    or retain.max() >= V.S:
                raise ValueError(f"{where}: retain must hold one window offset in [0, {V.S - 1}] per region "
                                 f"({V.P}), got {retain!r}")
            self.retain = retain.astype(np.int64)
        # torch's tie rule for max: the first maximiser in row-major (C) order of the window
        self.c_order = np.ravel_multi_index(np.unravel_index(np.arange(V.S), V.kernel_shape, order="C"),
                                            V.kernel_shape, order="F")
        self.out_maps, self.out_shape, self.out_vector = self.in_maps, V.output_shape, self.in_vector

    # ------------------------------------------------------------------ forward (47.1187, 47.1196)
    def forward(self, p, x):
        P, N, D = x.shape
        if self.fused:
            t, which = self._fused_forward(x)
            return t, (x, which)
        if self.sliding:
            H = self.V.gather(x)                                            # (S, P', N, D)
            t, g = self._slide(H)
            return t, g
        t, g = self.T.pool(x.reshape(P, N * D))
        return t.reshape(self.T.P_out, N, D), g

    def _slide(self, H):
        """Pool every window of the pooling partition: ``t`` (P', N, D) and ``g`` (S, P', N, D) (Table 47.14)."""
        kind, valid = self.pool_kind, self.valid[:, :, None, None]
        S = H.shape[0]
        if kind == "mean":
            count = S if self.count_include_pad else self.valid.sum(axis=0)[:, None, None]
            g = np.broadcast_to(valid / count, H.shape).astype(H.dtype)
            return (H * g).sum(axis=0), g
        if kind == "max":
            Hm = np.where(valid, H, -np.inf)
            first = np.argmax(Hm[self.c_order], axis=0)                     # first maximiser, row-major order
            best = self.c_order[first]
            t = np.take_along_axis(Hm, best[None], axis=0)[0]
            g = np.zeros_like(H)
            np.put_along_axis(g, best[None], 1.0, axis=0)
            return t, g
        if kind in ("l2", "lp"):
            q = self.p
            a = np.abs(H)
            m = a.max(axis=0)                                               # scale by the largest entry:
            safe = np.where(m > 0, m, 1.0)                                  # no overflow for large q
            t = m * ((a / safe) ** q).sum(axis=0) ** (1.0 / q)
            ratio = np.divide(a, t, out=np.zeros_like(a), where=t > 0)      # |y| / t <= 1
            return t, np.sign(H) * ratio ** (q - 1.0)                       # an all-zero region: g = 0
        if kind == "correlation":
            M = self.V.gather(self.mask.reshape(-1, 1, 1).astype(H.dtype))  # (S, P', 1, 1), 0 in the padding
            g = np.broadcast_to(M, H.shape).copy()
            return (H * g).sum(axis=0), g
        if kind == "subsample":
            g = np.zeros_like(H)
            g[self.retain, np.arange(H.shape[1])] = 1.0
            return H[self.retain, np.arange(H.shape[1])], g
        raise ValueError(f"unknown pooling kind {kind!r}")  # pragma: no cover

    # ------------------------------------------------------------------ backward (47.1244, 47.1260)
    def vjp(self, p, g, dt, *, need_input=True):
        if not need_input:
            return None, {}
        if self.sliding:                                                    # V_pool^T col{v(p') g_p'}
            return self.V.scatter_add(g * dt[None]), {}
        if self.fused:
            return self._fused_backward(g[0].shape, g[1], dt), {}
        P_out, N, D = dt.shape
        return self.T.backward(dt.reshape(P_out, N * D), g).reshape(self.T.P, N, D), {}

    def gradient_vectors(self, res) -> np.ndarray:
        """The gradient vectors ``col{g_p'}`` of (47.1196) from a forward residue.

        For regions (T): region order, columns ``n D + d`` as ``Pooling.pool``
        returns them. For overlapping windows: ``(S, P', N, D)``, offset-major.
        """
        if self.fused:
            x = res[0]
            return self.T.pool(x.reshape(x.shape[0], -1))[1]
        return res

    def vjp_literal(self, p, g, dt, *, need_input=True):
        """Map by map: ``permute#(upv(v^(d), g^(d)))`` (47.1244, 47.1260), as the listing writes it."""
        if not need_input:
            return None, {}
        P_out, N, D = dt.shape
        g = self.gradient_vectors(g)         # the literal form uses the gradient vectors of (47.1196)
        if self.sliding:
            # Map by map, the book's stacking: upv = col{v(p') g_p'} patch-major, then V_pool^T (the 47.1204 analogue).
            dx = np.empty((self.V.M, N, D), dtype=dt.dtype)
            for d in range(D):
                upv = (g[:, :, :, d] * dt[None, :, :, d]).transpose(1, 0, 2).reshape(-1, N)
                dx[:, :, d] = self.V.adjoint(upv)
            return dx, {}
        g3 = g.reshape(g.shape[0], N, D)
        dx = np.empty((self.T.P, N, D), dtype=dt.dtype)
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
        if self.sliding:
            return self._sliding_operator(x, algebra)
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

    def _sliding_operator(self, x, algebra):
        """Per map ``V_pool^T U``: ``U`` puts ``g_p'`` in rows ``p' S .. p' S + S - 1`` of column p'."""
        V = self.V
        rows = np.arange(V.P * V.S)
        cols = np.repeat(np.arange(V.P), V.S)
        blocks = []
        for d in range(self.in_maps):
            if algebra is SCIPY:
                H = V.gather(np.asarray(x[:, d], dtype=np.float64).reshape(-1, 1, 1))
                g = self._slide(H)[1][:, :, 0, 0].T.reshape(-1)             # patch-major
            else:
                g = self._sympy_gradients(list(x[:, d]))
            U = algebra.matrix(rows, cols, g, (V.P * V.S, V.P))
            blocks.append(algebra.matmul(algebra.T(algebra.partition(V)), U))
        return algebra.block([[blocks[d] if e == d else algebra.zeros(V.M, V.P)
                               for e in range(self.in_maps)] for d in range(self.in_maps)])

    def _sympy_gradients(self, x):
        """The gradient vectors of Table 47.14 in exact arithmetic, window by window (patch-major)."""
        import sympy

        V, kind, out = self.V, self.pool_kind, []
        for q in range(V.P):
            idx = V.indices[q]
            vals = [x[i] if i >= 0 else sympy.Integer(0) for i in idx]
            inside = [i >= 0 for i in idx]
            if kind == "mean":
                count = V.S if self.count_include_pad else sum(inside)
                out += [sympy.Rational(1, count) if ok else 0 for ok in inside]
            elif kind == "max":
                order = [s for s in self.c_order if inside[s]]
                best = max(order, key=lambda s: (vals[s], -list(order).index(s)))
                out += [sympy.Integer(int(s == best)) for s in range(V.S)]
            elif kind in ("l2", "lp"):
                q_ = sympy.nsimplify(self.p)
                t = sum(sympy.Abs(v) ** q_ for v in vals) ** (1 / q_)
                out += [sympy.sign(v) * sympy.Abs(v) ** (q_ - 1) / t ** (q_ - 1) if ok else 0
                        for v, ok in zip(vals, inside)]
            elif kind == "correlation":
                out += [sympy.nsimplify(self.mask[i]) if i >= 0 else 0 for i in idx]
            else:
                out += [sympy.Integer(int(s == self.retain[q])) for s in range(V.S)]
        return out

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
                out[d, q] = _pool_values(kind, [None if i is None else flat[i] for i in region], region, q, config)
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
        if self.stride is not None:
            out["stride"] = list(self.stride) if isinstance(self.stride, tuple) else self.stride
        if self.padding != 0:
            out["padding"] = list(self.padding) if isinstance(self.padding, tuple) else self.padding
        if not self.count_include_pad:
            out["count_include_pad"] = False
        opts = {k: v for k, v in self.options.items() if k != "rng"}
        if getattr(self, "V", None) is not None:    # overlapping windows: the resolved options
            if self.p is not None and self.pool_kind == "lp":
                opts["p"] = self.p
            if self.retain is not None:
                opts["retain"] = self.retain.tolist()
            if self.mask is not None:
                opts["mask"] = self.mask.tolist()
        elif T is not None:                     # the resolved options, so a copy pools the same way
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
        for key in ("stride", "padding"):
            if isinstance(options.get(key), list):
                options[key] = tuple(options[key])
        for key in ("mask", "retain"):
            if key in options:
                options[key] = np.asarray(options[key])
        return cls(kind, tuple(window) if isinstance(window, list) else window, **options)

    def to_torch(self, p):
        """``MaxPool``/``AvgPool``/``LPPool`` with the same window, stride and padding (where torch has one)."""
        from ..torch_modules import pooling_module

        if not self.sliding:
            return pooling_module(self.T)
        import torch

        V, n = self.V, len(self.in_shape)
        one = (lambda v: v[0]) if n == 1 else tuple                         # lp_pool1d wants plain ints
        geo = dict(kernel_size=one(V.kernel_shape), stride=one(tuple(V.geometry["stride"])))
        if self.pool_kind == "max":
            return getattr(torch.nn, f"MaxPool{n}d")(padding=V.geometry["padding"], **geo)
        if self.pool_kind == "mean":
            return getattr(torch.nn, f"AvgPool{n}d")(padding=V.geometry["padding"],
                                                     count_include_pad=self.count_include_pad, **geo)
        if self.pool_kind in ("l2", "lp") and not any(V.geometry["padding"]) and self.p % 2 == 0 and n <= 3:
            return getattr(torch.nn, f"LPPool{n}d")(self.p, **geo)          # even p: y^p = |y|^p
        raise NotImplementedError(f"{self.pool_kind} pooling with overlapping or padded windows has no PyTorch "
                                  "module (LPPool takes no padding and no |y| for odd p)")


def _offset_index(offset, nd):
    """Index of one window offset (row-major tuple over the map's axes) into the blocks view."""
    index = []
    for a in range(nd - 1, -1, -1):                                         # blocks axes run last map axis first
        index += [slice(None), offset[a]]
    return tuple(index)


def _pool_values(kind, vals, region, q, config):
    """One region's pooled value, summing directly; ``None`` marks a window entry in the padding."""
    inside = [v for v in vals if v is not None]
    if kind == "mean":
        count = len(vals) if config.get("count_include_pad", True) else len(inside)
        return sum(inside) / count
    if kind in ("max", "l2", "lp"):                # padded entries play no part (they never win a max)
        return pool_values(kind, inside, config.get("p"))
    if kind == "correlation":
        mask = np.asarray(config["mask"])
        mask = mask.reshape(-1, order="F") if mask.ndim > 1 else mask
        return sum(mask[i] * v for i, v in zip(region, vals) if v is not None)
    if kind == "subsample":
        v = vals[int(config["retain"][q])]
        return 0.0 if v is None else v
    raise ValueError(f"unknown pooling kind {kind!r}")


def _reference_regions(config, shape):
    """The regions, column-stacked, from window, stride and padding alone (``None``: outside the map)."""
    if "regions" in config:
        return [list(r) for r in config["regions"]], (len(config["regions"]),)
    nd = len(shape)
    window = _per_axis(config["window"], nd)
    stride = _per_axis(config["stride"], nd) if config.get("stride") is not None else window
    padding = _per_axis(config.get("padding", 0), nd)
    out_shape = tuple((n + 2 * p - w) // s + 1 for n, w, s, p in zip(shape, window, stride, padding))
    strides_f = np.cumprod((1,) + tuple(shape[:-1]))
    regions = []
    for o in _column_major(out_shape):
        region = []
        for k in _column_major(window):
            pos = [oi * s - p + ki for oi, ki, s, p in zip(o, k, stride, padding)]
            inside = all(0 <= c < n for c, n in zip(pos, shape))
            region.append(int(np.dot(pos, strides_f)) if inside else None)
        regions.append(region)
    return regions, out_shape


def _per_axis(value, nd):
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),) * nd


def _column_major(shape):
    for rev in itertools.product(*(range(n) for n in reversed(shape))):
        yield tuple(reversed(rev))
