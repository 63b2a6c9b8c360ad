"""Partitioning and feature maps: V, its membership matrix, and correlation layers.

* (47.1149, 47.1153) the book's V for subvectors {1,4,6}, {2,5,4}, {3,6,1}, {2,4,1}.
* (47.1151) (I_P ⊗ 1_S^T) V marks which entries form each subvector.
* (47.1152) V h = col{h_p} for sliding windows (stride > 1, zero padding,
  dilation, 1-D/2-D/3-D, non-square) and an unstructured partition; the
  reference reads each window entry by direct summation with a one-hot mask.
* (47.1157-47.1158, 47.1161) y^(d) = f(H^T w^(d) - θ^(d) 1) for D = 2 masks.
* (47.1163-47.1164, 47.1190-47.1191) several input maps: y^(d) = f(Σ_j H_j^T w_j^(d) - θ^(d)(j)) (the
  1 printed in (47.1189) is an erratum).
* (47.1155, 47.1165, 47.1167) a correlation map has S + 1 parameters and P(S + 1) connections;
  the count printed in (47.1166) is an erratum (see :mod:`derivations.errata`).
"""
from __future__ import annotations

import numpy as np
import scipy.signal
import sympy

import partitionnet as pn
from partitionnet import symbolic as _sym

from . import _direct
from ._check import Check, Claim, allclose, module_main, print_latex, same_matrix


f = sympy.Function("f")

#: The example of (47.1149), 1-based as printed.
BOOK_SUBVECTORS = [[1, 4, 6], [2, 5, 4], [3, 6, 1], [2, 4, 1]]
BOOK_V = [[1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0],
          [0, 0, 0, 0, 1, 0], [0, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1],
          [1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0]]   # (47.1149)
BOOK_ROWS_1153 = [1, 4, 6, 2, 5, 4, 3, 6, 1, 2, 4, 1]                                      # e_k^T of (47.1153)
BOOK_MEMBERSHIP = [[1, 0, 0, 1, 0, 1], [0, 1, 0, 1, 1, 0], [1, 0, 1, 0, 0, 1], [1, 1, 0, 1, 0, 0]]  # (47.1151)

#: Sliding-window geometries: (map, kernel, stride, padding, dilation).
GEOMETRIES = [
    ((4, 5), (2, 3), (2, 1), (1, 1), (1, 1)),      # non-square, stride > 1, zero padding
    ((7,), (3,), (2,), (2,), (2,)),                # 1-D, dilation 2
    ((3, 2, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1), (1, 1, 1)),  # 3-D, 'full' padding
]
#: An unstructured partition with overlaps and a repeated entry (Fig. 47.86, right).
UNSTRUCTURED = [[4, 0, 2], [1, 1, 3], [0, 4, 4], [3, 2, 0]]


def partition_cases():
    """(label, Partition, reference subvectors as a function of the symbolic map)."""
    cases = [("book (47.1149)", pn.Partition.from_indices(BOOK_SUBVECTORS, 6, one_based=True),
              lambda x: _direct.gather(x, [[i - 1 for i in row] for row in BOOK_SUBVECTORS])),
             ("unstructured", pn.Partition.from_indices(UNSTRUCTURED, 5),
              lambda x: _direct.gather(x, UNSTRUCTURED))]
    for shape, kernel, stride, padding, dilation in GEOMETRIES:
        part = pn.Partition.sliding_window(shape, kernel, stride=stride, padding=padding, dilation=dilation)
        cases.append((f"map {shape} kernel {kernel} stride {stride} pad {padding} dil {dilation}", part,
                      _window_reader(shape, kernel, stride, padding, dilation)))
    return cases


def _window_reader(shape, kernel, stride, padding, dilation):
    """Subvectors by direct summation: entry s of every window is the correlation with the one-hot mask e_s."""
    def read(x):
        X = np.asarray(list(x), dtype=object).reshape(shape, order="F")
        S = int(np.prod(kernel))
        columns = []
        for s in range(S):
            E = np.zeros(S, dtype=object)
            E[s] = 1
            F = _direct.correlate(X, E.reshape(kernel, order="F"), stride=stride, padding=padding, dilation=dilation)
            columns.append(list(F.reshape(-1, order="F")))
        return [list(row) for row in zip(*columns)]
    return read


def symbolic_patches(part: pn.Partition, x: sympy.Matrix) -> sympy.Matrix:
    """H = [h_1 .. h_P] (S x P, 47.1157) from the exact V of the library."""
    return (part.to_sympy() * x).reshape(part.P, part.S).T


def _reference_z(reader, x, w):
    """z(p) = h_p^T w with h_p read by the reference (no V)."""
    return sympy.Matrix([sum((a * b for a, b in zip(h, w)), sympy.Integer(0)) for h in reader(list(x))])


# ---------------------------------------------------------------------- checkers
def check_book_matrix() -> bool:
    """(47.1149, 47.1153): the library's V for the book's subvectors is the printed matrix."""
    part = pn.Partition.from_indices(BOOK_SUBVECTORS, 6, one_based=True)
    V = part.to_sympy()
    rows = sympy.Matrix([[int(j + 1 == k) for j in range(6)] for k in BOOK_ROWS_1153])
    return V == sympy.Matrix(BOOK_V) == rows and list(V * sympy.Matrix(range(1, 7))) == BOOK_ROWS_1153


def check_membership() -> tuple[bool, str]:
    """(47.1151): (I_P ⊗ 1_S^T) V equals the printed matrix for the book and ``membership()`` everywhere."""
    for label, part, _ in partition_cases():
        formula = _sym.kron(_sym.eye(part.P), _sym.ones(1, part.S)) * part.to_sympy()
        if formula != _sym.from_scipy(part.membership()):
            return False, label
    book = pn.Partition.from_indices(BOOK_SUBVECTORS, 6, one_based=True)
    return _sym.from_scipy(book.membership()) == sympy.Matrix(BOOK_MEMBERSHIP), "book"


def check_stacking() -> tuple[bool, str]:
    """(47.1152): V h = col{h_p}, against subvectors read by direct summation."""
    for label, part, reader in partition_cases():
        x = _sym.col("h", part.M)
        reference = sympy.Matrix([v for h in reader(list(x)) for v in h])
        if not same_matrix(part.to_sympy() * x, reference):
            return False, label
    return True, ""


def check_feature_maps() -> tuple[bool, str]:
    """(47.1157-47.1158, 47.1161): y^(d) = f(H^T w^(d) - θ^(d) 1), d = 1, 2, for every partition case."""
    for label, part, reader in partition_cases():
        x = _sym.col("h", part.M)
        H = symbolic_patches(part, x)
        for d in range(2):
            w, theta = _sym.col(f"w{d}_", part.S), sympy.Symbol(f"theta{d}")
            y = (H.T * w - theta * _sym.ones(part.P)).applyfunc(f)
            if not same_matrix(y, (_reference_z(reader, x, w) - theta * _sym.ones(part.P)).applyfunc(f)):
                return False, f"{label}, d = {d + 1}"
    return True, ""


def check_input_maps() -> tuple[bool, str]:
    """(47.1163-47.1164, 47.1190-47.1191a; 47.1189 corrected): three input maps, one mask and bias per input map."""
    for label, part, reader in partition_cases()[1:3]:
        xs = [_sym.col(f"h{j}_", part.M) for j in range(3)]
        ws = [_sym.col(f"w{j}_", part.S) for j in range(3)]
        thetas = sympy.symbols("theta0:3")
        z = sum((symbolic_patches(part, x).T * w - th * _sym.ones(part.P) for x, w, th in zip(xs, ws, thetas)),
                sympy.zeros(part.P, 1))
        ref = sum((_reference_z(reader, x, w) - th * _sym.ones(part.P) for x, w, th in zip(xs, ws, thetas)),
                  sympy.zeros(part.P, 1))
        if not same_matrix(z.applyfunc(f), ref.applyfunc(f)):
            return False, label
    return True, ""


def check_scipy() -> tuple[bool, str]:
    """Numeric: H^T w = scipy.signal.correlate for valid/same/full, and the RGB layer of (47.1191)
    equals Σ_j correlate(x_j, W_j) - Σ_j θ(j), pooled by direct loops (47.1191b)."""
    rng = np.random.default_rng(1158)
    X = rng.standard_normal((9, 7))
    for mode, kernel in (("valid", (2, 4)), ("same", (3, 5)), ("full", (2, 4))):
        W = rng.standard_normal(kernel)
        part = pn.Partition.sliding_window(X.shape, kernel, padding=mode)
        if not allclose(part.patches(pn.vec(X)).T @ pn.vec(W), pn.vec(scipy.signal.correlate(X, W, mode))):
            return False, f"mode {mode}"
    rgb, masks, theta = rng.standard_normal((3, 8, 6)), rng.standard_normal((3, 3, 3)), rng.standard_normal(3)
    part = pn.Partition.sliding_window((8, 6), 3, padding="same")
    z = sum(part.patches(pn.vec(rgb[j])).T @ pn.vec(masks[j]) - theta[j] for j in range(3))
    ref = sum(scipy.signal.correlate(rgb[j], masks[j], "same") for j in range(3)) - theta.sum()
    pool = pn.Pooling.windows((8, 6), 2, kind="max")
    t, _ = pool.pool(np.tanh(z))
    t_ref = _direct.pool(list(np.tanh(pn.vec(ref))), pool.regions, "max")
    return allclose(z, pn.vec(ref)) and allclose(t, t_ref), "RGB layer"


def check_parameter_count() -> tuple[bool, str]:
    """(47.1155): the map x -> H^T w - θ1 uses S + 1 parameters on P(S + 1) connections ('valid' window);
    (47.1165, 47.1167): a 64 x 64 image has M = P = 4096 with a 'same' mask. (47.1166) prints a wrong
    count and is checked as an erratum."""
    part = pn.Partition.sliding_window((5, 4), (3, 2))
    w, theta = _sym.col("w", part.S), sympy.Symbol("theta")
    A = _sym.kron(_sym.eye(part.P), sympy.SparseMatrix(w.T)) * part.to_sympy()   # z = A x - θ 1
    params = A.free_symbols | {theta}
    connections = len(A.todok()) + part.P
    big = pn.Partition.sliding_window((64, 64), 9, padding="same")
    ok = len(params) == part.S + 1 and connections == part.P * (part.S + 1) and big.M == big.P == 4096
    return ok, f"{len(params)} parameters, {connections} connections"


CLAIMS = [
    Claim("47.1149, 47.1153", "book's V (12 x 6) from its subvectors", "symbolic", check_book_matrix),
    Claim("47.1150–47.1151", "(I_P ⊗ 1_S^T) V = membership", "symbolic", check_membership),
    Claim("47.1152", "V h = col{h_p}: stride, padding, dilation, 1/2/3-D, unstructured", "symbolic",
          check_stacking),
    Claim("47.1157–47.1158, 47.1161", "y^(d) = f(H^T w^(d) - θ^(d) 1)", "symbolic", check_feature_maps),
    Claim("47.1163–47.1164, 47.1190–47.1191", "several input maps: Σ_j (H_j^T w_j - θ(j))", "symbolic",
          check_input_maps),
    Claim("47.1158, 47.1191", "H^T w = correlate (valid/same/full); RGB layer + pooling", "direct convolution",
          check_scipy),
    Claim("47.1155, 47.1165, 47.1167", "S + 1 parameters, P(S + 1) connections per map", "symbolic",
          check_parameter_count),
]


def run(*, latex: bool = False) -> list[Check]:
    if latex:
        book = pn.Partition.from_indices(BOOK_SUBVECTORS, 6, one_based=True)
        print_latex("V of (47.1149)", book.to_sympy())
        print_latex("(I_P ⊗ 1_S^T) V of (47.1151)", _sym.from_scipy(book.membership()))
    return [claim.run() for claim in CLAIMS]


if __name__ == "__main__":
    raise SystemExit(module_main(run))
