"""Activation and reduction kernels (hwsim/emulate/op_kernels.py, csrc/hwsim/activations_tflite.h,
csrc/hwsim/softmax_tflite.h) against their plain numpy twins (hwsim/emulate/ref_activations.py): every 8-bit
code, edge parameters, hypothesis-drawn scales; the DPU kernels also against the hand vectors of
numerics.md section 5 and C.6. The engines themselves are checked in tests/oracle/test_tflite_oracle.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from edge_values import integer_edge_values
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import _core
from hwsim.emulate import op_kernels as ok
from hwsim.emulate import ref_activations as ref
from hwsim.emulate.simulator import quantize_for_target, simulate
from hwsim.graph import GraphBuilder
from hwsim.targets import load_target

CODES = {np.dtype(np.int8): np.arange(-128, 128).astype(np.int8), np.dtype(np.uint8): np.arange(256).astype(np.uint8)}
scales = st.floats(1e-3, 0.5, allow_nan=False).map(lambda v: float(np.float32(v)))
DTYPES = [np.int8, np.uint8]


def _zp(dtype, draw_value: int) -> int:
    return draw_value if np.dtype(dtype) == np.int8 else draw_value + 128


# ---------------------------------------------------------------------------------------------------------
# Table construction


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16])
def test_all_codes_follow_apply_lut_index_order(dtype):
    codes = ok.all_codes(dtype)
    table = codes.astype(np.int32)
    x = integer_edge_values(int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)).astype(dtype)
    np.testing.assert_array_equal(_core.apply_lut(x, table), x.astype(np.int32))


# ---------------------------------------------------------------------------------------------------------
# HARD_SWISH (numerics A.8)


@settings(max_examples=60, deadline=None)
@given(si=scales, so=scales, zi=st.integers(-128, 127), zo=st.integers(-128, 127), dtype=st.sampled_from(DTYPES))
def test_hard_swish_matches_twin_on_every_code(si, so, zi, zo, dtype):
    prm = ok.hard_swish_params(si, so)
    if prm["output_shift"] > 0:
        return
    codes = CODES[np.dtype(dtype)]
    zi, zo = _zp(dtype, zi), _zp(dtype, zo)
    lo, hi = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
    ours = _core.hard_swish_tflite(codes, input_zero_point=zi, output_zero_point=zo, qmin=lo, qmax=hi, **prm)
    twin = ref.hard_swish_tflite(codes, input_zero_point=zi, output_zero_point=zo, qmin=lo, qmax=hi, **prm)
    np.testing.assert_array_equal(ours, twin)


def test_hard_swish_edge_multipliers():
    codes = CODES[np.dtype(np.int8)]
    for mo, eo, mr, er in [(32767, 0, 32767, 15), (1, -31, 1, -31), (16384, -1, 32767, 1), (0, 0, 0, 0),
                           (32767, -15, 16384, -3)]:
        kw = dict(input_zero_point=-128, output_zero_point=127, output_multiplier=mo, output_shift=eo,
                  reluish_multiplier=mr, reluish_shift=er, qmin=-128, qmax=127)
        np.testing.assert_array_equal(_core.hard_swish_tflite(codes, **kw), ref.hard_swish_tflite(codes, **kw))


def test_hard_swish_reaches_its_real_function():
    """Within 2 steps of x·relu6(x + 3)/6 (int16 intermediate precision and a truncating product)."""
    si, so = float(np.float32(10 / 255)), float(np.float32(6.5 / 255))
    prm = ok.hard_swish_params(si, so)
    codes = CODES[np.dtype(np.int8)]
    y = _core.hard_swish_tflite(codes, input_zero_point=0, output_zero_point=-50, **prm)
    x = codes * si
    ideal = np.clip(x * np.clip(x + 3, 0, 6) / 6 / so - 50, -128, 127)
    assert np.max(np.abs(y - ideal)) <= 2


# ---------------------------------------------------------------------------------------------------------
# LEAKY_RELU: reference (numerics A.7) and XNNPACK


@settings(max_examples=60, deadline=None)
@given(si=scales, so=scales, alpha=st.floats(0.0, 1.0), zi=st.integers(-128, 127), zo=st.integers(-128, 127),
       dtype=st.sampled_from(DTYPES))
def test_leaky_relu_matches_twins_on_every_code(si, so, alpha, zi, zo, dtype):
    codes = CODES[np.dtype(dtype)]
    common = dict(input_zero_point=_zp(dtype, zi), output_zero_point=_zp(dtype, zo),
                  qmin=int(np.iinfo(dtype).min), qmax=int(np.iinfo(dtype).max))
    prm = ok.leaky_relu_params(si, so, alpha)
    np.testing.assert_array_equal(_core.leaky_relu_tflite(codes, **prm, **common),
                                  ref.leaky_relu_tflite(codes, **prm, **common))
    prm8 = ok.leaky_relu_xnnpack_params(si, so, alpha)
    np.testing.assert_array_equal(_core.leaky_relu_xnnpack(codes, **prm8, **common),
                                  ref.leaky_relu_xnnpack(codes, **prm8, **common))


def test_leaky_relu_hand_values():
    """Identity ratio 1/2 = (2^30, 0) and alpha ratio 1/4 = (2^30, −1) exactly (QuantizeMultiplier). Double
    rounding (A.3): SRDHM rounds d/2 with ties toward +inf (3 → 2, −3 → −1), then RDBP halves again with
    ties away from zero (−1 → −1, −2 → −1)."""
    codes = np.array([0, 3, 4, -3, -4, 127, -128], np.int8)
    prm = ok.leaky_relu_params(0.5, 1.0, 0.5)
    y = _core.leaky_relu_tflite(codes, input_zero_point=0, output_zero_point=0, **prm)
    np.testing.assert_array_equal(y, ref.leaky_relu_tflite(codes, input_zero_point=0, output_zero_point=0,
                                                           qmin=-128, qmax=127, **prm))
    np.testing.assert_array_equal(y[:5], [0, 2, 2, -1, -1])
    # XNNPACK: m = 128 and 32, ((d·m + 128) >> 8): −3·32 + 128 = 32 → 0; 3·128 + 128 = 512 → 2
    prm8 = ok.leaky_relu_xnnpack_params(0.5, 1.0, 0.5)
    assert prm8 == {"positive_multiplier": 128, "negative_multiplier": 64}
    np.testing.assert_array_equal(_core.leaky_relu_xnnpack(np.array([3, -3, -2], np.int8), input_zero_point=0,
                                                           output_zero_point=0, **prm8), [2, -1, 0])


# ---------------------------------------------------------------------------------------------------------
# SOFTMAX (numerics A.9)


@settings(max_examples=40, deadline=None)
@given(si=st.floats(1e-3, 1.0).map(lambda v: float(np.float32(v))), cols=st.integers(1, 40),
       seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from(DTYPES))
def test_softmax_fixed_point_matches_twin(si, cols, seed, dtype):
    prm = ok.softmax_fixed_point_params(si)
    info = np.iinfo(dtype)
    q = np.random.default_rng(seed).integers(info.min, info.max, size=(64, cols), endpoint=True).astype(dtype)
    np.testing.assert_array_equal(_core.softmax_tflite_fixed_point(q, **prm), ref.softmax_tflite_fixed_point(q, **prm))


def test_softmax_fixed_point_edge_rows():
    prm = ok.softmax_fixed_point_params(float(np.float32(0.1)))
    rows = [np.full(2048, 127), np.full(2048, -128), np.r_[127, np.full(9, -128)], np.array([5]),
            np.r_[np.full(1024, 0), np.full(1024, -1)]]
    for row in rows:
        q = row.astype(np.int8)[None]
        np.testing.assert_array_equal(_core.softmax_tflite_fixed_point(q, **prm),
                                      ref.softmax_tflite_fixed_point(q, **prm))
    # a lone value is certain: 255/256 of the way up from -128 is 127
    assert _core.softmax_tflite_fixed_point(np.array([[5]], np.int8), **prm)[0, 0] == 127
    with pytest.raises(ValueError, match="2048"):
        _core.softmax_tflite_fixed_point(np.zeros((1, 2049), np.int8), **prm)


@settings(max_examples=40, deadline=None)
@given(si=st.floats(1e-3, 1.0).map(lambda v: float(np.float32(v))), cols=st.integers(1, 40),
       seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from(DTYPES))
def test_softmax_float_table_matches_twin(si, cols, seed, dtype):
    info = np.iinfo(dtype)
    q = np.random.default_rng(seed).integers(info.min, info.max, size=(64, cols), endpoint=True).astype(dtype)
    table = ref.softmax_table(si)
    zo = int(info.min)
    kw = dict(output_scale=np.float32(1 / 256), output_zero_point=zo, qmin=int(info.min), qmax=int(info.max))
    np.testing.assert_array_equal(_core.softmax_tflite_float_table(q, table, **kw),
                                  ref.softmax_tflite_float_table(q, table, **kw))


def test_softmax_bindings_check_arguments():
    with pytest.raises(TypeError, match="x"):
        _core.softmax_tflite_fixed_point(np.zeros((2, 3), np.int16), beta_multiplier=2**30, beta_left_shift=1,
                                         diff_min=-10)
    with pytest.raises(ValueError, match="table"):
        _core.softmax_tflite_float_table(np.zeros((2, 3), np.int8), np.zeros(255, np.float32), output_scale=1.0,
                                         output_zero_point=0)
    with pytest.raises(ValueError, match="diff_min"):
        _core.softmax_tflite_fixed_point(np.zeros((2, 3), np.int8), beta_multiplier=2**30, beta_left_shift=30,
                                         diff_min=-200)


# ---------------------------------------------------------------------------------------------------------
# Whole-layer kernels through the simulator: MEAN, XNNPACK ADD, DPU activations


def _one_op(op: str, shape, **kw):
    b = GraphBuilder(op)
    x = b.input("x", shape)
    if op == "mean":
        y = b.global_avg_pool(x, name="y")
    elif op == "add":
        y = b.add(b.relu(x, name="r"), x, name="y")
    elif op == "leaky":
        y = b.leaky_relu(x, kw.get("alpha", 26 / 256), name="y")
    elif op == "hsigmoid":
        y = b.hard_sigmoid(x, name="y")
    else:
        y = b.hard_swish(x, name="y")
    b.output(y)
    return b.build()


@pytest.mark.parametrize("target", ["arm_tflite", "arm_tflite_xnnpack"])
def test_mean_matches_twin(target):
    rng = np.random.default_rng(3)
    g = _one_op("mean", (1, 7, 7, 5))
    qm = quantize_for_target(g, load_target(target), rng.uniform(-1, 2, (16, 7, 7, 5)).astype(np.float32))
    plan = next(p for p in qm.plans if p.node.name == "y")
    assert plan.mode == "integer", plan.reason
    got = simulate(qm, rng.uniform(-1.5, 2.5, (32, 7, 7, 5)).astype(np.float32))
    x_q, y_q = qm.act["x"], qm.act["y"]
    common = dict(input_zero_point=x_q.zero_point, output_zero_point=y_q.zero_point, qmin=y_q.qmin, qmax=y_q.qmax)
    if target == "arm_tflite":
        m, e = ok.mean_multiplier(x_q.scale, y_q.scale, 49)
        want = ref.mean_tflite(got.integers["x"], multiplier=m, shift=e, **common)
    else:
        want = ref.mean_xnnpack(got.integers["x"], scale=plan.consts["scale"], **common)
    np.testing.assert_array_equal(got.integers["y"], want)


def test_xnnpack_add_matches_twin():
    rng = np.random.default_rng(4)
    g = _one_op("add", (1, 4, 4, 3))
    qm = quantize_for_target(g, load_target("arm_tflite_xnnpack"), rng.normal(0, 1, (16, 4, 4, 3)).astype(np.float32))
    plan = next(p for p in qm.plans if p.node.name == "y")
    assert plan.mode == "integer" and plan.impl.kernel == "xnnpack_add", plan.reason
    got = simulate(qm, rng.normal(0, 1.5, (16, 4, 4, 3)).astype(np.float32)).integers
    a_q, b_q, y_q = qm.act["r"], qm.act["x"], qm.act["y"]
    want = ref.add_xnnpack(got["r"], got["x"], a_zero_point=a_q.zero_point, b_zero_point=b_q.zero_point,
                           output_zero_point=y_q.zero_point, qmin=y_q.qmin, qmax=y_q.qmax,
                           **ok.xnnpack_add_params(a_q.scale, b_q.scale, y_q.scale))
    np.testing.assert_array_equal(got["y"], want)


def test_dpu_hsigmoid_hand_vectors():
    """numerics.md section 5 / C.6: (p_in 4, p_out 7) 16 → 85, 48 → 127, −48 → 0; (p_in 5) −37 → 39."""
    for p_in, q, want in [(4, 16, 85), (4, 48, 127), (4, -48, 0), (5, -37, 39)]:
        assert ref.hsigmoid_dpu(np.array([q], np.int8), fix_pos_in=p_in, fix_pos_out=7)[0] == want
        assert _core.hard_sigmoid_dpu(np.array([q], np.int8), p_in, 7)[0] == want


def _dpu_model(op: str, lo: float, hi: float, bits_target: str = "fpga_dpu"):
    rng = np.random.default_rng(5)
    g = _one_op(op, (1, 8, 8, 4))
    qm = quantize_for_target(g, load_target(bits_target), rng.uniform(lo, hi, (16, 8, 8, 4)).astype(np.float32))
    plan = next(p for p in qm.plans if p.node.name == "y")
    x = np.concatenate([rng.uniform(lo, hi, (8, 8, 8, 4)), rng.uniform(2 * lo, 2 * hi, (8, 8, 8, 4))])
    return qm, plan, simulate(qm, x.astype(np.float32)).integers


@pytest.mark.parametrize("target", ["fpga_dpu", "fpga_dpu_w4a4"])
def test_dpu_activation_kernels_match_twins(target):
    qm, plan, got = _dpu_model("leaky", -4, 4, target)
    assert plan.mode == "integer", plan.reason
    x_q, y_q = qm.act["x"], qm.act["y"]
    np.testing.assert_array_equal(got["y"], ref.leaky_relu_dpu(got["x"], fix_pos_in=x_q.fix_pos,
                                                               fix_pos_out=y_q.fix_pos, qmin=y_q.qmin,
                                                               qmax=y_q.qmax))
    qm, plan, got = _dpu_model("hsigmoid", -5, 5, target)
    assert plan.mode == "integer", plan.reason
    x_q, y_q = qm.act["x"], qm.act["y"]
    assert y_q.fix_pos >= 7  # vai_q forces the output position up to 7 (C.6, section 7)
    np.testing.assert_array_equal(got["y"], ref.hsigmoid_dpu(got["x"], fix_pos_in=x_q.fix_pos,
                                                             fix_pos_out=y_q.fix_pos, qmin=y_q.qmin, qmax=y_q.qmax))
    qm, plan, got = _dpu_model("hswish", -5, 5, target)
    assert plan.mode == "integer", plan.reason
    x_q, y_q = qm.act["x"], qm.act["y"]
    np.testing.assert_array_equal(got["y"], ref.hswish_dpu(got["x"], fix_pos_in=x_q.fix_pos,
                                                           fix_pos_out=y_q.fix_pos, qmin=y_q.qmin, qmax=y_q.qmax))


def test_dpu_leaky_relu_other_alpha_falls_back():
    rng = np.random.default_rng(6)
    g = _one_op("leaky", (1, 4, 4, 2), alpha=0.2)
    qm = quantize_for_target(g, load_target("fpga_dpu"), rng.normal(0, 1, (8, 4, 4, 2)).astype(np.float32))
    plan = next(p for p in qm.plans if p.node.name == "y")
    assert plan.mode == "fallback" and "26/256" in plan.reason


@pytest.mark.parametrize("p_in, p_out", [(4, 7), (6, 5), (2, 9), (0, 3)])
def test_dpu_hswish_formula_edges(p_in, p_out):
    """x · fq(hsigmoid(x), 7), one DPU_ROUND (round half up), on every int8 code, against exact rationals."""
    codes = CODES[np.dtype(np.int8)].astype(np.int64)
    t = ref.hsigmoid_dpu(codes, fix_pos_in=p_in, fix_pos_out=7)
    exact = codes * t * 2.0 ** (p_out - p_in - 7)  # exact in float64 (small integers times powers of two)
    want = np.clip(np.floor(exact + 0.5), -128, 127)
    np.testing.assert_array_equal(ref.hswish_dpu(codes, fix_pos_in=p_in, fix_pos_out=p_out), want)


def test_activation_bindings_check_arguments():
    x = np.zeros(4, np.int8)
    hs = dict(input_zero_point=0, output_zero_point=0, output_multiplier=100, output_shift=-1,
              reluish_multiplier=100, reluish_shift=0)
    with pytest.raises(TypeError, match="x"):
        _core.hard_swish_tflite(x.astype(np.int32), **hs)
    with pytest.raises(ValueError, match="output_shift"):
        _core.hard_swish_tflite(x, **{**hs, "output_shift": 1})
    with pytest.raises(ValueError, match="qmin"):
        _core.hard_swish_tflite(x, qmin=5, qmax=4, **hs)
    with pytest.raises(ValueError, match="multiplier_alpha"):
        _core.leaky_relu_tflite(x, input_zero_point=0, output_zero_point=0, multiplier_identity=2**30,
                                shift_identity=0, multiplier_alpha=-1, shift_alpha=0)
    with pytest.raises(ValueError, match="input_zero_point"):
        _core.leaky_relu_xnnpack(x, input_zero_point=300, output_zero_point=0, positive_multiplier=256,
                                 negative_multiplier=26)
