"""Plain-Python/numpy twins of the element-wise, pooling and lookup-table ops in `hwsim._core`.

Slow and obviously correct (Python ints, exact fractions, one numpy float32 operation at a time);
the oracles for the compiled kernels. The TFLite LUT builder calls the C library's expf/tanhf
through ctypes, because numpy's float32 exp is not libm's and TFLite's tables depend on libm.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from fractions import Fraction
from typing import Any

import numpy as np

from hwsim.emulate.ref_numerics import float32_from_fraction, mbqm_double, mbqm_single, round_rational, wrap

_MBQM = {"double": mbqm_double, "single": mbqm_single}


def _clamp(v: int, lo: int, hi: int) -> int:
    return min(max(v, lo), hi)


def _bounds(dtype: np.dtype, lo: int | None, hi: int | None) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return (info.min if lo is None else lo), (info.max if hi is None else hi)


def add_int8_tflite(a: np.ndarray, b: np.ndarray, *, input1_offset: int, input1_multiplier: int, input1_shift: int,
                    input2_offset: int, input2_multiplier: int, input2_shift: int, output_multiplier: int,
                    output_shift: int, output_offset: int, act_min: int | None = None, act_max: int | None = None,
                    left_shift: int = 20, rounding: str = "double") -> np.ndarray:
    """TFLite ADD: three MBQM (numerics.md A.5)."""
    f = _MBQM[rounding]
    lo, hi = _bounds(a.dtype, act_min, act_max)
    out = []
    for x, y in zip(a.ravel().tolist(), b.ravel().tolist()):
        w1 = f(wrap((x + input1_offset) << left_shift, 32), input1_multiplier, input1_shift)
        w2 = f(wrap((y + input2_offset) << left_shift, 32), input2_multiplier, input2_shift)
        raw = wrap(f(wrap(w1 + w2, 32), output_multiplier, output_shift) + output_offset, 32)
        out.append(_clamp(raw, lo, hi))
    return np.array(out, dtype=a.dtype).reshape(a.shape)


def mul_int8_tflite(a: np.ndarray, b: np.ndarray, *, input1_offset: int, input2_offset: int, output_multiplier: int,
                    output_shift: int, output_offset: int, act_min: int | None = None, act_max: int | None = None,
                    rounding: str = "double") -> np.ndarray:
    """TFLite MUL: zp_o + MBQM((q1 + off1)(q2 + off2)), clamp."""
    f = _MBQM[rounding]
    lo, hi = _bounds(a.dtype, act_min, act_max)
    out = [_clamp(wrap(f(wrap((x + input1_offset) * (y + input2_offset), 32), output_multiplier, output_shift)
                       + output_offset, 32), lo, hi)
           for x, y in zip(a.ravel().tolist(), b.ravel().tolist())]
    return np.array(out, dtype=a.dtype).reshape(a.shape)


def _float_scale_binary(a, b, a_scale, a_zero_point, b_scale, b_zero_point, c_scale, c_zero_point, qmin, qmax,
                        rounding, add: bool) -> np.ndarray:
    f32 = np.float32
    lo, hi = _bounds(a.dtype, qmin, qmax)
    sa, sb, sc = f32(a_scale), f32(b_scale), f32(c_scale)
    out = []
    with np.errstate(all="ignore"):
        for i, (x, y) in enumerate(zip(a.ravel().tolist(), b.ravel().tolist())):
            va = f32(sa * f32(x - a_zero_point))
            vb = f32(sb * f32(y - b_zero_point))
            t = f32(f32(va + vb) if add else f32(va * vb))
            t = f32(t / sc)
            q = round_rational(Fraction(float(t)), rounding, 0, i, float_stochastic=True)
            out.append(_clamp(q + c_zero_point, lo, hi))
    return np.array(out, dtype=a.dtype).reshape(a.shape)


def add_float_scale(a, b, a_scale, a_zero_point, b_scale, b_zero_point, c_scale, c_zero_point, *, qmin=None,
                    qmax=None, rounding: Any = "HALF_TO_EVEN", form: str = "mlas_avx2") -> np.ndarray:
    """QLinearAdd in float32: the MLAS AVX2 fma form, or round((sa*(a-zpa) + sb*(b-zpb)) / sc) + zpc."""
    if form == "mlas_avx2":
        f32 = np.float32
        lo, hi = _bounds(a.dtype, qmin, qmax)
        ra, rb = f32(f32(a_scale) / f32(c_scale)), f32(f32(b_scale) / f32(c_scale))
        # zpc − fma(rA, zpa, rB·zpb): onnxruntime's compiled kernel fuses the first product (engine-findings.md)
        pb = f32(rb * f32(b_zero_point))
        fixed = f32(f32(c_zero_point)
                    - float32_from_fraction(Fraction(float(ra)) * Fraction(a_zero_point) + Fraction(float(pb))))
        out = []
        for i, (x, y) in enumerate(zip(a.ravel().tolist(), b.ravel().tolist())):
            inner = float32_from_fraction(Fraction(y) * Fraction(float(rb)) + Fraction(float(fixed)))
            t = float32_from_fraction(Fraction(x) * Fraction(float(ra)) + Fraction(float(inner)))
            out.append(_clamp(round_rational(Fraction(float(t)), rounding, 0, i, float_stochastic=True), lo, hi))
        return np.array(out, dtype=a.dtype).reshape(a.shape)
    return _float_scale_binary(a, b, a_scale, a_zero_point, b_scale, b_zero_point, c_scale, c_zero_point, qmin, qmax,
                               rounding, True)


def mul_float_scale(a, b, a_scale, a_zero_point, b_scale, b_zero_point, c_scale, c_zero_point, *, qmin=None,
                    qmax=None, rounding: Any = "HALF_TO_EVEN", form: str = "scalar") -> np.ndarray:
    """round((sa*(a-zpa)) * (sb*(b-zpb)) / sc) + zpc in float32."""
    return _float_scale_binary(a, b, a_scale, a_zero_point, b_scale, b_zero_point, c_scale, c_zero_point, qmin, qmax,
                               rounding, False)


def eltwise_add_dpu(a: np.ndarray, b: np.ndarray, fix_pos_a: int, fix_pos_b: int, fix_pos_out: int, *,
                    qmin: int | None = None, qmax: int | None = None, rounding: Any = "HALF_UP") -> np.ndarray:
    """Exact a*2^(p_out-p_a) + b*2^(p_out-p_b), one rounding, saturate."""
    lo, hi = _bounds(a.dtype, qmin, qmax)
    two = Fraction(2)
    out = [_clamp(round_rational(x * two ** (fix_pos_out - fix_pos_a) + y * two ** (fix_pos_out - fix_pos_b),
                                 rounding, 0, i), lo, hi)
           for i, (x, y) in enumerate(zip(a.ravel().tolist(), b.ravel().tolist()))]
    return np.array(out, dtype=a.dtype).reshape(a.shape)


def hard_sigmoid_dpu(x: np.ndarray, fix_pos_in: int, fix_pos_out: int, *, qmin: int | None = None,
                     qmax: int | None = None, rounding: Any = "HALF_UP") -> np.ndarray:
    """DPU hard-sigmoid: clamp(q*2731 + 3*2731*2^p_in, 0, 2^32) / 2^(p_in + 14 - p_out), one rounding."""
    lo, hi = _bounds(x.dtype, qmin, qmax)
    out = []
    for i, q in enumerate(x.ravel().tolist()):
        tmp = _clamp(q * 2731 + 3 * 2731 * Fraction(2) ** fix_pos_in, 0, 1 << 32)
        out.append(_clamp(round_rational(Fraction(tmp) / Fraction(2) ** (fix_pos_in + 14 - fix_pos_out), rounding, 0, i),
                          lo, hi))
    return np.array(out, dtype=x.dtype).reshape(x.shape)


# ---------------------------------------------------------------------------------------------
# Pooling (NHWC)


def _geometry(x, kernel, stride, padding):
    kh, kw = (kernel, kernel) if np.isscalar(kernel) else kernel
    if stride is None:
        sh, sw = kh, kw
    else:
        sh, sw = (stride, stride) if np.isscalar(stride) else stride
    if np.isscalar(padding):
        pt = pb = pl = pr = padding
    elif len(padding) == 2:
        pt = pb = padding[0]
        pl = pr = padding[1]
    else:
        pt, pb, pl, pr = padding
    N, H, W, C = x.shape
    OH = (H + pt + pb - kh) // sh + 1
    OW = (W + pl + pr - kw) // sw + 1
    return N, H, W, C, kh, kw, sh, sw, pt, pb, pl, pr, OH, OW


def _windows(x, kernel, stride, padding):
    """Yields (n, oh, ow, c, in-bounds values, count inside the padded input)."""
    N, H, W, C, kh, kw, sh, sw, pt, pb, pl, pr, OH, OW = _geometry(x, kernel, stride, padding)
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                for c in range(C):
                    vals, padded = [], 0
                    for ky in range(kh):
                        for kx in range(kw):
                            h, w = oh * sh - pt + ky, ow * sw - pl + kx
                            if h < H + pb and w < W + pr:
                                padded += 1
                            if 0 <= h < H and 0 <= w < W:
                                vals.append(int(x[n, h, w, c]))
                    yield (n, oh, ow, c), vals, padded
    return (N, OH, OW, C)


def _pool(x, kernel, stride, padding, reduce):
    N, H, W, C, kh, kw, sh, sw, pt, pb, pl, pr, OH, OW = _geometry(x, kernel, stride, padding)
    out = np.empty((N, OH, OW, C), dtype=x.dtype)
    for idx, vals, padded in _windows(x, kernel, stride, padding):
        out[idx] = reduce(vals, padded)
    return out


def max_pool2d(x, kernel, stride=None, padding=0, *, act_min=None, act_max=None) -> np.ndarray:
    """Max of in-bounds raw codes, clamp."""
    lo, hi = _bounds(x.dtype, act_min, act_max)
    return _pool(x, kernel, stride, padding, lambda v, p: _clamp(max(v), lo, hi))


def avg_pool2d_tflite(x, kernel, stride=None, padding=0, *, act_min=None, act_max=None,
                      count_include_pad=False) -> np.ndarray:
    """Raw-code sum / count rounded half away from zero (numerics.md A.6), clamp."""
    lo, hi = _bounds(x.dtype, act_min, act_max)

    def reduce(v, padded):
        k = padded if count_include_pad else len(v)
        return _clamp(round_rational(Fraction(sum(v), k), "HALF_AWAY_FROM_ZERO"), lo, hi)

    return _pool(x, kernel, stride, padding, reduce)


def dpu_avgpool_factor(kh: int, kw: int, use_table: bool = True) -> tuple[int, int]:
    """(F, S) for the DPU average pool (numerics.md C.7): fixed table, else the first best S."""
    table = {(3, 3): (7, 6), (5, 5): (10, 8), (6, 6): (7, 8), (3, 6): (7, 8), (6, 3): (7, 8), (7, 7): (21, 10),
             (14, 14): (21, 12)}
    if use_table and (kh, kw) in table:
        return table[(kh, kw)]
    k = kh * kw
    best, best_err = None, None
    for s in range(math.ceil(math.log2(k * 128))):
        f = round_rational(Fraction(2**s, k), "HALF_AWAY_FROM_ZERO")
        err = abs(Fraction(f, 2**s) - Fraction(1, k))
        if best_err is None or err < best_err:
            best, best_err = (f, s), err
    return best


def avg_pool2d_dpu(x, kernel, stride=None, padding=0, shift=0, *, qmin=None, qmax=None, factor=None,
                   rounding: Any = "HALF_UP") -> np.ndarray:
    """sat(round(sum * F / 2^(S + shift))), padding adds 0."""
    lo, hi = _bounds(x.dtype, qmin, qmax)
    kh, kw = (kernel, kernel) if np.isscalar(kernel) else kernel
    f, s = factor if factor is not None else dpu_avgpool_factor(kh, kw)
    return _pool(x, kernel, stride, padding,
                 lambda v, p: _clamp(round_rational(Fraction(sum(v) * f) / Fraction(2) ** (s + shift), rounding), lo, hi))


# ---------------------------------------------------------------------------------------------
# Lookup tables


def apply_lut(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """table[bit pattern of x]."""
    index = x.view(np.uint8 if x.dtype.itemsize == 1 else np.uint16)
    return np.array([table[int(i)] for i in index.ravel()], dtype=table.dtype).reshape(x.shape)


_libm = ctypes.CDLL(ctypes.util.find_library("m") or None)
_libm.expf.restype = ctypes.c_float
_libm.expf.argtypes = [ctypes.c_float]
_libm.tanhf.restype = ctypes.c_float
_libm.tanhf.argtypes = [ctypes.c_float]
_libm.roundf.restype = ctypes.c_float
_libm.roundf.argtypes = [ctypes.c_float]


def lut_tflite_int8(function: str, input_scale: float, input_zero_point: int, output_scale: float,
                    output_zero_point: int, dtype: Any = "int8") -> np.ndarray:
    """TFLite LUTPopulateInt8 for 'logistic' / 'tanh', float32 step by step with libm expf/tanhf."""
    f32 = np.float32
    dt = np.dtype(dtype)
    info = np.iinfo(dt)
    inv = f32(f32(1.0) / f32(output_scale))
    table = np.zeros(256, dtype=dt)
    with np.errstate(all="ignore"):
        for v in range(info.min, info.max + 1):
            x = f32(f32(input_scale) * f32(v - input_zero_point))
            if function == "logistic":
                y = f32(f32(1.0) / f32(f32(1.0) + f32(_libm.expf(float(-x)))))
            else:
                y = f32(_libm.tanhf(float(x)))
            r = f32(_libm.roundf(float(f32(y * inv))))
            q = int(f32(r + f32(output_zero_point)))
            table[v & 0xFF] = _clamp(q, info.min, info.max)
    return table
