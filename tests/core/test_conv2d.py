"""hwsim._core.conv2d_s32: NHWC x OHWI convolution equals the numpy twin (im2col + GEMM rules) on every ISA.

K order per group is (kh, kw, ci) with ci innermost; avx2_pairs pairs k = 2i, 2i+1 of that order
(csrc/hwsim/conv2d.h). Padding taps hold the input zero point.
"""

from __future__ import annotations

import numpy as np
import pytest
from edge_values import int_type_range
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import _core
from hwsim.emulate.ref_gemm import conv2d_s32_ref

ISAS = _core.cpu_features()["gemm_isas"]
MODES = ["exact", "avx2_pairs"]


def operands(rng, n, h, w, c, o, kh, kw, groups, x_dtype, bits=8):
    lo, hi = int_type_range(bits, x_dtype == np.int8)
    x = rng.integers(lo, hi, size=(n, h, w, c), endpoint=True).astype(x_dtype)
    wlo, whi = int_type_range(bits, True)
    wt = rng.integers(wlo, whi, size=(o, kh, kw, c // groups), endpoint=True).astype(np.int8)
    return x, wt


def check(x, w, isa, threads=1, **kw):
    want, want_count = conv2d_s32_ref(x, w, **kw)
    got, got_count = _core.conv2d_s32(x, w, isa=isa, threads=threads, count_overflow=True, **kw)
    assert got.dtype == np.int32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert got_count == want_count
    np.testing.assert_array_equal(_core.conv2d_s32(x, w, isa=isa, threads=threads, **kw), want)


GEOMETRIES = [
    # (n, h, w, c, o, kh, kw, strides, dilations, pads, groups)
    (1, 5, 5, 3, 4, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 1),
    (2, 7, 6, 5, 7, 3, 2, (2, 1), (1, 1), (0, 1, 2, 0), 1),
    (1, 9, 11, 6, 4, 3, 3, (1, 2), (2, 1), (1, 0, 2, 3), 2),
    (1, 8, 8, 16, 16, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), 1),  # pointwise: direct path, no im2col
    (2, 6, 5, 12, 6, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), 3),  # grouped pointwise
    (1, 8, 8, 16, 8, 1, 1, (2, 2), (1, 1), (0, 0, 0, 0), 1),  # 1x1 strided: im2col path
    (1, 6, 6, 4, 4, 1, 1, (1, 1), (1, 1), (1, 0, 0, 1), 1),  # 1x1 padded: im2col path
    (1, 7, 7, 8, 8, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 8),  # depthwise (groups == C)
    (1, 7, 7, 8, 16, 3, 3, (2, 2), (1, 1), (0, 0, 1, 1), 8),  # depthwise, multiplier 2
    (1, 4, 4, 3, 5, 4, 4, (1, 1), (1, 1), (0, 0, 0, 0), 1),  # kernel = input: 1x1 output
    (1, 3, 3, 70, 65, 2, 2, (1, 1), (1, 1), (2, 2, 2, 2), 1),  # K = 280, N > 64, heavy padding
    (1, 1, 1, 1, 1, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), 1),
    (1, 4, 5, 300, 5, 3, 3, (1, 1), (1, 1), (1, 1, 0, 1), 1),  # K = 2700: K blocks start inside a tap
]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("x_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("geo", GEOMETRIES)
def test_matches_twin(rng, isa, mode, x_dtype, geo):
    n, h, w, c, o, kh, kw, strides, dilations, pads, groups = geo
    x, wt = operands(rng, n, h, w, c, o, kh, kw, groups, x_dtype)
    lo, hi = int_type_range(8, x_dtype == np.int8)
    check(x, wt, isa, threads=2, x_zero_point=int(rng.integers(lo, hi, endpoint=True)),
          w_zero_point=rng.integers(-128, 127, size=o, endpoint=True), strides=strides, dilations=dilations,
          pads=pads, groups=groups, mode=mode)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize(
    "x_dtype,zp", [(np.uint8, 0), (np.uint8, 255), (np.uint8, 77), (np.int8, -128), (np.int8, 127)]
)
def test_padding_is_a_real_zero(rng, isa, x_dtype, zp):
    # An input equal to its zero point is real 0 everywhere, padding included: every output is 0.
    x = np.full((1, 4, 5, 3), zp, dtype=x_dtype)
    wt = rng.integers(-128, 127, size=(2, 3, 3, 3), endpoint=True).astype(np.int8)
    for mode in MODES:
        got = _core.conv2d_s32(x, wt, x_zero_point=zp, pads=(2, 1, 0, 3), isa=isa, mode=mode)
        if mode == "exact":
            np.testing.assert_array_equal(got, 0)
        want = conv2d_s32_ref(x, wt, x_zero_point=zp, pads=(2, 1, 0, 3), mode=mode)[0]
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "acc_bits,overflow", [(12, "wrap"), (12, "saturate"), (16, "saturate"), (20, "wrap")]
)
def test_narrow_accumulators(rng, isa, mode, acc_bits, overflow):
    x, wt = operands(rng, 1, 6, 6, 8, 6, 3, 3, 2, np.uint8)
    check(x, wt, isa, x_zero_point=100, w_zero_point=3, pads=(1, 1, 1, 1), groups=2, mode=mode,
          acc_bits=acc_bits, overflow=overflow)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("bits", [4, 2])
def test_low_bit_values(rng, isa, bits):
    x, wt = operands(rng, 1, 9, 9, 16, 24, 3, 3, 1, np.uint8, bits=bits)
    check(x, wt, isa, x_zero_point=1, strides=(2, 2), pads=(1, 1, 1, 1), mode="avx2_pairs")


def test_packed_weights_threads_and_isas_agree(rng):
    x, wt = operands(rng, 2, 14, 14, 32, 48, 3, 3, 1, np.uint8)
    zp = rng.integers(-3, 3, size=48)
    packed = _core.pack_conv_weights(wt, groups=1, w_zero_point=zp)
    assert packed.out_channels == 48 and packed.kernel_shape == (3, 3) and packed.groups == 1
    want = _core.conv2d_s32(x, wt, x_zero_point=5, w_zero_point=zp, pads=(1, 1, 1, 1), isa="scalar")
    for isa in ISAS:
        for threads in (1, 2, 0):
            got = _core.conv2d_s32(x, packed, x_zero_point=5, pads=(1, 1, 1, 1), isa=isa, threads=threads)
            np.testing.assert_array_equal(got, want)


@settings(max_examples=50, deadline=None)
@given(
    h=st.integers(1, 9), w=st.integers(1, 9), cg=st.integers(1, 5), og=st.integers(1, 5),
    groups=st.integers(1, 3), kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 3),
    sw=st.integers(1, 3), dh=st.integers(1, 2), dw=st.integers(1, 2),
    pads=st.tuples(*[st.integers(0, 2)] * 4), signed=st.booleans(),
    mode=st.sampled_from(MODES), isa=st.sampled_from(ISAS), seed=st.integers(0, 2**32 - 1),
)
def test_hypothesis_geometries(h, w, cg, og, groups, kh, kw, sh, sw, dh, dw, pads, signed, mode, isa, seed):
    if h + pads[0] + pads[2] < dh * (kh - 1) + 1 or w + pads[1] + pads[3] < dw * (kw - 1) + 1:
        return  # no output; the error path is tested below
    rng = np.random.default_rng(seed)
    x_dtype = np.int8 if signed else np.uint8
    x, wt = operands(rng, 1, h, w, cg * groups, og * groups, kh, kw, groups, x_dtype)
    lo, hi = int_type_range(8, signed)
    check(x, wt, isa, threads=2, x_zero_point=int(rng.integers(lo, hi, endpoint=True)),
          w_zero_point=int(rng.integers(-128, 127, endpoint=True)), strides=(sh, sw), dilations=(dh, dw),
          pads=pads, groups=groups, mode=mode)


X = np.zeros((1, 5, 5, 4), np.uint8)
W = np.zeros((6, 3, 3, 2), np.int8)


@pytest.mark.parametrize(
    "args,kwargs,exc,match",
    [
        ((X, W), {}, ValueError, "input channels per group"),
        ((X, W), {"groups": 4}, ValueError, "does not divide"),
        ((X, np.zeros((6, 3, 3, 1), np.int8)), {"groups": 3}, ValueError, "does not divide"),
        ((X, W), {"groups": 0}, ValueError, "groups"),
        ((X, W), {"groups": 2, "strides": (0, 1)}, ValueError, "strides"),
        ((X, W), {"groups": 2, "strides": (-1, 1)}, ValueError, "strides"),
        ((X, W), {"groups": 2, "dilations": (1, 0)}, ValueError, "dilations"),
        ((X, W), {"groups": 2, "pads": (0, -1, 0, 0)}, ValueError, "pads"),
        ((X, W), {"groups": 2, "pads": (0, 0, 0)}, ValueError, "pads"),
        ((X, W), {"groups": 2, "dilations": (3, 1)}, ValueError, "output size"),
        ((X, W), {"groups": 2, "x_zero_point": 300}, ValueError, "x_zero_point"),
        ((X, W), {"groups": 2, "w_zero_point": [1, 2]}, ValueError, "w_zero_point"),
        ((X.astype(np.float32), W), {"groups": 2}, TypeError, "x must have dtype"),
        ((X, W.astype(np.int16)), {"groups": 2}, TypeError, "w must have dtype int8"),
        ((X[0], W), {"groups": 2}, ValueError, "x must be 4-D"),
        ((X, W), {"groups": 2, "strides": "11"}, TypeError, "strides"),
        ((X, _core.pack_conv_weights(W, groups=2)), {"groups": 1}, ValueError, "groups"),
        ((X, _core.pack_conv_weights(W, groups=2)), {"w_zero_point": 0}, ValueError, "w_zero_point"),
        ((X, W), {"groups": 2, "pads": (2**40, 0, 0, 0)}, ValueError, "pads"),
    ],
)
def test_bad_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        _core.conv2d_s32(*args, **kwargs)


def test_empty_batch():
    assert _core.conv2d_s32(np.zeros((0, 5, 5, 4), np.uint8), W, groups=2).shape == (0, 3, 3, 6)
