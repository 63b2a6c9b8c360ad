"""The fixed correlation masks of the book, and the edge image of Example 47.70.

Before its masks are learned, the book filters images with fixed ones
(47.1133-47.1142):

* :func:`gaussian`, the Gaussian mask of (47.1135), with the normaliser
  corrected. The printed factor ``1/(sqrt(2 pi) sigma^2)`` is the erratum
  "47.1135" of :mod:`partitionnet.derivations.errata`: over the plane the Gaussian
  ``exp(-(k^2 + l^2) / (2 sigma^2))`` has mass ``2 pi sigma^2``, so the
  two-dimensional normaliser is ``1 / (2 pi sigma^2)``;
* :func:`sobel` and :func:`prewitt`, the gradient operators of (47.1140a-b);
* :func:`flip`, ``W^# = I~ W I~`` (47.1136-47.1138), which turns the
  correlation (47.1133) into a convolution (47.1139);
* :func:`correlate`, ``F(r, c) = h_{r,c}^T w`` (47.1133), computed by the
  library's own :class:`~partitionnet.layers.Correlation` layer over a
  sliding-window partition (zero padding, the "fictitious" zeros of 47.1129);
* :func:`gradients` and :func:`edge_image`, the two filtered images of
  (47.1141) and their magnitude ``F = sqrt(F_x^2 + F_y^2)`` (47.1142).

Mask entry ``W[k + K, l + K]`` is ``W(k, l)`` of the book: ``k`` moves along
the image's first axis (rows, r) and ``l`` along its second (columns, c), so
``W_x`` differentiates along columns (the horizontal direction) and ``W_y``
along rows.

Examples
--------
>>> import numpy as np
>>> ramp = np.add.outer(np.zeros(5), 2.0 * np.arange(6))      # I(r, c) = 2 c
>>> Fx, Fy = gradients(ramp)
>>> float(Fx[2, 2]), float(Fy[2, 2])                             # Sobel: 8 x the slope
(16.0, 0.0)
>>> round(float(gaussian(4, 1.5).sum()), 4)
0.9955
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["gaussian", "sobel", "prewitt", "flip", "correlate", "gradients", "edge_image", "OPERATORS"]

NORMALISERS = ("density", "sum")


def gaussian(K: int, sigma: float, *, normalise: str = "density") -> np.ndarray:
    """The ``(2K+1) x (2K+1)`` Gaussian mask of (47.1135), with the corrected normaliser.

    ``W(k, l) = exp(-(k^2 + l^2) / (2 sigma^2)) / (2 pi sigma^2)`` for
    ``k, l = -K, ..., K``.

    Parameters
    ----------
    K : int
        Half-width: the mask has ``2K + 1`` rows and columns (``K >= 0``).
    sigma : float
        The width, ``sigma > 0`` (the book's ``sigma^2`` is its square).
    normalise : {'density', 'sum'}
        ``'density'`` (default) uses the corrected factor ``1 / (2 pi sigma^2)``
        of the two-dimensional Gaussian density; the entries then sum to 1 up to
        the truncation at ``K`` and the sampling of the density (close to 1
        once ``sigma >= 1`` and ``K >= 3 sigma``). ``'sum'`` divides by the sum
        of the entries instead, so they add to 1 exactly, as a smoothing mask
        that keeps the mean of an image should.

    Examples
    --------
    >>> W = gaussian(1, 1.0, normalise="sum")
    >>> W.shape, round(float(W.sum()), 12), bool(W[1, 1] == W.max())
    ((3, 3), 1.0, True)
    """
    if isinstance(K, bool) or not isinstance(K, numbers.Integral):
        raise TypeError(f"K must be a non-negative integer (the half-width), got {type(K).__name__} {K!r}")
    if K < 0:
        raise ValueError(f"K must be a non-negative integer (the half-width), got {K}")
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
        raise TypeError(f"sigma must be a positive number, got {type(sigma).__name__} {sigma!r}")
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be a positive finite number, got {sigma}")
    if not isinstance(normalise, str):
        raise TypeError(f"normalise must be one of {NORMALISERS}, got {type(normalise).__name__}")
    if normalise not in NORMALISERS:
        raise ValueError(f"normalise must be one of {NORMALISERS}, got {normalise!r}")
    k = np.arange(-K, K + 1, dtype=np.float64)
    kernel = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2.0 * sigma ** 2))
    if normalise == "sum":
        return kernel / kernel.sum()
    return kernel / (2.0 * np.pi * sigma ** 2)                    # corrected (47.1135): not sqrt(2 pi) sigma^2


def sobel() -> tuple[np.ndarray, np.ndarray]:
    """The Sobel gradient operators ``(W_x, W_y)`` of (47.1140a).

    >>> Wx, Wy = sobel()
    >>> Wx.tolist()
    [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]
    >>> bool((Wy == Wx.T).all())
    True
    """
    Wx = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    return Wx, Wx.T.copy()


def prewitt() -> tuple[np.ndarray, np.ndarray]:
    """The Prewitt gradient operators ``(W_x, W_y)`` of (47.1140b).

    >>> Wx, Wy = prewitt()
    >>> Wy.tolist()
    [[-1.0, -1.0, -1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    """
    Wx = np.array([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])
    return Wx, Wx.T.copy()


#: name -> function returning ``(W_x, W_y)``
OPERATORS = {"sobel": sobel, "prewitt": prewitt}


def flip(mask) -> np.ndarray:
    """``W^#(k, l) = W(-k, -l)`` (47.1136), i.e. ``I~ W I~`` with the reversed identity ``I~`` (47.1137-47.1138).

    Correlating with ``W`` is convolving with ``W^#`` (47.1139).

    >>> flip(np.arange(9.0).reshape(3, 3)).tolist()
    [[8.0, 7.0, 6.0], [5.0, 4.0, 3.0], [2.0, 1.0, 0.0]]
    """
    W = _as_image(mask, "mask", ndims=(2,))
    I_rev = np.eye(W.shape[0])[::-1]
    J_rev = np.eye(W.shape[1])[::-1]
    return I_rev @ W @ J_rev


def correlate(image, mask, *, padding="same") -> np.ndarray:
    """``F(r, c) = sum_{k,l} I(r+k, c+l) W(k, l) = h_{r,c}^T w`` (47.1133), by a partitionnet correlation layer.

    Parameters
    ----------
    image : array (R, C) or (N, R, C)
        One image, or a stack of N images.
    mask : array (m, n), or a sequence of such arrays
        The mask ``W``, centred: its entry ``[i, j]`` multiplies
        ``I(r + i - (m-1)//2, c + j - (n-1)//2)``. Several masks give several
        filtered images (stacked on a new first axis, after N for a stack).
    padding : {'same', 'valid'}, int, or (before, after) pairs
        ``'same'`` pads with zeros (47.1129) so that F has the image's size
        (for an even mask the extra zero goes after, as in TensorFlow);
        ``'valid'`` keeps only windows inside the image.

    Returns
    -------
    ndarray
        ``(R', C')`` for one image and one mask; ``(k, R', C')`` for k masks;
        with a leading N axis for a stack.

    Examples
    --------
    >>> correlate(np.arange(9.0).reshape(3, 3), np.array([[0.0, 0, 0], [0, 0, 1], [0, 0, 0]])).tolist()
    [[1.0, 2.0, 0.0], [4.0, 5.0, 0.0], [7.0, 8.0, 0.0]]
    """
    from .layers import Correlation
    from .layout import from_stack, to_stack

    img = _as_image(image, "image", ndims=(2, 3))
    single_image = img.ndim == 2
    stack = img[None] if single_image else img
    masks, single_mask = _as_masks(mask)
    shape = masks.shape[1:]
    try:
        layer = Correlation(masks.shape[0], kernel=shape, padding=padding, bias="tied").build(1, stack.shape[1:])
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"correlate: {exc}") from None
    W = np.stack([m.reshape(-1, order="F") for m in masks], axis=1)        # column d = vec(W_d) (47.1147)
    out, _ = layer.forward({"W": W, "Theta": np.zeros((1, masks.shape[0]))}, to_stack(stack[:, None]))
    F = from_stack(out, layer.out_shape)                                   # (N, k, R', C')
    if single_mask:
        F = F[:, 0]
    return F[0] if single_image else F


def gradients(image, operator: str = "sobel") -> tuple[np.ndarray, np.ndarray]:
    """``(F_x, F_y)``: the image correlated with ``W_x`` and ``W_y`` (47.1141a-b), zero padded to its size.

    ``operator`` is ``'sobel'`` or ``'prewitt'`` (47.1140a-b). On an image
    whose intensity grows by ``a`` per column and ``b`` per row, away from the
    border ``F_x = 8a`` and ``F_y = 8b`` for Sobel, ``6a`` and ``6b`` for Prewitt.
    """
    Wx, Wy = _operator(operator)
    F = correlate(image, [Wx, Wy])
    return (F[0], F[1]) if F.ndim == 3 else (F[:, 0], F[:, 1])


def edge_image(image, operator: str = "sobel") -> np.ndarray:
    """The gradient magnitude ``F(r, c) = sqrt(F_x^2(r, c) + F_y^2(r, c))`` (47.1142).

    A pixel is declared an edge where F exceeds a threshold (Example 47.70);
    ``edge_image(I) > threshold`` gives that decision.

    >>> img = np.zeros((5, 6)); img[:, 2:4] = 1.0                  # a vertical bar, two columns wide
    >>> edge_image(img)[2].tolist()
    [0.0, 4.0, 4.0, 4.0, 4.0, 0.0]
    """
    Fx, Fy = gradients(image, operator)
    return np.hypot(Fx, Fy)


# ---------------------------------------------------------------------- validation
def _operator(name):
    if not isinstance(name, str):
        raise TypeError(f"operator must be one of {sorted(OPERATORS)}, got {type(name).__name__}")
    if name not in OPERATORS:
        raise ValueError(f"operator must be one of {sorted(OPERATORS)}, got {name!r}")
    return OPERATORS[name]()


def _as_image(value, name, ndims):
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a numeric array, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except Exception as exc:                        # ragged nested lists
        raise ValueError(f"{name} must be a rectangular numeric array: {exc}") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim not in ndims:
        expected = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be a {expected} array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def _as_masks(mask):
    """One mask -> ``((1, m, n), True)``; a sequence of equal-shaped masks -> ``((k, m, n), False)``."""
    if isinstance(mask, (list, tuple)) and len(mask) and all(np.ndim(m) == 2 for m in mask):
        masks = [_as_image(m, f"mask[{i}]", ndims=(2,)) for i, m in enumerate(mask)]
        if len({m.shape for m in masks}) != 1:
            raise ValueError(f"masks must all have one shape, got {[m.shape for m in masks]}")
        return np.stack(masks), False
    return _as_image(mask, "mask", ndims=(2,))[None], True
