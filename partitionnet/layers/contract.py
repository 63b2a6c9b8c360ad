"""The layer contract: the checks every registered layer kind must pass.

The test suite runs them with random numbers over every class in
:data:`~partitionnet.layers.REGISTRY` (``tests/test_layers.py``), and
``partitionnet verify`` runs them as rows of its table
(``derivations/layers.py``), so a newly registered kind is tested and proved
without a new test file. Each kind lists small cases in its ``examples()``.

Every check returns ``(passed, detail)``:

:func:`forward_matches_reference`   ``forward`` = direct summation ``reference``
:func:`vjp_matches_differences`     ``vjp`` = central differences of ``forward`` (input and parameters)
:func:`dot_test`                    ``<J v, u> = <v, J^T u>`` with ``J v`` from ``forward`` and ``J^T u`` from ``operator``
:func:`literal_matches_vjp`         ``vjp_literal`` = ``vjp`` to 1e-10
:func:`operator_matches_jacobian`   ``operator`` = transposed Jacobian of ``reference``, numerically
:func:`operator_is_exact`           the same, exactly, in SymPy (symbolic weights; symbolic or rational inputs)
:func:`config_round_trip`           ``from_config(config())`` builds the same layer
:func:`torch_twin_agrees`           ``to_torch`` computes the same outputs (skipped without PyTorch)
"""
from __future__ import annotations

import numpy as np

from ..algebra import SYMPY, differentiable_max
from .base import maps_of

__all__ = ["CHECKS", "random_parameters", "random_input", "forward_matches_reference", "vjp_matches_differences",
           "dot_test", "literal_matches_vjp", "operator_matches_jacobian", "operator_is_exact",
           "config_round_trip", "torch_twin_agrees"]


# ---------------------------------------------------------------------- random data
def random_parameters(layer, rng) -> dict:
    """Random parameters with structural zeros applied (biases nonzero, so sign errors show)."""
    p = {}
    for name, shape in layer.parameter_shapes().items():
        value = rng.standard_normal(shape)
        mask = layer.structural_mask(name)
        p[name] = value * mask if mask is not None else value
    return p


def random_input(layer, rng, n: int = 3) -> np.ndarray:
    """A stack ``(P_in, n, D_in)`` of well separated values, away from 0 (no max ties, no relu kinks)."""
    size = layer.P_in * n * layer.in_maps
    values = rng.permutation(np.linspace(0.2, 1.6, size)) * rng.choice([-1.0, 1.0], size)
    return values.reshape(layer.P_in, n, layer.in_maps)


def _reference_out(layer, p, x_stack, n):
    """``reference`` on sample n, as a vector ``col{y^(1), ..., y^(D)}``."""
    ref = layer.reference(layer.config(), p, maps_of(x_stack[:, n, :], layer.in_shape))
    return np.asarray(ref, dtype=np.float64).reshape(ref.shape[0], -1, order="F").reshape(-1)


def _vec(stack_sample: np.ndarray) -> np.ndarray:
    """One sample ``(P, D)`` as ``col{x^(1), ..., x^(D)}``."""
    return stack_sample.T.reshape(-1)


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b))))) if a.size else 0.0


# ---------------------------------------------------------------------- the checks
def forward_matches_reference(layer, rng, *, tol=1e-10):
    p, x = random_parameters(layer, rng), random_input(layer, rng)
    y, _ = layer.forward(p, x)
    err = max(_rel(_vec(y[:, n, :]), _reference_out(layer, p, x, n)) for n in range(x.shape[1]))
    return err < tol, f"max relative difference {err:.1e}"


def vjp_matches_differences(layer, rng, *, eps=1e-6, tol=1e-6):
    p, x = random_parameters(layer, rng), random_input(layer, rng)
    y, res = layer.forward(p, x)
    u = rng.standard_normal(y.shape)
    dx, grads = layer.vjp(p, res, u)

    def objective(p_, x_):
        return float(np.sum(layer.forward(p_, x_)[0] * u))

    worst = 0.0
    fd = np.empty(x.size)
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = eps
        e = e.reshape(x.shape)
        fd[i] = (objective(p, x + e) - objective(p, x - e)) / (2 * eps)
    worst = max(worst, _rel(dx.reshape(-1), fd))
    for name, value in p.items():
        mask = layer.structural_mask(name)
        fd = np.zeros(value.size)
        for i in range(value.size):
            if mask is not None and not mask.reshape(-1)[i]:
                continue
            shifted = value.copy().reshape(-1)
            shifted[i] += eps
            plus = objective(dict(p, **{name: shifted.reshape(value.shape)}), x)
            shifted[i] -= 2 * eps
            minus = objective(dict(p, **{name: shifted.reshape(value.shape)}), x)
            fd[i] = (plus - minus) / (2 * eps)
        g = grads[name] * mask if mask is not None else grads[name]
        worst = max(worst, _rel(np.reshape(g, -1), fd))
    return worst < tol, f"max relative difference {worst:.1e} (eps={eps})"


def dot_test(layer, rng, *, eps=1e-6, tol=1e-6):
    """``<J v, u> = <v, J^T u>``: ``J v`` by central differences of ``forward``, ``J^T u`` from ``operator``."""
    p, x = random_parameters(layer, rng), random_input(layer, rng, n=1)
    v = rng.standard_normal(x.shape)
    Jv = (layer.forward(p, x + eps * v)[0] - layer.forward(p, x - eps * v)[0]) / (2 * eps)
    u = rng.standard_normal(Jv.shape)
    JTu = layer.operator(p, x[:, 0, :]) @ _vec(u[:, 0, :])
    left, right = float(np.sum(Jv * u)), float(_vec(v[:, 0, :]) @ JTu)
    err = abs(left - right) / max(1.0, abs(left))
    return err < tol, f"<Jv,u> = {left:.12g}, <v,J^T u> = {right:.12g}"


def literal_matches_vjp(layer, rng, *, tol=1e-10):
    """The listing's operators against the fast backward, for a batch and for one sample (its own fast path)."""
    p, err = random_parameters(layer, rng), 0.0
    for n in (3, 1):
        x = random_input(layer, rng, n=n)
        y, res = layer.forward(p, x)
        u = rng.standard_normal(y.shape)
        kept = u.copy()
        dx, g = layer.vjp(p, res, u)
        dx_l, g_l = layer.vjp_literal(p, res, u)
        if not np.array_equal(u, kept):
            return False, f"a backward pass changed the sensitivity it was given (n={n})"
        err = max(err, _rel(dx_l, dx))
        for name in g:
            err = max(err, _rel(g_l[name], g[name]))
    return err < tol, f"max relative difference {err:.1e}"


def operator_matches_jacobian(layer, rng, *, eps=1e-6, tol=1e-6):
    """``operator`` against central differences of ``reference`` (which never sees V or T)."""
    p, x = random_parameters(layer, rng), random_input(layer, rng, n=1)
    JT = layer.operator(p, x[:, 0, :]).toarray()
    flat = _vec(x[:, 0, :])
    J = np.empty((JT.shape[1], flat.size))
    for i in range(flat.size):
        e = np.zeros(flat.size)
        e[i] = eps
        xp = (flat + e).reshape(layer.in_maps, -1).T[:, None, :]
        xm = (flat - e).reshape(layer.in_maps, -1).T[:, None, :]
        J[:, i] = (_reference_out(layer, p, xp, 0) - _reference_out(layer, p, xm, 0)) / (2 * eps)
    err = _rel(JT, J.T)
    return (JT.shape == J.T.shape and err < tol), f"shape {JT.shape}, max relative difference {err:.1e}"


def operator_is_exact(layer, rng):
    """The SymPy operator equals the symbolic transposed Jacobian of ``reference``, entry by entry."""
    import sympy

    linear = getattr(layer, "linear", False)
    p_sym = {}
    for name, shape in layer.parameter_shapes().items():
        arr = np.empty(shape, dtype=object)
        mask = layer.structural_mask(name)
        for idx in np.ndindex(*shape):
            exists = mask is None or mask[idx]
            arr[idx] = sympy.Symbol(f"{name}_{'_'.join(map(str, idx))}") if exists else sympy.Integer(0)
        p_sym[name] = arr
    x_sym = np.array([sympy.Symbol(f"x_{i}", real=True) for i in range(layer.P_in * layer.in_maps)],
                     dtype=object)
    stack = x_sym.reshape(layer.in_maps, layer.P_in).T                         # (P, D), map-major vec
    ref = np.asarray(layer.reference(layer.config(), p_sym, maps_of(stack, layer.in_shape)), dtype=object)
    out = np.concatenate([np.reshape(ref[d], -1, order="F") for d in range(ref.shape[0])])
    # transposed Jacobian; an output depends on few inputs, so differentiate only where it does
    out = [o.replace(sympy.Max, differentiable_max()) if isinstance(o, sympy.Basic) else o for o in out]
    free = [o.free_symbols if hasattr(o, "free_symbols") else set() for o in out]
    jac = sympy.Matrix([[sympy.diff(o, xi) if xi in f else 0 for o, f in zip(out, free)] for xi in x_sym])
    if linear:
        op = layer.operator(p_sym, None, algebra=SYMPY)
        point = {}
    else:
        values = random_input(layer, rng, n=1)[:, 0, :]                       # (P, D) floats
        # multiples of 1/4096: exact, small, and as distinct as the inputs (no ties for max, whatever the size)
        rational = np.vectorize(lambda v: sympy.Rational(int(round(v * 4096)), 4096), otypes=[object])(values)
        point = {x_sym[i]: v for i, v in enumerate(rational.T.reshape(-1))}
        op = layer.operator(p_sym, rational, algebra=SYMPY)
        jac = jac.xreplace(point)               # one structural pass: far faster than subs on Max(...)
    op = sympy.Matrix(op)
    if op.shape != jac.shape:
        return False, f"operator shape {op.shape}, Jacobian shape {jac.shape}"
    for i in range(op.rows):
        for j in range(op.cols):
            diff = sympy.expand(op[i, j] - jac[i, j])
            if diff != 0 and sympy.cancel(sympy.expand(diff.rewrite(sympy.exp))) != 0 \
                    and sympy.simplify(diff.rewrite(sympy.exp)) != 0:
                return False, f"entry ({i}, {j}): operator {op[i, j]}, Jacobian {jac[i, j]}"
    how = "symbolic weights and inputs" if linear else "symbolic weights, rational input"
    return True, f"{op.rows}x{op.cols} entries equal exactly ({how})"


def config_round_trip(layer, rng):
    rebuilt = type(layer).from_config(layer.config()).build(layer.in_maps, layer.in_shape, layer.in_vector)
    if rebuilt.config() != layer.config():
        return False, f"config changed: {layer.config()} -> {rebuilt.config()}"
    p, x = random_parameters(layer, rng), random_input(layer, rng)
    err = _rel(rebuilt.forward(p, x)[0], layer.forward(p, x)[0])
    return err == 0.0, f"outputs differ by {err:.1e}" if err else "same config, same outputs"


def torch_twin_agrees(layer, rng, *, tol=1e-10):
    try:
        import torch
    except ImportError:
        return True, "skipped: PyTorch is not installed"
    from ..layout import from_stack

    p, x = random_parameters(layer, rng), random_input(layer, rng)
    try:
        module = layer.to_torch(p)
    except NotImplementedError as exc:
        return True, f"no twin: {exc}"
    N = x.shape[1]
    if layer.in_vector:
        tx = torch.from_numpy(x[:, :, 0].T.copy())
    else:
        tx = torch.from_numpy(np.ascontiguousarray(from_stack(x, layer.in_shape)))
    with torch.no_grad():
        ty = module(tx).numpy()
    y = layer.forward(p, x)[0]
    ours = y[:, :, 0].T if layer.out_vector else from_stack(y, layer.out_shape)
    err = _rel(ty.reshape(N, -1), np.asarray(ours).reshape(N, -1))
    return err < tol, f"max relative difference {err:.1e}"


#: name -> check, in the order the tests and ``verify`` run them
CHECKS = {
    "forward = reference": forward_matches_reference,
    "vjp = central differences": vjp_matches_differences,
    "dot test": dot_test,
    "vjp_literal = vjp": literal_matches_vjp,
    "operator = reference Jacobian (numeric)": operator_matches_jacobian,
    "operator = reference Jacobian (SymPy, exact)": operator_is_exact,
    "config round trip": config_round_trip,
    "PyTorch twin": torch_twin_agrees,
}
