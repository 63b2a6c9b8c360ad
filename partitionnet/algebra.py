"""Two small algebra namespaces, one for numbers and one for proofs.

A layer writes its explicit operator (its transposed Jacobian, e.g. the
``V^(d,d',c+1)`` of (47.1257)) once, as a function of an ``algebra``
argument. With :data:`SCIPY` the result is a ``scipy.sparse.csr_array`` that
the library multiplies with; with :data:`SYMPY` it is an exact
``sympy.SparseMatrix`` that ``partitionnet verify`` compares, entry by entry,
with the symbolic derivative of the layer's direct-summation reference. The
construction is shared, so the proof is a proof of the shipped code.

Each namespace offers the same handful of verbs:

``partition(V)``          V as a matrix (0/1 entries, patch-major, 47.1149)
``permutation(pool)``     the pooling permutation T (47.1203)
``matrix(rows, cols, values, shape)``  a sparse matrix from triplets
``dense(a)``              a dense 2-D array of numbers or symbols
``T(A)``, ``matmul(A, B)``, ``kron(A, B)``, ``eye(n)``, ``ones(n, m)``
``hadamard_ones_kron(A, m, n, w)``  ``A o (1_m 1_n^T kron w^T)`` (the Hadamard factor of 47.1257)
``diag(values)``, ``outer(u)``, ``block(blocks)``
``function(name, z)``     an activation or its derivative, elementwise

The SciPy namespace takes one shortcut, which the layer contract checks
against the literal form: every row of ``1_m 1_n^T kron w^T`` is the same,
so the Hadamard product is a column scaling of ``A``'s stored entries.

Examples
--------
>>> import numpy as np
>>> from partitionnet import Partition
>>> V = Partition.from_indices([[0, 1], [1, 2]], 3)
>>> SCIPY.T(SCIPY.partition(V)).shape
(3, 4)
>>> SYMPY.T(SYMPY.partition(V)).shape
(3, 4)
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["SCIPY", "SYMPY", "Algebra", "differentiable_max"]


class Algebra:
    """The verbs shared by both namespaces (see the module docstring)."""

    name = "abstract"

    def __repr__(self) -> str:
        return f"<algebra {self.name}>"


class _Scipy(Algebra):
    name = "scipy"

    def partition(self, V):
        return V.matrix()

    def permutation(self, pool):
        return pool.permutation()

    def matrix(self, rows, cols, values, shape):
        values = np.asarray(values)
        dtype = values.dtype if values.dtype.kind == "f" else np.float64
        return sp.csr_array((values.astype(dtype, copy=False), (np.asarray(rows), np.asarray(cols))), shape=shape)

    def dense(self, a):
        return sp.csr_array(np.atleast_2d(np.asarray(a, dtype=np.float64)))

    def T(self, A):
        return A.T.tocsr() if sp.issparse(A) else np.asarray(A).T

    def matmul(self, A, B):
        out = A @ B
        return out.tocsr() if sp.issparse(out) else out

    def kron(self, A, B):
        return sp.kron(A, B, format="csr")

    def eye(self, n):
        return sp.eye_array(n, format="csr")

    def ones(self, n, m=1):
        return np.ones((n, m))

    def hadamard_ones_kron(self, A, m, n, w):
        # Every row of 1_m 1_n^T kron w^T equals 1_n^T kron w^T, whose column c holds w[c mod len(w)]:
        # the Hadamard product scales each stored entry of A by its column's w, keeping A's sparsity.
        A = sp.csr_array(A)
        w = np.asarray(w, dtype=np.result_type(A.dtype, np.float64)).reshape(-1)
        return sp.csr_array((A.data * w[A.indices % w.size], A.indices, A.indptr), shape=A.shape)

    def diag(self, values):
        return sp.diags_array(np.asarray(values).reshape(-1), format="csr")

    def block(self, blocks):
        return sp.block_array(blocks, format="csr")

    def zeros(self, n, m):
        return sp.csr_array((n, m))

    def outer(self, u):
        u = np.asarray(u, dtype=np.float64).reshape(-1)
        return sp.csr_array(np.outer(u, u))

    def function(self, name, z):
        from .activations import get

        if name == "exp":
            return np.exp(np.asarray(z, dtype=np.float64))
        if name.endswith("'"):
            return get(name[:-1])[1](np.asarray(z, dtype=np.float64))
        return get(name)[0](np.asarray(z, dtype=np.float64))


class _Sympy(Algebra):
    name = "sympy"

    @property
    def _sp(self):
        import sympy

        return sympy

    def partition(self, V):
        return V.to_sympy()

    def permutation(self, pool):
        from .symbolic import permutation

        return permutation(pool)

    def matrix(self, rows, cols, values, shape):
        entries = {}
        for r, c, v in zip(np.asarray(rows).tolist(), np.asarray(cols).tolist(), list(values)):
            entries[(int(r), int(c))] = entries.get((int(r), int(c)), 0) + v
        return self._sp.SparseMatrix(int(shape[0]), int(shape[1]), entries)

    def dense(self, a):
        a = np.asarray(a, dtype=object)
        if a.ndim == 1:
            a = a[None, :]
        return self._sp.Matrix(a.tolist())

    def T(self, A):
        return A.T

    def matmul(self, A, B):
        return A * B

    def kron(self, A, B):
        from .symbolic import kron

        return kron(A, B)

    def eye(self, n):
        from .symbolic import eye

        return eye(n)

    def ones(self, n, m=1):
        from .symbolic import ones

        return ones(n, m)

    def hadamard_ones_kron(self, A, m, n, w):
        # Literally (47.1257): the dense Kronecker factor, then the sparse Hadamard product.
        from .symbolic import hadamard

        w_row = self._sp.SparseMatrix(1, len(w), list(w))
        return hadamard(A, self.kron(self.ones(m, n), w_row))

    def diag(self, values):
        values = list(values)
        return self._sp.SparseMatrix(len(values), len(values), {(i, i): v for i, v in enumerate(values)})

    def block(self, blocks):
        sympy = self._sp
        rows = []
        for row in blocks:
            rows.append(sympy.Matrix.hstack(*[sympy.Matrix(b) for b in row]))
        return sympy.SparseMatrix(sympy.Matrix.vstack(*rows))

    def zeros(self, n, m):
        return self._sp.SparseMatrix(n, m, {})

    def outer(self, u):
        u = self._sp.Matrix(list(np.asarray(u, dtype=object).reshape(-1)))
        return self._sp.SparseMatrix(u * u.T)

    def function(self, name, z):
        sympy = self._sp
        exprs = {
            "exp": lambda v: sympy.exp(v),
            "tanh": lambda v: sympy.tanh(v),
            "tanh'": lambda v: 1 - sympy.tanh(v) ** 2,
            "sigmoid": lambda v: 1 / (1 + sympy.exp(-v)),
            "sigmoid'": lambda v: sympy.exp(-v) / (1 + sympy.exp(-v)) ** 2,
            "relu": lambda v: sympy.Max(v, 0),
            "relu'": lambda v: sympy.Integer(1) if bool(v > 0) else sympy.Integer(0),
            "identity": lambda v: v,
            "identity'": lambda v: sympy.Integer(1),
        }
        f = exprs[name]
        return np.array([f(v) for v in np.asarray(z, dtype=object).reshape(-1)], dtype=object).reshape(
            np.shape(z))


#: Numbers: ``scipy.sparse.csr_array`` operators, the form the library multiplies with.
SCIPY = _Scipy()
#: Proofs: exact ``sympy.SparseMatrix`` operators, built by the same layer code.
SYMPY = _Sympy()


_MAX = None


def differentiable_max():
    """A SymPy ``max`` for proofs that differentiate and then evaluate at a point.

    ``f.replace(sympy.Max, differentiable_max())`` gives an expression whose
    derivative is d max(a)/d a_k = Heaviside(a_k - max(the other a)), left
    unevaluated until numbers are substituted, when it becomes SymPy's own
    ``Max`` and ``Heaviside`` again. SymPy's ``Max`` orders its arguments by
    assumption queries each time one is created, and every derivative of a max
    creates another: at the rational points of the proofs that was 80% of the
    time of the pooling rows. At a tie the step is Heaviside(0) = 1/2, so a
    proof evaluated at a tie fails rather than passing by chance.

    >>> import sympy
    >>> a, b = sympy.symbols("a b", real=True)
    >>> f = (sympy.Max(a, b, evaluate=False) ** 2).replace(sympy.Max, differentiable_max())
    >>> sympy.diff(f, a).subs({a: 3, b: 1})
    6
    >>> sympy.diff(f, a).subs({a: 1, b: 3})
    0
    """
    global _MAX
    if _MAX is None:
        import sympy

        class max_(sympy.Function):
            @classmethod
            def eval(cls, *args):
                if all(arg.is_number for arg in args):
                    return sympy.Max(*args)
                return None

            def fdiff(self, argindex=1):
                k = argindex - 1
                others = self.args[:k] + self.args[k + 1:]
                if not others:
                    return sympy.Integer(1)
                return sympy.Heaviside(self.args[k] - max_(*others), evaluate=False)

        _MAX = max_
    return _MAX
