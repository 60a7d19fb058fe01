"""Quantization-parameter rules of hwsim.quant.scheme, as a specification.

Hand tables use dyadic values (exact in binary) so every expected integer follows from the formula in the
cited numerics.md section by hand; property tests check the invariants every rule must keep.
"""

from __future__ import annotations

import numpy as np
import pytest
from edge_values import int_type_range, ties
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import HwsimError
from hwsim.quant.scheme import (
    QuantScheme,
    affine_params_generic,
    affine_params_onnxruntime,
    affine_params_tflite,
    affine_params_torch,
    dequantize,
    fake_quantize,
    group_minmax,
    onnxruntime_qrange,
    params_from_range,
    params_from_tensor,
    pow2_fix_pos_diffs,
    pow2_fix_pos_mode,
    pow2_fix_pos_overflow_free,
    qrange,
    quantize,
    round_with,
    symmetric_params_onnxruntime,
    symmetric_params_tflite,
    symmetric_params_torch,
    tflite_nudged_range,
    torch_qrange,
)

# ---------------------------------------------------------------------------------------------------------
# Rounding (numerics.md section 0 table: inputs -2.5, -1.5, -0.5, 0.5, 1.5, 2.5)

ROUNDING_TABLE = {
    "half_even": [-2, -2, -0, 0, 2, 2],
    "half_away": [-3, -2, -1, 1, 2, 3],
    "half_up": [-2, -1, 0, 1, 2, 3],
    "half_down": [-3, -2, -1, 0, 1, 2],
    "half_toward_zero": [-2, -1, 0, 0, 1, 2],
    "floor": [-3, -2, -1, 0, 1, 2],
    "trunc": [-2, -1, 0, 0, 1, 2],
}


@pytest.mark.parametrize("mode", sorted(ROUNDING_TABLE))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rounding_modes_on_ties(mode, dtype):
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], dtype=dtype)
    assert round_with(x, mode).tolist() == ROUNDING_TABLE[mode]


@pytest.mark.parametrize("alias,name", [("RNE", "half_even"), ("rhaz", "half_away"), ("DPU_ROUND", "half_up"),
                                        ("std_round", "half_away"), ("py3_round", "half_even")])
def test_rounding_aliases(alias, name):
    x = ties(0, 8)
    np.testing.assert_array_equal(round_with(x, alias), round_with(x, name))


def test_half_rules_do_not_round_just_below_half_up():
    below = np.nextafter(0.5, 0.0)  # 0.49999999999999994: floor(x + 0.5) would give 1
    for mode in ("half_away", "half_up", "half_down", "half_toward_zero"):
        assert round_with(np.array([below, -below]), mode).tolist() == [0, 0]


def test_unknown_rounding_is_an_error():
    with pytest.raises(HwsimError, match="rounding"):
        round_with(np.zeros(1), "banker")


# ---------------------------------------------------------------------------------------------------------
# Integer ranges


@pytest.mark.parametrize("bits,signed,narrow,reduce,expected", [
    (8, True, False, False, (-128, 127)),
    (8, True, True, False, (-127, 127)),      # TFLite weights, numerics.md A.1
    (8, False, False, False, (0, 255)),
    (8, False, True, False, (0, 254)),        # Brevitas unsigned narrow, D.4
    (8, True, False, True, (-64, 63)),        # PyTorch reduce_range, B.3
    (8, False, False, True, (0, 127)),
    (4, True, False, False, (-8, 7)),         # D.7
    (4, True, True, False, (-7, 7)),
    (2, True, False, False, (-2, 1)),
    (16, True, False, False, (-32768, 32767)),
])
def test_qrange(bits, signed, narrow, reduce, expected):
    assert qrange(bits, signed, narrow, reduce) == expected


def test_torch_and_onnxruntime_reduced_ranges_differ():
    # PyTorch halves with floor division (B.3); onnxruntime's table keeps int8 reduced symmetric (B.5).
    assert torch_qrange(8, True, reduce_range=True) == (-64, 63)
    assert onnxruntime_qrange(8, True, reduce_range=True) == (-64, 64)
    assert onnxruntime_qrange(8, True, symmetric=True) == (-127, 127)
    assert onnxruntime_qrange(8, False, symmetric=True) == (0, 255)


# ---------------------------------------------------------------------------------------------------------
# Affine rules, hand table. Scale 2^-2 with qmax - qmin = 255 needs a range of width 63.75; moving its
# minimum puts min/scale on a .5 tie, where the engines' zero-point roundings part ways.
#   torch (B.3):   zp = qmin - rne(min/scale)
#   ORT (B.5):     zp = rne(qmin - min/scale)
#   TFLite (MLIR getNudgedScaleAndZeroPoint, A.11): zp = rhaz(qmin - min/scale)

AFFINE_TABLE = [
    # qmin, qmax, rmin, rmax, scale, zp_torch, zp_ort, zp_tflite
    (-128, 127, -0.875, 62.875, 0.25, -124, -124, -125),  # min/scale = -3.5
    (-128, 127, -0.625, 63.125, 0.25, -126, -126, -126),  # min/scale = -2.5
    (0, 255, -0.625, 63.125, 0.25, 2, 2, 3),              # zp_from_min = +2.5
    (0, 255, -0.875, 62.875, 0.25, 4, 4, 4),              # +3.5
    (0, 255, -1.0, 0.9921875, 2.0**-7, 128, 128, 128),    # no tie
    (-128, 127, 0.0, 63.75, 0.25, -128, -128, -128),      # non-negative range: zp = qmin
    (-128, 127, -63.75, 0.0, 0.25, 127, 127, 127),        # non-positive range: zp = qmax
]


@pytest.mark.parametrize("qmin,qmax,rmin,rmax,scale,zp_torch,zp_ort,zp_tfl", AFFINE_TABLE)
def test_affine_hand_table(qmin, qmax, rmin, rmax, scale, zp_torch, zp_ort, zp_tfl):
    for rule, zp in ((affine_params_torch, zp_torch), (affine_params_onnxruntime, zp_ort),
                     (affine_params_tflite, zp_tfl), (affine_params_generic, zp_ort)):
        s, z = rule(rmin, rmax, qmin, qmax)
        assert s.dtype == np.float32 and z.dtype == np.int64
        assert (float(s[0]), int(z[0])) == (scale, zp), rule.__name__


def test_range_is_widened_to_include_zero():
    # [2, 10] becomes [0, 10] (B.3, B.5): scale 10/255 and zp = qmin.
    for rule in (affine_params_torch, affine_params_onnxruntime, affine_params_tflite, affine_params_generic):
        s, z = rule(2.0, 10.0, 0, 255)
        assert z[0] == 0 and abs(float(s[0]) - 10 / 255) < 1e-7


@pytest.mark.parametrize("rule,scale,zp", [
    (affine_params_torch, float(np.finfo(np.float32).eps), -128),  # scale floored at eps, zp = qmin (B.3)
    (affine_params_onnxruntime, 1.0, 0),                         # ORT: scale < FLT_MIN -> 1.0, zp 0
    # TFLite converter: widened to [-1e-6, 1e-6] (recorded in data/tflite_quant_params.npz, case "zeros")
    (affine_params_tflite, float(np.float32(2e-6) / np.float32(255)), 0),
])
def test_empty_range(rule, scale, zp):
    s, z = rule(0.0, 0.0, -128, 127)
    assert (float(s[0]), int(z[0])) == (scale, zp)


# Symmetric rules: extremes at +-127.5 (torch /127.5, B.3) or +-127 (TFLite narrow, A.1;
# ORT [-127, 127], B.5).
@pytest.mark.parametrize("fn,args,scale,zp", [
    (symmetric_params_torch, (-0.5, 127.5 / 128, -128, 127), 2.0**-7, 0),
    (symmetric_params_torch, (-127.5 / 128, 0.25, -128, 127), 2.0**-7, 0),
    (symmetric_params_torch, (-0.5, 127.5 / 128, 0, 255), 2.0**-7, 128),   # quint8 symmetric zp 128
    (symmetric_params_torch, (-63.5 / 64, 0.0, -64, 63), 2.0**-6, 0),       # reduce_range: /63.5
    (symmetric_params_tflite, (-127 / 64, 1.0, 8), 2.0**-6, 0),
    (symmetric_params_tflite, (-0.5, 7 / 8, 4), 2.0**-3, 0),                # int4 narrow [-7, 7]
    (symmetric_params_onnxruntime, (-1.0, 127 / 64, 8, True), 2.0**-6, 0),
    (symmetric_params_onnxruntime, (-1.0, 127.5 / 64, 8, False), 2.0**-6, 128),  # uint8: zp rne(127.5)
    (symmetric_params_onnxruntime, (-1.0, 1.0, 8, True, True), 2.0**-6, 0),      # reduced int8 [-64, 64]
])
def test_symmetric_hand_table(fn, args, scale, zp):
    s, z = fn(*args)
    assert (float(s[0]), int(z[0])) == (scale, zp)


def test_torch_symmetric_reaches_minus_128():
    # numerics.md B.3: -max maps to -127.5, and RNE sends it to -128 (TFLite never produces -128).
    amax = 127.5 / 128
    p = params_from_range(QuantScheme(symmetric=True, params_rule="torch"), -amax, amax)
    assert p.scale.tolist() == [2.0**-7]
    assert quantize(np.array([-amax, amax]), p, "half_even").tolist() == [-128, 127]
    t = params_from_range(QuantScheme(symmetric=True, narrow=True, params_rule="tflite"), -amax, amax)
    assert quantize(np.array([-amax, amax]), t, "half_away").tolist() == [-127, 127]


def test_tflite_nudged_range_a11():
    # numerics.md A.11, TF's fake-quant range [0, 255]. Range width 255/128 (scale 2^-7); min = -128.5/128
    # gives zp_from_min = 128.5 -> RHAZ 129, and the range moves down by half a step.
    assert tflite_nudged_range(-128.5 / 128, 126.5 / 128, 0, 255) == (-129 / 128, 126 / 128, 2.0**-7, 129)
    assert tflite_nudged_range(-1.0, 127 / 128, 0, 255) == (-1.0, 127 / 128, 2.0**-7, 128)
    # zp_from_min below qmin / above qmax clamps (range entirely positive / negative)
    assert tflite_nudged_range(0.5, 0.5 + 255 / 128, 0, 255)[3] == 0
    assert tflite_nudged_range(-0.5 - 255 / 128, -0.5, 0, 255)[3] == 255


# ---------------------------------------------------------------------------------------------------------
# Power of two (numerics.md C.3)


@pytest.mark.parametrize("rmin,rmax,bits,p0", [
    (-1.0, 1.0, 8, 6),          # step = 1/127.5: 2^6 <= 127.5 < 2^7
    (-1.0, 0.5, 8, 7),          # step = 1/128.5: 2^7 <= 128.5
    (0.0, 127.5 / 128, 8, 7),   # x·2^7 = 127.5 = ub exactly: still overflow-free
    (0.0, 0.49, 8, 8),
    (-0.5, 0.0, 4, 4),          # lb = -8.5: 1/step = 17
    (0.0, 0.0, 8, 18),          # all zero
    (-3.0e-39, 0.0, 8, 18),     # step below FLT_MIN
])
def test_pow2_overflow_free_position(rmin, rmax, bits, p0):
    assert pow2_fix_pos_overflow_free(rmin, rmax, bits).tolist() == [p0]


def test_pow2_diffs_keeps_the_first_of_equal_errors():
    # 0.3: p0 = 8 (1/step = 425); p = 8 gives 77/256 and p = 9 gives 154/512, the same value, so the same
    # error; the first strictly smallest wins.
    assert pow2_fix_pos_diffs(np.array([0.3]), 8, "half_away") == 8


def test_pow2_diffs_prefers_a_finer_position_when_clipping_one_value_pays():
    # One value at 1.0 (p0 = 6) and 100 values v = 3/512. Errors by hand (C.3):
    #   p = 6: v·64 = 0.375 -> 0, error 100·v^2 = 3.4e-3; 1.0 exact.
    #   p = 7: v·128 = 0.75 -> 1, error 100·(1/128 - v)^2 = 3.8e-4; 1.0 -> 128 clips to 127:
    #          + (1/128)^2 = 6.1e-5.
    #   p = 8: v·256 = 1.5 -> 2, the same 3.8e-4; but 1.0 clips to 127/256: + 0.254.
    x = np.concatenate([[1.0], np.full(100, 3.0 / 512)])
    assert pow2_fix_pos_overflow_free(x.min(), x.max()).tolist() == [6]
    assert pow2_fix_pos_diffs(x, 8, "half_away") == 7
    assert pow2_fix_pos_diffs(x, 8, "half_away", scope=1) == 6


def test_pow2_cap_and_all_zero():
    assert pow2_fix_pos_diffs(np.zeros(5), 8) == 12          # 18 capped at max_fix_pos 12 (<= 8 bits)
    assert pow2_fix_pos_diffs(np.zeros(5), 16) == 15
    assert pow2_fix_pos_diffs(np.full(3, 2.0**-20), 8) == 12


def test_pow2_rounding_matters_on_ties():
    # x·2^p on -2.5 / 2.5 ties: half_up gives -2 / 3 (C.1 DPU_ROUND), half_away -3 / 3 (std::round).
    p = params_from_tensor(QuantScheme(symmetric=True, scale_kind="pow2", params_rule="pow2_overflow_free",
                                       rounding="half_up"), np.array([-2.5, 2.5, 127.0]))
    assert p.fix_pos.tolist() == [0]
    assert quantize(np.array([-2.5, 2.5]), p, "half_up").tolist() == [-2, 3]
    assert quantize(np.array([-2.5, 2.5]), p, "half_away").tolist() == [-3, 3]


@pytest.mark.parametrize("history,mode", [([3, 4, 4, 3, 5], 3), ([5, 5, 4], 5), ([7], 7), ([6, 2, 9], 2)])
def test_pow2_mode_of_batch_positions(history, mode):
    assert pow2_fix_pos_mode(history) == mode


# ---------------------------------------------------------------------------------------------------------
# Granularity


def test_per_channel_params_along_axis0_of_ohwi():
    w = np.zeros((3, 2, 2, 4), np.float32)
    w[0, 0, 0, 0], w[1, 1, 1, 3], w[2, 0, 1, 2] = 127 / 64, -127 / 32, 127 / 16
    scheme = QuantScheme(symmetric=True, narrow=True, granularity="per_channel", axis=0, params_rule="tflite")
    p = params_from_tensor(scheme, w)
    assert p.scale.tolist() == [2.0**-6, 2.0**-5, 2.0**-4]
    assert p.zero_point.tolist() == [0, 0, 0]
    q = quantize(w, p, "half_away")
    assert q[0, 0, 0, 0] == 127 and q[1, 1, 1, 3] == -127 and q[2, 0, 1, 2] == 127


def test_group_minmax_blocks_along_input_axis():
    w = np.arange(2 * 10, dtype=np.float64).reshape(2, 10) - 7
    lo, hi = group_minmax(w, axis=1, group_size=4)
    assert lo.tolist() == [[-7, -3, 1], [3, 7, 11]]
    assert hi.tolist() == [[-4, 0, 2], [6, 10, 12]]


def test_per_group_params_and_fake_quantize_shapes():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 10)).astype(np.float32)
    scheme = QuantScheme(bits=4, symmetric=True, granularity="per_group", axis=1, group_size=4)
    p = params_from_tensor(scheme, w)
    assert p.scale.shape == (4, 3) and p.group_size == 4
    fq = fake_quantize(w, p)
    assert fq.shape == w.shape and fq.dtype == np.float32
    # each group's largest magnitude maps to +-7 (generic symmetric 4-bit: scale = amax / 7)
    q = quantize(w, p)
    for g, sl in enumerate((slice(0, 4), slice(4, 8), slice(8, 10))):
        assert np.all(np.abs(q[:, sl]).max(axis=1) == 7), g


@pytest.mark.parametrize("kwargs,field", [
    ({"bits": 1}, "bits"), ({"bits": 20, "signed": False}, "bits"),
    ({"granularity": "per_row"}, "granularity"),
    ({"granularity": "per_channel"}, "axis"), ({"granularity": "per_group", "axis": 1}, "group_size"),
    ({"scale_kind": "log"}, "scale_kind"), ({"scale_kind": "pow2"}, "params_rule"),
    ({"params_rule": "pow2_diffs"}, "scale_kind"), ({"rounding": "nearest"}, "rounding"),
])
def test_scheme_validation_names_the_field(kwargs, field):
    with pytest.raises(HwsimError, match=field):
        QuantScheme(**kwargs)


# ---------------------------------------------------------------------------------------------------------
# Properties

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)
AFFINE_RULES = [affine_params_torch, affine_params_onnxruntime, affine_params_tflite, affine_params_generic]
RANGES = [(0, 255), (-128, 127), (-64, 63), (0, 127), (-8, 7), (0, 15), (-32768, 32767)]


@settings(max_examples=300, deadline=None)
@given(a=finite, b=finite, rule=st.sampled_from(AFFINE_RULES), qr=st.sampled_from(RANGES))
def test_zero_is_exactly_representable(a, b, rule, qr):
    lo, hi = min(a, b), max(a, b)
    qmin, qmax = qr
    s, z = rule(lo, hi, qmin, qmax)
    assert qmin <= z[0] <= qmax and s[0] > 0
    # real 0 quantizes to the zero point and comes back as exactly 0 (padding, ReLU floors)
    p = params_from_range(QuantScheme(), lo, hi)
    p = type(p)(scale=s, zero_point=z, qmin=qmin, qmax=qmax)
    assert quantize(np.zeros(3), p).tolist() == [z[0]] * 3
    assert fake_quantize(np.zeros(2), p).tolist() == [0.0, 0.0]


@settings(max_examples=300, deadline=None)
@given(a=finite, b=finite, rule=st.sampled_from(AFFINE_RULES), qr=st.sampled_from(RANGES),
       rounding=st.sampled_from(["half_even", "half_away", "half_up"]))
def test_range_end_points_land_within_one_step(a, b, rule, qr, rounding):
    lo, hi = min(a, b), max(a, b)
    if hi - lo < 1e-3:
        return
    qmin, qmax = qr
    s, z = rule(lo, hi, qmin, qmax)
    p = params_from_range(QuantScheme(), lo, hi)
    p = type(p)(scale=s, zero_point=z, qmin=qmin, qmax=qmax)
    x = np.array([min(lo, 0.0), max(hi, 0.0)])
    q = quantize(x, p, rounding)
    assert np.all((q >= qmin) & (q <= qmax))
    assert np.all(np.abs(fake_quantize(x, p, rounding) - x) <= 1.0001 * float(s[0]))


@settings(max_examples=300, deadline=None)
@given(a=finite, b=finite, bits=st.sampled_from([2, 4, 8, 16]))
def test_pow2_overflow_free_position_never_overflows(a, b, bits):
    lo, hi = min(a, b), max(a, b)
    p0 = int(pow2_fix_pos_overflow_free(lo, hi, bits)[0])
    lb, ub = -(2.0 ** (bits - 1)) - 0.5, 2.0 ** (bits - 1) - 0.5
    if max(lo / lb, hi / ub) <= float(np.finfo(np.float32).tiny):  # all zero (C.3 step 1)
        assert p0 == 18
        return
    assert lb <= lo * 2.0**p0 and hi * 2.0**p0 <= ub
    # and p0 is the largest such position: one more would overflow one side
    assert lo * 2.0 ** (p0 + 1) < lb or hi * 2.0 ** (p0 + 1) > ub


@settings(max_examples=100, deadline=None)
@given(data=st.lists(finite, min_size=1, max_size=40), rounding=st.sampled_from(["half_away", "half_up"]))
def test_pow2_diffs_is_at_least_as_good_as_p0(data, rounding):
    x = np.array(data, dtype=np.float32)
    p = pow2_fix_pos_diffs(x, 8, rounding)
    p0 = min(int(pow2_fix_pos_overflow_free(x.min(), x.max())[0]), 12)
    assert p0 <= p <= max(p0, min(p0 + 4, 12))

    def err(pos):
        q = np.clip(round_with(np.ldexp(x.astype(np.float64), pos), rounding), -128, 127)
        return float(np.sum((x - np.ldexp(q, -pos)) ** 2))

    if p0 < 12:
        assert err(p) <= err(p0)


@settings(max_examples=100, deadline=None)
@given(bits=st.sampled_from([2, 4, 8]), signed=st.booleans(), data=st.lists(finite, min_size=1, max_size=30))
def test_quantized_values_respect_the_scheme_range(bits, signed, data):
    x = np.array(data, dtype=np.float32)
    scheme = QuantScheme(bits=bits, signed=signed)
    p = params_from_tensor(scheme, x)
    lo, hi = int_type_range(bits, signed)
    q = quantize(x * 3, p)  # out-of-range inputs saturate
    assert np.all((q >= lo) & (q <= hi))


# ---------------------------------------------------------------------------------------------------------
# Hand-off to the graph IR


@pytest.mark.parametrize("scheme,shape", [
    (QuantScheme(symmetric=True, narrow=True, granularity="per_channel", axis=0, params_rule="tflite"),
     (4, 3, 3, 2)),
    (QuantScheme(signed=False, params_rule="torch"), (2, 5)),
    (QuantScheme(bits=4, symmetric=True, granularity="per_group", axis=1, group_size=4), (3, 10)),
    (QuantScheme(symmetric=True, scale_kind="pow2", params_rule="pow2_diffs", rounding="half_away",
                 granularity="per_channel", axis=0), (4, 6)),
])
def test_to_quant_spec_round_trips_the_parameters(rng, scheme, shape):
    from hwsim.quant.scheme import to_quant_spec

    w = rng.standard_normal(shape).astype(np.float32)
    p = params_from_tensor(scheme, w)
    spec = to_quant_spec(scheme, p)
    spec.check_tensor(w.shape, "test")
    q = quantize(w, p, scheme.rounding)
    spec.check_values(q.astype(spec.dtype), "test")
    np.testing.assert_array_equal(spec.dequantize(q), dequantize(q, p))
