"""Anchor models are built once per session (shapes only; see hwsim/cost/models.py)."""

from __future__ import annotations

import functools

import pytest

from hwsim.cost.models import build


@functools.lru_cache(maxsize=None)
def _built(name: str):
    return build(name)


@pytest.fixture(scope="session")
def model():
    """``model(name)``: an anchor model graph shared by the session. Do not mutate it."""
    return _built
