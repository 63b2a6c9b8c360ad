"""Weight and bias gradients of the feedforward and correlation layers.

* (47.1263-47.1264) ∂/∂W_ℓ = δ_{ℓ+1} y_ℓ^T and ∂/∂θ_ℓ = -δ_{ℓ+1}.
* (47.1265-47.1269, Prob. 47.167) ∂/∂w_j^(d,c)(s) = [H_j]_{s,:} δ^(d,c), hence
  ∂/∂W^(d,c) = H_{c-1} δ^(d,c) with H_{c-1} = col{H_1, .., H_{D_{c-1}}} (47.1225).
* (47.1270-47.1271) ∂/∂W_c = (1_{D_c}^T ⊗ H_{c-1}) Δ_c, Δ_c = blkdiag{δ^(d,c)}.
* (47.1272-47.1274) ∂/∂θ^(d,c)(j) = -1^T δ^(d,c), ∂/∂Θ_c = -(1^T ⊗ 1 1^T) Δ_c.

The layer is written by direct summation (no V); H_j comes from the library's
V. L = Σ_d δ^(d)T z^(d) has an arbitrary symbolic gradient δ with respect to
the pre-activations, so the formulas are checked for every upstream sensitivity.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.signal
import sympy

import partitionnet as pn
from partitionnet import symbolic as _sym

from . import _direct
from ._check import Check, Claim, allclose, module_main, print_latex, same_matrix
from .partitioning import symbolic_patches


D_IN, D_OUT = 2, 3   # D_{c-1}, D_c: different on purpose


def layer_cases():
    """(label, partition of the input maps, direct correlation t, w -> z)."""
    lists = [[4, 0, 2], [1, 1, 3], [0, 4, 4], [3, 2, 0]]
    grid = pn.Partition.sliding_window((4, 5), (2, 3), stride=(2, 1), padding=1)
    g = grid.geometry

    def grid_z(t, w):
        T = np.asarray(list(t), dtype=object).reshape(g["input_shape"], order="F")
        W = np.asarray(list(w), dtype=object).reshape(g["kernel"], order="F")
        Z = _direct.correlate(T, W, stride=g["stride"], padding=g["padding"], dilation=g["dilation"])
        return sympy.Matrix(list(Z.reshape(-1, order="F")))

    return [("map (4, 5), kernel (2, 3), stride (2, 1), padding 1", grid, grid_z),
            ("unstructured partition", pn.Partition.from_indices(lists, 5),
             lambda t, w: sympy.Matrix(_direct.correlate_lists(list(t), list(w), lists)))]


class Layer:
    """One correlation layer in symbols: inputs t_j, W_c (S D_{c-1} x D_c), Θ_c (D_{c-1} x D_c), z^(d)."""

    def __init__(self, part, correlate):
        S, P = part.S, part.P
        self.t = [_sym.col(f"t{j}_", part.M) for j in range(D_IN)]
        self.W = sympy.Matrix(_sym.grid("W", (S * D_IN, D_OUT)))                      # (47.1224a)
        self.Theta = sympy.Matrix(_sym.grid("theta", (D_IN, D_OUT)))                  # (47.1224b)
        self.delta = [_sym.col(f"delta{d}_", P) for d in range(D_OUT)]
        w = [[self.W[j * S:(j + 1) * S, d] for d in range(D_OUT)] for j in range(D_IN)]   # w_j^(d) (47.1223a)
        self.z = [sum((correlate(self.t[j], w[j][d]) - self.Theta[j, d] * _sym.ones(P) for j in range(D_IN)),
                      sympy.zeros(P, 1)) for d in range(D_OUT)]                          # (47.1266)
        self.L = sum(self.delta[d].dot(self.z[d]) for d in range(D_OUT))
        self.H = [symbolic_patches(part, tj) for tj in self.t]                           # H_j (47.1157)
        self.H_stack = sympy.Matrix.vstack(*self.H)                                      # H_{c-1} (47.1225)
        self.Delta = sympy.diag(*self.delta)                                             # Δ_c (47.1270)

    def dW(self) -> sympy.Matrix:
        return self.W.applyfunc(lambda v: sympy.diff(self.L, v))

    def dTheta(self) -> sympy.Matrix:
        return self.Theta.applyfunc(lambda v: sympy.diff(self.L, v))


def kron_weight_gradient(H_stack, Delta, D_c) -> sympy.Matrix:
    """(47.1271): (1_{D_c}^T ⊗ H_{c-1}) Δ_c."""
    return _sym.kron(_sym.ones(1, D_c), H_stack) * Delta


def kron_bias_gradient(D_prev, P, Delta, D_c) -> sympy.Matrix:
    """(47.1274): -(1_{D_c}^T ⊗ 1_{D_{c-1}} 1_{P_c}^T) Δ_c."""
    return -_sym.kron(_sym.ones(1, D_c), _sym.ones(D_prev, P)) * Delta


# ---------------------------------------------------------------------- checkers
def check_dense_layer() -> bool:
    """(47.1263-47.1264): L = δ^T (W y - θ) gives ∂L/∂W = δ y^T, ∂L/∂θ = -δ."""
    W, y, theta, delta = sympy.Matrix(_sym.grid("W", (3, 4))), _sym.col("y", 4), _sym.col("theta", 3), _sym.col("d", 3)
    L = delta.dot(W * y - theta)
    return same_matrix(W.applyfunc(lambda v: sympy.diff(L, v)), delta * y.T) and same_matrix(
        theta.applyfunc(lambda v: sympy.diff(L, v)), -delta)


def check_mask_gradient() -> tuple[bool, str]:
    """(47.1265-47.1269): entrywise and per map: ∂L/∂w_j^(d)(s) = [H_j]_{s,:} δ^(d); ∂L/∂W^(d,c) = H_{c-1} δ^(d)."""
    for label, part, correlate in layer_cases():
        layer = Layer(part, correlate)
        S = part.S
        for d in range(D_OUT):
            for j in range(D_IN):
                for s in range(S):
                    w = layer.W[j * S + s, d]
                    dz = sympy.Matrix([sympy.diff(zp, w) for zp in layer.z[d]])
                    if not (same_matrix(dz, layer.H[j][s, :].T)                                  # (47.1267)
                            and same_matrix(sympy.Matrix([sympy.diff(layer.L, w)]),
                                            layer.H[j][s, :] * layer.delta[d])):                # (47.1268)
                        return False, f"{label}: d={d + 1}, j={j + 1}, s={s + 1}"
            if not same_matrix(layer.dW()[:, d], layer.H_stack * layer.delta[d]):               # (47.1269)
                return False, f"{label}: W^({d + 1},c)"
    return True, ""


def check_weight_gradient(formula: Callable) -> tuple[bool, str]:
    """(47.1270-47.1271): ∂L/∂W_c = formula(H_{c-1}, Δ_c, D_c)."""
    for label, part, correlate in layer_cases():
        layer = Layer(part, correlate)
        if not same_matrix(layer.dW(), formula(layer.H_stack, layer.Delta, D_OUT)):
            return False, label
    return True, ""


def check_bias_gradient(formula: Callable) -> tuple[bool, str]:
    """(47.1272-47.1274): ∂L/∂θ^(d)(j) = -1^T δ^(d) for every j, and ∂L/∂Θ_c = formula(D_{c-1}, P, Δ_c, D_c)."""
    for label, part, correlate in layer_cases():
        layer = Layer(part, correlate)
        per_map = sympy.Matrix(D_IN, D_OUT, lambda j, d: -sum(layer.delta[d]))               # (47.1272-47.1273)
        if not (same_matrix(layer.dTheta(), per_map)
                and same_matrix(layer.dTheta(), formula(D_IN, part.P, layer.Delta, D_OUT))):
            return False, label
    return True, ""


def check_direct_convolution() -> tuple[bool, str]:
    """Numeric, unit stride: column (j, d) of (1^T ⊗ H) Δ is vec(correlate(t_j, δ^(d), 'valid')) (Eq. 8.48),
    for 'valid' and 'same' layers on 9 x 8 maps with 3 x 3 masks."""
    rng = np.random.default_rng(1271)
    for padding in (0, 1):
        part = pn.Partition.sliding_window((9, 8), 3, padding=padding)
        t = rng.standard_normal((D_IN, 9, 8))
        delta = rng.standard_normal((D_OUT,) + part.output_shape)
        H_stack = np.vstack([part.patches(pn.vec(tj)) for tj in t])
        Delta = np.zeros((D_OUT * part.P, D_OUT))
        for d in range(D_OUT):
            Delta[d * part.P:(d + 1) * part.P, d] = pn.vec(delta[d])
        grad = np.kron(np.ones((1, D_OUT)), H_stack) @ Delta
        for d in range(D_OUT):
            for j in range(D_IN):
                padded = np.pad(t[j], padding)
                ref = scipy.signal.correlate(padded, delta[d], mode="valid")
                if not allclose(grad[j * part.S:(j + 1) * part.S, d], pn.vec(ref)):
                    return False, f"padding {padding}, d={d + 1}, j={j + 1}"
    return True, ""


CLAIMS = [
    Claim("47.1263–47.1264", "∂/∂W_ℓ = δ y^T, ∂/∂θ_ℓ = -δ", "symbolic", check_dense_layer),
    Claim("47.1225, 47.1265–47.1269", "∂/∂w_j^(d)(s) = [H_j]_{s,:} δ^(d); ∂/∂W^(d,c) = H_{c-1} δ^(d)",
          "symbolic", check_mask_gradient),
    Claim("47.1270–47.1271", "∂/∂W_c = (1^T ⊗ H_{c-1}) Δ_c", "symbolic", check_weight_gradient,
          kron_weight_gradient),
    Claim("47.1272–47.1274", "∂/∂Θ_c = -(1^T ⊗ 1 1^T) Δ_c", "symbolic", check_bias_gradient, kron_bias_gradient),
    Claim("47.1271", "weight gradient = valid correlation of input with δ (Eq. 8.48)", "direct convolution",
          check_direct_convolution),
]


def run(*, latex: bool = False) -> list[Check]:
    if latex:
        part = pn.Partition.sliding_window((3, 3), 2)
        D = sympy.diag(*[_sym.col(f"delta{d}_", part.P) for d in range(2)])
        print_latex("∂/∂W_c = (1^T ⊗ H_{c-1}) Δ_c for a 3x3 map, 2x2 mask, D_c = 2 (47.1271)",
                    kron_weight_gradient(symbolic_patches(part, _sym.col("t", part.M)), D, 2))
    return [claim.run() for claim in CLAIMS]


if __name__ == "__main__":
    raise SystemExit(module_main(run))
