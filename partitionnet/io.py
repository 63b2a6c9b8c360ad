"""Saving and loading networks: one ``.npz`` file, data only.

A network file holds

* ``format`` and ``version`` (0-d string / integer arrays) that identify it;
* ``architecture``: a JSON document (0-d string array) describing the network
  completely - input shape, input maps, every correlation layer (its
  partition as geometry or as explicit index lists, its pooling as kind +
  window + resolved options or as explicit regions, its activation and
  connection table), the dense sizes, activation, output, loss and bias mode;
* ``param:<name>`` for every parameter under the book's names
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

import contextlib
import errno
import json
import numbers
import os
import secrets
import signal
import stat
import threading
import zipfile
import zlib
from pathlib import Path

import numpy as np

__all__ = ["save", "load", "load_metadata", "FORMAT", "VERSION", "TEXT_LIMIT"]

FORMAT = "partitionnet.ConvNet"
#: The newest format version read and written. Version 1 stores a :class:`ConvNet` by its own description
#: (``architecture``); version 2 stores any :class:`Network` by :meth:`Network.config` (``{"network": ...}``).
#: A ConvNet is still written as version 1, so older readers load it.
VERSION = 2
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
        **({} if _dtype_of(net) == np.float64 else {"dtype": _dtype_of(net).name}),
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
        retain = np.asarray(opts["retain"])
        if retain.ndim != 1 or (retain.dtype.kind not in "iu" and retain.size):
            raise ValueError(f"{where}: retain must be a list of integer positions, got {opts['retain']!r}")
        opts["retain"] = retain.astype(np.int64)
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
                   bias=_need(arch, "bias", "architecture"), rng=rng, **_dtype_option(arch))


def _dtype_option(arch: dict) -> dict:
    """``dtype=`` for the ConvNet when the file records one (files without it are float64)."""
    if "dtype" not in arch:
        return {}
    if arch["dtype"] not in ("float64", "float32"):
        raise ValueError(f"architecture dtype must be 'float64' or 'float32', got {arch['dtype']!r}")
    return {"dtype": np.dtype(arch["dtype"])}


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


def _network_text(net) -> str:
    """The version-2 architecture: ``{"network": net.config()}`` as JSON."""
    try:
        return json.dumps({"network": net.config()}, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"this network's configuration cannot be stored as JSON: {exc}") from None


def _network_from_text(text: str, *, where: str = "architecture"):
    from .model import Network

    arch = json.loads(text)
    if not isinstance(arch, dict) or not isinstance(arch.get("network"), dict):
        raise ValueError(f"the {where} of a version-2 file must be an object with a 'network' entry")
    return Network.from_config(arch["network"], rng=0)


def _same_network(rebuilt, net) -> bool:
    """Does the rebuilt network compute what ``net`` computes? Same description, and, with ``net``'s
    parameters, bit-identical outputs on a random batch of two (this catches any operator the
    description does not pin down)."""
    if rebuilt.config() != net.config() or rebuilt.parameter_shapes() != net.parameter_shapes():
        return False
    rebuilt.set_parameters(net.parameters())
    x = np.random.default_rng(0).standard_normal((2, net.in_maps, *net.input_shape)).astype(net.dtype)
    return bool(np.array_equal(rebuilt.forward(x), net.forward(x)))


# --------------------------------------------------------------------------- #
# save / load
# --------------------------------------------------------------------------- #
# --------------------------------------------------------------------------- #
# save
# --------------------------------------------------------------------------- #
class _Terminated(BaseException):
    """Raised by the temporary signal handler of :func:`save` so the temporary file is removed."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _signals_raise():
    """While writing, SIGTERM and SIGHUP raise :class:`_Terminated` (main thread only; ignored signals stay ignored)."""
    installed = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            previous = signal.getsignal(signum)
            if previous in (signal.SIG_IGN, None):
                continue

            def handler(num, frame):
                raise _Terminated(num)

            installed[signum] = previous
            signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, previous in installed.items():
            signal.signal(signum, previous)


def _new_file(directory: Path, name: str):
    """Create a fresh hidden temporary file next to the target, with the mode ``open`` would give (0666 & ~umask)."""
    for _ in range(100):
        tmp = directory / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "could not create a temporary file", str(directory))


def _write_atomically(target: Path, arrays: dict) -> None:
    """``np.savez`` into a temporary file in ``target``'s directory, then rename it over ``target``.

    The new file keeps the mode of the file it replaces; a new file gets the
    mode ``numpy.savez`` would give it (0666 minus the umask). The temporary
    file is removed on any error, on Ctrl-C and on SIGTERM / SIGHUP.
    """
    directory = target.parent
    existing_mode = None
    try:
        existing_mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        pass
    fd, tmp = None, None
    try:
        with _signals_raise():
            fd, tmp = _new_file(directory, target.name)
            if existing_mode is not None:
                os.chmod(tmp, existing_mode)
            with os.fdopen(fd, "wb") as fh:
                fd = None
                np.savez(fh, **arrays)
            os.replace(tmp, target)
            tmp = None
    except _Terminated as exc:
        _remove(tmp, fd)
        signal.raise_signal(exc.signum)  # the handlers are restored: the default action ends the process
        raise InterruptedError(errno.EINTR, f"saving was interrupted by signal {exc.signum}; nothing was written",
                               str(target)) from None
    except BaseException:
        _remove(tmp, fd)
        raise


def _remove(tmp, fd) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
    if tmp is not None:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def save(net, path, *, metadata=None) -> Path:
    """Write ``net`` (architecture and parameters) to the ``.npz`` file ``path``.

    The file is written exactly at ``path`` (no suffix is added). When
    ``path`` is a symbolic link, the file it points to is written and the
    link is kept. The data go to a temporary file in the same directory that
    replaces the target at the end, so an interrupted save (an error, Ctrl-C,
    SIGTERM) never leaves a half-written network or a temporary file behind.
    A new file gets the permissions ``numpy.savez`` would give it (0666 minus
    the umask); an existing file keeps its permissions. Before writing, the
    architecture is rebuilt from its JSON description and compared with
    ``net``'s operators, so a file that would not load back exactly is never
    written.

    Parameters
    ----------
    net : Network
        The network: a :class:`ConvNet` (stored by its own description,
        format version 1) or any :class:`Network` (stored by its
        :meth:`~Network.config`, format version 2).
    path : str or os.PathLike
        Where to write.
    metadata : dict, optional
        JSON-serialisable information stored with the network (for example
        the data set's name and the training settings); read it back with
        :func:`load_metadata`.

    Returns
    -------
    pathlib.Path
        The path written (``path`` as given).

    Raises
    ------
    TypeError
        If ``net`` is not a Network, ``path`` is not a path or ``metadata`` is
        not a dict.
    ValueError
        If ``metadata`` cannot be stored as JSON.
    OSError
        If the file cannot be written; the error names ``path``.

    Examples
    --------
    >>> import tempfile, os
    >>> from partitionnet import ConvNet, ConvLayer
    >>> net = ConvNet((6,), 1, [ConvLayer(2, kernel=3, window=2)], [2], rng=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
    >>> _ = save(net, path, metadata={"dataset": "squares_diamonds", "epochs": 3})
    >>> load_metadata(path)["dataset"]
    'squares_diamonds'
    """
    from .model import Network
    from .network import ConvNet

    if not isinstance(net, Network):
        raise TypeError(f"net must be a partitionnet.Network (or ConvNet), got {type(net).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict (stored as JSON) or None, got {type(metadata).__name__}")
    path = Path(path)
    if isinstance(net, ConvNet):
        version, text = 1, json.dumps(architecture(net), allow_nan=False)
        same = _same_structure(from_architecture(json.loads(text), rng=0), net)
    else:
        version, text = 2, _network_text(net)
        same = _same_network(_network_from_text(text), net)
    if not same:
        raise ValueError("this network's structure cannot be stored exactly (its rebuilt operators differ); "
                         "please report it as a bug")
    arrays = {"format": np.array(FORMAT), "version": np.array(version, dtype=np.int64),
              "architecture": np.array(text)}
    if metadata is not None:
        try:
            arrays["metadata"] = np.array(json.dumps(metadata, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metadata must be JSON-serialisable (str keys; str, number, bool, None, list and "
                             f"dict values; finite numbers): {exc}") from None
    dtype = _dtype_of(net)
    for key, value in net.parameters().items():
        arrays[_PARAM + key] = np.ascontiguousarray(value, dtype=dtype)
    target = Path(os.path.realpath(path))  # through symbolic links: the target is written, the link kept
    try:
        _write_atomically(target, arrays)
    except OSError as exc:
        if exc.errno is None:
            raise
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    return path


def _dtype_of(net) -> np.dtype:
    return np.dtype(getattr(net, "dtype", np.float64))


# --------------------------------------------------------------------------- #
# load
# --------------------------------------------------------------------------- #
#: Largest declared size accepted for the architecture and metadata members (bytes of the stored string).
TEXT_LIMIT = 64 * 2 ** 20
_SMALL_LIMIT = 4096          # the format and version markers
_MEMBERS = ("format", "version", "architecture", "metadata")


class _Member:
    """A zip member holding one ``.npy`` array, known by its header only until :meth:`read`."""

    def __init__(self, zf, info, path):
        self.zf, self.info, self.path = zf, info, path
        self.name = info.filename[:-4]
        try:
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise ValueError(f"unsupported .npy version {version}")
                header = fh.tell()
        except ValueError as exc:
            raise ValueError(f"{path} is not a readable partitionnet network file (member {self.name!r}: "
                             f"{exc})") from None
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        if self.dtype.hasobject:
            raise ValueError(f"{path}: member {self.name!r} holds Python objects; network files hold plain "
                             "data only (pickles are never loaded)")
        self.nbytes = int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize
        if info.file_size != header + self.nbytes:
            raise ValueError(f"{path} is not a readable partitionnet network file: member {self.name!r} declares "
                             f"an array of {self.nbytes} bytes but stores {info.file_size - header}")

    def read(self, limit: int | None = None) -> np.ndarray:
        if limit is not None and self.nbytes > limit:
            raise ValueError(f"{self.path}: member {self.name!r} declares {self.nbytes} bytes, more than the "
                             f"{limit} such an entry may hold; the file is refused unread")
        with self.zf.open(self.info) as fh:
            return np.lib.format.read_array(fh, allow_pickle=False)


def _text(members: dict, key: str, path) -> str | None:
    m = members.get(key)
    if m is None:
        return None
    if m.shape != () or m.dtype.kind != "U":
        raise ValueError(f"{path}: the '{key}' entry is missing or malformed")
    return str(m.read(TEXT_LIMIT))


@contextlib.contextmanager
def _open(path: Path):
    """The file's members by name (headers read, data not yet), or a clear error."""
    with open(path, "rb") as fh:  # FileNotFoundError / PermissionError / IsADirectoryError pass through
        magic = fh.read(6)
    if magic == b"\x93NUMPY":
        raise ValueError(f"{path} is not a partitionnet network file: it holds a single array "
                         "(a .npy file), not a .npz archive")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable partitionnet network file (truncated, corrupt or another "
                         f"format): {type(exc).__name__}: {exc}") from None
    try:
        with zf:
            members = {}
            for info in zf.infolist():
                if info.filename.endswith(".npy"):
                    try:
                        members[info.filename[:-4]] = _Member(zf, info, path)
                    except (zipfile.BadZipFile, EOFError, OSError, zlib.error, NotImplementedError) as exc:
                        raise _Corrupt(exc) from None
            yield members
    except (_Corrupt, zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as exc:
        exc = exc.args[0] if isinstance(exc, _Corrupt) else exc
        raise ValueError(f"{path} is not a readable partitionnet network file (truncated or corrupt): "
                         f"{type(exc).__name__}: {exc}") from None


class _Corrupt(Exception):
    pass


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no network file at {str(path)!r}")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory, not a network file")
    return path


def _check_marker(members: dict, path) -> None:
    fmt = members.get("format")
    if fmt is None or fmt.dtype.kind != "U" or fmt.shape != () or str(fmt.read(_SMALL_LIMIT)) != FORMAT:
        raise ValueError(f"{path} is not a partitionnet network file (it has no '{FORMAT}' format marker; "
                         f"arrays found: {sorted(members)[:8]})")
    version = members.get("version")
    if version is None or version.shape != () or version.dtype.kind not in "iu":
        raise ValueError(f"{path}: the format version is missing or malformed")
    version = int(version.read(_SMALL_LIMIT))
    if version > VERSION or version < 1:
        raise ValueError(f"{path} was written in format version {version}; this partitionnet reads "
                         f"versions 1..{VERSION} (upgrade partitionnet to read it)")


def load(path):
    """Read a network written by :func:`save`: a new :class:`ConvNet` (version 1) or :class:`Network` (version 2).

    Only the members a network file needs are read, and each one's declared
    size (its zip entry and its ``.npy`` header) is checked before its data
    are read: the parameters must have exactly the shapes and dtype the
    stored architecture gives them, and the architecture string is bounded
    by :data:`TEXT_LIMIT`. A file that declares more (a zip bomb, a header
    announcing gigabytes) is refused without being read into memory.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is truncated, corrupt, not a partitionnet network file,
        written by a newer format version, declares arrays that do not fit its
        architecture, or if its parameter values are not valid. Nothing is
        returned half-loaded.
    """
    path = _check_path(path)
    with _open(path) as members:
        _check_marker(members, path)
        text = _text(members, "architecture", path)
        if text is None:
            raise ValueError(f"{path}: the 'architecture' entry is missing or malformed")
        try:
            arch = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: the architecture is not valid JSON ({exc})") from None
        try:
            if isinstance(arch, dict) and "network" in arch:
                net = _network_from_text(text)
            else:
                net = from_architecture(arch, rng=0)
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: the stored architecture does not describe a valid network: {exc}") from None

        unknown = sorted(k for k in members if k not in _MEMBERS and not k.startswith(_PARAM))
        if unknown:
            raise ValueError(f"{path}: unexpected member {unknown[0]!r}; a network file holds only "
                             f"{', '.join(_MEMBERS)} and '{_PARAM}<name>' arrays (nothing was read)")
        stored = {k[len(_PARAM):]: m for k, m in members.items() if k.startswith(_PARAM)}
        expected = net.parameter_shapes()
        missing = [k for k in expected if k not in stored]
        extra = [k for k in stored if k not in expected]
        if missing or extra:
            raise ValueError(f"{path}: the parameter arrays do not fit the architecture (missing {missing}, "
                             f"unexpected {extra})")
        dtype = _dtype_of(net)
        for key, shape in expected.items():   # every declared size checked before any array is read
            m = stored[key]
            if m.dtype != dtype:
                raise ValueError(f"{path}: parameter {key} has dtype {m.dtype}, expected {dtype}")
            if m.shape != tuple(shape):
                raise ValueError(f"{path}: parameter {key} has shape {m.shape}, but the architecture needs "
                                 f"{tuple(shape)}")
        params = {key: stored[key].read() for key in expected}
    try:
        net.set_parameters(params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the parameter arrays do not fit the architecture: {exc}") from None
    return net


def load_metadata(path) -> dict:
    """The ``metadata`` dict stored by :func:`save` (an empty dict if the file has none).

    Raises the same errors as :func:`load` for a file that is not a network
    file.

    Examples
    --------
    >>> import tempfile, os
    >>> from partitionnet import ConvNet, ConvLayer
    >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
    >>> _ = save(ConvNet((6,), 1, [ConvLayer(2, kernel=3)], [2], rng=0), path)
    >>> load_metadata(path)
    {}
    """
    path = _check_path(path)
    with _open(path) as members:
        _check_marker(members, path)
        text = _text(members, "metadata", path)
    if text is None:
        return {}
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: the metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: the metadata must be a JSON object, got {type(meta).__name__}")
    return meta
