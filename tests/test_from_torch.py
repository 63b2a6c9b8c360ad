"""PyTorch models in and out: from_torch gives the same outputs and gradients as torch autograd.

Random ``nn.Sequential`` models (hypothesis) mix convolutions, pooling, activations, flattening, linear
layers and softmax in 1-D, 2-D and 3-D; both engines must reproduce torch's outputs and parameter
gradients to 1e-10 in float64.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

import partitionnet as pn  # noqa: E402
from partitionnet import layers as L  # noqa: E402
from partitionnet.torch_bridge import gradients_from_torch, parameters_from_torch  # noqa: E402

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
DECONV = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
ZEROPAD = {1: nn.ZeroPad1d, 2: nn.ZeroPad2d, 3: nn.ZeroPad3d}
MAXP = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVGP = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
LPP = {1: nn.LPPool1d, 2: nn.LPPool2d, 3: nn.LPPool3d}
ADA = {1: (nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d), 2: (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d),
       3: (nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool3d)}
ACT = [nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity]
MAX_POSITIONS = {1: 40, 2: 150, 3: 300}          # keeps the explicit (kronecker) engine quick


def per_axis(draw, n, low, high):
    """An int, or one int per axis."""
    if n > 1 and draw(st.booleans()):
        return tuple(draw(st.integers(low, high)) for _ in range(n))
    return draw(st.integers(low, high))


def axes(value, n):
    return value if isinstance(value, tuple) else (value,) * n


def channels(draw, c):
    """(groups, out_channels): ungrouped, grouped, or depthwise (groups = in_channels)."""
    kind = draw(st.sampled_from(["plain", "grouped", "depthwise"]))
    if kind == "depthwise":
        return c, c * draw(st.integers(1, 2))
    if kind == "grouped":
        g = draw(st.sampled_from([d for d in range(1, c + 1) if c % d == 0]))
        return g, g * draw(st.integers(1, 2))
    return 1, draw(st.integers(1, 3))


@st.composite
def models(draw):
    """A random Sequential over the modules of issue 11, and the shape of one sample.

    ``zeros`` tracks whether exact zeros can reach the next module (after a ReLU or a layer without
    bias): LPPool is drawn only when they cannot, since torch's lp_pool has a NaN gradient on an
    all-zero window (the l_p norm is not differentiable there).
    """
    n = draw(st.integers(1, 3))
    s = tuple(draw(st.integers(2, {1: 9, 2: 7, 3: 4}[n])) for _ in range(n))
    c = draw(st.integers(1, 3))
    shape = (c,) + s
    mods, zeros = [], False
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv", "conv", "deconv", "pool"]))
        if kind == "conv":
            k, dil, stride = per_axis(draw, n, 1, 3), per_axis(draw, n, 1, 2), per_axis(draw, n, 1, 2)
            g, c_out = channels(draw, c)
            bias = draw(st.booleans())
            mode = draw(st.sampled_from(["int", "tuple", "same", "valid"]))
            padding = mode
            if mode == "same":
                stride = 1                                            # torch: 'same' needs stride 1
                pads = [((dl * (kk - 1)) // 2, dl * (kk - 1) - (dl * (kk - 1)) // 2)
                        for kk, dl in zip(axes(k, n), axes(dil, n))]
            elif mode == "valid":
                pads = [(0, 0)] * n
            else:
                padding = per_axis(draw, n, 0, 1) if mode == "tuple" else draw(st.integers(0, 1))
                pads = [(pa, pa) for pa in axes(padding, n)]
            # sometimes a ZeroPadNd (unequal sides) first: its zeros become part of the convolution's padding
            pre = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(n)) \
                if draw(st.integers(0, 3)) == 0 else None
            if pre is not None:
                pads = [(b + pb, a + pa) for (b, a), (pb, pa) in zip(pads, pre)]
            out = tuple((si + b + a - dl * (kk - 1) - 1) // sd + 1 for si, (b, a), kk, dl, sd
                        in zip(s, pads, axes(k, n), axes(dil, n), axes(stride, n)))
            if min(out) < 1:
                continue
            if pre is not None:
                mods.append(ZEROPAD[n](tuple(v for b, a in reversed(pre) for v in (b, a))))
            mods.append(CONV[n](c, c_out, k, stride=stride, padding=padding, dilation=dil, groups=g, bias=bias))
        elif kind == "deconv":
            k, dil, stride = per_axis(draw, n, 1, 3), per_axis(draw, n, 1, 2), per_axis(draw, n, 1, 2)
            padding = per_axis(draw, n, 0, 1)
            extra = tuple(draw(st.integers(0, max(a, b) - 1)) for a, b in zip(axes(stride, n), axes(dil, n)))
            g, c_out = channels(draw, c)
            bias = draw(st.booleans())
            out = tuple((si - 1) * sd - 2 * pa + dl * (kk - 1) + e + 1 for si, kk, sd, pa, e, dl
                        in zip(s, axes(k, n), axes(stride, n), axes(padding, n), extra, axes(dil, n)))
            if min(out) < 1 or np.prod(out) > MAX_POSITIONS[n]:
                continue
            mods.append(DECONV[n](c, c_out, k, stride=stride, padding=padding, output_padding=extra,
                                  dilation=dil, groups=g, bias=bias))
        else:
            pool = draw(st.sampled_from([MAXP[n], AVGP[n]] + ([LPP[n]] if not zeros else [])))
            k = per_axis(draw, n, 1, 3)
            stride = per_axis(draw, n, 1, 3) if draw(st.booleans()) else None      # None: the window
            padding = 0 if pool is LPP[n] else tuple(draw(st.integers(0, kk // 2)) for kk in axes(k, n))
            out = tuple((si + 2 * pa - kk) // sd + 1 for si, pa, kk, sd
                        in zip(s, axes(padding, n), axes(k, n), axes(stride if stride is not None else k, n)))
            if min(out) < 1 or (pool is AVGP[3] and any(kk > si for kk, si in zip(axes(k, n), s))):
                continue                          # torch's avg_pool3d (only) wants the window inside the unpadded map
            if pool is LPP[n]:
                mods.append(pool(draw(st.sampled_from([2, 4])), k, stride=stride))
            elif pool is AVGP[n]:
                mods.append(pool(k, stride=stride, padding=padding, count_include_pad=draw(st.booleans())))
            else:
                mods.append(pool(k, stride=stride, padding=padding))
            c_out = c
        if kind != "pool":
            zeros = not bias
            act = draw(st.sampled_from(ACT))
            mods.append(act())
            zeros = act is nn.ReLU or (zeros and act is not nn.Sigmoid)
        c, s = c_out, out
    if draw(st.booleans()):
        mods.append(draw(st.sampled_from(ADA[n]))(1))
        s = (1,) * n
    mods.append(nn.Flatten())
    width = c * int(np.prod(s))
    q = draw(st.integers(1, 4))
    if draw(st.booleans()):
        hidden = draw(st.integers(1, 4))
        mods += [nn.Linear(width, hidden, bias=draw(st.booleans())), draw(st.sampled_from(ACT))()]
        width = hidden
    mods.append(nn.Linear(width, q))
    if q > 1 and draw(st.booleans()):
        mods.append(nn.Softmax(dim=1))
    return nn.Sequential(*mods).double(), shape


def compare(module, shape, seed):
    rng = np.random.default_rng(seed)
    net = pn.from_torch(module, shape)
    x = rng.standard_normal((3,) + shape)
    tx = torch.from_numpy(x)
    ty = module(tx)
    y = net.forward(x)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    again = pn.from_torch(net.to_torch(), shape)                     # and back through the network's own twin
    np.testing.assert_allclose(again.forward(x), y, rtol=1e-12, atol=1e-13)
    gamma = rng.standard_normal(y.shape)
    module.zero_grad()
    ((torch.from_numpy(gamma) - ty) ** 2).sum().backward()
    expected = gradients_from_torch(net, module)
    assert expected
    for engine in ("fast", "kronecker"):
        got = net.gradients(x, gamma, engine=engine)
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-11, err_msg=f"{engine} {key}")
    return net


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(), st.integers(0, 2 ** 16))
def test_random_sequentials_match_torch(model, seed):
    module, shape = model
    torch.manual_seed(seed)
    for p in module.parameters():
        with torch.no_grad():
            p.normal_()
    compare(module, shape, seed)


def round_trip_networks():
    """Networks using every layer kind that has a PyTorch twin, and the kinds that come back."""
    return [
        (pn.Network((7, 6), 2, [L.Correlation(4, kernel=3, padding=((0, 1), (1, 2)), groups=2), L.Activation("tanh"),
                                L.Pool("max", 3, stride=2, padding=1), L.Correlation(2, kernel=2, dilation=2),
                                L.Activation("relu"), L.Flatten(), L.Dense(4), L.Activation("sigmoid"), L.Dense(3),
                                L.Softmax()], rng=0), None),
        (pn.Network((5,), 3, [L.TransposedCorrelation(3, kernel=3, stride=2, padding=1, output_padding=1, groups=3),
                              L.Activation("identity"), L.Pool("mean", 3, stride=2, padding=1, count_include_pad=False),
                              L.Pool("l2", 2, stride=1), L.Correlation(2, kernel=2, padding="same", bias="tied"),
                              L.GlobalPool("max"), L.Flatten(order="C"), L.Dense(2)], rng=1), None),
        (pn.Network((3, 4, 3), 1, [L.TiledCorrelation(2, kernel=2, tiles=1, padding=1), L.Activation("sigmoid"),
                                   L.Pool("lp", 2, stride=1, p=4.0), L.Pool("mean", 2, padding=1),
                                   L.TransposedCorrelation(2, kernel=(1, 2, 1), dilation=2), L.GlobalPool("l2"),
                                   L.Pool("max", 1), L.Flatten()], rng=2),
         # torch has no tiled convolution: one tile is a Conv3d, which comes back as a Correlation
         ["correlation", "activation", "pool", "pool", "transposed_correlation", "global_pool", "pool", "flatten"]),
        (pn.Network((7, 6), 2, [L.Correlation(3, kernel=3, padding=1), L.Activation("tanh"),
                                L.Pool("max", 2, drop_remainder=True),
                                L.Correlation(2, kernel=2, connections=[[0, 2], [1]]),     # a table (47.1213)
                                L.GlobalPool("mean"), L.Flatten()], rng=3), None),
        (pn.Network((5,), 1, [L.Correlation(1, kernel=2, padding="same"), L.Softmax()], rng=4), None),  # one 1-D map
    ]


@pytest.mark.parametrize("case", range(5))
def test_round_trip_through_to_torch(case):
    net, kinds = round_trip_networks()[case]
    module = net.to_torch()
    shape = (net.in_maps,) + net.input_shape
    back = pn.from_torch(module, shape)
    x = np.random.default_rng(1).standard_normal((4,) + shape)
    np.testing.assert_allclose(back.forward(x), net.forward(x), rtol=1e-12, atol=1e-13)
    assert [layer.kind for layer in back.layers] == (kinds or [layer.kind for layer in net.layers])
    compare(module, shape, 3)
    # torch's gradients of the twin, under the original network's names (per-input biases, tables, tiles)
    gamma = np.random.default_rng(2).standard_normal(net.forward(x).shape)
    module.zero_grad()
    ((torch.from_numpy(gamma) - module(torch.from_numpy(x))) ** 2).sum().backward()
    expected = gradients_from_torch(net, module)
    assert list(expected) == list(net.parameter_shapes())
    for engine in ("fast", "kronecker"):
        got = net.gradients(x, gamma, engine=engine)
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-11, err_msg=f"{engine} {key}")


def test_to_torch_of_an_imported_model_round_trips():
    module = nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.AvgPool1d(2), nn.Flatten(), nn.Linear(12, 2)).double()
    net = pn.from_torch(module, (1, 14))
    again = pn.from_torch(net.to_torch(), (1, 14))
    x = np.random.default_rng(0).standard_normal((2, 1, 14))
    np.testing.assert_allclose(again.forward(x), module(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)


def _regrouped(conv, groups):
    """torch refuses such a module at construction; one changed afterwards must still be refused."""
    conv.groups = groups
    return conv


# (module, one sample's shape, what the message must say): one case per message, each naming the argument
BAD_MODULES = {
    "unsupported": (nn.Sequential(nn.Conv2d(1, 2, 3), nn.GELU()), (1, 6, 6),
                    r"module '1' at position 1 \(GELU\).*no partitionnet counterpart"),
    "unsupported nested": (nn.Sequential(nn.Conv1d(1, 2, 1), nn.Sequential(nn.ReLU(), nn.ELU())), (1, 4),
                           r"module '1\.1' at position 1 \(ELU\)"),
    "padding_mode": (nn.Sequential(nn.Conv2d(1, 2, 3, padding_mode="circular", padding=1)), (1, 6, 6),
                     r"position 0 \(Conv2d\): padding_mode='circular'"),
    "groups": (nn.Sequential(_regrouped(nn.Conv1d(2, 4, 1, groups=2), 3)), (2, 5),
               r"groups=3 must divide in_channels=2 and out_channels=4"),
    "in_channels": (nn.Sequential(nn.Conv1d(2, 1, 1)), (1, 5), r"in_channels=2, but the module receives 1 maps"),
    "output_padding vs stride": (nn.Sequential(nn.ConvTranspose1d(1, 1, 3, stride=2, output_padding=2)), (1, 5),
                                 r"\(ConvTranspose1d\).*output_padding must be smaller than the stride or the "
                                 r"dilation.*output_padding 2 with stride 2 and dilation 1"),
    "output_padding vs dilation": (nn.Sequential(nn.ConvTranspose2d(1, 1, 3, stride=(2, 1), dilation=(1, 3),
                                                                    output_padding=(1, 3))), (1, 4, 4),
                                   r"output_padding 3 with stride 1 and dilation 3 on axis 1"),
    "deconv padding": (nn.Sequential(nn.ConvTranspose1d(1, 1, 3, padding=4)), (1, 2),
                       r"padding 4 on both ends of axis 0 removes the whole output"),
    "conv kernel": (nn.Sequential(nn.Conv2d(1, 1, (2, 5), padding=1)), (1, 5, 2),
                    r"\(Conv2d\).*kernel \(2, 5\).*larger than the padded input"),
    "pool kernel_size": (nn.Sequential(nn.MaxPool1d(4, padding=1, stride=1)), (1, 1),
                         r"\(MaxPool1d\): kernel_size=4 is larger than the padded input on axis 0 \(1 \+ 2\*1"),
    "pool padding": (nn.Sequential(nn.AvgPool1d(3, stride=1, padding=2)), (1, 4),
                     r"\(AvgPool1d\).*padding must lie in \[0, window // 2\]"),
    "ceil_mode": (nn.Sequential(nn.MaxPool1d(2, ceil_mode=True)), (1, 3), r"ceil_mode=True is not supported"),
    "pool dilation": (nn.Sequential(nn.MaxPool1d(2, dilation=2)), (1, 5), r"dilation=2 is not supported"),
    "divisor_override": (nn.Sequential(nn.AvgPool2d(2, divisor_override=3)), (1, 4, 4),
                         r"divisor_override is not supported"),
    "lp norm_type": (nn.Sequential(nn.LPPool2d(3, 2)), (1, 6, 6), r"norm_type=3.*even"),
    "adaptive output_size": (nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(2)), (1, 6, 6),
                             r"output size 1 only, got output_size=2"),
    "pad value": (nn.Sequential(nn.ConstantPad1d(1, 2.0), nn.Conv1d(1, 1, 2)), (1, 3),
                  r"\(ConstantPad1d\): only a zero pad.*value=2\.0"),
    "pad alone": (nn.Sequential(nn.ZeroPad1d(1), nn.ReLU()), (1, 3),
                  r"\(ZeroPad1d\) is followed by module '1' at position 1 \(ReLU\), not by a convolution"),
    "conv after flatten": (nn.Sequential(nn.Flatten(), nn.Conv1d(1, 1, 2)), (1, 3),
                           r"\(Conv1d\): a 1-D Conv \(kernel_size=\(2,\)\) receives a vector"),
    "conv dimension": (nn.Sequential(nn.Conv2d(1, 1, 2)), (1, 3), r"a 2-D Conv .* receives maps of shape \(3,\)"),
    "flatten dims": (nn.Sequential(nn.Flatten(0)), (1, 3), r"Flatten\(start_dim=1, end_dim=-1\)"),
    "linear before flatten": (nn.Sequential(nn.Linear(36, 2)), (1, 6, 6), r"Linear receives 1 maps.*Flatten"),
    "in_features": (nn.Sequential(nn.Flatten(), nn.Linear(7, 2)), (2, 4), r"in_features=7, but the vector.*8"),
    "softmax dim": (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Softmax(dim=1)), (1, 6, 6),
                    r"Softmax is supported over the features of a vector"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODULES))
def test_bad_modules_get_a_clear_error(case):
    module, shape, match = BAD_MODULES[case]
    with pytest.raises(ValueError, match=match):
        pn.from_torch(module.double(), shape)


@pytest.mark.parametrize("make, match", [
    (lambda: L.Correlation(4, kernel=2, groups=3), r"groups=3 must divide the number of output maps \(maps=4\)"),
    (lambda: pn.Network((5,), 3, [L.Correlation(4, kernel=2, groups=2)]),
     r"conv1: groups=2 must divide both the number of input maps \(3\)"),
    (lambda: L.TransposedCorrelation(4, kernel=2, groups=3), r"groups=3 must divide the number of output maps"),
    (lambda: pn.Network((5,), 3, [L.TransposedCorrelation(4, kernel=2, groups=2)]),
     r"deconv1: groups=2 must divide both the number of input maps \(3\)"),
])
def test_groups_must_divide_the_map_counts(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_pooling_ties_follow_torch(n):
    """On ties torch keeps the first maximiser in row-major order of the window; so do we."""
    module = nn.Sequential(MAXP[n](3, stride=2, padding=1), nn.Flatten()).double()
    shape = (2,) + (5,) * n
    x = np.random.default_rng(n).integers(0, 2, (2,) + shape).astype(float)       # many ties
    net = pn.from_torch(module, shape)
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = module(tx)
    gamma = np.random.default_rng(7).standard_normal(ty.shape)
    ((torch.from_numpy(gamma) - ty) ** 2).sum().backward()
    np.testing.assert_allclose(net.input_gradient(x, gamma), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_bad_arguments():
    with pytest.raises(TypeError, match="torch.nn.Sequential"):
        pn.from_torch(nn.Linear(2, 2), (2,))
    with pytest.raises(ValueError, match=r"\(C, \*spatial\)"):
        pn.from_torch(nn.Sequential(nn.Flatten()), 6)


def test_a_users_own_sequential_is_refused_by_parameters_from_torch():
    """Today's silent 0.59 error: a user's Sequential with torch's flatten order, read as the book's."""
    net = pn.ConvNet((6, 6), 1, [pn.ConvLayer(2, kernel=3, padding="same", window=2)], [3], rng=0)
    own = nn.Sequential()
    own.add_module("conv1", nn.Conv2d(1, 2, 3, padding=1))
    own.add_module("conv1_act", nn.Tanh())
    own.add_module("conv1_pool", nn.MaxPool2d(2))
    own.add_module("flatten", nn.Flatten())
    own.add_module("dense1", nn.Linear(18, 3))
    with pytest.raises(ValueError, match="not the twin made by to_torch.*from_torch"):
        parameters_from_torch(net, own.double())
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6))
    imported = pn.from_torch(own.double(), (1, 6, 6))
    np.testing.assert_allclose(imported.forward(x), own.double()(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)
