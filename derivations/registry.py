"""All derivations, and the ``partitionnet verify`` command.

``run_all()`` runs every module of :data:`MODULES`; ``run_all(only="47.1257")``
runs only the modules whose coverage includes that equation and keeps the
checks that cover it. ``main(argv)`` is the command line::

    partitionnet verify [--only EQ] [--markdown FILE]
    python -m derivations.registry [--only EQ] [--markdown FILE]

The exit code is 0 when every selected check passes, 1 when one fails, and
2 when the arguments are wrong or ``--only`` selects nothing.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ._check import Check, covers, format_table

__all__ = ["MODULES", "run_all", "format_table", "main"]

#: Derivation modules, in reading order (each exposes ``CLAIMS`` and ``run``).
MODULES = [
    "derivations.correlation",
    "derivations.partitioning",
    "derivations.pooling",
    "derivations.backprop",
    "derivations.gradients",
    "derivations.training",
    "derivations.layers",
    "derivations.convolution_chapter",
    "derivations.lecture_notes",
    "derivations.errata",
]


def run_all(only: str | None = None) -> list[Check]:
    """Run every derivation, or with ``only`` the claims covering that equation (e.g. '47.1257', 'P8.3', '004')."""
    return [claim.run() for name in MODULES for claim in importlib.import_module(name).CLAIMS
            if only is None or covers(claim.equation, only)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="partitionnet verify",
                                     description="Run every derivation and erratum check and print a table.")
    parser.add_argument("--only", metavar="EQ", help="run only the checks covering this equation, e.g. 47.1257")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown to FILE")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:          # argparse exits on bad arguments or --help; report, do not exit
        return int(exc.code or 0)
    checks = run_all(args.only)
    if not checks:
        print(f"no check covers {args.only!r}", file=sys.stderr)
        return 2
    print(format_table(checks), end="")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(format_table(checks, markdown=True))
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
