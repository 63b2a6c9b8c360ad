"""The two backward engines, by name.

Both walk the same layers in reverse; they differ only in which of a layer's
backward passes they call:

* ``'kronecker'``: ``vjp_literal``, the listing of (47.1275) with the
  operators ``V^(d,d',c+1)`` of (47.1257) built explicitly;
* ``'fast'``: ``vjp``, batched contractions on the same partitions.

An engine is ``engine(net, trace, gamma) -> OrderedDict`` of gradients, where
``trace`` comes from a :class:`~partitionnet.ConvNet` forward pass and
``gamma`` holds the targets as columns; it is kept for callers that hold a
trace. :meth:`partitionnet.Network.gradients` is the ordinary entry point.
"""


def _fast(net, trace, gamma):
    return net.trace_gradients(trace, gamma, engine="fast")


def _kronecker(net, trace, gamma):
    return net.trace_gradients(trace, gamma, engine="kronecker")


ENGINES = {"kronecker": _kronecker, "fast": _fast}

__all__ = ["ENGINES"]
