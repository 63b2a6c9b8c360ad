"""The fast paths: fused pooling (ties, dtypes, dropped remainders) against PyTorch and the literal T form,
and every correlation path (one sample, shifted slices, strided im2col) against the gathered patches."""
import numpy as np
import pytest

from partitionnet import Network, layers as L
from partitionnet.layers import pool as pool_module
from partitionnet.layout import from_stack, to_stack

torch = pytest.importorskip("torch")


@pytest.fixture(params=["argmax", "running"])
def max_pool_path(request, monkeypatch):
    """Both fused max-pool paths: argmax over copied windows (small outputs) and the running maximum."""
    monkeypatch.setattr(pool_module, "SMALL_POOL", 10 ** 9 if request.param == "argmax" else 0)
    return request.param


def tied_input(shape, rng, dtype):
    """Values from {0, 1, 2} (after a ReLU most windows hold ties), with whole windows of zeros."""
    x = rng.integers(0, 3, shape).astype(dtype)
    x[..., :2, :2] = 0
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, window", [((6, 8), 2), ((5, 7), (2, 3)), ((4, 4, 6), 2), ((9,), 3)])
def test_max_pool_ties_pick_torchs_maximiser(dtype, shape, window, rng, max_pool_path):
    """Forward and gradient equal torch's max_pool on inputs full of ties (first maximiser, row-major)."""
    net = Network(shape, 3, [L.Pool("max", window, drop_remainder=True)], dtype=dtype)   # torch floors too
    layer = net.layers[0]
    assert layer.fused
    x = tied_input((4, 3) + shape, rng, dtype)
    u = rng.standard_normal((4,) + net.output_shape).astype(dtype)
    xt = torch.from_numpy(x).requires_grad_(True)
    pool = getattr(torch.nn.functional, f"max_pool{len(shape)}d")
    yt = pool(xt, window)
    (yt * torch.from_numpy(u)).sum().backward()
    y = net.forward(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, yt.detach().numpy())
    _, res = layer.forward({}, to_stack(x))
    dx, _ = layer.vjp({}, res, to_stack(u))             # the fast vjp, sensitivity u
    assert dx.dtype == dtype
    np.testing.assert_array_equal(from_stack(dx, shape), xt.grad.numpy())


@pytest.mark.parametrize("kind", ["max", "mean"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_pooling_equals_the_literal_form_with_a_dropped_remainder(kind, dtype, rng, max_pool_path):
    net = Network((7, 5), 2, [L.Pool(kind, (2, 2), drop_remainder=True)], dtype=dtype)
    layer = net.layers[0]
    assert layer.fused
    x = to_stack(tied_input((3, 2, 7, 5), rng, dtype))
    t, res = layer.forward({}, x)
    dt = rng.standard_normal(t.shape).astype(dtype)
    dx, _ = layer.vjp({}, res, dt)
    dx_l, _ = layer.vjp_literal({}, res, dt)
    assert dx.dtype == dtype and t.dtype == dtype
    np.testing.assert_allclose(dx, dx_l, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=0)
    # the rows and columns that no window covers get no gradient
    maps = dx.reshape(5, 7, 3, 2)                       # column-stacked (7, 5): last axis slowest
    assert not maps[4].any() and not maps[:, 6].any()


def test_max_pool_with_many_window_offsets(max_pool_path):
    """More than 127 offsets in a window: the maximiser index does not wrap around."""
    net = Network((12, 12), 1, [L.Pool("max", 12)])
    x = np.zeros((2, 1, 12, 12))
    x[0, 0, 11, 10] = 5.0                              # offset 11*12 + 10 = 142 in row-major order
    x[1, 0, 11, 11] = -1.0
    x[1] -= 2.0
    x[1, 0, 11, 11] = -1.0                             # the last offset, 143
    g = net.input_gradient(x, net.forward(x) - 0.5)
    assert g[0, 0, 11, 10] == 1.0 and np.count_nonzero(g[0]) == 1
    assert g[1, 0, 11, 11] == 1.0 and np.count_nonzero(g[1]) == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_finite_when_a_class_probability_underflows(dtype):
    """float32 training: a softmax output of exactly 0 (1e-300 is 0 in float32) must not make the loss NaN."""
    from partitionnet import ConvLayer, ConvNet

    net = Network((2,), 1, [L.Flatten(), L.Dense(3), L.Softmax()], loss="cross_entropy", rng=0, dtype=dtype)
    net.set_parameters({"dense1.W": np.array([[400.0, 0.0], [0.0, 0.0], [-400.0, 0.0]]), "dense1.theta": np.zeros(3)})
    x = np.array([[[1.0, 0.0]]], dtype=dtype)
    y = net.forward(x)
    assert y[0, 2] == 0.0                                  # underflowed in both dtypes
    with np.errstate(invalid="raise", divide="ignore"):
        loss = net.loss(x, np.array([0]))
        assert np.isfinite(loss) and loss < 1e-6
        assert np.isfinite(net.loss(x, np.array([2])))    # the true class has probability 0: large, not inf
    conv = ConvNet((4,), 1, [ConvLayer(1, kernel=2, pooling=None)], [2], output="softmax", loss="cross_entropy",
                   rng=0, dtype=dtype)
    assert np.isfinite(conv.loss(np.ones((1, 1, 4), dtype=dtype), np.array([1])))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_vjp_is_a_mask_with_zero_slope_at_the_kink(dtype):
    """The relu fast vjp multiplies by [z > 0]: slope 0 at z = 0, as torch, and keeps the dtype."""
    layer = Network((4,), 1, [L.Activation("relu")], dtype=dtype).layers[0]
    z = np.array([-1.0, 0.0, -0.0, 2.0], dtype=dtype).reshape(4, 1, 1)
    dy = np.array([3.0, 5.0, 7.0, 11.0], dtype=dtype).reshape(4, 1, 1)
    y, res = layer.forward({}, z)
    dx, _ = layer.vjp({}, res, dy)
    assert dx.dtype == dtype and dx.ravel().tolist() == [0.0, 0.0, 0.0, 11.0]
    zt = torch.from_numpy(z.ravel().copy()).requires_grad_(True)
    torch.relu(zt).backward(torch.from_numpy(dy.ravel().copy()))
    assert dx.ravel().tolist() == zt.grad.tolist()


# ---------------------------------------------------------------------- the strided single-GEMM correlation
STRIDED = [(L.Correlation(8, kernel=3, padding="same"), 2, (5, 4)),
           (L.Correlation(9, kernel=2, stride=(2, 1), padding=((0, 1), 2), dilation=(1, 2), bias="tied"), 2, (5, 6)),
           (L.Correlation(12, kernel=3, stride=2, padding="full"), 3, (7,)),
           (L.Correlation(8, kernel=2, padding=1), 2, (3, 2, 3)),
           (L.Correlation(8, kernel=(3, 1), stride=3), 2, (7, 2))]
NUMERIC = ["forward = reference", "vjp = central differences", "dot test", "vjp_literal = vjp", "PyTorch twin"]


@pytest.mark.parametrize("check", NUMERIC)
@pytest.mark.parametrize("i", range(len(STRIDED)))
def test_strided_correlation_passes_the_layer_contract(i, check):
    from partitionnet.layers import contract

    layer, in_maps, in_shape = STRIDED[i]
    built = layer.build(in_maps, in_shape)
    assert built.strided is not None                       # D >= 4 D_in: the strided path is the one checked
    passed, detail = contract.CHECKS[check](built, np.random.default_rng(i))
    assert passed, detail


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strided_and_offset_major_paths_agree(dtype, rng):
    """The same layer with and without the strided path: outputs and all gradients, in float32 and float64."""
    layer = L.Correlation(16, kernel=3, stride=(1, 2), padding="same").build(3, (9, 8))
    p = {k: rng.standard_normal(v).astype(dtype) for k, v in layer.parameter_shapes().items()}
    x = rng.standard_normal((layer.P_in, 4, 3)).astype(dtype)
    strided = layer.strided
    z1, res1 = layer.forward(p, x)
    dz = rng.standard_normal(z1.shape).astype(dtype)
    dx1, g1 = layer.vjp(p, res1, dz)
    layer.strided = None
    z2, res2 = layer.forward(p, x)
    dx2, g2 = layer.vjp(p, res2, dz)
    layer.strided = strided
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    assert z1.dtype == dx1.dtype == g1["W"].dtype == dtype
    np.testing.assert_allclose(z1, z2, **tol)
    np.testing.assert_allclose(dx1, dx2, **tol)
    for k in g2:
        np.testing.assert_allclose(g1[k], g2[k], **tol)


# ---------------------------------------------------------------------- correlation paths
CORRELATIONS = [
    (L.Correlation(5, kernel=3, padding="same"), 4, (6, 5)),                          # shifted (N > 1)
    (L.Correlation(3, kernel=(2, 3), padding=((0, 1), 2), dilation=(2, 1)), 3, (5, 6)),
    (L.Correlation(4, kernel=3, padding="full", connections=[[0], [1, 2], [0, 2], [1]]), 3, (7,)),
    (L.Correlation(2, kernel=2, padding=1, bias="tied"), 2, (3, 3, 4)),
    (L.Correlation(8, kernel=3, stride=2, padding=1), 2, (7, 6)),                     # strided im2col (N > 1)
    (L.Correlation(3, kernel=3, stride=(1, 2)), 3, (6, 7)),                           # gathered patches (N > 1)
    (L.Correlation(4, kernel=3, padding="same"), 1, (5, 5)),                          # one input map
]


def _run(layer, p, x, dz, need_input=True):
    z, res = layer.forward(p, x)
    dx, g = layer.vjp(p, res, dz, need_input=need_input)
    return z, res, dx, g


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(CORRELATIONS)))
def test_correlation_fast_paths_equal_the_gathered_patches(case, dtype, n, rng):
    """Output, input gradient, parameter gradients and the patches, each fast path against the gather form."""
    layer, in_maps, shape = CORRELATIONS[case]
    layer = layer.build(in_maps, shape)
    p = {k: rng.standard_normal(v).astype(dtype) for k, v in layer.parameter_shapes().items()}
    x = rng.standard_normal((layer.P_in, n, in_maps)).astype(dtype)
    dz = rng.standard_normal((layer.P_out, n, layer.maps)).astype(dtype)
    fast = _run(layer, p, x, dz)
    paths = (layer.single, layer.shifted, layer.strided)
    layer.single = layer.shifted = layer.strided = None               # the gathered patches, offset-major
    try:
        slow = _run(layer, p, x, dz)
    finally:
        layer.single, layer.shifted, layer.strided = paths
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast[0], slow[0], **tol)
    np.testing.assert_allclose(fast[2], slow[2], **tol)
    for k in slow[3]:
        np.testing.assert_allclose(fast[3][k], slow[3][k], **tol)
        assert fast[3][k].dtype == dtype
    assert fast[0].dtype == fast[2].dtype == dtype
    np.testing.assert_array_equal(layer.patches(fast[1], n), layer.V.gather(x))
    # without need_input the same parameter gradients come back and no input gradient
    dx, g = layer.vjp(p, fast[1], dz, need_input=False)
    assert dx is None and all(np.array_equal(g[k], fast[3][k]) for k in g)


def test_each_correlation_path_is_the_one_exercised():
    """The cases above cover every path; a change of the rules that choose them must be seen here."""
    built = [layer.build(m, s) for layer, m, s in CORRELATIONS]
    assert all(b.single is not None for b in built)                           # one sample: always by index
    assert [b.shifted is not None for b in built] == [True, True, True, True, False, False, False]
    assert [b.strided is not None for b in built] == [False, False, False, False, True, False, False]


def test_a_partition_reading_an_entry_twice_at_one_offset_keeps_the_scatter_add(rng):
    """``V_s^T`` is a gather only when offset s reads every entry at most once; otherwise the sparse V^T stays."""
    from partitionnet.partition import Partition

    V = Partition.from_indices([[0, 1], [0, 2], [3, 3]], 4)              # offset 0 reads entry 0 twice
    layer = L.Correlation(2, partition=V).build(2, (4,))
    assert layer.single is None and layer.shifted is None
    p = {k: rng.standard_normal(v) for k, v in layer.parameter_shapes().items()}
    x = rng.standard_normal((4, 1, 2))
    z, res = layer.forward(p, x)
    dz = rng.standard_normal(z.shape)
    dx, _ = layer.vjp(p, res, dz)
    dx_literal, _ = layer.vjp_literal(p, res, dz)
    np.testing.assert_allclose(dx, dx_literal, rtol=1e-13, atol=1e-13)
    # entry 0 receives from both windows that read it at offset 0
    K = layer.kernels(p["W"])
    expected = dz[0, 0] @ K[0].T + dz[1, 0] @ K[0].T
    np.testing.assert_allclose(dx[0, 0], expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("padding", [0, 1])
def test_gather_along_another_axis_is_the_same_patches(padding, rng):
    """``gather(maps, axis=2)`` on ``(N, D, M)`` maps is ``gather`` on ``(M, N, D)``, axes moved."""
    from partitionnet.partition import Partition

    V = Partition.sliding_window((5, 4), 3, padding=padding)
    x = rng.standard_normal((V.M, 3, 2))
    moved = V.gather(np.ascontiguousarray(x.transpose(1, 2, 0)), axis=2)          # (N, D, S, P)
    np.testing.assert_array_equal(moved, V.gather(x).transpose(2, 3, 0, 1))
