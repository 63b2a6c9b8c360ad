"""The documentation runs: every docstring example and the README's ten-line example."""
import doctest
import importlib
import pathlib
import pkgutil
import re

import pytest

import partitionnet

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODULES = sorted(m.name for m in pkgutil.walk_packages(partitionnet.__path__, "partitionnet."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_readme_example_runs(capsys):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "[[1. 0. 0. 1. 0. 1.]" in out            # the membership matrix of (47.1151)
    last = out.strip().splitlines()[-1]
    assert last.endswith("(9, 4)")                   # V^(1,1,2) is P'_1 x P_2
    assert float(last.split()[0]) < 1e-12            # the two engines agree


def test_readme_any_architecture_example_runs(capsys):
    """The README's second example: a network of new kinds, its matrix, spectral norm, gradcheck and derivation."""
    pytest.importorskip("torch")
    text = (ROOT / "README.md").read_text()
    block = re.findall(r"```python\n(.*?)```", text, re.S)[1]
    assert "convolution_matrix" in block and "derive" in block
    exec(compile(block, "README.md", "exec"), {})
    lines = capsys.readouterr().out.strip().splitlines()
    rows, cols, nnz, norm = lines[0].replace("(", " ").replace(")", " ").replace(",", " ").split()
    assert (int(rows), int(cols)) == (4 * 64, 2 * 64) and 0 < int(nnz) < 4 * 64 * 2 * 64 and float(norm) > 0
    assert lines[1] == "True"
    assert ", 0 failed" in lines[2]
