"""The layer contract over every registered kind (partitionnet.layers.contract).

A kind added to ``partitionnet.layers.REGISTRY`` with its ``examples()`` is
tested here with no new test file: forward against the direct-summation
reference, vjp against central differences, the dot test, the literal
backward against the fast one, the explicit operator against the reference's
Jacobian (numerically and exactly in SymPy), the config round trip and the
PyTorch twin.
"""
import numpy as np
import pytest

from partitionnet import layers as L
from partitionnet.layers import contract

CASES = [(kind, i) for kind, cls in sorted(L.REGISTRY.items()) for i in range(len(cls.examples()))]


def built(kind, i):
    layer, in_maps, in_shape = L.REGISTRY[kind].examples()[i]
    return layer.build(in_maps, in_shape)


@pytest.mark.parametrize("check", list(contract.CHECKS))
@pytest.mark.parametrize("kind, i", CASES, ids=[f"{k}{i}" for k, i in CASES])
def test_contract(kind, i, check):
    layer = built(kind, i)
    passed, detail = contract.CHECKS[check](layer, np.random.default_rng(i))
    assert passed, f"{kind} example {i}: {check}: {detail}"


def test_every_kind_is_covered():
    assert {"correlation", "pool", "activation", "softmax", "flatten", "dense"} <= set(L.REGISTRY)
    assert all(L.REGISTRY[k].examples() for k in L.REGISTRY)


@pytest.mark.parametrize("check", ["forward = reference", "vjp = central differences", "dot test",
                                   "vjp_literal = vjp", "operator = reference Jacobian (numeric)",
                                   "operator = reference Jacobian (SymPy, exact)"])
def test_contract_catches_a_broken_layer(monkeypatch, check):
    """A contract that cannot fail proves nothing: scale one method's output by 1 + 1e-3 and watch it fail."""
    target = {"forward = reference": "forward", "vjp = central differences": "vjp", "dot test": "operator",
              "vjp_literal = vjp": "vjp_literal", "operator = reference Jacobian (numeric)": "operator",
              "operator = reference Jacobian (SymPy, exact)": "operator"}[check]
    cls = L.Correlation
    original = getattr(cls, target)

    def broken(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if target == "forward":
            return out[0] * (1 + 1e-3), out[1]
        if target in ("vjp", "vjp_literal"):
            return out[0] * (1 + 1e-3), {k: v * (1 + 1e-3) for k, v in out[1].items()}
        return out * 1.001 if hasattr(out, "toarray") else out * (1 + sympy_rational())

    monkeypatch.setattr(cls, target, broken)
    layer = built("correlation", 0)
    passed, detail = contract.CHECKS[check](layer, np.random.default_rng(0))
    assert not passed, f"{check} did not notice a broken {target}: {detail}"


def sympy_rational():
    import sympy

    return sympy.Rational(1, 1000)


def test_contract_catches_a_backward_pass_that_changes_its_input(monkeypatch):
    """vjp_literal may not write into the sensitivity it receives (the network passes the same array on)."""
    original = L.Correlation.vjp_literal

    def overwriting(self, p, res, dy, *, need_input=True):
        out = original(self, p, res, dy, need_input=need_input)
        dy[0] = 0.0
        return out

    monkeypatch.setattr(L.Correlation, "vjp_literal", overwriting)
    passed, detail = contract.CHECKS["vjp_literal = vjp"](built("correlation", 0), np.random.default_rng(0))
    assert not passed and "changed the sensitivity" in detail
