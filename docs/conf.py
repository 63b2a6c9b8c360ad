"""Sphinx configuration of the partitionnet documentation site.

Build it offline, warnings as errors, from the repository root::

    python -m sphinx -W -b html docs docs/_build/html

The notebooks (``notebooks/NN_name.py``, jupytext percent scripts) are copied
into ``docs/notebooks/`` and the API stubs written to ``docs/api/generated/``
when the build starts (both ignored by git); myst-nb executes every notebook
and MyST-NB page during the build. The "What is proved" and "Sources and
errata" pages are generated from ``partitionnet verify`` run in the same
build (see ``_ext/partitionnet_docs.py``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

# Each notebook's small setting (the test suite uses the same); the full setting is
# PARTITIONNET_NOTEBOOK_FAST=0 in the environment of the build.
os.environ.setdefault("PARTITIONNET_NOTEBOOK_FAST", "1")
# Figures must reach the page: the kernels draw with the inline backend even when the
# shell that runs the build has chosen a non-interactive one (MPLBACKEND=Agg).
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

import partitionnet  # noqa: E402

project = "partitionnet"
author = "the partitionnet authors"
copyright = "the partitionnet authors"
version = release = partitionnet.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_nb",
    "partitionnet_docs",
]

# Sources: MyST Markdown (.md, executed when it declares a kernel), reStructuredText
# stubs for the API pages, and the jupytext percent notebooks (.py).
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
exclude_patterns = ["_build", "_ext", "conf.py", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
root_doc = "index"
# Claims, printed forms and code keep their straight quotes ('same', not ‘same’).
smartquotes = False

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# Execute every notebook on each build; a cell that raises fails the build.
nb_execution_mode = os.environ.get("PARTITIONNET_DOCS_EXECUTE", "force")
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# A reference that does not resolve is a warning (and -W makes it an error). Names of
# other libraries cannot resolve offline (no intersphinx): they are listed below.
# Types in numpydoc parameter lines and type hints are not checked (_ext/partitionnet_docs.py), only
# references written as roles; a short one (:meth:`Partition.sliding_window`) resolves when exactly one
# documented object ends with it, and an ambiguous type is not reported (ref.python).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|scipy|sympy|torch|matplotlib|tqdm|collections|typing|pathlib|os)(\..*)?"),
]
suppress_warnings = ["ref.python"]

autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_ivar = True      # "Attributes" sections as fields, not as a second description of each attribute

html_theme = "furo"
html_title = f"partitionnet {release}"
html_static_path: list[str] = []
