"""Dilated 'same' and 'full' padding, worked out independently of the library.

The reference dilates the kernel by hand (dilation - 1 zeros between taps) and
correlates with scipy.signal; the library's sliding-window partition must give
the same output shape and the same values H^T w (47.1133 with a dilated mask).
A partition that ignored the dilation when it sizes the padding must fail.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

import partitionnet as pn
from partitionnet.derivations import correlation


def library_correlation(x, w, dilation, mode):
    part = pn.Partition.sliding_window(x.shape, w.shape, dilation=dilation, padding=mode)
    return pn.unvec(part.patches(pn.vec(x)).T @ pn.vec(w), part.output_shape)


def test_dilated_kernel_is_built_by_hand():
    w = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    expected = np.array([[1, 0, 2, 0, 3], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [4, 0, 5, 0, 6]], dtype=float)
    assert np.array_equal(correlation.dilate(w, (3, 2)), expected)


@pytest.mark.parametrize("mode, shape", [("full", (13, 12)), ("same", (9, 8)), ("valid", (5, 4))])
def test_three_taps_dilation_two_on_9_by_8(mode, shape):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((9, 8)), rng.standard_normal((3, 3))
    z = library_correlation(x, w, 2, mode)
    ref = scipy.signal.correlate(x, correlation.dilate(w, 2), mode)
    assert z.shape == ref.shape == shape
    np.testing.assert_allclose(z, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, kernel, dilation", correlation.DILATED)
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_dilated_padding_matches_scipy(shape, kernel, dilation, mode):
    rng = np.random.default_rng(len(shape) * 100 + sum(shape))
    x = rng.standard_normal(shape)
    w = rng.standard_normal((kernel,) * len(shape) if np.isscalar(kernel) else kernel)
    z = library_correlation(x, w, dilation, mode)
    ref = correlation.dilated_reference(x, w, dilation, mode)
    assert z.shape == ref.shape
    np.testing.assert_allclose(z, ref, rtol=1e-12, atol=1e-12)


def test_same_with_even_dilated_size_puts_the_extra_zero_after():
    """A 2-tap kernel with dilation 3 spans 4 entries: the library pads 1 before and 2 after (TensorFlow's
    rule), while scipy.signal.correlate's 'same' would pad 2 before and 1 after."""
    x, w = np.arange(1.0, 8.0), np.array([1.0, 10.0])
    z = library_correlation(x, w, 3, "same")
    padded = np.concatenate(([0.0], x, [0.0, 0.0]))
    expected = np.array([padded[i] + 10 * padded[i + 3] for i in range(7)])
    np.testing.assert_array_equal(z, expected)
    assert not np.allclose(z, scipy.signal.correlate(x, correlation.dilate(w, 3), "same"))


def test_verify_row_passes():
    assert correlation.check_dilated_padding() == (True, "")


def _ignores_dilation(shape, kernel, *, dilation=1, padding=0, **options):
    """A realistic bug: 'full'/'same' padding sized from the undilated kernel."""
    nd = len(shape)
    k = (kernel,) * nd if np.isscalar(kernel) else tuple(kernel)
    if padding == "full":
        padding = tuple(n - 1 for n in k)
    elif padding == "same":
        padding = tuple(((n - 1) // 2, n // 2) for n in k)
    return pn.Partition.sliding_window(shape, kernel, dilation=dilation, padding=padding, **options)


def test_padding_that_ignores_dilation_fails_the_check():
    ok, detail = correlation.check_dilated_padding(_ignores_dilation)
    assert not ok and "full" in detail
