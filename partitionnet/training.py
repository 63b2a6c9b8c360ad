"""Training: the book's stochastic-gradient algorithm and its mini-batch form.

The book trains the network of (47.1216) by minimising the regularised
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
import os
import sys
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from . import _validate, losses
from ._validate import as_positive_int
from .threads import governed

__all__ = ["History", "Evaluation", "fit", "sgd_step", "evaluate", "predict"]

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
    from .model import Network

    if not isinstance(net, Network):
        raise TypeError(f"net must be a partitionnet.ConvNet or partitionnet.Network, got {_validate.kind_of(net)}")
    if not net.output_vector:
        raise ValueError(f"training needs a network whose output is a vector (ending in Dense, Flatten or "
                         f"Softmax); this one outputs maps of shape {net.output_shape}")


def _outputs_count(net) -> int:
    """Q, the size of the network's output vector."""
    return int(net.output_shape[0])


def _check_rate(learning_rate, rho1, rho2):
    """mu > 0, rho >= 0 and the factor 1 - 2 mu rho of (47.1228) positive."""
    learning_rate = _validate.as_real(learning_rate, "learning_rate", low=0.0, low_open=True)
    rho1 = _validate.as_real(rho1, "rho1", low=0.0)
    rho2 = _validate.as_real(rho2, "rho2", low=0.0)
    for name, rho in (("rho1", rho1), ("rho2", rho2)):
        if 2.0 * learning_rate * rho >= 1.0:
            raise ValueError(f"{name}={rho} with learning_rate={learning_rate} gives the factor "
                             f"1 - 2*mu*rho = {1 - 2 * learning_rate * rho:g} <= 0 (47.1228); use 2*mu*rho < 1")
    return learning_rate, rho1, rho2


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
    Q = _outputs_count(net)
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
    from .model import ENGINE_NAMES

    if not isinstance(engine, str) or engine not in ENGINE_NAMES:
        raise ValueError(f"engine must be one of {tuple(ENGINE_NAMES)}, got {engine!r}")
    return engine


# --------------------------------------------------------------------------- #
# progress: tqdm bars in a terminal or notebook, one line per epoch elsewhere
# --------------------------------------------------------------------------- #
def _tqdm_classes():
    """``(bar class, in_notebook)``: ``tqdm.auto`` picks the Jupyter widget inside a notebook kernel."""
    from tqdm.std import TqdmWarning
    from tqdm.std import tqdm as console

    with warnings.catch_warnings():          # without ipywidgets tqdm.auto falls back to text, with a warning
        warnings.simplefilter("ignore", TqdmWarning)
        from tqdm.auto import tqdm as auto
        from tqdm.autonotebook import tqdm as picked     # tqdm.auto's base: the widget or the console bar
    return auto, picked is not console


def _terminal_size(stream) -> tuple[int, int]:
    """``(columns, rows)`` of the terminal behind ``stream``; 0 when it reports none or is not one."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError):
        return 0, 0
    return size.columns, size.lines


class _Progress:
    """What :func:`fit` shows while it runs.

    * in a Jupyter notebook: a ``tqdm`` widget per epoch, advancing per batch, kept when the epoch ends;
    * on a terminal (``stream.isatty()``): a ``tqdm`` bar per epoch, advancing per batch, cleared when
      the epoch ends (so a caller's own per-epoch line is not interleaved with it);
    * anywhere else (a log file, a pipe, CI): one line per epoch with the epoch's figures, the elapsed
      time and the estimated time left;
    * with ``enabled=False``: nothing.
    """

    def __init__(self, enabled: bool, epochs: int, samples: int, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.epochs, self.samples = epochs, samples
        self.mode, self.bar, self.leave = None, None, False
        self.started = time.perf_counter()
        if not enabled:
            return
        bar_class, notebook = _tqdm_classes()
        isatty = getattr(self.stream, "isatty", None)
        if notebook:
            self.mode, self.bar_class, self.leave = "bar", bar_class, True
        elif callable(isatty) and isatty():
            from tqdm.std import tqdm as console

            self.mode, self.bar_class = "bar", console
        else:
            self.mode = "lines"

    def begin_epoch(self, epoch: int) -> None:
        if self.mode == "bar":
            width = len(str(self.epochs))
            # A pseudo-terminal that reports a size of 0 (as some CI runners and `script` give) would make
            # tqdm draw nothing at all: draw 80 columns and assume 24 rows there.
            columns, rows = _terminal_size(self.stream)
            sized = self.leave or (columns > 0 and rows > 0)
            self.bar = self.bar_class(total=self.samples, desc=f"epoch {epoch:>{width}}/{self.epochs}",
                                      unit="sample", leave=self.leave, file=self.stream, mininterval=0.1,
                                      dynamic_ncols=sized, ncols=None if sized else (columns or 80),
                                      nrows=None if sized else (rows or 24))

    def step(self, samples: int, mean_loss: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {mean_loss:.4f}", refresh=False)
            self.bar.update(samples)

    def end_epoch(self, history: "History", epoch: int) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.mode == "lines":
            from tqdm.std import tqdm as console

            elapsed = time.perf_counter() - self.started
            left = elapsed / epoch * (self.epochs - epoch)
            print(f"{history.line(epoch - 1)}  elapsed {console.format_interval(elapsed)}  "
                  f"ETA {console.format_interval(left)}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# --------------------------------------------------------------------------- #
# one step of the book's algorithm, and fit
# --------------------------------------------------------------------------- #
def _regularisation_rate(net, key: str, rho1: float, rho2: float) -> float:
    """rho of (47.1228) for parameter ``key``: rho2 for a dense layer's ``W``, rho1 for every other
    layer's ``W`` (the correlation weights W_c); biases are not regularised (0)."""
    from .layers.base import split_key
    from .layers.dense import Dense

    layer, local = split_key(key)
    if local != "W":
        return 0.0
    return rho2 if isinstance(net.layer(layer), Dense) else rho1


def sgd_step(net, grads, *, learning_rate, rho1=0.0, rho2=0.0, batch_size):
    """Apply one step of the book's stochastic-gradient listing (after 47.1276) to ``net``.

    For every parameter in ``grads``, with ``mu = learning_rate`` and ``B = batch_size``::

        W     <- (1 - 2 mu rho) W - (mu / B) dl/dW        (rho1 for W_c, rho2 for W_l; 47.1228)
        theta <- theta - (mu / B) dl/dtheta               (biases are not regularised)

    where ``grads`` holds the gradients of the loss summed over the batch's
    ``B`` samples (47.1275), as :meth:`Network.gradients` returns them. For a
    bias, ``dl/dtheta_l = -delta_{l+1}`` and ``dl/dTheta_c = -(1^T kron 1 1^T) Delta_c``
    (47.1274, 47.1275), so this is the listing's ``+ mu delta`` with the
    corrected sign. The new values go through :meth:`Network.set_parameters`,
    which checks shapes and connection tables.

    Parameters
    ----------
    net : Network or ConvNet
    grads : dict of str to array
        Gradients keyed as ``net.parameters()``; parameters not listed are left alone.
    learning_rate : float
        ``mu > 0``.
    rho1, rho2 : float, default 0
        Regularisation of correlation and dense weights; need ``2 mu rho < 1``.
    batch_size : int
        ``B``, the number of samples the gradients were summed over.

    Raises
    ------
    FloatingPointError
        If a new value would be inf or NaN. The network is then left unchanged.

    Examples
    --------
    >>> from partitionnet import ConvNet, ConvLayer
    >>> net = ConvNet((6,), 1, [ConvLayer(2, kernel=3, window=2)], [2], rng=0)
    >>> x, y = np.ones((3, 1, 6)), np.array([0, 1, 1])
    >>> before = net.loss(x, y)
    >>> sgd_step(net, net.gradients(x, y), learning_rate=0.1, batch_size=3)
    >>> bool(net.loss(x, y) < before)
    True
    """
    from .model import Network

    if not isinstance(net, Network):
        raise TypeError(f"net must be a partitionnet.ConvNet or partitionnet.Network, got {_validate.kind_of(net)}")
    learning_rate, rho1, rho2 = _check_rate(learning_rate, rho1, rho2)
    batch_size = as_positive_int(batch_size, "batch_size")
    if not isinstance(grads, dict):
        raise TypeError(f"grads must be a dict of arrays keyed like net.parameters(), got {_validate.kind_of(grads)}")
    current = net.parameters()
    scale = learning_rate / batch_size
    new = OrderedDict()
    for key, grad in grads.items():
        if key not in current:
            raise ValueError(f"grads has the unknown parameter {key!r}; expected keys among {list(current)}")
        g = grad if isinstance(grad, np.ndarray) and grad.dtype.kind == "f" else \
            _validate.as_float_array(grad, f"grads[{key!r}]")
        value = current[key]
        if g.shape != value.shape:
            raise ValueError(f"grads[{key!r}] must have shape {value.shape}, got {g.shape}")
        rho = _regularisation_rate(net, key, rho1, rho2) if rho1 or rho2 else 0.0
        with np.errstate(over="ignore", invalid="ignore"):          # checked just below
            if rho:
                value *= 1.0 - 2.0 * learning_rate * rho
            value -= scale * g
        if not np.isfinite(value).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
            raise FloatingPointError(f"the update would make {key}{list(bad)} = {value[bad]} (gradient "
                                     f"{g[bad]:.3g}); the parameters are unchanged")
        new[key] = value
    net.set_parameters(new)


def _diverged(where: str, what: str, learning_rate: float) -> str:
    return (f"training diverged in {where}: {what}; lower learning_rate (now {learning_rate:g}; try "
            f"{learning_rate / 10:g}). The network keeps the parameters it had before this step")


@governed
def fit(net, x, y, *, epochs, batch_size=1, learning_rate, rho1=0.0, rho2=0.0, engine="fast", rng=None,
        validation=None, progress=True, callback=None) -> History:
    """Train ``net`` in place by stochastic gradient descent (the listing after 47.1276).

    Each epoch visits the samples in an order drawn from ``rng`` and takes
    one step per batch of ``batch_size`` samples. With ``batch_size=1`` a
    step is exactly the book's per-sample update for the risk (47.1228),
    biases unregularised::

        W_c     <- (1 - 2 mu rho1) W_c - mu dl_n/dW_c       dl_n/dW_c = (1^T kron H_{n,c-1}) Delta_{n,c}
        W_l     <- (1 - 2 mu rho2) W_l - mu dl_n/dW_l       dl_n/dW_l = delta_{l+1,n} y_{l,n}^T
        Theta_c <- Theta_c + mu (1^T kron 1 1^T) Delta_{n,c}    (= Theta_c - mu dl_n/dTheta_c, 47.1274)
        theta_l <- theta_l + mu delta_{l+1,n}                   (= theta_l - mu dl_n/dtheta_l)

    The book's listing prints ``theta_l <- theta_l - mu delta_{l+1,n}`` and
    ``- mu mu delta y^T``: both are typos. Since ``z_{l+1} = W_l y_l - theta_l``,
    ``dl/dtheta_l = -delta_{l+1}`` (47.1275), so a descent step *adds*
    ``mu delta``; and the step size appears once. This function implements
    the corrected rule. With ``batch_size=B > 1`` the gradients of the ``B``
    samples are summed (47.1275) and divided by ``B`` (the last batch of an
    epoch may be smaller and is divided by its own size); the
    regularisation factor is applied once per step. Each step is
    :func:`sgd_step`.

    After every step the loss and the new parameters are checked: if either
    is inf or NaN (the step size is too large), training stops with a
    ``FloatingPointError`` naming the epoch and step, and the network keeps
    the parameters it had before that step.

    Parameters
    ----------
    net : ConvNet or Network
        Trained in place (through :meth:`Network.set_parameters`). Its output must be a vector.
    x : array (N, D_0, *map)
        Inputs, batch-first and channels-first. Must be finite.
    y : array (N,) of int or array (N, Q) of float
        Class labels in ``[0, Q)`` (one-hot targets; for softmax with
        cross-entropy that is the usual label loss), or real target vectors
        ``gamma_n``.
    epochs : int
        Number of passes over the data (>= 1).
    batch_size : int, default 1
        Samples per step; 1 is the book's per-sample algorithm.
    learning_rate : float
        The step size ``mu > 0``.
    rho1, rho2 : float, default 0
        Regularisation of the correlation weights ``W_c`` and of the dense
        weights ``W_l`` (47.1228); need ``2 mu rho < 1``.
    engine : {'fast', 'kronecker'}
        Which backward pass computes the gradients (same numbers).
    rng : int, numpy Generator or None
        The only source of randomness (the shuffling order). The same seed
        gives bit-identical parameters; ``None`` draws a fresh seed. Anything
        else raises ``TypeError``.
    validation : tuple (x_val, y_val), optional
        Evaluated after every epoch (loss and, for labels, accuracy).
    progress : bool, default True
        Report progress on stderr: in a terminal a ``tqdm`` bar per epoch that
        advances with every batch; in Jupyter the same as a widget
        (``tqdm.auto``); elsewhere (a pipe, a log file) one line per epoch
        with the elapsed time and the estimated time left. ``False`` is silent.
    callback : callable, optional
        ``callback(epoch, history)`` after each epoch (``epoch`` from 1).

    Returns
    -------
    History

    Raises
    ------
    FloatingPointError
        If a step gives an inf or NaN loss or parameter (the step size is
        too large); the parameters are those from before that step.

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
    learning_rate, rho1, rho2 = _check_rate(learning_rate, rho1, rho2)
    engine = _check_engine(engine)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {_validate.kind_of(callback)}")
    progress = _validate.as_bool(progress, "progress")
    gen = _validate.as_rng(rng, "rng")
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

    steps = -(-N // batch_size)
    history = History(planned=epochs)
    report = _Progress(progress, epochs, N)
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            order = gen.permutation(N)
            total_loss, correct = 0.0, 0
            report.begin_epoch(epoch)
            for step, lo in enumerate(range(0, N, batch_size), start=1):
                idx = order[lo:lo + batch_size]
                B = idx.size
                where = (f"epoch {epoch}, step {step} of {steps} (samples {lo}-{lo + B - 1} of the "
                         f"epoch's shuffled order)")
                try:
                    # An overflow anywhere in the forward or backward pass raises here, at its source,
                    # instead of travelling on as inf/NaN.
                    with np.errstate(over="raise", invalid="raise"):
                        step_loss, out, grads = net.value_and_grad(xs[idx], gamma[:, idx].T, engine=engine)
                except FloatingPointError as exc:
                    raise FloatingPointError(_diverged(where, f"numpy reports {exc}", learning_rate)) from None
                if not math.isfinite(step_loss):
                    raise FloatingPointError(_diverged(where, f"the loss is {step_loss}", learning_rate))
                try:
                    sgd_step(net, grads, learning_rate=learning_rate, rho1=rho1, rho2=rho2, batch_size=B)
                except FloatingPointError as exc:
                    raise FloatingPointError(_diverged(where, str(exc), learning_rate)) from None
                total_loss += step_loss
                if labels is not None:
                    correct += int(np.count_nonzero(out.argmax(axis=1) == labels[idx]))
                report.step(B, total_loss / (lo + B))
            seconds = time.perf_counter() - start
            acc = correct / N if labels is not None else None
            vl = va = None
            if val is not None:
                vl, va = _loss_and_accuracy(net, *val)
            history._append(total_loss / N, acc, vl, va, seconds)
            report.end_epoch(history, epoch)
            if callback is not None:
                callback(epoch, history)
    finally:
        report.close()
    return history


# --------------------------------------------------------------------------- #
# evaluation
# --------------------------------------------------------------------------- #
def _outputs(net, xs: np.ndarray) -> np.ndarray:
    """Network outputs (Q, N) for a checked batch, in chunks; a ConvNet's ``cache`` is left as it was."""
    keep = getattr(net, "cache", None)
    try:
        parts = [net.forward(xs[i:i + _CHUNK]) for i in range(0, xs.shape[0], _CHUNK)]
    finally:
        if hasattr(net, "cache"):
            net.cache = keep
    return np.concatenate(parts, axis=0).T


def _loss_and_accuracy(net, xs, gamma, labels):
    out = _outputs(net, xs)
    loss = losses.value(net.loss_name, out, gamma) / xs.shape[0]
    acc = None if labels is None else float(np.mean(out.argmax(axis=0) == labels))
    return loss, acc


@governed
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
    if _outputs_count(net) < 2:
        raise ValueError("predict needs a network with one output per class (Q >= 2); this one has Q=1 — "
                         "use net.forward(x) and threshold it")
    return _outputs(net, xs).argmax(axis=0).astype(np.int64)


@governed
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
    Q = _outputs_count(net)
    confusion = np.zeros((Q, Q), dtype=np.int64)
    np.add.at(confusion, (lab, pred), 1)
    return Evaluation(float(np.mean(pred == lab)), confusion)
