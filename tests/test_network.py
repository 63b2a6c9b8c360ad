"""The network of 47.1205-47.1216 against an independent dense oracle.

* The two backward engines ('kronecker', literal 47.1275; 'fast', batched)
  agree to 1e-10 on a table of architectures.
* Both agree with central differences of :mod:`partitionnet.reference`
  (dense direct summation, no V or T) to 1e-6, and the forward pass and the
  loss agree with the reference to 1e-12.
* ``backprop_operator(c, d, d')`` (47.1257) is the transpose of the dense
  correlation matrix of layer c+1, i.e. of the Jacobian dz^(d',c+1)/dt^(d,c).
* The oracle itself is checked against ``scipy.signal.correlate``.
* Bad input raises a TypeError/ValueError that names the argument.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest
import scipy.signal
import scipy.sparse as sp

from partitionnet import ConvLayer as L
from partitionnet import ConvNet, Partition, Pooling, reference

# --------------------------------------------------------------------------- the architectures


@dataclass
class Case:
    """One architecture: ``ConvNet(input_shape, in_maps, layers, dense, **options)``, N samples."""

    id: str
    input_shape: object
    in_maps: int
    layers: list
    dense: list
    options: dict = field(default_factory=dict)
    n: int = 2
    labels: bool = False          # integer class labels as targets (cross-entropy only)


UNSTRUCTURED_10 = Partition.from_indices(   # overlapping subvectors, repeated entries (Fig. 47.86)
    [[0, 3, 7], [1, 1, 9], [2, 5, 8], [9, 0, 4], [6, 6, 6], [3, 2, 1]], 10)
UNSTRUCTURED_8 = Partition.from_indices([[0, 1], [2, 3], [4, 5], [6, 7], [7, 0], [3, 5], [1, 6]], 8)
UNSTRUCTURED_3 = Partition.from_indices([[0, 2], [1, 0], [2, 1], [1, 1]], 3)   # partitions 3 pooled entries

CASES = [
    # -- 1-D maps
    Case("1d-D1-valid-max-tanh-C1", (11,), 1,
         [L(2, kernel=3, padding="valid", pooling="max", window=3)], [2]),
    Case("1d-D3-stride2-dilation2-pad1-l2-sigmoid-C2", (17,), 3,
         [L(3, kernel=3, stride=2, padding=1, dilation=2, pooling="l2", window=2),
          L(2, kernel=3, padding="same", pooling="mean", window=2)],
         [4, 3], dict(activation="sigmoid", output="sigmoid")),
    Case("1d-D1-C3-mixed-activations-subsample-full-tied", (20,), 1,
         [L(2, kernel=3, padding=1, pooling="max", window=2, activation="tanh"),
          L(3, kernel=2, pooling="subsample", window=3, activation="sigmoid"),
          L(2, kernel=2, padding="full", pooling="l2", window=2, activation="identity")],
         [3, 2], dict(activation="relu", bias="tied")),
    Case("1d-D1-regions-unequal-lp3", (9,), 1,
         [L(2, kernel=3, pooling=Pooling.from_regions([[0, 1, 2, 6], [3, 5], [4]], 7, kind="lp", p=3))],
         [2]),
    Case("1d-D3-regions-correlation-vector-mask-identity", (8,), 3,
         [L(2, kernel=2, dilation=2, activation="identity",
            pooling=Pooling.from_regions([[5, 0], [1, 2, 4], [3]], 6, kind="correlation",
                                         mask=[0.5, -1.0, 2.0, 0.3, 1.5, -0.7]))],
         [2], dict(output="tanh")),
    # -- 2-D maps
    Case("2d-D3-same-max-mean-sigmoid-out-C2", (6, 6), 3,              # the issue's example
         [L(2, kernel=3, padding="same", window=2), L(3, kernel=2, pooling="mean", window=2)],
         [4, 2], dict(output="sigmoid")),
    Case("2d-D1-full-lp3-relu-softmax-xent", (5, 4), 1,
         [L(3, kernel=(2, 3), padding="full", pooling="lp", window=2, pool_options={"p": 3})],
         [3], dict(activation="relu", output="softmax", loss="cross_entropy")),
    Case("2d-D3-tuple-padding-correlation-window-mask-identity-tied", (5, 5), 3,
         [L(2, kernel=2, padding=(1, 0), pooling="correlation", window=2,
            pool_options={"mask": [[0.5, -1.0], [2.0, 0.25]]})],
         [3], dict(activation="identity", output="tanh", bias="tied")),
    Case("2d-D3-stride2-dilation2-subsample-random-drop", (9, 9), 3,
         [L(2, kernel=3, stride=2, padding=2, dilation=2, pooling="subsample", window=2,
            pool_options={"retain": "random", "rng": 3, "drop_remainder": True})],
         [2], dict(activation="sigmoid")),
    Case("2d-D1-drop-remainder-max-relu-softmax-squared", (7, 7), 1,
         [L(2, kernel=2, pooling="max", window=(4, 3), pool_options={"drop_remainder": True})],
         [3], dict(activation="relu", output="softmax")),
    Case("2d-D1-no-pooling-relu-out", (4, 4), 1,
         [L(2, kernel=3, pooling=None)], [2], dict(output="relu")),
    Case("2d-D3-stride2-pad1-max-dense-depth3", (5, 5), 3,
         [L(2, kernel=2, stride=2, padding=1, pooling="max", window=3)], [4, 3, 3],
         dict(output="softmax")),
    Case("2d-D3-C3-connections-mean-max-xent-labels", (8, 8), 3,
         [L(3, kernel=3, padding=1, pooling="mean", window=2, connections=[[0, 1], [2], [0, 2]]),
          L(2, kernel=3, padding="same", pooling="max", window=2, connections=[[0, 2], [1]]),
          L(2, kernel=2, pooling=None)],
         [3], dict(output="softmax", loss="cross_entropy"), n=3, labels=True),
    # -- 3-D maps
    Case("3d-D1-valid-max-C1", (4, 5, 3), 1,
         [L(2, kernel=2, pooling="max", window=(3, 2, 2))], [2]),
    Case("3d-D3-same-mean-connections-C2", (4, 4, 4), 3,
         [L(3, kernel=3, padding="same", pooling="mean", window=2, connections=[[0], [1, 2], [0, 2]]),
          L(2, kernel=2, pooling=None, connections=np.array([[1, 1, 0], [0, 0, 1]], dtype=bool))],
         [2], dict(bias="per_input")),
    Case("3d-D1-full-stride2-dilation-l2-tied", (5, 4, 3), 1,
         [L(2, kernel=2, stride=2, dilation=(1, 2, 1), padding="full", pooling="l2", window=(3, 1, 2))],
         [2], dict(bias="tied", activation="sigmoid")),
    # -- unstructured partitions (plain vectors)
    Case("unstructured-D1-from-indices-max-regions", 10, 1,
         [L(2, partition=UNSTRUCTURED_10,
            pooling=Pooling.from_regions([[0, 2], [1, 3, 5], [4]], 6, kind="max"))],
         [2], dict(activation="tanh")),
    Case("unstructured-D3-C2-subsample-then-unstructured", 8, 3,
         [L(3, partition=UNSTRUCTURED_8,
            pooling=Pooling.from_regions([[0, 3], [1, 4, 6], [2, 5]], 7, kind="subsample", retain=[1, 2, 0])),
          L(2, partition=UNSTRUCTURED_3, pooling="mean", window=2)],
         [2], dict(output="identity")),
]
IDS = [case.id for case in CASES]
C2_CASES = [case for case in CASES if len(case.layers) >= 2]


# --------------------------------------------------------------------------- helpers

GAP = 1e-4   # minimum distance from a relu kink / between the top two values of a max region


def _margins(net: ConvNet, x: np.ndarray, params) -> tuple[float, float]:
    """(distance of relu inputs from 0, smallest top-2 gap of a max region) in the dense reference."""
    tr = reference.trace(net, x, params)
    kink, gap = np.inf, np.inf
    for c, st in enumerate(net.conv):
        if st.activation == "relu":
            kink = min(kink, float(np.abs(tr["z"][c]).min()))
        if st.pooling.kind == "max":
            y = tr["y"][c]
            for region in st.pooling.regions:
                if len(region) < 2:
                    continue
                top = np.sort(y[:, region, :], axis=1)
                first, second = top[:, -1, :], top[:, -2, :]
                # Ties among relu zeros are harmless: every tied entry has f'(z) = 0.
                harmless = (first == 0) & (st.activation == "relu")
                gap = min(gap, float(np.where(harmless, np.inf, first - second).min()))
    for l, z in enumerate(tr["dense_z"], start=2):
        last = l == len(net.dense_sizes)
        if (net.output if last else net.activation) == "relu":
            kink = min(kink, float(np.abs(z).min()))
    return kink, gap


def build(case: Case):
    """The network of a case with random nonzero biases, an input with safe margins, and random targets."""
    seed = zlib.crc32(case.id.encode())
    rng = np.random.default_rng(seed)
    net = ConvNet(case.input_shape, case.in_maps, case.layers, case.dense, rng=seed, **case.options)
    params = net.parameters()
    for st in net.conv:             # biases start at 0: randomise them so sign errors cannot hide
        Theta = 0.3 * rng.standard_normal(params[f"conv{st.index}.Theta"].shape)
        params[f"conv{st.index}.Theta"] = Theta if net.bias == "tied" else Theta * st.connections.T
    for l in range(1, net.L):
        params[f"dense{l}.theta"] = 0.3 * rng.standard_normal(net.dense_sizes[l])
    net.set_parameters(params)
    shape = (case.n, case.in_maps) + net.input_shape
    for _ in range(50):
        x = rng.standard_normal(shape)
        kink, gap = _margins(net, x, params)
        if kink > GAP and gap > GAP:
            break
    else:  # pragma: no cover - the seeds above are fine
        pytest.fail(f"{case.id}: no input with relu/max margins > {GAP} (kink {kink}, gap {gap})")
    Q = net.dense_sizes[-1]
    if case.labels:
        gamma = rng.permutation(np.arange(case.n) % Q)
    elif net.loss_name == "cross_entropy":
        gamma = rng.dirichlet(np.ones(Q), size=case.n)     # soft targets: rows sum to 1
    else:
        gamma = rng.standard_normal((case.n, Q))
    return net, x, gamma


def _scale(grads) -> float:
    return max(float(np.abs(g).max()) for g in grads.values())


# --------------------------------------------------------------------------- the case table itself


def test_case_table_covers_the_issue():
    """The table spans every feature the issue lists (guards against a case being edited away)."""
    nets = [ConvNet(c.input_shape, c.in_maps, c.layers, c.dense, rng=0, **c.options) for c in CASES]
    stages = [st for net in nets for st in net.conv]
    assert {len(net.input_shape) for net in nets if net.conv[0].partition.geometry} == {1, 2, 3}
    assert any(net.conv[0].partition.geometry is None for net in nets)
    assert {net.in_maps for net in nets} == {1, 3}
    assert {net.C for net in nets} == {1, 2, 3}
    geoms = [st.partition.geometry for st in stages if st.partition.geometry]
    assert any(max(g["stride"]) > 1 for g in geoms) and any(max(g["dilation"]) > 1 for g in geoms)
    paddings = {c.layers[i].padding if not isinstance(c.layers[i].padding, tuple) else "tuple"
                for c in CASES for i in range(len(c.layers)) if c.layers[i].partition is None}
    assert {"valid", "same", "full", "tuple", 0, 1, 2} <= paddings
    assert {st.pooling.kind for st in stages} == {"mean", "max", "l2", "lp", "correlation", "subsample"}
    assert any(st.pooling.is_identity for st in stages)
    assert any(st.pooling.dropped.size for st in stages)
    assert any(st.pooling.kind == "subsample" and np.any(st.pooling.retain) for st in stages)
    assert {st.activation for st in stages} | {n.activation for n in nets} >= {"tanh", "relu", "sigmoid", "identity"}
    assert {n.output for n in nets} == {"identity", "sigmoid", "tanh", "relu", "softmax"}
    assert {(n.loss_name, n.output) for n in nets} >= {("squared", "softmax"), ("cross_entropy", "softmax")}
    assert {n.bias for n in nets} == {"per_input", "tied"}
    assert any(not st.connections.all() for st in stages)


# --------------------------------------------------------------------------- engines and reference


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_and_loss_match_reference(case):
    net, x, gamma = build(case)
    y = net.forward(x)
    y_ref = reference.forward(net, x)
    assert y.shape == y_ref.shape == (case.n, net.dense_sizes[-1])
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-12 * max(1.0, np.abs(y_ref).max()))
    np.testing.assert_allclose(net.loss(x, gamma), reference.loss(net, x, gamma), rtol=1e-12)
    # One sample in, one output vector out.
    np.testing.assert_allclose(net.forward(x[0]), y_ref[0], rtol=0, atol=1e-12 * max(1.0, np.abs(y_ref).max()))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_engines_agree(case):
    net, x, gamma = build(case)
    kron = net.gradients(x, gamma, engine="kronecker")
    fast = net.gradients(x, gamma, engine="fast")
    assert list(kron) == list(fast) == list(net.parameters())
    scale = _scale(fast)
    for key in fast:
        assert kron[key].shape == fast[key].shape == net.parameters()[key].shape, key
        ref = max(float(np.abs(fast[key]).max()), 1e-3 * scale)
        np.testing.assert_allclose(kron[key], fast[key], rtol=0, atol=1e-10 * ref, err_msg=key)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_match_finite_differences(case):
    net, x, gamma = build(case)
    numeric = reference.numerical_gradients(net, x, gamma)
    scale = _scale(numeric)
    assert scale > 1e-6, "degenerate case: the loss does not depend on the parameters"
    for engine in ("kronecker", "fast"):
        grads = net.gradients(x, gamma, engine=engine)
        for key in numeric:
            np.testing.assert_allclose(grads[key], numeric[key], rtol=0, atol=1e-6 * scale,
                                       err_msg=f"{engine}: {key}")


@pytest.mark.parametrize("case", C2_CASES, ids=[c.id for c in C2_CASES])
def test_backprop_operator_is_transposed_layer_jacobian(case):
    """V^(d,d',c+1) (47.1257) == A^T, A = dz^(d',c+1)/dt^(d,c), the dense correlation of layer c+1."""
    net, _, _ = build(case)
    for c in range(1, net.C):
        here, nxt = net.conv[c - 1], net.conv[c]
        geometry = nxt.partition.geometry
        layout = geometry if geometry is not None else nxt.partition.index_lists()
        S = nxt.partition.S
        for d in range(1, nxt.in_maps + 1):
            for dp in range(1, nxt.maps + 1):
                V = net.backprop_operator(c, d, dp)
                assert isinstance(V, sp.csr_array)
                assert V.shape == (here.P_out, nxt.P)
                assert V.nnz <= nxt.P * S
                w = net.parameters()[f"conv{c + 1}.W"][(d - 1) * S:d * S, dp - 1]
                A = reference.layer_matrix(layout, w, size=here.P_out)
                np.testing.assert_allclose(V.toarray(), A.T, rtol=0, atol=1e-15,
                                           err_msg=f"V^({d},{dp},{c + 1})")


def test_layer_jacobian_is_the_layer_matrix():
    """The dense layer matrix is the Jacobian of the reference's pre-activation (z is affine in t)."""
    net, x, _ = build(CASES[5])       # the issue's example, C = 2
    st = net.conv[1]
    W = net.parameters()["conv2.W"]
    A = reference.layer_matrix(st.partition.geometry, W[0:st.S, 2])          # d = 1, d' = 3
    t = reference.trace(net, x[:1])["t"][0]                                  # (D_1, P'_1, 1)
    base = reference.trace(net, x[:1])["z"][1][2, :, 0]

    def z_of(t_new):  # z^(3,2) from modified pooled maps, through the library-free model
        z = 0.0
        for j in range(st.in_maps):
            Aj = reference.layer_matrix(st.partition.geometry, W[j * st.S:(j + 1) * st.S, 2])
            z = z + Aj @ t_new[j, :, 0] - net.parameters()["conv2.Theta"][j, 2]
        return z

    np.testing.assert_allclose(z_of(t), base, atol=1e-14)
    J = np.stack([z_of(t + 1e-3 * np.eye(t.size)[k].reshape(t.shape)) - base
                  for k in range(net.conv[0].P_out)], axis=1) / 1e-3                  # columns of map d = 1
    np.testing.assert_allclose(J, A, atol=1e-10)


# --------------------------------------------------------------------------- the oracle itself


@pytest.mark.parametrize("shape, kernel", [((9,), (3,)), ((6, 5), (3, 2)), ((4, 5, 3), (3, 2, 2))],
                         ids=["1d", "2d", "3d"])
@pytest.mark.parametrize("mode", ["valid", "same", "full"])
def test_layer_matrix_is_scipy_correlation(shape, kernel, mode, rng):
    """A vec(h) == vec(correlate(h, w, mode)) (Eq. 8.12, 8.13); 'same' needs an odd kernel."""
    if mode == "same":
        kernel = tuple(k + 1 - k % 2 for k in kernel)
    h = rng.standard_normal(shape)
    w = rng.standard_normal(kernel)
    A = reference.layer_matrix(dict(input_shape=shape, kernel=kernel, stride=1, padding=mode, dilation=1), w)
    expected = scipy.signal.correlate(h, w, mode=mode, method="direct")
    np.testing.assert_allclose(A @ h.reshape(-1, order="F"), expected.reshape(-1, order="F"), atol=1e-12)


def test_layer_matrix_stride_and_dilation(rng):
    """Stride subsamples the 'valid' correlation; dilation inserts zeros into the kernel."""
    h = rng.standard_normal((11, 9))
    w = rng.standard_normal((2, 3))
    dilated = np.zeros((3, 5))
    dilated[::2, ::2] = w                                   # dilation (2, 2)
    geometry = dict(input_shape=(11, 9), kernel=(2, 3), stride=(3, 2), padding=0, dilation=2)
    expected = scipy.signal.correlate(h, dilated, mode="valid")[::3, ::2]
    np.testing.assert_allclose(reference.layer_matrix(geometry, w) @ h.reshape(-1, order="F"),
                               expected.reshape(-1, order="F"), atol=1e-12)


def test_layer_matrix_equation_8_12():
    w11, w21, w12, w22 = 1.0, 2.0, 3.0, 4.0
    A = reference.layer_matrix(dict(input_shape=(3, 3), kernel=(2, 2), stride=1, padding=0, dilation=1),
                               np.array([[w11, w12], [w21, w22]]))
    np.testing.assert_array_equal(A, [[w11, w21, 0, w12, w22, 0, 0, 0, 0],
                                      [0, w11, w21, 0, w12, w22, 0, 0, 0],
                                      [0, 0, 0, w11, w21, 0, w12, w22, 0],
                                      [0, 0, 0, 0, w11, w21, 0, w12, w22]])
    # Index lists (None = padding) and the same partition's geometry give one matrix.
    part = Partition.sliding_window((3, 3), 2, padding=1)
    w = np.arange(1.0, 5.0)
    np.testing.assert_array_equal(reference.layer_matrix(part.index_lists(), w, size=9),
                                  reference.layer_matrix(part.geometry, w))


def test_reference_pooling_by_hand():
    y = np.array([1.0, -5.0, 2.0, 4.0, 3.0])
    regions = [[0, 3], [1, 2, 4]]
    np.testing.assert_allclose(reference.pool("max", regions, y), [4.0, 3.0])
    np.testing.assert_allclose(reference.pool("mean", regions, y), [2.5, 0.0])
    np.testing.assert_allclose(reference.pool("l2", regions, y), [np.sqrt(17), np.sqrt(38)])
    np.testing.assert_allclose(reference.pool("lp", regions, y, p=3), [65 ** (1 / 3), 160 ** (1 / 3)])
    np.testing.assert_allclose(reference.pool("correlation", regions, y, mask=[1, 2, 0, -1, 1]), [-3.0, -7.0])
    np.testing.assert_allclose(reference.pool("subsample", regions, y, retain=[1, 2]), [4.0, 3.0])


# --------------------------------------------------------------------------- bad input

BAD_CONSTRUCTION = [
    ("partition-size-mismatch", ValueError,
     lambda: ConvNet((6, 6), 1, [L(2, kernel=3, window=2), L(1, partition=Partition.from_indices([[0, 1]], 5))], [2]),
     r"layer 2 \(conv2\).*M=5.*shape \(2, 2\) \(size 4\)"),
    ("pooling-size-mismatch", ValueError,
     lambda: ConvNet((6, 6), 1, [L(2, kernel=3, pooling=Pooling.windows((5, 5), 5))], [2]),
     r"layer 1 \(conv1\).*size 25.*P=16"),
    ("connections-missing-map", ValueError,
     lambda: ConvNet((6, 6), 2, [L(2, kernel=3, window=2, connections=[[0], [2]])], [2]),
     r"layer 1 \(conv1\): connections\[1\] names input map 2.*only 2 input maps"),
    ("connections-wrong-table-shape", ValueError,
     lambda: ConvNet((6, 6), 2, [L(2, kernel=3, window=2, connections=np.ones((2, 3), bool))], [2]),
     r"layer 1 \(conv1\): connections must have shape .*\(2, 2\)"),
    ("kernel-too-large", ValueError,
     lambda: ConvNet((4, 4), 1, [L(2, kernel=5)], [2]), r"layer 1 \(conv1\): kernel"),
    ("unknown-activation", ValueError,
     lambda: ConvNet((6, 6), 1, [L(2, kernel=3)], [2], activation="gelu"), r"activation must be one of"),
    ("unknown-layer-activation", ValueError,
     lambda: L(2, kernel=3, activation="swish"), r"activation must be one of .*'swish'"),
    ("unknown-loss", ValueError,
     lambda: ConvNet((6, 6), 1, [L(2, kernel=3)], [2], loss="hinge"), r"loss must be one of .*'hinge'"),
    ("unknown-output", ValueError,
     lambda: ConvNet((6, 6), 1, [L(2, kernel=3)], [2], output="linear"), r"output must be one of .*'linear'"),
    ("unknown-bias", ValueError,
     lambda: ConvNet((6, 6), 1, [L(2, kernel=3)], [2], bias="shared"), r"bias must be one of .*'shared'"),
    ("cross-entropy-without-softmax", ValueError,
     lambda: ConvNet((6, 6), 1, [L(2, kernel=3)], [2], loss="cross_entropy", output="sigmoid"),
     r"cross_entropy.*softmax.*'sigmoid'"),
    ("unknown-pooling-kind", ValueError,
     lambda: L(2, kernel=3, pooling="median", window=2), r"pooling must be one of"),
    ("layers-not-a-list", TypeError,
     lambda: ConvNet((6, 6), 1, L(2, kernel=3), [2]), r"layers must be a non-empty list"),
]


@pytest.mark.parametrize("what, exc, make, match", BAD_CONSTRUCTION, ids=[b[0] for b in BAD_CONSTRUCTION])
def test_bad_construction(what, exc, make, match):
    with pytest.raises(exc, match=match):
        make()


def test_bad_forward_input(small_net):
    net = small_net()
    with pytest.raises(ValueError, match=r"x must have shape \(2, 6, 6\).*D_0=2.*got \(3, 2, 5, 6\)"):
        net.forward(np.zeros((3, 2, 5, 6)))                 # wrong map shape
    with pytest.raises(ValueError, match=r"x must have shape \(2, 6, 6\).*D_0=2.*got \(3, 1, 6, 6\)"):
        net.forward(np.zeros((3, 1, 6, 6)))                 # wrong depth
    with pytest.raises(ValueError, match=r"x must have shape .*got \(6, 6\)"):
        net.forward(np.zeros((6, 6)))                       # depth axis missing
    with pytest.raises(ValueError, match=r"x must be finite"):
        net.forward(np.full((1, 2, 6, 6), np.nan))
    with pytest.raises(TypeError, match=r"x must be a numeric array"):
        net.forward("image")
    with pytest.raises(ValueError, match=r"x must have shape"):
        net.loss(np.zeros((3, 1, 6, 6)), np.zeros((3, 2)))


def test_bad_targets(small_net):
    net = small_net()
    x = np.zeros((2, 2, 6, 6))
    with pytest.raises(ValueError, match=r"gamma labels must lie in \[0, 1\] \(Q=2 outputs\)"):
        net.loss(x, np.array([0, 2]))
    with pytest.raises(ValueError, match=r"gamma labels must lie in \[0, 1\]"):
        net.gradients(x, np.array([-1, 0]))
    with pytest.raises(ValueError, match=r"gamma holds 3 labels for 2 samples"):
        net.loss(x, np.array([0, 1, 1]))
    with pytest.raises(ValueError, match=r"gamma must have shape \(2, 2\)"):
        net.loss(x, np.zeros((2, 3)))


def test_unknown_engine(small_net):
    with pytest.raises(ValueError, match=r"engine must be one of \('kronecker', 'fast'\).*'autograd'"):
        small_net().gradients(np.zeros((1, 2, 6, 6)), np.zeros((1, 2)), engine="autograd")


BAD_PARAMETERS = [
    ("wrong-shape", lambda p: {"conv1.W": np.zeros((9, 2))}, ValueError, r"conv1\.W must have shape \(18, 2\), got \(9, 2\)"),
    ("wrong-bias-shape", lambda p: {"conv2.Theta": np.zeros(3)}, ValueError, r"conv2\.Theta must have shape \(2, 3\)"),
    ("unknown-key", lambda p: {"conv3.W": np.zeros((4, 2))}, ValueError, r"unknown parameter 'conv3\.W'"),
    ("nan", lambda p: {"dense1.theta": [np.nan, 0.0]}, ValueError, r"dense1\.theta must be finite"),
    ("inf", lambda p: {"dense1.W": np.full((2, 3), np.inf)}, ValueError, r"dense1\.W must be finite"),
    ("not-numeric", lambda p: {"dense1.W": "weights"}, TypeError, r"dense1\.W must be a numeric array"),
    ("not-a-dict", lambda p: [("dense1.W", p["dense1.W"])], TypeError, r"params must be a dict"),
    # a good entry first, then a bad one: nothing may be applied
    ("half-good", lambda p: {"dense1.theta": np.ones(2), "conv1.W": np.ones((18, 3))}, ValueError,
     r"conv1\.W must have shape \(18, 2\)"),
]


@pytest.mark.parametrize("what, make, exc, match", BAD_PARAMETERS, ids=[b[0] for b in BAD_PARAMETERS])
def test_bad_set_parameters_changes_nothing(small_net, what, make, exc, match):
    net = small_net()
    before = net.parameters()
    with pytest.raises(exc, match=match):
        net.set_parameters(make(before))
    after = net.parameters()
    assert list(after) == list(before)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


def test_set_parameters_rejects_weights_off_the_connection_table():
    net = ConvNet((6, 6), 2, [L(2, kernel=3, window=2, connections=[[0], [0, 1]])], [2], rng=0)
    W = net.parameters()["conv1.W"]
    assert np.all(W[9:, 0] == 0)                              # map 2 does not feed map 1
    W[9, 0] = 1.0
    with pytest.raises(ValueError, match=r"conv1\.W .*connection table"):
        net.set_parameters({"conv1.W": W})


@pytest.mark.parametrize("args, match", [
    ((0, 1, 1), r"c must be in \[1, 1\]"),
    ((2, 1, 1), r"c must be in \[1, 1\]"),
    ((1, 3, 1), r"d must be in \[1, 2\]"),
    ((1, 0, 1), r"d must be in \[1, 2\]"),
    ((1, 1, 4), r"d_prime must be in \[1, 3\]"),
    ((1, 1, 0), r"d_prime must be in \[1, 3\]"),
], ids=["c-zero", "c-last-layer", "d-too-large", "d-zero", "d_prime-too-large", "d_prime-zero"])
def test_backprop_operator_indices_out_of_range(small_net, args, match):
    with pytest.raises(ValueError, match=match):
        small_net().backprop_operator(*args)


def test_backprop_operator_needs_two_layers():
    net = ConvNet((6, 6), 1, [L(2, kernel=3, window=2)], [2], rng=0)
    with pytest.raises(ValueError, match=r"single correlation layer \(C = 1\)"):
        net.backprop_operator(1, 1, 1)


@pytest.mark.parametrize("c", ["1", 1.0, True])
def test_backprop_operator_rejects_non_integer_layer(small_net, c):
    with pytest.raises(TypeError, match="c must be an integer"):
        small_net().backprop_operator(c, 1, 1)


def test_cross_entropy_gradient_with_targets_not_summing_to_one():
    # -sum gamma log softmax(z) has gradient y * sum(gamma) - gamma, not y - gamma.
    net = ConvNet(6, 1, [L(1, kernel=3, pooling="mean", window=2)], [3], output="softmax",
                  loss="cross_entropy", rng=0)
    x = np.random.default_rng(1).standard_normal((2, 1, 6))
    gamma = np.array([[0.2, 0.3, 0.1], [1.0, 1.0, 0.0]])
    numeric = reference.numerical_gradients(net, x, gamma)
    for engine in ("fast", "kronecker"):
        analytic = net.gradients(x, gamma, engine=engine)
        for key in numeric:
            np.testing.assert_allclose(analytic[key], numeric[key], rtol=1e-6, atol=1e-8, err_msg=key)


def test_set_parameters_rejects_bias_of_unconnected_pair():
    net = ConvNet((6, 6), 2, [L(2, kernel=3, window=2, connections=[[0], [1]])], [2], rng=0)
    with pytest.raises(ValueError, match=r"conv1\.Theta .*connection table"):
        net.set_parameters({"conv1.Theta": np.ones((2, 2))})


def test_sensitivities_are_maps_in_the_layer_layout():
    # dW of layer 1 is the 'valid' correlation of the padded input with the delta map (Eq. 8.48):
    # only true if sensitivities() puts delta^(d,1)(p) at p's position in the output map.
    net = ConvNet((5, 4), 1, [L(2, kernel=3, padding="same", window=None),
                              L(3, kernel=2, pooling=None)], [2], rng=0)
    rng = np.random.default_rng(1)
    x, gamma = rng.standard_normal((3, 1, 5, 4)), rng.random((3, 2))
    sens = net.sensitivities(x, gamma)
    assert sens["conv1"].shape == (3, 2, 5, 4) and sens["conv2"].shape == (3, 3, 4, 3)
    assert sens["dense2"].shape == (3, 2)
    dW = net.gradients(x, gamma)["conv1.W"]
    xpad = np.pad(x[:, 0], ((0, 0), (1, 1), (1, 1)))
    for d in range(2):
        expected = sum(scipy.signal.correlate(xpad[n], sens["conv1"][n, d], mode="valid") for n in range(3))
        np.testing.assert_allclose(dW[:, d], expected.reshape(-1, order="F"), rtol=1e-10, atol=1e-12)
    single = net.sensitivities(x[0], gamma[0])
    np.testing.assert_allclose(single["conv2"], sens["conv2"][0], atol=1e-14)
