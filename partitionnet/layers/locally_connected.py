"""Locally connected layer: a correlation whose mask changes with the position (unshared weights).

forward ....... V gathers every patch; one batched GEMM over positions: ``z(p) = sum_j h_{j,p}^T w_{j,p} - theta(p)``
vjp ........... batched GEMMs for dW and the input sensitivity, then one scatter-add ``V^T G``
vjp_literal ... the masked operator ``V_loc^(j,d)`` of (47.1257) generalised, per connected pair, one
                sample at a time for the gradients (the listing of 47.1275)
operator ...... the blocks ``V_loc^(j,d)`` in either algebra
reference ..... direct summation over positions and kernel offsets, with the position's own mask

The slides' "local connection" ("004:kinds of connectivity", see SOURCES.md):
the same partition V of the input maps as a :class:`~partitionnet.layers.Correlation`
(47.1149, 47.1152), but output position p uses its own mask ``w_{j,p}^(d)``.
The sharing of one mask across positions, which (47.1211-47.1212) assume, is
dropped; everything else is unchanged.

Derivation of the backprop operator
-----------------------------------
Write ``V_p`` for rows ``pS .. pS+S-1`` of V, so ``h_{j,p} = V_p x_j`` and
``z^(d)(p) = sum_j w_{j,p}^(d)T V_p x_j - theta^(d)(p)``. The gradient of
``z^(d)(p)`` with respect to ``x_j`` is ``V_p^T w_{j,p}^(d)``; stacking these
columns over p gives the transposed Jacobian block

    V_loc^(j,d) = [V_1^T w_{j,1}, ..., V_P^T w_{j,P}]
                = V^T blockdiag(w_{j,1}, ..., w_{j,P})
                = (V^T o (1_M col{w_{j,1}, ..., w_{j,P}}^T)) (I_P kron 1_S)

since ``blockdiag(w_1, ..., w_P) = diag(col{w_p}) (I_P kron 1_S)`` and a
diagonal scaling of the columns of ``V^T`` is a Hadamard product with
``1_M col{w_p}^T``. With one shared mask, ``col{w_p} = 1_P kron w`` and the
Hadamard factor becomes ``1_M 1_P^T kron w^T``: the form of (47.1257) is the
special case. The sensitivity of input map j is then
``sum_d V_loc^(j,d) delta^(d)``, the analogue of (47.1258)/(47.1262). The
layer contract checks this operator against the symbolic Jacobian of the
direct-summation reference, exactly, in SymPy.

Parameters (one mask per output position, the book's layout of 47.1221-47.1224 per position):

* ``W`` has shape ``(P, S D_in, D)``: ``W[p]`` is a ``W_c`` of its own, row
  ``j S + s`` of column d holding ``w_{j,p}^(d)(s)``;
* ``Theta`` has shape ``(P, D)``: one bias per output position and output map,
  entering with the book's minus sign (as Keras' and JAX's locally connected
  layers, which also give every position its own bias).

Semantics follow ``jax.lax.conv_general_dilated_local`` (unshared
correlation, window strides, padding, and rhs (kernel) dilation); only the
weight layout differs (:func:`weights_from_jax` converts).
"""
from __future__ import annotations

import itertools
import numbers

import numpy as np
import scipy.sparse as sp

from .. import _validate as val
from ..algebra import SCIPY
from ..partition import Partition
from .base import Layer, register

__all__ = ["LocallyConnected", "local_backprop_operator", "weights_from_jax"]


class _Unshared(Layer):
    """Shared machinery of the layers whose masks vary with the output position.

    A subclass sets ``self.slot`` (shape ``(P,)``): the weight slot used at
    each output position (column-stacked). :class:`LocallyConnected` uses one
    slot per position; a tiled correlation repeats a few slots periodically.
    """

    linear = True

    def _init_geometry(self, maps, kernel, stride, padding, dilation, name):
        self.maps = val.as_positive_int(maps, "maps")
        if kernel is None:
            raise ValueError(f"{type(self).__name__} needs kernel=... (the window shape)")
        for arg, value in (("kernel", kernel), ("stride", stride), ("dilation", dilation)):
            if isinstance(value, bool) or not isinstance(value, (numbers.Integral, tuple, list, np.ndarray)):
                raise TypeError(f"{arg} must be an int or a tuple of ints (one per axis), got "
                                f"{type(value).__name__} {value!r}")
        if isinstance(padding, bool) or not isinstance(padding, (numbers.Integral, tuple, list, str, np.ndarray)):
            raise TypeError(f"padding must be an int, a tuple, or one of 'valid', 'same', 'full', got "
                            f"{type(padding).__name__} {padding!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type(name).__name__}")
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation
        self.name = name

    # ------------------------------------------------------------------ build
    def _build_partition(self) -> None:
        where = f"layer {self.name or self.prefix}"
        try:
            self.V = Partition.sliding_window(self.in_shape, self.kernel, stride=self.stride,
                                              padding=self.padding, dilation=self.dilation)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{where}: {exc}") from None
        self.out_maps, self.out_shape, self.out_vector = self.maps, self.V.output_shape, False

    @property
    def S(self) -> int:
        return self.V.S

    @property
    def slots(self) -> int:
        """The number of distinct masks (``P`` for a locally connected layer, ``T`` for a tiled one)."""
        return int(self.slot.max()) + 1

    def _slot_sum(self, per_position: np.ndarray) -> np.ndarray:
        """Sum per-position arrays ``(P, ...)`` into their slots ``(slots, ...)`` (one sparse product)."""
        if self.slots == self.P_out:
            return per_position
        P = self.P_out
        A = sp.csr_array((np.ones(P, dtype=per_position.dtype), (self.slot, np.arange(P))), shape=(self.slots, P))
        return (A @ per_position.reshape(P, -1)).reshape((self.slots,) + per_position.shape[1:])

    # ------------------------------------------------------------------ parameters
    def parameter_shapes(self) -> dict:
        return {"W": (self.slots, self.S * self.in_maps, self.maps), "Theta": (self.slots, self.maps)}

    def init_parameters(self, rng: np.random.Generator) -> dict:
        """Weights normal with variance 1/fan-in (``S D_in``), biases 0."""
        shapes = self.parameter_shapes()
        W = rng.standard_normal(shapes["W"]) / np.sqrt(self.S * self.in_maps)
        return {"W": W, "Theta": np.zeros(shapes["Theta"])}

    def position_weights(self, W: np.ndarray) -> np.ndarray:
        """The mask of every output position, ``(P, S D_in, D)`` (``W`` itself when every position has its own)."""
        return W if self.slots == self.P_out else W[self.slot]

    def _patch_rows(self, H: np.ndarray) -> np.ndarray:
        """``H[s, p, n, j]`` as ``(P, N, D_in S)``: column ``j S + s`` is ``h_{j,p}(s)``, W's row order."""
        S, P, N, D_in = H.shape
        return H.transpose(1, 2, 3, 0).reshape(P, N, D_in * S)

    # ------------------------------------------------------------------ forward
    def forward(self, p, x):
        """``z^(d)(p) = sum_j h_{j,p}^T w_{j,p}^(d) - theta^(d)(p)``: one GEMM per position, batched."""
        rows = self._patch_rows(self.V.gather(x))                              # (P, N, D_in S)
        z = np.matmul(rows, self.position_weights(p["W"]))                     # (P, N, D)
        z -= self.position_weights(p["Theta"])[:, None, :]
        return z, rows

    # ------------------------------------------------------------------ fast backward
    def vjp(self, p, rows, dz, *, need_input=True):
        """``dW_p = sum_n h_{n,p} delta_n(p)^T``, ``dTheta_p = -sum_n delta_n(p)``, and ``V^T G``.

        ``G`` holds, per position, ``W_p delta(p)`` split by kernel offset; the
        scatter-add ``V^T G`` sums ``sum_d V_loc^(j,d) delta^(d)`` for all j at once.
        """
        dW = self._slot_sum(np.matmul(rows.transpose(0, 2, 1), dz))            # (slots, D_in S, D)
        grads = {"W": dW, "Theta": self._slot_sum(-dz.sum(axis=1))}
        if not need_input:
            return None, grads
        P, N, _ = dz.shape
        Wp = self.position_weights(p["W"])
        G = np.matmul(dz, Wp.transpose(0, 2, 1))                               # (P, N, D_in S)
        G = G.reshape(P, N, self.in_maps, self.S).transpose(3, 0, 1, 2)        # (S, P, N, D_in)
        return self.V.scatter_add(np.ascontiguousarray(G)), grads

    # ------------------------------------------------------------------ literal backward
    def vjp_literal(self, p, rows, dz, *, need_input=True):
        """The operator form: ``dx_j = sum_d V_loc^(j,d) delta^(d)`` (47.1257-47.1258, a mask per patch).

        The gradients follow (47.1271) and (47.1274) one sample at a time, as
        the listing of (47.1275) does: position p's mask receives
        ``h_{n,p} delta_n(p)^T`` (the p-th diagonal block of
        ``(1^T kron H_n) Delta_n``), its bias ``-delta_n(p)``.
        """
        P, N, D = dz.shape
        dWp = np.zeros((P, self.S * self.in_maps, D), dtype=dz.dtype)
        dThetap = np.zeros((P, D), dtype=dz.dtype)
        for n in range(N):
            dWp += rows[:, n, :, None] * dz[:, n, None, :]                     # (47.1271), per position
            dThetap -= dz[:, n, :]                                             # (47.1274)
        dW = np.zeros((self.slots,) + dWp.shape[1:], dtype=dz.dtype)
        dTheta = np.zeros((self.slots, D), dtype=dz.dtype)
        np.add.at(dW, self.slot, dWp)                                          # a tile collects its positions
        np.add.at(dTheta, self.slot, dThetap)
        grads = {"W": dW, "Theta": dTheta}
        if not need_input:
            return None, grads
        Wp = self.position_weights(p["W"])
        S = self.S
        dx = np.zeros((self.V.M, N, self.in_maps), dtype=dz.dtype)
        for j in range(self.in_maps):
            for d in range(D):
                op = local_backprop_operator(self.V, Wp[:, j * S:(j + 1) * S, d])
                dx[:, :, j] += op @ dz[:, :, d]                                # (47.1258), masked per patch
        return dx, grads

    # ------------------------------------------------------------------ explicit operator
    def operator(self, p, x=None, *, algebra=SCIPY):
        """``J^T``: block ``(j, d)`` is ``V_loc^(j,d) = (V^T o (1_M col{w_{j,p}^(d)}^T)) (I_P kron 1_S)``."""
        Wp = self.position_weights(np.asarray(p["W"]))
        S = self.S
        blocks = [[local_backprop_operator(self.V, Wp[:, j * S:(j + 1) * S, d], algebra)
                   for d in range(self.maps)] for j in range(self.in_maps)]
        return algebra.block(blocks)

    # ------------------------------------------------------------------ description
    def _geometry_config(self) -> dict:
        V = getattr(self, "V", None)
        if V is not None:                               # built: the resolved geometry
            g = V.geometry
            return {"kernel": _plain(g["kernel"]), "stride": _plain(g["stride"]),
                    "padding": _plain(g["padding"]), "dilation": _plain(g["dilation"])}
        return {"kernel": _plain(self.kernel), "stride": _plain(self.stride), "padding": _plain(self.padding),
                "dilation": _plain(self.dilation)}

    @staticmethod
    def _options_from_config(config) -> dict:
        options = {k: v for k, v in config.items() if k != "kind"}
        for key in ("kernel", "stride", "padding", "dilation", "tiles"):
            if isinstance(options.get(key), list):
                options[key] = tuple(tuple(v) if isinstance(v, list) else v for v in options[key])
        return options


@register
class LocallyConnected(_Unshared):
    """A locally connected layer: a sliding-window correlation with a different mask at every position.

    Parameters
    ----------
    maps : int
        ``D``, the number of output maps.
    kernel, stride, padding, dilation
        The window geometry, as for :class:`~partitionnet.layers.Correlation`
        (:meth:`Partition.sliding_window`).
    name : str, optional
        The layer's name in a network (default ``local<k>``).

    Notes
    -----
    ``W`` is ``(P, S D_in, D)`` and ``Theta`` is ``(P, D)``: position p
    computes ``z^(d)(p) = sum_j h_{j,p}^T W[p, jS:(j+1)S, d] - Theta[p, d]``.
    The backprop operator is (47.1257) with the mask of patch p in place of
    the shared mask (derivation in the module docstring). PyTorch has no
    locally connected module (pytorch/pytorch issue #499), so
    :meth:`to_torch` raises ``NotImplementedError``.

    Examples
    --------
    >>> import numpy as np
    >>> from partitionnet import Network, layers as L
    >>> net = Network((5, 4), 2, [L.LocallyConnected(3, kernel=2, stride=(1, 2))], rng=0)
    >>> dict(net.parameter_shapes())
    {'local1.W': (8, 8, 3), 'local1.Theta': (8, 3)}
    >>> net.forward(np.ones((6, 2, 5, 4))).shape
    (6, 3, 4, 2)
    """

    kind = "locally_connected"
    prefix = "local"
    equations = "47.1149, 47.1152, 47.1211-47.1212, 47.1257-47.1258, 47.1271, 47.1274"

    def __init__(self, maps, *, kernel=None, stride=1, padding=0, dilation=1, name=None):
        self._init_geometry(maps, kernel, stride, padding, dilation, name)

    @classmethod
    def examples(cls):
        """Small cases for the layer contract: ``(layer, in_maps, in_shape)``."""
        return [(cls(2, kernel=2), 1, (3, 3)),
                (cls(2, kernel=2, stride=2, padding=1, dilation=2), 2, (5,)),
                (cls(1, kernel=(2, 1), stride=(1, 2), padding=(1, 0)), 2, (3, 3)),
                (cls(1, kernel=2, padding="full"), 1, (2, 1, 2)),
                (cls(2, kernel=2, stride=2, padding="same"), 1, (5,)),
                (cls(1, kernel=(2, 3), padding=((1, 0), (0, 2))), 1, (3, 2))]

    def _build(self) -> None:
        self._build_partition()
        self.slot = np.arange(self.V.P)

    @staticmethod
    def reference(config, p, x):
        """Direct summation with the position's own mask (never V):

        ``z^(d)(o) = sum_j sum_k W[q(o), j S + s(k), d] x_j(o * stride - pad + k * dil) - Theta[q(o), d]``,
        ``q(o)`` the column-stacked index of output position o.
        """
        return _reference_unshared(config, p, x, lambda coords, out_shape: _column_index(coords, out_shape))

    def config(self) -> dict:
        return {"kind": self.kind, "maps": self.maps, **self._geometry_config()}

    @classmethod
    def from_config(cls, config):
        return cls(**cls._options_from_config(config))

    def to_torch(self, p):
        raise NotImplementedError(f"layer {self.name or self.prefix}: PyTorch has no locally connected layer "
                                  "(pytorch/pytorch issue #499)")


# ---------------------------------------------------------------------- the operator, written once
def local_backprop_operator(partition: Partition, masks, algebra=SCIPY):
    """``V_loc = (V^T o (1_M col{w_1, ..., w_P}^T)) (I_P kron 1_S)``: (47.1257) with a mask per patch.

    ``masks`` is ``(P, S)``: row p is the mask ``w_p`` applied to patch p
    (the rows ``pS .. pS+S-1`` of ``V``). The result is ``M x P`` and maps
    an output sensitivity back onto the input map. When every row of
    ``masks`` is the same ``w`` it equals the correlation's
    ``backprop_operator(partition, w)``.

    >>> import numpy as np
    >>> V = Partition.sliding_window(4, 2)
    >>> local_backprop_operator(V, np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])).toarray()
    array([[ 1.,  0.,  0.],
           [10.,  2.,  0.],
           [ 0., 20.,  3.],
           [ 0.,  0., 30.]])
    """
    xp = algebra
    masks = np.asarray(masks)
    if masks.shape != (partition.P, partition.S):
        raise ValueError(f"masks must have shape (P, S) = {(partition.P, partition.S)}, got {masks.shape}")
    VT = xp.T(xp.partition(partition))                                          # M x P S
    masked = xp.hadamard_ones_kron(VT, partition.M, 1, list(masks.reshape(-1)))  # o (1_M col{w_p}^T)
    return xp.matmul(masked, xp.kron(xp.eye(partition.P), xp.ones(partition.S, 1)))   # (I_P kron 1_S)


def weights_from_jax(rhs: np.ndarray, kernel_shape) -> np.ndarray:
    """Convert a ``conv_general_dilated_local`` kernel (default ``'OIHW'`` numbers) to ``W`` of shape (P, S D_in, D).

    JAX's ``rhs`` is ``(D, D_in * prod(kernel), *out_shape)``, its second axis
    input-map major, then the window offsets in row-major order; ``W`` lists
    positions column-stacked and window offsets column-stacked.

    >>> rhs = np.arange(2 * 4 * 3 * 1.0).reshape(2, 4, 3, 1)       # D=2, D_in=1, kernel (2, 2), out (3, 1)
    >>> weights_from_jax(rhs, (2, 2)).shape
    (3, 4, 2)
    """
    rhs = np.asarray(rhs)
    kernel_shape = tuple(int(k) for k in kernel_shape)
    D, IK = rhs.shape[:2]
    out_shape = rhs.shape[2:]
    S = int(np.prod(kernel_shape))
    if IK % S or len(out_shape) != len(kernel_shape):
        raise ValueError(f"rhs of shape {rhs.shape} does not fit kernel_shape {kernel_shape}")
    D_in = IK // S
    k = rhs.reshape((D, D_in) + kernel_shape + out_shape)
    nd = len(kernel_shape)
    # axes: d, j, kernel (C order) ..., out ...; reorder to out (F), j, kernel (F), d
    k = np.transpose(k, tuple(range(2 + 2 * nd - 1, 2 + nd - 1, -1)) + (1,)
                     + tuple(range(2 + nd - 1, 1, -1)) + (0,))
    P = int(np.prod(out_shape))
    return k.reshape(P, D_in * S, D)


# ---------------------------------------------------------------------- direct summation (no V)
def _reference_unshared(config, p, x, slot_of):
    """``z^(d)(o) = sum_j sum_k W[slot(o), j S + s(k), d] x_j(window entry) - Theta[slot(o), d]``."""
    x = np.asarray(x)
    D_in, in_shape = x.shape[0], x.shape[1:]
    nd = len(in_shape)
    kernel = _per_axis(config["kernel"], nd)
    stride = _per_axis(config.get("stride", 1), nd)
    dilation = _per_axis(config.get("dilation", 1), nd)
    before, after = _padding_pairs(config.get("padding", 0), kernel, dilation, stride, in_shape)
    out_shape = tuple((n + b + a - dl * (k - 1) - 1) // s + 1
                      for n, k, s, b, a, dl in zip(in_shape, kernel, stride, before, after, dilation))
    W, Theta = np.asarray(p["W"]), np.asarray(p["Theta"])
    D = W.shape[2]
    S = int(np.prod(kernel))
    symbolic = x.dtype == object or W.dtype == object
    z = np.empty((D,) + out_shape, dtype=object if symbolic else np.float64)
    for o in _column_major(out_shape):
        q = slot_of(o, out_shape)
        for d in range(D):
            acc = 0
            for s, k in enumerate(_column_major(kernel)):
                pos = tuple(oi * st - b + ki * dl for oi, ki, st, b, dl in zip(o, k, stride, before, dilation))
                if all(0 <= c < n for c, n in zip(pos, in_shape)):
                    for j in range(D_in):
                        acc = acc + W[q, j * S + s, d] * x[(j,) + pos]
            z[(d,) + o] = acc - Theta[q, d]
    return z


def _padding_pairs(padding, kernel, dilation, stride, in_shape):
    """``(before, after)`` per axis from an int, per-axis ints, per-axis pairs, or a mode name.

    ``'same'`` follows TensorFlow: ``ceil(n / stride)`` outputs, the total
    padding split with the odd zero after.
    """
    nd = len(in_shape)
    if isinstance(padding, str):
        extent = [dl * (k - 1) for k, dl in zip(kernel, dilation)]
        if padding == "valid":
            return (0,) * nd, (0,) * nd
        if padding == "full":
            return tuple(extent), tuple(extent)
        if padding == "same":
            total = [max((-(-n // s) - 1) * s + e + 1 - n, 0) for n, s, e in zip(in_shape, stride, extent)]
            return tuple(t // 2 for t in total), tuple(t - t // 2 for t in total)
        raise ValueError(f"unknown padding {padding!r}")
    if isinstance(padding, (list, tuple)):
        pairs = [tuple(v) if isinstance(v, (list, tuple)) else (v, v) for v in padding]
        if len(pairs) == 1 and nd > 1:
            pairs = pairs * nd
        return tuple(int(b) for b, _ in pairs), tuple(int(a) for _, a in pairs)
    return (int(padding),) * nd, (int(padding),) * nd


def _per_axis(value, nd):
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value) if len(value) == nd else (int(value[0]),) * nd
    return (int(value),) * nd


def _column_major(shape):
    """Multi-indices of ``shape`` with the first axis varying fastest (column stacking)."""
    for rev in itertools.product(*(range(n) for n in reversed(shape))):
        yield tuple(reversed(rev))


def _column_index(coords, shape) -> int:
    q, step = 0, 1
    for c, n in zip(coords, shape):
        q += c * step
        step *= n
    return q


def _plain(value):
    """JSON-ready: tuples and arrays as lists, numpy ints as ints."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value
