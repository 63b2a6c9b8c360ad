"""Correlation masks: inner-product form, the sliding correlation, and the flipped mask.

* (47.1126) corr(H, W) = sum_kl H(k,l) W(k,l) = vec(H)^T vec(W).
* (47.1133, 47.1147) sliding the mask over a zero-extended image is H^T w for
  the library's 'same' sliding-window partition, with P = M = L^2, S = (2K+1)^2.
* (47.1136-47.1138) W#(k,l) = W(-k,-l) equals Ĩ W Ĩ, and w# = Ĩ w for the vecs.
* (47.1139) the correlation with W equals the 2-D convolution with W#.
* dilated masks: the library's 'full', 'same' and 'valid' windows give the
  shapes and values of scipy.signal.correlate with the dilated kernel written
  out explicitly (3 taps, dilation 2, on 9 x 8: 13 x 12 'full', 9 x 8 'same').

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


#: (map shape, kernel, dilation) for the dilated-padding check: 1-D, 2-D and 3-D, per-axis dilation, and
#: the 3-kernel with dilation 2 on a 9 x 8 map (13 x 12 'full', 9 x 8 'same').
DILATED = [((9, 8), 3, 2), ((11,), 3, 3), ((9, 8), (3, 2), (1, 3)), ((7, 6, 5), 2, (2, 1, 2)), ((9, 8), 4, 1),
           ((10, 7), (2, 3), 2)]


def dilate(w: np.ndarray, dilation) -> np.ndarray:
    """The kernel with dilation - 1 zeros between neighbouring taps, built directly (no library code)."""
    dilation = (dilation,) * w.ndim if np.isscalar(dilation) else tuple(dilation)
    out = np.zeros(tuple((k - 1) * d + 1 for k, d in zip(w.shape, dilation)))
    out[tuple(slice(None, None, d) for d in dilation)] = w
    return out


def dilated_reference(x: np.ndarray, w: np.ndarray, dilation, mode: str) -> np.ndarray:
    """scipy.signal.correlate with the explicitly dilated kernel. For 'same' with an even dilated size the
    library follows TensorFlow (the extra zero row after the map), scipy.signal.correlate puts it before, so
    that case pads explicitly and correlates 'valid'."""
    kd = dilate(w, dilation)
    if mode == "same" and any(n % 2 == 0 for n in kd.shape):
        return scipy.signal.correlate(np.pad(x, [((n - 1) // 2, n // 2) for n in kd.shape]), kd, "valid")
    return scipy.signal.correlate(x, kd, mode)


def check_dilated_padding(sliding_window=None) -> tuple[bool, str]:
    """'full' and 'same' padding with dilation: output shapes and values of H^T w equal
    scipy.signal.correlate on the explicitly dilated kernel (47.1133 with a dilated mask)."""
    sliding_window = sliding_window or pn.Partition.sliding_window
    rng = np.random.default_rng(1133)
    for shape, kernel, dilation in DILATED:
        x = rng.standard_normal(shape)
        w = rng.standard_normal((kernel,) * len(shape) if np.isscalar(kernel) else kernel)
        for mode in ("full", "same", "valid"):
            part = sliding_window(shape, kernel, dilation=dilation, padding=mode)
            ref = dilated_reference(x, w, dilation, mode)
            if tuple(part.output_shape) != ref.shape:
                return False, (f"{mode}, {shape}, kernel {kernel}, dilation {dilation}: "
                               f"{part.output_shape} vs {ref.shape}")
            z = part.patches(pn.vec(x)).T @ pn.vec(w)
            if not allclose(z, pn.vec(ref)):
                return False, f"{mode}, {shape}, kernel {kernel}, dilation {dilation}: values differ"
    return True, ""


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
    Claim("47.1133", "dilated masks: 'full'/'same'/'valid' shapes and H^T w = correlate(I, dilated W)",
          "direct convolution", check_dilated_padding),
]


def run(*, latex: bool = False) -> list[Check]:
    if latex:
        W = sympy.Matrix(_sym.grid("W", (3, 3)))
        print_latex("W^# = Ĩ W Ĩ (47.1138)", flip_by_reversal(W))
    return [claim.run() for claim in CLAIMS]


if __name__ == "__main__":
    raise SystemExit(module_main(run))
