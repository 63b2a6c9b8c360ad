"""Tiled correlation: masks that repeat with a period along every output axis.

forward ....... as :class:`~partitionnet.layers.LocallyConnected`, position p using mask ``slot(p)``
vjp ........... the locally connected gradients, summed over the positions that share a tile
vjp_literal ... ``V_loc^(j,d)`` of (47.1257) with a mask per patch, per connected pair
operator ...... the blocks ``V_loc^(j,d)`` in either algebra
reference ..... direct summation; the tile of output position o is ``o mod tiles`` on every axis

Between a correlation (one mask shared by all positions, 47.1211-47.1212) and
a locally connected layer (a mask per position) lies the tiled convolution of
the slides "004:tiled convolution" (see SOURCES.md): ``T = prod(tiles)`` masks, and output
position ``o`` uses the mask of tile ``o mod tiles`` (axis by axis). Tiles are
numbered in the column-stacked order used for positions, so tile
``(t_0, t_1, ...)`` is slot ``t_0 + tiles_0 (t_1 + tiles_1 t_2)``.

``tiles = 1`` is exactly a :class:`~partitionnet.layers.Correlation` with
``bias='tied'``; ``tiles`` equal to the output shape is a
:class:`~partitionnet.layers.LocallyConnected` layer. Since every position
applies one mask to its patch, the backprop operator is the locally connected
one, ``V_loc^(j,d) = (V^T o (1_M col{w_slot(p)}^T)) (I_P kron 1_S)``
(derivation in :mod:`partitionnet.layers.locally_connected`), and the gradient
of a tile's mask is the sum of (47.1271) over the positions that use it.
"""
from __future__ import annotations

import numbers

import numpy as np

from .base import register
from .locally_connected import _reference_unshared, _Unshared

__all__ = ["TiledCorrelation"]


@register
class TiledCorrelation(_Unshared):
    """A correlation whose masks repeat with period ``tiles`` along each output axis (tiled convolution).

    Parameters
    ----------
    maps : int
        ``D``, the number of output maps.
    kernel, stride, padding, dilation
        The window geometry, as for :class:`~partitionnet.layers.Correlation`.
    tiles : int or tuple of int
        The period of the masks along each output axis (an int applies to
        every axis). Each must be at least 1 and at most the output size on
        its axis.
    name : str, optional
        The layer's name in a network (default ``tiled<k>``).

    Notes
    -----
    ``W`` is ``(T, S D_in, D)`` with ``T = prod(tiles)``, each ``W[t]`` in the
    book's ``W_c`` layout (row ``j S + s`` of column d holds ``w_j^(d)(s)``);
    ``Theta`` is ``(T, D)``, one bias per tile and output map, with the book's
    minus sign. PyTorch has a twin only for ``tiles = 1`` (a plain ``ConvNd``).

    Examples
    --------
    >>> import numpy as np
    >>> from partitionnet import Network, layers as L
    >>> net = Network((6, 6), 1, [L.TiledCorrelation(2, kernel=3, tiles=2)], rng=0)
    >>> dict(net.parameter_shapes())
    {'tiled1.W': (4, 9, 2), 'tiled1.Theta': (4, 2)}
    >>> net.forward(np.ones((3, 1, 6, 6))).shape
    (3, 2, 4, 4)
    """

    kind = "tiled_correlation"
    prefix = "tiled"
    equations = "47.1211-47.1212, 47.1257-47.1258, 47.1271, 47.1274"

    def __init__(self, maps, *, kernel=None, tiles=None, stride=1, padding=0, dilation=1, name=None):
        self._init_geometry(maps, kernel, stride, padding, dilation, name)
        if tiles is None:
            raise ValueError("TiledCorrelation needs tiles=... (an int, or one period per axis)")
        if isinstance(tiles, bool) or not isinstance(tiles, (numbers.Integral, tuple, list, np.ndarray)):
            raise TypeError(f"tiles must be an int or a tuple of ints (one per axis), got "
                            f"{type(tiles).__name__} {tiles!r}")
        items = [tiles] if isinstance(tiles, numbers.Integral) else list(np.asarray(tiles).reshape(-1))
        for t in items:
            if isinstance(t, (bool, np.bool_)) or not isinstance(t, (numbers.Integral, np.integer)):
                raise TypeError(f"tiles must hold integers, got {tiles!r}")
            if t < 1:
                raise ValueError(f"tiles must be at least 1 on every axis, got {tiles!r}")
        self.tiles = int(tiles) if isinstance(tiles, numbers.Integral) else tuple(int(t) for t in items)

    @classmethod
    def examples(cls):
        """Small cases for the layer contract: ``(layer, in_maps, in_shape)``."""
        return [(cls(2, kernel=2, tiles=2), 1, (4, 3)),
                (cls(2, kernel=2, tiles=(1, 2), stride=(2, 1), padding=1), 2, (3, 3)),
                (cls(1, kernel=3, tiles=3, padding="full", dilation=2), 2, (4,)),
                (cls(1, kernel=2, tiles=1), 1, (3, 2)),
                (cls(1, kernel=2, tiles=(2, 1), padding=((0, 1), (1, 1))), 1, (3, 2)),
                (cls(2, kernel=2, tiles=1, stride=2, padding="same"), 2, (3,))]

    def _build(self) -> None:
        self._build_partition()
        where = f"layer {self.name or self.prefix}"
        nd = len(self.out_shape)
        tiles = (self.tiles,) * nd if isinstance(self.tiles, int) else self.tiles
        if len(tiles) != nd:
            raise ValueError(f"{where}: tiles must have one period per axis ({nd}), got {self.tiles!r}")
        if any(t > n for t, n in zip(tiles, self.out_shape)):
            raise ValueError(f"{where}: tiles {tiles} exceed the output shape {self.out_shape} on some axis; "
                             "a period longer than the output would leave masks unused")
        self.tile_shape = tiles
        coords = np.unravel_index(np.arange(self.V.P), self.out_shape, order="F")
        self.slot = np.ravel_multi_index(tuple(c % t for c, t in zip(coords, tiles)), tiles, order="F")

    @property
    def slots(self) -> int:
        return int(np.prod(self.tile_shape))

    @staticmethod
    def reference(config, p, x):
        """Direct summation, position o using the mask of tile ``o mod tiles`` (column-stacked tile number)."""
        nd = np.asarray(x).ndim - 1
        tiles = config["tiles"]
        tiles = tuple(int(t) for t in tiles) if isinstance(tiles, (list, tuple)) else (int(tiles),) * nd

        def slot_of(o, out_shape):
            q, step = 0, 1
            for c, t in zip(o, tiles):
                q += (c % t) * step
                step *= t
            return q

        return _reference_unshared(config, p, x, slot_of)

    def config(self) -> dict:
        tiles = list(self.tile_shape) if hasattr(self, "tile_shape") else (
            list(self.tiles) if isinstance(self.tiles, tuple) else self.tiles)
        return {"kind": self.kind, "maps": self.maps, **self._geometry_config(), "tiles": tiles}

    @classmethod
    def from_config(cls, config):
        return cls(**cls._options_from_config(config))

    def to_torch(self, p):
        """With one tile the layer is a ``Correlation(bias='tied')``: its twin (``ConvNd``, after a ``ZeroPadNd``
        when the padding is unequal on the two sides of an axis)."""
        if self.slots != 1:
            raise NotImplementedError(f"layer {self.name or self.prefix}: PyTorch has no tiled convolution "
                                      f"(tiles {self.tile_shape}); only tiles=1 has a ConvNd twin")
        from .correlation import Correlation

        g = self.V.geometry
        conv = Correlation(self.maps, kernel=g["kernel"], stride=g["stride"], padding=g["padding"],
                           dilation=g["dilation"], bias="tied").build(self.in_maps, self.in_shape)
        return conv.to_torch({"W": np.asarray(p["W"])[0], "Theta": np.asarray(p["Theta"])[:1]})
