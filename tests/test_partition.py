"""Partition matrices V (47.1148-47.1153): the book's examples, direct correlation, properties, errors."""
import numpy as np
import pytest
import scipy.signal as signal
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from partitionnet import Partition, unvec, vec

BOOK_LISTS = [[1, 4, 6], [2, 5, 4], [3, 6, 1], [2, 4, 1]]  # (47.1149), 1-based


def book_partition():
    return Partition.from_indices(BOOK_LISTS, 6, one_based=True)


# ---------------------------------------------------------------- the book's examples, exactly
def test_book_example_47_1149_matrix():
    # The 12 x 6 matrix printed in (47.1149), row by row as the basis vectors of (47.1153).
    rows_1_based = [1, 4, 6, 2, 5, 4, 3, 6, 1, 2, 4, 1]
    expected = np.eye(6, dtype=int)[np.array(rows_1_based) - 1]
    V = book_partition().matrix()
    assert isinstance(V, sp.csr_array)
    assert V.shape == (12, 6)
    np.testing.assert_array_equal(V.toarray(), expected)


def test_book_example_47_1149_apply():
    V = book_partition()
    out = V.apply(np.arange(1.0, 7.0))
    assert out.tolist() == [1, 4, 6, 2, 5, 4, 3, 6, 1, 2, 4, 1]


def test_book_membership_47_1151():
    expected = np.array([[1, 0, 0, 1, 0, 1],
                         [0, 1, 0, 1, 1, 0],
                         [1, 0, 1, 0, 0, 1],
                         [1, 1, 0, 1, 0, 0]])
    np.testing.assert_array_equal(book_partition().membership().toarray(), expected)
    # and it is literally (I_P kron 1_S^T) V
    V = book_partition()
    K = sp.kron(sp.eye_array(4), np.ones((1, 3)))
    np.testing.assert_array_equal((K @ V.matrix()).toarray(), expected)


def test_book_47_1252_to_1255():
    # Fig. 47.99: six pooled entries, P_{c+1} = 4 subvectors of size 2; (47.1253) lists V_c t.
    Vc = Partition.from_indices([[1, 3], [4, 2], [5, 1], [6, 2]], 6, one_based=True)
    printed_1252 = np.array([[1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0],
                             [0, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0]])
    np.testing.assert_array_equal(Vc.matrix().toarray(), printed_1252)
    assert Vc.apply(np.arange(1.0, 7.0)).tolist() == [1, 3, 4, 2, 5, 1, 6, 2]          # (47.1253)
    printed_1254 = np.array([[1, 0, 1, 0, 0, 0], [0, 1, 0, 1, 0, 0], [1, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, 1]])
    np.testing.assert_array_equal(Vc.membership().toarray(), printed_1254)              # (47.1254)
    skeleton = Vc.matrix().T @ sp.kron(sp.eye_array(4), np.ones((2, 1)))
    np.testing.assert_array_equal(skeleton.toarray(), printed_1254.T)                    # (47.1255)


def test_convolution_chapter_eq_8_12():
    # 3x3 image, 2x2 kernel, 'valid': z = H^T w reproduces the 4 x 9 matrix of Eq. 8.12.
    rng = np.random.default_rng(0)
    w = rng.standard_normal((2, 2))
    V = Partition.sliding_window((3, 3), 2)
    # The matrix with rows w^T h_p: A[p, m] = sum_s w[s] V[p*S+s, m].
    A = (sp.kron(sp.eye_array(V.P), vec(w)[None, :]) @ V.matrix()).toarray()
    w11, w21, w12, w22 = w[0, 0], w[1, 0], w[0, 1], w[1, 1]
    printed = np.array([[w11, w21, 0, w12, w22, 0, 0, 0, 0],
                        [0, w11, w21, 0, w12, w22, 0, 0, 0],
                        [0, 0, 0, w11, w21, 0, w12, w22, 0],
                        [0, 0, 0, 0, w11, w21, 0, w12, w22]])
    np.testing.assert_array_equal(A, printed)
    p = rng.standard_normal((3, 3))
    np.testing.assert_allclose(V.patches(vec(p)).T @ vec(w), A @ vec(p))


# ---------------------------------------------------------------- direct correlation (scipy.signal)
SHAPES = [(9,), (6, 7), (4, 5, 6)]


def _random_kernel(rng, ndim, odd):
    sizes = [3, 2, 3] if not odd else [3, 3, 1]
    return rng.standard_normal(tuple(sizes[:ndim]) if ndim > 1 else (sizes[0] if odd else 4,))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("mode", ["valid", "same", "full"])
def test_correlation_matches_scipy(shape, mode):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape)
    W = _random_kernel(rng, len(shape), odd=(mode == "same"))
    V = Partition.sliding_window(shape, W.shape, padding=mode)
    z = V.patches(vec(x)).T @ vec(W)                       # H^T w (47.1133, 47.1158)
    expected = signal.correlate(x, W, mode=mode)
    assert V.output_shape == expected.shape
    np.testing.assert_allclose(unvec(z, V.output_shape), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("mode", ["valid", "same", "full"])
def test_flipped_mask_gives_convolution(shape, mode):
    # (47.1136-47.1139): correlation with W equals convolution with W# (all axes reversed).
    rng = np.random.default_rng(10 + len(shape))
    x = rng.standard_normal(shape)
    W = _random_kernel(rng, len(shape), odd=(mode == "same"))
    W_flip = np.flip(W)                                    # W#(k, l) = W(-k, -l)
    V = Partition.sliding_window(shape, W.shape, padding=mode)
    z = V.patches(vec(x)).T @ vec(W_flip)
    np.testing.assert_allclose(unvec(z, V.output_shape), signal.convolve(x, W, mode=mode), atol=1e-12)
    # and w# = I~ w: flipping the window reverses its column-stacked vector
    np.testing.assert_array_equal(vec(W_flip), vec(W)[::-1])


@pytest.mark.parametrize("shape,kernel,stride", [((11,), 3, 2), ((9, 8), (3, 2), (2, 3)), ((7, 6, 5), 2, (3, 2, 2))])
@pytest.mark.parametrize("mode", ["valid", "full"])
def test_strided_windows_are_every_sth_output(shape, kernel, stride, mode):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    ndim = len(shape)
    kernel = kernel if isinstance(kernel, tuple) else (kernel,) * ndim
    stride = stride if isinstance(stride, tuple) else (stride,) * ndim
    W = rng.standard_normal(kernel)
    V = Partition.sliding_window(shape, kernel, stride=stride, padding=mode)
    z = unvec(V.patches(vec(x)).T @ vec(W), V.output_shape)
    full = signal.correlate(x, W, mode=mode)
    np.testing.assert_allclose(z, full[tuple(slice(None, None, s) for s in stride)], atol=1e-12)


def test_dilation_equals_correlation_with_holey_kernel():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((10, 9))
    W = rng.standard_normal((3, 2))
    dil = (2, 3)
    holey = np.zeros((1 + dil[0] * 2, 1 + dil[1] * 1))
    holey[::dil[0], ::dil[1]] = W
    V = Partition.sliding_window(x.shape, W.shape, dilation=dil, padding=1)
    z = unvec(V.patches(vec(x)).T @ vec(W), V.output_shape)
    np.testing.assert_allclose(z, signal.correlate(np.pad(x, 1), holey, mode="valid"), atol=1e-12)


def test_padding_rows_are_zero_rows():
    V = Partition.sliding_window((4, 4), 3, padding=1)
    M = V.matrix()
    row_nnz = np.diff(M.indptr)
    assert set(row_nnz.tolist()) <= {0, 1}                      # at most one stored 1 per row
    assert int((row_nnz == 0).sum()) == int((V.indices < 0).sum()) == 9 * 16 - 100


def test_blocks_tile_the_map():
    V = Partition.blocks((4, 6), (2, 3))
    counts = np.asarray(V.membership().sum(axis=0)).ravel()
    np.testing.assert_array_equal(counts, np.ones(24))        # every entry in exactly one block
    assert V.output_shape == (2, 2) and V.S == 6


def test_patches_shape_and_sample_columns():
    V = Partition.sliding_window((5, 4), 2)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((20, 3))
    H = V.patches(X)
    assert H.shape == (4, V.P, 3)
    for n in range(3):
        np.testing.assert_array_equal(H[:, :, n], V.patches(X[:, n]))


def test_large_sliding_window_builds_quickly_enough_to_use():
    # Size check only (speed is measured in benchmarks/): a 512 x 512 map, 3 x 3 kernel.
    V = Partition.sliding_window((512, 512), 3, padding="same")
    assert V.matrix().nnz == 512 * 512 * 9 - 4 * 512 * 3 + 4


def test_to_sympy_matches_matrix():
    V = Partition.sliding_window((3, 4), 2, padding=1, stride=2)
    np.testing.assert_array_equal(np.array(V.to_sympy().tolist(), dtype=float), V.matrix().toarray())


# ---------------------------------------------------------------- properties (hypothesis)
@st.composite
def partitions(draw):
    M = draw(st.integers(1, 12))
    P = draw(st.integers(1, 6))
    S = draw(st.integers(1, 5))
    idx = draw(st.lists(st.lists(st.integers(0, M - 1), min_size=S, max_size=S), min_size=P, max_size=P))
    return Partition.from_indices(idx, M)


@st.composite
def windows(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 6)) for _ in range(ndim))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(ndim))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(ndim))
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if any(sp_ > n + 2 * p for sp_, n, p in zip(spans, shape, padding)):
        padding = tuple(max(p, (sp_ - n + 1) // 2) for sp_, n, p in zip(spans, shape, padding))
    return Partition.sliding_window(shape, kernel, stride=stride, padding=padding, dilation=dilation)


@settings(max_examples=60, deadline=None)
@given(st.one_of(partitions(), windows()), st.integers(0, 2**32 - 1))
def test_adjoint_identity(V, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(V.M)
    y = rng.standard_normal(V.P * V.S)
    assert np.isclose(V.apply(x) @ y, x @ V.adjoint(y), rtol=1e-12, atol=1e-12)
    X, Y = rng.standard_normal((V.M, 3)), rng.standard_normal((V.P * V.S, 3))
    np.testing.assert_allclose(np.einsum("ij,ij->j", V.apply(X), Y), np.einsum("ij,ij->j", X, V.adjoint(Y)),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(V.apply(x), V.matrix() @ x)


@settings(max_examples=60, deadline=None)
@given(windows())
def test_membership_row_sums_are_S_minus_padding(V):
    sums = np.asarray(V.membership().sum(axis=1)).ravel()
    np.testing.assert_array_equal(sums, V.S - (V.indices < 0).sum(axis=1))


# ---------------------------------------------------------------- bad input
BAD = [
    (lambda: Partition.from_indices([[0, 1], [2]], 3), ValueError, "ragged"),
    (lambda: Partition.from_indices([[0, 3]], 3), ValueError, r"index_lists must lie in \[0, 2\]"),
    (lambda: Partition.from_indices([[0, -1]], 3), ValueError, "index_lists must lie"),
    (lambda: Partition.from_indices([[0, 6]], 6, one_based=True), ValueError, r"\[1, 6\]"),
    (lambda: Partition.from_indices([], 3), ValueError, "at least one"),
    (lambda: Partition.from_indices([[]], 3), ValueError, "at least one"),
    (lambda: Partition.from_indices([[0.0, 1.0]], 3), TypeError, "integers"),
    (lambda: Partition.from_indices("01", 3), TypeError, "index_lists"),
    (lambda: Partition.from_indices([[0]], 0), ValueError, "size must be an integer >= 1"),
    (lambda: Partition.from_indices([[0]], 2.0), TypeError, "size must be an integer"),
    (lambda: Partition.sliding_window((5, 5), 0), ValueError, "kernel"),
    (lambda: Partition.sliding_window((5, 5), 2.5), TypeError, "kernel"),
    (lambda: Partition.sliding_window((5, 5), (2, 2, 2)), ValueError, "kernel must have 2 entries"),
    (lambda: Partition.sliding_window((5, 5), 2, stride=0), ValueError, "stride"),
    (lambda: Partition.sliding_window((5, 5), 2, dilation=-1), ValueError, "dilation"),
    (lambda: Partition.sliding_window((5, 5), 2, padding=-1), ValueError, "padding"),
    (lambda: Partition.sliding_window((5, 5), 2, padding="reflect"), ValueError, "padding must be"),
    (lambda: Partition.sliding_window((3, 3), 4), ValueError, "larger than the padded input"),
    (lambda: Partition.sliding_window((3, 3), 3, dilation=2), ValueError, "larger than the padded input"),
    (lambda: Partition.sliding_window((5, 5), 2, padding=((1, 2, 3), 0)), ValueError, r"\(before, after\) pair"),
    (lambda: Partition.sliding_window((5, 5), 2, padding=((1, -1), 0)), ValueError, r"padding\[0\]\[1\]"),
    (lambda: Partition.sliding_window((2, 2, 2, 2), 1), ValueError, "at most 3 axes"),
    (lambda: Partition.sliding_window("55", 1), TypeError, "input_shape"),
    (lambda: Partition.blocks((5, 4), 2), ValueError, "does not tile"),
    (lambda: book_partition().apply(np.ones(5)), ValueError, r"h must have shape \(6,\)"),
    (lambda: book_partition().apply(np.ones((6, 2, 1))), ValueError, "h must have shape"),
    (lambda: book_partition().adjoint(np.ones(6)), ValueError, r"g must have shape \(12,\)"),
    (lambda: book_partition().apply(["a"] * 6), TypeError, "numeric"),
    # the public constructor takes the index table itself (-1 = padding) and range-checks it
    (lambda: Partition(np.array([[10**6, 0]]), 3), ValueError,
     r"indices must lie in \[-1, 2\] \(0-based, -1 for padding, size=3\); found 1000000 at position \(0, 0\)"),
    (lambda: Partition(np.array([[0, 1], [2, -2]]), 3), ValueError, r"found -2 at position \(1, 1\)"),
    (lambda: Partition(np.array([[0, 3]]), 3), ValueError, "indices must lie in"),
    (lambda: Partition(np.array([[0.0, 1.0]]), 3), TypeError, "indices must hold integers"),
    (lambda: Partition(np.array([0, 1]), 3), ValueError, "indices must be a non-empty P x S table"),
    (lambda: Partition(np.zeros((0, 2), dtype=int), 3), ValueError, "non-empty"),
    (lambda: Partition(np.array([[0, 1]]), 0), ValueError, "size must be an integer >= 1"),
    (lambda: Partition(np.array([[0, 1]]), "3"), TypeError, "size must be an integer"),
    (lambda: Partition(np.array([[0, 1]]), 4, input_shape=(3, 2)), ValueError, r"input_shape \(3, 2\) has 6"),
    (lambda: Partition(np.array([[0, 1]]), 4, kernel_shape=(3,)), ValueError, "kernel_shape"),
    (lambda: Partition(np.array([[0, 1]]), 4, output_shape=(2,)), ValueError, "output_shape"),
    # flags are real booleans: 'no' is a truthy string, not False
    (lambda: Partition.from_indices([[1, 2]], 3, one_based="no"), TypeError, "one_based must be True or False"),
    (lambda: Partition.from_indices([[1, 2]], 3, one_based=0), TypeError, "one_based must be True or False, got int"),
    (lambda: book_partition().index_lists(one_based="yes"), TypeError, "one_based"),
]


@pytest.mark.parametrize("call,error,match", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_constructor_keeps_padding_and_accepts_numpy_bools():
    V = Partition(np.array([[2, -1], [0, 1]]), 3, input_shape=(3,), output_shape=(2,), kernel_shape=(2,))
    np.testing.assert_array_equal(V.matrix().toarray(), [[0, 0, 1], [0, 0, 0], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(V.adjoint(np.ones(4)), [1, 1, 1])
    W = Partition.from_indices([[1, 2]], 2, one_based=np.True_)
    assert W.index_lists(one_based=np.False_) == [[0, 1]]


def test_out_of_range_indices_no_longer_crash_the_interpreter():
    # The reproduction, in a child process: before the range check the sparse product read
    # outside V's vector and the interpreter died with SIGSEGV, so an in-process test could not report.
    import subprocess
    import sys

    code = """
import numpy as np
from partitionnet import Partition
for step in ("matrix", "adjoint"):
    try:
        V = Partition(np.array([[10**6, 0]]), 3)
        V.matrix() @ np.ones(3) if step == "matrix" else V.adjoint(np.ones(2))
    except ValueError as exc:
        print("ValueError:", exc)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("ValueError: indices must lie in [-1, 2]") == 2, run.stdout


@pytest.mark.parametrize("n, k, stride, dilation", [(5, 2, 1, 1), (5, 4, 1, 1), (7, 3, 2, 2), (8, 2, 3, 1),
                                                    (6, 3, 1, 1), (9, 4, 2, 1), (4, 5, 1, 1)])
def test_same_padding_follows_the_tensorflow_rule(n, k, stride, dilation):
    # 'same' with any kernel, stride and dilation (it was refused for even kernels and strides):
    # ceil(n / stride) outputs; the total padding (out - 1) * stride + extent - n split with the odd
    # zero after, as TensorFlow does. Worked out here from that rule, not from the library.
    out = -(-n // stride)
    extent = dilation * (k - 1) + 1
    before = max((out - 1) * stride + extent - n, 0) // 2
    expected = [[o * stride - before + dilation * j for j in range(k)] for o in range(out)]
    expected = [[i if 0 <= i < n else -1 for i in row] for row in expected]
    V = Partition.sliding_window(n, k, stride=stride, dilation=dilation, padding="same")
    assert V.output_shape == (out,)
    assert V.indices.tolist() == expected
