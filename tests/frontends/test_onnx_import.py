"""import_onnx: float ONNX models become float hwsim graphs that compute what onnxruntime computes.

Specification:

- Float models (the zoo's models written by export_onnx, small torch modules exported by torch.onnx.export,
  and hand-written ONNX graphs covering every supported operator) import into a graph whose float reference
  (run_float) matches onnxruntime (graph optimisations disabled) within 1e-5 relative error
  (max |hwsim − ort| / max |ort|) on every graph output.
- Layout is converted once at the edge: an NCHW model has an NHWC IR input and no Transpose at the start;
  the Transposes export_onnx writes around channel-first ops vanish (the zoo models come back with the same
  op multiset); a Flatten of an NCHW map larger than 1×1 gets an explicit Transpose back to NCHW order.
- QDQ and QOperator models import as pre-quantized graphs per /work/coord/prequant-contract.md (int8 OHWI
  weights with per-channel axis 0, int32 biases with the stored scale, QuantSpecs named after the tensors
  that hold the integers).
- Bad input raises hwsim errors naming the file/node: unsupported operators all listed in one error, corrupt
  or truncated files, missing external data, dynamic shapes without input_shapes, unknown opsets, a missing
  onnx package.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.emulate.float_ref import run_float
from hwsim.errors import GraphError, MissingExtraError, ModelFormatError
from hwsim.frontends.onnx_export import export_onnx
from hwsim.frontends.onnx_import import import_onnx
from hwsim.graph import load_model, save_model
from hwsim.zoo import build_model

_TOOLS = Path(__file__).resolve().parents[2] / "tools" / "gen_onnx_models.py"
_spec = importlib.util.spec_from_file_location("gen_onnx_models", _TOOLS)
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

TOLERANCE = 1e-5


def ort_outputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(names, feeds)))


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    scale = float(np.max(np.abs(theirs)))
    diff = float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64))))
    return diff / scale if scale > 0 else diff


def check_float(model: onnx.ModelProto, feeds: dict[str, np.ndarray], **kw) -> dict[str, float]:
    """Import ``model``, run both, return the relative error per ONNX graph output."""
    g = import_onnx(model, **kw)
    assert not g.quant
    theirs = ort_outputs(model, feeds)
    nchw = set(g.metadata.get("onnx_nchw_inputs", []))
    ours_in = {k: (v.transpose(0, 2, 3, 1) if k in nchw else v) for k, v in feeds.items()}
    ours = run_float(g, ours_in)
    errors = {}
    for name in [o.name for o in model.graph.output]:
        ir, perm = g.metadata["onnx_tensors"][name]
        ref = theirs[name] if perm is None else theirs[name].transpose(perm)
        assert ours[ir].shape == ref.shape, (name, ours[ir].shape, ref.shape)
        errors[name] = relative_error(ours[ir], ref)
    return errors


# ----------------------------------------------------------------------------------------------------
# Float models against onnxruntime


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["lenet5", "mobilenetv2", "googlenet", "resnet50", "transformer_tiny"])
def test_zoo_models_round_trip_through_export_onnx(name):
    graph = build_model(name, seed=0)
    model = export_onnx(graph)
    g = import_onnx(model)
    # the exporter's layout Transposes vanish: same ops, same parameter count (sharing kept)
    assert Counter(n.op for n in g.nodes) == Counter(n.op for n in graph.nodes)
    assert g.param_count() == graph.param_count()
    assert g.inputs[0].shape == graph.inputs[0].shape and not g.metadata.get("onnx_nchw_inputs")
    x = np.random.default_rng(0).standard_normal((1, *graph.inputs[0].shape[1:])).astype(np.float32)
    errors = check_float(model, {graph.inputs[0].name: x})
    assert max(errors.values()) <= TOLERANCE, errors


@pytest.mark.oracle
@pytest.mark.parametrize("name", gen.ALL_TORCH_MODELS)
def test_torch_exported_models_match_onnxruntime(name):
    model = gen.torch_model(name)
    x = gen.images(5, 2, gen.INPUT_SHAPES.get(name, gen.IMAGE))  # batch 2 through the symbolic batch
    errors = check_float(model, {"input": x})
    assert max(errors.values()) <= TOLERANCE, errors


def test_erf_gelu_pattern_and_transposed_matmul_operand():
    g = import_onnx(gen.torch_model("transformer_block"))
    ops = Counter(n.op for n in g.nodes)
    assert ops["GELU"] == 1 and ops["Transpose"] == 0 and ops["Dense"] == 4 and ops["LayerNorm"] == 1
    assert [n.attrs["transpose_b"] for n in g.nodes if n.op == "MatMul"] == [True, False]


def test_nchw_input_becomes_nhwc_without_a_leading_transpose():
    g = import_onnx(gen.torch_model("resnet_style"))
    assert g.inputs[0].shape == (1, 16, 16, 3)
    assert g.metadata["onnx_nchw_inputs"] == ["input"]
    assert g.nodes[0].op == "Conv2D" and g.nodes[0].inputs[0] == "input"
    assert not any(n.op == "Transpose" for n in g.nodes)
    # the head (GlobalAveragePool → Flatten of a 1×1 map) flattens the NHWC tensor directly
    assert [n.op for n in g.nodes[-3:]] == ["GlobalAvgPool", "Flatten", "Dense"]


def test_flatten_of_an_nchw_map_restores_nchw_order_first():
    g = import_onnx(gen.torch_model("small_convnet"))
    ops = [n.op for n in g.nodes]
    i = ops.index("Flatten")
    assert ops[i - 1] == "Transpose" and g.nodes[i - 1].attrs["perm"] == [0, 3, 1, 2]
    assert ops.count("Transpose") == 1


def _model(nodes, inputs, outputs, inits=(), opset=17, name="handmade"):
    graph = helper.make_graph(nodes, name, inputs, outputs,
                              initializer=[numpy_helper.from_array(np.asarray(a), k) for k, a in inits])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _f(*shape, seed=0, scale=0.5):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def image_ops_model() -> onnx.ModelProto:
    """NCHW [2, 4, 8, 8]: most channel-first and elementwise operators, with constant shape arithmetic."""
    X = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 8, 8])
    Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    Z = helper.make_tensor_value_info("z", TensorProto.FLOAT, None)
    inits = [("w1", _f(8, 4, 3, 3)), ("b1", _f(8)), ("w2", _f(8, 1, 3, 3, seed=1)),
             ("gamma", np.abs(_f(8, seed=2)) + 0.5), ("beta", _f(8, seed=3)), ("mean", _f(8, seed=4)),
             ("var", np.abs(_f(8, seed=5)) + 0.5), ("lo", np.array(0, np.float32)),
             ("hi", np.array(6, np.float32)),
             ("cbias", _f(1, 8, 1, 1, seed=6)), ("csub", np.array(0.25, np.float32)),
             ("cdiv", _f(8, 1, 1, seed=7) + 2), ("pads", np.array([0, 0, 1, 2, 0, 0, 1, 0], np.int64)),
             ("pval", np.array(0.5, np.float32)), ("wg", _f(16, 5, seed=8)), ("bg", _f(5, seed=9)),
             ("axes", np.array([2, 3], np.int64)), ("zero", np.array([0], np.int64)),
             ("minus1", np.array([-1], np.int64))]
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], auto_pad="SAME_UPPER", strides=[2, 1], name="conv_same"),
        n("BatchNormalization", ["c1", "gamma", "beta", "mean", "var"], ["bn"], epsilon=1e-3, name="bn"),
        n("Clip", ["bn", "lo", "hi"], ["r6"], name="relu6"),
        n("Conv", ["r6", "w2"], ["dw"], group=8, pads=[1, 1, 1, 1], name="depthwise"),
        n("LeakyRelu", ["dw"], ["lr"], alpha=0.2, name="leaky"),
        n("HardSigmoid", ["lr"], ["hs"], name="hsig"),
        n("HardSwish", ["dw"], ["hw"], name="hswish"),
        n("Sigmoid", ["hw"], ["sg"], name="sigmoid"),
        n("Mul", ["hw", "sg"], ["silu"], name="silu"),
        n("Add", ["silu", "cbias"], ["ab"], name="add_bias"),
        n("Sub", ["ab", "csub"], ["sb"], name="sub"),
        n("Div", ["sb", "cdiv"], ["dv"], name="div"),
        n("Tanh", ["hs"], ["th"], name="tanh"),
        n("Concat", ["dv", "th"], ["cat"], axis=1, name="concat"),
        n("Pad", ["cat", "pads", "pval"], ["pd"], mode="constant", name="pad"),
        n("AveragePool", ["pd"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1,
          name="avgpool"),
        n("MaxPool", ["ap"], ["mp"], kernel_shape=[2, 2], strides=[2, 2], name="maxpool"),
        n("Relu", ["mp"], ["rl"], name="relu"),
        n("Selu", ["rl"], ["se"], name="selu"),
        n("Mish", ["se"], ["mi"], name="mish"),
        n("Identity", ["mi"], ["id"], name="identity"),
        n("ReduceMean", ["id", "axes"], ["rm"], keepdims=0, name="reduce_mean"),
        n("GlobalAveragePool", ["id"], ["gap"], name="gap"),
        n("Shape", ["gap"], ["shp"], name="shape"),
        n("Gather", ["shp", "zero"], ["n0"], axis=0, name="gather"),
        n("Concat", ["n0", "minus1"], ["tshape"], axis=0, name="shape_concat"),
        n("Reshape", ["gap", "tshape"], ["flat"], name="reshape"),
        n("Gemm", ["flat", "wg", "bg"], ["y"], alpha=0.5, beta=2.0, name="gemm"),
        n("Softmax", ["rm"], ["z"], axis=1, name="softmax"),
    ]
    return _model(nodes, [X], [Y, Z], inits, opset=18)


def sequence_ops_model() -> onnx.ModelProto:
    """[2, 6, 8] tokens: MatMul(+Add) → Dense, LayerNormalization, Gelu, Transpose, Softmax, MatMul, ..."""
    X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6, 8])
    Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [("wq", _f(8, 8)), ("bq", _f(8, seed=1)), ("ln_g", np.abs(_f(8, seed=2)) + 0.5),
             ("ln_b", _f(8, seed=3)), ("shape4", np.array([2, 6, 2, 4], np.int64)),
             ("shape3", np.array([0, 6, 8], np.int64)), ("unsq", np.array([1], np.int64))]
    n = helper.make_node
    nodes = [
        n("MatMul", ["x", "wq"], ["mm"], name="proj"),
        n("Add", ["mm", "bq"], ["q"], name="proj_bias"),
        n("LayerNormalization", ["q", "ln_g", "ln_b"], ["ln"], axis=-1, epsilon=1e-5, name="ln"),
        n("Gelu", ["ln"], ["ge"], name="gelu"),
        n("Reshape", ["ge", "shape4"], ["heads"], name="split_heads"),
        n("Transpose", ["heads"], ["ht"], perm=[0, 2, 1, 3], name="heads_first"),
        n("Transpose", ["ht"], ["htt"], perm=[0, 1, 3, 2], name="keys"),
        n("MatMul", ["ht", "htt"], ["att"], name="scores"),
        n("Softmax", ["att"], ["p"], axis=-1, name="softmax"),
        n("MatMul", ["p", "ht"], ["ctx"], name="context"),
        n("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3], name="merge"),
        n("Reshape", ["ctx_t", "shape3"], ["merged"], name="merge_heads"),
        n("Unsqueeze", ["merged", "unsq"], ["u"], name="unsqueeze"),
        n("Squeeze", ["u", "unsq"], ["s"], name="squeeze"),
        n("Dropout", ["s"], ["d"], name="dropout"),
        n("Add", ["d", "x"], ["y"], name="residual"),
    ]
    return _model(nodes, [X], [Y], inits, opset=20)


@pytest.mark.oracle
def test_image_operators_match_onnxruntime():
    model = image_ops_model()
    errors = check_float(model, {"x": _f(2, 4, 8, 8, seed=11, scale=1.0)})
    assert max(errors.values()) <= TOLERANCE, errors
    ops = Counter(n.op for n in import_onnx(model).nodes)
    assert ops["ReLU6"] == 1 and ops["Transpose"] == 0 and ops["GlobalAvgPool"] == 2


@pytest.mark.oracle
def test_sequence_operators_match_onnxruntime():
    model = sequence_ops_model()
    g = import_onnx(model)
    assert Counter(n.op for n in g.nodes)["Dense"] == 1  # MatMul + Add(bias) → Dense with bias
    errors = check_float(model, {"x": _f(2, 6, 8, seed=12, scale=1.0)})
    assert max(errors.values()) <= TOLERANCE, errors


def test_imported_graph_survives_the_model_file(tmp_path):
    for model in (gen.torch_model("mobilenetv2_style"), gen.quantize(gen.torch_model("small_convnet"),
                                                                      per_channel=True)):
        g = import_onnx(model)
        save_model(g, tmp_path / "m.npz")
        back = load_model(tmp_path / "m.npz")
        assert [n.op for n in back.nodes] == [n.op for n in g.nodes]
        assert back.quant.keys() == g.quant.keys()
        assert all(np.array_equal(back.params[k], v) and back.params[k].dtype == v.dtype
                   for k, v in g.params.items())


def test_path_bytes_and_modelproto_give_the_same_graph(tmp_path):
    model = gen.torch_model("small_convnet")
    path = tmp_path / "small_convnet.onnx"
    onnx.save(model, str(path))
    a, b, c = import_onnx(path), import_onnx(path.read_bytes()), import_onnx(model)
    assert a.name == "small_convnet"
    assert [n.op for n in a.nodes] == [n.op for n in b.nodes] == [n.op for n in c.nodes]


# ----------------------------------------------------------------------------------------------------
# Quantized models: structure of the pre-quantized IR


def test_qdq_weights_biases_and_activation_specs():
    model = gen.quantize(gen.torch_model("resnet_style"), per_channel=True)
    g = import_onnx(model)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    conv = g.nodes[0]
    assert conv.op == "Conv2D"
    w = g.params[conv.inputs[1]]
    w_spec = g.quant[conv.inputs[1]]
    src = conv.inputs[1].removesuffix(".ohwi")
    assert w.dtype == np.int8 and np.array_equal(w, inits[src].transpose(0, 2, 3, 1))  # OIHW → OHWI
    assert w_spec.axis == 0 and w_spec.scale.shape == (w.shape[0],) and not w_spec.zero_point.any()
    b_spec = g.quant[conv.inputs[2]]
    assert g.params[conv.inputs[2]].dtype == np.int32 and b_spec.bits == 32
    # the bias scale is the one stored in the model: x_s · w_s[c]
    x_s = g.quant["input"].scale[0]
    np.testing.assert_allclose(b_spec.scale, x_s * w_spec.scale, rtol=1e-6)
    # activations: the IR tensor is named after the QuantizeLinear output that holds the integers
    q_out = [nd.output[0] for nd in model.graph.node if nd.op_type == "QuantizeLinear"]
    assert conv.outputs[0] in q_out and g.quant[conv.outputs[0]].bits == 8
    assert not g.quant[conv.outputs[0]].signed
    assert g.metadata["prequantized"] is True
    assert g.quant["input"].zero_point.dtype.kind == "i"


def test_qoperator_model_imports_with_the_same_structure_as_qdq():
    qdq = import_onnx(gen.quantize(gen.torch_model("mobilenetv2_style"), per_channel=False))
    qop = import_onnx(gen.quantize(gen.torch_model("mobilenetv2_style"), per_channel=False, fmt="qop"))
    assert [n.op for n in qop.nodes] == [n.op for n in qdq.nodes]
    # which weighted ops were written as DequantizeLinear → float op → QuantizeLinear (QDQ) is recorded
    assert len(qdq.metadata["onnx_qdq_weighted_nodes"]) == sum(n.op in ("Conv2D", "Dense") for n in qdq.nodes)
    assert "onnx_qdq_weighted_nodes" not in qop.metadata
    depthwise = [n for n in qop.nodes if n.op == "Conv2D" and n.attrs["groups"] > 1]
    assert depthwise and all(qop.params[n.inputs[1]].shape[-1] == 1 for n in depthwise)
    for a, b in zip(qdq.nodes, qop.nodes):
        if a.op == "Conv2D":
            assert np.array_equal(qdq.params[a.inputs[1]], qop.params[b.inputs[1]])
            assert np.array_equal(qdq.params[a.inputs[2]], qop.params[b.inputs[2]])


# ----------------------------------------------------------------------------------------------------
# Bad input


def test_unsupported_operators_are_all_listed_in_one_error():
    X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Erf", ["x"], ["a"], name="erf_here"),
             helper.make_node("Relu", ["a"], ["b"], name="fine"),
             helper.make_node("Cos", ["b"], ["y"], name="cos_there")]
    with pytest.raises(GraphError) as e:
        import_onnx(_model(nodes, [X], [Y]))
    msg = str(e.value)
    assert "'erf_here' (Erf)" in msg and "'cos_there' (Cos)" in msg and "fine" not in msg


def test_unconvertible_attributes_are_reported_with_the_node_name():
    X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    inits = [("lo", np.array(-1, np.float32)), ("hi", np.array(1, np.float32))]
    nodes = [helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clip_pm1")]
    with pytest.raises(GraphError, match=r"clip_pm1.*Clip\(-1.0, 1.0\)"):
        import_onnx(_model(nodes, [X], [Y], inits))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_files_raise_model_format_error(tmp_path, damage):
    data = gen.torch_model("small_convnet").SerializeToString()
    path = tmp_path / "bad.onnx"
    path.write_bytes({"truncated": data[: len(data) // 3], "garbage": b"\x08\xff\xff\xff" * 50,
                      "empty": b""}[damage])
    with pytest.raises(ModelFormatError, match="bad.onnx"):
        import_onnx(path)


def test_missing_file_and_missing_external_data(tmp_path):
    with pytest.raises(ModelFormatError, match="no such file"):
        import_onnx(tmp_path / "nothere.onnx")
    model = gen.torch_model("resnet_style")
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="ext.data",
              size_threshold=0)
    assert import_onnx(path).param_count() > 0
    (tmp_path / "ext.data").unlink()
    with pytest.raises(ModelFormatError, match="ext.data.*missing|missing.*ext.data"):
        import_onnx(path)


def test_dynamic_shapes_need_input_shapes():
    X = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])
    Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])]
    model = _model(nodes, [X], [Y], [("w", _f(4, 3, 3, 3))])
    with pytest.raises(GraphError, match=r"dynamic dimension.*h, w.*--input-shape x=1,3,h,w"):
        import_onnx(model)
    assert import_onnx(model, input_shapes={"x": (1, 3, 10, 12)}).inputs[0].shape == (1, 10, 12, 3)
    # the NHWC form is accepted for an NCHW input when the NCHW reading does not fit
    assert import_onnx(model, input_shapes={"x": "2,10,12,3"}).inputs[0].shape == (2, 10, 12, 3)
    with pytest.raises(GraphError, match="unknown input"):
        import_onnx(model, input_shapes={"y": (1, 3, 4, 4)})


def test_unknown_opset_is_a_model_format_error():
    model = gen.torch_model("small_convnet")
    model.opset_import[0].version = 99
    with pytest.raises(ModelFormatError, match="opset 99"):
        import_onnx(model)


def test_missing_onnx_package_says_which_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'hwsim\[onnx\]'"):
        import_onnx(b"whatever")


def test_damaged_bytes_never_leak_other_exceptions():
    """Truncations and byte flips of real models: each import succeeds or raises an hwsim error."""
    from hwsim.errors import HwsimError

    rng = np.random.default_rng(1)
    data = gen.quantize(gen.torch_model("resnet_style"), per_channel=True).SerializeToString()
    for i in range(60):
        b = bytearray(data)
        if i % 2:
            b = b[: int(rng.integers(0, len(b)))]
        else:
            for _ in range(int(rng.integers(1, 20))):
                b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        try:
            import_onnx(bytes(b))
        except HwsimError:
            pass


def test_nchw_graph_output_stays_nhwc_and_is_recorded():
    X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])
    Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])
    model = _model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                    helper.make_node("Relu", ["c"], ["y"])], [X], [Y], [("w", _f(4, 3, 3, 3))])
    g = import_onnx(model)
    assert g.outputs == ["y"] and g.tensors["y"].shape == (1, 6, 6, 4)
    assert g.metadata["onnx_nchw_outputs"] == {"y": "NHWC (ONNX NCHW)"}
    assert g.metadata["onnx_tensors"]["y"] == ["y", [0, 2, 3, 1]]
    errors = check_float(model, {"x": _f(1, 3, 6, 6, seed=3)})
    assert errors["y"] <= TOLERANCE


@pytest.mark.oracle
def test_a_constant_used_twice_with_different_transforms_is_not_shared_wrongly():
    X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Sub", ["x", "c"], ["a"]), helper.make_node("Add", ["a", "c"], ["b"]),
             helper.make_node("Div", ["b", "c"], ["d"]),
             helper.make_node("Gemm", ["d", "w"], ["e"], alpha=2.0),
             helper.make_node("Gemm", ["e", "w"], ["y"], beta=3.0)]
    model = _model(nodes, [X], [Y], [("c", _f(4) + 3), ("w", _f(4, 4, seed=1))])
    errors = check_float(model, {"x": _f(2, 4, seed=2)})
    assert errors["y"] <= TOLERANCE
