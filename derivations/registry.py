"""All derivations, and the ``partitionnet verify`` command.

``run_all()`` runs every module of :data:`MODULES` in this process;
``run_all(only="47.1257")`` runs only the claims that cover that equation.
``main(argv)`` is the command line::

    partitionnet verify [--only EQ] [--markdown FILE] [--jobs N]
    python -m partitionnet.derivations.registry [--only EQ] [--markdown FILE]

The command runs the checks in worker subprocesses (one per core by default,
``--jobs N`` to choose) that report each check
as a JSON line when it starts and when it ends, and prints each row as soon
as it is done. A check that raises is a failed row (as in ``run_all``); a
check that kills its process (a segfault inside a sparse product,
``os.abort``) is recorded as a failed row naming the signal, and a new
worker carries on from the next check, so the table and the exit code
always come.

The exit code is 0 when every selected check passes, 1 when one fails, and
2 when the arguments are wrong or ``--only`` selects nothing.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ._check import Check, covers, format_header, format_row, format_summary, format_table

__all__ = ["MODULES", "run_all", "run_isolated", "format_table", "main"]

#: Derivation modules, in reading order (each exposes ``CLAIMS`` and ``run``).
#: The package these proofs are imported as: ``partitionnet.derivations`` once
#: installed, ``derivations`` when run from a source checkout.
_PACKAGE = __package__ or "partitionnet.derivations"

MODULES = [f"{_PACKAGE}.{name}" for name in (
    "correlation",
    "partitioning",
    "pooling",
    "backprop",
    "gradients",
    "training",
    "layers",
    "convolution_chapter",
    "lecture_notes",
    "errata",
)]


def run_all(only: str | None = None) -> list[Check]:
    """Run every derivation, or with ``only`` the claims covering that equation (e.g. '47.1257', 'P8.3', '004')."""
    return [claim.run() for name in MODULES for claim in importlib.import_module(name).CLAIMS
            if only is None or covers(claim.equation, only)]


# ---------------------------------------------------------------------- the worker
class _ImportFailure:
    """A module that cannot be imported stands for one failed row (its claims cannot be listed)."""

    method = "import"

    def __init__(self, name: str, exc: BaseException):
        self.equation, self.claim = name, f"import {name}"
        self.detail = f"{type(exc).__name__}: {exc}"

    def run(self) -> Check:
        return Check(self.equation, self.claim, self.method, False, 0.0, self.detail)


def _selected(modules, only):
    """The claims to run, in order; a module that fails to import gives one failing entry."""
    out = []
    for name in modules:
        try:
            claims = importlib.import_module(name).CLAIMS
        except Exception as exc:  # noqa: BLE001 - reported as a failed row
            out.append(_ImportFailure(name, exc))
            continue
        out += [c for c in claims if only is None or covers(c.equation, only)]
    return out


def _worker(modules, only, start: int, step: int = 1) -> int:
    """Run the selected claims ``start, start + step, ...``, one JSON line per event on the original stdout."""
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)                 # anything a check prints goes to stderr, never into the protocol
    sys.stdout = sys.stderr

    def send(**message):
        proto.write(json.dumps(message) + "\n")
        proto.flush()

    claims = _selected(modules, only)
    send(total=len(claims))
    for i in range(start, len(claims), step):
        c = claims[i]
        send(start=i, equation=c.equation, claim=c.claim, method=c.method)
        send(done=i, **dataclasses.asdict(c.run()))
    return 0


# ---------------------------------------------------------------------- the parent
def _death(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the check killed its process ({name})"
    return f"the check ended its process with exit code {code}"


def _run_lane(modules, only, lane: int, step: int, env, report) -> None:
    """Run the checks ``lane, lane + step, ...`` in worker processes, restarting after a crash.

    ``report(total=n)`` once the worker has listed the checks, ``report(index=i, check=c)`` per check.
    """
    total, start, restarts = None, lane, 0
    while total is None or start < total:
        argv = [sys.executable, "-m", f"{_PACKAGE}.registry", "--worker", str(start), "--step", str(step),
                "--modules", ",".join(modules)] + (["--only", only] if only is not None else [])
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env, text=True, bufsize=1)
            current = None
            try:
                for line in proc.stdout:
                    try:
                        message = json.loads(line)
                    except json.JSONDecodeError:  # a line cut short by the crash
                        continue
                    if "total" in message:
                        if total is None:
                            total = message["total"]
                            report(total=total)
                    elif "start" in message:
                        current = message
                    elif "done" in message:
                        i = message.pop("done")
                        report(index=i, check=Check(**message))
                        start, current = i + step, None
                code = proc.wait()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
            if total is None:           # died before listing anything: nothing to resume
                err.seek(0)
                tail = err.read().strip().splitlines()[-1:] or [_death(code)]
                raise RuntimeError(f"the verify worker could not list the checks: {tail[0]}")
            if current is not None:
                err.seek(0)
                lines = [ln for ln in err.read().strip().splitlines() if ln.strip()]
                detail = _death(code) + (f"; last message: {lines[-1].strip()}" if lines else "")
                report(index=current["start"],
                       check=Check(current["equation"], current["claim"], current["method"], False, 0.0, detail))
                start = current["start"] + step
            elif start < total:
                restarts += 1
                if restarts > 3:
                    raise RuntimeError(f"the verify worker stopped between checks ({_death(code)})")


def default_jobs() -> int:
    """Worker processes for ``verify``: ``PARTITIONNET_VERIFY_JOBS`` if set, else one per core, at most 4."""
    text = os.environ.get("PARTITIONNET_VERIFY_JOBS")
    if text:
        try:
            jobs = int(text)
        except ValueError:
            raise ValueError(f"PARTITIONNET_VERIFY_JOBS must be a positive integer, got {text!r}") from None
        if jobs < 1:
            raise ValueError(f"PARTITIONNET_VERIFY_JOBS must be a positive integer, got {jobs}")
        return jobs
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def run_isolated(only: str | None = None, *, modules=None, on_row=None, on_total=None,
                 jobs: int | None = None) -> list[Check] | None:
    """Run the selected checks in worker subprocesses; a check that kills its worker is a failed row.

    ``jobs`` workers (default :func:`default_jobs`) take every ``jobs``-th check
    each, so the table comes about ``jobs`` times sooner on as many cores; the
    rows are still reported in order. ``on_total(n)`` is called once the
    checks are listed and ``on_row(check)`` as each row can be printed (all
    rows before it are done). Returns the checks in order.
    """
    modules = list(MODULES if modules is None else modules)
    jobs = default_jobs() if jobs is None else jobs
    env = dict(os.environ)
    if "." not in _PACKAGE:         # a top-level 'derivations' of a source checkout: let the worker find it
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    done: dict[int, Check] = {}
    state = {"total": None, "next": 0}
    lock = threading.Lock()

    def report(total=None, index=None, check=None):
        with lock:
            if total is not None:
                if state["total"] is None:
                    state["total"] = total
                    if on_total is not None:
                        on_total(total)
                return
            done[index] = check
            while state["next"] in done:       # print in order, as soon as the rows before are done
                if on_row is not None:
                    on_row(done[state["next"]])
                state["next"] += 1

    errors: list[BaseException] = []

    def lane(k):
        try:
            _run_lane(modules, only, k, jobs, env, report)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=lane, args=(k,), daemon=True) for k in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0] if isinstance(errors[0], RuntimeError) else RuntimeError(str(errors[0]))
    return [done[i] for i in sorted(done)]


def _writable(path: str) -> str | None:
    """Why ``path`` cannot be written (checked before running), or None."""
    p = Path(path)
    if p.is_dir():
        return f"--markdown {path!r} is a directory, not a file"
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        return f"--markdown {path!r}: the folder {str(parent)!r} does not exist"
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        return f"--markdown {path!r} is not writable"
    return None


def main(argv=None, *, modules=None) -> int:
    """``partitionnet verify``: stream the rows, print the table's summary, write Markdown; return the exit code."""
    parser = argparse.ArgumentParser(prog="partitionnet verify",
                                     description="Run every derivation and erratum check and print a table.")
    parser.add_argument("--only", metavar="EQ", help="run only the checks covering this equation, e.g. 47.1257")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown to FILE")
    parser.add_argument("--jobs", type=int, metavar="N", default=None,
                        help="worker processes running the checks (default: one per core, at most 4, or "
                             "$PARTITIONNET_VERIFY_JOBS)")
    parser.add_argument("--worker", type=int, metavar="START", help=argparse.SUPPRESS)
    parser.add_argument("--step", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--modules", help=argparse.SUPPRESS)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:          # argparse exits on bad arguments or --help; report, do not exit
        return int(exc.code or 0)
    if args.modules:
        modules = args.modules.split(",")
    if args.worker is not None:
        return _worker(list(MODULES if modules is None else modules), args.only, args.worker, args.step)
    if args.markdown:
        problem = _writable(args.markdown)
        if problem:
            print(f"partitionnet verify: error: {problem}", file=sys.stderr)
            return 2

    started = time.perf_counter()

    def on_total(n):
        if n:
            print(format_header(), flush=True)

    def on_row(check):
        print(format_row((check.equation, check.claim, check.method, "ok" if check.passed else "FAIL",
                          f"{check.seconds:.3f}")), flush=True)

    try:
        if args.jobs is not None and args.jobs < 1:
            raise ValueError(f"--jobs must be a positive integer, got {args.jobs}")
        checks = run_isolated(args.only, modules=modules, on_row=on_row, on_total=on_total, jobs=args.jobs)
    except ValueError as exc:
        print(f"partitionnet verify: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"partitionnet verify: error: {exc}", file=sys.stderr)
        return 1
    if not checks:
        print(f"no check covers {args.only!r}", file=sys.stderr)
        return 2
    print(format_summary(checks) + f" (wall {time.perf_counter() - started:.1f} s)", flush=True)
    if args.markdown:
        try:
            with open(args.markdown, "w", encoding="utf-8") as fh:
                fh.write(format_table(checks, markdown=True))
        except OSError as exc:
            print(f"partitionnet verify: error: cannot write --markdown {args.markdown!r}: {exc.strerror}",
                  file=sys.stderr)
            return 1
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
