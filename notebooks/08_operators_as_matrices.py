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
# # 8. Operators as matrices: a trained layer you can hold
#
# A correlation layer is linear in its input, so it *is* a matrix. The book ([002] in `SOURCES.md`) builds that
# matrix block by block: the backprop operator $V^{(j,d)}$ of (47.1257) is the transposed Jacobian of output
# map $d$ with respect to input map $j$, made of the partition matrix $V$ (47.1152) and the mask. This notebook
# takes a network trained on handwritten digits and uses its first layer as a matrix:
#
# 1. `partitionnet.convolution_matrix` gives the layer's matrix $A$, with $\operatorname{vec}(z) = A
#    \operatorname{vec}(x)$ (bias left out), as a `scipy.sparse` array, in the book's column-stacked layout or
#    in PyTorch's; it equals `torch.func.jacrev` exactly;
# 2. a spy plot of $V$ and of $A$, with the patch blocks marked, and a tiny layer written out with symbolic
#    weights;
# 3. `partitionnet.spectral_norm`, the exact largest singular value of the layer (its Lipschitz constant),
#    against a dense SVD;
# 4. $V$, $T$ and the operators handed to scipy's solvers, and the dot test of `partitionnet.check`;
# 5. a saliency map: $\partial\,\mathrm{loss}/\partial x$ of a digit from `net.input_gradient`, checked by
#    `partitionnet.check.gradcheck` against central differences;
# 6. `partitionnet.cost(net)`: what each layer costs as sparse algebra against dense matrices, the table of the
#    slides [004] ("Efficiency of Convolution") for this network.
#
# *Fast mode:* with `PARTITIONNET_NOTEBOOK_FAST=1` (the test suite sets it) the network trains for 3 epochs on
# 600 digits instead of 8 epochs on the whole training set; every check below holds in both modes.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from IPython.display import Math, display

import partitionnet as pn
from partitionnet import Network, Partition, Pooling, layers as L
from partitionnet.check import dottest, gradcheck
from partitionnet.display import describe_sparse, latex_matrix, symbolic_operator

FAST = os.environ.get("PARTITIONNET_NOTEBOOK_FAST", "0") == "1"
print("fast mode" if FAST else "full mode")

# %% [markdown]
# ## A trained network
#
# scikit-learn's bundled 8 x 8 digits (no download): one correlation layer of 6 masks of 3 x 3 with "same"
# padding, tanh, 2 x 2 max pooling, and a dense softmax layer.

# %%
data = pn.datasets.digits(seed=0)
n_train = 600 if FAST else data.x_train.shape[0]
epochs = 3 if FAST else 8
net = Network((8, 8), 1, [L.Correlation(6, kernel=3, padding="same"), L.Activation("tanh"),
                          L.Pool("max", 2), L.Flatten(), L.Dense(10), L.Softmax()],
              loss="cross_entropy", rng=0)
pn.fit(net, data.x_train[:n_train], data.y_train[:n_train], epochs=epochs, batch_size=8, learning_rate=0.1,
       rng=0, progress=False)
accuracy, _ = pn.evaluate(net, data.x_test, data.y_test)
print(f"test accuracy after {epochs} epochs on {n_train} digits: {100 * accuracy:.1f}%")
assert accuracy > (0.8 if FAST else 0.93), accuracy

# %% [markdown]
# ## 1. The first layer's matrix
#
# $A$ has one row per output entry ($6$ maps of $8 \times 8$) and one column per input entry. In the book's
# layout both sides are column-stacked maps, map after map (47.1215). Applied to a digit it gives the layer's
# output, bias aside; and it is the transpose of the operator the layer backpropagates with (47.1257).

# %%
conv = net.layers[0]
p = net.layer_parameters(conv.name)
A = pn.convolution_matrix(conv, params=p)
print(describe_sparse(A))
x = data.x_test[0]                                              # one digit, (1, 8, 8)
z = conv.forward(p, pn.vec(x[0])[:, None, None])[0][:, 0, :]   # (P_out, D): maps column-stacked
bias_free = z + p["Theta"].sum(axis=0)                          # z = A x - theta (47.1214)
assert np.allclose(A @ pn.vec(x[0]), bias_free.T.reshape(-1), atol=1e-12)
assert (A != conv.operator(p).T).nnz == 0                       # A is the transpose of V^(j,d) stacked
print("A vec(x) is the layer's output, and A is the transpose of its backprop operator")

# %% [markdown]
# The same matrix in PyTorch's layout (`x.reshape(-1)` of a `(C, H, W)` tensor, row-major), checked against
# `torch.func.jacrev` of the layer's PyTorch twin. PyTorch is optional: without it this cell says so.

# %%
try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the comparison with torch.func.jacrev")
if torch is not None:
    module = conv.to_torch(p).double()
    J = torch.func.jacrev(lambda v: module(v.reshape(1, 1, 8, 8)).reshape(-1))(torch.zeros(64, dtype=torch.float64))
    A_torch = pn.convolution_matrix(conv, params=p, layout="torch")
    assert np.array_equal(A_torch.toarray(), J.detach().numpy())
    print("convolution_matrix(layout='torch') == torch.func.jacrev, entry for entry")
    torch.manual_seed(0)
    strided = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1, dilation=2).double()
    A_s = pn.convolution_matrix(strided, (3, 9, 9), layout="torch")
    J_s = torch.func.jacrev(lambda v: strided(v.reshape(1, 3, 9, 9)).reshape(-1))(torch.zeros(243, dtype=torch.float64))
    assert np.array_equal(A_s.toarray(), J_s.detach().numpy())
    print(f"and a strided, dilated torch Conv2d straight from its weights: {describe_sparse(A_s)}")

# %% [markdown]
# ## 2. Spy plots, and a layer in symbols
#
# `print(V)` gives the sizes, nonzeros, padding and geometry of the layer's partition; in Jupyter a large $V$
# shows itself as a spy plot with a line where each patch $h_p$ starts, and a small one as exact LaTeX.

# %%
V = conv.V
print(V)
assert V.shape == (V.P * V.S, V.M) and V.nnz == V.matrix().nnz
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
axes[0].spy(V.matrix()[: 9 * 12], markersize=2)
for r in range(0, 9 * 12, 9):
    axes[0].axhline(r - 0.5, color="tab:blue", linewidth=0.5)
axes[0].set_title("the first 12 patches of V (9 rows each)")
axes[1].spy(A, markersize=0.5)
for r in range(0, A.shape[0], 64):
    axes[1].axhline(r - 0.5, color="tab:orange", linewidth=0.5)
axes[1].set_title("A: one band per output map")
plt.tight_layout()
plt.show()
assert V._repr_png_()[:4] == b"\x89PNG"                          # what Jupyter shows for V itself

# %% [markdown]
# A tiny layer (a 2 x 1 mask over a 3 x 2 map) written out with symbolic weights: each column of $J^\mathsf{T}$ is
# one output, and the mask slides down the rows.

# %%
tiny = Network((3, 2), 1, [L.Correlation(1, kernel=(2, 1))], rng=0).layers[0]
JT = symbolic_operator(tiny)
display(Math("J^\\mathsf{T} = " + latex_matrix(JT)))
assert JT.shape == (6, 4) and sum(1 for e in JT if e != 0) == 8
display(Partition.sliding_window(3, 2))                         # small: exact LaTeX

# %% [markdown]
# ## 3. The spectral norm
#
# The largest singular value of $A$ bounds how much the layer can stretch any input: $\|A x\| \le \sigma_1
# \|x\|$. `spectral_norm` runs `scipy.sparse.linalg.svds` on the sparse matrix; here $A$ is small enough for a
# dense SVD to check it.

# %%
sigma = pn.spectral_norm(conv, params=p)
dense = np.linalg.svd(A.toarray(), compute_uv=False)
print(f"sigma_1 = {sigma:.12f} (svds), {dense[0]:.12f} (dense SVD)")
assert abs(sigma - dense[0]) <= 1e-8 * dense[0]
u = np.random.default_rng(0).standard_normal(A.shape[1])
assert np.linalg.norm(A @ u) <= sigma * np.linalg.norm(u) * (1 + 1e-12)

# %% [markdown]
# ## 4. Where scipy expects a matrix
#
# $V$, the pooling permutation $T$ (47.1203) and every layer's operator take `@` on a vector or on a matrix
# whose columns are samples, have `.T`, and go through `aslinearoperator` to scipy's solvers. The dot test
# $\langle v, A u\rangle = \langle A^\mathsf{T} v, u\rangle$ checks that each transpose really is the adjoint.

# %%
H = np.stack([pn.vec(d[0]) for d in data.x_test[:5]], axis=1)   # five digits as columns
assert np.allclose(V @ H, V.matrix() @ H)
T = Pooling.windows((8, 8), 2, kind="max")
for op in (V, T, A, conv.operator(p)):
    assert dottest(op)
b = V @ H[:, 0]
h = spla.lsqr(spla.aslinearoperator(V), b, atol=1e-14, btol=1e-14)[0]
assert np.allclose(h, H[:, 0])                                  # V has full column rank: lsqr recovers the digit
print("dot tests pass for V, T, A and J^T; lsqr through aslinearoperator(V) recovers the digit")

# %% [markdown]
# ## 5. A saliency map
#
# `net.input_gradient(x, gamma)` is $\partial\,\mathrm{loss}/\partial x$ with the shape of $x$: how the loss for
# the true label moves when each pixel moves. First `gradcheck` confirms the network's gradients, with respect to
# every parameter and to the input, against central differences of the loss. A digit's blank background makes
# equal values inside many pooling windows, where max pooling has no derivative (the two one-sided derivatives
# differ and central differences average them), so the check runs on the digits with a little noise added.

# %%
xs, labels = data.x_test[:2], data.y_test[:2]
noisy = xs + 0.01 * np.random.default_rng(1).standard_normal(xs.shape)
assert gradcheck(net, noisy, labels)
saliency = net.input_gradient(data.x_test[:4], data.y_test[:4])
assert saliency.shape == data.x_test[:4].shape
fig, axes = plt.subplots(2, 4, figsize=(9, 4.5))
for k in range(4):
    axes[0, k].imshow(data.x_test[k, 0], cmap="gray_r")
    axes[0, k].set_title(f"label {data.y_test[k]}")
    axes[1, k].imshow(np.abs(saliency[k, 0]), cmap="magma")
    axes[1, k].set_title("|d loss / d x|")
for ax in axes.ravel():
    ax.set_axis_off()
plt.tight_layout()
plt.show()
print("gradcheck passed on every parameter and on the input")

# %% [markdown]
# ## 6. What it costs
#
# Per layer: the trainable parameters, the ones stored in $V$ and $T$, the stored entries of the operator, and
# the multiply-adds of one product with it, sparse against dense. (For the slides' own example, a 2 x 1 kernel
# over a 320 x 280 image, the sparse matrix stores 178,640 floats against more than 8e9 dense, and takes
# 267,960 operations against more than 16e9; `tests/test_cost.py` reproduces those figures.)

# %%
table = pn.cost(net)
print(table)
assert table[0].operator_nnz == A.nnz and table[0].V_nnz == V.nnz
assert table.total()["sparse_flops"] < table.total()["dense_flops"]
