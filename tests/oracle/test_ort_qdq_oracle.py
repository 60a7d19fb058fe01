"""Oracle: ONNX models quantized by onnxruntime's quantize_static, imported and simulated on intel_int8.

Specification:

- A float model (a small conv net, a ResNet-style and a MobileNetV2-style net exported by torch.onnx.export,
  and an NHWC hwsim graph written by export_onnx) is quantized with
  ``onnxruntime.quantization.quantize_static`` (activations uint8, weights int8, per-channel off and on,
  seeded calibration; models from tools/gen_onnx_models.py, see tests/data/onnx/PROVENANCE.md).
- onnxruntime runs it with graph optimisations disabled (ORT_DISABLE_ALL: DequantizeLinear → float op →
  QuantizeLinear) and at the default level (ORT_ENABLE_ALL: fusion into QLinearConv/QGemm/QLinearAdd/...);
  the output of every QuantizeLinear node is added as a graph output (adding only those keeps the fusions).
- hwsim imports the QDQ model (import_onnx), simulates it on intel_int8, and every QuantizeLinear output
  tensor must have identical integers (numerics.md section 7: graph optimisation levels gave identical
  integers; QLinearConv = round_half_even(float32(acc) · float32(x_s·w_s/y_s))).
- The same for QOperator models (QLinearConv, QGemm, QLinearAdd, QLinearGlobalAveragePool): every
  integer tensor.
- Fusion decisions (numerics.md section 7 warns that in an s8s8 QDQ model only the first Conv was fused):
  the test records which Convs onnxruntime fuses. In u8s8 every Conv fuses; in s8s8 (onnxruntime 1.32) no
  Conv fuses and they run as float Conv between DequantizeLinear/QuantizeLinear. hwsim always simulates the
  integer (fused) arithmetic; the s8s8 cases check that on these models the float path gives the same
  integers, so a divergence would show here first.
- A ResNet-style and a MobileNetV2-style model (per-channel on and off) import and run on every built-in
  target (integer equality only on intel_int8).
"""

from __future__ import annotations

import importlib.util
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hwsim.emulate.simulator import quantize_for_target, requantize_for_target, simulate
from hwsim.errors import HwsimError
from hwsim.frontends.onnx_export import export_onnx
from hwsim.frontends.onnx_import import import_onnx
from hwsim.graph import GraphBuilder
from hwsim.targets import list_targets, load_target

pytestmark = pytest.mark.oracle

_TOOLS = Path(__file__).resolve().parents[2] / "tools" / "gen_onnx_models.py"
_spec = importlib.util.spec_from_file_location("gen_onnx_models", _TOOLS)
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

LEVELS = {"disable_all": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
          "default": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


def nhwc_export_model() -> onnx.ModelProto:
    """An NHWC hwsim graph (conv, depthwise + ReLU6, residual add, max pool, GAP, dense) via export_onnx."""
    rng = np.random.default_rng(3)
    b = GraphBuilder("nhwc_export")
    x = b.input("x", (1, 12, 12, 3))

    def w(*shape):
        return (rng.standard_normal(shape) * (2.0 / np.prod(shape[1:])) ** 0.5).astype(np.float32)

    y = b.relu(b.conv2d(x, w(8, 3, 3, 3), rng.standard_normal(8).astype(np.float32) * 0.1, pads=[1, 1, 1, 1],
                        name="conv1"))
    d = b.relu6(b.depthwise_conv2d(y, w(8, 3, 3, 1), np.zeros(8, np.float32), pads=[1, 1, 1, 1], name="dw"))
    p = b.conv2d(d, w(8, 1, 1, 8), np.zeros(8, np.float32), name="pw")
    y = b.add(y, p, name="residual")
    y = b.max_pool(y, [2, 2], name="pool")
    y = b.global_avg_pool(y, name="gap")
    y = b.dense(b.flatten(y, name="flat"), w(5, 8), np.zeros(5, np.float32), name="fc")
    b.output(y)
    return export_onnx(b.build())


_FLOAT_CACHE: dict[str, onnx.ModelProto] = {}
_QUANT_CACHE: dict[tuple, onnx.ModelProto] = {}


def float_model(name: str) -> onnx.ModelProto:
    if name not in _FLOAT_CACHE:
        _FLOAT_CACHE[name] = nhwc_export_model() if name == "nhwc_export" else gen.torch_model(name)
    return _FLOAT_CACHE[name]


def quantized(name: str, per_channel: bool, fmt: str = "qdq", activation: str = "uint8") -> onnx.ModelProto:
    key = (name, per_channel, fmt, activation)
    if key not in _QUANT_CACHE:
        logging.getLogger().setLevel(logging.ERROR)
        _QUANT_CACHE[key] = gen.quantize(float_model(name), per_channel=per_channel, fmt=fmt,
                                         activation=activation)
    return _QUANT_CACHE[key]


def input_batch(model: onnx.ModelProto, seed: int = 7) -> np.ndarray:
    dims = [d.dim_value or 2 for d in model.graph.input[0].type.tensor_type.shape.dim]
    return gen.images(seed, dims[0], dims)


def with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for t in names:
        if t not in have:
            m.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
    return m


def session(model: onnx.ModelProto, level, optimized_path: str | None = None) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    if optimized_path:
        so.optimized_model_filepath = optimized_path
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def run_ort(model: onnx.ModelProto, x: np.ndarray, names: list[str], level) -> dict[str, np.ndarray]:
    s = session(with_outputs(model, names), level)
    out_names = [o.name for o in s.get_outputs()]
    return dict(zip(out_names, s.run(out_names, {model.graph.input[0].name: x})))


def hwsim_integers(model: onnx.ModelProto, x: np.ndarray, target: str = "intel_int8",
                   names: list[str] | None = None):
    """hwsim's run of the model onnxruntime ran: with ``names`` added as graph outputs (run_ort does the same;
    a graph output stops onnxruntime from merging Q/DQ pairs, and the importer follows it)."""
    g = import_onnx(with_outputs(model, names) if names else model)
    qm = quantize_for_target(g, load_target(target))
    nchw = bool(g.metadata.get("onnx_nchw_inputs"))
    res = simulate(qm, x.transpose(0, 2, 3, 1) if nchw else x, keep_intermediates=True)
    return g, res


def compare(g, res, ref: dict[str, np.ndarray], names: list[str]) -> list[str]:
    """Names of the tensors whose integers differ, with the size of the difference."""
    bad = []
    for t in names:
        ir, perm = g.metadata["onnx_tensors"][t]
        expected = ref[t] if perm is None else ref[t].transpose(perm)
        got = res.integers[ir]
        assert got.shape == expected.shape, (t, got.shape, expected.shape)
        diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
        if diff.max() > 0:
            bad.append(f"{t} (hwsim '{ir}'): {int((diff > 0).sum())}/{diff.size} differ, "
                       f"max {int(diff.max())}")
    return bad


# ------------------------------------------------------------------------------------------------------


# In the export_onnx model a Transpose separates each Conv from its ReLU/ReLU6, so quantize_static removes
# the activation but keeps the Conv's own QuantizeLinear (zero point 129) and requantizes into the
# activation's range (zero point 0): onnxruntime rounds twice (acc → conv codes → activation codes). The
# importer emits Conv2D (conv spec) → ReLU (activation spec), and the simulator must not fuse the pair when the
# two specs differ.


@pytest.mark.parametrize("level", list(LEVELS))
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("name", [*gen.TORCH_MODELS, "nhwc_export"])
def test_qdq_quantize_linear_outputs_equal_onnxruntime(name, per_channel, level):
    model = quantized(name, per_channel)
    q_outputs = [n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert len(q_outputs) >= 3
    x = input_batch(model)
    ref = run_ort(model, x, q_outputs, LEVELS[level])
    g, res = hwsim_integers(model, x, names=q_outputs)
    assert compare(g, res, ref, q_outputs) == []


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("name", gen.TORCH_MODELS)
def test_qoperator_integer_tensors_equal_onnxruntime(name, per_channel):
    model = quantized(name, per_channel, fmt="qop")
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["QLinearConv"] >= 2
    x = input_batch(model)
    # every tensor onnxruntime holds as integers (QLinear* outputs, MaxPool/Flatten on codes, ...)
    names = [o for n in model.graph.node for o in n.output if o and n.op_type != "DequantizeLinear"]
    ref = run_ort(model, x, names, LEVELS["disable_all"])
    int_names = [t for t in names if ref[t].dtype.kind in "iu"]
    assert len(int_names) >= 4
    g, res = hwsim_integers(model, x)
    assert compare(g, res, ref, int_names) == []


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("name", ["resnet_style", "mobilenetv2_style"])
def test_s8s8_qdq_follows_the_engine(name, per_channel, tmp_path):
    """s8 activations: onnxruntime leaves the Convs unfused (float Conv between DQ/Q); same integers."""
    model = quantized(name, per_channel, activation="int8")
    q_outputs = [n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    opt = tmp_path / "optimized.onnx"
    session(with_outputs(model, q_outputs), ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, str(opt))
    fused = Counter(n.op_type for n in onnx.load(str(opt)).graph.node)
    assert fused["QLinearConv"] == 0 and fused["Conv"] > 0, fused  # the engine's decision we record
    x = input_batch(model)
    for level in LEVELS.values():
        ref = run_ort(model, x, q_outputs, level)
        g, res = hwsim_integers(model, x, names=q_outputs)
        assert compare(g, res, ref, q_outputs) == []


@pytest.mark.parametrize("name", gen.TORCH_MODELS)
def test_u8s8_qdq_every_conv_fuses_at_the_default_level(name, tmp_path):
    model = quantized(name, True)
    q_outputs = [n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    opt = tmp_path / "optimized.onnx"
    session(with_outputs(model, q_outputs), ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, str(opt))
    ops = Counter(n.op_type for n in onnx.load(str(opt)).graph.node)
    convs = sum(1 for n in model.graph.node if n.op_type == "Conv")
    assert ops["QLinearConv"] == convs and ops["Conv"] == 0, ops


def _is_pow2(target) -> bool:
    return "pow2" in (target.numerics.activations.scale_kind, target.numerics.weights.scale_kind)


@pytest.mark.parametrize("target", [info.name for info in list_targets()])
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("name", ["resnet_style", "mobilenetv2_style"])
def test_quantize_static_models_run_on_every_target(name, per_channel, target):
    model = quantized(name, per_channel)
    g = import_onnx(model)
    assert g.quant and any(a.dtype == np.int8 for a in g.params.values())
    x = input_batch(model).transpose(0, 2, 3, 1)
    t = load_target(target)
    if _is_pow2(t):
        # float scales cannot run on a power-of-two target as they are: the simulator says so, and
        # requantize_for_target (hwsim run --requantize) maps them onto the target's scheme
        with pytest.raises(HwsimError, match="--requantize"):
            quantize_for_target(g, t)
        qm, changes = requantize_for_target(g, t)
        assert changes and all(c.new_zero_point == 0 for c in changes if c.role == "activation")
    else:
        qm = quantize_for_target(g, t)
    res = simulate(qm, x, keep_intermediates=False)
    out = res.outputs[g.outputs[0]]
    assert out.shape == (x.shape[0], 10) and np.all(np.isfinite(out))


@pytest.mark.parametrize("name", gen.TORCH_MODELS)
def test_onnxruntime_optimized_graph_imports_with_the_same_integers(name, tmp_path):
    """The graph onnxruntime actually runs (its fusions written out: QLinearConv, QGemm, QLinearAdd,
    QLinearGlobalAveragePool) imports as QOperator and gives the same integers: the importer reads the
    engine's fusion decisions when given the optimized model."""
    model = quantized(name, True)
    q_outputs = [n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    opt = tmp_path / "optimized.onnx"
    session(with_outputs(model, q_outputs), ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, str(opt))
    optimized = onnx.load(str(opt))
    assert any(n.op_type == "QLinearConv" for n in optimized.graph.node)
    x = input_batch(model)
    ref = run_ort(optimized, x, q_outputs, LEVELS["disable_all"])
    g, res = hwsim_integers(optimized, x, names=q_outputs)
    present = [t for t in q_outputs if t in g.metadata["onnx_tensors"]]
    assert len(present) == len(q_outputs)
    assert compare(g, res, ref, present) == []


def test_integer_model_input_is_fed_as_its_dequantized_value():
    """Contract: a model taking uint8 codes gets the engine q and hwsim (q − zp)·s; the integers agree."""
    model = onnx.ModelProto()
    model.CopyFrom(quantized("resnet_style", True))
    g = model.graph
    q_in = next(n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] == g.input[0].name)
    scale = onnx.numpy_helper.to_array(next(t for t in g.initializer if t.name == q_in.input[1]))
    zp = onnx.numpy_helper.to_array(next(t for t in g.initializer if t.name == q_in.input[2]))
    g.node.remove(q_in)
    g.input[0].name = q_in.output[0]
    g.input[0].type.tensor_type.elem_type = onnx.TensorProto.UINT8
    q_outputs = [n.output[0] for n in g.node if n.op_type == "QuantizeLinear"]
    codes = np.random.default_rng(9).integers(0, 256, (2, 3, 16, 16)).astype(np.uint8)
    ref = run_ort(model, codes, q_outputs, LEVELS["disable_all"])
    imported = import_onnx(model)
    assert imported.inputs[0].dtype == "float32"
    assert imported.quant[imported.inputs[0].name].zero_point[0] == zp
    x = ((codes.astype(np.float32) - np.float32(zp)) * np.float32(scale)).transpose(0, 2, 3, 1)
    res = simulate(quantize_for_target(imported, load_target("intel_int8")), x, keep_intermediates=True)
    assert np.array_equal(res.integers[imported.inputs[0].name], codes.transpose(0, 2, 3, 1))
    assert compare(imported, res, ref, q_outputs) == []


@pytest.mark.parametrize("level", list(LEVELS))
@pytest.mark.parametrize("name", gen.TORCH_MODELS)
def test_qdq_with_kept_activations(name, level):
    """QDQKeepRemovableActivations keeps Relu/Clip between their own Q/DQ pairs (same parameters as the
    Conv's output). hwsim fuses Conv+ReLU/ReLU6 as the target says, so the Conv's own codes are not
    materialised; every other QuantizeLinear output is compared, and the missing ones must be exactly the
    outputs of Convs whose activation was fused."""
    model = gen.quantize(float_model(name), per_channel=True,
                         extra_options={"QDQKeepRemovableActivations": True})
    kinds = Counter(n.op_type for n in model.graph.node)
    assert kinds["Relu"] + kinds["Clip"] >= 2
    q_outputs = [n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    x = input_batch(model)
    ref = run_ort(model, x, q_outputs, LEVELS[level])
    g, res = hwsim_integers(model, x, names=q_outputs)
    present = [t for t in q_outputs if g.metadata["onnx_tensors"][t][0] in res.integers]
    fused_away = {p.node.outputs[0] for p in quantize_for_target(g, load_target("intel_int8")).plans
                  if p.fused_activation is not None}
    assert {g.metadata["onnx_tensors"][t][0] for t in q_outputs if t not in present} == fused_away
    assert compare(g, res, ref, present) == []


def int4_weight_qdq_model(per_channel: bool) -> onnx.ModelProto:
    """x → Q(u8) → DQ → Conv(DQ(int4 weights), DQ(int32 bias)) → Q(u8): opset 21 sub-byte weights."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(4)
    w = rng.integers(-8, 8, (6, 3, 3, 3)).astype(np.int8)
    w_scale = (rng.uniform(0.01, 0.03, 6) if per_channel else np.array(0.02)).astype(np.float32)
    x_scale, y_scale = np.float32(0.02), np.float32(0.05)
    bias = rng.integers(-500, 500, 6).astype(np.int32)
    inits = [
        helper.make_tensor("w_q", TensorProto.INT4, w.shape, w.ravel().tolist()),
        numpy_helper.from_array(w_scale, "w_scale"),
        helper.make_tensor("w_zp", TensorProto.INT4, w_scale.shape, [0] * w_scale.size),
        numpy_helper.from_array(bias, "b_q"),
        numpy_helper.from_array((x_scale * w_scale).astype(np.float32).reshape(w_scale.shape), "b_scale"),
        numpy_helper.from_array(np.array(x_scale), "x_scale"),
        numpy_helper.from_array(np.array(128, np.uint8), "x_zp"),
        numpy_helper.from_array(np.array(y_scale), "y_scale"),
        numpy_helper.from_array(np.array(120, np.uint8), "y_zp"),
    ]
    axis = {"axis": 0} if per_channel else {}
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["x_q"]),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zp"], ["x_dq"]),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], **axis),
        helper.make_node("DequantizeLinear", ["b_q", "b_scale"], ["b"], **axis),
        helper.make_node("Conv", ["x_dq", "w", "b"], ["y"], pads=[1, 1, 1, 1]),
        helper.make_node("QuantizeLinear", ["y", "y_scale", "y_zp"], ["y_q"]),
    ]
    graph = helper.make_graph(nodes, "int4_conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                  [2, 3, 8, 8])],
                              [helper.make_tensor_value_info("y_q", TensorProto.UINT8, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return model


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
def test_int4_weights_import_as_4_bit_values_and_match(per_channel):
    model = int4_weight_qdq_model(per_channel)
    g = import_onnx(model)
    conv = g.nodes[0]
    spec = g.quant[conv.inputs[1]]
    assert spec.bits == 4 and spec.signed and g.params[conv.inputs[1]].dtype == np.int8
    assert (spec.axis == 0) == per_channel
    x = np.random.default_rng(5).standard_normal((2, 3, 8, 8)).astype(np.float32)
    ref = run_ort(model, x, ["x_q", "y_q"], LEVELS["disable_all"])
    res = simulate(quantize_for_target(g, load_target("intel_int8")), x.transpose(0, 2, 3, 1))
    assert compare(g, res, ref, ["x_q", "y_q"]) == []


# ------------------------------------------------------------------------------------------------------
# The model as onnxruntime loads it: nothing added to the graph. Above ORT_DISABLE_ALL onnxruntime also
# merges Q1 → DQ1 → Q2 → DQ2 chains into one quantization (DoubleQDQPairsRemover); the export_onnx model
# has one behind every Conv whose ReLU a Transpose separated from it. The importer merges them the same way.

LOADED_LEVELS = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                 "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                 "default": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


@pytest.mark.parametrize("level", list(LOADED_LEVELS))
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("name", [*gen.TORCH_MODELS, "nhwc_export"])
def test_whole_model_output_equals_onnxruntime_as_loaded(name, per_channel, level):
    model = quantized(name, per_channel)
    x = input_batch(model)
    want = session(model, LOADED_LEVELS[level]).run(None, {model.graph.input[0].name: x})[0]
    g, res = hwsim_integers(model, x)
    got = res.outputs[g.outputs[0]]
    # both outputs are DequantizeLinear of the last codes, (q − zp)·s in float32: equal floats ⇔ equal codes
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
def test_double_qdq_pairs_merge_to_onnxruntimes_parameters(per_channel, tmp_path):
    """The merged (scale, zero point) of each Conv equals the output parameters of the QLinearConv in the
    graph onnxruntime writes out after optimising (ENABLE_EXTENDED: no NCHWc layout rewrite)."""
    model = quantized("nhwc_export", per_channel)
    opt = tmp_path / "optimized.onnx"
    session(model, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, str(opt))
    optimized = onnx.load(str(opt))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in optimized.graph.initializer}
    engine = {n.name: (np.float32(inits[n.input[6]]), int(inits[n.input[7]]))
              for n in optimized.graph.node if n.op_type == "QLinearConv"}
    assert len(engine) >= 3
    merged = import_onnx(model)
    kept = import_onnx(model, merge_double_qdq=False)
    # every requantizing pair merged: a removed ReLU stays as a node with its producer's parameters (one
    # rounding, fused by the simulator; the float reference keeps the ReLU)
    relus = [n for n in merged.nodes if n.op == "ReLU"]
    assert relus and all(merged.quant[n.inputs[0]] == merged.quant[n.outputs[0]] for n in relus)
    assert sum(n.op in ("ReLU", "Reshape") for n in kept.nodes) >= 2  # ... which the ONNX semantics keep
    convs = {n.name: n.outputs[0] for n in merged.nodes if n.op in ("Conv2D", "DepthwiseConv2D")}
    assert all(p.fused_activation is not None for p in quantize_for_target(merged, load_target("intel_int8")).plans
               if p.node.op == "Conv2D" and p.node.outputs[0] in {r.inputs[0] for r in relus})
    for node_name, (scale, zp) in engine.items():
        ir = next(t for name, t in convs.items() if node_name.startswith(name))
        spec = merged.quant[ir]
        assert (np.float32(spec.scale[0]), int(spec.zero_point[0])) == (scale, zp), node_name
