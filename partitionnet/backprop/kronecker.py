"""The Kronecker engine: the training listing of 47.1275, step by step.

Each sensitivity and gradient is computed with the operator the seed writes
down, kept sparse:

* ``delta^(d,C) = f'(z^(d,C)) * permute#(upv(W_1^(d)T delta_2))`` (47.1245);
* ``V^(d,d',c+1) = (V_c^T o (1 1^T kron w_d^(d',c+1)T)) (I kron 1_S)`` (47.1257),
  built once per call for every connected pair (d, d');
* ``delta^(d,c) = sum_{d'} f'(z^(d,c)) * permute#(upv(V^(d,d',c+1) delta^(d',c+1)))`` (47.1262);
* ``Delta_{n,c} = diag{delta_n^(1,c), ..., delta_n^(D_c,c)}`` (47.1270), a sparse block diagonal;
* ``dW_c = sum_n (1^T kron H_{n,c-1}) Delta_{n,c}`` (47.1271) and
  ``dTheta_c = -sum_n (1^T kron 1 1^T) Delta_{n,c}`` (47.1274).

Samples are columns wherever the seed's formula is linear in them (one
sparse product serves the whole batch); the two per-sample formulas
(47.1271, 47.1274) loop over samples as the listing does. Their Kronecker
factor is applied by the mixed-product rule ``1^T kron A = A (1^T kron I_P)``,
so the dense ``D_c``-fold copy of ``H_{n,c-1}`` is never formed.

Measured (benchmarks/bench_lenet.py, LeNet-like net, batch 64): about 3-4.5x
the time of the fast engine, which is the price of building every
``V^(d,d',c+1)`` and every ``Delta_{n,c}`` explicitly.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import scipy.sparse as sp

from .. import activations as act
from . import feedforward


def backprop_operator(partition, w: np.ndarray) -> sp.csr_array:
    """``V^(d,d',c+1)`` of (47.1257) for the partition ``V_c`` and the mask ``w = w_d^(d',c+1)``.

    ``V_c^T`` is ``P'_c x P_{c+1} S``. The factor ``1_{P'} 1_P^T kron w^T`` has
    identical rows (each equal to ``1_P^T kron w^T``), so its Hadamard product
    with the sparse ``V_c^T`` is a column scaling by that one row: the
    product is formed on V's nonzeros only, never as a dense ``P' x PS``
    matrix. ``(I_P kron 1_S)`` then sums the S columns of every patch.
    """
    VT, collapse = _structure(partition)
    row = np.kron(np.ones((1, partition.P)), np.asarray(w, dtype=np.float64).reshape(1, partition.S))
    masked = VT.multiply(row).tocsr()                             # V_c^T o (1 1^T kron w^T)
    return (masked @ collapse).tocsr()                            # ... (I_P kron 1_S)


def _structure(partition):
    """The weight-free factors ``V_c^T`` and ``I_P kron 1_S``, built once per partition."""
    cached = partition._cache.get("kronecker_factors")
    if cached is None:
        VT = partition.matrix().T.tocsr()
        collapse = sp.kron(sp.eye_array(partition.P, format="csr"), np.ones((partition.S, 1)), format="csr")
        cached = partition._cache["kronecker_factors"] = (VT, collapse)
    return cached


def gradients(net, trace, gamma: np.ndarray) -> "OrderedDict[str, np.ndarray]":
    grads: dict = {}
    delta_2 = feedforward.backward(net, trace, gamma, grads)
    C = net.C
    N = gamma.shape[1]
    last = net.conv[-1]
    W1 = net._params["dense1.W"]
    # deltas[c-1][d-1] = delta^(d,c), shape (P_c, N).
    deltas: list = [None] * C
    g_last = _per_map(trace.g[C - 1], last.maps)
    f_prime = act.get(last.activation)[1]
    deltas[C - 1] = []
    for d in range(last.maps):
        W1_d = W1[:, d * last.P_out:(d + 1) * last.P_out]                          # W_1^(d) (47.1220)
        x = last.pooling.permute_adjoint(last.pooling.upv(W1_d.T @ delta_2, g_last[d]))
        deltas[C - 1].append(f_prime(trace.z_conv[C - 1][:, :, d]) * x)          # (47.1245)
    for c in range(C - 1, 0, -1):
        here, nxt = net.conv[c - 1], net.conv[c]
        W_next = net._params[f"conv{c + 1}.W"]
        ops = {(d, dp): backprop_operator(nxt.partition, W_next[d * nxt.S:(d + 1) * nxt.S, dp])
               for d in range(here.maps) for dp in range(nxt.maps) if nxt.connections[dp, d]}   # (47.1257)
        g_here = _per_map(trace.g[c - 1], here.maps)
        f_prime = act.get(here.activation)[1]
        deltas[c - 1] = []
        for d in range(here.maps):
            acc = np.zeros((here.P, N))
            for dp in range(nxt.maps):
                if (d, dp) in ops:
                    b = ops[d, dp] @ deltas[c][dp]                                    # (47.1258)
                    acc += here.pooling.permute_adjoint(here.pooling.upv(b, g_here[d]))
            deltas[c - 1].append(f_prime(trace.z_conv[c - 1][:, :, d]) * acc)      # (47.1262)
    for st in net.conv:
        c = st.index
        dW = np.zeros((st.in_maps * st.S, st.maps))
        dTheta = np.zeros(net._params[f"conv{c}.Theta"].shape)
        # Mixed-product rule: 1_D^T kron A = A (1_D^T kron I_P) for any A with P columns, so
        # (1^T kron H) Delta = H [(1^T kron I_P) Delta] and (1^T kron 1 1^T) Delta = 1 1^T [(1^T kron I_P) Delta].
        # The sparse factor (1^T kron I_P) depends on neither weights nor samples: built once per layer.
        spread = sp.kron(np.ones((1, st.maps)), sp.eye_array(st.P, format="csr"), format="csr")
        ones_bias = np.ones((dTheta.shape[0], st.P))
        for n in range(N):
            Delta = block_diagonal([deltas[c - 1][d][:, n] for d in range(st.maps)])  # (47.1270)
            H_n = patch_matrix(trace.H[c - 1], n)                                     # H_{n,c-1} (47.1225)
            gathered = (spread @ Delta).toarray()                                     # (1^T kron I_P) Delta
            dW += H_n @ gathered                                                      # (47.1271)
            dTheta -= ones_bias @ gathered                                            # (47.1274)
        grads[f"conv{c}.W"] = dW * st.weight_mask
        grads[f"conv{c}.Theta"] = dTheta if net.bias == "tied" else dTheta * st.connections.T
    return OrderedDict((k, grads[k]) for k in net._params)


def block_diagonal(columns) -> sp.csr_array:
    """``diag{delta^(1), ..., delta^(D)}``: column d holds delta^(d) in row block d (47.1270)."""
    D, P = len(columns), columns[0].size
    return sp.csr_array((np.concatenate(columns), np.repeat(np.arange(D), P), np.arange(D * P + 1)),
                        shape=(D * P, D))


def patch_matrix(H: np.ndarray, n: int) -> np.ndarray:
    """``H_{n,c-1} = col{H_n^(1)}, ..., H_n^(D)}`` (47.1225) from the patch array ``H[s, p, n, j]``."""
    S, P, _, D_in = H.shape
    return H[:, :, n, :].transpose(2, 0, 1).reshape(D_in * S, P)


def _per_map(g: np.ndarray, maps: int) -> list:
    """Split pooling gradient vectors with columns ``n*D + d`` into one (U, N) block per map."""
    U = g.shape[0]
    g3 = g.reshape(U, -1, maps)
    return [g3[:, :, d] for d in range(maps)]
