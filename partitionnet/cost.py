"""What a network costs as sparse algebra, layer by layer, against dense matrices.

The lecture slides on convolutional networks ([004], the slide "Efficiency of Convolution") compare
three ways to apply a 2 x 1 kernel to a 320 x 280 image: the convolution itself, a dense matrix and a
sparse matrix. :func:`cost` makes that table for any :class:`~partitionnet.Network`: for every layer it counts

``parameters``
    the trainable entries (structural zeros of a connection table, 47.1213, left out);
``weights``
    the entries of its weight array ``W`` alone (the "convolution" column of the slides' stored floats);
``V nnz`` / ``T nnz``
    the ones stored in its partition V (47.1149) and pooling permutation T (47.1203), when it has them;
``operator nnz``
    the stored entries of its Jacobian, the operator of the layer (for a correlation the blocks
    ``V^(j,d)`` of 47.1257): the slides' "sparse matrix" stored floats;
``dense entries``
    ``(D_out P_out) x (D_in P_in)``, what the same Jacobian takes as a dense matrix;
``sparse flops`` / ``dense flops``
    the floating-point multiplications and additions of one product with that matrix for one sample:
    ``nnz`` products and ``nnz - rows`` sums sparse, ``rows (2 cols - 1)`` dense.

Biases are not part of the operator (as in the slides). For a nonlinear layer (max pooling, an
activation) the operator is its Jacobian at a fixed random input; its sparsity does not depend on that
input except where a derivative happens to be zero.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from . import _validate as val

__all__ = ["LayerCost", "CostTable", "cost"]

_COLUMNS = ("layer", "kind", "parameters", "weights", "V nnz", "T nnz", "operator nnz", "dense entries",
            "sparse flops", "dense flops")


@dataclass(frozen=True)
class LayerCost:
    """One row of :func:`cost`; counts are per sample. ``None`` where a layer has no V or T."""

    layer: str
    kind: str
    in_size: int
    out_size: int
    parameters: int
    weights: int
    V_nnz: int | None
    T_nnz: int | None
    operator_nnz: int
    dense_entries: int
    sparse_flops: int
    dense_flops: int

    def values(self) -> tuple:
        return (self.layer, self.kind, self.parameters, self.weights, self.V_nnz, self.T_nnz, self.operator_nnz,
                self.dense_entries, self.sparse_flops, self.dense_flops)


class CostTable(list):
    """A list of :class:`LayerCost` rows that prints as a table, with a total row."""

    def total(self) -> dict:
        """Sums over the layers of every count."""
        keys = ("parameters", "weights", "operator_nnz", "dense_entries", "sparse_flops", "dense_flops")
        return {k: int(sum(getattr(r, k) for r in self)) for k in keys}

    def as_dicts(self) -> list[dict]:
        return [asdict(r) for r in self]

    def _rows(self):
        t = self.total()
        rows = [[_fmt(v) for v in r.values()] for r in self]
        rows.append(["total", "", _fmt(t["parameters"]), _fmt(t["weights"]), "", "", _fmt(t["operator_nnz"]),
                     _fmt(t["dense_entries"]), _fmt(t["sparse_flops"]), _fmt(t["dense_flops"])])
        return rows

    def __str__(self) -> str:
        rows = [list(_COLUMNS)] + self._rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
        lines = ["  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """The table in Markdown (for notebooks and the README)."""
        out = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
        out += ["| " + " | ".join(r) + " |" for r in self._rows()]
        return "\n".join(out)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    return str(v)


def cost(net, *, rng=0) -> CostTable:
    """Per-layer sizes and costs of a network as sparse algebra against dense matrices.

    Parameters
    ----------
    net : partitionnet.Network
    rng : int or numpy Generator
        The random input at which the Jacobians of nonlinear layers are taken.

    Returns
    -------
    CostTable
        One :class:`LayerCost` per layer, in order; ``print`` it for a table.

    Examples
    --------
    The slides' example: a 2 x 1 kernel over a 320 x 280 image.

    >>> from partitionnet import Network, layers as L
    >>> row = cost(Network((320, 280), 1, [L.Correlation(1, kernel=(2, 1))], rng=0))[0]
    >>> row.weights, row.operator_nnz, row.dense_entries > 8e9, row.sparse_flops, row.dense_flops > 16e9
    (2, 178640, True, 267960, True)
    """
    from .model import Network

    if not isinstance(net, Network):
        raise TypeError(f"net must be a partitionnet Network (or ConvNet), got {val.kind_of(net)}")
    gen = val.as_rng(rng, "rng")
    table = CostTable()
    for layer in net.layers:
        p = net.layer_parameters(layer.name)
        n_params = 0
        for local, arr in p.items():
            mask = layer.structural_mask(local)
            n_params += int(arr.size if mask is None else np.count_nonzero(mask))
        weights = 0
        if "W" in p:
            mask = layer.structural_mask("W")
            weights = int(p["W"].size if mask is None else np.count_nonzero(mask))
        V, T = getattr(layer, "V", None), getattr(layer, "T", None)
        v_nnz = V.nnz if V is not None and hasattr(V, "nnz") else None
        t_nnz = int(T.permutation().nnz) if T is not None and hasattr(T, "permutation") else None
        x = None if getattr(layer, "linear", False) else gen.standard_normal((layer.P_in, layer.in_maps))
        JT = layer.operator(p, x)
        JT = JT.tocsc()
        JT.eliminate_zeros()
        nnz = int(JT.nnz)
        rows_used = int(np.count_nonzero(np.diff(JT.indptr)))     # outputs that depend on some input
        n_in, n_out = JT.shape
        table.append(LayerCost(layer=layer.name, kind=layer.kind, in_size=n_in, out_size=n_out,
                               parameters=n_params, weights=weights, V_nnz=v_nnz, T_nnz=t_nnz, operator_nnz=nnz,
                               dense_entries=n_in * n_out, sparse_flops=nnz + (nnz - rows_used),
                               dense_flops=n_out * (2 * n_in - 1)))
    return table
