"""The teaching notebooks run top to bottom and are committed clean.

Every notebook in ``notebooks/`` is executed on a fresh ``python3`` kernel
with nbclient, from ``notebooks/`` as working directory, offline, with
``PARTITIONNET_NOTEBOOK_FAST=1`` (each notebook's small setting) and the
non-interactive matplotlib backend. A notebook asserts the facts it shows,
so a notebook that stops showing the right thing fails here.

The committed ``.ipynb`` files must carry no outputs and no execution
counts, and must be exactly what ``notebooks/build_notebooks.py`` writes.
"""
from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = [
    "01_partition_matrices.ipynb",
    "02_pooling_and_permutations.ipynb",
    "03_backprop_operator.ipynb",
    "04_network_gradients.ipynb",
    "05_direct_convolution.ipynb",
    "06_training.ipynb",
]
CELL_TIMEOUT = 240  # seconds for any single cell in fast mode
#: optional packages a notebook cannot run without (PyTorch is optional everywhere: cells skip it)
NEEDS = {"06_training.ipynb": ["mnist1d"]}


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", NB_DIR / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_six_notebooks_are_there():
    found = sorted(p.name for p in NB_DIR.glob("[0-9][0-9]_*.ipynb"))
    assert found == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_notebook_is_clean(name):
    nb = nbformat.read(NB_DIR / name, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: cell {i} has stored outputs; clear them"
            assert cell.execution_count is None, f"{name}: cell {i} has an execution count; clear it"
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any("assert " in s for s in sources), f"{name} asserts nothing it shows"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "PARTITIONNET_NOTEBOOK_FAST" in first.source, (
        f"{name}: the first cell must say what PARTITIONNET_NOTEBOOK_FAST does")


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_notebook_is_the_builder_output(name):
    # Compare content, not bytes, so a different nbformat version cannot fail this test.
    expected = _builder().build(name)
    actual = nbformat.read(NB_DIR / name, as_version=4)
    assert [(c.cell_type, c.get("id"), c.source) for c in actual.cells] == \
           [(c.cell_type, c.get("id"), c.source) for c in expected.cells], (
        f"{name} differs from its source in notebooks/; run python notebooks/build_notebooks.py")
    assert actual.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_executes(name, monkeypatch):
    for module in NEEDS.get(name, []):
        pytest.importorskip(module, reason=f"{name} needs {module} (pip install 'partitionnet[data]')")
    monkeypatch.setenv("PARTITIONNET_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # No network: anything that tries to download fails fast instead of hanging.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    nb = nbformat.read(NB_DIR / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=False,
        resources={"metadata": {"path": str(NB_DIR)}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    print(f"{name}: executed in {elapsed:.1f} s")
    assert os.environ["PARTITIONNET_NOTEBOOK_FAST"] == "1"
