"""A layer's linear map as a matrix a user can hold: :func:`convolution_matrix` and :func:`spectral_norm`.

A correlation layer is linear in its input, so it *is* a matrix: the transposed
Jacobian that the book assembles block by block as ``V^(j,d)`` (47.1257),
transposed once more. :func:`convolution_matrix` returns that matrix, ``A`` with
``vec(output) = A vec(input)`` (bias left out), as a ``scipy.sparse`` CSR
array, for

* a built :class:`partitionnet.layers.Layer` (with its parameters) or a whole
  :class:`partitionnet.Network` whose layers are all linear;
* a PyTorch module: ``Conv1d/2d/3d``, ``ConvTranspose1d/2d/3d``, ``Linear``,
  ``AvgPool1d/2d/3d``, ``Flatten``, ``Identity``, or an ``nn.Sequential`` of them.

Torch modules are read straight from their weights: the entries are placed by
the index table of :meth:`partitionnet.Partition.sliding_window` in O(nnz)
time and memory, with no dense intermediate.

Two orders of the entries of one sample of ``D`` maps are offered:

``layout='book'`` (also ``'seed'``, the default)
    map after map, each map column-stacked: ``col{vec x^(1), ..., vec x^(D)}``,
    the order of (47.1215) and (47.1217);
``layout='torch'``
    ``x.reshape(-1)`` of a ``(D, *spatial)`` tensor in C order, as PyTorch flattens.

A vector (the input of a ``Linear``/``Dense`` or the output of a ``Flatten``)
has one order in both layouts.

:func:`spectral_norm` is the largest singular value of that matrix, the
exact Lipschitz constant of the layer's linear part, computed by
``scipy.sparse.linalg.svds``.
"""
from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from . import _validate as val
from .partition import Partition

__all__ = ["convolution_matrix", "spectral_norm", "layout_permutation"]

#: ``'book'`` and ``'seed'`` name the same layout: the book's (the issue that asked for this function called it
#: ``'seed'``, after the project's first name for the book; SOURCES.md keeps "seed" for random seeds).
LAYOUTS = ("book", "seed", "torch")


# ---------------------------------------------------------------------------- public
def convolution_matrix(layer, input_shape=None, *, layout: str = "seed", params=None) -> sp.csr_array:
    """The matrix ``A`` of a linear layer: ``vec(output) = A @ vec(input)``, bias excluded.

    Parameters
    ----------
    layer : Network, built Layer, or torch.nn.Module
        A :class:`~partitionnet.Network` (every layer must be linear: correlations,
        dense layers, flatten, mean pooling, ...), a built layer of
        :mod:`partitionnet.layers` (pass its ``params``), or a PyTorch module
        (``Conv1d/2d/3d``, ``ConvTranspose1d/2d/3d``, ``Linear``, ``AvgPool1d/2d/3d``,
        ``Flatten``, ``Identity``, or an ``nn.Sequential`` of these).
    input_shape : tuple of int, optional
        For a torch module: the shape of one sample, ``(C, *spatial)``; for a convolution
        or a pooling ``spatial`` alone is accepted too (``C`` then comes from the module,
        or is 1 for a pooling). Not needed for ``Linear``. Partitionnet layers and networks
        know their shapes; if given, it must agree.
    layout : {'seed', 'book', 'torch'}
        The order of the entries of a stack of maps (see the module docstring);
        ``'book'`` and ``'seed'`` are the same, the book's column-stacked order.
    params : dict, optional
        A built partitionnet layer's parameters, e.g. ``net.layer_parameters('conv1')``.

    Returns
    -------
    scipy.sparse.csr_array, shape (output size, input size)

    Examples
    --------
    A 1-D correlation with kernel ``[1, 2]`` over 3 entries is a 2 x 3 band matrix:

    >>> import numpy as np
    >>> from partitionnet import Network, layers as L
    >>> net = Network(3, 1, [L.Correlation(1, kernel=2)], rng=0)
    >>> net.set_parameters({"conv1.W": np.array([[1.0], [2.0]])})
    >>> convolution_matrix(net).toarray().tolist()
    [[1.0, 2.0, 0.0], [0.0, 1.0, 2.0]]
    """
    layout = _as_layout(layout)
    from .layers.base import Layer
    from .model import Network

    if isinstance(layer, Network):
        if params is not None:
            raise ValueError("params is taken from the network itself; pass params only with a single layer")
        _check_shape_agrees(input_shape, (layer.in_maps,) + tuple(layer.input_shape), "the network's input")
        A, first, last = None, None, None
        for built in layer.layers:
            B = _layer_matrix(built, layer.layer_parameters(built.name))
            A = B if A is None else (B @ A).tocsr()
            first = built if first is None else first
            last = built
        A = sp.csr_array(A)
        A.sort_indices()
        return _to_layout(A, _seed_in(first), _seed_out(last), layout)
    if isinstance(layer, Layer):
        if not layer.built:
            raise ValueError(f"{type(layer).__name__} is not built: take it from a network (net.layer(name)), "
                             "or call layer.build(in_maps, in_shape)")
        _check_shape_agrees(input_shape, (layer.in_maps,) + tuple(layer.in_shape), f"{type(layer).__name__}'s input")
        A = _layer_matrix(layer, {} if params is None else params)
        return _to_layout(A, _seed_in(layer), _seed_out(layer), layout)
    if _is_torch_module(layer):
        if params is not None:
            raise ValueError("params applies to partitionnet layers only; a torch module carries its own weights")
        A, _, _ = _torch_matrix(layer, input_shape, layout)
        return sp.csr_array(A)
    raise TypeError(f"layer must be a partitionnet Network, a built partitionnet layer or a torch.nn.Module, got "
                    f"{val.kind_of(layer)}")


def spectral_norm(layer, input_shape=None, *, params=None, tol: float = 0.0) -> float:
    """The largest singular value of a linear layer's matrix (its exact Lipschitz constant, bias excluded).

    Computed by ``scipy.sparse.linalg.svds`` (ARPACK, a fixed start vector) on
    :func:`convolution_matrix`; a matrix with a side shorter than 3 goes to a dense SVD.

    Parameters
    ----------
    layer, input_shape, params
        As for :func:`convolution_matrix`; ``layer`` may also be a ``scipy.sparse`` matrix, a dense
        2-D array or any object ``scipy.sparse.linalg.aslinearoperator`` accepts.
    tol : float, default 0
        ARPACK's relative tolerance (0: machine precision).

    Examples
    --------
    >>> import numpy as np
    >>> A = np.diag([3.0, 1.0, 2.0, 0.5])
    >>> round(spectral_norm(A), 12)
    3.0
    """
    tol = val.as_real(tol, "tol", low=0.0)
    if isinstance(layer, np.ndarray) or sp.issparse(layer) or isinstance(layer, spla.LinearOperator):
        if input_shape is not None or params is not None:
            raise ValueError("input_shape and params apply to layers, not to a matrix")
        op = layer
    elif hasattr(layer, "matvec") and hasattr(layer, "shape") and not _is_torch_module(layer):
        op = layer
    else:
        op = convolution_matrix(layer, input_shape, params=params)
    shape = tuple(op.shape)
    if len(shape) != 2:
        raise ValueError(f"the operator must be 2-D, got shape {shape}")
    if min(shape) == 0:
        return 0.0
    if min(shape) < 3:
        dense = op.toarray() if sp.issparse(op) else np.asarray(op @ np.eye(shape[1]))
        return float(np.linalg.svd(dense, compute_uv=False)[0])
    if sp.issparse(op):
        # both products row-wise: A^T kept as its own CSR array (a CSC product scatters, about 1.5x slower)
        A = sp.csr_array(op)
        AT = A.T.tocsr()
        lin = spla.LinearOperator(A.shape, matvec=A.__matmul__, rmatvec=AT.__matmul__, matmat=A.__matmul__,
                                  rmatmat=AT.__matmul__, dtype=np.float64)
    else:
        lin = spla.aslinearoperator(op)
    v0 = np.random.default_rng(0).standard_normal(min(shape))
    s = spla.svds(lin, k=1, tol=tol, v0=v0, return_singular_vectors=False, solver="arpack")
    return float(s[0])


def layout_permutation(shape) -> np.ndarray:
    """``perm`` with ``x_seed = x_torch[perm]`` for one sample of ``(D, *spatial)`` maps.

    ``x_torch`` is ``x.reshape(-1)`` (C order); ``x_seed`` stacks the maps, each column-stacked.

    >>> layout_permutation((1, 2, 3)).tolist()
    [0, 3, 1, 4, 2, 5]
    """
    return _torch_to_seed(val.as_shape(shape, "shape", max_ndim=None))


# ---------------------------------------------------------------------------- layouts
def _as_layout(layout) -> str:
    if not isinstance(layout, str):
        raise TypeError(f"layout must be one of {LAYOUTS}, got {val.kind_of(layout)}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return "seed" if layout == "book" else layout


def _torch_to_seed(shape) -> np.ndarray:
    """Seed index -> torch index of the same entry, for one sample of shape ``(D, *spatial)`` (or ``(Q,)``)."""
    shape = tuple(int(n) for n in shape)
    if len(shape) <= 1:
        return np.arange(int(np.prod(shape)))
    D, spatial = shape[0], shape[1:]
    P = int(np.prod(spatial))
    # c_of_f[f] = C-order index of the entry whose column-stacked (Fortran) index is f
    c_of_f = np.arange(P).reshape(spatial).ravel(order="F")
    return (np.arange(D)[:, None] * P + c_of_f[None, :]).ravel()


def _permute(A: sp.csr_array, rows: np.ndarray, cols: np.ndarray) -> sp.csr_array:
    """``A[rows][:, cols]`` in O(nnz): the result's entry (i, j) is A's (rows[i], cols[j])."""
    A = A.tocoo()
    inv_r = np.empty_like(rows)
    inv_r[rows] = np.arange(rows.size)
    inv_c = np.empty_like(cols)
    inv_c[cols] = np.arange(cols.size)
    return sp.csr_array((A.data, (inv_r[A.row], inv_c[A.col])), shape=A.shape)


def _seed_to_torch(A_seed, in_shape, out_shape) -> sp.csr_array:
    """The same map with rows and columns reordered from the book's layout to torch's."""
    # torch entry t is seed entry seed_of_torch[t]: the inverse of _torch_to_seed
    return _permute(A_seed, np.argsort(_torch_to_seed(out_shape)), np.argsort(_torch_to_seed(in_shape)))


def _to_layout(A_seed, in_shape, out_shape, layout):
    A_seed = sp.csr_array(A_seed)
    if layout == "seed":
        return A_seed
    return _seed_to_torch(A_seed, in_shape, out_shape)


def _check_shape_agrees(given, actual, what):
    if given is None:
        return
    given = val.as_shape(given, "input_shape", max_ndim=None)
    if given not in (tuple(actual), tuple(actual[1:])):
        raise ValueError(f"input_shape {given} does not match {what} {tuple(actual)} (D, *map)")


# ---------------------------------------------------------------------------- partitionnet layers
def _seed_in(layer) -> tuple:
    if getattr(layer, "in_vector", False):
        return (layer.in_maps * layer.P_in,)
    return (layer.in_maps,) + tuple(layer.in_shape)


def _seed_out(layer) -> tuple:
    return (layer.out_maps * layer.P_out,) if layer.out_vector else (layer.out_maps,) + tuple(layer.out_shape)


def _layer_matrix(layer, params) -> sp.csr_array:
    """``A = (J^T)^T`` of a linear built layer, in the book's layout."""
    if not getattr(layer, "linear", False):
        what = f"{layer.name!r} " if layer.name else ""
        raise ValueError(f"layer {what}({type(layer).__name__}, {layer.config()}) is not linear in its input, "
                         "so it has no matrix; convolution_matrix takes correlations, dense layers, flatten and "
                         "linear poolings")
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of the layer's parameters, got {val.kind_of(params)}")
    missing = [k for k in layer.parameter_shapes() if k not in params]
    if missing:
        raise ValueError(f"params lacks {missing} for {type(layer).__name__}; pass net.layer_parameters(name)")
    return sp.csr_array(layer.operator(params).T)


# ---------------------------------------------------------------------------- torch modules
def _is_torch_module(obj) -> bool:
    mod = type(obj).__module__ or ""
    if not (mod.startswith("torch") or any(c.__module__.startswith("torch.nn") for c in type(obj).__mro__[1:])):
        return False
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is an optional extra
        return False
    return isinstance(obj, torch.nn.Module)


def _torch_matrix(module, input_shape, layout):
    """``(A, in_shape, out_shape)`` in ``layout``; shapes are one sample's, ``(C, *spatial)`` or ``(Q,)``.

    Every module's matrix maps its input in ``layout`` to its output in ``layout`` (a vector has one
    order), so the matrices of a ``Sequential`` multiply in either layout.
    """
    from torch import nn

    if isinstance(module, nn.Sequential):
        if len(module) == 0:
            raise ValueError("the Sequential is empty")
        A, shape, first = None, input_shape, None
        for i, sub in enumerate(module):
            try:
                B, s_in, s_out = _torch_matrix(sub, shape, layout)
            except (TypeError, ValueError) as err:
                raise type(err)(f"Sequential module {i} ({type(sub).__name__}): {err}") from None
            first = s_in if first is None else first
            A = B if A is None else (B @ A).tocsr()
            shape = s_out
        A = sp.csr_array(A)
        A.sort_indices()                        # a sparse product leaves each row's columns unordered
        return A, first, shape
    conv = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}
    tconv = {nn.ConvTranspose1d: 1, nn.ConvTranspose2d: 2, nn.ConvTranspose3d: 3}
    pool = {nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3}
    kind = type(module)
    if kind in conv:
        return _conv_matrix(module, conv[kind], input_shape, layout)
    if kind in tconv:
        return _conv_transpose_matrix(module, tconv[kind], input_shape, layout)
    if kind in pool:
        return _avgpool_matrix(module, pool[kind], input_shape, layout)
    if kind is nn.Linear:
        W = module.weight.detach().cpu().numpy().astype(np.float64)
        if input_shape is not None:
            shape = val.as_shape(input_shape, "input_shape", max_ndim=None)
            if shape not in ((W.shape[1],), (1, W.shape[1])):
                raise ValueError(f"Linear takes {W.shape[1]} features, but input_shape is {shape}")
        return sp.csr_array(W), (W.shape[1],), (W.shape[0],)
    if kind is nn.Identity:
        shape = _required_shape(input_shape, "Identity")
        n = int(np.prod(shape))
        return sp.eye_array(n, format="csr"), shape, shape
    if kind is nn.Flatten:
        shape = _required_shape(input_shape, "Flatten")
        if (module.start_dim, module.end_dim) not in ((1, -1), (1, len(shape))):
            raise ValueError(f"only Flatten(start_dim=1, end_dim=-1) is supported, got start_dim={module.start_dim}, "
                             f"end_dim={module.end_dim}")
        n = int(np.prod(shape))
        if layout == "torch" or len(shape) == 1:
            return sp.eye_array(n, format="csr"), shape, (n,)
        # torch's flatten reads the maps in C order: entry t of the vector is seed entry seed_of_torch[t]
        seed_of_torch = np.argsort(_torch_to_seed(shape))
        return sp.csr_array((np.ones(n), seed_of_torch, np.arange(n + 1)), shape=(n, n)), shape, (n,)
    raise TypeError(f"convolution_matrix supports Conv1d/2d/3d, ConvTranspose1d/2d/3d, Linear, AvgPool1d/2d/3d, "
                    f"Flatten, Identity and Sequential of them; got {kind.__name__}")


def _required_shape(input_shape, what):
    if input_shape is None:
        raise ValueError(f"{what} needs input_shape, the shape of one sample")
    return val.as_shape(input_shape, "input_shape", max_ndim=None)


def _sample_shape(input_shape, ndim, channels, what):
    """``(C, *spatial)`` from ``input_shape`` given with or without the channel axis."""
    if input_shape is None:
        raise ValueError(f"{what} needs input_shape: one sample's (C, *spatial) or spatial shape of {ndim} axes")
    shape = val.as_shape(input_shape, "input_shape", max_ndim=None)
    if len(shape) == ndim:
        if channels is None:
            channels = 1
        shape = (channels,) + shape
    elif len(shape) != ndim + 1:
        raise ValueError(f"{what} takes a {ndim}-D map: input_shape must be (C, *spatial) with {ndim} spatial axes "
                         f"or the spatial shape alone, got {shape}")
    if channels is not None and shape[0] != channels:
        raise ValueError(f"{what} expects {channels} input channels, but input_shape {shape} has {shape[0]}")
    return shape


def _torch_padding(padding, ndim):
    if isinstance(padding, str):
        return padding
    return tuple(int(p) for p in padding)


def _c_of_f(shape) -> np.ndarray:
    """``c_of_f[f]``: the C-order (row-major) index of the entry whose column-stacked index is ``f``."""
    return np.arange(int(np.prod(shape))).reshape(shape).ravel(order="F")


def _f_of_c(shape) -> np.ndarray:
    """``f_of_c[c]``: the column-stacked index of the entry whose C-order index is ``c``."""
    return np.arange(int(np.prod(shape))).reshape(shape, order="F").ravel()


def _window_table(part: Partition, layout: str):
    """``(table, c_order_kernel)``: the partition's ``(P, S)`` index table in ``layout``.

    In the book's layout it is ``part.indices`` (positions, window entries and map entries all
    column-stacked, 47.1133). In torch's, rows follow the output positions in C order, columns the
    kernel offsets in C order (as torch stores a kernel) and entries are C-order input indices; in both,
    the entries of a row then increase, so the matrix built from it has sorted columns.
    """
    if layout == "seed":
        return part.indices, False
    table = part.indices[np.ix_(_f_of_c(part.output_shape), _f_of_c(part.kernel_shape))]
    c_of_f = np.append(_c_of_f(part.input_shape), -1)               # -1 (padding) stays -1
    return c_of_f[table], True


def _weight_matrix(W: np.ndarray, part: Partition, groups: int, C_in: int, layout: str) -> sp.csr_array:
    """The matrix of a grouped correlation in ``layout``, written straight into CSR in O(nnz).

    ``W`` is torch's ``(C_out, C_in/g, *k)``. Output map ``co`` reads input map ``ci`` of its group
    through the block of (47.1215): row ``co*P + p``, column ``ci*M + table[p, s]``, entry
    ``W[co, ci mod (C_in/g), s]``. Rows are produced in order, so no sort and no conversion.
    """
    C_out, per_group = W.shape[0], W.shape[1]
    out_per_group = C_out // groups
    P, S, M = part.P, part.S, part.M
    table, c_order_kernel = _window_table(part, layout)
    Wf = W.reshape(C_out, per_group, S)                              # torch flattens the kernel row-major ...
    if not c_order_kernel:                                           # ... the book column-stacks it (47.1133)
        Wf = Wf[:, :, _c_of_f(W.shape[2:])]
    p_idx, s_idx = np.nonzero(table >= 0)                            # window entries inside the map, row by row
    m_idx = table[p_idx, s_idx]
    E = p_idx.size
    count = np.bincount(p_idx, minlength=P)                          # entries of each window
    start = np.concatenate(([0], np.cumsum(count)[:-1]))
    # one output map's rows: for each position p, the per_group input maps of its group, each with the
    # window's entries; (jj, e) goes to place start[p]*per_group + jj*count[p] + (e - start[p])
    jj = np.arange(per_group)[:, None]
    place = (start[p_idx] * (per_group - 1))[None, :] + jj * count[p_idx][None, :] + np.arange(E)[None, :]
    seq_jj = np.empty(per_group * E, dtype=np.int64)
    seq_e = np.empty(per_group * E, dtype=np.int64)
    seq_jj[place.ravel()] = np.repeat(np.arange(per_group), E)
    seq_e[place.ravel()] = np.tile(np.arange(E), per_group)
    co = np.arange(C_out)[:, None]
    first_in = (co // out_per_group) * per_group                     # the first input map of co's group
    itype = np.int32 if max(C_in * M, C_out * per_group * E) < np.iinfo(np.int32).max else np.int64
    data = Wf[co, seq_jj[None, :], s_idx[seq_e][None, :]].astype(np.float64, copy=False).ravel()
    indices = ((first_in + seq_jj[None, :]) * M + m_idx[seq_e][None, :]).astype(itype).ravel()
    row_len = np.tile(per_group * count, C_out)
    indptr = np.concatenate(([0], np.cumsum(row_len))).astype(itype)
    A = sp.csr_array((data, indices, indptr), shape=(C_out * P, C_in * M))
    A.has_sorted_indices = True
    return A


def _conv_geometry(module, ndim):
    if module.padding_mode != "zeros":
        raise ValueError(f"only padding_mode='zeros' is supported, got {module.padding_mode!r}")
    return (tuple(module.kernel_size), tuple(module.stride), _torch_padding(module.padding, ndim),
            tuple(module.dilation), int(module.groups))


def _conv_matrix(module, ndim, input_shape, layout):
    kernel, stride, padding, dilation, groups = _conv_geometry(module, ndim)
    shape = _sample_shape(input_shape, ndim, module.in_channels, type(module).__name__)
    if isinstance(padding, str) and padding == "same" and any(s != 1 for s in stride):  # pragma: no cover
        raise ValueError("torch refuses padding='same' with a stride")
    part = Partition.sliding_window(shape[1:], kernel, stride=stride, padding=padding, dilation=dilation)
    if isinstance(padding, str) and padding == "same":
        # torch pads an odd total with the extra zero after, as Partition does; check the size anyway
        if part.output_shape != shape[1:]:  # pragma: no cover - defensive
            raise ValueError(f"'same' padding gave {part.output_shape} for {shape[1:]}")
    W = module.weight.detach().cpu().numpy().astype(np.float64)
    out_shape = (module.out_channels,) + part.output_shape
    return _weight_matrix(W, part, groups, shape[0], layout), shape, out_shape


def _conv_transpose_matrix(module, ndim, input_shape, layout):
    """``ConvTranspose`` is the adjoint of the correlation with the same weight, read from its output to its input."""
    kernel, stride, padding, dilation, groups = _conv_geometry(module, ndim)
    out_pad = tuple(int(p) for p in module.output_padding)
    shape = _sample_shape(input_shape, ndim, module.in_channels, type(module).__name__)
    spatial_out = tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1
                        for n, s, p, d, k, op in zip(shape[1:], stride, padding, dilation, kernel, out_pad))
    if min(spatial_out) < 1:
        raise ValueError(f"{type(module).__name__} gives an empty output {spatial_out} for input_shape {shape}")
    part = Partition.sliding_window(spatial_out, kernel, stride=stride, padding=padding, dilation=dilation)
    if part.output_shape != shape[1:]:
        # output_padding >= stride (allowed below the dilation) leaves the last windows of the adjoint
        # correlation unread by the transposed one: keep the first n windows on every axis
        keep = tuple(slice(0, n) for n in shape[1:])
        table = part.indices.reshape(part.output_shape + (part.S,), order="F")[keep]
        part = Partition(table.reshape(-1, part.S, order="F"), part.M, input_shape=spatial_out,
                         output_shape=shape[1:], kernel_shape=kernel)
    W = module.weight.detach().cpu().numpy().astype(np.float64)      # (C_in, C_out/g, *k)
    out_shape = (module.out_channels,) + spatial_out
    A_adj = _weight_matrix(W, part, groups, module.out_channels, layout)   # correlation out_shape -> shape
    return A_adj.T.tocsr(), shape, out_shape


def _avgpool_matrix(module, ndim, input_shape, layout):
    name = type(module).__name__
    as_tuple = lambda v: (int(v),) * ndim if isinstance(v, numbers.Integral) else tuple(int(a) for a in v)
    kernel = as_tuple(module.kernel_size)
    stride = as_tuple(module.stride if module.stride is not None and module.stride != () else module.kernel_size)
    padding = as_tuple(module.padding)
    if module.ceil_mode:
        raise ValueError(f"{name} with ceil_mode=True is not supported")
    divisor = getattr(module, "divisor_override", None)
    include_pad = bool(getattr(module, "count_include_pad", True))
    shape = _sample_shape(input_shape, ndim, None, name)
    C = shape[0]
    part = Partition.sliding_window(shape[1:], kernel, stride=stride, padding=padding)
    idx = part.indices
    keep = idx >= 0
    if divisor:
        weights = np.full(part.P, 1.0 / divisor)
    elif include_pad:
        weights = np.full(part.P, 1.0 / part.S)
    else:
        weights = 1.0 / keep.sum(axis=1)
    p_idx, s_idx = np.nonzero(keep)
    m_idx = idx[p_idx, s_idx]
    c = np.arange(C)[:, None]
    rows = (c * part.P + p_idx[None, :]).ravel()
    cols = (c * part.M + m_idx[None, :]).ravel()
    vals = np.broadcast_to(weights[p_idx][None, :], (C, p_idx.size)).ravel()
    out_shape = (C,) + part.output_shape
    A_seed = sp.csr_array((vals, (rows, cols)), shape=(C * part.P, C * part.M))
    return _to_layout(A_seed, shape, out_shape, layout), shape, out_shape
