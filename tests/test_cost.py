"""partitionnet.cost (issue 12): the per-layer cost table, checked against the slides' printed figures (source
[004], "Efficiency of convolution") and against the operators it counts."""
import numpy as np
import pytest

import partitionnet
from partitionnet import Network, layers as L
from partitionnet.cost import CostTable, LayerCost, cost
from partitionnet.linalg import convolution_matrix


def test_the_slides_table_is_reproduced():
    """[004]: a 2 x 1 kernel over a 320 x 280 image, output 319 x 280. The slides print: stored floats 2
    (convolution), 319*280*320*280 > 8e9 (dense), 2*319*280 = 178,640 (sparse); float multiplications or
    additions 319*280*3 = 267,960 (convolution, and the same for the sparse matrix), > 16e9 (dense)."""
    net = Network((320, 280), 1, [L.Correlation(1, kernel=(2, 1))], rng=0)
    assert net.layers[0].out_shape == (319, 280)
    row = partitionnet.cost(net)[0]
    assert row.weights == 2
    assert row.dense_entries == 319 * 280 * 320 * 280 == 8_003_072_000 and row.dense_entries > 8e9
    assert row.operator_nnz == 2 * 319 * 280 == 178_640
    assert row.sparse_flops == 319 * 280 * 3 == 267_960
    assert row.dense_flops > 16e9
    assert row.V_nnz == 178_640 and row.T_nnz is None
    assert row.parameters == 3                      # the two weights and the bias, which the operator leaves out
    text = str(partitionnet.cost(net))
    assert "178,640" in text and "267,960" in text and "8,003,072,000" in text


def _convnet():
    return Network((12, 12), 2, [L.Correlation(4, kernel=3, padding="same", stride=(1, 2)), L.Activation("tanh"),
                                 L.Pool("max", 2, drop_remainder=True), L.Flatten(), L.Dense(5), L.Softmax()],
                   loss="cross_entropy", rng=0)


def test_counts_agree_with_the_operators():
    net = _convnet()
    table = cost(net)
    assert isinstance(table, CostTable) and all(isinstance(r, LayerCost) for r in table)
    assert [r.layer for r in table] == [layer.name for layer in net.layers]
    assert sum(r.parameters for r in table) == sum(v.size for v in net.parameters().values())
    conv, act, pool, flat, dense, soft = net.layers
    r = table[0]
    assert r.V_nnz == conv.V.matrix().nnz == conv.V.nnz
    A = convolution_matrix(conv, params=net.layer_parameters(conv.name))
    assert r.operator_nnz == A.nnz == 4 * 2 * conv.V.nnz               # every (output map, input map) block
    assert (r.in_size, r.out_size) == (A.shape[1], A.shape[0])
    assert r.dense_entries == A.shape[0] * A.shape[1]
    assert r.sparse_flops == 2 * A.nnz - A.shape[0]                    # every output reads some input here
    assert r.dense_flops == A.shape[0] * (2 * A.shape[1] - 1)
    assert table[1].operator_nnz == act.P_in * act.in_maps            # tanh' never vanishes: a full diagonal
    assert table[2].T_nnz == pool.T.P and table[2].operator_nnz == pool.P_out * pool.in_maps   # one max per window
    assert table[3].operator_nnz == flat.P_in * flat.in_maps           # a permutation
    assert table[4].weights == dense.in_maps * dense.P_in * 5 and table[4].operator_nnz == table[4].weights
    assert table[5].operator_nnz == 25                                 # the softmax Jacobian is dense
    total = table.total()
    assert total["operator_nnz"] == sum(r.operator_nnz for r in table)
    assert total["dense_flops"] > total["sparse_flops"]


def test_structural_zeros_are_not_parameters():
    table = [[0], [0, 1], [1]]                                         # 3 output maps from 2 input maps (47.1213)
    net = Network((5, 5), 2, [L.Correlation(3, kernel=2, connections=table)], rng=0)
    row = cost(net)[0]
    assert row.weights == 4 * 4                                        # 4 connected pairs of 2 x 2 kernels
    sizes = {k: v.size for k, v in net.parameters().items()}
    present = {k: int(np.count_nonzero(net.structural_mask(k))) if net.structural_mask(k) is not None else v.size
               for k, v in net.parameters().items()}
    assert row.parameters == sum(present.values()) < sum(sizes.values())
    assert row.operator_nnz == 4 * net.layers[0].V.nnz


@pytest.mark.parametrize("kind", sorted(L.REGISTRY))
def test_every_layer_kind_has_a_row(kind):
    for i, (layer, in_maps, in_shape) in enumerate(L.REGISTRY[kind].examples()):
        net = Network(in_shape, in_maps, [layer], rng=i)
        (row,) = cost(net)
        assert row.kind == kind
        assert row.dense_entries == row.in_size * row.out_size
        assert 0 <= row.operator_nnz <= row.dense_entries
        assert row.sparse_flops <= row.dense_flops


def test_table_renders():
    table = cost(_convnet())
    text = str(table)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["layer", "kind", "parameters"] and lines[-1].startswith("total")
    assert len(lines) == 2 + 6 + 1
    md = table.to_markdown()
    assert md.count("\n") == 1 + 6 + 1 and md == table._repr_markdown_()
    assert table.as_dicts()[0]["layer"] == "conv1"


def test_bad_input():
    with pytest.raises(TypeError, match="net must be a partitionnet Network"):
        cost("net")
