"""hwsim._core.gemm_s32: every ISA path equals the numpy twin (hwsim/emulate/ref_gemm.py) bit for bit.

The contract (modes, narrow accumulators, overflow counts) is written in csrc/hwsim/gemm.h; the twin
implements it in int64 one term at a time. Every ISA the machine has is forced in turn.
"""

from __future__ import annotations

import numpy as np
import pytest
from edge_values import int_type_range
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import _core
from hwsim.emulate.ref_gemm import gemm_s32_ref

ISAS = _core.cpu_features()["gemm_isas"]
MODES = ["exact", "avx2_pairs"]
A_DTYPES = [np.uint8, np.int8]


def random_operands(rng, m, k, n, a_dtype, a_bits=8, b_bits=8):
    """a_bits activations (unsigned for uint8, signed for int8), signed b_bits weights, in 8-bit lanes."""
    signed = a_dtype == np.int8
    lo, hi = int_type_range(a_bits, signed)
    a = rng.integers(lo, hi, size=(m, k), endpoint=True).astype(a_dtype)
    blo, bhi = int_type_range(b_bits, True)
    b = rng.integers(blo, bhi, size=(n, k), endpoint=True).astype(np.int8)
    return a, b


def check(a, b, isa, threads=1, **kw):
    want, want_count = gemm_s32_ref(a, b, **kw)
    got, got_count = _core.gemm_s32(a, b, isa=isa, threads=threads, count_overflow=True, **kw)
    assert got.dtype == np.int32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert got_count == want_count
    plain = _core.gemm_s32(a, b, isa=isa, threads=threads, **kw)  # the no-count path must agree too
    np.testing.assert_array_equal(plain, want)


def test_cpu_features_reports_dispatch():
    f = _core.cpu_features()
    assert f["auto_isa"] in f["gemm_isas"] and "scalar" in f["gemm_isas"]
    assert f["hardware_threads"] >= 1
    for key in ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni"):
        assert isinstance(f[key], bool)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("a_dtype", A_DTYPES)
@pytest.mark.parametrize(
    "m,k,n",
    [
        (1, 1, 1), (1, 7, 1), (3, 2, 5), (7, 3, 9), (6, 4, 64), (13, 65, 17), (5, 513, 3), (25, 1031, 130),
        (64, 256, 96), (40, 2100, 33),  # K > 2048: several K blocks on every ISA
    ],
)
def test_matches_twin_random(rng, isa, mode, a_dtype, m, k, n):
    a, b = random_operands(rng, m, k, n, a_dtype)
    lo, hi = int_type_range(8, a_dtype == np.int8)
    a_zp = int(rng.integers(lo, hi, endpoint=True))
    b_zp = rng.integers(-128, 127, size=n, endpoint=True)
    check(a, b, isa, threads=2, a_zero_point=a_zp, b_zero_point=b_zp, mode=mode)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "a_dtype,a_zp,b_zp",
    [
        (np.uint8, 0, 0), (np.uint8, 255, 0), (np.uint8, 0, -128), (np.uint8, 255, 127),
        (np.uint8, 128, None),
        (np.int8, 0, 0), (np.int8, -128, 0), (np.int8, 127, -128), (np.int8, -128, 127),
    ],
)
def test_zero_point_extremes_with_extreme_data(rng, isa, mode, a_dtype, a_zp, b_zp):
    # Data at the type extremes (255 / -128 / 127) makes every VPMADDUBSW pair saturate in avx2_pairs mode.
    lo, hi = int_type_range(8, a_dtype == np.int8)
    a = rng.choice(np.array([lo, hi, lo + 1, hi - 1, 0], dtype=np.int64), size=(9, 37)).astype(a_dtype)
    b = rng.choice(np.array([-128, 127, -127, 0, 1], dtype=np.int64), size=(21, 37)).astype(np.int8)
    check(a, b, isa, a_zero_point=a_zp, b_zero_point=b_zp, mode=mode)


# numerics.md section 5 (VPMADDUBSW test vectors, B.1): one pair, u8 x s8, zero points 0.
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize(
    "a_pair,b_pair,pairs_result",
    [((255, 255), (127, 127), 32767), ((255, 255), (-128, -128), -32768), ((127, 127), (127, 127), 32258)],
)
def test_vpmaddubsw_vectors(isa, a_pair, b_pair, pairs_result):
    a = np.array([a_pair], dtype=np.uint8)
    b = np.array([b_pair], dtype=np.int8)
    assert _core.gemm_s32(a, b, mode="avx2_pairs", isa=isa)[0, 0] == pairs_result
    exact = int(np.dot(a[0].astype(int), b[0].astype(int)))
    assert _core.gemm_s32(a, b, mode="exact", isa=isa)[0, 0] == exact
    _, count = _core.gemm_s32(a, b, mode="avx2_pairs", isa=isa, count_overflow=True)
    assert count == (1 if pairs_result != np.dot(a[0].astype(int), b[0].astype(int)) else 0)


# numerics.md section 5: oneDNN doc s8s8 example, a = b = (127, 127, 0, 0) gives 255 on AVX2 instead of 32258
# (a + 128 = (255, 255, 128, 128) saturates the first pair to 32767, compensation -128 * 254 = -32512).
@pytest.mark.parametrize("isa", ISAS)
def test_onednn_s8s8_example(isa):
    a = np.array([[127, 127, 0, 0]], dtype=np.int8)
    b = np.array([[127, 127, 0, 0]], dtype=np.int8)
    assert _core.gemm_s32(a, b, mode="avx2_pairs", isa=isa)[0, 0] == 255
    assert _core.gemm_s32(a, b, mode="exact", isa=isa)[0, 0] == 32258


@pytest.mark.parametrize("isa", ISAS)
def test_pairs_follow_given_k_order(isa):
    # (255, 255) with (127, 127) saturates as a pair; the same values split across pairs (k = 1, 2) do not.
    b = np.array([[127, 127, 0, 0], [0, 127, 127, 0]], dtype=np.int8)
    a = np.array([[255, 255, 0, 0], [0, 255, 255, 0]], dtype=np.uint8)
    got = _core.gemm_s32(a, b, mode="avx2_pairs", isa=isa)
    np.testing.assert_array_equal(got, [[32767, 32385], [32385, 64770]])


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("a_dtype", A_DTYPES)
@pytest.mark.parametrize("bits", [4, 2])
def test_low_bit_values_in_8bit_lanes(rng, isa, mode, a_dtype, bits):
    a, b = random_operands(rng, 19, 77, 33, a_dtype, a_bits=bits, b_bits=bits)
    check(a, b, isa, a_zero_point=1 if a_dtype == np.uint8 else -1, b_zero_point=-1, mode=mode)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("a_dtype", A_DTYPES)
@pytest.mark.parametrize("acc_bits", [8, 12, 16, 20, 24, 31, 32])
@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
def test_narrow_accumulators_and_overflow_counts(rng, isa, mode, a_dtype, acc_bits, overflow):
    a, b = random_operands(rng, 6, 41, 10, a_dtype)
    check(a, b, isa, a_zero_point=3 if a_dtype == np.uint8 else -3, b_zero_point=rng.integers(-5, 5, size=10),
          mode=mode, acc_bits=acc_bits, overflow=overflow)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
def test_narrow_accumulator_fast_path_when_no_overflow_possible(rng, isa, overflow):
    # 4-bit data and acc_bits = 16: bound K * 15 * 8 = 3600 < 2^15, so no count and the exact sums.
    a, b = random_operands(rng, 30, 30, 70, np.uint8, a_bits=4, b_bits=4)
    got, count = _core.gemm_s32(a, b, acc_bits=16, overflow=overflow, isa=isa, count_overflow=True)
    assert count == 0
    np.testing.assert_array_equal(got, a.astype(np.int64) @ b.astype(np.int64).T)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("mode", MODES)
def test_int32_wraps_like_vpdpbusd(isa, mode):
    # K = 70000 terms of 255 * 127 exceed int32: the exact-mode result wraps, the same on every path
    # (in avx2_pairs mode every pair saturates instead, and the count reports it).
    k = 70000
    a = np.full((2, k), 255, dtype=np.uint8)
    b = np.full((3, k), 127, dtype=np.int8)
    b[1] = -128
    want, want_count = gemm_s32_ref(a, b, mode=mode)
    np.testing.assert_array_equal(_core.gemm_s32(a, b, mode=mode, isa=isa, threads=2), want)
    got, count = _core.gemm_s32(a, b, mode=mode, isa=isa, count_overflow=True)
    np.testing.assert_array_equal(got, want)
    assert count == want_count > 0


def test_results_do_not_depend_on_threads_or_packing(rng):
    a, b = random_operands(rng, 301, 300, 200, np.uint8)
    b_zp = rng.integers(-128, 127, size=200, endpoint=True)
    packed = _core.pack_weights(b, b_zp)
    np.testing.assert_array_equal(packed.unpack(), b)
    np.testing.assert_array_equal(packed.zero_point, b_zp)
    assert (packed.n, packed.k) == (200, 300)
    ref = _core.gemm_s32(a, b, a_zero_point=9, b_zero_point=b_zp, isa="scalar", threads=1)
    for threads in (1, 2, 3, 0):
        np.testing.assert_array_equal(_core.gemm_s32(a, packed, a_zero_point=9, threads=threads), ref)


@pytest.mark.parametrize("isa", ISAS)
def test_empty_dimensions(isa):
    assert _core.gemm_s32(np.zeros((0, 5), np.uint8), np.zeros((3, 5), np.int8), isa=isa).shape == (0, 3)
    assert _core.gemm_s32(np.zeros((4, 5), np.uint8), np.zeros((0, 5), np.int8), isa=isa).shape == (4, 0)
    got = _core.gemm_s32(np.full((2, 0), 7, np.uint8), np.zeros((3, 0), np.int8), a_zero_point=5, isa=isa)
    np.testing.assert_array_equal(got, np.zeros((2, 3), np.int32))


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(1, 20), k=st.integers(1, 70), n=st.integers(1, 80),
    a_signed=st.booleans(), mode=st.sampled_from(MODES), isa=st.sampled_from(ISAS),
    acc_bits=st.sampled_from([10, 16, 32]), overflow=st.sampled_from(["wrap", "saturate"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_hypothesis_shapes(m, k, n, a_signed, mode, isa, acc_bits, overflow, seed):
    rng = np.random.default_rng(seed)
    a_dtype = np.int8 if a_signed else np.uint8
    a, b = random_operands(rng, m, k, n, a_dtype)
    lo, hi = int_type_range(8, a_signed)
    check(a, b, isa, threads=2, a_zero_point=int(rng.integers(lo, hi, endpoint=True)),
          b_zero_point=rng.integers(-128, 127, size=n, endpoint=True), mode=mode, acc_bits=acc_bits,
          overflow=overflow)


# ---- argument checking: ValueError / TypeError naming the argument, never a crash ----

A = np.zeros((3, 4), np.uint8)
B = np.zeros((5, 4), np.int8)


@pytest.mark.parametrize(
    "args,kwargs,exc,match",
    [
        ((A, np.zeros((5, 3), np.int8)), {}, ValueError, "K mismatch"),
        ((A.astype(np.int16), B), {}, TypeError, "a must have dtype"),
        ((A, B.astype(np.uint8)), {}, TypeError, "b must have dtype int8"),
        ((A.tolist(), B), {}, TypeError, "a must be a numpy array"),
        ((np.zeros((3, 8), np.uint8)[:, ::2], B), {}, ValueError, "a must be C-contiguous"),
        ((np.zeros(4, np.uint8), B), {}, ValueError, "a must be 2-D"),
        ((A, B), {"a_zero_point": 256}, ValueError, "a_zero_point"),
        ((A, B), {"a_zero_point": -1}, ValueError, "a_zero_point"),
        ((A.astype(np.int8), B), {"a_zero_point": 128}, ValueError, "a_zero_point"),
        ((A, B), {"b_zero_point": 128}, ValueError, "b_zero_point"),
        ((A, B), {"b_zero_point": [0, 1]}, ValueError, "b_zero_point"),
        ((A, B), {"b_zero_point": np.array([0.5] * 5)}, TypeError, "b_zero_point"),
        ((A, B), {"mode": "fast"}, ValueError, "mode"),
        ((A, B), {"overflow": "clip"}, ValueError, "overflow"),
        ((A, B), {"acc_bits": 7}, ValueError, "acc_bits"),
        ((A, B), {"acc_bits": 33}, ValueError, "acc_bits"),
        ((A, B), {"isa": "neon"}, ValueError, "isa"),
        ((A, B), {"threads": -1}, ValueError, "threads"),
        ((A, _core.pack_weights(B)), {"b_zero_point": 1}, ValueError, "b_zero_point"),
    ],
)
def test_bad_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        _core.gemm_s32(*args, **kwargs)


def test_unsupported_isa_raises():
    # On a CPU that has every ISA the list is empty; "auto" never raises.
    for isa in sorted({"scalar", "avx2", "avx512_vnni"} - set(ISAS)):
        with pytest.raises(ValueError, match="not supported"):
            _core.gemm_s32(A, B, isa=isa)
    _core.gemm_s32(A, B, isa="auto")


def test_enums_are_accepted():
    mode, overflow = _core.GemmMode.AVX2_PAIRS, _core.AccOverflow.SATURATE
    got = _core.gemm_s32(A, B, mode=mode, overflow=overflow, acc_bits=16)
    np.testing.assert_array_equal(got, np.zeros((3, 5), np.int32))
