"""The layer contract and the composed networks, as rows of ``partitionnet verify``.

Every kind in :data:`partitionnet.layers.REGISTRY` gets one row per check of
:mod:`partitionnet.layers.contract`, run over all of the kind's ``examples()``:
its ``forward`` against its direct-summation ``reference``, its ``vjp``
against central differences, the dot test, ``vjp_literal`` against ``vjp``,
and its explicit ``operator`` against the transposed Jacobian of the
reference, numerically and exactly in SymPy. These call the shipped layer
code, so breaking any of those methods turns a row red.

The network rows run both library engines, through :class:`partitionnet.ConvNet`,
over a table of architectures against central differences of the
independent dense model :mod:`partitionnet.reference` (47.1275).
"""
from __future__ import annotations

import numpy as np

import partitionnet as pn
from partitionnet import reference
from partitionnet.layers import REGISTRY, contract

from ._check import Check, Claim, module_main

#: the contract checks that are proofs of the mathematics (the config and torch checks live in the tests)
PROOF_CHECKS = {
    "forward = reference": "numeric",
    "vjp = central differences": "numeric",
    "dot test": "numeric",
    "vjp_literal = vjp": "numeric",
    "operator = reference Jacobian (numeric)": "numeric",
    "operator = reference Jacobian (SymPy, exact)": "symbolic",
}


def run_contract(kind: str, check: str) -> tuple[bool, str]:
    """One contract check over every example of one layer kind."""
    details = []
    for i, (layer, in_maps, in_shape) in enumerate(REGISTRY[kind].examples()):
        passed, detail = contract.CHECKS[check](layer.build(in_maps, in_shape), np.random.default_rng(i))
        if not passed:
            return False, f"example {i}: {detail}"
        details.append(detail)
    return True, f"{len(details)} examples; " + details[-1]


def contract_claims() -> list:
    claims = []
    for kind, cls in sorted(REGISTRY.items()):
        for check, method in PROOF_CHECKS.items():
            claims.append(Claim(cls.equations, f"{cls.__name__} layer (shipped code): {check}", method,
                                run_contract, kind, check))
    return claims


# ---------------------------------------------------------------------- composed networks
def _architectures():
    """(label, network factory, loss) over pooling kinds, both losses, both bias modes, softmax, relu, strides."""
    L = pn.ConvLayer
    return [
        ("max + l2 pooling, tanh, per-input bias", lambda: pn.ConvNet(
            (7, 6), 2, [L(3, kernel=3, padding=1, window=2, pool_options={"drop_remainder": True}),
                        L(2, kernel=2, pooling="l2", window=(2, 1))], [3, 2], output="sigmoid", rng=0)),
        ("mean pooling, stride 2, tied bias, relu", lambda: pn.ConvNet(
            (9, 8), 1, [L(2, kernel=3, stride=2, pooling="mean", window=(2, 1))], [3], activation="relu",
            bias="tied", rng=1)),
        ("softmax + cross-entropy, lp pooling, 1-D", lambda: pn.ConvNet(
            (12,), 2, [L(3, kernel=3, padding="same", pooling="lp", window=3, pool_options={"p": 3.0})],
            [4, 3], output="softmax", loss="cross_entropy", rng=2)),
        ("softmax + squared loss, subsample, dilation", lambda: pn.ConvNet(
            (10,), 1, [L(2, kernel=3, dilation=2, pooling="subsample", window=2,
                         pool_options={"rng": 0})], [3], output="softmax", rng=3)),
        ("correlation pooling, connection table, two layers", lambda: pn.ConvNet(
            (6, 6), 2, [L(3, kernel=2, padding="full", connections=[[0], [1], [0, 1]], pooling="correlation",
                          window=(7, 1), pool_options={"mask": np.linspace(-1, 1, 49)}),
                        L(2, kernel=1)], [2], activation="sigmoid", rng=4)),
    ]


def check_network_engines(factory) -> tuple[bool, str]:
    """Both engines agree to 1e-10 and match central differences of the dense reference model to 1e-6."""
    net = factory()
    rng = np.random.default_rng(1275)
    params = {k: v + 0.3 * rng.standard_normal(v.shape) * (v != 0 if k.endswith("W") else 1)
              for k, v in net.parameters().items()}
    for st in net.conv:                              # keep structural zeros of the connection table
        key = f"conv{st.index}.Theta"
        if net.bias == "per_input":
            params[key] = params[key] * st.connections.T
    net.set_parameters(params)
    x = rng.standard_normal((3, net.in_maps) + net.input_shape)
    Q = net.dense_sizes[-1]
    gamma = rng.dirichlet(np.ones(Q), 3) if net.output == "softmax" else rng.uniform(0.1, 0.9, (3, Q))
    fast, book = net.gradients(x, gamma), net.gradients(x, gamma, engine="kronecker")
    fd = reference.numerical_gradients(net, x, gamma)
    engines = max(float(np.max(np.abs(fast[k] - book[k]))) for k in fast)
    scale = lambda a: max(1.0, float(np.max(np.abs(a))))  # noqa: E731
    diff = max(float(np.max(np.abs(fast[k] - fd[k]))) / scale(fd[k]) for k in fast)
    return engines < 1e-10 and diff < 1e-6, f"engines differ by {engines:.1e}; vs differences {diff:.1e}"


def network_claims() -> list:
    return [Claim("47.1275", f"both engines = differences of the dense model: {label}", "numeric",
                  check_network_engines, factory) for label, factory in _architectures()]


CLAIMS = contract_claims() + network_claims()


def run(*, latex: bool = False) -> list[Check]:
    return [claim.run() for claim in CLAIMS]


if __name__ == "__main__":
    raise SystemExit(module_main(run))
