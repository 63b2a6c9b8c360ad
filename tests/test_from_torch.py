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
MAXP = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVGP = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
LPP = {1: nn.LPPool1d, 2: nn.LPPool2d, 3: nn.LPPool3d}
ADA = {1: (nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d), 2: (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d),
       3: (nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool3d)}
ACT = [nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity]


@st.composite
def models(draw):
    n = draw(st.integers(1, 3))
    size = draw(st.integers(5, 9 if n < 3 else 6))
    shape = (draw(st.integers(1, 3)),) + (size,) * n
    mods, c, s = [], shape[0], size
    for _ in range(draw(st.integers(1, 2))):
        k = draw(st.integers(1, 3))
        dil = draw(st.integers(1, 2))
        pad = draw(st.integers(0, 1))
        stride = draw(st.integers(1, 2))
        out = (s + 2 * pad - dil * (k - 1) - 1) // stride + 1
        if out < 1:
            break
        c_out = draw(st.integers(1, 3))
        mods.append(CONV[n](c, c_out, k, stride=stride, padding=pad, dilation=dil, bias=draw(st.booleans())))
        mods.append(draw(st.sampled_from(ACT))())
        c, s = c_out, out
        if s >= 2 and draw(st.booleans()):
            pool = draw(st.sampled_from([MAXP[n], AVGP[n], LPP[n]]))
            mods.append(pool(2, 2) if pool is LPP[n] else pool(2))
            s //= 2
        elif s >= 3 and draw(st.booleans()):                       # overlapping, padded windows
            pool = draw(st.sampled_from([MAXP[n], AVGP[n]]))
            extra = {"count_include_pad": draw(st.booleans())} if pool is AVGP[n] else {}
            mods.append(pool(3, stride=2, padding=1, **extra))
            s = (s + 2 - 3) // 2 + 1
    if draw(st.booleans()):
        mods.append(draw(st.sampled_from(ADA[n]))(1))
        s = 1
    mods.append(nn.Flatten())
    width = c * s ** n
    q = draw(st.integers(1, 4))
    if draw(st.booleans()):
        hidden = draw(st.integers(1, 4))
        mods += [nn.Linear(width, hidden), draw(st.sampled_from(ACT))()]
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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(), st.integers(0, 2 ** 16))
def test_random_sequentials_match_torch(model, seed):
    module, shape = model
    torch.manual_seed(seed)
    for p in module.parameters():
        with torch.no_grad():
            p.normal_()
    compare(module, shape, seed)


def test_round_trip_through_to_torch():
    net = pn.Network((7, 6), 2, [L.Correlation(3, kernel=3, padding=1), L.Activation("tanh"),
                                 L.Pool("max", 2, drop_remainder=True),
                                 L.Correlation(2, kernel=2, bias="tied"), L.Activation("relu"), L.Flatten(),
                                 L.Dense(4), L.Activation("sigmoid"), L.Dense(3), L.Softmax()], rng=0)
    module = net.to_torch()
    back = pn.from_torch(module, (2, 7, 6))
    x = np.random.default_rng(1).standard_normal((4, 2, 7, 6))
    np.testing.assert_allclose(back.forward(x), net.forward(x), rtol=1e-12, atol=1e-13)
    assert [l.kind for l in back.layers] == [l.kind for l in net.layers]
    compare(module, (2, 7, 6), 3)


def test_to_torch_of_an_imported_model_round_trips():
    module = nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.AvgPool1d(2), nn.Flatten(), nn.Linear(12, 2)).double()
    net = pn.from_torch(module, (1, 14))
    again = pn.from_torch(net.to_torch(), (1, 14))
    x = np.random.default_rng(0).standard_normal((2, 1, 14))
    np.testing.assert_allclose(again.forward(x), module(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("module, match", [
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.GELU()), r"module '1' at position 1 \(GELU\).*no partitionnet counterpart"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, padding_mode="circular", padding=1)), r"padding_mode='circular'"),
    (nn.Sequential(nn.Linear(36, 2)), r"Linear receives 1 maps.*Flatten"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(2)), r"output size 1 only"),
    (nn.Sequential(nn.LPPool2d(3, 2)), r"norm_type=3.*even"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Softmax(dim=1)), r"Softmax is supported over the features of a vector"),
])
def test_unsupported_modules_are_named(module, match):
    with pytest.raises(ValueError, match=match):
        pn.from_torch(module.double(), (1, 6, 6))


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
