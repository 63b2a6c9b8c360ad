"""Direct convolution (the third of the four checks): the layers, their transposes and their
weight gradients written with scipy.signal agree with the partition-matrix network.

* forward: z^(d) = sum_j correlate(t_j, w_j^(d), mode) - bias (47.1212);
* sensitivity of a layer's input: sum_d convolve(delta^(d), w_j^(d), 'full') cropped
  (convolution chapter Eq. 8.45; the transpose of 'valid' is 'full' with the flipped kernel);
* weight gradient: sum_n correlate(pad(t_j), delta^(d), 'valid') (Eq. 8.48).
"""
import numpy as np
import pytest
import scipy.signal as signal

from partitionnet import ConvLayer, ConvNet, Partition, direct, unvec
from partitionnet import activations as act

from _helpers import assert_rel, randomise


def local_deltas(net, x, gamma):
    """delta^(c) = dLoss/dz^(c) for every correlation layer, as ``[p, n, d]`` arrays (47.1245, 47.1262)."""
    sens = net.sensitivities(x, gamma)
    net.forward(x)
    return [direct.from_maps(sens[f"conv{st.index}"]) for st in net.conv]


def layer_input(net, x, c):
    """The maps entering layer c, batch-first: x, or the pooled maps of layer c-1 from the trace."""
    if c == 1:
        return x
    prev = net.conv[c - 2]
    return direct.to_maps(net.cache.t[c - 2], prev.pooling.output_shape)


def build(ndim, padding, *, C=2, in_maps=2, maps=(3, 2), connections=None, bias="per_input", seed=0):
    shape = {1: (14,), 2: (8, 9)}[ndim]
    layers = [ConvLayer(maps[0], kernel=3, padding=padding, pooling="max", window=1)]
    if C == 2:
        layers.append(ConvLayer(maps[1], kernel=3 if padding != "valid" else 2, padding=padding,
                                pooling="mean", window=2, pool_options={"drop_remainder": True},
                                connections=connections))
    net = ConvNet(shape, in_maps, layers, [3], bias=bias, rng=seed)
    rng = np.random.default_rng(seed + 100)
    randomise(net, rng, weight_scale=0.6)
    x = rng.standard_normal((3, in_maps) + shape)
    gamma = rng.standard_normal((3, 3))
    return net, x, gamma


MODES = [pytest.param(n, m, id=f"{n}d-{m}") for n in (1, 2) for m in ("valid", "same", "full")]


# ------------------------------------------------------------------ forward: z is a sum of correlations
@pytest.mark.parametrize("ndim, padding", MODES)
def test_pre_activation_is_sum_of_correlations(ndim, padding):
    net, x, gamma = build(ndim, padding, connections=[[0, 2], [1]])
    net.forward(x)
    for st in net.conv:
        c = st.index
        t = layer_input(net, x, c)
        z = direct.to_maps(net.cache.z_conv[c - 1], st.partition.output_shape)
        assert_rel(direct.correlate_layer(net, c, t), z, f"conv{c} z")
        # The same, written out: scipy.signal.correlate with the padding as its mode (47.1212).
        bias = net.bias_sums(st)
        for n in range(t.shape[0]):
            for d in range(st.maps):
                ref = sum(signal.correlate(t[n, j], net.kernel(c, d + 1, j + 1), mode=padding)
                          for j in range(st.in_maps) if st.connections[d, j]) - bias[d]
                assert_rel(ref, z[n, d], f"conv{c} z[{n}, {d}] by hand")


# ------------------------------------------------------------------ backward: 'full' convolution (Eq. 8.45)
@pytest.mark.parametrize("ndim, padding", MODES)
def test_input_sensitivity_is_full_convolution(ndim, padding):
    net, x, gamma = build(ndim, padding, connections=[[0, 2], [1]])
    deltas = local_deltas(net, x, gamma)
    for st in net.conv:
        c = st.index
        delta = direct.to_maps(deltas[c - 1], st.partition.output_shape)
        kept = net.cache.tape[net.layers.index(st.layer)][0]           # what forward kept (H, or its stand-in)
        library, _ = st.layer.vjp(net.layer_parameters(f"conv{c}"), kept, deltas[c - 1])  # V^T G
        library = direct.to_maps(library, st.partition.input_shape)
        assert_rel(direct.input_sensitivity(net, c, delta), library, f"conv{c} input sensitivity")
        # Written out: the 'full' convolution of delta with the kernel covers the padded input;
        # crop the padding ('valid': nothing; 'same': (k-1)/2; 'full': k-1 on each side).
        pad = st.partition.geometry["padding"]
        for n in range(delta.shape[0]):
            for j in range(st.in_maps):
                full = sum(signal.convolve(delta[n, d], net.kernel(c, d + 1, j + 1), mode="full")
                           for d in range(st.maps) if st.connections[d, j])
                crop = tuple(slice(p, p + m) for p, m in zip(pad, st.partition.input_shape))
                assert_rel(full[crop], library[n, j], f"conv{c} full convolution, sample {n}, map {j}")
                # ... which is a correlation with the flipped kernel (the lecture notes' rule).
                flipped = sum(signal.correlate(delta[n, d], np.flip(net.kernel(c, d + 1, j + 1)), mode="full")
                              for d in range(st.maps) if st.connections[d, j])
                assert_rel(flipped[crop], library[n, j], "flip rule")


def test_input_sensitivity_equals_book_operators_47_1258():
    # Between layers, sum_{d'} V^(d,d',c+1) delta^(d',c+1) of the Kronecker formula (47.1257)
    # is the cropped 'full' convolution.
    net, x, gamma = build(2, "same", connections=[[0, 2], [1]])
    deltas = local_deltas(net, x, gamma)
    st = net.conv[1]
    delta = direct.to_maps(deltas[1], st.partition.output_shape)
    by_convolution = direct.from_maps(direct.input_sensitivity(net, 2, delta))                 # [p', n, j]
    for d in range(st.in_maps):
        b = sum(net.backprop_operator(1, d + 1, dp + 1) @ deltas[1][:, :, dp]
                for dp in range(st.maps) if st.connections[dp, d])
        assert_rel(by_convolution[:, :, d], b, f"V^({d + 1},d',2) delta")


def test_input_sensitivity_is_the_adjoint_of_the_layer():
    # <correlate(t) - correlate(0), delta> = <t, input_sensitivity(delta)>: the layer's linear part
    # and the 'full' convolution are transposes of each other, for a strided, dilated geometry too.
    rng = np.random.default_rng(3)
    for kw in ({"padding": "same"}, {"padding": 2, "stride": 2, "dilation": (1, 2)}):
        net = ConvNet((9, 10), 2, [ConvLayer(3, kernel=3, pooling=None, **kw)], [2], rng=1)
        randomise(net, rng, weight_scale=0.6)
        st = net.conv[0]
        t = rng.standard_normal((2, 2, 9, 10))
        delta = rng.standard_normal((2, 3) + st.partition.output_shape)
        lin = direct.correlate_layer(net, 1, t) - direct.correlate_layer(net, 1, np.zeros_like(t))
        lhs = np.sum(lin * delta)
        rhs = np.sum(t * direct.input_sensitivity(net, 1, delta))
        assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


# ------------------------------------------------------------------ weight gradient: 'valid' correlation (Eq. 8.48)
@pytest.mark.parametrize("ndim, padding", MODES)
@pytest.mark.parametrize("bias", ["per_input", "tied"])
def test_weight_gradient_is_valid_correlation(ndim, padding, bias):
    net, x, gamma = build(ndim, padding, connections=[[0, 2], [1]], bias=bias)
    deltas = local_deltas(net, x, gamma)
    g_fast = net.gradients(x, gamma, engine="fast")
    g_kron = net.gradients(x, gamma, engine="kronecker")
    for st in net.conv:
        c = st.index
        t = layer_input(net, x, c)
        delta = direct.to_maps(deltas[c - 1], st.partition.output_shape)
        dW, dTheta = direct.weight_gradient(net, c, t, delta)
        for g, engine in ((g_fast, "fast"), (g_kron, "kronecker")):
            assert_rel(dW, g[f"conv{c}.W"], f"{engine} conv{c}.W")
            assert_rel(dTheta, g[f"conv{c}.Theta"], f"{engine} conv{c}.Theta")
        # Written out: dw_j^(d) = sum_n correlate(pad(t_{n,j}), delta_n^(d), 'valid').
        pad = st.partition.geometry["padding"]
        for d in range(st.maps):
            for j in range(st.in_maps):
                if not st.connections[d, j]:
                    continue
                ref = sum(signal.correlate(np.pad(t[n, j], [(p, p) for p in pad]), delta[n, d], mode="valid")
                          for n in range(t.shape[0]))
                lib = unvec(g_fast[f"conv{c}.W"][j * st.S:(j + 1) * st.S, d], st.partition.kernel_shape)
                assert_rel(ref, lib, f"conv{c} dw_{j}^({d}) by hand")


# ------------------------------------------------------------------ a whole network by direct convolution
GENERAL = [
    pytest.param((16,), 1, [ConvLayer(2, kernel=3, padding="same", window=2),
                            ConvLayer(3, kernel=2, stride=2, dilation=2, padding=1, pooling="l2", window=1)],
                 {}, id="1d-stride-dilation"),
    pytest.param((10, 9), 2, [ConvLayer(3, kernel=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2),
                                        window=(1, 2), pool_options={"drop_remainder": True}),
                              ConvLayer(2, kernel=2, pooling="mean", window=2, pool_options={"drop_remainder": True},
                                        connections=[[0, 1], [2]])],
                 {"bias": "tied"}, id="2d-general-connections"),
    pytest.param((6, 5, 6), 1, [ConvLayer(2, kernel=2, padding=(1, 0, 0), stride=(1, 1, 2), window=(1, 2, 1)),
                                ConvLayer(2, kernel=2, pooling="subsample", window=(2, 1, 1),
                                          pool_options={"retain": 1})],
                 {"output": "softmax", "loss": "cross_entropy"}, id="3d"),
    pytest.param((4, 6), 1, [ConvLayer(2, partition=Partition.sliding_window((24,), 4, stride=2), pooling=None),
                             ConvLayer(2, kernel=3, padding="full", window=1)],
                 {"activation": "sigmoid"}, id="2d-input-1d-partition"),
]


@pytest.mark.parametrize("input_shape, in_maps, layers, kw", GENERAL)
def test_direct_gradients_equal_both_engines(input_shape, in_maps, layers, kw):
    net = ConvNet(input_shape, in_maps, layers, [3], rng=4, **kw)
    rng = np.random.default_rng(9)
    randomise(net, rng, weight_scale=0.6)
    x = rng.standard_normal((3, in_maps) + input_shape)
    gamma = rng.integers(0, 3, 3) if kw.get("loss") == "cross_entropy" else rng.standard_normal((3, 3))
    y, _ = direct.forward(net, x)
    assert_rel(y, net.forward(x), "outputs")
    g = direct.gradients(net, x, gamma)
    for engine in ("fast", "kronecker"):
        ref = net.gradients(x, gamma, engine=engine)
        for k in ref:
            assert_rel(g[k], ref[k], f"{engine} {k}")


# ------------------------------------------------------------------ layouts and errors
def test_maps_round_trip_and_column_stacking():
    from partitionnet import vec

    a = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    cols = direct.from_maps(a)
    assert cols.shape == (20, 2, 3)
    np.testing.assert_array_equal(cols[:, 1, 2], vec(a[1, 2]))
    np.testing.assert_array_equal(direct.to_maps(cols, (4, 5)), a)
    with pytest.raises(ValueError, match="has 12 positions, but the array has P=20"):
        direct.to_maps(cols, (3, 4))


def test_errors():
    part = Partition.from_indices([[0, 1], [1, 2], [2, 3]], 4)
    net = ConvNet(4, 1, [ConvLayer(1, partition=part, pooling=None)], [2], rng=0)
    with pytest.raises(ValueError, match="unstructured partition: there is no map"):
        direct.correlate_layer(net, 1, np.zeros((1, 1, 4)))
    net = ConvNet((5, 5), 2, [ConvLayer(3, kernel=3, pooling=None)], [2], rng=0)
    with pytest.raises(ValueError, match=r"c must be a layer number in \[1, 1\]"):
        direct.correlate_layer(net, 2, np.zeros((1, 2, 5, 5)))
    with pytest.raises(ValueError, match=r"t must have shape \(N, 2\) \+ \(5, 5\)"):
        direct.correlate_layer(net, 1, np.zeros((1, 3, 5, 5)))
    with pytest.raises(ValueError, match="t holds 2 samples but delta holds 1"):
        direct.weight_gradient(net, 1, np.zeros((2, 2, 5, 5)), np.zeros((1, 3, 3, 3)))
    # one sample without a batch axis
    t = np.random.default_rng(0).standard_normal((2, 5, 5))
    assert direct.correlate_layer(net, 1, t).shape == (3, 3, 3)
