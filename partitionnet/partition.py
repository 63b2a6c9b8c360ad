"""The partition matrix V of a correlation layer (47.1148-47.1153).

A *partition* cuts a long vector ``h`` (size M) into P subvectors ``h_p`` of
size S, possibly overlapping and possibly picking entries from anywhere
(Fig. 47.86). Stacking the subvectors gives ``col{h_p} = V h`` (47.1152), where
V is a ``P*S x M`` 0/1 matrix with at most one 1 per row. Rows ``p*S`` to
``p*S + S - 1`` select the entries of ``h_p`` ("patch-major" order, 47.1153).
Sliding a window over a zero-padded map is one such partition; a window
entry that falls in the padding is a row of zeros (the "fictitious zero
values" of 47.1129).

The class stores only the ``(P, S)`` integer array of selected indices
(``-1`` for padding). Applying V is a gather, applying V^T a scatter-add, and
the sparse matrix itself is built in O(nnz) on request.
"""
from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from . import _validate as val
from ._windows import output_length, padding_pairs, same_padding, window_indices

_PADDING_MODES = ("valid", "same", "full")


class Partition:
    """A partition of a vector of size ``M`` into ``P`` subvectors of size ``S``.

    Build one with :meth:`from_indices`, :meth:`sliding_window` or
    :meth:`blocks`. The constructor takes the index table itself
    (``-1`` for padding) and checks it: every index must lie in
    ``[-1, size - 1]``, and the optional shapes must multiply out to
    ``size``, ``P`` and ``S``.

    Parameters
    ----------
    indices : int array (P, S)
        ``indices[p, s]`` is the entry of ``h`` at position ``s`` of ``h_p``, or ``-1`` for a zero pad.
    size : int
        M, the size of the partitioned vector.
    input_shape, output_shape, kernel_shape : tuple of int, optional
        Map shapes whose products are M, P and S (default ``(M,)``, ``(P,)``, ``(S,)``).
    geometry : dict, optional
        The sliding-window description (see :meth:`sliding_window`).

    Attributes
    ----------
    P, S, M : int
        Number of subvectors, their size, and the size of the partitioned vector.
    input_shape : tuple of int
        Shape of the partitioned map (``(M,)`` for an unstructured partition).
    output_shape : tuple of int
        Map shape of the P positions (``(P,)`` for an unstructured partition).
    kernel_shape : tuple of int
        Shape of one window (``(S,)`` for an unstructured partition).
    indices : ndarray of int64, shape (P, S)
        ``indices[p, s]`` is the entry of ``h`` placed at position ``s`` of
        ``h_p``; ``-1`` marks zero padding.
    geometry : dict or None
        For sliding windows: ``input_shape``, ``kernel``, ``stride``,
        ``padding`` (per-axis ints), ``dilation``. ``None`` otherwise.

    Examples
    --------
    The partition of the book's example (47.1149), typed as printed:

    >>> V = Partition.from_indices([[1, 4, 6], [2, 5, 4], [3, 6, 1], [2, 4, 1]], 6, one_based=True)
    >>> V.P, V.S, V.M
    (4, 3, 6)
    >>> V.apply([1, 2, 3, 4, 5, 6]).astype(int).tolist()
    [1, 4, 6, 2, 5, 4, 3, 6, 1, 2, 4, 1]

    The constructor refuses an index the vector does not have:

    >>> Partition(np.array([[5, -1]]), 3)
    Traceback (most recent call last):
        ...
    ValueError: indices must lie in [-1, 2] (0-based, -1 for padding, size=3); found 5 at position (0, 0)
    """

    def __init__(self, indices: np.ndarray, size: int, *, input_shape=None, output_shape=None,
                 kernel_shape=None, geometry=None):
        size = val.as_positive_int(size, "size")
        indices = _index_array(indices, "indices")
        if indices.ndim != 2 or indices.shape[0] == 0 or indices.shape[1] == 0:
            raise ValueError(f"indices must be a non-empty P x S table of integers, got an array of shape "
                             f"{indices.shape}")
        # An index outside [-1, M-1] would make every later gather, scatter or sparse product read or
        # write outside the vector (scipy does not check, and the interpreter can crash).
        _check_index_range(indices, -1, size - 1, "indices", "0-based, -1 for padding", size)
        indices = np.ascontiguousarray(indices, dtype=np.int64)
        self.indices = indices
        self.indices.setflags(write=False)
        self.P, self.S = (int(n) for n in indices.shape)
        self.M = size
        self.input_shape = _checked_shape(input_shape, "input_shape", self.M, "size M")
        self.output_shape = _checked_shape(output_shape, "output_shape", self.P, "P, the number of rows of indices")
        self.kernel_shape = _checked_shape(kernel_shape, "kernel_shape", self.S,
                                           "S, the number of columns of indices")
        self.geometry = geometry
        self._padded = bool((indices < 0).any())
        self._V = None
        # The one cached transpose: V^T with V's rows in offset-major order (see gather).
        self._VT_offset_major = None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_indices(cls, index_lists, size, *, one_based: bool = False) -> "Partition":
        """A partition given by the entries of each subvector (Fig. 47.86).

        Parameters
        ----------
        index_lists : sequence of P sequences of S ints, or int array (P, S)
            ``index_lists[p]`` lists, in order, the entries of ``h`` forming
            ``h_p``. Subvectors may overlap and may repeat entries.
        size : int
            M, the size of the vector being partitioned.
        one_based : bool
            Read the indices as 1..M, as printed in the book.

        Examples
        --------
        >>> Partition.from_indices([[0, 2], [1, 2]], 3).matrix().toarray().astype(int)
        array([[1, 0, 0],
               [0, 0, 1],
               [0, 1, 0],
               [0, 0, 1]])
        """
        size = val.as_positive_int(size, "size")
        one_based = val.as_bool(one_based, "one_based")
        arr = _index_array(index_lists, "index_lists")
        if arr.ndim != 2:
            raise ValueError(
                f"index_lists must be P lists of S indices each (a 2-D table), got an array of shape {arr.shape}"
            )
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(f"index_lists must hold at least one non-empty subvector, got shape {arr.shape}")
        arr = _shift_and_check_range(arr, size, "index_lists", one_based)
        return cls(arr, size)

    @classmethod
    def sliding_window(cls, input_shape, kernel, *, stride=1, padding=0, dilation=1) -> "Partition":
        """Windows of shape ``kernel`` sliding over a 1-D, 2-D or 3-D map (47.1129-47.1134).

        Position ``p`` (column-stacked over the output map) takes the window
        whose first corner sits at ``o * stride - padding`` and whose entries
        are spaced by ``dilation``; ``h_p`` is the vec of that window. Then
        ``H^T w`` with ``w = vec(W)`` is the *correlation* of the map with
        the mask ``W`` (47.1133), the same as ``scipy.signal.correlate``.

        Parameters
        ----------
        input_shape : int or tuple of int
            Shape of the map (``M = prod(input_shape)``).
        kernel : int or tuple of int
            Window shape; an int applies to every axis.
        stride, dilation : int or tuple of int, default 1
        padding : int, tuple, or {'valid', 'same', 'full'}, default 0
            Zeros added to each axis: an int (every axis, both sides), or one
            entry per axis, each an int (both sides) or a ``(before, after)``
            pair, e.g. ``((0, 1), 2)`` for a 2-D map. ``'valid'`` is 0;
            ``'full'`` is ``dilation*(kernel-1)`` on both sides, so that every
            overlap counts; ``'same'`` gives ``ceil(n/stride)`` positions, with
            total padding ``max((out-1)*stride + dilation*(kernel-1) + 1 - n, 0)``
            split as TensorFlow does: half (rounded down) before, the rest
            after, so an odd total puts the extra zero *after* the map. This is
            also PyTorch's ``padding='same'`` and
            ``scipy.signal.correlate2d(..., 'same')``; note that
            ``scipy.signal.correlate(..., 'same')`` centres the other way and
            puts the extra zero before.

        Notes
        -----
        The resolved padding is kept in ``geometry['padding']``: per-axis
        ints when both sides agree, else per-axis ``(before, after)`` pairs.

        Examples
        --------
        >>> V = Partition.sliding_window((6, 6), 3, padding="same")
        >>> V.P, V.S, V.output_shape
        (36, 9, (6, 6))
        >>> Partition.sliding_window((5,), 2, padding="same").geometry["padding"]
        ((0, 1),)
        >>> Partition.sliding_window(4, 2, padding=((1, 0),)).index_lists()
        [[None, 0], [0, 1], [1, 2], [2, 3]]
        """
        input_shape = val.as_shape(input_shape, "input_shape")
        ndim = len(input_shape)
        kernel = val.as_int_tuple(kernel, "kernel", ndim)
        stride = val.as_int_tuple(stride, "stride", ndim)
        dilation = val.as_int_tuple(dilation, "dilation", ndim)
        pad = _resolve_padding(padding, kernel, stride, dilation, ndim, input_shape)
        before, after = padding_pairs(pad, ndim)
        out_shape = []
        for a in range(ndim):
            n_out = output_length(input_shape[a], kernel[a], stride[a], before[a], after[a], dilation[a])
            if n_out < 1:
                span = dilation[a] * (kernel[a] - 1) + 1
                raise ValueError(
                    f"kernel {kernel} (dilated extent {span} on axis {a}) is larger than the padded input "
                    f"({before[a]} + {input_shape[a]} + {after[a]} = {input_shape[a] + before[a] + after[a]} "
                    f"on axis {a})"
                )
            out_shape.append(n_out)
        idx = window_indices(input_shape, kernel, stride, before, dilation, out_shape)
        geometry = {"input_shape": input_shape, "kernel": kernel, "stride": stride,
                    "padding": pad, "dilation": dilation}
        return cls(idx, int(np.prod(input_shape)), input_shape=input_shape, output_shape=tuple(out_shape),
                   kernel_shape=kernel, geometry=geometry)

    @classmethod
    def blocks(cls, input_shape, block) -> "Partition":
        """Non-overlapping blocks tiling the map (Fig. 47.86, left).

        Each block dimension must divide the map's.

        >>> Partition.blocks((4, 6), (2, 3)).P
        4
        """
        input_shape = val.as_shape(input_shape, "input_shape")
        block = val.as_int_tuple(block, "block", len(input_shape))
        for a, (n, b) in enumerate(zip(input_shape, block)):
            if n % b:
                raise ValueError(f"block {block} does not tile input_shape {input_shape}: {n} % {b} != 0 on axis {a}")
        return cls.sliding_window(input_shape, block, stride=block, padding=0)

    # ------------------------------------------------------------------ operators
    def matrix(self) -> sp.csr_array:
        """V as a sparse ``(P*S, M)`` 0/1 matrix, patch-major (47.1149, 47.1153)."""
        if self._V is None:
            flat = self.indices.ravel()
            keep = flat >= 0
            # 32-bit indices whenever they fit: V and everything built from it stay ~12 bytes per nonzero.
            itype = np.int32 if max(flat.size, self.M) < np.iinfo(np.int32).max else np.int64
            indptr = np.concatenate(([0], np.cumsum(keep))).astype(itype)
            self._V = sp.csr_array((np.ones(int(keep.sum())), flat[keep].astype(itype), indptr),
                                   shape=(self.P * self.S, self.M))
        return self._V

    def membership(self) -> sp.csr_array:
        """``(I_P kron 1_S^T) V``: row p marks the entries that form ``h_p`` (47.1151).

        An entry repeated inside one subvector is counted as often as it appears.
        """
        rows = np.repeat(np.arange(self.P), self.S)
        cols = self.indices.ravel()
        keep = cols >= 0
        out = sp.coo_array((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(self.P, self.M))
        return out.tocsr()

    def apply(self, h) -> np.ndarray:
        """``V h = col{h_1, ..., h_P}`` by gathering (47.1152).

        ``h`` is a vector (M,) or a matrix (M, N) whose columns are samples.
        """
        h = val.as_vector_or_columns(h, "h", self.M)
        flat = self.indices.ravel()
        if not self._padded:
            return h[flat]
        out = h[np.maximum(flat, 0)]
        out[flat < 0] = 0.0
        return out

    def adjoint(self, g) -> np.ndarray:
        """``V^T g``: every entry of ``g`` added back to the entry it came from.

        This is the scatter-add that carries sensitivities back through a
        partition; ``g`` is (P*S,) or (P*S, N).
        """
        g = val.as_vector_or_columns(g, "g", self.P * self.S)
        tail = g.shape[1:]
        offset_major = np.swapaxes(g.reshape((self.P, self.S) + tail), 0, 1).reshape((self.S * self.P,) + tail)
        return np.asarray(self._offset_major_adjoint() @ offset_major, dtype=g.dtype)

    def gather(self, maps: np.ndarray, axis: int = 0) -> np.ndarray:
        """All patches of a stack of maps, kernel offset first: ``H[s, p, n, j]``.

        ``maps`` is ``(M, N, D)`` (entry, sample, map). Row ``s`` of the result
        holds the rows ``p*S + s`` of ``V maps``: V's rows reordered
        offset-major (the commutation matrix ``K_{P,S}``), so every kernel
        offset is one contiguous block and a correlation becomes one small
        GEMM per offset. ``H[:, :, n, j]`` is the book's ``H_n^(j)`` (47.1211).
        A padded entry reads zero (47.1129). With ``axis``, the entries run
        along that axis of ``maps`` instead, and the two axes ``(S, P)`` take
        its place: ``(N, D, M)`` with ``axis=2`` gives ``H[n, j, s, p]``.

        >>> V = Partition.sliding_window(3, 2)
        >>> V.gather(np.arange(3.0).reshape(3, 1, 1))[:, :, 0, 0].tolist()
        [[0.0, 1.0], [1.0, 2.0]]
        """
        if self._padded:                             # index -1 reads the zero appended after the last entry
            shape = list(maps.shape)
            shape[axis] = 1
            maps = np.concatenate((maps, np.zeros(shape, dtype=maps.dtype)), axis=axis)
        return np.take(maps, self.indices.T, axis=axis)    # the same as maps[indices.T], in fewer steps

    def scatter_add(self, G: np.ndarray) -> np.ndarray:
        """The adjoint of :meth:`gather`: ``V^T`` applied to offset-major patches.

        ``G`` is ``(S, P, N, D)``; the result ``(M, N, D)`` adds every patch entry
        back onto the map entry it was read from (padded entries are dropped).
        """
        S, P, N, D = G.shape
        flat = G.reshape(S * P, N * D)
        VT = self._offset_major_adjoint()
        if VT.dtype != G.dtype:                  # keep float32 in float32 (0/1 entries are exact in any float type)
            cast = self.__dict__.setdefault("_VT_cast", {})     # cast once per dtype, not on every call
            if G.dtype not in cast:
                cast[G.dtype] = VT.astype(G.dtype)
            VT = cast[G.dtype]
        return np.asarray(VT @ flat).reshape(self.M, N, D)

    def _offset_major_adjoint(self) -> sp.csr_array:
        if self._VT_offset_major is None:
            idx = self.indices.T.ravel()                     # row s*P + p reads entry idx
            rows = np.flatnonzero(idx >= 0)
            V = sp.csr_array((np.ones(rows.size), (rows, idx[rows])), shape=(idx.size, self.M))
            self._VT_offset_major = V.T.tocsr()
        return self._VT_offset_major

    def patches(self, h) -> np.ndarray:
        """``H = [h_1 ... h_P]``, shape (S, P), or (S, P, N) for sample columns (47.1157).

        >>> H = Partition.sliding_window(3, 2).patches([1.0, 2.0, 3.0])
        >>> H.tolist()
        [[1.0, 2.0], [2.0, 3.0]]
        """
        stacked = self.apply(h)
        tail = stacked.shape[1:]
        return np.swapaxes(stacked.reshape((self.P, self.S) + tail), 0, 1)

    def to_sympy(self):
        """V as a SymPy ``SparseMatrix`` (exact 0/1 entries), for symbolic proofs."""
        import sympy

        flat = self.indices.ravel()
        rows = np.flatnonzero(flat >= 0)
        return sympy.SparseMatrix(self.P * self.S, self.M, {(int(r), int(flat[r])): 1 for r in rows})

    def index_lists(self, *, one_based: bool = False) -> list[list[int | None]]:
        """The subvectors as lists of indices (``None`` for a padded entry)."""
        shift = 1 if val.as_bool(one_based, "one_based") else 0
        return [[int(i) + shift if i >= 0 else None for i in row] for row in self.indices]

    # ------------------------------------------------------------------ dunder
    def __eq__(self, other) -> bool:
        if not isinstance(other, Partition):
            return NotImplemented
        return self.M == other.M and self.indices.shape == other.indices.shape and bool(
            np.array_equal(self.indices, other.indices))

    __hash__ = None

    def __repr__(self) -> str:
        if self.geometry is not None:
            g = self.geometry
            return (f"Partition.sliding_window(input_shape={g['input_shape']}, kernel={g['kernel']}, "
                    f"stride={g['stride']}, padding={g['padding']}, dilation={g['dilation']})"
                    f"  # P={self.P}, S={self.S}, M={self.M}")
        return f"Partition(P={self.P}, S={self.S}, M={self.M})"

    # ------------------------------------------------------------------ V as a matrix
    # numpy defers ``array @ V`` to ``V.__rmatmul__`` instead of treating V as an object scalar
    __array_ufunc__ = None
    ndim = 2

    @property
    def shape(self) -> tuple[int, int]:
        """``(P*S, M)``, the shape of V (47.1152)."""
        return (self.P * self.S, self.M)

    @property
    def dtype(self) -> np.dtype:
        """V's entries are 0 and 1, applied in float64 (a float32 operand keeps float32)."""
        return np.dtype(np.float64)

    @property
    def nnz(self) -> int:
        """The number of stored ones of V: the window entries that are not padding."""
        return int((self.indices >= 0).sum())

    def __matmul__(self, other):
        """``V @ h``: a vector (M,), a matrix (M, N) whose columns are samples, or a sparse matrix.

        >>> V = Partition.from_indices([[0, 2], [1, 2]], 3)
        >>> (V @ np.array([1.0, 2.0, 3.0])).tolist()
        [1.0, 3.0, 2.0, 3.0]
        >>> (V.T @ np.ones(4)).tolist()
        [1.0, 1.0, 2.0]
        """
        if sp.issparse(other):
            return self.matrix() @ other
        return self._matvec_or_matmat(other, "V @ h")

    def __rmatmul__(self, other):
        """``g @ V`` for a row vector (P*S,) or a matrix (N, P*S): ``(V^T g^T)^T``."""
        if sp.issparse(other):
            return other @ self.matrix()
        arr = _operand(other, "g @ V", self.P * self.S, axis=-1)
        return self.adjoint(arr.T).T

    def _matvec_or_matmat(self, h, what: str = "V @ h"):
        arr = _operand(h, what, self.M, axis=0)
        return self.apply(arr)

    def matvec(self, h) -> np.ndarray:
        """``V h`` for ``scipy.sparse.linalg.aslinearoperator`` (a vector, or a column (M, 1))."""
        return self._matvec_or_matmat(h, "V.matvec(h)")

    def matmat(self, H) -> np.ndarray:
        """``V H`` for a matrix whose columns are samples."""
        return self._matvec_or_matmat(H, "V.matmat(H)")

    def rmatvec(self, g) -> np.ndarray:
        """``V^T g``: the scatter-add of :meth:`adjoint`."""
        return self.adjoint(_operand(g, "V.rmatvec(g)", self.P * self.S, axis=0))

    def rmatmat(self, G) -> np.ndarray:
        """``V^T G`` for a matrix whose columns are samples."""
        return self.adjoint(_operand(G, "V.rmatmat(G)", self.P * self.S, axis=0))

    @property
    def T(self) -> sp.csr_array:
        """``V^T``, the ``(M, P*S)`` scatter matrix, as a sparse array."""
        return sp.csr_array(self.matrix().T)

    def __str__(self) -> str:
        """Sizes, nonzeros, padding and geometry: what ``print(V)`` shows.

        >>> print(Partition.sliding_window((4, 4), 3, padding=1, stride=2))
        Partition V: 36 x 16 (P=4 windows of S=9 entries over M=16), 25 nonzeros, 11 padded entries
          sliding windows: map (4, 4) -> (2, 2), kernel (3, 3), stride (2, 2), padding (1, 1), dilation (1, 1)
        """
        padded = self.P * self.S - self.nnz
        head = (f"Partition V: {self.P * self.S} x {self.M} (P={self.P} windows of S={self.S} entries over "
                f"M={self.M}), {self.nnz} nonzeros, {padded} padded entries")
        if self.geometry is not None:
            g = self.geometry
            return (head + f"\n  sliding windows: map {g['input_shape']} -> {self.output_shape}, kernel {g['kernel']}, "
                    f"stride {g['stride']}, padding {g['padding']}, dilation {g['dilation']}")
        counts = np.bincount(self.indices[self.indices >= 0], minlength=self.M)
        return head + (f"\n  unstructured: each entry of h used {int(counts.min())} to {int(counts.max())} times")

    def _repr_latex_(self):
        """V entry by entry (0/1) when it has at most :data:`partitionnet.display.LATEX_MAX` rows and columns."""
        from .display import latex_matrix

        body = latex_matrix(self.matrix())
        return None if body is None else f"$V = {body}$"

    def _repr_png_(self):
        """A spy plot of a large V with its patch blocks marked (``None`` when small or without matplotlib)."""
        from .display import LATEX_MAX, spy_png

        if max(self.shape) <= LATEX_MAX:
            return None
        blocks = np.arange(0, self.P * self.S, self.S) if self.P <= 200 else None
        return spy_png(self.matrix(), row_blocks=blocks, title=f"V: {self.shape[0]} x {self.shape[1]}, "
                       f"{self.nnz} nonzeros, {self.P} patches of {self.S}")


def _operand(x, what: str, n: int, axis: int) -> np.ndarray:
    """A dense vector or matrix operand of ``@`` whose ``axis`` must have ``n`` entries (clear errors)."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{what}: expected a numeric vector or matrix, got {val.kind_of(x)}")
    try:
        arr = np.asarray(x)
    except Exception as err:  # noqa: BLE001 - report whatever numpy refused
        raise TypeError(f"{what}: expected a numeric vector or matrix, got {val.kind_of(x)} ({err})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{what}: expected numbers, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise ValueError(f"{what}: expected a vector or a matrix whose columns are samples, got shape {arr.shape}")
    if arr.shape[axis] != n:
        where = "entries" if arr.ndim == 1 else ("rows" if axis == 0 else "columns")
        raise ValueError(f"{what}: the operand must have {n} {where}, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


# ---------------------------------------------------------------------- helpers
def _index_array(index_lists, name: str) -> np.ndarray:
    """Turn nested sequences of ints into an int array, rejecting ragged input."""
    if isinstance(index_lists, np.ndarray):
        arr = index_lists
    else:
        if isinstance(index_lists, (str, bytes)) or not isinstance(index_lists, Sequence):
            raise TypeError(f"{name} must be a sequence of index lists, got {type(index_lists).__name__}")
        rows = list(index_lists)
        lengths = set()
        for i, row in enumerate(rows):
            if isinstance(row, (str, bytes)) or not isinstance(row, (Sequence, np.ndarray)):
                raise TypeError(f"{name}[{i}] must be a sequence of integers, got {type(row).__name__}")
            lengths.add(len(row))
        if len(lengths) > 1:
            raise ValueError(
                f"{name} is ragged: every subvector must have the same size S, got sizes {sorted(lengths)}"
            )
        arr = np.asarray(rows) if rows else np.zeros((0, 0), dtype=np.int64)
    if arr.size and not (np.issubdtype(arr.dtype, np.integer)):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
            raise TypeError(f"{name} must hold integers, got floats (dtype {arr.dtype}); pass ints")
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _check_index_range(arr: np.ndarray, lo: int, hi: int, name: str, base: str, size: int) -> None:
    """Raise ``ValueError`` naming the first entry of ``arr`` outside ``[lo, hi]``."""
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        where = tuple(int(i) for i in np.argwhere((arr < lo) | (arr > hi))[0])
        raise ValueError(
            f"{name} must lie in [{lo}, {hi}] ({base}, size={size}); found {int(arr[where])} at position {where}"
        )


def _shift_and_check_range(arr: np.ndarray, size: int, name: str, one_based: bool) -> np.ndarray:
    lo, hi = (1, size) if one_based else (0, size - 1)
    _check_index_range(arr, lo, hi, name, "1-based" if one_based else "0-based", size)
    return arr - 1 if one_based else arr.copy()


def _checked_shape(shape, name: str, total: int, what: str) -> tuple[int, ...]:
    """A map shape whose entries multiply to ``total`` (``(total,)`` when ``shape`` is None)."""
    if shape is None:
        return (total,)
    out = val.as_shape(shape, name, max_ndim=None)
    if int(np.prod(out)) != total:
        raise ValueError(f"{name} {out} has {int(np.prod(out))} entries, but {what} is {total}")
    return out


def _resolve_padding(padding, kernel, stride, dilation, ndim, input_shape=None):
    """Per-axis padding from any accepted form: a tuple of ints when every axis is padded
    symmetrically, else a tuple of ``(before, after)`` pairs (one per axis).

    Accepted: an int; one int or one ``(before, after)`` pair per axis; or a mode,
    ``'valid'`` (none), ``'full'`` (``dilation*(kernel-1)`` on both sides) or
    ``'same'`` (``ceil(n/stride)`` positions, TensorFlow's split with the odd
    zero after, :func:`~partitionnet._windows.same_padding`; needs ``input_shape``).
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in _PADDING_MODES:
            raise ValueError(f"padding must be an int, a tuple of ints or (before, after) pairs, or one of "
                             f"{_PADDING_MODES}, got {padding!r}")
        if mode == "valid":
            return (0,) * ndim
        if mode == "full":
            return tuple(d * (k - 1) for k, d in zip(kernel, dilation))
        if input_shape is None:
            raise ValueError("padding='same' needs the input shape")
        pairs = tuple(same_padding(n, k, s, d) for n, k, s, d in zip(input_shape, kernel, stride, dilation))
    elif isinstance(padding, (numbers.Integral, np.integer)) and not isinstance(padding, bool):
        return val.as_int_tuple(padding, "padding", ndim, minimum=0)
    else:
        if isinstance(padding, (bytes, bool)) or not isinstance(padding, (Sequence, np.ndarray)):
            raise TypeError(f"padding must be an int, a tuple of ints or (before, after) pairs, or one of "
                            f"{_PADDING_MODES}, got {val.kind_of(padding)} {padding!r}")
        items = list(padding)
        if len(items) != ndim:
            raise ValueError(f"padding must have {ndim} entries (one per axis, each an int or a (before, after) "
                             f"pair), got {len(items)}: {padding!r}")
        pairs = []
        for a, item in enumerate(items):
            if isinstance(item, (Sequence, np.ndarray)) and not isinstance(item, (str, bytes)):
                if len(item) != 2:
                    raise ValueError(f"padding[{a}] must be an int or a (before, after) pair, got {len(item)} "
                                     f"entries: {item!r}")
                pairs.append(val.as_int_tuple(item, f"padding[{a}]", 2, minimum=0))
            else:
                pairs.append((val.as_positive_int(item, f"padding[{a}]", minimum=0),) * 2)
        pairs = tuple(pairs)
    if all(b == a for b, a in pairs):
        return tuple(b for b, _ in pairs)
    return pairs
