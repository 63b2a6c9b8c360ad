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
# # 1. Partition matrices: correlation as sparse matrix algebra
#
# Section 47.25 of the book ([002] in `SOURCES.md`) rewrites a convolutional layer
# without a single convolution sign. A long input vector $h$ (size $M$) is cut into $P$ subvectors $h_p$ of
# size $S$, and the cutting is one sparse 0/1 matrix, the **partition matrix** $V$ of size $PS \times M$:
# $\operatorname{col}\{h_p\} = V h$ (47.1152). Everything a correlation layer does afterwards is an inner
# product of each $h_p$ with the same mask $w$.
#
# This notebook builds $V$ with `partitionnet.Partition` and checks it against the book and against
# `scipy.signal`:
#
# 1. the book's example (47.1149), its membership matrix (47.1151) and its rows as basis vectors (47.1153),
#    typed exactly as printed with `one_based=True`;
# 2. sliding windows over an image, with stride and zero padding, and a sparsity plot of $V$;
# 3. $H^\mathsf{T} w$ against `scipy.signal.correlate`, and with the flipped mask $W^\#$ against
#    `scipy.signal.convolve` (47.1133, 47.1136–47.1139);
# 4. the convolution chapter's Eq. 8.12 derived symbolically, and a small $V$ printed as LaTeX.
#
# Conventions (as everywhere in the library): `vec` stacks **columns**, Python indices are 0-based unless a
# constructor is told `one_based=True`, and $V$ is *patch-major*: rows $pS, \dots, pS+S-1$ hold $h_p$.
#
# *Running time:* a few seconds; this notebook has no slow setting, so the environment variable
# `PARTITIONNET_NOTEBOOK_FAST` (which the test suite sets) changes nothing here.

# %%
import numpy as np
import scipy.signal
import scipy.sparse as sp
import sympy
import matplotlib.pyplot as plt
from IPython.display import Math, display

from partitionnet import Partition, unvec, vec
from partitionnet.show import grid

np.set_printoptions(linewidth=120)

# %% [markdown]
# ## 1.1 The book's example (47.1149)
#
# Figure 47.87 of the book partitions $h \in \mathbb{R}^6$ into $P = 4$ overlapping subvectors of size
# $S = 3$: $h_1 = (h(1), h(4), h(6))$, $h_2 = (h(2), h(5), h(4))$, $h_3 = (h(3), h(6), h(1))$,
# $h_4 = (h(2), h(4), h(1))$. `Partition.from_indices` takes exactly these lists; with `one_based=True` they
# are typed as printed. Applying $V$ to $h = (1, 2, \dots, 6)$ lists the indices themselves, which is the
# left-hand side of (47.1149).

# %%
V = Partition.from_indices([[1, 4, 6], [2, 5, 4], [3, 6, 1], [2, 4, 1]], 6, one_based=True)
print(V, "\n")
print(grid(V.matrix(), block_rows=V.S))       # '.' is a zero; a rule separates the subvectors

h = np.arange(1, 7)
print("\nV h =", V.apply(h).astype(int))

# %% [markdown]
# The matrix printed in (47.1149), typed row by row, is the library's $V$, and $Vh$ is the printed
# left-hand side:

# %%
V_printed = np.array([
    [1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1],
    [0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0], [0, 0, 0, 1, 0, 0],
    [0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0],
    [0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0],
])
assert np.array_equal(V.matrix().toarray(), V_printed), "V differs from (47.1149)"
assert V.apply(h).astype(int).tolist() == [1, 4, 6, 2, 5, 4, 3, 6, 1, 2, 4, 1]
print("V equals the matrix printed in (47.1149).")

# %% [markdown]
# ### Membership matrix (47.1150–47.1151) and rows as basis vectors (47.1153)
#
# Summing every block of $S$ rows, i.e. multiplying by $I_P \otimes \mathbb{1}_S^\mathsf{T}$ (47.1150), gives a
# $P \times M$ matrix whose row $p$ marks the entries of $h$ that make up $h_p$ (47.1151). We build the
# Kronecker factor with `scipy.sparse.kron` and compare with both the printed matrix and
# `Partition.membership()`. Each row of $V$ is a basis row vector $e_k^\mathsf{T}$, in the order the
# subvectors list their entries (47.1153); `index_lists(one_based=True)` reads these $k$ back.

# %%
ones_kron = sp.kron(sp.eye_array(V.P), np.ones((1, V.S)), format="csr")     # I_P kron 1_S^T  (47.1150)
membership = (ones_kron @ V.matrix()).toarray().astype(int)

printed_1151 = np.array([[1, 0, 0, 1, 0, 1],
                         [0, 1, 0, 1, 1, 0],
                         [1, 0, 1, 0, 0, 1],
                         [1, 1, 0, 1, 0, 0]])
print(membership)
assert np.array_equal(membership, printed_1151), "(I kron 1^T) V differs from (47.1151)"
assert np.array_equal(V.membership().toarray(), printed_1151)

rows = [f"e_{k}^T" for sub in V.index_lists(one_based=True) for k in sub]
print("rows of V (47.1153):", " ".join(rows))

# %% [markdown]
# ### Patches and a feature map (47.1155–47.1158)
#
# Placing the subvectors side by side gives $H = [h_1 \; \cdots \; h_P]$ ($S \times P$, 47.1157). One
# neuron per subvector, all sharing the mask $w$ and the bias $\theta$, produce the feature map
# $y = f(H^\mathsf{T} w - \theta \mathbb{1})$ (47.1158): $S + 1$ parameters for $P(S+1)$ connections
# (47.1155).

# %%
H = V.patches(h.astype(float))                 # (S, P): column p is h_p
w = np.array([0.5, -1.0, 2.0])
theta = 0.25
y = np.tanh(H.T @ w - theta)                   # (47.1158) with f = tanh
print("H =\n", H, "\ny =", y.round(4))
assert np.allclose(y, [np.tanh(hp @ w - theta) for hp in H.T])   # (47.1155), one neuron at a time

# %% [markdown]
# ## 1.2 Sliding windows: stride, padding and the sparsity of V
#
# For images the subvectors come from sliding a $k_1 \times k_2$ window over the map. The window at output
# position $o$ starts at $o \cdot \text{stride} - \text{padding}$ on each axis; positions and the entries
# inside each window are both numbered by stacking columns. A window entry that falls in the zero padding is
# a **row of zeros** in $V$, the book's "fictitious zero values" (47.1129). Along each axis the number of
# positions is the floor formula of the convolution chapter (Eq. 8.18–8.19) and of the slides,
#
# $$n_\text{out} = \left\lfloor \frac{n + 2\,\text{pad} - k}{\text{stride}} \right\rfloor + 1 .$$

# %%
Vs = Partition.sliding_window((5, 6), 3, stride=2, padding=1)
print(Vs)
print("output map:", Vs.output_shape)
for p, entries in enumerate(Vs.index_lists()[:3]):
    print(f"window {p}: entries {entries}   (None = padding)")

# The floor formula, checked over a grid of 1-D cases.
for n in (4, 5, 7, 10):
    for k in (1, 2, 3):
        for s in (1, 2, 3):
            for pad in (0, 1, 2):
                got = Partition.sliding_window((n,), k, stride=s, padding=pad).output_shape[0]
                assert got == (n + 2 * pad - k) // s + 1, (n, k, s, pad)

# Every padded entry is a zero row: membership row sums are S minus the padded entries of that window.
padded = np.array([[e is None for e in row] for row in Vs.index_lists()]).sum(axis=1)
assert np.array_equal(Vs.membership().sum(axis=1), Vs.S - padded)
print("output sizes follow the floor formula; padded entries are zero rows of V")

# %% [markdown]
# The plot shows where the ones of $V$ sit for a $6 \times 6$ map and a $3 \times 3$ window, with 'same'
# padding and stride 1 (left) and with padding 1 and stride 2 (middle): each block of $S = 9$ rows is one
# window; the missing ones inside a block are padded entries. On the right, the first four windows of the
# strided partition drawn on the zero-padded map: output positions, like map entries, are numbered down the
# columns first, because `vec` stacks columns.

# %%
from matplotlib.patches import Rectangle

V_same = Partition.sliding_window((6, 6), 3, padding="same")
V_stride = Partition.sliding_window((6, 6), 3, stride=2, padding=1)

fig, axes = plt.subplots(1, 3, figsize=(14, 5), gridspec_kw={"width_ratios": [1, 1, 1.1]})
for ax, Vx, title in ((axes[0], V_same, "'same', stride 1"), (axes[1], V_stride, "padding 1, stride 2")):
    ax.spy(Vx.matrix(), markersize=1.5, aspect="auto", color="tab:blue",
           label=f"stored 1 (nnz = {Vx.matrix().nnz})")
    ax.set_title(f"V, 6x6 map, 3x3 window,\n{title}: shape {Vx.matrix().shape}", fontsize=10)
    ax.set_xlabel("entry m of vec(map)")
    ax.set_ylabel("row p*S + s of V")
    ax.legend(loc="upper right", fontsize=8)

# The zero-padded map: padding ring in grey, then the windows as rectangles.
pad, stride, k = 1, 2, 3
canvas = np.ones((6 + 2 * pad, 6 + 2 * pad))
canvas[pad:-pad, pad:-pad] = 0
ax = axes[2]
ax.imshow(canvas, cmap="Greys", vmin=0, vmax=4)
colors = plt.get_cmap("tab10")
for p in range(4):
    r, c = np.unravel_index(p, V_stride.output_shape, order="F")   # column-stacked output positions
    shift = 0.08 * p
    ax.add_patch(Rectangle((c * stride - 0.5 + shift, r * stride - 0.5 + shift), k - 2 * shift, k - 2 * shift,
                           fill=False, lw=2.5, edgecolor=colors(p), label=f"window p = {p}"))
ax.add_patch(Rectangle((-0.5, -0.5), 0, 0, color="lightgrey", label="zero padding"))
ax.set_title("first windows on the padded map\n(stride 2, padding 1)", fontsize=10)
ax.set_xlabel("column (padded coordinates)")
ax.set_ylabel("row (padded coordinates)")
ax.legend(loc="lower right", fontsize=8)
fig.tight_layout()
plt.show()

on_map = [sum(e is not None for e in row) for row in V_stride.index_lists()[:4]]
assert on_map == [4, 6, 6, 6], on_map          # entries of windows 0-3 that lie on the map

# %% [markdown]
# Window 0 sits on the corner of the padding ring, so only four of its nine entries lie on the map; windows 1–3
# each lose one row or one column (three entries) to the padding. Those entries are the zero rows of $V$.
#
# ## 1.3 $H^\mathsf{T} w$ is a correlation (47.1133) — and a convolution with the flipped mask (47.1139)
#
# With $h = \operatorname{vec}(\mathcal{I})$ and $w = \operatorname{vec}(\mathcal{W})$, entry $p$ of
# $H^\mathsf{T} w$ is $\sum_{k,\ell} \mathcal{I}(r+k, c+\ell)\,\mathcal{W}(k, \ell)$: a **correlation**
# (47.1133), which is exactly what `scipy.signal.correlate` computes. The three padding modes of the
# library match scipy's three modes.

# %%
rng = np.random.default_rng(0)
image = rng.standard_normal((7, 9))
W = rng.standard_normal((3, 3))

maps = {}
for mode in ("valid", "same", "full"):
    Vm = Partition.sliding_window(image.shape, W.shape, padding=mode)
    F = unvec(Vm.patches(vec(image)).T @ vec(W), Vm.output_shape)     # H^T w, back to a map
    ref = scipy.signal.correlate(image, W, mode=mode)
    err = np.abs(F - ref).max()
    print(f"{mode:>5}: V is {Vm.matrix().shape}, map {F.shape}, max |H^T w - correlate| = {err:.1e}")
    assert F.shape == ref.shape and err < 1e-12
    maps[mode] = F

# A stride keeps every s-th output of the unit-stride correlation.
V2 = Partition.sliding_window(image.shape, W.shape, stride=2)
F2 = unvec(V2.patches(vec(image)).T @ vec(W), V2.output_shape)
assert np.allclose(F2, maps["valid"][::2, ::2])
print("stride 2 = every second entry of the 'valid' correlation")

# %% [markdown]
# The flipped mask $W^\#(k,\ell) = W(-k,-\ell)$ (47.1136) is $\tilde I W \tilde I$ with the reversed identity
# $\tilde I$ (47.1137–47.1138); on the vectors it is $w^\# = \tilde I w$, a reversal of $\operatorname{vec}(W)$.
# Rewriting the correlation sum with $k' = r + k$ turns it into a convolution with $W^\#$ (47.1139), so
# `scipy.signal.convolve(image, W#)` must give the same three maps.

# %%
I_rev = np.fliplr(np.eye(3))                          # (47.1137)
W_sharp = I_rev @ W @ I_rev                           # (47.1138)
assert np.array_equal(W_sharp, W[::-1, ::-1])
assert np.array_equal(vec(W_sharp), np.fliplr(np.eye(9)) @ vec(W))    # w# = I~ w
for mode, F in maps.items():
    err = np.abs(F - scipy.signal.convolve(image, W_sharp, mode=mode)).max()
    print(f"{mode:>5}: max |H^T w - convolve(image, W#)| = {err:.1e}")
    assert err < 1e-12


# %% [markdown]
# ## 1.4 Symbolic: the convolution chapter's Eq. 8.12, and V in LaTeX
#
# The convolution chapter (`001_1373e144d84fddfa.txt`, Eq. 8.12) writes a $2 \times 2$ mask sliding over a
# $3 \times 3$ image as a $4 \times 9$ matrix acting on $\operatorname{vec}(P)$. `Partition.to_sympy()` gives
# $V$ with exact 0/1 entries, so we can push symbols through it: form $\operatorname{col}\{h_p\} = V
# \operatorname{vec}(P)$, take $z = H^\mathsf{T} w$, and differentiate $z$ with respect to
# $\operatorname{vec}(P)$. The Jacobian is the matrix printed in Eq. 8.12.

# %%
def svec(M):
    # column stacking of a SymPy matrix (the convention of partitionnet.vec)
    return M.T.reshape(M.rows * M.cols, 1)

Pimg = sympy.Matrix(3, 3, lambda i, j: sympy.Symbol(f"p_{i + 1}{j + 1}"))
Wsym = sympy.Matrix(2, 2, lambda i, j: sympy.Symbol(f"w_{i + 1}{j + 1}"))
V812 = Partition.sliding_window((3, 3), (2, 2))

stacked = V812.to_sympy() * svec(Pimg)                # col{h_p} = V vec(P)   (47.1152)
Ht = stacked.reshape(V812.P, V812.S)                  # row p is h_p^T, i.e. H^T
z = Ht * svec(Wsym)                                   # H^T w                 (47.1158)
A = z.jacobian(svec(Pimg))

w11, w21, w12, w22 = svec(Wsym)
printed_812 = sympy.Matrix([
    [w11, w21, 0, w12, w22, 0, 0, 0, 0],
    [0, w11, w21, 0, w12, w22, 0, 0, 0],
    [0, 0, 0, w11, w21, 0, w12, w22, 0],
    [0, 0, 0, 0, w11, w21, 0, w12, w22],
])
display(Math(r"\frac{\partial z}{\partial\,\mathrm{vec}(P)} = " + sympy.latex(A)))
assert (A - printed_812).is_zero_matrix, "Jacobian differs from Eq. 8.12"
print("H^T w reproduces Eq. 8.12 exactly")

# %% [markdown]
# And the book's $V$ of (47.1149) itself, rendered from `to_sympy()`:

# %%
V_sym = V.to_sympy()
display(Math(r"V = " + sympy.latex(sympy.Matrix(V_sym))))
assert sympy.Matrix(V_sym) == sympy.Matrix(V_printed)

# %% [markdown]
# **What we checked.** The library's $V$, its membership matrix and its rows reproduce (47.1149),
# (47.1151) and (47.1153) exactly; sliding windows follow the floor formula and turn padding into zero
# rows; $H^\mathsf{T} w$ equals `scipy.signal.correlate` in all three modes, and `convolve` with the flipped
# mask (47.1136–47.1139); the symbolic Jacobian of $H^\mathsf{T} w$ is Eq. 8.12. Notebook 2 continues with
# pooling and the permutation $T$.
