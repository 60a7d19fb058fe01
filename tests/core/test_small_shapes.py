"""The layer shapes of MobileNetV2 and ResNet-50 (batch 1), on every GEMM ISA and depthwise path, 1 and 2
threads, uint8 and int8 activations with a non-zero zero point: the int32 kernels equal the numpy
references (hwsim/emulate/ref_gemm.py im2col, ref_depthwise.py) and the fused float requantization equals
requantize_float applied to the reference (the scalar loop).

These shapes select the fast paths that small K, small N and C = 3 take (csrc/hwsim/gemm.h: VNNI instead of
AMX for K <= 32, work-limited threads, scratch tiles; im2col.h: kernel-row runs; depthwise_conv2d.h: the
AVX-512 3x3 kernel), so each of them is checked on the exact geometry it serves.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from hwsim import _core
from hwsim.emulate import ref_depthwise
from hwsim.emulate.ref_gemm import im2col_nhwc

GEMM_ISAS = _core.cpu_features()["gemm_isas"]
DW_ISAS = [isa for isa in ("scalar", "avx2", "avx512") if _core.depthwise_isa_available(isa)]
DTYPES = ["uint8", "int8"]
THREADS = [1, 2]

POINTWISE = [  # (H, W, C, O): MobileNetV2, then ResNet-50
    (112, 112, 32, 16), (112, 112, 16, 96), (56, 56, 96, 24), (56, 56, 24, 144), (56, 56, 144, 24),
    (28, 28, 144, 32), (28, 28, 32, 192), (28, 28, 192, 32), (14, 14, 192, 64), (14, 14, 64, 384),
    (14, 14, 384, 64), (14, 14, 384, 96), (14, 14, 96, 576), (14, 14, 576, 96), (7, 7, 576, 160),
    (7, 7, 160, 960), (7, 7, 960, 160), (7, 7, 960, 320), (7, 7, 320, 1280),
    (56, 56, 64, 256), (56, 56, 256, 64), (28, 28, 512, 128), (14, 14, 1024, 256), (7, 7, 2048, 512),
]
DEPTHWISE = [  # (H, W, C, stride), 3x3 pad 1
    (112, 112, 32, 1), (112, 112, 96, 2), (56, 56, 144, 1), (56, 56, 144, 2), (28, 28, 192, 1),
    (28, 28, 192, 2), (14, 14, 384, 1), (14, 14, 576, 1), (14, 14, 576, 2), (7, 7, 960, 1),
]
STEMS = [  # (H, W, C, O, K, stride, pad)
    (224, 224, 3, 32, 3, 2, 1),
    (224, 224, 3, 64, 7, 2, 3),
]


def _requant(acc, scale, zp, qmin, qmax, bias, out_dtype):
    return _core.requantize_float(acc, scale, zp, qmin, qmax, bias=bias, precision="fp32", scale_op="multiply",
                                  clamp="before_rounding", rounding=_core.RoundingMode.HALF_TO_EVEN,
                                  out_dtype=out_dtype, isa="scalar")


@functools.lru_cache(maxsize=None)
def _conv_case(h, w, c, o, k, stride, pad, dtype):
    """Operands, the reference int32 result and requantization parameters of one convolution shape."""
    rng = np.random.default_rng(h * 1_000_003 + c * 1009 + o * 17 + k)
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, (1, h, w, c), endpoint=True).astype(dtype)
    zp = int(rng.integers(info.min + 1, info.max))  # never 0 for uint8: the compensation path is exercised
    wt = rng.integers(-128, 127, (o, k, k, c), endpoint=True).astype(np.int8)
    cols = im2col_nhwc(x, (k, k), strides=(stride, stride), pads=(pad,) * 4, pad_value=zp)
    # float64 sums of at most 2048 * 147 products of |.| <= 255 * 128 are exact
    acc = ((cols.astype(np.float64) - zp) @ wt.reshape(o, -1).T.astype(np.float64)).astype(np.int32)
    oh = (h + 2 * pad - k) // stride + 1
    ow = (w + 2 * pad - k) // stride + 1
    scale = rng.uniform(1e-4, 3e-3, o).astype(np.float32)
    bias = rng.integers(-5000, 5000, o).astype(np.int32)
    out_zp = int(rng.integers(1, 255))
    want_q = _requant(acc, scale, out_zp, 0, 255, bias, np.uint8)
    return x, zp, wt, acc.reshape(1, oh, ow, o), scale, bias, out_zp, want_q.reshape(1, oh, ow, o)


@functools.lru_cache(maxsize=None)
def _packed(h, w, c, o, k, stride, pad, dtype):
    return _core.pack_conv_weights(_conv_case(h, w, c, o, k, stride, pad, dtype)[2])


def _check_conv(shape, isa, threads, dtype):
    h, w, c, o, k, stride, pad = shape
    x, zp, wt, want, scale, bias, out_zp, want_q = _conv_case(*shape, dtype)
    packed = _packed(*shape, dtype)
    geo = {"strides": (stride, stride), "pads": (pad,) * 4}
    got = _core.conv2d_s32(x, packed, x_zero_point=zp, isa=isa, threads=threads, **geo)
    np.testing.assert_array_equal(got, want)
    got_q = _core.conv2d_requantize_float(x, packed, scale=scale, zero_point=out_zp, qmin=0, qmax=255, bias=bias,
                                          x_zero_point=zp, isa=isa, threads=threads, out_dtype=np.uint8, **geo)
    np.testing.assert_array_equal(got_q, want_q)


def _pointwise_cases():
    # the scalar kernel on the largest layers only at threads=1 (slow; the threaded split is the same code)
    for shape in POINTWISE:
        for isa in GEMM_ISAS:
            for threads in THREADS:
                if not (isa == "scalar" and threads == 2 and shape[2] * shape[3] * shape[0] * shape[1] > 20_000_000):
                    yield pytest.param(shape, isa, threads, id="{}x{}x{}->{}".format(*shape) + f"-{isa}-{threads}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,isa,threads", list(_pointwise_cases()))
def test_pointwise_layers(shape, isa, threads, dtype):
    _check_conv((*shape, 1, 1, 0), isa, threads, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("isa", GEMM_ISAS)
@pytest.mark.parametrize("shape", STEMS, ids=lambda s: "{}x{}x{}->{}k{}s{}".format(*s))
def test_stem_layers(shape, isa, threads, dtype):
    _check_conv(shape, isa, threads, dtype)


def test_dense_gemm_small_k_matches_on_every_isa():
    # gemm_requantize_float on the K = 16 shape (VNNI replaces AMX there) and a K = 33 one (AMX stays).
    rng = np.random.default_rng(5)
    for k in (16, 33):
        a = rng.integers(0, 256, (1000, k)).astype(np.uint8)
        b = rng.integers(-128, 128, (40, k)).astype(np.int8)
        want = ((a.astype(np.int64) - 77) @ b.T.astype(np.int64)).astype(np.int32)
        for isa in GEMM_ISAS:
            np.testing.assert_array_equal(_core.gemm_s32(a, b, a_zero_point=77, isa=isa, threads=2), want)
            got = _core.gemm_requantize_float(a, b, scale=np.float32(0.01), zero_point=3, qmin=0, qmax=255,
                                              a_zero_point=77, isa=isa, threads=2)
            np.testing.assert_array_equal(got, _requant(want, np.float32(0.01), 3, 0, 255, None, np.uint8))


@functools.lru_cache(maxsize=None)
def _dw_case(h, w, c, stride, dtype, mode, w_zp):
    rng = np.random.default_rng(h * 7919 + c * 31 + stride)
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, (1, h, w, c), endpoint=True).astype(dtype)
    zp = int(rng.integers(info.min + 1, info.max))
    wt = rng.integers(-128, 127, (c, 3, 3, 1), endpoint=True).astype(np.int8)
    wzp = rng.integers(-128, 128, c) if w_zp else None
    kw = {"strides": (stride, stride), "pads": (1, 1, 1, 1), "x_zero_point": zp, "w_zero_point": wzp}
    want = ref_depthwise.depthwise_conv2d_s32(x, wt, mode=mode, **kw)
    scale = rng.uniform(1e-4, 3e-2, c).astype(np.float32)
    bias = rng.integers(-3000, 3000, c).astype(np.int32)
    want_q = _requant(want.reshape(-1, c), scale, 7, 0, 255, bias, np.uint8).reshape(want.shape)
    return x, wt, kw, want, scale, bias, want_q


# FBGEMM_DW_PAIRS models VPMADDUBSW, which takes uint8 activations only (the binding rejects int8 x).
@pytest.mark.parametrize(("dtype", "mode"), [("uint8", "EXACT"), ("int8", "EXACT"), ("uint8", "FBGEMM_DW_PAIRS")])
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("isa", DW_ISAS)
@pytest.mark.parametrize("shape", DEPTHWISE, ids=lambda s: "{}x{}x{}s{}".format(*s))
def test_depthwise_layers(shape, isa, threads, dtype, mode):
    x, wt, kw, want, scale, bias, want_q = _dw_case(*shape, dtype, mode, False)
    m = getattr(_core.DepthwiseMode, mode)
    got = _core.depthwise_conv2d_s32(x, wt, kw["strides"], (1, 1), kw["pads"], x_zero_point=kw["x_zero_point"],
                                     mode=m, isa=isa, threads=threads)
    np.testing.assert_array_equal(got, want)
    got_q = _core.depthwise_conv2d_requantize_float(
        x, wt, kw["strides"], (1, 1), kw["pads"], scale=scale, zero_point=7, qmin=0, qmax=255, bias=bias,
        x_zero_point=kw["x_zero_point"], mode=m, isa=isa, threads=threads, out_dtype=np.uint8)
    np.testing.assert_array_equal(got_q, want_q)


@pytest.mark.parametrize("isa", DW_ISAS)
@pytest.mark.parametrize("shape", [(14, 14, 40, 1), (9, 11, 24, 2)], ids=str)
def test_depthwise_weight_zero_points_and_channel_tail(shape, isa):
    # per-channel w_zero_point (EXACT only) and C % 16 != 0: the masked last channel block
    x, wt, kw, want, scale, bias, want_q = _dw_case(*shape, "uint8", "EXACT", True)
    got = _core.depthwise_conv2d_s32(x, wt, kw["strides"], (1, 1), kw["pads"], x_zero_point=kw["x_zero_point"],
                                     w_zero_point=kw["w_zero_point"], isa=isa, threads=2)
    np.testing.assert_array_equal(got, want)
