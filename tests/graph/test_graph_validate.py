"""Graph.validate: every problem raises GraphError naming the node, tensor or field; nodes end up sorted."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.errors import GraphError
from hwsim.graph import Graph, GraphBuilder, Node, QuantSpec, TensorSpec


def small_graph(nodes: list[Node], params: dict | None = None, outputs: list[str] | None = None,
                **kw) -> Graph:
    return Graph("g", [TensorSpec("x", (1, 4, 4, 2))], outputs or [nodes[-1].outputs[0]], nodes,
                 params if params is not None else {"w": np.ones((3, 1, 1, 2), np.float32)}, **kw)


def conv(name: str, x: str = "x", w: str = "w", out: str | None = None) -> Node:
    return Node(name, "Conv2D", [x, w], [out or name], {})


def relu(name: str, x: str, out: str | None = None) -> Node:
    return Node(name, "ReLU", [x], [out or name], {})


def test_valid_graph_infers_every_tensor() -> None:
    g = small_graph([conv("c"), relu("r", "c")])
    assert g.tensors["x"].shape == (1, 4, 4, 2)
    assert g.tensors["w"].shape == (3, 1, 1, 2)
    assert g.tensors["c"].shape == g.tensors["r"].shape == (1, 4, 4, 3)
    assert g.tensors["r"].dtype == "float32"
    assert g.node("c").attrs == {"strides": [1, 1], "dilations": [1, 1], "pads": [0, 0, 0, 0], "groups": 1}


def test_topological_sort_is_stable() -> None:
    # Given out of order: r2 needs r1, r1 needs c. Independent nodes keep their relative order.
    nodes = [relu("r2", "r1"), relu("a", "x"), relu("r1", "c"), conv("c"), relu("b", "x")]
    g = small_graph(nodes, outputs=["r2", "a", "b"])
    assert [n.name for n in g.nodes] == ["a", "c", "r1", "r2", "b"]
    again = small_graph([n.copy() for n in g.nodes], outputs=["r2", "a", "b"])
    assert [n.name for n in again.nodes] == [n.name for n in g.nodes]


def test_cycle_names_its_nodes() -> None:
    nodes = [conv("c"), Node("add", "Add", ["c", "r"], ["add"]), relu("r", "add")]
    with pytest.raises(GraphError, match=r"nodes form a cycle: 'r' -> 'add' -> 'r'|'add' -> 'r' -> 'add'"):
        small_graph(nodes)


@pytest.mark.parametrize("nodes,params,message", [
    ([Node("n", "Relu", ["x"], ["y"])], None, r"node 'n': unknown op 'Relu'"),
    ([relu("n", "nope")], None,
     r"node 'n' \(ReLU\): input 'nope' is not a graph input, parameter or node output"),
    ([conv("c", w="missing")], {}, r"node 'c' \(Conv2D\): input 'missing' is not a graph input, parameter"),
    ([relu("n", "x"), relu("n", "n", out="m")], None, "node name 'n' is used twice"),
    ([relu("a", "x", out="t"), relu("b", "x", out="t")], None, r"node 'b' \(ReLU\): output 't' is already"),
    ([relu("a", "x", out="w")], None, r"output 'w' is already the parameter"),
    ([relu("a", "x", out="x")], None, r"output 'x' is already the input"),
    ([conv("c")], {"w": np.ones((3, 1, 1, 4), np.float32)}, "has 2 channels but weight 'w' expects 4"),
    ([conv("c")], {"w": np.full((3, 1, 1, 2), np.nan, np.float32)}, r"parameter 'w' contains nan at index"),
    ([conv("c")], {"w": np.array([[[[1.0, np.inf]]]] * 3, np.float32)}, r"parameter 'w' contains inf"),
    ([conv("c")], {"w": np.ones((3, 1, 1, 2), np.complex64)}, "parameter 'w': unsupported dtype complex64"),
    ([conv("c")], {"w": np.ones((3, 1, 1, 2), bool)}, "parameter 'w': unsupported dtype bool"),
    ([conv("c")], {"w": [1.0]}, "parameter 'w' must be a numpy array"),
    ([Node("n", "ReLU", ["x"], ["y", "z"])], None, r"node 'n' \(ReLU\): needs exactly 1 output"),
    ([Node("n", "ReLU", ["x"], ["y"], {"alpha": 1.0})], None,
     r"node 'n' \(ReLU\): unknown attribute 'alpha'"),
    ([Node("", "ReLU", ["x"], ["y"])], None, "node name must be a non-empty string"),
])
def test_invalid_graphs(nodes, params, message) -> None:
    with pytest.raises(GraphError, match=message):
        small_graph(nodes, params, outputs=[nodes[0].outputs[0]])


def test_bad_inputs_and_outputs() -> None:
    with pytest.raises(GraphError, match="input 'x': unsupported dtype 'complex64'"):
        Graph("g", [TensorSpec("x", (1, 2), "complex64")], ["x"], [])
    with pytest.raises(GraphError, match="input 'x' is declared twice"):
        Graph("g", [TensorSpec("x", (1, 2)), TensorSpec("x", (1, 2))], ["x"], [])
    with pytest.raises(GraphError, match=r"input 'x': shape \[0, 2\] must have dimensions >= 1"):
        Graph("g", [TensorSpec("x", (0, 2))], ["x"], [])
    with pytest.raises(GraphError, match="graph output 'y' is not a tensor of the graph"):
        small_graph([relu("r", "x")], outputs=["y"])
    with pytest.raises(GraphError, match="at least one output"):
        Graph("g", [TensorSpec("x", (1, 2))], [], [])
    with pytest.raises(GraphError, match="parameter 'x' has the same name as a graph input"):
        Graph("g", [TensorSpec("x", (1, 2))], ["x"], [], {"x": np.ones(2, np.float32)})


def test_quant_specs_are_checked_against_their_tensor() -> None:
    w = np.ones((3, 1, 1, 2), np.int8)
    per_channel = QuantSpec(8, True, scale=np.full(3, 0.1), axis=0)
    g = small_graph([conv("c")], {"w": w}, quant={"w": per_channel})
    assert g.quant["w"] is per_channel
    with pytest.raises(GraphError, match=r"quant spec for 'w': per-channel quantization along axis 0 needs "
                                         r"scale shape \[3\], got \[2\]"):
        small_graph([conv("c")], {"w": w}, quant={"w": QuantSpec(8, True, scale=np.full(2, 0.1), axis=0)})
    with pytest.raises(GraphError, match="quant spec for 'nope': no such tensor"):
        small_graph([conv("c")], {"w": w}, quant={"w": per_channel, "nope": per_channel})
    with pytest.raises(GraphError, match="parameter 'w': quantized values must be stored as int8, got int16"):
        small_graph([conv("c")], {"w": w.astype(np.int16)}, quant={"w": per_channel})
    narrow = QuantSpec(8, True, scale=np.full(3, 0.1), axis=0, narrow=True)
    with pytest.raises(GraphError, match=r"parameter 'w': quantized values outside \[-127, 127\]"):
        small_graph([conv("c")], {"w": np.full((3, 1, 1, 2), -128, np.int8)}, quant={"w": narrow})
    with pytest.raises(GraphError, match=r"parameter 'w' is an integer array \(int8\) without a quant spec"):
        small_graph([conv("c")], {"w": w})


def test_metadata_must_be_json() -> None:
    with pytest.raises(GraphError, match="metadata must be JSON-serialisable"):
        small_graph([conv("c")], metadata={"a": object()})
    with pytest.raises(GraphError, match="metadata must be JSON-serialisable"):
        small_graph([conv("c")], metadata={"a": float("nan")})


def test_builder_reports_at_the_faulty_call() -> None:
    b = GraphBuilder("g")
    x = b.input("x", (1, 4, 4, 2))
    with pytest.raises(GraphError, match="input 'x': a tensor of that name already exists"):
        b.input("x", (1, 2))
    with pytest.raises(GraphError, match="input 'y': unknown dtype 'nonsense'"):
        b.input("y", (1, 2), "nonsense")
    with pytest.raises(GraphError, match="input 'y': unsupported dtype 'complex64'"):
        b.input("y", (1, 2), np.complex64)
    with pytest.raises(GraphError, match="parameter 'p': unsupported dtype <U1"):
        b.param("p", np.array(["a"]))
    with pytest.raises(GraphError, match="parameter 'bad' contains nan"):
        b.param("bad", np.array([np.nan], np.float32))
    y = b.relu(x, name="r")
    with pytest.raises(GraphError, match="node name 'r' is used twice"):
        b.relu(x, name="r")
    with pytest.raises(GraphError, match="graph output 'zz' is not a tensor"):
        b.output("zz")
    b.output(y)
    assert b.build().outputs == ["r"]


def test_copy_is_deep() -> None:
    g = small_graph([conv("c"), relu("r", "c")], metadata={"k": [1]})
    h = g.copy()
    h.params["w"][...] = 5
    h.nodes[0].attrs["strides"] = [2, 2]
    h.metadata["k"].append(2)
    assert g.params["w"].max() == 1 and g.nodes[0].attrs["strides"] == [1, 1] and g.metadata["k"] == [1]
    assert h.tensors == g.tensors
    assert h.validate() is h
    assert h.tensors["c"].shape == (1, 2, 2, 3)
