"""Layer kinds, one file each, and the registry that the network, the tests and ``verify`` walk.

>>> from partitionnet import layers as L
>>> sorted(L.REGISTRY)
['activation', 'channel_pool', 'correlation', 'dense', 'flatten', 'global_pool', 'locally_connected', 'pool', 'softmax', 'tiled_correlation', 'transposed_correlation']
"""
from .activation import Activation
from .base import REGISTRY, Layer, param_key, register, split_key
from .channel_pool import ChannelPool
from .correlation import Correlation
from .dense import Dense
from .flatten import Flatten
from .global_pool import GlobalPool
from .locally_connected import LocallyConnected
from .pool import Pool
from .softmax import Softmax
from .tiled import TiledCorrelation
from .transposed_correlation import TransposedCorrelation

__all__ = ["Layer", "REGISTRY", "register", "param_key", "split_key", "Correlation", "Pool", "Activation",
           "Softmax", "Flatten", "Dense", "LocallyConnected", "TiledCorrelation", "GlobalPool",
           "ChannelPool", "TransposedCorrelation"]
