# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 7. Derive your network: a PyTorch model's backpropagation, written out and proved
#
# Section 47.25 of the book ([002] in `SOURCES.md`) derives the backward pass of one kind of network:
# correlation layers with pooling, then a feedforward part. A model of your own (here a small PyTorch
# encoder-decoder whose decoder is a **transposed** convolution, a layer the book never writes down) needs
# the same derivation, and deriving it by hand is where mistakes creep in.
#
# `partitionnet.derive(net)` writes it for you, layer by layer, in the book's notation: the forward map
# with the sizes filled in, the backward step in the form of (47.1262) with the layer's operator named, the
# operator's size, nonzeros and (when small) its entries with symbolic weights, the gradients in the form of
# (47.1271, 47.1274), then the whole chain and the training update of (47.1276). With `check=True` every
# step is **proved**: exactly in SymPy on a shrunk copy of each layer, and numerically at full size
# against central differences and PyTorch autograd.
#
# In this notebook:
#
# 1. a PyTorch `Sequential` with a `ConvTranspose2d` is imported with `partitionnet.from_torch`;
# 2. `partitionnet.derive` writes and proves its backpropagation (Markdown here; LaTeX and a notebook
#    are the other formats, and `partitionnet derive SOURCE` does the same from the command line);
# 3. we read the result: the transposed layer's section, its operator in SymPy, checked against
#    `torch.autograd.functional.jacobian`;
# 4. a deliberately broken operator, to see a proof fail.
#
# *Running time:* a few seconds; there is no slow setting, so `PARTITIONNET_NOTEBOOK_FAST` (which the test
# suite sets) changes nothing here. PyTorch is optional: without it the same network is built from
# `partitionnet.layers` directly and the comparisons with torch are skipped.

# %%
import numpy as np
import scipy.sparse as sp
import sympy
from IPython.display import Markdown, display

import partitionnet
from partitionnet import Network, layers as L
from partitionnet.derive import prove_layer

try:
    import torch
except ImportError:          # PyTorch is an optional extra: pip install 'partitionnet[torch]'
    torch = None

# %% [markdown]
# ## 7.1 A PyTorch encoder-decoder, imported
#
# One $8 \times 8$ input map; the encoder is a $3 \times 3$ convolution with stride 2 and padding 1 (two maps
# of $4 \times 4$) and a ReLU; the decoder is a $2 \times 2$ **transposed** convolution with stride 2 back to
# one $8 \times 8$ map, and a sigmoid. `from_torch` turns each module into a partitionnet layer and copies
# the weights (a bias $b$ becomes $\theta = -b$, the book's sign in (47.1212)).

# %%
if torch is not None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, kernel_size=3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(2, 1, kernel_size=2, stride=2), torch.nn.Sigmoid()).double()
    net = partitionnet.from_torch(model, (1, 8, 8))
else:
    net = Network((8, 8), 1, [L.Correlation(2, kernel=3, stride=2, padding=1, bias="tied"), L.Activation("relu"),
                              L.TransposedCorrelation(1, kernel=2, stride=2), L.Activation("sigmoid")], rng=0)
print(net)

x = np.random.default_rng(1).standard_normal((3, 1, 8, 8))
if torch is not None:            # the imported network computes what the torch model computes
    with torch.no_grad():
        torch_out = model(torch.from_numpy(x)).numpy()
    ours = net.forward(x)
    print("max |partitionnet - torch| =", np.abs(ours.reshape(torch_out.shape) - torch_out).max())
    assert np.allclose(ours.reshape(torch_out.shape), torch_out, atol=1e-12)

# %% [markdown]
# ## 7.2 Derive it
#
# `derive` returns a `Derivation`: `.text` is the document, `.steps` the proof record (one `Step` per
# statement, with its method and time), `.layers` the SymPy objects behind each section.

# %%
doc = partitionnet.derive(net, format="markdown", check=True)
print(doc.summary())
for step in doc.steps:
    print(f"{step.status:8s} {step.layer:8s} {step.claim[:70]:70s} [{step.method}]")
assert doc.passed and len(doc.steps) >= 10

# %% [markdown]
# The document is Markdown with `$$` displays, so it renders here (and on GitHub). Its first part: the
# network, then one section per layer. Here is the section of the transposed layer.

# %%
deconv = next(layer for layer in net.layers if layer.kind == "transposed_correlation")
sections = doc.text.split("\n## ")
section = next(s for s in sections if f"{deconv.name}: TransposedCorrelation" in s.splitlines()[0])
display(Markdown("## " + section))
assert "(47.1257)" in section and "**proved**" in section

# %% [markdown]
# ## 7.3 Read the result
#
# The transposed layer runs the correlation's backward operator $V^{(j,i)}$ of (47.1257) *forward*, so its own
# backward step is a correlation. Its section names that operator, $J^\mathsf{T}$ of the layer, and prints
# its entries with symbolic weights $w_j^{(i)}(s)$; the network is small enough that `derive` also formed
# the full operator in SymPy (`entry.operator`). Substituting the imported weights gives numbers, which must
# be the transposed Jacobian that PyTorch's autograd computes for the `ConvTranspose2d` alone.

# %%
entry = doc.layer(deconv.name)
print("J^T:", entry.shape, "with", entry.nnz, "nonzeros;", entry.shown_note)
values = {sym: float(val) for name, arr in entry.params.items()
          for sym, val in zip(arr.reshape(-1), net.parameters()[f"{deconv.name}.{name}"].reshape(-1))
          if isinstance(sym, sympy.Symbol)}
JT = np.array(sympy.Matrix(entry.operator).xreplace(values), dtype=float)
print("symbols in the operator:", sorted({str(s) for s in sympy.Matrix(entry.operator).free_symbols})[:4], "...")
numeric = deconv.operator({k.split(".", 1)[1]: v for k, v in net.parameters().items()
                           if k.startswith(deconv.name + ".")})
assert np.allclose(JT, sp.csr_matrix(numeric).toarray())

if torch is not None:
    conv_t = model[2]
    y = torch.from_numpy(np.random.default_rng(2).standard_normal((1, 2, 4, 4)))
    jac = torch.autograd.functional.jacobian(lambda v: conv_t(v).reshape(-1), y).reshape(64, 32)   # row-major
    # partitionnet stacks columns map by map (47.1215); torch flattens rows: reorder both sides
    def col_order(maps, shape):
        return np.arange(maps * int(np.prod(shape))).reshape((maps,) + shape).transpose(0, 2, 1).reshape(-1)
    torch_JT = jac.numpy().T[np.ix_(col_order(2, (4, 4)), col_order(1, (8, 8)))]
    print("max |J^T (derive) - J^T (torch autograd)| =", np.abs(JT - torch_JT).max())
    assert np.allclose(JT, torch_JT, atol=1e-12)

# %% [markdown]
# Drawn, the operator shows its structure. A row of $J^\mathsf{T}$ is one input entry of the transposed layer; with
# kernel 2 and stride 2 it writes one $2 \times 2$ block of the output, and these blocks tile the output without
# overlap, so every row holds exactly 4 weights. The two input maps are the two row blocks.

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
axes[0].spy(JT, markersize=2)
axes[0].set_title(f"$J^T$ of {deconv.name}: {JT.shape[0]} x {JT.shape[1]}, {np.count_nonzero(JT)} nonzeros")
limit = np.abs(JT).max()
image = axes[1].imshow(JT, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
axes[1].set_title("its entries: the imported weights")
fig.colorbar(image, ax=axes[1])
fig.tight_layout()
plt.show()
assert np.count_nonzero(JT) == entry.nnz and set(np.count_nonzero(JT, axis=1)) == {4}

# %% [markdown]
# The same document as a LaTeX article (it compiles with `pdflatex`; wide operators are split into
# column blocks and long displays into lines) or as a notebook that re-runs the proofs:

# %%
latex = partitionnet.derive(net, format="latex", check=False).text
print(latex[:400], "...")
assert latex.startswith("\\documentclass") and latex.rstrip().endswith("\\end{document}")

# %% [markdown]
# ## 7.4 A broken operator is caught
#
# The proofs are only worth something if they can fail. Here the transposed layer's operator is replaced by
# one with every entry doubled, for the length of one call to `prove_layer`: the exact SymPy proof that
# $J^\mathsf{T}$ is the transposed Jacobian of the layer's direct-summation reference reports **FAILED**, and
# `partitionnet derive --check` would exit with status 1.

# %%
cls = type(deconv)
shipped = cls.operator
cls.operator = lambda self, p, x=None, **kw: 2 * shipped(self, p, x, **kw)
try:
    broken = prove_layer(net, deconv.name)
finally:
    cls.operator = shipped
for step in broken:
    print(f"{step.status:8s} {step.claim[:80]}")
assert broken[0].passed is False
assert all(step.passed for step in prove_layer(net, deconv.name))           # restored: proved again
