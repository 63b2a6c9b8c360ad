"""The lecture notes (003, 000) and the slides (004).

003 (MATLAB notes):
* the transpose of x -> x * a ('valid' convolution) is δ -> δ * a(-.) ('full');
* ∂E/∂a = convn(flipall(x), δ, 'valid') for E = δ^T (x * a).
000 (Spanish notes): eq. (30) ∇_w̃ E = a ⋆ ∇_p E and eq. (46) ∇_a E = Σ_o pad(∇_p E) ⋆ w_o.
004 (slides):
* "deconvolution" is multiplication by the transpose: the nine printed ∂L/∂X_ij and
  four ∂L/∂F_ij equal A^T ∂L/∂O and X ⋆ ∂L/∂O;
* the output size ⌊(n + 2p - f)/s + 1⌋, strided = unit stride then down-sampling;
* the pooling examples (max 2 x 2, overlapping max 3 x 3 stride 1, average);
* the sparse-versus-dense cost table for a 320 x 280 input and a 2 x 1 kernel.
"""
from __future__ import annotations

import itertools

import numpy as np
import scipy.signal
import scipy.sparse as sps
import sympy

import partitionnet as pn
from partitionnet import symbolic as _sym

from . import _direct
from ._check import Check, Claim, allclose, module_main, print_latex, same_matrix


SHAPES = [((6,), (3,)), ((4, 5), (2, 3))]   # 1-D as in 003's derivation, and 2-D


def grid(name, shape):
    return np.array(_sym.grid(name, shape), dtype=object)


def flip(a):
    """a(-.): reverse every axis (MATLAB's flipall)."""
    return np.asarray(a)[(slice(None, None, -1),) * np.ndim(a)]


def convolve_valid(x, a):
    """'valid' convolution: the part of the full convolution where a lies inside x."""
    full = _direct.convolve_full(x, a)
    return full[tuple(slice(k - 1, n) for n, k in zip(np.shape(x), np.shape(a)))]


def jacobian(outputs, inputs) -> sympy.Matrix:
    outputs, inputs = list(np.ravel(outputs, order="F")), list(np.ravel(inputs, order="F"))
    return sympy.Matrix(len(outputs), len(inputs), lambda i, j: sympy.diff(outputs[i], inputs[j]))


# ---------------------------------------------------------------------- 003
def check_valid_transpose(kernel_transform) -> tuple[bool, str]:
    """003: W_a^T δ = δ * kernel_transform(a) ('full'), where W_a x = x * a ('valid'); W_a is also the
    library's (I ⊗ flip(a)^T) V, since convolution is correlation with the flipped kernel."""
    for x_shape, a_shape in SHAPES:
        x, a = grid("x", x_shape), grid("a", a_shape)
        W_a = jacobian(convolve_valid(x, a), x)
        delta = grid("d", np.shape(convolve_valid(x, a)))
        part = pn.Partition.sliding_window(x_shape, a_shape)
        library = _sym.kron(_sym.eye(part.P), sympy.SparseMatrix(_sym.vec(flip(a)).T)) * part.to_sympy()
        full = _direct.convolve_full(delta, kernel_transform(a))
        if not (same_matrix(W_a, library) and same_matrix(W_a.T * _sym.vec(delta), _sym.vec(full))):
            return False, f"x {x_shape}, a {a_shape}"
    return True, ""


def check_kernel_gradient() -> tuple[bool, str]:
    """003: for E = δ^T vec(x * a), ∂E/∂a = convn(flipall(x), δ, 'valid')."""
    for x_shape, a_shape in SHAPES:
        x, a = grid("x", x_shape), grid("a", a_shape)
        f = convolve_valid(x, a)
        delta = grid("d", f.shape)
        E = sum(np.ravel(delta * f))
        grad = sympy.Matrix([sympy.diff(E, v) for v in np.ravel(a, order="F")])
        if not same_matrix(grad, _sym.vec(convolve_valid(flip(x), delta))):
            return False, f"x {x_shape}, a {a_shape}"
    return True, ""


def check_scipy_003() -> bool:
    """Numeric, 11 x 9 input, 3 x 4 kernel: the transpose of scipy's 'valid' convolution (built column by
    column) applied to δ is convolve(δ, flip(a), 'full'); the kernel gradient is convolve(flip(x), δ, 'valid')."""
    rng = np.random.default_rng(3)
    x, a = rng.standard_normal((11, 9)), rng.standard_normal((3, 4))
    out = scipy.signal.convolve(x, a, "valid").shape
    W = np.column_stack([pn.vec(scipy.signal.convolve(pn.unvec(e, x.shape), a, "valid")) for e in np.eye(x.size)])
    delta = rng.standard_normal(out)
    grad_a = np.array([np.sum(delta * scipy.signal.convolve(x, pn.unvec(e, a.shape), "valid"))
                       for e in np.eye(a.size)])
    return (allclose(W.T @ pn.vec(delta), pn.vec(scipy.signal.convolve(delta, flip(a), "full")))
            and allclose(grad_a, pn.vec(scipy.signal.convolve(flip(x), delta, "valid"))))


# ---------------------------------------------------------------------- 000
def check_notes_000() -> bool:
    """000, eqs. (26)-(46): with p_o = a ⋆ w̃_o ('valid' correlation) and E = Σ_o <∇p_o, p_o>,
    ∇_w̃o E = a ⋆ ∇p_o (30) and ∇_a E = Σ_o pad(∇p_o) ⋆ w_o with w_o = flip(w̃_o) (46)."""
    a = grid("a", (4, 5))
    w_tilde = [grid(f"wt{o}", (2, 3)) for o in range(2)]
    p = [_direct.correlate(a, wt) for wt in w_tilde]
    grad_p = [grid(f"gp{o}", p[0].shape) for o in range(2)]
    E = sum(sum(np.ravel(g * po)) for g, po in zip(grad_p, p))
    ok = all(same_matrix(jacobian([E], wt).T, _sym.vec(_direct.correlate(a, g))) for wt, g in zip(w_tilde, grad_p))
    grad_a = sum((_direct.correlate(np.pad(g, ((1, 1), (2, 2))), flip(wt)) for g, wt in zip(grad_p, w_tilde)),
                 np.zeros(a.shape, dtype=object))
    return ok and same_matrix(jacobian([E], a).T, _sym.vec(grad_a))


# ---------------------------------------------------------------------- 004
def _slides_example():
    X = sympy.Matrix(3, 3, lambda i, j: sympy.Symbol(f"X{i + 1}{j + 1}"))
    F = sympy.Matrix(2, 2, lambda i, j: sympy.Symbol(f"F{i + 1}{j + 1}"))
    dO = sympy.Matrix(2, 2, lambda i, j: sympy.Symbol(f"dO{i + 1}{j + 1}"))
    return X, F, dO


def printed_dX(F, dO):
    """The nine ∂L/∂X_ij as printed on the slides (row by row)."""
    return sympy.Matrix([
        [dO[0, 0] * F[0, 0], dO[0, 0] * F[0, 1] + dO[0, 1] * F[0, 0], dO[0, 1] * F[0, 1]],
        [dO[0, 0] * F[1, 0] + dO[1, 0] * F[0, 0],
         dO[0, 0] * F[1, 1] + dO[0, 1] * F[1, 0] + dO[1, 0] * F[0, 1] + dO[1, 1] * F[0, 0],
         dO[0, 1] * F[1, 1] + dO[1, 1] * F[0, 1]],
        [dO[1, 0] * F[1, 0], dO[1, 0] * F[1, 1] + dO[1, 1] * F[1, 0], dO[1, 1] * F[1, 1]]])


def printed_dF(X, dO):
    """The four ∂L/∂F_ij as printed."""
    return sympy.Matrix(2, 2, lambda i, j: sum(dO[m, n] * X[m + i, n + j] for m in range(2) for n in range(2)))


def check_deconvolution() -> bool:
    """004: O = valid correlation of X with F; the printed ∂L/∂X equal A^T vec(∂L/∂O) (A = (I ⊗ f^T) V, the
    layer's matrix) and 'full convolution' with the rotated filter; the printed ∂L/∂F equal X ⋆ ∂L/∂O."""
    X, F, dO = _slides_example()
    part = pn.Partition.sliding_window((3, 3), (2, 2))
    A = _sym.kron(_sym.eye(part.P), sympy.SparseMatrix(_sym.vec(F).T)) * part.to_sympy()
    O = (A * _sym.vec(X)).reshape(2, 2).T                          # unvec of a column-stacked 2 x 2
    L = sum(dO.multiply_elementwise(O))
    dX = X.applyfunc(lambda v: sympy.diff(L, v))
    rotated = sympy.Matrix(_direct.correlate(np.pad(np.array(dO, dtype=object), 1), flip(np.array(F, dtype=object))))
    return (O[0, 0] == sum(X[i, j] * F[i, j] for i in range(2) for j in range(2))
            and same_matrix(dX, printed_dX(F, dO)) and same_matrix(_sym.vec(dX), A.T * _sym.vec(dO))
            and same_matrix(dX, rotated)
            and same_matrix(F.applyfunc(lambda v: sympy.diff(L, v)), printed_dF(X, dO)))


def floor_size(n, f, p, s) -> int:
    """⌊(n + 2p - f)/s + 1⌋ of the slides."""
    return (n + 2 * p - f) // s + 1


def check_output_size() -> tuple[bool, str]:
    """004: ⌊(n + 2p - f)/s + 1⌋ is the library's size for every case (divisible or not) and scipy's
    'valid' correlation of the padded input, subsampled by s; the 'same' choice p = (f - 1)/2 keeps n."""
    rng = np.random.default_rng(4)
    for n, f, p, s in itertools.product(range(1, 11), range(1, 6), range(3), range(1, 4)):
        if f > n + 2 * p:
            continue
        size = pn.Partition.sliding_window((n,), f, stride=s, padding=p).output_shape[0]
        x, w = rng.standard_normal(n), rng.standard_normal(f)
        strided = scipy.signal.correlate(np.pad(x, p), w, "valid")[::s]
        if size != floor_size(n, f, p, s) or strided.size != size:
            return False, f"n={n}, f={f}, p={p}, s={s}"
        if f % 2 and s == 1 and floor_size(n, f, (f - 1) // 2, 1) != n:
            return False, f"'same' n={n}, f={f}"
    return True, ""


def check_stride() -> bool:
    """004: Z = c(K, V, s) sums V_{(j-1)s+m, (k-1)s+n} K_{m,n}; it equals the unit-stride result down-sampled,
    and the library's stride-s layer."""
    rng = np.random.default_rng(44)
    V, K = rng.standard_normal((11, 9)), rng.standard_normal((3, 2))
    s = 2
    rows, cols = (11 - 3) // s + 1, (9 - 2) // s + 1
    Z = np.array([[sum(V[j * s + m, k * s + n] * K[m, n] for m in range(3) for n in range(2))
                   for k in range(cols)] for j in range(rows)])
    part = pn.Partition.sliding_window(V.shape, K.shape, stride=s)
    return (allclose(Z, scipy.signal.correlate(V, K, "valid")[::s, ::s])
            and allclose(pn.vec(Z), part.patches(pn.vec(V)).T @ pn.vec(K)))


SLIDES_MAP = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]], dtype=float)
SLIDES_MAP_5 = np.array([[1, 3, 2, 1, 3], [2, 9, 1, 1, 5], [1, 3, 2, 3, 2], [8, 3, 5, 1, 0], [5, 6, 1, 2, 9]],
                        dtype=float)


def pooled(values, kind):
    """2 x 2 windows, stride 2, by the library, back as a map."""
    t, _ = pn.Pooling.windows(values.shape, 2, kind=kind).pool(pn.vec(values))
    return pn.unvec(t, (values.shape[0] // 2, values.shape[1] // 2))


def check_pooling_examples() -> bool:
    """004: 2 x 2 max pooling of the 4 x 4 map is [[9, 2], [6, 3]] and average pooling [[3.75, 1.25], [3.75, 2]];
    3 x 3 max pooling with stride 1 of the 5 x 5 map (overlapping: a sliding-window partition, then the
    maximum of each subvector) is [[9, 9, 5], [9, 9, 5], [8, 6, 9]]."""
    part = pn.Partition.sliding_window((5, 5), 3)
    overlapping = pn.unvec(part.patches(pn.vec(SLIDES_MAP_5)).max(axis=0), part.output_shape)
    direct = np.array([[SLIDES_MAP_5[i:i + 3, j:j + 3].max() for j in range(3)] for i in range(3)])
    printed = [[9, 9, 5], [9, 9, 5], [8, 6, 9]]
    return (np.array_equal(pooled(SLIDES_MAP, "max"), [[9, 2], [6, 3]])
            and allclose(pooled(SLIDES_MAP, "mean"), [[3.75, 1.25], [3.75, 2]])
            and np.array_equal(overlapping, printed) and np.array_equal(direct, printed))


def cost_table(input_shape=(320, 280), kernel=(2, 1)) -> dict:
    """The slides' table, counted on the library's V: the layer is z = A x with A = (I_P ⊗ w^T) V."""
    part = pn.Partition.sliding_window(input_shape, kernel)
    w = np.arange(1.0, part.S + 1)
    A = sps.csr_array(sps.kron(sps.eye(part.P), w.reshape(1, -1)) @ part.matrix())
    return {"output": part.output_shape, "kernel floats": part.S, "dense floats": part.P * part.M,
            "sparse floats": A.nnz, "convolution flops": part.P * (2 * part.S - 1),   # S products, S - 1 sums
            "sparse flops": A.nnz + (A.nnz - part.P), "dense flops": part.P * (2 * part.M - 1), "A": A}


def check_cost_table() -> tuple[bool, str]:
    """004: for a 320 x 280 input and a 2 x 1 kernel: output 319 x 280; floats stored 2 / > 8e9 / 178,640;
    multiply-adds 267,960 / > 16e9 / 267,960; the sparse matrix reproduces scipy's correlation."""
    c = cost_table()
    x = np.random.default_rng(320).standard_normal((320, 280))
    ok = (c["output"] == (319, 280) and c["kernel floats"] == 2 and c["dense floats"] > 8e9
          and c["sparse floats"] == 2 * 319 * 280 == 178_640
          and c["convolution flops"] == 319 * 280 * 3 == 267_960 == c["sparse flops"] and c["dense flops"] > 16e9
          and allclose(c["A"] @ pn.vec(x), pn.vec(scipy.signal.correlate(x, np.array([[1.0], [2.0]]), "valid"))))
    return ok, ", ".join(f"{k}: {v}" for k, v in c.items() if k != "A")


CLAIMS = [
    Claim("003:transpose", "(x * a valid)^T δ = δ * a(-.) full", "symbolic", check_valid_transpose, flip),
    Claim("003:dE/da", "∂E/∂a = convn(flipall(x), δ, 'valid')", "symbolic", check_kernel_gradient),
    Claim("003:transpose, 003:dE/da", "the same with scipy.signal.convolve", "direct convolution",
          check_scipy_003),
    Claim("000:(30), 000:(46)", "∇w̃ E = a ⋆ ∇p, ∇a E = Σ_o pad(∇p) ⋆ w_o", "symbolic", check_notes_000),
    Claim("004:deconvolution", "printed ∂L/∂X = A^T ∂L/∂O = full conv(rot F); ∂L/∂F = X ⋆ ∂L/∂O", "symbolic",
          check_deconvolution),
    Claim("004:output size", "⌊(n + 2p - f)/s + 1⌋ = library = scipy (all cases)", "numeric",
          check_output_size),
    Claim("004:stride", "strided = unit stride then down-sampling", "direct convolution", check_stride),
    Claim("004:pooling", "max, average and overlapping max pooling examples", "numeric",
          check_pooling_examples),
    Claim("004:cost table", "320 x 280 input, 2 x 1 kernel: sizes and costs", "numeric", check_cost_table),
]


def run(*, latex: bool = False) -> list[Check]:
    if latex:
        x, a = grid("x", (5,)), grid("a", (3,))
        print_latex("003: W_a^T for x * a ('valid'), length 5, kernel 3", jacobian(convolve_valid(x, a), x).T)
    return [claim.run() for claim in CLAIMS]


if __name__ == "__main__":
    raise SystemExit(module_main(run))
