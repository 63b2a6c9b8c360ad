"""Checks users can run on their own networks and operators: :func:`gradcheck` and :func:`dottest`.

:func:`gradcheck` plays the part of ``torch.autograd.gradcheck``: it compares a
network's backpropagated gradients (``net.gradients``, the recursion of
47.1262 with the gradients of 47.1271 and 47.1274) and its input gradient
(``net.input_gradient``) with central differences of ``net.loss``, entry by
entry, and names the first entry that disagrees.

:func:`dottest` plays the part of PyLops' ``dottest``: for a linear operator
``A`` and random ``u``, ``v`` it checks ``<v, A u> = <A^T v, u>``, i.e. that
the transpose really is the adjoint, which is what backpropagation through V
(47.1257) and T (47.1204) relies on.

Both return ``True`` or raise an ``AssertionError`` subclass, so they can sit
in a test as they are.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from . import _validate as val

__all__ = ["CheckError", "GradcheckError", "DottestError", "gradcheck", "dottest"]


class CheckError(AssertionError):
    """A check of :mod:`partitionnet.check` failed."""


class GradcheckError(CheckError):
    """A backpropagated gradient disagrees with central differences.

    Attributes
    ----------
    key : str
        The parameter (``'conv1.W'``) or ``'input'``.
    index : tuple of int
        The first entry that disagrees.
    analytic, numeric : float
        The two values there.
    """

    def __init__(self, message, key, index, analytic, numeric):
        super().__init__(message)
        self.key, self.index, self.analytic, self.numeric = key, index, analytic, numeric


class DottestError(CheckError):
    """``<v, A u>`` and ``<A^T v, u>`` differ: the transpose is not the adjoint."""


def gradcheck(net, x, gamma, *, eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-4,
              engine: str = "fast", check_input: bool = True) -> bool:
    """Compare backpropagation with central differences of the loss, on every parameter and on the input.

    For every entry ``theta`` of every parameter (and of ``x``), the numeric
    derivative is ``(loss(theta + eps) - loss(theta - eps)) / (2 eps)``, and the
    check requires ``|analytic - numeric| <= atol + rtol * |numeric|``.
    Structural zeros (an incomplete connection table, 47.1213) are not
    parameters and are skipped. The network's parameters are restored afterwards.

    Parameters
    ----------
    net : partitionnet.Network
        Any network (``ConvNet`` included).
    x, gamma
        A batch and its targets, as for ``net.loss``.
    eps, atol, rtol : float
        Step and tolerances. The defaults suit float64; a float32 network needs ``eps`` about 1e-2.
    engine : {'fast', 'kronecker'}
        Which backward engine to check.
    check_input : bool
        Also check ``net.input_gradient`` against differences in ``x``.

    Returns
    -------
    True

    Raises
    ------
    GradcheckError
        Naming the parameter (or ``'input'``), the entry, both values and how many entries disagree.

    Notes
    -----
    Central differences need a differentiable point. Where a max pooling window holds two equal
    largest values, or a ReLU input is within ``eps`` of 0, the two one-sided derivatives differ and
    the difference quotient averages them, so a correct network can fail there: images with a
    constant background make such ties. Add a little noise to ``x`` (or check a smooth network).

    Examples
    --------
    >>> import numpy as np
    >>> from partitionnet import Network, layers as L
    >>> net = Network((5, 5), 1, [L.Correlation(2, kernel=3), L.Activation("tanh"), L.Flatten(), L.Dense(2)],
    ...               rng=0)
    >>> x = np.random.default_rng(1).standard_normal((2, 1, 5, 5))
    >>> gradcheck(net, x, np.zeros((2, 2)))
    True
    """
    from .model import Network

    if not isinstance(net, Network):
        raise TypeError(f"net must be a partitionnet Network (or ConvNet), got {val.kind_of(net)}")
    eps = val.as_real(eps, "eps", low=0.0, low_open=True)
    atol = val.as_real(atol, "atol", low=0.0)
    rtol = val.as_real(rtol, "rtol", low=0.0)
    check_input = val.as_bool(check_input, "check_input")
    if not isinstance(engine, str):
        raise TypeError(f"engine must be 'fast' or 'kronecker', got {val.kind_of(engine)}")
    x_arr = val.as_float_array(x, "x").astype(np.float64)

    analytic = net.gradients(x_arr, gamma, engine=engine)
    original = net.parameters()
    try:
        for key, value in original.items():
            mask = net.structural_mask(key)
            numeric = np.zeros(value.shape)
            work = value.astype(np.float64, copy=True)
            for index in np.ndindex(value.shape):
                if mask is not None and not mask[index]:
                    continue
                base = work[index]
                work[index] = base + eps
                net.set_parameters({key: work})
                up = net.loss(x_arr, gamma)
                work[index] = base - eps
                net.set_parameters({key: work})
                down = net.loss(x_arr, gamma)
                work[index] = base
                numeric[index] = (up - down) / (2 * eps)
            net.set_parameters({key: value})
            _compare(key, np.asarray(analytic[key], dtype=np.float64), numeric, atol, rtol, mask)
    finally:
        net.set_parameters(original)

    if check_input:
        given = np.asarray(net.input_gradient(x_arr, gamma, engine=engine), dtype=np.float64)
        if given.shape != x_arr.shape:
            raise GradcheckError(f"gradcheck failed on the input: input_gradient has shape {given.shape}, "
                                 f"x has {x_arr.shape}", "input", (), np.nan, np.nan)
        numeric = np.zeros(x_arr.shape)
        work = x_arr.copy()
        for index in np.ndindex(x_arr.shape):
            base = work[index]
            work[index] = base + eps
            up = net.loss(work, gamma)
            work[index] = base - eps
            down = net.loss(work, gamma)
            work[index] = base
            numeric[index] = (up - down) / (2 * eps)
        _compare("input", given, numeric, atol, rtol, None)
    return True


def _compare(key, analytic, numeric, atol, rtol, mask):
    if analytic.shape != numeric.shape:
        raise GradcheckError(f"gradcheck failed on {key}: the gradient has shape {analytic.shape}, the parameter "
                             f"{numeric.shape}", key, (), np.nan, np.nan)
    bad = ~(np.abs(analytic - numeric) <= atol + rtol * np.abs(numeric))
    if mask is not None:
        bad &= mask
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        a, n = float(analytic[where]), float(numeric[where])
        raise GradcheckError(
            f"gradcheck failed on {key} at index {where}: backprop gives {a!r}, central differences "
            f"{n!r} (|difference| {abs(a - n):.3g} > atol + rtol*|numeric| = {atol + rtol * abs(n):.3g}); "
            f"{int(bad.sum())} of {bad.size} entries disagree", key, where, a, n)


def dottest(op, *, rng=0, rtol: float = 1e-10, trials: int = 3) -> bool:
    """Check that an operator's transpose is its adjoint: ``<v, A u> = <A^T v, u>`` for random ``u``, ``v``.

    Parameters
    ----------
    op : matrix, sparse matrix, LinearOperator, Partition, Pooling, or anything
        ``scipy.sparse.linalg.aslinearoperator`` accepts (``A u`` is ``matvec``, ``A^T v`` is
        ``rmatvec``).
    rng : int or numpy Generator
        Seed of the random vectors.
    rtol : float
        Allowed ``|<v, A u> - <A^T v, u>|`` relative to ``||v|| ||A u|| + ||A^T v|| ||u||``.
    trials : int
        How many random pairs.

    Returns
    -------
    True

    Raises
    ------
    DottestError
        With both inner products.

    Examples
    --------
    >>> from partitionnet import Partition
    >>> dottest(Partition.sliding_window((5, 4), 3, padding="same", stride=2))
    True
    """
    rtol = val.as_real(rtol, "rtol", low=0.0)
    trials = val.as_positive_int(trials, "trials")
    gen = val.as_rng(rng, "rng")
    try:
        lin = spla.aslinearoperator(op)
    except (TypeError, ValueError) as err:
        raise TypeError(f"op must be a matrix or a linear operator (shape, matvec, rmatvec), got "
                        f"{val.kind_of(op)}: {err}") from None
    m, n = lin.shape
    for t in range(trials):
        u, v = gen.standard_normal(n), gen.standard_normal(m)
        Au = np.asarray(lin.matvec(u)).reshape(-1)
        ATv = np.asarray(lin.rmatvec(v)).reshape(-1)
        if Au.shape != (m,) or ATv.shape != (n,):
            raise DottestError(f"dot test: A u has shape {Au.shape} (expected ({m},)) and A^T v {ATv.shape} "
                               f"(expected ({n},))")
        left, right = float(v @ Au), float(ATv @ u)
        scale = np.linalg.norm(v) * np.linalg.norm(Au) + np.linalg.norm(ATv) * np.linalg.norm(u)
        if not abs(left - right) <= rtol * max(scale, np.finfo(float).tiny):
            raise DottestError(f"dot test failed for {val.kind_of(op)} of shape {(m, n)} (trial {t}): "
                               f"<v, A u> = {left!r} but <A^T v, u> = {right!r}, relative difference "
                               f"{abs(left - right) / max(scale, np.finfo(float).tiny):.3g} > rtol = {rtol}")
    return True
