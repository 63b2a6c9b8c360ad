"""Layer kinds, one file each, and the registry that the network, the tests and ``verify`` walk.

>>> from partitionnet import layers as L
>>> sorted(L.REGISTRY)
['activation', 'correlation', 'dense', 'flatten', 'pool', 'softmax']
"""
from .activation import Activation
from .base import REGISTRY, Layer, param_key, register, split_key
from .correlation import Correlation
from .dense import Dense
from .flatten import Flatten
from .pool import Pool
from .softmax import Softmax

__all__ = ["Layer", "REGISTRY", "register", "param_key", "split_key", "Correlation", "Pool", "Activation",
           "Softmax", "Flatten", "Dense"]
