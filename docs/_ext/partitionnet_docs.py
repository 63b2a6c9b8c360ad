"""Sphinx extension of the partitionnet site: the pages that are generated from the library at build time.

* the notebooks ``notebooks/[0-9][0-9]_*.py`` are copied into ``docs/notebooks/`` (found by glob, so a new
  notebook becomes a page with no change here; myst-nb executes it);
* one API page per public name of ``partitionnet.__all__`` and ``partitionnet.layers.__all__``, written to
  ``docs/api/generated/``;
* ``partitionnet verify`` (:func:`partitionnet.derivations.registry.run_isolated`) runs in a background thread
  from the start of the build, while the notebooks execute; its table becomes "What is proved" and its erratum
  rows the verdicts of "Sources and errata". A failing check is a warning, so ``-W`` fails the build;
* markers in the hand-written pages are replaced by text taken from the README, from
  ``partitionnet.layers.REGISTRY`` and from the errata registry when the page is read.
"""
from __future__ import annotations

import inspect
import re
import threading
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
NOTEBOOKS = ROOT / "notebooks"
NB_COPY = DOCS / "notebooks"
API_DIR = DOCS / "api" / "generated"

_verify: dict = {}


# ---------------------------------------------------------------------- files written when the build starts
def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (keeps incremental builds incremental)."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _sync(wanted: dict[str, str], folder: Path, pattern: str) -> None:
    """Make ``folder``'s files matching ``pattern`` exactly ``wanted`` (name -> text)."""
    for name, text in wanted.items():
        _write_if_changed(folder / name, text)
    for old in folder.glob(pattern):
        if old.name not in wanted:
            old.unlink()


def notebook_sources() -> list[Path]:
    """The notebooks of the repository, in order: every ``notebooks/NN_name.py``."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def public_names() -> list[str]:
    """Every public name: ``partitionnet.X`` for X in ``partitionnet.__all__`` and ``partitionnet.layers.X``."""
    import partitionnet
    import partitionnet.layers

    return ([f"partitionnet.{n}" for n in partitionnet.__all__]
            + [f"partitionnet.layers.{n}" for n in partitionnet.layers.__all__])


def _resolve(qualname: str):
    import importlib

    module, _, name = qualname.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _attribute_doc(qualname: str, obj) -> str:
    """The ``#:`` comment documenting a module-level object, looked up in the module that defines it."""
    import sys

    from sphinx.pycode import ModuleAnalyzer

    package, _, name = qualname.rpartition(".")
    for modname in sorted(m for m in list(sys.modules) if m == package or m.startswith(package + ".")):
        if getattr(sys.modules[modname], name, None) is not obj:
            continue
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except Exception:  # noqa: BLE001 - a module without source: try the next one
            continue
        if ("", name) in docs:
            return "\n".join(docs[("", name)]).strip()
    return ""


def api_stub(qualname: str, documented: set[str]) -> str:
    """The reStructuredText of one API page: the autodoc directive that fits the object.

    ``documented`` holds the public names that have a page of their own; a module's page leaves them out.
    """
    obj = _resolve(qualname)
    module, _, name = qualname.rpartition(".")
    head = f"{qualname}\n{'=' * len(qualname)}\n\n"
    if inspect.ismodule(obj):
        # a module listed in __all__: its docstring, and its members that have no page of their own
        own = sorted(n.rpartition(".")[2] for n in documented if n.rpartition(".")[0] == obj.__name__)
        body = f".. automodule:: {obj.__name__}\n   :members:\n"
        if own:
            body += f"   :exclude-members: {', '.join(own)}\n"
    elif inspect.isclass(obj):
        body = f".. currentmodule:: {module}\n\n.. autoclass:: {name}\n   :members:\n"
    elif callable(obj):
        body = f".. currentmodule:: {module}\n\n.. autofunction:: {name}\n"
    else:
        # data (a registry, a constant): documented by its ``#:`` comment where it is defined
        doc = _attribute_doc(qualname, obj) or f"An object of type ``{type(obj).__name__}``."
        body = f".. currentmodule:: {module}\n\n.. py:data:: {name}\n\n" + "".join(
            f"   {line}\n" if line else "\n" for line in doc.splitlines())
    if ">>>" in (inspect.getdoc(obj) or ""):
        body += ("\n.. note::\n\n   The examples on this page are doctests: ``tests/test_docs.py`` runs every one of them, "
                 "so each example shown here passes.\n")
    return head + body


def _is_site(app) -> bool:
    """Whether this build is the site in ``docs/`` (a scratch project that borrows ``conf.py`` writes nothing)."""
    return Path(app.srcdir).resolve() == DOCS


def _on_config_inited(app, config) -> None:
    if not _is_site(app):
        return
    _sync({p.name: p.read_text(encoding="utf-8") for p in notebook_sources()}, NB_COPY, "*.py")
    names = public_names()
    _sync({f"{q}.rst": api_stub(q, set(names)) for q in names}, API_DIR, "*.rst")


def _on_builder_inited(app) -> None:
    if app is not None and not _is_site(app):
        return

    def run():
        try:
            from partitionnet.derivations import registry

            _verify["checks"] = registry.run_isolated()
        except BaseException as exc:  # noqa: BLE001 - reported when a page needs the table
            _verify["error"] = exc

    thread = threading.Thread(target=run, name="partitionnet-verify", daemon=True)
    _verify.clear()
    _verify["thread"] = thread
    thread.start()


def _checks(docname: str):
    """The verify rows, waiting for the background run; ``None`` (and an error) when it failed."""
    thread = _verify.get("thread")
    if thread is None:
        _on_builder_inited(None)
        thread = _verify["thread"]
    thread.join()
    if "error" in _verify:
        logger.error("partitionnet verify did not run: %s: %s", type(_verify["error"]).__name__, _verify["error"],
                     location=docname)
        return None
    return _verify["checks"]


# ---------------------------------------------------------------------- generated page text
def _myst_safe(markdown: str) -> str:
    """Escape the characters that MyST reads as emphasis, math or links (``[H_j]_{s,:}`` is text here).

    Applied to Markdown whose cells :func:`partitionnet.derivations._check.markdown_cell` has already made safe
    for a table (it escapes ``|``, backslashes and backquotes but none of these).
    """
    return re.sub(r"([$*_\[\]])", r"\\\1", markdown)


def _cell(text) -> str:
    """One Markdown table cell: the verify table's escaping, plus MyST's emphasis, math and link characters."""
    from partitionnet.derivations._check import markdown_cell

    return _myst_safe(markdown_cell(text))


def readme_section(title: str) -> str:
    """The body of the README section ``## title`` (without its heading)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if match is None:
        raise LookupError(f"README.md has no section '## {title}'")
    return match.group(1).strip()


def readme_blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def proved_text(docname: str) -> str:
    from partitionnet.derivations._check import format_table

    checks = _checks(docname)
    if checks is None:
        return "The verify table could not be generated (see the build log).\n"
    failed = [c for c in checks if not c.passed]
    for c in failed:
        logger.warning("verify: check failed: %s %s (%s): %s", c.equation, c.claim, c.method, c.detail,
                       location=docname)
    return _myst_safe(format_table(checks, markdown=True))


def errata_text(docname: str) -> str:
    from partitionnet.derivations import errata

    checks = _checks(docname) or []
    verdict = {(c.equation, c.claim): c for c in checks if c.method == "erratum"}
    lines = ["| location | printed | corrected | how it is checked | verdict |", "|---|---|---|---|---|"]
    for e in errata.ERRATA:
        c = verdict.get((e.location, f"printed: {e.printed} | right: {e.corrected}"))
        if c is None:
            logger.warning("erratum %s has no row in the verify run", e.location, location=docname)
            status = "not run"
        else:
            status = ("confirmed: " if c.passed else "NOT CONFIRMED: ") + c.detail
        how = inspect.getdoc(e.test) or ""
        lines.append("| " + " | ".join(_cell(v) for v in (e.location, e.printed, e.corrected, how, status)) + " |")
    return f"{len(errata.ERRATA)} errata are registered.\n\n" + "\n".join(lines) + "\n"


def api_toctree() -> str:
    names = public_names()
    top = [n for n in names if not n.startswith("partitionnet.layers.")]
    kinds = [n for n in names if n.startswith("partitionnet.layers.")]

    def tree(caption, entries):
        return ("```{toctree}\n:maxdepth: 1\n:caption: " + caption + "\n\n"
                + "".join(f"generated/{n}\n" for n in entries) + "```\n")
    return tree("partitionnet", top) + "\n" + tree("partitionnet.layers", kinds)


def performance_text() -> str:
    parts = []
    results = ROOT / "benchmarks" / "RESULTS.md"
    if results.exists():
        parts.append("## Benchmark results\n\n```{include} ../benchmarks/RESULTS.md\n:heading-offset: 1\n```\n")
    try:
        parts.append("## Measured (from the README)\n\n" + readme_section("Measured") + "\n")
    except LookupError:
        pass
    if not parts:
        logger.warning("neither benchmarks/RESULTS.md nor a README section 'Measured' was found")
    return "\n".join(parts)


#: The equation of each layer kind (LaTeX), where the book or a standard text gives one. A kind without an entry
#: is still listed, with its docstring and its operator.
EQUATIONS = {
    "correlation": r"z^{(d)} = \sum_{j} \left(H_j^{\mathsf T} w_j^{(d)} - \theta^{(d)}(j)\,\mathbb 1\right),"
                   r"\qquad H_j = \operatorname{unvec}(V x^{(j)}) \quad (47.1211\text{--}47.1212)",
    "pool": r"t_{p'} = \operatorname{pool}\{y_p : p \in \Omega_{p'}\}, \qquad "
            r"\frac{\partial J}{\partial y} = \operatorname{permute}^\#\big(\operatorname{upv}("
            r"\tfrac{\partial J}{\partial t}, g)\big) \quad (47.1168\text{--}47.1204)",
    "activation": r"y = f(z), \qquad \frac{\partial J}{\partial z} = f'(z) \odot \frac{\partial J}{\partial y}",
    "softmax": r"y_i = \frac{e^{z_i}}{\sum_k e^{z_k}}, \qquad "
               r"\frac{\partial y}{\partial z} = \operatorname{diag}(y) - y y^{\mathsf T}",
    "flatten": r"y = \operatorname{col}\{\operatorname{vec} t^{(1)}, \dots, \operatorname{vec} t^{(D)}\} "
               r"\quad (47.1215)",
    "dense": r"z_{\ell+1} = W_\ell\, y_\ell - \theta_\ell \quad \text{(the listing after (47.1216); } W_1 "
             r"\text{ as in (47.1218))}",
    "locally_connected": r"z^{(d)}_p = \sum_j \left(w_{j,p}^{(d)\mathsf T} h_{j,p} - \theta^{(d)}(j)\right)",
    "tiled_correlation": r"z^{(d)}_p = \sum_j \left(w_{j,\,p \bmod \tau}^{(d)\mathsf T} h_{j,p} "
                         r"- \theta^{(d)}(j)\right)",
    "global_pool": r"t^{(d)} = \operatorname{pool}\{y^{(d)}_p : p = 1, \dots, P\}",
    "channel_pool": r"t^{(g)}_p = \operatorname{pool}\{y^{(d)}_p : d \in \text{group } g\}",
    "transposed_correlation": r"z = \sum_j V^{(j,d)} x^{(j)} - \theta^{(d)}\mathbb 1, \qquad "
                              r"V^{(j,d)} \text{ the backprop operator of a correlation (47.1257)}",
}


def layer_kinds_text() -> str:
    """One section per kind of ``partitionnet.layers.REGISTRY``: what it computes and its operator J^T."""
    from partitionnet import layers

    out = []
    for kind, cls in sorted(layers.REGISTRY.items()):
        doc = inspect.getdoc(cls) or ""
        summary = doc.split("\n\n")[0].replace("\n", " ")
        layer, in_maps, in_shape = cls.examples()[0]
        out.append(f"### `{kind}`: {{class}}`~partitionnet.layers.{cls.__name__}`\n\n{summary}\n")
        if kind in EQUATIONS:
            out.append(f"$$\n{EQUATIONS[kind]}\n$$\n")
        else:
            logger.info("layer kind %r has no equation in the user guide", kind)
        out.append(f"Its operator on the contract's first example, `{layer!r}` on {in_maps} map(s) of shape "
                   f"{in_shape}:\n")
        out.append("```{code-cell} ipython3\n:tags: [remove-input]\n\n"
                   f"show_operator({kind!r})\n```\n")
    return "\n".join(out)


def _on_source_read(app, docname: str, source: list) -> None:
    text = source[0]
    replacements = {
        "%%README_EXAMPLE%%": lambda: readme_blocks("python")[0].rstrip("\n"),
        "<!-- README_COMMANDS -->": lambda: "\n".join(f"```bash\n{b}```\n" for b in readme_blocks("bash")[:2]),
        "<!-- LAYER_KINDS -->": layer_kinds_text,
        "<!-- API_TOCTREE -->": api_toctree,
        "<!-- VERIFY_TABLE -->": lambda: proved_text(docname),
        "<!-- ERRATA_TABLE -->": lambda: errata_text(docname),
        "<!-- PERFORMANCE -->": performance_text,
    }
    for marker, make in replacements.items():
        if marker in text:
            text = text.replace(marker, make())
    source[0] = text


def _on_build_finished(app, exception) -> None:
    thread = _verify.get("thread")
    if thread is not None and thread.is_alive():      # a build that never reached the generated pages
        thread.join()


# ---------------------------------------------------------------------- docstrings and references
_TYPE_LINE = re.compile(r"^(\s*\*{0,2}[A-Za-z_][\w, *]*\s:\s)(.*)$")


def _on_process_docstring(app, what, name, obj, options, lines) -> None:
    """Before napoleon: a star in a numpydoc type (``x : array (N, D_0, *map)``) is text, not emphasis."""
    for i, line in enumerate(lines):
        match = _TYPE_LINE.match(line)
        if match and "*" in match.group(2) and not line.lstrip().startswith((">>>", "...")):
            lines[i] = match.group(1) + re.sub(r"(?<!\\)\*", r"\\*", match.group(2))


def _on_missing_reference(app, env, node, contnode):
    """A short name such as ``Partition.sliding_window`` resolves to the one documented object ending with it."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip("~.")
    if not target:
        return None
    domain = env.get_domain("py")
    found = {(entry.docname, entry.node_id): full for full, entry in domain.objects.items()
             if not entry.aliased and (full == target or full.endswith("." + target))}
    if len(found) != 1:
        return None
    from sphinx.util.nodes import make_refnode

    (docname, node_id), full = next(iter(found.items()))
    return make_refnode(app.builder, node["refdoc"], docname, node_id, contnode, full)


def exists_in_package(target: str, module: str | None = None, cls: str | None = None) -> bool:
    """Whether ``target`` names a Python object of partitionnet: a dotted path, or a name (``sgd_step``,
    ``Trace.x``) looked up in the current module and class and then in every loaded ``partitionnet`` module."""
    import importlib
    import sys

    def lookup(path: str) -> bool:
        parts = path.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except Exception:  # noqa: BLE001 - not a module: try a shorter prefix
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                return False
            return True
        return False

    target = target.lstrip("~.")
    prefixes = [p for p in (f"{module}.{cls}" if module and cls else None, module) if p]
    prefixes += sorted(m for m in list(sys.modules) if m == "partitionnet" or m.startswith("partitionnet."))
    return any(lookup(target) for target in [target] + [f"{p}.{target}" for p in prefixes])


def _on_warn_missing_reference(app, domain, node):
    """Which unresolved references are errors.

    Types in numpydoc parameter lines and in type hints become references by themselves (``array``, ``N``,
    ``{'valid'``); Sphinx marks them ``refspecific``, and they are not reported. A reference written as a role
    to an object of partitionnet that has no page (a private helper such as ``sgd_step``) is shown as code,
    without a link. Every other reference, one that names nothing, is reported, and ``-W`` fails the build.
    """
    if domain is None or domain.name != "py":
        return None
    if node.get("refspecific"):
        return True
    if exists_in_package(node.get("reftarget", ""), node.get("py:module"), node.get("py:class")):
        logger.info("reference to %s: no page documents it (shown without a link)", node.get("reftarget"))
        return True
    return None


#: Pages generated from the code: read again on every build, even when their Markdown did not change.
GENERATED_PAGES = ["getting_started", "user_guide", "api/index", "proved", "sources_and_errata", "performance"]


def _on_env_get_outdated(app, env, added, changed, removed):
    return [d for d in GENERATED_PAGES if d in env.found_docs]


def setup(app):
    app.connect("config-inited", _on_config_inited)
    app.connect("env-get-outdated", _on_env_get_outdated)
    app.connect("builder-inited", _on_builder_inited)
    app.connect("source-read", _on_source_read)
    app.connect("autodoc-process-docstring", _on_process_docstring, priority=400)
    app.connect("missing-reference", _on_missing_reference, priority=900)
    app.connect("warn-missing-reference", _on_warn_missing_reference)
    app.connect("build-finished", _on_build_finished)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}

