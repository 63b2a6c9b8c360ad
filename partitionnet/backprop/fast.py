"""The fast engine: the gradients of 47.1275 by batched contractions.

Same partitions, same pooling structures, same numbers as the Kronecker
engine, but every step acts on the whole batch and all maps at once:

* Pooling backward for all samples and maps is one ``permute#(upv(.))`` on
  a matrix with ``N * D`` columns (47.1245, 47.1262).
* ``sum_{d'} V^(d,d',c+1) delta^(d',c+1)`` (the sum in 47.1262) never forms
  the operators. Since ``V^(d,d') = V^T diag(1 kron w_d^(d')) (I kron 1_S)``,
  the sum equals ``V^T`` applied to the patch-shaped array
  ``G[s, p] = sum_{d'} w_d^(d')(s) delta^(d')(p)``: one small GEMM per kernel
  offset ``s`` and one sparse scatter-add.
* ``dW_c = sum_n (1^T kron H_{n,c-1}) Delta_{n,c}`` (47.1271) has column d equal
  to ``sum_n H_{n,c-1} delta_n^(d)``: one GEMM per kernel offset over all
  positions and samples.
* ``dTheta_c`` (47.1274) is ``-sum_{n,p} delta_n^(d)(p)`` for every (j, d).

Layout: maps are ``[p, n, d]`` and the patches ``H[s, p, n, j]`` are
ordered kernel-offset first (a row permutation ``K_{P,S}`` of the seed's
patch-major V), so every offset is one contiguous block.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import scipy.sparse as sp

from .. import activations as act
from . import feedforward


def gradients(net, trace, gamma: np.ndarray, record: dict | None = None) -> "OrderedDict[str, np.ndarray]":
    """All gradients; with ``record``, also keep every sensitivity (``'conv{c}'``: delta as [p, n, d])."""
    grads: dict = {}
    delta_2 = feedforward.backward(net, trace, gamma, grads, record)
    v = feedforward.first_layer_input_sensitivity(net, delta_2)    # [p', n, d], sensitivity of t^(C)
    for st in reversed(net.conv):
        c = st.index
        N = v.shape[1]
        # delta^(d,c) = f'(z) * permute#(upv(v)) for all maps and samples (47.1245 / 47.1262).
        dy = st.pooling.backward(v.reshape(st.P_out, -1), trace.g[c - 1])
        delta = act.get(st.activation)[1](trace.z_conv[c - 1]) * dy.reshape(st.P, N, st.maps)
        if record is not None:
            record[f"conv{c}"] = delta
        H = trace.H[c - 1]
        K = st.kernels(net._params[f"conv{c}.W"])
        grads[f"conv{c}.W"] = weight_gradient(H, delta) * st.weight_mask            # (47.1271)
        total = -delta.sum(axis=(0, 1))                                             # (47.1274)
        grads[f"conv{c}.Theta"] = (total[None, :] if net.bias == "tied"
                                   else np.where(st.connections.T, total[None, :], 0.0))
        if c > 1:
            v = input_sensitivity(st.partition, delta, K)                           # sum_{d'} V^(d,d') delta^(d')
    return OrderedDict((k, grads[k]) for k in net._params)


def weight_gradient(H: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``W_c`` gradient: ``dK[s, j, d] = sum_{p,n} H[s,p,n,j] delta[p,n,d]``, returned as W_c's (j*S+s, d) rows."""
    S, P, N, D_in = H.shape
    D = delta.shape[2]
    flat = delta.reshape(P * N, D)
    if D_in == 1:                                              # one GEMM on the (S, P*N) block
        return H.reshape(S, P * N) @ flat
    dK = np.stack([H[s].reshape(P * N, D_in).T @ flat for s in range(S)])          # (S, D_in, D)
    return dK.transpose(1, 0, 2).reshape(D_in * S, D)


def input_sensitivity(partition, delta: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``sum_{d'} V^(d,d') delta^(d')`` for every input map d, all samples: ``V^T G``.

    ``G[s, p, n, j] = sum_{d'} K[s, j, d'] delta[p, n, d']`` is built offset by
    offset, then scattered back with the offset-major ``V^T``.
    """
    P, N, D = delta.shape
    S, D_in = K.shape[0], K.shape[1]
    flat = delta.reshape(P * N, D)
    G = np.empty((S, P * N, D_in))
    for s in range(S):
        np.matmul(flat, K[s].T, out=G[s])
    VT = _offset_major_adjoint(partition)
    return (VT @ G.reshape(S * P, N * D_in)).reshape(partition.M, N, D_in)


def _offset_major_adjoint(partition) -> sp.csr_array:
    """``V^T`` with V's rows in offset-major order ``(s, p)``; cached on the partition."""
    cached = partition._cache.get("offset_major_VT")
    if cached is None:
        idx = partition.indices.T.ravel()                       # row s*P + p reads entry idx
        rows = np.flatnonzero(idx >= 0)
        V = sp.csr_array((np.ones(rows.size), (rows, idx[rows])), shape=(idx.size, partition.M))
        cached = partition._cache["offset_major_VT"] = V.T.tocsr()
    return cached
