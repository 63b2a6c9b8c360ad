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
# # 3. The backpropagation operator $V^{(d,d',c+1)}$ (47.1246–47.1262)
#
# To carry a sensitivity from layer $c+1$ back to layer $c$, the book needs the derivative of the
# pre-activation $z^{(d',c+1)}$ of map $d'$ with respect to the pooled map $t^{(d,c)}$. Because the same mask
# $w_d^{(d',c+1)}$ is applied to every subvector, this Jacobian has a regular pattern, and the book builds it
# from the partition matrix $V_c$ with one Hadamard and two Kronecker products (47.1257):
#
# $$V^{(d,d',c+1)} = \Bigl(V_c^\mathsf{T} \odot \bigl(\mathbb{1}_{P'_c}\mathbb{1}_{P_{c+1}}^\mathsf{T} \otimes
# (w_d^{(d',c+1)})^\mathsf{T}\bigr)\Bigr)\,(I_{P_{c+1}} \otimes \mathbb{1}_{S}), \qquad
# b^{(d,d',c)} = V^{(d,d',c+1)}\,\delta^{(d',c+1)} \quad (47.1258).$$
#
# This notebook follows the book's Fig. 47.99 example ($P_{c+1} = 4$ subvectors of a 6-entry map, mask
# $w = (w_1, w_2)$) in SymPy: the matrix read off the figure (47.1251), $V_c$ (47.1252–47.1253), its membership
# "skeleton" (47.1254–47.1255), the construction (47.1256–47.1257) one factor at a time, and a proof that the
# result is the transposed Jacobian $\bigl(\partial z^{(d',c+1)}/\partial t^{(d,c)}\bigr)^\mathsf{T}$. Then the
# library's `ConvNet.backprop_operator` for a real two-layer network, drawn as a spy plot and checked against
# an independent dense model.
#
# *Running time:* a few seconds; no slow setting, so `PARTITIONNET_NOTEBOOK_FAST` (set by the tests) changes
# nothing here.

# %%
import numpy as np
import scipy.sparse as sp
import sympy
import matplotlib.pyplot as plt
from IPython.display import Math, display

from partitionnet import ConvLayer, ConvNet, Partition, reference
from partitionnet.show import grid

def show(label, M):
    display(Math(label + " = " + sympy.latex(sympy.Matrix(M))))


# %% [markdown]
# ## 3.1 The partition of Fig. 47.99 (47.1252–47.1255)
#
# The four subvectors of $t^{(d,c)} \in \mathbb{R}^6$ are $(t_1, t_3)$, $(t_4, t_2)$, $(t_5, t_1)$ and $(t_6, t_2)$:
# that is what $V_c\,(1, \dots, 6)^\mathsf{T} = (1, 3, 4, 2, 5, 1, 6, 2)^\mathsf{T}$ says (47.1253). Summing each
# pair of rows gives the membership matrix (47.1254); its transpose, $V_c^\mathsf{T}(I_4 \otimes \mathbb{1}_2)$, is
# the **skeleton** (47.1255): a one wherever entry $p''$ of $t$ enters subvector $i$.

# %%
Vc = Partition.from_indices([[1, 3], [4, 2], [5, 1], [6, 2]], 6, one_based=True)
P_next, S, P_out = Vc.P, Vc.S, Vc.M                     # P_{c+1} = 4, S = 2, P'_c = 6

printed_1252 = np.array([[1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0],
                         [0, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0]])
assert np.array_equal(Vc.matrix().toarray(), printed_1252), "V_c differs from (47.1252)"
assert Vc.apply(np.arange(1, 7)).astype(int).tolist() == [1, 3, 4, 2, 5, 1, 6, 2]      # (47.1253)

I_kron_1 = sp.kron(sp.eye_array(P_next), np.ones((S, 1)), format="csr")               # I_4 kron 1_2
membership = (I_kron_1.T @ Vc.matrix()).toarray().astype(int)                           # (47.1254)
skeleton = (Vc.matrix().T @ I_kron_1).toarray().astype(int)                             # (47.1255)
printed_1254 = np.array([[1, 0, 1, 0, 0, 0], [0, 1, 0, 1, 0, 0], [1, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, 1]])
assert np.array_equal(membership, printed_1254), "(47.1254) fails"
assert np.array_equal(skeleton, printed_1254.T), "(47.1255) fails"
print("V_c =\n" + grid(Vc.matrix(), block_rows=S))
print("\nskeleton V_c^T (I kron 1) =\n" + grid(skeleton))

# %% [markdown]
# ## 3.2 The construction (47.1256–47.1257), one factor at a time
#
# With symbols for the mask and SymPy's exact arithmetic we build the three factors of (47.1256):
#
# 1. $\mathbb{1}_6 \mathbb{1}_4^\mathsf{T} \otimes w^\mathsf{T}$ repeats $w^\mathsf{T}$ in every block of $S$
#    columns ($6 \times 8$);
# 2. the Hadamard product with $V_c^\mathsf{T}$ keeps the weight sitting at each one of $V_c^\mathsf{T}$: entry
#    $(p'', iS+s)$ becomes $w_s$ when $t(p'')$ is entry $s$ of subvector $i$;
# 3. multiplying by $I_4 \otimes \mathbb{1}_2$ adds up the $S$ columns of each subvector ($8 \times 4$).
#
# The result must be the matrix that the book reads off Fig. 47.99 in (47.1251).

# %%
w1, w2 = sympy.symbols("w_1 w_2")
w = sympy.Matrix([w1, w2])
Vc_sym = sympy.Matrix(Vc.to_sympy())

step1 = sympy.kronecker_product(sympy.ones(P_out, P_next), w.T)            # 1 1^T kron w^T      (6 x 8)
step2 = Vc_sym.T.multiply_elementwise(step1)                                # V_c^T o (...)       (6 x 8)
step3 = step2 * sympy.kronecker_product(sympy.eye(P_next), sympy.ones(S, 1))   # ... (I kron 1_S)  (6 x 4)
show(r"\mathbb{1}_6\mathbb{1}_4^T \otimes w^T", step1)
show(r"V_c^T \odot (\mathbb{1}\mathbb{1}^T \otimes w^T)", step2)
show(r"V^{(d,d',c+1)}", step3)

printed_1251 = sympy.Matrix([[w1, 0, w2, 0],
                             [0, w2, 0, w2],
                             [w2, 0, 0, 0],
                             [0, w1, 0, 0],
                             [0, 0, w1, 0],
                             [0, 0, 0, w1]])
assert step3 == printed_1251, "the Kronecker/Hadamard construction differs from (47.1251)/(47.1256)"
print("(47.1256) reproduces the matrix of (47.1251)")

# %% [markdown]
# ## 3.3 Proof: $V^{(d,d',c+1)}$ is the transposed Jacobian
#
# The forward pass of layer $c+1$ for this one pair of maps is $z = H^\mathsf{T} w$ with $H$ the patches of $t$
# (47.1211–47.1212; the bias and the other maps do not depend on $t^{(d,c)}$). We write it with symbols
# $t_1, \dots, t_6$, differentiate, and compare:
# $\partial z_i / \partial t_{p''} = [V^{(d,d',c+1)}]_{p'' i}$, entry by entry, exactly. Consequently
# $b = V^{(d,d',c+1)}\delta$ is the gradient of $\delta^\mathsf{T} z$ with respect to $t$ (47.1250, 47.1258).

# %%
t = sympy.Matrix(sympy.symbols("t_1:7"))
delta = sympy.Matrix(sympy.symbols("delta_1:5"))

Ht = (Vc_sym * t).reshape(P_next, S)          # row i is h_i^T: the patches of t  (47.1211)
z = Ht * w                                    # z^(d',c+1) from map d             (47.1212)
J = z.jacobian(t)                             # dz_i / dt_p''                      (4 x 6)
show(r"\left(\frac{\partial z}{\partial t}\right)^T", J.T)

difference = (J.T - step3).applyfunc(sympy.expand)
assert difference.is_zero_matrix, "V^(d,d',c+1) is not the transposed Jacobian"
b = step3 * delta                                                   # (47.1258)
grad = sympy.Matrix([sympy.diff((delta.T * z)[0], ti) for ti in t])  # d(delta^T z)/dt  (47.1250)
assert (b - grad).applyfunc(sympy.expand).is_zero_matrix
show("b = V^{(d,d',c+1)}\\delta", b)
print("proved: V^(d,d',c+1) = (dz/dt)^T and b = V delta is the gradient of delta^T z")

# %% [markdown]
# The project's derivation suite proves the same statement at several sizes (non-square maps, stride,
# padding, unstructured partitions); `derivations.registry.run_all(only="47.1257")` runs those checks:

# %%
from partitionnet.derivations import registry

checks = registry.run_all(only="47.1257")
print(registry.format_table(checks))
assert checks and all(c.passed for c in checks)

# %% [markdown]
# ## 3.4 The library's operator for the same example
#
# `ConvNet.backprop_operator(c, d, d_prime)` returns $V^{(d,d',c+1)}$ for the network's current weights, as a
# sparse matrix. To get exactly Fig. 47.99 we make a network whose second layer partitions a 6-entry map with
# $V_c$: a 1-D input of length 6, a first layer with a $1$-tap kernel and no pooling (so $P'_1 = 6$), then a
# layer that uses the partition `Vc`. Its mask $w_1^{(1,2)}$ is set to numbers and the sparse operator is
# compared with the SymPy matrix evaluated at them.

# %%
net99 = ConvNet(6, 1, [ConvLayer(1, kernel=1, pooling=None),
                       ConvLayer(1, partition=Vc, pooling=None)], [1], rng=0)
w_num = {w1: 0.75, w2: -1.5}
net99.set_parameters({"conv2.W": np.array([[w_num[w1]], [w_num[w2]]])})

op = net99.backprop_operator(1, 1, 1)            # V^(1,1,2), 1-based as in the book
print(type(op).__name__, op.shape, "nnz =", op.nnz)
print(op.toarray())
assert np.allclose(op.toarray(), np.array(step3.subs(w_num), dtype=float))

# %% [markdown]
# ## 3.5 A larger layer: structure and sparsity
#
# For a real network the operator is large but very sparse. Below, a network with a $12 \times 12$ input, a
# first layer of 2 maps ($3 \times 3$ 'same', $2 \times 2$ max pooling, so $t^{(d,1)}$ is $6 \times 6$) and a
# second layer of 3 maps, either with 'same' padding and stride 1 or with padding 1 and stride 2. Each
# $V^{(d,d',2)}$ maps $\delta^{(d',2)}$ ($P_2$ entries) to $b^{(d,d',1)}$ ($P'_1 = 36$ entries) and holds at most
# $S = 9$ weights per column.
#
# As an independent check, `partitionnet.reference.layer_matrix` builds the dense matrix $A$ of the same
# correlation by direct summation over positions and kernel offsets (as Eq. 8.12 of the convolution chapter,
# without $V$); since $z = A t$, the operator must equal $A^\mathsf{T}$.

# %%
nets = {
    "'same', stride 1": ConvNet((12, 12), 1, [ConvLayer(2, kernel=3, padding="same", window=2),
                                              ConvLayer(3, kernel=3, padding="same", window=2)], [2], rng=1),
    "padding 1, stride 2": ConvNet((12, 12), 1, [ConvLayer(2, kernel=3, padding="same", window=2),
                                                 ConvLayer(3, kernel=3, stride=2, padding=1, pooling=None)],
                                   [2], rng=1),
}
fig, axes = plt.subplots(1, 2, figsize=(12, 5.5), gridspec_kw={"width_ratios": [1.6, 1]})
for ax, (label, net) in zip(axes, nets.items()):
    d, d_prime = 1, 2
    op = net.backprop_operator(1, d, d_prime)
    A = reference.layer_matrix(net.conv[1].partition, net.kernel(2, d_prime, d))   # dense z = A t
    err = np.abs(op.toarray() - A.T).max()
    print(f"{label}: V^({d},{d_prime},2) is {op.shape}, nnz {op.nnz} of {op.shape[0] * op.shape[1]}, "
          f"max |V - A^T| = {err:.1e}")
    assert err < 1e-14
    ax.spy(op, markersize=3, color="tab:red", aspect="auto", label=f"entry of the mask w_1^(2,2) (nnz = {op.nnz})")
    ax.set_title(f"V^(1,2,2) for a 6x6 pooled map, 3x3 mask,\n{label}", fontsize=10)
    ax.set_xlabel("position i of z^(d',2)  (column)")
    ax.set_ylabel("entry p'' of t^(d,1)  (row)")
    ax.legend(loc="lower left", fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# With stride 1 every column holds the whole mask (minus the entries that fall into the padding), so the
# pattern is a band of nine diagonals; with stride 2 there are only $3 \times 3 = 9$ columns, each still holding
# the mask entries whose window position falls on the map. In both cases the operator needs memory
# proportional to its nonzeros, never $P'_c \times P_{c+1}$ dense entries.
#
# **What we checked.** The book's $V_c$, skeleton and Kronecker/Hadamard construction reproduce
# (47.1251)–(47.1256) exactly; SymPy proves the operator is the transposed Jacobian; the library's
# `backprop_operator` equals the symbolic matrix and, for larger layers, the transpose of an independently
# built dense correlation matrix. Notebook 4 uses these operators inside full gradients.
