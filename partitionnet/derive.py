"""``partitionnet derive``: the backpropagation of a user's network, written out and proved.

:func:`derive` walks the layers of a :class:`~partitionnet.Network` and writes,
for each one, the forward map in the book's notation with the sizes filled in
(P, S, P', D, M), the backward step in the form of (47.1262) with the layer's
operator named, the operator's size, nonzeros and structure (its entries with
symbolic weights when it is small), and the gradient formulas in the form of
(47.1271, 47.1274) or (47.1263, 47.1264). Then the chain for the whole network
and the training update after (47.1276), with the corrected signs.

Every statement is tied to the shipped code: the operators printed are the
layers' own ``operator(..., algebra=SYMPY)``, and with ``check=True`` each
step is proved and the outcome recorded in the document:

* per layer, exactly in SymPy, on a shrunk instance of the same layer (same
  kind, stride, padding, dilation, groups, pooling and tiling, a few windows
  per axis and at most a few maps): the operator equals the transposed
  Jacobian of the layer's direct-summation ``reference``
  (:func:`partitionnet.layers.contract.operator_is_exact`); the parameter
  gradients of the shipped ``vjp`` equal the SymPy derivative of the reference
  (at a rational point, to rounding); for correlation and dense layers the
  book's closed forms (47.1271, 47.1274, 47.1263, 47.1264) equal that
  derivative symbol for symbol;
* for the network at full size: both engines against central differences of
  the loss on a random subset of entries, and the input gradient and loss
  against PyTorch autograd through ``net.to_torch()`` when torch is installed.

Per-kind text lives in :mod:`partitionnet.derive_text`; a kind without a
template gets a generic section (its forward map, its operator ``J^T`` with
size and nonzeros, and the same proofs), so new kinds work unchanged.

Architecture files (``partitionnet derive net.json``) are the JSON form of
:meth:`Network.config` with an optional marker::

    {"format": "partitionnet.architecture", "version": 1,
     "input_shape": [28, 28], "in_maps": 1, "loss": "cross_entropy",
     "layers": [{"kind": "correlation", "maps": 6, "kernel": 5}, {"kind": "activation", "function": "tanh"},
                {"kind": "pool", "pool_kind": "max", "window": 2}, {"kind": "flatten"},
                {"kind": "dense", "n": 10}, {"kind": "softmax"}]}

``layers`` holds one ``config()`` per layer (``kind`` plus the constructor's
arguments; ``name`` optional). ``Network.from_config`` is the loader; the
``format``, ``version``, ``description`` and ``seed`` keys are read here.

Examples
--------
>>> import partitionnet
>>> from partitionnet import Network, layers as L
>>> from partitionnet.derive import prove_layer
>>> net = Network((5,), 1, [L.Correlation(1, kernel=2), L.Activation("tanh")], rng=0)
>>> doc = partitionnet.derive(net, format="markdown", check=False)
>>> "47.1257" in doc.text and "47.1271" in doc.text
True
>>> [(s.status, s.method) for s in prove_layer(net, "conv1")]      # what check=True adds, per layer
[('proved', 'SymPy, exact'), ('proved', 'SymPy derivative at a rational point vs float64'), ('proved', 'SymPy, exact')]

``partitionnet.derive`` is the function; this module stays reachable as
``sys.modules["partitionnet.derive"]`` and through ``from partitionnet.derive
import ...``.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .algebra import SYMPY
from .layers.base import REGISTRY, Layer
from .model import Network

__all__ = ["derive", "Derivation", "Step", "load_source", "read_architecture", "shrink", "prove_layer",
           "prove_network", "symbolic_parameters", "main", "FORMATS", "ARCHITECTURE_FORMAT"]

FORMATS = ("latex", "markdown", "notebook")
ARCHITECTURE_FORMAT = "partitionnet.architecture"
#: the largest operator (rows x cols) whose entries the document prints
PRINT_LIMIT = 20
#: a layer whose input and output each have at most this many entries takes part in the symbolic chain
CHAIN_LIMIT = 64


# ---------------------------------------------------------------------- results
@dataclass
class Step:
    """One proved (or failed, or skipped) statement of the derivation."""

    layer: str
    claim: str
    method: str
    passed: bool | None            # None: skipped (e.g. PyTorch not installed)
    seconds: float
    detail: str = ""
    equations: str = ""

    @property
    def status(self) -> str:
        return "skipped" if self.passed is None else ("proved" if self.passed else "FAILED")


@dataclass
class LayerDerivation:
    """The SymPy objects and the text pieces of one layer's section."""

    layer: Layer
    index: int
    params: dict                   # local name -> object array of SymPy symbols (full size)
    names: dict                    # Symbol -> LaTeX
    point: np.ndarray | None       # one input sample (P_in, D_in) as exact rationals
    operator: object = None        # the full-size J^T in SymPy (when small enough to form), else None
    shown: object = None           # the matrix the document prints (operator, one block, or the shrunk one)
    shown_note: str = ""
    nnz: int = 0
    shape: tuple = ()
    gradients: dict = field(default_factory=dict)     # closed forms in SymPy (correlation, dense), by parameter
    text: dict = field(default_factory=dict)          # filled by derive_text
    steps: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.layer.name

    def __repr__(self) -> str:
        return f"LayerDerivation({self.name!r}, {self.layer.kind}, J^T {self.shape} with {self.nnz} nonzeros)"


@dataclass
class Derivation:
    """What :func:`derive` returns: the document ``text`` and the proof record."""

    net: Network
    format: str
    layers: list
    steps: list
    text: str = ""
    chain: dict | None = None      # layer name -> SymPy sensitivity of its output (small networks only)
    delta_out: object = None       # the symbols of the output sensitivity the chain starts from
    checked: bool = False
    seconds: float = 0.0

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        proof = self.summary() if self.checked else "not checked"
        return (f"Derivation({self.format}, {len(self.layers)} layers, {len(self.text)} characters; {proof})")

    @property
    def failed(self) -> list:
        return [s for s in self.steps if s.passed is False]

    @property
    def passed(self) -> bool:
        return not self.failed

    def layer(self, name: str) -> LayerDerivation:
        for entry in self.layers:
            if entry.name == name:
                return entry
        raise ValueError(f"no layer named {name!r}; the layers are {[e.name for e in self.layers]}")

    def summary(self) -> str:
        counts = {s: sum(1 for st in self.steps if st.status == s) for s in ("proved", "FAILED", "skipped")}
        return (f"{counts['proved']} steps proved, {counts['FAILED']} failed, {counts['skipped']} skipped "
                f"in {self.seconds:.1f} s")

    def write(self, path) -> Path:
        path = Path(path)
        path.write_text(self.text, encoding="utf-8")
        return path


# ---------------------------------------------------------------------- symbols
def _entry_latex(layer: Layer, name: str, idx: tuple) -> str:
    """The book's name of one parameter entry (1-based), e.g. ``w_{2}^{(1)}(3)`` or ``\\theta_{4}``."""
    kind = layer.kind
    one = tuple(i + 1 for i in idx)
    if kind in ("correlation", "transposed_correlation") and name == "W":
        S = layer.S
        r, col = idx
        group = getattr(layer, "groups", 1)
        if kind == "correlation":
            per = layer.group_in
            j = (col // (layer.maps // group)) * per + r // S if group > 1 else r // S
        else:
            per = layer.S and layer.parameter_shapes()["W"][0] // S
            j = (col // (layer.in_maps // group)) * per + r // S if group > 1 else r // S
        return f"w_{{{j + 1}}}^{{({col + 1})}}({r % S + 1})"
    if kind in ("correlation", "transposed_correlation") and name == "Theta":
        if getattr(layer, "bias", "tied") == "tied":
            return f"\\theta^{{({one[1]})}}"
        return f"\\theta^{{({one[1]})}}({one[0]})"
    if kind == "dense" and name == "W":
        return f"W_{{{one[0]},{one[1]}}}"
    if kind == "dense" and name == "theta":
        return f"\\theta_{{{one[0]}}}"
    base = name if len(name) == 1 else f"\\mathrm{{{name}}}"
    return f"{base}_{{{','.join(map(str, one))}}}"


def symbolic_parameters(layer: Layer):
    """``(params, names)``: every parameter entry of a built layer as a SymPy symbol, and their LaTeX names.

    Structural zeros (an incomplete connection table, 47.1213) stay zero. The
    symbols are unique per layer (``<layer>.<parameter>[i,j]``).
    """
    import sympy

    params, names = {}, {}
    for name, shape in layer.parameter_shapes().items():
        arr = np.empty(shape, dtype=object)
        mask = layer.structural_mask(name)
        for idx in np.ndindex(*shape):
            if mask is not None and not mask[idx]:
                arr[idx] = sympy.Integer(0)
                continue
            sym = sympy.Symbol(f"{layer.name}.{name}[{','.join(map(str, idx))}]")
            arr[idx] = sym
            names[sym] = _entry_latex(layer, name, idx)
        params[name] = arr
    return params, names


def _rational(values) -> np.ndarray:
    import sympy

    return np.vectorize(lambda v: sympy.Rational(float(v)).limit_denominator(97), otypes=[object])(
        np.asarray(values, dtype=np.float64))


# ---------------------------------------------------------------------- shrinking
def _counts(config: dict) -> list:
    """Variants of a layer's config with fewer output maps / units (the original last)."""
    out = []
    if "connections" not in config:
        groups = config.get("groups", 1) or 1
        if isinstance(config.get("maps"), int) and config["maps"] > 2:
            out.append(dict(config, maps=max(2, groups) if config["maps"] % max(2, groups) == 0 else groups))
        if isinstance(config.get("n"), int) and config["n"] > 3:
            out.append(dict(config, n=3))
    out.append(dict(config))
    return out


def shrink(layer: Layer):
    """A small built instance of the same layer (same kind and options): the place for exact SymPy proofs.

    Fewer maps and units (but two input maps when the layer has several, so
    that the sum over input maps is exercised), and the smallest input shape
    that still gives at least two windows per axis (or as many as the original
    has). A layer whose
    description ties it to its size (given index lists, a mask over the whole
    map) keeps its size.

    Examples
    --------
    >>> from partitionnet import layers as L
    >>> big = L.Correlation(16, kernel=5, stride=2, padding=2).build(8, (28, 28))
    >>> small = shrink(big)
    >>> small.config() == dict(big.config(), maps=2), small.in_maps, small.in_shape, small.out_shape
    (True, 2, (3, 3), (2, 2))
    """
    cls = type(layer)
    config = layer.config()
    groups = config.get("groups", 1) or 1
    # at least two input maps when the layer has them (the sum over j of 47.1212 must be exercised), then the
    # fewest; a grouped layer needs a multiple of its groups
    want = min(layer.in_maps, 2)
    in_maps_options = sorted({m for m in (groups, 2 * groups, want, min(layer.in_maps, 3), layer.in_maps)
                              if 0 < m <= layer.in_maps}, key=lambda m: (m < want, m))
    if layer.in_vector:
        in_maps_options = [layer.in_maps]
    orig_in, orig_out = tuple(layer.in_shape), tuple(layer.out_shape)
    need_in = min(layer.P_in, 3)
    for cfg in _counts(config):
        for in_maps in in_maps_options:
            for t in range(1, max(orig_in) + 1):
                shape = tuple(min(n, t) for n in orig_in)
                try:
                    small = cls.from_config(cfg)
                    small.name = layer.name
                    small = small.build(in_maps, shape, layer.in_vector)
                except (TypeError, ValueError, IndexError):
                    continue
                if int(np.prod(shape)) < need_in or any(s < min(n, 2) for s, n in zip(shape, orig_in)):
                    continue
                if not small.out_vector and len(small.out_shape) == len(orig_out) and any(
                        s < min(n, 2) for s, n in zip(small.out_shape, orig_out)):
                    continue
                return small
    return layer


# ---------------------------------------------------------------------- proofs
def _timed(layer, claim, method, equations, fn) -> Step:
    start = time.perf_counter()
    try:
        passed, detail = fn()
    except Exception as exc:  # noqa: BLE001 - a proof that crashes is a failed proof, reported as such
        passed, detail = False, f"{type(exc).__name__}: {exc}"
    return Step(layer, claim, method, passed, time.perf_counter() - start, detail, equations)


def _sympy_gradient_check(layer: Layer, rng) -> tuple[bool, str]:
    """The shipped ``vjp`` parameter gradients = SymPy derivative of ``delta^T reference`` at a rational point."""
    import sympy

    from .layers.base import maps_of
    from .layers.contract import random_input

    p_sym, _ = symbolic_parameters(layer)
    values = {}
    p_num = {}
    for name, arr in p_sym.items():
        num = _rational(rng.standard_normal(arr.shape))
        mask = layer.structural_mask(name)
        if mask is not None:
            num = np.where(mask, num, sympy.Integer(0))
        p_num[name] = num
        for s, v in zip(arr.reshape(-1), num.reshape(-1)):
            if isinstance(s, sympy.Symbol):
                values[s] = v
    x = _rational(random_input(layer, rng, n=1)[:, 0, :])                     # (P, D) rationals
    ref = np.asarray(layer.reference(layer.config(), p_sym, maps_of(x, layer.in_shape)), dtype=object)
    out = np.concatenate([np.reshape(ref[d], -1, order="F") for d in range(ref.shape[0])])
    delta = _rational(rng.standard_normal(out.size))
    objective = sum(d * o for d, o in zip(delta, out))
    x_f = np.asarray(x, dtype=np.float64)[:, None, :]
    p_f = {k: np.asarray(v, dtype=np.float64) for k, v in p_num.items()}
    y, res = layer.forward(p_f, x_f)
    dy = np.asarray(delta, dtype=np.float64).reshape(y.shape[2], y.shape[0]).T[:, None, :]
    _, grads = layer.vjp(p_f, res, dy, need_input=False)
    worst = 0.0
    for name, arr in p_sym.items():
        exact = np.array([float(sympy.diff(objective, s).xreplace(values)) if isinstance(s, sympy.Symbol) else 0.0
                          for s in arr.reshape(-1)])
        got = np.asarray(grads[name], dtype=np.float64).reshape(-1)
        mask = layer.structural_mask(name)
        if mask is not None:
            got = got * mask.reshape(-1)
        worst = max(worst, float(np.max(np.abs(got - exact)) / max(1.0, float(np.max(np.abs(exact))))))
    return worst < 1e-12, (f"{len(values)} parameter entries ({', '.join(p_sym)}), "
                           f"max relative difference {worst:.1e}")


def _closed_form_check(entry: LayerDerivation) -> tuple[bool, str]:
    """The book's closed forms held by the document equal the SymPy derivative of ``delta^T reference``."""
    import sympy

    from . import derive_text

    small = entry.layer
    forms, p_sym, delta, objective = derive_text.closed_forms(small)
    bad = []
    for name, form in forms.items():
        arr = p_sym[name]
        for idx in np.ndindex(*arr.shape):
            s = arr[idx]
            want = sympy.diff(objective, s) if isinstance(s, sympy.Symbol) else sympy.Integer(0)
            if sympy.expand(form[idx] - want) != 0:
                bad.append(f"{name}{list(idx)}")
    return not bad, ("entries equal exactly: " + ", ".join(f"{k} {forms[k].shape}" for k in forms)
                     if not bad else f"differ at {bad[:3]}")


def prove_layer(net: Network, name: str, *, seed: int = 0) -> list:
    """The exact proofs of one layer, run on :func:`shrink` of it: a list of :class:`Step`."""
    from . import derive_text
    from .layers.contract import operator_is_exact

    layer = net.layer(name)
    small = shrink(layer)
    where = (f"shrunk to {small.in_maps} x {small.in_shape} -> {small.out_maps} x {small.out_shape}"
             if small is not layer else "at full size")
    eqs = derive_text.operator_equations(layer)
    steps = [_timed(name, f"operator J^T = transposed Jacobian of the direct-summation reference ({where})",
                    "SymPy, exact" + ("" if getattr(small, "linear", False) else " at a rational point"), eqs,
                    lambda: operator_is_exact(small, np.random.default_rng(seed)))]
    if small.parameter_shapes():
        steps.append(_timed(name, f"shipped vjp parameter gradients = SymPy derivative of the reference ({where})",
                            "SymPy derivative at a rational point vs float64", derive_text.gradient_equations(layer),
                            lambda: _sympy_gradient_check(small, np.random.default_rng(seed + 1))))
        if derive_text.has_closed_forms(small):
            entry = LayerDerivation(small, 0, {}, {}, None)
            steps.append(_timed(name, f"book's gradient formulas = derivative of the reference ({where})",
                                "SymPy, exact", derive_text.gradient_equations(layer),
                                lambda: _closed_form_check(entry)))
    return steps


def _sample_batch(net: Network, rng, n: int = 2):
    x = rng.standard_normal((n, net.in_maps) + tuple(net.input_shape))
    shape = net.output_shape
    if net.loss_name == "cross_entropy":
        gamma = rng.dirichlet(np.ones(int(np.prod(shape))), n).reshape((n,) + tuple(shape))
    else:
        gamma = rng.uniform(-0.5, 0.5, (n,) + tuple(shape))
    return x, gamma


def _numeric_check(net: Network, engine: str, seed: int, per_tensor: int = 4, eps: float = 1e-6):
    rng = np.random.default_rng(seed)
    x, gamma = _sample_batch(net, rng)
    grads = net.gradients(x, gamma, engine=engine)
    params = net.parameters()
    worst, count = 0.0, 0
    for key, value in params.items():
        mask = net.structural_mask(key)
        candidates = np.flatnonzero(mask.reshape(-1)) if mask is not None else np.arange(value.size)
        for i in rng.choice(candidates, min(per_tensor, candidates.size), replace=False):
            shifted = value.copy().reshape(-1)
            shifted[i] += eps
            net.set_parameters({key: shifted.reshape(value.shape)})
            plus = net.loss(x, gamma)
            shifted[i] -= 2 * eps
            net.set_parameters({key: shifted.reshape(value.shape)})
            minus = net.loss(x, gamma)
            fd = (plus - minus) / (2 * eps)
            g = float(grads[key].reshape(-1)[i])
            worst = max(worst, abs(g - fd) / max(1.0, abs(fd)))
            count += 1
        net.set_parameters({key: value})
    dx = net.input_gradient(x, gamma, engine=engine)
    for i in rng.choice(x.size, min(per_tensor, x.size), replace=False):
        e = np.zeros(x.size)
        e[i] = eps
        e = e.reshape(x.shape)
        fd = (net.loss(x + e, gamma) - net.loss(x - e, gamma)) / (2 * eps)
        worst = max(worst, abs(float(dx.reshape(-1)[i]) - fd) / max(1.0, abs(fd)))
        count += 1
    return worst < 1e-6, f"{count} entries (parameters and input), max relative difference {worst:.1e}"


def _engines_agree(net: Network, seed: int):
    x, gamma = _sample_batch(net, np.random.default_rng(seed))
    fast, book = net.gradients(x, gamma, engine="fast"), net.gradients(x, gamma, engine="kronecker")
    err = max((float(np.max(np.abs(fast[k] - book[k]))) for k in fast), default=0.0)
    return err < 1e-10, f"max difference {err:.1e} over {sum(v.size for v in fast.values())} gradient entries"


def _torch_check(net: Network, seed: int):
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed"
    try:
        module = net.to_torch()
    except (NotImplementedError, ValueError) as exc:      # a layer without a torch counterpart: not a failure
        return None, f"no PyTorch twin: {exc}"
    x, gamma = _sample_batch(net, np.random.default_rng(seed))
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ty = module(tx)
    tg = torch.tensor(gamma, dtype=torch.float64).reshape(ty.shape)
    loss = ((ty - tg) ** 2).sum() if net.loss_name == "squared" else -(tg * torch.log(ty)).sum()
    loss.backward()
    value = float(loss.detach())
    worst = abs(value - net.loss(x, gamma)) / max(1.0, abs(value))
    for engine in ("fast", "kronecker"):
        dx = net.input_gradient(x, gamma, engine=engine)
        ref = tx.grad.numpy()
        worst = max(worst, float(np.max(np.abs(dx - ref)) / max(1.0, float(np.max(np.abs(ref))))))
    return worst < 1e-10, f"loss and d loss/d x of both engines vs autograd, max relative difference {worst:.1e}"


def prove_network(net: Network, *, seed: int = 0) -> list:
    """The numeric checks at full size: both engines vs central differences and each other, and vs PyTorch."""
    steps = [_timed("network", f"engine '{e}': gradients = central differences of the loss", "numeric (eps 1e-6)",
                    "47.1275" if e == "kronecker" else "47.1262, 47.1271, 47.1274",
                    lambda e=e: _numeric_check(net, e, seed)) for e in ("fast", "kronecker")]
    steps.append(_timed("network", "engines 'fast' and 'kronecker' agree", "numeric", "47.1275",
                        lambda: _engines_agree(net, seed)))
    steps.append(_timed("network", "PyTorch autograd of net.to_torch() gives the same loss and input gradient",
                        "peer framework", "", lambda: _torch_check(net, seed)))
    return steps


# ---------------------------------------------------------------------- the symbolic chain
def _points(net: Network, x: np.ndarray) -> list:
    """The input of every layer for one sample ``x`` (user layout), as ``(P_in, D_in)`` float arrays."""
    from .layout import to_stack

    stack = to_stack(np.asarray(x, dtype=np.float64)[None])
    points = []
    for i, layer in enumerate(net.layers):
        points.append(stack[:, 0, :].copy())
        stack, _ = layer.forward(net._p(i), stack)
    return points


def _chain(net: Network, entries: list):
    """``{layer: dloss/d(layer output)}`` in SymPy, from symbols ``delta_L`` at the output, and ``delta_L``."""
    import sympy

    start = len(net.layers) - 1
    if net.loss_name == "cross_entropy":
        start -= 1
    size = net.layers[start].out_maps * net.layers[start].P_out
    delta = sympy.Matrix([sympy.Symbol(f"delta_L[{i}]") for i in range(size)])
    chain = {net.layers[start].name: delta}
    current = delta
    for i in range(start, -1, -1):
        entry = entries[i]
        current = sympy.Matrix(entry.operator) * current
        chain[f"input of {entry.name}" if i else "input"] = current
        if i:
            chain[net.layers[i - 1].name] = current
    return chain, delta


# ---------------------------------------------------------------------- derive
def _as_network(net, input_shape=None) -> Network:
    if isinstance(net, Network):
        return net
    if isinstance(net, dict):
        return read_architecture(net)
    if isinstance(net, (str, Path)):
        return load_source(net)[0]
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and isinstance(net, torch.nn.Module):
        if input_shape is None:
            raise ValueError("a torch module needs input_shape=(channels, *spatial) to be derived")
        from .torch_bridge import from_torch

        return from_torch(net, input_shape)
    raise TypeError(f"net must be a partitionnet Network (or an architecture dict, a path to a .npz/.json "
                    f"file, or a torch.nn.Sequential with input_shape), got {type(net).__name__}")


def derive(net, *, format: str = "latex", check: bool = True, seed: int = 0, input_shape=None,
           title: str | None = None) -> Derivation:
    """Write the backpropagation of ``net`` in the book's notation, with its machine proof.

    Parameters
    ----------
    net : Network, dict, str or Path, or torch.nn.Sequential
        Any :class:`~partitionnet.Network` (a ``ConvNet``, ``from_config``,
        ``from_torch``), an architecture dict, the path of a saved ``.npz``
        network or of a JSON architecture file, or a torch module (then
        ``input_shape`` is required).
    format : {'latex', 'markdown', 'notebook'}
        A complete LaTeX article (pdflatex, amsmath), Markdown with ``$$``
        math, or a Jupyter notebook (JSON, nbformat 4) that re-runs the proofs.
    check : bool
        Run the proofs (per layer exactly on a shrunk instance, and the full
        size numeric checks) and report each step in the document.
    seed : int
        Seed of the random points the checks use.
    title : str, optional
        The document's title.

    Returns
    -------
    Derivation
        ``.text`` (the document), ``.steps`` (:class:`Step` per proof),
        ``.passed``, ``.layers`` (the SymPy objects of each section) and, for
        small networks, ``.chain`` (the sensitivity of every layer's output in
        SymPy).
    """
    from . import derive_text

    if not isinstance(format, str):
        raise TypeError(f"format must be a string, one of {FORMATS}, got {type(format).__name__}")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if not isinstance(check, bool):
        raise TypeError(f"check must be True or False, got {type(check).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    net = _as_network(net, input_shape)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((net.in_maps,) + tuple(net.input_shape))
    points = _points(net, x)
    small_net = all(l.in_maps * l.P_in <= CHAIN_LIMIT and l.out_maps * l.P_out <= CHAIN_LIMIT for l in net.layers)
    entries = []
    for i, layer in enumerate(net.layers):
        params, names = symbolic_parameters(layer)
        point = _rational(points[i])
        entry = LayerDerivation(layer, i, params, names, point)
        numeric = layer.operator(net._p(i), points[i])
        entry.shape, entry.nnz = tuple(numeric.shape), int(numeric.count_nonzero())
        if small_net or (max(entry.shape) <= PRINT_LIMIT):
            entry.operator = layer.operator(params, point, algebra=SYMPY)
        derive_text.choose_shown(entry)
        if derive_text.has_closed_forms(layer) and small_net:
            entry.gradients = derive_text.closed_forms(layer, params=params)[0]
        entries.append(entry)
    derivation = Derivation(net, format, entries, [])
    if small_net:
        derivation.chain, derivation.delta_out = _chain(net, entries)
    if check:
        for entry in entries:
            entry.steps = prove_layer(net, entry.name, seed=seed)
            derivation.steps += entry.steps
        derivation.steps += prove_network(net, seed=seed)
        derivation.checked = True
    derivation.seconds = time.perf_counter() - start
    derivation.text = derive_text.render(derivation, format, title=title, seed=seed)
    return derivation


# ---------------------------------------------------------------------- sources
def read_architecture(arch: dict, *, seed: int | None = None) -> Network:
    """A network (fresh parameters from ``seed``) from an architecture dict, every error naming where it is."""
    if not isinstance(arch, dict):
        raise TypeError(f"an architecture is a JSON object (dict), got {type(arch).__name__}")
    marker = arch.get("format", ARCHITECTURE_FORMAT)
    if marker != ARCHITECTURE_FORMAT:
        raise ValueError(f"'format' must be {ARCHITECTURE_FORMAT!r}, got {marker!r}")
    for key in ("input_shape", "in_maps", "layers"):
        if key not in arch:
            raise ValueError(f"the architecture has no {key!r} entry; it needs input_shape, in_maps and layers "
                             f"(see partitionnet derive --help)")
    layers = arch["layers"]
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"'layers' must be a non-empty list of layer descriptions, got {layers!r}")
    for i, d in enumerate(layers):
        if not isinstance(d, dict):
            raise TypeError(f"layers[{i}] must be an object with a 'kind', got {type(d).__name__}")
        kind = d.get("kind")
        if "kind" not in d:
            raise ValueError(f"layers[{i}] has no 'kind'; known kinds: {sorted(REGISTRY)}")
        if not isinstance(kind, str) or kind not in REGISTRY:
            raise ValueError(f"layers[{i}] has unknown kind {kind!r}; known kinds: {sorted(REGISTRY)}")
        try:
            REGISTRY[kind].from_config({k: v for k, v in d.items() if k != "name"})
        except TypeError as exc:
            raise TypeError(f"layers[{i}] (kind {kind!r}): {exc}") from None
        except ValueError as exc:
            raise ValueError(f"layers[{i}] (kind {kind!r}): {exc}") from None
    config = {k: v for k, v in arch.items() if k not in ("format", "version", "description", "seed")}
    if seed is None:
        seed = arch.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"the architecture's 'seed' must be an integer, got {type(seed).__name__} {seed!r}")
    return Network.from_config(config, rng=seed)


def load_source(path, *, seed: int | None = None):
    """``(network, description)`` from a saved ``.npz`` network or a JSON architecture file."""
    if not isinstance(path, (str, Path)):
        raise TypeError(f"SOURCE must be a path, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "no such file", str(path))
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a network file (.npz or .json)")
    if path.suffix.lower() == ".json":
        try:
            arch = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is not a JSON architecture file: {exc}") from None
        return read_architecture(arch, seed=seed), arch.get("description", "") if isinstance(arch, dict) else ""
    from .io import load

    try:
        net = load(path)
    except (TypeError, ValueError, OSError, KeyError) as exc:
        raise ValueError(f"{path} is not a saved partitionnet network (.npz) or a JSON architecture file: "
                         f"{exc}") from None
    if not isinstance(net, Network):
        raise ValueError(f"{path} does not hold a network")
    return net, ""


# ---------------------------------------------------------------------- the command
EPILOG = """\
SOURCE is either
  a network saved with net.save(...) (.npz), whose parameters are used, or
  a JSON architecture file (.json): Network.config() plus an optional marker,
      {"format": "partitionnet.architecture", "version": 1,
       "input_shape": [12, 12], "in_maps": 1, "loss": "squared",
       "layers": [{"kind": "correlation", "maps": 2, "kernel": 3},
                  {"kind": "activation", "function": "tanh"},
                  {"kind": "pool", "pool_kind": "max", "window": 2},
                  {"kind": "flatten"}, {"kind": "dense", "n": 3}]}
  with parameters drawn from --seed. Layer kinds:
  %s.

examples:
  partitionnet derive examples/lenet.json --check -o lenet.tex && pdflatex lenet.tex
  partitionnet derive examples/encoder_decoder.json --format markdown --check -o encdec.md
  partitionnet derive my_net.npz --format notebook -o my_net.ipynb

exit status: 0 done (every step proved with --check), 1 some step failed, 2 bad input.
"""


DESCRIPTION = textwrap.fill(
    "Write the backpropagation of a network in the book's notation (section 47.25): per layer the forward map, "
    "the backward step (47.1262) with its operator, the gradients (47.1271, 47.1274), then the chain and the "
    "training update (47.1276); with --check, prove each step.", 100)


def epilog() -> str:
    """The ``--help`` text after the options: the SOURCE formats, examples and exit statuses."""
    return EPILOG % textwrap.fill(", ".join(sorted(REGISTRY)), 90, subsequent_indent="  ")


def build_parser(prog: str = "partitionnet derive") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description=DESCRIPTION, epilog=epilog())
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="a saved network (.npz) or a JSON architecture file")
    parser.add_argument("--format", choices=FORMATS, default="latex",
                        help="latex: a complete article for pdflatex (default); markdown: $$ math; notebook: "
                             "a Jupyter notebook that re-runs the proofs")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the document to FILE (default: stdout)")
    parser.add_argument("--check", action="store_true",
                        help="prove every step (exact SymPy per layer on a shrunk instance, numeric at full "
                             "size, PyTorch when installed), report it in the document, exit 1 if one fails")
    parser.add_argument("--seed", type=int, default=None, metavar="N",
                        help="seed of the parameters of a JSON architecture (default: its 'seed' entry, else 0) "
                             "and of the check points (default 0)")


def run(args) -> int:
    try:
        net, _ = load_source(args.source, seed=args.seed)
    except FileNotFoundError:
        print(f"partitionnet derive: error: {args.source}: no such file", file=sys.stderr)
        return 2
    except (TypeError, ValueError, KeyError) as exc:
        print(f"partitionnet derive: error: {exc}", file=sys.stderr)
        return 2
    doc = derive(net, format=args.format, check=args.check, seed=0 if args.seed is None else args.seed)
    if args.output:
        try:
            doc.write(args.output)
        except OSError as exc:
            print(f"partitionnet derive: error: {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    else:
        sys.stdout.write(doc.text)
    if args.check:
        for step in doc.failed:
            print(f"FAILED  {step.layer}: {step.claim} [{step.method}]: {step.detail}", file=sys.stderr)
        print(f"partitionnet derive: {doc.summary()}", file=sys.stderr)
        return 0 if doc.passed else 1
    return 0


def main(argv=None) -> int:
    """``partitionnet derive SOURCE [--format ...] [-o FILE] [--check]``; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:                   # --help, or a usage error already printed by argparse
        return int(exc.code or 0)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("partitionnet derive: interrupted", file=sys.stderr)
        return 130
    except (TypeError, ValueError) as exc:
        print(f"partitionnet derive: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
