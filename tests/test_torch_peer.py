"""PyTorch as a peer (DESIGN.md section 5, layer 4): the exported module computes the same
outputs, loss and autograd gradients as the network and both its engines, to 1e-10."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from partitionnet import ConvLayer, ConvNet, Partition, Pooling  # noqa: E402
from partitionnet import torch_bridge as tb  # noqa: E402

from _helpers import assert_rel, randomise


def targets(net, n, rng):
    Q = net.dense_sizes[-1]
    if net.loss_name == "cross_entropy" or rng.random() < 0.3:
        return rng.integers(0, Q, size=n)
    return rng.standard_normal((n, Q))


def torch_run(net, x, gamma):
    module = tb.to_torch(net)
    xt = torch.from_numpy(x)
    y = module(xt)
    loss = tb.torch_loss(net, y, torch.from_numpy(np.asarray(gamma)))
    loss.backward()
    return module, y.detach().numpy(), loss.item()


# ------------------------------------------------------------------ the table of architectures
SQ5 = np.array([[0.5, -1.0], [2.0, 0.25]])


def case(ident, input_shape, in_maps, layers, dense, **kw):
    return pytest.param(input_shape, in_maps, layers, dense, kw, id=ident)


CASES = [
    # 2-D: padding modes, stride, dilation, every pooling kind.
    case("2d-same-max", (8, 8), 1, [ConvLayer(3, kernel=3, padding="same", window=2)], [4, 3]),
    case("2d-valid-mean-relu", (9, 7), 3, [ConvLayer(4, kernel=(2, 3), window=(2, 1), pooling="mean")], [5, 2],
         activation="relu"),
    case("2d-full-l2", (5, 6), 2, [ConvLayer(2, kernel=2, padding="full", pooling="l2", window=(3, 7))], [3]),
    case("2d-stride-pad-lp3", (9, 10), 2,
         [ConvLayer(3, kernel=3, stride=2, padding=1, pooling="lp", window=(5, 5), pool_options={"p": 3})], [4, 2]),
    case("2d-dilation-lp1.5", (10, 9), 1,
         [ConvLayer(2, kernel=(3, 2), dilation=(2, 3), pooling="lp", window=2, pool_options={"p": 1.5})], [3],
         output="sigmoid"),
    case("2d-correlation-window-mask", (8, 6), 2,
         [ConvLayer(3, kernel=3, padding="same", pooling="correlation", window=2, pool_options={"mask": SQ5})],
         [4, 2], output="tanh"),
    case("2d-correlation-full-mask", (6, 6), 1,
         [ConvLayer(2, kernel=3, pooling="correlation", window=2,
                    pool_options={"mask": np.random.default_rng(7).standard_normal(16)})], [3]),
    case("2d-subsample-random", (8, 8), 2,
         [ConvLayer(3, kernel=3, padding="same", pooling="subsample", window=(2, 4),
                    pool_options={"retain": "random", "rng": 3})], [3], activation="sigmoid"),
    case("2d-max-drop-remainder", (9, 8), 1,
         [ConvLayer(2, kernel=2, window=3, pool_options={"drop_remainder": True})], [2]),
    case("2d-no-pooling-identity-act", (5, 5), 2, [ConvLayer(2, kernel=3, pooling=None)], [3],
         activation="identity"),
    # Bias modes, connection table, softmax, cross-entropy, C in {2, 3}.
    case("2d-tied-C2-softmax-ce", (12, 12), 1,
         [ConvLayer(4, kernel=3, padding="same", window=2), ConvLayer(6, kernel=3, padding="same", window=2)],
         [5, 4], bias="tied", output="softmax", loss="cross_entropy"),
    case("2d-connections-C2", (10, 10), 3,
         [ConvLayer(4, kernel=3, window=2, connections=[[0], [1, 2], [0, 2], [0, 1, 2]]),
          ConvLayer(3, kernel=3, padding="same", pooling="mean", window=2, connections=[[0, 1], [2, 3], [1]])],
         [3]),
    case("2d-softmax-squared-C3", (16, 16), 2,
         [ConvLayer(3, kernel=3, padding="same", window=2),
          ConvLayer(4, kernel=3, stride=1, padding=1, pooling="l2", window=2, activation="sigmoid"),
          ConvLayer(2, kernel=2, pooling="mean", window=(1, 3), pool_options={"drop_remainder": True})],
         [4, 3], output="softmax"),
    case("2d-LeNet-like-relu", (28, 28), 1,
         [ConvLayer(8, kernel=3, padding="same", window=2), ConvLayer(16, kernel=3, padding="same", window=2)],
         [10], activation="relu", output="softmax", loss="cross_entropy"),
    # 1-D and 3-D.
    case("1d-C2", (20,), 2,
         [ConvLayer(3, kernel=3, padding="same", window=2),
          ConvLayer(2, kernel=3, stride=2, dilation=2, padding=3, pooling="lp", window=2, pool_options={"p": 2.5})],
         [3], bias="tied"),
    case("1d-subsample-connections", (17,), 3,
         [ConvLayer(2, kernel=4, padding=1, pooling="subsample", window=3,
                    pool_options={"retain": 2, "drop_remainder": True}, connections=[[0, 2], [1]])], [2]),
    case("3d-max", (6, 5, 4), 2, [ConvLayer(3, kernel=(3, 2, 2), padding=(1, 0, 1), window=(2, 2, 1))], [4, 2]),
    case("3d-C2-correlation", (7, 6, 6), 1,
         [ConvLayer(2, kernel=2, stride=(1, 2, 1), dilation=(1, 1, 2), pooling="mean", window=(2, 1, 1)),
          ConvLayer(3, kernel=2, pooling="correlation", window=(1, 2, 3),
                    pool_options={"mask": np.arange(1.0, 7.0).reshape(1, 2, 3) / 6})], [2], output="sigmoid"),
    # Explicit objects whose shapes differ from the map flowing in: reshaped in column-stacking order.
    case("2d-input-1d-partition", (4, 6), 1,
         [ConvLayer(2, partition=Partition.sliding_window((24,), 3, stride=3), pooling=None)], [3]),
    case("2d-map-1d-pooling", (6, 6), 1,
         [ConvLayer(2, kernel=3, padding="same", pooling=Pooling.windows((36,), 4, kind="max"))], [3]),
    case("2d-blocks-partition", (6, 6), 2, [ConvLayer(3, partition=Partition.blocks((6, 6), (2, 3)))], [2]),
]


@pytest.mark.parametrize("input_shape, in_maps, layers, dense, kw", CASES)
def test_outputs_and_gradients_match_torch(input_shape, in_maps, layers, dense, kw):
    rng = np.random.default_rng(1000 * len(layers) + 10 * in_maps + sum(input_shape))
    net = ConvNet(input_shape, in_maps, layers, dense, rng=rng, **kw)
    randomise(net, rng)
    N = 4
    x = rng.standard_normal((N, in_maps) + tuple(input_shape))
    gamma = targets(net, N, rng)
    module, y_torch, loss_torch = torch_run(net, x, gamma)

    assert_rel(y_torch, net.forward(x), "outputs")
    assert_rel(loss_torch, net.loss(x, gamma), "loss")
    g_torch = tb.gradients_from_torch(net, module)
    for engine in ("fast", "kronecker"):
        g_net = net.gradients(x, gamma, engine=engine)
        assert list(g_torch) == list(g_net)
        for key in g_net:
            assert_rel(g_torch[key], g_net[key], f"{engine} {key}")


def test_single_sample_and_module_layout():
    net = ConvNet((6, 6), 1, [ConvLayer(2, kernel=3, padding="same", window=2)], [3], rng=0)
    module = tb.to_torch(net)
    names = [n for n, _ in module.named_children()]
    assert names == ["conv1", "conv1_act", "conv1_pool", "flatten", "dense1", "dense1_act"]
    assert isinstance(module.conv1, torch.nn.Conv2d)
    assert all(p.dtype == torch.float64 for p in module.parameters())
    # weight[d, j] is the kernel window w_j^(d) as a map (net.kernel, 1-based).
    np.testing.assert_array_equal(module.conv1.weight.detach().numpy()[1, 0], net.kernel(1, 2, 1))
    x = np.random.default_rng(0).standard_normal((1, 6, 6))
    assert_rel(module(torch.from_numpy(x[None]))[0].detach().numpy(), net.forward(x), "one sample")


@pytest.mark.parametrize("bias", ["per_input", "tied"])
def test_parameters_round_trip_after_torch_training(bias):
    rng = np.random.default_rng(5)
    net = ConvNet((8, 8), 2, [ConvLayer(3, kernel=3, window=2, connections=[[0], [1], [0, 1]]),
                              ConvLayer(2, kernel=2, pooling="mean", window=(2, 2))], [4, 2], bias=bias, rng=1)
    randomise(net, rng)
    x = rng.standard_normal((6, 2, 8, 8))
    gamma = rng.standard_normal((6, 2))
    module = tb.to_torch(net)
    # Untouched: parameters come back exactly.
    back = tb.parameters_from_torch(net, module)
    for k, v in net.parameters().items():
        np.testing.assert_array_equal(back[k], v)
    # A few SGD steps in PyTorch; then the network with the mapped-back
    # parameters computes what the module computes.
    opt = torch.optim.SGD(module.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        tb.torch_loss(net, module(torch.from_numpy(x)), torch.from_numpy(gamma)).backward()
        opt.step()
    # Unconnected weights receive zero gradient (the module masks them).
    w = module.conv1.weight.grad.numpy()
    assert np.all(w[0, 1] == 0) and np.all(w[1, 0] == 0)
    net.set_parameters(tb.parameters_from_torch(net, module))
    assert_rel(net.forward(x), module(torch.from_numpy(x)).detach().numpy(), "after torch training")


def test_sgd_step_in_torch_equals_step_in_partitionnet():
    # One plain-SGD step on the tied-bias network is the same in both (the bias map is one-to-one there).
    rng = np.random.default_rng(2)
    net = ConvNet((7, 7), 1, [ConvLayer(2, kernel=2, window=2, pool_options={"drop_remainder": True})], [3],
                  bias="tied", output="softmax", loss="cross_entropy", rng=2)
    randomise(net, rng)
    x, labels = rng.standard_normal((5, 1, 7, 7)), rng.integers(0, 3, 5)
    module = tb.to_torch(net)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    tb.torch_loss(net, module(torch.from_numpy(x)), torch.from_numpy(labels)).backward()
    opt.step()
    g = net.gradients(x, labels)
    expected = {k: v - 0.1 * g[k] for k, v in net.parameters().items()}
    got = tb.parameters_from_torch(net, module)
    for k in expected:
        assert_rel(got[k], expected[k], k)


# ------------------------------------------------------------------ what cannot be exported
def test_unstructured_partition_has_no_torch_equivalent():
    part = Partition.from_indices([[1, 4, 6], [2, 5, 4], [3, 6, 1], [2, 4, 1]], 6, one_based=True)
    net = ConvNet(6, 1, [ConvLayer(2, partition=part, pooling=None)], [2], rng=0)
    with pytest.raises(ValueError, match=r"layer 1 \(conv1\) uses an unstructured partition.*no PyTorch"):
        tb.to_torch(net)
    with pytest.raises(ValueError, match="unstructured partition"):
        tb.parameters_from_torch(net, torch.nn.Sequential())


def test_region_pooling_has_no_torch_equivalent():
    pool = Pooling.from_regions([[0, 1, 5], [2, 3, 4, 6], [7, 8]], 9, kind="max")
    net = ConvNet((5, 5), 1, [ConvLayer(2, kernel=3, pooling=pool)], [2], rng=0)
    with pytest.raises(ValueError, match=r"conv1\) pools over explicit regions.*no equivalent"):
        tb.to_torch(net)


def test_bad_arguments():
    net = ConvNet((6, 6), 1, [ConvLayer(2, kernel=3, window=2)], [3], rng=0)
    with pytest.raises(TypeError, match="net must be a partitionnet.ConvNet"):
        tb.to_torch("net")
    other = tb.to_torch(ConvNet((6, 6), 1, [ConvLayer(4, kernel=3, window=2)], [3], rng=0))
    with pytest.raises(ValueError, match=r"conv1.weight has shape .* expects"):
        tb.parameters_from_torch(net, other)
    with pytest.raises(ValueError, match="run loss.backward"):
        tb.gradients_from_torch(net, tb.to_torch(net))
    with pytest.raises(ValueError, match="no child 'conv1'"):
        tb.parameters_from_torch(net, torch.nn.Sequential())
    y = tb.to_torch(net)(torch.zeros(2, 1, 6, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"gamma must have shape \(2, 3\)"):
        tb.torch_loss(net, y, torch.zeros(2, 2, dtype=torch.float64))


def test_library_imports_without_torch():
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None          # make `import torch` fail
        import partitionnet
        from partitionnet import torch_bridge
        net = partitionnet.ConvNet((4, 4), 1, [partitionnet.ConvLayer(1, kernel=2)], [2], rng=0)
        try:
            torch_bridge.to_torch(net)
        except ImportError as exc:
            assert "pip install" in str(exc), exc
        else:
            raise SystemExit("to_torch did not raise ImportError")
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
