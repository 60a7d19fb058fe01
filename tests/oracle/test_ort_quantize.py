"""onnxruntime oracle: QuantizeLinear (ties, int8/uint8/int4, per-tensor, per-axis, blocked),
DequantizeLinear and com.microsoft QLinearAdd against hwsim's quantize/dequantize/add_float_scale.
Models are built in memory with onnx.helper."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from edge_values import ties
from onnx import TensorProto, helper

from hwsim import _core, numerics

pytestmark = pytest.mark.oracle

ONNX_DTYPE = {np.int8: TensorProto.INT8, np.uint8: TensorProto.UINT8, np.int16: TensorProto.INT16}


def _run(nodes, inputs, outputs, feeds, initializers=(), opset=21, domains=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 10
    onnx.checker.check_model(model)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def _ort_quantize(x, scale, zp, axis=None, block_size=None, opset=21):
    attrs = {}
    if axis is not None:
        attrs["axis"] = axis
    if block_size is not None:
        attrs["block_size"] = block_size
    zp = np.asarray(zp)
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], **attrs)
    inits = [onnx.numpy_helper.from_array(np.asarray(scale, np.float32), "s"),
             onnx.numpy_helper.from_array(zp, "z")]
    out_type = onnx.helper.np_dtype_to_tensor_dtype(zp.dtype)
    return _run([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                [helper.make_tensor_value_info("y", out_type, list(x.shape))], {"x": x}, inits, opset)


def _inputs(rng, shape, scale):
    x = (rng.normal(0, 70, shape) * scale).astype(np.float32)
    t = (ties(0, 40) * scale).astype(np.float32)  # RNE ties (dyadic scale) plus out-of-range values
    flat = x.ravel()
    flat[: min(flat.size, t.size)] = t[: min(flat.size, t.size)]
    flat[-4:] = [1e6, -1e6, 200 * scale, -300 * scale]
    return x


@pytest.mark.parametrize("dtype,zp", [(np.int8, 0), (np.int8, -7), (np.uint8, 128), (np.uint8, 3), (np.int16, 11)])
@pytest.mark.parametrize("scale", [0.0625, 0.0123, 0.00214854861, 3.0])
def test_quantize_linear_per_tensor(dtype, zp, scale, rng):
    x = _inputs(rng, (512,), scale)
    want = _ort_quantize(x, scale, np.array(zp, dtype))
    info = np.iinfo(dtype)
    got = numerics.quantize_preset(x, "onnxruntime", scale, zp, int(info.min), int(info.max), out_dtype=dtype)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_quantize_linear_per_axis(axis, dtype, rng):
    x = _inputs(rng, (4, 6, 5), 0.03)
    D = x.shape[axis]
    scale = rng.uniform(0.005, 0.1, D).astype(np.float32)
    scale[0] = 0.03125  # exact ties on this channel
    info = np.iinfo(dtype)
    zp = rng.integers(info.min // 2 + 64 * (dtype == np.uint8), info.max // 2, D).astype(dtype)
    want = _ort_quantize(x, scale, zp, axis=axis)
    got = _core.quantize(x, scale, zp, int(info.min), int(info.max), axis=axis, out_dtype=dtype)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("block_size", [2, 4, 6])
def test_quantize_linear_blocked(block_size, rng):
    """opset 21 blocked quantization: scale has x's shape with the axis shrunk to ceil(D / block)."""
    x = _inputs(rng, (3, 12), 0.02)
    n_blocks = -(-12 // block_size)
    scale = rng.uniform(0.005, 0.05, (3, n_blocks)).astype(np.float32)
    zp = rng.integers(-20, 20, (3, n_blocks)).astype(np.int8)
    want = _ort_quantize(x, scale, zp, axis=1, block_size=block_size)
    got = _core.quantize(x, scale, zp, -128, 127, axis=1, group_size=block_size, out_dtype=np.int8)
    np.testing.assert_array_equal(got, want)


def test_quantize_linear_int4_saturates_to_minus8_7(rng):
    """onnxruntime int4 QuantizeLinear saturates to [-8, 7] (numerics.md B.5)."""
    x = _inputs(rng, (64,), 0.25)
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    inits = [onnx.numpy_helper.from_array(np.array(0.25, np.float32), "s"),
             helper.make_tensor("z", TensorProto.INT4, [], [0])]
    q = helper.make_node("DequantizeLinear", ["y", "s", "z"], ["d"])
    out = _run([node, q], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64])],
               [helper.make_tensor_value_info("d", TensorProto.FLOAT, [64])], {"x": x}, inits)
    got = _core.quantize(x, 0.25, 0, -8, 7)
    np.testing.assert_array_equal(got.astype(np.float32) * np.float32(0.25), out)


@pytest.mark.parametrize("dtype,zp", [(np.int8, -3), (np.uint8, 131), (np.int32, 0)])
@pytest.mark.parametrize("per_axis", [False, True])
def test_dequantize_linear(dtype, zp, per_axis, rng):
    info = np.iinfo(dtype)
    q = rng.integers(max(info.min, -5000), min(info.max, 5000), (6, 7), endpoint=True).astype(dtype)
    if per_axis:
        scale = rng.uniform(1e-3, 1.0, 7).astype(np.float32)
        zps = np.full(7, zp, dtype)
        attrs = {"axis": 1}
    else:
        scale = np.array(0.0173, np.float32)
        zps = np.array(zp, dtype)
        attrs = {}
    node = helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], **attrs)
    inits = [onnx.numpy_helper.from_array(scale, "s"), onnx.numpy_helper.from_array(zps, "z")]
    want = _run([node], [helper.make_tensor_value_info("q", onnx.helper.np_dtype_to_tensor_dtype(q.dtype), [6, 7])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6, 7])], {"q": q}, inits)
    got = _core.dequantize(q, scale, zps, axis=1 if per_axis else None)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("scales,zero_points", [
    ((0.0231, 0.0117, 0.0302), (1, -3, 0)),
    ((0.05, 0.05, 0.1), (1, -3, 0)),
    ((0.1, 0.003, 0.02), (1, -3, 0)),
    # a MobileNetV2 residual add, where the fused multiply-add in the constant part changes 3 outputs
    ((0.04323987290263176, 0.011635249480605125, 0.041695453226566315), (-9, 6, -12)),
])
def test_qlinear_add_com_microsoft(dtype, scales, zero_points):
    """QLinearAdd (com.microsoft) over every input pair, against the float-scale add."""
    info = np.iinfo(dtype)
    v = np.arange(info.min, info.max + 1)
    a, b = (m.ravel().astype(dtype) for m in np.meshgrid(v, v, indexing="ij"))
    zp = 0 if dtype == np.int8 else 128
    sa, sb, sc = scales
    za, zb, zc = (zp + z for z in zero_points)
    node = helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["c"], domain="com.microsoft")
    inits = [onnx.numpy_helper.from_array(np.array(s, np.float32), n) for s, n in ((sa, "sa"), (sb, "sb"), (sc, "sc"))]
    inits += [onnx.numpy_helper.from_array(np.array(z, dtype), n) for z, n in ((za, "za"), (zb, "zb"), (zc, "zc"))]
    et = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    want = _run([node], [helper.make_tensor_value_info("a", et, [a.size]), helper.make_tensor_value_info("b", et, [b.size])],
                [helper.make_tensor_value_info("c", et, [a.size])], {"a": a, "b": b}, inits, domains=["com.microsoft"])
    # onnxruntime on x86 runs the MLAS AVX2 fma form, not the scalar formula (which differs by 1 on ties).
    np.testing.assert_array_equal(_core.add_float_scale(a, b, sa, za, sb, zb, sc, zc, form="mlas_avx2"), want)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("hw", [(7, 7), (1, 1), (14, 9)])
@pytest.mark.parametrize("scales", [(0.02, 0.02), (0.0231, 0.0117), (0.1, 0.2), (0.1, 0.4), (0.5, 0.25 / 49)])
def test_qlinear_global_average_pool_com_microsoft(dtype, hw, scales, rng):
    """QLinearGlobalAveragePool (com.microsoft, channels last) against hwsim's intel_int8 kernel."""
    from hwsim.emulate.op_kernels import ort_qlinear_global_avg_pool

    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, (2, *hw, 19), endpoint=True).astype(dtype)
    x[0, ..., 0] = info.max  # saturating channels at both ends
    x[1, ..., 1] = info.min
    (sx, sy), (zx, zy) = scales, ((0, 3) if dtype == np.int8 else (128, 121))
    node = helper.make_node("QLinearGlobalAveragePool", ["x", "sx", "zx", "sy", "zy"], ["y"],
                            domain="com.microsoft", channels_last=1)
    inits = [onnx.numpy_helper.from_array(np.array(s, np.float32), n) for s, n in ((sx, "sx"), (sy, "sy"))]
    inits += [onnx.numpy_helper.from_array(np.array(z, dtype), n) for z, n in ((zx, "zx"), (zy, "zy"))]
    et = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    want = _run([node], [helper.make_tensor_value_info("x", et, list(x.shape))],
                [helper.make_tensor_value_info("y", et, [2, 1, 1, 19])], {"x": x}, inits,
                domains=["com.microsoft"])
    got = ort_qlinear_global_avg_pool(x, sx, zx, sy, zy, int(info.min), int(info.max))
    np.testing.assert_array_equal(got, want)
