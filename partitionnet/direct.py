"""Bridges to direct convolution (``scipy.signal``): the third of the project's four checks.

Everything here is written with ``scipy.signal.correlate`` / ``convolve``
on maps, never with a partition matrix, so it is an independent way to get
the numbers the network computes with V and T:

* :func:`correlate_layer` - the pre-activation of layer c,
  ``z^(d) = sum_j correlate(t_j, w_j^(d)) - sum_j theta^(d)(j)`` (47.1212;
  the convolution chapter's 8.20-8.21);
* :func:`input_sensitivity` - ``sum_d convolve(delta^(d), w_j^(d), 'full')``
  cropped to the input map: the transpose of a 'valid' correlation is a
  'full' convolution, i.e. a correlation with the flipped kernel (convolution
  chapter Eq. 8.45; lecture notes 003). It equals ``sum_{d'} V^(d,d') delta^(d')``
  of (47.1258);
* :func:`weight_gradient` - ``dW^(d)_j = sum_n correlate(t_{n,j}, delta_n^(d), 'valid')``
  over the zero-padded input (Eq. 8.48; ``convn(flipall(x), delta, 'valid')``
  of the lecture notes), equal to (47.1271);
* :func:`forward` and :func:`gradients` - a whole network, forward and
  backward, with these three functions for the correlation layers, the
  :class:`~partitionnet.Pooling` objects for pooling, and plain matrix
  products for the feedforward part.

For unit stride, unit dilation and 'valid' / 'same' / 'full' padding the
functions call scipy with that mode directly (the correspondence of the
sources: 'valid' <-> 'full', 'same' <-> 'same', 'full' <-> 'valid' between
a layer and its transpose). Other geometries use explicit zero padding, a
dilated kernel and slicing by the stride.

Maps are batch-first here, ``(N, D, *shape)``, as users hold them;
:func:`to_maps` / :func:`from_maps` convert from / to the network's
internal ``(P, N, D)`` arrays (positions column-stacked, see
:mod:`partitionnet.vec`). These functions loop over samples and map pairs:
they are a test oracle for small sizes, not a fast path.

Examples
--------
>>> import numpy as np
>>> from partitionnet import ConvNet, ConvLayer, direct
>>> net = ConvNet((5, 5), 1, [ConvLayer(2, kernel=3, padding="same", pooling=None)], [2], rng=0)
>>> x = np.random.default_rng(0).standard_normal((3, 1, 5, 5))
>>> _ = net.forward(x)
>>> z = direct.to_maps(net.cache.z_conv[0], (5, 5))
>>> bool(np.allclose(direct.correlate_layer(net, 1, x), z, rtol=1e-12))
True
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import scipy.signal as signal

from . import activations as act

__all__ = ["to_maps", "from_maps", "correlate_layer", "input_sensitivity", "weight_gradient",
           "forward", "gradients"]


# ---------------------------------------------------------------------------- layouts
def to_maps(columns: np.ndarray, shape) -> np.ndarray:
    """The network's ``(P, N, D)`` array (positions column-stacked) as ``(N, D, *shape)`` maps."""
    P, N, D = columns.shape
    shape = tuple(shape)
    if int(np.prod(shape)) != P:
        raise ValueError(f"shape {shape} has {int(np.prod(shape))} positions, but the array has P={P}")
    return columns.transpose(1, 2, 0).reshape((N, D) + shape, order="F")


def from_maps(maps: np.ndarray) -> np.ndarray:
    """``(N, D, *shape)`` maps as the network's ``(P, N, D)`` array (inverse of :func:`to_maps`)."""
    N, D = maps.shape[:2]
    return maps.reshape((N, D, -1), order="F").transpose(2, 0, 1)


# ---------------------------------------------------------------------------- geometry
def _stage(net, c: int):
    if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 1 <= c <= net.C:
        raise ValueError(f"c must be a layer number in [1, {net.C}] (1-based, as in the book), got {c!r}")
    st = net.conv[c - 1]
    g = st.partition.geometry
    if g is None:
        raise ValueError(f"layer {c} (conv{c}) uses an unstructured partition: there is no map to slide a "
                         "kernel over, so direct convolution does not apply")
    return st, g


def _mode(g) -> str | None:
    """The scipy mode equal to this geometry, or None (needs explicit padding / stride / dilation)."""
    if any(s != 1 for s in g["stride"]) or any(r != 1 for r in g["dilation"]):
        return None
    pad, k = tuple(g["padding"]), tuple(g["kernel"])
    if all(p == 0 for p in pad):
        return "valid"
    if all(p == kk - 1 for p, kk in zip(pad, k)):
        return "full"
    if all(kk % 2 == 1 and p == (kk - 1) // 2 for p, kk in zip(pad, k)):
        return "same"
    return None


def _kernels(net, st) -> np.ndarray:
    """``K[d, j] = unvec(w_j^(d,c), kernel_shape)``, shape (D, D_in, *kernel)."""
    k = tuple(st.partition.kernel_shape)
    n = len(k)
    blocks = net.weights(st.index).T.reshape((st.maps, st.in_maps) + k[::-1])   # window entries column-stacked
    return blocks.transpose((0, 1) + tuple(range(n + 1, 1, -1)))


def _dilate(a: np.ndarray, factors, axes) -> np.ndarray:
    """Insert ``factor - 1`` zeros between neighbouring entries along each of ``axes``."""
    if all(f == 1 for f in factors):
        return a
    shape = list(a.shape)
    index = [slice(None)] * a.ndim
    for f, ax in zip(factors, axes):
        shape[ax] = (a.shape[ax] - 1) * f + 1
        index[ax] = slice(None, None, f)
    out = np.zeros(shape, dtype=a.dtype)
    out[tuple(index)] = a
    return out


def _pad(t: np.ndarray, pad) -> np.ndarray:
    return np.pad(t, [(0, 0)] * (t.ndim - len(pad)) + [(p, p) for p in pad])


def _as_batch(a, name: str, lead: int, shape) -> tuple[np.ndarray, bool]:
    """Accept ``(lead, *shape)`` (one sample) or ``(N, lead, *any)`` with ``prod(any) = prod(shape)``.

    A batch whose map shape differs (for example pooled 2-D maps entering a
    layer whose partition slides over their vec) is reshaped in
    column-stacking order.
    """
    a = np.asarray(a, dtype=np.float64)
    shape = tuple(shape)
    if a.shape == (lead,) + shape:
        return a[None], False
    if a.ndim >= 2 and a.shape[1] == lead and int(np.prod(a.shape[2:])) == int(np.prod(shape)):
        if a.shape[2:] != shape:
            a = a.reshape(a.shape[:2] + (-1,), order="F").reshape(a.shape[:2] + shape, order="F")
        return a, True
    raise ValueError(f"{name} must have shape (N, {lead}) + {shape} (a batch) or ({lead},) + {shape} "
                     f"(one sample), got {a.shape}")


# ---------------------------------------------------------------------------- the three operations
def correlate_layer(net, c: int, t) -> np.ndarray:
    """Pre-activation ``z`` of layer ``c`` by direct correlation (47.1212).

    ``z^(d) = sum_j scipy.signal.correlate(t_j, w_j^(d,c), mode) - sum_j theta^(d,c)(j)``
    with the layer's padding as the mode (or explicit zero padding, a
    dilated kernel and a stride slice for other geometries).

    Parameters
    ----------
    t : array (N, D_{c-1}, *input_map) or (D_{c-1}, *input_map)
        The maps entering layer ``c`` (``x`` for c = 1, the pooled maps of
        layer c-1 otherwise).

    Returns
    -------
    array (N, D_c, *output_map) (no batch axis if ``t`` had none)
    """
    st, g = _stage(net, c)
    t, batched = _as_batch(t, "t", st.in_maps, g["input_shape"])
    K = _kernels(net, st)
    mode = _mode(g)
    n = len(g["input_shape"])
    if mode is None:
        t = _pad(t, g["padding"])
        K = _dilate(K, g["dilation"], range(2, 2 + n))
    out_shape = tuple(st.partition.output_shape)
    crop = tuple(slice(None, None, s) for s in g["stride"])
    z = np.empty((t.shape[0], st.maps) + out_shape)
    bias = net.bias_sums(st)
    for i in range(t.shape[0]):
        for d in range(st.maps):
            acc = sum(signal.correlate(t[i, j], K[d, j], mode=mode or "valid", method="direct")
                      for j in range(st.in_maps) if st.connections[d, j])
            z[i, d] = acc[crop] - bias[d]
    return z if batched else z[0]


def input_sensitivity(net, c: int, delta) -> np.ndarray:
    """``sum_d convolve(delta^(d), w_j^(d,c), 'full')`` cropped to the input map, for every j (Eq. 8.45).

    This is the sensitivity of the maps entering layer ``c`` for the
    sensitivity ``delta`` of its pre-activation, i.e. ``sum_{d'} V^(d,d') delta^(d')``
    of (47.1258) with the roles renamed. The 'full' convolution covers the
    zero-padded input; cropping the padding gives the input map ('valid'
    padding: 'full' mode; 'same': 'same'; 'full' padding: 'valid'). A
    stride inserts zeros between the entries of ``delta`` first, a dilation
    between those of the kernel; input entries that no window reaches
    (floor in the output size) get zero.

    Parameters
    ----------
    delta : array (N, D_c, *output_map) or (D_c, *output_map)

    Returns
    -------
    array (N, D_{c-1}, *input_map)
    """
    st, g = _stage(net, c)
    delta, batched = _as_batch(delta, "delta", st.maps, st.partition.output_shape)
    K = _kernels(net, st)
    in_shape = tuple(g["input_shape"])
    n = len(in_shape)
    mode = {"valid": "full", "same": "same", "full": "valid"}.get(_mode(g))
    if mode is None:
        delta = _dilate(delta, g["stride"], range(2, 2 + n))
        K = _dilate(K, g["dilation"], range(2, 2 + n))
    out = np.zeros((delta.shape[0], st.in_maps) + in_shape)
    for i in range(delta.shape[0]):
        for j in range(st.in_maps):
            acc = sum(signal.convolve(delta[i, d], K[d, j], mode=mode or "full", method="direct")
                      for d in range(st.maps) if st.connections[d, j])
            if mode is None:
                # acc covers padded positions 0 .. len-1; keep pad .. pad + n_in - 1.
                acc = acc[tuple(slice(p, p + m) for p, m in zip(g["padding"], in_shape))]
            out[i, j][tuple(slice(0, m) for m in acc.shape)] = acc
    return out if batched else out[0]


def weight_gradient(net, c: int, t, delta) -> tuple[np.ndarray, np.ndarray]:
    """``(dW_c, dTheta_c)`` by direct correlation (Eq. 8.48; 47.1271, 47.1274).

    ``dw_j^(d) = sum_n correlate(pad(t_{n,j}), delta_n^(d), 'valid')``: each
    kernel entry collects the input entries it multiplied, weighted by the
    sensitivity of the output they produced. Returned in the layout of
    ``W_c`` (rows ``j*S + s``, column-stacked windows) and of ``Theta_c``.

    Parameters
    ----------
    t : array (N, D_{c-1}, *input_map)
        The maps that entered layer ``c``.
    delta : array (N, D_c, *output_map)
        Sensitivity of layer c's pre-activation.
    """
    st, g = _stage(net, c)
    t, tb = _as_batch(t, "t", st.in_maps, g["input_shape"])
    delta, db = _as_batch(delta, "delta", st.maps, st.partition.output_shape)
    if t.shape[0] != delta.shape[0]:
        raise ValueError(f"t holds {t.shape[0]} samples but delta holds {delta.shape[0]}")
    n = len(g["input_shape"])
    tp = _pad(t, g["padding"])
    du = _dilate(delta, g["stride"], range(2, 2 + n))
    pick = tuple(slice(0, (k - 1) * r + 1, r) for k, r in zip(g["kernel"], g["dilation"]))
    dW = np.zeros((st.in_maps * st.S, st.maps))
    for d in range(st.maps):
        for j in range(st.in_maps):
            if not st.connections[d, j]:
                continue
            acc = sum(signal.correlate(tp[i, j], du[i, d], mode="valid", method="direct")
                      for i in range(t.shape[0]))
            dW[j * st.S:(j + 1) * st.S, d] = acc[pick].reshape(-1, order="F")
    total = -delta.sum(axis=tuple(range(2, delta.ndim))).sum(axis=0)
    dTheta = total[None, :] if net.bias == "tied" else np.where(st.connections.T, total[None, :], 0.0)
    return dW, dTheta


# ---------------------------------------------------------------------------- a whole network
def forward(net, x):
    """Forward pass with direct correlation: ``(y, record)``.

    ``record`` is a dict of lists, one entry per correlation layer, of
    batch-first maps: ``'input'`` (what entered the layer), ``'z'``, ``'t'``
    (pooled), plus ``'g'`` (the pooling gradient vectors, columns
    ``n*D + d``) and the feedforward ``'z_dense'`` / ``'y_dense'`` (samples
    as columns). ``y`` is ``(N, Q)``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == len(net.input_shape) + 1:
        x = x[None]
    rec = {"input": [], "z": [], "t": [], "g": [], "z_dense": [], "y_dense": []}
    t = x
    for st in net.conv:
        _stage(net, st.index)
        z = correlate_layer(net, st.index, t)
        y = act.get(st.activation)[0](z)
        tcol, g = st.pooling.pool(from_maps(y).reshape(st.P, -1))
        rec["input"].append(t)
        rec["z"].append(z)
        rec["g"].append(g)
        t = to_maps(tcol.reshape(st.P_out, -1, st.maps), st.pooling.output_shape)
        rec["t"].append(t)
    y_l = from_maps(t).transpose(2, 0, 1).reshape(-1, t.shape[0])         # col{t^(1,C), ...} (47.1215)
    rec["y_dense"].append(y_l)
    p = net.parameters()
    for l in range(1, net.L):
        z_l = p[f"dense{l}.W"] @ y_l - p[f"dense{l}.theta"][:, None]
        if l < net.L - 1:
            y_l = act.get(net.activation)[0](z_l)
        elif net.output == "softmax":
            e = np.exp(z_l - z_l.max(axis=0))
            y_l = e / e.sum(axis=0)
        else:
            y_l = act.get(net.output)[0](z_l)
        rec["z_dense"].append(z_l)
        rec["y_dense"].append(y_l)
    return y_l.T, rec


def gradients(net, x, gamma) -> "OrderedDict[str, np.ndarray]":
    """All gradients of ``net.loss(x, gamma)``, the correlation layers by direct convolution.

    The sensitivity of every layer's input is :func:`input_sensitivity`
    (Eq. 8.45), the kernels' gradient :func:`weight_gradient` (Eq. 8.48);
    pooling goes back through ``Pooling.backward`` (47.1244) and the
    feedforward part is ``delta_l = f'(z_l) * W_l^T delta_{l+1}`` (47.1234).
    Same keys as ``net.gradients``.
    """
    batched = np.ndim(x) == len(net.input_shape) + 2
    y, rec = forward(net, x)
    N = y.shape[0]
    gam = net.targets(gamma, N, batched)
    grads: dict = {}
    # The feedforward part is not what this module checks: take its sensitivities delta_l
    # (47.1233-47.1234) from the network, and form dW_l = delta_{l+1} y_l^T, dtheta_l = -sum delta_{l+1}.
    sens = net.sensitivities(x, gamma)
    for l in range(1, net.L):
        delta = np.atleast_2d(sens[f"dense{l + 1}"]).T                           # (n_{l+1}, N)
        grads[f"dense{l}.W"] = delta @ rec["y_dense"][l - 1].T
        grads[f"dense{l}.theta"] = -delta.sum(axis=1)
    delta_2 = np.atleast_2d(sens["dense2"]).T
    last = net.conv[-1]
    v = (net.parameters()["dense1.W"].T @ delta_2).reshape(last.maps, last.P_out, -1).transpose(1, 2, 0)  # (47.1220)
    for st in reversed(net.conv):
        c = st.index
        dy = st.pooling.backward(v.reshape(st.P_out, -1), rec["g"][c - 1])
        dz = act.get(st.activation)[1](rec["z"][c - 1]) * to_maps(dy.reshape(st.P, N, st.maps),
                                                                    st.partition.output_shape)
        grads[f"conv{c}.W"], grads[f"conv{c}.Theta"] = weight_gradient(net, c, rec["input"][c - 1], dz)
        if c > 1:
            v = from_maps(input_sensitivity(net, c, dz))
    return OrderedDict((k, grads[k]) for k in net.parameter_shapes())
