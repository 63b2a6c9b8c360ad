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
# # 5. The partition algebra meets direct convolution
#
# The other sources describe the same layer in the language of signal processing: 'valid', 'same' and 'full'
# convolutions, flipped kernels, and the rule that backpropagation through a convolution is another
# convolution. This notebook puts those statements next to the partition matrix $V$ and checks each one with
# `scipy.signal`:
#
# 1. the three padding modes and the output-size formula (convolution chapter Eq. 8.14–8.19, slides);
# 2. the transpose of a 'valid' correlation is a 'full' convolution — the lecture notes'
#    (`003_30f1c8dcc4b3bb22.txt`) rule and Eq. 8.45 of the convolution chapter — and
#    $\partial E/\partial a = \operatorname{convn}(\operatorname{flipall}(x), \delta, \text{'valid'})$ with
#    Eq. 8.47–8.48;
# 3. the slides' sparse-versus-dense cost table (`004_c47ea8229b42086b.txt`: $320 \times 280$ input,
#    $2 \times 1$ kernel), recomputed from the real $V$;
# 4. a timing plot, measured here, of the partition operators and the two gradient engines against
#    `scipy.signal` and PyTorch over growing image sizes.
#
# *Fast mode:* with `PARTITIONNET_NOTEBOOK_FAST=1` (the test suite sets it) the timing plot stops at
# $64 \times 64$ images and repeats each measurement three times, so the notebook runs in a few seconds;
# without it the sizes go up to $256 \times 256$ with five repeats (about half a minute).

# %%
import os
import time

import numpy as np
import scipy.signal
import scipy.sparse as sp
import matplotlib.pyplot as plt
from matplotlib.ticker import NullLocator
from IPython.display import Markdown, display

from partitionnet import ConvLayer, ConvNet, Partition, unvec, vec
from partitionnet.derivations import registry

try:
    import torch
    import torch.nn.functional as F
except ImportError:          # PyTorch is an optional extra: pip install 'partitionnet[torch]'
    torch = None

FAST = os.environ.get("PARTITIONNET_NOTEBOOK_FAST", "0") == "1"
rng = np.random.default_rng(0)

# %% [markdown]
# ## 5.1 'valid', 'same', 'full' and the output size
#
# A $k$-tap window slid with stride $s$ over $n$ samples padded by $p$ zeros on each side fits
# $\lfloor (n + 2p - k)/s \rfloor + 1$ times. 'valid' is $p = 0$, 'same' is $p = (k-1)/2$ (odd $k$, unit stride,
# output as large as the input), 'full' is $p = k - 1$ (every partial overlap counts). The convolution
# chapter prints Eq. 8.18–8.19 without the floor, which only holds when the division is exact (another
# erratum: $n = 16$, $k = 3$, $p = 1$, $s = 2$ gives $8.5$ instead of $8$).

# %%
image = rng.standard_normal((9, 7))
kernel = rng.standard_normal((3, 5))
print(f"{'mode':<6}{'padding':>10}{'library':>12}{'scipy':>10}{'formula':>12}")
for mode in ("valid", "same", "full"):
    V = Partition.sliding_window(image.shape, kernel.shape, padding=mode)
    pad = V.geometry["padding"]
    formula = tuple((n + 2 * p - k) + 1 for n, p, k in zip(image.shape, pad, kernel.shape))
    ref = scipy.signal.correlate(image, kernel, mode=mode).shape
    print(f"{mode:<6}{str(pad):>10}{str(V.output_shape):>12}{str(ref):>10}{str(formula):>12}")
    assert V.output_shape == ref == formula

strided = Partition.sliding_window((16,), 3, stride=2, padding=1)
print("n=16, k=3, p=1, s=2 ->", strided.output_shape[0], "outputs; without the floor:", (16 + 2 - 3) / 2 + 1)
assert strided.output_shape[0] == (16 + 2 * 1 - 3) // 2 + 1 == 8

# %% [markdown]
# ## 5.2 Backpropagation through a correlation is a convolution
#
# Take one correlation layer $z = Ax$ with $z = \operatorname{correlate}(x, w, \text{'valid'})$. In partition
# form $A = (I_P \otimes w^\mathsf{T})V$, so an upstream sensitivity $\delta = \partial E/\partial z$ goes back
# to the input as
#
# $$\frac{\partial E}{\partial x} = A^\mathsf{T}\delta = V^\mathsf{T}(\delta \otimes w),$$
#
# a scatter-add of $\delta(p)\,w$ into window $p$ — "backpropagation is multiplication by the transpose"
# (the slides call it deconvolution). The sources state the same thing three more ways:
#
# * the lecture notes: for a 'valid' *convolution* $x * a$, the transpose is the 'full' convolution of
#   $\delta$ with the flipped kernel $a(-\cdot)$;
# * the convolution chapter, Eq. 8.45: $dA = \operatorname{rot180}(W) \circledast dZ$ with $dZ$ zero-padded
#   (8.38–8.44 use correlation, so this is a 'full' correlation with the rotated kernel);
# * in our correlation form: $A^\mathsf{T}\delta = \operatorname{convolve}(\delta, w, \text{'full'})$.
#
# We check all of them, plus the dot-product test $\langle Ax, \delta\rangle = \langle x, A^\mathsf{T}\delta\rangle$.

# %%
x = rng.standard_normal((8, 10))
W = rng.standard_normal((3, 3))
V = Partition.sliding_window(x.shape, W.shape)                       # 'valid'
z = unvec(V.patches(vec(x)).T @ vec(W), V.output_shape)             # z = A x = H^T w
assert np.allclose(z, scipy.signal.correlate(x, W, mode="valid"))

delta = rng.standard_normal(V.output_shape)                          # upstream dE/dz
dx = unvec(V.adjoint(np.kron(vec(delta), vec(W))), x.shape)         # A^T delta = V^T (delta kron w)

a = W[::-1, ::-1]                                                    # the lecture notes' kernel: x * a = correlate(x, W)
forms = {
    "convolve(delta, W, 'full')": scipy.signal.convolve(delta, W, mode="full"),
    "lecture notes: delta * a(-.) 'full'": scipy.signal.convolve(delta, a[::-1, ::-1], mode="full"),
    "Eq. 8.45: rot180(W) (*) pad(delta)": scipy.signal.correlate(np.pad(delta, 2), np.rot90(W, 2), mode="valid"),
}
for label, value in forms.items():
    err = np.abs(dx - value).max()
    print(f"V^T (delta kron w) vs {label:<38}: {err:.1e}")
    assert err < 1e-12

lhs, rhs = np.vdot(z, delta), np.vdot(x, dx)
print(f"<A x, delta> = {lhs:.12f}   <x, A^T delta> = {rhs:.12f}")
assert np.isclose(lhs, rhs, rtol=1e-12)

# %% [markdown]
# ### The weight gradient (47.1269, Eq. 8.47–8.48, lecture notes)
#
# Since $z = H^\mathsf{T} w$, the gradient with respect to the mask is $H\delta$ (47.1269): each kernel offset
# collects $\delta$ weighted by the inputs it saw. The convolution chapter writes this as the 'valid'
# correlation of the input with $dZ$ (Eq. 8.48). The lecture notes use the convolution form $x * a$ with
# $a = W^\#$ and get
# $\partial E/\partial a = \operatorname{convn}(\operatorname{flipall}(x), \delta, \text{'valid'})$.

# %%
dW = unvec(V.patches(vec(x)) @ vec(delta), W.shape)                  # H delta   (47.1269)
assert np.allclose(dW, scipy.signal.correlate(x, delta, mode="valid"))                 # Eq. 8.48
dA = dW[::-1, ::-1]                                                  # a = W#, so dE/da = flip(dE/dW)
assert np.allclose(dA, scipy.signal.convolve(x[::-1, ::-1], delta, mode="valid"))      # convn(flipall(x), delta, 'valid')
print("dE/dW = H delta = correlate(x, delta, 'valid');  dE/da = convolve(flipall(x), delta, 'valid')")

# %% [markdown]
# The derivation suite proves the same rules symbolically (any size, exactly) and checks them against
# `scipy.signal`; here are its checks for the lecture notes and for Eq. 8.45/8.48:

# %%
checks = registry.run_all(only="003") + registry.run_all(only="8.45") + registry.run_all(only="8.48")
checks = list({(c.equation, c.claim): c for c in checks}.values())
print(registry.format_table(checks))
assert checks and all(c.passed for c in checks)

# %% [markdown]
# ## 5.3 The slides' cost table, from the real V
#
# The slides compare three ways to apply a $2 \times 1$ edge kernel to a $320 \times 280$ image (output
# $319 \times 280$): direct convolution, a dense matrix and a sparse matrix. With the partition we can build the
# sparse matrix itself, $A = (I_P \otimes w^\mathsf{T})V$, and count: its stored entries, and the work of a
# sparse product (one multiply per stored entry and $\text{nnz} - P$ additions), against the dense matrix it
# replaces.

# %%
w_edge = np.array([1.0, -1.0])
V_big = Partition.sliding_window((320, 280), (2, 1))
A = (sp.kron(sp.eye_array(V_big.P), w_edge[None, :], format="csr") @ V_big.matrix()).tocsr()
P, M = A.shape
table = {
    "stored floats": (w_edge.size, P * M, A.nnz),
    "float muls or adds": (P * 3, 2 * P * M, A.nnz + (A.nnz - P)),
}
display(Markdown(
    f"output {V_big.output_shape[0]} x {V_big.output_shape[1]}, A is {P:,} x {M:,}\n\n"
    "| | convolution | dense matrix | sparse matrix |\n|---|---|---|---|\n"
    + "\n".join(f"| {k} | {a:,} | {b:,} | {c:,} |" for k, (a, b, c) in table.items())))

assert V_big.output_shape == (319, 280)
assert A.nnz == 2 * 319 * 280 == 178_640                        # sparse: stored floats
assert P * M == 319 * 280 * 320 * 280 > 8e9                     # dense: stored floats
assert A.nnz + (A.nnz - P) == 319 * 280 * 3 == 267_960          # sparse work = convolution work
assert 2 * P * M > 16e9

img = rng.standard_normal((320, 280))
assert np.allclose(unvec(A @ vec(img), V_big.output_shape),
                   scipy.signal.correlate(img, w_edge[:, None], mode="valid"))
checks = registry.run_all(only="004:cost table")
assert checks and all(c.passed for c in checks)

# %% [markdown]
# The sparse matrix stores exactly as many numbers as the output has, times the kernel size, and costs as many
# operations as the direct convolution; the dense matrix would hold more than eight billion numbers. That is
# why the library never densifies $V$.
#
# ## 5.4 Timing: partition operators and engines against scipy.signal and PyTorch
#
# Two measurements over growing square images ($n \times n$, float64, one thread for every method — NumPy's
# BLAS and PyTorch alike), each the best of a few repeats after a warm-up call:
#
# * **one correlation layer**, forward and backward: a batch of 8 single-map images, four $3 \times 3$ masks,
#   'same' padding; compute $z$, $\partial E/\partial x$ and $\partial E/\partial W$ for a given $\delta$.
#   *Partition*: `patches` (a gather), two `einsum`s and `adjoint` (a scatter-add). *scipy.signal*:
#   `correlate`/`convolve` per image and mask (the textbook rules above). *PyTorch*: `conv2d` with autograd.
# * **a whole network's gradients**: two 'same' $3 \times 3$ layers (4 and 8 maps) with $2 \times 2$ max pooling
#   and a dense output, batch 8: `net.gradients` with the 'fast' and the 'kronecker' engine, and PyTorch
#   autograd on `net.to_torch()`.
#
# The machines that run this are shared and noisy. (With two threads on a busy machine, PyTorch's thread pool
# can wait for a free core on every call — tens of milliseconds for a sub-millisecond convolution — hence the
# single thread.) Interference from other processes only ever *adds* time, so
# the best of a few repeats (as `timeit` reports) is the steadiest estimate of a method's own cost; even so,
# read the plot for its trends (how each method grows with $n$), not for the third digit. The careful
# measurements, medians of many repeats as ratios against PyTorch in the same run, live in `benchmarks/`.

# %%
import contextlib

try:
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None

def single_threaded():
    # one thread for BLAS (numpy) and for PyTorch: the same footing for every method
    if torch is not None:
        torch.set_num_threads(1)
    return threadpool_limits(limits=1) if threadpool_limits else contextlib.nullcontext()

sizes = [16, 32, 64] if FAST else [16, 32, 64, 128, 256]
repeats = 3 if FAST else 5
batch, maps = 8, 4

def best_time(fn):
    fn()                                             # warm-up (caches, first-call overheads)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)                                # best of `repeats`, as timeit does

def layer_partition(V, X, K, D):
    # X (M, N) images as columns, K (S, maps) masks, D (P, N, maps) upstream sensitivities
    H = V.patches(X)                                             # (S, P, N), 47.1157
    z = np.einsum("spn,sd->pnd", H, K)                           # H^T w for every mask
    dK = np.einsum("spn,pnd->sd", H, D)                          # H delta (47.1269)
    G = np.einsum("pnd,sd->psn", D, K).reshape(V.P * V.S, -1)    # col{sum_d delta_d(p) w_d}
    return z, V.adjoint(G), dK                                   # V^T G: the input gradient

def layer_scipy(imgs, kernels, deltas):
    z = np.array([[scipy.signal.correlate(im, k, mode="same") for k in kernels] for im in imgs])
    dx = np.array([sum(scipy.signal.convolve(dl, k, mode="same") for dl, k in zip(dls, kernels))
                   for dls in deltas])
    padded = [np.pad(im, 1) for im in imgs]
    dK = np.array([sum(scipy.signal.correlate(pm, dls[d], mode="valid") for pm, dls in zip(padded, deltas))
                   for d in range(len(kernels))])
    return z, dx, dK

def layer_torch(imgs_t, kernels_t, deltas_t):
    xt = imgs_t.clone().requires_grad_(True)
    kt = kernels_t.clone().requires_grad_(True)
    z = F.conv2d(xt, kt, padding=1)
    z.backward(deltas_t)
    return z, xt.grad, kt.grad


# %% [markdown]
# Each size: build the data, check that the three layer implementations agree, then time them and the
# gradients of the two-layer network.

# %%
results = {name: [] for name in ["partition (V, V^T)", "scipy.signal", "PyTorch conv2d",
                                 "engine 'fast'", "engine 'kronecker'", "PyTorch network"]}
with single_threaded():
    for n in sizes:
        imgs = rng.standard_normal((batch, n, n))
        kernels = rng.standard_normal((maps, 3, 3))
        deltas = rng.standard_normal((batch, maps, n, n))
        V = Partition.sliding_window((n, n), 3, padding="same")
        X = np.stack([vec(im) for im in imgs], axis=1)
        K = np.stack([vec(k) for k in kernels], axis=1)
        D = np.stack([np.stack([vec(dl) for dl in dls], axis=1) for dls in deltas], axis=1)   # (P, N, maps)

        # all three compute the same layer: check once per size
        z_p, dx_p, dK_p = layer_partition(V, X, K, D)
        z_s, dx_s, dK_s = layer_scipy(imgs, kernels, deltas)
        assert np.allclose(z_p, np.stack([[vec(z) for z in zs] for zs in z_s]).transpose(2, 0, 1))
        assert np.allclose(dx_p, np.stack([vec(d) for d in dx_s], axis=1))
        assert np.allclose(dK_p, np.stack([vec(k) for k in dK_s], axis=1))
        results["partition (V, V^T)"].append(best_time(lambda: layer_partition(V, X, K, D)))
        results["scipy.signal"].append(best_time(lambda: layer_scipy(imgs, kernels, deltas)))

        net = ConvNet((n, n), 1, [ConvLayer(4, kernel=3, padding="same", window=2),
                                  ConvLayer(8, kernel=3, padding="same", window=2)], [2], rng=0)
        xb = imgs[:, None]
        gb = rng.standard_normal((batch, 2))
        results["engine 'fast'"].append(best_time(lambda: net.gradients(xb, gb, engine="fast")))
        results["engine 'kronecker'"].append(best_time(lambda: net.gradients(xb, gb, engine="kronecker")))

        if torch is not None:
            imgs_t = torch.from_numpy(imgs[:, None].copy())
            kernels_t = torch.from_numpy(kernels[:, None].copy())
            deltas_t = torch.from_numpy(deltas.copy())
            z_t, dx_t, dK_t = layer_torch(imgs_t, kernels_t, deltas_t)
            assert np.allclose(z_t.detach().numpy(), z_s)
            assert np.allclose(dx_t.numpy()[:, 0], dx_s) and np.allclose(dK_t.numpy()[:, 0], dK_s)
            results["PyTorch conv2d"].append(best_time(lambda: layer_torch(imgs_t, kernels_t, deltas_t)))

            from partitionnet.torch_bridge import torch_loss
            module = net.to_torch()
            xt, gt = torch.from_numpy(xb), torch.from_numpy(gb)

            def torch_network():
                module.zero_grad()
                torch_loss(net, module(xt), gt).backward()
            results["PyTorch network"].append(best_time(torch_network))
        print(f"n = {n:>3}: " + ", ".join(f"{k} {v[-1] * 1e3:.2f} ms" for k, v in results.items() if v))

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharex=True)
panels = [
    (axes[0], ["partition (V, V^T)", "scipy.signal", "PyTorch conv2d"],
     f"one 3x3 'same' layer, {maps} masks, batch {batch}:\nforward + input and weight gradients"),
    (axes[1], ["engine 'fast'", "engine 'kronecker'", "PyTorch network"],
     f"gradients of a two-layer CNN (4 and 8 maps, max pooling), batch {batch}"),
]
markers = dict(zip(results, "osD^vx"))
for ax, names, title in panels:
    for name in names:
        if results[name]:
            ax.loglog(sizes, np.array(results[name]) * 1e3, marker=markers[name], label=name)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("image side n (n x n pixels)")
    ax.set_ylabel(f"time per call [ms] (best of {repeats})")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
fig.suptitle("Measured in this notebook" + (f" (fast mode: small sizes, {repeats} repeats)" if FAST else ""))
fig.tight_layout()
plt.show()

# %% [markdown]
# All methods grow roughly with the number of pixels $n^2$ once the images are large enough to hide the fixed
# cost of a call. The partition operators written plainly here (one gather, three `einsum`s, one scatter-add)
# land a few times above PyTorch's tuned convolution and below a Python loop of `scipy.signal` calls over
# images and masks. The 'fast' engine does the same algebra with the gather ordered kernel-offset first and
# one small matrix product per offset, which in our runs keeps a whole network's gradients close to PyTorch
# autograd. The 'kronecker' engine builds every $V^{(d,d',c+1)}$ and follows the per-sample listing of
# 47.1275 literally, so it pays for being literal — with the same numbers (notebook 4).
#
# **What we checked.** Output sizes follow the floor formula in all three modes; the input gradient
# $V^\mathsf{T}(\delta \otimes w)$ equals the 'full' convolution of the lecture notes and of Eq. 8.45, and the
# weight gradient $H\delta$ equals Eq. 8.48 and $\operatorname{convn}(\operatorname{flipall}(x), \delta,
# \text{'valid'})$; the slides' cost table is reproduced from the real sparse matrix; and the timed methods
# compute identical layers.
