"""Locally connected, tiled, global and channel pooling layers: the identities the layer contract cannot state.

The contract (tests/test_layers.py) already checks every registered kind on its
own. Here: ``LocallyConnected`` against an independent numpy re-implementation
of the semantics of ``jax.lax.conv_general_dilated_local``; a tiled layer with
one tile is a ``Correlation`` and with as many tiles as positions a
``LocallyConnected`` layer; the masked operator reduces to (47.1257) for a
shared mask; pooling identities and tie rules; whole networks through both
engines; and clear errors for bad arguments.
"""
import numpy as np
import pytest

from partitionnet import Network, Partition
from partitionnet import layers as L
from partitionnet.algebra import SCIPY, SYMPY
from partitionnet.layers.correlation import backprop_operator
from partitionnet.layers.locally_connected import local_backprop_operator, weights_from_jax

from _helpers import assert_rel, randomise


# ---------------------------------------------------------------------- JAX semantics, written out in numpy
def jax_local(lhs, rhs, strides, padding, filter_shape, rhs_dilation):
    """Unshared correlation as ``conv_general_dilated_local`` defines it (NCHW, OIHW, no lhs dilation).

    ``lhs`` is ``(N, C, *spatial)``; ``rhs`` is ``(O, C * prod(filter), *out)``
    with its second axis channel-major then the filter offsets in row-major
    order; ``padding`` is a list of (low, high) pairs.
    """
    N, C = lhs.shape[:2]
    nd = lhs.ndim - 2
    padded = np.pad(lhs, [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    out_shape = tuple((padded.shape[2 + a] - rhs_dilation[a] * (filter_shape[a] - 1) - 1) // strides[a] + 1
                      for a in range(nd))
    assert rhs.shape[2:] == out_shape
    out = np.zeros((N, rhs.shape[0]) + out_shape)
    for o in np.ndindex(*out_shape):
        # the receptive window of output position o, channel-major then row-major filter offsets
        patch = np.empty((N, C) + tuple(filter_shape))
        for k in np.ndindex(*filter_shape):
            src = tuple(o[a] * strides[a] + k[a] * rhs_dilation[a] for a in range(nd))
            patch[(slice(None), slice(None)) + k] = padded[(slice(None), slice(None)) + src]
        flat = patch.reshape(N, -1)                                   # (N, C * prod(filter)), C order
        out[(slice(None), slice(None)) + o] = flat @ rhs[(slice(None), slice(None)) + o].T
    return out


JAX_CASES = [  # in_maps, shape, maps, kernel, stride, padding, dilation
    (1, (5, 4), 2, (2, 3), (1, 1), (0, 0), (1, 1)),
    (2, (6, 5), 3, (3, 2), (2, 1), (1, 0), (1, 2)),
    (3, (7,), 2, (3,), (2,), (2,), (2,)),
    (2, (3, 4, 3), 2, (2, 2, 2), (1, 2, 1), (1, 0, 1), (1, 1, 2)),
    (1, (5, 6), 2, (2, 3), (2, 1), ((0, 1), (2, 1)), (1, 1)),                # (low, high) pairs, as JAX takes
]


@pytest.mark.parametrize("in_maps, shape, maps, kernel, stride, padding, dilation", JAX_CASES)
def test_locally_connected_matches_jax_semantics(in_maps, shape, maps, kernel, stride, padding, dilation):
    rng = np.random.default_rng(0)
    net = Network(shape, in_maps, [L.LocallyConnected(maps, kernel=kernel, stride=stride, padding=padding,
                                                      dilation=dilation)], rng=0)
    out_shape = net.layers[0].out_shape
    rhs = rng.standard_normal((maps, in_maps * int(np.prod(kernel))) + out_shape)
    x = rng.standard_normal((4, in_maps) + shape)
    pairs = [p if isinstance(p, tuple) else (p, p) for p in padding]
    expected = jax_local(x, rhs, stride, pairs, kernel, dilation)
    P = int(np.prod(out_shape))
    net.set_parameters({"local1.W": weights_from_jax(rhs, kernel), "local1.Theta": np.zeros((P, maps))})
    assert_rel(net.forward(x), expected, "LocallyConnected vs conv_general_dilated_local semantics")
    # the bias: one per position and output map, subtracted (the book's sign)
    Theta = rng.standard_normal((P, maps))
    net.set_parameters({"local1.W": weights_from_jax(rhs, kernel), "local1.Theta": Theta})
    bias_maps = np.stack([Theta[:, d].reshape(out_shape, order="F") for d in range(maps)])
    assert_rel(net.forward(x), expected - bias_maps[None], "LocallyConnected bias")


def test_jax_check_can_fail():
    """The re-implementation is sensitive to the weight layout: transposing the filter offsets breaks agreement."""
    rng = np.random.default_rng(1)
    net = Network((4, 4), 1, [L.LocallyConnected(1, kernel=(2, 2))], rng=0)
    rhs = rng.standard_normal((1, 4, 3, 3))
    x = rng.standard_normal((2, 1, 4, 4))
    swapped = rhs.reshape(1, 2, 2, 3, 3).transpose(0, 2, 1, 3, 4).reshape(1, 4, 3, 3)   # column-major offsets
    net.set_parameters({"local1.W": weights_from_jax(swapped, (2, 2)), "local1.Theta": np.zeros((9, 1))})
    assert not np.allclose(net.forward(x), jax_local(x, rhs, (1, 1), [(0, 0), (0, 0)], (2, 2), (1, 1)))


# ---------------------------------------------------------------------- the masked operator
def test_masked_operator_reduces_to_47_1257_for_a_shared_mask():
    V = Partition.sliding_window((4, 3), 2, padding=1)
    w = np.random.default_rng(2).standard_normal(V.S)
    masks = np.tile(w, (V.P, 1))
    assert_rel(local_backprop_operator(V, masks).toarray(), backprop_operator(V, w).toarray(), "shared mask")
    import sympy

    ws = sympy.symbols(f"w0:{V.S}")
    exact = local_backprop_operator(V, np.array([list(ws)] * V.P, dtype=object), SYMPY)
    assert sympy.Matrix(exact) == sympy.Matrix(backprop_operator(V, list(ws), SYMPY))


def test_masked_operator_is_the_patchwise_transpose():
    """Column p of ``V_loc`` is ``V_p^T w_p``: entry (m, p) sums the mask entries of patch p that read m."""
    V = Partition.sliding_window(5, 3, stride=2, padding=1)
    masks = np.random.default_rng(3).standard_normal((V.P, V.S))
    expected = np.zeros((V.M, V.P))
    for p in range(V.P):
        for s in range(V.S):
            if V.indices[p, s] >= 0:
                expected[V.indices[p, s], p] += masks[p, s]
    assert_rel(local_backprop_operator(V, masks, SCIPY).toarray(), expected, "V_loc")
    with pytest.raises(ValueError, match=r"masks must have shape \(P, S\)"):
        local_backprop_operator(V, masks[:, :2])


# ---------------------------------------------------------------------- tiled: the two limits
def _pair(layers_a, layers_b, shape, in_maps, rng):
    a, b = Network(shape, in_maps, layers_a, rng=0), Network(shape, in_maps, layers_b, rng=0)
    x = rng.standard_normal((3, in_maps) + shape)
    return a, b, x


@pytest.mark.parametrize("engine", ["fast", "kronecker"])
def test_one_tile_is_a_correlation(engine):
    rng = np.random.default_rng(4)
    geo = dict(kernel=(3, 2), stride=(1, 2), padding=1, dilation=(2, 1))
    tiled, conv, x = _pair([L.TiledCorrelation(3, tiles=1, **geo), L.Activation("tanh")],
                           [L.Correlation(3, bias="tied", **geo), L.Activation("tanh")], (6, 5), 2, rng)
    randomise(conv, rng)
    p = conv.parameters()
    tiled.set_parameters({"tiled1.W": p["conv1.W"][None], "tiled1.Theta": p["conv1.Theta"]})
    assert_rel(tiled.forward(x), conv.forward(x), "outputs")
    gamma = rng.standard_normal(conv.forward(x).shape)
    gt, gc = tiled.gradients(x, gamma, engine=engine), conv.gradients(x, gamma, engine=engine)
    assert_rel(gt["tiled1.W"][0], gc["conv1.W"], "dW")
    assert_rel(gt["tiled1.Theta"], gc["conv1.Theta"], "dTheta")
    assert_rel(tiled.input_gradient(x, gamma, engine=engine), conv.input_gradient(x, gamma, engine=engine), "dx")


@pytest.mark.parametrize("engine", ["fast", "kronecker"])
def test_tiles_equal_to_the_output_shape_are_a_locally_connected_layer(engine):
    rng = np.random.default_rng(5)
    geo = dict(kernel=2, stride=(2, 1), padding=(1, 0))
    tiled, local, x = _pair([L.TiledCorrelation(2, tiles=(3, 3), **geo)], [L.LocallyConnected(2, **geo)],
                            (5, 4), 2, rng)
    assert tiled.layers[0].out_shape == (3, 3)
    randomise(local, rng)
    p = local.parameters()
    tiled.set_parameters({"tiled1.W": p["local1.W"], "tiled1.Theta": p["local1.Theta"]})
    assert_rel(tiled.forward(x), local.forward(x), "outputs")
    gamma = rng.standard_normal(local.forward(x).shape)
    gt, gl = tiled.gradients(x, gamma, engine=engine), local.gradients(x, gamma, engine=engine)
    assert_rel(gt["tiled1.W"], gl["local1.W"], "dW")
    assert_rel(gt["tiled1.Theta"], gl["local1.Theta"], "dTheta")
    assert_rel(tiled.input_gradient(x, gamma, engine=engine), local.input_gradient(x, gamma, engine=engine), "dx")


def test_tiles_repeat_periodically():
    """A (2, 3) tiling is the locally connected layer whose position (r, c) uses mask (r mod 2, c mod 3)."""
    rng = np.random.default_rng(6)
    tiled, local, x = _pair([L.TiledCorrelation(2, kernel=2, tiles=(2, 3))], [L.LocallyConnected(2, kernel=2)],
                            (6, 7), 1, rng)
    randomise(tiled, rng)
    W, Theta = tiled.parameters()["tiled1.W"], tiled.parameters()["tiled1.Theta"]
    out = tiled.layers[0].out_shape                                           # (5, 6)
    slot = [(r % 2) + 2 * (c % 3) for c in range(out[1]) for r in range(out[0])]   # column-stacked positions
    local.set_parameters({"local1.W": W[slot], "local1.Theta": Theta[slot]})
    assert_rel(tiled.forward(x), local.forward(x), "outputs")
    gamma = rng.standard_normal(local.forward(x).shape)
    gl = local.gradients(x, gamma)
    summed = np.zeros_like(W)
    np.add.at(summed, slot, gl["local1.W"])
    assert_rel(tiled.gradients(x, gamma)["tiled1.W"], summed, "a tile's gradient sums its positions'")


# ---------------------------------------------------------------------- pooling identities and tie rules
@pytest.mark.parametrize("kind, options", [("mean", {}), ("max", {}), ("l2", {}), ("lp", {"p": 3.0})])
def test_global_pool_is_a_pool_over_the_whole_map(kind, options):
    rng = np.random.default_rng(7)
    glob = Network((4, 3), 2, [L.GlobalPool(kind, **options)])
    pool = Network((4, 3), 2, [L.Pool(kind, (4, 3), **options)])
    x = rng.standard_normal((5, 2, 4, 3))
    assert_rel(glob.forward(x), pool.forward(x), "outputs")
    gamma = rng.standard_normal(glob.forward(x).shape)
    for engine in ("fast", "kronecker"):
        assert_rel(glob.input_gradient(x, gamma, engine=engine), pool.input_gradient(x, gamma), "dx")


def test_global_max_tie_rule_is_torchs():
    """Equal maxima: the first in row-major order gets the gradient, as in torch's AdaptiveMaxPool2d."""
    torch = pytest.importorskip("torch")
    net = Network((3, 3), 1, [L.GlobalPool("max")])
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 2, 0] = x[0, 0, 0, 2] = 5.0              # column-major first: (2, 0); row-major first: (0, 2)
    ours = net.input_gradient(x, np.zeros((1, 1, 1, 1)))              # dloss/dy = 2 y = 10
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.AdaptiveMaxPool2d(1)(tx).sum().backward()
    assert np.flatnonzero(ours.reshape(-1)).tolist() == np.flatnonzero(tx.grad.numpy().reshape(-1)).tolist() == [2]


def test_channel_max_tie_rule_and_maxout():
    net = Network((2,), 4, [L.ChannelPool("max", 2)])
    x = np.array([[[3.0, 1.0], [3.0, 2.0], [0.0, -1.0], [0.0, 4.0]]])   # ties at position 0 in both groups
    assert net.forward(x).tolist() == [[[3.0, 2.0], [0.0, 4.0]]]
    dx = net.input_gradient(x, np.zeros((1, 2, 2)))                     # dloss/dt = 2t
    assert dx.tolist() == [[[6.0, 0.0], [0.0, 4.0], [0.0, 0.0], [0.0, 8.0]]]   # ties: the first map of the group


def test_channel_pool_lp_does_not_overflow():
    net = Network((1,), 2, [L.ChannelPool("lp", 2, p=400)])
    y = net.forward(np.array([[[10.0], [1.0]]]))
    assert np.isfinite(y).all() and abs(y[0, 0, 0] - 10.0) < 1e-12
    dx = net.input_gradient(np.array([[[10.0], [1.0]]]), np.zeros((1, 1, 1)))
    assert np.isfinite(dx).all()


# ---------------------------------------------------------------------- whole networks
ARCHITECTURES = {
    "local-maxout-tiled-global": ((6, 5), 2, lambda: [
        L.LocallyConnected(4, kernel=3, padding=1), L.Activation("tanh"), L.ChannelPool("max", 2),
        L.TiledCorrelation(3, kernel=2, tiles=(2, 2), stride=(1, 2)), L.Activation("sigmoid"),
        L.GlobalPool("mean"), L.Flatten(), L.Dense(2)]),
    "1-D local, l2 channels, lp global": ((9,), 1, lambda: [
        L.LocallyConnected(3, kernel=3, dilation=2, stride=2), L.ChannelPool("mean", 3),
        L.TiledCorrelation(2, kernel=2, tiles=2, padding=1), L.GlobalPool("lp", p=3.0), L.Flatten()]),
}


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_networks_of_the_new_kinds_engines_and_differences(name):
    shape, in_maps, make = ARCHITECTURES[name]
    rng = np.random.default_rng(8)
    net = Network(shape, in_maps, make(), rng=1)
    randomise(net, rng)
    x = rng.standard_normal((3, in_maps) + shape)
    gamma = rng.standard_normal(net.forward(x).shape)
    fast, literal = net.gradients(x, gamma), net.gradients(x, gamma, engine="kronecker")
    params = net.parameters()
    eps = 1e-6
    for key in params:
        assert_rel(literal[key], fast[key], f"{name}: engines on {key}")
        flat = params[key].reshape(-1)
        idx = rng.choice(flat.size, size=min(6, flat.size), replace=False)
        for i in idx:
            shifted = flat.copy()
            shifted[i] += eps
            net.set_parameters({key: shifted.reshape(params[key].shape)})
            plus = net.loss(x, gamma)
            shifted[i] -= 2 * eps
            net.set_parameters({key: shifted.reshape(params[key].shape)})
            minus = net.loss(x, gamma)
            net.set_parameters({key: params[key]})
            fd = (plus - minus) / (2 * eps)
            assert abs(fd - fast[key].reshape(-1)[i]) <= 1e-6 * max(1.0, abs(fd)), f"{name}: {key}[{i}]"
    assert_rel(net.input_gradient(x, gamma, engine="kronecker"), net.input_gradient(x, gamma), "dx engines")


def test_float32_is_kept():
    net = Network((5, 5), 2, [L.LocallyConnected(2, kernel=2), L.ChannelPool("max", 2),
                              L.TiledCorrelation(1, kernel=2, tiles=2), L.GlobalPool("l2")], rng=0, dtype=np.float32)
    x = np.random.default_rng(9).standard_normal((2, 2, 5, 5)).astype(np.float32)
    y = net.forward(x)
    assert y.dtype == np.float32
    grads = net.gradients(x, np.zeros(y.shape, dtype=np.float32))
    assert all(g.dtype == np.float32 for g in grads.values())


def test_config_round_trip_through_a_saved_description():
    layer = L.TiledCorrelation(2, kernel=(2, 3), tiles=(2, 1), stride=2, padding=(1, 0)).build(1, (6, 7))
    again = L.TiledCorrelation.from_config(layer.config()).build(1, (6, 7))
    assert again.config() == layer.config() and again.slot.tolist() == layer.slot.tolist()
    assert L.GlobalPool.from_config(L.GlobalPool("lp", p=4).config()).config() == {"kind": "global_pool",
                                                                                   "pool_kind": "lp", "p": 4.0}


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("make, error, match", [
    (lambda: L.LocallyConnected(0, kernel=2), ValueError, "maps"),
    (lambda: L.LocallyConnected(2), ValueError, "kernel"),
    (lambda: L.LocallyConnected(2, kernel="3"), TypeError, "kernel"),
    (lambda: L.LocallyConnected(2, kernel=2, stride=1.5), TypeError, "stride"),
    (lambda: L.LocallyConnected(2, kernel=2, padding=None), TypeError, "padding"),
    (lambda: L.TiledCorrelation(2, kernel=2), ValueError, "tiles"),
    (lambda: L.TiledCorrelation(2, kernel=2, tiles=0), ValueError, "tiles"),
    (lambda: L.TiledCorrelation(2, kernel=2, tiles="2"), TypeError, "tiles"),
    (lambda: L.TiledCorrelation(2, kernel=2, tiles=(2, 1.5)), TypeError, "tiles"),
    (lambda: L.GlobalPool("median"), ValueError, "kind"),
    (lambda: L.GlobalPool(3), TypeError, "kind"),
    (lambda: L.GlobalPool("max", p=3), ValueError, "p is only used"),
    (lambda: L.GlobalPool("lp"), ValueError, "needs the exponent"),
    (lambda: L.GlobalPool("lp", p=0.5), ValueError, "p must be"),
    (lambda: L.GlobalPool("lp", p="2"), TypeError, "p must be"),
    (lambda: L.ChannelPool("max", 0), ValueError, "group"),
    (lambda: L.ChannelPool("max", 2.0), TypeError, "group"),
    (lambda: L.ChannelPool("subsample", 2), ValueError, "kind"),
])
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("layers, match", [
    ([L.TiledCorrelation(1, kernel=2, tiles=(2, 5))], r"tiles \(2, 5\) exceed the output shape \(3, 3\)"),
    ([L.TiledCorrelation(1, kernel=2, tiles=(1, 1, 1))], "one period per axis"),
    ([L.LocallyConnected(1, kernel=5)], "layer local1: kernel"),
    ([L.ChannelPool("max", 3)], "group=3 must divide the number of input maps, got 4"),
])
def test_bad_geometry_at_build(layers, match):
    with pytest.raises(ValueError, match=match):
        Network((4, 4), 4, layers)


def test_no_torch_twin_where_torch_has_none():
    pytest.importorskip("torch")
    net = Network((4,), 1, [L.LocallyConnected(1, kernel=2)], rng=0)
    p = {"W": net.parameters()["local1.W"], "Theta": net.parameters()["local1.Theta"]}
    with pytest.raises(NotImplementedError, match="#499"):
        net.layers[0].to_torch(p)
    tiled = L.TiledCorrelation(1, kernel=2, tiles=2).build(1, (4,))
    with pytest.raises(NotImplementedError, match="tiled"):
        tiled.to_torch({"W": np.ones((2, 2, 1)), "Theta": np.zeros((2, 1))})


def test_network_config_survives_json():
    import json

    layers = [L.LocallyConnected(2, kernel=2, padding="same"), L.ChannelPool("lp", 2, p=3.0),
              L.TiledCorrelation(2, kernel=(2, 1), tiles=(2, 3), padding=((0, 1), (1, 0))), L.GlobalPool("max")]
    net = Network((5, 4), 1, layers, rng=0)
    randomise(net, np.random.default_rng(10))
    again = Network.from_config(json.loads(json.dumps(net.config())))
    again.set_parameters(net.parameters())
    x = np.random.default_rng(11).standard_normal((2, 1, 5, 4))
    assert again.config() == net.config()
    assert np.array_equal(again.forward(x), net.forward(x))


def test_network_to_torch_with_the_new_kinds():
    torch = pytest.importorskip("torch")
    net = Network((6, 5), 2, [L.TiledCorrelation(4, kernel=3, tiles=1, stride=(1, 2), padding="same"),
                              L.Activation("relu"), L.ChannelPool("max", 2), L.GlobalPool("mean"), L.Flatten(),
                              L.Dense(3)], rng=0)
    randomise(net, np.random.default_rng(12))
    x = np.random.default_rng(13).standard_normal((4, 2, 6, 5))
    with torch.no_grad():
        ours = net.to_torch()(torch.from_numpy(x)).numpy()
    assert_rel(ours, net.forward(x), "Network.to_torch")


def test_weights_from_jax_refuses_a_wrong_shape():
    with pytest.raises(ValueError, match="does not fit kernel_shape"):
        weights_from_jax(np.ones((2, 5, 3, 3)), (2, 2))
