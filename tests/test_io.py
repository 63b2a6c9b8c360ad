"""Saving and loading networks (partitionnet.io): exact round trips for every
layer option, and clear errors for missing, truncated, foreign or inconsistent files."""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from partitionnet import ConvLayer as L
from partitionnet import ConvNet, Partition, Pooling
from partitionnet import io as nio
from partitionnet import layers as pl

from _helpers import randomise


# --------------------------------------------------------------------------- the table of networks
def _net(input_shape, in_maps, layers, dense, **options):
    return lambda: ConvNet(input_shape, in_maps, layers(), dense, **{"rng": 0, **options})


CASES = {
    # geometric layers in 1-D, 2-D, 3-D with every geometric argument
    "1d-stride-dilation-padding-max": _net((17,), 2, lambda: [
        L(3, kernel=3, stride=2, padding=1, dilation=2, window=2),
        L(2, kernel=2, padding="full", pooling="mean", window=5)], [4, 3]),
    "2d-same-max-mean-sigmoid-out": _net((6, 6), 3, lambda: [
        L(2, kernel=3, padding="same", window=2), L(3, kernel=2, pooling="mean", window=2)],
        [4, 2], output="sigmoid"),
    "2d-tuple-kernel-tuple-padding-valid": _net((7, 5), 1, lambda: [
        L(2, kernel=(3, 2), padding=(1, 0), stride=(2, 1), pooling=None)], [3]),
    "3d-kernel2-mean": _net((4, 4, 4), 2, lambda: [L(2, kernel=2, pooling="mean", window=(3, 1, 3),
                                                     pool_options={"drop_remainder": True})], [2]),
    # every pooling kind over windows
    "pool-l2": _net((9,), 1, lambda: [L(2, kernel=2, pooling="l2", window=4)], [2]),
    "pool-lp3": _net((5, 4), 1, lambda: [L(3, kernel=(2, 3), padding="full", pooling="lp", window=2,
                                           pool_options={"p": 3})], [3],
                     activation="relu", output="softmax", loss="cross_entropy"),
    "pool-correlation-window-mask": _net((5, 5), 3, lambda: [
        L(2, kernel=2, padding=(1, 0), pooling="correlation", window=2,
          pool_options={"mask": [[0.5, -1.0], [2.0, 0.1 + 0.2]]})], [3],
        activation="identity", output="tanh", bias="tied"),
    "pool-subsample-random-drop": _net((9, 9), 3, lambda: [
        L(2, kernel=3, stride=2, dilation=2, pooling="subsample", window=2,
          pool_options={"retain": "random", "rng": 5, "drop_remainder": True})], [2]),
    "pool-subsample-fixed": _net((12,), 1, lambda: [L(2, kernel=3, pooling="subsample", window=5,
                                                      pool_options={"retain": 3, "drop_remainder": True})], [2]),
    "pool-max-no-window-means-none": _net((6,), 1, lambda: [L(2, kernel=3, pooling="max")], [2]),
    # explicit Pooling objects
    "pooling-from-regions-unequal-max": _net((14,), 1, lambda: [
        L(2, kernel=3, pooling=Pooling.from_regions([[1, 2, 4, 8], [3, 5, 7, 9, 11], [6, 10, 12]], 12,
                                                     one_based=True))], [2]),
    "pooling-from-regions-lp-drop": _net((9,), 1, lambda: [
        L(2, kernel=3, pooling=Pooling.from_regions([[0, 1, 2, 6], [3, 5]], 7, kind="lp", p=3,
                                                     drop_remainder=True))], [2]),
    "pooling-from-regions-correlation": _net((8,), 3, lambda: [
        L(2, kernel=2, dilation=2, activation="identity",
          pooling=Pooling.from_regions([[5, 0], [1, 2, 4], [3]], 6, kind="correlation",
                                       mask=[0.5, -1.0, 2.0, 0.3, 1.5, -0.7]))], [2]),
    "pooling-from-regions-subsample-random": _net((10,), 1, lambda: [
        L(2, kernel=3, pooling=Pooling.from_regions([[0, 1, 2], [3, 4, 5, 6], [7]], 8, kind="subsample",
                                                     retain="random", rng=9))], [2]),
    "pooling-windows-object-2d": _net((6, 6), 1, lambda: [
        L(2, kernel=3, padding="same", pooling=Pooling.windows((6, 6), (2, 3), kind="mean")),
        L(2, kernel=(2, 1))], [2]),
    "pooling-identity-object": _net((6,), 1, lambda: [L(2, kernel=3, pooling=Pooling.identity((4,)))], [2]),
    # explicit partitions
    "partition-unstructured": _net((10,), 2, lambda: [
        L(3, partition=Partition.from_indices([[0, 3, 7], [1, 1, 9], [2, 5, 8], [9, 0, 4], [6, 6, 6], [3, 2, 1]],
                                              10), window=2, pooling="max"),
        L(2, partition=Partition.from_indices([[0, 2], [1, 0], [2, 1], [1, 1]], 3), pooling=None)], [3]),
    "partition-seed-example-one-based": _net((6,), 1, lambda: [
        L(2, partition=Partition.from_indices([[1, 4, 6], [2, 5, 4], [3, 6, 1], [2, 4, 1]], 6, one_based=True),
          pooling=None)], [2]),
    "partition-sliding-window-object": _net((7, 7), 1, lambda: [
        L(2, partition=Partition.sliding_window((7, 7), 3, stride=2, padding=1), window=2)], [2]),
    "partition-blocks": _net((4, 6), 1, lambda: [L(2, partition=Partition.blocks((4, 6), (2, 3)))], [2]),
    # connection tables, biases, activations, outputs, losses
    "connections-lists-per-input": _net((8, 8), 2, lambda: [
        L(3, kernel=3, window=2),
        L(4, kernel=2, pooling=None, connections=[[0], [1, 2], [0, 2], [1]])], [5, 3],
        activation="sigmoid"),
    "connections-bool-array-tied": _net((8,), 3, lambda: [
        L(2, kernel=3, pooling=None, connections=np.array([[True, False, True], [False, True, False]]))], [2],
        bias="tied"),
    "layer-activations": _net((20,), 1, lambda: [
        L(2, kernel=3, padding=1, window=2, activation="tanh"),
        L(3, kernel=2, window=3, activation="sigmoid", pooling="subsample"),
        L(2, kernel=2, padding="full", window=2, activation="identity", pooling="l2")], [3, 2],
        activation="relu", bias="tied"),
}
for _output in ("identity", "sigmoid", "tanh", "relu", "softmax"):
    CASES[f"output-{_output}-squared"] = _net((6,), 1, lambda: [L(2, kernel=3, window=2)], [3],
                                               output=_output, loss="squared")
CASES["output-softmax-cross-entropy"] = _net((6,), 1, lambda: [L(2, kernel=3, window=2)], [3],
                                             output="softmax", loss="cross_entropy")
for _act in ("tanh", "relu", "sigmoid", "identity"):
    CASES[f"activation-{_act}"] = _net((6,), 1, lambda: [L(2, kernel=3, window=2)], [4, 2], activation=_act)


def _randomise(net, seed=0):
    randomise(net, np.random.default_rng(seed), weight_scale=1.0, bias_scale=1.0)
    return net


def _inputs(net, n=3, seed=1):
    return np.random.default_rng(seed).standard_normal((n, net.in_maps) + net.input_shape)


@pytest.mark.parametrize("name", list(CASES))
def test_round_trip_is_exact(name, tmp_path):
    net = _randomise(CASES[name]())
    path = tmp_path / "net.npz"
    assert nio.save(net, path) == path
    back = nio.load(path)
    x = _inputs(net)
    assert np.array_equal(back.forward(x), net.forward(x))              # bit-identical outputs
    assert list(back.parameters()) == list(net.parameters())
    for key in net.parameters():
        assert np.array_equal(back.parameters()[key], net.parameters()[key]), key
    assert nio.architecture(back) == nio.architecture(net)
    assert repr(back) == repr(net)
    Q = net.dense_sizes[-1]
    gamma = np.random.default_rng(2).uniform(size=(3, Q))
    if net.loss_name == "cross_entropy":
        gamma /= gamma.sum(axis=1, keepdims=True)
    g1, g2 = net.gradients(x, gamma), back.gradients(x, gamma)
    assert all(np.array_equal(g1[k], g2[k]) for k in g1)


def test_geometric_layers_are_rebuilt_from_their_geometry(tmp_path):
    net = CASES["2d-same-max-mean-sigmoid-out"]()
    nio.save(net, tmp_path / "n.npz")
    back = nio.load(tmp_path / "n.npz")
    for st in back.conv:
        assert st.spec.partition is None and st.spec.kernel is not None   # a ConvLayer(kernel=...), as built
        assert st.partition.geometry is not None


def test_random_retain_and_masks_are_stored_resolved(tmp_path):
    net = CASES["pool-subsample-random-drop"]()
    nio.save(net, tmp_path / "n.npz")
    arch = json.loads(str(np.load(tmp_path / "n.npz", allow_pickle=False)["architecture"]))
    opts = arch["layers"][0]["pooling"]["options"]
    assert opts["retain"] == net.conv[0].pooling.retain.tolist() and "rng" not in opts
    back = nio.load(tmp_path / "n.npz")
    assert np.array_equal(back.conv[0].pooling.retain, net.conv[0].pooling.retain)
    net = CASES["pool-correlation-window-mask"]()
    nio.save(net, tmp_path / "m.npz")
    assert np.array_equal(nio.load(tmp_path / "m.npz").conv[0].pooling.mask, net.conv[0].pooling.mask)


def test_trained_network_round_trip(tmp_path):
    from partitionnet import datasets
    from partitionnet.training import fit

    ds = datasets.squares_diamonds(20, 10, size=7, seed=0)
    net = ConvNet((7, 7), 1, [L(3, kernel=3, padding="same", window=(3, 3), pool_options={"drop_remainder": True})],
                  [2], output="softmax", loss="cross_entropy", rng=1)
    fit(net, ds.x_train, ds.y_train, epochs=2, learning_rate=0.1, rng=0, progress=False)
    nio.save(net, tmp_path / "t.npz")
    assert np.array_equal(nio.load(tmp_path / "t.npz").forward(ds.x_test), net.forward(ds.x_test))


def test_file_is_plain_data(tmp_path):
    net = CASES["partition-unstructured"]()
    path = nio.save(net, tmp_path / "n.npz")
    with np.load(path, allow_pickle=False) as data:
        assert str(data["format"]) == nio.FORMAT and int(data["version"]) == 1 <= nio.VERSION
        assert all(data[k].dtype != object for k in data.files)
        arch = json.loads(str(data["architecture"]))
        assert {k for k in data.files if k.startswith("param:")} == {f"param:{k}" for k in net.parameters()}
    part = arch["layers"][0]["partition"]
    assert part["type"] == "indices" and part["indices"][1] == [1, 1, 9]


def test_save_writes_exactly_the_given_path_and_leaves_no_temporary(tmp_path):
    net = CASES["activation-tanh"]()
    path = nio.save(net, str(tmp_path / "model"))
    assert path.name == "model" and path.exists()
    assert os.listdir(tmp_path) == ["model"]
    nio.save(_randomise(net), path)                                   # overwrite
    assert np.array_equal(nio.load(path).parameters()["dense1.W"], net.parameters()["dense1.W"])
    assert os.listdir(tmp_path) == ["model"]


def test_save_rejects_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="Network"):
        nio.save("net", tmp_path / "x.npz")
    with pytest.raises(TypeError, match="path"):
        nio.save(CASES["activation-tanh"](), 3)
    with pytest.raises(FileNotFoundError):
        nio.save(CASES["activation-tanh"](), tmp_path / "no" / "such" / "dir.npz")


# --------------------------------------------------------------------------- bad files
@pytest.fixture
def saved(tmp_path):
    net = _randomise(CASES["connections-lists-per-input"]())
    return net, nio.save(net, tmp_path / "good.npz")


def _rewrite(path, target, change):
    """Copy the arrays of ``path`` to ``target`` after ``change(dict)``."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    with open(target, "wb") as fh:
        np.savez(fh, **arrays)
    return target


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no network file"):
        nio.load(tmp_path / "absent.npz")
    with pytest.raises(IsADirectoryError):
        nio.load(tmp_path)
    with pytest.raises(TypeError, match="path"):
        nio.load(None)


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, 0.9, -1])
def test_truncated_file(saved, tmp_path, keep):
    _, path = saved
    raw = path.read_bytes()
    n = keep if isinstance(keep, int) and keep >= 0 else (len(raw) - 1 if keep == -1 else int(keep * len(raw)))
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(raw[:n])
    with pytest.raises(ValueError, match="not a readable partitionnet network file"):
        nio.load(bad)


def test_foreign_files(tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones(3))
    with pytest.raises(ValueError, match="not a partitionnet network file"):
        nio.load(other)
    text = tmp_path / "text.npz"
    text.write_text("hello, I am not a network\n")
    with pytest.raises(ValueError, match="not a readable partitionnet network file"):
        nio.load(text)
    npy = tmp_path / "array.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(ValueError, match="single array"):
        nio.load(npy)


def test_pickles_are_never_loaded(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("echo should-not-run > " + str(tmp_path / "ran"),))

    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(ValueError):
        nio.load(path)
    obj = tmp_path / "objects.npz"
    np.savez(obj, format=np.array(nio.FORMAT), version=np.array(1), architecture=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError):
        nio.load(obj)
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("change, match", [
    (lambda a: a.update(version=np.array(99)), "format version 99"),
    (lambda a: a.update(version=np.array("1")), "version is missing or malformed"),
    (lambda a: a.pop("version"), "version is missing"),
    (lambda a: a.update(format=np.array("something.else")), "not a partitionnet network file"),
    (lambda a: a.pop("architecture"), "'architecture' entry is missing"),
    (lambda a: a.update(architecture=np.array("{not json")), "not valid JSON"),
    (lambda a: a.update(architecture=np.array(json.dumps({"layers": []}))), "does not describe a valid network"),
    (lambda a: a.update({"param:dense1.W": np.ones((2, 2))}), r"dense1.W has shape \(2, 2\)"),
    (lambda a: a.update({"param:dense1.W": a["param:dense1.W"].astype(np.float32)}), "dtype float32"),
    (lambda a: a.pop("param:conv2.Theta"), r"missing \['conv2.Theta'\]"),
    (lambda a: a.update({"param:conv9.W": np.ones(2)}), r"unexpected \['conv9.W'\]"),
    (lambda a: a.update({"param:conv2.W": np.ones_like(a["param:conv2.W"])}), "connection table"),
    (lambda a: a.update({"param:dense2.theta": np.full(3, np.nan)}), "finite"),
])
def test_inconsistent_files(saved, tmp_path, change, match):
    _, path = saved
    bad = _rewrite(path, tmp_path / "bad.npz", change)
    with pytest.raises(ValueError, match=match):
        nio.load(bad)


def test_architecture_that_changes_the_parameter_shapes(saved, tmp_path):
    _, path = saved

    def change(arrays):
        arch = json.loads(str(arrays["architecture"]))
        arch["layers"][0]["maps"] = 5
        arrays["architecture"] = np.array(json.dumps(arch))

    with pytest.raises(ValueError, match="conv1.W has shape"):
        nio.load(_rewrite(path, tmp_path / "bad.npz", change))


def test_doctest():
    import doctest

    assert doctest.testmod(nio).failed == 0


# --------------------------------------------------------------------------- files saved by format 1 of release 0.1
DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.mark.parametrize("name", ["convnet_v1_2d", "convnet_v1_1d_subsample"])
def test_files_of_the_first_release_load_and_give_the_same_outputs(name):
    net = nio.load(os.path.join(DATA, f"{name}.npz"))
    with np.load(os.path.join(DATA, f"{name}_expected.npz")) as ref:
        np.testing.assert_array_equal(net.forward(ref["x"]), ref["y"])
    assert nio.load_metadata(os.path.join(DATA, f"{name}.npz")) == {}


# --------------------------------------------------------------------------- how the file is written
def _mode(path):
    return os.stat(path).st_mode & 0o777


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_follow_the_umask_as_numpy_does(tmp_path, umask):
    old = os.umask(umask)
    try:
        nio.save(CASES["activation-tanh"](), tmp_path / "net.npz")
        np.savez(tmp_path / "numpy.npz", a=np.ones(2))
    finally:
        os.umask(old)
    assert _mode(tmp_path / "net.npz") == _mode(tmp_path / "numpy.npz") == 0o666 & ~umask


def test_overwriting_keeps_the_mode_of_the_existing_file(tmp_path):
    path = nio.save(CASES["activation-tanh"](), tmp_path / "net.npz")
    os.chmod(path, 0o640)
    nio.save(CASES["activation-relu"](), path)
    assert _mode(path) == 0o640 and nio.load(path).activation == "relu"


def test_a_symlink_is_followed_and_kept(tmp_path):
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "real.npz"
    nio.save(CASES["activation-tanh"](), target)
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    assert nio.save(CASES["activation-relu"](), link) == link
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert nio.load(target).activation == "relu"
    assert sorted(os.listdir(tmp_path / "store")) == ["real.npz"]


def test_write_errors_name_the_users_path_not_the_temporary_file(tmp_path):
    path = tmp_path / "missing" / "dir" / "x.npz"
    with pytest.raises(FileNotFoundError) as info:
        nio.save(CASES["activation-tanh"](), path)
    assert info.value.filename == str(path) and ".tmp" not in str(info.value)
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    try:
        if os.access(tmp_path / "ro", os.W_OK):   # running as root: permissions do not stop the write
            pytest.skip("the permission check needs a non-root user")
        with pytest.raises(PermissionError) as info:
            nio.save(CASES["activation-tanh"](), tmp_path / "ro" / "x.npz")
        assert info.value.filename == str(tmp_path / "ro" / "x.npz")
    finally:
        os.chmod(tmp_path / "ro", 0o700)


_SIGTERM_SCRIPT = r"""
import os, signal, sys
import numpy as np
from partitionnet import ConvNet, ConvLayer, io
net = ConvNet((6,), 1, [ConvLayer(2, kernel=3, window=2)], [2], rng=0)
real = np.savez
def savez(fh, **arrays):           # write part of the file, then receive SIGTERM mid-write
    fh.write(b"PK" + b"x" * 1000)
    fh.flush()
    os.kill(os.getpid(), signal.SIGTERM)
    real(fh, **arrays)
np.savez = savez
io.save(net, sys.argv[1])
print("not reached")
"""


def test_sigterm_while_saving_leaves_no_temporary_file(tmp_path):
    import signal
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _SIGTERM_SCRIPT, str(tmp_path / "net.npz")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == -signal.SIGTERM, out.stderr   # the process still ends by SIGTERM
    assert "not reached" not in out.stdout
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- metadata
def test_metadata_round_trip(tmp_path):
    meta = {"dataset": "mnist1d", "settings": {"epochs": 3, "lr": 0.1, "maps": [8, 8]}, "note": None}
    path = nio.save(CASES["activation-tanh"](), tmp_path / "net.npz", metadata=meta)
    assert nio.load_metadata(path) == meta
    assert nio.load(path).activation == "tanh"
    path = nio.save(CASES["activation-tanh"](), tmp_path / "plain.npz")
    assert nio.load_metadata(path) == {}


@pytest.mark.parametrize("meta, error, match", [
    (["dataset"], TypeError, "metadata must be a dict"),
    ({"x": np.ones(2)}, ValueError, "JSON-serialisable"),
    ({"x": float("nan")}, ValueError, "JSON-serialisable"),
])
def test_metadata_is_checked(tmp_path, meta, error, match):
    with pytest.raises(error, match=match):
        nio.save(CASES["activation-tanh"](), tmp_path / "net.npz", metadata=meta)
    assert os.listdir(tmp_path) == []


def test_metadata_errors(saved, tmp_path):
    _, path = saved
    bad = _rewrite(path, tmp_path / "bad.npz", lambda a: a.update(metadata=np.array("[1, 2]")))
    with pytest.raises(ValueError, match="metadata must be a JSON object"):
        nio.load_metadata(bad)
    with pytest.raises(FileNotFoundError):
        nio.load_metadata(tmp_path / "absent.npz")


# --------------------------------------------------------------------------- bounds: declared sizes checked before reading
def _npy_header(shape, dtype="<f8") -> bytes:
    import io as _io

    buf = _io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _with_members(path, target, members, drop=()):
    """Copy the zip ``path`` to ``target`` with extra or replaced raw members (name -> bytes, or a writer)."""
    import zipfile

    with zipfile.ZipFile(path) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename[:-4] not in members and info.filename[:-4] not in drop:
                dst.writestr(info.filename, src.read(info))
        for name, body in members.items():
            if callable(body):
                with dst.open(name + ".npy", "w", force_zip64=True) as fh:
                    body(fh)
            else:
                dst.writestr(name + ".npy", body)
    return target


def test_a_small_file_declaring_gigabytes_is_refused_unread(saved, tmp_path):
    _, path = saved
    huge = (36000, 36000)                                   # 9.65 GiB of float64 declared in a 4 kB member
    bad = _with_members(path, tmp_path / "huge.npz", {"param:dense1.W": _npy_header(huge) + b"\0" * 4000})
    assert bad.stat().st_size < 20_000
    with pytest.raises(ValueError, match="declares an array of 10368000000 bytes"):
        nio.load(bad)


def test_a_zip_bomb_is_refused_unread(saved, tmp_path):
    import tracemalloc

    _, path = saved
    n = nio.TEXT_LIMIT + 2 ** 20                          # 65 MiB of zeros in about 65 kB

    def bomb(fh):
        fh.write(_npy_header((n // 8,)))
        block = b"\0" * 2 ** 20
        for _ in range(n // len(block)):
            fh.write(block)

    extra = _with_members(path, tmp_path / "extra.npz", {"padding": bomb})
    assert extra.stat().st_size < 2 ** 20
    replaced = _with_members(path, tmp_path / "param.npz", {"param:dense1.W": bomb})
    text = _with_members(path, tmp_path / "text.npz",
                         {"architecture": lambda fh: (fh.write(_npy_header((), "<U%d" % (n // 4))),
                                                      [fh.write(b"\0" * 2 ** 20) for _ in range(n // 2 ** 20)])})
    for bad, match in [(extra, "unexpected member 'padding'"), (replaced, r"dense1.W has shape \(8519680,\)"),
                       (text, "declares 68157440 bytes")]:
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match=match):
                nio.load(bad)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 8 * 2 ** 20, (bad, peak)               # never read into memory


def test_a_member_whose_data_disagree_with_its_header_is_refused(saved, tmp_path):
    _, path = saved
    with np.load(path) as data:
        shape = data["param:dense1.W"].shape
    bad = _with_members(path, tmp_path / "short.npz",
                        {"param:dense1.W": _npy_header(shape) + b"\0" * (8 * int(np.prod(shape)) + 64)})
    with pytest.raises(ValueError, match="declares an array of"):
        nio.load(bad)


@pytest.mark.parametrize("retain, ok", [([0, 2, 1], True), ([0.0, 2.0, 1.0], False), ([0, 1.7, 1], False),
                                        ([True, False, True], False)])
def test_the_loader_rejects_float_retain_positions(tmp_path, retain, ok):
    net = ConvNet((12,), 1, [L(2, kernel=3, pooling="subsample", window=3,
                                pool_options={"retain": "random", "rng": 1, "drop_remainder": True})], [2], rng=0)
    path = nio.save(net, tmp_path / "n.npz")

    def change(arrays):
        arch = json.loads(str(arrays["architecture"]))
        arch["layers"][0]["pooling"]["options"]["retain"] = retain
        arrays["architecture"] = np.array(json.dumps(arch))

    bad = _rewrite(path, tmp_path / "bad.npz", change)
    if ok:
        assert np.array_equal(nio.load(bad).conv[0].pooling.retain, [0, 2, 1])
    else:
        with pytest.raises(ValueError, match="retain must be a list of integer positions"):
            nio.load(bad)


def test_float32_networks_stay_float32(tmp_path):
    net = ConvNet((6,), 1, [L(2, kernel=3, window=2)], [2], rng=0, dtype=np.float32)
    back = nio.load(nio.save(net, tmp_path / "n.npz"))
    assert back.dtype == np.float32
    x = _inputs(net)
    assert np.array_equal(back.forward(x), net.forward(x))


# --------------------------------------------------------------------------- any Network (format version 2)
def _networks_of_every_kind():
    """One small network per layer kind, built from the kinds' own contract examples."""
    from partitionnet import Network
    from partitionnet.layers import REGISTRY

    nets = []
    for kind, cls in sorted(REGISTRY.items()):
        layer, in_maps, in_shape = cls.examples()[0]
        nets.append(pytest.param(kind, Network(in_shape, in_maps, [layer, pl.Flatten(), pl.Dense(2)], rng=3),
                                 id=kind))
    return nets


@pytest.mark.parametrize("kind, net", _networks_of_every_kind())
def test_networks_of_every_kind_round_trip_exactly(kind, net, tmp_path):
    path = net.save(tmp_path / f"{kind}.npz", metadata={"kind": kind})
    back = nio.load(path)
    assert type(back) is type(net) and back.config() == net.config()
    for key, value in net.parameters().items():
        assert np.array_equal(back.parameters()[key], value), key
    x = np.random.default_rng(0).standard_normal((3, net.in_maps, *net.input_shape))
    assert np.array_equal(back.forward(x), net.forward(x))
    assert nio.load_metadata(path) == {"kind": kind}
    with np.load(path, allow_pickle=False) as data:
        assert int(data["version"]) == 2


def test_a_convnet_is_still_written_as_version_1(tmp_path):
    net = ConvNet((6,), 1, [L(2, kernel=3, window=2)], [2], rng=0)
    with np.load(nio.save(net, tmp_path / "c.npz"), allow_pickle=False) as data:
        assert int(data["version"]) == 1
    assert type(nio.load(tmp_path / "c.npz")) is ConvNet


def test_a_network_whose_description_loses_an_operator_is_not_written(tmp_path, monkeypatch):
    """If a layer's config forgot an option (here the stride), the rebuilt network would compute
    something else: save must refuse rather than write a file that loads wrong."""
    from partitionnet import Network

    net = Network((9,), 1, [pl.Correlation(2, kernel=3, stride=2), pl.Flatten(), pl.Dense(1)], rng=0)
    original = pl.Correlation.config

    def forgetful(self):
        return {k: v for k, v in original(self).items() if k != "stride"}

    monkeypatch.setattr(pl.Correlation, "config", forgetful)
    with pytest.raises(ValueError, match="cannot be stored exactly"):
        nio.save(net, tmp_path / "n.npz")
    assert not (tmp_path / "n.npz").exists()


def test_a_version_2_file_with_a_tampered_parameter_is_refused(tmp_path):
    from partitionnet import Network

    net = Network((6,), 1, [pl.Correlation(2, kernel=3), pl.Flatten(), pl.Dense(1)], rng=0)
    path = net.save(tmp_path / "n.npz")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    key = next(k for k in arrays if k.startswith("param:"))
    arrays[key] = np.zeros(arrays[key].size + 1)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="shape"):
        nio.load(tmp_path / "bad.npz")
