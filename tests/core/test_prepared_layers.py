"""The prepared fused layers (hwsim._core.PreparedConv2d, PreparedDense, PreparedDepthwise) return exactly
what the one-shot fused functions return for the same arguments, on every thread count and pool, and check
each input as those functions do."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim import _core

POOL = _core.Workers(2)
THREADS = [1, 2, POOL]


def _requant(rng, n, dtype):
    info = np.iinfo(dtype)
    return dict(scale=rng.uniform(1e-5, 1e-3, n).astype(np.float32), zero_point=int(info.min) + 3,
                qmin=int(info.min), qmax=int(info.max), bias=rng.integers(-20000, 20000, n, dtype=np.int32),
                out_dtype=dtype)


CONVS = [  # (H, W, C, O, K, stride, pad, groups)
    (14, 14, 64, 384, 1, 1, 0, 1), (28, 28, 32, 192, 1, 1, 0, 1), (9, 9, 40, 17, 3, 2, 1, 1), (8, 8, 16, 32, 3, 1, 1, 4),
]


@pytest.mark.parametrize("threads", THREADS, ids=["1", "2", "pool"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("shape", CONVS, ids=lambda s: "{}x{}x{}->{}k{}s{}p{}g{}".format(*s))
def test_prepared_conv2d_equals_conv2d_requantize_float(shape, dtype, threads):
    h, w, c, o, k, stride, pad, groups = shape
    rng = np.random.default_rng(h * 31 + c + o)
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, (2, h, w, c), endpoint=True).astype(dtype)
    packed = _core.pack_conv_weights(rng.integers(-128, 128, (o, k, k, c // groups)).astype(np.int8), groups=groups)
    kw = dict(x_zero_point=int(info.min) + 17, strides=(stride, stride), pads=(pad,) * 4, **_requant(rng, o, dtype))
    want = _core.conv2d_requantize_float(x, packed, threads=1, **kw)
    np.testing.assert_array_equal(_core.PreparedConv2d(packed, **kw)(x, threads), want)


@pytest.mark.parametrize("threads", THREADS, ids=["1", "2", "pool"])
@pytest.mark.parametrize("m, k, n", [(1, 1280, 1000), (49, 320, 96), (5, 16, 7)])
def test_prepared_dense_equals_gemm_requantize_float(m, k, n, threads):
    rng = np.random.default_rng(m + k + n)
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b = _core.pack_weights(rng.integers(-128, 128, (n, k)).astype(np.int8))
    kw = dict(a_zero_point=131, **_requant(rng, n, np.uint8))
    want = _core.gemm_requantize_float(a, b, threads=1, **kw)
    np.testing.assert_array_equal(_core.PreparedDense(b, **kw)(a, threads), want)


DEPTHWISE = [(14, 576, 1), (7, 960, 1), (28, 192, 2), (9, 24, 3), (5, 20, 1)]  # (H = W, C, stride)


@pytest.mark.parametrize("threads", THREADS, ids=["1", "2", "pool"])
@pytest.mark.parametrize("mode", ["EXACT", "FBGEMM_DW_PAIRS"])
@pytest.mark.parametrize("shape", DEPTHWISE, ids=lambda s: "{}x{}x{}s{}".format(s[0], s[0], s[1], s[2]))
def test_prepared_depthwise_equals_depthwise_requantize_float(shape, mode, threads):
    h, c, stride = shape
    rng = np.random.default_rng(h + c + stride)
    x = rng.integers(0, 256, (1, h, h, c), dtype=np.uint8)
    w = rng.integers(-128, 128, (c, 3, 3, 1)).astype(np.int8)
    dw_mode = getattr(_core.DepthwiseMode, mode)
    args = (w, [stride, stride], [1, 1], [1, 1, 1, 1])
    kw = dict(x_zero_point=9, mode=dw_mode, **_requant(rng, c, np.uint8))
    want = _core.depthwise_conv2d_requantize_float(x, *args, threads=1, **kw)
    np.testing.assert_array_equal(_core.PreparedDepthwise(*args, **kw)(x, threads), want)


def test_prepared_layers_check_their_input():
    rng = np.random.default_rng(0)
    packed = _core.pack_conv_weights(rng.integers(-128, 128, (8, 1, 1, 16)).astype(np.int8))
    conv = _core.PreparedConv2d(packed, **_requant(rng, 8, np.uint8))
    with pytest.raises(ValueError, match="input channels"):
        conv(np.zeros((1, 4, 4, 12), np.uint8))
    with pytest.raises(TypeError, match="x"):
        conv(np.zeros((1, 4, 4, 16), np.float32))
    dense = _core.PreparedDense(_core.pack_weights(rng.integers(-128, 128, (8, 16)).astype(np.int8)),
                                **_requant(rng, 8, np.uint8))
    with pytest.raises(ValueError, match="K mismatch"):
        dense(np.zeros((3, 15), np.uint8))
    dw = _core.PreparedDepthwise(rng.integers(-128, 128, (16, 3, 3, 1)).astype(np.int8), [1, 1], [1, 1],
                                 [1, 1, 1, 1], **_requant(rng, 16, np.uint8))
    with pytest.raises(ValueError, match="multiple of the input channels"):
        dw(np.zeros((1, 4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="zero_point"):
        _core.PreparedConv2d(packed, **{**_requant(rng, 8, np.uint8), "zero_point": 300})
    with pytest.raises(ValueError, match="scale"):
        _core.PreparedDepthwise(rng.integers(-128, 128, (16, 3, 3, 1)).astype(np.int8),
                                **{**_requant(rng, 16, np.uint8), "scale": np.zeros(16, np.float32)})
