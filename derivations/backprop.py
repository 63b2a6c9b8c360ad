"""Sensitivities: the feedforward part, the last correlation layer, and the earlier layers.

* (47.1233) δ_L = 2(y - γ) ⊙ f'(z); (47.1234) δ_ℓ = f'(z_ℓ) ⊙ W_ℓ^T δ_{ℓ+1}.
* (47.1236-47.1245, Prob. 47.164) δ^(d,C) = f'(z^(d,C)) ⊙ permute#(upv(W_1^(d)T δ_2)),
  with W_1^(d) the columns of W_1 that read t^(d,C) (47.1217-47.1220); the
  book's 12-entry example (47.1240) entry by entry.
* (47.1251-47.1256) the book's example of V^(d,d',c+1), entry by entry.
* (47.1257-47.1258, 47.1250) V^(d,d',c+1) built by the Kronecker formula is the
  transposed Jacobian ∂z^(d',c+1)/∂t^(d,c) of a correlation written by direct
  summation, and b = V δ.
* (47.1246-47.1262, Prob. 47.166) δ^(d,c) = Σ_d' f'(z^(d,c)) ⊙ permute#(upv(V^(d,d',c+1) δ^(d',c+1))).

Each symbolic proof differentiates L = Σ δ_next^T z_next, a functional whose
gradient with respect to the next pre-activations is an arbitrary symbolic δ,
so the chain rule is checked for every possible upstream sensitivity. The
activation f is an undefined SymPy function.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.signal
import scipy.sparse as sps
import sympy

import partitionnet as pn
from partitionnet import symbolic as _sym
from partitionnet.algebra import SYMPY
from partitionnet.layers.correlation import backprop_operator

from . import _direct
from ._check import Check, Claim, allclose, module_main, print_latex, same_matrix
from .pooling import book_pooling


f = sympy.Function("f")


def fprime(z: sympy.Matrix) -> sympy.Matrix:
    """f'(z) entrywise, in the form SymPy's chain rule produces."""
    return z.applyfunc(lambda v: sympy.diff(f(v), v))


def gradient(L, variables: sympy.Matrix) -> sympy.Matrix:
    return sympy.Matrix([sympy.diff(L, v) for v in variables])


# ---------------------------------------------------------------------- the layer pairs
@dataclass
class LayerPair:
    """Pooling of the maps y^(d,c) and the partition V_c of the pooled maps t^(d,c) (47.1209)."""

    label: str
    pool: pn.Pooling
    part: pn.Partition

    def correlate(self, t, w):
        """z(p) = h_p^T w by direct summation over the geometry or the index lists (no V)."""
        if self.part.geometry is None:
            return sympy.Matrix(_direct.correlate_lists(list(t), list(w), self.part.indices.tolist()))
        g = self.part.geometry
        T = np.asarray(list(t), dtype=object).reshape(self.pool.output_shape, order="F")
        W = np.asarray(list(w), dtype=object).reshape(g["kernel"], order="F")
        Z = _direct.correlate(T, W, stride=g["stride"], padding=g["padding"], dilation=g["dilation"])
        return sympy.Matrix(list(Z.reshape(-1, order="F")))


#: Fig. 47.99 / (47.1253): 1-based subvectors {1,3}, {4,2}, {5,1}, {6,2} of a pooled map of size 6.
BOOK_V_LISTS = [[1, 3], [4, 2], [5, 1], [6, 2]]


def layer_pairs() -> list[LayerPair]:
    return [
        # Regions of 2 or 3 entries: SymPy rewrites sqrt(y^2) of a one-entry ℓ2 region into a form that
        # expand() cannot match with y/t, although the two are equal.
        LayerPair("unequal l2 regions, book's V_c (Fig. 47.99)",
                  pn.Pooling.from_regions([[1, 4], [2, 3, 5], [6, 7], [8, 10], [9, 11, 12], [13, 14]], 14,
                                          kind="l2", one_based=True),
                  pn.Partition.from_indices(BOOK_V_LISTS, 6, one_based=True)),
        LayerPair("2-D mean 2x2, then 2x2 kernel, stride (1,2), padding 1",
                  pn.Pooling.windows((4, 6), 2, kind="mean"),
                  pn.Partition.sliding_window((2, 3), 2, stride=(1, 2), padding=1)),
        LayerPair("1-D correlation pooling, then kernel 3, stride 2, padding 2, dilation 2",
                  pn.Pooling.windows((10,), (2,), kind="correlation", mask=np.arange(1.0, 11.0)),
                  pn.Partition.sliding_window((5,), 3, stride=2, padding=2, dilation=2)),
    ]


# ---------------------------------------------------------------------- feedforward part
def check_output_sensitivity() -> bool:
    """(47.1233): ∂||γ - f(z)||^2 / ∂z = 2(y - γ) ⊙ f'(z)."""
    z, gamma = _sym.col("z", 3), _sym.col("gamma", 3)
    y = z.applyfunc(f)
    return same_matrix(gradient((gamma - y).dot(gamma - y), z), (2 * (y - gamma)).multiply_elementwise(fprime(z)))


def check_hidden_sensitivity() -> bool:
    """(47.1234): with z_{ℓ+1} = W_ℓ f(z_ℓ) - θ_ℓ, ∂(δ_{ℓ+1}^T z_{ℓ+1})/∂z_ℓ = f'(z_ℓ) ⊙ W_ℓ^T δ_{ℓ+1}."""
    z, theta, delta = _sym.col("z", 4), _sym.col("theta", 3), _sym.col("delta", 3)
    W = sympy.Matrix(_sym.grid("W", (3, 4)))
    L = delta.dot(W * z.applyfunc(f) - theta)
    return same_matrix(gradient(L, z), fprime(z).multiply_elementwise(W.T * delta))


# ---------------------------------------------------------------------- last correlation layer
def book_columns(W1: sympy.Matrix, d: int, P_out: int) -> sympy.Matrix:
    """W_1^(d) of (47.1220), d counted from 0: the columns that read t^(d,C) (index map 47.1217)."""
    return W1[:, d * P_out:(d + 1) * P_out]


def _pool_symbols(pool, y, name):
    mask = _sym.col(f"m{name}_", pool.P) if pool.kind == "correlation" else None
    t = sympy.Matrix(_direct.pool(list(y), pool.regions, pool.kind, mask=mask, p=pool.p, retain=pool.retain))
    return t, _sym.gradient_vectors(pool, y, mask)


def check_last_layer(columns) -> tuple[bool, str]:
    """(47.1236-47.1245): δ^(d,C) = f'(z) ⊙ permute#(upv(columns(W_1, d)^T δ_2)), D_C = 2, n_2 = 3."""
    for pair in layer_pairs():
        pool = pair.pool
        z = [_sym.col(f"z{d}_", pool.P) for d in range(2)]
        t, g = zip(*(_pool_symbols(pool, zd.applyfunc(f), str(d)) for d, zd in enumerate(z)))
        y1 = sympy.Matrix.vstack(*t)                                         # (47.1215)
        W1, theta1, delta2 = sympy.Matrix(_sym.grid("W", (3, y1.rows))), _sym.col("theta", 3), _sym.col("e", 3)
        L = delta2.dot(W1 * y1 - theta1)
        for d in range(2):
            v = columns(W1, d, pool.P_out).T * delta2                         # (47.1241)
            closed = fprime(z[d]).multiply_elementwise(_sym.permutation(pool).T * _sym.upv(pool, v, g[d]))
            if not same_matrix(gradient(L, z[d]), closed):
                return False, f"{pair.label}, d = {d + 1}"
    return True, ""


#: 47.1240 (and 47.1259's last column): entry j of y^(d,C) feeds t(p''_j), 1-based.
BOOK_P_OF_J = [1, 1, 2, 1, 2, 3, 2, 1, 2, 3, 2, 3]


def check_book_upsampling(p_of_j) -> bool:
    """(47.1240, 47.1244): for the regions of (47.1201), permute#(upv(v)) has entry j = v(p''_j) ∂t(p''_j)/∂y(j)."""
    pool = book_pooling()
    v = _sym.col("v", 3)
    dt = {(p + 1, int(j) + 1): sympy.Symbol(f"dt{p + 1}_{int(j) + 1}")
          for p, region in enumerate(pool.regions) for j in region}
    g = sympy.Matrix([dt[(p + 1, int(j) + 1)] for p, region in enumerate(pool.regions) for j in region])
    x = _sym.permutation(pool).T * _sym.upv(pool, v, g)
    expected = [v[p - 1] * dt.get((p, j), sympy.nan) for j, p in enumerate(p_of_j, start=1)]
    return same_matrix(x, sympy.Matrix(expected))


# ---------------------------------------------------------------------- earlier layers
#: Printed in (47.1251) and (47.1256), with w = (w1, w2).
W1_, W2_ = sympy.symbols("w1 w2")
BOOK_OPERATOR = sympy.Matrix([[W1_, 0, W2_, 0], [0, W2_, 0, W2_], [W2_, 0, 0, 0],
                              [0, W1_, 0, 0], [0, 0, W1_, 0], [0, 0, 0, W1_]])
BOOK_VC = [[1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0],
           [0, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0]]   # (47.1252)
BOOK_1254 = [[1, 0, 1, 0, 0, 0], [0, 1, 0, 1, 0, 0], [1, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, 1]]


def check_book_operator() -> bool:
    """(47.1251-47.1256): V_c, its index form, its membership, and the operator of the example."""
    part = pn.Partition.from_indices(BOOK_V_LISTS, 6, one_based=True)
    Vc = part.to_sympy()
    membership = _sym.kron(_sym.eye(4), _sym.ones(1, 2)) * Vc                          # (47.1254)
    skeleton = Vc.T * _sym.kron(_sym.eye(4), _sym.ones(2, 1))                          # (47.1255)
    operator = shipped_operator(part, sympy.Matrix([W1_, W2_]))                       # (47.1256)
    return (Vc == sympy.Matrix(BOOK_VC) and list(Vc * sympy.Matrix(range(1, 7))) == [1, 3, 4, 2, 5, 1, 6, 2]
            and membership == sympy.Matrix(BOOK_1254) and skeleton == membership.T
            and same_matrix(operator, BOOK_OPERATOR))


def shipped_operator(part, w) -> sympy.SparseMatrix:
    """The library's own (47.1257), ``partitionnet.layers.correlation.backprop_operator``, in the SymPy algebra."""
    return backprop_operator(part, list(w), SYMPY)


def operator_matches_jacobian(pair: LayerPair, build: Callable) -> bool:
    """build(V_c, w) = (∂z/∂t)^T and b = build(..) δ = Σ_i δ(i) ∂z(i)/∂t (47.1250, 47.1258)."""
    P_out, P_next, S = pair.pool.P_out, pair.part.P, pair.part.S
    t, w, delta = _sym.col("t", P_out), _sym.col("w", S), _sym.col("delta", P_next)
    z = pair.correlate(t, w)
    jacobian_T = sympy.Matrix(P_out, P_next, lambda p, i: sympy.diff(z[i], t[p]))
    V = build(pair.part, w)
    b = sympy.Matrix([sum(delta[i] * sympy.diff(z[i], t[p]) for i in range(P_next)) for p in range(P_out)])
    return same_matrix(V, jacobian_T) and same_matrix(V * delta, b)


def check_backprop_operator(build: Callable) -> tuple[bool, str]:
    """(47.1257-47.1258, 47.1250) for every layer pair."""
    for pair in layer_pairs():
        if not operator_matches_jacobian(pair, build):
            return False, pair.label
    return True, ""


def check_earlier_layer(build: Callable) -> tuple[bool, str]:
    """(47.1246-47.1262): δ^(d,c) = Σ_d' f'(z^(d,c)) ⊙ permute#(upv(V^(d,d',c+1) δ^(d',c+1))), D_c = D_{c+1} = 2."""
    for pair in layer_pairs():
        pool, part = pair.pool, pair.part
        z = [_sym.col(f"z{d}_", pool.P) for d in range(2)]
        t, g = zip(*(_pool_symbols(pool, zd.applyfunc(f), str(d)) for d, zd in enumerate(z)))
        w = {(d, e): _sym.col(f"w{d}{e}_", part.S) for d in range(2) for e in range(2)}
        theta = sympy.Matrix(_sym.grid("theta", (2, 2)))
        delta = [_sym.col(f"delta{e}_", part.P) for e in range(2)]
        z_next = [sum((pair.correlate(t[d], w[d, e]) - theta[d, e] * _sym.ones(part.P) for d in range(2)),
                      sympy.zeros(part.P, 1)) for e in range(2)]                          # (47.1212)
        L = sum(delta[e].dot(z_next[e]) for e in range(2))
        T = _sym.permutation(pool)
        for d in range(2):
            closed = sum((fprime(z[d]).multiply_elementwise(
                T.T * _sym.upv(pool, build(part, w[d, e]) * delta[e], g[d]))
                for e in range(2)), sympy.zeros(pool.P, 1))
            if not same_matrix(gradient(L, z[d]), closed):
                return False, f"{pair.label}, d = {d + 1}"
    return True, ""


# ---------------------------------------------------------------------- numeric
def check_operator_numeric() -> tuple[bool, str]:
    """Numeric at larger sizes: (47.1257) equals the transposed Jacobian of direct correlation (one unit
    vector at a time), and for unit stride V δ is the 'full'/'same' convolution of δ with the kernel (Eq. 8.45)."""
    rng = np.random.default_rng(1257)
    cases = [((10, 12), (3, 3), 1, 1, 1, "same"), ((9, 8), (2, 3), 1, 0, 1, "full"),
             ((9, 8), (2, 3), (2, 1), (0, 1), 1, None), ((11,), (3,), 1, 0, 2, None)]
    for shape, kernel, stride, padding, dilation, mode in cases:
        part = pn.Partition.sliding_window(shape, kernel, stride=stride, padding=padding, dilation=dilation)
        W = rng.standard_normal(kernel)
        V = backprop_operator(part, pn.vec(W))                               # the library's (47.1257)
        columns = [pn.vec(_direct.correlate(pn.unvec(e, shape), W, stride=stride, padding=padding,
                                            dilation=dilation)) for e in np.eye(part.M)]
        if not allclose(V.toarray(), np.array(columns)):
            return False, f"Jacobian, map {shape} kernel {kernel}"
        if mode is not None:
            delta = rng.standard_normal(part.output_shape)
            if not allclose(V @ pn.vec(delta), pn.vec(scipy.signal.convolve(delta, W, mode))):
                return False, f"convolution, map {shape} kernel {kernel}"
    return True, ""


CLAIMS = [
    Claim("47.1233", "δ_L = 2(y - γ) ⊙ f'(z)", "symbolic", check_output_sensitivity),
    Claim("47.1234", "δ_ℓ = f'(z_ℓ) ⊙ W_ℓ^T δ_{ℓ+1}", "symbolic", check_hidden_sensitivity),
    Claim("47.1217–47.1220, 47.1236–47.1245", "δ^(d,C) = f'(z) ⊙ permute#(upv(W_1^(d)T δ_2))", "symbolic",
          check_last_layer, book_columns),
    Claim("47.1240, 47.1244", "book example: x_j = v(p''_j) ∂t(p''_j)/∂y(j)", "symbolic",
          check_book_upsampling, BOOK_P_OF_J),
    Claim("47.1251–47.1256", "book example of V_c and V^(d,d',c+1)", "symbolic", check_book_operator),
    Claim("47.1250, 47.1257–47.1258", "V^(d,d',c+1) = (∂z^(d',c+1)/∂t^(d,c))^T, b = V δ", "symbolic",
          check_backprop_operator, shipped_operator),
    Claim("47.1257", "Kronecker operator = dense Jacobian^T = full convolution", "numeric",
          check_operator_numeric),
    Claim("47.1246–47.1262", "δ^(d,c) = Σ_d' f'(z) ⊙ permute#(upv(V^(d,d',c+1) δ^(d',c+1)))", "symbolic",
          check_earlier_layer, shipped_operator),
]


def run(*, latex: bool = False) -> list[Check]:
    if latex:
        print_latex("V^(d,d',c+1) of the example (47.1256)", shipped_operator(
            pn.Partition.from_indices(BOOK_V_LISTS, 6, one_based=True), sympy.Matrix([W1_, W2_])))
        part = pn.Partition.sliding_window((3, 3), 2, padding=1)
        print_latex("V^(d,d',c+1) for a 3x3 map, 2x2 mask, padding 1 (47.1257)",
                    shipped_operator(part, _sym.col("w", 4)))
    return [claim.run() for claim in CLAIMS]


if __name__ == "__main__":
    raise SystemExit(module_main(run))
