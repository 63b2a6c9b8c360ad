"""Placeholder: `partitionnet train` / `evaluate` (being written)."""


def add_parsers(subparsers) -> None:
    return None
