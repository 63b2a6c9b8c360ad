"""Argument checking shared by the public constructors.

Every public entry point validates its arguments here so that bad input
fails early with a message naming the argument, what was expected and what
arrived (``TypeError`` for the wrong kind, ``ValueError`` for the wrong
value or shape).
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np


def kind_of(value) -> str:
    """The type name of ``value``, for error messages (``'str'``, ``'ndarray'``, ...)."""
    return type(value).__name__


def as_bool(value, name: str) -> bool:
    """Return ``value`` if it is a real boolean (``bool`` or ``numpy.bool_``), else raise ``TypeError``.

    Truthiness is not enough for a flag: ``'no'`` and ``'False'`` are truthy
    strings, and ``2`` is not a yes/no answer.

    >>> as_bool(True, "one_based"), as_bool(np.False_, "one_based")
    (True, False)
    >>> as_bool("no", "one_based")
    Traceback (most recent call last):
        ...
    TypeError: one_based must be True or False, got str 'no'
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {kind_of(value)} {value!r}")


def as_real(value, name: str, *, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a finite ``float`` inside the given interval, or raise.

    ``TypeError`` unless ``value`` is a real number (``bool`` is refused);
    ``ValueError`` when it is NaN, infinite, or outside
    ``[low, high]`` (ends excluded with ``low_open`` / ``high_open``; ``None``
    leaves that side unbounded).

    >>> as_real(0.5, "learning_rate", low=0.0, low_open=True)
    0.5
    >>> as_real(0, "learning_rate", low=0.0, low_open=True)
    Traceback (most recent call last):
        ...
    ValueError: learning_rate must be a finite number > 0, got 0.0
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {kind_of(value)} {value!r}")
    value = float(value)
    ok = math.isfinite(value)
    if low is not None:
        ok = ok and (value > low if low_open else value >= low)
    if high is not None:
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        if low is not None and high is not None:
            want = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            want = f"{'>' if low_open else '>='} {low:g}"
        elif high is not None:
            want = f"{'<' if high_open else '<='} {high:g}"
        else:
            want = "(not NaN or infinite)"
        raise ValueError(f"{name} must be a finite number {want}, got {value!r}")
    return value


def as_rng(rng, name: str = "rng") -> np.random.Generator:
    """A numpy ``Generator`` from ``None`` (fresh entropy), a non-negative integer seed, or a ``Generator``.

    Anything else raises ``TypeError`` naming ``name`` (numpy's own seeding
    error would not say which argument was wrong); a negative seed raises
    ``ValueError``. A ``Generator`` is returned as is, so the caller's stream
    advances.

    >>> int(as_rng(0).integers(10)) == int(np.random.default_rng(0).integers(10))
    True
    >>> as_rng("abc", "rng")
    Traceback (most recent call last):
        ...
    TypeError: rng must be None, a non-negative integer seed or a numpy Generator, got str 'abc'
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        if rng < 0:
            raise ValueError(f"{name} must be a non-negative integer seed, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name} must be None, a non-negative integer seed or a numpy Generator, "
                    f"got {kind_of(rng)} {rng!r}")


def as_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` >= ``minimum`` or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {kind_of(value)} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def as_int_tuple(value, name: str, ndim: int, *, minimum: int = 1) -> tuple[int, ...]:
    """Broadcast an int or a length-``ndim`` sequence of ints to a tuple."""
    if isinstance(value, (numbers.Integral,)) and not isinstance(value, bool):
        return (as_positive_int(value, name, minimum=minimum),) * ndim
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(
            f"{name} must be an integer or a sequence of {ndim} integers, got {kind_of(value)} {value!r}"
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
        raise TypeError(f"{name} must be a tuple of positive integers, got {kind_of(value)} {value!r}")
    items = tuple(value)
    if len(items) == 0:
        raise ValueError(f"{name} must have at least one axis, got {value!r}")
    if max_ndim is not None and len(items) > max_ndim:
        raise ValueError(f"{name} must have at most {max_ndim} axes (1-D, 2-D or 3-D maps), got {len(items)}")
    return tuple(as_positive_int(v, f"{name}[{i}]") for i, v in enumerate(items))


_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))


def as_float_array(value, name: str) -> np.ndarray:
    """Convert to a float array (float32 kept, everything else float64)."""
    if type(value) is np.ndarray and value.dtype in _FLOATS:       # already right: no checks to run
        return value
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got {kind_of(value)}")
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
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} must be finite, found {arr[tuple(bad)]} at index {tuple(int(b) for b in bad)}")
