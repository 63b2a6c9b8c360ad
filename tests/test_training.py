"""Training (partitionnet.training): the book's SGD step by hand, mini-batches,
reproducibility, the two engines, evaluation, and bad input."""
from __future__ import annotations

import io as _io
import math
import re

import numpy as np
import pytest

from partitionnet import ConvLayer, ConvNet, datasets
from partitionnet.training import Evaluation, History, evaluate, fit, predict, sgd_step

from _helpers import randomise


# --------------------------------------------------------------------------- helpers
def _randomise(net, rng):
    """Random parameters (biases included) that respect the connection tables."""
    randomise(net, rng, weight_scale=0.5, bias_scale=0.5)


def _tiny_net(**options):
    """1-D, D_0 = 2 input maps, one correlation layer (2 maps, S = 3, P = 6), max pooling, dense 6 -> 2."""
    layers = [ConvLayer(2, kernel=3, window=2)]
    return ConvNet((8,), 2, layers, [2], **{"activation": "tanh", "output": "sigmoid", "rng": 0, **options})


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _hand_step(net, params, x, gamma, mu, rho1, rho2):
    """One step of the listing after (47.1276), written out from the book's formulas.

    Forward (47.1212, 47.1208, 47.1215, 47.1216) with V as an explicit matrix, then
    delta_2 = 2 (y - gamma) o f'(z_2) (47.1233), delta^(d,1) = f'(z^(d)) o permute#(upv(W_1^(d)T delta_2))
    (47.1245), and the updates with the corrected signs:
        W_l <- (1 - 2 mu rho2) W_l - mu delta_2 y_1^T,      theta_l <- theta_l + mu delta_2,
        W_c <- (1 - 2 mu rho1) W_c - mu (1^T kron H) Delta, Theta_c <- Theta_c + mu (1^T kron 1 1^T) Delta.
    """
    st = net.conv[0]
    V, pool = st.partition.matrix(), st.pooling
    S, P, D_in, D = st.S, st.P, st.in_maps, st.maps
    W, Theta = params["conv1.W"], params["conv1.Theta"]
    W1, th1 = params["dense1.W"], params["dense1.theta"]
    # H_j = [h_1 ... h_P] for input map j (47.1157): the column-stacked V x_j cut into patches.
    H = [(V @ x[j]).reshape(P, S).T for j in range(D_in)]
    z = [sum(H[j].T @ W[j * S:(j + 1) * S, d] - Theta[j, d] for j in range(D_in)) for d in range(D)]
    y = [np.tanh(zd) for zd in z]
    pooled = [pool.pool(yd) for yd in y]                       # (t^(d), g^(d))
    y1 = np.concatenate([t for t, _ in pooled])                # col{t^(1), ..., t^(D)} (47.1215)
    z2 = W1 @ y1 - th1
    y2 = _sigmoid(z2)
    delta2 = 2.0 * (y2 - gamma) * y2 * (1.0 - y2)              # (47.1233)
    Pp = pool.P_out
    deltas = []
    for d in range(D):
        v = W1[:, d * Pp:(d + 1) * Pp].T @ delta2             # W_1^(d)T delta_2 (47.1220)
        back = pool.permutation().T @ pool.upv(v, pooled[d][1])  # permute#(upv(.)) = T^T upv (47.1204)
        deltas.append((1.0 - np.tanh(z[d]) ** 2) * back)       # (47.1245)
    dW = np.zeros_like(W)
    for j in range(D_in):
        for d in range(D):
            dW[j * S:(j + 1) * S, d] = H[j] @ deltas[d]         # (1^T kron H_{n}) Delta_n (47.1271)
    dTheta = np.array([[deltas[d].sum() for d in range(D)] for _ in range(D_in)])
    return {
        "conv1.W": (1 - 2 * mu * rho1) * W - mu * dW,
        "conv1.Theta": Theta + mu * dTheta,                    # + mu (1^T kron 1 1^T) Delta (47.1274)
        "dense1.W": (1 - 2 * mu * rho2) * W1 - mu * np.outer(delta2, y1),
        "dense1.theta": th1 + mu * delta2,                     # corrected sign (the book prints -)
    }


# --------------------------------------------------------------------------- the book's step
@pytest.mark.parametrize("rho1, rho2", [(0.0, 0.0), (0.3, 0.7)])
def test_one_per_sample_step_equals_the_seed_rule_by_hand(rho1, rho2):
    rng = np.random.default_rng(7)
    net = _tiny_net()
    _randomise(net, rng)
    x = rng.standard_normal((1, 2, 8))
    gamma = rng.uniform(0.1, 0.9, size=(1, 2))
    mu = 0.05
    expected = _hand_step(net, net.parameters(), x[0], gamma[0], mu, rho1, rho2)
    fit(net, x, gamma, epochs=1, batch_size=1, learning_rate=mu, rho1=rho1, rho2=rho2, rng=0, progress=False)
    got = net.parameters()
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-13, atol=1e-15, err_msg=key)


def test_per_sample_steps_follow_the_shuffled_order():
    rng = np.random.default_rng(8)
    net = _tiny_net()
    _randomise(net, rng)
    x = rng.standard_normal((3, 2, 8))
    gamma = rng.uniform(0.1, 0.9, size=(3, 2))
    mu, rho1, rho2 = 0.1, 0.05, 0.02
    params = net.parameters()
    order = np.random.default_rng(11).permutation(3)           # what fit draws for epoch 1
    for n in order:
        params = _hand_step(net, params, x[n], gamma[n], mu, rho1, rho2)
    fit(net, x, gamma, epochs=1, learning_rate=mu, rho1=rho1, rho2=rho2, rng=11, progress=False)
    for key, value in params.items():
        np.testing.assert_allclose(net.parameters()[key], value, rtol=1e-12, atol=1e-14, err_msg=key)


def test_minibatch_step_averages_the_sample_gradients():
    rng = np.random.default_rng(9)
    net = ConvNet((6, 6), 2, [ConvLayer(3, kernel=3, padding="same", window=2),
                              ConvLayer(2, kernel=2, pooling=None, connections=[[0, 2], [1]])],
                  [4, 3], output="softmax", loss="cross_entropy", rng=1)
    _randomise(net, rng)
    x = rng.standard_normal((5, 2, 6, 6))
    labels = np.array([0, 2, 1, 1, 0])
    mu, rho1, rho2 = 0.2, 0.1, 0.3
    before = net.parameters()
    grads = net.gradients(x, labels)                           # summed over the 5 samples (47.1275)
    fit(net, x, labels, epochs=1, batch_size=5, learning_rate=mu, rho1=rho1, rho2=rho2, rng=0, progress=False)
    for key, value in before.items():
        rho = (rho1 if key.startswith("conv") else rho2) if key.endswith(".W") else 0.0
        expected = (1 - 2 * mu * rho) * value - mu * grads[key] / 5
        np.testing.assert_allclose(net.parameters()[key], expected, rtol=1e-13, atol=1e-15, err_msg=key)


def test_last_short_batch_is_divided_by_its_own_size():
    rng = np.random.default_rng(10)
    net = _tiny_net()
    x = rng.standard_normal((3, 2, 8))
    gamma = rng.uniform(size=(3, 2))
    order = np.random.default_rng(4).permutation(3)
    ref = _tiny_net()
    first, last = order[:2], order[2:]
    for idx in (first, last):
        g = ref.gradients(x[idx], gamma[idx])
        ref.set_parameters({k: ref.parameters()[k] - 0.1 * g[k] / idx.size for k in g})
    fit(net, x, gamma, epochs=1, batch_size=2, learning_rate=0.1, rng=4, progress=False)
    for key, value in ref.parameters().items():
        np.testing.assert_allclose(net.parameters()[key], value, rtol=1e-13, atol=1e-15, err_msg=key)


def test_fit_steps_are_sgd_step_through_set_parameters(monkeypatch):
    # fit writes the network only through the public set_parameters, once per step, and every step
    # equals sgd_step applied to the batch's summed gradients.
    net, twin = _tiny_net(), _tiny_net()
    x = np.random.default_rng(0).standard_normal((4, 2, 8))
    gamma = np.random.default_rng(1).uniform(size=(4, 2))
    calls = []
    original = type(net).set_parameters
    monkeypatch.setattr(type(net), "set_parameters", lambda self, p: (calls.append(sorted(p)), original(self, p)))
    fit(net, x, gamma, epochs=1, batch_size=3, learning_rate=0.1, rho1=0.02, rho2=0.03, rng=0, progress=False)
    assert len(calls) == 2 and calls[0] == sorted(net.parameters())
    order = np.random.default_rng(0).permutation(4)
    for idx in (order[:3], order[3:]):
        sgd_step(twin, twin.gradients(x[idx], gamma[idx]), learning_rate=0.1, rho1=0.02, rho2=0.03,
                 batch_size=idx.size)
    for k, v in twin.parameters().items():
        np.testing.assert_allclose(net.parameters()[k], v, rtol=1e-13, atol=1e-15)


def test_sgd_step_is_the_corrected_update_47_1276():
    net = _tiny_net()
    _randomise(net, np.random.default_rng(5))
    x = np.random.default_rng(6).standard_normal((3, 2, 8))
    gamma = np.random.default_rng(7).uniform(size=(3, 2))
    before, grads = net.parameters(), net.gradients(x, gamma)
    mu, rho1, rho2 = 0.2, 0.05, 0.1
    sgd_step(net, grads, learning_rate=mu, rho1=rho1, rho2=rho2, batch_size=3)
    after = net.parameters()
    np.testing.assert_allclose(after["conv1.W"], (1 - 2 * mu * rho1) * before["conv1.W"] - mu / 3 * grads["conv1.W"])
    np.testing.assert_allclose(after["dense1.W"], (1 - 2 * mu * rho2) * before["dense1.W"] - mu / 3 * grads["dense1.W"])
    for bias in ("conv1.Theta", "dense1.theta"):                 # not regularised
        np.testing.assert_allclose(after[bias], before[bias] - mu / 3 * grads[bias])
    # a subset of the parameters may be stepped; the rest are untouched
    sgd_step(net, {"dense1.theta": np.ones(2)}, learning_rate=1.0, batch_size=1)
    np.testing.assert_array_equal(net.parameters()["dense1.theta"], after["dense1.theta"] - 1)
    np.testing.assert_array_equal(net.parameters()["conv1.W"], after["conv1.W"])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(grads={"conv9.W": np.ones(1)}), ValueError, "unknown parameter 'conv9.W'"),
    (dict(grads={"dense1.theta": np.ones(3)}), ValueError, r"grads\['dense1.theta'\] must have shape \(2,\)"),
    (dict(grads=[1, 2]), TypeError, "grads must be a dict"),
    (dict(grads={"dense1.theta": ["a", "b"]}), TypeError, "numeric"),
    (dict(learning_rate=0.0), ValueError, "learning_rate must be a finite number > 0"),
    (dict(rho1=True), TypeError, "rho1 must be a real number"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(net="net"), TypeError, "net must be a partitionnet.ConvNet or partitionnet.Network"),
    (dict(grads={"dense1.theta": np.array([1e308, 0.0])}, learning_rate=1e10), FloatingPointError,
     r"dense1.theta\[0\] = -inf.*unchanged"),
    (dict(grads={"dense1.theta": np.array([np.nan, 0.0])}), FloatingPointError, "nan"),
])
def test_sgd_step_rejects_bad_input_and_leaves_the_network_alone(kwargs, error, match):
    net = _tiny_net()
    before = net.parameters()
    args = dict(net=net, grads={"dense1.theta": np.ones(2)}, learning_rate=0.1, batch_size=1)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        sgd_step(args.pop("net"), args.pop("grads"), **args)
    assert all(np.array_equal(before[k], v) for k, v in net.parameters().items())


# --------------------------------------------------------------------------- learning, reproducibility, engines
@pytest.fixture(scope="module")
def small_data():
    return datasets.squares_diamonds(40, 20, size=9, seed=3)


def _sd_net(seed=0, **options):
    return ConvNet((9, 9), 1, [ConvLayer(4, kernel=3, padding="same", window=3)], [2],
                   **{"activation": "relu", "output": "softmax", "loss": "cross_entropy", "rng": seed, **options})


def test_loss_falls_on_a_small_problem(small_data):
    net = _sd_net()
    h = fit(net, small_data.x_train, small_data.y_train, epochs=8, learning_rate=0.05, rng=0, progress=False,
            validation=(small_data.x_test, small_data.y_test))
    assert h.epochs == 8 and len(h.val_loss) == 8
    assert h.loss[-1] < 0.5 * h.loss[0]
    assert h.accuracy[-1] > h.accuracy[0] and h.accuracy[-1] >= 0.9
    assert h.val_accuracy[-1] >= 0.8
    assert all(s >= 0 for s in h.seconds)


def test_squared_loss_with_real_targets_falls(small_data):
    net = _sd_net(output="sigmoid", loss="squared")
    gamma = datasets.one_hot(small_data.y_train, 2)
    h = fit(net, small_data.x_train, gamma, epochs=6, batch_size=4, learning_rate=0.2, rng=1, progress=False,
            validation=(small_data.x_test, datasets.one_hot(small_data.y_test, 2)))
    assert h.loss[-1] < h.loss[0]
    assert h.accuracy == [None] * 6 and h.val_accuracy == [None] * 6
    assert all(v is not None for v in h.val_loss)


def test_labels_and_one_hot_targets_give_the_same_run(small_data):
    a, b = _sd_net(output="sigmoid", loss="squared"), _sd_net(output="sigmoid", loss="squared")
    fit(a, small_data.x_train, small_data.y_train, epochs=2, learning_rate=0.1, rng=5, progress=False)
    fit(b, small_data.x_train, datasets.one_hot(small_data.y_train, 2), epochs=2, learning_rate=0.1, rng=5,
        progress=False)
    for k in a.parameters():
        assert np.array_equal(a.parameters()[k], b.parameters()[k])


def test_same_seed_gives_bit_identical_runs(small_data):
    runs = []
    for _ in range(2):
        net = _sd_net(seed=4)
        h = fit(net, small_data.x_train, small_data.y_train, epochs=3, batch_size=3, learning_rate=0.05,
                rho1=0.01, rho2=0.01, rng=np.random.default_rng(12), progress=False)
        runs.append((net.parameters(), h.loss))
    (p1, l1), (p2, l2) = runs
    assert l1 == l2
    assert all(np.array_equal(p1[k], p2[k]) for k in p1)
    other = _sd_net(seed=4)
    fit(other, small_data.x_train, small_data.y_train, epochs=3, batch_size=3, learning_rate=0.05,
        rho1=0.01, rho2=0.01, rng=13, progress=False)
    assert not all(np.array_equal(p1[k], other.parameters()[k]) for k in p1)


def test_fit_draws_only_from_the_given_generator(small_data):
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    gen = np.random.default_rng(3)
    fit(_sd_net(), small_data.x_train, small_data.y_train, epochs=2, learning_rate=0.05, rng=gen, progress=False)
    assert np.array_equal(np.random.get_state()[1], state)
    ref = np.random.default_rng(3)
    ref.permutation(40), ref.permutation(40)
    assert gen.integers(1 << 30) == ref.integers(1 << 30)   # exactly two permutations were drawn


def test_kronecker_and_fast_engines_train_to_the_same_parameters():
    rng = np.random.default_rng(21)
    layers = [ConvLayer(3, kernel=3, padding="same", window=2),
              ConvLayer(2, kernel=2, pooling="mean", window=2, connections=[[0, 1], [2]])]
    nets = [ConvNet((6, 6), 1, layers, [4, 3], output="softmax", loss="cross_entropy", rng=2) for _ in range(2)]
    x = rng.standard_normal((6, 1, 6, 6))
    y = np.array([0, 1, 2, 0, 1, 2])
    for net, engine in zip(nets, ("kronecker", "fast")):
        fit(net, x, y, epochs=2, batch_size=2, learning_rate=0.1, rho1=0.01, engine=engine, rng=3, progress=False)
    for k in nets[0].parameters():
        np.testing.assert_allclose(nets[0].parameters()[k], nets[1].parameters()[k], rtol=0, atol=1e-9, err_msg=k)


# --------------------------------------------------------------------------- History, callback, progress bar
def test_history_as_dict_and_printing(small_data):
    seen = []
    h = fit(_sd_net(), small_data.x_train, small_data.y_train, epochs=2, learning_rate=0.05, rng=0,
            progress=False, callback=lambda epoch, hist: seen.append((epoch, hist.epochs)))
    assert seen == [(1, 1), (2, 2)]
    d = h.as_dict()
    assert set(d) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert d["epoch"] == [1, 2] and d["val_loss"] == [None, None]
    text = str(h)
    assert text.count("\n") == 1 and "epoch 1/2" in text and "acc" in text
    assert str(History()) == "History(no epochs)"


class _FakeTTY(_io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal_is_a_per_batch_tqdm_bar(small_data, monkeypatch):
    fake = _FakeTTY()
    monkeypatch.setattr("sys.stderr", fake)
    fit(_sd_net(), small_data.x_train, small_data.y_train, epochs=2, batch_size=8, learning_rate=0.05, rng=0,
        progress=True)
    text = fake.getvalue()
    assert "epoch 1/2" in text and "epoch 2/2" in text
    assert "0/40" in text and "sample" in text                  # tqdm's counter of samples in the epoch
    assert text.endswith("\r")                                 # cleared at the end of each epoch (leave=False)
    # The bar advanced within the epoch (tqdm redraws after 0.1 s, so force it to draw every update).
    fake2 = _FakeTTY()
    monkeypatch.setattr("sys.stderr", fake2)
    from tqdm.std import tqdm as console

    monkeypatch.setattr(console, "__init__", _eager(console.__init__))
    fit(_sd_net(), small_data.x_train, small_data.y_train, epochs=1, batch_size=8, learning_rate=0.05, rng=0)
    shown = re.findall(r"\b(\d+)/40\b", fake2.getvalue())
    assert {"8", "16", "24", "32", "40"} <= set(shown), shown
    assert re.search(r"16/40 .*loss \d\.\d{4}", fake2.getvalue())     # the running mean loss as postfix


def _eager(init):
    def patched(self, *args, **kwargs):
        kwargs.update(mininterval=0, miniters=1)
        init(self, *args, **kwargs)
    return patched


def test_progress_outside_a_terminal_is_one_line_per_epoch_with_eta(small_data, capsys):
    h = fit(_sd_net(), small_data.x_train, small_data.y_train, epochs=3, learning_rate=0.05, rng=0,
            validation=(small_data.x_test, small_data.y_test))      # pytest's stderr is not a terminal
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines):
        assert line.startswith(h.line(i)) and re.search(r"elapsed \d\d:\d\d  ETA \d\d:\d\d$", line), line
    assert lines[-1].endswith("ETA 00:00")


def test_no_progress_when_asked(small_data, monkeypatch, capsys):
    fake = _FakeTTY()
    monkeypatch.setattr("sys.stderr", fake)
    fit(_sd_net(), small_data.x_train, small_data.y_train, epochs=1, learning_rate=0.05, rng=0, progress=False)
    assert fake.getvalue() == ""
    monkeypatch.undo()
    fit(_sd_net(), small_data.x_train, small_data.y_train, epochs=1, learning_rate=0.05, rng=0, progress=False)
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- evaluate / predict
def test_evaluate_and_predict(small_data):
    net = _sd_net()
    fit(net, small_data.x_train, small_data.y_train, epochs=3, learning_rate=0.05, rng=0, progress=False)
    pred = predict(net, small_data.x_test)
    assert pred.dtype == np.int64 and pred.shape == (20,)
    assert np.array_equal(pred, net.forward(small_data.x_test).argmax(axis=1))
    result = evaluate(net, small_data.x_test, small_data.y_test)
    assert isinstance(result, Evaluation)
    acc, cm = result
    assert cm.shape == (2, 2) and cm.sum() == 20 and cm.dtype == np.int64
    assert math.isclose(acc, np.trace(cm) / 20)
    assert np.array_equal(cm.sum(axis=1), np.bincount(small_data.y_test, minlength=2))
    assert np.array_equal(cm.sum(axis=0), np.bincount(pred, minlength=2))


def test_evaluate_rejects_bad_labels(small_data):
    net = _sd_net()
    with pytest.raises(ValueError, match="label 2"):
        evaluate(net, small_data.x_test, np.full(20, 2))
    with pytest.raises(ValueError, match="one target per sample"):
        evaluate(net, small_data.x_test, small_data.y_test[:5])
    with pytest.raises(ValueError, match="shape"):
        evaluate(net, small_data.x_test, np.zeros((20, 2), dtype=int))


def test_predict_needs_one_output_per_class():
    net = ConvNet((5,), 1, [ConvLayer(1, kernel=2, pooling=None)], [1], rng=0)
    with pytest.raises(ValueError, match="Q >= 2"):
        predict(net, np.zeros((2, 1, 5)))


# --------------------------------------------------------------------------- bad input
X = np.zeros((4, 1, 9, 9))
Y = np.array([0, 1, 0, 1])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(y=np.array([0, 1, 2, 1])), ValueError, r"label 2, outside \[0, 1\]"),
    (dict(y=np.array([0, -1, 0, 1])), ValueError, "label -1"),
    (dict(y=np.array([0, 1, 0])), ValueError, "x has 4 samples, y has 3 rows"),
    (dict(y=np.zeros((4, 3))), ValueError, r"shape \(4, 2\)"),
    (dict(y=np.array([0.0, 1.0, 0.0, 1.0])), ValueError, "integer class labels"),
    (dict(y="abcd"), TypeError, "y must be"),
    (dict(x=np.zeros((4, 1, 8, 8))), ValueError, r"x must have shape \(N,\) \+ \(1, 9, 9\)"),
    (dict(x=np.zeros((0, 1, 9, 9)), y=np.zeros(0, dtype=int)), ValueError, "no samples"),
    (dict(x=np.where(np.arange(4)[:, None, None, None] == 2, np.nan, X)), ValueError, "x must be finite.*sample 2"),
    (dict(x=np.full((4, 1, 9, 9), np.inf)), ValueError, "finite"),
    (dict(learning_rate=-0.1), ValueError, "learning_rate must be a finite number > 0"),
    (dict(learning_rate=0.0), ValueError, "learning_rate"),
    (dict(learning_rate=float("nan")), ValueError, "learning_rate"),
    (dict(learning_rate="0.1"), TypeError, "learning_rate must be a real number"),
    (dict(epochs=1.5), TypeError, "epochs must be an integer"),
    (dict(epochs=0), ValueError, "epochs must be an integer >= 1"),
    (dict(epochs=True), TypeError, "epochs"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=2.0), TypeError, "batch_size"),
    (dict(rho1=-1.0), ValueError, "rho1"),
    (dict(rho2=20.0), ValueError, r"rho2.*1 - 2\*mu\*rho"),
    (dict(engine="torch"), ValueError, r"engine must be one of \('kronecker', 'fast'\)|engine must be one of"),
    (dict(engine=None), ValueError, "engine"),
    (dict(rng="seed"), TypeError, "rng"),
    (dict(rng=-3), ValueError, "rng"),
    (dict(validation=X), TypeError, "validation must be a pair"),
    (dict(validation=(X, np.array([0, 5, 0, 1]))), ValueError, "validation y holds label 5"),
    (dict(validation=(X[:, :, :4], Y)), ValueError, "validation x must have shape"),
    (dict(callback=3), TypeError, "callback"),
    (dict(progress="yes"), TypeError, "progress must be True or False"),
    (dict(progress=1), TypeError, "progress must be True or False"),
    (dict(rng="abc"), TypeError, "rng must be None, a non-negative integer seed or a numpy Generator, got str"),
    (dict(rng=1.5), TypeError, "rng must be"),
    (dict(rng=True), TypeError, "rng must be"),
    (dict(net="not a net"), TypeError, "net must be a partitionnet.ConvNet"),
])
def test_bad_input_is_rejected_before_training(kwargs, error, match):
    net = _sd_net()
    before = net.parameters()
    args = dict(net=net, x=X, y=Y, epochs=1, learning_rate=0.1, progress=False)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        fit(args.pop("net"), args.pop("x"), args.pop("y"), **args)
    assert all(np.array_equal(before[k], v) for k, v in net.parameters().items())


def test_divergence_is_reported():
    rng = np.random.default_rng(0)
    net = ConvNet((6,), 1, [ConvLayer(2, kernel=2, pooling=None, activation="identity")], [1],
                  activation="identity", rng=0)
    x = rng.standard_normal((8, 1, 6)) * 10
    with pytest.raises(FloatingPointError, match=r"diverged in epoch \d+, step \d of 8.*lower learning_rate"):
        fit(net, x, rng.standard_normal((8, 1)) * 100, epochs=50, learning_rate=10.0, rng=0, progress=False)
    assert all(np.all(np.isfinite(v)) for v in net.parameters().values())


def _one_step_overflow_case():
    """A linear network whose first SGD step has a finite loss (2e295) and gradients (1e297), but
    whose update with learning_rate=1e12 overflows."""
    net = ConvNet((4,), 1, [ConvLayer(1, kernel=1, pooling=None, activation="identity")], [1],
                  activation="identity", rng=0)
    x = np.full((1, 1, 4), 1e150)
    return net, x, np.zeros((1, 1))


def test_a_final_overflowing_step_raises_and_keeps_the_previous_parameters():
    # The issue: with one step whose update overflows, fit used to return normally with inf/NaN
    # parameters (the divergence was only noticed by the forward pass of the *next* step).
    net, x, y = _one_step_overflow_case()
    before = net.parameters()
    assert np.isfinite(net.loss(x, y))                       # the loss of the only step is finite ...
    with pytest.raises(FloatingPointError, match=r"diverged in epoch 1, step 1 of 1.*inf.*try 1e\+11.*before this step"):
        fit(net, x, y, epochs=1, learning_rate=1e12, rng=0, progress=False)
    after = net.parameters()                                  # ... and the network is as it was
    assert all(np.array_equal(before[k], after[k]) for k in before)
    np.testing.assert_array_equal(net.forward(x), net.forward(x))


def test_divergence_at_a_later_step_keeps_the_last_good_parameters():
    net, x, y = _one_step_overflow_case()
    x2 = np.concatenate([np.full((1, 1, 4), 1e-3), x])        # sample 0 is harmless, sample 1 overflows
    y2 = np.zeros((2, 1))
    order = np.random.default_rng(0).permutation(2)
    twin = _one_step_overflow_case()[0]
    good = [i for i in order][: list(order).index(1)]        # the steps before the bad one
    for i in good:
        sgd_step(twin, twin.gradients(x2[i:i + 1], y2[i:i + 1]), learning_rate=1e12, batch_size=1)
    with pytest.raises(FloatingPointError, match=f"step {len(good) + 1} of 2"):
        fit(net, x2, y2, epochs=1, learning_rate=1e12, rng=0, progress=False)
    for k, v in twin.parameters().items():
        np.testing.assert_array_equal(net.parameters()[k], v)


def test_fit_docstring_example_runs():
    import doctest

    import partitionnet.training as mod

    assert doctest.testmod(mod).failed == 0


def test_an_overflow_inside_the_forward_pass_is_reported_as_divergence():
    # Finite but huge parameters (as a previous large step leaves them) overflow in the correlation's
    # product. Without stopping at the overflow, the inf reaches the explicit pooling regions, which
    # refuse it with "y must be finite", a message about an argument the user never passed.
    from partitionnet import Pooling

    pool = Pooling.from_regions([[0, 1], [2, 3]], 4, kind="max")
    net = ConvNet((4,), 1, [ConvLayer(1, kernel=1, pooling=pool, activation="identity")], [1],
                  activation="identity", rng=0)
    p = net.parameters()
    p["conv1.W"][:] = 1e200
    net.set_parameters(p)
    with pytest.raises(FloatingPointError, match=r"diverged in epoch 1, step 1 of 2.*overflow.*lower learning_rate"):
        fit(net, np.full((2, 1, 4), 1e200), np.zeros((2, 1)), epochs=1, learning_rate=0.1, rng=0, progress=False)
    assert net.parameters()["conv1.W"][0, 0] == 1e200


def test_progress_inside_a_jupyter_kernel():
    # fit(progress=True) run by a real kernel: tqdm.auto picks the widget when ipywidgets is installed;
    # without it, fit prints one line per epoch and no "IProgress not found" warning.
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    code = (
        "import numpy as np\n"
        "from partitionnet import ConvNet, ConvLayer, fit\n"
        "net = ConvNet((6,), 1, [ConvLayer(2, kernel=3, window=2)], [2], rng=0)\n"
        "x = np.random.default_rng(0).standard_normal((6, 1, 6))\n"
        "h = fit(net, x, np.arange(6) % 2, epochs=2, batch_size=2, learning_rate=0.1, rng=0)\n"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    widgets = [o for o in outputs if o.output_type == "display_data"
               and "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert "IProgress" not in text and "Traceback" not in text
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        assert len(re.findall(r"^epoch \d/2 .*elapsed \d\d:\d\d  ETA \d\d:\d\d$", text, re.M)) == 2, text
    else:
        assert len(widgets) == 2
