"""Build the teaching notebooks of ``notebooks/`` from the cell sources below.

The ``.ipynb`` files are generated, never edited by hand: change a cell here,
then run ::

    python notebooks/build_notebooks.py           # rewrite the six notebooks
    python notebooks/build_notebooks.py --check   # exit 1 if a notebook differs from its source

The notebooks are written without outputs or execution counts and with fixed
cell ids, so rebuilding an unchanged source gives a byte-identical file and a
diff shows only what a reviewer needs to read. The cell sources live in one
module per notebook (``_nb01_partition_matrices.py`` ...), each exposing
``CELLS``, a list built with ``md`` and ``code`` from ``_cells.py``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

#: notebook file name -> module holding its cells
NOTEBOOKS = {
    "01_partition_matrices.ipynb": "_nb01_partition_matrices",
    "02_pooling_and_permutations.ipynb": "_nb02_pooling_and_permutations",
    "03_backprop_operator.ipynb": "_nb03_backprop_operator",
    "04_network_gradients.ipynb": "_nb04_network_gradients",
    "05_direct_convolution.ipynb": "_nb05_direct_convolution",
    "06_training.ipynb": "_nb06_training",
}

#: The environment variable that selects the small, fast setting (the tests set it).
FAST_VARIABLE = "PARTITIONNET_NOTEBOOK_FAST"

METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` as an nbformat v4 node, without outputs."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    module = importlib.import_module(NOTEBOOKS[name])
    stem = name.split("_")[0]
    nb = nbformat.v4.new_notebook(metadata=METADATA)
    for i, (kind, source) in enumerate(module.CELLS):
        cell_id = f"nb{stem}-{i:02d}"
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(source, id=cell_id))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(source, id=cell_id))
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    """The exact text written to ``notebooks/<name>``."""
    return nbformat.writes(build(name)) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a committed notebook differs from its source")
    parser.add_argument("names", nargs="*", help="notebooks to build (default: all six)")
    args = parser.parse_args(argv)
    names = args.names or list(NOTEBOOKS)
    stale = []
    for name in names:
        if name not in NOTEBOOKS:
            parser.error(f"unknown notebook {name!r}; expected one of {list(NOTEBOOKS)}")
        text = render(name)
        path = HERE / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(HERE.parent)}")
    if stale:
        print("out of date (run python notebooks/build_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
