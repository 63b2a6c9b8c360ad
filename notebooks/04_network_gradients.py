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
# # 4. Gradients of a whole network, four ways
#
# Section 47.25.6 of the book ([002] in `SOURCES.md`) ends with a listing (47.1275) that
# computes every gradient of a CNN with the operators of notebooks 1–3: sensitivities $\delta$ flow back
# through the feedforward part (47.1233–47.1234), into the last correlation layer by
# $\operatorname{permute}^\#(\operatorname{upv}(\cdot))$ (47.1245), through earlier layers with
# $V^{(d,d',c+1)}$ (47.1262), and become weight and bias gradients (47.1269–47.1274).
#
# Here a small CNN with an RGB input ($D_0 = 3$, Example 47.71) is differentiated four independent ways, and
# the results are compared in one table:
#
# | source | how |
# |---|---|
# | `engine='kronecker'` | the listing 47.1275 literally, with the sparse Kronecker-built $V^{(d,d',c+1)}$ |
# | `engine='fast'` | the same formulas as batched contractions (gathers, small GEMMs, one scatter-add) |
# | `partitionnet.reference` | a dense model written without $V$ or $T$, differentiated by central differences |
# | PyTorch | `net.to_torch()` and autograd (skipped if PyTorch is not installed) |
#
# Then the sensitivities $\delta^{(d,C)}$ (47.1245) and $\delta^{(d,c)}$ (47.1262) are recomputed by hand from
# the library's operators, shown as maps, and turned back into the weight gradients (47.1269–47.1274).
#
# *Running time:* a few seconds; no slow setting, so `PARTITIONNET_NOTEBOOK_FAST` (set by the tests) changes
# nothing here.

# %%
import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from partitionnet import ConvLayer, ConvNet, activations, reference, unvec

try:
    import torch
except ImportError:          # PyTorch is an optional extra: pip install 'partitionnet[torch]'
    torch = None

# %% [markdown]
# ## 4.1 The network
#
# An $8 \times 8$ RGB input; layer 1: four maps, $3 \times 3$ 'same' correlation, $\tanh$, $2 \times 2$ **max**
# pooling; layer 2: three maps, $3 \times 3$ 'same', $\tanh$, $2 \times 2$ **mean** pooling; then a feedforward
# part $12 \to 5 \to 3$ with a sigmoid output and the book's squared loss $\lVert\gamma - y\rVert^2$ (47.1227).
# The parameters carry the book's names and shapes: $W_c$ is $S_c D_{c-1} \times D_c$ and $\Theta_c$ is
# $D_{c-1} \times D_c$ (47.1224). The targets $\gamma_n$ are random numbers in $(0, 1)$, and the inputs are
# random, so no two entries of a pooling window tie and the max cannot switch under a finite-difference step.

# %%
net = ConvNet((8, 8), 3,
              [ConvLayer(4, kernel=3, padding="same", pooling="max", window=2),
               ConvLayer(3, kernel=3, padding="same", pooling="mean", window=2)],
              [5, 3], activation="tanh", output="sigmoid", loss="squared", rng=0)
print(net)
for name, shape in net.parameter_shapes().items():
    print(f"  {name:<14} {shape}")

rng = np.random.default_rng(1)
N = 4
x = rng.standard_normal((N, 3, 8, 8))          # batch-first, channels-first: (N, D_0, rows, cols)
gamma = rng.uniform(0.1, 0.9, size=(N, 3))
print("loss =", net.loss(x, gamma))

# %% [markdown]
# ## 4.2 Four gradients and their largest differences
#
# Each column of the table is $\max\lvert g - g_\text{fast}\rvert / \max\lvert g_\text{fast}\rvert$ for one
# parameter. The two engines share only the feedforward part of the backward pass, yet agree to rounding
# error; the finite differences agree to their own truncation error ($\sim 10^{-9}$ with a step of
# $10^{-6}$); PyTorch, which computes the same function from `conv2d`, pooling and autograd, agrees to
# rounding error as well.

# %%
grads = {
    "kronecker": net.gradients(x, gamma, engine="kronecker"),
    "fast": net.gradients(x, gamma, engine="fast"),
    "finite differences": reference.numerical_gradients(net, x, gamma, eps=1e-6),
}
assert np.allclose(reference.forward(net, x), net.forward(x), rtol=1e-12, atol=1e-14)

if torch is not None:
    from partitionnet.torch_bridge import gradients_from_torch, torch_loss

    module = net.to_torch()
    out = module(torch.from_numpy(x))
    assert np.allclose(out.detach().numpy(), net.forward(x), rtol=1e-12, atol=1e-14)
    torch_loss(net, out, torch.from_numpy(gamma)).backward()
    grads["PyTorch autograd"] = gradients_from_torch(net, module)
else:
    print("PyTorch is not installed: its column is left out")

def rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()

others = [k for k in grads if k != "fast"]
table = {k: {p: rel(grads[k][p], grads["fast"][p]) for p in grads["fast"]} for k in others}
lines = ["| parameter | shape | " + " | ".join(f"{k} vs fast" for k in others) + " |",
         "|---|---|" + "---|" * len(others)]
for p, g in grads["fast"].items():
    lines.append(f"| `{p}` | {g.shape} | " + " | ".join(f"{table[k][p]:.1e}" for k in others) + " |")
display(Markdown("\n".join(lines)))

tolerance = {"kronecker": 1e-10, "finite differences": 1e-6, "PyTorch autograd": 1e-10}
for k in others:
    worst = max(table[k].values())
    print(f"largest relative difference, {k} vs fast: {worst:.1e}  (tolerance {tolerance[k]:.0e})")
    assert worst < tolerance[k], k

# %% [markdown]
# ## 4.3 The sensitivities, by hand (47.1233–47.1262)
#
# `net.sensitivities(x, gamma)` returns every $\delta$ as a map; here we rebuild them from the listing instead,
# to see each operator at work. The forward pass keeps what the backward pass needs in
# `net.cache` (47.1216): pre-activations `z_conv[c-1]` indexed `[position, sample, map]`, the pooling
# gradient vectors `g[c-1]` (columns `n*D_c + d`), the patch arrays `H[c-1]` indexed `[s, p, n, j]`, and the
# feedforward `z_dense`, `y_dense`. With these and the public operators we can follow the listing line by
# line:
#
# * $\delta_L = 2(y - \gamma) \odot f'(z_L)$ (47.1233) and $\delta_2 = f'(z_2) \odot (W_2^\mathsf{T}\delta_3)$
#   (47.1234);
# * last correlation layer: $\delta^{(d,C)} = f'(z^{(d,C)}) \odot
#   \operatorname{permute}^\#\bigl(\operatorname{upv}((W_1^{(d)})^\mathsf{T}\delta_2)\bigr)$ (47.1245), where
#   $W_1^{(d)}$ are the $P'_C$ columns of $W_1$ that read map $d$ (47.1220);
# * earlier layers: $\delta^{(d,c)} = \sum_{d'} f'(z^{(d,c)}) \odot
#   \operatorname{permute}^\#\bigl(\operatorname{upv}(V^{(d,d',c+1)}\delta^{(d',c+1)})\bigr)$ (47.1262), with the
#   operator from `net.backprop_operator(c, d, d')`.

# %%
f_prime = activations.get("tanh")[1]           # (f, f') pairs by name
net.forward(x)
tr = net.cache
par = net.parameters()
gam = gamma.T                                   # samples as columns, (Q, N)

y_out = tr.y_dense[-1]
delta = {"L": 2 * (y_out - gam) * y_out * (1 - y_out)}                     # (47.1233), sigmoid' = y(1 - y)
delta[2] = f_prime(tr.z_dense[0]) * (par["dense2.W"].T @ delta["L"])       # (47.1234), l = 2

C = net.C
last = net.conv[C - 1]
g_last = tr.g[C - 1].reshape(-1, N, last.maps)
sens = {C: np.zeros((last.P, N, last.maps))}                                # delta^(d,C), [p, n, d]
for d in range(last.maps):
    W1_d = par["dense1.W"][:, d * last.P_out:(d + 1) * last.P_out]        # W_1^(d)  (47.1220)
    up = last.pooling.permute_adjoint(last.pooling.upv(W1_d.T @ delta[2], g_last[:, :, d]))
    sens[C][:, :, d] = f_prime(tr.z_conv[C - 1][:, :, d]) * up             # (47.1245)

for c in range(C - 1, 0, -1):
    here, nxt = net.conv[c - 1], net.conv[c]
    g_here = tr.g[c - 1].reshape(-1, N, here.maps)
    sens[c] = np.zeros((here.P, N, here.maps))
    for d in range(here.maps):
        for dp in range(nxt.maps):
            b = net.backprop_operator(c, d + 1, dp + 1) @ sens[c + 1][:, :, dp]        # (47.1258)
            up = here.pooling.permute_adjoint(here.pooling.upv(b, g_here[:, :, d]))
            sens[c][:, :, d] += f_prime(tr.z_conv[c - 1][:, :, d]) * up               # (47.1262)
print({c: s.shape for c, s in sens.items()})

# %% [markdown]
# If these are the right sensitivities, they must give back the engines' gradients:
# $\partial/\partial W^{(d,c)} = \sum_n H_{n,c-1}\,\delta_n^{(d,c)}$ (47.1269, i.e. 47.1271 with the block
# diagonal $\Delta_{n,c}$), where $H_{n,c-1}$ stacks the patch matrices of all input maps (47.1225), and
# $\partial/\partial\theta^{(d,c)}(j) = -\mathbb{1}^\mathsf{T}\delta_n^{(d,c)}$ summed over samples (47.1272–47.1274).

# %%
for c in range(1, C + 1):
    H = tr.H[c - 1]                                  # [s, p, n, j]
    S_c, P_c, _, D_in = H.shape
    dW = sum(H[:, :, n, :].transpose(2, 0, 1).reshape(D_in * S_c, P_c) @ sens[c][:, n, :]   # H_{n,c-1} delta_n
             for n in range(N))                                                             # (47.1269)
    dTheta = -np.ones((D_in, 1)) * sens[c].sum(axis=(0, 1))                                 # (47.1274)
    err_W = rel(dW, grads["fast"][f"conv{c}.W"])
    err_T = rel(dTheta, grads["fast"][f"conv{c}.Theta"])
    print(f"layer {c}: dW_c from the hand-made deltas vs engine: {err_W:.1e};  dTheta_c: {err_T:.1e}")
    assert err_W < 1e-12 and err_T < 1e-12
    # ... and they are the library's own sensitivities, re-laid as (N, D_c, *map) arrays
    public = net.sensitivities(x, gamma)[f"conv{c}"]
    shape = net.conv[c - 1].partition.output_shape
    for d in range(net.conv[c - 1].maps):
        assert np.allclose(public[:, d], [unvec(sens[c][:, k, d], shape) for k in range(N)], atol=1e-14)

# %% [markdown]
# ### The sensitivities as maps
#
# For the first sample: the four $8 \times 8$ maps $\delta^{(d,1)}$ of layer 1 and the three $4 \times 4$ maps
# $\delta^{(d,2)}$ of layer 2 (un-vec'ed by stacking columns), with the RGB input for reference. Under max
# pooling only the maximiser of each $2 \times 2$ window receives a sensitivity ($g = e_{p^o}$), so
# $\delta^{(d,1)}$ is zero in three of every four entries; under mean pooling every entry of a window gets the
# same share ($g = \tfrac14 \mathbb{1}$), scaled by $f'$.

# %%
n = 0
fig, axes = plt.subplots(2, 4, figsize=(14, 6.8), layout="constrained")
for row, c in enumerate((1, 2)):
    shape = net.conv[c - 1].partition.output_shape
    vmax = np.abs(sens[c][:, n, :]).max()
    for d in range(net.conv[c - 1].maps):
        ax = axes[row, d]
        im = ax.imshow(unvec(sens[c][:, n, d], shape), cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(f"delta^({d + 1},{c})  ({'47.1262' if c < C else '47.1245'})", fontsize=10)
        ax.set_xticks(range(shape[1]))
        ax.set_yticks(range(shape[0]))
        ax.set_xlabel("column")
        ax.set_ylabel("row")
    fig.colorbar(im, ax=axes[row, :], label=f"sensitivity, layer {c}", shrink=0.9)

rgb = x[n].transpose(1, 2, 0)
axes[1, 3].imshow((rgb - rgb.min()) / (rgb.max() - rgb.min()))
axes[1, 3].set_title("input sample (RGB, rescaled)", fontsize=10)
axes[1, 3].set_xlabel("column")
axes[1, 3].set_ylabel("row")
fig.suptitle("Sensitivities of the two correlation layers for sample 0 (red > 0 > blue)")
plt.show()

nonzero_per_window = (unvec(sens[1][:, n, 0], (8, 8)) != 0).reshape(4, 2, 4, 2).sum(axis=(1, 3))
assert nonzero_per_window.max() <= 1, "max pooling passes a sensitivity to one entry per window"

# %% [markdown]
# **What we checked.** On a two-layer RGB network with max and mean pooling, the literal Kronecker engine, the
# fast engine, a dense finite-difference model and PyTorch autograd give the same gradients (to $10^{-10}$,
# and to $10^{-6}$ for finite differences); the sensitivities of (47.1245) and (47.1262), rebuilt from the
# library's operators, reproduce the weight and bias gradients of (47.1269)–(47.1274).
