"""Shared fixtures for the test suite (kept small on purpose)."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh, seeded generator: every test sees the same random numbers on every run."""
    return np.random.default_rng(20240613)


@pytest.fixture
def small_net():
    """A factory for a small valid 2-D network (2 input maps, C = 2); keyword arguments go to ConvNet."""
    from partitionnet import ConvLayer, ConvNet

    def make(**kwargs):
        layers = [ConvLayer(2, kernel=3, window=2), ConvLayer(3, kernel=2, pooling=None)]
        return ConvNet((6, 6), 2, layers, [2], **{"rng": 0, **kwargs})

    return make
