"""Backward passes: two engines that compute the same gradients.

* :mod:`.kronecker` follows the training listing (47.1275) literally, with
  the operators ``V^(d,d',c+1)`` built by the Kronecker/Hadamard formula of
  (47.1257);
* :mod:`.fast` computes the same numbers with batched contractions on the
  same partition and pooling structures.

Both share the feedforward part in :mod:`.feedforward`. An engine is a
function ``engine(net, trace, gamma) -> OrderedDict`` of gradients, where
``gamma`` holds the targets as columns.
"""
from .fast import gradients as _fast
from .kronecker import gradients as _kronecker

ENGINES = {"kronecker": _kronecker, "fast": _fast}

__all__ = ["ENGINES"]
