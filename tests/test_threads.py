"""The BLAS thread policy (partitionnet.threads): default, environment override, context manager, allocator."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

from partitionnet import threads  # noqa: E402


def test_default_is_the_documented_policy(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    assert threads.default_threads() == threads.DEFAULT_THREADS == 1


@pytest.mark.parametrize("value, expected", [("3", 3), (" 2 ", 2), ("auto", None), ("AUTO", None), ("", 1)])
def test_environment_variable_overrides_the_default(monkeypatch, value, expected):
    monkeypatch.setenv(threads.ENV, value)
    assert threads.default_threads() == expected


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_environment_value_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv(threads.ENV, value)
    with pytest.raises(ValueError, match="PARTITIONNET_THREADS.*positive integer or 'auto'"):
        threads.default_threads()


def test_limit_sets_and_restores_the_blas_threads():
    before = threads.current()
    with threads.limit(1) as n:
        assert n == 1
        assert threads.current() == 1
        _ = np.ones((64, 64)) @ np.ones((64, 64))
    assert threads.current() == before


def test_limit_restores_after_an_exception():
    before = threads.current()
    with pytest.raises(RuntimeError):
        with threads.limit(1):
            raise RuntimeError("inside")
    assert threads.current() == before


def test_limit_without_argument_follows_the_environment(monkeypatch):
    monkeypatch.setenv(threads.ENV, "1")
    with threads.limit():
        assert threads.current() == 1
    monkeypatch.setenv(threads.ENV, "auto")
    before = threads.current()
    with threads.limit() as n:
        assert n is None and threads.current() == before


@pytest.mark.parametrize("value, exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError),
                                        ("many", ValueError), (None.__class__, TypeError)])
def test_limit_rejects_bad_counts(value, exc):
    with pytest.raises(exc, match="threads must be a positive integer or 'auto'"):
        with threads.limit(value):
            pass


def test_describe_names_the_blas():
    text = threads.describe()
    assert "threads" in text and text != "no BLAS library found"


@pytest.mark.parametrize("value, exc", [(0, ValueError), (2 ** 31, ValueError), (1.0, TypeError), (True, TypeError)])
def test_tune_allocator_rejects_bad_thresholds(value, exc):
    with pytest.raises(exc, match="threshold"):
        threads.tune_allocator(value)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tune_allocator_stops_the_page_faults_of_reallocated_arrays():
    # In a fresh process: a step's worth of arrays (1 to 8 MB, alive together) allocated, touched and freed
    # again and again, as a training loop does. With glibc's defaults the freed top of the heap is trimmed
    # and every round faults its pages in afresh (one minor fault per 4 KiB); after tune_allocator it is reused.
    code = textwrap.dedent("""
        import resource, sys
        import numpy as np
        from partitionnet import threads
        if sys.argv[1] == "tuned":
            assert threads.tune_allocator()
        def faults():
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        sizes = [1_000_000, 500_000, 250_000, 1_000_000, 500_000, 125_000]    # float64 entries: 1 to 8 MB
        def step():
            alive = [np.ones(n) for n in sizes]
            return sum(a.sum() for a in alive)
        for _ in range(3):
            step()
        start = faults()
        for _ in range(20):
            step()
        print(faults() - start)
    """)
    counts = {mode: int(subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True,
                                       check=True).stdout) for mode in ("default", "tuned")}
    pages = 20 * 8 * 3_375_000 // 4096
    if counts["default"] < pages // 10:
        pytest.skip(f"this malloc already reuses freed memory ({counts['default']} faults for {pages} pages)")
    assert counts["tuned"] < pages // 100, counts


# ---------------------------------------------------------------------- the policy inside partitionnet's calls
def _seen_by_a_layer():
    """A network whose activation records the BLAS threads in force while the network computes."""
    from partitionnet import Network, layers as L

    seen = []

    class Spy(L.Activation):
        def forward(self, p, x):
            seen.append(threads.current())
            return super().forward(p, x)

    net = Network((4,), 1, [L.Correlation(2, kernel=2), Spy("tanh"), L.Flatten(), L.Dense(2)], rng=0)
    return net, seen


def test_network_calls_run_under_the_policy_and_restore_the_count(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    net, seen = _seen_by_a_layer()
    x, g = np.ones((3, 1, 4)), np.zeros((3, 2))
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):        # a caller's own setting
        net.forward(x)
        net.gradients(x, g)
        assert threads.current() == 2                                       # restored on return
    assert seen == [1, 1]


def test_an_explicit_limit_or_auto_is_left_alone(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    net, seen = _seen_by_a_layer()
    x = np.ones((3, 1, 4))
    with threads.limit(2):
        net.forward(x)
    monkeypatch.setenv(threads.ENV, "auto")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        net.forward(x)
    assert seen == [2, 2]


def test_the_count_is_restored_after_an_error(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    net, _ = _seen_by_a_layer()
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        with pytest.raises(ValueError, match="x must have shape"):
            net.forward(np.ones((3, 2, 4)))
        assert threads.current() == 2
        net.forward(np.ones((3, 1, 4)))                                      # and the next call still works
        assert threads.current() == 2
