"""Grouped correlation, (before, after) padding, 'same' for any kernel and stride, and the transposed correlation.

The layer contract (tests/test_layers.py) already runs every example of both
kinds; this file checks them against outside references: PyTorch's Conv and
ConvTranspose (outputs and autograd gradients, float64, 1e-10), scipy's
correlations, explicit zero padding, and the algebraic identity that makes a
transposed correlation what it is: its forward pass is the correlation's
backward pass, and its operator is the transpose of the correlation's.
"""
import json

import numpy as np
import pytest
import scipy.signal

from partitionnet import Network, Partition
from partitionnet import layers as L
from partitionnet._windows import same_padding
from partitionnet.layout import from_stack, to_stack

torch = pytest.importorskip("torch")

TOL = 1e-10


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def params(layer, rng):
    return {k: rng.standard_normal(s) for k, s in layer.parameter_shapes().items()}


def against_torch(layer, in_maps, in_shape, rng, n=3):
    """Forward and every gradient of a built layer against its torch twin under autograd."""
    layer = layer.build(in_maps, in_shape)
    p = params(layer, rng)
    x = rng.standard_normal((n, in_maps) + tuple(in_shape))
    y, res = layer.forward(p, to_stack(x))
    module = layer.to_torch(p)
    tx = torch.tensor(x, requires_grad=True)
    ty = module(tx)
    errors = {"forward": rel(from_stack(y, layer.out_shape), ty.detach().numpy())}
    u = rng.standard_normal(ty.shape)
    (ty * torch.from_numpy(u)).sum().backward()
    for engine, vjp in (("fast", layer.vjp), ("literal", layer.vjp_literal)):
        dx, grads = vjp(p, res, to_stack(u))
        errors[f"{engine} dx"] = rel(from_stack(dx, in_shape), tx.grad.numpy())
        conv = module[-1] if isinstance(module, torch.nn.Sequential) else module
        errors[f"{engine} dW"] = rel(grads["W"], _our_weight_gradient(conv.weight.grad.numpy()))
        # every bias of an output map (one, or one per input map of its group) enters as -theta: torch's -bias
        errors[f"{engine} dTheta"] = rel(grads["Theta"], np.broadcast_to(-conv.bias.grad.numpy(), grads["Theta"].shape))
    return layer, errors


def _our_weight_gradient(torch_grad):
    """torch's weight gradient ``(a, b, *kernel)`` in our layout ``(b S, a)``, row ``j b + s``: each kernel
    column-stacked (reversed kernel axes, then a C-order reshape). Conv has ``a = D``, ``b = D_in/g``;
    ConvTranspose has ``a = D_in``, ``b = D/g``: both are our W's columns and row blocks."""
    n = torch_grad.ndim - 2
    w = torch_grad.transpose((0, 1) + tuple(range(n + 1, 1, -1)))
    return w.reshape(torch_grad.shape[0], -1).T


# ---------------------------------------------------------------------- random geometries, 1-D to 3-D
def transposed_cases(count=24, seed=11):
    rng = np.random.default_rng(seed)
    cases = []
    for c in range(count):
        nd = 1 + c % 3
        groups = int(rng.choice([1, 2, 3]))
        in_maps, maps = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        kernel = tuple(int(k) for k in rng.integers(1, 4, nd))
        stride = tuple(int(s) for s in rng.integers(1, 4, nd))
        dilation = tuple(int(d) for d in rng.integers(1, 3, nd))
        extra = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
        in_shape = tuple(int(v) for v in rng.integers(2, 5 if nd < 3 else 4, nd))
        padding = tuple(int(rng.integers(0, 1 + (d * (k - 1)) // 2)) for k, d in zip(kernel, dilation))
        layer = L.TransposedCorrelation(maps, kernel=kernel, stride=stride, padding=padding, output_padding=extra,
                                        dilation=dilation, groups=groups)
        cases.append(pytest.param(layer, in_maps, in_shape, id=f"{nd}d-g{groups}-k{kernel}-s{stride}-p{padding}-"
                                  f"op{extra}-d{dilation}"))
    return cases


@pytest.mark.parametrize("layer, in_maps, in_shape", transposed_cases())
def test_transposed_matches_torch_conv_transpose(layer, in_maps, in_shape):
    built, errors = against_torch(layer, in_maps, in_shape, np.random.default_rng(0))
    assert type(built.to_torch(params(built, np.random.default_rng(0)))).__name__ == f"ConvTranspose{len(in_shape)}d"
    assert max(errors.values()) < TOL, errors


def grouped_cases(count=24, seed=5):
    rng = np.random.default_rng(seed)
    cases = []
    for c in range(count):
        nd = 1 + c % 3
        groups = int(rng.choice([1, 2, 3]))
        in_maps, maps = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        if c % 4 == 0:                                       # depthwise (with a channel multiplier)
            in_maps = groups
        kernel = tuple(int(k) for k in rng.integers(1, 4, nd))
        stride = tuple(int(s) for s in rng.integers(1, 3, nd))
        dilation = tuple(int(d) for d in rng.integers(1, 3, nd))
        padding = (tuple((int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(nd))
                   if c % 3 else "same")
        in_shape = tuple(int(v) + d * (k - 1) for v, k, d in zip(rng.integers(2, 5 if nd < 3 else 4, nd),
                                                               kernel, dilation))
        layer = L.Correlation(maps, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                              groups=groups, bias="per_input" if c % 2 else "tied")
        cases.append(pytest.param(layer, in_maps, in_shape, id=f"{nd}d-g{groups}-{in_maps}to{maps}-k{kernel}-"
                                  f"s{stride}-p{padding}-d{dilation}"))
    return cases


@pytest.mark.parametrize("layer, in_maps, in_shape", grouped_cases())
def test_grouped_correlation_matches_torch_conv(layer, in_maps, in_shape):
    _, errors = against_torch(layer, in_maps, in_shape, np.random.default_rng(1))
    assert max(errors.values()) < TOL, errors


def test_depthwise_is_one_scipy_correlation_per_map():
    rng = np.random.default_rng(2)
    layer = L.Correlation(3, kernel=(3, 2), groups=3, bias="tied").build(3, (6, 5))
    p = {"W": rng.standard_normal((6, 3)), "Theta": np.zeros((1, 3))}
    x = rng.standard_normal((1, 3, 6, 5))
    z = from_stack(layer.forward(p, to_stack(x))[0], layer.out_shape)
    for d in range(3):
        mask = p["W"][:, d].reshape((3, 2), order="F")              # w is the column-stacked mask
        assert rel(z[0, d], scipy.signal.correlate(x[0, d], mask, mode="valid")) < TOL


def test_grouped_weights_are_stored_compactly():
    layer = L.Correlation(6, kernel=3, groups=2, bias="per_input").build(4, (7,))
    assert layer.parameter_shapes() == {"W": (3 * 2, 6), "Theta": (2, 6)}
    assert layer.structural_mask("W") is None
    # the same layer as a connection table stores the zeros: the outputs agree
    rng = np.random.default_rng(3)
    p = params(layer, rng)
    table = L.Correlation(6, kernel=3, connections=[[0, 1]] * 3 + [[2, 3]] * 3).build(4, (7,))
    W_full = np.zeros((12, 6))
    W_full[:6, :3], W_full[6:, 3:] = p["W"][:, :3], p["W"][:, 3:]
    T_full = np.zeros((4, 6))
    T_full[:2, :3], T_full[2:, 3:] = p["Theta"][:, :3], p["Theta"][:, 3:]
    x = rng.standard_normal((7, 2, 4))
    assert rel(layer.forward(p, x)[0], table.forward({"W": W_full, "Theta": T_full}, x)[0]) < TOL


# ---------------------------------------------------------------------- the transposed correlation IS V^T
@pytest.mark.parametrize("shape, kernel, stride, padding, dilation, groups", [
    ((7,), 3, 2, 1, 1, 1), ((6, 5), (2, 3), (2, 1), (0, 1), (1, 2), 2), ((4, 4, 5), 2, (1, 2, 2), 1, 1, 1)])
def test_transposed_forward_is_the_correlations_backward(shape, kernel, stride, padding, dilation, groups):
    """With the same W, TransposedCorrelation.forward = Correlation's input sensitivity (V^T G) and
    TransposedCorrelation.operator = Correlation.operator transposed."""
    rng = np.random.default_rng(4)
    corr = L.Correlation(2 * groups, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                         groups=groups).build(2 * groups, shape)
    extra = tuple(n - ((o - 1) * s - 2 * p + d * (k - 1) + 1) for n, o, s, p, d, k in zip(
        shape, corr.out_shape, corr.V.geometry["stride"], corr.V.geometry["padding"], corr.V.geometry["dilation"],
        corr.V.kernel_shape))
    trans = L.TransposedCorrelation(2 * groups, kernel=kernel, stride=stride, padding=padding,
                                    output_padding=extra, dilation=dilation, groups=groups).build(2 * groups,
                                                                                                 corr.out_shape)
    assert trans.out_shape == tuple(shape)
    assert trans.parameter_shapes()["W"] == corr.parameter_shapes()["W"]
    W = rng.standard_normal(corr.parameter_shapes()["W"])
    y = rng.standard_normal((corr.P_out, 3, 2 * groups))
    x_t, _ = trans.forward({"W": W, "Theta": np.zeros((1, 2 * groups))}, y)
    _, H = corr.forward({"W": W, "Theta": np.zeros(corr.parameter_shapes()["Theta"])},
                        rng.standard_normal((corr.P_in, 3, 2 * groups)))
    dx, _ = corr.vjp({"W": W}, H, y)
    assert rel(x_t, dx) < TOL
    op_c = corr.operator({"W": W}).toarray()
    op_t = trans.operator({"W": W}).toarray()
    assert op_t.shape == op_c.T.shape and rel(op_t, op_c.T) == 0.0


def test_transposed_operator_is_exact_transpose_in_sympy():
    import sympy

    from partitionnet.algebra import SYMPY

    corr = L.Correlation(2, kernel=2, stride=2, groups=2).build(2, (5,))
    trans = L.TransposedCorrelation(2, kernel=2, stride=2, output_padding=1, groups=2).build(2, corr.out_shape)
    W = np.array([[sympy.Symbol(f"w{i}{d}") for d in range(2)] for i in range(2)], dtype=object)
    assert sympy.Matrix(trans.operator({"W": W}, algebra=SYMPY)) == sympy.Matrix(
        corr.operator({"W": W}, algebra=SYMPY)).T


def test_transposed_output_length_and_torch_agree_on_shapes():
    for n, k, s, p, op, d in [(3, 3, 2, 1, 1, 1), (4, 2, 3, 0, 2, 1), (2, 3, 1, 2, 0, 2), (5, 1, 2, 0, 1, 1)]:
        layer = L.TransposedCorrelation(1, kernel=k, stride=s, padding=p, output_padding=op,
                                        dilation=d).build(1, (n,))
        out = torch.nn.functional.conv_transpose1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p,
                                                   output_padding=op, dilation=d)
        assert layer.out_shape == (out.shape[-1],)


# ---------------------------------------------------------------------- padding: pairs and 'same'
@pytest.mark.parametrize("shape, kernel", [((9, 8), (2, 4)), ((7, 6), (4, 3)), ((5, 5), (2, 2)), ((6, 7), (3, 5))])
def test_same_matches_scipy_correlate2d(shape, kernel):
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal(shape), rng.standard_normal(kernel)
    V = Partition.sliding_window(shape, kernel, padding="same")
    ours = (V.patches(x.reshape(-1, order="F")).T @ w.reshape(-1, order="F")).reshape(V.output_shape, order="F")
    assert V.output_shape == shape
    assert rel(ours, scipy.signal.correlate2d(x, w, mode="same")) < TOL


@pytest.mark.parametrize("n, k", [(9, 2), (8, 4), (7, 3), (6, 6)])
def test_scipy_correlate_same_is_the_mirror_split(n, k):
    """scipy.signal.correlate(..., 'same') centres the other way (the odd zero before): a (before, after) pair says so."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal(n), rng.standard_normal(k)
    before, after = same_padding(n, k, 1, 1)
    mirrored = Partition.sliding_window(n, k, padding=((after, before),))
    assert rel(mirrored.patches(x).T @ w, scipy.signal.correlate(x, w, mode="same")) < TOL
    ours = Partition.sliding_window(n, k, padding="same")
    assert (rel(ours.patches(x).T @ w, scipy.signal.correlate(x, w, mode="same")) < TOL) == (k % 2 == 1)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("nd", [1, 3])
def test_same_with_even_kernel_matches_torch_padding_same(nd):
    rng = np.random.default_rng(8)
    shape, kernel = ((9,), (4,)) if nd == 1 else ((4, 5, 3), (2, 3, 2))
    layer = L.Correlation(2, kernel=kernel, padding="same", dilation=(2,) * nd if nd == 1 else 1,
                          bias="tied").build(1, shape)
    p = params(layer, rng)
    x = rng.standard_normal((2, 1) + shape)
    conv = getattr(torch.nn.functional, f"conv{nd}d")
    from partitionnet.layout import kernel_to_torch
    ref = conv(torch.from_numpy(x), torch.from_numpy(kernel_to_torch(p["W"], 1, 2, layer.V.kernel_shape)),
               torch.from_numpy(-p["Theta"][0]), padding="same", dilation=2 if nd == 1 else 1)
    assert layer.out_shape == shape
    assert rel(from_stack(layer.forward(p, to_stack(x))[0], shape), ref.numpy()) < TOL


@pytest.mark.parametrize("n, k, s, d", [(7, 3, 2, 1), (8, 4, 3, 1), (10, 2, 4, 2), (5, 5, 2, 1), (3, 4, 5, 1)])
def test_same_with_stride_follows_tensorflow(n, k, s, d):
    """ceil(n/s) outputs; total padding max((out-1)s + d(k-1) + 1 - n, 0), half (floor) before: written out here."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    before = total // 2
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal(n), rng.standard_normal(k)
    padded = np.concatenate([np.zeros(before), x, np.zeros(total - before)])
    expected = [sum(w[t] * padded[o * s + t * d] for t in range(k)) for o in range(out)]
    V = Partition.sliding_window(n, k, stride=s, dilation=d, padding="same")
    assert V.output_shape == (out,)
    assert rel(V.patches(x).T @ w, expected) < TOL


def test_padding_pairs_match_explicit_zero_padding():
    rng = np.random.default_rng(10)
    x, w = rng.standard_normal((5, 6)), rng.standard_normal((3, 2))
    pads = ((2, 0), (1, 3))
    V = Partition.sliding_window((5, 6), (3, 2), stride=(2, 1), padding=pads)
    expected = scipy.signal.correlate(np.pad(x, pads), w, mode="valid")[::2, :]
    ours = (V.patches(x.reshape(-1, order="F")).T @ w.reshape(-1, order="F")).reshape(V.output_shape, order="F")
    assert V.geometry["padding"] == pads and V.output_shape == expected.shape
    assert rel(ours, expected) < TOL
    # mixed forms: an int for one axis, a pair for the other; equal pairs fold back to ints
    assert Partition.sliding_window((5, 6), 3, padding=(1, (0, 2))).geometry["padding"] == ((1, 1), (0, 2))
    assert Partition.sliding_window((5, 6), 3, padding=((1, 1), 2)).geometry["padding"] == (1, 2)


def test_config_with_pairs_and_groups_survives_json():
    layers = [L.Correlation(4, kernel=(2, 3), padding=((0, 1), (2, 1)), groups=2),
              L.TransposedCorrelation(2, kernel=3, stride=2, padding=1, output_padding=(1, 0), groups=2),
              L.Correlation(2, kernel=2, stride=2, padding="same", groups=2, bias="tied")]
    net = Network((5, 4), 2, layers, rng=0)
    again = Network.from_config(json.loads(json.dumps(net.config())), rng=0)
    assert again.config() == net.config()
    again.set_parameters(net.parameters())
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 4))
    assert rel(again.forward(x), net.forward(x)) == 0.0


def test_encoder_decoder_network_both_engines_and_torch():
    layers = [L.Correlation(4, kernel=3, stride=2, padding="same"), L.Activation("tanh"),
              L.Correlation(4, kernel=3, padding=1, groups=4), L.Activation("tanh"),
              L.TransposedCorrelation(2, kernel=3, stride=2, padding=1, output_padding=1),
              L.Activation("sigmoid")]
    net = Network((6, 6), 2, layers, rng=1)
    assert net.output_shape == (2, 6, 6)
    rng = np.random.default_rng(12)
    x, gamma = rng.standard_normal((3, 2, 6, 6)), rng.random((3, 2, 6, 6))
    fast, book = net.gradients(x, gamma), net.gradients(x, gamma, engine="kronecker")
    assert max(rel(fast[k], book[k]) for k in fast) < TOL
    module = net.to_torch()
    tx = torch.tensor(x)
    ty = module(tx)
    assert rel(net.forward(x), ty.detach().numpy()) < TOL
    ((ty - torch.from_numpy(gamma)) ** 2).sum().backward()
    for i in (0, 2, 4):
        conv = getattr(module, net.layers[i].name)
        conv = conv[-1] if isinstance(conv, torch.nn.Sequential) else conv     # 'same', stride 2: ZeroPad2d + Conv2d
        assert rel(fast[f"{net.layers[i].name}.W"], _our_weight_gradient(conv.weight.grad.numpy())) < TOL
        theta = fast[f"{net.layers[i].name}.Theta"]
        assert rel(theta, np.broadcast_to(-conv.bias.grad.numpy(), theta.shape)) < TOL


@pytest.mark.parametrize("kind", ["correlation", "transposed"])
def test_float32_stays_float32(kind):
    layer = (L.Correlation(4, kernel=2, groups=2) if kind == "correlation"
             else L.TransposedCorrelation(4, kernel=2, stride=2, groups=2)).build(2, (3, 3))
    p = {k: v.astype(np.float32) for k, v in params(layer, np.random.default_rng(0)).items()}
    x = np.random.default_rng(1).standard_normal((9, 2, 2)).astype(np.float32)
    y, res = layer.forward(p, x)
    dx, grads = layer.vjp(p, res, np.ones_like(y))
    assert y.dtype == dx.dtype == grads["W"].dtype == np.float32


# ---------------------------------------------------------------------- clear errors
BAD = [
    (lambda: L.Correlation(4, kernel=2, groups=3), ValueError, r"groups=3 must divide the number of output maps"),
    (lambda: L.Correlation(4, kernel=2, groups=2).build(3, (4,)), ValueError,
     r"groups=2 must divide both the number of input maps \(3\) and of output maps \(4\)"),
    (lambda: L.Correlation(2, kernel=2, groups=2, connections=[[0], [1]]), ValueError, "either groups or connections"),
    (lambda: L.Correlation(2, kernel=2, groups=1.5), TypeError, "groups must be an integer"),
    (lambda: L.Correlation(2, kernel=2, groups=0), ValueError, "groups must be an integer >= 1"),
    (lambda: L.Correlation(2, kernel=4, padding=((1, 0),)).build(1, (2,)), ValueError,
     r"larger than the padded input \(1 \+ 2 \+ 0 = 3 on axis 0\)"),
    (lambda: Partition.sliding_window((4, 4), 2, padding=((1, 2, 3), 0)), ValueError,
     r"padding\[0\] must be an int or a \(before, after\) pair"),
    (lambda: Partition.sliding_window((4, 4), 2, padding=((1, -1), 0)), ValueError, r"padding\[0\]\[1\]"),
    (lambda: Partition.sliding_window((4, 4), 2, padding=(1.0, 0)), TypeError, r"padding\[0\] must be an integer"),
    (lambda: Partition.sliding_window((4, 4), 2, padding=(1, 0, 0)), ValueError, "padding must have 2 entries"),
    (lambda: Partition.sliding_window((4, 4), 2, padding={1: 2}), TypeError, "got dict"),
    (lambda: Partition.sliding_window((4, 4), 2, padding=None), TypeError, "padding must be an int"),
    (lambda: Partition.sliding_window((4, 4), 2, padding="middle"), ValueError, "one of"),
    (lambda: L.TransposedCorrelation(3, kernel=2, groups=2), ValueError, "groups=2 must divide"),
    (lambda: L.TransposedCorrelation(2, kernel=2, groups=2).build(3, (4,)), ValueError,
     r"input maps \(3\) and of output maps \(2\)"),
    (lambda: L.TransposedCorrelation(2, kernel=3, stride=2, output_padding=2).build(1, (4,)), ValueError,
     "output_padding must be smaller than the stride or the dilation"),
    (lambda: L.TransposedCorrelation(2, kernel=3, stride=(2, 1), output_padding=(1, 1)).build(1, (4, 4)), ValueError,
     r"output_padding 1 with stride 1 and dilation 1 on axis 1"),
    (lambda: L.TransposedCorrelation(1, kernel=2, padding=2).build(1, (2,)), ValueError,
     "removes the whole output"),
    (lambda: L.TransposedCorrelation(1, kernel=2, padding=-1), ValueError, "padding must be an integer >= 0"),
    (lambda: L.TransposedCorrelation(1, kernel=(2, "a")), TypeError, r"kernel\[1\] must be an integer"),
    (lambda: L.TransposedCorrelation(1, kernel=None), ValueError, "needs kernel"),
    (lambda: L.TransposedCorrelation(1, kernel=2, bias="per_input"), ValueError, "one bias per output map"),
    (lambda: L.TransposedCorrelation(1, kernel=2, bias=None), TypeError, "bias must be a string"),
    (lambda: L.TransposedCorrelation(1, kernel=(2, 2)).build(1, (4,)), ValueError, "kernel must have 1 entries"),
    (lambda: L.TransposedCorrelation("2", kernel=2), TypeError, "maps must be an integer"),
]


@pytest.mark.parametrize("call, error, match", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()
