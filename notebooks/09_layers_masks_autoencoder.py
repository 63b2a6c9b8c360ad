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
# # 9. Fixed masks on a digit, and an autoencoder made of correlations and their transposes
#
# Before the book lets a network learn its masks, Example 47.70 filters an image with masks chosen by hand
# (the book, (47.1133)–(47.1142)): a Gaussian that smooths, and the Sobel and Prewitt pairs that
# differentiate along the columns ($W_x$) and along the rows ($W_y$). The two filtered images
# $F_x, F_y$ (47.1141) combine into the gradient magnitude $F = \sqrt{F_x^2 + F_y^2}$ (47.1142), and a pixel
# whose $F$ passes a threshold is called an edge. `partitionnet.masks` holds these masks and computes every
# filtered image with the library's own `Correlation` layer, i.e. as $h_{r,c}^\mathsf{T} w$ over the rows
# of a partition matrix $V$.
#
# The second half turns the algebra around. The backprop operator of a correlation layer,
# $V^{(d,d')} = (V^\mathsf{T} \circ (\mathbb{1}\mathbb{1}^\mathsf{T} \otimes w^\mathsf{T}))(I \otimes \mathbb{1}_S)$
# (47.1257)–(47.1258), carries a small map back onto a large one. Applied in the *forward* direction it is
# a layer of its own, `TransposedCorrelation` (the "deconvolution = multiplication by the transpose" of the
# slides [004]). Two strided correlations followed by two transposed correlations make an encoder–decoder;
# trained with `partitionnet.fit` on the $8 \times 8$ digits of scikit-learn, it learns to rebuild each digit
# from 32 numbers.
#
# 1. the masks: the Gaussian with the corrected normaliser, Sobel, Prewitt;
# 2. the masks applied to a real digit, against `scipy.ndimage`;
# 3. the autoencoder: a falling loss, reconstructions, and its decoder read as $V^\mathsf{T}$.
#
# Everything is local: `sklearn.datasets.load_digits` ships with scikit-learn, nothing is downloaded.
#
# *Fast mode:* with `PARTITIONNET_NOTEBOOK_FAST=1` (the test suite sets it) the autoencoder trains on 500
# digits for 8 epochs (about two seconds) and must at least halve the error of the mean-image predictor on
# held-out digits. Without it: 1400 digits, 30 epochs (about ten seconds), and a tenth of that error.

# %%
import os

import numpy as np
import matplotlib.pyplot as plt
import scipy.ndimage
from sklearn.datasets import load_digits

import partitionnet as pn
from partitionnet import layers as L, masks
from partitionnet.layout import to_stack

FAST = os.environ.get("PARTITIONNET_NOTEBOOK_FAST", "0") == "1"
print("fast mode" if FAST else "full mode")
np.set_printoptions(linewidth=120, precision=4, suppress=True)

# %% [markdown]
# ## 9.1 The masks
#
# The Gaussian mask of (47.1135) samples $\exp(-(k^2 + l^2)/(2\sigma^2))$ at the offsets
# $k, l = -K, \dots, K$. Its mass over the plane is $2\pi\sigma^2$, so the normaliser that makes it a
# smoothing mask (entries adding to one, the image's brightness kept) is $1/(2\pi\sigma^2)$. The factor
# printed in the book, $1/(\sqrt{2\pi}\,\sigma^2)$, is the one-dimensional constant squared wrongly: it makes
# the entries add to $\sqrt{2\pi} \approx 2.507$ and would brighten every smoothed image by that much. The
# library uses the corrected factor (the erratum is listed under "47.1135" in `partitionnet.derivations.errata`).

# %%
K, sigma = 3, 1.0
G = masks.gaussian(K, sigma)
k = np.arange(-K, K + 1.0)
printed = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma ** 2)
print(f"corrected normaliser: entries add to {G.sum():.6f}")
print(f"printed normaliser:   entries add to {printed.sum():.6f}   (sqrt(2 pi) = {np.sqrt(2 * np.pi):.6f})")
assert abs(G.sum() - 1.0) < 1e-3                            # truncated at 3 sigma and sampled: close to 1
assert abs(printed.sum() / G.sum() - np.sqrt(2 * np.pi)) < 1e-12

Sx, Sy = masks.sobel()
Px, Py = masks.prewitt()
print("Sobel W_x =\n", Sx, "\nPrewitt W_x =\n", Px)
assert np.array_equal(Sy, Sx.T) and np.array_equal(Py, Px.T)
assert Sx.sum() == Sy.sum() == Px.sum() == Py.sum() == 0        # they ignore a constant image

fig, axes = plt.subplots(1, 5, figsize=(13, 2.9), layout="constrained")
for ax, (title, W) in zip(axes, [(f"Gaussian, K={K}, sigma={sigma:g}", G), ("Sobel $W_x$", Sx),
                                  ("Sobel $W_y$", Sy), ("Prewitt $W_x$", Px), ("Prewitt $W_y$", Py)]):
    lim = np.abs(W).max()
    ax.imshow(W, cmap="RdBu_r" if W.min() < 0 else "viridis", vmin=-lim if W.min() < 0 else 0, vmax=lim)
    ax.set_title(title, fontsize=10)
    ax.set_xticks(range(W.shape[1]), [str(v) for v in range(-(W.shape[1] // 2), W.shape[1] // 2 + 1)])
    ax.set_yticks(range(W.shape[0]), [str(v) for v in range(-(W.shape[0] // 2), W.shape[0] // 2 + 1)])
    ax.set_xlabel("l (columns)")
axes[0].set_ylabel("k (rows)")
fig.suptitle("The fixed masks of Example 47.70: entry [k + K, l + K] is W(k, l)")
plt.show()

# %% [markdown]
# ## 9.2 On a real digit
#
# A digit of `load_digits` is an $8 \times 8$ image with grey levels $0, \dots, 16$. Scaled to $[0, 1]$,
# framed by two blank pixels and enlarged three times by bilinear interpolation it becomes a
# $36 \times 36$ image whose border is exactly zero, so nothing is lost at the edges when the masks run over
# it with the book's zero padding (47.1129).
#
# Three facts are checked on it:
#
# - `masks.correlate` (a partitionnet `Correlation` layer) equals `scipy.ndimage.correlate` with zero
#   padding, for every mask;
# - the corrected Gaussian keeps the total brightness up to its own sum (all of the image is more than $K$
#   pixels from the border), while the printed factor multiplies it by $\sqrt{2\pi}$;
# - the edge image is zero wherever the $3 \times 3$ neighbourhood is uniform, and $F = \sqrt{F_x^2 + F_y^2}$.

# %%
digits = load_digits()
digit_index = 0
small = digits.images[digit_index] / 16.0
image = np.clip(scipy.ndimage.zoom(np.pad(small, 2), 3, order=1), 0.0, 1.0)
print("digit", digits.target[digit_index], "->", image.shape, "image, border zero:",
      bool(image[:K].max() == image[-K:].max() == image[:, :K].max() == image[:, -K:].max() == 0))

smooth = masks.correlate(image, G)
Fx, Fy = masks.gradients(image, "sobel")
edges = masks.edge_image(image, "sobel")
edges_prewitt = masks.edge_image(image, "prewitt")

for name, W, F in [("gaussian", G, smooth), ("sobel x", Sx, Fx), ("sobel y", Sy, Fy)]:
    expected = scipy.ndimage.correlate(image, W, mode="constant", cval=0.0)
    err = np.abs(F - expected).max()
    print(f"{name:9s} partitionnet vs scipy.ndimage: max |difference| = {err:.1e}")
    assert err < 1e-12
print(f"brightness: image {image.sum():.4f}, smoothed {smooth.sum():.4f} (= image x {smooth.sum() / image.sum():.6f})")
assert abs(smooth.sum() - image.sum() * G.sum()) < 1e-10 * image.sum()
assert abs(masks.correlate(image, printed).sum() / image.sum() - np.sqrt(2 * np.pi) * G.sum()) < 1e-10
uniform = scipy.ndimage.maximum_filter(image, 3, mode="constant") == scipy.ndimage.minimum_filter(image, 3,
                                                                                                    mode="constant")
assert np.abs(edges[uniform]).max() < 1e-12 and np.array_equal(edges, np.hypot(Fx, Fy))
threshold = 0.5 * edges.max()
print(f"{uniform.mean():.0%} of the pixels have a uniform neighbourhood and no edge; "
      f"{(edges > threshold).sum()} pixels pass the threshold {threshold:.2f}")

# %%
fig, axes = plt.subplots(2, 4, figsize=(13, 6.6), layout="constrained")
panels = [("the digit (36 x 36)", image, "gray_r"), ("Gaussian-smoothed", smooth, "gray_r"),
          ("Sobel $F_x$ (47.1141a)", Fx, "RdBu_r"), ("Sobel $F_y$ (47.1141b)", Fy, "RdBu_r"),
          ("Sobel $F$ (47.1142)", edges, "magma"), ("Prewitt $F$", edges_prewitt, "magma"),
          (f"edges: Sobel $F$ > {threshold:.2f}", edges > threshold, "gray_r"),
          ("Sobel $F$ of the smoothed digit", masks.edge_image(smooth), "magma")]
for ax, (title, F, cmap) in zip(axes.ravel(), panels):
    F = np.asarray(F, dtype=float)
    lim = np.abs(F).max()
    ax.imshow(F, cmap=cmap, vmin=-lim if cmap == "RdBu_r" else 0, vmax=lim)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"Example 47.70 on a digit '{digits.target[digit_index]}' from sklearn's load_digits")
plt.show()

# %% [markdown]
# ## 9.3 An autoencoder from correlations and transposed correlations
#
# The network, with the maps each layer passes on:
#
# - `Correlation(16, kernel=3, stride=2, padding=1)` and tanh: $1 \times 8{\times}8 \to 16 \times 4{\times}4$,
#   the book's layer (47.1212) with a stride;
# - `Correlation(8, kernel=3, stride=2, padding=1)` and tanh: $\to 8 \times 2{\times}2$, the code of 32 numbers;
# - `TransposedCorrelation(16, kernel=3, stride=2, padding=1, output_padding=1)` and tanh:
#   $\to 16 \times 4{\times}4$, the operator (47.1257) read forward;
# - `TransposedCorrelation(1, kernel=3, stride=2, padding=1, output_padding=1)` and a sigmoid:
#   $\to 1 \times 8{\times}8$, back to the image;
# - `Flatten(order="C")`: $\to 64$, since `fit` trains vector outputs.
#
# The loss is the book's squared error $\lVert\gamma - y\rVert^2$ (47.1227), with the image itself as the
# target $\gamma$ (flattened in the same row-major order as the output), and `fit` takes mini-batches of four
# digits. The reference point is the **mean-image predictor**, which outputs the average training digit
# whatever it is shown: an autoencoder has learned something only if it beats that.

# %%
x_all = (digits.images / 16.0)[:, None]                     # (1797, 1, 8, 8), channels first
order = np.random.default_rng(0).permutation(len(x_all))
n_train, epochs = (500, 8) if FAST else (1400, 30)
x_train, x_test = x_all[order[:n_train]], x_all[order[1400:]]
targets = lambda x: x.reshape(len(x), -1)                   # noqa: E731  row-major, as Flatten(order="C")

net = pn.Network((8, 8), 1, [
    L.Correlation(16, kernel=3, stride=2, padding=1, bias="tied"), L.Activation("tanh"),
    L.Correlation(8, kernel=3, stride=2, padding=1, bias="tied"), L.Activation("tanh"),
    L.TransposedCorrelation(16, kernel=3, stride=2, padding=1, output_padding=1), L.Activation("tanh"),
    L.TransposedCorrelation(1, kernel=3, stride=2, padding=1, output_padding=1), L.Activation("sigmoid"),
    L.Flatten(order="C")], rng=0)
print(net)

baseline = ((targets(x_test) - targets(x_train).mean(axis=0)) ** 2).sum(axis=1).mean()
history = pn.fit(net, x_train, targets(x_train), epochs=epochs, batch_size=4, learning_rate=0.05, rng=0,
                 progress=False, validation=(x_test, targets(x_test)))
print("training loss per epoch:", np.round(history.loss, 3))
print("held-out loss per epoch:", np.round(history.val_loss, 3))
print(f"mean-image predictor on the held-out digits: {baseline:.3f}; autoencoder: {history.val_loss[-1]:.3f}")
assert history.loss[-1] < 0.5 * history.loss[0]                       # the loss falls
assert history.val_loss[-1] < (0.5 if FAST else 0.1) * baseline        # and generalises

# %%
recon = net.forward(x_test[:8]).reshape(-1, 8, 8)
fig = plt.figure(figsize=(13, 5.2), layout="constrained")
top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.1])
ax = top.subplots(1, 1)
ax.plot(range(1, epochs + 1), history.loss, "o-", label="training (per sample, during the epoch)")
ax.plot(range(1, epochs + 1), history.val_loss, "s-", label="held-out digits (after the epoch)")
ax.axhline(baseline, color="gray", ls="--", label="mean-image predictor")
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel(r"$\|\gamma - y\|^2$ per digit")
ax.legend(fontsize=9)
axes = bottom.subplots(2, 8)
for i in range(8):
    axes[0, i].imshow(x_test[i, 0], cmap="gray_r", vmin=0, vmax=1)
    axes[1, i].imshow(recon[i], cmap="gray_r", vmin=0, vmax=1)
    for a in axes[:, i]:
        a.set_xticks([])
        a.set_yticks([])
axes[0, 0].set_ylabel("digit")
axes[1, 0].set_ylabel("rebuilt")
bottom.suptitle("held-out digits and their reconstructions from 32 numbers")
plt.show()

# %% [markdown]
# ## 9.4 The decoder is $V^\mathsf{T}$ read forward
#
# The last layer's forward pass is `V.scatter_add` of one product per kernel offset, never a matrix. Its
# explicit operator, `layer.operator(p)`, is the matrix the book writes: block $(i, j)$ is
# $(V^{(j,i)})^\mathsf{T}$ with $V^{(j,i)}$ built by (47.1257) from the trained mask between maps $i$ and $j$.
# The transposed operator applied to the stacked input maps $\operatorname{col}\{y^{(1)}, \dots, y^{(16)}\}$,
# minus the bias, is the layer's output: the decoder really is the backward operator of a correlation,
# applied in the forward direction. When PyTorch is installed, `net.to_torch()` gives the same reconstructions
# through `torch.nn.ConvTranspose2d`.

# %%
deconv = net.layers[6]
p = net.layer_parameters(deconv.name)
y = np.random.default_rng(1).standard_normal((3, deconv.in_maps) + deconv.in_shape)   # any 16 maps of 4 x 4
out, _ = deconv.forward(p, to_stack(y))
J_T = deconv.operator(p)                                     # D_in P x D M = 256 x 64, sparse
print(f"operator: {J_T.shape}, {J_T.nnz} nonzeros; V of the output map: {deconv.V.P * deconv.V.S} x {deconv.V.M}")
for n in range(len(y)):
    y_col = y[n].transpose(0, 2, 1).reshape(-1)              # col{y^(1), ..., y^(16)}, each map column-stacked
    x_col = J_T.T @ y_col - p["Theta"][0, 0]
    assert np.allclose(x_col, out[:, n, 0], rtol=1e-12, atol=1e-12)
print("forward pass == (operator)^T col{y} - theta for every sample")

try:
    import torch
except ImportError:
    torch = None
if torch is not None:
    module = net.to_torch()
    print(module)
    torch_recon = module(torch.from_numpy(x_test[:8])).detach().numpy().reshape(-1, 8, 8)
    print("torch twin, max |difference|:", np.abs(torch_recon - recon).max())
    assert np.allclose(torch_recon, recon, rtol=1e-12, atol=1e-12)
