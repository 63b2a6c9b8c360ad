"""Correlation layer: ``z^(d) = sum_j (H_j^T w_j^(d) - theta^(d)(j) 1)`` (47.1212).

forward ....... V gathers every patch, offset-major; one GEMM per kernel offset (47.1211-47.1212)
vjp ........... dW (47.1271), dTheta (47.1274), and the input sensitivity ``V^T G``
                without forming any ``V^(d,d')`` (the sum of 47.1262)
vjp_literal ... ``V^(d,d',c+1)`` per connected pair (47.1257-47.1258) and ``Delta_n`` (47.1270-47.1271)
operator ...... the blocks ``V^(d,d')`` of (47.1257), in either algebra
reference ..... direct summation over positions and kernel offsets (Eq. 8.12 of source 001)

Parameters, in the book's shapes (47.1221-47.1224):

* ``W`` is ``W_c`` (``S D_in x D``): column ``d`` is
  ``W^(d) = col{w_1^(d), ..., w_{D_in}^(d)}``, each ``w`` the vec of a window;
* ``Theta`` is ``Theta_c`` (``D_in x D``, one bias per input map, 47.1224b), or
  ``1 x D`` with ``bias='tied'``. With ``'per_input'`` only the column sums
  ``sum_j theta^(d)(j)`` enter ``z``: the individual biases are not
  identifiable, and all of them receive the same gradient.

A connection table (47.1213) leaves some (input, output) pairs unconnected;
their weights and biases are structural zeros (:meth:`Correlation.structural_mask`).

``groups=g`` (as in PyTorch) is the connection table in which output map ``d``
sees only the ``D_in/g`` input maps of its own group (``d // (D/g)`` is the
group of output map ``d``, ``j // (D_in/g)`` that of input map ``j``); ``g =
D_in`` is a depthwise layer. It is stored compactly, without the structural
zeros: ``W`` is ``S D_in/g x D`` and row ``j' S + s`` of column ``d`` holds
``w_j^(d)(s)`` for the ``j'``-th input map ``j`` of ``d``'s group; with
``bias='per_input'`` ``Theta`` is ``D_in/g x D`` in the same order.
"""
from __future__ import annotations

import functools
import itertools
import numbers
from typing import Sequence

import numpy as np
import scipy.linalg.blas
import scipy.sparse as sp

from .. import _validate as val
from ..algebra import SCIPY
from ..layout import kernel_to_torch
from .._windows import padding_pairs
from ..partition import Partition
from .base import Layer, register
from .shifted import ShiftedWindows
from .single_sample import SampleWindows

BIAS_MODES = ("per_input", "tied")
#: BLAS GEMMs that accumulate into their output, by dtype (see correlate_patches).
_GEMM = {np.float32: scipy.linalg.blas.sgemm, np.float64: scipy.linalg.blas.dgemm}
#: The strided single-GEMM path is taken when ``D >= STRIDED_RATIO * D_in`` (measured: 3 -> 32 maps on
#: 32x32 gains 25-35%; 8 -> 16 and 32 -> 64 maps are as fast or slower than one GEMM per kernel offset).
STRIDED_RATIO = 4
#: The shifted path computes ``span / P`` rows per output position (the padding columns between map
#: columns ride along); above this ratio the layer keeps its gathered patches instead.
MAX_SHIFT_OVERHEAD = 1.5


@register
class Correlation(Layer):
    """A correlation layer over a partition of its input maps (47.1205-47.1213).

    Parameters
    ----------
    maps : int
        ``D``, the number of output maps.
    kernel, stride, padding, dilation
        Geometry of a sliding-window partition of each input map
        (:meth:`Partition.sliding_window`). Ignored when ``partition`` is given.
        ``padding`` takes an int, one int or one ``(before, after)`` pair per
        axis, or ``'valid'``, ``'full'``, ``'same'``. ``'same'`` gives
        ``ceil(n/stride)`` positions for any kernel: the total padding
        ``max((out-1)*stride + dilation*(kernel-1) + 1 - n, 0)`` is split as in
        TensorFlow, the smaller half before, so an odd total puts the extra
        zero *after* the map (as PyTorch's ``padding='same'`` and
        ``scipy.signal.correlate2d(..., 'same')`` do;
        ``scipy.signal.correlate(..., 'same')`` puts it before).
    partition : Partition, optional
        Any partition of the input maps, for example an unstructured one.
    connections : optional
        The connection table (47.1213): a boolean (or 0/1) array of shape
        ``(D, D_in)``, ``connections[d, j]`` true when input map ``j`` feeds
        output map ``d``; or a list holding, for every output map, the list of
        its input maps (0-based). Default: every pair is connected.
    groups : int, default 1
        Grouped correlation as in PyTorch: input and output maps split into
        ``groups`` consecutive groups, output group ``g`` reading input group
        ``g`` only; ``groups = D_in`` is depthwise. A structured connection
        table (47.1213) stored compactly (see the module docstring for the
        layout of ``W``). Must divide both map counts; not combined with
        ``connections``.
    bias : {'per_input', 'tied'}
        One bias per (input, output) pair as in (47.1224b), or one per output map.
    name : str, optional
        The layer's name in a network (default ``conv<k>``).

    Examples
    --------
    >>> import numpy as np
    >>> from partitionnet import Network, layers as L
    >>> net = Network((5, 5), 2, [L.Correlation(3, kernel=3, padding="same")], rng=0)
    >>> net.forward(np.ones((4, 2, 5, 5))).shape
    (4, 3, 5, 5)
    >>> dict(net.parameter_shapes())
    {'conv1.W': (18, 3), 'conv1.Theta': (2, 3)}

    A depthwise layer (each of 4 maps filtered on its own), padded by one zero
    before and two after along the single axis:

    >>> net = Network((6,), 4, [L.Correlation(4, kernel=3, padding=((1, 2),), groups=4)], rng=0)
    >>> net.forward(np.ones((1, 4, 6))).shape, dict(net.parameter_shapes())["conv1.W"]
    ((1, 4, 7), (3, 4))
    """

    kind = "correlation"
    prefix = "conv"
    equations = "47.1205-47.1213, 47.1250-47.1258, 47.1265-47.1274"

    def __init__(self, maps, *, kernel=None, stride=1, padding=0, dilation=1, partition=None,
                 connections=None, groups=1, bias="per_input", name=None):
        self.maps = val.as_positive_int(maps, "maps")
        self.groups = val.as_positive_int(groups, "groups")
        if self.groups > 1 and connections is not None:
            raise ValueError(f"groups={self.groups} is itself a connection table; pass either groups or "
                             "connections, not both")
        if self.maps % self.groups:
            raise ValueError(f"groups={self.groups} must divide the number of output maps (maps={self.maps})")
        if partition is not None and not isinstance(partition, Partition):
            raise TypeError(f"partition must be a Partition, got {type(partition).__name__}")
        if partition is None and kernel is None:
            raise ValueError("Correlation needs either kernel=... (a sliding window) or partition=...")
        if not isinstance(bias, str):
            raise TypeError(f"bias must be a string, one of {BIAS_MODES}, got {type(bias).__name__}")
        if bias not in BIAS_MODES:
            raise ValueError(f"bias must be one of {BIAS_MODES}, got {bias!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type(name).__name__}")
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation
        self.partition = partition
        self.connections = connections
        self.bias = bias
        self.name = name

    linear = True

    @classmethod
    def examples(cls):
        """Small cases for the layer contract: ``(layer, in_maps, in_shape)``."""
        return [(cls(2, kernel=2), 2, (3, 3)),
                (cls(2, kernel=3, stride=2, padding=1, bias="tied"), 1, (5, 4)),
                (cls(2, kernel=2, dilation=2, padding="full", connections=[[0], [0, 1]]), 2, (4,)),
                (cls(2, partition=Partition.from_indices([[0, 2], [1, 0], [3, 3]], 4)), 1, (4,)),
                (cls(4, kernel=(2, 1), padding=((0, 1), 1), groups=2), 2, (2, 2)),
                (cls(2, kernel=2, stride=2, padding="same", groups=2, bias="tied"), 2, (3,)),
                (cls(3, kernel=2, dilation=(1, 2), padding="same", groups=3), 3, (2, 3)),
                (cls(2, kernel=2, groups=2), 2, (2, 2, 2))]

    # ------------------------------------------------------------------ build
    def _build(self) -> None:
        where = f"layer {self.name or self.prefix}"
        size = self.P_in
        if self.partition is not None:
            V = self.partition
            if V.M != size:
                raise ValueError(f"{where}: partition partitions a vector of size M={V.M}, but the layer "
                                 f"receives maps of shape {self.in_shape} (size {size})")
        else:
            try:
                V = Partition.sliding_window(self.in_shape, self.kernel, stride=self.stride,
                                             padding=self.padding, dilation=self.dilation)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{where}: {exc}") from None
        self.V = V
        if self.in_maps % self.groups:
            raise ValueError(f"{where}: groups={self.groups} must divide both the number of input maps "
                             f"({self.in_maps}) and of output maps ({self.maps})")
        if self.groups > 1:
            self.table = group_table(self.maps, self.in_maps, self.groups)
        else:
            self.table = connection_table(self.connections, self.maps, self.in_maps, where)
        self.out_maps, self.out_shape, self.out_vector = self.maps, V.output_shape, False
        # Few input maps feeding many output maps (the first layers of a network): one GEMM over
        # strided-view patches beats S thin GEMMs whose (P N) x D outputs are summed (see forward).
        few_inputs = self.groups == 1 and 1 < self.in_maps and self.maps >= STRIDED_RATIO * self.in_maps
        self.strided = StridedWindows.of(V) if few_inputs else None
        # Stride-1 windows over several input maps: S GEMMs on shifted slices of the padded maps, with no
        # patches gathered (see shifted.py). One input map keeps its single im2col GEMM.
        shifted = ShiftedWindows.of(V) if self.strided is None and self.groups == 1 and self.in_maps > 1 else None
        self.shifted = shifted if shifted is not None and shifted.overhead <= MAX_SHIFT_OVERHEAD else None
        # One sample: im2col and col2im by index (single_sample.py), a handful of NumPy calls per pass.
        single = SampleWindows(V) if self.groups == 1 else None
        self.single = single if single is not None and single.adjoint is not None else None

    @property
    def S(self) -> int:
        return self.V.S

    @property
    def group_in(self) -> int:
        """``D_in / groups``: the input maps that feed one output map (all of them without groups)."""
        return self.in_maps // self.groups

    # ------------------------------------------------------------------ parameters
    def parameter_shapes(self) -> dict:
        rows = self.group_in if self.bias == "per_input" else 1
        return {"W": (self.S * self.group_in, self.maps), "Theta": (rows, self.maps)}

    def structural_mask(self, parameter: str):
        """Row ``j*S + s`` of column ``d`` of ``W`` (and ``Theta[j, d]``) exist iff map j feeds map d (47.1213).

        A grouped layer stores only the connected pairs: nothing is masked.
        """
        if self.groups > 1 or self.table.all():
            return None
        if parameter == "W":
            return np.repeat(self.table.T, self.S, axis=0)
        if parameter == "Theta" and self.bias == "per_input":
            return self.table.T.copy()
        return None

    def init_parameters(self, rng: np.random.Generator) -> dict:
        """Weights normal with variance 1/fan-in (per output map), biases 0."""
        fan_in = self.S * self.table.sum(axis=1)
        W = rng.standard_normal(self.parameter_shapes()["W"]) / np.sqrt(np.maximum(fan_in, 1))
        return {"W": W, "Theta": np.zeros(self.parameter_shapes()["Theta"])}

    def kernels(self, W: np.ndarray) -> np.ndarray:
        """``W_c`` rearranged as ``K[s, j', d] = w_j^(d)(s)`` (kernel offset first; ``j'`` within d's group)."""
        return W.reshape(self.group_in, self.S, self.maps).transpose(1, 0, 2)

    def bias_sums(self, Theta: np.ndarray) -> np.ndarray:
        """``sum_j theta^(d)(j)`` for every output map d: the constant of (47.1212)."""
        if Theta.shape[0] == 1:                      # a tied bias: its one row is the sum
            return Theta[0]
        if self.bias == "tied" or self.groups > 1:
            return Theta.sum(axis=0)
        return (Theta * self.table.T).sum(axis=0)

    def _mask(self, W, j: int, d: int):
        """The mask ``w_j^(d)`` (S entries) of the connected pair (input map j, output map d)."""
        r = j % self.group_in
        return W[r * self.S:(r + 1) * self.S, d]

    # ------------------------------------------------------------------ forward (47.1212)
    def forward(self, p, x):
        """``x`` is ``(M, N, D_in)``; returns ``z`` as ``(P, N, D)`` and the patches ``H[s, p, n, j]``.

        Offset-major patches give one GEMM per kernel offset (the sum over
        offsets in 47.1212). When a few input maps feed many output maps
        (``D >= 4 D_in``, regular windows, no groups) the patches are gathered
        by strided views in the layout ``(P, N, S, D_in)`` instead, and ``z``
        is one GEMM with ``S D_in`` inner terms; ``H`` is then the offset-first
        view of that array (the same ``H[s, p, n, j]``).
        """
        if x.shape[1] == 1 and self.single is not None:                             # one sample: one GEMM
            H = self.single.patches(x[:, 0, :])                                     # (P, S D_in), [p, s D_in + j]
            z = H @ self.kernels(p["W"]).reshape(self.S * self.in_maps, self.maps)  # (47.1212)
            z -= self.bias_sums(p["Theta"])
            return z.reshape(self.V.P, 1, self.maps), H
        if self.shifted is not None:                 # H stays implicit: the padded maps stand for it
            return self.shifted.correlate(x, self.kernels(p["W"]), subtract=self.bias_sums(p["Theta"]))
        if self.strided is not None:
            H = self.strided.gather(x)                                               # (P, N, S, D_in)
            P, N = H.shape[:2]
            z = H.reshape(P * N, -1) @ self.kernels(p["W"]).reshape(-1, self.maps)   # (47.1212) as one GEMM
            z -= self.bias_sums(p["Theta"])
            return z.reshape(P, N, self.maps), H.transpose(2, 0, 1, 3)
        H = self.V.gather(x)
        z = correlate_patches(H, self.kernels(p["W"]), self.groups) - self.bias_sums(p["Theta"])
        return z, H

    def patches(self, res, n_samples: int) -> np.ndarray:
        """The offset-major patches ``H[s, p, n, j]`` (47.1211) from what :meth:`forward` kept, for any path.

        ``res`` is the second value :meth:`forward` returned for a batch of
        ``n_samples``: the patches themselves, or what stands for them on a
        fast path (one sample's im2col matrix, or the padded maps of the
        shifted path).
        """
        if n_samples == 1 and self.single is not None:
            return res.reshape(self.V.P, self.S, 1, self.in_maps).transpose(1, 0, 2, 3)
        if self.shifted is not None:                                        # the padded maps: V read from x
            return self.V.gather(self.shifted.unpad(res, n_samples))
        return res

    # ------------------------------------------------------------------ fast backward
    def vjp(self, p, H, dz, *, need_input=True):
        """Gradients (47.1271, 47.1274) and ``sum_d V^(j,d) delta^(d)`` as one ``V^T G`` (47.1262).

        Since ``V^(j,d) = V^T diag(1 kron w_j^(d)) (I kron 1_S)``, the sum over
        output maps equals ``V^T`` applied to ``G[s, p] = sum_d w_j^(d)(s) delta^(d)(p)``.
        How ``V^T`` is applied follows the forward pass: a gather by index for
        one sample (single_sample.py), GEMMs into shifted slices for stride-1
        windows over several maps (shifted.py), col2im on strided views, or
        else one GEMM per kernel offset and the sparse scatter-add.
        """
        # every row of Theta gets the same gradient (47.1274): one row is a broadcast view, never a copy
        total = -stack_sum(dz)
        rows = self.group_in if self.bias == "per_input" else 1
        theta = total[None, :] if rows == 1 else np.broadcast_to(total, (rows, self.maps)).copy()
        if dz.shape[1] == 1 and self.single is not None:                            # one sample (see forward)
            delta = dz[:, 0, :]
            dK = H.T @ delta                                                        # (47.1271), rows s D_in + j
            grads = {"W": dK.reshape(self.S, self.in_maps, self.maps).transpose(1, 0, 2).reshape(-1, self.maps),
                     "Theta": theta}
            if not need_input:
                return None, grads
            KT = self.kernels(p["W"]).transpose(0, 2, 1).reshape(self.S * self.maps, self.in_maps)
            return (self.single.spread(delta) @ KT)[:, None, :], grads             # V^T G as a gather (47.1262)
        if self.shifted is not None:                 # H is the padded input here (see forward)
            dK, dx = self.shifted.backward(H, self.kernels(p["W"]), dz, need_input=need_input)
            grads = {"W": dK.transpose(1, 0, 2).reshape(self.in_maps * self.S, self.maps),     # (47.1271)
                     "Theta": theta}                                                              # (47.1274)
            return dx, grads
        patches = H.transpose(1, 2, 0, 3)                                           # (P, N, S, D_in)
        if self.strided is not None and patches.flags.c_contiguous:                 # as forward gathered it
            P, N, S, D_in = patches.shape
            flat, delta = patches.reshape(P * N, S * D_in), dz.reshape(P * N, self.maps)
            dK = flat.T @ delta                                                     # (47.1271), one GEMM
            grads = {"W": dK.reshape(S, D_in, self.maps).transpose(1, 0, 2).reshape(D_in * S, self.maps),
                     "Theta": theta}
            if not need_input:
                return None, grads
            G = delta @ self.kernels(p["W"]).reshape(S * D_in, self.maps).T          # sum_d w_j^(d)(s) delta^(d)
            return self.strided.scatter_add(G.reshape(P, N, S, D_in)), grads        # V^T G by col2im (47.1262)
        grads = {"W": weight_gradient(H, dz, self.groups),
                 "Theta": theta}
        if not need_input:
            return None, grads
        return self.V.scatter_add(spread_patches(dz, self.kernels(p["W"]), self.groups)), grads

    # ------------------------------------------------------------------ literal backward (the book's listing)
    def vjp_literal(self, p, H, dz, *, need_input=True):
        """The listing of (47.1275): ``V^(j,d)`` per connected pair (47.1257-47.1258), ``Delta_n`` (47.1270).

        ``dW = sum_n (1^T kron H_n) Delta_n`` (47.1271) and
        ``dTheta = -sum_n (1^T kron 1 1^T) Delta_n`` (47.1274), one sample at a
        time as the listing does. The Kronecker factor is applied by the
        mixed-product rule ``1^T kron A = A (1^T kron I_P)``, so the dense
        ``D``-fold copy of ``H_n`` is never formed.
        """
        P, N, D = dz.shape
        S = self.S
        # H_{n,c-1} of (47.1225) for every n, (N, D_in S, P): row j S + s holds offset s of map j's patches
        if self.shifted is not None and not (N == 1 and self.single is not None):  # gathered in that layout
            x = np.ascontiguousarray(self.shifted.unpad(H, N).transpose(1, 2, 0))   # (N, D_in, M)
            H_all = self.V.gather(x, axis=2).reshape(N, self.in_maps * S, P)
        else:
            H_all = self.patches(H, N).transpose(2, 3, 0, 1).reshape(N, self.in_maps * S, P)
        spread = sp.kron(np.ones((1, D)), sp.eye_array(P, format="csr"), format="csr")
        rows = self.parameter_shapes()["Theta"][0]
        dtype = np.result_type(dz, H_all)
        dW = np.zeros((self.in_maps * S, D), dtype=dtype)
        dTheta = np.zeros((rows, D), dtype=dtype)
        ones_bias = np.ones((rows, P), dtype=dtype)
        Delta = block_diagonal(np.zeros((P, D), dtype=dz.dtype))   # the pattern of every Delta_n (47.1270)
        for n in range(N):
            Delta.data[:] = dz[:, n, :].T.reshape(-1)                               # Delta_n: its entries
            H_n = H_all[n]                                                          # H_{n,c-1} (47.1225)
            gathered = (spread @ Delta).toarray()                                   # (1^T kron I_P) Delta_n
            dW += H_n @ gathered                                                    # (47.1271)
            dTheta -= ones_bias @ gathered                                          # (47.1274)
        if self.groups > 1:             # keep the connected blocks only: the compact W of a grouped layer
            g, r, o = self.groups, self.group_in, self.maps // self.groups
            dW = np.einsum("aiab->iab", dW.reshape(g, r * S, g, o)).reshape(r * S, D)
        grads = {"W": dW, "Theta": dTheta}
        if not need_input:
            return None, grads
        W = p["W"]
        delta = np.ascontiguousarray(dz.transpose(2, 0, 1))                         # delta^(d): (P, N) each
        dx = np.zeros((self.in_maps, self.V.M, N), dtype=dtype)
        for j, d in zip(*np.nonzero(self.table.T)):
            op = backprop_operator(self.V, self._mask(W, j, d))                      # (47.1257)
            dx[j] += op @ delta[d]                                                  # (47.1258)
        return np.ascontiguousarray(dx.transpose(1, 2, 0)), grads

    # ------------------------------------------------------------------ explicit operator
    def operator(self, p, x=None, *, algebra=SCIPY):
        """``J^T``: block ``(j, d)`` is ``V^(j,d)`` of (47.1257), zero for unconnected pairs."""
        W, M, P = p["W"], self.V.M, self.V.P
        blocks = [[backprop_operator(self.V, self._mask(W, j, d), algebra) if self.table[d, j]
                   else algebra.zeros(M, P) for d in range(self.maps)] for j in range(self.in_maps)]
        return algebra.block(blocks)

    # ------------------------------------------------------------------ reference
    @staticmethod
    def reference(config, p, x):
        """Direct summation (Eq. 8.12 of source 001): ``z^(d)(o) = sum_j sum_k w_j^(d)(k) x_j(o*stride - pad + k*dil)``.

        Works on one sample ``(D_in, *in_shape)`` of numbers or SymPy symbols;
        reads only the description (geometry or index lists), never V.
        """
        x = np.asarray(x)
        D_in, in_shape = x.shape[0], x.shape[1:]
        flat = [np.reshape(x[j], -1, order="F") for j in range(D_in)]
        windows, out_shape = _reference_windows(config, in_shape)
        W, Theta = np.asarray(p["W"]), np.asarray(p["Theta"])
        D = W.shape[1]
        groups = int(config.get("groups", 1))
        per_group, out_per_group = D_in // groups, D // groups
        S = W.shape[0] // per_group
        given = config.get("connections")
        table = np.ones((D, D_in), dtype=bool) if given is None else np.asarray(given, dtype=bool)
        z = np.empty((D, len(windows)), dtype=np.result_type(x, W) if x.dtype != object else object)
        for d in range(D):
            if config.get("bias", "per_input") == "tied" or groups > 1:
                theta = sum(Theta[r, d] for r in range(Theta.shape[0]))
            else:
                theta = sum(Theta[j, d] for j in range(D_in) if table[d, j])
            for q, window in enumerate(windows):
                acc = 0
                for j in range(D_in):
                    if not table[d, j] or j // per_group != d // out_per_group:
                        continue
                    for s, m in enumerate(window):
                        if m is not None:
                            acc = acc + W[(j % per_group) * S + s, d] * flat[j][m]
                z[d, q] = acc - theta
        return np.stack([np.reshape(z[d], out_shape, order="F") for d in range(D)])

    # ------------------------------------------------------------------ description
    def config(self) -> dict:
        out = {"kind": self.kind, "maps": self.maps}
        if self.partition is not None and self.partition.geometry is None:
            out["partition"] = {"indices": self.partition.index_lists(), "size": self.partition.M}
        elif self.partition is not None:
            g = self.partition.geometry
            out.update(kernel=list(g["kernel"]), stride=list(g["stride"]), padding=_jsonable(g["padding"]),
                       dilation=list(g["dilation"]))
        else:
            out.update(kernel=_jsonable(self.kernel), stride=_jsonable(self.stride),
                       padding=_jsonable(self.padding), dilation=_jsonable(self.dilation))
        if self.connections is not None:
            table = self.table if hasattr(self, "table") else connection_table(
                self.connections, self.maps, None, "config")
            out["connections"] = np.asarray(table, dtype=bool).tolist()
        if self.groups != 1:
            out["groups"] = self.groups
        out["bias"] = self.bias
        return out

    @classmethod
    def from_config(cls, config):
        options = {k: v for k, v in config.items() if k != "kind"}
        if "partition" in options:
            d = options.pop("partition")
            options["partition"] = Partition(
                np.array([[-1 if i is None else i for i in row] for row in d["indices"]], dtype=np.int64), d["size"])
        if "connections" in options and options["connections"] is not None:
            options["connections"] = np.asarray(options["connections"], dtype=bool)
        for key in ("kernel", "stride", "padding", "dilation"):
            if isinstance(options.get(key), list):
                options[key] = tuple(options[key])
        return cls(**options)

    def to_torch(self, p):
        """``torch.nn.ConvNd`` with weight ``W_c`` in torch's layout and bias ``-sum_j theta(j)``.

        Unconnected pairs (47.1213) are zero weights, groups are torch's
        ``groups``; unequal padding on the two sides of an axis becomes a
        ``ZeroPadNd`` before the convolution (a ``Sequential``). Only
        sliding-window partitions have a twin.
        """
        import torch

        g = self.V.geometry
        if g is None:
            raise NotImplementedError(f"layer {self.name or self.prefix}: an unstructured partition (index lists, "
                                      "not a sliding window) has no PyTorch convolution")
        n = len(self.in_shape)
        before, after = padding_pairs(g["padding"], n)
        symmetric = before == after
        conv = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[n](
            self.in_maps, self.maps, self.V.kernel_shape, stride=g["stride"], padding=before if symmetric else 0,
            dilation=g["dilation"], groups=self.groups, bias=True, dtype=torch.float64)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(
                kernel_to_torch(np.asarray(p["W"], dtype=np.float64), self.group_in, self.maps, self.V.kernel_shape)))
            conv.bias.copy_(torch.from_numpy(-np.asarray(self.bias_sums(p["Theta"]), dtype=np.float64)))
        if symmetric:
            return conv
        # torch pads both sides alike: an explicit zero pad (last axis first, as torch.nn.functional.pad reads it)
        pad = tuple(v for a in reversed(range(n)) for v in (before[a], after[a]))
        return torch.nn.Sequential(getattr(torch.nn, f"ZeroPad{n}d")(pad), conv)


# ---------------------------------------------------------------------- the operator of (47.1257), written once
def backprop_operator(partition: Partition, w, algebra=SCIPY):
    """``V^(d,d') = (V^T o (1_{P'} 1_P^T kron w^T)) (I_P kron 1_S)`` (47.1257).

    ``partition`` is the V of the layer's input (``P S x P'``, the book's
    ``V_c``) and ``w`` the mask ``w_d^(d')`` (``S`` entries). The result is
    ``P' x P``: it carries the sensitivity of output map ``d'`` back onto
    input map ``d`` (47.1258). With :data:`~partitionnet.algebra.SCIPY` it is a
    ``csr_array`` (the Hadamard product is a column scaling of ``V^T``'s
    nonzeros); with :data:`~partitionnet.algebra.SYMPY` the same steps run
    exactly.

    >>> import numpy as np
    >>> V = Partition.sliding_window(4, 2)
    >>> backprop_operator(V, np.array([1.0, 10.0])).toarray()
    array([[ 1.,  0.,  0.],
           [10.,  1.,  0.],
           [ 0., 10.,  1.],
           [ 0.,  0., 10.]])
    """
    xp = algebra
    VT, sum_offsets = _fixed_factors(partition, xp)                             # V_c^T and (I_P kron 1_S)
    masked = xp.hadamard_ones_kron(VT, partition.M, partition.P, list(np.asarray(w).reshape(-1)))
    return xp.matmul(masked, sum_offsets)


def _fixed_factors(partition: Partition, xp):
    """``V_c^T`` (P' x P S) and ``I_P kron 1_S`` of (47.1257): the same for every pair of maps, so each is
    built once per partition and algebra and kept on the partition (the layer's V never changes)."""
    cache = partition.__dict__.setdefault("_backprop_factors", {})
    if xp.name not in cache:
        cache[xp.name] = (xp.T(xp.partition(partition)), xp.kron(xp.eye(partition.P), xp.ones(partition.S, 1)))
    return cache[xp.name]


def correlate_patches(H: np.ndarray, K: np.ndarray, groups: int = 1) -> np.ndarray:
    """``z[p, n, d] = sum_{s, j} H[s, p, n, j] K[s, j, d]``: ``sum_j H_j^T w_j^(d)`` (47.1212).

    One small GEMM per kernel offset over a contiguous block; with a single
    input map the blocks form the (transposed) im2col matrix and one GEMM does
    it all. With ``groups > 1``, ``K`` is ``(S, D_in/groups, D)`` and output
    map d sums over the input maps of its group only: per kernel offset, one
    GEMM per group in a single batched call on a strided view (no copy of
    ``H``), or a broadcast product when every group has one input map
    (depthwise).
    """
    S, P, N, D_in = H.shape
    if groups > 1:
        g, r, D = groups, D_in // groups, K.shape[2]
        o = D // g
        z = np.zeros((P * N, g, o), dtype=np.result_type(H, K))
        Kg = K.reshape(S, r, g, o).transpose(0, 2, 1, 3)                          # (S, g, r, o)
        for s in range(S):                                                          # kernel offsets only
            Hs = H[s].reshape(P * N, g, r)
            if r == 1:                                                              # depthwise: a broadcast product
                z += Hs * Kg[s, :, 0, :]
            else:                                                                   # one GEMM per group, batched
                z += np.matmul(Hs.transpose(1, 0, 2), Kg[s]).transpose(1, 0, 2)
        return z.reshape(P, N, D)
    if D_in == 1:
        return (H.reshape(S, P * N).T @ K[:, 0, :]).reshape(P, N, K.shape[2])
    D = K.shape[2]
    gemm = _GEMM.get(H.dtype.type) if H.dtype == K.dtype else None
    if gemm is not None:
        # BLAS accumulates the offsets into one output (beta = 1): no temporary and no extra pass per offset.
        # The C-ordered z (PN x D) is the Fortran-ordered z^T, so z^T += K[s]^T H[s]^T.
        zT = np.zeros((D, P * N), dtype=H.dtype, order="F")
        for s in range(S):                                                          # kernel offsets only
            zT = gemm(1.0, K[s].T, H[s].reshape(P * N, D_in).T, beta=1.0, c=zT, overwrite_c=1)
        return zT.T.reshape(P, N, D)
    z = H[0].reshape(P * N, D_in) @ K[0]
    for s in range(1, S):
        z += H[s].reshape(P * N, D_in) @ K[s]
    return z.reshape(P, N, D)


def stack_sum(a: np.ndarray) -> np.ndarray:
    """``a`` (P, N, D) summed over positions and samples, one entry per map: ``1^T A`` as one GEMV.

    This is the sum in a bias gradient (47.1274). NumPy's ``a.sum(axis=(0, 1))``
    walks the ``P N`` rows a few entries at a time and is ~15 times slower.

    >>> stack_sum(np.arange(12.0).reshape(2, 3, 2)).tolist()
    [30.0, 36.0]
    """
    P, N, D = a.shape
    return _ones(P * N, a.dtype) @ a.reshape(P * N, D)


@functools.lru_cache(maxsize=64)
def _ones(n: int, dtype) -> np.ndarray:
    """A read-only vector of ``n`` ones, made once per length and dtype (a step needs the same few)."""
    ones = np.ones(n, dtype=dtype)
    ones.setflags(write=False)
    return ones


def weight_gradient(H: np.ndarray, delta: np.ndarray, groups: int = 1) -> np.ndarray:
    """``dW_c`` of (47.1271) by batched GEMMs: ``dK[s, j, d] = sum_{p,n} H[s,p,n,j] delta[p,n,d]``, as W_c's rows.

    With ``groups > 1`` only the connected pairs are formed, in the compact
    layout ``(S D_in/groups, D)``.
    """
    S, P, N, D_in = H.shape
    D = delta.shape[2]
    if groups > 1:
        g, r, o = groups, D_in // groups, D // groups
        dg = delta.reshape(P * N, g, o).transpose(1, 0, 2)                          # (g, PN, D/g)
        dK = np.empty((S, g, r, o), dtype=np.result_type(H, delta))
        for s in range(S):                                                          # kernel offsets only
            np.matmul(H[s].reshape(P * N, g, r).transpose(1, 2, 0), dg, out=dK[s])   # (g, r, o)
        return dK.transpose(2, 0, 1, 3).reshape(r * S, D)
    flat = delta.reshape(P * N, D)
    if D_in == 1:
        return H.reshape(S, P * N) @ flat
    dK = np.matmul(H.reshape(S, P * N, D_in).transpose(0, 2, 1), flat)           # one batched call, (S, D_in, D)
    return dK.transpose(1, 0, 2).reshape(D_in * S, D)


def spread_patches(dz: np.ndarray, K: np.ndarray, groups: int = 1) -> np.ndarray:
    """``G[s, p, n, j] = sum_d K[s, j, d] dz[p, n, d]`` over the d connected to j: the patches that ``V^T`` adds up.

    ``dz`` is ``(P, N, D)`` and ``K`` is ``(S, D_in/groups, D)``; the result is
    ``(S, P, N, D_in)``, offset-major as :meth:`Partition.scatter_add` takes
    it. One batched GEMM call over the kernel offsets (with ``groups > 1``,
    per offset one batched call over the groups). This is the sum over output maps in (47.1262) before
    ``V^T``, and the forward pass of a transposed correlation.
    """
    P, N, D = dz.shape
    S, r = K.shape[:2]
    dtype = np.result_type(dz, K)
    if groups > 1:
        g, o = groups, D // groups
        dg = dz.reshape(P * N, g, o)
        Kg = K.reshape(S, r, g, o).transpose(0, 2, 3, 1)                          # (S, g, o, r)
        G = np.empty((S, P * N, g, r), dtype=dtype)
        for s in range(S):                                                          # kernel offsets only
            if o == 1:                                                              # one output per group
                np.multiply(dg, Kg[s, :, 0, :], out=G[s])
            else:
                G[s] = np.matmul(dg.transpose(1, 0, 2), Kg[s]).transpose(1, 0, 2)
        return G.reshape(S, P, N, g * r)
    G = np.matmul(dz.reshape(P * N, D), K.transpose(0, 2, 1))                    # one batched call, (S, PN, r)
    return G.reshape(S, P, N, r)


def group_table(maps: int, in_maps: int, groups: int) -> np.ndarray:
    """The ``(D, D_in)`` connection table (47.1213) of a grouped correlation: output map d reads input map j
    iff both lie in the same group.

    >>> group_table(4, 2, 2).astype(int).tolist()
    [[1, 0], [1, 0], [0, 1], [0, 1]]
    """
    return (np.arange(maps)[:, None] // (maps // groups)) == (np.arange(in_maps)[None, :] // (in_maps // groups))


def block_diagonal(columns: np.ndarray) -> sp.csr_array:
    """``Delta = diag{delta^(1), ..., delta^(D)}`` (47.1270): column d holds ``delta^(d)`` in row block d.

    ``columns`` is ``(P, D)``.
    """
    P, D = columns.shape
    # its own copy of the entries: a view of ``columns`` would let a change to Delta write into the caller's array
    return sp.csr_array((np.array(columns.T.reshape(-1)), np.repeat(np.arange(D), P), np.arange(D * P + 1)),
                        shape=(D * P, D))


# ---------------------------------------------------------------------- connection tables (47.1213)
def connection_table(connections, maps: int, in_maps, where: str) -> np.ndarray:
    """The ``(D, D_in)`` boolean table of (47.1213) from any accepted form.

    A numpy array is a table (boolean, or numbers that are all 0 or 1); a
    list of lists names, for every output map, its input maps (0-based).
    An integer array is never read as index lists.
    """
    if connections is None:
        return np.ones((maps, in_maps), dtype=bool)
    if isinstance(connections, np.ndarray):
        if connections.dtype != bool:
            if connections.dtype.kind not in "iuf" or not np.isin(connections, (0, 1)).all():
                raise ValueError(f"{where}: a connections array is a table of 0/1 (or booleans) of shape "
                                 f"(D, D_in); got dtype {connections.dtype} with other values. To list input "
                                 "maps per output map, pass a list of lists")
        table = connections.astype(bool)
        expected = (maps, in_maps if in_maps is not None else table.shape[1])
        if table.ndim != 2 or table.shape != expected:
            raise ValueError(f"{where}: connections must have shape (D, D_in) = {expected}, got {connections.shape}")
    else:
        if in_maps is None:
            in_maps = 1 + max((int(j) for inputs in connections for j in inputs), default=0)
        if isinstance(connections, (str, bytes)) or not isinstance(connections, Sequence):
            raise TypeError(f"{where}: connections must be a boolean array or a list of input-map lists, "
                            f"got {type(connections).__name__}")
        if len(connections) != maps:
            raise ValueError(f"{where}: connections needs one list per output map ({maps}), got {len(connections)}")
        table = np.zeros((maps, in_maps), dtype=bool)
        for d, inputs in enumerate(connections):
            if isinstance(inputs, (str, bytes)) or not isinstance(inputs, (Sequence, np.ndarray)):
                raise TypeError(f"{where}: connections[{d}] must be a list of input-map indices, got {inputs!r}")
            for j in inputs:
                if isinstance(j, bool) or not isinstance(j, numbers.Integral):
                    raise TypeError(f"{where}: connections[{d}] must list integer map indices, got {j!r}")
                if not 0 <= j < in_maps:
                    raise ValueError(f"{where}: connections[{d}] names input map {j}, but the layer has only "
                                     f"{in_maps} input maps (0..{in_maps - 1})")
                table[d, j] = True
    empty = np.flatnonzero(~table.any(axis=1))
    if empty.size:
        raise ValueError(f"{where}: output map {int(empty[0])} has no input maps in its connection table")
    return table


# ---------------------------------------------------------------------- reference geometry (no V)
def _reference_windows(config, in_shape):
    """For every output position (column-stacked), the input entries its window reads, by direct summation."""
    if "partition" in config:
        lists = config["partition"]["indices"]
        return [[None if (i is None or i < 0) else int(i) for i in row] for row in lists], (len(lists),)
    nd = len(in_shape)
    per_axis = lambda v: tuple(int(a) for a in v) if isinstance(v, (list, tuple)) else (int(v),) * nd  # noqa: E731
    kernel, stride, dilation = per_axis(config["kernel"]), per_axis(config.get("stride", 1)), \
        per_axis(config.get("dilation", 1))
    padding = config.get("padding", 0)
    if isinstance(padding, str):
        before, after = [], []
        for n, k, s, dil in zip(in_shape, kernel, stride, dilation):
            extent = dil * (k - 1)
            if padding == "valid":
                total = 0
            elif padding == "full":
                total = 2 * extent
            else:                                   # 'same': ceil(n/s) outputs, the odd zero after (TensorFlow)
                total = max((-(-n // s) - 1) * s + extent + 1 - n, 0)
            before.append(extent if padding == "full" else total // 2)
            after.append(total - before[-1])
    else:
        items = [padding] * nd if not isinstance(padding, (list, tuple)) else list(padding)
        before = [int(v[0]) if isinstance(v, (list, tuple)) else int(v) for v in items]
        after = [int(v[1]) if isinstance(v, (list, tuple)) else int(v) for v in items]
    out_shape = tuple((n + b + a - dil * (k - 1) - 1) // s + 1
                      for n, k, s, b, a, dil in zip(in_shape, kernel, stride, before, after, dilation))
    strides_f = np.cumprod((1,) + tuple(in_shape[:-1]))               # column-stacked flat index
    windows = []
    for o in _column_major(out_shape):
        window = []
        for k in _column_major(kernel):
            pos = [oi * s - b + ki * dil for oi, ki, s, b, dil in zip(o, k, stride, before, dilation)]
            inside = all(0 <= q < n for q, n in zip(pos, in_shape))
            window.append(int(np.dot(pos, strides_f)) if inside else None)
        windows.append(window)
    return windows, out_shape


def _column_major(shape):
    for rev in itertools.product(*(range(n) for n in reversed(shape))):
        yield tuple(reversed(rev))


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value


# ---------------------------------------------------------------------- regular windows as strided views
class StridedWindows:
    """A sliding-window partition read through strided views: gather is im2col, ``V^T`` is col2im.

    For the regular windows of :meth:`Partition.sliding_window`, the rows
    ``p S + s`` of ``V x`` for one kernel offset ``s`` form a strided view of
    the zero-padded map, so ``V`` needs no index array and ``V^T`` no sparse
    product: ``V^T G`` adds the block of every offset onto its view (one
    strided add per kernel offset, never a loop over positions). The results
    equal :meth:`Partition.gather` and :meth:`Partition.scatter_add` entry for
    entry; only the patches' layout differs: ``(P, N, S, D)``, the offset next
    to the maps, so that a correlation is one GEMM with ``S D_in`` inner terms
    (47.1211-47.1212).

    Maps are ``(M, N, D)`` with ``M`` column-stacked over the map's shape
    (the first axis fastest), as everywhere in the library.

    >>> V = Partition.sliding_window((5, 4), 3, stride=2, padding=((0, 1), 2), dilation=(1, 2))
    >>> W = StridedWindows.of(V)
    >>> x = np.random.default_rng(0).standard_normal((V.M, 2, 3))
    >>> bool(np.array_equal(W.gather(x).transpose(2, 0, 1, 3), V.gather(x)))
    True
    >>> G = np.random.default_rng(1).standard_normal((V.P, 2, V.S, 3))
    >>> bool(np.allclose(W.scatter_add(G), V.scatter_add(G.transpose(2, 0, 1, 3)), rtol=1e-14, atol=1e-14))
    True
    """

    def __init__(self, map_shape, out_shape, kernel, stride, before, dilation):
        nd = len(map_shape)
        self.M, self.P, self.S = int(np.prod(map_shape)), int(np.prod(out_shape)), int(np.prod(kernel))
        # the last window's far end on every axis: pad after the map up to it
        reach = [(o - 1) * st + dil * (k - 1) + 1 for o, st, dil, k in zip(out_shape, stride, dilation, kernel)]
        after = [max(0, r - b - n) for r, b, n in zip(reach, before, map_shape)]
        # a stack (M, N, D) seen as maps: (n_last, ..., n_first, N, D)
        self.rev_map = tuple(reversed(map_shape))
        self.rev_out = tuple(reversed(out_shape))
        self.padded = tuple(reversed([n + b + a for n, b, a in zip(map_shape, before, after)]))
        self.interior = tuple(reversed([slice(b, b + n) for n, b in zip(map_shape, before)]))
        self.trivial = self.padded == self.rev_map
        self.offsets = []
        for s in range(self.S):                                  # column-stacked kernel offsets, first axis fastest
            k = np.unravel_index(s, kernel, order="F")
            self.offsets.append(tuple(reversed([slice(int(k[a]) * dilation[a],
                                                      int(k[a]) * dilation[a] + (out_shape[a] - 1) * stride[a] + 1,
                                                      stride[a]) for a in range(nd)])))

    @classmethod
    def of(cls, partition: Partition):
        """The strided form of a sliding-window partition, or ``None`` for one without geometry."""
        g = partition.geometry
        if g is None:
            return None
        before, _ = padding_pairs(g["padding"], len(g["input_shape"]))
        return cls(g["input_shape"], partition.output_shape, g["kernel"], g["stride"], before, g["dilation"])

    def gather(self, x: np.ndarray) -> np.ndarray:
        """All patches of ``x`` (M, N, D) as ``(P, N, S, D)``: ``[p, n, s, j]`` is row ``p S + s`` of ``V x_n^(j)``."""
        N, D = x.shape[1:]
        maps = x.reshape(self.rev_map + (N, D))
        if not self.trivial:
            padded = np.zeros(self.padded + (N, D), dtype=x.dtype)
            padded[self.interior] = maps
            maps = padded
        H = np.empty((self.P, N, self.S, D), dtype=x.dtype)
        view = H.reshape(self.rev_out + (N, self.S, D))
        for s, where in enumerate(self.offsets):                 # kernel offsets only
            view[..., s, :] = maps[where]
        return H

    def scatter_add(self, G: np.ndarray) -> np.ndarray:
        """``V^T`` on patches ``(P, N, S, D)``: every entry added back onto the map entry it was read from."""
        N, D = G.shape[1], G.shape[3]
        out = np.zeros(self.padded + (N, D), dtype=G.dtype)
        view = G.reshape(self.rev_out + (N, self.S, D))
        for s, where in enumerate(self.offsets):                 # kernel offsets only: col2im
            out[where] += view[..., s, :]
        if not self.trivial:
            out = np.ascontiguousarray(out[self.interior])
        return out.reshape(self.M, N, D)
