"""Op schemas: attributes are typed and documented, shapes are inferred per op, MACs follow the convention."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.errors import GraphError
from hwsim.graph import OPS, GraphBuilder, conv_out_size
from hwsim.graph.ops import ATTR_TYPES, REQUIRED

CONTRACT_OPS = {
    "Conv2D", "Dense", "MatMul", "BatchNorm", "Add", "Mul", "Concat", "Pad", "MaxPool", "AvgPool",
    "GlobalAvgPool", "Reshape", "Flatten", "Transpose", "Softmax", "LayerNorm", "ReLU", "ReLU6", "LeakyReLU",
    "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "SELU", "SiLU", "Mish", "GELU",
}


def f32(*shape: int) -> np.ndarray:
    return np.ones(shape, np.float32)


def test_op_table_is_the_contract() -> None:
    assert set(OPS) == CONTRACT_OPS


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_attribute_has_type_default_and_description(op: str) -> None:
    schema = OPS[op]
    assert schema.doc
    for spec in schema.attrs.values():
        assert spec.type in ATTR_TYPES
        assert spec.doc and "\n" not in spec.doc
        if spec.default is not REQUIRED:
            assert spec.normalize(spec.default, "x") == spec.default


@pytest.mark.parametrize("op,attrs", [
    ("LeakyReLU", {"alpha": 0.2}),
    ("HardSigmoid", {"alpha": 0.2, "beta": 0.5}),
    ("SELU", {}),
    ("GELU", {"approximate": "tanh"}),
])
def test_defaults_are_filled_in(op: str, attrs: dict) -> None:
    b = GraphBuilder("g")
    x = b.input("x", (1, 4))
    y = b.node(op, [x], attrs)
    g = b.build()
    node = g.node(y)
    assert set(node.attrs) == set(OPS[op].attrs)
    for k, v in attrs.items():
        assert node.attrs[k] == v


def test_hard_sigmoid_and_selu_defaults() -> None:
    assert OPS["HardSigmoid"].attrs["alpha"].default == pytest.approx(1 / 6)
    assert OPS["HardSigmoid"].attrs["beta"].default == 0.5
    assert OPS["SELU"].attrs["alpha"].default == 1.6732632423543772
    assert OPS["SELU"].attrs["gamma"].default == 1.0507009873554805
    assert OPS["LeakyReLU"].attrs["alpha"].default == 0.01


def test_swish_is_stored_as_silu() -> None:
    b = GraphBuilder("g")
    x = b.input("x", (1, 4))
    y = b.node("Swish", [x])
    assert b.build().node(y).op == "SiLU"


@pytest.mark.parametrize("op,attrs,message", [
    ("Conv2D", {"stride": [1, 1]}, "unknown attribute 'stride'"),
    ("Conv2D", {"strides": 2}, "attribute 'strides' must be a list"),
    ("Conv2D", {"strides": [1, 1, 1]}, "attribute 'strides' must have 2 elements"),
    ("Conv2D", {"groups": 1.5}, "attribute 'groups' must be an int"),
    ("Conv2D", {"groups": True}, "attribute 'groups' must be an int"),
    ("Conv2D", {"pads": [0, 0, 0, "1"]}, "attribute 'pads' must be a list of ints"),
])
def test_bad_attributes_name_node_and_attribute(op: str, attrs: dict, message: str) -> None:
    b = GraphBuilder("g")
    x = b.input("x", (1, 5, 5, 2))
    w = b.param("w", f32(3, 3, 3, 2))
    with pytest.raises(GraphError, match=message) as info:
        b.node(op, [x, w], attrs, name="convA")
    assert "convA" in str(info.value)


@pytest.mark.parametrize("op,attrs,message", [
    ("GELU", {"approximate": "erf"}, "attribute 'approximate' must be one of 'none', 'tanh'"),
    ("LeakyReLU", {"alpha": "x"}, "attribute 'alpha' must be a number"),
    ("LeakyReLU", {"alpha": float("nan")}, "attribute 'alpha' must be finite"),
    ("MatMul", {"transpose_b": 1}, "attribute 'transpose_b' must be a bool"),
    ("Transpose", {}, "attribute 'perm' is required"),
    ("Pad", {"pads": [[0, 0], [1]]}, r"attribute 'pads' must be a list of \[begin, end\] int pairs"),
])
def test_bad_attribute_values(op: str, attrs: dict, message: str) -> None:
    b = GraphBuilder("g")
    x = b.input("x", (2, 4))
    ins = [x, x] if op == "MatMul" else [x]
    with pytest.raises(GraphError, match=message):
        b.node(op, ins, attrs, name="n1")


def test_unknown_op_lists_known_ops() -> None:
    b = GraphBuilder("g")
    x = b.input("x", (1, 4))
    with pytest.raises(GraphError, match=r"node 'n1': unknown op 'Relu' \(known: .*ReLU"):
        b.node("Relu", [x], name="n1")


# ----------------------------------------------------------------------------------------------------
# Shape inference


@pytest.mark.parametrize("size,k,s,pb,pe,d", [
    (224, 7, 2, 3, 3, 1), (56, 3, 1, 1, 1, 1), (56, 3, 2, 0, 1, 1), (13, 3, 1, 2, 2, 2), (7, 1, 1, 0, 0, 1),
    (10, 3, 3, 0, 0, 1), (9, 4, 2, 1, 2, 3),
])
def test_conv_out_size_matches_direct_count(size: int, k: int, s: int, pb: int, pe: int, d: int) -> None:
    # Count window positions one by one: start at 0, step s, the dilated window must fit in the padded axis.
    padded = size + pb + pe
    span = d * (k - 1) + 1
    count = len(range(0, padded - span + 1, s))
    assert conv_out_size(size, k, s, pb, pe, d) == count


@pytest.mark.parametrize("x,w,attrs,out", [
    ((1, 224, 224, 3), (64, 7, 7, 3), {"strides": [2, 2], "pads": [3, 3, 3, 3]}, (1, 112, 112, 64)),
    ((2, 8, 9, 6), (6, 3, 3, 1), {"groups": 6, "pads": [1, 1, 1, 1]}, (2, 8, 9, 6)),
    ((1, 8, 8, 4), (8, 3, 3, 2), {"groups": 2, "dilations": [2, 2]}, (1, 4, 4, 8)),
    ((1, 7, 7, 3), (12, 3, 3, 1), {"groups": 3, "strides": [2, 1], "pads": [0, 1, 1, 0]}, (1, 3, 6, 12)),
])
def test_conv2d_shapes(x, w, attrs, out) -> None:
    b = GraphBuilder("g")
    y = b.node("Conv2D", [b.input("x", x), b.param("w", f32(*w))], attrs)
    assert b.shape(y) == out


@pytest.mark.parametrize("x,w,groups,message", [
    ((1, 8, 8, 4), (8, 3, 3, 3), 1, "has 4 channels but weight 'w' expects 3"),
    ((1, 8, 8, 4), (6, 3, 3, 2), 4, r"expects 2·groups = 8"),
    ((1, 8, 8, 4), (6, 3, 3, 1), 4, "6 output channels, not a multiple of groups=4"),
    ((1, 8, 8), (6, 3, 3, 1), 1, "input 'x' must have rank 4"),
    ((1, 2, 2, 1), (1, 3, 3, 1), 1, "output would be empty"),
])
def test_conv2d_shape_errors_name_node(x, w, groups, message) -> None:
    b = GraphBuilder("g")
    with pytest.raises(GraphError, match=message) as info:
        b.node("Conv2D", [b.input("x", x), b.param("w", f32(*w))], {"groups": groups}, name="c1")
    assert "node 'c1' (Conv2D)" in str(info.value)


def test_conv2d_bias_shape() -> None:
    b = GraphBuilder("g")
    with pytest.raises(GraphError, match=r"bias 'bb' must have shape \[8\]"):
        b.node("Conv2D", [b.input("x", (1, 4, 4, 2)), b.param("w", f32(8, 1, 1, 2)), b.param("bb", f32(4))])


@pytest.mark.parametrize("op,shapes,attrs,out", [
    ("Dense", [(2, 5, 16), (8, 16), (8,)], {}, (2, 5, 8)),
    ("MatMul", [(2, 4, 3, 5), (5, 7)], {}, (2, 4, 3, 7)),
    ("MatMul", [(2, 1, 3, 5), (4, 5, 7)], {}, (2, 4, 3, 7)),
    ("MatMul", [(2, 4, 3, 5), (2, 4, 6, 5)], {"transpose_b": True}, (2, 4, 3, 6)),
    ("BatchNorm", [(1, 4, 4, 3), (3,), (3,), (3,), (3,)], {}, (1, 4, 4, 3)),
    ("Add", [(1, 4, 4, 3), (3,)], {}, (1, 4, 4, 3)),
    ("Mul", [(1, 4, 1, 3), (2, 1, 5, 1)], {}, (2, 4, 5, 3)),
    ("Concat", [(1, 4, 4, 3), (1, 4, 4, 5)], {"axis": -1}, (1, 4, 4, 8)),
    ("Concat", [(2, 3), (4, 3), (1, 3)], {"axis": 0}, (7, 3)),
    ("Pad", [(1, 4, 4, 3)], {"pads": [[0, 0], [1, 2], [0, 3], [0, 0]]}, (1, 7, 7, 3)),
    ("MaxPool", [(1, 112, 112, 64)], {"kernel": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
     (1, 56, 56, 64)),
    ("MaxPool", [(1, 5, 5, 1)], {"kernel": [2, 2]}, (1, 4, 4, 1)),
    ("AvgPool", [(1, 7, 7, 8)], {"kernel": [3, 3], "strides": [2, 2], "pads": [0, 0, 1, 1]}, (1, 3, 3, 8)),
    ("GlobalAvgPool", [(3, 7, 7, 8)], {}, (3, 1, 1, 8)),
    ("Reshape", [(2, 3, 4)], {"shape": [0, -1]}, (2, 12)),
    ("Reshape", [(2, 3, 4)], {"shape": [-1, 2, 2]}, (6, 2, 2)),
    ("Reshape", [(2, 3, 4)], {"shape": [4, 6]}, (4, 6)),
    ("Flatten", [(2, 3, 4, 5)], {}, (2, 60)),
    ("Flatten", [(2, 3, 4, 5)], {"axis": 0}, (1, 120)),
    ("Flatten", [(2, 3, 4, 5)], {"axis": -1}, (24, 5)),
    ("Flatten", [(2, 3, 4, 5)], {"axis": 4}, (120, 1)),
    ("Transpose", [(2, 3, 4)], {"perm": [2, 0, 1]}, (4, 2, 3)),
    ("Softmax", [(2, 3, 4)], {"axis": 1}, (2, 3, 4)),
    ("LayerNorm", [(2, 5, 8), (8,), (8,)], {}, (2, 5, 8)),
    ("LayerNorm", [(2, 5, 8), (5, 8), (5, 8)], {"axis": 1}, (2, 5, 8)),
    ("ReLU", [(2, 3)], {}, (2, 3)),
])
def test_shape_inference(op, shapes, attrs, out) -> None:
    b = GraphBuilder("g")
    x = b.input("x", shapes[0])
    others = [b.param(f"p{i}", f32(*s)) for i, s in enumerate(shapes[1:], 1)]
    if op == "Concat":
        others = [b.input(f"x{i}", s) for i, s in enumerate(shapes[1:], 1)]
    assert b.shape(b.node(op, [x] + others, attrs)) == out


@pytest.mark.parametrize("op,shapes,attrs,message", [
    ("Dense", [(2, 16), (8, 15)], {}, "has 16 features on its last axis but weight 'p1'"),
    ("Dense", [(2, 16), (8, 16), (4,)], {}, r"bias 'p2' must have shape \[8\]"),
    ("MatMul", [(2, 3, 5), (4, 7)], {}, "inner dimensions differ"),
    ("MatMul", [(2, 3, 5), (3, 5, 7)], {}, "batch dimensions .* do not broadcast"),
    ("BatchNorm", [(1, 4, 4, 3), (3,), (3,), (4,), (3,)], {}, r"mean 'p3' must have shape \[3\]"),
    ("Add", [(1, 4, 4, 3), (4,)], {}, "do not broadcast"),
    ("Concat", [(1, 4, 4, 3), (1, 4, 5, 3)], {"axis": -1}, "does not match"),
    ("Concat", [(1, 4, 4, 3), (1, 4, 4, 3)], {"axis": 4}, "out of range"),
    ("Pad", [(1, 4, 4, 3)], {"pads": [[0, 0], [1, 1]]}, "one \\[begin, end\\] pair per axis"),
    ("Pad", [(1, 4)], {"pads": [[0, 0], [-1, 1]]}, "must be >= 0"),
    ("MaxPool", [(1, 4, 4, 3)], {"kernel": [2, 2], "pads": [2, 0, 0, 0]}, "smaller than the kernel"),
    ("MaxPool", [(1, 4, 4, 3)], {"kernel": [0, 2]}, "'kernel' must be >= 1"),
    ("Reshape", [(2, 3, 4)], {"shape": [-1, -1]}, "more than one -1"),
    ("Reshape", [(2, 3, 4)], {"shape": [5, -1]}, "cannot reshape"),
    ("Reshape", [(2, 3, 4)], {"shape": [2, 3, 5]}, "cannot reshape"),
    ("Transpose", [(2, 3, 4)], {"perm": [0, 1, 1]}, "not a permutation"),
    ("Softmax", [(2, 3)], {"axis": 2}, "out of range"),
    ("LayerNorm", [(2, 5, 8), (5,), (5,)], {}, r"gamma 'p1' must have shape \[8\]"),
])
def test_shape_errors(op, shapes, attrs, message) -> None:
    b = GraphBuilder("g")
    x = b.input("x", shapes[0])
    others = [b.param(f"p{i}", f32(*s)) for i, s in enumerate(shapes[1:], 1)]
    if op == "Concat":
        others = [b.input(f"x{i}", s) for i, s in enumerate(shapes[1:], 1)]
    with pytest.raises(GraphError, match=message) as info:
        b.node(op, [x] + others, attrs, name="bad")
    assert f"node 'bad' ({op})" in str(info.value)


@pytest.mark.parametrize("op,n", [("ReLU", 2), ("Conv2D", 1), ("Conv2D", 4), ("BatchNorm", 4), ("Concat", 0)])
def test_wrong_input_count(op: str, n: int) -> None:
    b = GraphBuilder("g")
    x = b.input("x", (1, 4, 4, 2))
    with pytest.raises(GraphError, match="input"):
        b.node(op, [x] * n, {"axis": 0} if op == "Concat" else None, name="bad")


# ----------------------------------------------------------------------------------------------------
# MACs and parameters


def test_macs_convention() -> None:
    b = GraphBuilder("g")
    x = b.input("x", (2, 8, 8, 4))
    c = b.conv2d(x, f32(6, 3, 3, 2), f32(6), groups=2, pads=[1, 1, 1, 1], name="conv")  # N·OH·OW·O·KH·KW·C/g
    d = b.dense(b.flatten(c), f32(5, 8 * 8 * 6), name="fc")  # N·in·out
    q = b.input("q", (2, 3, 4, 16))
    m = b.matmul(q, f32(16, 7), name="mm")  # prod(out)·K
    t = b.dense(q, f32(9, 16), f32(9), name="tok")  # batched over leading dims
    r = b.relu(d, name="r")
    g = b.build() if b.output(r) is None and b.output(m) is None and b.output(t) is None else None
    per = g.macs(by_node=True)
    assert per["conv"] == 2 * 8 * 8 * 6 * 3 * 3 * 2
    assert per["fc"] == 2 * 384 * 5
    assert per["mm"] == 2 * 3 * 4 * 7 * 16
    assert per["tok"] == 2 * 3 * 4 * 16 * 9
    assert per["r"] == 0
    assert g.macs() == sum(per.values())
    assert g.node("conv").param_count == 6 * 3 * 3 * 2 + 6
    assert g.node("conv").param_bytes == 4 * (6 * 3 * 3 * 2 + 6)


def test_shared_parameter_counts_once_in_totals() -> None:
    b = GraphBuilder("shared")
    x = b.input("x", (1, 4, 8))
    w = b.param("shared.w", f32(8, 8))
    y = b.dense(x, w, name="l0")
    y = b.dense(y, w, name="l1")
    assert b.param("shared.w", f32(8, 8)) == "shared.w"  # same contents: the same parameter
    with pytest.raises(GraphError, match="already exists with different contents"):
        b.param("shared.w", f32(8, 4))
    b.output(y)
    g = b.build()
    assert g.param_count() == 64
    assert g.node("l0").param_count == g.node("l1").param_count == 64
    assert g.node("l0").inputs[1] == g.node("l1").inputs[1] == "shared.w"
