"""Training: the seed's stochastic-gradient algorithm and its mini-batch form.

The seed trains the network of (47.1216) by minimising the regularised
empirical risk (47.1228)

    J(W, theta) = sum_c rho_1 ||W_c||_F^2 + sum_l rho_2 ||W_l||_F^2
                  + (1/N) sum_n l(gamma_n, y_n),

with one sample per iteration: the gradient of sample ``n``'s share of the
risk is ``2 rho W + dl_n/dW`` for a weight matrix and ``dl_n/dtheta`` for a
bias (biases are not regularised), so each step is

    W_{c,n}      = (1 - 2 mu rho_1) W_{c,n-1} - mu dl_n/dW_c
    W_{l,n}      = (1 - 2 mu rho_2) W_{l,n-1} - mu dl_n/dW_l
    Theta_{c,n}  = Theta_{c,n-1} - mu dl_n/dTheta_c = Theta_{c,n-1} + mu (1^T kron 1 1^T) Delta_{n,c}
    theta_{l,n}  = theta_{l,n-1} - mu dl_n/dtheta_l = theta_{l,n-1} + mu delta_{l+1,n}

(the listing after 47.1276; the derivatives are those of 47.1275, computed
by :meth:`ConvNet.gradients` with either engine). :func:`fit` implements
this listing with ``batch_size=1`` and its mini-batch form otherwise, where
the summed gradient of ``B`` samples is divided by ``B``.

Arrays follow the library's user-facing layout: inputs ``(N, D_0, *map)``,
targets either integer class labels ``(N,)`` or real vectors ``(N, Q)``.
"""
from __future__ import annotations

import math
import numbers
import sys
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from . import _validate, losses
from ._validate import as_positive_int

__all__ = ["History", "Evaluation", "fit", "evaluate", "predict"]

_CHUNK = 1024  # samples per forward pass when evaluating


# --------------------------------------------------------------------------- #
# the record of a run
# --------------------------------------------------------------------------- #
@dataclass
class History:
    """What :func:`fit` measured, one entry per epoch.

    Attributes
    ----------
    loss : list of float
        Mean per-sample loss ``l(gamma_n, y_n)`` over the epoch's steps, each
        sample's loss taken at the forward pass of its step (before that
        step's update). The regularisation terms are not included.
    accuracy : list of float or None
        Fraction of the epoch's samples whose arg-max output matched their
        label at their forward pass (``None`` entries for real targets).
    val_loss, val_accuracy : list of float or None
        Loss and accuracy on ``validation`` after the epoch (``None`` without
        validation data, or for real targets in the case of accuracy).
    seconds : list of float
        Wall time of each epoch's training steps (validation excluded).
    planned : int
        Number of epochs the run was asked for.
    """

    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    planned: int = 0

    @property
    def epochs(self) -> int:
        """Number of recorded epochs."""
        return len(self.loss)

    def as_dict(self) -> dict:
        """Plain lists keyed by field name (JSON-friendly)."""
        return {"epoch": list(range(1, self.epochs + 1)), "loss": list(self.loss),
                "accuracy": list(self.accuracy), "val_loss": list(self.val_loss),
                "val_accuracy": list(self.val_accuracy), "seconds": list(self.seconds)}

    def line(self, i: int) -> str:
        """One human-readable line for epoch ``i`` (0-based)."""
        total = max(self.planned, self.epochs)
        parts = [f"epoch {i + 1:>{len(str(total))}}/{total}", f"loss {self.loss[i]:.4f}"]
        if self.accuracy[i] is not None:
            parts.append(f"acc {100 * self.accuracy[i]:6.2f}%")
        if self.val_loss[i] is not None:
            parts.append(f"val_loss {self.val_loss[i]:.4f}")
        if self.val_accuracy[i] is not None:
            parts.append(f"val_acc {100 * self.val_accuracy[i]:6.2f}%")
        parts.append(f"{self.seconds[i]:.2f} s")
        return "  ".join(parts)

    def __str__(self) -> str:
        if not self.epochs:
            return "History(no epochs)"
        return "\n".join(self.line(i) for i in range(self.epochs))

    def _append(self, loss, acc, val_loss, val_acc, seconds) -> None:
        self.loss.append(loss)
        self.accuracy.append(acc)
        self.val_loss.append(val_loss)
        self.val_accuracy.append(val_acc)
        self.seconds.append(seconds)


class Evaluation(NamedTuple):
    """Result of :func:`evaluate`: unpack as ``acc, cm = evaluate(...)``.

    ``confusion[i, j]`` counts samples of true class ``i`` predicted as ``j``.
    """

    accuracy: float
    confusion: np.ndarray


# --------------------------------------------------------------------------- #
# argument checking (TypeError for the wrong kind, ValueError for the wrong value)
# --------------------------------------------------------------------------- #
def _check_net(net):
    from .network import ConvNet

    if not isinstance(net, ConvNet):
        raise TypeError(f"net must be a partitionnet.ConvNet, got {_validate.kind_of(net)}")


def _check_real(value, name: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_validate.kind_of(value)} {value!r}")
    value = float(value)
    if not math.isfinite(value) or (value <= 0.0 if positive else value < 0.0):
        want = "a finite number > 0" if positive else "a finite number >= 0"
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return value


def _check_inputs(net, x, name: str = "x") -> np.ndarray:
    """x as a float64 batch (N, D_0, *map) with finite entries."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got {_validate.kind_of(x)}")
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
    single = (net.in_maps,) + net.input_shape
    if arr.ndim != len(single) + 1 or arr.shape[1:] != single:
        raise ValueError(f"{name} must have shape (N,) + {single} (samples, D_0={net.in_maps} maps, map shape "
                         f"{net.input_shape}); got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} holds no samples (shape {arr.shape})")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{name} must be finite, found {arr[bad]} at index {bad} (sample {bad[0]})")
    return arr


def _check_targets(net, y, n: int, name: str = "y"):
    """Targets as (gamma (Q, N) float64, labels (N,) int64 or None)."""
    Q = net.dense_sizes[-1]
    if isinstance(y, (str, bytes)):
        raise TypeError(f"{name} must be an array of class labels (N,) or target vectors (N, {Q}), got {_validate.kind_of(y)}")
    arr = np.asarray(y)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 0 or arr.shape[0] != n:
        got = "a scalar" if arr.ndim == 0 else f"{arr.shape[0]} rows (shape {arr.shape})"
        raise ValueError(f"{name} must hold one target per sample: x has {n} samples, {name} has {got}")
    if arr.ndim == 1:
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} of shape ({n},) must hold integer class labels, got dtype {arr.dtype}; "
                             f"pass real targets as an array of shape ({n}, {Q})")
        labels = arr.astype(np.int64)
        if labels.min() < 0 or labels.max() >= Q:
            bad = int(labels[(labels < 0) | (labels >= Q)][0])
            raise ValueError(f"{name} holds label {bad}, outside [0, {Q - 1}]: the network has Q={Q} outputs, "
                             "one per class")
        gamma = np.zeros((Q, n))
        gamma[labels, np.arange(n)] = 1.0
        return gamma, labels
    if arr.ndim == 2:
        if arr.shape[1] != Q:
            raise ValueError(f"{name} must have shape ({n}, {Q}) (one target vector gamma_n of size Q={Q} "
                             f"per sample), got {arr.shape}")
        gamma = np.ascontiguousarray(arr.T, dtype=np.float64)
        if not np.all(np.isfinite(gamma)):
            raise ValueError(f"{name} must be finite")
        return gamma, None
    raise ValueError(f"{name} must be class labels (N,) or target vectors (N, {Q}), got shape {arr.shape}")


def _check_engine(engine) -> str:
    from .backprop import ENGINES

    if not isinstance(engine, str) or engine not in ENGINES:
        raise ValueError(f"engine must be one of {tuple(ENGINES)}, got {engine!r}")
    return engine


def _as_rng(rng) -> np.random.Generator:
    if rng is None or isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng is not None and rng < 0:
            raise ValueError(f"rng must be a non-negative seed, got {rng}")
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"rng must be None, an integer seed or a numpy Generator, got {_validate.kind_of(rng)}")


# --------------------------------------------------------------------------- #
# the progress bar (stderr, only when it is a terminal)
# --------------------------------------------------------------------------- #
class _Bar:
    def __init__(self, enabled: bool, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(enabled) and callable(isatty) and bool(isatty())
        self._last = 0.0

    def update(self, epoch: int, epochs: int, done: int, total: int, loss: float) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = int(width * done / total)
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\repoch {epoch}/{epochs} [{bar}] {done}/{total}  loss {loss:.4f} ")
        self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()


# --------------------------------------------------------------------------- #
# fit
# --------------------------------------------------------------------------- #
def _regularisation(net, rho1: float, rho2: float, learning_rate: float) -> dict:
    """``1 - 2 mu rho`` per weight matrix (47.1228); biases are absent (not regularised)."""
    factors = {}
    for key in net._params:
        if key.endswith(".W"):
            rho = rho1 if key.startswith("conv") else rho2
            if rho:
                factors[key] = 1.0 - 2.0 * learning_rate * rho
    return factors


def fit(net, x, y, *, epochs, batch_size=1, learning_rate, rho1=0.0, rho2=0.0, engine="fast", rng=None,
        validation=None, progress=True, callback=None) -> History:
    """Train ``net`` in place by stochastic gradient descent (the listing after 47.1276).

    Each epoch visits the samples in an order drawn from ``rng`` and takes
    one step per batch of ``batch_size`` samples. With ``batch_size=1`` a
    step is exactly the seed's per-sample update for the risk (47.1228),
    biases unregularised::

        W_c     <- (1 - 2 mu rho1) W_c - mu dl_n/dW_c       dl_n/dW_c = (1^T kron H_{n,c-1}) Delta_{n,c}
        W_l     <- (1 - 2 mu rho2) W_l - mu dl_n/dW_l       dl_n/dW_l = delta_{l+1,n} y_{l,n}^T
        Theta_c <- Theta_c + mu (1^T kron 1 1^T) Delta_{n,c}    (= Theta_c - mu dl_n/dTheta_c, 47.1274)
        theta_l <- theta_l + mu delta_{l+1,n}                   (= theta_l - mu dl_n/dtheta_l)

    The seed's listing prints ``theta_l <- theta_l - mu delta_{l+1,n}`` and
    ``- mu mu delta y^T``: both are typos. Since ``z_{l+1} = W_l y_l - theta_l``,
    ``dl/dtheta_l = -delta_{l+1}`` (47.1275), so a descent step *adds*
    ``mu delta``; and the step size appears once. This function implements
    the corrected rule. With ``batch_size=B > 1`` the gradients of the ``B``
    samples are summed (47.1275) and divided by ``B`` (the last batch of an
    epoch may be smaller and is divided by its own size); the
    regularisation factor is applied once per step.

    Parameters
    ----------
    net : ConvNet
        Trained in place (its parameter arrays are updated, not replaced).
    x : array (N, D_0, *map)
        Inputs, batch-first and channels-first. Must be finite.
    y : array (N,) of int or array (N, Q) of float
        Class labels in ``[0, Q)`` (one-hot targets; for softmax with
        cross-entropy that is the usual label loss), or real target vectors
        ``gamma_n``.
    epochs : int
        Number of passes over the data (>= 1).
    batch_size : int, default 1
        Samples per step; 1 is the seed's per-sample algorithm.
    learning_rate : float
        The step size ``mu > 0``.
    rho1, rho2 : float, default 0
        Regularisation of the correlation weights ``W_c`` and of the dense
        weights ``W_l`` (47.1228); need ``2 mu rho < 1``.
    engine : {'fast', 'kronecker'}
        Which backward pass computes the gradients (same numbers).
    rng : int, numpy Generator or None
        The only source of randomness (the shuffling order). The same seed
        gives bit-identical parameters; ``None`` draws a fresh seed.
    validation : tuple (x_val, y_val), optional
        Evaluated after every epoch (loss and, for labels, accuracy).
    progress : bool, default True
        Show a progress bar on stderr when stderr is a terminal.
    callback : callable, optional
        ``callback(epoch, history)`` after each epoch (``epoch`` from 1).

    Returns
    -------
    History

    Raises
    ------
    FloatingPointError
        If the loss becomes non-finite (the step size is too large).

    Examples
    --------
    >>> from partitionnet import ConvNet, ConvLayer
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((8, 1, 6, 6)); y = np.arange(8) % 2
    >>> net = ConvNet((6, 6), 1, [ConvLayer(2, kernel=3, window=2)], [2], rng=0)
    >>> h = fit(net, x, y, epochs=3, learning_rate=0.05, rng=0, progress=False)
    >>> h.epochs, len(h.loss)
    (3, 3)
    """
    _check_net(net)
    epochs = as_positive_int(epochs, "epochs")
    batch_size = as_positive_int(batch_size, "batch_size")
    learning_rate = _check_real(learning_rate, "learning_rate", positive=True)
    rho1 = _check_real(rho1, "rho1", positive=False)
    rho2 = _check_real(rho2, "rho2", positive=False)
    for name, rho in (("rho1", rho1), ("rho2", rho2)):
        if 2.0 * learning_rate * rho >= 1.0:
            raise ValueError(f"{name}={rho} with learning_rate={learning_rate} gives the factor "
                             f"1 - 2*mu*rho = {1 - 2 * learning_rate * rho:g} <= 0 (47.1228); use 2*mu*rho < 1")
    engine = _check_engine(engine)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {_validate.kind_of(callback)}")
    gen = _as_rng(rng)
    xs = _check_inputs(net, x)
    N = xs.shape[0]
    gamma, labels = _check_targets(net, y, N)
    val = None
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError("validation must be a pair (x_val, y_val)")
        xv = _check_inputs(net, validation[0], "validation x")
        gv, lv = _check_targets(net, validation[1], xv.shape[0], "validation y")
        val = (xv, gv, lv)

    from .backprop import ENGINES

    backward = ENGINES[engine]
    factors = _regularisation(net, rho1, rho2, learning_rate)
    params = net._params
    bar = _Bar(progress)
    history = History(planned=epochs)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = gen.permutation(N)
        total_loss, correct = 0.0, 0
        for lo in range(0, N, batch_size):
            idx = order[lo:lo + batch_size]
            B = idx.size
            g = gamma[:, idx]
            try:
                trace = net._trace(xs[idx], True)
                out = trace.y_dense[-1]
                step_loss = losses.value(net.loss_name, out, g)
            except ValueError as exc:  # a non-finite map inside the network
                if all(np.all(np.isfinite(v)) for v in params.values()):
                    raise
                step_loss, cause = math.nan, exc
            else:
                cause = None
            if not math.isfinite(step_loss):
                bar.clear()
                raise FloatingPointError(
                    f"training diverged in epoch {epoch} (batch starting at position {lo} of the shuffled "
                    f"order): the loss is {step_loss}; lower learning_rate (now {learning_rate:g}). The "
                    "network keeps the parameters it had when this happened") from cause
            total_loss += step_loss
            if labels is not None:
                correct += int(np.count_nonzero(out.argmax(axis=0) == labels[idx]))
            grads = backward(net, trace, g)
            scale = learning_rate / B
            for key, grad in grads.items():
                p = params[key]
                f = factors.get(key)
                if f is not None:
                    p *= f
                grad *= scale
                p -= grad
            net.cache = trace
            bar.update(epoch, epochs, lo + B, N, total_loss / (lo + B))
        seconds = time.perf_counter() - start
        bar.clear()
        acc = correct / N if labels is not None else None
        vl = va = None
        if val is not None:
            vl, va = _loss_and_accuracy(net, *val)
        history._append(total_loss / N, acc, vl, va, seconds)
        if callback is not None:
            callback(epoch, history)
    return history


# --------------------------------------------------------------------------- #
# evaluation
# --------------------------------------------------------------------------- #
def _outputs(net, xs: np.ndarray) -> np.ndarray:
    """Network outputs (Q, N) for a checked batch, in chunks; ``net.cache`` is left as it was."""
    cache = net.cache
    try:
        parts = [net._trace(xs[i:i + _CHUNK], True).y_dense[-1] for i in range(0, xs.shape[0], _CHUNK)]
    finally:
        net.cache = cache
    return np.concatenate(parts, axis=1)


def _loss_and_accuracy(net, xs, gamma, labels):
    out = _outputs(net, xs)
    loss = losses.value(net.loss_name, out, gamma) / xs.shape[0]
    acc = None if labels is None else float(np.mean(out.argmax(axis=0) == labels))
    return loss, acc


def predict(net, x) -> np.ndarray:
    """Predicted class of every sample: the arg-max of the network's output.

    Parameters
    ----------
    net : ConvNet
        A network with ``Q >= 2`` outputs, one per class.
    x : array (N, D_0, *map)

    Returns
    -------
    numpy.ndarray of int64, shape (N,)
    """
    _check_net(net)
    xs = _check_inputs(net, x)
    if net.dense_sizes[-1] < 2:
        raise ValueError("predict needs a network with one output per class (Q >= 2); this one has Q=1 — "
                         "use net.forward(x) and threshold it")
    return _outputs(net, xs).argmax(axis=0).astype(np.int64)


def evaluate(net, x, labels) -> Evaluation:
    """Accuracy and confusion matrix of ``net`` on labelled data.

    Parameters
    ----------
    net : ConvNet
    x : array (N, D_0, *map)
    labels : array (N,) of int in ``[0, Q)``

    Returns
    -------
    Evaluation
        ``(accuracy, confusion)``; ``confusion`` is ``Q x Q`` int64 with
        rows the true classes and columns the predicted ones.

    Examples
    --------
    >>> from partitionnet import ConvNet, ConvLayer
    >>> net = ConvNet((4,), 1, [ConvLayer(2, kernel=3, pooling=None)], [3], rng=0)
    >>> acc, cm = evaluate(net, np.zeros((5, 1, 4)), [0, 1, 2, 0, 1])
    >>> cm.shape, int(cm.sum())
    ((3, 3), 5)
    """
    _check_net(net)
    xs = _check_inputs(net, x)
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must have shape (N,) (integer classes), got shape {arr.shape}")
    _, lab = _check_targets(net, arr, xs.shape[0], "labels")
    pred = predict(net, xs)
    Q = net.dense_sizes[-1]
    confusion = np.zeros((Q, Q), dtype=np.int64)
    np.add.at(confusion, (lab, pred), 1)
    return Evaluation(float(np.mean(pred == lab)), confusion)
