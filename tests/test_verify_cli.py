"""`partitionnet verify`'s runner: crash isolation, streamed rows, terminal width, Markdown escaping, early path checks."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

from partitionnet.derivations import _check, registry
from partitionnet.cli import main as cli_main

# A derivation module of checks that pass, fail, raise, abort, exit and segfault.
CRASHY = textwrap.dedent('''
    import ctypes, os, time
    from partitionnet.derivations._check import Claim

    def ok():
        return True

    def wrong():
        return False, "the closed form differs"

    def raises():
        raise ZeroDivisionError("inside a checker")

    def aborts():
        os.abort()

    def exits():
        os._exit(3)

    def segfaults():
        ctypes.string_at(0)          # reads address 0: SIGSEGV

    def pipe_claim():
        return True

    CLAIMS = [
        Claim("90.1", "first passes", "numeric", ok),
        Claim("90.2", "raises inside the check", "numeric", raises),
        Claim("90.3", "aborts its process", "numeric", aborts),
        Claim("90.4", "passes after an abort", "symbolic", ok),
        Claim("90.5", "exits with code 3", "numeric", exits),
        Claim("90.6", "segfaults like a bad sparse product", "numeric", segfaults),
        Claim("90.7", "fails honestly", "erratum", wrong),
        Claim("90.8", "printed: a | b, right: c", "erratum", pipe_claim),
    ]
''')

# The second check waits until the test has seen the first row: it passes only if rows are streamed.
STREAMED = textwrap.dedent('''
    import os, time
    from partitionnet.derivations._check import Claim

    def first():
        return True

    def second():
        go = os.environ["VERIFY_TEST_GO"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if os.path.exists(go):
                return True
            time.sleep(0.05)
        return False, "the first row was not printed before the run ended"

    CLAIMS = [Claim("91.1", "first", "numeric", first), Claim("91.2", "waits for the reader", "numeric", second)]
''')


@pytest.fixture
def fake_modules(tmp_path, monkeypatch):
    (tmp_path / "crashy_claims.py").write_text(CRASHY)
    (tmp_path / "streamed_claims.py").write_text(STREAMED)
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def rows(out: str) -> dict:
    """equation -> status of a printed table (first line of each row)."""
    found = {}
    for line in out.splitlines():
        m = re.match(r"^(9\d\.\d)\s.*\s(ok|FAIL)\s+\d+\.\d{3}$", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_a_crash_inside_a_check_is_a_failed_row_and_the_run_goes_on(fake_modules, tmp_path, capsys, jobs):
    md = tmp_path / "table.md"
    code = registry.main(["--markdown", str(md), "--jobs", str(jobs)], modules=["crashy_claims"])
    out = capsys.readouterr().out
    printed = [line.split()[0] for line in out.splitlines() if re.match(r"^9\d\.\d\s", line)]
    assert printed == [f"90.{i}" for i in range(1, 9)], "rows must come in order whatever the number of workers"
    assert code == 1
    assert rows(out) == {"90.1": "ok", "90.2": "FAIL", "90.3": "FAIL", "90.4": "ok", "90.5": "FAIL",
                         "90.6": "FAIL", "90.7": "FAIL", "90.8": "ok"}
    assert "ZeroDivisionError: inside a checker" in out
    assert "SIGABRT" in out and "exit code 3" in out and "SIGSEGV" in out
    assert "8 checks, 5 failed" in out
    table = md.read_text(encoding="utf-8").splitlines()
    assert len([line for line in table if line.startswith("| 90.")]) == 8


def test_jobs_must_be_positive(fake_modules, capsys, monkeypatch):
    assert registry.main(["--jobs", "0"], modules=["crashy_claims"]) == 2
    assert "--jobs must be a positive integer, got 0" in capsys.readouterr().err
    monkeypatch.setenv("PARTITIONNET_VERIFY_JOBS", "many")
    assert registry.main([], modules=["crashy_claims"]) == 2
    assert "PARTITIONNET_VERIFY_JOBS" in capsys.readouterr().err


def test_only_selects_within_the_isolated_run(fake_modules, capsys):
    assert registry.main(["--only", "90.4"], modules=["crashy_claims"]) == 0
    assert rows(capsys.readouterr().out) == {"90.4": "ok"}
    assert registry.main(["--only", "90.6"], modules=["crashy_claims"]) == 1
    assert rows(capsys.readouterr().out) == {"90.6": "FAIL"}
    assert registry.main(["--only", "99.1"], modules=["crashy_claims"]) == 2
    assert "no check covers" in capsys.readouterr().err


def test_a_module_that_cannot_be_imported_is_a_failed_row(fake_modules, capsys):
    (fake_modules / "broken_claims.py").write_text("raise ImportError('half-refactored')\n")
    assert registry.main(["--only", "90.1"], modules=["broken_claims", "crashy_claims"]) == 1
    out = capsys.readouterr().out
    assert "import broken_claims" in out and "half-refactored" in out
    assert rows(out) == {"90.1": "ok"} and "2 checks, 1 failed" in out


def test_rows_are_streamed_as_they_finish(fake_modules, tmp_path):
    go = tmp_path / "go"
    env = dict(os.environ, VERIFY_TEST_GO=str(go), COLUMNS="100")
    env.pop("PYTHONUNBUFFERED", None)   # the rows must be flushed by verify itself
    code = ("import sys; from partitionnet.derivations import registry; "
            "sys.exit(registry.main([], modules=['streamed_claims']))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        seen = []
        for line in proc.stdout:       # blocks until the parent prints: the first row must come alone
            seen.append(line)
            if line.startswith("91.1"):
                go.touch()
                break
        rest = proc.stdout.read()
        assert proc.wait(timeout=120) == 0, "".join(seen) + rest + proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert re.search(r"^91\.2 .* ok ", rest, re.M)


@pytest.mark.parametrize("columns", [60, 80, 100, 160])
def test_the_table_fits_the_terminal(fake_modules, monkeypatch, capsys, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    registry.main([], modules=["crashy_claims"])
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= columns
    lines = out.splitlines()
    start, end = lines[0].index("claim"), lines[0].index("method")
    first = next(i for i, line in enumerate(lines) if line.startswith("90.6"))
    claim = [lines[first][start:end]]
    claim += [line[start:end] for line in lines[first + 1:first + 4] if not line[:start].strip()]
    assert " ".join(" ".join(claim).split()) == "segfaults like a bad sparse product"   # wrapped, not cut


def test_the_whole_table_fits_80_columns(monkeypatch):
    checks = [_check.Check("47.1233–47.1234, 47.1245", "a claim " * 30, m, i % 2 == 0, 1.5, "detail " * 40)
              for i, m in enumerate(_check.METHODS)]
    text = _check.format_table(checks, width=80)
    assert max(map(len, text.splitlines())) <= 80
    assert " ".join(text.split()).count("a claim " * 3) >= 4


def test_markdown_rows_always_have_five_cells(tmp_path):
    checks = [_check.Check("47.1", "printed: |x| | right: x|y", "erratum", True, 0.1),
              _check.Check("47.2", "two\nlines with <html> & a `tick`", "numeric", False, 0.2, "d | e")]
    table = _check.format_table(checks, markdown=True).splitlines()
    body = [line for line in table if line.startswith("| 47.")]
    for line in body:
        cells = re.split(r"(?<!\\)\|", line)[1:-1]      # split on unescaped pipes only
        assert len(cells) == 5, line
    assert "\\|x\\|" in body[0] and "<br>" in body[1] and "&lt;html&gt;" in body[1]


@pytest.mark.parametrize("target, match", [("{tmp}", "is a directory"),
                                           ("{tmp}/missing/table.md", "does not exist")])
def test_markdown_path_is_checked_before_verifying(tmp_path, monkeypatch, capsys, target, match):
    def must_not_run(*a, **k):
        raise AssertionError("verify ran before checking --markdown")

    monkeypatch.setattr(registry, "run_isolated", must_not_run)
    code = cli_main(["verify", "--markdown", target.format(tmp=tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and match in err and "Traceback" not in err


def test_ctrl_c_during_verify_exits_130_with_a_short_message(fake_modules, tmp_path):
    env = dict(os.environ, VERIFY_TEST_GO=str(tmp_path / "never"))
    code = ("import sys, partitionnet.derivations.registry as r; import partitionnet.cli as c; "
            "r.MODULES[:] = ['streamed_claims']; sys.exit(c.main(['verify']))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    for line in proc.stdout:
        if line.startswith("91.1"):
            break
    time.sleep(0.3)
    proc.send_signal(2)                 # SIGINT, as Ctrl-C sends it
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
