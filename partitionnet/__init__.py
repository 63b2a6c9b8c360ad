"""partitionnet: convolutional networks as explicit sparse matrix algebra.

The objects of section 47.25 of the book, as working software:

* :class:`Partition` - the partition matrix V (47.1148-47.1153);
* :class:`Pooling` - pooling, gradient vectors, ``upv`` and the permutation T
  (47.1168-47.1204);
* :class:`Network` and :mod:`partitionnet.layers` - a network as an ordered
  list of layers, each with its forward pass, its fast and literal backward
  passes, its explicit operator and its reference, side by side;
* :class:`ConvNet` / :class:`ConvLayer` - the book's network of 47.1205-47.1216,
  built from those layers, with two backward engines ('kronecker', literal
  47.1275; 'fast', batched);
* :func:`fit`, :func:`evaluate`, :func:`load` - the book's stochastic-gradient
  training (after 47.1276), evaluation, and networks saved as data (``.npz``);
* :func:`vec` / :func:`unvec` - column stacking, the one convention for
  turning maps into vectors.
"""
from . import datasets, layers
from . import check, masks, show, threads
from .cost import cost
from .derive import derive
from .io import load
from .linalg import convolution_matrix, spectral_norm
from .model import Network
from .network import ConvLayer, ConvNet
from .partition import Partition
from .pooling import Pooling
from .training import History, evaluate, fit, predict
from .vec import unvec, vec

__all__ = ["Network", "layers", "from_torch", "ConvNet", "ConvLayer", "Partition", "Pooling", "vec", "unvec", "fit", "evaluate", "predict",
           "History", "load", "datasets", "convolution_matrix", "spectral_norm", "check", "cost", "show", "derive",
           "masks", "threads"]
__version__ = "0.1.0"


def __getattr__(name):
    # PyTorch is optional and takes about a second to import: ``from_torch`` loads the bridge on first use.
    if name == "from_torch":
        from .torch_bridge import from_torch

        return from_torch
    raise AttributeError(f"module 'partitionnet' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"from_torch"})
