"""An independent dense model of the network: the oracle of the tests.

Everything here is written from the *description* of a :class:`ConvNet`
(its geometry, index lists, pooling regions, parameters), never from its
operators: no partition matrix ``V``, no permutation ``T``, no gather or
pooling code of the library is used.

* Each correlation is a dense ``P x M`` matrix built by direct summation over
  output positions and kernel offsets, as the convolution chapter writes the
  2x2-on-3x3 example (Eq. 8.12): row ``p`` holds the mask entries at the
  columns that window ``p`` covers. :func:`layer_matrix` builds it.
* Pooling loops over the regions ``Omega_p'`` one by one (47.1187, 47.1208).
* The feedforward part is plain numpy: ``z = W y - theta`` (47.1216).
* Gradients are central differences of the loss (:func:`numerical_gradients`).

Conventions are the library's: maps and kernel windows
are vectorised by stacking columns (first axis fastest), indices are 0-based,
the book's signs (``z = sum_j (H_j^T w_j - theta(j) 1)``, 47.1212) and shapes
(``W_c`` is ``S_c D_{c-1} x D_c``, 47.1224). Sizes must stay small: the
matrices are dense and the loops are Python loops.

Examples
--------
>>> import numpy as np
>>> from partitionnet import ConvNet, ConvLayer, reference
>>> net = ConvNet((5, 5), 1, [ConvLayer(2, kernel=3, window=3)], [2], rng=0)
>>> x = np.random.default_rng(1).standard_normal((4, 1, 5, 5))
>>> bool(np.allclose(reference.forward(net, x), net.forward(x)))
True
"""
from __future__ import annotations

import itertools
from collections import OrderedDict
from functools import lru_cache

import numpy as np

__all__ = ["layer_matrix", "pool", "trace", "forward", "loss", "numerical_gradients"]


# ---------------------------------------------------------------------------- correlation (Eq. 8.12)
def layer_matrix(layout, kernel, *, size=None) -> np.ndarray:
    """The dense matrix ``A`` of one correlation: ``z = A h`` is ``H^T w`` (47.1133, Eq. 8.12).

    ``A[p, m] = sum_s w(s) [entry s of window p is h(m)]``, summed directly
    over output positions ``p`` and kernel offsets ``s``. Positions and
    offsets are numbered by column stacking (first axis fastest), as are the
    entries ``m`` of the map. A window entry in the zero padding contributes
    nothing (the book's "fictitious zero values", 47.1129).

    Parameters
    ----------
    layout : dict, sequence of index lists, or Partition
        Where the windows sit. Either

        * a geometry dict with keys ``input_shape``, ``kernel``, ``stride``,
          ``padding`` and ``dilation`` (ints or per-axis tuples; ``padding``
          may also be ``'valid'``, ``'same'`` or ``'full'``), as found in
          ``Partition.geometry``: window ``p`` (output multi-index ``o``)
          reads the map at ``o * stride - padding + k * dilation`` for each
          kernel multi-index ``k``; or
        * ``P`` lists of ``S`` entries (``None`` = padding), as
          ``Partition.index_lists()`` returns: window ``p`` reads
          ``h(layout[p][s])`` at offset ``s``; ``size`` (M) is then required; or
        * a ``Partition``, of which only ``.geometry`` or
          ``.index_lists()`` and ``.M`` are read.
    kernel : array_like
        The mask ``w``: an array of the kernel's shape (vectorised by column
        stacking), or the vector ``w`` of length ``S``.
    size : int, optional
        ``M``, the length of the vector being partitioned (index lists only).

    Returns
    -------
    ndarray, shape (P, M)

    Examples
    --------
    The convolution chapter's example (Eq. 8.12): a 2x2 mask over a 3x3 map.

    >>> w = np.array([[1.0, 3.0], [2.0, 4.0]])          # w11=1, w21=2, w12=3, w22=4
    >>> geometry = dict(input_shape=(3, 3), kernel=(2, 2), stride=1, padding=0, dilation=1)
    >>> layer_matrix(geometry, w).astype(int)
    array([[1, 2, 0, 3, 4, 0, 0, 0, 0],
           [0, 1, 2, 0, 3, 4, 0, 0, 0],
           [0, 0, 0, 1, 2, 0, 3, 4, 0],
           [0, 0, 0, 0, 1, 2, 0, 3, 4]])

    An unstructured partition (index lists, ``None`` for padding):

    >>> layer_matrix([[0, 2], [1, None]], [10.0, 1.0], size=3)
    array([[10.,  0.,  1.],
           [ 0., 10.,  0.]])
    """
    B = _selection_tensor(_layout_key(layout, size))
    w = np.asarray(kernel, dtype=np.float64)
    S = B.shape[0]
    if w.ndim > 1:
        w = w.reshape(-1, order="F")        # column stacking
    if w.shape != (S,):
        raise ValueError(f"kernel must hold S={S} entries (the window size), got shape {np.shape(kernel)}")
    return np.tensordot(w, B, axes=1)


def _layout_key(layout, size):
    """A hashable, library-free description of the windows (for the cache)."""
    if hasattr(layout, "geometry") and hasattr(layout, "index_lists"):        # a Partition
        if layout.geometry is not None:
            return _layout_key(layout.geometry, None)
        return _layout_key(layout.index_lists(), layout.M)
    if isinstance(layout, dict):
        shape = _as_tuple(layout["input_shape"], None)
        nd = len(shape)
        kernel = _as_tuple(layout["kernel"], nd)
        stride = _as_tuple(layout.get("stride", 1), nd)
        dilation = _as_tuple(layout.get("dilation", 1), nd)
        padding = layout.get("padding", 0)
        if isinstance(padding, str):
            extent = [d * (k - 1) for k, d in zip(kernel, dilation)]
            padding = {"valid": [0] * nd, "full": extent, "same": [e // 2 for e in extent]}[padding]
        return ("geometry", shape, kernel, stride, _as_tuple(padding, nd), dilation)
    if size is None:
        raise ValueError("layer_matrix needs size=M (the length of the partitioned vector) with index lists")
    lists = tuple(tuple(None if i is None else int(i) for i in row) for row in layout)
    return ("lists", lists, int(size))


def _as_tuple(value, nd):
    if np.ndim(value) == 0:
        return (int(value),) * (1 if nd is None else nd)
    return tuple(int(v) for v in value)


@lru_cache(maxsize=64)
def _selection_tensor(key) -> np.ndarray:
    """``B[s, p, m] = 1`` iff entry ``s`` of window ``p`` is ``h(m)``; then ``A = sum_s w(s) B[s]``."""
    if key[0] == "lists":
        _, lists, M = key
        P, S = len(lists), len(lists[0])
        B = np.zeros((S, P, M))
        for p, row in enumerate(lists):
            for s, m in enumerate(row):
                if m is not None:
                    B[s, p, m] += 1.0
        return B
    _, shape, kernel, stride, padding, dilation = key
    nd = len(shape)
    out = [(n + 2 * pad - dil * (k - 1) - 1) // st + 1                        # Eq. 8.18-8.19, floor
           for n, k, st, pad, dil in zip(shape, kernel, stride, padding, dilation)]
    M, P, S = int(np.prod(shape)), int(np.prod(out)), int(np.prod(kernel))
    B = np.zeros((S, P, M))
    for p, o in enumerate(_column_major(out)):
        for s, k in enumerate(_column_major(kernel)):
            coord = [o[a] * stride[a] - padding[a] + k[a] * dilation[a] for a in range(nd)]
            if all(0 <= coord[a] < shape[a] for a in range(nd)):
                m, step = 0, 1
                for a in range(nd):                   # column-stacked flat index
                    m += coord[a] * step
                    step *= shape[a]
                B[s, p, m] += 1.0
    return B


def _column_major(shape):
    """Multi-indices of ``shape`` with the first axis varying fastest."""
    for rev in itertools.product(*(range(n) for n in reversed(shape))):
        yield tuple(reversed(rev))


# ---------------------------------------------------------------------------- pooling (47.1187)
def pool(kind, regions, y, *, mask=None, p=None, retain=None) -> np.ndarray:
    """Pool ``y`` (``P`` or ``P x N``) region by region: ``t(p') = pool(y(Omega_p'))`` (47.1187).

    ``kind`` is one of 'mean', 'max', 'l2', 'lp' (exponent ``p``),
    'correlation' (``mask``: one coefficient per entry of the map) or
    'subsample' (``retain[p']``: position kept inside region ``p'``, in the
    region's own order).

    >>> pool("max", [[0, 3], [1, 2]], np.array([1.0, 5.0, -2.0, 4.0]))
    array([4., 5.])
    """
    y = np.asarray(y, dtype=np.float64)
    t = np.empty((len(regions),) + y.shape[1:])
    for i, region in enumerate(regions):
        r = np.asarray(region, dtype=np.int64)
        block = y[r]
        if kind == "mean":
            t[i] = block.sum(axis=0) / len(r)
        elif kind == "max":
            t[i] = block.max(axis=0)
        elif kind == "l2":
            t[i] = np.sqrt((block ** 2).sum(axis=0))
        elif kind == "lp":
            t[i] = (np.abs(block) ** p).sum(axis=0) ** (1.0 / p)
        elif kind == "correlation":
            t[i] = np.asarray(mask, dtype=np.float64)[r] @ block
        elif kind == "subsample":
            t[i] = block[int(retain[i])]
        else:
            raise ValueError(f"unknown pooling kind {kind!r}")
    return t


# ---------------------------------------------------------------------------- activations and losses
def _activation(name, z):
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.where(z > 0, z, 0.0)
    if name == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * z))
    if name == "identity":
        return z
    if name == "softmax":                                   # columns are samples
        e = np.exp(z - z.max(axis=0))
        return e / e.sum(axis=0)
    raise ValueError(f"unknown activation {name!r}")


# ---------------------------------------------------------------------------- the network (47.1216)
def trace(net, x, params=None) -> dict:
    """Every intermediate signal of the forward pass (47.1216), computed densely.

    Parameters
    ----------
    net : ConvNet
        Only its description is read (see the module docstring).
    x : array, shape (N, D_0, *map) or (D_0, *map)
    params : dict, optional
        Parameters under the names of ``net.parameters()``; missing keys
        take the network's current values.

    Returns
    -------
    dict with lists indexed by layer (``c - 1``, ``l - 1``):
        ``'z'``, ``'y'``: pre/post-activation maps, each ``(D_c, P_c, N)``;
        ``'t'``: pooled maps ``(D_c, P'_c, N)``; ``'dense_z'``: ``z_{l+1}``,
        each ``(n_{l+1}, N)``; ``'y_out'``: the output ``(N, Q)``.
    """
    P = _parameters(net, params)
    x = np.asarray(x, dtype=np.float64)
    single = x.ndim == len(net.input_shape) + 1
    xb = x[None] if single else x
    if xb.shape[1:] != (net.in_maps,) + tuple(net.input_shape):
        raise ValueError(f"x must have shape (N, {net.in_maps}, *{tuple(net.input_shape)}), got {x.shape}")
    N = xb.shape[0]
    # Input maps as vectors (column stacking), samples as columns: maps[j] is (M, N).
    maps = [np.stack([xb[n, j].reshape(-1, order="F") for n in range(N)], axis=1) for j in range(net.in_maps)]
    out = {"z": [], "y": [], "t": [], "dense_z": []}
    for st in net.conv:
        c = st.index
        W, Theta = P[f"conv{c}.W"], P[f"conv{c}.Theta"]
        S = W.shape[0] // st.in_maps
        M = maps[0].shape[0]
        conn = np.asarray(st.connections, dtype=bool)
        geometry = st.partition.geometry
        layout = geometry if geometry is not None else st.partition.index_lists()
        z = []
        for d in range(st.maps):
            acc = None
            for j in range(st.in_maps):
                if not conn[d, j]:
                    continue                                        # 47.1213: j not in D_c
                A = layer_matrix(layout, W[j * S:(j + 1) * S, d], size=M)
                term = A @ maps[j]
                if net.bias == "per_input":
                    term = term - Theta[j, d]                       # 47.1212: - theta^(d,c)(j) 1
                acc = term if acc is None else acc + term
            zd = acc - Theta[0, d] if net.bias == "tied" else acc
            z.append(zd)
        y = [_activation(st.activation, zd) for zd in z]
        pl = st.pooling
        t = [pool(pl.kind, pl.regions, yd, mask=pl.mask, p=pl.p, retain=pl.retain) for yd in y]
        out["z"].append(np.stack(z)); out["y"].append(np.stack(y)); out["t"].append(np.stack(t))
        maps = t
    y_l = np.concatenate(maps, axis=0)                               # y_1 = col{t^(1,C), ...} (47.1215)
    L = len(net.dense_sizes)
    for l in range(1, L):
        z_l = P[f"dense{l}.W"] @ y_l - P[f"dense{l}.theta"][:, None]
        out["dense_z"].append(z_l)
        y_l = _activation(net.output if l == L - 1 else net.activation, z_l)
    out["y_out"] = y_l.T[0] if single else y_l.T
    out["batched"] = not single
    return out


def forward(net, x, params=None) -> np.ndarray:
    """The network's output, ``(N, Q)`` for a batch or ``(Q,)`` for one sample (47.1216).

    >>> from partitionnet import ConvNet, ConvLayer
    >>> net = ConvNet(6, 1, [ConvLayer(1, kernel=3, pooling="mean", window=2)], [1], rng=0)
    >>> forward(net, np.ones((2, 1, 6))).shape
    (2, 1)
    """
    return trace(net, x, params)["y_out"]


def loss(net, x, gamma, params=None) -> float:
    """The unregularised loss summed over the batch (47.1227 without the ``rho`` terms).

    ``'squared'``: ``sum_n ||gamma_n - y_n||^2``; ``'cross_entropy'``:
    ``-sum_n gamma_n^T log softmax(z_n)``. ``gamma`` is ``(N, Q)`` (or
    ``(Q,)`` for one sample), or integer class labels ``(N,)``.

    >>> from partitionnet import ConvNet, ConvLayer
    >>> net = ConvNet(6, 1, [ConvLayer(1, kernel=3, pooling="mean", window=2)], [1], rng=0)
    >>> x = np.ones((2, 1, 6))
    >>> bool(np.isclose(loss(net, x, np.zeros((2, 1))), (forward(net, x) ** 2).sum()))
    True
    """
    tr = trace(net, x, params)
    y = np.atleast_2d(tr["y_out"])
    gam = np.asarray(gamma)
    if tr["batched"] and gam.ndim == 1 and np.issubdtype(gam.dtype, np.integer):
        gam = np.eye(y.shape[1])[gam]                                # class labels -> one-hot
    gam = np.atleast_2d(np.asarray(gam, dtype=np.float64))
    if gam.shape != y.shape:
        raise ValueError(f"gamma must have shape {y.shape}, got {np.shape(gamma)}")
    if net.loss_name == "squared":
        return float(np.sum((gam - y) ** 2))
    z = tr["dense_z"][-1]                                            # (Q, N)
    zs = z - z.max(axis=0)
    log_y = zs - np.log(np.exp(zs).sum(axis=0))
    return float(-np.sum(gam * log_y.T))


def numerical_gradients(net, x, gamma, *, eps: float = 1e-6, params=None) -> "OrderedDict[str, np.ndarray]":
    """Central differences ``(loss(theta + eps e_i) - loss(theta - eps e_i)) / (2 eps)`` of :func:`loss`.

    Every entry of every parameter is perturbed in turn, except the entries
    that a connection table (47.1213) makes structurally zero (weights, and
    per-input biases, of unconnected map pairs): those are reported as 0.
    Keys and shapes are those of ``net.parameters()``.

    >>> from partitionnet import ConvNet, ConvLayer
    >>> net = ConvNet(6, 1, [ConvLayer(1, kernel=3, pooling="mean", window=2)], [1], rng=0)
    >>> g = numerical_gradients(net, np.ones((2, 1, 6)), np.zeros((2, 1)))
    >>> list(g) == list(net.parameters())
    True
    """
    base = _parameters(net, params)
    grads = OrderedDict()
    for key, value in base.items():
        g = np.zeros_like(value)
        active = _active_entries(net, key, value.shape)
        for idx in zip(*np.nonzero(active)):
            trial = OrderedDict((k, v.copy()) for k, v in base.items())
            trial[key][idx] = value[idx] + eps
            up = loss(net, x, gamma, trial)
            trial[key][idx] = value[idx] - eps
            down = loss(net, x, gamma, trial)
            g[idx] = (up - down) / (2.0 * eps)
        grads[key] = g
    return grads


# ---------------------------------------------------------------------------- helpers
def _parameters(net, params) -> "OrderedDict[str, np.ndarray]":
    out = OrderedDict((k, np.asarray(v, dtype=np.float64)) for k, v in net.parameters().items())
    for key, value in (params or {}).items():
        if key not in out:
            raise ValueError(f"unknown parameter {key!r}; expected one of {list(out)}")
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != out[key].shape:
            raise ValueError(f"{key} must have shape {out[key].shape}, got {arr.shape}")
        out[key] = arr
    return out


def _active_entries(net, key, shape) -> np.ndarray:
    """Which entries of a parameter exist under the layer's connection table."""
    active = net.structural_mask(key)                                # e.g. a connection table (47.1213)
    return np.ones(shape, dtype=bool) if active is None else active
