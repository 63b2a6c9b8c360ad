"""The result type of a derivation and the comparisons every derivation uses.

A derivation is a function that builds a candidate closed form and an
independent reference (a symbolic derivative of a model written by direct
summation, a dense numeric model, scipy.signal) and says whether they agree.
:func:`check` runs one such function, times it, and records the outcome as a
:class:`Check`. An exception inside a checker is recorded as a failure, never
swallowed silently: a derivation that cannot run has not proved anything.
"""
from __future__ import annotations

import re
import shutil
import sys
import textwrap
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import sympy

METHODS = ("symbolic", "numeric", "direct convolution", "erratum")


@dataclass(frozen=True)
class Check:
    """One verified statement.

    ``equation`` names what is covered ("47.1257", "47.1196a–47.1196e",
    "P8.3", "004:cost table"); ``method`` is one of :data:`METHODS`; for an
    erratum ``passed`` means "confirmed: the printed form fails and the
    corrected form holds".
    """

    equation: str
    claim: str
    method: str
    passed: bool
    seconds: float
    detail: str = ""


def check(equation: str, claim: str, method: str, fn: Callable, *args, **kwargs) -> Check:
    """Run ``fn(*args, **kwargs)`` and record its verdict.

    ``fn`` returns a bool, or a ``(bool, detail)`` pair.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    start = time.perf_counter()
    try:
        out = fn(*args, **kwargs)
        passed, detail = out if isinstance(out, tuple) else (out, "")
    except Exception as exc:  # a checker that crashes has failed; say why
        passed, detail = False, f"{type(exc).__name__}: {exc}"
    return Check(equation, claim, method, bool(passed), time.perf_counter() - start, str(detail))


class Claim:
    """A check not yet run, ``Claim(equation, claim, method, fn, *args)``.

    Modules list their claims in ``CLAIMS``; the registry selects claims by
    equation before running any of them.
    """

    __slots__ = ("equation", "claim", "method", "fn", "args")

    def __init__(self, equation: str, claim: str, method: str, fn: Callable, *args):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.equation, self.claim, self.method, self.fn, self.args = equation, claim, method, fn, args

    def run(self) -> Check:
        return check(self.equation, self.claim, self.method, self.fn, *self.args)

    def __repr__(self) -> str:
        return f"Claim({self.equation!r}, {self.claim!r}, {self.method!r}, {self.fn.__name__})"


# ---------------------------------------------------------------------- exact comparison
def is_zero(expr) -> bool:
    """True when ``expr`` expands to exactly 0."""
    return sympy.expand(expr) == 0


def same_matrix(A, B) -> bool:
    """Entry-by-entry exact equality of two SymPy matrices (expand each difference to zero).

    Shapes must agree. For sparse matrices only the stored entries of the
    difference are expanded, so large zero regions cost nothing.
    """
    A, B = sympy.SparseMatrix(A), sympy.SparseMatrix(B)
    if A.shape != B.shape:
        return False
    return all(is_zero(v) for v in (A - B).todok().values())


def allclose(a, b, *, rtol: float = 1e-10, atol: float = 1e-12) -> bool:
    """Numeric agreement with matching shapes (no broadcasting)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


# ---------------------------------------------------------------------- equation labels
_NUMBERED = re.compile(r"^([A-Za-z]*)(\d+)\.(\d+)([a-z]?)$")


def _parse(label: str):
    m = _NUMBERED.match(label.strip())
    if not m:
        return None
    prefix, chapter, number, letter = m.groups()
    return prefix.upper(), int(chapter), int(number), letter


def covers(labels: str, query: str) -> bool:
    """Does the label list ``labels`` (e.g. "47.1233–47.1234, 47.1245") cover ``query``?

    Ranges use an en dash or a hyphen. A query without a letter matches any
    lettered sub-equation ('47.1196' covers '47.1196c'). Labels that are not
    equation numbers ("004:cost table") match a query that starts them.
    """
    q = _parse(query)
    for token in (t.strip() for t in labels.split(",")):
        ends = re.split(r"\s*[–-]\s*(?=[A-Za-z]*\d+\.\d+)", token)
        lo, hi = _parse(ends[0]), _parse(ends[-1])
        if q is None or lo is None or hi is None:
            if token.lower().startswith(query.strip().lower()):
                return True
            continue
        if q[:2] != lo[:2] or lo[:2] != hi[:2]:
            continue
        if not lo[2] <= q[2] <= hi[2]:
            continue
        if q[3] and q[2] == lo[2] == hi[2] and lo[3] and not lo[3] <= q[3] <= hi[3]:
            continue
        return True
    return False


# ---------------------------------------------------------------------- reporting
HEADER = ("equation", "claim", "method", "status", "seconds")
_STATUS_WIDTH, _SECONDS_WIDTH = 6, 7
_GAP = "  "


def table_width(width: int | None = None) -> int:
    """The width to fit: ``width``, or the terminal's (``COLUMNS`` or 100 columns when not a terminal)."""
    if width is None:
        width = shutil.get_terminal_size(fallback=(100, 24)).columns
    return max(int(width), 60)


def _widths(width: int) -> tuple:
    """Column widths (equation, claim, method, status) for a table ``width`` columns wide.

    The equation and method columns shrink on narrow terminals (their cells
    wrap); the claim column takes the rest.
    """
    available = width - 4 * len(_GAP) - _STATUS_WIDTH - _SECONDS_WIDTH
    equation = min(max(int(available * 0.22), 8), 16)
    method = min(max(int(available * 0.2), 8), max(map(len, METHODS)))
    return equation, available - equation - method, method, _STATUS_WIDTH


def _cells(check: Check) -> tuple:
    return (check.equation, check.claim, check.method, "ok" if check.passed else "FAIL", f"{check.seconds:.3f}")


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(" ".join(str(text).split()), width, break_long_words=True, break_on_hyphens=False) or [""]


def format_row(cells, width: int | None = None) -> str:
    """One table row fitted to ``width`` columns: the equation and claim cells wrap onto continuation lines.

    Examples
    --------
    >>> print(format_row(("47.1257", "a claim long enough to wrap onto a second line", "symbolic", "ok",
    ...                   "0.125"), width=60))
    47.1257   a claim long enough to   symbolic  ok        0.125
              wrap onto a second line
    """
    widths = _widths(table_width(width))
    columns = [_wrap(cell, w) for cell, w in zip(cells[:4], widths)]
    lines = []
    for i in range(max(map(len, columns))):
        parts = [(col[i] if i < len(col) else "").ljust(w) for col, w in zip(columns, widths)]
        seconds = cells[4] if i == 0 else ""
        lines.append((_GAP.join(parts) + _GAP + seconds.rjust(_SECONDS_WIDTH)).rstrip())
    return "\n".join(lines)


def format_header(width: int | None = None) -> str:
    """The header and rule of the text table, fitted to ``width``."""
    widths = _widths(table_width(width)) + (_SECONDS_WIDTH,)
    head = _GAP.join(h.ljust(w) for h, w in zip(HEADER[:4], widths)) + _GAP + HEADER[4].rjust(_SECONDS_WIDTH)
    return head + "\n" + _GAP.join("-" * w for w in widths)


def format_summary(checks: Iterable[Check], width: int | None = None) -> str:
    """The details of the failed checks (wrapped) and the total line."""
    checks = list(checks)
    width = table_width(width)
    lines = []
    for c in checks:
        if not c.passed and c.detail:
            lines += textwrap.wrap(f"{c.equation}: {c.detail}", width, initial_indent="  ",
                                   subsequent_indent="      ", break_long_words=True) or [f"  {c.equation}:"]
    failed = sum(not c.passed for c in checks)
    lines.append(f"{len(checks)} checks, {failed} failed, {sum(c.seconds for c in checks):.2f} s")
    return "\n".join(lines)


def markdown_cell(text) -> str:
    r"""``text`` made safe inside one Markdown table cell.

    ``|`` is escaped, line breaks become ``<br>``, ``<`` and ``>`` become
    entities, so that no claim can end its row early or swallow the rest of
    the table.

    Examples
    --------
    >>> markdown_cell("printed: a | b\nright: c < d")
    'printed: a \\| b<br>right: c &lt; d'
    """
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    return "<br>".join(line.strip() for line in text.splitlines()) if "\n" in text or "\r" in text else text


def format_table(checks: Iterable[Check], markdown: bool = False, width: int | None = None) -> str:
    """Table of equation, claim, method, status and seconds, plus failure details and a total line.

    The text table fits ``width`` columns (default: the terminal's); the
    Markdown table escapes every cell with :func:`markdown_cell`.
    """
    checks = list(checks)
    failed = sum(not c.passed for c in checks)
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(markdown_cell(v) for v in _cells(c)) + " |" for c in checks]
        total = f"{len(checks)} checks, {failed} failed, {sum(c.seconds for c in checks):.2f} s"
        return "\n".join(lines + ["", total]) + "\n"
    lines = [format_header(width)] + [format_row(_cells(c), width) for c in checks]
    return "\n".join(lines + [format_summary(checks, width)]) + "\n"


def print_latex(title: str, expr) -> None:
    """Print one derived operator as a LaTeX display."""
    print(f"% {title}\n\\[\n{sympy.latex(expr)}\n\\]\n")


def module_main(run: Callable[..., list[Check]], argv=None) -> int:
    """Body of ``python -m derivations.<name> [--latex]``: run, print, exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    unknown = [a for a in argv if a != "--latex"]
    if unknown:
        print(f"unknown arguments {unknown}; the only option is --latex", file=sys.stderr)
        return 2
    checks = run(latex="--latex" in argv)
    print(format_table(checks), end="")
    return 0 if all(c.passed for c in checks) else 1
