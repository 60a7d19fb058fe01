"""The fused AMX driver (csrc/hwsim/gemm.h gemm_amx_blocked_s32: whole-K tile chains, 32 x 64 blocks
compensated and requantized from L1, dense uint8 A read in place) and the caller-owned worker pool
(hwsim._core.Workers, csrc/hwsim/parallel.h WorkerPool) give the same integers as the scalar reference
path, on ResNet-50's convolution shapes and on shapes that reach the driver's edge cases (a last group of
fewer than 32 rows, K not a multiple of 64, int8 activations, non-zero weight zero points, N not a
multiple of 64), for every GEMM ISA, 1 and 2 threads and pools of 2 and 3 workers.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from hwsim import _core

GEMM_ISAS = _core.cpu_features()["gemm_isas"]
POOL = _core.Workers(2)
POOL3 = _core.Workers(3)  # uneven row chunks per worker (csrc/hwsim/gemm.h choose_tiling)
THREADS = [1, 2, "pool", "pool3"]
DTYPES = ["uint8", "int8"]

RESNET = [  # (H, W, C, O, K, stride, pad)
    (56, 56, 64, 256, 1, 1, 0), (56, 56, 256, 64, 1, 1, 0), (56, 56, 64, 64, 1, 1, 0), (56, 56, 256, 128, 1, 2, 0),
    (28, 28, 128, 512, 1, 1, 0), (28, 28, 512, 128, 1, 1, 0), (28, 28, 512, 256, 1, 2, 0),
    (14, 14, 256, 1024, 1, 1, 0), (14, 14, 1024, 256, 1, 1, 0), (14, 14, 1024, 512, 1, 2, 0),
    (7, 7, 512, 2048, 1, 1, 0), (7, 7, 2048, 512, 1, 1, 0),
    (56, 56, 64, 64, 3, 1, 1), (28, 28, 128, 128, 3, 1, 1), (14, 14, 256, 256, 3, 1, 1), (7, 7, 512, 512, 3, 1, 1),
]
EDGES = [  # tails of M, K % 64 != 0, N % 64 != 0 (and % 32 <= 16), single rows
    (5, 7, 128, 40, 1, 1, 0), (3, 11, 72, 100, 1, 1, 0), (1, 1, 64, 64, 1, 1, 0), (9, 9, 40, 17, 3, 1, 1),
    (6, 6, 200, 130, 1, 1, 0), (33, 1, 64, 64, 1, 1, 0),
    # MobileNetV2's short-K pointwise layers (one K block: micro-tiles finished from L1) and a dense layer at
    # batch 1 (fewer rows than workers: split by N)
    (28, 28, 32, 192, 1, 1, 0), (56, 56, 24, 144, 1, 1, 0), (7, 7, 960, 160, 1, 1, 0), (1, 1, 1280, 1000, 1, 1, 0),
]


def _threads(t):
    return {"pool": POOL, "pool3": POOL3}.get(t, t)


@functools.lru_cache(maxsize=None)
def _case(shape, dtype, asym_w):
    h, w, c, o, k, stride, pad = shape
    rng = np.random.default_rng(h * 7919 + c * 31 + o + k)
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, (1, h, w, c), endpoint=True).astype(dtype)
    zp = int(rng.integers(info.min + 1, info.max))
    wt = rng.integers(-128, 127, (o, k, k, c), endpoint=True).astype(np.int8)
    w_zp = rng.integers(-5, 6, o).astype(np.int32) if asym_w else None
    scale = rng.uniform(1e-5, 1e-3, o).astype(np.float32)
    bias = rng.integers(-20000, 20000, o, dtype=np.int32)
    kw = dict(x_zero_point=zp, strides=(stride, stride), pads=(pad,) * 4)
    ref32 = _core.conv2d_s32(x, wt, w_zero_point=w_zp, isa="scalar", threads=1, **kw)
    fused = dict(scale=scale, zero_point=3, qmin=0, qmax=255, bias=bias, out_dtype=np.uint8)
    ref8 = _core.conv2d_requantize_float(x, wt, w_zero_point=w_zp, isa="scalar", threads=1, **kw, **fused)
    return x, wt, w_zp, kw, fused, ref32, ref8


def _check(shape, isa, threads, dtype, asym_w=False):
    x, wt, w_zp, kw, fused, ref32, ref8 = _case(shape, dtype, asym_w)
    packed = _core.pack_conv_weights(wt, w_zero_point=w_zp)
    got8 = _core.conv2d_requantize_float(x, packed, isa=isa, threads=_threads(threads), **kw, **fused)
    np.testing.assert_array_equal(got8, ref8)
    got32 = _core.conv2d_s32(x, packed, isa=isa, threads=_threads(threads), **kw)
    np.testing.assert_array_equal(got32, ref32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("isa", GEMM_ISAS)
@pytest.mark.parametrize("shape", RESNET, ids=lambda s: "{}x{}x{}->{}k{}s{}".format(*s))
def test_resnet50_convolutions(shape, isa, threads, dtype):
    _check(shape, isa, threads, dtype)


@pytest.mark.parametrize("asym_w", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("isa", GEMM_ISAS)
@pytest.mark.parametrize("shape", EDGES, ids=lambda s: "{}x{}x{}->{}k{}s{}".format(*s))
def test_driver_edges(shape, isa, threads, dtype, asym_w):
    _check(shape, isa, threads, dtype, asym_w)


@pytest.mark.parametrize("isa", GEMM_ISAS)
def test_gemm_with_pool_equals_int_threads(isa):
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (301, 320), dtype=np.uint8)
    b = rng.integers(-128, 128, (200, 320), dtype=np.int8)
    ref = _core.gemm_s32(a, b, a_zero_point=9, isa="scalar", threads=1)
    np.testing.assert_array_equal(_core.gemm_s32(a, b, a_zero_point=9, isa=isa, threads=POOL), ref)
    got, count = _core.gemm_s32(a, b, a_zero_point=9, isa=isa, threads=POOL, acc_bits=16, count_overflow=True)
    want, want_count = _core.gemm_s32(a, b, a_zero_point=9, isa="scalar", threads=1, acc_bits=16,
                                      count_overflow=True)
    np.testing.assert_array_equal(got, want)
    assert count == want_count


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_with_pool_equals_int_threads(stride):
    rng = np.random.default_rng(6)
    x = rng.integers(0, 256, (1, 56, 56, 144), dtype=np.uint8)
    w = rng.integers(-128, 128, (144, 3, 3, 1), dtype=np.int8)
    args = (x, w, [stride] * 2, [1, 1], [1, 1, 1, 1])
    ref = _core.depthwise_conv2d_s32(*args, x_zero_point=7, threads=1)
    np.testing.assert_array_equal(_core.depthwise_conv2d_s32(*args, x_zero_point=7, threads=POOL), ref)


def test_workers_api():
    pool = _core.Workers(3)
    assert pool.threads == 3
    assert repr(pool) == "Workers(threads=3)"
    assert _core.Workers(0).threads == _core.cpu_features()["hardware_threads"]
    with pytest.raises(ValueError, match="threads"):
        _core.Workers(-1)
    a = np.zeros((4, 8), np.uint8)
    b = np.zeros((2, 8), np.int8)
    with pytest.raises(TypeError, match="threads"):
        _core.gemm_s32(a, b, threads="2")
    with pytest.raises(TypeError, match="threads"):
        _core.gemm_s32(a, b, threads=True)
    with pytest.raises(ValueError, match="threads"):
        _core.gemm_s32(a, b, threads=-1)
    # a pool larger than the work, reused many times, then dropped: no hang, same result
    for _ in range(50):
        np.testing.assert_array_equal(_core.gemm_s32(a, b, threads=pool), np.zeros((4, 2), np.int32))
    del pool
