"""Operators behave like matrices (issue 12): Partition V, Pooling T and every layer's operator J^T have .shape,
@ on vectors and on matrices whose columns are samples, .T, and work with scipy.sparse.linalg.aslinearoperator
(svds, lsqr); each passes the dot test. Plus their text, LaTeX and spy-plot forms."""
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from partitionnet import Network, Partition, Pooling, layers as L, show
from partitionnet.check import dottest
from partitionnet.display import LATEX_MAX, latex_matrix, spy_png, symbolic_operator
from partitionnet.layers.contract import random_input, random_parameters

PARTITIONS = {
    "sliding 2-D padded, strided": lambda: Partition.sliding_window((5, 4), 3, padding=1, stride=2),
    "sliding 1-D dilated": lambda: Partition.sliding_window(9, 3, dilation=2),
    "sliding 3-D same": lambda: Partition.sliding_window((3, 4, 2), 2, padding="same"),
    "the book's (47.1149)": lambda: Partition.from_indices([[1, 4, 6], [2, 5, 4], [3, 6, 1], [2, 4, 1]], 6,
                                                           one_based=True),
}
POOLINGS = {
    "windows": lambda: Pooling.windows((4, 6), 2, kind="mean"),
    "windows with a remainder": lambda: Pooling.windows((5, 4), 2, kind="max", drop_remainder=True),
    "regions": lambda: Pooling.from_regions([[3, 0], [1, 4, 2]], 5),
}


def _matrix(op):
    return op.matrix() if isinstance(op, Partition) else op.permutation()


def _check_matrix_protocol(op, A):
    """``op`` acts as the sparse matrix ``A`` does, in every form of ``@``."""
    A = sp.csr_array(A)
    rng = np.random.default_rng(0)
    m, n = A.shape
    assert tuple(op.shape) == (m, n)
    h, H = rng.standard_normal(n), rng.standard_normal((n, 4))
    g, G = rng.standard_normal(m), rng.standard_normal((3, m))
    np.testing.assert_allclose(op @ h, A @ h, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(op @ H, A @ H, rtol=1e-14, atol=1e-14)          # columns are samples
    np.testing.assert_allclose(g @ op, g @ A, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(G @ op, G @ A, rtol=1e-14, atol=1e-14)
    assert (sp.csr_array(op.T) != A.T).nnz == 0
    np.testing.assert_allclose(op.T @ g, A.T @ g, rtol=1e-14, atol=1e-14)
    S = sp.random_array((n, 3), density=0.5, rng=rng, format="csr")
    np.testing.assert_allclose(sp.csr_array(op @ S).toarray(), (A @ S).toarray(), rtol=1e-14, atol=1e-14)
    # scipy's solvers take it as it is, never densified: the largest singular value, and least squares
    lin = spla.aslinearoperator(op)
    dense_s = np.linalg.svd(A.toarray(), compute_uv=False)
    if min(m, n) >= 3:
        s = spla.svds(lin, k=1, return_singular_vectors=False, v0=np.ones(min(m, n)), tol=0)
        assert abs(s[0] - dense_s[0]) <= 1e-10 * dense_s[0]
    b = A @ h
    x = spla.lsqr(lin, b, atol=1e-14, btol=1e-14, iter_lim=10 * n)[0]
    np.testing.assert_allclose(A @ x, b, atol=1e-9 * max(1.0, np.abs(b).max()))
    assert dottest(op)


@pytest.mark.parametrize("name", sorted(PARTITIONS))
def test_partition_is_a_matrix(name):
    V = PARTITIONS[name]()
    assert V.shape == (V.P * V.S, V.M) and V.nnz == V.matrix().nnz
    _check_matrix_protocol(V, V.matrix())


@pytest.mark.parametrize("name", sorted(POOLINGS))
def test_pooling_is_its_permutation(name):
    pool = POOLINGS[name]()
    assert pool.shape == (pool.P, pool.P) and pool.nnz == pool.P
    _check_matrix_protocol(pool, pool.permutation())
    y = np.arange(float(pool.P))
    np.testing.assert_array_equal(pool @ y, pool.permute(y))
    np.testing.assert_array_equal(pool.T @ (pool @ y), y)                    # T^T T = I (47.1204)
    # a square operator: scipy's expm_multiply takes it too
    from scipy.linalg import expm
    trace = float(pool.permutation().diagonal().sum())
    np.testing.assert_allclose(spla.expm_multiply(spla.aslinearoperator(pool), y, traceA=trace),
                               expm(pool.permutation().toarray()) @ y, rtol=1e-10)


LAYER_CASES = [(kind, i) for kind, cls in sorted(L.REGISTRY.items()) for i in range(len(cls.examples()))]


@pytest.mark.parametrize("kind, i", LAYER_CASES, ids=[f"{k}{i}" for k, i in LAYER_CASES])
def test_every_layer_operator_is_a_matrix(kind, i):
    layer, in_maps, in_shape = L.REGISTRY[kind].examples()[i]
    layer = layer.build(in_maps, in_shape)
    rng = np.random.default_rng(i)
    p = random_parameters(layer, rng)
    x = random_input(layer, rng, n=1)[:, 0, :]
    JT = layer.operator(p, x)
    assert JT.shape == (layer.in_maps * layer.P_in, layer.out_maps * layer.P_out)
    _check_matrix_protocol(JT, JT)
    # J^T's transpose carries a small change of the input to the change of the output (the vjp's adjoint)
    u = 1e-6 * rng.standard_normal(x.shape)
    y_plus, _ = layer.forward(p, (x + u)[:, None, :])
    y_minus, _ = layer.forward(p, (x - u)[:, None, :])
    dy = (y_plus[:, 0, :] - y_minus[:, 0, :]).T.reshape(-1) / 2
    np.testing.assert_allclose(JT.T @ u.T.reshape(-1), dy, atol=1e-9)


def test_bad_operands_get_clear_errors():
    V = Partition.sliding_window((5, 4), 3, padding=1)
    with pytest.raises(ValueError, match=r"V @ h: the operand must have 20 entries, got shape \(3,\)"):
        V @ np.ones(3)
    with pytest.raises(ValueError, match=r"must have 20 rows, got shape \(3, 2\)"):
        V @ np.ones((3, 2))
    with pytest.raises(ValueError, match=r"a vector or a matrix whose columns are samples, got shape \(20, 2, 2\)"):
        V @ np.ones((20, 2, 2))
    with pytest.raises(TypeError, match="expected a numeric vector or matrix, got str"):
        V @ "h"
    with pytest.raises(TypeError, match="expected numbers, got dtype"):
        V @ np.array(["a"] * 20)
    with pytest.raises(ValueError, match=r"g @ V: the operand must have 180 columns"):
        np.ones((2, 20)) @ V
    pool = Pooling.windows((4, 4), 2)
    with pytest.raises(ValueError, match=r"T @ y: the operand must have 16 entries"):
        pool @ np.ones(15)
    with pytest.raises(TypeError, match="expected a numeric vector or matrix, got NoneType"):
        pool @ None


# ---------------------------------------------------------------------- display
def test_print_says_sizes_nonzeros_padding_and_geometry():
    V = Partition.sliding_window((4, 4), 3, padding=1, stride=2)
    text = str(V)
    assert "36 x 16" in text and "P=4" in text and "S=9" in text and "M=16" in text
    assert f"{V.nnz} nonzeros" in text and f"{36 - V.nnz} padded entries" in text
    assert "stride (2, 2)" in text and "padding (1, 1)" in text and "dilation (1, 1)" in text
    book = PARTITIONS["the book's (47.1149)"]()
    assert "unstructured" in str(book) and "used 1 to 3 times" in str(book)
    pool = Pooling.windows((4, 6), 2, kind="mean")
    assert "P=24" in str(pool) and "P'=6" in str(pool) and "every region has 4 entries" in str(pool)


def test_small_operators_render_exact_latex():
    V = Partition.sliding_window(3, 2)
    assert V._repr_latex_() == ("$V = \\left[\\begin{array}{rrr}1 & 0 & 0\\\\ 0 & 1 & 0\\\\ 0 & 1 & 0\\\\ "
                                "0 & 0 & 1\\end{array}\\right]$")
    assert V._repr_png_() is None
    assert latex_matrix(np.array([[0.1, -2.0]])) == "\\left[\\begin{array}{rr}0.1 & -2\\end{array}\\right]"
    assert float(latex_matrix(np.array([[1 / 3]]))[len("\\left[\\begin{array}{r}"):-len("\\end{array}\\right]")]) \
        == 1 / 3                                                               # exact: round-trips
    pool = Pooling.windows((2, 2), 2)
    assert pool._repr_latex_().startswith("$T = \\left[")


def test_symbolic_weights():
    net = Network((3,), 1, [L.Correlation(1, kernel=2)], rng=0)
    JT = symbolic_operator(net.layers[0])
    assert JT.shape == (3, 2)
    assert str(JT.tolist()) == "[[W_0_0, 0], [W_1_0, W_0_0], [0, W_1_0]]"     # V^(1,1) of (47.1257) for a 1-D mask
    assert latex_matrix(JT) == ("\\left[\\begin{array}{rr}W_{0 0} & 0\\\\ W_{1 0} & W_{0 0}\\\\ "
                                "0 & W_{1 0}\\end{array}\\right]")
    with pytest.raises(ValueError, match="not linear: pass x"):
        symbolic_operator(Network((3,), 1, [L.Activation("tanh")]).layers[0])
    with pytest.raises(ValueError, match="not built"):
        symbolic_operator(L.Correlation(1, kernel=2))


def test_large_operators_render_a_spy_plot():
    pytest.importorskip("matplotlib")
    V = Partition.sliding_window((8, 8), 3, padding=1)
    assert max(V.shape) > LATEX_MAX
    assert V._repr_latex_() is None
    png = V._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pool = Pooling.windows((6, 6), 2)
    assert pool._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    assert spy_png(sp.eye_array(50), row_blocks=[0, 25])[:4] == b"\x89PNG"


def test_show_grid_is_the_text_form():
    V = Partition.sliding_window(3, 2)
    assert show.grid(V.matrix(), block_rows=V.S) == "1 . .\n. 1 .\n-----\n. 1 .\n. . 1"
    assert show.grid(V, block_rows=V.S) == show.grid(V.matrix(), block_rows=V.S)      # V stands for its matrix
    pool = Pooling.from_regions([[1, 0]], 2)
    assert show.grid(pool) == show.grid(pool.permutation()) == ". 1\n1 ."
    assert show.latex(V) == show.latex(V.matrix())
