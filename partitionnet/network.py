"""The convolutional network of 47.1205-47.1216, built on Partition and Pooling.

A network is ``C`` correlation+pooling layers followed by a feedforward
network of ``L`` layers (47.1216). Layer ``c`` partitions each of the
``D_{c-1}`` maps it receives with the same partition (47.1209), correlates
map ``j`` with mask ``w_j^(d,c)`` for every output map ``d``, subtracts the
biases, applies ``f`` and pools each map (47.1212). The pooled maps of the
last layer are stacked into ``y_1`` (47.1215) and fed to the feedforward part
``z_{l+1} = W_l y_l - theta_l``.

Parameters keep the seed's names and shapes (47.1221-47.1224):

* ``conv{c}.W`` is ``W_c`` (``S_c D_{c-1} x D_c``); column ``d`` is
  ``W^(d,c) = col{w_1^(d,c), ..., w_{D_{c-1}}^(d,c)}``, each ``w`` the vec of a
  kernel window;
* ``conv{c}.Theta`` is ``Theta_c`` (``D_{c-1} x D_c``, one bias per input map,
  47.1212), or ``1 x D_c`` with ``bias='tied'``;
* ``dense{l}.W`` is ``W_l`` (``n_{l+1} x n_l``) and ``dense{l}.theta`` is
  ``theta_l`` (``n_{l+1}``).

Note on naming: the seed calls the partition of the pooled maps of layer
``c`` ``V_c`` because layer ``c+1`` uses it; here each :class:`ConvLayer`
owns the partition of *its input*, so layer ``c`` holds the seed's ``V_{c-1}``.

Internal layout. A stack of maps is held as an array ``(P, N, D)``: map
position first, then sample, then map index. Pooling then sees ``(P, N*D)``
sample columns without a copy, and the patches of all samples are gathered
with one indexing operation. The kernel-offset-major patch array
``H[s, p, n, j]`` (a row permutation of V, see :mod:`partitionnet.backprop.fast`)
is what the forward pass keeps; ``H[:, :, n, j]`` is the seed's
``H_n^(j,c-1)`` (47.1211).
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
from .partition import Partition
from .pooling import KINDS as POOLING_KINDS
from .pooling import Pooling

OUTPUTS = ("identity", "sigmoid", "tanh", "relu", "softmax")
BIAS_MODES = ("per_input", "tied")


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
    """A built correlation layer: its operators and sizes (seed notation)."""

    index: int                  # c, from 1
    partition: Partition        # partitions the layer's input maps (the seed's V_{c-1})
    pooling: Pooling            # regions of the layer's output maps (its T)
    in_maps: int                # D_{c-1}
    maps: int                   # D_c
    activation: str
    connections: np.ndarray     # (D_c, D_{c-1}) bool, the table of 47.1213
    spec: ConvLayer = field(repr=False)

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
        """``W_c`` rearranged as ``K[s, j, d] = w_j^(d,c)(s)`` (kernel offset first)."""
        return W.reshape(self.in_maps, self.S, self.maps).transpose(1, 0, 2)


@dataclass
class Trace:
    """What the forward pass (47.1216) keeps for the backward pass.

    Conv arrays are indexed ``[position, sample, map]``; ``H[c]`` is the
    patch array ``[s, p, n, j]`` of layer ``c``'s input; ``g[c]`` holds the
    pooling gradient vectors with columns ``n*D_c + d``. Dense arrays hold
    samples as columns.
    """

    x: np.ndarray
    H: list
    z_conv: list
    y_conv: list
    t: list
    g: list
    z_dense: list   # z_2 ... z_L
    y_dense: list   # y_1 ... y_L
    batched: bool


class ConvNet:
    """A convolutional network written with explicit partition and pooling matrices.

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
        (47.1224b). 'tied': one bias per output map, ``1 x D_c``.
    rng : int or numpy Generator, optional
        Seed for the initial weights (normal, variance 1/fan-in; biases 0).

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
                 loss="squared", bias="per_input", rng=None):
        self.input_shape = val.as_shape(input_shape, "input_shape")
        self.in_maps = val.as_positive_int(in_maps, "in_maps")
        act.get(activation, "activation")
        if not isinstance(output, str) or output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if not isinstance(loss, str) or loss not in losses.LOSSES:
            raise ValueError(f"loss must be one of {losses.LOSSES}, got {loss!r}")
        if loss == "cross_entropy" and output != "softmax":
            raise ValueError(f"loss='cross_entropy' needs output='softmax', got output={output!r}")
        if not isinstance(bias, str) or bias not in BIAS_MODES:
            raise ValueError(f"bias must be one of {BIAS_MODES}, got {bias!r}")
        if isinstance(layers, ConvLayer) or not isinstance(layers, Sequence) or len(layers) == 0:
            raise TypeError("layers must be a non-empty list of ConvLayer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, ConvLayer):
                raise TypeError(f"layers[{i}] must be a ConvLayer, got {type(layer).__name__}")
        if isinstance(dense, (str, bytes)) or not isinstance(dense, Sequence) or len(dense) == 0:
            raise TypeError("dense must be a non-empty list of layer sizes (the last one is Q)")
        self.activation, self.output, self.loss_name, self.bias = activation, output, loss, bias
        self.conv = self._build_stages(layers)
        last = self.conv[-1]
        self.dense_sizes = [last.maps * last.P_out] + [val.as_positive_int(n, f"dense[{i}]")
                                                      for i, n in enumerate(dense)]
        self._params: "OrderedDict[str, np.ndarray]" = OrderedDict()
        self._init_parameters(np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng)
        self.cache: Trace | None = None

    # ------------------------------------------------------------------ construction
    def _build_stages(self, layers) -> list[ConvStage]:
        stages = []
        shape, maps = self.input_shape, self.in_maps
        for c, spec in enumerate(layers, start=1):
            where = f"layer {c} (conv{c})"
            size = int(np.prod(shape))
            if spec.partition is not None:
                part = spec.partition
                if part.M != size:
                    raise ValueError(f"{where}: partition partitions a vector of size M={part.M}, but the layer "
                                     f"receives maps of shape {shape} (size {size})")
            else:
                try:
                    part = Partition.sliding_window(shape, spec.kernel, stride=spec.stride,
                                                    padding=spec.padding, dilation=spec.dilation)
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"{where}: {exc}") from None
            out_shape = part.output_shape
            if isinstance(spec.pooling, Pooling):
                pool = spec.pooling
                if pool.P != part.P:
                    raise ValueError(f"{where}: pooling acts on maps of size {pool.P}, but the layer produces "
                                     f"maps of size P={part.P} (shape {out_shape})")
            elif spec.pooling is None or spec.window is None:
                pool = Pooling.identity(out_shape)
            else:
                try:
                    pool = Pooling.windows(out_shape, spec.window, kind=spec.pooling, **spec.pool_options)
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"{where}: {exc}") from None
            conn = _connection_table(spec.connections, spec.maps, maps, where)
            stages.append(ConvStage(c, part, pool, maps, spec.maps, spec.activation or self.activation, conn, spec))
            shape, maps = pool.output_shape, spec.maps
        return stages

    def _init_parameters(self, rng: np.random.Generator) -> None:
        for st in self.conv:
            fan_in = st.S * st.connections.sum(axis=1)  # per output map
            W = rng.standard_normal((st.S * st.in_maps, st.maps)) / np.sqrt(np.maximum(fan_in, 1))
            self._params[f"conv{st.index}.W"] = W * st.weight_mask
            rows = st.in_maps if self.bias == "per_input" else 1
            self._params[f"conv{st.index}.Theta"] = np.zeros((rows, st.maps))
        for l in range(1, len(self.dense_sizes)):
            n_in, n_out = self.dense_sizes[l - 1], self.dense_sizes[l]
            self._params[f"dense{l}.W"] = rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
            self._params[f"dense{l}.theta"] = np.zeros(n_out)

    # ------------------------------------------------------------------ parameters
    @property
    def C(self) -> int:
        """Number of correlation layers."""
        return len(self.conv)

    @property
    def L(self) -> int:
        """Number of feedforward layers, input and output included."""
        return len(self.dense_sizes)

    def parameter_shapes(self) -> "OrderedDict[str, tuple]":
        return OrderedDict((k, v.shape) for k, v in self._params.items())

    def parameters(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of all parameters under the seed's names (see the module docstring)."""
        return OrderedDict((k, v.copy()) for k, v in self._params.items())

    def set_parameters(self, params) -> None:
        """Replace some or all parameters; shapes and connection tables are checked first.

        Nothing is changed if any entry is rejected.
        """
        if not isinstance(params, dict):
            raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
        staged = {}
        for key, value in params.items():
            if key not in self._params:
                raise ValueError(f"unknown parameter {key!r}; expected one of {list(self._params)}")
            arr = val.as_float_array(value, key).astype(np.float64)
            expected = self._params[key].shape
            if arr.shape != expected:
                raise ValueError(f"{key} must have shape {expected}, got {arr.shape}")
            val.require_finite(arr, key)
            if key.startswith("conv"):
                st = self.conv[int(key[4:key.index(".")]) - 1]
                if key.endswith(".W"):
                    absent = ~st.weight_mask
                elif self.bias == "per_input":
                    absent = ~st.connections.T
                else:
                    absent = np.zeros(arr.shape, dtype=bool)
                if np.any(arr[absent] != 0):
                    raise ValueError(f"{key} has nonzero entries for input/output map pairs that the layer's "
                                     "connection table (47.1213) leaves unconnected")
            staged[key] = arr.copy()
        self._params.update(staged)

    def weights(self, c: int) -> np.ndarray:
        """``W_c`` (read-only view), c from 1."""
        return self._params[f"conv{c}.W"]

    def kernel(self, c: int, d: int, j: int) -> np.ndarray:
        """The mask ``w_j^(d,c)`` (1-based c, d, j as in the seed) as a kernel-shaped array."""
        st = self._stage(c)
        _check_range(d, st.maps, "d")
        _check_range(j, st.in_maps, "j")
        w = self._params[f"conv{c}.W"][(j - 1) * st.S:j * st.S, d - 1]
        from .vec import unvec
        return unvec(w, st.partition.kernel_shape)

    def bias_sums(self, st: ConvStage) -> np.ndarray:
        """``sum_{j in D} theta^(d,c)(j)`` for every output map d (the constant in 47.1212)."""
        Theta = self._params[f"conv{st.index}.Theta"]
        if self.bias == "tied":
            return Theta[0]
        return (Theta * st.connections.T).sum(axis=0)

    def _stage(self, c: int) -> ConvStage:
        _check_range(c, self.C, "c")
        return self.conv[c - 1]

    # ------------------------------------------------------------------ forward (47.1216)
    def _as_batch(self, x):
        x = val.as_float_array(x, "x").astype(np.float64, copy=False)
        single = (self.in_maps,) + self.input_shape
        if x.shape == single:
            return x[None], False
        if x.ndim == len(single) + 1 and x.shape[1:] == single:
            return x, True
        raise ValueError(f"x must have shape {single} (one sample) or (N,) + {single} (a batch: samples, "
                         f"D_0={self.in_maps} maps, map shape {self.input_shape}); got {x.shape}")

    def forward(self, x) -> np.ndarray:
        """Run the network (47.1216) and keep the trace in ``self.cache``.

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
        """The forward pass of (47.1216) on a batch, keeping every intermediate array."""
        N = xb.shape[0]
        M = int(np.prod(self.input_shape))
        # (N, D0, *map) -> (M, N, D0) with map positions column-stacked.
        axes = (0, 1) + tuple(range(xb.ndim - 1, 1, -1))
        maps = xb.transpose(axes).reshape(N, self.in_maps, M).transpose(2, 0, 1)
        tr = Trace(x=maps, H=[], z_conv=[], y_conv=[], t=[], g=[], z_dense=[], y_dense=[], batched=batched)
        for st in self.conv:
            H = gather_patches(st.partition, maps)                   # [s, p, n, j]
            K = st.kernels(self._params[f"conv{st.index}.W"])        # [s, j, d]
            z = correlate_patches(H, K) - self.bias_sums(st)         # (47.1212)
            f = act.get(st.activation)[0]
            y = f(z)
            t, g = st.pooling.pool(y.reshape(st.P, -1))              # (47.1208)
            maps = t.reshape(st.P_out, N, st.maps)
            for store, value in ((tr.H, H), (tr.z_conv, z), (tr.y_conv, y), (tr.t, maps), (tr.g, g)):
                store.append(value)
        # y_1 = col{t^(1,C), ..., t^(D_C,C)} per sample (47.1215, index map 47.1217).
        y_l = maps.transpose(2, 0, 1).reshape(-1, N)
        tr.y_dense.append(y_l)
        for l in range(1, self.L):
            z_l = self._params[f"dense{l}.W"] @ y_l - self._params[f"dense{l}.theta"][:, None]
            y_l = self._output(z_l) if l == self.L - 1 else act.get(self.activation)[0](z_l)
            tr.z_dense.append(z_l)
            tr.y_dense.append(y_l)
        return tr

    def _output(self, z: np.ndarray) -> np.ndarray:
        if self.output == "softmax":
            return act.softmax(z)
        return act.get(self.output)[0](z)

    def output_derivative(self):
        """``f'`` of the output layer (unused for softmax, whose Jacobian is full)."""
        return None if self.output == "softmax" else act.get(self.output)[1]

    # ------------------------------------------------------------------ loss and gradients
    def targets(self, gamma, n: int, batched: bool) -> np.ndarray:
        """Targets as a (Q, N) matrix; integer class labels are one-hot encoded."""
        Q = self.dense_sizes[-1]
        g = np.asarray(gamma)
        if batched and g.ndim == 1 and np.issubdtype(g.dtype, np.integer):
            if g.shape[0] != n:
                raise ValueError(f"gamma holds {g.shape[0]} labels for {n} samples")
            if g.min(initial=0) < 0 or g.max(initial=0) >= Q:
                raise ValueError(f"gamma labels must lie in [0, {Q - 1}] (Q={Q} outputs), got "
                                 f"min {g.min()} and max {g.max()}")
            return np.eye(Q)[:, g]
        g = val.as_float_array(g, "gamma").astype(np.float64, copy=False)
        expected = (n, Q) if batched else (Q,)
        if g.shape != expected:
            raise ValueError(f"gamma must have shape {expected} (or integer labels of shape ({n},)), got {g.shape}")
        val.require_finite(g, "gamma")
        return g.T if batched else g[:, None]

    def loss(self, x, gamma) -> float:
        """The unregularised loss summed over the batch, ``sum_n l(gamma_n, y_n)`` (the data term of 47.1227)."""
        xb, batched = self._as_batch(x)
        y = self.forward(xb)
        return losses.value(self.loss_name, y.T, self.targets(gamma, xb.shape[0], batched))

    def gradients(self, x, gamma, *, engine: str = "fast") -> "OrderedDict[str, np.ndarray]":
        """Gradients of :meth:`loss` for every parameter (keys as :meth:`parameters`).

        ``engine='kronecker'`` follows the listing of 47.1275 literally with
        the operators ``V^(d,d',c+1)`` of 47.1257; ``engine='fast'`` computes
        the same numbers with batched contractions.
        """
        from .backprop import ENGINES

        if not isinstance(engine, str) or engine not in ENGINES:
            raise ValueError(f"engine must be one of {tuple(ENGINES)}, got {engine!r}")
        xb, batched = self._as_batch(x)
        self.forward(xb)
        gam = self.targets(gamma, xb.shape[0], batched)
        return ENGINES[engine](self, self.cache, gam)

    def sensitivities(self, x, gamma) -> "OrderedDict[str, np.ndarray]":
        """The sensitivities ``delta = d loss / d z`` of every layer, as arrays a reader can plot.

        ``'conv{c}'`` holds ``delta^(d,c)`` (47.1245, 47.1262) with shape
        ``(N, D_c, *map)`` (the map shape of layer c's outputs, before
        pooling); ``'dense{l}'`` holds ``delta_l`` (47.1233-47.1234) with shape
        ``(N, n_l)``, l = 2 ... L. For one unbatched sample the leading N is dropped.
        """
        from .backprop.fast import gradients as fast_gradients

        xb, batched = self._as_batch(x)
        self.forward(xb)
        record: dict = {}
        fast_gradients(self, self.cache, self.targets(gamma, xb.shape[0], batched), record)
        out = OrderedDict()
        N = xb.shape[0]
        for st in self.conv:
            delta = record[f"conv{st.index}"]                        # [p, n, d], p column-stacked
            shape = st.partition.output_shape
            maps = delta.transpose(1, 2, 0).reshape((N, st.maps) + shape[::-1])
            out[f"conv{st.index}"] = maps.transpose((0, 1) + tuple(range(len(shape) + 1, 1, -1)))
        for l in range(2, self.L + 1):
            out[f"dense{l}"] = record[f"dense{l}"].T
        return out if batched else OrderedDict((k, v[0]) for k, v in out.items())

    def backprop_operator(self, c: int, d: int, d_prime: int):
        """``V^(d,d',c+1)`` of (47.1257) for the current weights (1-based, as in the seed).

        It maps the sensitivity ``delta^(d',c+1)`` of map ``d'`` in layer
        ``c+1`` to ``b^(d,d',c)`` over the pooled map ``t^(d,c)`` (47.1258).
        Returned as a ``P'_c x P_{c+1}`` ``csr_array``.
        """
        from .backprop.kronecker import backprop_operator

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
    def save(self, path) -> None:
        """Save architecture and parameters to one ``.npz`` file (see :func:`partitionnet.load`)."""
        from . import io

        io.save(self, path)

    def to_torch(self):
        """An equivalent ``torch.nn.Module`` (float64) for sliding-window networks (optional extra)."""
        from . import torch_bridge

        return torch_bridge.to_torch(self)

    # ------------------------------------------------------------------ misc
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


# ---------------------------------------------------------------------- kernels of the forward pass
def gather_patches(partition: Partition, maps: np.ndarray) -> np.ndarray:
    """All patches of all maps and samples, kernel-offset first: ``H[s, p, n, j]``.

    ``maps`` is ``(M, N, D)``. Row ``s`` of the result is the rows
    ``p*S + s`` of ``V maps`` (V's rows reordered offset-major, the
    commutation ``K_{P,S}``), so each offset is one contiguous block. A
    padded entry (index ``-1``) reads the zero row appended at the end.
    """
    idx = partition.indices.T
    if partition._padded:
        maps = np.concatenate((maps, np.zeros((1,) + maps.shape[1:])), axis=0)
    return maps[idx]


def correlate_patches(H: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``z[p, n, d] = sum_{s, j} H[s, p, n, j] K[s, j, d]``: ``sum_j H_j^T w_j^(d)`` (47.1212).

    One small GEMM per kernel offset ``s`` over a contiguous block; with a
    single input map the blocks form the (transposed) im2col matrix and one
    GEMM does it all (an outer product per offset is far slower).
    """
    S, P, N, D_in = H.shape
    if D_in == 1:
        return (H.reshape(S, P * N).T @ K[:, 0, :]).reshape(P, N, K.shape[2])
    z = H[0].reshape(P * N, D_in) @ K[0]
    for s in range(1, S):
        z += H[s].reshape(P * N, D_in) @ K[s]
    return z.reshape(P, N, K.shape[2])


# ---------------------------------------------------------------------- helpers
def _check_range(value, upper: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not 1 <= value <= upper:
        raise ValueError(f"{name} must be in [1, {upper}] (1-based, as in the seed), got {value}")


def _connection_table(connections, maps: int, in_maps: int, where: str) -> np.ndarray:
    if connections is None:
        return np.ones((maps, in_maps), dtype=bool)
    if isinstance(connections, np.ndarray) and connections.dtype == bool:
        if connections.shape != (maps, in_maps):
            raise ValueError(f"{where}: connections must have shape (D_c, D_c-1) = ({maps}, {in_maps}), "
                             f"got {connections.shape}")
        table = connections.copy()
    else:
        if isinstance(connections, (str, bytes)) or not isinstance(connections, (Sequence, np.ndarray)):
            raise TypeError(f"{where}: connections must be a boolean array or a list of input-map lists")
        if len(connections) != maps:
            raise ValueError(f"{where}: connections needs one list per output map ({maps}), got {len(connections)}")
        table = np.zeros((maps, in_maps), dtype=bool)
        for d, inputs in enumerate(connections):
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
