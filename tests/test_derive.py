"""``partitionnet derive``: the book's equations reproduced in SymPy, proofs that pass and fail, the three formats.

The book's own network (correlation, activation, pooling, twice; flatten, dense) is derived without the proofs and
its SymPy objects (the chain of sensitivities, the operators, the gradient closed forms) are compared, as SymPy
expressions, with (47.1245), (47.1257), (47.1262), (47.1271) and (47.1274) built here from the book's formulas
(Kronecker and Hadamard products of the partition matrix, ``upv`` and ``T``).
"""
from __future__ import annotations

import importlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sympy

import partitionnet
from partitionnet import Network, layers as L, symbolic as S
from partitionnet.cli import main as cli_main
from partitionnet.layers.base import maps_of

D = importlib.import_module("partitionnet.derive")     # the module; ``partitionnet.derive`` is the function
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
s_ = sympy.Symbol("s")


def same(a, b) -> bool:
    """Equal as SymPy expressions, entry by entry (after expansion), with equal shapes."""
    a, b = sympy.Matrix(a), sympy.Matrix(b)
    return a.shape == b.shape and all(sympy.expand(x - y) == 0 for x, y in zip(a, b))


def fprime(z) -> sympy.Matrix:
    """tanh'(z) entrywise, as SymPy differentiates it."""
    return sympy.Matrix([sympy.diff(sympy.tanh(s_), s_).subs(s_, v) for v in z])


def book_operator(part, w) -> sympy.Matrix:
    """(47.1257): (V_c^T ⊙ (1_{P'} 1_P^T ⊗ w^T)) (I_P ⊗ 1_S), from the partition matrix itself."""
    Vc = S.from_scipy(part.matrix())
    M, P, Sz = part.M, part.P, part.S
    return S.hadamard(Vc.T, S.kron(S.ones(M, P), sympy.Matrix(w).T)) * S.kron(S.eye(P), S.ones(Sz, 1))


def book_network() -> Network:
    return Network((5, 5), 1, [
        L.Correlation(2, kernel=2, bias="per_input", name="conv1"), L.Activation("tanh", name="act1"),
        L.Pool("max", 2, name="pool1"),
        L.Correlation(2, kernel=2, padding=1, bias="per_input", name="conv2"), L.Activation("tanh", name="act2"),
        L.Pool("mean", 3, name="pool2"),
        L.Flatten(name="flat"), L.Dense(3, name="dense1"), L.Activation("tanh", name="out")],
        loss="squared", rng=0)


@pytest.fixture(scope="module")
def book():
    return partitionnet.derive(book_network(), format="markdown", check=False)


def _blocks(vector, size):
    return [vector[k * size:(k + 1) * size, :] for k in range(vector.rows // size)]


def _weights(entry, j, d):
    """w_j^(d): rows j S .. (j+1) S - 1 of column d of the correlation's W (47.1212)."""
    S_ = entry.layer.S
    return entry.params["W"][j * S_:(j + 1) * S_, d]


# ---------------------------------------------------------------------- the book's equations
def test_the_document_states_the_books_equations(book):
    for eq in ("47.1245", "47.1257", "47.1262", "47.1271", "47.1274", "47.1276"):
        assert f"({eq})" in book.text or f"{eq}," in book.text or f", {eq}" in book.text, eq
    assert book.chain is not None                           # small enough: the whole chain was formed in SymPy


def test_operator_is_47_1257(book):
    conv2 = book.layer("conv2")
    M, P = conv2.layer.P_in, conv2.layer.P_out
    op = sympy.Matrix(conv2.operator)
    for j in range(conv2.layer.in_maps):
        for d in range(conv2.layer.maps):
            block = op[j * M:(j + 1) * M, d * P:(d + 1) * P]
            assert same(block, book_operator(conv2.layer.V, _weights(conv2, j, d))), (j, d)
    # and the operator is not trivially equal to anything: with w swapped between maps it differs
    assert not same(op[:M, :P], book_operator(conv2.layer.V, _weights(conv2, 0, 1)))


def test_chain_is_47_1262(book):
    conv2, act1, pool1 = book.layer("conv2"), book.layer("act1"), book.layer("pool1")
    T, pool = S.permutation(pool1.layer.T), pool1.layer.T
    delta_next = _blocks(book.chain["conv2"], conv2.layer.P_out)
    delta_here = _blocks(book.chain["conv1"], act1.layer.P_in)
    for d in range(act1.layer.in_maps):
        z = act1.point[:, d]
        g = S.gradient_vectors(pool, pool1.point[:, d])
        expected = sum((fprime(z).multiply_elementwise(
            T.T * S.upv(pool, book_operator(conv2.layer.V, _weights(conv2, d, e)) * delta_next[e], g))
            for e in range(conv2.layer.maps)), sympy.zeros(len(z), 1))
        assert same(delta_here[d], expected), d


def test_chain_is_47_1245(book):
    act2, pool2, dense = book.layer("act2"), book.layer("pool2"), book.layer("dense1")
    T, pool = S.permutation(pool2.layer.T), pool2.layer.T
    W1 = sympy.Matrix(dense.params["W"])
    delta_2 = book.chain["dense1"]
    delta_C = _blocks(book.chain["conv2"], act2.layer.P_in)
    for d in range(act2.layer.in_maps):
        columns = W1[:, d * pool.P_out:(d + 1) * pool.P_out]                   # W_1^(d), 47.1220
        g = S.gradient_vectors(pool, pool2.point[:, d])
        expected = fprime(act2.point[:, d]).multiply_elementwise(T.T * S.upv(pool, columns.T * delta_2, g))
        assert same(delta_C[d], expected), d
    # the output sensitivity (47.1233 with 2(y - gamma) left symbolic) and the dense step (47.1234)
    out = book.layer("out")
    assert same(delta_2, fprime(out.point[:, 0]).multiply_elementwise(book.delta_out))


@pytest.mark.parametrize("name", ["conv1", "conv2"])
def test_gradients_are_47_1271_and_47_1274(book, name):
    entry = book.layer(name)
    layer = entry.layer
    Din, Dout, M, P = layer.in_maps, layer.maps, layer.P_in, layer.P_out
    x = sympy.Matrix([sympy.Symbol(f"x[{i}]", real=True) for i in range(Din * M)])
    delta = sympy.Matrix([sympy.Symbol(f"delta[{i}]") for i in range(Dout * P)])
    Vc = S.from_scipy(layer.V.matrix())
    H = sympy.Matrix.vstack(*[                                            # H_j = [V_p x^(j)] (47.1211, 47.1225)
        (lambda h: sympy.Matrix(layer.S, P, lambda s, p: h[p * layer.S + s]))(Vc * x[j * M:(j + 1) * M, :])
        for j in range(Din)])
    Delta = sympy.zeros(Dout * P, Dout)                                    # diag{delta^(1), ...} (47.1270)
    for d in range(Dout):
        Delta[d * P:(d + 1) * P, d] = delta[d * P:(d + 1) * P, :]
    dW = S.kron(S.ones(1, Dout), H) * Delta                                # (47.1271)
    dTheta = -S.kron(S.ones(1, Dout), S.ones(Din, P)) * Delta              # (47.1274), per-input biases
    assert same(entry.gradients["W"], dW)
    assert same(entry.gradients["Theta"], dTheta)
    # and both are the derivative of delta^T z, with z the layer's direct-summation reference
    z = np.asarray(layer.reference(layer.config(), entry.params,
                                   maps_of(np.array(list(x), dtype=object).reshape(Din, M).T, layer.in_shape)),
                   dtype=object)
    zvec = [v for dd in range(Dout) for v in np.reshape(z[dd], -1, order="F")]
    objective = sum(a * b for a, b in zip(delta, zvec))
    grad = sympy.Matrix(entry.params["W"].shape[0], Dout, lambda r, c: sympy.diff(objective, entry.params["W"][r, c]))
    assert same(grad, dW)


def test_dense_gradients_are_47_1263_and_47_1264(book):
    entry = book.layer("dense1")
    y = sympy.Matrix([sympy.Symbol(f"x[{i}]", real=True) for i in range(entry.layer.P_in)])
    delta = sympy.Matrix([sympy.Symbol(f"delta[{i}]") for i in range(entry.layer.n)])
    assert same(entry.gradients["W"], delta * y.T)
    assert same(entry.gradients["theta"], -delta)


# ---------------------------------------------------------------------- proofs
def _kinds_network():
    """Layer kinds beyond the book: overlapping pooling, groups, dilation, locally connected, tiled, transposed."""
    return Network((6, 6), 2, [
        L.Correlation(4, kernel=3, padding=1, groups=2, dilation=1, name="grouped"),
        L.Pool("max", 3, stride=2, padding=1, name="overlap"),
        L.TransposedCorrelation(2, kernel=3, stride=2, padding=1, output_padding=1, name="up"),
        L.Activation("relu", name="relu"),
        L.REGISTRY["locally_connected"](2, kernel=2, stride=2, name="local"),
        L.Flatten(name="flat"), L.Dense(3, name="dense"), L.Activation("sigmoid", name="out")], rng=1)


def test_other_architectures_pass_their_proofs():
    doc = partitionnet.derive(_kinds_network(), format="markdown", check=True)
    assert doc.passed, [f"{s.layer}: {s.claim}: {s.detail}" for s in doc.failed]
    for entry in doc.layers:                       # every layer carries its exact proof
        assert any(s.method.startswith("SymPy") and s.passed for s in entry.steps), entry.name
    assert "**FAILED**" not in doc.text and doc.text.count("**proved**") >= len(doc.steps)


KIND_CASES = [(kind, i) for kind, cls in sorted(L.REGISTRY.items()) for i in range(len(cls.examples()))]


@pytest.mark.parametrize("kind, i", KIND_CASES)
def test_every_layer_kind_derives_and_proves(kind, i):
    # the layer contract's own small cases: a kind added to the registry is derived with no change here
    layer, in_maps, in_shape = L.REGISTRY[kind].examples()[i]
    net = Network(in_shape, in_maps, [layer], rng=0)
    doc = partitionnet.derive(net, format="markdown", check=True)
    assert doc.passed, [f"{s.claim}: {s.detail}" for s in doc.failed]
    assert any(s.method.startswith("SymPy") and s.passed for s in doc.layers[0].steps)
    assert f"## 1. {net.layers[0].name}: {type(layer).__name__}" in doc.text
    for fmt in ("latex", "notebook"):
        assert partitionnet.derive(net, format=fmt, check=False).text


def test_a_convnet_gets_the_books_recursions():
    from partitionnet import ConvLayer, ConvNet

    net = ConvNet((6, 6), 2, [ConvLayer(2, kernel=3, window=2), ConvLayer(3, kernel=2, pooling=None)], [2], rng=0)
    doc = partitionnet.derive(net, format="markdown", check=True)
    assert doc.passed
    assert "(47.1262)" in doc.text and "(47.1245)" in doc.text


def _timed_cli(args, capsys):
    import time

    start = time.perf_counter()
    code = cli_main(args)
    err = capsys.readouterr().err
    return code, err, time.perf_counter() - start


@pytest.mark.parametrize("name", ["lenet.json", "encoder_decoder.json"])
def test_examples_prove_from_the_command_line(name, tmp_path, capsys):
    out = tmp_path / "doc.md"
    code, err, seconds = _timed_cli(["derive", str(EXAMPLES / name), "--check", "--format", "markdown",
                                     "-o", str(out)], capsys)
    print(f"derive {name} --check: {seconds:.1f} s")
    assert code == 0, err
    assert "0 failed" in err
    text = out.read_text()
    assert "**proved**" in text and "**FAILED**" not in text


def test_a_broken_operator_fails_check(tmp_path, capsys, monkeypatch):
    cls = L.REGISTRY["transposed_correlation"]
    shipped = cls.operator

    def broken(self, p, x=None, *, algebra=None, **kw):
        op = shipped(self, p, x, **({} if algebra is None else {"algebra": algebra}))
        return op * 2                               # every entry doubled: no longer the transposed Jacobian
    monkeypatch.setattr(cls, "operator", broken)
    out = tmp_path / "doc.md"
    code, err, _ = _timed_cli(["derive", str(EXAMPLES / "encoder_decoder.json"), "--check", "--format",
                               "markdown", "-o", str(out)], capsys)
    assert code == 1
    assert "FAILED  dec1: operator J^T" in err and "FAILED  dec2: operator J^T" in err
    text = out.read_text()
    assert "**FAILED** - operator J^T" in text
    assert "enc1: **proved** - operator J^T" in text           # the untouched layers still prove


def test_a_broken_vjp_fails_check(monkeypatch):
    cls = L.REGISTRY["dense"]
    shipped = cls.vjp

    def broken(self, p, res, dy, *, need_input=True):
        dx, grads = shipped(self, p, res, dy, need_input=need_input)
        return dx, {k: (v * 1.001 if k == "W" else v) for k, v in grads.items()}
    monkeypatch.setattr(cls, "vjp", broken)
    net = Network((4,), 1, [L.Flatten(), L.Dense(3, name="dense"), L.Activation("tanh")], rng=0)
    doc = partitionnet.derive(net, format="markdown")
    failed = {(s.layer, s.claim.split(" (")[0]) for s in doc.failed}
    assert ("dense", "shipped vjp parameter gradients = SymPy derivative of the reference") in failed
    assert not doc.passed and "**FAILED**" in doc.text


def test_a_wrong_closed_form_fails_check(monkeypatch):
    text = importlib.import_module("partitionnet.derive_text")
    shipped = text.closed_forms

    def wrong(layer, params=None):
        forms, p, delta, objective = shipped(layer, params)
        return {k: -v for k, v in forms.items()}, p, delta, objective       # the sign error the book makes
    monkeypatch.setattr(text, "closed_forms", wrong)
    net = Network((4,), 1, [L.Correlation(2, kernel=2, name="conv")], rng=0)
    steps = D.prove_layer(net, "conv")
    assert [s.passed for s in steps if s.claim.startswith("book's gradient formulas")] == [False]


# ---------------------------------------------------------------------- input
@pytest.mark.parametrize("content, message", [
    ('{"input_shape": [6, 6], "in_maps": 1, "layers": [{"kind": "lstm", "units": 3}]}', "unknown kind 'lstm'"),
    ('{"input_shape": [6, 6], "in_maps": 1, "layers": [{"maps": 3}]}', "layers[0] has no 'kind'"),
    ('{"input_shape": [6, 6], "in_maps": 1, "layers": [{"kind": "correlation", "maps": 2, "kernal": 3}]}',
     "kernal"),
    ('{"input_shape": [6, 6], "in_maps": 1}', "no 'layers' entry"),
    ('{"input_shape": [6, 6", ', "not a JSON architecture file"),
    ('[1, 2]', "an architecture is a JSON object"),
    ('{"input_shape": [4, 4], "in_maps": 1, "layers": [{"kind": "correlation", "maps": 2, "kernel": 9}]}',
     "larger than the padded input"),
])
def test_bad_architecture_is_one_line_and_exit_2(content, message, tmp_path, capsys):
    path = tmp_path / "net.json"
    path.write_text(content)
    assert cli_main(["derive", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("partitionnet derive: error:") and message in lines[0], lines


@pytest.mark.parametrize("make, message", [
    (lambda p: p.with_suffix(".npz").write_text("not a zip"), "is not a saved partitionnet network"),
    (lambda p: np.savez(p.with_suffix(".npz"), a=np.ones(3)), "is not a saved partitionnet network"),
    (lambda p: p.with_suffix(".txt").write_text("hello"), "is not a saved partitionnet network"),
    (lambda p: None, "no such file"),
])
def test_a_file_that_is_not_a_network_is_exit_2(make, message, tmp_path, capsys):
    make(tmp_path / "thing")
    candidates = [p for p in tmp_path.iterdir()] or [tmp_path / "missing.npz"]
    assert cli_main(["derive", str(candidates[0])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_directory_and_an_unwritable_output_are_exit_2(tmp_path, capsys):
    assert cli_main(["derive", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert cli_main(["derive", str(EXAMPLES / "encoder_decoder.json"), "-o", str(tmp_path / "no" / "x.tex")]) == 2
    assert "No such file or directory" in capsys.readouterr().err


def test_an_unsupported_torch_module_is_a_clear_error():
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.LSTM(4, 4))
    with pytest.raises(ValueError, match=r"LSTM|has no partitionnet counterpart") as info:
        partitionnet.derive(module, input_shape=(1, 6, 6), check=False)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="input_shape"):
        partitionnet.derive(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)), check=False)


def test_bad_arguments_of_derive():
    net = Network((4,), 1, [L.Correlation(1, kernel=2)], rng=0)
    with pytest.raises(ValueError, match="format must be one of"):
        partitionnet.derive(net, format="html")
    with pytest.raises(TypeError, match="check must be True or False"):
        partitionnet.derive(net, check="yes")
    with pytest.raises(TypeError, match="net must be a partitionnet Network"):
        partitionnet.derive(object())


def test_help_names_each_input_and_shows_examples(capsys):
    with pytest.raises(SystemExit) as info:
        cli_main(["derive", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for needle in ("SOURCE", "--format {latex,markdown,notebook}", "-o FILE", "--check", "--seed N", "examples:",
                   "partitionnet derive examples/lenet.json --check", '"format": "partitionnet.architecture"',
                   "exit status"):
        assert needle in out, needle


def test_json_seed_and_npz_source(tmp_path):
    arch = json.loads((EXAMPLES / "encoder_decoder.json").read_text())
    a = D.read_architecture(arch)
    b = D.read_architecture(dict(arch, seed=5))
    assert not np.array_equal(a.parameters()["enc1.W"], b.parameters()["enc1.W"])
    path = tmp_path / "net.npz"
    b.save(path)
    loaded, _ = D.load_source(path)
    np.testing.assert_array_equal(loaded.parameters()["enc1.W"], b.parameters()["enc1.W"])


# ---------------------------------------------------------------------- formats
def test_markdown_uses_display_math(book):
    text = book.text
    assert text.count("$$") % 2 == 0 and text.count("$$\n") >= 10
    assert "\\begin{gather" not in text and "\\allowbreak" not in text and "\\documentclass" not in text


def test_wrap_display_breaks_only_at_top_level():
    text = importlib.import_module("partitionnet.derive_text")
    long = " \\qquad ".join(["a_{1} + b_{2} + c_{3} + d_{4} + e_{5} + f_{6} + g_{7} + h_{8}"] * 6)
    wrapped = text.wrap_display(long)
    lines = wrapped.split(" \\\\\n")
    assert len(lines) > 1 and all(text._visible_width(line) <= text.LINE_WIDTH for line in lines)
    assert text.wrap_display("x \\qquad y") == "x \\qquad y"                     # short: left whole
    inside = "\\text{" + long + "}"
    assert text.wrap_display(inside) == inside                                # a break inside braces is not taken


def _pdflatex(doc, tmp_path):
    tex = tmp_path / "doc.tex"
    doc.write(tex)
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert run.returncode == 0, log[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000
    return [line for line in log.splitlines() if "Overfull \\hbox" in line]


def _wide_display_network():
    """Large sizes make the displays of (47.1257) wider than the page unless they are wrapped."""
    return Network((64, 64), 3, [L.Correlation(12, kernel=5, stride=2, padding=2, name="conv"),
                                   L.Activation("tanh")], rng=0)


needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")


@needs_pdflatex
def test_without_wrapping_the_wide_display_would_run_off_the_page(tmp_path, monkeypatch):
    text = importlib.import_module("partitionnet.derive_text")
    monkeypatch.setattr(text, "wrap_display", lambda latex, width=0: latex)
    assert _pdflatex(partitionnet.derive(_wide_display_network(), format="latex", check=False), tmp_path)


@needs_pdflatex
@pytest.mark.parametrize("source", ["lenet.json", "encoder_decoder.json", "wide operator", "wide display"])
def test_latex_compiles_and_nothing_runs_off_the_page(source, tmp_path):
    if source == "wide operator":       # a 3 x 18 operator printed whole: it must wrap into column blocks
        net = Network((3,), 1, [L.Flatten(), L.Dense(18, name="wide"), L.Activation("tanh")], rng=0)
    elif source == "wide display":
        net = _wide_display_network()
    else:
        net = D.load_source(EXAMPLES / source)[0]
    doc = partitionnet.derive(net, format="latex", check=source == "encoder_decoder.json")
    overfull = _pdflatex(doc, tmp_path)
    assert not overfull, overfull
    assert "\\usepackage{amsmath" in doc.text and doc.text.rstrip().endswith("\\end{document}")
    if source == "wide operator":
        assert "columns 1--10" in doc.text and "columns 11--18" in doc.text


def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    net = Network((5,), 1, [L.Correlation(2, kernel=2, name="conv"), L.Activation("tanh", name="act"),
                            L.Flatten(), L.Dense(2, name="dense")], rng=0)
    doc = partitionnet.derive(net, format="notebook", check=False)
    nb = nbformat.reads(doc.text, as_version=4)
    nbformat.validate(nb)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "prove_layer(net, 'conv'" in code and "prove_network(net" in code
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    nbclient.NotebookClient(nb, timeout=240, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    printed = "".join(o.get("text", "") for o in outputs)
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, (errors, printed)
    assert printed.count("proved") >= 10 and "FAILED" not in printed, printed
