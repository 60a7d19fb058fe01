"""Helpers for writing small target files in a temporary folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

#: A complete, minimal base target; tests derive broken variants from it.
MINIMAL = """\
schema_version: 1
name: {name}
family: generic
description: minimal test target
numerics:
  activations: {{bits: 8, signed: true, symmetric: false}}
  weights: {{bits: 8, signed: true, symmetric: true, narrow: true, granularity: per_channel}}
  bias: {{bits: 32, signed: true, symmetric: true}}
  accumulator: {{bits: 32, overflow: WRAP}}
ops:
  default: {{fallback: float}}
  Conv2D:
    kernel: conv2d
    requant: {{scheme: fixed_point_double}}
    fuse: [ReLU, ReLU6]
"""


class TargetFolder:
    """A folder of YAML target files written from strings."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, name: str, text: str) -> Path:
        file = self.path / f"{name}.yaml"
        file.write_text(textwrap.dedent(text))
        return file

    def minimal(self, name: str, extra: str = "") -> Path:
        return self.write(name, MINIMAL.format(name=name) + textwrap.dedent(extra))


@pytest.fixture
def folder(tmp_path) -> TargetFolder:
    path = tmp_path / "user_targets"
    path.mkdir()
    return TargetFolder(path)
