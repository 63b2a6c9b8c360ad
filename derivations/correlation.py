"""Correlation masks: inner-product form, the sliding correlation, and the flipped mask.

* (47.1126) corr(H, W) = sum_kl H(k,l) W(k,l) = vec(H)^T vec(W).
* (47.1133, 47.1147) sliding the mask over a zero-extended image is H^T w for
  the library's 'same' sliding-window partition, with P = M = L^2, S = (2K+1)^2.
* (47.1136-47.1138) W#(k,l) = W(-k,-l) equals Ĩ W Ĩ, and w# = Ĩ w for the vecs.
* (47.1139) the correlation with W equals the 2-D convolution with W#.

Indices follow the book: the mask is indexed k, l = -K..K around its centre,
the image r, c = 1..L; entries outside the image are zero (47.1129).
"""
from __future__ import annotations

import numpy as np
import scipy.signal
import sympy

import partitionnet as pn
from partitionnet import symbolic as _sym

from ._check import Check, Claim, allclose, module_main, print_latex, same_matrix


#: (image shape, mask shape): square as in the book, then rectangular ones.
SIZES = [((4, 4), (3, 3)), ((3, 5), (3, 1)), ((4, 3), (1, 3))]


def reversal(n: int) -> sympy.Matrix:
    """Ĩ of (47.1137): ones on the anti-diagonal."""
    return sympy.Matrix(n, n, lambda i, j: int(i + j == n - 1))


def flip_by_reversal(W: sympy.Matrix) -> sympy.Matrix:
    """W# = Ĩ W Ĩ (47.1138)."""
    return reversal(W.rows) * W * reversal(W.cols)


def _at(W: sympy.Matrix, k: int, l: int):
    """W(k, l) with the centre at (0, 0); zero outside the mask."""
    K, L = W.rows // 2, W.cols // 2
    return W[k + K, l + L] if abs(k) <= K and abs(l) <= L else 0


def _image(I: sympy.Matrix, r: int, c: int):
    """I(r, c), 1-based, extended by zeros (47.1129)."""
    return I[r - 1, c - 1] if 1 <= r <= I.rows and 1 <= c <= I.cols else 0


def book_correlation(I: sympy.Matrix, W: sympy.Matrix) -> sympy.Matrix:
    """F(r, c) = sum_{k,l} I(r+k, c+l) W(k, l), typed from (47.1133)."""
    K, L = W.rows // 2, W.cols // 2
    return sympy.Matrix(I.rows, I.cols, lambda i, j: sum(
        _image(I, i + 1 + k, j + 1 + l) * _at(W, k, l) for k in range(-K, K + 1) for l in range(-L, L + 1)))


# ---------------------------------------------------------------------- checkers
def check_inner_product(vec_h, vec_w) -> bool:
    """(47.1126): the double sum equals vec_h(H)^T vec_w(W) for square and rectangular patches."""
    for shape in ((3, 3), (2, 3)):
        H, W = sympy.Matrix(_sym.grid("h", shape)), sympy.Matrix(_sym.grid("w", shape))
        double_sum = sum(H[i, j] * W[i, j] for i in range(shape[0]) for j in range(shape[1]))
        if not same_matrix(sympy.Matrix([double_sum]), vec_h(H).T * vec_w(W)):
            return False
    return True


def check_sliding_correlation() -> tuple[bool, str]:
    """(47.1133, 47.1147): the book's sum equals H^T w for the 'same' partition of the library."""
    for image, mask in SIZES:
        I, W = sympy.Matrix(_sym.grid("I", image)), sympy.Matrix(_sym.grid("W", mask))
        part = pn.Partition.sliding_window(image, mask, padding="same")
        H = (part.to_sympy() * _sym.vec(I)).reshape(part.P, part.S).T  # column p is h_p (47.1157)
        if (part.P, part.S, part.M) != (I.rows * I.cols, W.rows * W.cols, I.rows * I.cols):
            return False, f"sizes (P, S, M) = {(part.P, part.S, part.M)} for image {image}, mask {mask}"
        if not same_matrix(H.T * _sym.vec(W), _sym.vec(book_correlation(I, W))):
            return False, f"H^T w differs from (47.1133) for image {image}, mask {mask}"
    return True, ""


def check_flip_identity(flip) -> bool:
    """(47.1136, 47.1138): flip(W)(k, l) == W(-k, -l) for every k, l."""
    for shape in ((3, 3), (3, 5)):
        W = sympy.Matrix(_sym.grid("W", shape))
        F = flip(W)
        K, L = shape[0] // 2, shape[1] // 2
        if F.shape != W.shape or any(_at(F, k, l) != _at(W, -k, -l)
                                     for k in range(-K, K + 1) for l in range(-L, L + 1)):
            return False
    return True


def check_vector_flip() -> bool:
    """(47.1137-47.1138): Ĩ is orthogonal and an involution, and vec(W#) = Ĩ vec(W)."""
    for shape in ((3, 3), (3, 5)):
        W = sympy.Matrix(_sym.grid("W", shape))
        J = reversal(W.rows * W.cols)
        if J * J.T != sympy.eye(J.rows) or J * J != sympy.eye(J.rows):
            return False
        if not same_matrix(_sym.vec(flip_by_reversal(W)), J * _sym.vec(W)):
            return False
        if not same_matrix(_sym.vec(W), J * _sym.vec(flip_by_reversal(W))):
            return False
    return True


def check_convolution_form(flip) -> bool:
    """(47.1139): sum_kl W#(k,l) I(r-k, c-l) with W# = flip(W) equals F(r, c) of (47.1133)."""
    for image, mask in SIZES:
        I, W = sympy.Matrix(_sym.grid("I", image)), sympy.Matrix(_sym.grid("W", mask))
        Wf = flip(W)
        K, L = W.rows // 2, W.cols // 2
        conv = sympy.Matrix(I.rows, I.cols, lambda i, j: sum(
            _at(Wf, k, l) * _image(I, i + 1 - k, j + 1 - l) for k in range(-K, K + 1) for l in range(-L, L + 1)))
        if not same_matrix(conv, book_correlation(I, W)):
            return False
    return True


def check_scipy() -> bool:
    """Numeric, 12 x 9 image, 5 x 5 and 3 x 7 masks: H^T w equals scipy.signal.correlate(.., 'same'),
    which equals scipy.signal.convolve with the flipped mask."""
    rng = np.random.default_rng(1126)
    for mask in ((5, 5), (3, 7)):
        I, W = rng.standard_normal((12, 9)), rng.standard_normal(mask)
        part = pn.Partition.sliding_window(I.shape, mask, padding="same")
        F = part.patches(pn.vec(I)).T @ pn.vec(W)
        ref = scipy.signal.correlate(I, W, mode="same")
        if not (allclose(F, pn.vec(ref)) and allclose(ref, scipy.signal.convolve(I, W[::-1, ::-1], mode="same"))):
            return False
    return True


CLAIMS = [
    Claim("47.1126", "corr(H,W) = vec(H)^T vec(W) (column stacking)", "symbolic",
          check_inner_product, _sym.vec, _sym.vec),
    Claim("47.1133, 47.1147", "sliding mask sum = H^T w; P = M = L^2, S = (2K+1)^2", "symbolic",
          check_sliding_correlation),
    Claim("47.1136, 47.1138", "W#(k,l) = W(-k,-l) is Ĩ W Ĩ", "symbolic", check_flip_identity, flip_by_reversal),
    Claim("47.1137–47.1138", "Ĩ orthogonal, involution; w# = Ĩ w, w = Ĩ w#", "symbolic", check_vector_flip),
    Claim("47.1139", "correlation with W = 2-D convolution with W#", "symbolic",
          check_convolution_form, flip_by_reversal),
    Claim("47.1133, 47.1139", "H^T w = correlate(I, W, 'same') = convolve(I, W#, 'same')",
          "direct convolution", check_scipy),
]


def run(*, latex: bool = False) -> list[Check]:
    if latex:
        W = sympy.Matrix(_sym.grid("W", (3, 3)))
        print_latex("W^# = Ĩ W Ĩ (47.1138)", flip_by_reversal(W))
    return [claim.run() for claim in CLAIMS]


if __name__ == "__main__":
    raise SystemExit(module_main(run))
