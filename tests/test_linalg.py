"""convolution_matrix and spectral_norm (issue 12): the matrix of a layer, exactly, in both layouts."""
import numpy as np
import pytest
import scipy.sparse as sp

from partitionnet import Network, layers as L
from partitionnet.linalg import convolution_matrix, layout_permutation, spectral_norm

torch = pytest.importorskip("torch")
nn = torch.nn


def _jacobian(module, shape):
    """torch.func.jacrev of one sample, in torch's layout: rows C-order output, columns C-order input."""
    module = module.double()
    x = torch.randn(int(np.prod(shape)), dtype=torch.float64)
    J = torch.func.jacrev(lambda v: module(v.reshape((1,) + tuple(shape))).reshape(-1))(x)
    out_shape = tuple(module(x.reshape((1,) + tuple(shape))).shape[1:])
    return J.detach().numpy(), out_shape


def _random_conv(rng, transposed):
    nd = int(rng.integers(1, 4))
    groups = int(rng.choice([1, 2]))
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kernel = tuple(int(k) for k in rng.integers(1, 4, nd))
    stride = tuple(int(s) for s in rng.integers(1, 3, nd))
    dilation = tuple(int(d) for d in rng.integers(1, 3, nd))
    padding = tuple(int(p) for p in rng.integers(0, 3, nd))
    spatial = tuple(int(n) for n in rng.integers(5, 8 if nd < 3 else 6, nd))
    if transposed:
        out_pad = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
        cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[nd - 1]
        m = cls(c_in, c_out, kernel, stride=stride, padding=padding, output_padding=out_pad, groups=groups,
                dilation=dilation)
    else:
        if rng.random() < 0.25:
            padding, stride = "same", (1,) * nd
        cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[nd - 1]
        m = cls(c_in, c_out, kernel, stride=stride, padding=padding, groups=groups, dilation=dilation)
    return m, (c_in,) + spatial


def _check_both_layouts(module, shape, *, exact=True):
    J, out_shape = _jacobian(module, shape)
    A_torch = convolution_matrix(module, shape, layout="torch")
    A_seed = convolution_matrix(module, shape, layout="seed")
    assert isinstance(A_torch, sp.csr_array) and isinstance(A_seed, sp.csr_array)
    for A in (A_torch, A_seed):                 # canonical CSR: columns strictly increase along every row
        steps = np.diff(A.indices)
        starts = A.indptr[1:-1][(A.indptr[1:-1] > 0) & (A.indptr[1:-1] < A.nnz)] - 1
        steps[starts] = 1
        assert (steps > 0).all()
    assert A_torch.shape == J.shape
    J_seed = J[np.ix_(layout_permutation(out_shape), layout_permutation(shape))]
    if exact:
        np.testing.assert_array_equal(A_torch.toarray(), J)
        np.testing.assert_array_equal(A_seed.toarray(), J_seed)
    else:
        np.testing.assert_allclose(A_torch.toarray(), J, rtol=0, atol=1e-13)
        np.testing.assert_allclose(A_seed.toarray(), J_seed, rtol=0, atol=1e-13)
    return A_torch


@pytest.mark.parametrize("seed", range(12))
def test_conv_equals_jacrev_exactly(seed):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    module, shape = _random_conv(rng, transposed=False)
    try:
        module(torch.zeros((1,) + shape))
    except RuntimeError:
        pytest.skip("torch refuses this geometry")
    _check_both_layouts(module, shape)


@pytest.mark.parametrize("seed", range(12))
def test_conv_transpose_equals_jacrev_exactly(seed):
    rng = np.random.default_rng(100 + seed)
    torch.manual_seed(seed)
    module, shape = _random_conv(rng, transposed=True)
    try:
        out = module(torch.zeros((1,) + shape))
    except RuntimeError:
        pytest.skip("torch refuses this geometry")
    if out.numel() == 0:
        pytest.skip("empty output")
    _check_both_layouts(module, shape)


@pytest.mark.parametrize("module, shape", [
    (lambda: nn.Linear(5, 3), (5,)),
    (lambda: nn.AvgPool1d(2), (3, 7)),
    (lambda: nn.AvgPool2d(3, stride=2, padding=1), (2, 7, 6)),
    (lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 7, 6)),
    (lambda: nn.AvgPool2d(2, divisor_override=3), (1, 4, 6)),
    (lambda: nn.AvgPool3d((2, 1, 2), stride=(1, 2, 2)), (2, 3, 4, 5)),
    (lambda: nn.Conv2d(3, 4, 3, padding="same", dilation=2, bias=False), (3, 6, 5)),
    (lambda: nn.Conv1d(4, 6, 2, padding="same", groups=2), (4, 7)),
])
def test_other_modules_equal_jacrev_exactly(module, shape):
    torch.manual_seed(0)
    _check_both_layouts(module(), shape)


def test_sequential_of_linear_modules():
    torch.manual_seed(1)
    seq = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.AvgPool2d(2), nn.ConvTranspose2d(3, 2, 2, stride=2),
                        nn.Identity(), nn.Flatten(), nn.Linear(2 * 4 * 4, 5))
    A = _check_both_layouts(seq, (2, 8, 8), exact=False)     # a product of matrices: rounding in the sums
    assert A.shape == (5, 2 * 8 * 8)


def test_spatial_shape_alone_takes_channels_from_the_module():
    torch.manual_seed(2)
    m = nn.Conv2d(3, 2, 3)
    a = convolution_matrix(m, (5, 6))
    b = convolution_matrix(m, (3, 5, 6))
    assert (a != b).nnz == 0


def test_partitionnet_layers_and_networks():
    net = Network((7, 6), 2, [L.Correlation(3, kernel=3, stride=2, padding="same", dilation=1),
                              L.Pool("mean", 2, drop_remainder=True), L.Flatten(), L.Dense(4)], rng=0)
    zero_bias = {k: (v if k.endswith(".W") else np.zeros_like(v)) for k, v in net.parameters().items()}
    net.set_parameters(zero_bias)
    x = np.random.default_rng(1).standard_normal((2, 7, 6))
    y = net.forward(x[None])[0]
    x_seed = np.concatenate([x[j].ravel(order="F") for j in range(2)])
    A = convolution_matrix(net)
    np.testing.assert_allclose(A @ x_seed, y, atol=1e-13)
    np.testing.assert_allclose(convolution_matrix(net, layout="torch") @ x.ravel(), y, atol=1e-13)
    # one layer: the transpose of its operator J^T (47.1257), and its torch twin's Jacobian exactly
    conv = net.layers[0]
    p = net.layer_parameters(conv.name)
    B = convolution_matrix(conv, params=p)
    assert (B != conv.operator(p).T).nnz == 0
    J, _ = _jacobian(conv.to_torch(p), (2, 7, 6))
    np.testing.assert_array_equal(convolution_matrix(conv, params=p, layout="torch").toarray(), J)


def test_no_dense_intermediate_for_a_large_layer():
    # dense, this matrix would hold 2**36 entries (512 GiB); sparse it has 2*2*9*256*256 entries at most
    torch.manual_seed(3)
    m = nn.Conv2d(2, 2, 3, padding=1, bias=False)
    A = convolution_matrix(m, (2, 256, 256), layout="torch")
    assert A.shape == (2 * 65536, 2 * 65536)
    assert A.nnz == 2 * 2 * (3 * 256 - 2) ** 2          # per axis, 3 taps per output less the 2 in the padding
    x = torch.randn(1, 2, 256, 256, dtype=torch.float64)
    np.testing.assert_allclose(A @ x.numpy().ravel(), m.double()(x).detach().numpy().ravel(), atol=1e-12)


# ---------------------------------------------------------------------- spectral norm
@pytest.mark.parametrize("seed", range(4))
def test_spectral_norm_matches_dense_svd(seed):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    module, shape = _random_conv(rng, transposed=bool(seed % 2))
    try:
        module(torch.zeros((1,) + shape))
    except RuntimeError:
        pytest.skip("torch refuses this geometry")
    A = convolution_matrix(module, shape)
    exact = np.linalg.svd(A.toarray(), compute_uv=False)[0]
    assert abs(spectral_norm(module, shape) - exact) <= 1e-8 * exact


def test_spectral_norm_of_network_partition_and_small_matrices():
    net = Network((6, 5), 2, [L.Correlation(3, kernel=2, stride=(1, 2))], rng=4)
    A = convolution_matrix(net)
    exact = np.linalg.svd(A.toarray(), compute_uv=False)[0]
    assert abs(spectral_norm(net) - exact) <= 1e-8 * exact
    from partitionnet import Partition
    V = Partition.sliding_window((5, 4), 3, padding=1)
    exact = np.linalg.svd(V.matrix().toarray(), compute_uv=False)[0]
    assert abs(spectral_norm(V) - exact) <= 1e-8 * exact       # through aslinearoperator, never densified
    assert spectral_norm(np.array([[3.0, 4.0]])) == pytest.approx(5.0, rel=1e-15)   # dense path (a side < 3)


# ---------------------------------------------------------------------- bad input
def test_bad_input_gets_clear_errors():
    m = nn.Conv2d(3, 2, 3)
    with pytest.raises(ValueError, match="layout must be one of"):
        convolution_matrix(m, (3, 5, 5), layout="numpy")
    with pytest.raises(TypeError, match="layout must be"):
        convolution_matrix(m, (3, 5, 5), layout=1)
    with pytest.raises(ValueError, match="expects 3 input channels"):
        convolution_matrix(m, (4, 5, 5))
    with pytest.raises(ValueError, match="needs input_shape"):
        convolution_matrix(m)
    with pytest.raises(ValueError, match="larger than the padded input"):
        convolution_matrix(m, (3, 2, 5))
    with pytest.raises(TypeError, match="ReLU"):
        convolution_matrix(nn.ReLU(), (3, 4))
    with pytest.raises(TypeError, match="Sequential module 1 .*ReLU"):
        convolution_matrix(nn.Sequential(m, nn.ReLU()), (3, 5, 5))
    with pytest.raises(ValueError, match="padding_mode"):
        convolution_matrix(nn.Conv1d(1, 1, 3, padding=1, padding_mode="circular"), (1, 6))
    with pytest.raises(ValueError, match="ceil_mode"):
        convolution_matrix(nn.AvgPool1d(2, ceil_mode=True), (1, 5))
    with pytest.raises(ValueError, match="Linear takes 5 features"):
        convolution_matrix(nn.Linear(5, 2), (4,))
    with pytest.raises(TypeError, match="got str"):
        convolution_matrix("conv", (3, 5, 5))
    net = Network((6,), 1, [L.Correlation(2, kernel=3), L.Activation("tanh")], rng=0)
    with pytest.raises(ValueError, match="not linear"):
        convolution_matrix(net)
    with pytest.raises(ValueError, match="does not match"):
        convolution_matrix(net.layers[0], (7,), params=net.layer_parameters("conv1"))
    with pytest.raises(ValueError, match="params lacks"):
        convolution_matrix(net.layers[0], params={})
    with pytest.raises(ValueError, match="not built"):
        convolution_matrix(L.Correlation(2, kernel=3))
    with pytest.raises(ValueError, match="tol must be a finite number >= 0"):
        spectral_norm(np.eye(3), tol=-1.0)
    with pytest.raises(TypeError, match="tol must be a real number"):
        spectral_norm(np.eye(3), tol=True)
    with pytest.raises(ValueError, match="input_shape and params apply to layers"):
        spectral_norm(np.eye(3), (3,))


LINEAR_CASES = [(kind, i) for kind, cls in sorted(L.REGISTRY.items()) for i, (layer, _, _) in
                enumerate(cls.examples()) if getattr(layer.build(*cls.examples()[i][1:]), "linear", False)]


@pytest.mark.parametrize("kind, i", LINEAR_CASES, ids=[f"{k}{i}" for k, i in LINEAR_CASES])
def test_every_linear_layer_kind_is_its_matrix(kind, i):
    """A vec(x) = forward(x) - forward(0) for every linear kind, in both layouts (the bias is left out)."""
    from partitionnet.layers.contract import random_input, random_parameters
    layer, in_maps, in_shape = L.REGISTRY[kind].examples()[i]
    layer = layer.build(in_maps, in_shape)
    rng = np.random.default_rng(i)
    p = random_parameters(layer, rng)
    x = random_input(layer, rng, n=1)                                  # (P_in, 1, D_in), maps column-stacked
    y = layer.forward(p, x)[0][:, 0, :] - layer.forward(p, np.zeros_like(x))[0][:, 0, :]
    A = convolution_matrix(layer, params=p)
    np.testing.assert_allclose(A @ x[:, 0, :].T.reshape(-1), y.T.reshape(-1), atol=1e-12)
    A_t = convolution_matrix(layer, params=p, layout="torch")
    x_maps = np.stack([x[:, 0, j].reshape(in_shape, order="F") for j in range(in_maps)])
    y_flat = (y.T.reshape(-1) if layer.out_vector else
              np.stack([y[:, d].reshape(layer.out_shape, order="F") for d in range(layer.out_maps)]).reshape(-1))
    np.testing.assert_allclose(A_t @ x_maps.reshape(-1), y_flat, atol=1e-12)


@pytest.mark.parametrize("module, shape", [
    (lambda: nn.Conv2d(4, 4, 3, stride=2, dilation=2, padding=2, groups=4), (4, 9, 8)),          # depthwise
    (lambda: nn.Conv1d(6, 9, 4, stride=3, padding=5, groups=3), (6, 11)),
    (lambda: nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2),
     (4, 4, 3)),
    (lambda: nn.ConvTranspose1d(3, 3, 3, stride=2, dilation=3, output_padding=2, groups=3), (3, 5)),
    (lambda: nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False), (2, 8)),
])
def test_groups_depthwise_and_output_padding(module, shape):
    torch.manual_seed(4)
    _check_both_layouts(module(), shape)


def test_book_is_the_seed_layout():
    torch = pytest.importorskip("torch")
    module = torch.nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=1).double()
    A_book = convolution_matrix(module, (2, 5, 6), layout="book")
    A_seed = convolution_matrix(module, (2, 5, 6), layout="seed")
    A_torch = convolution_matrix(module, (2, 5, 6), layout="torch")
    assert (A_book != A_seed).nnz == 0 and (A_book != A_torch).nnz > 0
    with pytest.raises(ValueError, match="layout must be one of"):
        convolution_matrix(module, (2, 5, 6), layout="Book")
