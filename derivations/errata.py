"""Errata of the sources, each confirmed by machine.

Every :class:`Erratum` says where it is, what is printed and what is right,
and carries a test that evaluates both forms on a concrete case. The erratum
is *confirmed* when the printed form fails and the corrected form holds; a
printed form that cannot even be evaluated (a shape mismatch, an index out of
range, overlapping regions) fails. Most tests reuse the checkers that prove
the corrected results elsewhere in :mod:`derivations`, fed the printed variant.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.signal
import sympy

import partitionnet as pn
from partitionnet import symbolic as _sym

from . import backprop, convolution_chapter as ch8, lecture_notes as notes, pooling, training
from ._check import Check, Claim, module_main, same_matrix


@dataclass(frozen=True)
class Erratum:
    location: str
    printed: str
    corrected: str
    test: Callable[[], tuple[bool, bool]]   # -> (printed holds, corrected holds)


def same_list(xs, ys) -> bool:
    return len(xs) == len(ys) and all(same_matrix(x, y) for x, y in zip(xs, ys))


def holds(fn: Callable, *args) -> bool:
    """Evaluate a claim; a form that cannot be evaluated (wrong shapes, indices, regions) does not hold."""
    try:
        out = fn(*args)
    except (sympy.ShapeError, ValueError, IndexError):
        return False
    return bool(out[0] if isinstance(out, tuple) else out)


# ---------------------------------------------------------------------- the seed, 002
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
    """Layer c has D_c = 2 maps, layer c+1 has D_{c+1} = 3 masks (W_{c+1} is S D_c x D_{c+1}, 47.1224a)."""
    D_c, D_next = 2, 3
    W_next = sympy.Matrix(_sym.grid("W", (4 * D_c, D_next)))

    def uses_every_mask(last_d):       # one feature map per column W^(d,c+1) of W_{c+1}
        return [W_next[:, d] for d in range(last_d)] == [W_next[:, d] for d in range(W_next.cols)]
    return uses_every_mask(D_c), uses_every_mask(D_next)


def t_shape_1223a():
    S, D_prev, D_c = 3, 2, 4
    W_d = [sympy.Matrix.vstack(*(_sym.col(f"w{d}{j}_", S) for j in range(D_prev)))   # col{w_1, .., w_{D_{c-1}}}
           for d in range(D_c)]
    W_c = sympy.Matrix.hstack(*W_d)                                        # (47.1224a)
    return W_d[0].shape == (1, S * D_prev), W_d[0].shape == (S * D_prev, 1) and W_c.shape == (S * D_prev, D_c)


def _operator(rows: Callable, S_ones: Callable) -> Callable:
    """(47.1257) with the sizes of its two all-ones factors chosen by the caller."""
    def build(part, w):
        mask = _sym.kron(_sym.ones(rows(part.M), part.P), sympy.SparseMatrix(w.T))
        return _sym.hadamard(part.to_sympy().T, mask) * _sym.kron(_sym.eye(part.P), _sym.ones(S_ones(w.rows), 1))
    return build


def t_s_index():
    """Layer c correlates with 3 x 3 masks (S_c = 9); V_c cuts t^(d,c) into 2 x 2 windows (S_{c+1} = 4)."""
    pair = backprop.layer_pairs()[1]
    S_c = 9
    printed = _operator(lambda P_out: P_out, lambda S_next: S_c)
    corrected = _operator(lambda P_out: P_out, lambda S_next: S_next)
    rows_as_printed = pair.part.P * S_c == pair.part.matrix().shape[0]    # "V_c of size P_{c+1} S_c x P'_c"
    return (rows_as_printed and holds(backprop.operator_matches_jacobian, pair, printed),
            holds(backprop.operator_matches_jacobian, pair, corrected))


def t_listing_p_c():
    pair = backprop.layer_pairs()[1]             # P_c = 24 entries pooled to P'_c = 6
    printed = _operator(lambda P_out: pair.pool.P, lambda S: S)
    return (holds(backprop.operator_matches_jacobian, pair, printed),
            holds(backprop.operator_matches_jacobian, pair, backprop.shipped_operator))


def t_count_1166():
    K, D = 4, 30                                 # 2K + 1 = 9
    part = pn.Partition.sliding_window((64, 64), 2 * K + 1, padding="same")
    per_map = part.S + 1                         # S + 1 parameters per map (47.1155), S = (2K + 1)^2 (47.1147a)
    return D * (2 * K + 2) == D * per_map == 300, D * per_map == 2460 and part.S == (2 * K + 1) ** 2


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
    H, M = sympy.Matrix(_sym.grid("h", (3, 3))), sympy.Matrix(_sym.grid("m", (3, 3)))
    t = sum(H[k, l] * M[k, l] for k in range(3) for l in range(3))
    printed, corrected = H.multiply_elementwise(M), sympy.ones(1, 3) * H.multiply_elementwise(M) * sympy.ones(3, 1)
    return printed == sympy.Matrix([t]), corrected == sympy.Matrix([t])


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
    """(16): x * w[i, j] = Σ_{r,s} x[i+r, j+s] w[R-1-r, S-1-s], printed for j in [J+S-1]."""
    x, w = np.arange(20.0).reshape(4, 5), np.array([[1.0, -2.0], [0.5, 3.0]])
    (I, J), (R, S) = x.shape, w.shape

    def conv(j_count):
        return np.array([[sum(x[i + r, j + s] * w[R - 1 - r, S - 1 - s] for r in range(R) for s in range(S))
                          for j in range(j_count)] for i in range(I - R + 1)])
    reference = scipy.signal.convolve(x, w, "valid")
    return holds(lambda: np.allclose(conv(J + S - 1), reference)), holds(lambda: np.allclose(conv(J - S + 1),
                                                                                             reference))


def t_regions_000_23():
    """(23): A_x[i, j] = {x[p, q] : iR <= p <= (i+1)R, jS <= q <= (j+1)S} on a 4 x 6 map, R = S = 2."""
    shape, R, S = (4, 6), 2, 2

    def regions(upper):            # entries in column-stacking order, p + q * rows
        return [[p + q * shape[0] for q in range(shape[1]) for p in range(shape[0])
                 if i * R <= p and upper(p, (i + 1) * R) and j * S <= q and upper(q, (j + 1) * S)]
                for j in range(shape[1] // S) for i in range(shape[0] // R)]
    library = pn.Pooling.windows(shape, (R, S), kind="max").regions

    def matches(upper):
        pool = pn.Pooling.from_regions(regions(upper), int(np.prod(shape)))
        return all(set(a) == set(b) for a, b in zip(pool.regions, library))
    return holds(matches, lambda v, b: v <= b), holds(matches, lambda v, b: v < b)


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
]

def confirm(erratum: Erratum) -> tuple[bool, str]:
    printed, corrected = erratum.test()
    verdict = f"printed {'holds' if printed else 'fails'}, corrected {'holds' if corrected else 'fails'}"
    return (not printed) and corrected, verdict


CLAIMS = [Claim(e.location, f"printed: {e.printed} | right: {e.corrected}", "erratum", confirm, e) for e in ERRATA]


def run(*, latex: bool = False) -> list[Check]:
    """All errata (``latex`` is accepted for a uniform interface; errata print no operator)."""
    return [claim.run() for claim in CLAIMS]


if __name__ == "__main__":
    raise SystemExit(module_main(run))
