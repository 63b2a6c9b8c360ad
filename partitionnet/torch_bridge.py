"""PyTorch models in and out: :func:`from_torch` imports a ``Sequential``, :func:`to_torch` exports a ConvNet.

Any :class:`~partitionnet.Network` exports with ``net.to_torch()`` (each layer's twin) and comes back
with :func:`from_torch`; :func:`gradients_from_torch` reads torch's ``.grad`` under the network's
parameter names. The rest of this docstring is about the book's :class:`~partitionnet.ConvNet`.

PyTorch is an optional dependency (``pip install partitionnet[torch]``).
This module imports without it; the functions raise ``ImportError`` with
that hint when it is missing.

The mapping, layer by layer (seed names on the left):

* correlation layer ``c`` over a sliding-window partition -> ``conv1d`` /
  ``conv2d`` / ``conv3d`` with the partition's stride, padding and
  dilation. PyTorch's "convolution" is a correlation, as in the book
  (47.1133), so no kernel is flipped:
  ``weight[d, j, *k] = unvec(w_j^(d,c), kernel_shape)`` where ``w_j^(d,c)``
  is rows ``j*S ... j*S+S-1`` of column ``d`` of ``W_c``.
* biases: ``z^(d) = sum_j (H_j^T w_j^(d) - theta^(d)(j))`` (47.1212) has one
  constant per output map, so the torch bias is
  ``-sum_{j in D} Theta_c[j, d]`` (``-Theta_c[0, d]`` for ``bias='tied'``).
* a connection table (47.1213) -> a convolution whose weight is multiplied
  by a fixed 0/1 mask, so unconnected pairs stay zero while training in
  PyTorch too.
* pooling over windows: 'max' -> ``max_pool``, 'mean' -> ``avg_pool``,
  'l2'/'lp' -> ``(sum |y|^p)^(1/p)`` per window, 'correlation' -> mask
  times the map, summed per window, 'subsample' -> a gather of the retained
  entry; no pooling -> nothing. A remainder left out by
  ``drop_remainder=True`` is dropped by PyTorch's floor rule as well.
* flattening ``y_1 = col{t^(1,C), ..., t^(D_C,C)}`` (47.1215, 47.1217):
  maps are column-stacked, so the spatial axes are reversed before
  ``flatten``.
* feedforward layer ``z = W y - theta`` -> ``Linear`` with weight ``W`` and
  bias ``-theta``; the output activation (softmax included) last.

Unstructured partitions (index lists, no geometry) and pooling over
explicit regions have no PyTorch layer equivalent and raise ``ValueError``.

Examples
--------
>>> import numpy as np, torch
>>> from partitionnet import ConvNet, ConvLayer
>>> from partitionnet.torch_bridge import to_torch
>>> net = ConvNet((6, 6), 1, [ConvLayer(2, kernel=3, padding="same", window=2)], [3], rng=0)
>>> x = np.random.default_rng(1).standard_normal((4, 1, 6, 6))
>>> module = to_torch(net)
>>> bool(np.allclose(module(torch.from_numpy(x)).detach().numpy(), net.forward(x), rtol=1e-12))
True
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np


__all__ = ["to_torch", "from_torch", "parameters_from_torch", "gradients_from_torch", "network_gradients_from_torch",
           "torch_loss", "pooling_module", "column_stack_flatten"]

from . import _validate as val
from . import layers as L
from .layout import kernel_from_torch, kernel_to_torch
from .model import Network

from .torch_modules import (_require_torch, column_stack_flatten, pooling_module,  # noqa: F401  (re-exported)
                            torch)

if torch is not None:
    from torch import nn
    from torch.nn import functional as F

    from .torch_modules import ColumnStackFlatten, ColumnStackReshape, LpPool, MaskedConv

    _CONV_MODULE = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
    _ACTIVATION = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "identity": nn.Identity}
    _CONV_KINDS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
    _TRANSPOSED_KINDS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    _PAD_KINDS = (nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d)     # ZeroPadNd are ConstantPadNd


# ---------------------------------------------------------------------------- export
def _is_convnet(net) -> bool:
    # Duck-typed so that this module does not import partitionnet.network (which imports it for to_torch).
    return hasattr(net, "conv") and hasattr(net, "dense_sizes") and hasattr(net, "bias_sums")


def _check_exportable(net) -> None:
    if not _is_convnet(net):
        raise TypeError(f"net must be a partitionnet.ConvNet, got {type(net).__name__}")
    for st in net.conv:
        where = f"layer {st.index} (conv{st.index})"
        if st.partition.geometry is None:
            raise ValueError(
                f"{where} uses an unstructured partition (P={st.P} subvectors of S={st.S} entries picked from "
                f"a vector of M={st.partition.M}): its subvectors are arbitrary index lists, not one window "
                "sliding over a map, so no PyTorch convolution computes it. Only sliding-window layers "
                "(ConvLayer(kernel=...), Partition.sliding_window or Partition.blocks) can be exported.")
        pool = st.pooling
        if pool.window is None and not pool.is_identity:
            raise ValueError(
                f"{where} pools over explicit regions ({pool.P_out} regions of a map of {pool.P}); PyTorch's "
                "pooling layers only pool windows tiling the map, so there is no equivalent. Only window "
                "pooling (ConvLayer(window=...) or Pooling.windows) can be exported.")


def to_torch(net):
    """A float64 ``torch.nn.Sequential`` computing the same function as ``net``.

    The module takes ``(N, D_0, *map)`` tensors, like :meth:`ConvNet.forward`,
    and returns ``(N, Q)``. Its children are named ``conv{c}``,
    ``conv{c}_act``, ``conv{c}_pool`` (absent without pooling), ``flatten``,
    ``dense{l}`` and ``dense{l}_act`` (the last one is the output
    activation), so ``module.conv1.weight`` is the first layer's kernels.
    Parameters are copied; use :func:`parameters_from_torch` to come back.

    Raises
    ------
    ImportError
        PyTorch is not installed.
    ValueError
        A layer uses an unstructured partition or pools over explicit
        regions: there is no PyTorch layer that computes it.
    """
    _require_torch()
    _check_exportable(net)
    params = net.parameters()
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    shape = net.input_shape
    for st in net.conv:
        c, part, pool = st.index, st.partition, st.pooling
        g = part.geometry
        if tuple(g["input_shape"]) != tuple(shape):
            layers[f"conv{c}_reshape"] = ColumnStackReshape(g["input_shape"])
        n = len(g["input_shape"])
        weight = torch.from_numpy(kernel_to_torch(params[f"conv{c}.W"], st.in_maps, st.maps, part.kernel_shape))
        bias = torch.from_numpy(-net.bias_sums(st).astype(np.float64))
        geo = dict(stride=g["stride"], padding=g["padding"], dilation=g["dilation"])
        if st.connections.all():
            conv = _CONV_MODULE[n](st.in_maps, st.maps, part.kernel_shape, bias=True, dtype=torch.float64, **geo)
            with torch.no_grad():
                conv.weight.copy_(weight)
                conv.bias.copy_(bias)
        else:
            mask = torch.from_numpy(st.connections.astype(np.float64)).reshape((st.maps, st.in_maps) + (1,) * n)
            conv = MaskedConv(weight.clone(), bias.clone(), mask, **geo)
        layers[f"conv{c}"] = conv
        layers[f"conv{c}_act"] = _ACTIVATION[st.activation]()
        if tuple(pool.input_shape) != tuple(part.output_shape):
            layers[f"conv{c}_pool_reshape"] = ColumnStackReshape(pool.input_shape)
        pm = pooling_module(pool)
        if pm is not None:
            layers[f"conv{c}_pool"] = pm
        shape = pool.output_shape
    layers["flatten"] = ColumnStackFlatten()
    for l in range(1, net.L):
        lin = nn.Linear(net.dense_sizes[l - 1], net.dense_sizes[l], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(params[f"dense{l}.W"]))
            lin.bias.copy_(torch.from_numpy(-params[f"dense{l}.theta"]))
        layers[f"dense{l}"] = lin
        if l < net.L - 1:
            layers[f"dense{l}_act"] = _ACTIVATION[net.activation]()
        elif net.output == "softmax":
            layers[f"dense{l}_act"] = nn.Softmax(dim=1)
        else:
            layers[f"dense{l}_act"] = _ACTIVATION[net.output]()
    return nn.Sequential(layers).double()


# ---------------------------------------------------------------------------- coming back
def _child(module, name: str):
    try:
        return module.get_submodule(name)
    except AttributeError:
        raise ValueError(f"module has no child {name!r}; pass the module returned by to_torch(net) "
                         "for this same network") from None


def _numpy(tensor, what: str, expected_shape) -> np.ndarray:
    if tensor is None:
        raise ValueError(f"{what} is None; run loss.backward() on the module's output first")
    arr = tensor.detach().cpu().to(torch.float64).numpy()
    if tuple(arr.shape) != tuple(expected_shape):
        raise ValueError(f"{what} has shape {tuple(arr.shape)}, but the network expects {tuple(expected_shape)}; "
                         "was the module exported from this network?")
    return arr


def _split_bias(net, st, torch_bias: np.ndarray) -> np.ndarray:
    """``Theta_c`` whose bias sums equal ``-torch_bias``, closest to the current ``Theta_c``.

    For ``bias='tied'`` this is exact. With one bias per input map the split
    among input maps is not determined by the function; the difference to
    the current sums is shared equally by the connected inputs (the
    minimum-norm change), so an untouched module maps back exactly.
    """
    Theta = net.layer_parameters(f"conv{st.index}")["Theta"]
    if net.bias == "tied":
        return -torch_bias[None, :].copy()
    conn = st.connections.T.astype(np.float64)                      # (D_in, D)
    change = (-torch_bias - net.bias_sums(st)) / conn.sum(axis=0)
    return (Theta + conn * change[None, :]) * conn


def _check_twin(module) -> None:
    """A ConvNet's parameters come back only from its own twin: torch's flatten order differs from the book's."""
    _child(module, "conv1")
    flat = getattr(module, "flatten", None)
    if not isinstance(flat, ColumnStackFlatten):
        raise ValueError("module is not the twin made by to_torch(net): its child 'flatten' is "
                         f"{type(flat).__name__ if flat is not None else 'missing'}, not the column-stacking "
                         "flatten of (47.1215), so its Linear weights would be read in the wrong order. To bring "
                         "your own torch model in, use partitionnet.from_torch(module, input_shape)")


def parameters_from_torch(net, module) -> "OrderedDict[str, np.ndarray]":
    """The parameters of a module made by :func:`to_torch`, under the book's names and shapes.

    The result can be passed to ``net.set_parameters``. Weights of pairs the
    connection table leaves out are set to zero. With ``bias='per_input'``
    the torch bias of map d fixes only ``sum_j Theta_c[j, d]``; see
    :func:`_split_bias` for the split chosen.
    """
    _require_torch()
    _check_exportable(net)
    _check_twin(module)
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for st in net.conv:
        c = st.index
        conv = _child(module, f"conv{c}")
        weight = _numpy(conv.weight, f"conv{c}.weight", (st.maps, st.in_maps) + st.partition.kernel_shape)
        out[f"conv{c}.W"] = kernel_from_torch(weight) * st.weight_mask
        out[f"conv{c}.Theta"] = _split_bias(net, st, _numpy(conv.bias, f"conv{c}.bias", (st.maps,)))
    for l in range(1, net.L):
        lin = _child(module, f"dense{l}")
        shape = (net.dense_sizes[l], net.dense_sizes[l - 1])
        out[f"dense{l}.W"] = _numpy(lin.weight, f"dense{l}.weight", shape)
        out[f"dense{l}.theta"] = -_numpy(lin.bias, f"dense{l}.bias", shape[:1])
    return OrderedDict((k, out[k]) for k in net.parameter_shapes())


def gradients_from_torch(net, module) -> "OrderedDict[str, np.ndarray]":
    """The ``.grad`` of a module made by :func:`to_torch`, under the book's names and shapes.

    Same keys as ``net.gradients``. Since ``z = ... - theta`` and torch adds
    its bias, every bias gradient changes sign; with ``bias='per_input'``
    each ``Theta_c[j, d]`` of a connected pair gets ``-bias.grad[d]`` (the
    book's 47.1274).
    """
    _require_torch()
    if not _is_convnet(net):
        return network_gradients_from_torch(net, module)
    _check_exportable(net)
    _check_twin(module)
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for st in net.conv:
        c = st.index
        conv = _child(module, f"conv{c}")
        gw = _numpy(conv.weight.grad, f"conv{c}.weight.grad", (st.maps, st.in_maps) + st.partition.kernel_shape)
        out[f"conv{c}.W"] = kernel_from_torch(gw) * st.weight_mask
        gb = -_numpy(conv.bias.grad, f"conv{c}.bias.grad", (st.maps,))
        out[f"conv{c}.Theta"] = (gb[None, :].copy() if net.bias == "tied"
                                 else np.where(st.connections.T, gb[None, :], 0.0))
    for l in range(1, net.L):
        lin = _child(module, f"dense{l}")
        shape = (net.dense_sizes[l], net.dense_sizes[l - 1])
        out[f"dense{l}.W"] = _numpy(lin.weight.grad, f"dense{l}.weight.grad", shape)
        out[f"dense{l}.theta"] = -_numpy(lin.bias.grad, f"dense{l}.bias.grad", shape[:1])
    return OrderedDict((k, out[k]) for k in net.parameter_shapes())


def torch_loss(net, output, gamma):
    """The twin of :meth:`ConvNet.loss` on a torch output: summed over the batch, unregularised.

    ``output`` is the module's ``(N, Q)`` result; ``gamma`` is ``(N, Q)``
    targets or ``(N,)`` integer class labels (one-hot encoded, as the
    network does). 'squared': ``sum ||gamma - y||^2`` (47.1227);
    'cross_entropy': ``-sum gamma log y`` on the softmax output.
    """
    _require_torch()
    if not torch.is_tensor(output) or output.ndim != 2:
        raise TypeError("output must be the (N, Q) tensor returned by the exported module")
    g = gamma if torch.is_tensor(gamma) else torch.as_tensor(np.asarray(gamma))
    N, Q = output.shape
    if g.ndim == 1 and not torch.is_floating_point(g):
        if g.shape[0] != N:
            raise ValueError(f"gamma holds {g.shape[0]} labels for {N} samples")
        g = F.one_hot(g.long(), Q)
    g = g.to(output.dtype)
    if tuple(g.shape) != (N, Q):
        raise ValueError(f"gamma must have shape ({N}, {Q}) or be ({N},) integer labels, got {tuple(g.shape)}")
    if net.loss_name == "squared":
        return ((g - output) ** 2).sum()
    # the library's clip: 1e-300, or the dtype's smallest normal number where that is larger (1e-300 is 0 in float32)
    return -(g * torch.log(output.clamp_min(max(1e-300, torch.finfo(output.dtype).tiny)))).sum()


# ---------------------------------------------------------------------------- importing a torch model
def from_torch(module, input_shape, *, loss="squared"):
    """A :class:`~partitionnet.Network` computing what a ``torch.nn.Sequential`` computes.

    Parameters
    ----------
    module : torch.nn.Sequential
        Children among: ``Conv1d/2d/3d`` (any stride, padding including ``'same'``, dilation,
        groups and bias; ``padding_mode='zeros'``), optionally after a ``ZeroPadNd`` (merged into
        its padding as ``(before, after)`` pairs), ``ConvTranspose1d/2d/3d``, ``MaxPool``,
        ``AvgPool`` (``count_include_pad`` either way) and ``LPPool`` (even ``norm_type``) 1-3d,
        overlapping and padded, ``AdaptiveAvgPool``/``AdaptiveMaxPool`` to size 1, ``ReLU``,
        ``Tanh``, ``Sigmoid``, ``Identity``, ``Flatten``, ``Linear``, ``Softmax`` (over the
        features of a vector), and nested ``Sequential``.
    input_shape : tuple of int
        The shape of one sample, channels first, as torch takes it: ``(C, *spatial)``.
    loss : {'squared', 'cross_entropy'}

    Returns
    -------
    Network
        Layers named ``<kind prefix><child name>`` (``conv0``, ``act1``, ...), parameters copied
        (a torch bias ``b`` becomes ``Theta = -b`` with ``bias='tied'``: the book's sign).
        ``Conv`` becomes a :class:`~partitionnet.layers.Correlation` (torch's convolution is the
        book's correlation, 47.1133), ``ConvTranspose`` a
        :class:`~partitionnet.layers.TransposedCorrelation` (47.1257 applied forward), adaptive
        pooling a :class:`~partitionnet.layers.GlobalPool`. ``nn.Flatten`` becomes
        ``Flatten(order='C')``, so a following ``Linear`` keeps its weights.
        :func:`gradients_from_torch` reads torch's ``.grad`` back under the layers' names.

    Raises
    ------
    TypeError
        ``module`` is not a ``Sequential``, or ``input_shape`` holds a non-integer.
    ValueError
        A module that has no counterpart here, or one whose arguments do not fit the maps it
        receives (``in_channels``, ``groups``, ``output_padding``, a window larger than the
        padded input, ``padding_mode``, ...), named with its position.

    Examples
    --------
    >>> import numpy as np, torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    ...                         torch.nn.Flatten(), torch.nn.Linear(2 * 3 * 3, 4)).double()
    >>> net = from_torch(m, (1, 6, 6))
    >>> x = np.random.default_rng(0).standard_normal((5, 1, 6, 6))
    >>> bool(np.allclose(net.forward(x), m(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12))
    True
    """
    _require_torch()

    if not isinstance(module, nn.Sequential):
        raise TypeError(f"module must be a torch.nn.Sequential, got {type(module).__name__}")
    if isinstance(input_shape, (int, np.integer)) or not hasattr(input_shape, "__len__") or len(input_shape) < 2:
        raise ValueError(f"input_shape must be (C, *spatial), the shape of one sample as torch takes it, got "
                         f"{input_shape!r}")
    shape = val.as_shape(tuple(input_shape), "input_shape", max_ndim=4)
    in_maps, spatial = shape[0], shape[1:]
    state = {"maps": in_maps, "shape": spatial, "vector": False, "pad": None}
    layers, params = [], {}
    for where, name, child in _children(module):
        if state["pad"] is not None and not isinstance(child, _CONV_KINDS):
            raise ValueError(f"{state['pad'][0]} is followed by {where}, not by a convolution: a zero pad is "
                             "imported only as the padding of the Conv1d/2d/3d right after it")
        pad = state["pad"]
        layer, p = _import_child(child, where, state)
        if layer is None:
            if state["pad"] is not None:
                state["pad"] += (name,)
            continue
        if pad is not None and "." in name and pad[2].rpartition(".")[0] == name.rpartition(".")[0]:
            name_as = name.rpartition(".")[0]       # ZeroPadNd + ConvNd in one Sequential: one layer, its name
        else:
            name_as = name
        layer.name = f"{layer.prefix}{name_as}" if name_as.isdigit() else name_as.replace(".", "_")
        layer.torch_name = name
        try:
            built = layer.build(state["maps"], state["shape"], state["vector"])
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{where}: {exc}") from None
        state.update(maps=built.out_maps, shape=built.out_shape, vector=built.out_vector)
        layers.append(layer)
        params.update({f"{layer.name}.{k}": v for k, v in p.items()})
    if state["pad"] is not None:
        raise ValueError(f"{state['pad'][0]} ends the model: a zero pad is imported only as the padding of the "
                         "Conv1d/2d/3d right after it")
    if not layers:
        raise ValueError("module has no layers to import")
    net = Network(spatial, in_maps, layers, loss=loss)
    net.set_parameters(params)
    return net


def _children(module, prefix=""):
    for position, (name, child) in enumerate(module.named_children()):
        full = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            yield from _children(child, prefix=f"{full}.")
        else:
            yield f"module {full!r} at position {position} ({type(child).__name__})", full, child


def _numbers(t) -> np.ndarray:
    return t.detach().cpu().to(torch.float64).numpy().copy()


def _tuple(value, n):
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * n


def _import_child(m, where, state):
    """One torch module -> (an unbuilt layer, its parameters under local names), or (None, {}) to skip."""
    n = len(state["shape"])
    activations = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.Identity: "identity"}
    if type(m) in activations:
        return L.Activation(activations[type(m)]), {}
    if isinstance(m, _PAD_KINDS):
        pad = tuple(int(v) for v in m.padding)
        if float(m.value) != 0.0 or min(pad) < 0 or len(pad) != 2 * n or state["vector"]:
            raise ValueError(f"{where}: only a zero pad (value 0, no cropping) of the {n}-D maps before a "
                             f"convolution is supported, got padding={m.padding} and value={m.value}")
        # torch lists the last axis first: (before, after) of axis n-1, then of axis n-2, ...
        state["pad"] = (where, tuple((pad[2 * (n - 1 - a)], pad[2 * (n - 1 - a) + 1]) for a in range(n)))
        return None, {}
    if isinstance(m, _CONV_KINDS + _TRANSPOSED_KINDS):
        return _import_convolution(m, where, state)
    pools = {nn.MaxPool1d: "max", nn.MaxPool2d: "max", nn.MaxPool3d: "max", nn.AvgPool1d: "mean",
             nn.AvgPool2d: "mean", nn.AvgPool3d: "mean", nn.LPPool1d: "lp", nn.LPPool2d: "lp", nn.LPPool3d: "lp"}
    if type(m) in pools:
        kind = pools[type(m)]
        kernel = _tuple(m.kernel_size, n)
        stride = _tuple(m.stride if m.stride is not None else m.kernel_size, n)
        padding = _tuple(getattr(m, "padding", 0), n)
        if getattr(m, "ceil_mode", False):
            raise ValueError(f"{where}: ceil_mode=True is not supported (the last, partial windows torch adds "
                             "would need a partial pooling region); use ceil_mode=False")
        if _tuple(getattr(m, "dilation", 1), n) != (1,) * n:
            raise ValueError(f"{where}: dilation={m.dilation} is not supported for pooling; use dilation=1")
        if state["vector"]:
            raise ValueError(f"{where}: pooling receives a vector of {state['shape'][0]} entries; pool the maps "
                             "before Flatten")
        if len(kernel) != n:
            raise ValueError(f"{where}: kernel_size={m.kernel_size} has {len(kernel)} axes, but the maps it "
                             f"receives have shape {state['shape']}")
        for a, (size, k, pad) in enumerate(zip(state["shape"], kernel, padding)):
            if k > size + 2 * pad:
                raise ValueError(f"{where}: kernel_size={m.kernel_size} is larger than the padded input on axis "
                                 f"{a} ({size} + 2*{pad} = {size + 2 * pad} entries, "
                                 f"padding={getattr(m, 'padding', 0)})")
        if kind == "mean" and getattr(m, "divisor_override", None) is not None:
            raise ValueError(f"{where}: divisor_override is not supported")
        options = {}
        if kind == "lp":
            p = float(m.norm_type)
            if p <= 0 or p % 2:
                # torch sums y^p without |.|: for odd or fractional p it is not the l_p norm of Table 47.13
                # (it differs, or is NaN, on negative entries), so importing it would change the results.
                raise ValueError(f"{where}: LPPool with norm_type={m.norm_type} sums y^p without absolute values, "
                                 "which is the l_p pooling of the book only for even p; use an even norm_type")
            kind, options = ("l2", {}) if p == 2 else ("lp", {"p": p})
            if kernel == tuple(state["shape"]) and not state["vector"]:        # GlobalPool.to_torch writes this
                return L.GlobalPool(kind, **options), {}
        if stride != kernel or any(padding):                    # overlapping or padded: a pooling partition
            if kind == "lp" or kind == "l2":
                if any(padding):
                    raise ValueError(f"{where}: LPPool takes no padding")
            options.update(stride=stride, padding=padding)
            if kind == "mean":
                options["count_include_pad"] = bool(m.count_include_pad)
            return L.Pool(kind, kernel, **options), {}
        divides = all(s % k == 0 for s, k in zip(state["shape"], kernel))
        return L.Pool(kind, kernel, drop_remainder=not divides, **options), {}
    adaptive = {nn.AdaptiveAvgPool1d: "mean", nn.AdaptiveAvgPool2d: "mean", nn.AdaptiveAvgPool3d: "mean",
                nn.AdaptiveMaxPool1d: "max", nn.AdaptiveMaxPool2d: "max", nn.AdaptiveMaxPool3d: "max"}
    if type(m) in adaptive:
        if _tuple(m.output_size, n) != (1,) * n:
            raise ValueError(f"{where}: adaptive pooling is supported to output size 1 only, got "
                             f"output_size={m.output_size}")
        return L.GlobalPool(adaptive[type(m)]), {}
    if isinstance(m, LpPool):                                   # the twin's own l_p pooling (with |y|)
        divides = all(s % k == 0 for s, k in zip(state["shape"], m.window))     # torch's floor rule drops the rest
        return L.Pool("l2" if m.p == 2 else "lp", m.window, drop_remainder=not divides,
                      **({} if m.p == 2 else {"p": m.p})), {}
    if isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            raise ValueError(f"{where}: only Flatten(start_dim=1, end_dim=-1) is supported")
        return L.Flatten(order="C"), {}
    if torch is not None and isinstance(m, ColumnStackFlatten):
        return L.Flatten(), {}
    if isinstance(m, nn.Linear):
        if not state["vector"]:
            raise ValueError(f"{where}: Linear receives {state['maps']} maps of shape {state['shape']}; put a "
                             "Flatten before it (torch would act on the last axis only)")
        width = state["maps"] * int(np.prod(state["shape"]))
        if m.in_features != width:
            raise ValueError(f"{where}: in_features={m.in_features}, but the vector it receives has {width} "
                             "entries")
        theta = -_numbers(m.bias) if m.bias is not None else np.zeros(m.out_features)
        return L.Dense(m.out_features), {"W": _numbers(m.weight), "theta": theta}
    if isinstance(m, nn.Softmax):
        one_map = not state["vector"] and state["maps"] == 1 and len(state["shape"]) == 1 and m.dim in (2, -1)
        if not one_map and (not state["vector"] or m.dim not in (1, -1)):
            raise ValueError(f"{where}: Softmax is supported over the features of a vector (dim=1 after Flatten), "
                             f"got dim={m.dim} on {state['maps']} maps of shape {state['shape']}")
        return L.Softmax(), {}
    raise ValueError(f"{where}: this module has no partitionnet counterpart; supported are Conv, ConvTranspose, "
                     "MaxPool, AvgPool, LPPool, AdaptiveAvg/MaxPool to size 1, ReLU, Tanh, Sigmoid, Identity, "
                     "Flatten, Linear and Softmax")


def _import_convolution(m, where, state):
    """``ConvNd`` -> :class:`~partitionnet.layers.Correlation`, ``ConvTransposeNd`` -> ``TransposedCorrelation``.

    Both take ``bias='tied'`` (one bias per output map, ``Theta = -bias``). A torch weight is
    ``(out, in/groups, *k)`` for a convolution and ``(in, out/groups, *k)`` for a transposed one; either
    way :func:`~partitionnet.layout.kernel_from_torch` column-stacks every mask into the layer's ``W``.
    A zero pad just before a convolution (``ZeroPadNd``, as ``Correlation.to_torch`` writes unequal
    padding) is added to its padding as ``(before, after)`` pairs.
    """
    n = len(state["shape"])
    transposed = isinstance(m, _TRANSPOSED_KINDS)
    kind = "ConvTranspose" if transposed else "Conv"
    if m.padding_mode != "zeros":
        raise ValueError(f"{where}: padding_mode={m.padding_mode!r} is not supported; only 'zeros' (the "
                         "book's fictitious zero values, 47.1129)")
    if state["vector"] or len(m.kernel_size) != n:
        got = "a vector" if state["vector"] else f"maps of shape {state['shape']}"
        raise ValueError(f"{where}: a {len(m.kernel_size)}-D {kind} (kernel_size={tuple(m.kernel_size)}) "
                         f"receives {got}")
    if m.in_channels != state["maps"]:
        raise ValueError(f"{where}: in_channels={m.in_channels}, but the module receives {state['maps']} maps")
    if m.in_channels % m.groups or m.out_channels % m.groups:
        raise ValueError(f"{where}: groups={m.groups} must divide in_channels={m.in_channels} and "
                         f"out_channels={m.out_channels}")
    geometry = dict(kernel=tuple(m.kernel_size), stride=tuple(m.stride), dilation=tuple(m.dilation),
                    groups=m.groups, bias="tied")
    if transposed:
        layer = L.TransposedCorrelation(m.out_channels, padding=tuple(m.padding),
                                        output_padding=tuple(m.output_padding), **geometry)
    else:
        padding = m.padding if isinstance(m.padding, str) else tuple(m.padding)
        if state["pad"] is not None:
            if padding == "same":      # torch's rule (stride 1): the odd entry of dilation*(k-1) goes after
                total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
                padding = tuple((t // 2, t - t // 2) for t in total)
            elif padding == "valid":
                padding = (0,) * n
            padding = tuple((b + (p if isinstance(p, int) else p[0]), e + (p if isinstance(p, int) else p[1]))
                            for (b, e), p in zip(state["pad"][1], padding))
            state["pad"] = None
        layer = L.Correlation(m.out_channels, padding=padding, **geometry)
    W = kernel_from_torch(_numbers(m.weight))
    theta = -_numbers(m.bias)[None, :] if m.bias is not None else np.zeros((1, m.out_channels))
    return layer, {"W": W, "Theta": theta}


def _torch_child(net, module, layer):
    name = getattr(layer, "torch_name", layer.name)
    try:
        return module.get_submodule(name)
    except AttributeError:
        raise ValueError(f"module has no child {name!r} for layer {layer.name!r}; pass the module the network "
                         "was imported from (from_torch) or exported to (net.to_torch())") from None


def network_gradients_from_torch(net, module) -> "OrderedDict[str, np.ndarray]":
    """Torch's ``.grad`` of every parameter, under the network's names and in its shapes (any Network).

    A torch bias ``b`` enters as ``z = ... + b`` while the book writes ``z = ... - theta``, so bias
    gradients change sign. A layer imported from a module without bias keeps a zero ``Theta`` whose
    gradient torch does not have: it is left out.
    """
    out = OrderedDict()
    for layer in net.layers:
        if not layer.parameter_shapes():
            continue
        child = _torch_child(net, module, layer)
        shapes = net.parameter_shapes()
        if layer.kind == "dense":
            out[f"{layer.name}.W"] = _numpy(child.weight.grad, f"{layer.name} weight.grad", shapes[f"{layer.name}.W"])
            if child.bias is not None:
                out[f"{layer.name}.theta"] = -_numpy(child.bias.grad, f"{layer.name} bias.grad",
                                                     shapes[f"{layer.name}.theta"])
        elif hasattr(layer, "torch_gradients"):
            out.update({f"{layer.name}.{k}": v for k, v in layer.torch_gradients(child).items()})
        elif layer.kind in ("correlation", "transposed_correlation", "tiled_correlation"):
            if isinstance(child, nn.Sequential):     # Correlation.to_torch: ZeroPadNd, then the convolution
                child = child[-1]
            gw = child.weight.grad
            if gw is None:
                raise ValueError(f"{layer.name}: the weight has no .grad; run loss.backward() first")
            gw = kernel_from_torch(_numbers(gw))
            # a tiled layer has a twin with one tile only: its W is (1, S D_in, D)
            out[f"{layer.name}.W"] = gw.reshape(shapes[f"{layer.name}.W"])
            if child.bias is not None:
                gb = -_numpy(child.bias.grad, f"{layer.name} bias.grad", (layer.out_maps,))
                rows = shapes[f"{layer.name}.Theta"][0]
                out[f"{layer.name}.Theta"] = np.repeat(gb[None, :], rows, axis=0)
            for key in ("W", "Theta"):          # a connection table's missing pairs are structural zeros (47.1213)
                mask = layer.structural_mask(key) if hasattr(layer, "structural_mask") else None
                if mask is not None and f"{layer.name}.{key}" in out:
                    out[f"{layer.name}.{key}"] = out[f"{layer.name}.{key}"] * mask
        else:
            raise ValueError(f"layer {layer.name!r} of kind {layer.kind!r} has no torch gradient mapping")
    return out
