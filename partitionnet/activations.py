"""Activation functions, each beside its derivative (47.1154; Table 47.11).

Derivatives are written in terms of the pre-activation ``z`` because the
book's sensitivities use ``f'(z)`` (47.1233, 47.1234, 47.1245, 47.1262).
"""
from __future__ import annotations

import numpy as np


def _tanh(z):
    return np.tanh(z)


def _tanh_prime(z):
    return 1.0 - np.tanh(z) ** 2


def _relu(z):
    return np.maximum(z, 0.0)


def _relu_prime(z):
    # The kink at 0 gets derivative 0 (the convention PyTorch also uses).
    return (z > 0).astype(z.dtype)


def _sigmoid(z):
    # Split by sign so that exp never overflows.
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _sigmoid_prime(z):
    s = _sigmoid(z)
    return s * (1.0 - s)


def _identity(z):
    return z


def _identity_prime(z):
    return np.ones_like(z)


#: name -> (f, f')
ACTIVATIONS = {
    "tanh": (_tanh, _tanh_prime),
    "relu": (_relu, _relu_prime),
    "sigmoid": (_sigmoid, _sigmoid_prime),
    "identity": (_identity, _identity_prime),
}


def get(name: str, argument: str = "activation"):
    """Return ``(f, f_prime)`` for an activation name, or raise a clear error."""
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a string, got {type(name).__name__}")
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"{argument} must be one of {tuple(ACTIVATIONS)}, got {name!r}") from None


def softmax(z: np.ndarray) -> np.ndarray:
    """Column-wise softmax (samples are columns), shifted for stability."""
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)
