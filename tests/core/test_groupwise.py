"""Group-wise (sub-block) GEMM: ``hwsim._core`` equals the numpy twin bit for bit.

Specification (csrc/hwsim/groupwise_gemm.h): p_g = exact int32 partial sum of K-group g (last group may be
ragged); GROUP_FLOAT y = Σ_g fp32(p_g)·s[n,g] in float32 ascending g without FMA; GROUP_FIXED_POINT
acc = sat_A(acc + RoundingRightShift(p_g·m[n,g], F, rounding)) in int64 with clamps counted.
"""

from __future__ import annotations

import numpy as np
import pytest
from edge_values import int_type_range, integer_edge_values, ties
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim._core as core
from hwsim.emulate import ref_depthwise as ref

ISAS = [isa for isa in ("scalar", "avx2", "avx512") if core.depthwise_isa_available(isa)]
ROUNDINGS = list(ref.SHIFT_ROUNDINGS)


def _case(rng, m, n, k, dtype=np.uint8, edge=False):
    lo, hi = int_type_range(8, dtype == np.int8)
    if edge:
        a = rng.choice(integer_edge_values(lo, hi, random_count=0), size=(m, k)).astype(dtype)
        b = rng.choice(integer_edge_values(-128, 127, random_count=0), size=(n, k)).astype(np.int8)
    else:
        a = rng.integers(lo, hi, size=(m, k), endpoint=True).astype(dtype)
        b = rng.integers(-128, 127, size=(n, k), endpoint=True).astype(np.int8)
    zp = int(rng.integers(lo, hi, endpoint=True))
    return a, b, zp


# Ties of x / 2^1 (numerics.md section 0 table: inputs −2.5 … 2.5 are x = −5 … 5 shifted by 1).
@pytest.mark.parametrize(
    ("rounding", "expected"),
    [
        ("HALF_TO_EVEN", [-2, -2, 0, 0, 2, 2]),
        ("HALF_AWAY_FROM_ZERO", [-3, -2, -1, 1, 2, 3]),
        ("HALF_UP", [-2, -1, 0, 1, 2, 3]),
        ("HALF_DOWN", [-3, -2, -1, 0, 1, 2]),
        ("HALF_TOWARD_ZERO", [-2, -1, 0, 0, 1, 2]),
        ("FLOOR", [-3, -2, -1, 0, 1, 2]),
        ("TRUNCATE", [-2, -1, 0, 0, 1, 2]),
    ],
)
def test_shift_rounding_hand_table(rounding, expected):
    x = (ties(0, 3) * 2).astype(np.int64)  # −5, −3, −1, 1, 3, 5
    assert list(ref.rounding_right_shift(x, 1, rounding)) == expected
    # Through the compiled kernel: K = 1, p_g = x, multiplier 1, F = 1.
    a = (x + 128).astype(np.uint8).reshape(-1, 1)
    b = np.ones((1, 1), np.int8)
    acc, clamps = core.groupwise_gemm_fixed_point(a, b, np.ones((1, 1), np.int32), 1, 1, a_zero_point=128,
                                                  rounding=rounding)
    assert list(acc[:, 0]) == expected and clamps == 0
    # The RoundingMode member works the same as its name.
    acc2, _ = core.groupwise_gemm_fixed_point(a, b, np.ones((1, 1), np.int32), 1, 1, a_zero_point=128,
                                              rounding=getattr(core.RoundingMode, rounding))
    np.testing.assert_array_equal(acc, acc2)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize(("k", "group_size"), [(64, 16), (70, 16), (5, 8), (96, 32), (1, 1), (33, 33)])
def test_partial_sums_edge_values(isa, dtype, k, group_size):
    rng = np.random.default_rng(k * 1000 + group_size)
    a, b, zp = _case(rng, 7, 9, k, dtype, edge=True)
    got = core.group_partial_sums_s32(a, b, group_size, a_zero_point=zp, isa=isa)
    np.testing.assert_array_equal(got, ref.group_partial_sums_s32(a, b, group_size, zp))
    assert got.shape == (7, 9, ref.group_count(k, group_size))


def test_partial_sums_sum_to_the_plain_gemm(rng):
    a, b, zp = _case(rng, 4, 5, 50)
    p = core.group_partial_sums_s32(a, b, 16, a_zero_point=zp)
    np.testing.assert_array_equal(p.astype(np.int64).sum(-1), (a.astype(np.int64) - zp) @ b.astype(np.int64).T)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize(("k", "group_size"), [(128, 32), (100, 32), (7, 2)])
def test_group_float_matches_twin_bitwise(isa, k, group_size):
    rng = np.random.default_rng(k)
    a, b, zp = _case(rng, 6, 11, k, edge=True)
    groups = ref.group_count(k, group_size)
    scales = (rng.random((11, groups)) * 1e-2).astype(np.float32)
    scales[0, 0] = np.float32(1.0) / np.float32(3.0)  # not dyadic: every multiply rounds
    got = core.groupwise_gemm_float(a, b, scales, group_size, a_zero_point=zp, isa=isa)
    want = ref.groupwise_gemm_float(a, b, scales, group_size, zp)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))


def test_group_float_order_is_ascending_and_unfused():
    # p = (2^24, 1, -2^24) with unit scales: ascending float32 adds give (2^24 + 1) = 2^24, then 0.
    a = np.array([[1, 1, 1]], np.uint8)
    b = np.array([[1, 1, 1]], np.int8)
    p_scales = np.array([[2.0**24, 1.0, -(2.0**24)]], np.float32)
    y = core.groupwise_gemm_float(a, b, p_scales, 1)
    assert y[0, 0] == 0.0


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("acc_bits", [16, 24, 32, 64])
def test_group_fixed_point_matches_twin(rounding, acc_bits):
    rng = np.random.default_rng(acc_bits)
    a, b, zp = _case(rng, 5, 8, 96, edge=True)
    groups = ref.group_count(96, 32)
    mult = rng.integers(-(2**31), 2**31 - 1, size=(8, groups), endpoint=True).astype(np.int32)
    mult[0] = [np.iinfo(np.int32).min, np.iinfo(np.int32).max, 0]
    for frac_bits in (0, 1, 15, 31, 62):
        got, clamps = core.groupwise_gemm_fixed_point(
            a, b, mult, 32, frac_bits, a_zero_point=zp, rounding=rounding, acc_bits=acc_bits
        )
        want, want_clamps = ref.groupwise_gemm_fixed_point(a, b, mult, 32, frac_bits, zp, rounding, acc_bits)
        np.testing.assert_array_equal(got, want)
        assert clamps == want_clamps


def test_group_fixed_point_counts_clamped_outputs():
    # Three groups of one element. Output 0 adds 255·127 three times: a 16-bit accumulator clamps on the
    # second and third adds (one clamped output); output 1 adds 255 three times and never clamps.
    a = np.full((1, 3), 255, np.uint8)
    b = np.array([[127, 127, 127], [1, 1, 1]], np.int8)
    acc, clamps = core.groupwise_gemm_fixed_point(a, b, np.ones((2, 3), np.int32), 1, 0, acc_bits=16)
    assert acc[0, 0] == 32767 and acc[0, 1] == 765 and clamps == 1
    acc, clamps = core.groupwise_gemm_fixed_point(a, b, np.ones((2, 3), np.int32), 1, 0, acc_bits=32)
    assert acc[0, 0] == 3 * 255 * 127 and clamps == 0


@pytest.mark.parametrize("frac_bits", [0, 4, 15, 24, 30])
def test_scale_conversion_matches_twin_and_bound(rng, frac_bits):
    scales = (rng.random((6, 5)) * 0.1).astype(np.float32)
    scales[1] = 0.0
    scales[2, 3] = np.float32(1e-30)
    ref_s, mult = core.group_scales_to_fixed_point(scales, frac_bits)
    want_ref, want_mult = ref.group_scales_to_fixed_point(scales, frac_bits)
    np.testing.assert_array_equal(ref_s, want_ref)
    np.testing.assert_array_equal(mult, want_mult)
    assert ref_s[1] == 1.0 and np.all(mult[1] == 0)
    assert np.all((mult >= 0) & (mult <= 2**frac_bits))
    approx = ref_s.astype(np.float64)[:, None] * mult / 2.0**frac_bits
    bound = ref_s.astype(np.float64)[:, None] * 2.0 ** -(frac_bits + 1) * (1 + 1e-12)
    assert np.all(np.abs(approx - scales) <= bound)


def test_fixed_point_approximates_group_float(rng):
    # End to end: with F = 24 the fixed-point accumulator times the reference scale tracks GROUP_FLOAT.
    a, b, zp = _case(rng, 8, 8, 256)
    scales = (rng.random((8, 8)) * 0.01 + 1e-3).astype(np.float32)
    y = core.groupwise_gemm_float(a, b, scales, 32, a_zero_point=zp).astype(np.float64)
    ref_s, mult = core.group_scales_to_fixed_point(scales, 24)
    acc, _ = core.groupwise_gemm_fixed_point(a, b, mult, 32, 24, a_zero_point=zp, rounding="HALF_TO_EVEN")
    p = core.group_partial_sums_s32(a, b, 32, a_zero_point=zp).astype(np.float64)
    bound = ref_s[:, None].T * (np.abs(p).sum(-1) * 2.0**-25 + 8 * 0.5) + np.abs(y) * 1e-6 + 1e-6
    assert np.all(np.abs(acc * ref_s[None, :].astype(np.float64) - y) <= bound)


def test_threads_do_not_change_results(rng):
    a, b, zp = _case(rng, 17, 6, 40)
    one = core.group_partial_sums_s32(a, b, 8, a_zero_point=zp, threads=1)
    three = core.group_partial_sums_s32(a, b, 8, a_zero_point=zp, threads=3)
    np.testing.assert_array_equal(one, three)


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(0, 6),
    n=st.integers(1, 6),
    k=st.integers(0, 70),
    group_size=st.integers(1, 40),
    signed=st.booleans(),
    rounding=st.sampled_from(ROUNDINGS),
    frac_bits=st.integers(0, 31),
    acc_bits=st.integers(2, 64),
    seed=st.integers(0, 2**32 - 1),
    isa=st.sampled_from(ISAS),
)
def test_property_random(m, n, k, group_size, signed, rounding, frac_bits, acc_bits, seed, isa):
    rng = np.random.default_rng(seed)
    a, b, zp = _case(rng, m, n, k, np.int8 if signed else np.uint8)
    groups = ref.group_count(k, group_size)
    np.testing.assert_array_equal(
        core.group_partial_sums_s32(a, b, group_size, a_zero_point=zp, isa=isa),
        ref.group_partial_sums_s32(a, b, group_size, zp),
    )
    scales = rng.random((n, groups)).astype(np.float32)
    np.testing.assert_array_equal(
        core.groupwise_gemm_float(a, b, scales, group_size, a_zero_point=zp, isa=isa).view(np.int32),
        ref.groupwise_gemm_float(a, b, scales, group_size, zp).view(np.int32),
    )
    mult = rng.integers(-(2**31), 2**31 - 1, size=(n, groups), endpoint=True).astype(np.int32)
    got = core.groupwise_gemm_fixed_point(a, b, mult, group_size, frac_bits, zp, rounding, acc_bits, isa)
    want = ref.groupwise_gemm_fixed_point(a, b, mult, group_size, frac_bits, zp, rounding, acc_bits)
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1] == want[1]


@pytest.mark.parametrize(
    ("call", "exc", "word"),
    [
        (lambda: core.group_partial_sums_s32(np.zeros((2, 4), np.int16), np.zeros((2, 4), np.int8), 2), TypeError, "a"),
        (lambda: core.group_partial_sums_s32(np.zeros((2, 4), np.uint8), np.zeros((2, 4), np.uint8), 2), TypeError, "b"),
        (lambda: core.group_partial_sums_s32(np.zeros((2, 4), np.uint8), np.zeros((2, 5), np.int8), 2), ValueError, "K"),
        (lambda: core.group_partial_sums_s32(np.zeros((2, 4), np.uint8), np.zeros((2, 4), np.int8), 0), ValueError,
         "group_size"),
        (lambda: core.group_partial_sums_s32(np.zeros((2, 4), np.int8), np.zeros((2, 4), np.int8), 2, 128), ValueError,
         "a_zero_point"),
        (lambda: core.groupwise_gemm_float(np.zeros((2, 4), np.uint8), np.zeros((3, 4), np.int8),
                                           np.zeros((3, 3), np.float32), 2), ValueError, "scales"),
        (lambda: core.groupwise_gemm_float(np.zeros((2, 4), np.uint8), np.zeros((3, 4), np.int8),
                                           np.zeros((3, 2), np.float64), 2), TypeError, "scales"),
        (lambda: core.groupwise_gemm_fixed_point(np.zeros((2, 4), np.uint8), np.zeros((3, 4), np.int8),
                                                 np.zeros((3, 2), np.int64), 2, 4), TypeError, "multipliers"),
        (lambda: core.groupwise_gemm_fixed_point(np.zeros((2, 4), np.uint8), np.zeros((3, 4), np.int8),
                                                 np.zeros((3, 2), np.int32), 2, 63), ValueError, "frac_bits"),
        (lambda: core.groupwise_gemm_fixed_point(np.zeros((2, 4), np.uint8), np.zeros((3, 4), np.int8),
                                                 np.zeros((3, 2), np.int32), 2, 4, acc_bits=65), ValueError, "acc_bits"),
        (lambda: core.groupwise_gemm_fixed_point(np.zeros((2, 4), np.uint8), np.zeros((3, 4), np.int8),
                                                 np.zeros((3, 2), np.int32), 2, 4, rounding="UP"), ValueError,
         "rounding"),
        (lambda: core.groupwise_gemm_fixed_point(np.zeros((2, 4), np.uint8), np.zeros((3, 4), np.int8),
                                                 np.zeros((3, 2), np.int32), 2, 4,
                                                 rounding=core.RoundingMode.STOCHASTIC), ValueError, "STOCHASTIC"),
        (lambda: core.group_scales_to_fixed_point(np.array([[np.nan]], np.float32), 8), ValueError, "scales"),
        (lambda: core.group_scales_to_fixed_point(np.array([[-1.0]], np.float32), 8), ValueError, "scales"),
        (lambda: core.group_scales_to_fixed_point(np.array([[1.0]], np.float32), 31), ValueError, "frac_bits"),
    ],
)
def test_bad_arguments_raise(call, exc, word):
    with pytest.raises(exc, match=word):
        call()
