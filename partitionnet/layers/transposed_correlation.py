"""Transposed correlation: the book's ``V^(d,d')`` read forward, as a layer.

In a correlation layer, the sensitivity of output map ``d'`` travels back onto
input map ``d`` through ``V^(d,d') = (V^T o (1 1^T kron w^T)) (I kron 1_S)``
(47.1257-47.1258): every entry of the small map is spread, weighted by the
mask, over the window it came from, and the overlaps add up. A transposed
correlation ("deconvolution") runs that same operator *forward*: it takes
maps of the small shape and returns maps of the large one,

    ``x^(j) = sum_i V^(j,i) y^(i) - theta^(j) 1``,

where ``V`` is the sliding-window partition of the *output* map and ``i``
runs over the input maps connected to output map ``j``.

forward ....... one GEMM per kernel offset, then ``V^T`` as one sparse scatter-add
vjp ........... a correlation: ``V`` gathers the output sensitivity, offset GEMMs (the adjoint of forward)
vjp_literal ... ``V^(j,i)^T`` per connected pair and ``Delta_n`` (47.1270-47.1271), one sample at a time
operator ...... ``J^T``: block ``(i, j)`` is ``(V^(j,i))^T``, (47.1257) written once over the algebra
reference ..... direct summation with the roles swapped: every input entry scattered through the kernel

Parameters:

* ``W`` is ``S D/g x D_in`` (``D`` output maps, ``g`` groups): the layout of
  the correlation that carries the output back onto the input. Column ``i``
  (input map) holds ``col{w_1^(i), ..., w_{D/g}^(i)}``, row ``j' S + s``
  being offset ``s`` of the mask from input map ``i`` to the ``j'``-th output
  map of ``i``'s group. It is PyTorch's ``ConvTranspose`` weight
  ``(D_in, D/g, *kernel)`` with every mask column-stacked.
* ``Theta`` is ``1 x D``, one bias per output map (``bias='tied'``),
  subtracted as in (47.1212): ``x = ... - theta``; PyTorch's bias is ``-theta``.
"""
from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp

from .. import _validate as val
from .._windows import window_indices
from ..algebra import SCIPY
from ..layout import kernel_to_torch
from ..partition import Partition
from .base import Layer, register
from .correlation import (backprop_operator, block_diagonal, correlate_patches, group_table, spread_patches,
                          stack_sum, weight_gradient)

__all__ = ["TransposedCorrelation", "transposed_length"]

BIAS_MODES = ("tied",)


def transposed_length(n: int, k: int, stride: int, padding: int, output_padding: int, dilation: int) -> int:
    """Output length along one axis, PyTorch's ``ConvTranspose`` formula.

    ``(n - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1``: the
    length that a correlation with the same kernel, stride, padding and
    dilation maps back onto ``n`` positions (``output_padding`` picks one of
    the ``stride`` lengths that do so).

    >>> transposed_length(3, 3, 2, 1, 1, 1)
    6
    """
    return (n - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1


@register
class TransposedCorrelation(Layer):
    """A transposed correlation layer: the backprop operator (47.1257) of a correlation, applied forward.

    Parameters
    ----------
    maps : int
        ``D``, the number of output maps.
    kernel : int or tuple of int
        Window shape (an int applies to every axis).
    stride, dilation : int or tuple of int, default 1
        Of the correlation being transposed: consecutive input entries land
        ``stride`` apart on the output, kernel entries ``dilation`` apart.
    padding : int or tuple of int, default 0
        Removed from both ends of every output axis (the correlation's zero padding).
    output_padding : int or tuple of int, default 0
        Extra entries at the end of every output axis (PyTorch's
        ``output_padding``): they choose among the output lengths that a
        strided correlation maps onto the same input length. Must be smaller
        than the stride or the dilation of its axis, as in PyTorch.
    groups : int, default 1
        As in PyTorch: input group ``g`` feeds output group ``g`` only; must
        divide both map counts.
    bias : {'tied'}
        One bias per output map, subtracted (``x = ... - theta``).
    name : str, optional
        The layer's name in a network (default ``deconv<k>``).

    Notes
    -----
    The output length along each axis is ``(n - 1)*stride - 2*padding +
    dilation*(kernel - 1) + output_padding + 1`` (:func:`transposed_length`).

    Examples
    --------
    Upsampling a 3x3 map to 6x6, then a correlation back to 3x3:

    >>> import numpy as np
    >>> from partitionnet import Network, layers as L
    >>> up = L.TransposedCorrelation(2, kernel=3, stride=2, padding=1, output_padding=1)
    >>> net = Network((3, 3), 1, [up, L.Correlation(1, kernel=2, stride=2)], rng=0)
    >>> [layer.out_shape for layer in net.layers]
    [(6, 6), (3, 3)]
    >>> sorted(net.parameter_shapes().items())
    [('conv1.Theta', (2, 1)), ('conv1.W', (8, 1)), ('deconv1.Theta', (1, 2)), ('deconv1.W', (18, 1))]

    Its operator is the transpose of the correlation's blocks ``V^(j,i)``:

    >>> layer = L.TransposedCorrelation(1, kernel=2).build(1, (3,))
    >>> layer.operator({"W": np.array([[1.0], [10.0]]), "Theta": np.zeros((1, 1))}).toarray()
    array([[ 1., 10.,  0.,  0.],
           [ 0.,  1., 10.,  0.],
           [ 0.,  0.,  1., 10.]])
    """

    kind = "transposed_correlation"
    prefix = "deconv"
    equations = "47.1257-47.1258 (applied forward), 47.1211-47.1212 (its backward), 47.1270-47.1271"
    linear = True

    def __init__(self, maps, *, kernel, stride=1, padding=0, output_padding=0, dilation=1, groups=1,
                 bias="tied", name=None):
        self.maps = val.as_positive_int(maps, "maps")
        self.groups = val.as_positive_int(groups, "groups")
        if self.maps % self.groups:
            raise ValueError(f"groups={self.groups} must divide the number of output maps (maps={self.maps})")
        if kernel is None:
            raise ValueError("TransposedCorrelation needs kernel=... (an int or one int per axis)")
        for arg, value, low in (("kernel", kernel, 1), ("stride", stride, 1), ("padding", padding, 0),
                                ("output_padding", output_padding, 0), ("dilation", dilation, 1)):
            _check_per_axis(arg, value, low)
        if not isinstance(bias, str):
            raise TypeError(f"bias must be a string, one of {BIAS_MODES}, got {type(bias).__name__}")
        if bias not in BIAS_MODES:
            raise ValueError(f"bias must be one of {BIAS_MODES} (one bias per output map), got {bias!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type(name).__name__}")
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.output_padding, self.dilation = output_padding, dilation
        self.bias = bias
        self.name = name

    @classmethod
    def examples(cls):
        """Small cases for the layer contract: ``(layer, in_maps, in_shape)``."""
        return [(cls(2, kernel=2), 1, (3,)),
                (cls(1, kernel=3, stride=2, padding=1, output_padding=1), 2, (2,)),
                (cls(2, kernel=(2, 3), stride=(2, 1), padding=(0, 1), dilation=(1, 2)), 1, (2, 2)),
                (cls(4, kernel=2, stride=2, output_padding=(1, 0), groups=2), 2, (1, 2)),
                (cls(2, kernel=2, stride=1, dilation=3, output_padding=2, groups=2), 2, (2,)),
                (cls(1, kernel=2, stride=(1, 2, 1)), 1, (1, 2, 1))]

    # ------------------------------------------------------------------ build
    def _build(self) -> None:
        where = f"layer {self.name or self.prefix}"
        nd = len(self.in_shape)
        kernel = val.as_int_tuple(self.kernel, "kernel", nd)
        stride = val.as_int_tuple(self.stride, "stride", nd)
        dilation = val.as_int_tuple(self.dilation, "dilation", nd)
        padding = val.as_int_tuple(self.padding, "padding", nd, minimum=0)
        extra = val.as_int_tuple(self.output_padding, "output_padding", nd, minimum=0)
        if self.in_maps % self.groups:
            raise ValueError(f"{where}: groups={self.groups} must divide both the number of input maps "
                             f"({self.in_maps}) and of output maps ({self.maps})")
        out_shape = []
        for a in range(nd):
            if extra[a] >= max(stride[a], dilation[a]):
                raise ValueError(f"{where}: output_padding must be smaller than the stride or the dilation of "
                                 f"its axis; got output_padding {extra[a]} with stride {stride[a]} and dilation "
                                 f"{dilation[a]} on axis {a}")
            n_out = transposed_length(self.in_shape[a], kernel[a], stride[a], padding[a], extra[a], dilation[a])
            if n_out < 1:
                full = transposed_length(self.in_shape[a], kernel[a], stride[a], 0, 0, dilation[a])
                raise ValueError(f"{where}: padding {padding[a]} on both ends of axis {a} removes the whole "
                                 f"output (length {full} before padding and output_padding, {n_out} after)")
            out_shape.append(n_out)
        out_shape = tuple(out_shape)
        # V partitions the OUTPUT map: window p (an input position) covers the output entries it feeds.
        idx = window_indices(out_shape, kernel, stride, padding, dilation, self.in_shape)
        self.V = Partition(idx, int(np.prod(out_shape)), input_shape=out_shape, output_shape=self.in_shape,
                           kernel_shape=kernel)
        self.geometry = {"kernel": kernel, "stride": stride, "padding": padding, "output_padding": extra,
                         "dilation": dilation}
        self.table = group_table(self.maps, self.in_maps, self.groups).T          # (D_in, D): input i feeds j
        self.out_maps, self.out_shape, self.out_vector = self.maps, out_shape, False

    @property
    def S(self) -> int:
        return self.V.S

    @property
    def group_out(self) -> int:
        """``D / groups``: the output maps one input map feeds."""
        return self.maps // self.groups

    # ------------------------------------------------------------------ parameters
    def parameter_shapes(self) -> dict:
        return {"W": (self.S * self.group_out, self.in_maps), "Theta": (1, self.maps)}

    def init_parameters(self, rng: np.random.Generator) -> dict:
        """Weights normal with variance 1/fan-in (``S D_in/g``, as PyTorch counts it), biases 0."""
        fan_in = self.S * (self.in_maps // self.groups)
        return {"W": rng.standard_normal(self.parameter_shapes()["W"]) / np.sqrt(fan_in),
                "Theta": np.zeros((1, self.maps))}

    def kernels(self, W: np.ndarray) -> np.ndarray:
        """``K[s, j', i]``: offset s of the mask from input map i to the j'-th output map of its group."""
        return W.reshape(self.group_out, self.S, self.in_maps).transpose(1, 0, 2)

    def _mask(self, W, i: int, j: int):
        """The mask (S entries) from input map i to output map j (a connected pair)."""
        r = j % self.group_out
        return W[r * self.S:(r + 1) * self.S, i]

    # ------------------------------------------------------------------ forward: V^T read forward
    def forward(self, p, y):
        """``y`` is ``(P, N, D_in)`` (P = input positions); returns ``x`` as ``(M, N, D)``; ``res`` is ``y``.

        ``G[s, p, n, j] = sum_i w^(j,i)(s) y^(i)(p)``, one GEMM per kernel
        offset, then ``V^T`` adds every ``G[s, p]`` onto the output entry that
        window p covers at offset s: ``sum_i V^(j,i) y^(i)`` (47.1257-47.1258).
        """
        G = spread_patches(y, self.kernels(p["W"]), self.groups)
        return self.V.scatter_add(G) - p["Theta"][0].astype(G.dtype, copy=False), y

    # ------------------------------------------------------------------ fast backward: a correlation
    def vjp(self, p, y, dx, *, need_input=True):
        """The adjoint of the forward pass is a correlation of ``dx`` with the same masks.

        ``H = V dx`` gathers the output sensitivity window by window; then
        ``dy^(i) = sum_j H_j^T w^(j,i)`` (the correlation's 47.1212, one GEMM
        per offset), ``dW = sum_n (1^T kron H_n) Delta_n`` with ``Delta_n``
        built from ``y`` (47.1271) and ``dTheta = -sum dx`` (47.1274).
        """
        H = self.V.gather(dx)                                                      # (S, P, N, D)
        grads = {"W": weight_gradient(H, y, self.groups), "Theta": -stack_sum(dx)[None, :]}
        if not need_input:
            return None, grads
        return correlate_patches(H, self.kernels(p["W"]), self.groups), grads

    # ------------------------------------------------------------------ literal backward
    def vjp_literal(self, p, y, dx, *, need_input=True):
        """One sample at a time, as the listing of (47.1275) reads: ``(V^(j,i))^T`` per connected pair,
        ``dW = sum_n (1^T kron H_n) Delta_n`` (47.1271) with ``H_n`` the patches of ``dx_n`` and
        ``Delta_n = diag{y_n^(1), ..., y_n^(D_in)}`` (47.1270), ``dTheta = -sum_n 1^T dx_n`` (47.1274).
        """
        P, N, D_in = y.shape
        M, S, D = self.V.M, self.S, self.maps
        dtype = np.result_type(y, dx)
        spread = sp.kron(np.ones((1, D_in)), sp.eye_array(P, format="csr"), format="csr")
        full = np.zeros((D * S, D_in), dtype=dtype)
        for n in range(N):
            Delta = block_diagonal(y[:, n, :])                                      # (47.1270)
            H_n = self.V.patches(dx[:, n, :]).transpose(2, 0, 1).reshape(D * S, P)  # patches of dx_n, map-major
            full += H_n @ (spread @ Delta).toarray()                                # (47.1271)
        g, r = self.groups, self.group_out
        dW = np.einsum("aiab->iab", full.reshape(g, r * S, g, D_in // g)).reshape(r * S, D_in)
        grads = {"W": dW, "Theta": -np.ones((1, M), dtype=dtype) @ dx.sum(axis=1)}
        if not need_input:
            return None, grads
        W = p["W"]
        dy = np.zeros((P, N, D_in), dtype=dtype)
        for i, j in zip(*np.nonzero(self.table)):
            op = backprop_operator(self.V, self._mask(W, i, j))                      # V^(j,i), (47.1257)
            dy[:, :, i] += op.T @ dx[:, :, j]
        return dy, grads

    # ------------------------------------------------------------------ explicit operator
    def operator(self, p, x=None, *, algebra=SCIPY):
        """``J^T`` (``D_in P x D M``): block ``(i, j)`` is ``(V^(j,i))^T`` of (47.1257), zero across groups."""
        W, M, P = p["W"], self.V.M, self.V.P
        blocks = [[algebra.T(backprop_operator(self.V, self._mask(W, i, j), algebra)) if self.table[i, j]
                   else algebra.zeros(P, M) for j in range(self.maps)] for i in range(self.in_maps)]
        return algebra.block(blocks)

    # ------------------------------------------------------------------ reference
    @staticmethod
    def reference(config, p, y):
        """Direct summation with the roles of input and output swapped.

        ``x^(j)(o*stride - padding + k*dilation) += w^(j,i)(k) y^(i)(o)`` for
        every input entry ``o``, kernel offset ``k`` and connected input map
        ``i``, kept where it lands inside the output; then ``- theta^(j)``.
        Works on one sample ``(D_in, *in_shape)`` of numbers or SymPy symbols;
        never builds V.
        """
        y = np.asarray(y)
        D_in, in_shape = y.shape[0], tuple(y.shape[1:])
        nd = len(in_shape)
        per_axis = lambda v: tuple(int(a) for a in v) if isinstance(v, (list, tuple)) else (int(v),) * nd  # noqa
        kernel, stride = per_axis(config["kernel"]), per_axis(config.get("stride", 1))
        padding, extra = per_axis(config.get("padding", 0)), per_axis(config.get("output_padding", 0))
        dilation = per_axis(config.get("dilation", 1))
        W, Theta = np.asarray(p["W"]), np.asarray(p["Theta"])
        D, groups = int(config["maps"]), int(config.get("groups", 1))
        per_out, per_in = D // groups, D_in // groups
        S = int(np.prod(kernel))
        out_shape = tuple((n - 1) * s - 2 * pd + dl * (k - 1) + e + 1
                          for n, k, s, pd, e, dl in zip(in_shape, kernel, stride, padding, extra, dilation))
        x = np.zeros((D,) + out_shape, dtype=object if y.dtype == object or W.dtype == object else float)
        column_major = lambda shape: (tuple(reversed(t)) for t in itertools.product(  # noqa: E731
            *(range(n) for n in reversed(shape))))
        for i in range(D_in):
            for o in column_major(in_shape):
                for s, k in enumerate(column_major(kernel)):
                    q = tuple(oa * sa - pa + ka * da for oa, ka, sa, pa, da in zip(o, k, stride, padding, dilation))
                    if not all(0 <= qa < na for qa, na in zip(q, out_shape)):
                        continue
                    for j in range(D):
                        if j // per_out == i // per_in:
                            x[(j,) + q] = x[(j,) + q] + W[(j % per_out) * S + s, i] * y[(i,) + o]
        for j in range(D):
            x[j] = x[j] - Theta[0, j]
        return x

    # ------------------------------------------------------------------ description
    def config(self) -> dict:
        out = {"kind": self.kind, "maps": self.maps}
        for key in ("kernel", "stride", "padding", "output_padding", "dilation"):
            value = getattr(self, key)
            out[key] = list(value) if isinstance(value, (tuple, list, np.ndarray)) else int(value)
        if self.groups != 1:
            out["groups"] = self.groups
        out["bias"] = self.bias
        return out

    @classmethod
    def from_config(cls, config):
        options = {k: v for k, v in config.items() if k != "kind"}
        for key in ("kernel", "stride", "padding", "output_padding", "dilation"):
            if isinstance(options.get(key), list):
                options[key] = tuple(options[key])
        return cls(**options)

    def to_torch(self, p):
        """``torch.nn.ConvTranspose1d/2d/3d`` with weight ``(D_in, D/g, *kernel)`` and bias ``-theta``."""
        import torch

        g = self.geometry
        n = len(self.in_shape)
        conv = getattr(torch.nn, f"ConvTranspose{n}d")(
            self.in_maps, self.maps, g["kernel"], stride=g["stride"], padding=g["padding"],
            output_padding=g["output_padding"], groups=self.groups, bias=True, dilation=g["dilation"],
            dtype=torch.float64)
        with torch.no_grad():
            weight = kernel_to_torch(np.asarray(p["W"], dtype=np.float64), self.group_out, self.in_maps,
                                     g["kernel"])
            conv.weight.copy_(torch.from_numpy(weight))
            conv.bias.copy_(torch.from_numpy(-np.asarray(p["Theta"][0], dtype=np.float64)))
        return conv


def _check_per_axis(name: str, value, minimum: int) -> None:
    """An int, or a sequence of ints (one per axis, the count checked at build time), each >= minimum."""
    if isinstance(value, (list, tuple, np.ndarray)) and not isinstance(value, (str, bytes)):
        if len(value) == 0:
            raise ValueError(f"{name} must have one entry per axis, got an empty sequence")
        for a, v in enumerate(value):
            val.as_positive_int(v, f"{name}[{a}]", minimum=minimum)
    else:
        val.as_positive_int(value, name, minimum=minimum)
