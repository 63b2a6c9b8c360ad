"""The teaching notebooks are text files that run top to bottom.

Each notebook is a jupytext "percent" script ``notebooks/NN_name.py``: the reviewed source and what Jupyter opens
(with jupytext installed) are the same file, so an edit made in Jupyter is saved back to it. Notebooks are found by
glob, so a new ``notebooks/NN_name.py`` is tested with no change here.

Every notebook is executed on a fresh ``python3`` kernel with nbclient, from ``notebooks/`` as working directory,
offline, with ``PARTITIONNET_NOTEBOOK_FAST=1`` (each notebook's small setting) and the non-interactive matplotlib
backend. A notebook asserts the facts it shows, so a notebook that stops showing the right thing fails here.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(p.name for p in NB_DIR.glob("[0-9][0-9]_*.py"))
CELL_TIMEOUT = 240  # seconds for any single cell in fast mode
#: optional packages a notebook cannot run without (PyTorch is optional everywhere: cells skip it)
NEEDS = {"06_training.py": ["mnist1d"], "07_derive_your_network.py": ["torch"],
         "08_operators_as_matrices.py": ["sklearn"], "09_layers_masks_autoencoder.py": ["sklearn", "torch"]}


def read(name: str) -> nbformat.NotebookNode:
    return jupytext.read(NB_DIR / name, fmt="py:percent")


def test_the_notebooks_are_there():
    # the six of the first release, at least; others may be added as NN_name.py
    for stem in ("01_partition_matrices", "02_pooling_and_permutations", "03_backprop_operator",
                 "04_network_gradients", "05_direct_convolution", "06_training"):
        assert f"{stem}.py" in NOTEBOOKS
    # no generated or stale notebook files next to the text sources
    assert not list(NB_DIR.glob("*.ipynb")), "notebooks are kept as jupytext .py files only"
    assert not (NB_DIR / "build_notebooks.py").exists()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_source_is_canonical_jupytext(name):
    # What Jupyter writes back when the notebook is saved is exactly the committed text: no diff from a round trip.
    text = (NB_DIR / name).read_text(encoding="utf-8")
    nb = jupytext.reads(text, fmt="py:percent")
    assert jupytext.writes(nb, fmt="py:percent") == text, (
        f"{name} is not in jupytext's canonical percent form; run jupytext --to py:percent notebooks/{name}")
    assert nb.metadata.get("jupytext", {}).get("formats") == "py:percent", f"{name}: not paired as py:percent"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_structure(name):
    nb = read(name)
    nbformat.validate(nb)
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any("assert " in s for s in sources), f"{name} asserts nothing it shows"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "PARTITIONNET_NOTEBOOK_FAST" in first.source, (
        f"{name}: the first cell must say what PARTITIONNET_NOTEBOOK_FAST does")
    assert first.source.lstrip().startswith("# "), f"{name}: the first cell must open with the notebook's title"
    text = (NB_DIR / name).read_text(encoding="utf-8")
    # sources are cited by their SOURCES.md labels, never by a path outside the repository
    assert "../shared" not in text and "DESIGN.md" not in text, f"{name} cites a path outside the repository"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, monkeypatch):
    for module in NEEDS.get(name, []):
        pytest.importorskip(module, reason=f"{name} needs {module} (pip install 'partitionnet[data]')")
    monkeypatch.setenv("PARTITIONNET_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # No network: anything that tries to download fails fast instead of hanging.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    nb = read(name)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=False,
        resources={"metadata": {"path": str(NB_DIR)}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    print(f"{name}: executed in {elapsed:.1f} s")
    assert os.environ["PARTITIONNET_NOTEBOOK_FAST"] == "1"
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name} produced no output"
