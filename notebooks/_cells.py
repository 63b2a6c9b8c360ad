"""Cell constructors shared by the notebook sources (see ``build_notebooks.py``)."""
from __future__ import annotations

import textwrap


def md(text: str) -> tuple[str, str]:
    """A markdown cell (dedented, surrounding blank lines removed)."""
    return ("markdown", textwrap.dedent(text).strip("\n"))


def code(text: str) -> tuple[str, str]:
    """A code cell (dedented, surrounding blank lines removed)."""
    return ("code", textwrap.dedent(text).strip("\n"))
