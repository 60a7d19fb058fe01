"""gemmlowp/TFLite fixed point: SRDHM, RDBP, truncating SDHM, QuantizeMultiplier and the three
MultiplyByQuantizedMultiplier algorithms, against numerics.md hand values and the Python-int twin."""

import math
from fractions import Fraction

import numpy as np
import pytest
from edge_values import integer_edge_values
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import _core
from hwsim.emulate import ref_numerics as ref

I32 = (-(1 << 31), (1 << 31) - 1)
I16 = (-(1 << 15), (1 << 15) - 1)


def _pairs(lo, hi, dtype, n=300, seed=0):
    v = integer_edge_values(lo, hi, random_count=n, seed=seed)
    rng = np.random.default_rng(seed)
    a = rng.choice(v, 4000)
    b = rng.choice(v, 4000)
    return a.astype(dtype), b.astype(dtype)


# numerics.md section 0 / 5: SRDHM ties p/2^31 = 0.5 -> 1, -0.5 -> 0, 1.5 -> 2, -1.5 -> -1.
@pytest.mark.parametrize("a,b,expected", [(1 << 30, 1, 1), (-(1 << 30), 1, 0), (3 << 29, 2, 2), (-(3 << 29), 2, -1),
                                          (I32[0], I32[0], I32[1])])
def test_srdhm_section0_ties(a, b, expected):
    got = _core.saturating_rounding_doubling_high_mul(np.array([a], np.int32), np.array([b], np.int32))
    assert int(got[0]) == expected


# numerics.md section 0 / 5: RDBP (1,1)->1, (-1,1)->-1, (3,1)->2, (-3,1)->-2, (-5,2)->-1, (-6,2)->-2.
@pytest.mark.parametrize("x,n,expected", [(1, 1, 1), (-1, 1, -1), (3, 1, 2), (-3, 1, -2), (-5, 2, -1), (-6, 2, -2)])
def test_rdbp_section0_vectors(x, n, expected):
    assert int(_core.rounding_divide_by_pot(np.array([x], np.int32), n)[0]) == expected
    assert int(_core.rounding_divide_by_pot(np.array([x], np.int16), n)[0]) == expected


@pytest.mark.parametrize("dtype,bits,rng_", [(np.int32, 32, I32), (np.int16, 16, I16)])
def test_srdhm_and_sdhm_equal_twin(dtype, bits, rng_):
    a, b = _pairs(*rng_, dtype)
    got = _core.saturating_rounding_doubling_high_mul(a, b)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, [ref.srdhm(int(x), int(y), bits) for x, y in zip(a, b)])
    got = _core.saturating_doubling_high_mul(a, b)
    np.testing.assert_array_equal(got, [ref.sdhm(int(x), int(y), bits) for x, y in zip(a, b)])


@settings(max_examples=300, deadline=None)
@given(a=st.integers(*I32), b=st.integers(*I32))
def test_srdhm_is_round_half_up_of_product(a, b):
    """Property: SRDHM = round(a*b / 2^31) with ties toward +inf, except the saturating corner."""
    got = int(_core.saturating_rounding_doubling_high_mul(np.array([a], np.int32), np.array([b], np.int32))[0])
    if a == b == I32[0]:
        assert got == I32[1]
    else:
        assert got == math.floor(Fraction(a * b, 1 << 31) + Fraction(1, 2))


@pytest.mark.parametrize("n", [0, 1, 2, 5, 15, 16, 30, 31])
def test_rdbp_edge_values_equal_twin(n):
    x = integer_edge_values(*I32, random_count=300, seed=n).astype(np.int32)
    np.testing.assert_array_equal(_core.rounding_divide_by_pot(x, n), [ref.rdbp(int(v), n) for v in x])


# numerics.md A.2 worked values.
@pytest.mark.parametrize("real,expected", [
    (0.5, (1073741824, 0)), (1.0, (1073741824, 1)), (0.75, (1610612736, 0)), (0.0036, (1979120930, -8)),
    (3.0, (1610612736, 2)), (1 - 1e-12, (1073741824, 1)), (2.0**-31, (1073741824, -30)), (2.0**-33, (0, 0)),
    (0.0, (0, 0)),
])
def test_quantize_multiplier_worked_values(real, expected):
    assert _core.quantize_multiplier(real) == expected == ref.quantize_multiplier(real)


def test_quantize_multiplier_single_rounding_clamp():
    """numerics.md A.2 step 5: single-rounding builds clamp e > 30 to (2^31 - 1, 30)."""
    assert _core.quantize_multiplier(2.0**40, single_rounding=True) == ((1 << 31) - 1, 30)
    assert _core.quantize_multiplier(2.0**40) == (1 << 30, 41)


def test_quantize_multiplier_array_equals_twin(rng):
    reals = np.concatenate([10.0 ** rng.uniform(-12, 3, 500), [2.0**-31, 2.0**-32, 1 - 2.0**-40, 0.0]])
    m, s = _core.quantize_multiplier(reals)
    assert m.dtype == np.int32 and s.dtype == np.int32
    assert list(zip(m.tolist(), s.tolist())) == [ref.quantize_multiplier(float(r)) for r in reals]


def test_mbqm_single_vs_double_section5_example():
    """numerics.md A.3 / section 5: x = 3340, M = 1372659512, e = -1: double 1068, single 1067."""
    assert _core.quantize_multiplier(0.31959719771424216) == (1372659512, -1)
    x = np.array([3340], np.int32)
    assert int(_core.multiply_by_quantized_multiplier(x, 1372659512, -1, "double")[0]) == 1068
    assert int(_core.multiply_by_quantized_multiplier(x, 1372659512, -1, "single")[0]) == 1067


@pytest.mark.parametrize("variant", ["double", "single"])
@pytest.mark.parametrize("shift", [-31, -20, -8, -1, 0, 1, 5])
def test_mbqm_edge_values_equal_twin(variant, shift, rng):
    lim = I32 if shift <= 0 else (-(1 << (30 - shift)), (1 << (30 - shift)) - 1)
    x = integer_edge_values(*lim, random_count=200, seed=shift + 40).astype(np.int32)
    for m in (1 << 30, (1 << 31) - 1, 1372659512, int(rng.integers(1 << 30, 1 << 31))):
        got = _core.multiply_by_quantized_multiplier(x, m, shift, variant)
        np.testing.assert_array_equal(got, ref.multiply_by_quantized_multiplier(x, m, shift, variant))


@pytest.mark.parametrize("shift", [-31, -10, 0, 7])
def test_mbqm_int64_equals_twin(shift):
    x = integer_edge_values(-(1 << 47), (1 << 47) - 1, random_count=200, seed=shift + 50)
    for m in (1 << 30, 0x7FFF0000 - 1, 0x7FFF0000, (1 << 31) - 1):
        got = _core.multiply_by_quantized_multiplier(x, m, shift, "int64_16bit")
        np.testing.assert_array_equal(got, ref.multiply_by_quantized_multiplier(x, m, shift, "int64_16bit"))


def test_mbqm_per_channel_last_axis(rng):
    x = rng.integers(-(1 << 20), 1 << 20, size=(5, 3)).astype(np.int32)
    m = np.array([1 << 30, 1372659512, 2000000000], np.int32)
    s = np.array([-3, 0, -10], np.int32)
    np.testing.assert_array_equal(_core.multiply_by_quantized_multiplier(x, m, s),
                                  ref.multiply_by_quantized_multiplier(x, m, s))


@settings(max_examples=200, deadline=None)
@given(x=st.integers(-(1 << 24), 1 << 24), real=st.floats(1e-6, 0.99))
def test_mbqm_variants_are_within_one_of_exact(x, real):
    """Property: both variants land within 1 of x * M * 2^(e-31) (each rounds at most twice)."""
    m, e = _core.quantize_multiplier(real)
    exact = Fraction(x * m) * Fraction(2) ** (e - 31)
    for variant in ("double", "single"):
        got = int(_core.multiply_by_quantized_multiplier(np.array([x], np.int32), m, e, variant)[0])
        assert abs(got - exact) <= 1
