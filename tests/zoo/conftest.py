"""Zoo models are built once per test session (ResNet-50 takes a few seconds to build and calibrate)."""

from __future__ import annotations

import functools

import pytest

from hwsim.zoo import build_model


@functools.lru_cache(maxsize=None)
def _built(name: str, seed: int):
    return build_model(name, seed=seed)


@pytest.fixture(scope="session")
def zoo_model():
    """``zoo_model(name, seed=0)``: the zoo graph, shared by every test of the session. Do not mutate it."""
    return lambda name, seed=0: _built(name, seed)
