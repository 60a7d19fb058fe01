"""export_onnx without an engine: the missing-extra error and what it refuses to export."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from hwsim.errors import GraphError, MissingExtraError
from hwsim.frontends.onnx_export import export_onnx
from hwsim.graph import GraphBuilder


def tiny_graph(input_dtype: str = "float32"):
    b = GraphBuilder("tiny")
    x = b.input("x", (1, 4, 4, 2), dtype=input_dtype)
    b.output(b.node("Conv2D", [x, b.param("w", np.ones((3, 1, 1, 2), np.float32))], name="conv"))
    return b.build()


def test_without_onnx_the_error_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(MissingExtraError, match=r"hwsim\[onnx\]"):
        export_onnx(tiny_graph())


def test_integer_inputs_are_refused_naming_the_input():
    with pytest.raises(GraphError, match="'x'.*float graphs only"):
        export_onnx(tiny_graph("uint8"))


def test_returns_a_model_and_writes_nothing_without_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = export_onnx(tiny_graph())
    assert [o.name for o in model.graph.output] == ["conv"]
    assert [i.name for i in model.graph.initializer] == ["w.oihw"]
    assert list(tmp_path.iterdir()) == []
