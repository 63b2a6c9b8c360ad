"""The derivations run and pass, ``verify`` behaves, and the checkers can fail.

The last group feeds deliberately wrong variants (a transposed or unflipped
kernel, a wrong Kronecker order, the sources' printed typos) to the same
checker functions the derivations use, and requires them to report failure:
a checker that cannot fail proves nothing.
"""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy

import partitionnet as pn
from partitionnet import symbolic as _sym
from partitionnet.derivations import (_check, backprop, convolution_chapter, correlation, errata, gradients,
                         lecture_notes, pooling, registry, training)

ROOT = Path(__file__).resolve().parents[1]


def failed(result) -> bool:
    """A checker's verdict is False (a bare bool or the first item of a (bool, detail) pair)."""
    return not (result[0] if isinstance(result, tuple) else result)


# ---------------------------------------------------------------------- every derivation passes
@pytest.mark.parametrize("name", registry.MODULES)
def test_module_passes(name):
    checks = importlib.import_module(name).run()
    assert checks, f"{name} ran no check"
    bad = [f"{c.equation}: {c.claim} -> {c.detail}" for c in checks if not c.passed]
    assert not bad, "\n".join(bad)
    assert all(c.method in _check.METHODS for c in checks)


@pytest.mark.parametrize("erratum", errata.ERRATA, ids=lambda e: f"{e.location}:{e.printed[:20]}")
def test_every_erratum_fails_as_printed_and_holds_corrected(erratum):
    printed, corrected, *detail = erratum.test()
    assert printed is False or printed == False  # noqa: E712  (numpy bools)
    assert bool(corrected)
    assert errata.confirm(erratum)[0]
    # the same test with its two forms swapped must be rejected
    swapped = errata.Erratum(erratum.location, erratum.corrected, erratum.printed,
                             lambda: (corrected, printed, *detail))
    assert not errata.confirm(swapped)[0]


def test_errata_list_every_location_of_the_issue():
    locations = {e.location for e in errata.ERRATA}
    for required in ("47.1201", "47.1259", "47.1213", "47.1223", "47.1166", "47.1180", "47.1221g", "47.1189",
                     "47.1221e", "47.1147d", "47.1220", "47.1256", "47.1237", "47.1216", "000:(9)", "000:(15)",
                     "000:(16)", "000:(23)", "004:summary slide", "8.37, P8.4", "003:σ' in ∂E/∂y",
                     "003:convolution gradients"):
        assert required in locations, required
    assert len({(e.location, e.printed) for e in errata.ERRATA}) == len(errata.ERRATA)


def test_erratum_details_show_the_printed_value():
    details = {e.location: errata.confirm(e)[1] for e in errata.ERRATA}
    assert "printed 300" in details["47.1166"] and "library: 2460" in details["47.1166"]
    assert "printed K gives 49" in details["47.1147d"]


def test_value_errata_see_the_library(monkeypatch):
    """The corrected forms are compared with what the library computes: break the library and they fail."""
    original = pn.Pooling.pool
    monkeypatch.setattr(pn.Pooling, "pool", lambda self, y: tuple(a * 1.001 for a in original(self, y)))
    for test in (errata.t_hadamard_1180, errata.t_regions_000_23, errata.t_average_837):
        assert not test()[1], test.__name__


# ---------------------------------------------------------------------- verify
def test_verify_only_one_equation(capsys):
    assert registry.main(["--only", "47.1257"]) == 0
    out = capsys.readouterr().out
    assert "47.1257" in out and "FAIL" not in out


def test_verify_markdown(tmp_path):
    path = tmp_path / "verify.md"
    assert registry.main(["--only", "P8.3", "--markdown", str(path)]) == 0
    text = path.read_text(encoding="utf-8")
    assert text.startswith("| equation | claim | method | status | seconds |")
    assert "| P8.3–P8.4 |" in text


def test_verify_nothing_selected_and_bad_arguments(capsys):
    assert registry.main(["--only", "99.999"]) == 2
    assert registry.main(["--bogus"]) == 2


def test_run_all_selects_by_equation():
    checks = registry.run_all("47.1196c")
    assert checks and all(_check.covers(c.equation, "47.1196c") for c in checks)


@pytest.mark.parametrize("labels, query, expected", [
    ("47.1233–47.1234, 47.1245", "47.1234", True),
    ("47.1233–47.1234, 47.1245", "47.1245", True),
    ("47.1233–47.1234, 47.1245", "47.1240", False),
    ("47.1196a–47.1196e", "47.1196c", True),
    ("47.1196a–47.1196e", "47.1196", True),
    ("47.1196a", "47.1196b", False),
    ("8.14–8.19, E8.7", "8.18", True),
    ("8.14–8.19, E8.7", "E8.7", True),
    ("8.14–8.19, E8.7", "P8.7", False),
    ("8.14–8.19", "47.1215", False),
    ("004:cost table", "004", True),
    ("004:cost table", "003", False),
])
def test_covers(labels, query, expected):
    assert _check.covers(labels, query) is expected


def test_a_crashing_checker_is_a_failure():
    result = _check.check("0.0", "division", "numeric", lambda: 1 / 0)
    assert not result.passed and "ZeroDivisionError" in result.detail
    with pytest.raises(ValueError, match="method"):
        _check.check("0.0", "x", "guess", lambda: True)


def test_module_command_line():
    proc = subprocess.run([sys.executable, "-m", "derivations.correlation", "--latex"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "\\[" in proc.stdout and "47.1139" in proc.stdout


def test_verify_only_selects_honest_rows():
    rows = registry.run_all("47.1177")
    assert rows and all(c.passed for c in rows)
    assert any("7 x 9" in c.claim for c in rows)
    assert all(c.method == "erratum" for c in registry.run_all("47.1166"))


def test_partial_windows_of_47_1177():
    pool = pn.Pooling.windows((7, 9), 3, kind="subsample", retain=0, partial=True)
    assert pool.output_shape == (3, 3) and pool.sizes.tolist() == [9, 9, 3] * 3
    with pytest.raises(ValueError, match="partial"):
        pn.Pooling.windows((7, 9), 3, partial=True, drop_remainder=True)
    with pytest.raises(ValueError, match="partial=True"):
        pn.Pooling.windows((7, 9), 3)


def test_book_examples_fail_without_the_last_row(monkeypatch):
    original = pn.Pooling.windows.__func__

    def dropping(cls, shape, window, **options):
        if options.pop("partial", False):
            options["drop_remainder"] = True
        return original(cls, shape, window, **options)
    monkeypatch.setattr(pn.Pooling, "windows", classmethod(dropping))
    ok, detail = pooling.check_book_examples_2d()
    assert not ok and "47.1177" in detail


def test_lp_gradient_without_sign_is_caught():
    def unsigned(pool, y, mask=None):
        g = _sym.gradient_vectors(pool, y, mask)
        return g.applyfunc(lambda e: e.replace(sympy.sign, lambda a: sympy.Integer(1))) if pool.kind == "lp" else g
    assert failed(pooling.check_gradient_vectors(unsigned))


def test_confirm_rejects_an_erratum_whose_printed_form_holds():
    fake = errata.Erratum("0.0", "x", "x", lambda: (True, True))
    assert not errata.confirm(fake)[0]


# ---------------------------------------------------------------------- the checks can fail
def test_flip_checks_reject_transposed_and_half_flipped_kernels():
    assert failed(correlation.check_flip_identity(lambda W: W.T))
    assert failed(correlation.check_flip_identity(lambda W: correlation.reversal(W.rows) * W))
    assert failed(correlation.check_convolution_form(lambda W: W))
    assert failed(convolution_chapter.check_flip(lambda W: W.T))


def test_inner_product_rejects_mismatched_stacking():
    assert failed(correlation.check_inner_product(_sym.vec, lambda A: _sym.vec(A.T)))


def test_printed_permutation_of_47_1201_fails():
    assert failed(pooling.check_permutation(errata.PRINTED_1201, pooling.BOOK_REGIONS, 12))
    T = sympy.Matrix(_sym.permutation(pooling.book_pooling()))
    assert not failed(pooling.check_permutation(T, pooling.BOOK_REGIONS, 12))
    assert failed(pooling.check_permutation(T.T, pooling.BOOK_REGIONS, 12))


def test_pooling_checkers_reject_wrong_gradients_and_missing_transpose():
    def l2_over_t_squared(pool, y, mask):
        g = _sym.gradient_vectors(pool, y, mask)
        if pool.kind != "l2":
            return g
        t = [sympy.sqrt(sum(y[int(i)] ** 2 for i in r)) for r in pool.regions]
        owner = _sym.region_of_entry(pool)
        return sympy.Matrix([g[k] / t[owner[k]] for k in range(len(g))])

    assert failed(pooling.check_gradient_vectors(l2_over_t_squared))
    assert failed(pooling.check_pooling_adjoint(lambda pool, v, g: _sym.permutation(pool) * _sym.upv(pool, v, g)))


def test_backprop_operator_rejects_flipped_mask_and_wrong_kronecker_order():
    def flipped(part, w):
        return backprop.shipped_operator(part, w[::-1, :])

    def swapped(part, w):
        mask = _sym.kron(sympy.SparseMatrix(w.T), _sym.ones(part.M, part.P))
        return _sym.hadamard(part.to_sympy().T, mask) * _sym.kron(_sym.eye(part.P), _sym.ones(w.rows, 1))

    assert failed(backprop.check_backprop_operator(flipped))
    assert failed(backprop.check_backprop_operator(swapped))
    assert failed(backprop.check_earlier_layer(flipped))


def test_backprop_rejects_the_printed_listing_and_b_pattern():
    assert failed(backprop.check_last_layer(lambda W1, d, P_out: W1))             # W_1 for W_1^(d)
    assert failed(backprop.check_book_upsampling(errata.PRINTED_1259))


def test_gradient_checkers_reject_wrong_forms():
    assert failed(gradients.check_weight_gradient(
        lambda H, Delta, D_c: _sym.kron(H, _sym.ones(1, D_c)) * Delta))
    assert failed(gradients.check_bias_gradient(lambda D_prev, P, Delta, D_c: -gradients.kron_bias_gradient(
        D_prev, P, Delta, D_c)))


def test_training_checkers_reject_printed_updates_and_missing_scaling():
    assert failed(training.check_update_rules({"dense1.theta": lambda th, term, mu, rho: th - mu * term}))
    assert failed(training.check_risk_gradient(training.risk_1229, training.expected_1227))


def test_convolution_checkers_reject_missing_flip():
    assert failed(convolution_chapter.check_input_gradient(lambda W: W))
    assert failed(lecture_notes.check_valid_transpose(lambda a: a))


def test_numeric_operator_detects_a_wrong_mask(monkeypatch):
    original = backprop.backprop_operator
    monkeypatch.setattr(backprop, "backprop_operator", lambda part, w, *a: original(part, np.flip(w), *a))
    assert failed(backprop.check_operator_numeric())
