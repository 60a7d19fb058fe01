"""Float oracle: hwsim's float reference (run_float) against onnxruntime on the same graph exported to ONNX.

onnxruntime runs with every graph optimisation disabled, so each hwsim node is computed by the ONNX operator
of the same definition (export_onnx adds only layout Transposes). The error of a tensor is
max |hwsim - onnxruntime| / max |onnxruntime| over the tensor. Two checks, both <= 1e-5:

- end to end: every graph output of run_float on the model against onnxruntime's;
- node by node: every node, run alone by run_float on the very inputs onnxruntime computed for it, against
  onnxruntime's output of that node (the exporter keeps hwsim's tensor names and NHWC shapes, so every
  intermediate tensor can be fetched). This isolates each op's arithmetic from the float32 rounding
  differences that a deep random network accumulates (in ResNet-50 they grow from 1e-6 after conv1 to
  about 1e-5 in the last block, although each op alone agrees to about 1e-6).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hwsim.emulate.float_ref import run_float
from hwsim.frontends.onnx_export import export_onnx
from hwsim.graph import Graph, GraphBuilder, TensorSpec
from hwsim.zoo import build_model

pytestmark = pytest.mark.oracle

TOLERANCE = 1e-5


def onnxruntime_outputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    scale = float(np.max(np.abs(theirs))) if theirs.size else 0.0
    diff = float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)))) if theirs.size else 0.0
    return diff / scale if scale > 0 else diff


def run_node_alone(graph, node, values: dict[str, np.ndarray]) -> np.ndarray:
    """run_float on a one-node graph whose activation inputs are taken from ``values``."""
    acts = [t for t in dict.fromkeys(node.inputs) if t not in graph.params]
    single = Graph(f"{graph.name}:{node.name}", [TensorSpec(t, values[t].shape) for t in acts],
                   list(node.outputs), [node.copy()],
                   {t: graph.params[t] for t in node.inputs if t in graph.params})
    return run_float(single, {t: values[t] for t in acts})[node.outputs[0]]


def check_against_onnxruntime(graph, feeds: dict[str, np.ndarray]) -> dict[str, float]:
    """End-to-end and node-by-node comparison; returns node output name -> node-by-node relative error."""
    theirs = onnxruntime_outputs(export_onnx(graph, None, intermediates=True), feeds)
    ours = run_float(graph, feeds)
    for out in graph.outputs:
        error = relative_error(ours[out], theirs[out])
        assert error <= TOLERANCE, f"output '{out}': relative error {error:.3g}"
    values = {**feeds, **theirs}
    errors = {}
    for node in graph.nodes:
        out = node.outputs[0]
        mine = run_node_alone(graph, node, values)
        assert mine.shape == theirs[out].shape, out
        errors[out] = relative_error(mine, theirs[out])
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOLERANCE, f"node output '{worst}': relative error {errors[worst]:.3g}"
    return errors


def random_feeds(graph, seed: int = 11) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {t.name: rng.standard_normal(t.shape).astype(np.float32) for t in graph.inputs}


@pytest.mark.parametrize("name", ["lenet5", "transformer_tiny"])
def test_small_zoo_models_match_onnxruntime(zoo_model, name):
    graph = zoo_model(name)
    if name == "lenet5":  # real digits from the bundled evaluation set, batch 1
        feeds = {graph.inputs[0].name: graph.data["evaluation"]["x"][:1]}
    else:
        feeds = random_feeds(graph)
    check_against_onnxruntime(graph, feeds)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "mobilenetv2", "googlenet"])
def test_224_zoo_models_match_onnxruntime(zoo_model, name):
    graph = zoo_model(name)
    errors = check_against_onnxruntime(graph, random_feeds(graph))
    assert len(errors) == len(graph.nodes)  # every node's output was compared


# ----------------------------------------------------------------------------------------------------
# Ops the zoo does not use, one small graph each


def _x(b: GraphBuilder, shape=(2, 6, 7, 4)) -> str:
    return b.input("x", shape)


def _w(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _unary(op, **attrs):
    def build(b, rng):
        return b.node(op, [_x(b)], attrs or None, name="y")
    return build


CASES = {
    "leaky_relu": _unary("LeakyReLU", alpha=0.1),
    "sigmoid": _unary("Sigmoid"),
    "tanh": _unary("Tanh"),
    "hard_sigmoid": _unary("HardSigmoid", alpha=0.2, beta=0.5),
    "hard_swish": _unary("HardSwish"),
    "selu": _unary("SELU"),
    "silu": _unary("SiLU"),
    "mish": _unary("Mish"),
    "gelu_tanh": _unary("GELU", approximate="tanh"),
    "relu6": _unary("ReLU6"),
    "pad": lambda b, rng: b.node("Pad", [_x(b)], {"pads": [[0, 0], [1, 2], [0, 3], [0, 0]], "value": 0.5}),
    "avg_pool_exclude_pad": lambda b, rng: b.node(
        "AvgPool", [_x(b)], {"kernel": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "avg_pool_include_pad": lambda b, rng: b.node(
        "AvgPool", [_x(b)], {"kernel": [3, 2], "strides": [1, 2], "pads": [1, 0, 1, 1],
                             "count_include_pad": True}),
    "max_pool_padded": lambda b, rng: b.node(
        "MaxPool", [_x(b)], {"kernel": [3, 3], "strides": [2, 2], "pads": [1, 1, 2, 2]}),
    "conv_dilated_strided": lambda b, rng: b.node(
        "Conv2D", [_x(b), b.param("w", _w(rng, 5, 3, 3, 4)), b.param("bias", _w(rng, 5))],
        {"strides": [2, 1], "dilations": [1, 2], "pads": [1, 2, 0, 2]}),
    "conv_grouped": lambda b, rng: b.node(
        "Conv2D", [_x(b), b.param("w", _w(rng, 6, 3, 3, 2))], {"groups": 2, "pads": [1, 1, 1, 1]}),
    "depthwise_multiplier_2": lambda b, rng: b.node(
        "Conv2D", [_x(b), b.param("w", _w(rng, 8, 3, 3, 1))], {"groups": 4}),
    "batchnorm_rank2": lambda b, rng: b.node(
        "BatchNorm", [_x(b, (3, 4)), b.param("g", _w(rng, 4)), b.param("be", _w(rng, 4)),
                      b.param("m", _w(rng, 4)), b.param("v", np.abs(_w(rng, 4)) + 0.1)], {"epsilon": 1e-3}),
    "dense_rank2_no_bias": lambda b, rng: b.node("Dense", [_x(b, (3, 5)), b.param("w", _w(rng, 7, 5))]),
    "dense_rank4_no_bias": lambda b, rng: b.node("Dense", [_x(b), b.param("w", _w(rng, 3, 4))]),
    "matmul_param_b": lambda b, rng: b.node("MatMul", [_x(b, (2, 3, 5)), b.param("w", _w(rng, 5, 6))]),
    "concat_axis1": lambda b, rng: b.node(
        "Concat", [_x(b), b.node("ReLU", ["x"], name="r")], {"axis": 1}),
    "flatten_axis2": lambda b, rng: b.node("Flatten", [_x(b)], {"axis": 2}),
    "reshape_0_and_minus1": lambda b, rng: b.node("Reshape", [_x(b)], {"shape": [0, -1, 4]}),
    "softmax_axis1": lambda b, rng: b.node("Softmax", [_x(b)], {"axis": 1}),
    "layernorm_two_axes": lambda b, rng: b.node(
        "LayerNorm", [_x(b), b.param("g", _w(rng, 7, 4)), b.param("be", _w(rng, 7, 4))], {"axis": 2}),
    "mul_broadcast": lambda b, rng: b.node("Mul", [_x(b), b.param("s", _w(rng, 7, 1))]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_single_op_matches_onnxruntime(case):
    b = GraphBuilder(case)
    rng = np.random.default_rng(5)
    b.output(CASES[case](b, rng))
    graph = b.build()
    check_against_onnxruntime(graph, random_feeds(graph))


def test_export_writes_a_checked_file(tmp_path):
    graph = build_model("transformer_tiny")
    path = tmp_path / "t.onnx"
    model = export_onnx(graph, path)
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded)
    assert loaded.graph.output[0].name == graph.outputs[0] == model.graph.output[0].name
    # a shared parameter is stored once, however many layers read it (Dense on rank 3 stores W transposed)
    names = [i.name for i in loaded.graph.initializer]
    assert len(names) == len(set(names))
    assert {"shared.attn.q.weight.T", "shared.ln1.gamma"} <= set(names)
    readers = [n.name for n in loaded.graph.node if "shared.attn.q.weight.T" in n.input]
    assert len(readers) == 4
