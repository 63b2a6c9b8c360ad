"""Regularised risks, the training listing (47.1275) and the stochastic-gradient updates (47.1276).

* (47.1227-47.1229) the gradient of each regularised risk is its regulariser's
  2ρW plus the per-sample gradients of the listing, scaled by 1/N where the
  risk puts 1/N; proved on a small network in symbols (N = 2).
* (47.1275) the whole listing, numerically: two correlation layers (max and
  ℓ2 pooling, 'same' padding, remainder dropped), a tanh hidden layer and a
  sigmoid output, against central differences of a model written by direct
  summation and block-by-block pooling.
* (47.1276) each update line equals "parameter - μ ∂J_n/∂parameter" with
  J_n = ρ1 Σ||W_c||^2 + ρ2 Σ||W_ℓ||^2 + ||γ_n - y_n||^2.
"""
from __future__ import annotations

import numpy as np
import sympy

import partitionnet as pn
from partitionnet import symbolic as _sym

from . import _direct
from ._check import Check, Claim, allclose, module_main, print_latex, same_matrix
from partitionnet.layers.correlation import backprop_operator
from .gradients import kron_bias_gradient, kron_weight_gradient


rho1, rho2, mu = sympy.symbols("rho1 rho2 mu", positive=True)


class TinyNet:
    """C = 1 correlation layer (kernel 2 over a length-4 input, tanh, mean pooling over {1,2}, {3}),
    then one dense layer with identity output; parameters in symbols, N = 2 samples."""

    X = [[1, -2, 3, 1], [2, 1, -1, 4]]
    GAMMA = [sympy.Rational(1, 2), -1]

    def __init__(self):
        self.part = pn.Partition.sliding_window(4, 2)
        self.pool = pn.Pooling.from_regions([[0, 1], [2]], 3, kind="mean")
        self.params = {"conv1.W": sympy.Matrix(_sym.grid("w", (2, 1))),
                       "conv1.Theta": sympy.Matrix([[sympy.Symbol("thc")]]),
                       "dense1.W": sympy.Matrix(_sym.grid("W", (1, 2))),
                       "dense1.theta": sympy.Matrix([sympy.Symbol("th1")])}

    def output(self, n) -> sympy.Expr:
        """y_n by direct summation (no V, no T)."""
        p = self.params
        z = _direct.correlate(np.array(self.X[n], dtype=object), np.array(list(p["conv1.W"]), dtype=object))
        t = _direct.pool([sympy.tanh(v - p["conv1.Theta"][0]) for v in z], [[0, 1], [2]], "mean")
        return (p["dense1.W"] * sympy.Matrix(t) - p["dense1.theta"])[0]

    def error(self, n) -> sympy.Expr:
        return (self.GAMMA[n] - self.output(n)) ** 2

    def regulariser(self) -> sympy.Expr:
        return rho1 * sum(v ** 2 for v in self.params["conv1.W"]) + rho2 * sum(v ** 2 for v in self.params["dense1.W"])

    def listing_terms(self, n) -> dict:
        """The per-sample terms of the listing, from the closed forms (47.1233, 47.1245, 47.1263-47.1264,
        47.1271, 47.1274), built on the library's V and T: the data term of each gradient."""
        p = self.params
        H = (self.part.to_sympy() * sympy.Matrix(self.X[n])).reshape(self.part.P, self.part.S).T
        z = H.T * p["conv1.W"] - p["conv1.Theta"][0] * _sym.ones(self.part.P)
        t = sympy.Matrix(_direct.pool(list(z.applyfunc(sympy.tanh)), self.pool.regions, "mean"))
        y = (p["dense1.W"] * t - p["dense1.theta"])[0]
        delta2 = sympy.Matrix([2 * (y - self.GAMMA[n])])                                  # (47.1233), f' = 1
        g = _sym.gradient_vectors(self.pool, z.applyfunc(sympy.tanh))
        back = _sym.permutation(self.pool).T * _sym.upv(self.pool, p["dense1.W"].T * delta2, g)
        delta_c = z.applyfunc(lambda v: 1 - sympy.tanh(v) ** 2).multiply_elementwise(back)  # (47.1245)
        Delta = sympy.diag(delta_c)
        return {"conv1.W": kron_weight_gradient(H, Delta, 1),
                "conv1.Theta": kron_bias_gradient(1, self.part.P, Delta, 1),
                "dense1.W": delta2 * t.T, "dense1.theta": -delta2}


REGULARISED = {"conv1.W": rho1, "dense1.W": rho2}


def risk_1227(net) -> sympy.Expr:
    return (net.regulariser() + net.error(0) + net.error(1)) / 2


def risk_1229(net) -> sympy.Expr:
    """(47.1229), which is also (47.1228)."""
    return net.regulariser() + (net.error(0) + net.error(1)) / 2


def expected_1227(name, param, terms):
    return (2 * REGULARISED.get(name, 0) * param + terms[0] + terms[1]) / 2


def expected_1229(name, param, terms):
    return 2 * REGULARISED.get(name, 0) * param + (terms[0] + terms[1]) / 2


# ---------------------------------------------------------------------- checkers
def check_risk_gradient(risk, expected) -> tuple[bool, str]:
    """∂risk/∂parameter equals expected(name, parameter, per-sample listing terms) for every parameter."""
    net = TinyNet()
    J = risk(net)
    terms = [net.listing_terms(0), net.listing_terms(1)]
    for name, param in net.params.items():
        grad = param.applyfunc(lambda v: sympy.diff(J, v))
        if not same_matrix(grad, expected(name, param, [terms[0][name], terms[1][name]])):
            return False, name
    return True, ""


#: The update lines after (47.1276), corrected: (parameter, listing term, μ, ρ) -> new parameter.
UPDATES = {
    "dense1.W": lambda W, term, mu, rho: (1 - 2 * mu * rho) * W - mu * term,
    "dense1.theta": lambda theta, term, mu, rho: theta + mu * term,
    "conv1.W": lambda W, term, mu, rho: (1 - 2 * mu * rho) * W - mu * term,
    "conv1.Theta": lambda Theta, term, mu, rho: Theta + mu * term,
}

#: The term each printed update line multiplies by μ (47.1276): δ y^T, δ, (1^T ⊗ H)Δ, (1^T ⊗ 1 1^T)Δ.
_SIGN_OF_TERM = {"dense1.W": 1, "dense1.theta": -1, "conv1.W": 1, "conv1.Theta": -1}


def check_update_rules(rules: dict) -> tuple[bool, str]:
    """rules[name](p, term, μ, ρ) == p - μ ∂J_n/∂p, J_n the one-sample regularised risk (n = 0)."""
    net = TinyNet()
    J = net.regulariser() + net.error(0)
    terms = net.listing_terms(0)
    for name, rule in rules.items():
        param = net.params[name]
        grad = param.applyfunc(lambda v: sympy.diff(J, v))
        # The listing writes the bias terms without their minus sign: δ and (1^T ⊗ 1 1^T)Δ.
        term = _SIGN_OF_TERM[name] * terms[name]
        if not same_matrix(rule(param, term, mu, REGULARISED.get(name, 0)), param - mu * grad):
            return False, name
    return True, ""


# ---------------------------------------------------------------------- the listing, numerically
class NumericNet:
    """Two correlation layers and two dense layers, with the book's parameter shapes (47.1224, 47.1221g-h)."""

    def __init__(self, rng):
        self.layers = [  # (partition, pooling window, pooling kind, D_c)
            (pn.Partition.sliding_window((7, 6), 3, padding=1), (2, 2), "max", 3),
            (pn.Partition.sliding_window((3, 3), 2), (2, 1), "l2", 2),
        ]
        self.pools = [pn.Pooling.windows(part.output_shape, win, kind=kind, drop_remainder=True)
                      for part, win, kind, _ in self.layers]
        D = [2] + [layer[3] for layer in self.layers]
        self.params = {}
        for c, (part, _, _, Dc) in enumerate(self.layers, start=1):
            self.params[f"conv{c}.W"] = rng.standard_normal((part.S * D[c - 1], Dc)) * 0.5
            self.params[f"conv{c}.Theta"] = rng.standard_normal((D[c - 1], Dc)) * 0.1
        sizes = [D[-1] * self.pools[-1].P_out, 3, 2]
        for ell in (1, 2):
            self.params[f"dense{ell}.W"] = rng.standard_normal((sizes[ell], sizes[ell - 1]))
            self.params[f"dense{ell}.theta"] = rng.standard_normal(sizes[ell]) * 0.1
        self.D = D

    # reference: direct summation, block pooling, no V / T
    def reference_output(self, params, x):
        maps = list(x)
        for c, ((part, window, kind, Dc), pool) in enumerate(zip(self.layers, self.pools), start=1):
            g, S = part.geometry, part.S
            W, Theta = params[f"conv{c}.W"], params[f"conv{c}.Theta"]
            maps = [_direct.pool_windows(np.tanh(sum(
                _direct.correlate(maps[j], pn.unvec(W[j * S:(j + 1) * S, d], g["kernel"]), stride=g["stride"],
                                  padding=g["padding"], dilation=g["dilation"]) - Theta[j, d]
                for j in range(len(maps)))), window, kind) for d in range(Dc)]
        y = np.concatenate([pn.vec(m) for m in maps])                                   # (47.1215)
        y = np.tanh(params["dense1.W"] @ y - params["dense1.theta"])
        return 1 / (1 + np.exp(-(params["dense2.W"] @ y - params["dense2.theta"])))

    def risk(self, params, X, Gamma, rho):
        """(47.1229)."""
        reg = sum(rho[k.split(".")[0][:-1]] * np.sum(v ** 2) for k, v in params.items() if k.endswith(".W"))
        return reg + np.mean([np.sum((g - self.reference_output(params, x)) ** 2) for x, g in zip(X, Gamma)])

    # the listing (47.1275) for one sample, on the library's V, T, upv
    def listing(self, x, gamma):
        p, cache, t = self.params, [], [pn.vec(m) for m in x]
        for c, ((part, _, _, Dc), pool) in enumerate(zip(self.layers, self.pools), start=1):
            H = [part.patches(tj) for tj in t]
            W, Theta, S = p[f"conv{c}.W"], p[f"conv{c}.Theta"], part.S
            z = [sum(H[j].T @ W[j * S:(j + 1) * S, d] - Theta[j, d] for j in range(len(t))) for d in range(Dc)]
            pooled = [pool.pool(np.tanh(zd)) for zd in z]
            cache.append((H, z, [g for _, g in pooled]))
            t = [tp for tp, _ in pooled]
        y1 = np.concatenate(t)
        z2 = p["dense1.W"] @ y1 - p["dense1.theta"]
        y2 = np.tanh(z2)
        y3 = 1 / (1 + np.exp(-(p["dense2.W"] @ y2 - p["dense2.theta"])))
        delta3 = 2 * (y3 - gamma) * y3 * (1 - y3)                                     # (47.1233)
        delta2 = (1 - y2 ** 2) * (p["dense2.W"].T @ delta3)                            # (47.1234)
        grads = {"dense2.W": np.outer(delta3, y2), "dense2.theta": -delta3,           # (47.1263-47.1264)
                 "dense1.W": np.outer(delta2, y1), "dense1.theta": -delta2}
        P_out = self.pools[-1].P_out
        _, z, g = cache[-1]
        deltas = [(1 - np.tanh(z[d]) ** 2) * self.pools[-1].backward(                    # (47.1245)
            p["dense1.W"][:, d * P_out:(d + 1) * P_out].T @ delta2, g[d]) for d in range(len(z))]
        for c in range(len(self.layers), 0, -1):
            H, z, g = cache[c - 1]
            Delta = np.zeros((len(z) * z[0].size, len(z)))
            for d, dd in enumerate(deltas):
                Delta[d * dd.size:(d + 1) * dd.size, d] = dd                              # (47.1270)
            H_stack = np.vstack(H)
            grads[f"conv{c}.W"] = np.kron(np.ones((1, len(z))), H_stack) @ Delta        # (47.1271)
            grads[f"conv{c}.Theta"] = -np.kron(np.ones((1, len(z))), np.ones((len(H), z[0].size))) @ Delta  # (47.1274)
            if c > 1:                                                                     # (47.1257), (47.1262)
                part, pool, W = self.layers[c - 1][0], self.pools[c - 2], p[f"conv{c}.W"]
                S = part.S
                _, z_prev, g_prev = cache[c - 2]
                deltas = [(1 - np.tanh(z_prev[d]) ** 2) * sum(pool.backward(
                    backprop_operator(part, W[d * S:(d + 1) * S, e])
                    @ deltas[e], g_prev[d]) for e in range(len(deltas))) for d in range(len(z_prev))]
        return grads


def check_listing_numeric() -> tuple[bool, str]:
    """(47.1229, 47.1275): listing gradients, with the regulariser and 1/N, equal central differences of the risk."""
    rng = np.random.default_rng(1275)
    net = NumericNet(rng)
    X, Gamma = rng.standard_normal((3, 2, 7, 6)), rng.uniform(0.1, 0.9, (3, 2))
    rho = {"conv": 0.01, "dense": 0.02}
    per_sample = [net.listing(x, g) for x, g in zip(X, Gamma)]
    h = 1e-6
    for name, value in net.params.items():
        reg = 2 * rho[name.split(".")[0][:-1]] * value if name.endswith(".W") else 0
        listing = reg + np.mean([gr[name] for gr in per_sample], axis=0)
        fd = np.zeros_like(value)
        for i in np.ndindex(*value.shape):
            plus, minus = dict(net.params), dict(net.params)
            plus[name], minus[name] = value.copy(), value.copy()
            plus[name][i] += h
            minus[name][i] -= h
            fd[i] = (net.risk(plus, X, Gamma, rho) - net.risk(minus, X, Gamma, rho)) / (2 * h)
        if not allclose(listing, fd, rtol=1e-6, atol=1e-8):
            return False, f"{name}: max error {np.max(np.abs(listing - fd)):.2e}"
    return True, ""


def check_library_engines() -> tuple[bool, str]:
    """The library's ConvNet, with the same architecture and parameters, returns the listing's gradients
    (loss summed over the batch, no regulariser) from both engines, and its backprop_operator(2-1, d, d')
    is the operator of (47.1257)."""
    rng = np.random.default_rng(1276)
    ref = NumericNet(rng)
    X, Gamma = rng.standard_normal((3, 2, 7, 6)), rng.uniform(0.1, 0.9, (3, 2))
    net = pn.ConvNet((7, 6), 2, [
        pn.ConvLayer(3, kernel=3, padding=1, pooling="max", window=2, pool_options={"drop_remainder": True}),
        pn.ConvLayer(2, kernel=2, pooling="l2", window=(2, 1))], [3, 2], activation="tanh", output="sigmoid")
    net.set_parameters(ref.params)
    expected = {name: sum(ref.listing(x, g)[name] for x, g in zip(X, Gamma)) for name in ref.params}
    for engine in ("kronecker", "fast"):
        got = net.gradients(X, Gamma, engine=engine)
        for name, value in expected.items():
            if not allclose(got[name], value, rtol=1e-9, atol=1e-11):
                return False, f"engine {engine!r}, {name}"
    part, W, S = ref.layers[1][0], ref.params["conv2.W"], ref.layers[1][0].S
    for d, e in np.ndindex(3, 2):
        operator = backprop_operator(part, W[d * S:(d + 1) * S, e])
        if not allclose(net.backprop_operator(1, d + 1, e + 1).toarray(), operator.toarray()):
            return False, f"backprop_operator(1, {d + 1}, {e + 1})"
    return True, ""


def check_library_sgd_step() -> tuple[bool, str]:
    """The library's own update step (``partitionnet.training.sgd_step``, after 47.1276) moves every parameter by
    ``-mu dJ/dparameter``, J the regularised empirical risk of (47.1228) on one mini-batch; dJ is taken independently:
    central differences of the dense reference model plus ``2 rho W`` for the regulariser."""
    from partitionnet import reference
    from partitionnet.training import sgd_step

    rng = np.random.default_rng(1228)
    net = pn.ConvNet((7, 6), 2, [pn.ConvLayer(3, kernel=3, padding=1, window=(2, 3), pool_options={"drop_remainder": True}),
                                 pn.ConvLayer(2, kernel=2, pooling="mean", window=(2, 1))], [3, 2], output="sigmoid",
                     rng=3)
    net.set_parameters({k: v + 0.2 * rng.standard_normal(v.shape) * (net.structural_mask(k) if
                                                                       net.structural_mask(k) is not None else 1)
                        for k, v in net.parameters().items()})
    B, mu, rho1, rho2 = 4, 0.05, 0.3, 0.2
    X, Gamma = rng.standard_normal((B, 2, 7, 6)), rng.uniform(0.1, 0.9, (B, 2))
    before = net.parameters()
    fd = reference.numerical_gradients(net, X, Gamma)
    expected = {}
    for key, value in before.items():
        rho = rho1 if key.startswith("conv") and key.endswith(".W") else rho2 if key.endswith(".W") else 0.0
        expected[key] = value - mu * (2 * rho * value + fd[key] / B)           # J = rho ||W||^2 + (1/B) sum_n l_n
    sgd_step(net, net.gradients(X, Gamma), learning_rate=mu, rho1=rho1, rho2=rho2, batch_size=B)
    after = net.parameters()
    for key in before:
        if not allclose(after[key], expected[key], rtol=1e-8, atol=1e-9):
            return False, f"{key}: max difference {np.max(np.abs(after[key] - expected[key])):.2e}"
    return True, f"{len(before)} parameters, mu={mu}, rho1={rho1}, rho2={rho2}, B={B}"


CLAIMS = [
    Claim("47.1227", "∇ of the 1/N-scaled risk = (2ρW + Σ_n listing terms)/N", "symbolic",
          check_risk_gradient, risk_1227, expected_1227),
    Claim("47.1228–47.1229", "∇J_emp = 2ρW + (1/N) Σ_n listing terms", "symbolic",
          check_risk_gradient, risk_1229, expected_1229),
    Claim("47.1229, 47.1275", "listing gradients (C = 2, max/ℓ2) = finite differences", "numeric",
          check_listing_numeric),
    Claim("47.1276", "updates = parameter - μ ∂J_n/∂parameter", "symbolic", check_update_rules, UPDATES),
    Claim("47.1228, 47.1276", "the library's sgd_step = parameter - μ ∂J/∂parameter (J by differences)", "numeric",
          check_library_sgd_step),
    Claim("47.1257, 47.1275", "library ConvNet engines and backprop_operator = the listing", "numeric",
          check_library_engines),
]


def run(*, latex: bool = False) -> list[Check]:
    if latex:
        net = TinyNet()
        print_latex("∂J_emp/∂W_c of (47.1229) for the small network", risk_1229(net).diff(net.params["conv1.W"][0]))
    return [claim.run() for claim in CLAIMS]


if __name__ == "__main__":
    raise SystemExit(module_main(run))
