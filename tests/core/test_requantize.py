"""Requantization schemes (float scale, TFLite fixed point, DPU power of two) equal their numpy twins,
plus argument checking: bad input raises a named TypeError/ValueError, never a crash."""

import numpy as np
import pytest
from edge_values import integer_edge_values

from hwsim import _core, numerics
from hwsim.emulate import ref_numerics as ref

RM = _core.RoundingMode
I32 = (-(1 << 31), (1 << 31) - 1)


def _acc(rng, rows, C, lo=-(1 << 20), hi=1 << 20):
    edges = integer_edge_values(*I32, random_count=0)
    a = rng.integers(lo, hi, size=(rows, C)).astype(np.int64)
    a.ravel()[: min(a.size, edges.size)] = edges[: min(a.size, edges.size)]
    return a.astype(np.int32)


@pytest.mark.parametrize("preset", sorted(numerics.FLOAT_REQUANT_PRESETS))
@pytest.mark.parametrize("per_channel", [False, True])
def test_requantize_float_presets_equal_twin(preset, per_channel, rng):
    C = 6
    acc = _acc(rng, 40, C)
    scale = (rng.uniform(1e-5, 1e-2, C) if per_channel else np.array([3.1e-4])).astype(np.float32)
    opts = dict(numerics.FLOAT_REQUANT_PRESETS[preset])
    if "float" in opts["bias_mode"]:
        bias = rng.normal(0, 5, C).astype(np.float32)
        bias_scale = (rng.uniform(1e-4, 1e-2, C) if per_channel else np.array([2e-3])).astype(np.float32)
    else:
        bias = rng.integers(-(1 << 16), 1 << 16, C).astype(np.int32)
        bias_scale = None
    for qmin, qmax, zp in ((-128, 127, -3), (0, 255, 128), (-32768, 32767, 0), (0, 127, 5)):
        got = numerics.requantize_float_preset(acc, preset, scale, zp, qmin, qmax, bias=bias, bias_scale=bias_scale)
        want = ref.requantize_float(acc, scale, zp, qmin, qmax, bias=bias, bias_scale=bias_scale, **opts)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", list(RM.__members__.values()))
@pytest.mark.parametrize("precision,scale_op,clamp", [("fp32", "multiply", "after_rounding"),
                                                      ("fp64", "divide", "before_rounding"),
                                                      ("fp32", "divide", "before_rounding")])
def test_requantize_float_options_equal_twin(mode, precision, scale_op, clamp, rng):
    acc = _acc(rng, 30, 4, -5000, 5000)
    # Power-of-two scales make exact ties; the rest are random.
    scale = np.array([0.5, 0.25, 0.0625, 0.37], np.float32)
    kw = dict(precision=precision, scale_op=scale_op, clamp=clamp, rounding=mode, seed=9)
    got = _core.requantize_float(acc, scale, 1, -128, 127, **kw)
    np.testing.assert_array_equal(got, ref.requantize_float(acc, scale, 1, -128, 127, **kw))


def test_fbgemm_float_bias_reciprocal_vs_divide_can_differ(rng):
    """numerics.md B.2: the AVX2 reciprocal path and the divide path differ in the last float bit
    for some biases; both equal their twins, and here at least one output differs."""
    acc = np.zeros((1, 20000), np.int32)
    bias = rng.normal(0, 200, 20000).astype(np.float32)
    kw = dict(bias=bias, bias_scale=np.float32(0.0037))
    a = numerics.requantize_float_preset(acc, "fbgemm_float_bias", 1.0, 0, -32768, 32767, **kw)
    b = numerics.requantize_float_preset(acc, "fbgemm_float_bias_avx2", 1.0, 0, -32768, 32767, **kw)
    assert (a != b).sum() > 0


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_requantize_fixed_point_equals_twin(rounding, rng):
    C = 5
    acc = _acc(rng, 60, C)
    bias = rng.integers(-(1 << 20), 1 << 20, C).astype(np.int32)
    m, s = numerics.tflite_channel_multipliers(0.02, rng.uniform(1e-3, 1e-1, C), 0.05)
    for zp, qmin, qmax in ((-5, -128, 127), (-128, -128, -128 + 6 * 20), (0, -32768, 32767)):
        got = _core.requantize_fixed_point(acc, m, s, zp, qmin, qmax, bias=bias, rounding=rounding)
        want = ref.requantize_fixed_point(acc, m, s, zp, qmin, qmax, bias=bias, rounding=rounding)
        np.testing.assert_array_equal(got, want)


def test_requantize_fixed_point_int64_16x8(rng):
    acc = rng.integers(-(1 << 40), 1 << 40, size=(30, 3)).astype(np.int64)
    bias = rng.integers(-(1 << 30), 1 << 30, 3).astype(np.int64)
    m, s = numerics.tflite_channel_multipliers(0.001, [1e-3, 2e-2, 5e-4], 0.5)
    got = _core.requantize_fixed_point(acc, m, s, 0, -32768, 32767, bias=bias, rounding="int64_16bit")
    want = ref.requantize_fixed_point(acc, m, s, 0, -32768, 32767, bias=bias, rounding="int64_16bit")
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, want)


def test_requantize_fixed_point_section5_example():
    acc = np.array([[3340]], np.int32)
    assert _core.requantize_fixed_point(acc, 1372659512, -1, 0, -32768, 32767)[0, 0] == 1068
    assert _core.requantize_fixed_point(acc, 1372659512, -1, 0, -32768, 32767, rounding="single")[0, 0] == 1067


@pytest.mark.parametrize("mode", list(RM.__members__.values()))
def test_requantize_pow2_equals_twin(mode, rng):
    C = 8
    acc = _acc(rng, 40, C, -(1 << 22), 1 << 22)
    bias = rng.integers(-128, 128, C).astype(np.int32)
    shift_cut = np.array([0, 1, 4, 9, 16, -1, -5, 32], np.int32)
    shift_bias = np.array([0, -3, 2, 16, -32, 5, 0, 32], np.int32)
    got = _core.requantize_pow2(acc, shift_cut, 0, -128, 127, bias=bias, shift_bias=shift_bias, rounding=mode, seed=4)
    want = ref.requantize_pow2(acc, shift_cut, 0, -128, 127, bias=bias, shift_bias=shift_bias, rounding=mode, seed=4)
    np.testing.assert_array_equal(got, want)


def test_requantize_pow2_dpu_round_is_half_up():
    """numerics.md C.1/C.4: DPU_ROUND = floor(x + 0.5): 2.5 -> 3, -2.5 -> -2, with shift_cut 1."""
    acc = np.array([5, -5, 3, -3, 1, -1], np.int32)
    np.testing.assert_array_equal(_core.requantize_pow2(acc, 1), [3, -2, 2, -1, 1, 0])
    # bias * 2^shift_bias with a negative shift_bias is an exact right shift (no rounding of its own).
    got = _core.requantize_pow2(np.array([0], np.int32), 0, bias=np.array([3], np.int32), shift_bias=-1)
    assert got[0] == 2  # 1.5 -> 2


def test_requantize_pow2_int64_acc(rng):
    acc = rng.integers(-(1 << 46), 1 << 46, size=(20, 2)).astype(np.int64)
    got = _core.requantize_pow2(acc, [30, 32], 0, -32768, 32767)
    np.testing.assert_array_equal(got, ref.requantize_pow2(acc, [30, 32], 0, -32768, 32767))


def test_requantize_empty_and_noncontiguous(rng):
    empty = np.zeros((0, 4), np.int32)
    assert _core.requantize_fixed_point(empty, 1 << 30, 0, 0, -128, 127).shape == (0, 4)
    assert _core.requantize_pow2(empty, 2).shape == (0, 4)
    assert _core.requantize_float(empty, 0.1, 0, -128, 127).shape == (0, 4)
    acc = _acc(rng, 10, 8)[:, ::2]
    assert not acc.flags.c_contiguous
    np.testing.assert_array_equal(_core.requantize_pow2(acc, 3), ref.requantize_pow2(acc, 3))


@pytest.mark.parametrize("call,exc,match", [
    (lambda a: _core.requantize_pow2(a, 40), ValueError, r"shift_cut must be in \[-32, 32\], got 40"),
    (lambda a: _core.requantize_pow2(a.astype(np.float32), 2), TypeError, "acc"),
    (lambda a: _core.requantize_pow2(a, [1, 2]), ValueError, "shift_cut has length 2"),
    (lambda a: _core.requantize_pow2(a, 1, bias=np.zeros(2, np.int32)), ValueError, "bias"),
    (lambda a: _core.requantize_pow2(a, 1, bias=np.zeros(3, np.int64)), TypeError, "bias"),
    (lambda a: _core.requantize_pow2(a, 1, shift_bias=0.5), TypeError, "shift_bias"),
    (lambda a: _core.requantize_pow2(a, 1, rounding=3), TypeError, "rounding"),
    (lambda a: _core.requantize_fixed_point(a, 1 << 30, 31, 0, -128, 127), ValueError, "shift"),
    (lambda a: _core.requantize_fixed_point(a, 1 << 30, 0, 0, -128, 127, rounding="triple"), ValueError, "rounding"),
    (lambda a: _core.requantize_fixed_point(a, 1 << 30, 0, 0, 5, 1), ValueError, "qmin"),
    (lambda a: _core.requantize_fixed_point(a, 1 << 30, 0, 0, -128, 127, out_dtype=np.uint8), ValueError, "out_dtype"),
    (lambda a: _core.requantize_fixed_point(a, 1 << 30, 0, 0, -128, 127, out_dtype=np.float32), TypeError, "out_dtype"),
    (lambda a: _core.requantize_fixed_point(a, [1 << 30] * 4, 0, 0, -128, 127), ValueError, "multiplier has length 4"),
    (lambda a: _core.requantize_fixed_point(a.astype(np.int64), 1 << 30, 0, 0, -128, 127), TypeError, "acc"),
    (lambda a: _core.requantize_float(a, 0.0, 0, -128, 127), ValueError, "scale must be > 0"),
    (lambda a: _core.requantize_float(a, np.nan, 0, -128, 127), ValueError, "scale must be finite"),
    (lambda a: _core.requantize_float(a, 0.1, 300, -128, 127), ValueError, "zero_point"),
    (lambda a: _core.requantize_float(a, 0.1, 0, -128, 127, precision="fp16"), ValueError, "precision"),
    (lambda a: _core.requantize_float(a, 0.1, 0, -128, 127, bias=np.zeros(3, np.float32)), ValueError, "bias_scale"),
    (lambda a: _core.requantize_float(a, 0.1, 0, -128, 127, bias=np.zeros(3, np.int16)), TypeError, "bias"),
    (lambda a: _core.requantize_float(None, 0.1, 0, -128, 127), TypeError, "acc"),
    (lambda a: _core.multiply_by_quantized_multiplier(a, 1 << 30, 8, "int64_16bit"), ValueError, r"shift must be in \[-31, 7\]"),
])
def test_bad_arguments_raise_named_errors(call, exc, match):
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    with pytest.raises(exc, match=match):
        call(a)
