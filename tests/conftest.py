"""Shared pytest configuration. Seeds are fixed per test; the edge-value generator is tests/edge_values.py."""

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, the same in every run."""
    return np.random.default_rng(20261125)
