"""The vector fast paths of requantize_float (AVX-512 / AVX2, float32 + HALF_TO_EVEN) and of add_float_scale
(onnxruntime's MLAS AVX2 QLinearAdd form, AVX2+FMA) give exactly the integers of their numpy twins in
hwsim.emulate (ref_numerics.requantize_float, ref_ops.add_float_scale), as do the portable loops they replace
(isa="scalar", and rounding modes the vector kernels do not serve)."""

import numpy as np
import pytest
from edge_values import integer_edge_values
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import _core
from hwsim.emulate import ref_numerics as ref
from hwsim.emulate import ref_ops

RM = _core.RoundingMode
I32 = (-(1 << 31), (1 << 31) - 1)
_ISA_OF = {"scalar": "scalar", "avx2": "avx2", "avx512_vnni": "avx512", "amx": "avx512"}
# Every requantization kernel this CPU can run ("scalar" is the portable loop).
REQUANT_ISAS = sorted({_ISA_OF[i] for i in _core.cpu_features()["gemm_isas"]})
OUT_RANGES = [  # (qmin, qmax, out_dtype)
    (-128, 127, "int8"), (0, 255, "uint8"), (0, 127, "int8"), (-32768, 32767, "int16"), (0, 65535, "uint16"),
    (-1000, 1000, "int32"), (I32[0], I32[1], "int32"),  # the last one is outside the fast path's 2^22 bound
]


def _edge_acc(rng, rows, C):
    """Accumulators: every int32 edge value first, then uniform values of three magnitudes."""
    edges = integer_edge_values(*I32, random_count=0)
    a = np.concatenate([rng.integers(-(1 << e), 1 << e, rows * C) for e in (8, 16, 30)])[: rows * C]
    a[: min(a.size, edges.size)] = edges[: min(a.size, edges.size)]
    return a.reshape(rows, C).astype(np.int32)


def _both(acc, scale, zp, qmin, qmax, **kw):
    """Every ISA's result, checked equal to the numpy twin; returns it."""
    want = ref.requantize_float(acc, scale, zp, qmin, qmax, **kw)
    for isa in REQUANT_ISAS:
        got = _core.requantize_float(acc, scale, zp, qmin, qmax, isa=isa, **kw)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want, err_msg=f"isa={isa}")
    return want


@pytest.mark.parametrize("qmin,qmax,out_dtype", OUT_RANGES)
@pytest.mark.parametrize("bias_kind", ["none", "int32", "float_divide", "float_reciprocal"])
@pytest.mark.parametrize("scale_op", ["multiply", "divide"])
def test_requantize_float_fast_paths_equal_twin(qmin, qmax, out_dtype, bias_kind, scale_op, rng):
    C = 37  # not a multiple of 16 or 8: every kernel runs its tail
    acc = _edge_acc(rng, 9, C)
    scale = rng.uniform(1e-6, 2e-2, C).astype(np.float32)
    zp = rng.integers(qmin, qmax, C, endpoint=True) if qmax - qmin < (1 << 20) else np.zeros(C, np.int64)
    kw = dict(scale_op=scale_op, out_dtype=out_dtype)
    if bias_kind == "int32":
        kw.update(bias=rng.integers(*I32, C, endpoint=True).astype(np.int32))  # wraps around with the edges
    elif bias_kind.startswith("float"):
        kw.update(bias=rng.normal(0, 1e4, C).astype(np.float32), bias_scale=rng.uniform(1e-3, 1, C).astype(np.float32),
                  bias_mode=bias_kind)
    for clamp in ("before_rounding", "after_rounding"):
        _both(acc, scale, zp, qmin, qmax, clamp=clamp, **kw)


@pytest.mark.parametrize("scale", [0.5, 0.25, 0.125, 1.5, 2.0 ** -20])
@pytest.mark.parametrize("qmin,qmax,zp", [(-128, 127, 0), (-128, 127, -128), (0, 255, 255), (0, 255, 0)])
def test_requantize_float_ties_round_half_to_even(scale, qmin, qmax, zp):
    # Every odd accumulator times 0.5 is a tie; with 0.25, 0.125 ties come every 2nd / 4th value. Values just
    # around both clamp bounds (and the int32 extremes) exercise the clamp on both sides.
    near = [int(np.floor((b - zp + h) / scale)) + d for b in (qmin, qmax) for h in (-0.5, 0.5) for d in range(-2, 3)]
    vals = np.unique(np.concatenate([np.arange(-600, 601), near, I32]))
    vals = vals[(vals >= I32[0]) & (vals <= I32[1])]
    acc = np.stack([vals, vals[::-1]], axis=1).astype(np.int32)
    out = _both(acc, np.float32(scale), zp, qmin, qmax, clamp="before_rounding")
    assert (out == qmin).any() and (out == qmax).any()


@pytest.mark.parametrize("rounding", [m for m in RM.__members__.values() if m != RM.STOCHASTIC])
def test_requantize_float_every_rounding_mode_equals_twin(rounding, rng):
    # HALF_TO_EVEN takes the vector kernels, every other mode the portable small-value loop.
    acc = np.concatenate([_edge_acc(rng, 6, 21), (np.arange(126) - 63).reshape(6, 21).astype(np.int32)])
    _both(acc, rng.uniform(0.05, 1, 21).astype(np.float32), 3, -128, 127, rounding=rounding)


@pytest.mark.parametrize("C", [1, 3, 5, 16, 63])
def test_requantize_float_narrow_rows(C, rng):
    # C < 64 runs on rows folded to >= 64 columns (constants repeated); the rows left over run unfolded.
    acc = rng.integers(-3000, 3000, (101, C)).astype(np.int32)
    scale = rng.uniform(0.01, 0.3, C).astype(np.float32)
    _both(acc, scale, rng.integers(-5, 5, C), -128, 127, bias=rng.integers(-99, 99, C).astype(np.int32))


def test_requantize_float_nan_from_float_scale_underflow_matches():
    # A float64 scale that underflows to float32 zero, times an infinite float bias: NaN inside the kernel.
    # Every path turns it into the same integer (INT32_MIN + zp, truncated to the output width).
    acc = np.zeros((2, 17), np.int32)
    bias = np.full(17, 3e38, np.float32)
    got = {isa: _core.requantize_float(acc, 1e-50, 0, -128, 127, bias=bias, bias_scale=np.float32(1e-10),
                                       bias_mode="float_divide", isa=isa) for isa in REQUANT_ISAS}
    for isa in REQUANT_ISAS:
        np.testing.assert_array_equal(got[isa], got["scalar"], err_msg=isa)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 12), C=st.integers(1, 80), seed=st.integers(0, 2 ** 32 - 1),
       out=st.sampled_from(OUT_RANGES[:5]), per_channel=st.booleans(), with_bias=st.booleans())
def test_requantize_float_property_all_isas_agree(rows, C, seed, out, per_channel, with_bias):
    rng = np.random.default_rng(seed)
    qmin, qmax, out_dtype = out
    acc = rng.integers(-(1 << 20), 1 << 20, (rows, C)).astype(np.int32)
    scale = rng.uniform(1e-5, 1e-2, C if per_channel else 1).astype(np.float32)
    zp = rng.integers(qmin, qmax, C if per_channel else 1, endpoint=True)
    bias = rng.integers(-(1 << 24), 1 << 24, C).astype(np.int32) if with_bias else None
    kw = dict(bias=bias, clamp="before_rounding", out_dtype=out_dtype)
    want = _core.requantize_float(acc, scale, zp, qmin, qmax, isa="scalar", **kw)
    for isa in REQUANT_ISAS:
        np.testing.assert_array_equal(_core.requantize_float(acc, scale, zp, qmin, qmax, isa=isa, **kw), want)
    if rows * C <= 64:  # the numpy twin is slow: spot-check the small cases
        np.testing.assert_array_equal(want, ref.requantize_float(acc, scale, zp, qmin, qmax, **kw))


def test_requantize_float_isa_argument_checked():
    acc = np.zeros((2, 3), np.int32)
    with pytest.raises(ValueError, match="isa"):
        _core.requantize_float(acc, 0.5, 0, -128, 127, isa="sse9")
    with pytest.raises(TypeError, match="isa"):
        _core.requantize_float(acc, 0.5, 0, -128, 127, isa=3)


# ---------------------------------------------------------------------------------------------------
# QLinearAdd (MLAS AVX2 form)

def _all_pairs(dtype):
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    a, b = np.meshgrid(np.arange(lo, hi + 1), np.arange(lo, hi + 1), indexing="ij")
    tail = np.array([lo, hi, 0, 1, -1 if lo < 0 else 2], dtype=np.int64)  # 65,541 elements: an odd tail
    return (np.concatenate([a.ravel(), tail]).astype(dtype), np.concatenate([b.ravel(), tail[::-1]]).astype(dtype))


ADD_PARAMS = {  # (a_scale, a_zp, b_scale, b_zp, c_scale, c_zp)
    "uint8": [(0.02, 128, 0.03, 120, 0.05, 125), (0.5, 0, 0.25, 0, 1.0, 0), (0.1, 255, 0.1, 0, 0.1, 3),
              (0.004, 7, 0.9, 200, 0.0123, 250)],
    "int8": [(0.02, 0, 0.03, -8, 0.05, 5), (0.5, -128, 0.25, 127, 1.0, 0), (0.1, 0, 0.1, 0, 0.1, -128),
             (0.9, 100, 0.004, -3, 0.0123, 127)],
}


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("case", range(4))
def test_add_float_scale_all_pairs_equal_twin(dtype, case):
    # Case 1 (ratios 0.5 and 0.25) puts exact .5 ties on a quarter of the pairs; the others clamp at both ends.
    a, b = _all_pairs(np.dtype(dtype))
    sa, za, sb, zb, sc, zc = ADD_PARAMS[dtype][case]
    want = ref_ops.add_float_scale(a, b, sa, za, sb, zb, sc, zc)
    fast = _core.add_float_scale(a, b, sa, za, sb, zb, sc, zc)
    slow = _core.add_float_scale(a, b, sa, za, sb, zb, sc, zc, isa="scalar")
    np.testing.assert_array_equal(fast, want)
    np.testing.assert_array_equal(slow, want)
    info = np.iinfo(dtype)
    if case != 1:
        assert (want == info.min).any() or (want == info.max).any()


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("rounding", [RM.HALF_TO_EVEN, RM.HALF_AWAY_FROM_ZERO, RM.FLOOR])
def test_add_float_scale_sub_range_and_other_roundings(dtype, rounding, rng):
    # A narrowed [qmin, qmax] (fused ReLU-style bounds); non-RNE modes run the element loop only.
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max, 4099, endpoint=True).astype(dtype)
    b = rng.integers(info.min, info.max, 4099, endpoint=True).astype(dtype)
    qmin, qmax = int(info.min) + 20, int(info.max) - 30
    zc = (qmin + qmax) // 2
    args = (a, b, 0.5, int(info.min) + 100, 0.25, int(info.max) - 50, 1.0, zc)
    want = ref_ops.add_float_scale(*args, qmin=qmin, qmax=qmax, rounding=rounding)
    for isa in ("auto", "scalar"):
        np.testing.assert_array_equal(_core.add_float_scale(*args, qmin=qmin, qmax=qmax, rounding=rounding, isa=isa),
                                      want)


def test_add_float_scale_isa_argument_checked():
    a = np.zeros(4, np.uint8)
    with pytest.raises(ValueError, match="isa"):
        _core.add_float_scale(a, a, 0.1, 0, 0.1, 0, 0.1, 0, isa="avx2")
