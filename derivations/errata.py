"""Errata of the sources, each confirmed by machine.

The sources are cited by the labels of SOURCES.md (002 is the book; 001, 000,
003 and 004 the other texts). Every :class:`Erratum` says where it is, what is
printed and what is right, and carries a test that evaluates both forms on a
concrete case and returns ``(printed holds, corrected holds, detail)``; the
detail shows the printed value next to the right one. The erratum is
*confirmed* when the printed form fails and the corrected form holds. Where
the error is a size (47.1210, 47.1223, 47.1256, 47.1275), the value compared
is the size the printed form gives on the concrete case, against the size of
the object the library builds. Several tests reuse the checkers that prove the
corrected results elsewhere in :mod:`derivations`, fed the printed variant.

>>> confirm(ERRATA[0])
(True, 'printed fails, corrected holds')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.signal
import sympy

import partitionnet as pn
from partitionnet import layers as _layers
from partitionnet import symbolic as _sym

from . import backprop, convolution_chapter as ch8, lecture_notes as notes, pooling, training
from ._check import Check, Claim, module_main, same_matrix


@dataclass(frozen=True)
class Erratum:
    location: str
    printed: str
    corrected: str
    test: Callable[[], tuple]   # -> (printed holds, corrected holds) or (printed, corrected, detail)


def same_list(xs, ys) -> bool:
    return len(xs) == len(ys) and all(same_matrix(x, y) for x, y in zip(xs, ys))


def holds(fn: Callable, *args) -> bool:
    """Evaluate a claim; a form that cannot be evaluated (wrong shapes, indices, regions) does not hold."""
    try:
        out = fn(*args)
    except (sympy.ShapeError, ValueError, IndexError):
        return False
    return bool(out[0] if isinstance(out, tuple) else out)


# ---------------------------------------------------------------------- helpers for value checks
def numeric_gradient(fn: Callable, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``fn`` at ``x`` (any shape), one entry at a time."""
    x = np.asarray(x, dtype=float)
    grad = np.zeros_like(x)
    for k in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[k] = h
        grad[k] = (fn(x + e) - fn(x - e)) / (2 * h)
    return grad


def close(a, b, tol: float = 1e-6) -> bool:
    """Same shape and the same values to ``tol`` (relative to the larger entry); no broadcasting."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(b).max(initial=0))))


def _fmt(a) -> str:
    return " ".join(np.array2string(np.round(np.asarray(a, dtype=float), 4), separator=", ", threshold=12).split())


# ---------------------------------------------------------------------- the book, 002
#: The matrix printed in (47.1201): 11 rows, e_8 twice, e_9 and e_11 missing, last block e_10, e_11, e_12.
PRINTED_1201 = [[int(j == k - 1) for j in range(12)] for k in (1, 2, 4, 8, 3, 5, 7, 8, 10, 11, 12)]


def t_1201():
    return (holds(pooling.check_permutation, PRINTED_1201, pooling.BOOK_REGIONS, 12),
            holds(pooling.check_book_permutation))


#: The b-indices printed in the middle column of (47.1259).
PRINTED_1259 = [1, 1, 2, 2, 1, 2, 3, 2, 1, 2, 3, 2]


def t_1259():
    return (holds(backprop.check_book_upsampling, PRINTED_1259),
            holds(backprop.check_book_upsampling, backprop.BOOK_P_OF_J))


def t_theta_sign():
    printed = {"dense1.theta": lambda theta, term, mu, rho: theta - mu * term}
    return holds(training.check_update_rules, printed), holds(
        training.check_update_rules, {"dense1.theta": training.UPDATES["dense1.theta"]})


def t_mu_mu():
    printed = {"dense1.W": lambda W, term, mu, rho: (1 - 2 * mu * rho) * W - mu * mu * term}
    return holds(training.check_update_rules, printed), holds(
        training.check_update_rules, {"dense1.W": training.UPDATES["dense1.W"]})


def t_w1_columns():
    return (holds(backprop.check_last_layer, lambda W1, d, P_out: W1),
            holds(backprop.check_last_layer, backprop.book_columns))


def t_missing_1_over_n():
    def listing(name, param, terms):      # (47.1275): 2ρW + Σ_n, no 1/N
        return 2 * training.REGULARISED.get(name, 0) * param + terms[0] + terms[1]
    return (holds(training.check_risk_gradient, training.risk_1229, listing),
            holds(training.check_risk_gradient, training.risk_1229, training.expected_1229))


def t_range_1213():
    """(47.1213) on a concrete layer: D_c = 2 maps in, D_{c+1} = 3 maps out, map j feeding map d where
    ``table[j, d]``; each printed map is built on the library's H and compared with scipy.signal."""
    rng = np.random.default_rng(1213)
    D_c, D_next, kernel = 2, 3, (2, 2)
    t = rng.standard_normal((D_c, 4, 5))
    w, theta = rng.standard_normal((D_c, D_next) + kernel), rng.standard_normal((D_c, D_next))
    table = np.array([[True, False, True], [True, True, True]])
    part = pn.Partition.sliding_window(t.shape[1:], kernel)
    H = [part.patches(pn.vec(t[j])) for j in range(D_c)]                      # S x P (47.1211)

    def maps(last_d):                      # y^(d,c+1) of (47.1213) for d = 1, ..., last_d
        return [np.tanh(sum(H[j].T @ pn.vec(w[j, d]) - theta[j, d] for j in range(D_c) if table[j, d]))
                for d in range(last_d)]
    reference = [np.tanh(sum(pn.vec(scipy.signal.correlate(t[j], w[j, d], "valid")) - theta[j, d]
                             for j in range(D_c) if table[j, d])) for d in range(D_next)]

    def same(found):
        return len(found) == D_next and all(close(a, b) for a, b in zip(found, reference))
    printed = maps(D_c)
    return same(printed), same(maps(D_next)), (
        f"d = 1..D_c gives {len(printed)} maps; map 3 = {_fmt(reference[2])} is never computed")


def t_shape_1223a():
    """(47.1223a) evaluated on a library layer (S_c = 4, D_{c-1} = 2 input maps, D_c = 3 maps): col{w_1^(d,c),
    w_2^(d,c)} stacks the masks of map d; with H_{n,c-1} of (47.1225) the pre-activation is
    z^(d,c) = H_{n,c-1}^T col{...} - Σ_j θ^(d,c)(j) 1, compared with the library's forward pass. The printed
    size 1 x S_c D_{c-1} is compared with the size of the evaluated col{}, a column as (47.1224a) needs."""
    net = pn.Network((5, 4), 2, [_layers.Correlation(3, kernel=2)], rng=0)
    W_c, Theta = net.parameters()["conv1.W"], net.parameters()["conv1.Theta"]
    x = np.random.default_rng(1223).standard_normal((1, 2, 5, 4))
    z_library = net.forward(x)[0]
    part = pn.Partition.sliding_window((5, 4), 2)
    H = np.vstack([part.patches(pn.vec(x[0, j])) for j in range(2)])           # H_{n,c-1}, S D_{c-1} x P
    S, D_prev, D_c = 4, 2, 3
    col = [np.concatenate([W_c[j * S:(j + 1) * S, d] for j in range(D_prev)])[:, None] for d in range(D_c)]
    z = [(H.T @ col[d])[:, 0] - Theta[:, d].sum() for d in range(D_c)]
    values = all(close(z[d], pn.vec(z_library[d])) for d in range(D_c))
    printed, corrected = (1, S * D_prev), (S * D_prev, 1)
    return (col[0].shape == printed, col[0].shape == corrected and values,
            f"col{{w_1, w_2}} is {col[0].shape[0]} x {col[0].shape[1]}; printed {printed[0]} x {printed[1]}")


def _operator(rows: Callable, S_ones: Callable) -> Callable:
    """(47.1257) with the sizes of its two all-ones factors chosen by the caller."""
    def build(part, w):
        mask = _sym.kron(_sym.ones(rows(part.M), part.P), sympy.SparseMatrix(w.T))
        return _sym.hadamard(part.to_sympy().T, mask) * _sym.kron(_sym.eye(part.P), _sym.ones(S_ones(w.rows), 1))
    return build


def t_s_index():
    """Layer c correlates with 3 x 3 masks (S_c = 9); V_c cuts t^(d,c) into 2 x 2 windows (S_{c+1} = 4).
    The printed sizes are evaluated against the library's V_c, and (47.1257) with 1_{S_{c+1}} is proved
    equal to the transposed Jacobian; with 1_{S_c} its right factor has the wrong number of rows."""
    pair = backprop.layer_pairs()[1]
    S_c, S_next, P_next = 9, pair.part.S, pair.part.P
    rows = pair.part.matrix().shape[0]
    printed_rows = P_next * S_c                                  # "V_c of size P_{c+1} S_c x P'_c"
    printed = _operator(lambda P_out: P_out, lambda S_next: S_c)
    corrected = _operator(lambda P_out: P_out, lambda S_next: S_next)
    printed_ok = printed_rows == rows and holds(backprop.operator_matches_jacobian, pair, printed)
    return (printed_ok, holds(backprop.operator_matches_jacobian, pair, corrected),
            f"V_c has {rows} rows = P_(c+1) S_(c+1) = {P_next} x {S_next}; printed P_(c+1) S_c = {printed_rows}, "
            f"and I ⊗ 1_(S_c) has {printed_rows} rows against the {rows} columns of V_c^T")


def t_listing_p_c():
    """P_c = 24 entries pooled to P'_c = 6: the factor 1_{P_c} 1_{P_{c+1}}^T of the listing is evaluated and
    its size set against V_c^T of the library; (47.1257) with 1_{P'_c} is the shipped operator, proved."""
    pair = backprop.layer_pairs()[1]
    Vt_rows = pair.part.matrix().shape[1]                        # V_c^T is P'_c x P_{c+1} S_{c+1}
    ones_rows = _sym.ones(pair.pool.P, pair.part.P).shape[0]     # 1_{P_c} 1_{P_{c+1}}^T as printed
    printed = _operator(lambda P_out: pair.pool.P, lambda S: S)
    printed_ok = ones_rows == Vt_rows and holds(backprop.operator_matches_jacobian, pair, printed)
    return (printed_ok, holds(backprop.operator_matches_jacobian, pair, backprop.shipped_operator),
            f"1_(P_c) 1^T has {ones_rows} rows, V_c^T has {Vt_rows} (= P'_c): the Hadamard product is undefined")


def t_count_1166():
    """The parameters of the library's layer: 30 maps, 9 x 9 masks ('same') on a 64 x 64 image, one bias per
    map, against the printed count 30 x (2K + 2) = 300 and the corrected 30 x ((2K+1)^2 + 1) = 2460."""
    K, D = 4, 30
    net = pn.Network((64, 64), 1, [_layers.Correlation(D, kernel=2 * K + 1, padding="same", bias="tied")], rng=0)
    counted = sum(v.size for v in net.parameters().values())
    printed, corrected = D * (2 * K + 2), D * ((2 * K + 1) ** 2 + 1)
    return printed == counted, corrected == counted, f"library: {counted}; printed {printed}; corrected {corrected}"


def t_gaussian():
    x, y = sympy.symbols("x y", real=True)
    sigma = sympy.Symbol("sigma", positive=True)
    kernel = sympy.exp(-(x ** 2 + y ** 2) / (2 * sigma ** 2))
    mass = sympy.integrate(kernel, (x, -sympy.oo, sympy.oo), (y, -sympy.oo, sympy.oo))      # 2π σ^2
    return (sympy.simplify(mass / (sympy.sqrt(2 * sympy.pi) * sigma ** 2)) == 1,
            sympy.simplify(mass / (2 * sympy.pi * sigma ** 2)) == 1)


def t_label_1149():
    part = pn.Partition.from_indices([[1, 4, 6], [2, 5, 4], [3, 6, 1], [2, 4, 1]], 6, one_based=True)
    return part.matrix().shape == (part.P, part.M), part.matrix().shape == (part.P * part.S, part.M)


def t_hadamard_1180():
    """A 3 x 3 patch and mask: the library's correlation pooling t against H ⊙ M (printed) and 1^T (H ⊙ M) 1."""
    H = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0], [2.0, 0.0, 1.5]])
    M = np.array([[0.2, 0.0, -1.0], [1.0, 0.5, 0.0], [0.0, 2.0, 1.0]])
    t, _ = pn.Pooling.windows((3, 3), 3, kind="correlation", mask=M).pool(pn.vec(H))
    printed, corrected = H * M, np.atleast_1d(np.ones(3) @ (H * M) @ np.ones(3))
    return close(printed, t), close(corrected, t), f"t = {t[0]:.4g}; printed H ⊙ M = {_fmt(printed)}"


# ---------------------------------------------------------------------- the convolution chapter, 001
def t_range_839():
    """H^n = 2 input maps, H^m = 3 output maps: (8.39) sums h only up to H^n."""
    A, LW, dLZ, F = ch8.weight_layer(H_n=2, H_m=3)
    grad = [Al.applyfunc(lambda v: sympy.diff(F, v)) for Al in A]
    printed = ch8.input_gradient(dLZ[:2], LW[:2], ch8.rot180)
    corrected = ch8.input_gradient(dLZ, LW, ch8.rot180)
    return same_list(grad, printed), same_list(grad, corrected)


def t_formula_845():
    """As printed: for fixed h, Σ over the input maps l of (rot180 LW^{h,l}) ⊗ dLZ^h with ⊗ the 'valid'
    correlation of (8.13); right: Σ over h of the 'full' correlation."""
    A, LW, dLZ, F = ch8.weight_layer(H_n=2, H_m=3)
    grad = [Al.applyfunc(lambda v: sympy.diff(F, v)) for Al in A]
    printed = [sum((ch8.correlate_813(ch8.rot180(LW[0][k]), dLZ[0]) for k in range(len(A))),
                   sympy.zeros(*ch8.correlate_813(LW[0][0], dLZ[0]).shape)) for _ in A]
    corrected = ch8.input_gradient(dLZ, LW, ch8.rot180)
    return same_list(grad, printed), same_list(grad, corrected)


def t_floor_818():
    R, r, pad, stride = 16, 3, 1, 2
    actual = pn.Partition.sliding_window((R,), r, stride=stride, padding=pad).output_shape[0]
    scipy_size = scipy.signal.correlate(np.pad(np.ones(R), pad), np.ones(r), "valid")[::stride].size
    return ch8.output_size(R, r, pad, stride) == actual, notes.floor_size(R, r, pad, stride) == actual == scipy_size


def t_left_p82():
    impulse = {(0, 0): 1}
    return ch8.shift(impulse, -1, 1) == ch8.P82_KERNEL, ch8.shift(impulse, 1, 1) == ch8.P82_KERNEL


# ---------------------------------------------------------------------- lecture notes 003, 000 and slides 004
def t_sum_003():
    """f(i) = Σ_{k=0}^{l-1} x(i+k) a(l-k) (1-based), rewritten as a sum over j printed from l to l."""
    n, l = 6, 3
    x, a = sympy.symbols(f"x1:{n + 1}"), sympy.symbols(f"a1:{l + 1}")
    f = [sum(x[i + k - 1] * a[l - k - 1] for k in range(l)) for i in range(1, n - l + 2)]

    def rewrite(lo):
        return [sum(x[i + l - j - 1] * a[j - 1] for j in range(lo, l + 1)) for i in range(1, n - l + 2)]
    valid = list(notes.convolve_valid(np.array(x, dtype=object), np.array(a, dtype=object)))
    return rewrite(l) == f, rewrite(1) == f == valid


def t_jacobian_003():
    x = sympy.Matrix(sympy.symbols("x0:3"))
    A = sympy.Matrix(_sym.grid("A", (2, 3)))
    f = A * x
    printed = sympy.Matrix(2, 3, lambda i, j: sympy.diff(f[i], x[i]))
    corrected = sympy.Matrix(2, 3, lambda i, j: sympy.diff(f[i], x[j]))
    return printed == A, corrected == A


def t_average_004():
    printed = [[3.75, 1.25], [4, 2]]
    actual = notes.pooled(notes.SLIDES_MAP, "mean")
    return np.array_equal(actual, printed), np.array_equal(actual, [[3.75, 1.25], [3.75, 2]])


def t_cross_correlation_004():
    rng = np.random.default_rng(9)
    I, K = rng.standard_normal((5, 4)), rng.standard_normal((2, 3))
    correlation = scipy.signal.correlate(I, K, "full")          # Σ I(i+m, j+n) K(m, n)
    return (np.allclose(correlation, scipy.signal.convolve(I, K, "full")),
            np.allclose(correlation, scipy.signal.convolve(I, K[::-1, ::-1], "full")))


def t_range_000_16():
    """(16): x * w[i, j] = Σ_{r,s} x[i+r, j+s] w[R-1-r, S-1-s], printed for j in [J+S-1]. The input is read
    as zero beyond its edge so every printed index has a value; scipy.signal.convolve(.., 'valid') decides."""
    x, w = np.arange(20.0).reshape(4, 5), np.array([[1.0, -2.0], [0.5, 3.0]])
    (I, J), (R, S) = x.shape, w.shape
    xz = np.pad(x, ((0, R), (0, 2 * S)))

    def conv(j_count):
        return np.array([[sum(xz[i + r, j + s] * w[R - 1 - r, S - 1 - s] for r in range(R) for s in range(S))
                          for j in range(j_count)] for i in range(I - R + 1)])
    reference = scipy.signal.convolve(x, w, "valid")
    printed = conv(J + S - 1)
    return close(printed, reference), close(conv(J - S + 1), reference), (
        f"printed gives {printed.shape}, with extra columns {_fmt(printed[:, J - S + 1:])}; valid is {reference.shape}")


def t_regions_000_23():
    """(23): A_x[i, j] = {x[p, q] : iR <= p <= (i+1)R, jS <= q <= (j+1)S}, max-pooled on a 4 x 6 map with
    R = S = 2, against the library's 2 x 2 max pooling."""
    x = np.arange(24.0).reshape(4, 6) ** 1.5
    (I, J), R, S = x.shape, 2, 2
    t, _ = pn.Pooling.windows(x.shape, (R, S), kind="max").pool(pn.vec(x))
    library = pn.unvec(t, (I // R, J // S))

    def pooled(upper):
        return np.array([[max(x[p, q] for p in range(I) for q in range(J)
                              if i * R <= p and upper(p, (i + 1) * R) and j * S <= q and upper(q, (j + 1) * S))
                          for j in range(J // S)] for i in range(I // R)])
    printed = pooled(lambda v, b: v <= b)
    return close(printed, library), close(pooled(lambda v, b: v < b), library), (
        f"printed {_fmt(printed)}; library {_fmt(library)}")


# ---------------------------------------------------------------------- more errata of the book, 002
def t_delta_C():
    """The listing (47.1275)/(47.1276) on a network with C = 1: the loop c = C-1, ..., 1 is empty, so the
    printed listing never sets Δ_{n,C} and Σ_n (1^T ⊗ H) Δ_{n,C} has no terms; SymPy's derivative of the
    risk decides. Corrected: set Δ_{n,C} = diag{δ^(1,C), ..., δ^(D_C,C)} right after δ^(d,C)."""
    def printed(name, param, terms):
        if name.startswith("conv"):                       # the W_C and Θ_C lines read the unset Δ_{n,C}
            return 2 * training.REGULARISED.get(name, 0) * param
        return training.expected_1229(name, param, terms)
    return (holds(training.check_risk_gradient, training.risk_1229, printed),
            holds(training.check_risk_gradient, training.risk_1229, training.expected_1229),
            "without Δ_(n,C) the gradients of W_C and Θ_C lose their data term")


def t_columns_1221g():
    """(47.1221g) on a dense layer with n_ℓ = 3 nodes in and n_{ℓ+1} = 2 out: the columns w_i of W_ℓ are the
    weights leaving node i of layer ℓ (47.1221a-b); z = W_ℓ y - θ with the printed columns w_1 .. w_{n_{ℓ+1}}
    against the sum Σ_i w_ij y(i) - θ(j) over all nodes i."""
    rng = np.random.default_rng(1221)
    n_l, n_next = 3, 2
    w = {(i, j): rng.standard_normal() for i in range(n_l) for j in range(n_next)}   # w_ij, (47.1221a)
    theta, y = rng.standard_normal(n_next), rng.standard_normal(n_l)
    direct = np.array([sum(w[i, j] * y[i] for i in range(n_l)) - theta[j] for j in range(n_next)])
    columns = [np.array([w[i, j] for j in range(n_next)]) for i in range(n_l)]       # w_i^(ℓ), (47.1221b)

    def z(last):
        return np.column_stack(columns[:last]) @ y[:last] - theta
    return close(z(n_next), direct), close(z(n_l), direct), f"printed z = {_fmt(z(n_next))}; z = {_fmt(direct)}"


# ---------------------------------------------------------------------- the smaller typos of the book, 002
def t_scalar_1189():
    """(47.1189) at one position p of an RGB layer: f(Σ_j ([h_p^(j)]^T w_j - θ(j) 1)) with 1 the all-ones
    vector of (47.1161) is a vector; the library's y(p) is a number, as (47.1164) writes without the 1."""
    rng = np.random.default_rng(1189)
    x, w, theta = rng.standard_normal((3, 4, 4)), rng.standard_normal((3, 3, 3)), rng.standard_normal(3)
    part = pn.Partition.sliding_window((4, 4), 3, padding="same")
    H = [part.patches(pn.vec(x[j])) for j in range(3)]
    y = np.tanh(sum(H[j].T @ pn.vec(w[j]) - theta[j] for j in range(3)))      # the library's H^T w, (47.1161)
    p = 5
    printed = np.tanh(sum(H[j][:, p] @ pn.vec(w[j]) - theta[j] * np.ones(part.P) for j in range(3)))
    corrected = np.atleast_1d(np.tanh(sum(H[j][:, p] @ pn.vec(w[j]) - theta[j] for j in range(3))))
    return close(printed, y[p:p + 1]), close(corrected, y[p:p + 1]), (
        f"printed y(p) has {printed.size} entries; y(p) = {y[p]:.4g}")


def t_index_1221e():
    """(47.1221e) "z_ℓ(n) = output of node j": on a batch of N = 2 samples through a 3-node layer, z_ℓ(n) with
    n = 0 (the sample index) is read against the pre-activation of node j = 2."""
    rng = np.random.default_rng(12211)
    W, theta, Y = rng.standard_normal((3, 4)), rng.standard_normal(3), rng.standard_normal((4, 2))
    Z = W @ Y - theta[:, None]                   # column n is z_{ℓ,n}
    n, j = 0, 2
    node_j = np.array([W[j] @ Y[:, n] - theta[j]])
    return close(Z[n:n + 1, n], node_j), close(Z[j:j + 1, n], node_j), (
        f"z_l(n) = {Z[n, n]:.4g}; node j: {node_j[0]:.4g}")


def t_half_width_1147d():
    """(47.1147d) "K = square dimension of the mask" with (47.1147a) S = (2K + 1)^2: for the library's 3 x 3
    'same' mask, K = 3 gives S = 49, the half-width K = 1 gives the library's S = 9."""
    part = pn.Partition.sliding_window((8, 8), 3, padding="same")
    printed_K, corrected_K = 3, (3 - 1) // 2
    return (2 * printed_K + 1) ** 2 == part.S, (2 * corrected_K + 1) ** 2 == part.S, (
        f"S = {part.S}; printed K gives {(2 * printed_K + 1) ** 2}")


def t_block_1220():
    """The text before (47.1220) names the second block "W_2^(2)": with D_C = 2 maps of P'_C = 2 entries and
    n_2 = n_3 = 4 nodes, z_2 = W_1^(1) t^(1) + block t^(2) - θ_1 against the library's z_2 = W_1 y_1 - θ_1."""
    rng = np.random.default_rng(1220)
    P, W1, W2, theta = 2, rng.standard_normal((4, 4)), rng.standard_normal((4, 4)), rng.standard_normal(4)
    t = [rng.standard_normal(P), rng.standard_normal(P)]
    net = pn.Network((4,), 1, [_layers.Flatten(), _layers.Dense(4)], rng=0)
    net.set_parameters({k: (W1 if k.endswith(".W") else theta.reshape(v.shape))
                        for k, v in net.parameters().items()})
    z2 = net.forward(np.concatenate(t)[None, None, :])[0]                        # y_1 = col{t^(1), t^(2)}

    def z(second):
        return W1[:, :P] @ t[0] + second[:, P:2 * P] @ t[1] - theta
    return close(z(W2), z2), close(z(W1), z2), f"with W_2^(2): {_fmt(z(W2))}; z_2 = {_fmt(z2)}"


def t_target_1256():
    """The text after (47.1256) says the matrix maps t^(d,c) (6 x 1) to z^(d',c) (4 x 1). On the pair of
    Fig. 47.99 (14 entries pooled to 6, the book's V_c), the library's operator maps into R^4, the size of
    z^(d',c+1); z^(d',c) has P_c = 14 entries."""
    pair = backprop.layer_pairs()[0]
    op = backprop.shipped_operator(pair.part, _sym.col("w", pair.part.S))
    z_next = pair.correlate(_sym.col("t", pair.pool.P_out), _sym.col("w", pair.part.S))
    size_c = pair.pool.P                                          # z^(d',c), before pooling
    return op.T.shape[0] == size_c, op.T.shape[0] == len(z_next), (
        f"operator is {op.shape[0]} x {op.shape[1]}; z^(d',c) has {size_c} entries, z^(d',c+1) {len(z_next)}")


def t_limit_1237():
    """(47.1237) sums p' up to P'_c. On a network whose first layer pools to P'_1 = 2 entries and whose last
    layer (C = 2) has z^(C) of 8 entries mean-pooled to P'_C = 4, reading c = 1 leaves terms out; central
    differences of z_2 = W_1 t^(C) - θ decide."""
    rng = np.random.default_rng(1237)
    P_first, pool = 2, pn.Pooling.windows((8,), 2, kind="mean")
    W1, theta, z = rng.standard_normal((3, pool.P_out)), rng.standard_normal(3), rng.standard_normal(8)

    def z2(v):
        return W1 @ pool.pool(np.tanh(v))[0] - theta
    jac = np.column_stack([numeric_gradient(lambda v: z2(v)[k], z) for k in range(3)]).T    # ∂z_2(k)/∂z(j)
    _, g = pool.pool(np.tanh(z))
    dt_dy = np.zeros((pool.P_out, 8))
    dt_dy[np.repeat(np.arange(pool.P_out), pool.sizes), pool.order] = g
    fprime = 1 - np.tanh(z) ** 2

    def summed(limit):
        return sum(np.outer(W1[:, p], dt_dy[p] * fprime) for p in range(limit))
    return close(summed(P_first), jac), close(summed(pool.P_out), jac), (
        f"p' <= P'_1 = {P_first} leaves columns {_fmt(summed(P_first)[0])} against {_fmt(jac[0])}")


def t_count_1216():
    """Before the listing (47.1216) the input's subvectors run over p = 1 = 2, ..., P_o; by (47.1211) and
    (47.1226) H^(d,0) has P_1 columns, the size of z^(d,1). On a 6 x 6 input with 3 x 3 'valid' masks the
    library's first layer has P_1 = 16 positions; reading P_o as the input's size gives 36."""
    part = pn.Partition.sliding_window((6, 6), 3)
    z = part.patches(pn.vec(np.arange(36.0))).T @ np.ones(part.S)
    printed, corrected = part.M, part.P
    return printed == z.size, corrected == z.size == part.patches(np.zeros(36)).shape[1], (
        f"z^(d,1) has {z.size} entries; P_o read as the input size: {printed}")


# ---------------------------------------------------------------------- 003
def t_sigma_prime_003():
    """003: ∂E/∂y^l = ∂E/∂y^{l+1} σ'(y^{l+1}) W^{l+1}, σ the logistic function, E = ½||y^{l+1} - e||^2, against
    central differences; the corrected form evaluates σ' at the pre-activation W^{l+1} y^l + c^{l+1}."""
    rng = np.random.default_rng(3003)
    W, c, e, y = rng.standard_normal((2, 3)), rng.standard_normal(2), rng.standard_normal(2), rng.standard_normal(3)

    def sigma(s):
        return 1 / (1 + np.exp(-s))

    def dsigma(s):
        return sigma(s) * (1 - sigma(s))

    def E(v):
        return 0.5 * np.sum((sigma(W @ v + c) - e) ** 2)
    out = sigma(W @ y + c)
    printed, corrected = ((out - e) * dsigma(out)) @ W, ((out - e) * dsigma(W @ y + c)) @ W
    fd = numeric_gradient(E, y)
    return close(printed, fd), close(corrected, fd), f"printed {_fmt(printed)}; differences {_fmt(fd)}"


def t_conv_gradients_003():
    """003's gradients of a convolution layer x_j^{l+1} = f(Σ_i x_i^l * a_ij + b_j), f = tanh, 2 maps in,
    3 out, with δ_j = ∂E/∂x_j^{l+1} as 003 defines it: printed ∂E/∂x_i^l = δ_j * a_ij(-.) 'full' and
    ∂E/∂a_ij = x̄_i * δ_j 'valid'; corrected: f'(net_j) ⊙ δ_j in both, summed over the output maps j for
    ∂E/∂x_i. Central differences decide."""
    rng = np.random.default_rng(3004)
    x, a, b = rng.standard_normal((2, 7)), rng.standard_normal((2, 3, 3)), rng.standard_normal(3)
    e = rng.standard_normal((3, 5))

    def net(x, a):
        return np.array([sum(np.convolve(x[i], a[i, j], "valid") for i in range(2)) + b[j] for j in range(3)])

    def E(x, a):
        return 0.5 * np.sum((np.tanh(net(x, a)) - e) ** 2)
    out = np.tanh(net(x, a))
    delta, fprime = out - e, 1 - out ** 2
    i, j = 0, 1

    def with_x(v):
        return E(np.vstack([v, x[1]]), a)

    def with_a(v):
        a2 = a.copy()
        a2[i, j] = v
        return E(x, a2)
    fd_x, fd_a = numeric_gradient(with_x, x[i]), numeric_gradient(with_a, a[i, j])
    printed_x = np.convolve(delta[j], a[i, j][::-1], "full")
    corrected_x = sum(np.convolve(fprime[k] * delta[k], a[i, k][::-1], "full") for k in range(3))
    printed_a = np.convolve(x[i][::-1], delta[j], "valid")
    corrected_a = np.convolve(x[i][::-1], fprime[j] * delta[j], "valid")
    return (close(printed_x, fd_x) or close(printed_a, fd_a), close(corrected_x, fd_x) and close(corrected_a, fd_a),
            f"∂E/∂x_1: printed {_fmt(printed_x)}, differences {_fmt(fd_x)}; "
            f"∂E/∂a_12: printed {_fmt(printed_a)}, differences {_fmt(fd_a)}")


# ---------------------------------------------------------------------- 000
def t_lags_000_9():
    """000 (9): (x ⋆ k)(i, j) = Σ_{m,n} x(m, n) k(i+m, j+n), evaluated at every lag on a 3 x 4 map and a 2 x 2
    kernel, against (18)/(26)/(37), Σ x[i+r, j+s] k[r, s], which is scipy.signal.correlate(x, k, 'full')."""
    rng = np.random.default_rng(9)
    x, k = rng.standard_normal((3, 4)), rng.standard_normal((2, 2))

    def at(a, i, j):
        return a[i, j] if 0 <= i < a.shape[0] and 0 <= j < a.shape[1] else 0.0
    lags = [(i, j) for i in range(-(k.shape[0] - 1), x.shape[0]) for j in range(-(k.shape[1] - 1), x.shape[1])]
    shape = (x.shape[0] + k.shape[0] - 1, x.shape[1] + k.shape[1] - 1)
    reference = scipy.signal.correlate(x, k, "full")
    printed = np.reshape([sum(x[m, n] * at(k, i + m, j + n) for m in range(3) for n in range(4)) for i, j in lags],
                         shape)
    corrected = np.reshape([sum(at(x, i + m, j + n) * k[m, n] for m in range(2) for n in range(2)) for i, j in lags],
                           shape)
    return close(printed, reference), close(corrected, reference), (
        f"printed is the correlation at the reversed lag: {_fmt(printed[0])} vs {_fmt(reference[0])}")


def t_commutative_000():
    """000, after (9): the correlation is called commutative and associative. Evaluated in 'full' mode on
    concrete 1-D signals: x ⋆ k against k ⋆ x, and (x ⋆ k1) ⋆ k2 against x ⋆ (k1 ⋆ k2); convolution passes both."""
    x, k1, k2 = np.array([1.0, -2.0, 0.5, 3.0, 1.0]), np.array([2.0, 1.0, -1.0]), np.array([0.5, -3.0])

    def laws(op):
        commutes = close(op(x, k1, "full"), op(k1, x, "full"))
        associates = close(op(op(x, k1, "full"), k2, "full"), op(x, op(k1, k2, "full"), "full"))
        return commutes and associates
    return laws(scipy.signal.correlate), laws(scipy.signal.convolve), (
        f"x ⋆ k1 = {_fmt(scipy.signal.correlate(x, k1, 'full'))}, "
        f"k1 ⋆ x = {_fmt(scipy.signal.correlate(k1, x, 'full'))}")


def t_flip_000_15():
    """000 (15): x * w[i] = x * w̃[i] = Σ_r x[i+r] w̃[r], w̃[r] = w[R-1-r]. The middle term, read with the
    notes' * (convolution, (12)), against the sum; the corrected middle term is the correlation x ⋆ w̃."""
    x, w = np.array([1.0, 4.0, -2.0, 0.5, 3.0, -1.0, 2.0]), np.array([1.0, -2.0, 0.5])
    wt = w[::-1]
    total = np.array([sum(x[i + r] * wt[r] for r in range(3)) for i in range(len(x) - 2)])
    left = scipy.signal.convolve(x, w, "valid")
    printed, corrected = scipy.signal.convolve(x, wt, "valid"), scipy.signal.correlate(x, wt, "valid")
    return (close(printed, total) and close(left, total), close(corrected, total) and close(left, total),
            f"x * w̃ = {_fmt(printed)}; Σ x[i+r] w̃[r] = {_fmt(total)}")


# ---------------------------------------------------------------------- 004
def t_summary_004():
    """004, summary slide: ∂L/∂F = "Convolution"(X, ∂L/∂O) and ∂L/∂X = "Full Convolution"(rot180 F, ∂L/∂O),
    for O = X ⋆ F ('valid' cross-correlation, as the slides compute it) and L = Σ G ⊙ O on a 4 x 5 input and
    a 2 x 3 filter. Read with the true convolution of the slides' first page both fail; read as correlation
    both hold. Central differences decide."""
    rng = np.random.default_rng(4004)
    X, F = rng.standard_normal((4, 5)), rng.standard_normal((2, 3))
    G = rng.standard_normal((3, 3))

    def loss_F(f):
        return np.sum(G * scipy.signal.correlate(X, f, "valid"))

    def loss_X(x):
        return np.sum(G * scipy.signal.correlate(x, F, "valid"))
    dF, dX = numeric_gradient(loss_F, F), numeric_gradient(loss_X, X)
    rot = F[::-1, ::-1]
    printed = close(scipy.signal.convolve(X, G, "valid"), dF) and close(scipy.signal.convolve(rot, G, "full"), dX)
    corrected = close(scipy.signal.correlate(X, G, "valid"), dF) and close(
        scipy.signal.correlate(np.pad(G, ((1, 1), (2, 2))), rot, "valid"), dX)
    return printed, corrected, f"true convolution gives ∂L/∂F = {_fmt(scipy.signal.convolve(X, G, 'valid'))}"


# ---------------------------------------------------------------------- 001
def t_average_837():
    """001 (8.37) and P8.4 call an unweighted sum "average pooling". (8.37): F = Σ c ⊙ (Z + b) on a 4 x 6 map,
    db by central differences, against the library's mean pooling over the whole map (printed) and the window
    sum (correlation pooling with a mask of ones, (8.22) with w = 1). P8.4: lz = lw ⊞(A) over 2 x 3 windows
    of a 4 x 6 map, F = Σ c ⊙ lz; dlw read with means against the sums."""
    rng = np.random.default_rng(837)
    c, Z, A = rng.standard_normal((4, 6)), rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    db = numeric_gradient(lambda b: np.sum(c * (Z + b[0])), np.zeros(1))

    def pooled(values, window, kind):
        options = {"mask": np.ones(window)} if kind == "correlation" else {}
        t, _ = pn.Pooling.windows(values.shape, window, kind=kind, **options).pool(pn.vec(values))
        return t
    c2 = rng.standard_normal(4)

    def dlw(kind):
        return np.atleast_1d(pooled(pn.unvec(c2 * pooled(A, (2, 3), kind), (2, 2)), (2, 2), kind)[0])
    fd_lw = numeric_gradient(lambda lw: np.sum(c2 * lw[0] * pooled(A, (2, 3), "correlation")), np.ones(1))
    printed = close(pooled(c, (4, 6), "mean"), db) or close(dlw("mean"), fd_lw)
    corrected = close(pooled(c, (4, 6), "correlation"), db) and close(dlw("correlation"), fd_lw)
    return printed, corrected, f"db = {db[0]:.4g}; the average gives {pooled(c, (4, 6), 'mean')[0]:.4g}"


ERRATA = [
    Erratum("47.1201", "T with 11 rows e1,e2,e4,e8 | e3,e5,e7,e8 | e10,e11,e12",
            "rows e1,e2,e4,e8 | e3,e5,e7,e9,e11 | e6,e10,e12, as the left side and (47.1203)", t_1201),
    Erratum("47.1259", "b-indices 1,1,2,2,1,2,3,2,1,2,3,2 next to ∂t/∂y",
            "1,1,2,1,2,3,2,1,2,3,2,3: the pooling map of (47.1201), as in (47.1240)", t_1259),
    Erratum("47.1276", "θ_ℓ,n = θ_ℓ,n-1 - μ δ_ℓ+1", "θ_ℓ,n = θ_ℓ,n-1 + μ δ_ℓ+1 (∂/∂θ_ℓ = -δ, 47.1264)",
            t_theta_sign),
    Erratum("47.1276", "W_ℓ,n = (1 - 2μρ2) W_ℓ,n-1 - μμ δ y^T", "... - μ δ y^T", t_mu_mu),
    Erratum("47.1275–47.1276", "δ^(d,C) = f'(z) ⊙ permute#(upv(W_1^T δ_2))", "W_1^(d) (47.1220), as in (47.1245)",
            t_w1_columns),
    Erratum("47.1229, 47.1275", "∂J_emp/∂W = 2ρW + Σ_n δ y^T (no 1/N)", "2ρW + (1/N) Σ_n (...), as (47.1229) asks",
            t_missing_1_over_n),
    Erratum("47.1213", "d = 1, ..., D_c", "d = 1, ..., D_{c+1}, as (47.1212)", t_range_1213),
    Erratum("47.1223", "W^(d,c) = col{w_j^(d,c)} of size 1 x S_c D_{c-1}", "S_c D_{c-1} x 1 (a column, 47.1224a)",
            t_shape_1223a),
    Erratum("47.1210, 47.1252, 47.1257", "V_c is P_{c+1} S_c x P'_c and (47.1257) uses 1_{S_c}",
            "S_{c+1}, the size of h^(d,c) by (47.1210) and of w^(d',c+1)", t_s_index),
    Erratum("47.1275", "V^(d,d',c+1) built with 1_{P_c} 1_{P_{c+1}}^T", "1_{P'_c} 1_{P_{c+1}}^T, as (47.1257)",
            t_listing_p_c),
    Erratum("47.1166", "2K + 2 coefficients per unit: 30 x (9 + 1) = 300",
            "(2K+1)^2 + 1 = 82 per map: 30 x 82 = 2460", t_count_1166),
    Erratum("47.1135", "Gaussian mask 1/(sqrt(2π) σ^2) e^{-(k²+l²)/2σ²}", "1/(2π σ^2), the 2-D normaliser",
            t_gaussian),
    Erratum("47.1149", "V labelled (P x M)", "(PS x M), as (47.1153)", t_label_1149),
    Erratum("47.1180", "t(r,c) = H ⊙ M (a matrix)", "t(r,c) = 1^T (H ⊙ M) 1, the sum of the Hadamard product",
            t_hadamard_1180),
    Erratum("8.39, 8.41", "Σ_{h=1}^{H^n}", "Σ_{h=1}^{H^m}: h runs over the maps of layer m", t_range_839),
    Erratum("8.45", "dA^{n,l} = Σ_{l=1}^{H^n} (rot180 LW^{h,l}) ⊗ dLZ^h",
            "Σ_{h=1}^{H^m} (rot180 LW^{h,l}) ⊗ dLZ^h over dLZ^h zero-padded by r-1, c-1 ('full')", t_formula_845),
    Erratum("8.18–8.19", "S = (R + 2P - r)/S^t + 1", "⌊(R + 2P - r)/S^t⌋ + 1 (16, 3, 1, 2 gives 8.5 vs 8)",
            t_floor_818),
    Erratum("P8.2", "shift the impulse one pixel to the left and one up",
            "to the right and up, which gives the printed kernel", t_left_p82),
    Erratum("003:1-D derivation", "f(i) = Σ_{j=l}^{l} x(i+l-j) a(j)", "Σ_{j=1}^{l}", t_sum_003),
    Erratum("003:Jacobian definition", "(∂f/∂x)_ij = ∂f_i/∂x_i", "∂f_i/∂x_j", t_jacobian_003),
    Erratum("004:average pooling", "[[3.75, 1.25], [4, 2]]", "[[3.75, 1.25], [3.75, 2]]: (1+3+5+6)/4 = 3.75",
            t_average_004),
    Erratum("004:cross-correlation", "cross-correlation Σ I(i+m, j+n) K(m, n) = (K * I)(i, j)",
            "= convolution with the flipped kernel", t_cross_correlation_004),
    Erratum("000:(16)", "j ∈ [J + S - 1]", "j ∈ [J - S + 1]", t_range_000_16),
    Erratum("000:(23)", "iR <= p <= (i+1)R (overlapping (R+1) x (S+1) windows)", "iR <= p < (i+1)R",
            t_regions_000_23),
    Erratum("47.1275–47.1276", "Δ_{n,C} used in the W_C and Θ_C lines, but set only inside the loop c = C-1, ..., 1",
            "set Δ_{n,C} = diag{δ^(1,C), ..., δ^(D_C,C)} after δ^(d,C)", t_delta_C),
    Erratum("47.1221g", "W_ℓ = [w_1 | ... | w_{n_{ℓ+1}}]", "[w_1 | ... | w_{n_ℓ}]: one column per node of layer ℓ",
            t_columns_1221g),
    Erratum("47.1189", "y(p) = f(Σ_j ([h_p^(j)]^T w_j - θ(j) 1))", "θ(j) without the all-ones vector, as (47.1164)",
            t_scalar_1189),
    Erratum("47.1221e", "z_ℓ(n) = output of node j prior to activation", "z_ℓ(j)", t_index_1221e),
    Erratum("47.1147d", "K = square dimension of the mask", "the mask is (2K+1) x (2K+1): K is its half-width",
            t_half_width_1147d),
    Erratum("47.1220", "text: the second block named W_2^(2)", "W_1^(2), columns P'_C + 1 .. 2P'_C of W_1",
            t_block_1220),
    Erratum("47.1256", "text: the matrix maps t^(d,c) to z^(d',c) (4 x 1)", "to z^(d',c+1), of size P_{c+1} = 4",
            t_target_1256),
    Erratum("47.1237", "Σ_{p'=1}^{P'_c}", "Σ_{p'=1}^{P'_C}: the sum runs over the entries of t^(d,C)",
            t_limit_1237),
    Erratum("47.1216", "listing start: p = 1 = 2, ..., P_o", "p = 1, 2, ..., P_1, the number of columns of H^(d,0) "
            "(47.1211) and the size of z^(d,1) (47.1226)", t_count_1216),
    Erratum("003:σ' in ∂E/∂y", "∂E/∂y^l = ∂E/∂y^{l+1} · σ'(y^{l+1}) · W^{l+1}", "σ'(W^{l+1} y^l + c^{l+1}), at the "
            "pre-activation", t_sigma_prime_003),
    Erratum("003:convolution gradients", "∂E/∂x_i^l = δ_j^{l+1} * a_ij(-.) 'full'; ∂E/∂a_ij = x̄_i * δ_j 'valid'",
            "with f'(net_j) ⊙ δ_j in both, and Σ_j over the output maps for ∂E/∂x_i^l", t_conv_gradients_003),
    Erratum("000:(9)", "(x ⋆ k)(i, j) = Σ x(m, n) k(i+m, j+n)", "Σ x(i+m, j+n) k(m, n), the lags of (18), (26), (37)",
            t_lags_000_9),
    Erratum("000:(10)–(11)", "the correlation is commutative and associative (text after (9))",
            "the convolution is; the correlation is neither", t_commutative_000),
    Erratum("000:(15)", "x * w[i] = x * w̃[i] = Σ_r x[i+r] w̃[r]", "x * w[i] = x ⋆ w̃[i]: a correlation with the "
            "flipped kernel", t_flip_000_15),
    Erratum("004:summary slide", "∂L/∂F = Convolution(X, ∂L/∂O), ∂L/∂X = Full Convolution(rot180 F, ∂L/∂O)",
            "both hold only with 'convolution' meaning cross-correlation", t_summary_004),
    Erratum("8.37, P8.4", "db = ⊞^ave(dN) and dlw = ⊞^ave(dLZ ∘ ⊞^ave(A)), called average pooling",
            "unweighted sums ((8.22) with w = 1), not averages", t_average_837),
]

def confirm(erratum: Erratum) -> tuple[bool, str]:
    """Run an erratum's test: confirmed when the printed form fails and the corrected form holds."""
    printed, corrected, *detail = erratum.test()
    verdict = f"printed {'holds' if printed else 'fails'}, corrected {'holds' if corrected else 'fails'}"
    return (not printed) and bool(corrected), verdict + "".join(f"; {d}" for d in detail if d)


CLAIMS = [Claim(e.location, f"printed: {e.printed} | right: {e.corrected}", "erratum", confirm, e) for e in ERRATA]


def run(*, latex: bool = False) -> list[Check]:
    """All errata (``latex`` is accepted for a uniform interface; errata print no operator)."""
    return [claim.run() for claim in CLAIMS]


if __name__ == "__main__":
    raise SystemExit(module_main(run))
