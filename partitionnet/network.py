"""The book's convolutional network (47.1205-47.1216) as a builder of layers.

A :class:`ConvNet` is ``C`` correlation + activation + pooling stages, the
flattening of (47.1215), and a feedforward part of ``L`` layers (47.1216). It
builds a :class:`~partitionnet.Network` of the layers in
:mod:`partitionnet.layers` and keeps the book's vocabulary on top of it: the
stages ``net.conv`` (each with its partition V and pooling T), the sizes
``C``, ``L`` and ``dense_sizes``, the trace of (47.1216) in ``net.cache``, and
the operators ``V^(d,d',c+1)`` of (47.1257) through :meth:`ConvNet.backprop_operator`.

:class:`ConvLayer` describes one stage, as the book draws it.
"""
from __future__ import annotations

import numbers
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from . import _validate as val
from . import activations as act
from . import losses
from .layers import Activation, Correlation, Dense, Flatten, Pool, Softmax
from .layers.correlation import BIAS_MODES, backprop_operator
from .layout import to_stack
from .model import Network
from .partition import Partition
from .pooling import KINDS as POOLING_KINDS
from .pooling import Pooling
from .threads import governed
from .vec import unvec

OUTPUTS = ("identity", "sigmoid", "tanh", "relu", "softmax")


class ConvLayer:
    """Description of one correlation + pooling layer (47.1212, 47.1208).

    Parameters
    ----------
    maps : int
        ``D_c``, the number of feature maps the layer produces.
    kernel, stride, padding, dilation
        Geometry of a sliding-window partition of the layer's input (see
        :meth:`Partition.sliding_window`). Ignored when ``partition`` is given.
    partition : Partition, optional
        Any partition of the input maps (for example an unstructured one),
        used instead of the geometric arguments.
    pooling : str or Pooling or None, default 'max'
        A pooling kind used with ``window``; or a :class:`Pooling` over the
        layer's ``P_c`` outputs; or ``None`` for no pooling. A kind without a
        ``window`` means no pooling.
    window : int or tuple, optional
        Pooling window (non-overlapping).
    pool_options : dict, optional
        Extra arguments for :meth:`Pooling.windows` (``mask``, ``p``,
        ``retain``, ``rng``, ``drop_remainder``).
    activation : str, optional
        Overrides the network's activation for this layer.
    connections : array (D_c, D_{c-1}) of bool, or list of lists, optional
        The connection table (47.1213): ``connections[d]`` lists the input
        maps (0-based) that feed output map ``d``; default: all.

    Examples
    --------
    >>> ConvLayer(8, kernel=3, padding="same", window=2)
    ConvLayer(8, kernel=3, padding='same', pooling='max', window=2)
    """

    def __init__(self, maps, *, kernel=None, stride=1, padding=0, dilation=1, partition=None,
                 pooling="max", window=None, pool_options=None, activation=None, connections=None):
        self.maps = val.as_positive_int(maps, "maps")
        if partition is not None and not isinstance(partition, Partition):
            raise TypeError(f"partition must be a Partition, got {type(partition).__name__}")
        if partition is None and kernel is None:
            raise ValueError("ConvLayer needs either kernel=... (a sliding window) or partition=...")
        if pooling is not None and not isinstance(pooling, (str, Pooling)):
            raise TypeError(f"pooling must be a kind name, a Pooling or None, got {type(pooling).__name__}")
        if isinstance(pooling, str) and pooling not in POOLING_KINDS:
            raise ValueError(f"pooling must be one of {POOLING_KINDS}, a Pooling or None, got {pooling!r}")
        if pool_options is not None and not isinstance(pool_options, dict):
            raise TypeError(f"pool_options must be a dict, got {type(pool_options).__name__}")
        if activation is not None:
            act.get(activation, "activation")
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation
        self.partition = partition
        self.pooling = pooling
        self.window = window
        self.pool_options = dict(pool_options or {})
        self.activation = activation
        self.connections = connections

    def __repr__(self) -> str:
        parts = [str(self.maps)]
        if self.partition is not None:
            parts.append(f"partition={self.partition!r}")
        else:
            parts.append(f"kernel={self.kernel!r}")
            for name, default in (("stride", 1), ("padding", 0), ("dilation", 1)):
                if getattr(self, name) != default:
                    parts.append(f"{name}={getattr(self, name)!r}")
        if isinstance(self.pooling, Pooling):
            parts.append(f"pooling={self.pooling!r}")
        elif self.pooling is not None and self.window is not None:
            parts.append(f"pooling={self.pooling!r}, window={self.window!r}")
        if self.activation is not None:
            parts.append(f"activation={self.activation!r}")
        if self.connections is not None:
            parts.append("connections=...")
        return f"ConvLayer({', '.join(parts)})"


@dataclass
class ConvStage:
    """One correlation stage of a :class:`ConvNet`, in the book's notation (a view on its layers)."""

    index: int                  # c, from 1
    partition: Partition        # partitions the layer's input maps (the book's V_{c-1})
    pooling: Pooling            # regions of the layer's output maps (its T); identity without pooling
    in_maps: int                # D_{c-1}
    maps: int                   # D_c
    activation: str
    connections: np.ndarray     # (D_c, D_{c-1}) bool, the table of 47.1213
    spec: ConvLayer = field(repr=False)
    layer: Correlation = field(repr=False, default=None)

    @property
    def S(self) -> int:
        return self.partition.S

    @property
    def P(self) -> int:
        return self.partition.P

    @property
    def P_out(self) -> int:
        return self.pooling.P_out

    @property
    def weight_mask(self) -> np.ndarray:
        """Which entries of ``W_c`` exist: row ``j*S + s`` of column ``d`` iff map j feeds d."""
        return np.repeat(self.connections.T, self.S, axis=0)

    def kernels(self, W: np.ndarray) -> np.ndarray:
        """``W_c`` rearranged as ``K[s, j, d] = w_j^(d,c)`` (kernel offset first)."""
        return self.layer.kernels(W)


@dataclass
class Trace:
    """The forward pass (47.1216) in the book's terms, read off the layers' tape.

    Conv arrays are indexed ``[position, sample, map]``; ``H[c]`` is the
    patch array ``[s, p, n, j]`` of layer ``c``'s input; ``g[c]`` holds the
    pooling gradient vectors with columns ``n*D_c + d`` (computed when first
    read: the fused pooling of the fast path does not need them). Dense
    arrays hold samples as columns.
    """

    x: np.ndarray
    H: list
    z_conv: list
    t: list
    z_dense: list   # z_2 ... z_L
    y_dense: list   # y_1 ... y_L
    batched: bool
    tape: list = field(repr=False, default=None)
    y: np.ndarray = field(repr=False, default=None)
    pools: list = field(repr=False, default=None)     # per stage: (Pool layer, its tape residue) or (None, y)

    @property
    def g(self) -> list:
        """The gradient vectors of (47.1196) of every stage's pooling, columns ``n*D_c + d``."""
        if not hasattr(self, "_g"):
            self._g = [np.ones((y.shape[0], y.shape[1] * y.shape[2]), dtype=y.dtype) if pool is None
                       else pool.gradient_vectors(res) for pool, (res, y) in self.pools]
        return self._g


class ConvNet(Network):
    """The network of (47.1205-47.1216): C correlation + pooling layers, then a feedforward part.

    It builds a :class:`~partitionnet.Network` of layers named ``conv{c}``,
    ``conv{c}_act``, ``conv{c}_pool``, ``flatten``, ``dense{l}``,
    ``dense{l}_act`` and ``output``, so its parameters keep the book's names:

    * ``conv{c}.W`` is ``W_c`` (``S_c D_{c-1} x D_c``); column ``d`` is
      ``W^(d,c) = col{w_1^(d,c), ..., w_{D_{c-1}}^(d,c)}`` (47.1221-47.1224);
    * ``conv{c}.Theta`` is ``Theta_c`` (``D_{c-1} x D_c``, 47.1212), or ``1 x D_c`` with ``bias='tied'``;
    * ``dense{l}.W`` is ``W_l`` (``n_{l+1} x n_l``) and ``dense{l}.theta`` is ``theta_l``.

    The book calls the partition of the pooled maps of layer ``c`` ``V_c``
    because layer ``c+1`` uses it; here each layer owns the partition of *its
    input*, so layer ``c`` holds the book's ``V_{c-1}``.

    Parameters
    ----------
    input_shape : int or tuple of int
        Shape of one input map (1-D, 2-D or 3-D), or the size M of a plain
        vector when the first layer uses an unstructured partition.
    in_maps : int
        ``D_0``, the input depth (3 for RGB, 47.1189).
    layers : list of ConvLayer
        The C correlation + pooling layers.
    dense : list of int
        Sizes of the feedforward layers after the flattened maps; the last is Q.
    activation : str, default 'tanh'
        ``f`` for correlation and hidden layers ('tanh', 'relu', 'sigmoid', 'identity').
    output : str, default 'identity'
        Output activation: 'identity', 'sigmoid', 'tanh', 'relu' or 'softmax'.
    loss : str, default 'squared'
        'squared' (``||gamma - y||^2``, 47.1227) or 'cross_entropy' (softmax output only).
    bias : str, default 'per_input'
        'per_input': one bias per input map, ``Theta_c`` is ``D_{c-1} x D_c``
        (47.1224b; only the column sums matter, so the individual biases are
        not identifiable). 'tied': one bias per output map, ``1 x D_c``.
    rng : int or numpy Generator, optional
        Seed for the initial weights (normal, variance 1/fan-in; biases 0).
    dtype : float64 (default) or float32
        Precision of parameters and computations (see :class:`~partitionnet.Network`).

    Examples
    --------
    >>> net = ConvNet((6, 6), 1, [ConvLayer(2, kernel=3, padding="same", window=2),
    ...                           ConvLayer(3, kernel=2, pooling="mean", window=2)],
    ...               [4, 2], output="sigmoid", rng=0)
    >>> net.forward(np.zeros((5, 1, 6, 6))).shape
    (5, 2)
    >>> sorted(net.parameters())[:2]
    ['conv1.Theta', 'conv1.W']
    """

    def __init__(self, input_shape, in_maps, layers, dense, *, activation="tanh", output="identity",
                 loss="squared", bias="per_input", rng=None, dtype=np.float64):
        act.get(activation, "activation")
        if not isinstance(output, str):
            raise TypeError(f"output must be a string, one of {OUTPUTS}, got {type(output).__name__}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if not isinstance(loss, str):
            raise TypeError(f"loss must be a string, one of {losses.LOSSES}, got {type(loss).__name__}")
        if loss not in losses.LOSSES:
            raise ValueError(f"loss must be one of {losses.LOSSES}, got {loss!r}")
        if loss == "cross_entropy" and output != "softmax":
            raise ValueError(f"loss='cross_entropy' needs output='softmax', got output={output!r}")
        if not isinstance(bias, str):
            raise TypeError(f"bias must be a string, one of {BIAS_MODES}, got {type(bias).__name__}")
        if bias not in BIAS_MODES:
            raise ValueError(f"bias must be one of {BIAS_MODES}, got {bias!r}")
        if isinstance(layers, ConvLayer) or not isinstance(layers, Sequence) or len(layers) == 0:
            raise TypeError("layers must be a non-empty list of ConvLayer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, ConvLayer):
                raise TypeError(f"layers[{i}] must be a ConvLayer, got {type(layer).__name__}")
        if isinstance(dense, (str, bytes)) or not isinstance(dense, Sequence) or len(dense) == 0:
            raise TypeError("dense must be a non-empty list of layer sizes (the last one is Q)")
        sizes = [val.as_positive_int(n, f"dense[{i}]") for i, n in enumerate(dense)]
        self.activation, self.output, self.bias = activation, output, bias
        self.specs = list(layers)
        plan = []
        for c, spec in enumerate(layers, start=1):
            plan.append(Correlation(spec.maps, kernel=spec.kernel, stride=spec.stride, padding=spec.padding,
                                    dilation=spec.dilation, partition=spec.partition,
                                    connections=spec.connections, bias=bias, name=f"conv{c}"))
            plan.append(Activation(spec.activation or activation, name=f"conv{c}_act"))
            if isinstance(spec.pooling, Pooling):
                plan.append(Pool(pooling=spec.pooling, name=f"conv{c}_pool"))
            elif spec.pooling is not None and spec.window is not None:
                plan.append(Pool(spec.pooling, spec.window, name=f"conv{c}_pool", **spec.pool_options))
        plan.append(Flatten(name="flatten"))
        for l, n in enumerate(sizes, start=1):
            plan.append(Dense(n, name=f"dense{l}"))
            if l < len(sizes):
                plan.append(Activation(activation, name=f"dense{l}_act"))
        plan.append(Softmax(name="output") if output == "softmax" else Activation(output, name="output"))
        try:
            super().__init__(input_shape, in_maps, plan, loss=loss, rng=rng, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise type(exc)(_conv_where(str(exc))) from None
        self.conv = self._stages()
        last = self.conv[-1]
        self.dense_sizes = [last.maps * last.P_out] + sizes
        self.cache: Trace | None = None

    def _stages(self) -> list:
        stages = []
        for c in range(1, len(self.specs) + 1):
            conv = self.layer(f"conv{c}")
            pool = next((l for l in self.layers if l.name == f"conv{c}_pool"), None)
            stages.append(ConvStage(c, conv.V, pool.T if pool else Pooling.identity(conv.out_shape),
                                    conv.in_maps, conv.maps, self.layer(f"conv{c}_act").function,
                                    conv.table, self.specs[c - 1], conv))
        return stages

    # ------------------------------------------------------------------ the book's sizes
    @property
    def C(self) -> int:
        """Number of correlation layers."""
        return len(self.conv)

    @property
    def L(self) -> int:
        """Number of feedforward layers, input and output included."""
        return len(self.dense_sizes)

    def weights(self, c: int) -> np.ndarray:
        """``W_c`` as a read-only view, c from 1."""
        _check_range(c, self.C, "c")
        return self.layer_parameters(f"conv{c}")["W"]

    def kernel(self, c: int, d: int, j: int) -> np.ndarray:
        """The mask ``w_j^(d,c)`` (1-based c, d, j as in the book) as a kernel-shaped array."""
        st = self._stage(c)
        _check_range(d, st.maps, "d")
        _check_range(j, st.in_maps, "j")
        w = self._params[f"conv{c}.W"][(j - 1) * st.S:j * st.S, d - 1]
        return unvec(w, st.partition.kernel_shape)

    def bias_sums(self, st: ConvStage) -> np.ndarray:
        """``sum_{j in D} theta^(d,c)(j)`` for every output map d (the constant in 47.1212)."""
        return st.layer.bias_sums(self._params[f"conv{st.index}.Theta"])

    def _stage(self, c: int) -> ConvStage:
        _check_range(c, self.C, "c")
        return self.conv[c - 1]

    # ------------------------------------------------------------------ forward (47.1216)
    @governed
    def forward(self, x) -> np.ndarray:
        """Run the network (47.1216) and keep its trace in ``self.cache``.

        ``x`` has shape ``(D_0, *map)`` or ``(N, D_0, *map)``; the result is
        ``(Q,)`` or ``(N, Q)``.
        """
        xb, batched = self._as_batch(x)
        val.require_finite(xb, "x")
        tr = self._trace(xb, batched)
        self.cache = tr
        y = tr.y_dense[-1].T
        return y if batched else y[0]

    __call__ = forward

    def _trace(self, xb: np.ndarray, batched: bool) -> Trace:
        """The forward pass on a checked batch, in the book's terms."""
        y, tape = self._run(xb)
        out = {layer.name: entry for layer, entry in zip(self.layers, tape)}
        tr = Trace(x=to_stack(xb), H=[], z_conv=[], t=[], z_dense=[], y_dense=[], batched=batched,
                   tape=tape, y=y, pools=[])
        for st in self.conv:
            c = st.index
            tr.H.append(self.layer(f"conv{c}").patches(out[f"conv{c}"][0], xb.shape[0]))
            tr.z_conv.append(out[f"conv{c}"][1])
            if f"conv{c}_pool" in out:
                res, t = out[f"conv{c}_pool"]
                tr.pools.append((self.layer(f"conv{c}_pool"), (res, t)))
            else:
                t = out[f"conv{c}_act"][1]
                tr.pools.append((None, (None, t)))
            tr.t.append(t)
        tr.y_dense.append(out["flatten"][1][:, :, 0])
        for l in range(1, self.L):
            tr.z_dense.append(out[f"dense{l}"][1][:, :, 0])
            after = out[f"dense{l}_act"] if l < self.L - 1 else out["output"]
            tr.y_dense.append(after[1][:, :, 0])
        return tr

    def output_derivative(self):
        """``f'`` of the output layer (``None`` for softmax, whose Jacobian is full)."""
        return None if self.output == "softmax" else act.get(self.output)[1]

    # ------------------------------------------------------------------ targets, loss, gradients
    def targets(self, gamma, n: int, batched: bool) -> np.ndarray:
        """Targets as a (Q, N) matrix of columns; integer class labels are one-hot encoded."""
        return self._target_stack(gamma, n, batched)[:, :, 0]

    @governed
    def loss(self, x, gamma) -> float:
        """The unregularised loss summed over the batch, ``sum_n l(gamma_n, y_n)`` (the data term of 47.1227)."""
        xb, batched = self._as_batch(x)
        y = self.forward(xb)
        return self._loss_value(y.T[:, :, None], self._target_stack(gamma, xb.shape[0], batched))

    def trace_gradients(self, trace: Trace, gamma_columns: np.ndarray, *, engine: str = "fast"):
        """Gradients from a kept :class:`Trace` and targets as ``(Q, N)`` columns (no second forward pass)."""
        literal = self._engine(engine)
        return self._backward(trace.tape, trace.y, gamma_columns[:, :, None], literal=literal)[0]

    @governed
    def sensitivities(self, x, gamma) -> "OrderedDict[str, np.ndarray]":
        """The sensitivities ``delta = d loss / d z`` of every layer, as arrays a reader can plot.

        ``'conv{c}'`` holds ``delta^(d,c)`` (47.1245, 47.1262) with shape
        ``(N, D_c, *map)`` (the map shape of layer c's outputs, before
        pooling); ``'dense{l}'`` holds ``delta_l`` (47.1233-47.1234) with shape
        ``(N, n_l)``, l = 2 ... L. For one unbatched sample the leading N is dropped.
        """
        by_layer = super().sensitivities(x, gamma)
        out = OrderedDict((f"conv{st.index}", by_layer[f"conv{st.index}"]) for st in self.conv)
        for l in range(2, self.L + 1):
            out[f"dense{l}"] = by_layer[f"dense{l - 1}"]
        return out

    def backprop_operator(self, c: int, d: int, d_prime: int):
        """``V^(d,d',c+1)`` of (47.1257) for the current weights (1-based, as in the book).

        It maps the sensitivity ``delta^(d',c+1)`` of map ``d'`` in layer
        ``c+1`` to ``b^(d,d',c)`` over the pooled map ``t^(d,c)`` (47.1258).
        Returned as a ``P'_c x P_{c+1}`` ``csr_array``.
        """
        if self.C < 2:
            raise ValueError("backprop_operator links layer c to c+1, but this network has a single "
                             "correlation layer (C = 1)")
        _check_range(c, self.C - 1, "c")
        nxt = self.conv[c]
        _check_range(d, nxt.in_maps, "d")
        _check_range(d_prime, nxt.maps, "d_prime")
        w = self._params[f"conv{c + 1}.W"][(d - 1) * nxt.S:d * nxt.S, d_prime - 1]
        return backprop_operator(nxt.partition, w)

    # ------------------------------------------------------------------ bridges
    def to_torch(self):
        """An equivalent ``torch.nn.Module`` (float64) for sliding-window networks (optional extra)."""
        from . import torch_bridge

        return torch_bridge.to_torch(self)

    def __repr__(self) -> str:
        lines = [f"ConvNet(input {self.in_maps} x {self.input_shape}, activation={self.activation!r}, "
                 f"output={self.output!r}, loss={self.loss_name!r}, bias={self.bias!r})"]
        for st in self.conv:
            pool = ("no pooling" if st.pooling.is_identity
                    else f"pool {st.pooling.kind} -> P'={st.P_out} {st.pooling.output_shape}")
            lines.append(f"  conv{st.index}: {st.in_maps} -> {st.maps} maps, P={st.P}, S={st.S}, "
                         f"{pool}, f={st.activation}")
        lines.append(f"  dense: {' -> '.join(map(str, self.dense_sizes))}")
        return "\n".join(lines)


# ---------------------------------------------------------------------- helpers
def _conv_where(message: str) -> str:
    """Error messages of the built layers name the book's layer number: 'layer conv2' -> 'layer 2 (conv2)'."""
    import re

    return re.sub(r"layer conv(\d+)\w*", lambda m: f"layer {m.group(1)} (conv{m.group(1)})", message)


def _check_range(value, upper: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not 1 <= value <= upper:
        raise ValueError(f"{name} must be in [1, {upper}] (1-based, as in the book), got {value}")
