"""Stride-1 sliding windows as shifted row blocks of the zero-padded map: the patches without copying them.

Lay the zero-padded maps out as one matrix ``X`` with a row per (grid
position, sample) and a column per input map, grid positions column-stacked
(the map's first axis fastest). For a stride-1 window, output position ``p``
reads padded position ``q(p) + o_s`` at kernel offset ``s``, where ``q(p)``
is ``p`` written on the padded grid and ``o_s`` the offset's displacement
on it. So the block ``H_s`` of the offset-major patches (the rows ``p S + s``
of ``V x``, 47.1211) is, row for row, the contiguous slice ``X[o_s : o_s + L]``
read at the rows ``q(p)``, and

* the forward sum of (47.1212), ``z = sum_s H_s K_s``, is ``S`` GEMMs on
  slices of ``X`` accumulated by BLAS into one output (``beta = 1``);
* the weight gradient of (47.1271), ``dK_s = H_s^T delta``, is one batched
  GEMM over a strided view of ``X`` whose batch axes are the kernel offsets;
* ``V^T G`` with ``G_s = delta K_s^T`` (47.1262) is ``S`` GEMMs accumulated
  into shifted slices of the padded gradient (col2im done by BLAS).

The slices also cover the ``L - P N`` rows that are not output positions
(the padding columns between two map columns); the forward drops them and
the backward feeds them zeros. Nothing is gathered and no ``(S, P, N, D)``
array of patches or of spread sensitivities is formed, which is what made
the offset-major form memory-bound for layers with many input maps. The
results equal the partition's :meth:`~partitionnet.partition.Partition.gather`
and :meth:`~partitionnet.partition.Partition.scatter_add` forms to rounding;
``tests/test_fast_paths.py`` and the layer contract check it.

>>> from partitionnet.partition import Partition
>>> V = Partition.sliding_window((5, 4), 3, padding=((0, 1), 2), dilation=(1, 2))
>>> W = ShiftedWindows.of(V)
>>> rng = np.random.default_rng(0)
>>> x, K = rng.standard_normal((V.M, 2, 3)), rng.standard_normal((V.S, 3, 4))
>>> z, X = W.correlate(x, K)
>>> bool(np.allclose(z, np.einsum("spnj,sjd->pnd", V.gather(x), K), rtol=1e-13, atol=1e-13))
True
"""
from __future__ import annotations

import numpy as np
import scipy.linalg.blas

from .._windows import padding_pairs

__all__ = ["ShiftedWindows"]

_GEMM = {np.dtype(np.float32): scipy.linalg.blas.sgemm, np.dtype(np.float64): scipy.linalg.blas.dgemm}


class ShiftedWindows:
    """The stride-1 sliding windows of a partition, read as shifted slices of the padded maps.

    Build it with :meth:`of`; ``None`` comes back for a partition that is
    not a stride-1 sliding window (it then keeps its gather form).
    """

    def __init__(self, map_shape, out_shape, kernel, before, dilation):
        nd = len(map_shape)
        self.M, self.P, self.S = int(np.prod(map_shape)), int(np.prod(out_shape)), int(np.prod(kernel))
        self.kernel = tuple(kernel)
        # stride 1: the padded extent is the outputs plus the dilated kernel's reach, on every axis
        extent = [o + d * (k - 1) for o, d, k in zip(out_shape, dilation, kernel)]
        step = np.cumprod((1,) + tuple(extent[:-1]))                        # grid stride of each map axis
        self.grid = tuple(reversed(extent))                                 # (n_last, ..., n_first) for reshape
        self.rows = int(np.prod(extent))                                    # grid positions
        self.interior = tuple(reversed([slice(b, b + n) for b, n in zip(before, map_shape)]))
        self.outputs = tuple(reversed([slice(0, o) for o in out_shape]))
        self.rev_map = tuple(reversed(map_shape))
        # rows of the slices: from output position 0 to the last one, on the grid
        self.span = int(sum((o - 1) * s for o, s in zip(out_shape, step))) + 1
        # the kernel offsets' displacements on the grid, per axis (last map axis first, as the grid)
        self.step = tuple(int(d * s) for d, s in zip(reversed(dilation), reversed(step)))
        self.offsets = [int(sum(k * d * s for k, d, s in zip(np.unravel_index(i, kernel, order="F"), dilation,
                                                               step))) for i in range(self.S)]

    @classmethod
    def of(cls, partition) -> "ShiftedWindows | None":
        """The shifted form of a stride-1 sliding-window partition, or ``None``."""
        g = partition.geometry
        if g is None or any(int(s) != 1 for s in g["stride"]):
            return None
        before, _ = padding_pairs(g["padding"], len(g["input_shape"]))
        return cls(g["input_shape"], partition.output_shape, g["kernel"], before, g["dilation"])

    @property
    def overhead(self) -> float:
        """Rows computed per output position (``>= 1``): the slices' extra rows over the padding columns."""
        return self.span / self.P

    # ------------------------------------------------------------------ layouts
    def pad(self, x: np.ndarray, dtype) -> np.ndarray:
        """``x`` (M, N, D) zero-padded onto the grid: ``X`` of shape (grid positions * N, D)."""
        N, D = x.shape[1:]
        X = np.zeros(self.grid + (N, D), dtype=dtype)
        X[self.interior] = x.reshape(self.rev_map + (N, D))
        return X.reshape(self.rows * N, D)

    def unpad(self, X: np.ndarray, N: int) -> np.ndarray:
        """The inverse of :meth:`pad` on the map's own entries: ``(M, N, D)``, contiguous."""
        D = X.shape[1]
        return np.ascontiguousarray(X.reshape(self.grid + (N, D))[self.interior]).reshape(self.M, N, D)

    def _offset_view(self, X: np.ndarray, N: int) -> np.ndarray:
        """``X[o_s : o_s + span N]`` for every kernel offset, as one strided view ``(k_last, ..., k_first, ...)``."""
        row = X.strides[0]
        shape = tuple(reversed(self.kernel)) + (self.span * N, X.shape[1])
        strides = tuple(s * N * row for s in self.step) + X.strides
        return np.lib.stride_tricks.as_strided(X, shape=shape, strides=strides, writeable=False)

    # ------------------------------------------------------------------ the three products
    def correlate(self, x: np.ndarray, K: np.ndarray, subtract=None):
        """``z = sum_s H_s K_s`` (47.1212) minus ``subtract`` (per output map); returns ``(z, X)``.

        ``x`` is ``(M, N, D_in)`` and ``K`` is ``(S, D_in, D)``; ``z`` is
        ``(P, N, D)`` and ``X`` the padded input, kept for the backward pass.
        """
        N = x.shape[1]
        dtype = np.result_type(x, K)
        X = self.pad(x, dtype)
        K = K.astype(dtype, copy=False)
        rows, D = self.span * N, K.shape[2]
        z = np.empty((self.rows * N, D), dtype=dtype)
        gemm = _GEMM.get(dtype)
        for s, o in enumerate(self.offsets):                                # kernel offsets only
            H_s = X[o * N:o * N + rows]
            if gemm is None:                                                 # not a BLAS type: numpy's matmul
                z[:rows] = H_s @ K[s] if s == 0 else z[:rows] + H_s @ K[s]
            else:
                # z is C-ordered, so z^T is Fortran-ordered: BLAS adds K_s^T H_s^T into it (beta = 1)
                _accumulate(gemm, K[s].T, H_s.T, z[:rows].T, beta=float(s > 0))
        inside = z.reshape(self.grid + (N, D))[self.outputs]
        out = np.empty(inside.shape, dtype=dtype)
        if subtract is None:
            out[...] = inside
        else:
            np.subtract(inside, subtract, out=out)                          # the copy and the bias in one pass
        return out.reshape(self.P, N, D), X

    def _sensitivity_rows(self, dz: np.ndarray) -> np.ndarray:
        """``dz`` (P, N, D) on the slices' rows, zero on the rows that are not output positions."""
        P, N, D = dz.shape
        grid = np.zeros(self.grid + (N, D), dtype=dz.dtype)
        grid[self.outputs] = dz.reshape(tuple(s.stop for s in self.outputs) + (N, D))
        return grid.reshape(self.rows * N, D)[:self.span * N]

    def backward(self, X: np.ndarray, K: np.ndarray, dz: np.ndarray, *, need_input: bool = True):
        """``(dK, dx)``: ``dK[s] = H_s^T delta`` (47.1271) and ``dx = V^T G``, ``G_s = delta K_s^T`` (47.1262).

        ``X`` is the padded input from :meth:`correlate`, ``K`` is
        ``(S, D_in, D)`` and ``dz`` is ``(P, N, D)``. ``dK`` is ``(S, D_in, D)``;
        ``dx`` is ``(M, N, D_in)``, or ``None`` without ``need_input``.
        """
        N = dz.shape[1]
        dtype = np.result_type(X, K, dz)
        delta = self._sensitivity_rows(dz.astype(dtype, copy=False))
        D_in, D = X.shape[1], dz.shape[2]
        view = self._offset_view(X, N)
        dK = np.matmul(np.swapaxes(view, -1, -2), delta)                    # one batched GEMM over the offsets
        dK = dK.reshape(self.S, D_in, D)
        if not need_input:
            return dK, None
        K = K.astype(dtype, copy=False)
        rows = self.span * N
        dX = np.zeros((self.rows * N, D_in), dtype=dtype)
        gemm = _GEMM.get(dtype)
        for s, o in enumerate(self.offsets):                                # kernel offsets only: col2im by BLAS
            if gemm is None:
                dX[o * N:o * N + rows] += delta @ K[s].T
            else:
                _accumulate(gemm, K[s], delta.T, dX[o * N:o * N + rows].T, beta=1.0)
        return dK, self.unpad(dX, N)


def _accumulate(gemm, a: np.ndarray, b: np.ndarray, c: np.ndarray, beta: float) -> None:
    """``c <- a b + beta c`` in place; ``c`` is a Fortran-ordered view of the caller's array.

    BLAS writes into ``c``'s own memory when it is Fortran-contiguous and of
    the GEMM's type, which the callers arrange. Should a SciPy build ever hand
    back a copy instead, the result is written back, so a wrong sum is never
    silent.
    """
    out = gemm(1.0, a, b, beta=beta, c=c, overwrite_c=1)
    if not np.may_share_memory(out, c):
        c[...] = out
