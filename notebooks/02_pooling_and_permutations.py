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
# # 2. Pooling, gradient vectors, upsampling and the permutation T
#
# After a correlation layer, pooling shrinks each feature map $y$ (size $P$) to $t$ (size $P'$) by applying one
# scalar function to each region $\Omega_{p'}$ of $y$ (47.1187). The regions never overlap, and that one
# assumption is what makes the backward pass simple. Section 47.25.3 of the book
# ([002] in `SOURCES.md`) needs three pieces, all in `partitionnet.Pooling`:
#
# * the **gradient vector** $g_{p'} = \partial t(p') / \partial y(\Omega_{p'})$ of each region (Table 47.14,
#   47.1196);
# * **upsampling** $\operatorname{upv}(v) = \operatorname{col}\{v(p')\, g_{p'}\}$, which spreads one number per
#   region over the region's entries (47.1197–47.1200);
# * the **permutation** $T$ that lists the entries region after region (47.1201–47.1203), with
#   $\operatorname{permute}(y) = Ty$ and $\operatorname{permute}^\#(y_o) = T^\mathsf{T} y_o$ (47.1202, 47.1204).
#
# Put together, the sensitivity of $y$ for an upstream sensitivity $v$ of $t$ is
# $\operatorname{permute}^\#(\operatorname{upv}(v))$ — the building block of (47.1245) and (47.1262).
#
# *Running time:* a few seconds; no slow setting, so `PARTITIONNET_NOTEBOOK_FAST` (set by the tests) changes
# nothing here.

# %%
import numpy as np
import matplotlib.pyplot as plt
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch, Rectangle

from partitionnet import Pooling, unvec, vec
from partitionnet.show import grid

np.set_printoptions(linewidth=120, precision=4, suppress=True)

# %% [markdown]
# ## 2.1 The regions of Fig. 47.95 and the permutation T (47.1201–47.1204)
#
# In the book's example a map of $P = 12$ entries is pooled into $P' = 3$ values over regions of unequal
# sizes: $\Omega_1 = \{1, 2, 4, 8\}$, $\Omega_2 = \{3, 5, 7, 9, 11\}$, $\Omega_3 = \{6, 10, 12\}$.
# `Pooling.from_regions` takes them as printed (`one_based=True`). Permuting $y = (1, \dots, 12)$ lists the
# indices region by region — the left-hand side of (47.1201) — and $T$'s rows are the basis vectors of
# (47.1203).

# %%
regions = [[1, 2, 4, 8], [3, 5, 7, 9, 11], [6, 10, 12]]
pool = Pooling.from_regions(regions, 12, kind="mean", one_based=True)
print(pool)

y = np.arange(1, 13)
lhs_1201 = [1, 2, 4, 8, 3, 5, 7, 9, 11, 6, 10, 12]
print("permute(y) =", pool.permute(y))
assert pool.permute(y).tolist() == lhs_1201

T = pool.permutation()
T_1203 = np.eye(12, dtype=int)[np.array(lhs_1201) - 1]           # rows e_1^T, e_2^T, e_4^T, ... (47.1203)
print(grid(T))
assert np.array_equal(T.toarray(), T_1203), "T differs from (47.1203)"
assert np.array_equal((T @ T.T).toarray(), np.eye(12)), "T T^T = I fails"
assert np.array_equal(pool.permute_adjoint(pool.permute(y)), y)    # permute#(permute(y)) = y  (47.1204)
print("T equals (47.1203); T T^T = I; permute# undoes permute")

# %% [markdown]
# ### An erratum: the matrix printed inside (47.1201)
#
# The square matrix printed between the two vectors of (47.1201) does **not** match its own left-hand side
# nor (47.1203). Typed row by row exactly as printed, it has only 11 rows: its second block lists
# $e_3, e_5, e_7, e_8$ ($e_8$ a second time, and one row short) where the left-hand side has $3, 5, 7, 9, 11$,
# and its last block reads $e_{10}, e_{11}, e_{12}$ instead of $e_6, e_{10}, e_{12}$. Applied to
# $(1, \dots, 12)$ it produces the wrong list, so it is not the permutation of Fig. 47.95. The library builds
# $T$ from the regions, never from the printed matrix.

# %%
printed_1201 = np.array([
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
    [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
])
print("printed matrix: shape", printed_1201.shape, "-> applied to y:", printed_1201 @ y)
print("left-hand side of (47.1201):          ", np.array(lhs_1201))
assert printed_1201.shape != (12, 12)                              # not even square
assert (printed_1201 @ y).tolist() != lhs_1201                     # and not the printed left-hand side
assert not np.array_equal(printed_1201, T_1203[: printed_1201.shape[0]])

# %% [markdown]
# The project keeps every such typo in a machine-checked errata list (`derivations.errata`, part of
# `partitionnet verify`): an erratum is *confirmed* when the printed form fails on a concrete case and the
# corrected form holds. `derivations.registry.run_all(only="47.1201")` runs the checks that cover this
# equation — the proof that $T$ from the regions is the permutation of (47.1203), and the erratum.

# %%
from partitionnet.derivations import registry

checks = registry.run_all(only="47.1201")
print(registry.format_table(checks))
assert any(c.method == "erratum" for c in checks), "the 47.1201 erratum is missing from derivations.errata"
assert all(c.passed for c in checks)

# %% [markdown]
# ## 2.2 Every pooling kind and its gradient vector (Tables 47.13–47.14)
#
# We use the slides' $4 \times 4$ map (`004_c47ea8229b42086b.txt`) with $2 \times 2$ windows. The slides give
# max pooling $\begin{bmatrix} 9 & 2 \\ 6 & 3 \end{bmatrix}$ and average pooling
# $\begin{bmatrix} 3.75 & 1.25 \\ 4 & 2 \end{bmatrix}$ — but the lower-left window holds $1, 3, 5, 6$, whose
# mean is $3.75$, not $4$: another erratum.

# %%
A = np.array([[1, 3, 2, 1],
              [2, 9, 1, 1],
              [1, 3, 2, 3],
              [5, 6, 1, 2]], dtype=float)
t_max, _ = Pooling.windows(A.shape, 2, kind="max").pool(vec(A))
t_mean, _ = Pooling.windows(A.shape, 2, kind="mean").pool(vec(A))
print("max :\n", unvec(t_max, (2, 2)), "\nmean:\n", unvec(t_mean, (2, 2)))
assert np.array_equal(unvec(t_max, (2, 2)), [[9, 2], [6, 3]])
assert np.array_equal(unvec(t_mean, (2, 2)), [[3.75, 1.25], [3.75, 2.0]])   # the slide prints 4 for 3.75

# %% [markdown]
# `pool.pool(y)` returns $t$ and the gradient vectors $g = \operatorname{col}\{g_1, \dots, g_{P'}\}$ stacked
# in region order (47.1196). The table lists, for the first window (entries $1, 2, 3, 9$ in column-stacking
# order), the pooled value and $g_1$ for each kind; the cell then recomputes every $g_1$ from the formula of
# Table 47.14 with plain NumPy on the window's values:
#
# | kind | $t(p')$ | $g_{p'}$ |
# |---|---|---|
# | mean (47.1196a) | $\frac{1}{\lvert\Omega\rvert}\sum y$ | $\frac{1}{\lvert\Omega\rvert}\mathbb{1}$ |
# | max (47.1196b) | $\max y$ | $e_{p^o}$ |
# | subsample (47.1196c) | $y(p^o)$ | $e_{p^o}$ |
# | $\ell_2$ (47.1196d) | $\lVert y(\Omega)\rVert_2$ | $y(\Omega)/t$ |
# | correlation (47.1196e) | $\sum m(p)\,y(p)$ | $m$ |
# | $\ell_p$ (Prob. 47.163) | $\lVert y(\Omega)\rVert_p$ | $\operatorname{sign}(y)\lvert y\rvert^{p-1}/t^{p-1}$ |

# %%
mask = np.array([[0.4, 0.1], [0.3, 0.2]])
kinds = {
    "mean": {}, "max": {}, "subsample": {"retain": 2},
    "l2": {}, "correlation": {"mask": mask}, "lp": {"p": 3},
}
poolings = {kind: Pooling.windows(A.shape, 2, kind=kind, **opts) for kind, opts in kinds.items()}

first = vec(A[:2, :2])                          # the first window, column-stacked: 1, 2, 3, 9
t1 = np.linalg.norm(first)
t3 = np.sum(np.abs(first) ** 3) ** (1 / 3)
expected_g1 = {
    "mean": np.full(4, 1 / 4),
    "max": np.eye(4)[np.argmax(first)],
    "subsample": np.eye(4)[2],
    "l2": first / t1,
    "correlation": vec(mask),
    "lp": np.sign(first) * np.abs(first) ** 2 / t3 ** 2,
}
print(f"{'kind':<12}{'t(1)':>8}   g_1")
for kind, pl in poolings.items():
    t, g = pl.pool(vec(A))
    g1 = g[:4]                                   # equal windows: region 1 is the first four entries
    print(f"{kind:<12}{t[0]:>8.4f}   {g1}")
    assert np.allclose(g1, expected_g1[kind]), kind

# %% [markdown]
# ### The chain $\operatorname{permute}^\#(\operatorname{upv}(v))$ is the gradient
#
# For any upstream vector $v$, the gradient of $v^\mathsf{T} \operatorname{pool}(y)$ with respect to $y$ must be
# $T^\mathsf{T}\operatorname{upv}(v)$. We check it against central finite differences for every kind, on a
# random map whose values are distinct (so the argmax of max pooling cannot switch under the perturbation).

# %%
rng = np.random.default_rng(0)
y_map = rng.standard_normal(16)
v = rng.standard_normal(4)
eps = 1e-6
for kind, pl in poolings.items():
    t, g = pl.pool(y_map)
    analytic = pl.permute_adjoint(pl.upv(v, g))           # permute#(upv(v))
    numeric = np.array([
        (v @ pl.pool(y_map + eps * e)[0] - v @ pl.pool(y_map - eps * e)[0]) / (2 * eps)
        for e in np.eye(16)
    ])
    err = np.abs(analytic - numeric).max()
    print(f"{kind:<12} max |permute#(upv(v)) - finite differences| = {err:.1e}")
    assert err < 1e-8, kind

# %% [markdown]
# ## 2.3 Upsampling and the index pattern of (47.1259)
#
# For the regions of Fig. 47.95, $\operatorname{upv}(\alpha_1, \alpha_2, \alpha_3)$ gives
# $\operatorname{col}\{\alpha_1 g_1, \alpha_2 g_2, \alpha_3 g_3\}$ (47.1198–47.1200), in region order;
# $\operatorname{permute}^\#$ then puts every entry back where it came from in $y$. Using
# $\alpha = (1, 2, 3)$ and all-ones "gradients" shows which region each entry of $y$ belongs to, i.e. the
# index $p''$ of $b(p'')$ that each $\delta(j)$ picks up in (47.1259).

# %%
alpha = np.array([10.0, 20.0, 30.0])
_, g_mean = pool.pool(np.arange(1.0, 13.0))
print("upv(alpha) with mean-pooling gradients:", pool.upv(alpha, g_mean))

region_of = pool.permute_adjoint(pool.upv(np.array([1.0, 2.0, 3.0]), np.ones(12))).astype(int)
print("region p'' of each entry j = 1..12:", region_of)
assert region_of.tolist() == [1, 1, 2, 1, 2, 3, 2, 1, 2, 3, 2, 3]

# %% [markdown]
# In (47.1259) the book prints two vectors side by side. Its third vector,
# $\partial t(p'')/\partial y(j)$, follows exactly this pattern. The middle one, labelled with
# $b(p'')$, reads $1, 1, 2, 2, 1, 2, 3, 2, 1, 2, 3, 2$ and disagrees with the regions of (47.1201) from the fourth
# entry on — an erratum; (47.1260) $x = \operatorname{permute}^\#(\operatorname{upv}(b))$ is the
# correct statement, and it is what the library computes.

# %%
printed_b_pattern = [1, 1, 2, 2, 1, 2, 3, 2, 1, 2, 3, 2]           # middle vector of (47.1259), as printed
printed_dt_pattern = [1, 1, 2, 1, 2, 3, 2, 1, 2, 3, 2, 3]          # third vector of (47.1259), as printed
mismatch = [j + 1 for j in range(12) if printed_b_pattern[j] != region_of[j]]
print("entries where the printed b-pattern is wrong:", mismatch)
assert region_of.tolist() == printed_dt_pattern
assert mismatch == list(range(4, 13))

checks = registry.run_all(only="47.1259")
print(registry.format_table(checks))
assert any(c.method == "erratum" for c in checks) and all(c.passed for c in checks)

# %% [markdown]
# ## 2.4 Regions drawn on a feature map
#
# Left: the twelve entries of Fig. 47.95 coloured by region (a vector, so one row). Right: a $6 \times 6$ map
# pooled by $2 \times 2$ max-pooling windows; each window is outlined and its maximiser $p^o$ — the position
# where the gradient vector $e_{p^o}$ puts its one — is marked.

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [1.6, 1]}, layout="constrained")

colors = plt.get_cmap("tab10").colors[:3]
ax = axes[0]
ax.imshow(region_of[None, :] - 1, cmap=ListedColormap(colors), aspect="equal")
for j in range(12):
    ax.text(j, 0, str(j + 1), ha="center", va="center", color="white", fontsize=12, fontweight="bold")
ax.set_yticks([])
ax.set_xticks(range(12), [str(j + 1) for j in range(12)])
ax.set_xlabel("entry j of y (1-based, as in the book)")
ax.set_title("regions of Fig. 47.95 / (47.1201)")
ax.legend(handles=[Patch(color=colors[i], label=f"Omega_{i + 1} = {regions[i]}") for i in range(3)],
          loc="upper center", bbox_to_anchor=(0.5, -1.2), ncol=3, fontsize=9)

ax = axes[1]
feature = rng.standard_normal((6, 6))
pmax = Pooling.windows(feature.shape, 2, kind="max")
t, g = pmax.pool(vec(feature))
argmax_map = unvec(pmax.permute_adjoint(pmax.upv(np.ones(pmax.P_out), g)), feature.shape)
im = ax.imshow(feature, cmap="viridis")
for r in range(0, 6, 2):
    for c in range(0, 6, 2):
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), 2, 2, fill=False, edgecolor="white", lw=2))
rows, cols = np.nonzero(argmax_map)
ax.plot(cols, rows, "rx", markersize=12, mew=3, label="maximiser p° (g = e_p°)")
ax.plot([], [], color="white", lw=2, label="pooling window Omega_p'")
ax.set_title("2x2 max pooling on a 6x6 feature map")
ax.set_xlabel("column")
ax.set_ylabel("row")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=9, facecolor="lightgrey")
fig.colorbar(im, ax=ax, label="y", shrink=0.8)
plt.show()

assert argmax_map.sum() == pmax.P_out                    # one maximiser per window
assert np.allclose(unvec(t, pmax.output_shape), feature.reshape(3, 2, 3, 2).max(axis=(1, 3)))

# %% [markdown]
# **What we checked.** $T$ built from the regions equals (47.1203), is orthogonal, and `permute#` inverts
# `permute`; the matrix printed inside (47.1201) and the $b$-pattern of (47.1259) are errata; the slides'
# pooled values hold (with 3.75 in place of the printed 4); every gradient vector matches Table 47.14; and
# $\operatorname{permute}^\#(\operatorname{upv}(v))$ equals finite differences for all six kinds. Notebook 3
# uses these pieces to carry sensitivities back through a correlation layer.
