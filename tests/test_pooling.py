"""Pooling (Tables 47.12-47.14), gradient vectors, upv and the permutation T (47.1196-47.1204)."""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from partitionnet import Pooling, unvec, vec

BOOK_REGIONS = [[1, 2, 4, 8], [3, 5, 7, 9, 11], [6, 10, 12]]   # left-hand side of (47.1201), 1-based
SLIDE_MAP = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]], dtype=float)


def seed_pooling(**kw):
    return Pooling.from_regions(BOOK_REGIONS, 12, one_based=True, **kw)


# ---------------------------------------------------------------- the book's examples
def test_T_from_regions_equals_47_1203():
    # (47.1203): the rows of T are e_1, e_2, e_4, e_8 | e_3, e_5, e_7, e_9, e_11 | e_6, e_10, e_12.
    rows = [1, 2, 4, 8, 3, 5, 7, 9, 11, 6, 10, 12]
    T = seed_pooling().permutation()
    assert isinstance(T, sp.csr_array) and T.shape == (12, 12)
    np.testing.assert_array_equal(T.toarray(), np.eye(12)[np.array(rows) - 1])


def test_matrix_printed_inside_47_1201_is_a_typo():
    # The printed matrix repeats e_8 in row 8 (for e_9) and has 11 rows, so it is not even square:
    # it cannot produce the left-hand side of (47.1201). T built from the regions does.
    printed_rows = [1, 2, 4, 8, 3, 5, 7, 8, 10, 11, 12]
    printed = np.eye(12)[np.array(printed_rows) - 1]
    lhs = np.array([1, 2, 4, 8, 3, 5, 7, 9, 11, 6, 10, 12], dtype=float)
    y = np.arange(1.0, 13.0)
    # Evaluated on y = (1, ..., 12), the printed form reads entry 8 twice and never reads 6 or 9:
    # a wrong value next to the corrected one, not only a shape mismatch.
    assert printed.shape == (11, 12)
    np.testing.assert_array_equal(printed @ y, [1, 2, 4, 8, 3, 5, 7, 8, 10, 11, 12])
    assert printed[:, 8].sum() == 0 and printed[:, 5].sum() == 0 and printed[:, 7].sum() == 2
    assert not np.array_equal(printed @ y, lhs[:11])
    np.testing.assert_array_equal(seed_pooling().permute(y), lhs)


def test_permute_and_permute_adjoint_47_1202_1204():
    pool = seed_pooling()
    y = np.random.default_rng(0).standard_normal(12)
    T = pool.permutation()
    np.testing.assert_array_equal(pool.permute(y), T @ y)
    np.testing.assert_array_equal(pool.permute_adjoint(pool.permute(y)), y)
    np.testing.assert_array_equal((T @ T.T).toarray(), np.eye(12))


def test_slides_pooling_numbers():
    # 004 slides: 4x4 map, 2x2 windows, stride 2.
    pool_max = Pooling.windows((4, 4), 2, kind="max")
    t, _ = pool_max.pool(vec(SLIDE_MAP))
    np.testing.assert_array_equal(unvec(t, pool_max.output_shape), [[9, 2], [6, 3]])
    pool_mean = Pooling.windows((4, 4), 2, kind="mean")
    t, _ = pool_mean.pool(vec(SLIDE_MAP))
    # The slide prints 4 for the lower-left entry; (1 + 3 + 5 + 6) / 4 = 3.75 (an erratum).
    np.testing.assert_array_equal(unvec(t, pool_mean.output_shape), [[3.75, 1.25], [3.75, 2.0]])


def test_regions_of_windows_are_column_stacked():
    pool = Pooling.windows((4, 6), (2, 3))
    assert pool.output_shape == (2, 2)
    # first window: rows 0-1, columns 0-2 of a 4 x 6 map, column by column
    np.testing.assert_array_equal(pool.regions[0], [0, 1, 4, 5, 8, 9])
    np.testing.assert_array_equal(pool.regions[1], [2, 3, 6, 7, 10, 11])   # next window down


# ---------------------------------------------------------------- gradient vectors, each kind
def test_gradient_vectors_table_47_14():
    y = np.array([0.5, -2.0, 3.0, 1.0, 4.0, -1.0, 2.0, 0.25, -3.0, 1.5, 2.5, -0.5])
    regions = [np.array(r) - 1 for r in BOOK_REGIONS]
    mask = np.linspace(-1, 1, 12)
    cases = {
        "mean": (lambda r: y[r].mean(), lambda r: np.full(r.size, 1 / r.size)),
        "max": (lambda r: y[r].max(), lambda r: np.eye(r.size)[np.argmax(y[r])]),
        "l2": (lambda r: np.linalg.norm(y[r]), lambda r: y[r] / np.linalg.norm(y[r])),
        "correlation": (lambda r: y[r] @ mask[r], lambda r: mask[r]),
    }
    for kind, (f, grad) in cases.items():
        pool = seed_pooling(kind=kind, **({"mask": mask} if kind == "correlation" else {}))
        t, g = pool.pool(y)
        np.testing.assert_allclose(t, [f(r) for r in regions], err_msg=kind)
        np.testing.assert_allclose(g, np.concatenate([grad(r) for r in regions]), err_msg=kind)
    pool = seed_pooling(kind="subsample", retain=[2, 1, 3])  # 1-based positions, like the regions
    t, g = pool.pool(y)
    np.testing.assert_array_equal(t, [y[1], y[2], y[11]])
    np.testing.assert_array_equal(g, [0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1])


def test_lp_pooling_prob_47_163():
    y = np.array([1.0, -2.0, 3.0, 0.5])
    pool = Pooling.from_regions([[0, 1, 2, 3]], 4, kind="lp", p=3)
    t, g = pool.pool(y)
    norm = np.sum(np.abs(y) ** 3) ** (1 / 3)
    np.testing.assert_allclose(t, [norm])
    np.testing.assert_allclose(g, np.sign(y) * np.abs(y) ** 2 / norm ** 2)


def test_max_ties_go_to_the_first_index():
    pool = Pooling.from_regions([[3, 1, 2], [0]], 4, kind="max")
    t, g = pool.pool(np.array([0.0, 5.0, 7.0, 7.0]))
    np.testing.assert_array_equal(t, [7.0, 0.0])
    np.testing.assert_array_equal(g, [1, 0, 0, 1])      # entry 3 comes first in region order


def test_max_ties_in_equal_windows_go_to_the_first_index():
    pool = Pooling.windows(6, 2, kind="max")
    t, g = pool.pool(np.array([[3.0, 1.0], [3.0, 1.0], [1.0, 2.0], [2.0, 2.0], [5.0, 0.0], [4.0, 0.0]]))
    np.testing.assert_array_equal(t, [[3, 1], [2, 2], [5, 0]])
    np.testing.assert_array_equal(g, [[1, 1], [0, 0], [0, 1], [1, 0], [1, 1], [0, 0]])


def _lp_reference(y, p, dps=60):
    """``t = ||y||_p`` and ``g = sign(y) |y|^(p-1) / t^(p-1)`` of one region in mpmath, to ``dps`` digits."""
    import mpmath

    with mpmath.workdps(dps):
        ys = [mpmath.mpf(float(v)) for v in y]
        t = mpmath.fsum(abs(v) ** p for v in ys) ** (mpmath.mpf(1) / p)
        g = [mpmath.sign(v) * abs(v) ** (p - 1) / t ** (p - 1) if t != 0 else mpmath.mpf(0) for v in ys]
        return float(t), np.array([float(v) for v in g])


def test_lp_pooling_does_not_overflow_the_issue_example():
    # Unscaled, sum |y|^400 = 10^400 is inf in float64: t was inf and g NaN.
    t, g = Pooling.windows((4,), 2, kind="lp", p=400).pool(np.array([10.0, 1, 1, 1]))
    assert np.all(np.isfinite(t)) and np.all(np.isfinite(g))
    for r in range(2):
        t_ref, g_ref = _lp_reference([10.0, 1, 1, 1][2 * r:2 * r + 2], 400)
        np.testing.assert_allclose(t[r], t_ref, rtol=1e-14)
        np.testing.assert_allclose(g[2 * r:2 * r + 2], g_ref, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("p, scale", [(400.0, 1.0), (2.0, 1e200), (2.0, 1e-200), (3.0, 1e120), (57.5, 1e5),
                                      (1.0, 1e300), (9.0, 1e-40)])
def test_lp_pooling_matches_high_precision_at_extreme_values(p, scale):
    rng = np.random.default_rng(int(p * 7) + int(np.log10(scale)) + 400)
    y = rng.standard_normal(12) * scale                      # signs of both kinds
    regions = [[0, 1, 2], [3, 4, 5, 6], [7, 8], [9, 10, 11]]
    kind, extra = ("l2", {}) if p == 2.0 else ("lp", {"p": p})
    t, g = Pooling.from_regions(regions, 12, kind=kind, **extra).pool(y)
    for r, region in enumerate(regions):
        t_ref, g_ref = _lp_reference(y[region], p)
        np.testing.assert_allclose(t[r], t_ref, rtol=1e-13)
        np.testing.assert_allclose(g[sum(map(len, regions[:r])):][:len(region)], g_ref, rtol=1e-11, atol=1e-300)


@pytest.mark.parametrize("p, scale", [(400.0, 10.0), (2.0, 1e200), (3.0, 1e120), (25.0, 1.0)])
def test_lp_gradient_vector_equals_central_differences(p, scale):
    rng = np.random.default_rng(3)
    y = rng.standard_normal(6) * scale
    kind, extra = ("l2", {}) if p == 2.0 else ("lp", {"p": p})
    pool = Pooling.windows((6,), 3, kind=kind, **extra)
    _, g = pool.pool(y)
    fd = np.zeros(6)
    for i in range(6):
        h = 1e-6 * abs(y[i])
        up, down = y.copy(), y.copy()
        up[i] += h
        down[i] -= h
        fd[i] = (pool.pool(up)[0][i // 3] - pool.pool(down)[0][i // 3]) / (2 * h)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kind,extra", [("l2", {}), ("lp", {"p": 2.5})])
def test_zero_region_has_zero_gradient(kind, extra):
    pool = Pooling.windows(4, 2, kind=kind, **extra)
    t, g = pool.pool(np.array([0.0, 0.0, 3.0, 4.0]))
    assert t[0] == 0 and np.all(np.isfinite(g))
    np.testing.assert_array_equal(g[:2], [0.0, 0.0])


def test_subsample_random_is_seeded():
    a = Pooling.windows((6, 6), 3, kind="subsample", retain="random", rng=7)
    b = Pooling.windows((6, 6), 3, kind="subsample", retain="random", rng=7)
    np.testing.assert_array_equal(a.retain, b.retain)
    assert a.retain.min() >= 0 and a.retain.max() < 9


def test_correlation_mask_in_window_shape():
    m = np.array([[1.0, 2.0], [3.0, 4.0]])
    pool = Pooling.windows((4, 4), 2, kind="correlation", mask=m)
    t, _ = pool.pool(vec(SLIDE_MAP))
    expected = [[np.sum(SLIDE_MAP[i:i + 2, j:j + 2] * m) for j in (0, 2)] for i in (0, 2)]
    np.testing.assert_allclose(unvec(t, (2, 2)), expected)


def test_drop_remainder_gives_zero_sensitivity_and_square_T():
    pool = Pooling.windows((5, 5), 2, kind="max", drop_remainder=True)
    assert pool.P_out == 4 and pool.dropped.size == 9
    T = pool.permutation()
    np.testing.assert_array_equal((T @ T.T).toarray(), np.eye(25))
    y = np.random.default_rng(1).permutation(25).astype(float)
    t, g = pool.pool(y)
    sens = pool.permute_adjoint(pool.upv(np.ones(4), g))
    assert np.all(sens[pool.dropped] == 0) and sens.sum() == 4


def test_identity_pooling():
    pool = Pooling.identity((3, 2))
    y = np.arange(6.0)
    t, g = pool.pool(y)
    np.testing.assert_array_equal(t, y)
    np.testing.assert_array_equal(pool.permute_adjoint(pool.upv(2 * y, g)), 2 * y)


def test_upv_47_1200():
    pool = seed_pooling(kind="mean")
    t, g = pool.pool(np.arange(12.0))
    up = pool.upv(np.array([4.0, 5.0, 6.0]), g)
    np.testing.assert_allclose(up, np.concatenate([np.full(4, 1.0), np.full(5, 1.0), np.full(3, 2.0)]))


def test_sample_columns_match_single_vectors():
    rng = np.random.default_rng(2)
    Y = rng.standard_normal((12, 4))
    for kind, kw in [("max", {}), ("l2", {}), ("mean", {}), ("lp", {"p": 3}), ("subsample", {"retain": 1})]:
        pool = seed_pooling(kind=kind, **kw)
        t, g = pool.pool(Y)
        for n in range(4):
            tn, gn = pool.pool(Y[:, n])
            np.testing.assert_allclose(t[:, n], tn)
            np.testing.assert_allclose(g[:, n], gn)


# ---------------------------------------------------------------- chain rule against finite differences
KINDS = [("mean", {}), ("max", {}), ("l2", {}), ("lp", {"p": 3.0}), ("correlation", {"mask": "random"}),
         ("subsample", {"retain": "random", "rng": 3})]


@st.composite
def pooling_cases(draw):
    kind, kw = draw(st.sampled_from(KINDS))
    sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    P = sum(sizes) + draw(st.integers(0, 2))
    perm = draw(st.permutations(range(P)))
    regions, start = [], 0
    for s in sizes:
        regions.append(list(perm[start:start + s]))
        start += s
    kw = dict(kw)
    if kw.get("mask") == "random":
        kw["mask"] = np.random.default_rng(P).standard_normal(P)
    return Pooling.from_regions(regions, P, kind=kind, drop_remainder=True, **kw)


@settings(max_examples=80, deadline=None)
@given(pooling_cases(), st.integers(0, 2**32 - 1))
def test_chain_equals_finite_differences(pool, seed):
    rng = np.random.default_rng(seed)
    # distinct values, well away from each other and from 0 (so argmax and |y| are smooth)
    y = rng.permutation(pool.P) + 1.0 + rng.uniform(0, 0.1, pool.P)
    y *= rng.choice([-1.0, 1.0], pool.P)
    v = rng.standard_normal(pool.P_out)
    _, g = pool.pool(y)
    analytic = pool.permute_adjoint(pool.upv(v, g))
    eps = 1e-6
    numeric = np.empty(pool.P)
    for i in range(pool.P):
        e = np.zeros(pool.P)
        e[i] = eps
        numeric[i] = (v @ pool.pool(y + e)[0] - v @ pool.pool(y - e)[0]) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)


@settings(max_examples=40, deadline=None)
@given(pooling_cases())
def test_T_is_a_permutation(pool):
    T = pool.permutation()
    np.testing.assert_array_equal((T @ T.T).toarray(), np.eye(pool.P))
    np.testing.assert_array_equal((T.T @ T).toarray(), np.eye(pool.P))


# ---------------------------------------------------------------- bad input
BAD = [
    (lambda: Pooling.from_regions([[0, 1], [1, 2]], 3), ValueError, r"overlap at entries \[1\]"),
    (lambda: Pooling.from_regions([[0, 0, 1]], 2), ValueError, "more than once"),
    (lambda: Pooling.from_regions([[0, 1]], 3), ValueError, "uncovered"),
    (lambda: Pooling.from_regions([[0, 3]], 3), ValueError, "outside"),
    (lambda: Pooling.from_regions([[0, -1]], 3), ValueError, "outside"),
    (lambda: Pooling.from_regions([], 3), ValueError, "at least one region"),
    (lambda: Pooling.from_regions([[]], 3), ValueError, "non-empty"),
    (lambda: Pooling.from_regions([[0.0, 1.0]], 2), TypeError, "integers"),
    (lambda: Pooling.from_regions([[0, 1]], 2, kind="median"), ValueError, "kind must be one of"),
    (lambda: Pooling.from_regions([[0, 1]], 2, kind="lp"), ValueError, "exponent p"),
    (lambda: Pooling.from_regions([[0, 1]], 2, kind="lp", p=0.5), ValueError, "p must be"),
    (lambda: Pooling.from_regions([[0, 1]], 2, kind="correlation"), ValueError, "needs mask"),
    (lambda: Pooling.from_regions([[0, 1]], 2, kind="correlation", mask=[1.0]), ValueError, "mask must have shape"),
    (lambda: Pooling.from_regions([[0, 1]], 2, kind="max", mask=[1.0, 2.0]), ValueError, "only used with"),
    (lambda: Pooling.from_regions([[0, 1]], 2, kind="subsample", retain=2), ValueError, "outside region"),
    (lambda: Pooling.windows((5, 5), 2), ValueError, "does not tile"),
    (lambda: Pooling.from_regions([[1, 2]], 2, one_based="no"), TypeError, "one_based must be True or False"),
    (lambda: Pooling.from_regions([[1, 2]], 2, one_based=1), TypeError, "one_based must be True or False, got int"),
    (lambda: Pooling.from_regions([[0]], 2, drop_remainder="yes"), TypeError, "drop_remainder must be True"),
    (lambda: Pooling.windows(4, 2, kind="subsample", retain="random", rng="abc"), TypeError,
     "rng must be None, a non-negative integer seed or a numpy Generator, got str 'abc'"),
    (lambda: Pooling.windows(4, 2, kind="subsample", retain="random", rng=-1), ValueError, "rng must be a non-neg"),
    (lambda: Pooling.windows((5, 5), 2, drop_remainder=1), TypeError, "drop_remainder must be True or False"),
    (lambda: Pooling.windows((4, 4), 0), ValueError, "window"),
    (lambda: Pooling.windows((4, 4), 1.5), TypeError, "window"),
    (lambda: Pooling.windows((4, 4), 5), ValueError, "larger than"),
    (lambda: Pooling.windows(4, 2).pool(np.ones(3)), ValueError, r"y must have shape \(4,\)"),
    (lambda: Pooling.windows(4, 2).pool(np.array([1.0, np.nan, 0, 0])), ValueError, "finite"),
    (lambda: Pooling.windows(4, 2).pool(np.array([1.0, np.inf, 0, 0])), ValueError, "finite"),
    (lambda: Pooling.windows(4, 2).upv(np.ones(3), np.ones(4)), ValueError, r"v must have shape \(2,\)"),
    (lambda: Pooling.windows(4, 2).permute_adjoint(np.ones(5)), ValueError, "y_o must have shape"),
]


@pytest.mark.parametrize("call,error,match", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()
