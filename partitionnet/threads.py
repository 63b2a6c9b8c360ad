"""How many BLAS threads partitionnet's dense products use, and how to change it.

Policy
------
The default is **one BLAS thread** (:data:`DEFAULT_THREADS`). It was chosen by
measurement on a 2-core machine (``benchmarks/bench_threads.py``, figures in
``benchmarks/RESULTS.md``). The GEMMs of a correlation layer are small and
thin (a few thousand rows, 8 to 64 columns): on a quiet machine a second
thread gained nothing at batch 1 and at most ~20% at large float64 batches,
while on a loaded or oversubscribed machine (other processes, or PyTorch's
OpenMP workers spinning on the same cores) two BLAS threads waited on each
other and a step became 2 to 20 times slower. One thread lost at most ~20%
in every condition measured.

Where it applies
----------------
The policy applies while partitionnet computes, and only then: a network's
``forward``, ``loss``, ``value_and_grad``, ``gradients``, ``input_gradient``
and ``sensitivities``, and :func:`~partitionnet.fit`,
:func:`~partitionnet.predict` and :func:`~partitionnet.evaluate`, set the
BLAS threads on entry and restore the previous counts on return
(:func:`governed`; about 3 microseconds a call). Without it, a LeNet-like step
at batch 64 took 38.5 ms with OpenBLAS's own default of two threads against
7.3 ms with one, on this 2-core machine under a load of about 1. Nothing is
changed at import time, and NumPy code outside these calls keeps whatever the
BLAS library chose.

Override it
-----------
* the environment variable ``PARTITIONNET_THREADS`` (a positive integer) sets
  the number used by :func:`default_threads`, by the governed calls and by
  :func:`limit` without an argument; ``PARTITIONNET_THREADS=auto`` leaves the
  BLAS library's own default everywhere;
* ``with partitionnet.threads.limit(4): ...`` sets it for a block of code;
  governed calls inside the block leave that choice alone.
  ``partitionnet train`` runs its training inside :func:`limit` (and calls
  :func:`tune_allocator`).

The limit is applied with ``threadpoolctl`` to every BLAS library loaded in
the process (NumPy's and SciPy's OpenBLAS, MKL, ...). PyTorch's own pool is
not touched; set it with ``torch.set_num_threads``.

Memory allocator
----------------
A training step allocates and frees the same large temporaries (patches,
sensitivities) again and again. glibc's ``malloc`` hands arrays above its
mmap threshold back to the system on ``free``, so the next step takes a
page fault for every 4 KiB it touches: on the LeNet-like benchmark (float32,
batch 64, one thread) that was about 2700 minor faults per step, and tuning
the allocator took the step from 10.9 to 5.9 ms of CPU time.
:func:`tune_allocator` raises glibc's mmap and trim thresholds so freed
memory is kept and reused (the price: the process keeps its peak memory).
It is opt-in and process-wide; the environment variables
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` do the same from
outside.

>>> from partitionnet import threads
>>> with threads.limit(1):
...     threads.current() == 1
True
"""
from __future__ import annotations

import contextlib
import functools
import numbers
import os
import threading

ENV = "PARTITIONNET_THREADS"
#: The measured default: one BLAS thread (see the module docstring).
DEFAULT_THREADS = 1

__all__ = ["ENV", "DEFAULT_THREADS", "default_threads", "limit", "governed", "current", "describe",
           "tune_allocator"]

#: Per Python thread: how many limit() blocks or governed calls are open (inner ones leave the count alone).
_scope = threading.local()
#: threadpoolctl's controllers of the BLAS libraries loaded when first needed (finding them takes ~1 ms).
_blas_libraries = None


def _threadpoolctl():
    try:
        import threadpoolctl
    except ImportError:                                   # pragma: no cover - a core dependency
        raise ImportError("partitionnet.threads needs threadpoolctl: pip install threadpoolctl") from None
    return threadpoolctl


def _parse(value, what: str):
    """A positive int, or None for 'auto' (leave the library's default)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return None
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{what} must be a positive integer or 'auto', got {value!r}") from None
    elif isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be a positive integer or 'auto', got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{what} must be a positive integer or 'auto', got {value}")
    return int(value)


def default_threads():
    """The BLAS threads to use: ``PARTITIONNET_THREADS`` if set, else :data:`DEFAULT_THREADS`.

    Returns an int, or ``None`` when the variable says ``auto``.

    >>> import os
    >>> os.environ.pop("PARTITIONNET_THREADS", None) and None
    >>> default_threads()
    1
    """
    value = os.environ.get(ENV)
    if value is None or value.strip() == "":
        return DEFAULT_THREADS
    return _parse(value, f"the environment variable {ENV}")


@contextlib.contextmanager
def limit(threads=None):
    """Run a block with at most ``threads`` BLAS threads (default :func:`default_threads`).

    ``threads='auto'`` (or ``PARTITIONNET_THREADS=auto``) changes nothing. The
    previous limits are restored on exit, also after an exception.

    >>> import numpy as np
    >>> with limit(2):
    ...     _ = np.ones((4, 4)) @ np.ones((4, 4))
    """
    n = default_threads() if threads is None else _parse(threads, "threads")
    _scope.depth = getattr(_scope, "depth", 0) + 1
    try:
        if n is None:
            yield None
            return
        with _threadpoolctl().threadpool_limits(limits=n, user_api="blas"):
            yield n
    finally:
        _scope.depth -= 1


def governed(function):
    """Run ``function`` under the thread policy: :func:`default_threads` BLAS threads, restored on return.

    Inside a :func:`limit` block, or inside another governed call, nothing is
    changed. The BLAS libraries are those loaded on the first governed call
    (NumPy's and SciPy's are loaded by then); their counts are read and set
    directly, which costs a few microseconds, where building a threadpoolctl
    limit takes about a millisecond.

    >>> @governed
    ... def blas_threads():
    ...     return current()
    >>> import os; os.environ.pop(ENV, None) and None
    >>> blas_threads()
    1
    """
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if getattr(_scope, "depth", 0):
            return function(*args, **kwargs)
        n = default_threads()
        libraries = _libraries() if n is not None else ()
        before = [lib.get_num_threads() for lib in libraries]
        _scope.depth = 1
        try:
            for lib, count in zip(libraries, before):
                if count != n:
                    lib.set_num_threads(n)
            return function(*args, **kwargs)
        finally:
            _scope.depth = 0
            for lib, count in zip(libraries, before):
                if count != n:
                    lib.set_num_threads(count)
    return wrapper


def _libraries():
    global _blas_libraries
    if _blas_libraries is None:
        controller = _threadpoolctl().ThreadpoolController()
        _blas_libraries = [lib for lib in controller.lib_controllers if lib.user_api == "blas"]
    return _blas_libraries


def current():
    """The largest thread count among the loaded BLAS libraries now (``None`` if none is found)."""
    counts = [d["num_threads"] for d in _threadpoolctl().threadpool_info() if d.get("user_api") == "blas"]
    return max(counts) if counts else None


def describe() -> str:
    """One line per loaded BLAS library: implementation, version, threading layer, threads, CPU kernel."""
    info = [f"{d.get('internal_api')} {d.get('version')} ({d.get('threading_layer', '?')}, "
            f"{d.get('num_threads')} threads, {d.get('architecture', '?')})"
            for d in _threadpoolctl().threadpool_info() if d.get("user_api") == "blas"]
    return "; ".join(info) or "no BLAS library found"


def tune_allocator(threshold: int = 1 << 30) -> bool:
    """Keep freed memory for reuse: glibc's mmap and trim thresholds raised to ``threshold`` bytes.

    Returns True when the thresholds were set, False where there is no glibc
    (macOS, Windows, musl): nothing is changed there. Call it once at the
    start of a long run (training, benchmarks); it affects the whole process
    and is not undone.

    >>> tune_allocator(0)
    Traceback (most recent call last):
        ...
    ValueError: threshold must lie in [1, 2**31 - 1] bytes (a C int), got 0
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Integral):
        raise TypeError(f"threshold must be an int (bytes), got {type(threshold).__name__}")
    if not 0 < threshold < 2 ** 31:
        raise ValueError(f"threshold must lie in [1, 2**31 - 1] bytes (a C int), got {threshold}")
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3                  # glibc's <malloc.h>
    return bool(mallopt(M_TRIM_THRESHOLD, ctypes.c_int(int(threshold)))) and \
        bool(mallopt(M_MMAP_THRESHOLD, ctypes.c_int(int(threshold))))
