"""Argument checking shared by the public constructors.

Every public entry point validates its arguments here so that bad input
fails early with a message naming the argument, what was expected and what
arrived (``TypeError`` for the wrong kind, ``ValueError`` for the wrong
value or shape).
"""
from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np


def _kind(value) -> str:
    return type(value).__name__


def as_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` >= ``minimum`` or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_kind(value)} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def as_int_tuple(value, name: str, ndim: int, *, minimum: int = 1) -> tuple[int, ...]:
    """Broadcast an int or a length-``ndim`` sequence of ints to a tuple."""
    if isinstance(value, (numbers.Integral,)) and not isinstance(value, bool):
        return (as_positive_int(value, name, minimum=minimum),) * ndim
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(
            f"{name} must be an integer or a sequence of {ndim} integers, got {_kind(value)} {value!r}"
        )
    items = list(value)
    if len(items) != ndim:
        raise ValueError(f"{name} must have {ndim} entries (one per axis), got {len(items)}: {value!r}")
    return tuple(as_positive_int(v, f"{name}[{i}]", minimum=minimum) for i, v in enumerate(items))


def as_shape(value, name: str, *, max_ndim: int | None = 3) -> tuple[int, ...]:
    """A map shape: a positive int (1-D) or a tuple of positive ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return (as_positive_int(value, name),)
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a tuple of positive integers, got {_kind(value)} {value!r}")
    items = tuple(value)
    if len(items) == 0:
        raise ValueError(f"{name} must have at least one axis, got {value!r}")
    if max_ndim is not None and len(items) > max_ndim:
        raise ValueError(f"{name} must have at most {max_ndim} axes (1-D, 2-D or 3-D maps), got {len(items)}")
    return tuple(as_positive_int(v, f"{name}[{i}]") for i, v in enumerate(items))


def as_float_array(value, name: str) -> np.ndarray:
    """Convert to a float array (float32 kept, everything else float64)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got {_kind(value)}")
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - numpy's own message is kept
        raise TypeError(f"{name} must be a numeric array: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64, copy=False)
    return arr


def as_vector_or_columns(value, name: str, length: int) -> np.ndarray:
    """A vector of ``length`` entries or a matrix whose columns are samples."""
    arr = as_float_array(value, name)
    if arr.ndim not in (1, 2) or arr.shape[0] != length:
        raise ValueError(
            f"{name} must have shape ({length},) or ({length}, N) (a vector, or samples as columns), "
            f"got shape {arr.shape}"
        )
    return arr


def require_finite(arr: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} must be finite, found {arr[tuple(bad)]} at index {tuple(int(b) for b in bad)}")
