"""Losses and their output sensitivities delta_L, side by side.

``squared``: ``||gamma - y||^2`` (47.1227) with any output activation. For an
elementwise output ``f`` the sensitivity is ``delta_L = 2(y - gamma) * f'(z)``
(47.1233). For a softmax output the Jacobian is not diagonal and
``delta_L = J^T 2(y - gamma)`` with ``J = diag(y) - y y^T``.

``cross_entropy``: ``-sum gamma log y`` with a softmax output, for which
``delta_L = y * sum(gamma) - gamma``; with one-hot or probability targets
(columns summing to 1) this is the familiar ``y - gamma``.

Arrays hold samples as columns: ``y``, ``gamma`` and ``z`` are (Q, N).
"""
from __future__ import annotations

import numpy as np

LOSSES = ("squared", "cross_entropy")


def value(loss: str, y: np.ndarray, gamma: np.ndarray) -> float:
    """The loss summed over the samples (columns)."""
    if loss == "squared":
        return float(np.sum((gamma - y) ** 2))
    # Clip only inside the log: a predicted probability of exactly 0 for a
    # true class would otherwise give inf.
    # (1e-300 is 0 in float32: clip at the dtype's smallest normal number where that is larger)
    return float(-np.sum(gamma * np.log(np.clip(y, max(1e-300, float(np.finfo(y.dtype).tiny)), None))))


def output_sensitivity(loss: str, output: str, z: np.ndarray, y: np.ndarray, gamma: np.ndarray,
                       f_prime) -> np.ndarray:
    """``delta_L = d loss / d z_L`` for every sample (47.1233)."""
    if loss == "cross_entropy":
        return y * gamma.sum(axis=0, keepdims=True) - gamma
    e = 2.0 * (y - gamma)
    if output == "softmax":
        return y * (e - np.sum(y * e, axis=0, keepdims=True))
    return e * f_prime(z)
