"""Quantize / dequantize: every engine variant equals its twin on ties, saturating values and random
data; per-tensor, per-axis and per-group layouts; the fbgemm x*(1/s) vs x/s example (numerics.md B.2)."""

import numpy as np
import pytest
from edge_values import ties
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hwsim import _core, numerics
from hwsim.emulate import ref_numerics as ref

RM = _core.RoundingMode
OM = _core.OverflowMode
METHODS = ["divide", "multiply_reciprocal", "fma_reciprocal", "multiply_add_reciprocal"]


def _data(rng, shape, scale):
    x = (rng.normal(0, 80, shape) * scale).astype(np.float32)
    flat = x.ravel()
    t = (ties(0, 16) * scale).astype(np.float32)  # exact ties when scale is a power of two
    flat[: min(flat.size, t.size)] = t[: min(flat.size, t.size)]
    return x


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("precision", ["fp32", "fp64"])
@pytest.mark.parametrize("mode", [RM.HALF_TO_EVEN, RM.HALF_AWAY_FROM_ZERO, RM.HALF_UP, RM.FLOOR, RM.STOCHASTIC])
@pytest.mark.parametrize("qrange,zp", [((-128, 127), 3), ((0, 255), 128), ((-127, 127), 0), ((-8, 7), -1), ((0, 15), 7)])
def test_quantize_per_tensor_equals_twin(method, precision, mode, qrange, zp, rng):
    for scale in (0.0625, 0.0123, 0.00214854861):
        x = _data(rng, (64,), scale)
        kw = dict(method=method, precision=precision, rounding=mode, seed=2)
        got = _core.quantize(x, scale, zp, *qrange, **kw)
        np.testing.assert_array_equal(got, ref.quantize(x, scale, zp, *qrange, **kw))


@pytest.mark.parametrize("method", METHODS)
def test_quantize_wrap_equals_twin(method, rng):
    x = _data(rng, (200,), 0.05)
    for qrange in ((-128, 127), (0, 255), (-8, 7), (-7, 7), (0, 3)):
        kw = dict(method=method, overflow=OM.WRAP)
        np.testing.assert_array_equal(_core.quantize(x, 0.05, 0, *qrange, **kw), ref.quantize(x, 0.05, 0, *qrange, **kw))


def test_quantize_wrap_keeps_low_bits():
    x = np.array([128.0, 129.0, -129.0, 300.0], np.float32)
    np.testing.assert_array_equal(_core.quantize(x, 1.0, 0, -128, 127, overflow=OM.WRAP), [-128, -127, 127, 44])


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("method", METHODS)
def test_quantize_per_axis_equals_twin(axis, method, rng):
    x = _data(rng, (4, 5, 3), 0.02)
    D = x.shape[axis]
    scale = rng.uniform(0.005, 0.05, D).astype(np.float32)
    zp = rng.integers(-10, 10, D).astype(np.int32)
    kw = dict(axis=axis, method=method)
    got = _core.quantize(x, scale, zp, -128, 127, **kw)
    np.testing.assert_array_equal(got, ref.quantize(x, scale, zp, -128, 127, **kw))
    deq = _core.dequantize(got, scale, zp, axis=axis)
    np.testing.assert_array_equal(deq, ref.dequantize(got, scale, zp, axis=axis))


@pytest.mark.parametrize("group_size", [1, 4, 5, 16])
def test_quantize_per_group_equals_twin(group_size, rng):
    x = _data(rng, (3, 10), 0.02)
    n_groups = -(-10 // group_size)
    scale = rng.uniform(0.005, 0.05, (3, n_groups)).astype(np.float32)
    zp = np.zeros((3, n_groups), np.int32)
    got = _core.quantize(x, scale, zp, -8, 7, axis=1, group_size=group_size)
    np.testing.assert_array_equal(got, ref.quantize(x, scale, zp, -8, 7, axis=1, group_size=group_size))
    np.testing.assert_array_equal(_core.dequantize(got, scale, zp, axis=1, group_size=group_size),
                                  ref.dequantize(got, scale, zp, axis=1, group_size=group_size))


def test_fbgemm_reciprocal_example_section_b2():
    """numerics.md B.2: 0.273939937f with s = 0.00214854861f is 127.5 by x*(1/s) (-> 128 RNE) but
    127.499992 by x/s (-> 127)."""
    x = np.array([0.273939937], np.float32)
    s = np.float32(0.00214854861)
    assert _core.quantize(x, s, 0, -32768, 32767, method="multiply_reciprocal")[0] == 128
    assert _core.quantize(x, s, 0, -32768, 32767, method="divide")[0] == 127


@pytest.mark.parametrize("method", ["subtract_then_scale", "scale_then_subtract"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32])
def test_dequantize_equals_twin(method, dtype, rng):
    info = np.iinfo(dtype)
    q = rng.integers(max(info.min, -40000), min(info.max, 40000), 300, endpoint=True).astype(dtype)
    for precision in ("fp32", "fp64"):
        got = _core.dequantize(q, 0.0173, 7, method=method, precision=precision)
        assert got.dtype == (np.float32 if precision == "fp32" else np.float64)
        np.testing.assert_array_equal(got, ref.dequantize(q, 0.0173, 7, method=method, precision=precision))


def test_dequantize_variants_differ_somewhere(rng):
    """numerics.md section 7: TFLite optimized q*s - zp*s differs from (q - zp)*s in some floats."""
    q = np.arange(-128, 128, dtype=np.int8)
    a = _core.dequantize(q, 0.0173, 7)
    b = _core.dequantize(q, 0.0173, 7, method="scale_then_subtract")
    assert (a != b).any()


@settings(max_examples=150, deadline=None)
@given(x=hnp.arrays(np.float32, st.integers(1, 40), elements=st.floats(-100, 100, width=32)),
       scale=st.floats(0.0009765625, 10, width=32), zp=st.integers(-20, 20), method=st.sampled_from(METHODS))
def test_quantize_then_dequantize_within_half_step(x, scale, zp, method):
    """Property: inside the range, |dequantize(quantize(x)) - x| <= s/2 (+ float slack)."""
    q = _core.quantize(x, scale, zp, -(1 << 15), (1 << 15) - 1, method=method, out_dtype=np.int32)
    back = _core.dequantize(q, scale, zp, precision="fp64")
    inside = (q > -(1 << 15)) & (q < (1 << 15) - 1)
    s = float(np.float32(scale))
    assert np.all(np.abs(back[inside] - x[inside].astype(np.float64)) <= s / 2 * (1 + 1e-5) + 1e-6)


@pytest.mark.parametrize("preset", sorted(numerics.QUANTIZE_PRESETS))
def test_quantize_presets_equal_twin(preset, rng):
    x = _data(rng, (100,), 0.03125)
    opts = numerics.QUANTIZE_PRESETS[preset]
    np.testing.assert_array_equal(numerics.quantize_preset(x, preset, 0.03125, 5, -128, 127),
                                  ref.quantize(x, 0.03125, 5, -128, 127, **opts))


def test_quantize_non_finite_and_empty():
    x = np.array([np.inf, -np.inf, np.nan, 1e30, -1e30], np.float32)
    np.testing.assert_array_equal(_core.quantize(x, 0.1, 0, -128, 127), [127, -128, 0, 127, -128])
    assert _core.quantize(np.zeros(0, np.float32), 0.1, 0, -128, 127).shape == (0,)
    nc = np.arange(20, dtype=np.float32)[::3]
    np.testing.assert_array_equal(_core.quantize(nc, 0.5, 0, -128, 127), ref.quantize(nc, 0.5, 0, -128, 127))


@pytest.mark.parametrize("call,exc,match", [
    (lambda x: _core.quantize(x.astype(np.int32), 0.1, 0, -128, 127), TypeError, "x must have dtype"),
    (lambda x: _core.quantize(x, -0.1, 0, -128, 127), ValueError, "scale"),
    (lambda x: _core.quantize(x, 0.1, 200, -128, 127), ValueError, "zero_point"),
    (lambda x: _core.quantize(x, [0.1, 0.2], 0, -128, 127), ValueError, "scale"),
    (lambda x: _core.quantize(x, [0.1, 0.2], 0, -128, 127, axis=1), ValueError, "scale must be 1-D of length 3"),
    (lambda x: _core.quantize(x, 0.1, 0, -128, 127, axis=2), ValueError, "axis"),
    (lambda x: _core.quantize(x, 0.1, 0, -128, 127, axis=0, group_size=0), ValueError, "group_size"),
    (lambda x: _core.quantize(x, 0.1, 0, -128, 127, group_size=2), ValueError, "group_size"),
    (lambda x: _core.quantize(x, 0.1, 0, -128, 127, method="round"), ValueError, "method"),
    (lambda x: _core.quantize(x, 0.1, 0, -128, 127, overflow="wrap"), TypeError, "overflow"),
    (lambda x: _core.quantize(x, 0.1, 0, 0, 1 << 40), ValueError, "qmin"),
    (lambda x: _core.dequantize(x, 0.1, 0), TypeError, "q must have dtype"),
    (lambda x: _core.dequantize(x.astype(np.int8), 0.1, 0, axis=1, group_size=2), ValueError, "scale"),
])
def test_quantize_bad_arguments(call, exc, match):
    x = np.ones((2, 3), np.float32)
    with pytest.raises(exc, match=match):
        call(x)
