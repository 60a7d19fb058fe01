"""conv2d_requantize_float, gemm_requantize_float and depthwise_conv2d_requantize_float (the int32 kernel with
float-scale requantization applied to every finished tile) equal exactly the two-call composition they
replace: requantize_float(<kernel>_s32(...), scale, zero_point, qmin, qmax, bias=bias, precision="fp32",
scale_op="multiply", clamp="before_rounding", rounding=HALF_TO_EVEN) -- onnxruntime's QLinearConv / QGEMM
output stage. The composition runs with requantize_float's portable loop (isa="scalar"), so every fused
vector kernel is checked against the scalar code; test_simd_requant.py checks that against the numpy twin."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import _core

GEMM_ISAS = _core.cpu_features()["gemm_isas"]
DW = _core.DepthwiseMode
_DW_ISA = {"scalar": "scalar", "avx2": "avx2", "avx512_vnni": "avx512", "amx": "avx512"}
DW_ISAS = sorted({_DW_ISA[i] for i in GEMM_ISAS})
OUT = {"uint8": (0, 255), "int8": (-128, 127)}


def _requant(acc, scale, zp, qmin, qmax, bias, out_dtype):
    return _core.requantize_float(acc, scale, zp, qmin, qmax, bias=bias, precision="fp32", scale_op="multiply",
                                  clamp="before_rounding", rounding=_core.RoundingMode.HALF_TO_EVEN,
                                  out_dtype=out_dtype, isa="scalar")


def _activations(rng, shape, dtype, zp, small):
    info = np.iinfo(dtype)
    if small:  # a few codes around the zero point: tiny accumulators, so scale 0.5 / 0.25 produces ties
        return np.clip(rng.integers(zp - 2, zp + 3, shape), info.min, info.max).astype(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def _requant_params(rng, O, out_dtype, per_channel, with_bias, kind):
    """(scale, zero_point, qmin, qmax, bias). kind: 'ties' (0.5 / 0.25), 'clamp' (large: most values clamp at
    qmin or qmax), 'normal'."""
    qmin, qmax = OUT[out_dtype]
    n = O if per_channel else 1
    if kind == "ties":
        scale = rng.choice(np.array([0.5, 0.25], np.float32), n)
    elif kind == "clamp":
        scale = rng.uniform(0.05, 0.5, n).astype(np.float32)
    else:
        scale = rng.uniform(1e-5, 2e-3, n).astype(np.float32)
    edge = [qmin, qmax, (qmin + qmax) // 2]
    zp = rng.choice(edge, n) if per_channel else int(rng.choice(edge))
    bias = rng.integers(-300, 300, O).astype(np.int32) if with_bias else None
    return scale, zp, qmin, qmax, bias


CONV_CASES = [  # (N, H, W, C, O, KH, KW, strides, dilations, pads, groups)
    (1, 7, 9, 16, 24, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), 1),     # pointwise: A read directly
    (2, 9, 7, 12, 70, 1, 1, (2, 2), (1, 1), (0, 0, 0, 0), 1),     # 1x1 stride 2: gathered; N not a multiple of 64
    (1, 11, 13, 8, 20, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 1),
    (1, 12, 10, 6, 18, 3, 3, (2, 2), (1, 1), (1, 0, 2, 1), 1),    # asymmetric pads
    (1, 10, 10, 4, 10, 3, 3, (1, 1), (2, 2), (2, 2, 2, 2), 1),    # dilation
    (1, 16, 15, 3, 17, 7, 7, (2, 2), (1, 1), (3, 3, 3, 3), 1),    # stem-like 7x7, odd M
    (1, 8, 9, 8, 6, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 2),       # groups 2
    (1, 9, 8, 8, 8, 3, 3, (1, 2), (1, 1), (1, 1, 1, 1), 8),       # groups = C (depthwise as a grouped conv)
    (1, 14, 14, 32, 130, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), 1),  # several M blocks and panels
]


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
@pytest.mark.parametrize("isa", GEMM_ISAS)
@pytest.mark.parametrize("mode", ["exact", "avx2_pairs"])
def test_conv2d_requantize_float_equals_two_calls(case, isa, mode, rng):
    N, H, W, C, O, KH, KW, strides, dil, pads, groups = CONV_CASES[case]
    for trial, (x_dtype, out_dtype, per_channel, with_bias, kind, threads) in enumerate([
            ("uint8", "uint8", True, True, "normal", 1), ("int8", "int8", False, False, "ties", 2),
            ("uint8", "int8", False, True, "clamp", 2), ("int8", "uint8", True, False, "clamp", 1),
            ("uint8", "uint8", True, True, "ties", 2)]):
        info = np.iinfo(x_dtype)
        x_zp = int(rng.choice([info.min, info.max, 0 if x_dtype == "int8" else 128]))
        x = _activations(rng, (N, H, W, C), x_dtype, x_zp, small=kind == "ties")
        w = rng.integers(-128, 128, (O, KH, KW, C // groups)).astype(np.int8)
        if kind == "ties":
            w = rng.integers(-2, 3, w.shape).astype(np.int8)
        w_zp = rng.integers(-3, 4, O) if trial == 0 else None
        pw = _core.pack_conv_weights(w, groups=groups, w_zero_point=w_zp)
        scale, zp, qmin, qmax, bias = _requant_params(rng, O, out_dtype, per_channel, with_bias, kind)
        geo = dict(x_zero_point=x_zp, strides=strides, dilations=dil, pads=pads, mode=mode, isa=isa, threads=threads)
        want = _requant(_core.conv2d_s32(x, pw, **geo), scale, zp, qmin, qmax, bias, out_dtype)
        got = _core.conv2d_requantize_float(x, pw, scale=scale, zero_point=zp, qmin=qmin, qmax=qmax, bias=bias,
                                            out_dtype=out_dtype, **geo)
        assert got.dtype == np.dtype(out_dtype) and got.shape == want.shape
        np.testing.assert_array_equal(got, want, err_msg=f"trial {trial}")
        # raw OHWI weights (packed inside the call) give the same result
        raw = _core.conv2d_requantize_float(x, w, w_zero_point=w_zp, groups=groups, scale=scale, zero_point=zp,
                                            qmin=qmin, qmax=qmax, bias=bias, out_dtype=out_dtype, **geo)
        np.testing.assert_array_equal(raw, want)


@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (37, 70, 33), (193, 16, 64), (64, 129, 300), (5, 200, 1030)])
@pytest.mark.parametrize("isa", GEMM_ISAS)
def test_gemm_requantize_float_equals_two_calls(M, N, K, isa, rng):
    for a_dtype, out_dtype, mode, per_channel, with_bias, kind, threads in [
            ("uint8", "uint8", "exact", True, True, "normal", 2), ("int8", "int8", "avx2_pairs", False, True, "ties", 1),
            ("int8", "uint8", "exact", True, False, "clamp", 2), ("uint8", "int8", "avx2_pairs", True, True, "clamp", 2)]:
        info = np.iinfo(a_dtype)
        a_zp = int(rng.integers(info.min, info.max, endpoint=True))
        a = _activations(rng, (M, K), a_dtype, a_zp, small=kind == "ties")
        b = rng.integers(-2, 3, (N, K)).astype(np.int8) if kind == "ties" else \
            rng.integers(-128, 128, (N, K)).astype(np.int8)
        pb = _core.pack_weights(b, rng.integers(-5, 5, N) if per_channel else None)
        scale, zp, qmin, qmax, bias = _requant_params(rng, N, out_dtype, per_channel, with_bias, kind)
        kw = dict(a_zero_point=a_zp, mode=mode, isa=isa, threads=threads)
        want = _requant(_core.gemm_s32(a, pb, **kw), scale, zp, qmin, qmax, bias, out_dtype)
        got = _core.gemm_requantize_float(a, pb, scale=scale, zero_point=zp, qmin=qmin, qmax=qmax, bias=bias,
                                          out_dtype=out_dtype, **kw)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("acc_bits,overflow", [(16, "wrap"), (12, "saturate"), (20, "wrap")])
@pytest.mark.parametrize("mode", ["exact", "avx2_pairs"])
def test_fused_narrow_accumulators_apply_requant_afterwards(acc_bits, overflow, mode, rng):
    # Narrow accumulators run the sequential path (or the blocked one when bounds allow): requantization is
    # applied to the whole result afterwards and must still equal the composition.
    a = rng.integers(0, 256, (29, 75)).astype(np.uint8)
    b = rng.integers(-128, 128, (40, 75)).astype(np.int8)
    scale, zp, qmin, qmax, bias = _requant_params(rng, 40, "uint8", True, True, "clamp")
    kw = dict(a_zero_point=3, mode=mode, acc_bits=acc_bits, overflow=overflow, threads=2)
    want = _requant(_core.gemm_s32(a, b, **kw), scale, zp, qmin, qmax, bias, "uint8")
    got = _core.gemm_requantize_float(a, b, scale=scale, zero_point=zp, qmin=qmin, qmax=qmax, bias=bias, **kw)
    np.testing.assert_array_equal(got, want)
    x = rng.integers(0, 256, (1, 6, 7, 9)).astype(np.uint8)
    w = rng.integers(-128, 128, (40, 3, 3, 9)).astype(np.int8)
    geo = dict(x_zero_point=3, pads=(1, 1, 1, 1), mode=mode, acc_bits=acc_bits, overflow=overflow, threads=2)
    want = _requant(_core.conv2d_s32(x, w, **geo), scale, zp, qmin, qmax, bias, "uint8")
    got = _core.conv2d_requantize_float(x, w, scale=scale, zero_point=zp, qmin=qmin, qmax=qmax, bias=bias, **geo)
    np.testing.assert_array_equal(got, want)


DW_CASES = [  # (N, H, W, C, mult, K, strides, dilations, pads)
    (1, 9, 11, 16, 1, 3, (1, 1), (1, 1), (1, 1, 1, 1)),
    (2, 10, 9, 24, 1, 3, (2, 2), (1, 1), (1, 1, 1, 1)),
    (1, 13, 13, 8, 2, 5, (1, 1), (1, 1), (2, 2, 2, 2)),
    (1, 12, 11, 21, 1, 7, (2, 2), (1, 1), (3, 3, 3, 3)),   # C not a multiple of 8 / 16
    (1, 10, 10, 5, 3, 3, (1, 1), (2, 2), (0, 1, 2, 3)),
]


@pytest.mark.parametrize("case", range(len(DW_CASES)))
@pytest.mark.parametrize("isa", ["auto"] + DW_ISAS)
@pytest.mark.parametrize("mode", [DW.EXACT, DW.FBGEMM_DW_PAIRS])
def test_depthwise_conv2d_requantize_float_equals_two_calls(case, isa, mode, rng):
    N, H, W, C, mult, K, strides, dil, pads = DW_CASES[case]
    O = C * mult
    for x_dtype, out_dtype, per_channel, with_bias, kind, threads in [
            ("uint8", "uint8", True, True, "normal", 2), ("int8", "int8", False, True, "ties", 1),
            ("uint8", "int8", True, False, "clamp", 2), ("int8", "uint8", False, False, "clamp", 2),
            ("uint8", "uint8", True, True, "ties", 1)]:
        if mode == DW.FBGEMM_DW_PAIRS and x_dtype == "int8":
            continue  # fbgemm's kernel is uint8 x int8 only
        info = np.iinfo(x_dtype)
        x_zp = int(rng.choice([info.min, info.max, 0 if x_dtype == "int8" else 128]))
        x = _activations(rng, (N, H, W, C), x_dtype, x_zp, small=kind == "ties")
        w = (rng.integers(-2, 3, (O, K, K, 1)) if kind == "ties" else rng.integers(-128, 128, (O, K, K, 1)))
        w = w.astype(np.int8)
        w_zp = rng.integers(-4, 4, O) if mode == DW.EXACT and per_channel else None
        scale, zp, qmin, qmax, bias = _requant_params(rng, O, out_dtype, per_channel, with_bias, kind)
        geo = dict(depth_multiplier=mult, x_zero_point=x_zp, w_zero_point=w_zp, mode=mode, isa=isa, threads=threads)
        want = _requant(_core.depthwise_conv2d_s32(x, w, list(strides), list(dil), list(pads), **geo),
                        scale, zp, qmin, qmax, bias, out_dtype)
        got = _core.depthwise_conv2d_requantize_float(x, w, list(strides), list(dil), list(pads), scale=scale,
                                                      zero_point=zp, qmin=qmin, qmax=qmax, bias=bias,
                                                      out_dtype=out_dtype, **geo)
        assert got.dtype == np.dtype(out_dtype)
        np.testing.assert_array_equal(got, want)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), k=st.sampled_from([1, 3, 5]), stride=st.integers(1, 2),
       groups=st.sampled_from([1, 2]), isa=st.sampled_from(GEMM_ISAS), mode=st.sampled_from(["exact", "avx2_pairs"]),
       x_signed=st.booleans(), out_signed=st.booleans(), per_channel=st.booleans(), threads=st.integers(1, 2),
       kind=st.sampled_from(["normal", "ties", "clamp"]))
def test_conv2d_requantize_float_property(seed, k, stride, groups, isa, mode, x_signed, out_signed, per_channel,
                                          threads, kind):
    rng = np.random.default_rng(seed)
    H, W = (int(v) for v in rng.integers(k, 12, 2))
    C = groups * int(rng.integers(1, 9))
    O = groups * int(rng.integers(1, 40))
    x_dtype, out_dtype = ("int8" if x_signed else "uint8"), ("int8" if out_signed else "uint8")
    info = np.iinfo(x_dtype)
    x_zp = int(rng.integers(info.min, info.max, endpoint=True))
    x = _activations(rng, (1, H, W, C), x_dtype, x_zp, small=kind == "ties")
    w = rng.integers(-2, 3, (O, k, k, C // groups)) if kind == "ties" else rng.integers(-128, 128, (O, k, k, C // groups))
    w = w.astype(np.int8)
    scale, zp, qmin, qmax, bias = _requant_params(rng, O, out_dtype, per_channel, bool(seed & 1), kind)
    p = k // 2
    geo = dict(x_zero_point=x_zp, strides=(stride, stride), pads=(p, p, p, p), groups=groups, mode=mode, isa=isa,
               threads=threads)
    want = _requant(_core.conv2d_s32(x, w, **geo), scale, zp, qmin, qmax, bias, out_dtype)
    got = _core.conv2d_requantize_float(x, w, scale=scale, zero_point=zp, qmin=qmin, qmax=qmax, bias=bias,
                                        out_dtype=out_dtype, **geo)
    np.testing.assert_array_equal(got, want)


def test_fused_empty_batch():
    x = np.zeros((0, 5, 5, 4), np.uint8)
    w = np.ones((6, 3, 3, 4), np.int8)
    got = _core.conv2d_requantize_float(x, w, scale=0.5, zero_point=0, qmin=0, qmax=255, pads=(1, 1, 1, 1))
    assert got.shape == (0, 5, 5, 6) and got.dtype == np.uint8
    got = _core.gemm_requantize_float(np.zeros((0, 4), np.uint8), np.ones((3, 4), np.int8), scale=0.5,
                                      zero_point=0, qmin=0, qmax=255)
    assert got.shape == (0, 3)


# ---------------------------------------------------------------------------------------------------
# Bad input: TypeError / ValueError naming the argument

def _conv_args():
    return np.zeros((1, 5, 5, 4), np.uint8), np.ones((6, 3, 3, 4), np.int8)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(scale=np.ones(5, np.float32)), ValueError, "scale"),          # neither 1 nor O values
    (dict(scale=np.array(["a"])), TypeError, "scale"),
    (dict(scale=-1.0), ValueError, "scale"),
    (dict(scale=np.inf), ValueError, "scale"),
    (dict(zero_point=300), ValueError, "zero_point"),                   # outside [qmin, qmax]
    (dict(zero_point=np.zeros(4, np.int64)), ValueError, "zero_point"),
    (dict(zero_point=0.5), TypeError, "zero_point"),
    (dict(bias=np.zeros(6, np.float32)), TypeError, "bias"),
    (dict(bias=np.zeros(5, np.int32)), ValueError, "bias"),
    (dict(bias=np.zeros((6, 1), np.int32)), ValueError, "bias"),
    (dict(qmin=10, qmax=5), ValueError, "qmin"),
    (dict(out_dtype="int8"), ValueError, "out_dtype"),                  # [0, 255] does not fit int8
    (dict(out_dtype="float32"), TypeError, "out_dtype"),
    (dict(x_zero_point=-1), ValueError, "x_zero_point"),
    (dict(isa="sse"), ValueError, "isa"),
    (dict(mode="fast"), ValueError, "mode"),
])
def test_conv2d_requantize_float_bad_input(kwargs, exc, match):
    x, w = _conv_args()
    args = dict(scale=0.5, zero_point=0, qmin=0, qmax=255, pads=(1, 1, 1, 1))
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        _core.conv2d_requantize_float(x, w, **args)


def test_bad_input_gemm_and_depthwise():
    a = np.zeros((3, 4), np.uint8)
    b = np.ones((6, 4), np.int8)
    with pytest.raises(TypeError, match="a"):
        _core.gemm_requantize_float(a.astype(np.int32), b, scale=0.5, zero_point=0, qmin=0, qmax=255)
    with pytest.raises(ValueError, match="K mismatch"):
        _core.gemm_requantize_float(a[:, :3].copy(), b, scale=0.5, zero_point=0, qmin=0, qmax=255)
    with pytest.raises(ValueError, match="scale"):
        _core.gemm_requantize_float(a, b, scale=np.ones(4), zero_point=0, qmin=0, qmax=255)
    with pytest.raises(ValueError, match="bias"):
        _core.gemm_requantize_float(a, b, scale=0.5, zero_point=0, qmin=0, qmax=255, bias=np.zeros(7, np.int32))
    with pytest.raises(TypeError):
        _core.gemm_requantize_float(a, b, scale=0.5, zero_point=0, qmin=0)  # qmax missing
    x = np.zeros((1, 5, 5, 4), np.uint8)
    w = np.ones((4, 3, 3, 1), np.int8)
    with pytest.raises(ValueError, match="zero_point"):
        _core.depthwise_conv2d_requantize_float(x, w, scale=0.5, zero_point=-1, qmin=0, qmax=255)
    with pytest.raises(ValueError, match="scale"):
        _core.depthwise_conv2d_requantize_float(x, w, scale=np.ones(3), zero_point=0, qmin=0, qmax=255)
    with pytest.raises(TypeError, match="bias"):
        _core.depthwise_conv2d_requantize_float(x, w, scale=0.5, zero_point=0, qmin=0, qmax=255,
                                                bias=np.zeros(4, np.int64))
    with pytest.raises(TypeError, match="x must be uint8"):
        _core.depthwise_conv2d_requantize_float(x.astype(np.int8), w, scale=0.5, zero_point=0, qmin=0, qmax=255,
                                                mode=DW.FBGEMM_DW_PAIRS)
