"""One sample through a correlation: the patches in V's own row order, and ``V^T`` read as a gather.

For a single sample (the book's per-sample listing, 47.1275, or online
inference) the work is small and the cost of a layer is the number of
NumPy calls, not arithmetic. Two facts keep that number to a handful:

* **im2col by index.** ``V h`` stacks the patches ``h_p`` one after the
  other (47.1152), so one fancy index ``h[V.indices]`` gives every patch of
  every input map at once, as a ``(P, S D_in)`` matrix whose row ``p`` holds
  ``h_p`` of each map. The correlation (47.1212) is then one GEMM with
  ``W_c``'s rows ordered offset-major.
* **the adjoint by index.** ``V^T`` adds every patch entry back onto the
  entry it came from. Within one kernel offset ``s`` a sliding window reads
  each map entry at most once, so ``V_s^T`` (the block of offset ``s``) is
  itself a partial permutation: entry ``m`` receives from the single output
  position ``p`` whose window put ``m`` at offset ``s``, if there is one. An
  index array ``adjoint[m, s] = p`` turns ``sum_s V_s^T G_s`` (47.1262) into
  one gather and one GEMM, with no sparse product and no scatter-add.

An unstructured partition that reads an entry twice at the same offset has
no such index: :attr:`SampleWindows.adjoint` is then ``None`` and the layer
keeps its scatter-add. The results equal the gather/scatter forms to
rounding (``tests/test_fast_paths.py``).

>>> from partitionnet.partition import Partition
>>> V = Partition.sliding_window(4, 2, padding=1)
>>> W = SampleWindows(V)
>>> W.patches(np.arange(4.0).reshape(4, 1)).tolist()         # rows: h_p, with zeros for the padding
[[0.0, 0.0], [0.0, 1.0], [1.0, 2.0], [2.0, 3.0], [3.0, 0.0]]
>>> W.adjoint.tolist()                                        # entry m at offset s came from position p (5: none)
[[1, 0], [2, 1], [3, 2], [4, 3]]
"""
from __future__ import annotations

import numpy as np

__all__ = ["SampleWindows"]


class SampleWindows:
    """The index arrays of a partition for one sample: ``patches`` (im2col) and ``adjoint`` (col2im as a gather)."""

    def __init__(self, partition):
        idx = partition.indices                                             # (P, S), -1 for a zero pad
        self.M, self.P, self.S = partition.M, partition.P, partition.S
        self.padded = bool((idx < 0).any())
        self.rows = np.where(idx >= 0, idx, self.M)                         # row M: the appended zero
        p, s = np.nonzero(idx >= 0)
        m = idx[p, s]
        # V_s^T is a gather iff no entry is read twice at one offset (true of every sliding window)
        once = np.bincount(m * self.S + s, minlength=self.M * self.S).max(initial=0) <= 1
        if once:
            adjoint = np.full((self.M, self.S), self.P, dtype=np.intp)     # row P: the appended zero
            adjoint[m, s] = p
            self.adjoint = adjoint
        else:
            self.adjoint = None

    def patches(self, h: np.ndarray) -> np.ndarray:
        """``(P, S D)``: row ``p`` holds ``h_p`` of every map, offset-major (``[p, s D + j]``). ``h`` is (M, D)."""
        if self.padded:
            h = np.concatenate((h, np.zeros((1, h.shape[1]), dtype=h.dtype)))
        return np.take(h, self.rows, axis=0).reshape(self.P, -1)     # take: ~4x faster than h[rows]

    def spread(self, g: np.ndarray) -> np.ndarray:
        """``(M, S D)``: row ``m`` holds, per offset ``s``, the row of ``g`` (P, D) that read entry ``m`` there."""
        g = np.concatenate((g, np.zeros((1, g.shape[1]), dtype=g.dtype)))
        return np.take(g, self.adjoint, axis=0).reshape(self.M, -1)
