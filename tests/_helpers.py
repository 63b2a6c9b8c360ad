"""Plain helper functions shared by several test files (fixtures live in conftest.py)."""
import numpy as np

RTOL = 1e-10


def assert_rel(a, b, what, rtol=RTOL):
    """Assert ``max|a - b| <= rtol * max|b|`` with a message naming ``what``."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    scale = max(np.abs(b).max(initial=0.0), 1e-300)
    err = np.abs(a - b).max(initial=0.0) / scale
    assert err <= rtol, f"{what}: relative error {err:.3e} > {rtol:g}"


def randomise(net, rng, *, weight_scale=0.7, bias_scale=0.3):
    """Random weights (respecting the connection tables) and nonzero biases."""
    new = {}
    for k, v in net.parameters().items():
        r = rng.standard_normal(v.shape) * (weight_scale if k.endswith("W") else bias_scale)
        mask = net.structural_mask(k)                # unconnected pairs of a connection table stay zero
        new[k] = r if mask is None else r * mask
    net.set_parameters(new)
