"""onnxruntime is the oracle for hwsim's integer GEMM/conv and its MLAS float requantization.

Every case builds a one-node ONNX model, runs it on onnxruntime's CPU provider with graph optimisations
disabled (``SessionOptions.graph_optimization_level = ORT_DISABLE_ALL``) and compares integers:

- MatMulInteger / ConvInteger must equal ``hwsim._core.gemm_s32`` / ``conv2d_s32`` exactly (int32).
- QLinearMatMul / QLinearConv must equal hwsim's int32 accumulator followed by
  ``hwsim.numerics.requantize_float_preset(..., "onnxruntime_mlas", ...)`` (numerics.md B.5): per-channel scale
  ``float32(float32(x_s · w_s) / y_s)`` computed left to right in float32, ``v = float32(acc + bias)·scale``,
  clamped in float to ``[qmin − zp, qmax − zp]``, rounded half to even, ``+ zp``.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from edge_values import int_type_range, integer_edge_values
from onnx import TensorProto, helper

import hwsim._core as core
from hwsim import numerics

pytestmark = pytest.mark.oracle

OPSET = 21
ONNX_TYPE = {np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int8): TensorProto.INT8}


def _run(node: onnx.NodeProto, inputs: dict[str, np.ndarray], out_type: int) -> np.ndarray:
    """Runs one node on onnxruntime with every graph optimisation off (so no fusion changes the kernel)."""
    vis = [
        helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
        for name, v in inputs.items()
    ]
    graph = helper.make_graph([node], "oracle", vis, [helper.make_tensor_value_info("y", out_type, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, inputs)[0]


def _values(rng, shape, dtype, edge=False):
    lo, hi = int_type_range(8, np.dtype(dtype) == np.int8)
    if edge:
        return rng.choice(integer_edge_values(lo, hi, random_count=0), size=shape).astype(dtype)
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)


def _mlas_scale(x_scale: np.float32, w_scale: np.ndarray, y_scale: np.float32) -> np.ndarray:
    """MLAS's output scale per channel: (x_s · w_s) / y_s, each step rounded to float32, left to right."""
    return numerics.onnxruntime_output_scale(x_scale, w_scale, y_scale)


def _mlas_requantize(acc, scale, y_zp, dtype, bias=None):
    qmin, qmax = int_type_range(8, np.dtype(dtype) == np.int8)
    return numerics.requantize_float_preset(
        acc, "onnxruntime_mlas", np.atleast_1d(scale).astype(np.float64), int(y_zp), qmin, qmax, bias=bias,
        out_dtype=np.dtype(dtype),
    )


# --- MatMulInteger ----------------------------------------------------------------------------------------

GEMM_SHAPES = [(1, 1, 1), (3, 7, 5), (16, 33, 9), (5, 256, 17), (64, 300, 40)]


@pytest.mark.parametrize("a_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize(("m", "k", "n"), GEMM_SHAPES)
@pytest.mark.parametrize("per_column_zp", [False, True])
def test_matmul_integer_equals_gemm_s32(a_dtype, m, k, n, per_column_zp):
    rng = np.random.default_rng(m * 7919 + k * 31 + n)
    a = _values(rng, (m, k), a_dtype, edge=True)
    b = _values(rng, (k, n), np.int8, edge=True)  # ONNX MatMul: [K, N]
    a_zp = _values(rng, (), a_dtype)
    b_zp = _values(rng, (n,) if per_column_zp else (), np.int8)
    got = _run(
        helper.make_node("MatMulInteger", ["a", "b", "a_zp", "b_zp"], ["y"]),
        {"a": a, "b": b, "a_zp": a_zp, "b_zp": b_zp},
        TensorProto.INT32,
    )
    want = core.gemm_s32(
        a, np.ascontiguousarray(b.T), a_zero_point=int(a_zp), b_zero_point=np.broadcast_to(b_zp, (n,)).copy()
    )
    np.testing.assert_array_equal(want, got)


# --- ConvInteger ------------------------------------------------------------------------------------------

# (N, C, H, W, O, KH, KW, strides, dilations, pads [t, l, b, r], groups)
CONV_CASES = [
    (1, 3, 8, 8, 4, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 1),
    (2, 5, 9, 7, 6, 3, 2, (2, 1), (1, 2), (0, 1, 2, 0), 1),
    (1, 8, 10, 10, 8, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 8),  # depthwise
    (1, 8, 11, 11, 16, 3, 3, (2, 2), (1, 1), (1, 1, 1, 1), 8),  # depthwise, multiplier 2
    (1, 6, 7, 7, 9, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), 3),  # grouped 1×1
    (1, 4, 12, 12, 4, 5, 5, (3, 3), (2, 2), (3, 2, 1, 0), 2),
    (1, 64, 6, 6, 32, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 1),  # K = 576 crosses K blocks
]


def _onnx_conv_inputs(rng, case, x_dtype, edge):
    n, c, h, w, o, kh, kw, _, _, _, groups = case
    x = _values(rng, (n, c, h, w), x_dtype, edge)
    wt = _values(rng, (o, c // groups, kh, kw), np.int8, edge)
    return x, wt


def _nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _ohwi(w):
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1))


def _conv_attrs(case):
    *_, kh, kw, strides, dilations, pads, groups = case
    t, l, b, r = pads
    return dict(
        kernel_shape=[kh, kw], strides=list(strides), dilations=list(dilations), pads=[t, l, b, r], group=groups
    )


def _hwsim_conv(x_nchw, w_oihw, case, x_zp, w_zp=None):
    *_, strides, dilations, pads, groups = case
    return core.conv2d_s32(
        _nhwc(x_nchw),
        _ohwi(w_oihw),
        x_zero_point=int(x_zp),
        w_zero_point=w_zp,
        strides=strides,
        dilations=dilations,
        pads=pads,
        groups=groups,
    )


@pytest.mark.parametrize("x_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("edge", [False, True])
def test_conv_integer_equals_conv2d_s32(x_dtype, case, edge):
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    x, w = _onnx_conv_inputs(rng, case, x_dtype, edge)
    x_zp = _values(rng, (), x_dtype)
    w_zp = _values(rng, (), np.int8)
    got = _run(
        helper.make_node("ConvInteger", ["x", "w", "x_zp", "w_zp"], ["y"], **_conv_attrs(case)),
        {"x": x, "w": w, "x_zp": x_zp, "w_zp": w_zp},
        TensorProto.INT32,
    )
    want = _hwsim_conv(x, w, case, x_zp, int(w_zp))
    np.testing.assert_array_equal(want, _nhwc(got))


@pytest.mark.parametrize("x_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("case", [c for c in CONV_CASES if c[1] == c[-1]])
def test_conv_integer_depthwise_equals_depthwise_conv2d_s32(case, x_dtype):
    # groups == C is also hwsim's dedicated depthwise kernel (EXACT mode); ONNX weights [C·mult, 1, KH, KW]
    # are exactly its OHWI [C·mult, KH, KW, 1].
    rng = np.random.default_rng(5)
    x, w = _onnx_conv_inputs(rng, case, x_dtype, True)
    x_zp = _values(rng, (), x_dtype)
    w_zp = _values(rng, (), np.int8)
    got = _run(
        helper.make_node("ConvInteger", ["x", "w", "x_zp", "w_zp"], ["y"], **_conv_attrs(case)),
        {"x": x, "w": w, "x_zp": x_zp, "w_zp": w_zp},
        TensorProto.INT32,
    )
    *_, strides, dilations, pads, _ = case
    want = core.depthwise_conv2d_s32(
        _nhwc(x), _ohwi(w), strides=strides, dilations=dilations, pads=pads, x_zero_point=int(x_zp),
        w_zero_point=int(w_zp),
    )
    np.testing.assert_array_equal(want, _nhwc(got))


# --- QLinearMatMul ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("a_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("per_column", [False, True])
@pytest.mark.parametrize(("m", "k", "n"), GEMM_SHAPES[1:])
@pytest.mark.parametrize("y_scale_factor", [1.0, 1e-3])  # 1e-3: most outputs saturate
def test_qlinear_matmul_equals_gemm_plus_mlas_requantize(a_dtype, per_column, m, k, n, y_scale_factor):
    rng = np.random.default_rng(k * 13 + n)
    a = _values(rng, (m, k), a_dtype, edge=True)
    b = _values(rng, (k, n), np.int8)
    a_s = np.float32(0.02 + rng.random() * 0.01)
    a_zp = _values(rng, (), a_dtype)
    b_s = np.asarray(rng.random(n if per_column else ()) * 0.01 + 0.001, np.float32)
    b_zp = np.zeros(b_s.shape, np.int8)
    y_s = np.float32(np.sqrt(k) * 0.02 * 0.005 * 40 * y_scale_factor)
    y_zp = _values(rng, (), a_dtype)
    got = _run(
        helper.make_node(
            "QLinearMatMul", ["a", "a_s", "a_zp", "b", "b_s", "b_zp", "y_s", "y_zp"], ["y"]
        ),
        {"a": a, "a_s": np.array(a_s), "a_zp": a_zp, "b": b, "b_s": b_s, "b_zp": b_zp,
         "y_s": np.array(y_s), "y_zp": y_zp},
        ONNX_TYPE[np.dtype(a_dtype)],
    )
    acc = core.gemm_s32(a, np.ascontiguousarray(b.T), a_zero_point=int(a_zp))
    want = _mlas_requantize(acc, np.broadcast_to(_mlas_scale(a_s, b_s, y_s), (n,)), y_zp, a_dtype)
    np.testing.assert_array_equal(want, got)
    if y_scale_factor < 1:
        qmin, qmax = int_type_range(8, np.dtype(a_dtype) == np.int8)
        assert np.mean((got == qmin) | (got == qmax)) > 0.3  # the case really saturates


# --- QLinearConv ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("x_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("y_scale_factor", [1.0, 1e-2])
def test_qlinear_conv_equals_conv_plus_mlas_requantize(x_dtype, per_channel, case, y_scale_factor):
    rng = np.random.default_rng(abs(hash((case, per_channel))) % 2**32)
    x, w = _onnx_conv_inputs(rng, case, x_dtype, edge=False)
    o = w.shape[0]
    x_s = np.float32(0.01 + rng.random() * 0.05)
    x_zp = _values(rng, (), x_dtype)
    w_s = np.asarray(rng.random(o if per_channel else ()) * 0.01 + 0.001, np.float32)
    w_zp = np.zeros(w_s.shape, np.int8)
    bias = rng.integers(-20000, 20000, size=o).astype(np.int32)
    k = w[0].size
    y_s = np.float32(np.sqrt(k) * 0.03 * 0.006 * 40 * y_scale_factor)
    y_zp = _values(rng, (), x_dtype)
    got = _run(
        helper.make_node(
            "QLinearConv", ["x", "x_s", "x_zp", "w", "w_s", "w_zp", "y_s", "y_zp", "bias"], ["y"], **_conv_attrs(case)
        ),
        {"x": x, "x_s": np.array(x_s), "x_zp": x_zp, "w": w, "w_s": w_s, "w_zp": w_zp,
         "y_s": np.array(y_s), "y_zp": y_zp, "bias": bias},
        ONNX_TYPE[np.dtype(x_dtype)],
    )
    acc = _hwsim_conv(x, w, case, x_zp)
    want = _mlas_requantize(acc, np.broadcast_to(_mlas_scale(x_s, w_s, y_s), (o,)), y_zp, x_dtype, bias=bias)
    np.testing.assert_array_equal(want, _nhwc(got))
    if y_scale_factor < 1:
        qmin, qmax = int_type_range(8, np.dtype(x_dtype) == np.int8)
        assert np.mean((got == qmin) | (got == qmax)) > 0.3


def test_scale_is_computed_left_to_right_in_float32():
    """The engine's scale is float32((x_s·w_s)/y_s), not the float32 of the exact (double) quotient.

    Search seeded scale triples for one where the two candidate scales differ by an ulp and some int8·int8
    accumulator rounds differently under them; the engine must follow the left-to-right float32 scale.
    """
    rng = np.random.default_rng(11)
    a = np.arange(-128, 128, dtype=np.int8).reshape(-1, 1)
    b = np.arange(-128, 128, dtype=np.int8).reshape(1, -1)
    acc = a.astype(np.int32) * b.astype(np.int32)
    for _ in range(20000):
        x_s, w_s = (rng.random(2) * 0.1 + 0.01).astype(np.float32)
        y_s = np.float32(x_s * w_s * (60 + rng.random() * 100))
        left = _mlas_scale(x_s, w_s, y_s)
        exact = np.float32(np.float64(x_s) * np.float64(w_s) / np.float64(y_s))
        if left != exact and np.any(np.rint(acc * left) != np.rint(acc * exact)):
            break
    else:
        pytest.fail("no scale triple separates the two scale computations")
    got = _run(
        helper.make_node("QLinearMatMul", ["a", "a_s", "a_zp", "b", "b_s", "b_zp", "y_s", "y_zp"], ["y"]),
        {"a": a, "a_s": np.array(x_s), "a_zp": np.array(0, np.int8), "b": b, "b_s": np.array(w_s),
         "b_zp": np.array(0, np.int8), "y_s": np.array(y_s), "y_zp": np.array(0, np.int8)},
        TensorProto.INT8,
    )
    hw_acc = core.gemm_s32(a, np.ascontiguousarray(b.T))
    np.testing.assert_array_equal(_mlas_requantize(hw_acc, np.full(256, left), 0, np.int8), got)
    assert np.any(_mlas_requantize(hw_acc, np.full(256, exact), 0, np.int8) != got)
