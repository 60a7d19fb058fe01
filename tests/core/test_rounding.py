"""Rounding modes: the section-0 table of numerics.md, exact rational rounding, and fast == slow."""

from fractions import Fraction

import numpy as np
import pytest
from edge_values import integer_edge_values, ties
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import _core
from hwsim.emulate import ref_numerics as ref

RM = _core.RoundingMode
DETERMINISTIC = [m for m in RM.__members__.values() if m != RM.STOCHASTIC]

# numerics.md section 0, rounding table: inputs -2.5, -1.5, -0.5, 0.5, 1.5, 2.5.
TABLE_INPUTS = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]
TABLE = {
    RM.HALF_TO_EVEN: [-2, -2, 0, 0, 2, 2],
    RM.HALF_AWAY_FROM_ZERO: [-3, -2, -1, 1, 2, 3],
    RM.HALF_UP: [-2, -1, 0, 1, 2, 3],
    RM.HALF_DOWN: [-3, -2, -1, 0, 1, 2],
    RM.HALF_TOWARD_ZERO: [-2, -1, 0, 0, 1, 2],
    RM.FLOOR: [-3, -2, -1, 0, 1, 2],
    RM.TRUNCATE: [-2, -1, 0, 0, 1, 2],
}


@pytest.mark.parametrize("mode", list(TABLE))
def test_round_float_matches_section0_table(mode):
    got = _core.round_float(np.array(TABLE_INPUTS), mode)
    np.testing.assert_array_equal(got, TABLE[mode])


@pytest.mark.parametrize("mode", list(TABLE))
def test_rounding_right_shift_matches_section0_table(mode):
    # x / 2 with x = 2 * table input: the same ties as integers.
    x = (np.array(TABLE_INPUTS) * 2).astype(np.int64)
    np.testing.assert_array_equal(_core.rounding_right_shift(x, 1, mode), TABLE[mode])


@pytest.mark.parametrize("mode", DETERMINISTIC)
@pytest.mark.parametrize("exponent", [-3, 0, 5])
def test_round_float_ties_equal_twin(mode, exponent):
    x = ties(exponent, 16)
    np.testing.assert_array_equal(_core.round_float(x, mode), ref.round_float(x, mode))


@pytest.mark.parametrize("mode", list(RM.__members__.values()))
def test_round_float_random_equal_twin(mode, rng):
    x = np.concatenate([rng.normal(0, 100, 500), rng.integers(-50, 50, 100) + 0.5, [0.0, -0.0, 1e300, -1e300]])
    np.testing.assert_array_equal(_core.round_float(x, mode, seed=7), ref.round_float(x, mode, seed=7))
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)  # +-1e300 become +-inf on purpose
    np.testing.assert_array_equal(_core.round_float(x32, mode, seed=7), ref.round_float(x32, mode, seed=7))


def test_round_float_passes_non_finite_through():
    got = _core.round_float(np.array([np.inf, -np.inf, np.nan]), RM.HALF_UP)
    assert got[0] == np.inf and got[1] == -np.inf and np.isnan(got[2])


@pytest.mark.parametrize("mode", list(RM.__members__.values()))
@pytest.mark.parametrize("n", [0, 1, 2, 7, 31, 62, 63])
def test_rounding_right_shift_edge_values_equal_twin(mode, n):
    x = integer_edge_values(-(1 << 63), (1 << 63) - 1, random_count=100, seed=n)
    np.testing.assert_array_equal(_core.rounding_right_shift(x, n, mode, seed=3),
                                  ref.rounding_right_shift(x, n, mode, seed=3))


def test_rounding_right_shift_int32_input(rng):
    x = integer_edge_values(-(1 << 31), (1 << 31) - 1, random_count=200).astype(np.int32)
    for mode in DETERMINISTIC:
        np.testing.assert_array_equal(_core.rounding_right_shift(x, 5, mode), ref.rounding_right_shift(x, 5, mode))


@settings(max_examples=300, deadline=None)
@given(x=st.integers(-(1 << 63), (1 << 63) - 1), n=st.integers(0, 63), mode=st.sampled_from(DETERMINISTIC))
def test_rounding_right_shift_is_exact_rational_rounding(x, n, mode):
    """Property: the result is the nearest integer to x / 2^n by the mode's rule (fractions.Fraction)."""
    got = int(_core.rounding_right_shift(np.array([x], dtype=np.int64), n, mode)[0])
    v = Fraction(x, 1 << n)
    assert abs(got - v) <= 1
    if mode in (RM.FLOOR,):
        assert got == (x >> n)
    elif mode == RM.TRUNCATE:
        assert got == int(v)
    else:
        assert abs(got - v) <= Fraction(1, 2)


def test_stochastic_is_deterministic_per_seed_and_unbiased():
    x = np.full(20000, 3, dtype=np.int64)  # 3/4 = 0.75: P(ceil) = 0.75
    a = _core.rounding_right_shift(x, 2, RM.STOCHASTIC, seed=11)
    b = _core.rounding_right_shift(x, 2, RM.STOCHASTIC, seed=11)
    c = _core.rounding_right_shift(x, 2, RM.STOCHASTIC, seed=12)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert set(np.unique(a)) <= {0, 1}
    assert abs(a.mean() - 0.75) < 0.02
    f = _core.round_float(np.full(20000, 0.25), RM.STOCHASTIC, seed=5)
    assert abs(f.mean() - 0.25) < 0.02


def test_stochastic_generator_is_documented_splitmix64():
    # The first SplitMix64 output for state 0 is a published constant (Vigna's reference implementation).
    assert ref.stochastic_bits(0, 0) == 0xE220A8397B1DCDAF


@pytest.mark.parametrize("bits,signed,narrow,expected", [
    (8, True, False, (-128, 127)), (8, True, True, (-127, 127)), (4, True, True, (-7, 7)), (2, True, True, (-1, 1)),
    (8, False, False, (0, 255)), (8, False, True, (0, 254)), (4, False, False, (0, 15)), (16, True, False, (-32768, 32767)),
    (32, True, False, (-(1 << 31), (1 << 31) - 1)),
])
def test_int_range(bits, signed, narrow, expected):
    """numerics.md D.4 / D.7: narrow signed drops -2^(b-1); narrow unsigned trims the top (Brevitas)."""
    assert _core.int_range(bits, signed, narrow) == expected == ref.int_range(bits, signed, narrow)


@pytest.mark.parametrize("bits", [0, 1, 17, 31, 33, 64])
def test_int_range_rejects_bits(bits):
    with pytest.raises(ValueError, match="bits"):
        _core.int_range(bits)


@pytest.mark.parametrize("mode", list(RM.__members__.values()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_float_just_inside_minus_half(mode, dtype):
    """Regression: x - floor(x) is inexact for x just above -0.5 (-0.49999997f - (-1) rounds to 0.5f),
    which would turn a non-tie into a tie; rounding must use the exact fraction."""
    base = np.array([-0.5, -1.5, -2.5, 0.5, -1e-30, -0.25], dtype)
    x = np.concatenate([base, np.nextafter(base, dtype(0)), np.nextafter(base, dtype(-np.inf))]).astype(dtype)
    np.testing.assert_array_equal(_core.round_float(x, mode, seed=1), ref.round_float(x, mode, seed=1))
    q = _core.quantize(x.astype(np.float32), 1.0, 0, -128, 127, rounding=mode, seed=1)
    np.testing.assert_array_equal(q, ref.quantize(x.astype(np.float32), 1.0, 0, -128, 127, rounding=mode, seed=1))


@settings(max_examples=300, deadline=None)
@given(x=st.floats(allow_nan=False, allow_infinity=False, width=64), mode=st.sampled_from(list(RM.__members__.values())))
def test_round_float_any_double_equals_exact_rational(x, mode):
    """Property: round_float is the exact rational rounding of every finite double (twin uses Fraction)."""
    np.testing.assert_array_equal(_core.round_float(np.array([x]), mode, seed=3), ref.round_float(np.array([x]), mode, seed=3))


@settings(max_examples=300, deadline=None)
@given(x=st.floats(-200, 200, width=32), mode=st.sampled_from(DETERMINISTIC),
       method=st.sampled_from(["divide", "multiply_reciprocal", "fma_reciprocal", "multiply_add_reciprocal"]))
def test_quantize_fast_path_equals_twin(x, mode, method):
    """Property: the vectorised quantize path (clamp, then branch-free rounding) equals the exact twin."""
    arr = np.array([x, -x, x / 3], np.float32)
    kw = dict(rounding=mode, method=method)
    np.testing.assert_array_equal(_core.quantize(arr, 0.37, -3, -128, 127, **kw),
                                  ref.quantize(arr, 0.37, -3, -128, 127, **kw))
