"""Pooling: gradient vectors, upsampling, and the permutation T.

* Tables 47.13-47.14, (47.1196a-e) and ℓp pooling (Prob. 47.163): the Jacobian
  of each pooling function, written by direct loops over regions of unequal
  sizes, is zero outside the regions and equals the gradient vector g_p' of
  the table inside Ω_p'.
* Table 47.12, (47.1169-47.1185): the 2-D forms; every kind is a correlation
  with a mask (M_mean, M_max = e_k e_l^T, M_sub = e_1 e_1^T), and the gradient
  matrix G, column-stacked, is the library's gradient vector. The book's two
  examples are reproduced exactly: M_max = e_1 e_2^T (47.1174) and the 7 x 9
  map subsampled by 3 to 3 x 3 (47.1177). (47.1180) is proved in its corrected
  form, the sum of the Hadamard product (see the errata).
* ℓp pooling is checked with real symbols of either sign, so the sign(y) of
  its gradient vector is part of what is proved.
* (47.1197-47.1200) upv(v) = col{v(p') g_p'}; (47.1204) together with T^T it
  is the transposed Jacobian of pooling: (∂t/∂y)^T v = T^T upv(v).
* (47.1201-47.1203) T for the regions {1,2,4,8}, {3,5,7,9,11}, {6,10,12};
  T T^T = I (47.1204) for any regions, with or without a dropped remainder.
"""
from __future__ import annotations

import numpy as np
import sympy

import partitionnet as pn
from partitionnet import symbolic as _sym
from partitionnet.algebra import differentiable_max

from . import _direct
from ._check import Check, Claim, allclose, module_main, print_latex, same_matrix


#: Regions of Fig. 47.95, 1-based as printed on the left of (47.1201).
BOOK_REGIONS = [[1, 2, 4, 8], [3, 5, 7, 9, 11], [6, 10, 12]]
BOOK_T_ROWS = [1, 2, 4, 8, 3, 5, 7, 9, 11, 6, 10, 12]   # e_k^T of (47.1203)

KINDS = [("mean", {}), ("max", {}), ("l2", {}), ("lp", {"p": 3}), ("lp", {"p": 2.5}),
         ("correlation", {"mask": np.arange(1.0, 13.0)}), ("subsample", {"retain": [2, 4, 1]})]


def book_pooling(kind="mean", **options) -> pn.Pooling:
    return pn.Pooling.from_regions(BOOK_REGIONS, 12, kind=kind, one_based=True, **options)


def pooling_cases(kind, **options):
    """Unequal regions (47.1201), 2-D windows, and windows that leave a remainder out."""
    cases = [book_pooling(kind, **options)]
    for shape, window, drop in (((4, 6), (2, 3), False), ((5, 4), (2, 2), True)):
        size = int(np.prod(shape))
        grid_options = ({"mask": np.arange(1.0, size + 1.0)} if kind == "correlation"
                        else {"retain": 2} if kind == "subsample" else options)
        cases.append(pn.Pooling.windows(shape, window, kind=kind, drop_remainder=drop, **grid_options))
    return cases


def _symbols_for(pool):
    """A symbolic map of real symbols of either sign (so that sign(y) in the ℓp gradient matters) and, for
    correlation, a symbolic mask."""
    y = _sym.col("y", pool.P, real=True)
    mask = _sym.col("m", pool.P) if pool.kind == "correlation" else None
    # max needs a point: distinct values so the maximiser is unique.
    point = dict(zip(y, np.random.default_rng(pool.P).permutation(pool.P) + 1)) if pool.kind == "max" else {}
    return y, mask, point


def real_form(M) -> sympy.Matrix:
    """Rewrite |a| as a·sign(a), true for real a: SymPy writes |y|^3 as y^2 |y| on one side and its derivative
    as y^2 sign(y)/3 + 2 y |y|/3 on the other, which expand() alone cannot match."""
    return sympy.Matrix(M).applyfunc(lambda e: e.replace(sympy.Abs, lambda a: a * sympy.sign(a)))


def _scatter(pool, g) -> sympy.SparseMatrix:
    """The P' x P Jacobian whose row p' holds g_p' on the entries of Ω_p'."""
    owner = _sym.region_of_entry(pool)
    return sympy.SparseMatrix(pool.P_out, pool.P, {(int(owner[k]), int(i)): g[k] for k, i in enumerate(pool.order)})


def direct_jacobian(pool, y, mask):
    t = _direct.pool(list(y), pool.regions, pool.kind, mask=mask, p=pool.p, retain=pool.retain)
    t = [e.replace(sympy.Max, differentiable_max()) if isinstance(e, sympy.Basic) else e for e in t]
    free = [e.free_symbols if isinstance(e, sympy.Basic) else set() for e in t]
    return sympy.Matrix(pool.P_out, pool.P, lambda i, j: sympy.diff(t[i], y[j]) if y[j] in free[i] else 0)


# ---------------------------------------------------------------------- checkers
def check_gradient_vectors(gradient_vectors) -> tuple[bool, str]:
    """Table 47.14 / (47.1196): ∂t(p')/∂y(Ω_p') = g_p' and 0 elsewhere, for every kind and case."""
    for kind, options in KINDS:
        for pool in pooling_cases(kind, **options):
            y, mask, point = _symbols_for(pool)
            J = direct_jacobian(pool, y, mask).subs(point)
            g = gradient_vectors(pool, y.subs(point), mask)
            if not same_matrix(real_form(J), real_form(_scatter(pool, g))):
                return False, repr(pool)
    return True, ""


def check_library_pool() -> tuple[bool, str]:
    """Numeric: the library's (t, g) equal direct loops and central differences, one sample or many."""
    rng = np.random.default_rng(1196)
    for kind, options in KINDS:
        for pool in pooling_cases(kind, **options):
            Y = rng.permutation(np.linspace(-2.0, 2.0, pool.P * 3)).reshape(3, pool.P).T  # distinct values
            t, g = pool.pool(Y)
            def direct(v):
                return np.array(_direct.pool(list(v), pool.regions, kind, mask=pool.mask, p=pool.p,
                                             retain=pool.retain), dtype=float)

            for n in range(Y.shape[1]):
                y = Y[:, n]
                h = 1e-6
                J = np.column_stack([(direct(y + h * e) - direct(y - h * e)) / (2 * h) for e in np.eye(pool.P)])
                G = np.zeros((pool.P_out, pool.P))
                G[_sym.region_of_entry(pool), pool.order] = g[:, n]
                if not (allclose(t[:, n], direct(y)) and allclose(G, J, rtol=1e-6, atol=1e-8)):
                    return False, repr(pool)
    return True, ""


def check_masks_2d() -> tuple[bool, str]:
    """Table 47.12, (47.1169-47.1185) on a 3 x 3 patch (B = 1): each kind is a correlation with its mask,
    the gradient matrix of (47.1184) is the tabulated G, and vec(G) is the library's g."""
    H = sympy.Matrix(_sym.grid("x", (3, 3), real=True))
    values = sympy.Matrix([[1, 3, 2], [2, 9, 1], [1, 3, 2]])   # unique maximum at (1, 1), 0-based
    M = sympy.Matrix(_sym.grid("M", (3, 3)))
    t_l2 = sympy.sqrt(sum(v ** 2 for v in H))                       # (47.1176)

    def E(k, l):
        return sympy.Matrix(3, 3, lambda i, j: int((i, j) == (k, l)))

    cases = {   # kind: (t by definition, G of Table 47.12, correlation mask or None, point)
        "mean": (sum(H) / 9, sympy.ones(3, 3) / 9, sympy.ones(3, 3) / 9, {}),      # (47.1169-47.1171, 47.1185a)
        "max": (sympy.Max(*H), E(1, 1), E(1, 1), dict(zip(H, values))),           # (47.1172-47.1175, 47.1185b)
        "subsample": (H[0, 0], E(0, 0), E(0, 0), {}),                              # (47.1177-47.1179, 47.1185c)
        "l2": (t_l2, H / t_l2, None, {}),                                          # (47.1176, 47.1185d)
        "correlation": (sum(H.multiply_elementwise(M)), M, M, {}),                 # (47.1180, 47.1185e)
    }
    for kind, (t, G, mask, point) in cases.items():
        grad = H.applyfunc(lambda x: sympy.diff(t, x)).subs(point)
        as_correlation = sum(H.multiply_elementwise(mask)) if mask is not None else t
        if not (same_matrix(grad, G.subs(point)) and sympy.expand((t - as_correlation).subs(point)) == 0):
            return False, kind
        numeric = {x: float(v) for x, v in zip(H, values)} | {m: float(i + 1) for i, m in enumerate(M)}
        options = {"mask": np.array(M.subs(numeric), dtype=float)} if kind == "correlation" else {}
        pool = pn.Pooling.windows((3, 3), 3, kind=kind, **options)
        _, g = pool.pool(pn.vec(np.array(values, dtype=float)))
        if not allclose(g, pn.vec(np.array(G.subs(point).subs(numeric), dtype=float))):
            return False, f"{kind}: library g is not vec(G)"
    return True, ""


def check_book_examples_2d() -> tuple[bool, str]:
    """The book's two worked 2-D examples, exactly, by the library.

    (47.1174): a 3 x 3 patch whose maximum sits at (1, 2) (1-based) has max-pooling gradient matrix
    e_1 e_2^T, the printed M_max, and t = Σ H ⊙ M_max. (47.1177): subsampling a 7 x 9 map by 3 in each
    direction keeps rows and columns 1, 4, 7 (the boxed a, ..., i) and gives a 3 x 3 map; every full
    3 x 3 window has gradient matrix e_1 e_1^T (47.1178), the partial windows of the last row e_1^T.
    """
    H = np.array([[1.0, 9.0, 2.0], [3.0, 4.0, 5.0], [0.0, 6.0, 7.0]])
    M_max = np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]])                      # as printed in (47.1174)
    t, g = pn.Pooling.windows((3, 3), 3, kind="max").pool(pn.vec(H))
    if not (np.array_equal(pn.unvec(g, (3, 3)), M_max) and t[0] == np.sum(H * M_max)):
        return False, f"(47.1174): g = {pn.unvec(g, (3, 3)).tolist()}, t = {t[0]}"
    Y = np.arange(1.0, 64.0).reshape(7, 9)                                  # 63 distinct entries
    pool = pn.Pooling.windows(Y.shape, 3, kind="subsample", retain=0, partial=True)
    t, g = pool.pool(pn.vec(Y))
    boxed = Y[np.ix_([0, 3, 6], [0, 3, 6])]                                # rows and columns 1, 4, 7
    if pool.output_shape != (3, 3) or not np.array_equal(pn.unvec(t, (3, 3)), boxed):
        return False, f"(47.1177): {pool.output_shape}, {t.tolist()}"
    full, last_row = pn.vec(np.eye(3, 3, dtype=float)[:, :1] @ np.eye(3, 3, dtype=float)[:1]), np.array([1.0, 0, 0])
    pieces = np.split(g, np.cumsum(pool.sizes)[:-1])
    expected = [full if size == 9 else last_row for size in pool.sizes]
    if not all(np.array_equal(a, b) for a, b in zip(pieces, expected)):
        return False, "(47.1178): gradient matrices of the windows"
    return True, ""


def check_upsampling() -> tuple[bool, str]:
    """(47.1197-47.1200): up(α) = α g and upv(v) = col{v(p') g_p'}, padded for dropped entries."""
    rng = np.random.default_rng(1200)
    for pool in pooling_cases("l2"):
        y, v = rng.standard_normal(pool.P), rng.standard_normal(pool.P_out)
        _, g = pool.pool(y)
        pieces = [v[p] * g_p for p, g_p in enumerate(np.split(g, np.cumsum(pool.sizes)[:-1]))]
        expected = np.concatenate(pieces + [np.zeros(pool.P - pool.order.size)])
        if not (allclose(pool.upv(v, g), expected) and allclose(np.array(_sym.upv(pool, v, g), float).ravel(),
                                                                 expected)):
            return False, repr(pool)
    return True, ""


def check_pooling_adjoint(backward) -> tuple[bool, str]:
    """(47.1204) with (47.1200): (∂t/∂y)^T v = backward(pool, v, g) for every kind, v symbolic."""
    for kind, options in KINDS:
        for pool in pooling_cases(kind, **options):
            y, mask, point = _symbols_for(pool)
            v = _sym.col("v", pool.P_out)
            J = direct_jacobian(pool, y, mask).subs(point)
            g = _sym.gradient_vectors(pool, y.subs(point), mask)
            if not same_matrix(real_form(J.T * v), real_form(backward(pool, v, g))):
                return False, repr(pool)
    return True, ""


def permute_sharp_upv(pool, v, g):
    """The closed form: permute#(upv(v)) = T^T upv(v)."""
    return _sym.permutation(pool).T * _sym.upv(pool, v, g)


def check_permutation(T, regions, size) -> bool:
    """(47.1201-47.1204): T is a P x P permutation with T T^T = I whose product with y lists y region by region."""
    T = sympy.Matrix(T)
    y = _sym.col("y", size)
    grouped = sympy.Matrix([y[i - 1] for region in regions for i in region])
    return T.shape == (size, size) and T * T.T == sympy.eye(size) and T * y == grouped and T.T * grouped == y


def check_book_permutation() -> bool:
    """(47.1201, 47.1203): the library's T for the regions of Fig. 47.95 is the matrix with rows e_k^T of (47.1203)."""
    T = _sym.permutation(book_pooling())
    rows = sympy.Matrix([[int(j + 1 == k) for j in range(12)] for k in BOOK_T_ROWS])
    return T == rows and check_permutation(T, BOOK_REGIONS, 12)


def check_orthogonal() -> tuple[bool, str]:
    """(47.1204) numerically: T T^T = T^T T = I and permute# inverts permute, for random regions."""
    rng = np.random.default_rng(1204)
    for P in (7, 12, 30):
        cuts = np.sort(rng.choice(np.arange(1, P), size=3, replace=False))
        regions = np.split(rng.permutation(P), cuts)
        for pool in (pn.Pooling.from_regions([r.tolist() for r in regions], P),
                     pn.Pooling.from_regions([r.tolist() for r in regions[:-1]], P, drop_remainder=True)):
            T = pool.permutation().toarray()
            y = rng.standard_normal(P)
            if not (np.array_equal(T @ T.T, np.eye(P)) and np.array_equal(T.T @ T, np.eye(P))
                    and np.array_equal(pool.permute_adjoint(pool.permute(y)), y)
                    and np.array_equal(pool.permute(y), T @ y)):
                return False, repr(pool)
    return True, ""


CLAIMS = [
    Claim("47.1187–47.1188, 47.1191b, 47.1192–47.1196, 47.1196a–47.1196e",
          "Jacobian of pooling = gradient vectors (all kinds, ℓp)",
          "symbolic", check_gradient_vectors, _sym.gradient_vectors),
    Claim("47.1187–47.1188, 47.1191b, 47.1192–47.1196", "library (t, g) = direct loops and central differences",
          "numeric",
          check_library_pool),
    Claim("47.1169–47.1173, 47.1175–47.1176, 47.1178–47.1179, 47.1181–47.1185",
          "2-D masks and gradient matrices of Table 47.12; vec(G) = g", "symbolic", check_masks_2d),
    Claim("47.1174, 47.1177–47.1178", "the book's examples: M_max = e_1 e_2^T; 7 x 9 subsampled by 3 to 3 x 3",
          "numeric", check_book_examples_2d),
    Claim("47.1197–47.1200", "up(α) = α g, upv(v) = col{v(p') g_p'}", "numeric", check_upsampling),
    Claim("47.1200, 47.1204, 47.1244, 47.1260", "(∂t/∂y)^T v = T^T upv(v) (Probs. 47.164, 47.166)", "symbolic",
          check_pooling_adjoint, permute_sharp_upv),
    Claim("47.1201–47.1203", "library T for Fig. 47.95 = (47.1203), T y = grouped y", "symbolic",
          check_book_permutation),
    Claim("47.1204", "T T^T = I, permute# ∘ permute = id (random regions, remainder)", "numeric",
          check_orthogonal),
]


def run(*, latex: bool = False) -> list[Check]:
    if latex:
        print_latex("T of (47.1203)", _sym.permutation(book_pooling()))
        pool, v, g = book_pooling(), _sym.col("v", 3), _sym.col("g", 12)
        print_latex("permute#(upv(v)) for the regions of (47.1201)", permute_sharp_upv(pool, v, g))
    return [claim.run() for claim in CLAIMS]


if __name__ == "__main__":
    raise SystemExit(module_main(run))
