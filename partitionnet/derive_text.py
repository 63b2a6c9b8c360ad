"""The text of ``partitionnet derive``: per-kind sections, the book's closed forms, and the three formats.

A section is a list of blocks, rendered alike to LaTeX and Markdown:
``("p", text)`` (inline math between ``$``), ``("math", latex)`` (a display),
``("matrix", caption, [latex, ...])`` (an operator, split into column blocks
so that wide ones wrap instead of running off the page), ``("list", [text,
...])``. Per-kind templates are keyed by ``layer.kind``; any other registered
kind gets :func:`_generic`, which still states the forward map, names ``J^T``
with its size and nonzeros, and carries the proofs.

Equation numbers are those of the book (label 002 in SOURCES.md).
"""
from __future__ import annotations

import json
import re

import numpy as np

from .algebra import SYMPY

#: columns per printed block of an operator (a wider operator is split, never cut)
COLUMNS_PER_BLOCK = 10


# ---------------------------------------------------------------------- the book's closed forms
def has_closed_forms(layer) -> bool:
    """Correlation (ungrouped) and dense layers have the book's gradient formulas (47.1271, 47.1274, 47.1263-4)."""
    return (layer.kind == "correlation" and layer.groups == 1) or layer.kind == "dense"


def closed_forms(layer, params=None):
    """``(forms, params, delta, objective)``: the book's gradients in SymPy and ``delta^T reference``.

    For a correlation ``dW = (1_D^T kron H) Delta`` (47.1271) with ``H =
    col{H_1, ..., H_Din}`` (47.1225) and ``Delta = diag{delta^(1), ...,
    delta^(D)}`` (47.1270); ``dTheta = -(1_D^T kron 1_Din 1_P^T) Delta``
    (47.1274), one row for a tied bias. For a dense layer ``dW = delta y^T``
    (47.1263) and ``dtheta = -delta`` (47.1264). Entries that a connection
    table leaves out (47.1213) are structural zeros.
    """
    import sympy

    from .derive import symbolic_parameters
    from .layers.base import maps_of
    from .symbolic import kron, ones

    if params is None:
        params = symbolic_parameters(layer)[0]
    x = np.array([sympy.Symbol(f"x[{i}]", real=True) for i in range(layer.P_in * layer.in_maps)], dtype=object)
    stack = x.reshape(layer.in_maps, layer.P_in).T                                  # (P, D_in), map-major
    ref = np.asarray(layer.reference(layer.config(), params, maps_of(stack, layer.in_shape)), dtype=object)
    out = np.concatenate([np.reshape(ref[d], -1, order="F") for d in range(ref.shape[0])])
    delta = sympy.Matrix([sympy.Symbol(f"delta[{i}]") for i in range(out.size)])
    objective = sum((delta[i] * out[i] for i in range(out.size)), sympy.Integer(0))
    forms = {}
    if layer.kind == "dense":
        y = sympy.Matrix(list(x))
        forms["W"] = np.array((delta * y.T).tolist(), dtype=object)                  # (47.1263)
        forms["theta"] = np.array(list(-delta), dtype=object)                        # (47.1264)
        return forms, params, delta, objective
    V, D, Din, P, S = layer.V, layer.maps, layer.in_maps, layer.V.P, layer.V.S
    H_blocks = []
    for j in range(Din):                                                             # H_j (S x P), 47.1211
        H_blocks.append(sympy.Matrix(S, P, lambda s, p: stack[V.indices[p, s], j] if V.indices[p, s] >= 0 else 0))
    H = sympy.Matrix.vstack(*H_blocks)                                               # (47.1225)
    Delta = sympy.zeros(D * P, D)
    for d in range(D):
        Delta[d * P:(d + 1) * P, d] = delta[d * P:(d + 1) * P, 0]                    # (47.1270)
    dW = sympy.Matrix(kron(ones(1, D), H)) * Delta                                   # (47.1271)
    rows = params["Theta"].shape[0]
    dTheta = -sympy.Matrix(kron(ones(1, D), ones(rows, P))) * Delta                  # (47.1274)
    forms["W"] = np.array(dW.tolist(), dtype=object)
    forms["Theta"] = np.array(dTheta.tolist(), dtype=object)
    for name in forms:
        mask = layer.structural_mask(name)
        if mask is not None:
            forms[name] = np.where(mask, forms[name], sympy.Integer(0))
    return forms, params, delta, objective


# ---------------------------------------------------------------------- equation numbers
_OPERATOR_EQS = {"correlation": "47.1257-47.1258, 47.1262", "pool": "47.1197-47.1204, 47.1244, 47.1260",
                 "activation": "47.1233-47.1234, 47.1245, 47.1262", "flatten": "47.1215, 47.1217, 47.1220, 47.1241",
                 "dense": "47.1234", "softmax": "47.1233", "transposed_correlation": "47.1257-47.1258"}
_GRADIENT_EQS = {"correlation": "47.1270-47.1271, 47.1272-47.1274", "dense": "47.1263-47.1264",
                 "transposed_correlation": "47.1270-47.1271 (roles of input and output swapped)"}


def operator_equations(layer) -> str:
    return _OPERATOR_EQS.get(layer.kind, layer.equations)


def gradient_equations(layer) -> str:
    return _GRADIENT_EQS.get(layer.kind, layer.equations)


# ---------------------------------------------------------------------- printing operators
def choose_shown(entry) -> None:
    """Pick what the section prints: the whole ``J^T`` if small, else one block, else the shrunk layer's."""
    from .derive import PRINT_LIMIT, shrink, symbolic_parameters

    layer = entry.layer
    rows, cols = entry.shape
    if entry.operator is not None and rows <= PRINT_LIMIT and cols <= PRINT_LIMIT:
        entry.shown, entry.shown_note = entry.operator, "the whole operator"
        if not getattr(layer, "linear", False):
            entry.shown_note += (" at this network's point (the input of one random sample, rounded to "
                                 "rationals; irrational entries shown to 4 digits)")
        return
    linear = getattr(layer, "linear", False)
    blocks = not layer.in_vector and not layer.out_vector
    # one block of the operator, when it fits (a tall sparse block is allowed twice the rows)
    if linear and blocks and layer.P_in <= 2 * PRINT_LIMIT and layer.P_out <= PRINT_LIMIT:
        if entry.operator is not None:
            entry.shown = entry.operator[:layer.P_in, :layer.P_out]
        elif layer.kind == "correlation":
            from .layers.correlation import backprop_operator

            entry.shown = backprop_operator(layer.V, list(layer._mask(entry.params["W"], 0, 0)), SYMPY)
        if entry.shown is not None:
            entry.shown_note = "block (1, 1): input map 1, output map 1"
            return
    small = shrink(layer)
    if small is layer:
        entry.shown_note = "not printed: too large"
        return
    p_small, names = symbolic_parameters(small)
    point = None
    if not linear:                              # J^T depends on the input: a random rational point
        from .derive import _rational
        from .layers.contract import random_input

        point = _rational(random_input(small, np.random.default_rng(0), n=1)[:, 0, :])
    op = small.operator(p_small, point, algebra=SYMPY)
    where = (f"on the shrunk instance ({small.in_maps} x ${_shape(small.in_shape)}$ -> {small.out_maps} x "
             f"${_shape(small.out_shape)}$" + ("" if linear else ", at a random rational input") + ")")
    if op.shape[0] <= PRINT_LIMIT and op.shape[1] <= PRINT_LIMIT:
        entry.shown, entry.shown_note = op, f"the whole operator {where}"
    elif blocks and small.P_in <= 2 * PRINT_LIMIT and small.P_out <= PRINT_LIMIT:
        entry.shown, entry.shown_note = op[:small.P_in, :small.P_out], f"block (1, 1) {where}"
    else:
        entry.shown_note = "not printed: too large even when shrunk"
        return
    entry.names = {**entry.names, **names}


def matrix_blocks(M, names) -> list:
    """LaTeX arrays of at most :data:`COLUMNS_PER_BLOCK` columns each: a wide operator wraps."""
    import sympy

    out = []
    for start in range(0, M.shape[1], COLUMNS_PER_BLOCK):
        stop = min(start + COLUMNS_PER_BLOCK, M.shape[1])
        rows = []
        for i in range(M.shape[0]):
            cells = []
            for j in range(start, stop):
                v = M[i, j]
                if v != 0 and not v.free_symbols and not v.is_Rational:      # f'(z) at a point: 4 digits
                    v = sympy.Float(sympy.N(v, 4), 4)
                cells.append("0" if v == 0 else sympy.latex(v, symbol_names=names))
            rows.append(" & ".join(cells))
        head = f"\\text{{columns {start + 1}--{stop}:}}\\;" if M.shape[1] > COLUMNS_PER_BLOCK else ""
        out.append(head + "\\left[\\begin{array}{" + "c" * (stop - start) + "}" + " \\\\ ".join(rows)
                   + "\\end{array}\\right]")
    return out


# ---------------------------------------------------------------------- per-kind sections
def _shape(shape) -> str:
    shape = tuple(shape)
    return str(shape[0]) if len(shape) == 1 else "\\times".join(map(str, shape))


def _io(layer) -> str:
    if layer.in_vector:
        inp = f"a vector of $n = {layer.P_in}$ entries"
    else:
        inp = f"$D_{{in}} = {layer.in_maps}$ map{'s' if layer.in_maps > 1 else ''} " \
              f"of shape ${_shape(layer.in_shape)}$ " \
              f"($M = {layer.P_in}$ entries each)"
    if layer.out_vector:
        out = f"a vector of ${layer.P_out}$ entries"
    else:
        out = f"$D = {layer.out_maps}$ map{'s' if layer.out_maps > 1 else ''} of shape ${_shape(layer.out_shape)}$ " \
              f"($P = {layer.P_out}$ positions each)"
    return f"Input: {inp}. Output: {out}."


def _geometry(layer) -> str:
    c = layer.config()
    parts = [f"{k} {c[k]}" for k in ("kernel", "stride", "padding", "dilation", "output_padding", "groups", "tiles")
             if k in c]
    return ", ".join(parts)


def _correlation(layer, entry):
    V, D, Din = layer.V, layer.maps, layer.in_maps
    M, P, S = V.M, V.P, V.S
    bias = "\\theta^{(d)}(j)" if layer.bias == "per_input" else "\\theta^{(d)}"
    table = "" if layer.table.all() else " over the pairs $(j, d)$ that the connection table (47.1213) joins"
    grouped = f" With groups $= {layer.groups}$, output map $d$ reads only the input maps of its own group." \
        if layer.groups > 1 else ""
    forward = [("p", f"{_io(layer)} Geometry: {_geometry(layer)}. The partition $V$ of the input maps is "
                     f"${P * S} \\times {M}$ ($P = {P}$ windows of $S = {S}$ entries, {V.matrix().nnz} ones; "
                     f"47.1149, 47.1211).{grouped}"),
               ("math", "h_{j,p} = V_p\\, x^{(j)}, \\qquad H_j = [\\,h_{j,1}\\; \\cdots\\; h_{j,P}\\,] \\in "
                        f"\\mathbb{{R}}^{{{S}\\times {P}}} \\qquad (47.1211)"),
               ("math", f"z^{{(d)}} = \\sum_{{j=1}}^{{{Din}}} \\Big(H_j^T w_j^{{(d)}} - {bias}\\,\\mathbb{{1}}_{{{P}}}"
                        f"\\Big), \\quad d = 1, \\ldots, {D} \\qquad (47.1212)")]
    if layer.bias == "tied":
        forward[-1] = ("math", f"z^{{(d)}} = \\sum_{{j=1}}^{{{Din}}} H_j^T w_j^{{(d)}} - \\theta^{{(d)}}"
                               f"\\mathbb{{1}}_{{{P}}}, \\quad d = 1, \\ldots, {D} \\qquad (47.1212)")
    backward = [("p", f"With $\\delta^{{(d)}} = \\partial \\ell / \\partial z^{{(d)}}$, the sensitivity of input map "
                      f"$j$ collects every output map{table}:"),
                ("math", f"b^{{(j)}} = \\sum_{{d=1}}^{{{D}}} V^{{(j,d)}} \\delta^{{(d)}}, \\qquad V^{{(j,d)}} = "
                         f"\\Big(V^T \\odot \\big(\\mathbb{{1}}_{{{M}}} \\mathbb{{1}}_{{{P}}}^T \\otimes "
                         f"(w_j^{{(d)}})^T\\big)\\Big)\\big(I_{{{P}}} \\otimes \\mathbb{{1}}_{{{S}}}\\big) "
                         f"\\in \\mathbb{{R}}^{{{M}\\times {P}}} \\qquad (47.1257, 47.1258)"),
                ("p", "Followed by the pooling and activation layers in front of it, this is the recursion "
                      "$\\delta^{(j,c)} = \\sum_{d} f'(z^{(j,c)}) \\odot \\mathrm{permute}^\\#(\\mathrm{upv}"
                      "(V^{(j,d,c+1)} \\delta^{(d,c+1)}))$ of (47.1262).")]
    structure = (f"{Din} x {D} blocks $V^{{(j,d)}}$ of size ${M}\\times {P}$; column $p$ of a block holds the "
                 f"mask entries at the window of position $p$ (at most $S = {S}$ nonzeros)")
    rows = Din if layer.bias == "per_input" else 1
    gradients = [("math", f"\\frac{{\\partial \\ell}}{{\\partial W}} = \\big(\\mathbb{{1}}_{{{D}}}^T \\otimes H\\big)"
                          f"\\,\\Delta, \\quad H = \\mathrm{{col}}\\{{H_1, \\ldots, H_{{{Din}}}\\}}, \\quad \\Delta = "
                          f"\\mathrm{{diag}}\\{{\\delta^{{(1)}}, \\ldots, \\delta^{{({D})}}\\}} \\qquad "
                          f"(47.1225, 47.1270, 47.1271)"),
                 ("math", f"\\frac{{\\partial \\ell}}{{\\partial \\Theta}} = -\\big(\\mathbb{{1}}_{{{D}}}^T \\otimes "
                          f"\\mathbb{{1}}_{{{rows}}} \\mathbb{{1}}_{{{P}}}^T\\big)\\,\\Delta \\qquad (47.1274)")]
    if layer.groups > 1:
        gradients.append(("p", "Grouped: only the rows of the connected pairs are kept (the compact $W$)."))
    return forward, backward, "V^{(j,d)}", structure, gradients


def _transposed(layer, entry):
    D, Din = layer.maps, layer.in_maps
    V = layer.V
    M, P, S = V.M, V.P, V.S
    forward = [("p", f"{_io(layer)} Geometry: {_geometry(layer)}. $V$ is the ${P * S}\\times {M}$ sliding-window "
                     f"partition of the *output* maps ($S = {S}$); the layer runs the correlation's backward "
                     f"operator (47.1257) forward:"),
               ("math", f"x^{{(j)}} = \\sum_{{i=1}}^{{{Din}}} V^{{(j,i)}} y^{{(i)}} - \\theta^{{(j)}} "
                        f"\\mathbb{{1}}_{{{M}}}, \\qquad V^{{(j,i)}} = \\Big(V^T \\odot \\big(\\mathbb{{1}}_{{{M}}} "
                        f"\\mathbb{{1}}_{{{P}}}^T \\otimes (w_j^{{(i)}})^T\\big)\\Big)(I_{{{P}}} \\otimes "
                        f"\\mathbb{{1}}_{{{S}}}) \\qquad (47.1257)")]
    backward = [("p", "Its backward step is a correlation of the output sensitivity with the same masks "
                      "(47.1211-47.1212): the transposed blocks of (47.1257),"),
                ("math", f"b^{{(i)}} = \\sum_{{j=1}}^{{{D}}} \\big(V^{{(j,i)}}\\big)^T \\delta^{{(j)}} = "
                         "\\sum_j \\Delta_j^T w_j^{(i)}, \\qquad \\Delta_j = [\\,V_1\\delta^{(j)} \\cdots "
                         "V_P \\delta^{(j)}\\,]")]
    structure = (f"{Din} x {D} blocks $(V^{{(j,i)}})^T$ of size ${P}\\times {M}$; row $p$ holds the mask on the "
                 f"window of position $p$ (at most $S = {S}$ nonzeros)")
    gradients = [("math", "\\frac{\\partial \\ell}{\\partial w_j^{(i)}} = \\Delta_j\\, y^{(i)}, \\qquad "
                          "\\frac{\\partial \\ell}{\\partial \\theta^{(j)}} = -\\mathbb{1}^T \\delta^{(j)} "
                          "\\qquad \\text{(47.1271, 47.1274 with input and output swapped)}")]
    return forward, backward, "(V^{(j,i)})^T", structure, gradients


def _pool(layer, entry):
    kind = layer.pool_kind
    if layer.sliding:
        V = layer.V
        forward = [("p", f"{_io(layer)} Overlapping or padded {kind} pooling: the regions are the rows of a "
                         f"pooling partition $V_{{pool}}$ (${V.P * V.S}\\times {V.M}$, 47.1149), not a permutation."),
                   ("math", "t^{(d)}(p') = \\mathrm{pool}\\big(y^{(d)}(\\Omega_{p'})\\big), \\quad "
                            "g_{p'} = \\partial t^{(d)}(p') / \\partial y^{(d)}(\\Omega_{p'}) "
                            "\\qquad (47.1187, 47.1196)")]
        backward = [("math", "b^{(d)} = V_{pool}^T\\, \\mathrm{col}\\{v^{(d)}(p')\\, g_{p'}\\} "
                             "\\qquad \\text{(replaces (47.1204) when regions overlap)}")]
        name = "V_{pool}^T U"
    else:
        T = layer.T
        forward = [("p", f"{_io(layer)} {kind.capitalize()} pooling over {T.P_out} regions of "
                         f"{'sizes ' + str(sorted({len(r) for r in T.regions}))}; "
                         f"T is the ${T.P}\\times {T.P}$ pooling permutation (47.1203)."),
                   ("math", "t^{(d)}(p') = \\mathrm{pool}\\big(y^{(d)}(\\Omega_{p'})\\big), \\qquad "
                            "(t^{(d)}, g^{(d)}) = \\mathrm{pool}(y^{(d)}) \\qquad (47.1187, 47.1196)")]
        backward = [("math", "b^{(d)} = \\mathrm{permute}^\\#\\big(\\mathrm{upv}(v^{(d)}, g^{(d)})\\big) = "
                             "T^T U^{(d)} v^{(d)} \\qquad (47.1197\\text{--}47.1204, 47.1244, 47.1260)")]
        name = "T^T U"
    structure = (f"block diagonal over the {layer.in_maps} maps; block $d$ spreads each pooled value over its "
                 "region, weighted by the gradient vector $g$ (0/1 for max and subsampling, $1/|\\Omega|$ for mean)")
    return forward, backward, name, structure, []


def _activation(layer, entry):
    f = layer.function
    forward = [("p", _io(layer)),
               ("math", f"y = f(z), \\quad f = \\mathrm{{{f}}} \\text{{ entrywise}} \\qquad (47.1154)")]
    backward = [("math", "\\delta_z = f'(z) \\odot \\delta_y = \\mathrm{diag}\\big(f'(z)\\big)\\, \\delta_y "
                         "\\qquad \\text{(the factor } f' \\text{ of 47.1233, 47.1234, 47.1245, 47.1262)}")]
    return forward, backward, "\\mathrm{diag}(f'(z))", f"diagonal, {layer.P_in * layer.in_maps} entries", []


def _flatten(layer, entry):
    forward = [("p", _io(layer)),
               ("math", f"y_1 = \\mathrm{{col}}\\{{t^{{(1)}}, \\ldots, t^{{({layer.in_maps})}}\\}} "
                        "\\qquad (47.1215, 47.1217)")]
    perm = " a permutation (torch's row-major order within each map)" if layer.order == "C" else " the identity"
    backward = [("p", "Block $d$ of the sensitivity of $y_1$ is the sensitivity of map $d$ (47.1220, 47.1241): the "
                      f"operator is{perm}.")]
    return forward, backward, "I" if layer.order == "F" else "\\Pi^T", f"{layer.P_in * layer.in_maps} ones", []


def _dense(layer, entry):
    n, m = layer.n, layer.P_in
    forward = [("p", _io(layer)),
               ("math", f"z_{{\\ell+1}} = W_\\ell\\, y_\\ell - \\theta_\\ell, \\quad "
                        f"W_\\ell \\in \\mathbb{{R}}^{{{n}\\times {m}}}"
                        " \\qquad (47.1216)")]
    backward = [("math", "\\partial \\ell / \\partial y_\\ell = W_\\ell^T \\delta_{\\ell+1} \\qquad "
                         "\\text{(then } f'(z_\\ell)\\odot \\text{ in front: 47.1234)}")]
    gradients = [("math", "\\frac{\\partial \\ell}{\\partial W_\\ell} = \\delta_{\\ell+1} y_\\ell^T, \\qquad "
                          "\\frac{\\partial \\ell}{\\partial \\theta_\\ell} = -\\delta_{\\ell+1} "
                          "\\qquad (47.1263, 47.1264)")]
    return forward, backward, "W_\\ell^T", f"dense ${m}\\times {n}$", gradients


def _softmax(layer, entry):
    forward = [("p", _io(layer)), ("math", "y = \\frac{e^{z}}{\\mathbb{1}^T e^{z}}")]
    backward = [("math", "\\delta_z = \\big(\\mathrm{diag}(y) - y y^T\\big)\\, \\delta_y"),
                ("p", "With the cross-entropy loss the network fuses this layer with the loss: "
                      "$\\delta_z = y\\, \\mathbb{1}^T\\gamma - \\gamma$.")]
    return forward, backward, "\\mathrm{diag}(y) - y y^T", "dense, symmetric", []


def _generic(layer, entry):
    doc = (type(layer).__doc__ or type(layer).__name__).strip().split("\n")[0].rstrip(".")
    forward = [("p", f"{_io(layer)} {doc}" + (f" ({_geometry(layer)})" if _geometry(layer) else "")
                     + f". The book's equations it builds on: {layer.equations}."),
               ("math", "y = F(x; p)")]
    backward = [("math", "\\delta_x = J^T \\delta_y, \\qquad J^T = \\Big(\\frac{\\partial y}{\\partial x}\\Big)^T")]
    gradients = []
    if layer.parameter_shapes():
        gradients = [("math", "\\frac{\\partial \\ell}{\\partial p} = \\Big(\\frac{\\partial y}{\\partial p}\\Big)^T "
                              "\\delta_y \\quad \\text{for } p \\in \\{" + ", ".join(
                                  f"\\mathrm{{{k}}}" for k in layer.parameter_shapes()) + "\\}")]
    return forward, backward, "J^T", "see the entries below", gradients


TEMPLATES = {"correlation": _correlation, "transposed_correlation": _transposed, "pool": _pool,
             "activation": _activation, "flatten": _flatten, "dense": _dense, "softmax": _softmax}


def layer_blocks(entry, checked: bool) -> list:
    layer = entry.layer
    forward, backward, name, structure, gradients = TEMPLATES.get(layer.kind, _generic)(layer, entry)
    rows, cols = entry.shape
    blocks = [("h2", f"{entry.index + 1}. {layer.name}: {type(layer).__name__}")]
    blocks += [("h3", "Forward")] + forward + [("h3", "Backward")] + backward
    blocks.append(("p", f"Operator ${name}$, i.e. $J^T$ of the layer: ${rows}\\times {cols}$ "
                        f"($D_{{in}} M \\times D P$, map-major $\\mathrm{{col}}\\{{x^{{(1)}}, \\ldots\\}}$), "
                        f"{entry.nnz} nonzeros; structure: {structure}."))
    if entry.shown is not None:
        blocks.append(("matrix", f"Entries ({entry.shown_note}):", matrix_blocks(entry.shown, entry.names)))
    else:
        blocks.append(("p", f"Entries {entry.shown_note}."))
    if gradients:
        blocks += [("h3", "Gradients")] + gradients
    if checked:
        blocks += [("h3", "Proof")] + [("list", [_step_line(s) for s in entry.steps])]
    return blocks


def _step_line(step) -> str:
    eq = f" ({step.equations})" if step.equations else ""
    return f"**{step.status}** - {step.claim}{eq}; method: {step.method}; {step.seconds:.2f} s; {step.detail}"


# ---------------------------------------------------------------------- the whole document
def document_blocks(derivation, title, seed) -> list:
    net = derivation.net
    loss = net.loss_name
    blocks = [("title", title or "Backpropagation of a network, derived and proved"),
              ("p", f"Network: {net.in_maps} input map(s) of shape ${_shape(net.input_shape)}$, "
                    f"{len(net.layers)} layers, loss '{loss}', {sum(v.size for v in net.parameters().values())} "
                    "parameters. Equation numbers refer to section 47.25 of the book (source 002 of the project's "
                    "SOURCES.md). Maps are vectorised by column stacking, a stack of maps map by map "
                    "($\\mathrm{col}\\{x^{(1)}, \\ldots, x^{(D)}\\}$, 47.1215); indices are 1-based as in the book. "
                    "Every operator below is the layer's own code run in SymPy with symbolic weights."),
              ("h2", "Architecture"),
              ("list", [f"{l.name} ({l.kind}): {l.in_maps} x ${_shape(l.in_shape)}$ -> {l.out_maps} x "
                        f"${_shape(l.out_shape)}$" + (f"; parameters " + ", ".join(
                            f"{k} {v}" for k, v in l.parameter_shapes().items()) if l.parameter_shapes() else "")
                        for l in net.layers])]
    for entry in derivation.layers:
        blocks += layer_blocks(entry, derivation.checked)
    blocks += chain_blocks(derivation)
    blocks += update_blocks(net)
    if derivation.checked:
        blocks += [("h2", "Machine proof"),
                   ("p", f"{derivation.summary()} (seed {seed}). Exact steps run on shrunk instances of the same "
                         "layers; numeric steps run at full size."),
                   ("list", [f"{s.layer}: " + _step_line(s) for s in derivation.steps])]
    return blocks


def book_recursions(net) -> list:
    """The sensitivity recursions of the book (47.1245, 47.1262) instantiated for this network's layers.

    A correlation layer followed by an (optional) activation and an
    (optional) non-overlapping pooling gets the book's form when the next
    layer is a correlation (47.1262) or a column-stacking flatten and a dense
    layer (47.1245). Other layer sequences are covered by the generic chain.
    """
    layers, out = net.layers, []
    convs = [i for i, l in enumerate(layers) if l.kind == "correlation"]
    for c, i in enumerate(convs, start=1):
        conv, j = layers[i], i + 1
        act = layers[j] if j < len(layers) and layers[j].kind == "activation" else None
        j += act is not None
        pool = layers[j] if j < len(layers) and layers[j].kind == "pool" and not layers[j].sliding else None
        j += pool is not None
        fp = f"f'(z^{{(d,{c})}}) \\odot " if act is not None else ""
        names = ", ".join(l.name for l in (conv, act, pool) if l is not None)

        def through(v):
            return f"\\mathrm{{permute}}^\\#\\big(\\mathrm{{upv}}({v})\\big)" if pool is not None else v
        if j < len(layers) and layers[j].kind == "correlation" and getattr(layers[j], "groups", 1) == 1:
            nxt = layers[j]
            out.append(("p", f"Layers {names} and {nxt.name} ($c = {c}$): the sensitivity of $z^{{(d,{c})}}$, the "
                             f"output of {conv.name}, in the form of (47.1262), with $V^{{(d,d',{c + 1})}}$ the "
                             f"operator of {nxt.name} (47.1257):"))
            out.append(("math", f"\\delta^{{(d,{c})}} = \\sum_{{d'=1}}^{{{nxt.maps}}} {fp}"
                                + through(f"V^{{(d,d',{c + 1})}} \\delta^{{(d',{c + 1})}}")
                                + f", \\quad d = 1, \\ldots, {conv.maps} \\qquad (47.1262)"))
        elif (j + 1 < len(layers) and layers[j].kind == "flatten" and layers[j].order == "F"
              and layers[j + 1].kind == "dense"):
            dense, P = layers[j + 1], layers[j].P_in
            out.append(("p", f"Layers {names}, {layers[j].name} and {dense.name}: {conv.name} is the last "
                             f"correlation layer ($C = {c}$); $W_1^{{(d)}}$ are the columns $(d-1)P'+1, \\ldots, "
                             f"dP'$ ($P' = {P}$) of the weights of {dense.name}, the ones that read map $d$ "
                             "(47.1217-47.1220), and $\\delta_2$ is the sensitivity of its output; in the form "
                             "of (47.1245):"))
            out.append(("math", f"\\delta^{{(d,{c})}} = {fp}" + through(f"(W_1^{{(d)}})^T \\delta_2")
                                + f", \\quad d = 1, \\ldots, {conv.maps} \\qquad (47.1245)"))
    return out


def chain_blocks(derivation) -> list:
    net = derivation.net
    K = len(net.layers)
    if net.loss_name == "cross_entropy":
        start = ("math", "\\delta_{" + str(K - 1) + "} = y\\, \\mathbb{1}^T \\gamma - \\gamma "
                 "\\qquad \\text{(softmax and cross-entropy fused)}")
        last = K - 1
    else:
        start = ("math", "\\delta_{" + str(K) + "} = \\frac{\\partial \\|\\gamma - y\\|^2}{\\partial y} = "
                 "2(y - \\gamma) \\qquad (47.1233)")
        last = K
    product = " \\allowbreak ".join(f"J_{{{k}}}^T" for k in range(1, last + 1))
    blocks = [("h2", "The chain"),
              ("p", "Write $\\delta_k$ for the sensitivity of the output of layer $k$ and $J_k^T$ for its operator. "
                    "The backward pass runs the layers in reverse (the listing of 47.1275):"),
              start, ("math", "\\delta_{k-1} = J_k^T\\, \\delta_k, \\qquad k = " + str(last) + ", \\ldots, 1"),
              ("math", "\\frac{\\partial \\ell}{\\partial x} = " + product + "\\, \\delta_{" + str(last) + "}"),
              ("list", [f"$J_{{{i + 1}}}^T$: {l.name} ({l.kind}), ${l.out_maps * l.P_out} \\to "
                        f"{l.in_maps * l.P_in}$" for i, l in enumerate(net.layers[:last])])]
    recursions = book_recursions(net)
    if recursions:
        blocks += [("h3", "In the book's notation")] + recursions
    blocks.append(("p", "The gradients of layer $k$'s parameters use $\\delta_k$ and the layer's input (the "
                        "formulas of its section)." + (
                            " For this network the whole chain was formed in SymPy, every sensitivity an exact "
                            "expression in the symbolic weights and $\\delta_L$."
                            if derivation.chain is not None else "")))
    return blocks


def update_blocks(net) -> list:
    lines = []
    for layer in net.layers:
        for p in layer.parameter_shapes():
            lines.append(f"{layer.name}.{p}")
    blocks = [("h2", "Training update"),
              ("p", "Stochastic gradient with step size $\\mu$ and regularisation $\\rho$, after (47.1276), "
                    "signs corrected (the book prints $-\\mu\\mu$ for the $W_\\ell$ step and $-\\mu\\delta$ for "
                    "$\\theta_\\ell$; since $\\partial \\ell/\\partial \\theta_\\ell = -\\delta_{\\ell+1}$ by "
                    "(47.1264), the bias moves by $+\\mu \\delta_{\\ell+1}$):"),
              ("math", "W_\\ell \\leftarrow (1 - 2\\mu\\rho_2) W_\\ell - \\mu\\, \\delta_{\\ell+1} y_\\ell^T, "
                       "\\qquad \\theta_\\ell \\leftarrow \\theta_\\ell + \\mu\\, \\delta_{\\ell+1}"),
              ("math", "W_c \\leftarrow (1 - 2\\mu\\rho_1) W_c - \\mu\\, "
                       "(\\mathbb{1}_{D_c}^T \\otimes H_{c-1})\\Delta_c, "
                       "\\qquad \\Theta_c \\leftarrow \\Theta_c + \\mu\\, (\\mathbb{1}_{D_c}^T \\otimes "
                       "\\mathbb{1}_{D_{c-1}} \\mathbb{1}_{P_c}^T)\\Delta_c"),
              ("p", "and for every other parameter $p \\leftarrow p - \\mu\\, \\partial \\ell / \\partial p$. "
                    "Parameters of this network: " + (", ".join(lines) if lines else "none") + ".")]
    return blocks


# ---------------------------------------------------------------------- rendering
_LATEX_SPECIAL = {"&": "\\&", "%": "\\%", "#": "\\#", "_": "\\_", "{": "\\{", "}": "\\}", "~": "\\~{}",
                  "^": "\\^{}", "\\": "\\textbackslash{}", "'": "'"}


def _latex_text(text: str) -> str:
    """Escape the text outside ``$...$``; ``**x**`` becomes bold."""
    out = []
    for i, part in enumerate(text.split("$")):
        if i % 2:
            out.append(f"${part}$")
            continue
        escaped = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in part)
        pieces = escaped.split("**")
        escaped = "".join(f"\\textbf{{{p}}}" if k % 2 else p for k, p in enumerate(pieces))
        out.append(escaped.replace("->", "$\\to$"))
    return "".join(out)


#: about how many characters of math fit on a line of the article (10pt, 6.6in text width)
LINE_WIDTH = 90
_BREAK = re.compile(r"\\(?:qquad|allowbreak)(?![A-Za-z])")
_BREAK_HINT = re.compile(r" ?\\allowbreak(?![A-Za-z])")


def _visible_width(latex: str) -> int:
    """A rough count of the characters a display occupies (commands count as one, braces as none)."""
    text = re.sub(r"\\(?:mathbb|mathrm|text|big|Big|left|right)(?![A-Za-z])", "", latex)
    text = re.sub(r"\\[A-Za-z]+", "x", text)
    return len(re.sub(r"[{}^_\s]", "", text))


def wrap_display(latex: str, width: int = LINE_WIDTH) -> str:
    """Break a wide display at its top-level ``\\qquad`` / ``\\allowbreak`` into lines of a ``gather*``.

    Pieces are packed greedily; a display without such a break point is left whole.
    """
    pieces, depth, last = [], 0, 0
    for m in re.finditer(r"[{}]|" + _BREAK.pattern, latex):
        tok = m.group(0)
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
        elif depth == 0:
            pieces.append(latex[last:m.start()].strip())
            last = m.end()
    pieces.append(latex[last:].strip())
    if len(pieces) == 1 or _visible_width(latex) <= width:
        return latex
    lines, current = [], ""
    for piece in pieces:
        candidate = f"{current} \\qquad {piece}" if current else piece
        if current and _visible_width(candidate) > width:
            lines.append(current)
            current = "\\quad " + piece
        else:
            current = candidate
    lines.append(current)
    return " \\\\\n".join(lines)


def to_latex(blocks) -> str:
    out = ["\\documentclass[10pt]{article}", "\\usepackage{amsmath,amssymb}",
           "\\setlength{\\textwidth}{6.6in}\\setlength{\\oddsidemargin}{-0.05in}\\setlength{\\evensidemargin}{-0.05in}",
           "\\setlength{\\textheight}{9in}\\setlength{\\topmargin}{-0.5in}",
           "\\allowdisplaybreaks\\sloppy", "\\setcounter{MaxMatrixCols}{40}"]
    title = next(text for kind, text, *rest in blocks if kind == "title")
    out += [f"\\title{{{_latex_text(title)}}}", "\\date{}", "\\begin{document}", "\\maketitle"]
    for kind, *rest in blocks:
        if kind == "title":
            continue
        if kind == "h2":
            out.append(f"\\section*{{{_latex_text(rest[0])}}}")
        elif kind == "h3":
            out.append(f"\\paragraph{{{_latex_text(rest[0])}.}}")
        elif kind == "p":
            out.append(_latex_text(rest[0]) + "\n")
        elif kind == "math":
            out.append("\\begin{gather*}\n" + wrap_display(rest[0]) + "\n\\end{gather*}")
        elif kind == "matrix":
            out.append(_latex_text(rest[0]))
            for m in rest[1]:
                out.append("{\\scriptsize\\begin{gather*}\n" + m + "\n\\end{gather*}}")
        elif kind == "list":
            out.append("\\begin{itemize}\\small")
            out += [f"\\item {_latex_text(item)}" for item in rest[0]]
            out.append("\\end{itemize}")
    out.append("\\end{document}")
    # amssymb has no blackboard-bold digits: the all-ones vector is set in bold, as the book also prints it
    return "\n".join(out).replace("\\mathbb{1}", "\\mathbf{1}") + "\n"


def to_markdown(blocks) -> str:
    out = []
    for kind, *rest in blocks:
        if kind == "title":
            out.append(f"# {rest[0]}")
        elif kind == "h2":
            out.append(f"## {rest[0]}")
        elif kind == "h3":
            out.append(f"**{rest[0]}.**")
        elif kind == "p":
            out.append(rest[0])
        elif kind == "math":
            out.append(f"$$\n{_BREAK_HINT.sub('', rest[0])}\n$$")
        elif kind == "matrix":
            out.append(rest[0])
            out += [f"$$\n{m}\n$$" for m in rest[1]]
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in rest[0]))
    return "\n\n".join(out) + "\n"


def to_notebook(blocks, derivation, seed) -> str:
    """An nbformat-4 notebook: the Markdown sections, and code cells that rebuild the network and re-run the proofs."""
    net = derivation.net
    params = net.parameters()
    embed = sum(v.size for v in params.values()) <= 5000
    setup = ["import json", "import numpy as np", "from partitionnet import Network",
             "from partitionnet.derive import prove_layer, prove_network", "",
             f"config = json.loads({json.dumps(json.dumps(net.config()))})",
             f"net = Network.from_config(config, rng={seed})"]
    if embed:
        setup.append(f"net.set_parameters({{k: np.array(v) for k, v in json.loads("
                     f"{json.dumps(json.dumps({k: v.tolist() for k, v in params.items()}))}).items()}})")
    else:
        setup.append("# (parameters drawn afresh: the proofs hold for symbolic weights, the numeric checks at any)")
    setup += ["", "def report(steps):", "    for s in steps:",
              "        print(f'{s.status:8s} {s.claim} [{s.method}, {s.seconds:.2f} s] {s.detail}')",
              "    assert all(s.passed is not False for s in steps), 'a step failed'", "", "net"]
    cells = [_cell("markdown", to_markdown(blocks[:4])), _cell("code", "\n".join(setup))]
    section = []
    current = None

    def flush():
        if section:
            cells.append(_cell("markdown", to_markdown(section)))
            if current is not None:
                cells.append(_cell("code", f"report(prove_layer(net, {current!r}, seed={seed}))"))
            section.clear()

    for block in blocks[4:]:
        if block[0] == "h2":
            flush()
            name = block[1].split(": ")[0].split(". ", 1)[-1]
            current = name if any(l.name == name for l in net.layers) else None
        section.append(block)
    flush()
    cells.append(_cell("code", f"report(prove_network(net, seed={seed}))"))
    nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                      "name": "python3"},
                                       "language_info": {"name": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    for i, cell in enumerate(cells):
        cell["id"] = f"derive-{i:03d}"
    return json.dumps(nb, indent=1) + "\n"


def _cell(kind: str, source: str) -> dict:
    cell = {"cell_type": kind, "id": "", "metadata": {},
            "source": source.splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def render(derivation, format: str, *, title=None, seed=0) -> str:
    blocks = document_blocks(derivation, title, seed)
    if format == "latex":
        return to_latex(blocks)
    if format == "markdown":
        return to_markdown(blocks)
    return to_notebook(blocks, derivation, seed)
