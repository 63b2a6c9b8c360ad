"""benchmarks/bench_matrix.py --quick runs and writes its table (shape only: timings are never asserted)."""
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("threadpoolctl")

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_matrix.py"
CASES = ["lenet-b64", "lenet-b1", "lenet-b256", "cifar-b32", "mnist1d", "decoder", "local"]


def run(*args):
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=600)


def test_quick_run_writes_one_row_per_case_and_dtype(tmp_path):
    out = tmp_path / "table.md"
    cases = CASES
    res = run("--quick", "--repeats", "1", "--warmup", "0", "--gemm-size", "64", "--cases", *cases,
              "--markdown", str(out))
    assert res.returncode == 0, res.stderr
    assert out.read_text() == res.stdout
    lines = res.stdout.splitlines()
    header = "| case | dtype | batch | partitionnet ms | torch ms | ratio pn/torch | GEMM-bound ms | load (1/5/15 min) |"
    start = lines.index(header)
    rows = [line for line in lines[start + 2:] if line.startswith("| ")]
    assert [tuple(r.split(" | ")[:2]) for r in rows] == [(f"| {c}", d) for d in ("float64", "float32")
                                                          for c in cases]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 8
        batch, ours, theirs, ratio, limit = int(cells[2]), *map(float, cells[3:7])
        assert batch >= 1 and ours > 0 and theirs > 0 and limit > 0
        assert ratio == pytest.approx(ours / theirs, rel=0.02, abs=0.006)
    assert sum(line.startswith(("float64: median ratio", "float32: median ratio")) for line in lines) == 2
    # the gradients were compared with the peer's before timing: every case printed its difference
    assert res.stderr.count("grad diff") == 2 * len(cases)


@pytest.mark.parametrize("args, message", [(["--threads", "0"], "--threads must be at least 1"),
                                           (["--repeats", "0"], "--repeats must be at least 1"),
                                           (["--cases", "nope"], "invalid choice"),
                                           (["--markdown", "/nonexistent-dir/x.md"], "cannot write --markdown")])
def test_bad_arguments_are_usage_errors(args, message):
    res = run("--quick", *args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr
