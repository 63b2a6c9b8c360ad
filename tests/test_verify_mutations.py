"""`partitionnet verify` proves the shipped layers: break any method of any registered kind and rows fail.

Each mutant scales one method's output by 1 + 1e-3, a realistic slip (a wrong
factor) that is invisible to a shape check. The in-process part runs exactly
the claims ``verify`` runs for that kind; the end-to-end part runs the real
command in a subprocess with a mutated library and expects a failed row and a
non-zero exit.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from partitionnet.layers import REGISTRY

from partitionnet.derivations import layers as layer_claims

FACTOR = 1 + 1e-3
METHODS = ("forward", "vjp", "vjp_literal", "operator", "reference")


def scaled(value):
    if isinstance(value, tuple):                                   # (output, residue) or (dx, grads)
        head, tail = value
        tail = {k: v * FACTOR for k, v in tail.items()} if isinstance(tail, dict) else tail
        return (None if head is None else head * FACTOR), tail
    if hasattr(value, "toarray"):                                  # a scipy operator
        return value * FACTOR
    if isinstance(value, np.ndarray):
        return value * FACTOR
    import sympy

    return value * (1 + sympy.Rational(1, 1000))                   # a SymPy operator


def mutate(monkeypatch, cls, method):
    original = getattr(cls, method)
    if method == "reference":
        monkeypatch.setattr(cls, method, staticmethod(lambda *a, **k: scaled(original(*a, **k))))
    else:
        monkeypatch.setattr(cls, method, lambda self, *a, **k: scaled(original(self, *a, **k)))


def kind_rows(kind):
    return [claim.run() for claim in layer_claims.CLAIMS if claim.args[:1] == (kind,)]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_breaking_a_layer_method_fails_verify_rows(monkeypatch, kind, method):
    mutate(monkeypatch, REGISTRY[kind], method)
    failed = [r for r in kind_rows(kind) if not r.passed]
    assert failed, f"no verify row noticed a broken {kind}.{method}"


def test_unbroken_rows_pass():
    assert all(r.passed for kind in REGISTRY for r in kind_rows(kind))


def test_verify_command_fails_on_a_mutated_library(tmp_path):
    """End to end: a mutated operator makes the real command report FAIL rows and exit non-zero."""
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent("""
        from partitionnet.layers import Correlation
        _original = Correlation.operator
        def _broken(self, *args, **kwargs):
            out = _original(self, *args, **kwargs)
            return out * 1.001 if hasattr(out, "toarray") else out * 2
        Correlation.operator = _broken
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-m", "partitionnet.cli", "verify", "--only", "47.1257"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode != 0, run.stdout[-2000:]
    assert "FAIL" in run.stdout


def test_the_training_row_runs_the_library_update_step(monkeypatch):
    """verify's (47.1276) row calls partitionnet.training.sgd_step: a slightly wrong step must fail it."""
    import partitionnet.training as training

    from partitionnet.derivations import training as training_claims

    assert training_claims.check_library_sgd_step()[0]
    original = training.sgd_step
    monkeypatch.setattr(training, "sgd_step", lambda net, grads, **kw: original(
        net, grads, **dict(kw, learning_rate=kw["learning_rate"] * 1.001)))
    assert not training_claims.check_library_sgd_step()[0]
