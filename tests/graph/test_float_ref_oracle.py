"""Float reference vs onnxruntime: one single-op ONNX model per op kind (and attribute variants).

ONNX is NCHW and OIHW where hwsim is NHWC and OHWI, so 4-D spatial ops get a Transpose at each edge of the
ONNX graph and their weights are permuted when the model is built. Both sides see the same float32 inputs;
the hwsim side runs in float32 and in float64. Pass: max |hwsim - ort| / max |ort| <= 1e-5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.emulate.float_ref import run_float
from hwsim.graph import OPS, GraphBuilder

pytestmark = pytest.mark.oracle

OPSET = 21
TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def ort_run(nodes: list, x: np.ndarray, inits: dict[str, np.ndarray], out_shape: tuple[int, ...],
            extra: dict[str, np.ndarray] | None = None) -> np.ndarray:
    feeds = {"x": x, **(extra or {})}
    graph = helper.make_graph(
        nodes, "single_op",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape)) for k, v in feeds.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    (y,) = session.run(["y"], feeds)
    assert y.shape == out_shape
    return y


def nchw(op_type: str, inputs: list[str], **attrs: Any) -> list:
    """x (NHWC) -> Transpose -> op -> Transpose -> y (NHWC)."""
    return [helper.make_node("Transpose", ["x"], ["x_nchw"], perm=TO_NCHW),
            helper.make_node(op_type, ["x_nchw"] + inputs, ["y_nchw"], **attrs),
            helper.make_node("Transpose", ["y_nchw"], ["y"], perm=TO_NHWC)]


def direct(op_type: str, inputs: list[str], **attrs: Any) -> list:
    return [helper.make_node(op_type, inputs, ["y"], **attrs)]


def hwsim_run(op: str, x: np.ndarray, params: list[np.ndarray], attrs: dict | None,
              extra: dict[str, np.ndarray] | None, dtype) -> np.ndarray:
    b = GraphBuilder(op)
    names = [b.input("x", x.shape)]
    for k, v in (extra or {}).items():
        names.append(b.input(k, v.shape))
    names += [b.param(f"p{i}", p) for i, p in enumerate(params)]
    b.output(b.node(op, names, attrs, name="node"))
    return run_float(b.build(), {"x": x, **(extra or {})}, dtype=dtype)["node"]


def check(op: str, x: np.ndarray, params: list[np.ndarray], attrs: dict | None, onnx_nodes: list,
          inits: dict[str, np.ndarray], extra: dict[str, np.ndarray] | None = None) -> None:
    for dtype in (np.float32, np.float64):
        got = hwsim_run(op, x, params, attrs, extra, dtype)
        want = ort_run(onnx_nodes, x, inits, got.shape, extra)
        err = float(np.max(np.abs(got.astype(np.float64) - want))) / max(float(np.max(np.abs(want))), 1e-30)
        assert err <= 1e-5, f"{op} {attrs} ({np.dtype(dtype).name}): max relative error {err:.3g}"


def randn(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


COVERED: set[str] = set()


def covers(*ops: str):
    COVERED.update(ops)
    return lambda f: f


# ----------------------------------------------------------------------------------------------------


@covers("Conv2D")
@pytest.mark.parametrize("xs,ws,strides,pads,dil,groups,bias", [
    ((1, 9, 9, 3), (8, 3, 3, 3), [1, 1], [1, 1, 1, 1], [1, 1], 1, True),
    ((2, 11, 10, 4), (6, 5, 3, 4), [2, 1], [2, 0, 1, 1], [1, 1], 1, False),
    ((1, 12, 12, 8), (8, 3, 3, 2), [1, 2], [2, 2, 2, 2], [2, 2], 4, True),
    ((1, 10, 10, 6), (6, 3, 3, 1), [2, 2], [0, 0, 1, 1], [1, 1], 6, True),   # depthwise, TF 'same' stride 2
    ((1, 8, 8, 3), (6, 3, 3, 1), [1, 1], [1, 1, 1, 1], [1, 3], 3, False),   # depthwise multiplier 2, dilated
    ((1, 224, 224, 3), (16, 7, 7, 3), [2, 2], [3, 3, 3, 3], [1, 1], 1, True),
    ((2, 9, 9, 16), (24, 1, 1, 16), [2, 2], [0, 0, 0, 0], [1, 1], 1, True),  # pointwise, strided
])
def test_conv2d(rng, xs, ws, strides, pads, dil, groups, bias) -> None:
    x, w, b = randn(rng, *xs), randn(rng, *ws), randn(rng, ws[0])
    params = [w, b] if bias else [w]
    inits = {"W": np.ascontiguousarray(w.transpose(0, 3, 1, 2))}
    if bias:
        inits["B"] = b
    nodes = nchw("Conv", list(inits), strides=strides, pads=pads, dilations=dil, group=groups,
                 kernel_shape=list(ws[1:3]))
    check("Conv2D", x, params, {"strides": strides, "pads": pads, "dilations": dil, "groups": groups},
          nodes, inits)


@covers("Dense")
def test_dense(rng) -> None:
    x, w, b = randn(rng, 3, 20), randn(rng, 7, 20), randn(rng, 7)
    check("Dense", x, [w, b], None, direct("Gemm", ["x", "W", "B"], transB=1), {"W": w, "B": b})
    x3 = randn(rng, 2, 5, 20)
    nodes = [helper.make_node("MatMul", ["x", "WT"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["y"])]
    check("Dense", x3, [w, b], None, nodes, {"WT": np.ascontiguousarray(w.T), "B": b})


@covers("MatMul")
@pytest.mark.parametrize("transpose_b", [False, True])
def test_matmul(rng, transpose_b: bool) -> None:
    a = randn(rng, 2, 3, 4, 8)
    bmat = randn(rng, 3, 8, 5)
    bp = np.ascontiguousarray(bmat.transpose(0, 2, 1)) if transpose_b else bmat
    check("MatMul", a, [bp], {"transpose_b": transpose_b}, direct("MatMul", ["x", "B"]), {"B": bmat})
    # activation x activation, as in attention scores q @ k^T
    k = randn(rng, 2, 3, 6, 8)
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["x", "kt"], ["y"])]
    check("MatMul", a, [], {"transpose_b": True}, nodes, {}, extra={"k": k})


@covers("BatchNorm")
def test_batchnorm(rng) -> None:
    x = randn(rng, 2, 5, 6, 4)
    g, b, m, v = randn(rng, 4), randn(rng, 4), randn(rng, 4), (rng.random(4) + 0.2).astype(np.float32)
    inits = {"g": g, "b": b, "m": m, "v": v}
    check("BatchNorm", x, [g, b, m, v], {"epsilon": 1e-3},
          nchw("BatchNormalization", list(inits), epsilon=1e-3), inits)


@covers("Add", "Mul")
@pytest.mark.parametrize("op,onnx_op", [("Add", "Add"), ("Mul", "Mul")])
@pytest.mark.parametrize("bshape", [(6,), (1, 4, 1, 6), (4, 1, 1)])
def test_binary(rng, op: str, onnx_op: str, bshape) -> None:
    x, p = randn(rng, 2, 4, 5, 6), randn(rng, *bshape)
    check(op, x, [p], None, direct(onnx_op, ["x", "P"]), {"P": p})
    y = randn(rng, *x.shape)
    check(op, x, [], None, direct(onnx_op, ["x", "y2"]), {}, extra={"y2": y})


@covers("Concat")
@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_concat(rng, axis: int) -> None:
    x = randn(rng, 2, 3, 4, 5)
    shape = list(x.shape)
    shape[axis] = 2
    y = randn(rng, *shape)
    check("Concat", x, [], {"axis": axis}, direct("Concat", ["x", "y2"], axis=axis), {}, extra={"y2": y})


@covers("Pad")
def test_pad(rng) -> None:
    x = randn(rng, 1, 4, 5, 3)
    pads = [[0, 0], [1, 2], [3, 0], [0, 1]]
    onnx_pads = np.array([p[0] for p in pads] + [p[1] for p in pads], np.int64)
    check("Pad", x, [], {"pads": pads, "value": 0.75}, direct("Pad", ["x", "pads", "cv"], mode="constant"),
          {"pads": onnx_pads, "cv": np.array(0.75, np.float32)})


@covers("MaxPool", "AvgPool")
@pytest.mark.parametrize("kernel,strides,pads", [
    ([2, 2], [2, 2], [0, 0, 0, 0]), ([3, 3], [2, 2], [1, 1, 1, 1]), ([3, 2], [1, 2], [0, 1, 2, 0]),
])
def test_pools(rng, kernel, strides, pads) -> None:
    x = randn(rng, 2, 9, 8, 3) - 2.0
    attrs = {"kernel": kernel, "strides": strides, "pads": pads}
    check("MaxPool", x, [], attrs, nchw("MaxPool", [], kernel_shape=kernel, strides=strides, pads=pads), {})
    for include in (False, True):
        check("AvgPool", x, [], {**attrs, "count_include_pad": include},
              nchw("AveragePool", [], kernel_shape=kernel, strides=strides, pads=pads,
                   count_include_pad=int(include)), {})


@covers("GlobalAvgPool")
def test_global_avg_pool(rng) -> None:
    check("GlobalAvgPool", randn(rng, 2, 7, 7, 16), [], None, nchw("GlobalAveragePool", []), {})


@covers("Reshape", "Flatten", "Transpose")
def test_layout_ops(rng) -> None:
    x = randn(rng, 2, 3, 4, 5)
    for shape in ([0, -1], [-1, 10], [2, 0, 20], [6, 4, 5]):
        check("Reshape", x, [], {"shape": shape}, direct("Reshape", ["x", "s"]),
              {"s": np.array(shape, np.int64)})
    for axis in (0, 1, 3, 4, -1):
        check("Flatten", x, [], {"axis": axis}, direct("Flatten", ["x"], axis=axis), {})
    for perm in ([0, 3, 1, 2], [3, 2, 1, 0], [0, 2, 1, 3]):
        check("Transpose", x, [], {"perm": perm}, direct("Transpose", ["x"], perm=perm), {})


@covers("Softmax")
@pytest.mark.parametrize("axis", [-1, 1])
def test_softmax(rng, axis: int) -> None:
    x = randn(rng, 2, 6, 10) * 4
    check("Softmax", x, [], {"axis": axis}, direct("Softmax", ["x"], axis=axis), {})


@covers("LayerNorm")
@pytest.mark.parametrize("axis", [-1, 1])
def test_layernorm(rng, axis: int) -> None:
    x = randn(rng, 2, 6, 16) * 3 + 1
    shape = x.shape[axis:] if axis >= 0 else x.shape[-1:]
    g, b = randn(rng, *shape), randn(rng, *shape)
    check("LayerNorm", x, [g, b], {"axis": axis, "epsilon": 1e-6},
          direct("LayerNormalization", ["x", "g", "b"], axis=axis, epsilon=1e-6), {"g": g, "b": b})


ACTIVATIONS = [
    ("ReLU", None, lambda: direct("Relu", ["x"]), {}),
    ("ReLU6", None, lambda: direct("Clip", ["x", "lo", "hi"]),
     {"lo": np.array(0, np.float32), "hi": np.array(6, np.float32)}),
    ("LeakyReLU", {"alpha": 0.2}, lambda: direct("LeakyRelu", ["x"], alpha=0.2), {}),
    ("LeakyReLU", None, lambda: direct("LeakyRelu", ["x"], alpha=0.01), {}),
    ("Sigmoid", None, lambda: direct("Sigmoid", ["x"]), {}),
    ("Tanh", None, lambda: direct("Tanh", ["x"]), {}),
    ("HardSigmoid", None, lambda: direct("HardSigmoid", ["x"], alpha=1 / 6, beta=0.5), {}),
    ("HardSigmoid", {"alpha": 0.2, "beta": 0.5}, lambda: direct("HardSigmoid", ["x"], alpha=0.2, beta=0.5),
     {}),
    ("HardSwish", None, lambda: direct("HardSwish", ["x"]), {}),
    ("SELU", None, lambda: direct("Selu", ["x"]), {}),
    ("SiLU", None, lambda: [helper.make_node("Sigmoid", ["x"], ["s"]),
                            helper.make_node("Mul", ["x", "s"], ["y"])],
     {}),
    ("Mish", None, lambda: direct("Mish", ["x"]), {}),
    ("GELU", None, lambda: direct("Gelu", ["x"], approximate="none"), {}),
    ("GELU", {"approximate": "tanh"}, lambda: direct("Gelu", ["x"], approximate="tanh"), {}),
]
COVERED.update(a[0] for a in ACTIVATIONS)


@pytest.mark.parametrize("op,attrs,nodes,inits", ACTIVATIONS,
                         ids=[f"{a[0]}-{a[1]}" if a[1] else a[0] for a in ACTIVATIONS])
def test_activations(rng, op, attrs, nodes, inits) -> None:
    x = np.concatenate([np.linspace(-10, 10, 401, dtype=np.float32), randn(rng, 199) * 4]).reshape(2, 3, 100)
    check(op, x, [], attrs, nodes(), inits)


def test_every_op_kind_has_an_oracle_case() -> None:
    assert COVERED == set(OPS)
