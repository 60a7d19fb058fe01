"""Paths and fixtures shared by the golden/vectors/cosim/testing tests.

Not a conftest.py on purpose: tests elsewhere import ``conftest`` by name, and a second conftest module would
shadow theirs. Test modules import the fixtures they use from here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hwsim.compare.golden import record_golden
from hwsim.targets import load_target

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "examples" / "lenet5.npz"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A bit-exact bundle of LeNet-5 on arm_tflite, 4 samples (do not modify: copy it with ``bundle``)."""
    out = tmp_path_factory.mktemp("golden") / "lenet5_arm"
    record_golden(LENET, load_target("arm_tflite"), out, limit=4)
    return out


@pytest.fixture
def bundle(recorded, tmp_path) -> Path:
    """A private copy of the recorded bundle, free to edit."""
    dst = tmp_path / "bundle"
    shutil.copytree(recorded, dst)
    return dst
