"""The layer protocol: what every layer kind provides, and the registry of kinds.

A layer is described by its constructor arguments (``config``) and becomes
usable once :meth:`Layer.build` has told it the shape it receives. A built
layer offers, side by side in its own file:

``forward(p, x) -> (y, res)``
    ``x`` is a stack of maps held as ``(P, N, D)``: map position (column-stacked),
    sample, map index. ``res`` is what the backward pass needs.
``vjp(p, res, dy) -> (dx, grads)``
    The fast batched backward pass: the sensitivity of the input and the
    gradient of every parameter (``dx`` is ``None`` with ``need_input=False``).
``vjp_literal(p, res, dy)``
    The book's operator form (for a correlation: ``V^(d,d',c+1)`` and
    ``Delta_n``). Defaults to ``vjp`` where the book has no separate form.
``operator(p, x=None, *, algebra=SCIPY)``
    The transposed Jacobian ``J^T`` of one sample as an explicit sparse matrix
    of shape ``(D_in P_in, D_out P_out)``. A stack of maps is vectorised map by
    map, ``col{x^(1), ..., x^(D)}``, each map column-stacked (the order of
    47.1215 and 47.1217). Written once over an algebra namespace
    (:mod:`partitionnet.algebra`), so the library, ``verify`` and ``derive``
    share one construction. ``x`` (one sample, ``(P_in, D_in)``) matters only for
    nonlinear layers.
``reference(config, p, x)`` (static)
    Direct summation from the description alone, on one sample held as
    ``(D_in, *in_shape)`` (numbers or SymPy symbols); it never sees V or T.
``config()`` / ``from_config(d)``
    A JSON-ready description and its inverse.
``to_torch(p)``
    The PyTorch twin module, where one exists.

Parameters live in the network, under the key ``"<layer name>.<parameter>"``
(:func:`param_key`, :func:`split_key`), in the shapes the book gives them
(47.1221-47.1224). Structural zeros, such as an incomplete connection table
(47.1213), are declared by :meth:`Layer.structural_mask` and applied by the
network in one place.
"""
from __future__ import annotations

import copy
from typing import ClassVar

import numpy as np

from ..algebra import SCIPY

__all__ = ["Layer", "REGISTRY", "register", "param_key", "split_key"]

#: kind name -> layer class; every registered kind passes the layer contract.
REGISTRY: "dict[str, type[Layer]]" = {}


def register(cls):
    """Class decorator: add a layer kind to :data:`REGISTRY` under ``cls.kind``."""
    if cls.kind in REGISTRY and REGISTRY[cls.kind] is not cls:
        raise ValueError(f"layer kind {cls.kind!r} is already registered by {REGISTRY[cls.kind].__name__}")
    REGISTRY[cls.kind] = cls
    return cls


def param_key(layer: str, parameter: str) -> str:
    """The network-wide key of a layer's parameter, e.g. ``param_key('conv1', 'W') == 'conv1.W'``."""
    return f"{layer}.{parameter}"


def split_key(key: str) -> tuple[str, str]:
    """Inverse of :func:`param_key`: ``'conv1.W' -> ('conv1', 'W')``.

    >>> split_key("dense2.theta")
    ('dense2', 'theta')
    """
    layer, dot, parameter = key.rpartition(".")
    if not dot or not layer or not parameter:
        raise ValueError(f"a parameter key has the form '<layer>.<parameter>', got {key!r}")
    return layer, parameter


class Layer:
    """Base class of every layer kind (see the module docstring for the protocol)."""

    #: registry name
    kind: ClassVar[str] = "layer"
    #: the book's equations the layer implements
    equations: ClassVar[str] = ""
    #: default name prefix, numbered by the network (conv1, conv2, ...)
    prefix: ClassVar[str] = "layer"

    name: str | None = None
    in_maps: int
    in_shape: tuple
    out_maps: int
    out_shape: tuple
    #: True when the output is a plain vector per sample (after Flatten or Dense)
    out_vector: bool = False

    # ------------------------------------------------------------------ building
    def build(self, in_maps: int, in_shape: tuple, in_vector: bool = False) -> "Layer":
        """A built copy of this layer for inputs of ``in_maps`` maps of shape ``in_shape``."""
        layer = copy.copy(self)
        layer.in_maps, layer.in_shape, layer.in_vector = int(in_maps), tuple(in_shape), bool(in_vector)
        layer._build()
        return layer

    def _build(self) -> None:
        """Kinds set ``out_maps``, ``out_shape`` (and ``out_vector``) and their operators here."""
        self.out_maps, self.out_shape, self.out_vector = self.in_maps, self.in_shape, self.in_vector

    @property
    def built(self) -> bool:
        return hasattr(self, "in_maps")

    @property
    def P_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def P_out(self) -> int:
        return int(np.prod(self.out_shape))

    # ------------------------------------------------------------------ parameters
    def parameter_shapes(self) -> dict:
        """Local parameter name -> shape (empty for parameter-free layers)."""
        return {}

    def init_parameters(self, rng: np.random.Generator) -> dict:
        """Initial values (structural zeros already applied)."""
        return {}

    def structural_mask(self, parameter: str):
        """Boolean array: which entries of ``parameter`` exist, or ``None`` when all do."""
        return None

    # ------------------------------------------------------------------ the protocol
    def forward(self, p: dict, x: np.ndarray):
        raise NotImplementedError

    def vjp(self, p: dict, res, dy: np.ndarray, *, need_input: bool = True):
        raise NotImplementedError

    def vjp_literal(self, p: dict, res, dy: np.ndarray, *, need_input: bool = True):
        """The book's operator form of the backward pass; the same as :meth:`vjp` unless a kind overrides it."""
        return self.vjp(p, res, dy, need_input=need_input)

    def operator(self, p: dict, x=None, *, algebra=SCIPY):
        raise NotImplementedError

    @staticmethod
    def reference(config: dict, p: dict, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        """Rebuild an (unbuilt) layer from :meth:`config`."""
        options = {k: v for k, v in config.items() if k != "kind"}
        return cls(**options)

    def to_torch(self, p: dict):
        raise NotImplementedError(f"{type(self).__name__} has no PyTorch twin")

    @classmethod
    def examples(cls) -> list:
        """Small ``(layer, in_maps, in_shape)`` cases that the layer contract runs; every kind lists some."""
        raise NotImplementedError(f"{cls.__name__} lists no examples for the layer contract")

    # ------------------------------------------------------------------ helpers for kinds
    def _describe_sizes(self) -> str:
        if not self.built:
            return "unbuilt"
        return f"{self.in_maps}x{self.in_shape} -> {self.out_maps}x{self.out_shape}"

    def __repr__(self) -> str:
        args = [f"{k}={v!r}" for k, v in self.config().items() if k != "kind"]
        if self.name:
            args.append(f"name={self.name!r}")
        return f"{type(self).__name__}({', '.join(args)})"

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.config() == other.config() and getattr(self, "in_shape", None) == getattr(other, "in_shape", None)

    __hash__ = None


def maps_of(x: np.ndarray, shape: tuple) -> np.ndarray:
    """One sample ``(P, D)`` (positions column-stacked) as ``(D, *shape)`` maps."""
    P, D = x.shape
    return np.stack([np.reshape(x[:, d], shape, order="F") for d in range(D)]) if D else np.empty((0,) + shape)


def stack_of(maps: np.ndarray) -> np.ndarray:
    """Inverse of :func:`maps_of`: ``(D, *shape)`` maps as one sample ``(P, D)``."""
    D = maps.shape[0]
    return np.stack([np.reshape(maps[d], -1, order="F") for d in range(D)], axis=1)
