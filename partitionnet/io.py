"""Saving and loading networks: one ``.npz`` file, data only.

A network file holds

* ``format`` and ``version`` (0-d string / integer arrays) that identify it;
* ``architecture``: a JSON document (0-d string array) describing the network
  completely - input shape, input maps, every correlation layer (its
  partition as geometry or as explicit index lists, its pooling as kind +
  window + resolved options or as explicit regions, its activation and
  connection table), the dense sizes, activation, output, loss and bias mode;
* ``param:<name>`` for every parameter under the seed's names
  (``conv1.W``, ``conv1.Theta``, ..., ``dense1.W``, ``dense1.theta``).

It is read with ``numpy.load(..., allow_pickle=False)``: a network file is
data and never runs code. Everything random at construction time is stored
resolved (the retained positions of ``retain='random'`` subsampling, the
full correlation-pooling mask), so the rebuilt network computes exactly
the same numbers: outputs are bit-identical.

Example
-------
>>> import tempfile, os
>>> from partitionnet import ConvNet, ConvLayer
>>> net = ConvNet((6, 6), 1, [ConvLayer(2, kernel=3, padding="same", window=2)], [2], rng=0)
>>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
>>> _ = save(net, path)
>>> x = np.random.default_rng(1).standard_normal((3, 1, 6, 6))
>>> bool(np.array_equal(load(path).forward(x), net.forward(x)))
True
"""
from __future__ import annotations

import json
import numbers
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["save", "load", "FORMAT", "VERSION"]

FORMAT = "partitionnet.ConvNet"
VERSION = 1
_PARAM = "param:"


# --------------------------------------------------------------------------- #
# network -> JSON
# --------------------------------------------------------------------------- #
def _jsonable(value):
    """Turn tuples / numpy scalars into plain JSON values (lists, int, float, str)."""
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_jsonable(v) for v in value]
    raise TypeError(f"cannot store {type(value).__name__} {value!r} in a network file")


def _as_tuple(value):
    """JSON lists back to (nested) tuples; scalars and strings unchanged."""
    if isinstance(value, list):
        return tuple(_as_tuple(v) for v in value)
    return value


def _describe_partition(part) -> dict:
    if part.geometry is not None:
        g = part.geometry
        return {"type": "sliding_window", **{k: _jsonable(g[k]) for k in
                                             ("input_shape", "kernel", "stride", "padding", "dilation")}}
    return {"type": "indices", "size": part.M, "indices": part.indices.tolist(),  # -1 marks zero padding
            "input_shape": list(part.input_shape), "output_shape": list(part.output_shape),
            "kernel_shape": list(part.kernel_shape)}


def _pool_options(pool) -> dict:
    """The resolved kind options of a Pooling (never an rng)."""
    opts = {"drop_remainder": bool(pool.dropped.size)}
    if pool.kind == "correlation":
        opts["mask"] = np.asarray(pool.mask, dtype=np.float64).tolist()
    elif pool.kind == "lp":
        opts["p"] = float(pool.p)
    elif pool.kind == "subsample":
        opts["retain"] = np.asarray(pool.retain).tolist()
    return opts


def _describe_pooling(pool) -> dict:
    """An explicit Pooling object: by windows when it has them, else by its regions."""
    if pool.window is not None:
        return {"type": "windows", "input_shape": list(pool.input_shape), "window": list(pool.window),
                "kind": pool.kind, "options": _pool_options(pool)}
    return {"type": "regions", "size": pool.P, "regions": [r.tolist() for r in pool.regions],
            "kind": pool.kind, "options": _pool_options(pool)}


def _describe_layer(st) -> dict:
    from .pooling import Pooling

    spec = st.spec
    layer = {"maps": st.maps, "activation": spec.activation}
    if spec.partition is None:
        g = st.partition.geometry
        layer["geometry"] = {k: _jsonable(g[k]) for k in ("kernel", "stride", "padding", "dilation")}
    else:
        layer["partition"] = _describe_partition(st.partition)
    if isinstance(spec.pooling, Pooling):
        layer["pooling"] = _describe_pooling(st.pooling)
    elif spec.pooling is None or spec.window is None:
        layer["pooling"] = None
    else:
        layer["pooling"] = {"type": "kind", "kind": spec.pooling, "window": _jsonable(spec.window),
                            "options": _pool_options(st.pooling)}
    if st.connections.all():
        layer["connections"] = None
    else:
        layer["connections"] = [np.flatnonzero(row).tolist() for row in st.connections]
    return layer


def architecture(net) -> dict:
    """The JSON-ready description of ``net`` stored in a network file."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "input_shape": list(net.input_shape),
        "in_maps": net.in_maps,
        "layers": [_describe_layer(st) for st in net.conv],
        "dense": list(net.dense_sizes[1:]),
        "activation": net.activation,
        "output": net.output,
        "loss": net.loss_name,
        "bias": net.bias,
    }


# --------------------------------------------------------------------------- #
# JSON -> network
# --------------------------------------------------------------------------- #
def _need(d: dict, key: str, where: str):
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(d).__name__}")
    if key not in d:
        raise ValueError(f"{where} has no '{key}' entry")
    return d[key]


def _build_partition(desc: dict, where: str):
    from .partition import Partition

    kind = _need(desc, "type", where)
    if kind == "sliding_window":
        return Partition.sliding_window(_as_tuple(_need(desc, "input_shape", where)),
                                        _as_tuple(_need(desc, "kernel", where)),
                                        stride=_as_tuple(_need(desc, "stride", where)),
                                        padding=_as_tuple(_need(desc, "padding", where)),
                                        dilation=_as_tuple(_need(desc, "dilation", where)))
    if kind == "indices":
        size = _need(desc, "size", where)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"{where}: size must be a positive integer, got {size!r}")
        idx = np.asarray(_need(desc, "indices", where))
        if idx.ndim != 2 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"{where}: indices must be a non-empty P x S table of integers")
        if idx.min() < -1 or idx.max() >= size:
            raise ValueError(f"{where}: indices must lie in [-1, {size - 1}] (-1 marks padding)")
        shapes = {k: tuple(_need(desc, k, where)) for k in ("input_shape", "output_shape", "kernel_shape")}
        if (int(np.prod(shapes["input_shape"])) != size or int(np.prod(shapes["output_shape"])) != idx.shape[0]
                or int(np.prod(shapes["kernel_shape"])) != idx.shape[1]):
            raise ValueError(f"{where}: the stored shapes do not match the index table {idx.shape} of size {size}")
        if not (idx < 0).any() and shapes == {"input_shape": (size,), "output_shape": (idx.shape[0],),
                                               "kernel_shape": (idx.shape[1],)}:
            return Partition.from_indices(idx, size)
        return Partition(idx, size, **shapes)
    raise ValueError(f"{where}: unknown partition type {kind!r}")


def _options(desc: dict, where: str) -> dict:
    opts = dict(_need(desc, "options", where))
    unknown = set(opts) - {"drop_remainder", "mask", "p", "retain"}
    if unknown:
        raise ValueError(f"{where}: unknown pooling options {sorted(unknown)}")
    if "mask" in opts:
        opts["mask"] = np.asarray(opts["mask"], dtype=np.float64)
    if "retain" in opts:
        opts["retain"] = np.asarray(opts["retain"], dtype=np.int64)
    return opts


def _build_pooling(desc, where: str):
    """Returns the ``pooling, window, pool_options`` arguments of a ConvLayer."""
    from .pooling import Pooling

    if desc is None:
        return None, None, None
    kind = _need(desc, "type", where)
    if kind == "kind":
        return _need(desc, "kind", where), _as_tuple(_need(desc, "window", where)), _options(desc, where)
    if kind == "windows":
        pool = Pooling.windows(_as_tuple(_need(desc, "input_shape", where)), _as_tuple(_need(desc, "window", where)),
                               kind=_need(desc, "kind", where), **_options(desc, where))
        return pool, None, None
    if kind == "regions":
        regions = [np.asarray(r, dtype=np.int64) for r in _need(desc, "regions", where)]
        pool = Pooling.from_regions(regions, _need(desc, "size", where), kind=_need(desc, "kind", where),
                                    **_options(desc, where))
        return pool, None, None
    raise ValueError(f"{where}: unknown pooling type {kind!r}")


def _build_layer(desc: dict, c: int):
    from .network import ConvLayer

    where = f"architecture layer {c}"
    maps = _need(desc, "maps", where)
    pooling, window, pool_options = _build_pooling(_need(desc, "pooling", where), f"{where} pooling")
    common = dict(pooling=pooling, window=window, pool_options=pool_options,
                  activation=_need(desc, "activation", where), connections=_need(desc, "connections", where))
    if "geometry" in desc:
        g = desc["geometry"]
        return ConvLayer(maps, kernel=_as_tuple(_need(g, "kernel", where)), stride=_as_tuple(_need(g, "stride", where)),
                         padding=_as_tuple(_need(g, "padding", where)),
                         dilation=_as_tuple(_need(g, "dilation", where)), **common)
    return ConvLayer(maps, partition=_build_partition(_need(desc, "partition", where), f"{where} partition"),
                     **common)


def from_architecture(arch: dict, *, rng=None):
    """Build an (untrained) :class:`ConvNet` from a description made by :func:`architecture`."""
    from .network import ConvNet

    layers = _need(arch, "layers", "architecture")
    if not isinstance(layers, list):
        raise ValueError("architecture 'layers' must be a list")
    return ConvNet(_as_tuple(_need(arch, "input_shape", "architecture")), _need(arch, "in_maps", "architecture"),
                   [_build_layer(d, c) for c, d in enumerate(layers, start=1)],
                   list(_need(arch, "dense", "architecture")), activation=_need(arch, "activation", "architecture"),
                   output=_need(arch, "output", "architecture"), loss=_need(arch, "loss", "architecture"),
                   bias=_need(arch, "bias", "architecture"), rng=rng)


def _same_structure(a, b) -> bool:
    """Do two networks compute with the same operators (partitions, poolings, tables)?"""
    if (a.input_shape, a.in_maps, a.dense_sizes, a.activation, a.output, a.loss_name, a.bias) != \
            (b.input_shape, b.in_maps, b.dense_sizes, b.activation, b.output, b.loss_name, b.bias):
        return False
    if len(a.conv) != len(b.conv):
        return False
    for s, t in zip(a.conv, b.conv):
        pa, pb = s.partition, t.partition
        qa, qb = s.pooling, t.pooling
        if not (pa == pb and pa.input_shape == pb.input_shape and pa.output_shape == pb.output_shape
                and pa.kernel_shape == pb.kernel_shape and s.activation == t.activation
                and np.array_equal(s.connections, t.connections) and s.maps == t.maps):
            return False
        if not (qa.kind == qb.kind and qa.P == qb.P and np.array_equal(qa.order, qb.order)
                and np.array_equal(qa.sizes, qb.sizes) and qa.output_shape == qb.output_shape
                and qa.p == qb.p):
            return False
        for name in ("mask", "retain"):
            u, v = getattr(qa, name), getattr(qb, name)
            if (u is None) != (v is None) or (u is not None and not np.array_equal(u, v)):
                return False
    return True


# --------------------------------------------------------------------------- #
# save / load
# --------------------------------------------------------------------------- #
def save(net, path) -> Path:
    """Write ``net`` (architecture and parameters) to the ``.npz`` file ``path``.

    The file is written exactly at ``path`` (no suffix is added), through a
    temporary file in the same directory that replaces ``path`` at the end,
    so an interrupted save never leaves a half-written network behind.
    Before writing, the architecture is rebuilt from its JSON description and
    compared with ``net``'s operators, so a file that would not load back
    exactly is never written.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    from .network import ConvNet

    if not isinstance(net, ConvNet):
        raise TypeError(f"net must be a partitionnet.ConvNet, got {type(net).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    arch = architecture(net)
    text = json.dumps(arch, allow_nan=False)
    if not _same_structure(from_architecture(json.loads(text), rng=0), net):
        raise ValueError("this network's structure cannot be stored exactly (its rebuilt operators differ); "
                         "please report it as a bug")
    arrays = {"format": np.array(FORMAT), "version": np.array(VERSION, dtype=np.int64),
              "architecture": np.array(text)}
    for key, value in net._params.items():
        arrays[_PARAM + key] = np.ascontiguousarray(value, dtype=np.float64)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _read(path: Path) -> dict:
    """All arrays of the file, read eagerly (so a truncated member fails here), or a clear error."""
    try:
        obj = np.load(path, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:  # not an npz / npy at all: pickles, text, truncated archives, ...
        raise ValueError(f"{path} is not a readable partitionnet network file (truncated, corrupt or another "
                         f"format): {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} is not a partitionnet network file: it holds a single array "
                         "(a .npy file), not a .npz archive")
    try:
        with obj:
            return {key: obj[key] for key in obj.files}
    except Exception as exc:
        raise ValueError(f"{path} is not a readable partitionnet network file (truncated or corrupt): "
                         f"{type(exc).__name__}: {exc}") from None


def load(path):
    """Read a network written by :func:`save`; returns a new :class:`ConvNet`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is truncated, corrupt, not a partitionnet network file,
        written by a newer format version, or if its parameter arrays do not
        fit its architecture. Nothing is returned half-loaded.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no network file at {str(path)!r}")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory, not a network file")
    data = _read(path)
    fmt = data.get("format")
    if fmt is None or fmt.dtype.kind != "U" or fmt.shape != () or str(fmt) != FORMAT:
        raise ValueError(f"{path} is not a partitionnet network file (it has no '{FORMAT}' format marker; "
                         f"arrays found: {sorted(data)[:8]})")
    version = data.get("version")
    if version is None or version.shape != () or version.dtype.kind not in "iu":
        raise ValueError(f"{path}: the format version is missing or malformed")
    if int(version) > VERSION or int(version) < 1:
        raise ValueError(f"{path} was written in format version {int(version)}; this partitionnet reads "
                         f"versions 1..{VERSION} (upgrade partitionnet to read it)")
    text = data.get("architecture")
    if text is None or text.dtype.kind != "U" or text.shape != ():
        raise ValueError(f"{path}: the 'architecture' entry is missing or malformed")
    try:
        arch = json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: the architecture is not valid JSON ({exc})") from None
    try:
        net = from_architecture(arch, rng=0)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the stored architecture does not describe a valid network: {exc}") from None

    params = {k[len(_PARAM):]: v for k, v in data.items() if k.startswith(_PARAM)}
    expected = net.parameter_shapes()
    missing = [k for k in expected if k not in params]
    extra = [k for k in params if k not in expected]
    if missing or extra:
        raise ValueError(f"{path}: the parameter arrays do not fit the architecture (missing {missing}, "
                         f"unexpected {extra})")
    for key, shape in expected.items():
        arr = params[key]
        if arr.dtype != np.float64:
            raise ValueError(f"{path}: parameter {key} has dtype {arr.dtype}, expected float64")
        if arr.shape != shape:
            raise ValueError(f"{path}: parameter {key} has shape {arr.shape}, but the architecture needs {shape}")
    try:
        net.set_parameters(params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the parameter arrays do not fit the architecture: {exc}") from None
    return net
