"""The convolution chapter (001): the layer as a matrix, output sizes, and the backpropagation paths.

Indices are 1-based as in the chapter; a map index outside its range reads 0.

* (8.11-8.13) the 3 x 3 image, 2 x 2 kernel example: the printed 4 x 9 matrix is (I_P ⊗ w^T) V.
* (8.14-8.19), E8.7: output sizes with padding and stride, against the library and scipy.
* (8.32-8.37) through the summation: dLZ = dN and db = Σ dn (sum pooling over the whole map).
* (8.38-8.45) dA^l = Σ_h (rot180 LW^{h,l}) correlated over the zero-padded dLZ^h ('full').
* (8.46-8.48) dLW^{h,l} = dLZ^h ⊗ A^l ('valid' correlation); (8.49-8.53) dN = Ḟ ∘ dA.
* P8.1 (flip), P8.2 with E8.4 (impulse response of a shift), P8.3-P8.4 (average
  pooling paths), E8.8 (max pooling path), E8.9 (a product net input).
"""
from __future__ import annotations

import itertools

import numpy as np
import scipy.signal
import sympy

import partitionnet as pn
from partitionnet import symbolic as _sym

from . import _direct
from ._check import Check, Claim, allclose, module_main, print_latex, same_matrix


f = sympy.Function("f")


def mat(name, shape, **assumptions) -> sympy.Matrix:
    return sympy.Matrix(_sym.grid(name, shape, **assumptions))


def at(M: sympy.Matrix, i: int, j: int):
    """1-based entry of M, zero outside."""
    return M[i - 1, j - 1] if 1 <= i <= M.rows and 1 <= j <= M.cols else 0


def correlate_813(W: sympy.Matrix, P: sympy.Matrix) -> sympy.Matrix:
    """(8.13): z_{m,n} = Σ_{i,j} w_{i,j} p_{m+i-1, n+j-1} over the 'valid' range (8.14-8.15)."""
    return sympy.Matrix(P.rows - W.rows + 1, P.cols - W.cols + 1, lambda m, n: sum(
        W[i, j] * P[m + i, n + j] for i in range(W.rows) for j in range(W.cols)))


def full_correlation(D: sympy.Matrix, K: sympy.Matrix) -> sympy.Matrix:
    """Correlation of the zero-padded D with K (padding r - 1, c - 1): the 'full' mode."""
    out = _direct.correlate(np.array(D, dtype=object), np.array(K, dtype=object), padding=(K.rows - 1, K.cols - 1))
    return sympy.Matrix(out)


def rot180(W: sympy.Matrix) -> sympy.Matrix:
    return W[::-1, ::-1]


# ---------------------------------------------------------------------- 8.11-8.19
def check_matrix_form() -> bool:
    """(8.11-8.13): the printed 4 x 9 matrix is (I_P ⊗ w^T) V, w = vec(W), acting on vec(P)."""
    w11, w12, w21, w22 = sympy.symbols("w11 w12 w21 w22")
    printed = sympy.Matrix([[w11, w21, 0, w12, w22, 0, 0, 0, 0], [0, w11, w21, 0, w12, w22, 0, 0, 0],
                            [0, 0, 0, w11, w21, 0, w12, w22, 0], [0, 0, 0, 0, w11, w21, 0, w12, w22]])
    W, P = sympy.Matrix([[w11, w12], [w21, w22]]), mat("p", (3, 3))
    part = pn.Partition.sliding_window((3, 3), (2, 2))
    A = _sym.kron(_sym.eye(part.P), sympy.SparseMatrix(_sym.vec(W).T)) * part.to_sympy()
    return same_matrix(A, printed) and same_matrix(A * _sym.vec(P), _sym.vec(correlate_813(W, P)))


def output_size(R, r, pad, stride):
    """(8.18-8.19) as printed (exact division)."""
    return sympy.sympify(R + 2 * pad - r) / stride + 1


def check_output_sizes() -> tuple[bool, str]:
    """(8.14-8.19): whenever the stride divides R + 2P - r, the library's map size is the formula; for
    unit stride and no padding it is scipy's 'valid' size; E8.7: 15 x 15, 3 x 3, stride 2, pad 1 gives 8 x 8,
    and 'same' with a 3 x 3 kernel needs P = 1."""
    for R, r, pad, stride in itertools.product(range(1, 10), range(1, 6), range(3), range(1, 4)):
        if r > R + 2 * pad or (R + 2 * pad - r) % stride:
            continue
        part = pn.Partition.sliding_window((R, R + 1), (r, 1), stride=stride, padding=(pad, 0))
        if part.output_shape[0] != output_size(R, r, pad, stride):
            return False, f"R={R}, r={r}, P={pad}, S={stride}"
        if stride == 1 and pad == 0 and scipy.signal.correlate(np.ones(R), np.ones(r), "valid").size != R - r + 1:
            return False, f"scipy 'valid' size, R={R}, r={r}"
    exercise = pn.Partition.sliding_window((15, 15), 3, stride=2, padding=1).output_shape
    P = sympy.Symbol("P")
    same_pad = sympy.solve(sympy.Eq(output_size(15, 3, P, 1), 15), P)
    library_pad = pn.Partition.sliding_window((15, 15), 3, padding="same").geometry["padding"]
    return exercise == (8, 8) and same_pad == [1] and library_pad == (1, 1), f"E8.7: {exercise}, {same_pad}"


# ---------------------------------------------------------------------- 8.32-8.53
def check_summation_paths() -> tuple[bool, str]:
    """(8.32-8.37): with N = LZ + b (tied bias), dLZ = dN and db = Σ dn, which is sum pooling over the map."""
    LZ, dN, b = mat("lz", (3, 4)), mat("dn", (3, 4)), sympy.Symbol("b")
    F = sum(dN.multiply_elementwise(LZ + b * sympy.ones(3, 4)))     # any F with ∂F/∂N = dN
    ok = same_matrix(LZ.applyfunc(lambda v: sympy.diff(F, v)), dN) and sympy.expand(sympy.diff(F, b) - sum(dN)) == 0
    values = np.random.default_rng(837).standard_normal((3, 4))
    t, _ = pn.Pooling.windows((3, 4), (3, 4), kind="mean").pool(pn.vec(values))
    return ok and allclose(t * values.size, [values.sum()]), "8.37 via whole-map pooling"


def input_gradient(dLZ, LW, rotate) -> list:
    """(8.45), corrected: dA^l = Σ_h full-correlation(dLZ^h, rotate(LW^{h,l}))."""
    H_m, H_n = len(dLZ), len(LW[0])
    return [sum((full_correlation(dLZ[h], rotate(LW[h][l])) for h in range(H_m)),
                sympy.zeros(*full_correlation(dLZ[0], LW[0][0]).shape)) for l in range(H_n)]


def weight_layer(H_n=2, H_m=3, A_shape=(4, 5), kernel=(2, 3)):
    """Symbols for (8.38): inputs A^l, kernels LW^{h,l}, sensitivities dLZ^h, and F = Σ_h Σ dlz lz."""
    A = [mat(f"a{l}", A_shape) for l in range(H_n)]
    LW = [[mat(f"lw{h}{l}", kernel) for l in range(H_n)] for h in range(H_m)]
    LZ = [sum((correlate_813(LW[h][l], A[l]) for l in range(H_n)),
              sympy.zeros(A_shape[0] - kernel[0] + 1, A_shape[1] - kernel[1] + 1)) for h in range(H_m)]   # (8.38)
    dLZ = [mat(f"dlz{h}", LZ[0].shape) for h in range(H_m)]
    F = sum(sum(dLZ[h].multiply_elementwise(LZ[h])) for h in range(H_m))
    return A, LW, dLZ, F


def check_input_gradient(rotate) -> tuple[bool, str]:
    """(8.38-8.45): ∂F/∂A^l equals (8.44) typed as a sum and the 'full' form with rotate(LW)."""
    A, LW, dLZ, F = weight_layer()
    r, c = LW[0][0].shape
    by_formula = input_gradient(dLZ, LW, rotate)
    for l, Al in enumerate(A):
        grad = Al.applyfunc(lambda v: sympy.diff(F, v))
        eq_844 = sympy.Matrix(*Al.shape, lambda u, v: sum(                                 # (8.44), 1-based
            at(LW[h][l], r - i + 1, c - j + 1) * at(dLZ[h], i + u + 1 - r, j + v + 1 - c)
            for h in range(len(dLZ)) for i in range(1, r + 1) for j in range(1, c + 1)))
        if not (same_matrix(grad, eq_844) and same_matrix(grad, by_formula[l])):
            return False, f"l = {l + 1}"
    return True, ""


def check_weight_gradient() -> bool:
    """(8.46-8.48): ∂F/∂LW^{h,l} = dLZ^h ⊗ A^l, the 'valid' correlation of A^l with dLZ^h."""
    A, LW, dLZ, F = weight_layer()
    return all(same_matrix(LW[h][l].applyfunc(lambda v: sympy.diff(F, v)), correlate_813(dLZ[h], A[l]))
               for h in range(len(LW)) for l in range(len(A)))


def check_scipy_paths() -> tuple[bool, str]:
    """Numeric, 12 x 10 input, 3 x 4 kernel: dA = convolve(dLZ, LW, 'full') = correlate(dLZ, rot180 LW, 'full')
    = V^T applied to the sensitivities; dLW = correlate(A, dLZ, 'valid')."""
    rng = np.random.default_rng(845)
    A, LW = rng.standard_normal((12, 10)), rng.standard_normal((3, 4))
    part = pn.Partition.sliding_window(A.shape, LW.shape)
    dLZ = rng.standard_normal(part.output_shape)
    dA = scipy.signal.convolve(dLZ, LW, "full")
    via_V = part.adjoint(np.kron(pn.vec(dLZ), pn.vec(LW)))            # V^T col{dlz(p) w}
    dLW = part.patches(pn.vec(A)) @ pn.vec(dLZ)
    ok = (allclose(dA, scipy.signal.correlate(dLZ, LW[::-1, ::-1], "full")) and allclose(pn.vec(dA), via_V)
          and allclose(dLW, pn.vec(scipy.signal.correlate(A, dLZ, "valid"))))
    return ok, ""


def check_activation_path() -> bool:
    """(8.49-8.53): A = f(N) gives dN = Ḟ ∘ dA."""
    N, dA = mat("n", (2, 3)), mat("da", (2, 3))
    F = sum(dA.multiply_elementwise(N.applyfunc(f)))
    return same_matrix(N.applyfunc(lambda v: sympy.diff(F, v)),
                       N.applyfunc(lambda v: sympy.diff(f(v), v)).multiply_elementwise(dA))


# ---------------------------------------------------------------------- solved problems and exercises
def check_flip(flip) -> bool:
    """P8.1: the convolution Σ_ij w_{i,j} p_{m-i,n-j} (8.8) equals the correlation with flip(w); and the
    printed kernel 1..9 flipped left-right then top-bottom is the last figure of P8.1."""
    W, P = mat("w", (2, 3)), mat("p", (3, 4))
    conv = sympy.Matrix(_direct.convolve_full(np.array(P, dtype=object), np.array(W, dtype=object)))
    figure = sympy.Matrix([[7, 8, 9], [4, 5, 6], [1, 2, 3]])       # rows j = 2, 1, 0 (j points up)
    return same_matrix(conv, full_correlation(P, flip(W))) and flip(figure) == sympy.Matrix(
        [[3, 2, 1], [6, 5, 4], [9, 8, 7]])


def image_to_points(rows) -> dict:
    """A printed image (top row first) as {(x, y): value}, x to the right, y up."""
    return {(c, -r): v for r, row in enumerate(rows) for c, v in enumerate(row) if v}


def shift(points: dict, dx: int, dy: int) -> dict:
    return {(x + dx, y + dy): v for (x, y), v in points.items()}


def convolve_points(p: dict, w: dict) -> dict:
    """(8.5): z(m) = Σ_i p(i) w(m - i), on sparse point sets."""
    out = {}
    for (x, y), a in p.items():
        for (u, v), b in w.items():
            out[(x + u, y + v)] = out.get((x + u, y + v), 0) + a * b
    return {k: v for k, v in out.items() if v}


#: P8.2's kernel as printed; its origin (0, 0) is the bottom-left entry, y points up as in P8.1.
P82_KERNEL = {(1, 1): 1}
E84_IMAGE = [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 0, 0]]


def check_impulse_response() -> bool:
    """P8.2, E8.4: the impulse response of "shift right 1, up 1" is the printed kernel, and convolving the
    image of E8.4 with it performs the shift (8.3-8.5)."""
    impulse = {(0, 0): 1}
    image = image_to_points(E84_IMAGE)
    return shift(impulse, 1, 1) == P82_KERNEL and convolve_points(image, P82_KERNEL) == shift(image, 1, 1)


def check_average_pooling_paths() -> tuple[bool, str]:
    """P8.3: dA = lw ⊠_{r,c} dLZ (each entry expanded to an r x c block), = T^T upv(v) of the library;
    P8.4: dlw = ⊞_{S_r,S_c}(dLZ ∘ ⊞_{r,c} A)."""
    r, c = 2, 3
    A, lw = mat("a", (4, 6)), sympy.Symbol("lw")
    dLZ = mat("dlz", (2, 2))
    blocks = sympy.Matrix(2, 2, lambda i, j: sum(A[r * i + u, c * j + v] for u in range(r) for v in range(c)))
    F = sum(dLZ.multiply_elementwise(blocks * lw))                                    # (8.22) with weight lw
    expand_blocks = sympy.Matrix(sympy.kronecker_product(dLZ, sympy.ones(r, c)))
    ok = (same_matrix(A.applyfunc(lambda v: sympy.diff(F, v)), lw * expand_blocks)
          and sympy.expand(sympy.diff(F, lw) - sum(dLZ.multiply_elementwise(blocks))) == 0)
    pool = pn.Pooling.windows((4, 6), (r, c), kind="mean")
    values = np.random.default_rng(83).standard_normal((2, 2))
    _, g = pool.pool(np.zeros(24))
    library = pool.backward(pn.vec(values) * 0.7 * r * c, g)      # mean pooling has g = 1/(rc)
    return ok and allclose(library, pn.vec(np.kron(values, np.ones((r, c))) * 0.7)), "library backward"


def check_max_pooling_path() -> tuple[bool, str]:
    """E8.8: through 2 x 2 max pooling, dA is dLZ placed at each window's maximiser, zero elsewhere;
    the library's T^T upv(v) gives the same."""
    values = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]])   # the slides' example
    A, dLZ = mat("a", (4, 4), real=True), mat("dlz", (2, 2))
    F = sum(dLZ[i, j] * sympy.Max(*A[2 * i:2 * i + 2, 2 * j:2 * j + 2]) for i in range(2) for j in range(2))
    grad = A.applyfunc(lambda v: sympy.diff(F, v)).subs(dict(zip(A, values.flatten())))
    expected = sympy.zeros(4, 4)
    for i, j in np.ndindex(2, 2):
        block = values[2 * i:2 * i + 2, 2 * j:2 * j + 2]
        u, v = np.unravel_index(np.argmax(block), (2, 2))
        expected[2 * i + u, 2 * j + v] = dLZ[i, j]
    pool = pn.Pooling.windows((4, 4), 2, kind="max")
    _, g = pool.pool(pn.vec(values.astype(float)))
    dz = np.array([[0.5, -1.0], [2.0, 0.25]])
    library = pool.backward(pn.vec(dz), g)
    numeric = np.array(expected.subs(dict(zip(dLZ, dz.flatten()))), dtype=float)
    return same_matrix(grad, expected) and allclose(library, pn.vec(numeric)), ""


def check_product_net_input() -> bool:
    """E8.9: N = b LZ gives dLZ = b dN and db = Σ dN ∘ LZ."""
    LZ, dN, b = mat("lz", (2, 3)), mat("dn", (2, 3)), sympy.Symbol("b")
    F = sum(dN.multiply_elementwise(b * LZ))
    return same_matrix(LZ.applyfunc(lambda v: sympy.diff(F, v)), b * dN) and sympy.expand(
        sympy.diff(F, b) - sum(dN.multiply_elementwise(LZ))) == 0


CLAIMS = [
    Claim("8.11–8.13", "printed 4 x 9 matrix = (I ⊗ w^T) V", "symbolic", check_matrix_form),
    Claim("8.14–8.19, E8.7", "output size (R + 2P - r)/S + 1 (exhaustive, divisible cases)", "numeric",
          check_output_sizes),
    Claim("8.32–8.37", "dLZ = dN; db = Σ dn = sum pooling (not an average, see errata)", "symbolic",
          check_summation_paths),
    Claim("8.38–8.45", "dA^l = Σ_h full-corr(dLZ^h, rot180 LW^{h,l}) (8.39, 8.41, 8.45 as corrected)", "symbolic",
          check_input_gradient, rot180),
    Claim("8.46–8.48", "dLW^{h,l} = dLZ^h ⊗ A^l (valid)", "symbolic", check_weight_gradient),
    Claim("8.45, 8.48", "dA = convolve(dLZ, LW, 'full') = V^T(...); dLW = correlate(A, dLZ)",
          "direct convolution", check_scipy_paths),
    Claim("8.49–8.53", "dN = Ḟ ∘ dA", "symbolic", check_activation_path),
    Claim("P8.1", "convolution = correlation with the flipped kernel", "symbolic", check_flip, rot180),
    Claim("P8.2, E8.4", "impulse response of a shift (right and up, as corrected); convolution performs it", "symbolic",
          check_impulse_response),
    Claim("P8.3–P8.4", "average pooling paths: lw ⊠ dLZ and ⊞(dLZ ∘ ⊞A)", "symbolic",
          check_average_pooling_paths),
    Claim("E8.8", "max pooling path: dLZ at the maximisers", "symbolic", check_max_pooling_path),
    Claim("E8.9", "product net input: dLZ = b dN, db = Σ dN ∘ LZ", "symbolic", check_product_net_input),
]


def run(*, latex: bool = False) -> list[Check]:
    if latex:
        part = pn.Partition.sliding_window((3, 3), (2, 2))
        w = _sym.vec(mat("w", (2, 2)))
        print_latex("(8.12): (I_P ⊗ w^T) V", _sym.kron(_sym.eye(part.P), sympy.SparseMatrix(w.T)) * part.to_sympy())
    return [claim.run() for claim in CLAIMS]


if __name__ == "__main__":
    raise SystemExit(module_main(run))
