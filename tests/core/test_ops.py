"""Element-wise ops, pooling and LUT activations equal their numpy twins; hand values from
numerics.md A.5 (ADD multipliers), C.7 (DPU average-pool factors), C.8 (DPU eltwise add)."""

import numpy as np
import pytest

from hwsim import _core, numerics
from hwsim.emulate import ref_ops

RM = _core.RoundingMode


def _all_pairs(dtype):
    info = np.iinfo(dtype)
    v = np.arange(info.min, info.max + 1)
    a, b = np.meshgrid(v, v, indexing="ij")
    return a.ravel().astype(dtype), b.ravel().astype(dtype)


def test_tflite_add_params_section_a5():
    """numerics.md A.5: s1 = 0.02, s2 = 0.01, s_out = 0.03 -> (2^30, 0), (2^30, -1), (1431655765, -19)."""
    p = numerics.tflite_add_params(0.02, 0, 0.01, 0, 0.03, 0)
    assert (p["input1_multiplier"], p["input1_shift"]) == (1 << 30, 0)
    assert (p["input2_multiplier"], p["input2_shift"]) == (1 << 30, -1)
    assert (p["output_multiplier"], p["output_shift"]) == (1431655765, -19)


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_add_int8_tflite_all_pairs_equal_twin(rounding):
    a, b = _all_pairs(np.int8)
    sel = slice(None, None, 7)  # every 7th of the 65,536 pairs keeps the Python twin fast
    a, b = a[sel], b[sel]
    p = numerics.tflite_add_params(0.0231, -3, 0.0117, 10, 0.0302, -7)
    got = _core.add_int8_tflite(a, b, act_min=-120, act_max=127, rounding=rounding, **p)
    np.testing.assert_array_equal(got, ref_ops.add_int8_tflite(a, b, act_min=-120, act_max=127, rounding=rounding, **p))


def test_add_uint8_and_int16(rng):
    a = rng.integers(0, 256, 500).astype(np.uint8)
    b = rng.integers(0, 256, 500).astype(np.uint8)
    p = numerics.tflite_add_params(0.05, 128, 0.04, 120, 0.08, 128)
    np.testing.assert_array_equal(_core.add_int8_tflite(a, b, **p), ref_ops.add_int8_tflite(a, b, **p))
    a16 = rng.integers(-32768, 32768, 500).astype(np.int16)
    b16 = rng.integers(-32768, 32768, 500).astype(np.int16)
    p16 = numerics.tflite_add_params(0.001, 0, 0.0007, 0, 0.0015, 0, left_shift=15)
    np.testing.assert_array_equal(_core.add_int8_tflite(a16, b16, **p16), ref_ops.add_int8_tflite(a16, b16, **p16))


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_mul_int8_tflite_equals_twin(rounding):
    a, b = _all_pairs(np.int8)
    a, b = a[::5], b[::5]
    p = numerics.tflite_mul_params(0.05, 3, 0.02, -5, 0.07, 2)
    got = _core.mul_int8_tflite(a, b, rounding=rounding, **p)
    np.testing.assert_array_equal(got, ref_ops.mul_int8_tflite(a, b, rounding=rounding, **p))


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_float_scale_add_mul_equal_twin(dtype):
    a, b = _all_pairs(dtype)
    a, b = a[::11], b[::11]
    zp = 0 if dtype == np.int8 else 128
    args = (a, b, 0.0231, zp + 1, 0.0117, zp - 3, 0.0302, zp)
    for form in ("mlas_avx2", "mlas_scalar"):
        np.testing.assert_array_equal(_core.add_float_scale(*args, form=form), ref_ops.add_float_scale(*args, form=form))
    np.testing.assert_array_equal(_core.mul_float_scale(*args), ref_ops.mul_float_scale(*args))


@pytest.mark.parametrize("pa,pb,pout", [(4, 4, 4), (6, 3, 5), (2, 7, 7), (-2, 1, 0), (5, 5, 1), (0, 3, 6)])
def test_eltwise_add_dpu_equals_twin(pa, pb, pout):
    a, b = _all_pairs(np.int8)
    a, b = a[::13], b[::13]
    got = _core.eltwise_add_dpu(a, b, pa, pb, pout)
    np.testing.assert_array_equal(got, ref_ops.eltwise_add_dpu(a, b, pa, pb, pout))


def test_eltwise_add_dpu_rounds_half_up_once():
    """numerics.md C.8: align, sum, scale by 2^(p_out - p_max), DPU_ROUND (half up), sat8."""
    a = np.array([1, -1, 3, 127], np.int8)
    b = np.array([0, 0, 0, 127], np.int8)
    # p_a = p_b = 1, p_out = 0: a/2 -> 0.5 -> 1, -0.5 -> 0, 1.5 -> 2, 127 -> 127 (saturated).
    np.testing.assert_array_equal(_core.eltwise_add_dpu(a, b, 1, 1, 0), [1, 0, 2, 127])


GEOMS = [((3, 3), (1, 1), 1), ((2, 2), None, 0), ((3, 3), (2, 2), (1, 0, 1, 0)), ((2, 3), (1, 2), (1, 1)),
         ((1, 1), (1, 1), 0), ((5, 5), (2, 2), 2)]


@pytest.mark.parametrize("kernel,stride,padding", GEOMS)
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_pooling_equals_twin(kernel, stride, padding, dtype, rng):
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, (2, 7, 6, 3), endpoint=True).astype(dtype)
    lo, hi = info.min + 3, info.max - 2
    np.testing.assert_array_equal(_core.max_pool2d(x, kernel, stride, padding, act_min=lo, act_max=hi),
                                  ref_ops.max_pool2d(x, kernel, stride, padding, act_min=lo, act_max=hi))
    for include in (False, True):
        np.testing.assert_array_equal(
            _core.avg_pool2d_tflite(x, kernel, stride, padding, act_min=lo, act_max=hi, count_include_pad=include),
            ref_ops.avg_pool2d_tflite(x, kernel, stride, padding, act_min=lo, act_max=hi, count_include_pad=include))
    for shift in (-1, 0, 2):
        np.testing.assert_array_equal(_core.avg_pool2d_dpu(x, kernel, stride, padding, shift),
                                      ref_ops.avg_pool2d_dpu(x, kernel, stride, padding, shift))


def test_avg_pool_tflite_rounds_half_away_on_raw_codes():
    """numerics.md A.6: avg of raw q (zero point included), ties away from zero: (-1,-2) -> -2, (1,2) -> 2."""
    x = np.array([[[[-1], [-2]], [[1], [2]]]], np.int8)  # rows (-1, -2) and (1, 2)
    np.testing.assert_array_equal(_core.avg_pool2d_tflite(x, (1, 2)).ravel(), [-2, 2])


# numerics.md C.7 / section 5: DPU avgpool factors F/2^S.
@pytest.mark.parametrize("k,expected", [
    ((3, 3), (7, 6)), ((5, 5), (10, 8)), ((6, 6), (7, 8)), ((7, 7), (21, 10)), ((14, 14), (21, 12)),
    ((9, 9), (101, 13)), ((2, 2), (1, 2)), ((4, 4), (1, 4)), ((8, 8), (1, 6)), ((10, 10), (41, 12)),
    ((11, 11), (17, 11)), ((12, 12), (57, 13)), ((13, 13), (97, 14)), ((15, 15), (73, 14)), ((16, 16), (1, 8)),
])
def test_dpu_avgpool_factor_table_and_search(k, expected):
    assert _core.dpu_avgpool_factor(*k) == expected == ref_ops.dpu_avgpool_factor(*k)


@pytest.mark.parametrize("k,expected", [((3, 3), (57, 9)), ((5, 5), (41, 10)), ((6, 6), (57, 11))])
def test_dpu_avgpool_search_without_table(k, expected):
    """numerics.md C.7: without the table the search would give 57/512, 41/1024, 57/2048."""
    assert _core.dpu_avgpool_factor(*k, use_table=False) == expected


def test_avg_pool_dpu_3x3_uses_7_over_64():
    x = np.full((1, 3, 3, 1), 64, np.int8)  # sum 576 * 7 / 64 = 63
    assert _core.avg_pool2d_dpu(x, 3)[0, 0, 0, 0] == 63


@pytest.mark.parametrize("fn", ["logistic", "tanh"])
@pytest.mark.parametrize("params", [(0.1, 0, 1 / 256, -128), (0.0473, -12, 1 / 256, -128), (0.02, 5, 1 / 128, 0)])
def test_lut_tflite_int8_equals_libm_twin(fn, params):
    s_in, zp_in, s_out, zp_out = params
    if fn == "tanh":
        s_out, zp_out = 1 / 128, 0
    got = _core.lut_tflite_int8(fn, s_in, zp_in, s_out, zp_out)
    np.testing.assert_array_equal(got, ref_ops.lut_tflite_int8(fn, s_in, zp_in, s_out, zp_out))
    got_u8 = _core.lut_tflite_int8(fn, s_in, zp_in + 128, s_out, zp_out + 128, dtype="uint8")
    np.testing.assert_array_equal(got_u8, ref_ops.lut_tflite_int8(fn, s_in, zp_in + 128, s_out, zp_out + 128, "uint8"))


@pytest.mark.parametrize("in_dtype,n", [(np.int8, 256), (np.uint8, 256), (np.int16, 65536), (np.uint16, 65536)])
def test_apply_lut_indexes_by_bit_pattern(in_dtype, n, rng):
    info = np.iinfo(in_dtype)
    x = rng.integers(info.min, info.max, (4, 9), endpoint=True).astype(in_dtype)
    table = rng.integers(-128, 128, n).astype(np.int8)
    np.testing.assert_array_equal(_core.apply_lut(x, table), ref_ops.apply_lut(x, table))


def test_apply_lut_with_tflite_logistic_table():
    table = _core.lut_tflite_int8("logistic", 0.1, 0, 1 / 256, -128)
    x = np.array([-128, 0, 127], np.int8)
    out = _core.apply_lut(x, table)
    assert out[1] == 0  # logistic(0) = 0.5 -> 128 - 128
    assert out[0] < out[1] < out[2]


@pytest.mark.parametrize("call,exc,match", [
    (lambda a, b: _core.add_int8_tflite(a, b.astype(np.uint8), **numerics.tflite_add_params(1, 0, 1, 0, 1, 0)),
     TypeError, "same dtype"),
    (lambda a, b: _core.add_int8_tflite(a, b[:2], **numerics.tflite_add_params(1, 0, 1, 0, 1, 0)), ValueError, "shape"),
    (lambda a, b: _core.add_int8_tflite(a.astype(np.float32), b.astype(np.float32),
                                        **numerics.tflite_add_params(1, 0, 1, 0, 1, 0)), TypeError, "a must have dtype"),
    (lambda a, b: _core.mul_int8_tflite(a, b, input1_offset=0, input2_offset=0, output_multiplier=1 << 30,
                                        output_shift=40, output_offset=0), ValueError, "output_shift"),
    (lambda a, b: _core.mul_int8_tflite(a, b, input1_offset=0, input2_offset=0, output_multiplier=1 << 30,
                                        output_shift=0, output_offset=0, act_min=10, act_max=5), ValueError, "act_min"),
    (lambda a, b: _core.eltwise_add_dpu(a, b, 40, 0, 0), ValueError, "fix_pos_a"),
    (lambda a, b: _core.add_float_scale(a, b, 0.0, 0, 1.0, 0, 1.0, 0), ValueError, "a_scale"),
    (lambda a, b: _core.add_float_scale(a, b, 1.0, 300, 1.0, 0, 1.0, 0), ValueError, "a_zero_point"),
    (lambda a, b: _core.max_pool2d(a, 2), ValueError, "4-D"),
    (lambda a, b: _core.max_pool2d(a.reshape(1, 2, 2, 1), 2, padding=2), ValueError, "padding"),
    (lambda a, b: _core.max_pool2d(a.reshape(1, 2, 2, 1), 3), ValueError, "kernel"),
    (lambda a, b: _core.max_pool2d(a.reshape(1, 2, 2, 1), 0), ValueError, "kernel"),
    (lambda a, b: _core.max_pool2d(a.reshape(1, 2, 2, 1), 2, stride=0), ValueError, "stride"),
    (lambda a, b: _core.avg_pool2d_dpu(a.reshape(1, 2, 2, 1), 2, shift=64), ValueError, "shift"),
    (lambda a, b: _core.apply_lut(a, np.zeros(100, np.int8)), ValueError, "256"),
    (lambda a, b: _core.apply_lut(a, np.zeros(256, np.float32)), TypeError, "table"),
    (lambda a, b: _core.lut_tflite_int8("relu", 0.1, 0, 0.1, 0), ValueError, "function"),
    (lambda a, b: _core.lut_tflite_int8("tanh", 0.1, 0, 0.1, 0, dtype="int16"), TypeError, "dtype"),
])
def test_ops_bad_arguments(call, exc, match):
    a = np.arange(4, dtype=np.int8)
    b = np.arange(4, dtype=np.int8)
    with pytest.raises(exc, match=match):
        call(a, b)


def test_ops_empty_and_noncontiguous(rng):
    e = np.zeros(0, np.int8)
    p = numerics.tflite_add_params(0.02, 0, 0.01, 0, 0.03, 0)
    assert _core.add_int8_tflite(e, e, **p).shape == (0,)
    x = rng.integers(-128, 128, (1, 8, 8, 4)).astype(np.int8)[:, ::2, :, ::2]
    np.testing.assert_array_equal(_core.max_pool2d(x, 2), ref_ops.max_pool2d(x, 2))
    assert _core.max_pool2d(np.zeros((0, 4, 4, 2), np.int8), 2).shape == (0, 2, 2, 2)


# numerics.md C.6 / section 5: DPU hsigmoid vectors.
@pytest.mark.parametrize("p_in,q,expected", [(4, 16, 85), (4, 48, 127), (4, -48, 0), (5, -37, 39)])
def test_hard_sigmoid_dpu_section_c6_vectors(p_in, q, expected):
    assert _core.hard_sigmoid_dpu(np.array([q], np.int8), p_in, 7)[0] == expected


@pytest.mark.parametrize("p_in,p_out", [(0, 7), (4, 7), (5, 8), (2, 12), (7, 7)])
def test_hard_sigmoid_dpu_all_codes_equal_twin(p_in, p_out):
    x = np.arange(-128, 128, dtype=np.int8)
    np.testing.assert_array_equal(_core.hard_sigmoid_dpu(x, p_in, p_out), ref_ops.hard_sigmoid_dpu(x, p_in, p_out))


_POOL = _core.Workers(2)


@pytest.mark.parametrize("threads", [2, "pool"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_float_scale_add_mul_threaded_equal_one_thread(dtype, threads):
    # 56x56x24 (MobileNetV2's largest residual add) plus a ragged tail: the work is split into 64-element runs
    rng = np.random.default_rng(11)
    info = np.iinfo(dtype)
    a, b = (rng.integers(info.min, info.max, 56 * 56 * 24 + 37, endpoint=True).astype(dtype) for _ in range(2))
    args = (a, b, 0.031, int(info.min) + 7, 0.017, int(info.max) - 3, 0.044, 1)
    workers = _POOL if threads == "pool" else threads
    for fn in (_core.add_float_scale, _core.mul_float_scale):
        np.testing.assert_array_equal(fn(*args, threads=workers), fn(*args, threads=1))


def _global_avg_pool_twin(x, x_zp, scale, y_zp, qmin, qmax):
    """numpy: int32 sums minus H*W*zp, float32 multiply, clamp, round half to even, + zp."""
    n, h, w, c = x.shape
    acc = x.astype(np.int64).sum(axis=(1, 2)) - h * w * x_zp
    v = acc.astype(np.float32) * np.float32(scale)
    v = np.clip(v, np.float32(qmin - y_zp), np.float32(qmax - y_zp))
    return (np.rint(v).astype(np.int64) + y_zp).astype(x.dtype).reshape(n, 1, 1, c)


@pytest.mark.parametrize("shape", [(1, 7, 7, 1280), (2, 3, 5, 17), (1, 1, 1, 3), (3, 14, 14, 96)])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_global_avg_pool_float_scale_equals_twin(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    for scale in (1.0 / (shape[1] * shape[2]), 0.37 / (shape[1] * shape[2]), 3.0):
        x_zp, y_zp = int(info.min) + 100, int(info.max) - 90
        got = _core.global_avg_pool_float_scale(x, x_zp, scale, y_zp, int(info.min), int(info.max))
        np.testing.assert_array_equal(got, _global_avg_pool_twin(x, x_zp, scale, y_zp, int(info.min), int(info.max)))


@pytest.mark.parametrize("call, exc, match", [
    (lambda: _core.global_avg_pool_float_scale(np.zeros((1, 2, 2), np.uint8), 0, 1.0, 0, 0, 255), ValueError, "NHWC"),
    (lambda: _core.global_avg_pool_float_scale(np.zeros((1, 2, 2, 3), np.int16), 0, 1.0, 0, 0, 255), TypeError, "uint8"),
    (lambda: _core.global_avg_pool_float_scale(np.zeros((1, 2, 2, 3), np.uint8), 0, 0.0, 0, 0, 255), ValueError, "scale"),
    (lambda: _core.global_avg_pool_float_scale(np.zeros((1, 2, 2, 3), np.uint8), 300, 1.0, 0, 0, 255), ValueError,
     "x_zero_point"),
])
def test_global_avg_pool_float_scale_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("threads", [2, 3, "pool"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16])
def test_max_pool_threaded_equals_one_thread(dtype, threads):
    # ResNet-50's stem pool (3x3, stride 2, pad 1) on 2 images: whole output rows per work item
    info = np.iinfo(dtype)
    x = np.random.default_rng(4).integers(info.min, info.max, (2, 112, 112, 64), endpoint=True).astype(dtype)
    args = (x, (3, 3), (2, 2), (1, 1, 1, 1))
    workers = _POOL if threads == "pool" else threads
    np.testing.assert_array_equal(_core.max_pool2d(*args, threads=workers), _core.max_pool2d(*args))
    np.testing.assert_array_equal(_core.max_pool2d(*args, act_min=int(info.min) + 9, act_max=int(info.max) - 5,
                                                   threads=workers),
                                  _core.max_pool2d(*args, act_min=int(info.min) + 9, act_max=int(info.max) - 5))
