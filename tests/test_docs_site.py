"""The documentation site (docs/) builds offline with warnings as errors and holds what it promises.

The site is built once per test session, exactly as CI builds it (``python -m sphinx -W -b html docs OUT``, in
a fresh process, with every proxy pointing at a closed port so that nothing can be downloaded); the tests below
then read the HTML. It executes every notebook and runs ``partitionnet verify``, so it takes a few minutes.
Skipped only when the ``docs`` extra (Sphinx, furo, myst-nb) is not installed.
"""
from __future__ import annotations

import html
import importlib
import inspect
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="the docs extra is not installed (pip install -e '.[docs]')")
pytest.importorskip("myst_nb", reason="the docs extra is not installed (pip install -e '.[docs]')")
pytest.importorskip("furo", reason="the docs extra is not installed (pip install -e '.[docs]')")

import partitionnet  # noqa: E402
import partitionnet.layers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def offline_env() -> dict:
    env = dict(os.environ)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env[var] = "http://127.0.0.1:9"
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    return env


def sphinx_build(src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sphinx", "-W", "-b", "html", *extra, str(src), str(out / "html"),
                           "-d", str(out / "doctrees")], capture_output=True, text=True, cwd=ROOT,
                          env=offline_env(), timeout=1800)


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The site built once, from scratch, into a temporary folder; a failing build fails every test here.

    With ``PARTITIONNET_DOCS_SITE`` set to the HTML folder of a build that just ran (CI runs
    ``python -m sphinx -W -b html docs docs/_build/html`` and then these tests), that build is read instead.
    """
    given = os.environ.get("PARTITIONNET_DOCS_SITE")
    if given:
        path = Path(given)
        if not (path / "index.html").is_file():
            pytest.fail(f"PARTITIONNET_DOCS_SITE={given!r} holds no built site (no index.html)", pytrace=False)
        return path
    out = tmp_path_factory.mktemp("site")
    done = sphinx_build(DOCS, out)
    if done.returncode != 0:
        pytest.fail("the documentation build failed:\n" + (done.stdout + done.stderr)[-6000:], pytrace=False)
    return out / "html"


def read(site: Path, page: str) -> str:
    path = site / page
    assert path.exists(), f"the site has no page {page}"
    return path.read_text(encoding="utf-8")


class Tables(HTMLParser):
    """The text of every table cell, row by row (header rows included)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table_rows(page_html: str) -> list[list[str]]:
    parser = Tables()
    parser.feed(page_html)
    return parser.rows


def public_names() -> list[str]:
    return ([f"partitionnet.{n}" for n in partitionnet.__all__]
            + [f"partitionnet.layers.{n}" for n in partitionnet.layers.__all__])


def resolve(qualname: str):
    module, _, name = qualname.rpartition(".")
    return getattr(importlib.import_module(module), name)


# ---------------------------------------------------------------------- the one full build
def test_site_has_every_section(site):
    for page in ("index.html", "getting_started.html", "user_guide.html", "api/index.html", "proved.html",
                 "sources_and_errata.html", "performance.html", "scaling.html"):
        read(site, page)
    index = read(site, "index.html")
    for stem in NOTEBOOKS:                   # every notebook is in the navigation
        assert f'href="notebooks/{stem}.html"' in index, f"the index does not link notebook {stem}"


def test_every_public_name_has_an_api_page_with_its_example(site):
    names = public_names()
    assert "partitionnet.Network" in names and "partitionnet.layers.Correlation" in names
    api_index = read(site, "api/index.html")
    for qualname in names:
        page = read(site, f"api/generated/{qualname}.html")
        obj = resolve(qualname)
        anchor = f'id="module-{obj.__name__}"' if inspect.ismodule(obj) else f'id="{qualname}"'
        assert anchor in page, f"the page of {qualname} does not document it"
        assert f'href="generated/{qualname}.html"' in api_index, f"the API index does not link {qualname}"
        if ">>>" in (inspect.getdoc(obj) or ""):
            assert "&gt;&gt;&gt;" in page, f"the page of {qualname} leaves out its example"


def test_every_notebook_page_has_outputs_and_a_figure(site):
    assert len(NOTEBOOKS) >= 6
    for stem in NOTEBOOKS:
        page = read(site, f"notebooks/{stem}.html")
        outputs = page.count('class="cell_output')
        assert outputs > 0, f"notebook {stem} was not executed: no cell has an output"
        assert re.search(r'<img [^>]*src="[^"]*_images/', page), f"notebook {stem} shows no figure"


def test_errata_page_lists_every_registered_erratum(site):
    from partitionnet.derivations import errata

    rows = table_rows(read(site, "sources_and_errata.html"))
    header = ["location", "printed", "corrected", "how it is checked", "verdict"]
    assert header in rows, "the errata table is missing"
    body = rows[rows.index(header) + 1:][:len(errata.ERRATA) + 1]
    shown = [(r[0], r[1], r[2]) for r in body if len(r) == len(header)]
    registered = [(e.location, e.printed, e.corrected) for e in errata.ERRATA]
    assert shown == registered, "the errata table differs from partitionnet.derivations.errata.ERRATA"
    verdicts = [r[4] for r in body if len(r) == len(header)]
    assert all(v.startswith("confirmed: printed fails, corrected holds") for v in verdicts), verdicts
    assert f"{len(errata.ERRATA)} errata are registered" in html.unescape(read(site, "sources_and_errata.html"))


def test_what_is_proved_is_the_verify_table_of_this_build(site):
    from partitionnet.derivations import registry

    claims = [c for name in registry.MODULES for c in importlib.import_module(name).CLAIMS]
    rows = table_rows(read(site, "proved.html"))
    header = ["equation", "claim", "method", "status", "seconds"]
    assert header in rows
    body = [r for r in rows[rows.index(header) + 1:] if len(r) == len(header)]
    assert [(r[0], r[1], r[2]) for r in body] == [(c.equation, c.claim, c.method) for c in claims]
    assert {r[3] for r in body} == {"ok"}, "a failing check was published"


def test_getting_started_and_user_guide_are_executed(site):
    start = html.unescape(re.sub(r"<[^>]+>", "", read(site, "getting_started.html")))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    assert example.splitlines()[2] in start, "the README's ten-line example is not on the page"
    assert "[[1. 0. 0. 1. 0. 1.]" in start                # its output: the membership matrix of (47.1151)
    assert "done: test accuracy 100.00%" in start          # partitionnet train, run during the build
    guide = read(site, "user_guide.html")
    for kind, cls in partitionnet.layers.REGISTRY.items():
        assert f"<code class=\"docutils literal notranslate\"><span class=\"pre\">{kind}</span></code>" in guide, (
            f"the user guide does not list the layer kind {kind!r}")
        assert f'href="api/generated/partitionnet.layers.{cls.__name__}.html' in guide
    assert guide.count("<img") >= len(partitionnet.layers.REGISTRY), "a layer kind has no drawn operator"


# ---------------------------------------------------------------------- broken references fail the build
SCRATCH_CONF = """
import runpy
globals().update({k: v for k, v in runpy.run_path(%r).items() if not k.startswith("__")})
"""


@pytest.mark.parametrize("name, good, bad", [
    ("index.rst", ".. autofunction:: partitionnet.vec\n\nSee :func:`partitionnet.vec`.\n",
     ".. autofunction:: partitionnet.vec\n\nSee :func:`partitionnet.no_such_function`.\n"),
    ("index.md", "See {func}`partitionnet.vec`.\n", "See {class}`partitionnet.NoSuchClass`.\n"),
    ("index.md", "See [the title](#title).\n", "See [the guide](no_such_page.md).\n"),
], ids=["rst-role", "myst-role", "myst-link"])
def test_a_broken_cross_reference_fails_the_build(tmp_path, name, good, bad):
    # A scratch project with the site's own conf.py (the same extensions and reference checks, none of its
    # pages), built with the command CI uses: it builds with a good reference and fails with a broken one.
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(SCRATCH_CONF % str(DOCS / "conf.py"), encoding="utf-8")
    title = "Title\n=====\n\n" if name.endswith(".rst") else "# Title\n\n"
    (src / name).write_text(title + good, encoding="utf-8")
    done = sphinx_build(src, tmp_path / "good")
    assert done.returncode == 0, "the scratch project fails without a broken reference:\n" + done.stderr[-3000:]
    (src / name).write_text(title + bad, encoding="utf-8")
    done = sphinx_build(src, tmp_path / "bad")
    assert done.returncode != 0, "a broken cross-reference did not fail the build"
    assert re.search(r"no_such_function|NoSuchClass|no_such_page", done.stderr), done.stderr[-3000:]


# ---------------------------------------------------------------------- the generated pages, without a build
def _extension():
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        return importlib.import_module("partitionnet_docs")
    finally:
        sys.path.remove(str(DOCS / "_ext"))


def test_a_failing_check_is_a_build_warning(monkeypatch):
    # "What is proved" never publishes a failure quietly: a failed row is a warning, and -W turns it into an error.
    from partitionnet.derivations._check import Check

    ext = _extension()
    checks = [Check("47.1149", "V from its subvectors", "symbolic", True, 0.1, ""),
              Check("47.1257", "V^(d,d',c+1) = J^T", "symbolic", False, 0.2, "a residual of 2")]
    monkeypatch.setattr(ext, "_checks", lambda docname: checks)
    warned = []
    monkeypatch.setattr(ext.logger, "warning", lambda *args, **kw: warned.append(args[0] % args[1:]))
    table = ext.proved_text("proved")
    assert "47.1257" in table and "FAILED" in table.upper()
    assert len(warned) == 1 and "47.1257" in warned[0] and "a residual of 2" in warned[0]
    checks[1] = checks[1].__class__(*[getattr(checks[1], f) for f in ("equation", "claim", "method")], True, 0.2, "")
    warned.clear()
    ext.proved_text("proved")
    assert warned == []
