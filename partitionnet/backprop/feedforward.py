"""The feedforward part of backpropagation, shared by both engines.

Samples are columns throughout: ``delta_l`` is ``(n_l, N)``.
"""
from __future__ import annotations

import numpy as np

from .. import activations as act
from .. import losses


def backward(net, trace, gamma: np.ndarray, grads: dict, record: dict | None = None) -> np.ndarray:
    """Fill ``grads`` with the feedforward gradients and return ``delta_2``.

    With ``record``, also store every ``delta_l`` under ``'dense{l}'`` (l = 2 ... L).

    * ``delta_L = 2(y - gamma) * f'(z_L)`` (47.1233), or ``y - gamma`` for
      softmax with cross-entropy;
    * ``delta_l = f'(z_l) * (W_l^T delta_{l+1})`` (47.1234), l = L-1 ... 2;
    * ``dW_l = sum_n delta_{l+1,n} y_{l,n}^T`` (47.1263) and
      ``dtheta_l = -sum_n delta_{l+1,n}`` (47.1264) - a sum over samples
      that one matrix product performs.
    """
    L = net.L
    z, y = trace.z_dense, trace.y_dense          # z[i] is z_{i+2}; y[i] is y_{i+1}
    delta = losses.output_sensitivity(net.loss_name, net.output, z[-1], y[-1], gamma, net.output_derivative())
    f_prime = act.get(net.activation)[1]
    for l in range(L - 1, 0, -1):
        if record is not None:
            record[f"dense{l + 1}"] = delta
        grads[f"dense{l}.W"] = delta @ y[l - 1].T
        grads[f"dense{l}.theta"] = -delta.sum(axis=1)
        if l > 1:
            delta = f_prime(z[l - 2]) * (net._params[f"dense{l}.W"].T @ delta)
    return delta  # delta_2


def first_layer_input_sensitivity(net, delta_2: np.ndarray) -> np.ndarray:
    """``W_1^T delta_2`` arranged as ``[p', n, d]``: row block d is ``W_1^(d)T delta_2`` (47.1220, 47.1241)."""
    last = net.conv[-1]
    v = net._params["dense1.W"].T @ delta_2                     # (D_C P'_C, N), index d*P' + p' (47.1217)
    return v.reshape(last.maps, last.P_out, -1).transpose(1, 2, 0)
