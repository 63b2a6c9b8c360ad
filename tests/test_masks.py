"""The fixed masks of (47.1135)-(47.1142): Gaussian (corrected normaliser), Sobel, Prewitt, the edge image."""
import numpy as np
import pytest
from scipy import ndimage, signal, stats

from partitionnet import masks

from _helpers import assert_rel


# ---------------------------------------------------------------------- Gaussian (47.1135)
def test_gaussian_is_the_sampled_2d_density():
    """Entries equal the bivariate normal density N(0, sigma^2 I) at the integer offsets (corrected 47.1135)."""
    K, sigma = 3, 1.3
    k = np.arange(-K, K + 1)
    grid = np.stack(np.meshgrid(k, k, indexing="ij"), axis=-1)
    density = stats.multivariate_normal(mean=[0, 0], cov=sigma ** 2 * np.eye(2)).pdf(grid)
    assert_rel(masks.gaussian(K, sigma), density, "Gaussian mask", rtol=1e-14)


def test_gaussian_normalisation_sums_to_one_and_the_printed_one_does_not():
    K, sigma = 12, 1.5                                   # 8 sigma wide: truncation and sampling errors < 1e-12
    W = masks.gaussian(K, sigma)
    assert abs(W.sum() - 1.0) < 1e-12
    k = np.arange(-K, K + 1.0)
    printed = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma ** 2)
    assert abs(printed.sum() - np.sqrt(2 * np.pi)) < 1e-11            # the printed factor: mass sqrt(2 pi), not 1


def test_gaussian_sum_normalisation_is_exact_where_the_density_is_not():
    dense, summed = masks.gaussian(2, 0.5), masks.gaussian(2, 0.5, normalise="sum")
    assert abs(dense.sum() - 1.0) > 1e-3                 # a narrow Gaussian is badly sampled on the integer grid
    assert abs(summed.sum() - 1.0) < 1e-15
    assert_rel(summed, dense / dense.sum(), "sum-normalised")


def test_gaussian_is_symmetric_and_peaks_in_the_centre():
    W = masks.gaussian(4, 2.0)
    assert W.shape == (9, 9)
    assert np.array_equal(W, W.T) and np.array_equal(W, masks.flip(W))
    assert np.unravel_index(np.argmax(W), W.shape) == (4, 4)


# ---------------------------------------------------------------------- Sobel and Prewitt (47.1140-47.1142)
@pytest.mark.parametrize("operator, gain", [("sobel", 8.0), ("prewitt", 6.0)])
def test_gradient_operators_on_a_ramp_give_the_constant_slope(operator, gain):
    a, b = 0.75, -2.5                                     # slope per column, per row
    rows, cols = np.mgrid[0:7, 0:9]
    image = a * cols + b * rows + 3.0
    Fx, Fy = masks.gradients(image, operator)
    inner = (slice(1, -1), slice(1, -1))                  # the zero padding changes the border only
    assert_rel(Fx[inner], np.full((5, 7), gain * a), f"{operator} F_x")
    assert_rel(Fy[inner], np.full((5, 7), gain * b), f"{operator} F_y")
    assert_rel(masks.edge_image(image, operator)[inner], np.full((5, 7), gain * np.hypot(a, b)), "magnitude")
    assert np.abs(Fx[0] - gain * a).max() > 1.0           # the border really differs (zeros outside, 47.1129)


def test_operators_vanish_on_uniform_regions():
    for operator in ("sobel", "prewitt"):
        Wx, Wy = masks.OPERATORS[operator]()
        assert Wx.sum() == 0 and Wy.sum() == 0
        assert np.array_equal(Wy, Wx.T)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits            # shipped with scikit-learn, no download

    return load_digits().images[:20]                     # (20, 8, 8), gray levels 0..16


def test_edge_image_matches_scipy_on_digits(digits):
    """(47.1141)-(47.1142) through the library's own Correlation layer, against scipy.ndimage on real digits."""
    for name, scipy_op in (("sobel", ndimage.sobel), ("prewitt", ndimage.prewitt)):
        Fx, Fy = masks.gradients(digits[3], name)
        assert_rel(Fx, scipy_op(digits[3], axis=1, mode="constant"), f"{name} F_x")
        assert_rel(Fy, scipy_op(digits[3], axis=0, mode="constant"), f"{name} F_y")
        expected = np.stack([np.hypot(scipy_op(d, axis=1, mode="constant"), scipy_op(d, axis=0, mode="constant"))
                             for d in digits])
        stack = masks.edge_image(digits, name)                                # all 20 digits at once
        assert stack.shape == digits.shape
        assert_rel(stack, expected, f"{name} edge image of 20 digits")
        assert_rel(masks.edge_image(digits[7], name), expected[7], f"{name} edge image of one digit")


# ---------------------------------------------------------------------- correlation and convolution (47.1133, 47.1139)
def test_correlate_matches_scipy_and_flipping_makes_it_a_convolution(digits):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((3, 5))                      # not symmetric, not square: orientation matters
    image = digits[0]
    F = masks.correlate(image, W)
    assert_rel(F, signal.correlate2d(image, W, mode="same", boundary="fill"), "F = h^T w (47.1133)")
    assert_rel(F, signal.convolve2d(image, masks.flip(W), mode="same", boundary="fill"), "F = I * W# (47.1139)")
    assert_rel(masks.correlate(image, W, padding="valid"), signal.correlate2d(image, W, mode="valid"), "valid")
    both = masks.correlate(digits[:4], [W, masks.flip(W)])
    assert both.shape == (4, 2, 8, 8)
    assert_rel(both[2, 1], masks.correlate(digits[2], masks.flip(W)), "stacked images and masks")


def test_flip_is_the_reversed_identity_product():
    W = np.arange(12.0).reshape(3, 4)
    assert np.array_equal(masks.flip(W), W[::-1, ::-1])
    assert np.array_equal(masks.flip(masks.flip(W)), W)   # (47.1138): the flip undoes itself


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("call, error, match", [
    (lambda: masks.gaussian(-1, 1.0), ValueError, "K must be a non-negative"),
    (lambda: masks.gaussian(1.5, 1.0), TypeError, "K must be"),
    (lambda: masks.gaussian(2, 0.0), ValueError, "sigma must be a positive"),
    (lambda: masks.gaussian(2, float("nan")), ValueError, "sigma"),
    (lambda: masks.gaussian(2, "1"), TypeError, "sigma"),
    (lambda: masks.gaussian(2, 1.0, normalise="peak"), ValueError, "normalise"),
    (lambda: masks.edge_image(np.ones(5)), ValueError, r"image must be a 2-D or 3-D array, got shape \(5,\)"),
    (lambda: masks.edge_image("digit"), TypeError, "image must be a numeric array"),
    (lambda: masks.edge_image(np.array([[1.0, np.nan], [0, 0]])), ValueError, "finite"),
    (lambda: masks.edge_image(np.ones((4, 4)), "canny"), ValueError, "operator must be one of"),
    (lambda: masks.edge_image(np.ones((4, 4)), 3), TypeError, "operator"),
    (lambda: masks.correlate(np.ones((2, 2)), np.ones((3, 3)), padding="valid"), ValueError,
     r"correlate: .*kernel \(3, 3\)"),
    (lambda: masks.correlate(np.ones((4, 4)), [np.ones((3, 3)), np.ones((1, 3))]), ValueError, "one shape"),
    (lambda: masks.correlate(np.ones((4, 4)), np.ones(3)), ValueError, "mask must be a 2-D"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
