"""partitionnet.check (issue 12): gradcheck on every layer kind, a deliberately wrong gradient caught and named,
dottest, and Network.input_gradient against torch autograd through to_torch."""
import numpy as np
import pytest
import scipy.sparse as sp

import partitionnet
from partitionnet import Network, Partition, Pooling, layers as L
from partitionnet.check import CheckError, DottestError, GradcheckError, dottest, gradcheck

CASES = [(kind, i) for kind, cls in sorted(L.REGISTRY.items()) for i in range(len(cls.examples()))]
IDS = [f"{k}{i}" for k, i in CASES]


def example_network(kind, i):
    """A network of the kind's i-th example, a batch of 2 away from kinks and ties, and random targets."""
    layer, in_maps, in_shape = L.REGISTRY[kind].examples()[i]
    net = Network(in_shape, in_maps, [layer], rng=i)
    rng = np.random.default_rng(i)
    shape = (2, in_maps) + tuple(in_shape)
    n = int(np.prod(shape))
    x = (rng.permutation(np.linspace(0.2, 1.6, n)) * rng.choice([-1.0, 1.0], n)).reshape(shape)
    gamma = rng.standard_normal(net.forward(x).shape)
    return net, x, gamma


@pytest.mark.parametrize("engine", ["fast", "kronecker"])
@pytest.mark.parametrize("kind, i", CASES, ids=IDS)
def test_gradcheck_passes_on_every_layer_kind(kind, i, engine):
    net, x, gamma = example_network(kind, i)
    before = {k: v.copy() for k, v in net.parameters().items()}
    assert gradcheck(net, x, gamma, engine=engine) is True
    for k, v in net.parameters().items():                 # the parameters are restored exactly
        np.testing.assert_array_equal(v, before[k])


def test_gradcheck_passes_on_a_deep_network():
    net = Network((6, 5), 2, [L.Correlation(3, kernel=3, padding="same"), L.Activation("tanh"),
                              L.Pool("max", 2, drop_remainder=True), L.Flatten(), L.Dense(3), L.Softmax()],
                  loss="cross_entropy", rng=3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 6, 5))
    assert gradcheck(net, x, np.eye(3)[[0, 2]])
    assert partitionnet.check.gradcheck is gradcheck


def _break(monkeypatch, cls, *, parameter=None, entry=None, scale=1.0 + 1e-3):
    """Make ``cls.vjp`` wrong in one entry of one parameter gradient, or in one entry of dx."""
    original = cls.vjp

    def wrong(self, p, res, dy, *, need_input=True):
        dx, grads = original(self, p, res, dy, need_input=need_input)
        grads = dict(grads)
        if parameter is not None:
            g = np.array(grads[parameter], copy=True)
            g[entry] = g[entry] * scale + 1e-3
            grads[parameter] = g
        elif dx is not None:
            dx = np.array(dx, copy=True)
            dx[entry] = dx[entry] * scale + 1e-3
        return dx, grads

    monkeypatch.setattr(cls, "vjp", wrong)


def _small_net():
    net = Network((5, 5), 1, [L.Correlation(2, kernel=3), L.Activation("tanh"), L.Flatten(), L.Dense(2)], rng=0)
    x = np.random.default_rng(1).standard_normal((2, 1, 5, 5))
    return net, x, np.zeros((2, 2))


def test_gradcheck_names_the_wrong_parameter_entry(monkeypatch):
    net, x, gamma = _small_net()
    _break(monkeypatch, L.Correlation, parameter="W", entry=(4, 1))
    with pytest.raises(GradcheckError, match=r"conv1\.W at index \(4, 1\).*1 of 18 entries disagree") as info:
        gradcheck(net, x, gamma)
    assert isinstance(info.value, AssertionError) and isinstance(info.value, CheckError)
    assert info.value.key == "conv1.W" and info.value.index == (4, 1)
    assert abs(info.value.analytic - info.value.numeric) > 5e-4


def test_gradcheck_names_a_wrong_bias_of_a_later_layer(monkeypatch):
    net, x, gamma = _small_net()
    key = [k for k in net.parameters() if k.startswith("dense1.")][-1]      # the dense layer's bias
    local = key.split(".")[1]
    entry = (1,) + (0,) * (net.parameters()[key].ndim - 1)
    _break(monkeypatch, L.Dense, parameter=local, entry=entry)
    with pytest.raises(GradcheckError, match=rf"{key} at index {entry}".replace("(", r"\(").replace(")", r"\)")):
        gradcheck(net, x, gamma)


def test_gradcheck_names_a_wrong_input_gradient(monkeypatch):
    net, x, gamma = _small_net()
    # dx is a stack (P, N, D): entry 3 of sample 1 is x[1, 0, 3, 0] (column-stacked positions)
    _break(monkeypatch, L.Correlation, entry=(3, 1, 0))
    with pytest.raises(GradcheckError, match=r"on input at index \(1, 0, 3, 0\)") as info:
        gradcheck(net, x, gamma)
    assert info.value.key == "input"
    gradcheck(net, x, gamma, check_input=False)               # the parameters alone are still right


def test_gradcheck_bad_arguments():
    net, x, gamma = _small_net()
    with pytest.raises(TypeError, match="net must be a partitionnet Network"):
        gradcheck("net", x, gamma)
    with pytest.raises(ValueError, match="eps"):
        gradcheck(net, x, gamma, eps=0.0)
    with pytest.raises(ValueError, match="atol"):
        gradcheck(net, x, gamma, atol=-1.0)
    with pytest.raises(ValueError, match="engine"):
        gradcheck(net, x, gamma, engine="slow")
    with pytest.raises(ValueError, match="gamma must have shape"):
        gradcheck(net, x, np.zeros((2, 3)))


# ---------------------------------------------------------------------- dottest
def test_dottest_passes_on_operators_and_matrices():
    rng = np.random.default_rng(0)
    assert dottest(Partition.sliding_window((5, 4), 3, padding=1, stride=2))
    assert dottest(Pooling.windows((4, 6), 2, kind="mean"))
    assert dottest(sp.random_array((7, 5), density=0.4, rng=rng))
    assert dottest(rng.standard_normal((3, 8)))


def test_dottest_catches_a_wrong_transpose():
    from scipy.sparse.linalg import LinearOperator

    A = np.random.default_rng(1).standard_normal((6, 4))
    wrong = LinearOperator(A.shape, matvec=lambda u: A @ u, rmatvec=lambda v: 1.001 * (A.T @ v), dtype=float)
    with pytest.raises(DottestError, match=r"dot test failed .*relative difference") as info:
        dottest(wrong)
    assert isinstance(info.value, AssertionError)
    swapped = LinearOperator((4, 4), matvec=lambda u: A[:4] @ u, rmatvec=lambda v: A[:4] @ v, dtype=float)
    with pytest.raises(DottestError):
        dottest(swapped)                                       # A, not A^T: fails unless A is symmetric


def test_dottest_bad_arguments():
    with pytest.raises(TypeError, match="op must be a matrix or a linear operator"):
        dottest("A")
    with pytest.raises(ValueError, match="trials"):
        dottest(np.eye(3), trials=0)


# ---------------------------------------------------------------------- input gradient against torch
@pytest.mark.parametrize("kind, i", CASES, ids=IDS)
def test_input_gradient_equals_torch_autograd(kind, i):
    torch = pytest.importorskip("torch")
    net, x, gamma = example_network(kind, i)
    try:
        module = net.to_torch().double()
    except NotImplementedError as err:
        pytest.skip(f"no PyTorch twin: {err}")
    tx = torch.tensor(x, requires_grad=True)
    ty = module(tx).reshape(gamma.shape)
    ((torch.from_numpy(gamma) - ty) ** 2).sum().backward()        # the squared loss of Network
    ours = net.input_gradient(x, gamma)
    assert ours.shape == x.shape
    np.testing.assert_allclose(ours, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    # one unbatched sample: the loss is a sum over samples, so its gradient is that sample's slice
    np.testing.assert_allclose(net.input_gradient(x[0], gamma[0]), tx.grad.numpy()[0], rtol=1e-12, atol=1e-12)
