"""``Network``: an ordered list of layers, walked forward and backward.

The network owns the parameters (keys ``"<layer name>.<parameter>"``, in
layer order), runs each layer's ``forward`` keeping what its backward pass
needs, and walks the layers in reverse with either their fast ``vjp``
(``engine='fast'``) or the book's operator form ``vjp_literal``
(``engine='kronecker'``, the listing of 47.1275). Nothing about a layer kind
is written here: a new kind is one file in :mod:`partitionnet.layers`.

Internally a stack of maps is ``(P, N, D)`` (:mod:`partitionnet.layout`); users
pass ``(N, D_0, *map)`` and receive ``(N, Q)`` when the last layer gives a
vector (after :class:`~partitionnet.layers.Flatten` or
:class:`~partitionnet.layers.Dense`), ``(N, D, *map)`` otherwise.

Losses (summed over the batch, the data term of 47.1227):

* ``'squared'``: ``||gamma - y||^2``, output sensitivity ``2(y - gamma)`` (47.1233);
* ``'cross_entropy'``: ``-sum gamma log y`` after a final ``Softmax``; the two
  are fused, ``delta = y sum(gamma) - gamma``.
"""
from __future__ import annotations

import numbers
from collections import OrderedDict
from typing import Sequence

import numpy as np

from . import _validate as val
from .layers.base import Layer, param_key, split_key
from .layers.softmax import Softmax
from .layout import from_stack, to_stack
from .threads import governed

LOSSES = ("squared", "cross_entropy")
ENGINE_NAMES = ("kronecker", "fast")

__all__ = ["Network", "LOSSES"]


class Network:
    """A network of layers from :mod:`partitionnet.layers`, with the book's parameters and both backward engines.

    Parameters
    ----------
    input_shape : int or tuple of int
        Shape of one input map (1-D, 2-D or 3-D).
    in_maps : int
        ``D_0``, the number of input maps (channels).
    layers : list of Layer
        The layers in order. They are copied and built for the shapes they receive.
    loss : {'squared', 'cross_entropy'}
        ``'cross_entropy'`` needs a final :class:`~partitionnet.layers.Softmax`.
    rng : int or numpy Generator, optional
        Seed of the initial weights.
    dtype : numpy float dtype, default float64
        The precision of parameters, inputs and every intermediate array; ``float32`` runs the same
        algebra in single precision. The proofs stay in float64 or exact arithmetic.

    Examples
    --------
    >>> import numpy as np
    >>> from partitionnet import Network, layers as L
    >>> net = Network((8, 8), 2, [L.Correlation(3, kernel=3, padding="same"), L.Activation("tanh"),
    ...                           L.Pool("max", 2), L.Flatten(), L.Dense(5), L.Activation("sigmoid"),
    ...                           L.Dense(2)], rng=0)
    >>> x = np.random.default_rng(1).standard_normal((4, 2, 8, 8))
    >>> gamma = np.random.default_rng(2).standard_normal((4, 2))
    >>> net.forward(x).shape
    (4, 2)
    >>> list(net.parameters())
    ['conv1.W', 'conv1.Theta', 'dense1.W', 'dense1.theta', 'dense2.W', 'dense2.theta']
    >>> fast, book = net.gradients(x, gamma), net.gradients(x, gamma, engine="kronecker")
    >>> bool(max(abs(fast[k] - book[k]).max() for k in fast) < 1e-10)
    True
    """

    def __init__(self, input_shape, in_maps, layers, *, loss="squared", rng=None, dtype=np.float64):
        self.input_shape = val.as_shape(input_shape, "input_shape")
        self.in_maps = val.as_positive_int(in_maps, "in_maps")
        if not isinstance(loss, str):
            raise TypeError(f"loss must be a string, one of {LOSSES}, got {type(loss).__name__}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if isinstance(layers, Layer) or not isinstance(layers, Sequence) or len(layers) == 0:
            raise TypeError(f"layers must be a non-empty list of layers from partitionnet.layers, got "
                            f"{type(layers).__name__}")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must be a layer from partitionnet.layers, got {type(layer).__name__}")
        if loss == "cross_entropy" and not isinstance(layers[-1], Softmax):
            raise ValueError(f"loss='cross_entropy' needs a final Softmax layer, got {type(layers[-1]).__name__}")
        self.dtype = _as_dtype(dtype)
        self.loss_name = loss
        self.layers = self._build(layers)
        self._params: "OrderedDict[str, np.ndarray]" = OrderedDict()
        self._keys = []                     # per layer: [(local name, key)]
        generator = _as_generator(rng)
        for layer in self.layers:
            keys = [(name, param_key(layer.name, name)) for name in layer.parameter_shapes()]
            self._keys.append(keys)
            initial = layer.init_parameters(generator)
            for name, key in keys:
                value = np.asarray(initial[name], dtype=np.float64).astype(self.dtype)
                mask = layer.structural_mask(name)
                self._params[key] = value * mask if mask is not None else value
        self._first_trained = next((i for i, keys in enumerate(self._keys) if keys), len(self.layers))
        # the structural masks (47.1213) are fixed once the layers are built: looked up once, not every step
        self._masks = [[(local, key, layer.structural_mask(local)) for local, key in keys]
                       for layer, keys in zip(self.layers, self._keys)]

    def _build(self, layers) -> list:
        built, counts, names = [], {}, set()
        maps, shape, vector = self.in_maps, self.input_shape, False
        for i, layer in enumerate(layers):
            counts[layer.prefix] = counts.get(layer.prefix, 0) + 1
            name = layer.name or f"{layer.prefix}{counts[layer.prefix]}"
            if name in names:
                raise ValueError(f"layers[{i}]: the name {name!r} is already used by an earlier layer")
            names.add(name)
            layer = layer.build(maps, shape, vector) if layer.name == name else _renamed(layer, name).build(
                maps, shape, vector)
            built.append(layer)
            maps, shape, vector = layer.out_maps, layer.out_shape, layer.out_vector
        return built

    # ------------------------------------------------------------------ parameters
    def parameter_shapes(self) -> "OrderedDict[str, tuple]":
        """Every parameter's shape, in layer order."""
        return OrderedDict((k, v.shape) for k, v in self._params.items())

    def parameters(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of all parameters, keys ``"<layer name>.<parameter>"`` in layer order."""
        return OrderedDict((k, v.copy()) for k, v in self._params.items())

    def layer(self, name: str) -> Layer:
        """The built layer called ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; the layers are {[l.name for l in self.layers]}")

    def layer_parameters(self, name: str) -> dict:
        """Read-only views of one layer's parameters, by their local names (``W``, ``Theta``, ...)."""
        i = self.layers.index(self.layer(name))
        out = {}
        for local, key in self._keys[i]:
            view = self._params[key].view()
            view.setflags(write=False)
            out[local] = view
        return out

    def set_parameters(self, params) -> None:
        """Replace some or all parameters; names, shapes, finiteness and structural zeros are checked first.

        Nothing is changed if any entry is rejected.
        """
        if not isinstance(params, dict):
            raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
        owner = {key: (layer, local) for layer, keys in zip(self.layers, self._keys) for local, key in keys}
        staged = {}
        for key, value in params.items():
            if key not in self._params:
                raise ValueError(f"unknown parameter {key!r}; expected one of {list(self._params)}")
            arr = val.as_float_array(value, key).astype(self.dtype)
            expected = self._params[key].shape
            if arr.shape != expected:
                raise ValueError(f"{key} must have shape {expected}, got {arr.shape}")
            val.require_finite(arr, key)
            layer, local = owner[key]
            mask = layer.structural_mask(local)
            if mask is not None and np.any(arr[~mask] != 0):
                raise ValueError(f"{key} has nonzero entries for input/output map pairs that the layer's "
                                 "connection table (47.1213) leaves unconnected")
            staged[key] = arr.copy()
        self._params.update(staged)

    def structural_mask(self, key: str):
        """Which entries of parameter ``key`` exist (a boolean array), or ``None`` when all do.

        Entries outside the mask are structural zeros, such as the unconnected
        pairs of a connection table (47.1213): they stay zero in training.
        """
        if key not in self._params:
            raise ValueError(f"unknown parameter {key!r}; expected one of {list(self._params)}")
        layer, local = split_key(key)
        return self.layer(layer).structural_mask(local)

    def _p(self, i: int) -> dict:
        return {local: self._params[key] for local, key in self._keys[i]}

    # ------------------------------------------------------------------ forward
    @property
    def output_vector(self) -> bool:
        return self.layers[-1].out_vector

    @property
    def output_shape(self) -> tuple:
        """Shape of one sample's output: ``(Q,)`` for a vector, ``(D, *map)`` for maps."""
        last = self.layers[-1]
        return (last.P_out,) if last.out_vector else (last.out_maps,) + tuple(last.out_shape)

    def _as_batch(self, x):
        x = val.as_float_array(x, "x").astype(self.dtype, copy=False)
        single = (self.in_maps,) + self.input_shape
        if x.shape == single:
            return x[None], False
        if x.ndim == len(single) + 1 and x.shape[1:] == single:
            if x.shape[0] == 0:
                raise ValueError(f"x holds no samples (shape {x.shape}); pass at least one sample")
            return x, True
        raise ValueError(f"x must have shape {single} (one sample) or (N,) + {single} (a batch: samples, "
                         f"D_0={self.in_maps} maps, map shape {self.input_shape}); got {x.shape}")

    def _run(self, xb: np.ndarray):
        """The forward pass on a checked batch: the output stack and the tape of ``(res, output)`` per layer."""
        stack = to_stack(xb)
        tape = []
        for i, layer in enumerate(self.layers):
            stack, res = layer.forward(self._p(i), stack)
            tape.append((res, stack))
        return stack, tape

    def _user_output(self, stack: np.ndarray) -> np.ndarray:
        if self.output_vector:
            return stack[:, :, 0].T
        return from_stack(stack, self.layers[-1].out_shape)

    @governed
    def forward(self, x) -> np.ndarray:
        """Run the network on ``x`` (``(D_0, *map)`` or ``(N, D_0, *map)``)."""
        xb, batched = self._as_batch(x)
        val.require_finite(xb, "x")
        y = self._user_output(self._run(xb)[0])
        return y if batched else y[0]

    __call__ = forward

    # ------------------------------------------------------------------ loss
    def _target_stack(self, gamma, n: int, batched: bool) -> np.ndarray:
        """Targets in the internal ``(P, N, D)`` layout; integer class labels are one-hot encoded."""
        shape = self.output_shape
        g = np.asarray(gamma) if not isinstance(gamma, (str, bytes)) else gamma
        if self.output_vector and batched and isinstance(g, np.ndarray) and g.ndim == 1 \
                and np.issubdtype(g.dtype, np.integer):
            Q = shape[0]
            if g.shape[0] != n:
                raise ValueError(f"gamma holds {g.shape[0]} labels for {n} samples")
            if Q == 1:
                raise ValueError(f"gamma holds integer labels of shape ({n},), but the network has a single "
                                 f"output (Q = 1), where labels and values cannot be told apart; pass targets "
                                 f"of shape ({n}, 1)")
            if g.min(initial=0) < 0 or g.max(initial=0) >= Q:
                raise ValueError(f"gamma labels must lie in [0, {Q - 1}] (Q={Q} outputs), got "
                                 f"min {g.min()} and max {g.max()}")
            return np.eye(Q, dtype=self.dtype)[g].T[:, :, None]
        g = val.as_float_array(g, "gamma").astype(self.dtype, copy=False)
        expected = ((n,) if batched else ()) + shape
        if g.shape != expected:
            hint = f" (or integer labels of shape ({n},))" if self.output_vector and batched else ""
            raise ValueError(f"gamma must have shape {expected}{hint}, got {g.shape}")
        val.require_finite(g, "gamma")
        gb = g if batched else g[None]
        if self.output_vector:
            return gb.T[:, :, None]
        return to_stack(gb)

    def _loss_value(self, y: np.ndarray, gam: np.ndarray) -> float:
        if self.loss_name == "squared":
            return float(np.sum((gam - y) ** 2))
        # Clip only inside the log: a predicted probability of exactly 0 for a true class would give inf.
        # (1e-300 is 0 in float32: clip at the dtype's smallest normal number where that is larger)
        return float(-np.sum(gam * np.log(np.clip(y, max(1e-300, float(np.finfo(y.dtype).tiny)), None))))

    def _output_sensitivity(self, y: np.ndarray, gam: np.ndarray):
        """``(index of the first layer to walk back through, dloss/d(its output))``."""
        if self.loss_name == "cross_entropy":          # fused with the final Softmax
            return len(self.layers) - 2, y * gam.sum(axis=(0, 2), keepdims=True) - gam
        return len(self.layers) - 1, 2.0 * (y - gam)

    @governed
    def loss(self, x, gamma) -> float:
        """The loss summed over the batch, ``sum_n l(gamma_n, y_n)`` (the data term of 47.1227)."""
        xb, batched = self._as_batch(x)
        val.require_finite(xb, "x")
        gam = self._target_stack(gamma, xb.shape[0], batched)
        return self._loss_value(self._run(xb)[0], gam)

    # ------------------------------------------------------------------ backward
    def _backward(self, tape, y, gam, *, literal: bool, need_input: bool = False, record: dict | None = None):
        """Walk the layers in reverse; return the gradients (parameter order) and ``dloss/dx`` (stack) or None."""
        start, dy = self._output_sensitivity(y, gam)
        grads = {}
        for i in range(start, -1, -1):
            layer = self.layers[i]
            if record is not None:
                record[layer.name] = dy
            step = layer.vjp_literal if literal else layer.vjp
            wanted = need_input or i > self._first_trained
            dx, g = step(self._p(i), tape[i][0], dy, need_input=wanted)
            for local, key, mask in self._masks[i]:
                grads[key] = g[local] * mask if mask is not None else g[local]
            if not wanted:
                break
            dy = dx
        return (OrderedDict((k, np.asarray(grads[k], dtype=self.dtype)) for k in self._params),
                (dy if need_input else None))

    def _engine(self, engine) -> bool:
        if not isinstance(engine, str):
            raise TypeError(f"engine must be a string, one of {ENGINE_NAMES}, got {type(engine).__name__}")
        if engine not in ENGINE_NAMES:
            raise ValueError(f"engine must be one of {ENGINE_NAMES}, got {engine!r}")
        return engine == "kronecker"

    @governed
    def value_and_grad(self, x, gamma, *, engine: str = "fast"):
        """``(loss, outputs, gradients)`` from one forward and one backward pass.

        ``engine='kronecker'`` walks the layers' literal operator forms (the
        listing of 47.1275 with ``V^(d,d',c+1)`` of 47.1257); ``'fast'`` their
        batched ones. Both give the same numbers.
        """
        literal = self._engine(engine)
        xb, batched = self._as_batch(x)
        val.require_finite(xb, "x")
        gam = self._target_stack(gamma, xb.shape[0], batched)
        y, tape = self._run(xb)
        grads, _ = self._backward(tape, y, gam, literal=literal)
        out = self._user_output(y)
        return self._loss_value(y, gam), (out if batched else out[0]), grads

    @governed
    def gradients(self, x, gamma, *, engine: str = "fast") -> "OrderedDict[str, np.ndarray]":
        """Gradients of :meth:`loss` for every parameter (keys as :meth:`parameters`)."""
        return self.value_and_grad(x, gamma, engine=engine)[2]

    @governed
    def input_gradient(self, x, gamma, *, engine: str = "fast") -> np.ndarray:
        """``d loss / d x`` with the shape of ``x``: the saliency of every input entry."""
        literal = self._engine(engine)
        xb, batched = self._as_batch(x)
        val.require_finite(xb, "x")
        gam = self._target_stack(gamma, xb.shape[0], batched)
        y, tape = self._run(xb)
        _, dx = self._backward(tape, y, gam, literal=literal, need_input=True)
        out = from_stack(dx, self.input_shape)
        return out if batched else out[0]

    @governed
    def sensitivities(self, x, gamma) -> "OrderedDict[str, np.ndarray]":
        """``d loss / d (output of layer)`` for every layer with parameters, in the user's layout.

        For a correlation layer that is ``delta^(d,c)`` of (47.1245, 47.1262)
        as maps ``(N, D, *map)``; for a dense layer ``delta_l`` (47.1233-47.1234)
        as ``(N, n)``. One unbatched sample drops the leading N.
        """
        xb, batched = self._as_batch(x)
        val.require_finite(xb, "x")
        gam = self._target_stack(gamma, xb.shape[0], batched)
        y, tape = self._run(xb)
        record: dict = {}
        self._backward(tape, y, gam, literal=False, record=record)
        out = OrderedDict()
        for layer, keys in zip(self.layers, self._keys):
            if keys and layer.name in record:
                d = record[layer.name]
                out[layer.name] = d[:, :, 0].T if layer.out_vector else from_stack(d, layer.out_shape)
        return out if batched else OrderedDict((k, v[0]) for k, v in out.items())

    # ------------------------------------------------------------------ description and bridges
    def config(self) -> dict:
        """A JSON-ready description: shapes, loss, and every layer's ``config`` with its name."""
        return {"input_shape": list(self.input_shape), "in_maps": self.in_maps, "loss": self.loss_name,
                "dtype": np.dtype(self.dtype).name,
                "layers": [dict(layer.config(), name=layer.name) for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict, *, rng=None) -> "Network":
        """Rebuild a network (fresh parameters) from :meth:`config`."""
        from .layers.base import REGISTRY

        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        layers = []
        for i, d in enumerate(config.get("layers", [])):
            kind = d.get("kind") if isinstance(d, dict) else None
            if kind not in REGISTRY:
                raise ValueError(f"layers[{i}] has unknown kind {kind!r}; known kinds: {sorted(REGISTRY)}")
            options = {k: v for k, v in d.items() if k != "name"}
            layer = REGISTRY[kind].from_config(options)
            layer.name = d.get("name")
            layers.append(layer)
        return cls(config["input_shape"], config["in_maps"], layers, loss=config.get("loss", "squared"), rng=rng,
                   dtype=config.get("dtype", "float64"))

    def save(self, path, *, metadata=None):
        """Write the network (its configuration and parameters) to one ``.npz`` file; see :func:`partitionnet.io.save`.

        >>> import os, tempfile
        >>> from partitionnet import Network, layers as L, load
        >>> net = Network((6,), 1, [L.Correlation(2, kernel=3), L.Activation("relu"), L.Flatten(), L.Dense(1)],
        ...               rng=0)
        >>> path = net.save(os.path.join(tempfile.mkdtemp(), "net.npz"))
        >>> x = np.ones((2, 1, 6))
        >>> bool(np.array_equal(load(path).forward(x), net.forward(x)))
        True
        """
        from . import io

        return io.save(self, path, metadata=metadata)

    def to_torch(self):
        """A float64 ``torch.nn.Sequential`` of the layers' twins, children named as the layers."""
        import torch

        return torch.nn.Sequential(OrderedDict(
            (layer.name, layer.to_torch(self._p(i))) for i, layer in enumerate(self.layers))).double()

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}(input {self.in_maps} x {self.input_shape}, loss={self.loss_name!r})"]
        for layer in self.layers:
            lines.append(f"  {layer.name}: {layer!r}  [{layer._describe_sizes()}]")
        return "\n".join(lines)


def _renamed(layer: Layer, name: str) -> Layer:
    import copy

    out = copy.copy(layer)
    out.name = name
    return out


def _as_dtype(dtype):
    """float64 (default) or float32; anything else is refused rather than silently rounded."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a numpy float dtype (float64 or float32), got {dtype!r}") from None
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32, got {dt.name}")
    return dt.type


def _as_generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        if rng is not None and rng < 0:
            raise ValueError(f"rng must be a non-negative integer seed, got {rng}")
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an integer seed or a numpy Generator, got {type(rng).__name__} {rng!r}")
