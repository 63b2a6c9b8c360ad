"""float32 networks: the same algebra in single precision, float32 from input to gradients."""
import numpy as np
import pytest

import partitionnet as pn
from partitionnet import layers as L


def lenet(dtype):
    return pn.ConvNet((12, 12), 2, [pn.ConvLayer(4, kernel=3, padding="same", window=2),
                                    pn.ConvLayer(3, kernel=3, pooling="l2", window=2)],
                      [5, 3], output="softmax", loss="cross_entropy", rng=0, dtype=dtype)


@pytest.mark.parametrize("engine", ["fast", "kronecker"])
def test_float32_keeps_float32_and_agrees_with_float64(engine):
    net32, net64 = lenet(np.float32), lenet(np.float64)
    net64.set_parameters({k: v.astype(np.float64) for k, v in net32.parameters().items()})
    x = np.random.default_rng(0).standard_normal((4, 2, 12, 12))
    labels = np.array([0, 1, 2, 1])
    loss32, y32, g32 = net32.value_and_grad(x, labels, engine=engine)
    loss64, y64, g64 = net64.value_and_grad(x, labels, engine=engine)
    assert y32.dtype == np.float32 and all(v.dtype == np.float32 for v in g32.values())
    assert all(v.dtype == np.float32 for v in net32.parameters().values())
    assert abs(loss32 - loss64) <= 1e-5 * abs(loss64)
    for k in g64:
        np.testing.assert_allclose(g32[k], g64[k], rtol=2e-4, atol=2e-5 * np.abs(g64[k]).max(), err_msg=k)


def test_float32_network_of_layers():
    net = pn.Network((9,), 1, [L.Correlation(2, kernel=3), L.Activation("relu"), L.Pool("max", 3, stride=2),
                               L.Flatten(), L.Dense(2)], rng=1, dtype="float32")
    x = np.random.default_rng(2).standard_normal((3, 1, 9)).astype(np.float32)
    assert net.forward(x).dtype == np.float32
    assert net.input_gradient(x, np.zeros((3, 2))).dtype == np.float32
    assert net.config()["dtype"] == "float32"
    assert pn.Network.from_config(net.config()).dtype is np.float32


@pytest.mark.parametrize("dtype, exc, match", [("float16", ValueError, "float64 or float32"),
                                              (np.int64, ValueError, "float64 or float32"),
                                              ("nonsense", TypeError, "numpy float dtype")])
def test_bad_dtype(dtype, exc, match):
    with pytest.raises(exc, match=match):
        pn.Network((4,), 1, [L.Flatten()], dtype=dtype)


def test_the_torch_twins_cross_entropy_stays_finite_in_float32():
    """A softmax output that underflows to 0 in float32 with a zero target: 0 * log(clip) must be 0, not NaN."""
    torch = pytest.importorskip("torch")
    from partitionnet import Network, layers as L
    from partitionnet.torch_bridge import torch_loss

    net = Network((4,), 1, [L.Flatten(), L.Dense(3), L.Softmax()], loss="cross_entropy", rng=0, dtype=np.float32)
    output = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float32)
    loss = torch_loss(net, output, torch.tensor([0]))
    assert torch.isfinite(loss) and float(loss) == 0.0
    expected = net.loss(np.zeros((1, 1, 4), dtype=np.float32), np.array([0]))
    assert np.isfinite(expected)
