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
        if k.startswith("conv") and k.endswith(".W"):
            r = r * net.conv[int(k[4:-2]) - 1].weight_mask
        if k.startswith("conv") and k.endswith(".Theta") and net.bias == "per_input":
            r = r * net.conv[int(k[4:-6]) - 1].connections.T
        new[k] = r
    net.set_parameters(new)
