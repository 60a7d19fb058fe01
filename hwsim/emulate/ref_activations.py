"""Plain numpy twins of the activation and reduction kernels (hwsim/emulate/op_kernels.py, csrc/hwsim/
activations_tflite.h, csrc/hwsim/softmax_tflite.h).

Each function restates the engine's integer formula in int64 numpy arithmetic, independently of the C++
core, so that tests can compare the two on every int8 code and on edge values. Sources: numerics.md A.7
(LEAKY_RELU), A.8 (HARD_SWISH), A.9 (SOFTMAX), A.10 (MEAN), C.5 / C.6 (DPU leaky ReLU, hard-sigmoid,
hard-swish), and the measured XNNPACK formulas of tests/oracle/test_tflite_oracle.py.
"""

from __future__ import annotations

import numpy as np

_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def srdhm(a, b, bits: int = 32) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul: round(a·b / 2^(bits−1)), ties toward +inf, min·min saturates."""
    a, b = np.broadcast_arrays(_i64(a), _i64(b))
    lo = -(1 << (bits - 1))
    p = a * b
    nudge = np.where(p >= 0, 1 << (bits - 2), 1 - (1 << (bits - 2)))
    q = p + nudge
    r = np.where(q >= 0, q >> (bits - 1), -((-q) >> (bits - 1)))  # truncating division
    return np.where((a == lo) & (b == lo), -lo - 1, r)


def sdhm(a, b, bits: int = 16) -> np.ndarray:
    """Truncating doubling high multiply: trunc(a·b / 2^(bits−1)), min·min saturates."""
    a, b = np.broadcast_arrays(_i64(a), _i64(b))
    lo = -(1 << (bits - 1))
    p = a * b
    r = np.where(p >= 0, p >> (bits - 1), -((-p) >> (bits - 1)))
    return np.where((a == lo) & (b == lo), -lo - 1, r)


def rdbp(x, n) -> np.ndarray:
    """RoundingDivideByPOT: x / 2^n rounded half away from zero (n may be an array)."""
    x, n = np.broadcast_arrays(_i64(x), _i64(n))
    mask = (np.int64(1) << n) - 1
    return (x >> n) + ((x & mask) > (mask >> 1) + (x < 0))


def _sat(x, bits: int) -> np.ndarray:
    return np.clip(_i64(x), -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def _wrap32(x) -> np.ndarray:
    return ((_i64(x) + 2**31) & 0xFFFFFFFF) - 2**31


def mbqm_double(x, m: int, e: int) -> np.ndarray:
    """MultiplyByQuantizedMultiplier, gemmlowp double rounding: RDBP(SRDHM(x·2^max(e,0), M), max(−e,0))."""
    return rdbp(srdhm(_wrap32(_i64(x) << max(e, 0)), m), max(-e, 0))


def _clip_to(y, qmin: int, qmax: int, dtype) -> np.ndarray:
    return np.clip(y, qmin, qmax).astype(dtype)


# ---------------------------------------------------------------------------------------------------------
# TFLite


def hard_swish_tflite(q: np.ndarray, *, input_zero_point: int, output_zero_point: int, output_multiplier: int,
                      output_shift: int, reluish_multiplier: int, reluish_shift: int, qmin: int, qmax: int) -> np.ndarray:
    """HARD_SWISH (numerics A.8): int16 fixed point, truncating final product."""
    v = (_i64(q) - input_zero_point) * 128
    pre = srdhm(v, output_multiplier, 16)
    r = v
    if reluish_shift > 0:
        r = _sat(r << (reluish_shift - 1), 16)
    r = srdhm(r, reluish_multiplier, 16)
    if reluish_shift > 0:
        r = _sat(r * 2, 16)
    elif reluish_shift < 0:
        r = rdbp(r, -reluish_shift)
    r = (r + 32768) >> 1
    y = rdbp(sdhm(r, pre, 16), -output_shift) + output_zero_point
    return _clip_to(y, qmin, qmax, q.dtype)


def leaky_relu_tflite(q: np.ndarray, *, input_zero_point: int, output_zero_point: int, multiplier_identity: int,
                      shift_identity: int, multiplier_alpha: int, shift_alpha: int, qmin: int, qmax: int) -> np.ndarray:
    """Reference LEAKY_RELU (numerics A.7): double-rounding MBQM with the identity or alpha multiplier."""
    d = _i64(q) - input_zero_point
    y = np.where(d >= 0, mbqm_double(d, multiplier_identity, shift_identity),
                 mbqm_double(d, multiplier_alpha, shift_alpha)) + output_zero_point
    return _clip_to(y, qmin, qmax, q.dtype)


def leaky_relu_xnnpack(q: np.ndarray, *, input_zero_point: int, output_zero_point: int, positive_multiplier: int,
                       negative_multiplier: int, qmin: int, qmax: int) -> np.ndarray:
    """XNNPACK LEAKY_RELU (measured): zp_out + (((q − zp_in)·m + 128) >> 8), m by the sign of q − zp_in."""
    d = _i64(q) - input_zero_point
    y = output_zero_point + ((d * np.where(d >= 0, positive_multiplier, negative_multiplier) + 128) >> 8)
    return _clip_to(y, qmin, qmax, q.dtype)


def _sat_shl(x, n: int) -> np.ndarray:
    return np.clip(_i64(x) << n, _I32_MIN, _I32_MAX)


def exp_on_negative_values(a: np.ndarray, int_bits: int) -> np.ndarray:
    """gemmlowp exp(a), a <= 0 in Q(int_bits).(31 − int_bits), result in Q0.31."""
    a = _i64(a)
    frac = 31 - int_bits
    quarter = 1 << (frac - 2)
    a_mod = (a & (quarter - 1)) - quarter
    x = _sat_shl(a_mod, int_bits) + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4_over_4 = rdbp(srdhm(x2, x2), 2)
    poly = rdbp(srdhm(x4_over_4 + x3, 715827883) + x2, 1)
    result = 1895147668 + srdhm(1895147668, x + poly)
    remainder = a_mod - a
    for k, mult in zip(range(-2, 5), (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)):
        if int_bits > k:
            result = np.where(remainder & (1 << (frac + k)), srdhm(result, mult), result)
    return np.where(a == 0, _I32_MAX, result)


def one_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """gemmlowp 1/(1 + a), a in [0, 1) as Q0.31, three Newton–Raphson steps, result in Q0.31."""
    s = _i64(a) + _I32_MAX
    half = np.where(s >= 0, (s + 1) // 2, -((1 - s) // 2))
    x = 1515870810 + srdhm(half, -1010580540)
    for _ in range(3):
        x = x + _sat_shl(srdhm(x, (1 << 29) - srdhm(half, x)), 2)
    return _sat_shl(x, 1)


def softmax_tflite_fixed_point(q: np.ndarray, *, beta_multiplier: int, beta_left_shift: int,
                               diff_min: int) -> np.ndarray:
    """Reference SOFTMAX over the last axis (numerics A.9 second bullet), output (1/256, type minimum)."""
    tmin, tmax = int(np.iinfo(q.dtype).min), int(np.iinfo(q.dtype).max)
    d = _i64(q) - _i64(q).max(axis=-1, keepdims=True)
    inside = d >= diff_min
    exps = exp_on_negative_values(srdhm(np.where(inside, d, 0) << beta_left_shift, beta_multiplier), 5)
    total = np.where(inside, rdbp(exps, 12), 0).sum(axis=-1, keepdims=True)
    total = total & 0xFFFFFFFF  # int32 adds wrap; TFLite's sum is read as uint32 for the leading zeros
    clz = 32 - np.frexp(total.astype(np.float64))[1].astype(np.int64)  # exact: total < 2^32
    recip = one_over_one_plus_x(((total << clz) & 0xFFFFFFFF) - 2**31)
    bits = 8 * q.dtype.itemsize
    out = rdbp(srdhm(recip, exps), 12 - clz + 31 - bits) + tmin
    return np.where(inside, np.clip(out, tmin, tmax), tmin).astype(q.dtype)


def softmax_table(input_scale: float) -> np.ndarray:
    """The optimized SOFTMAX's float32 table: exp(−s_in·k), k = 0..255, in float32 (numerics A.9)."""
    return np.exp(-np.float32(input_scale) * np.arange(256, dtype=np.float32)).astype(np.float32)


def softmax_tflite_float_table(q: np.ndarray, table: np.ndarray, *, output_scale: float, output_zero_point: int,
                               qmin: int, qmax: int) -> np.ndarray:
    """Optimized SOFTMAX over the last axis (numerics A.9 first bullet): float32 table, sequential float32
    sum, reciprocal, trunc(p ± 0.5)."""
    e = table[_i64(q).max(axis=-1, keepdims=True) - _i64(q)]
    total = np.zeros(q.shape[:-1] + (1,), np.float32)
    for j in range(q.shape[-1]):  # the sum's order matters: one column at a time, every row at once
        total = (total + e[..., j:j + 1]).astype(np.float32)
    p = (e * (np.float32(1) / (total * np.float32(output_scale)))).astype(np.float32)
    y = np.trunc(p + np.copysign(np.float32(0.5), p)).astype(np.int64) + output_zero_point
    return _clip_to(y, qmin, qmax, q.dtype)


def mean_tflite(q: np.ndarray, *, input_zero_point: int, output_zero_point: int, multiplier: int, shift: int,
                qmin: int, qmax: int) -> np.ndarray:
    """Reference MEAN over H, W of NHWC codes, keepdims (numerics A.10): MBQM(Σq − N·zp_in, M', e') + zp_out,
    with the count N already folded into (M', e') (:func:`hwsim.emulate.op_kernels.mean_multiplier`)."""
    n = q.shape[1] * q.shape[2]
    total = _i64(q).sum(axis=(1, 2), keepdims=True) - n * input_zero_point
    return _clip_to(mbqm_double(total, multiplier, shift) + output_zero_point, qmin, qmax, q.dtype)


def mean_xnnpack(q: np.ndarray, *, input_zero_point: int, output_zero_point: int, scale: np.float32,
                 qmin: int, qmax: int) -> np.ndarray:
    """XNNPACK MEAN (measured): rint(clamp(float32(Σq − N·zp_in) · scale)) + zp_out, scale = float32(s_in /
    (N·s_out)), clamped to [qmin − zp_out, qmax − zp_out] before rounding half to even."""
    n = q.shape[1] * q.shape[2]
    total = _i64(q).sum(axis=(1, 2), keepdims=True) - n * input_zero_point
    v = (total.astype(np.float32) * np.float32(scale)).astype(np.float32)
    v = np.clip(v, np.float32(qmin - output_zero_point), np.float32(qmax - output_zero_point))
    return (np.rint(v).astype(np.int64) + output_zero_point).astype(q.dtype)


def add_xnnpack(a: np.ndarray, b: np.ndarray, *, a_zero_point: int, b_zero_point: int, a_multiplier: int,
                b_multiplier: int, shift: int, output_zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """XNNPACK ADD (measured): ((a − zp_a)·m_a + (b − zp_b)·m_b + 2^(shift−1)) >> shift, + zp_out, clamped."""
    acc = (_i64(a) - a_zero_point) * a_multiplier + (_i64(b) - b_zero_point) * b_multiplier + (1 << (shift - 1))
    return _clip_to((acc >> shift) + output_zero_point, qmin, qmax, a.dtype)


# ---------------------------------------------------------------------------------------------------------
# Xilinx DPU (power-of-two positions, DPU_ROUND = round half up)


def _round_half_up_shift(x: np.ndarray, n: int) -> np.ndarray:
    """floor(x / 2^n + 1/2) for n > 0, x·2^−n otherwise (exact)."""
    x = _i64(x)
    return (x + (1 << (n - 1))) >> n if n > 0 else x << -n


def leaky_relu_dpu(q: np.ndarray, *, fix_pos_in: int, fix_pos_out: int, alpha_numerator: int = 26,
                   alpha_denominator_log2: int = 8, qmin: int = -128, qmax: int = 127) -> np.ndarray:
    """DPU leaky ReLU (numerics C.5, section 7): x < 0 scaled by 26/256 on the exact value, one DPU_ROUND to the
    output position: sat(round_half_up(x·(x < 0 ? 26 : 256) / 2^(8 + p_in − p_out)))."""
    x = _i64(q)
    scaled = np.where(x < 0, x * alpha_numerator, x << alpha_denominator_log2)
    y = _round_half_up_shift(scaled, alpha_denominator_log2 + fix_pos_in - fix_pos_out)
    return _clip_to(y, qmin, qmax, q.dtype)


def hsigmoid_dpu(q: np.ndarray, *, fix_pos_in: int, fix_pos_out: int, multiplier: int = 2731, shift: int = 14,
                 qmin: int = -128, qmax: int = 127) -> np.ndarray:
    """DPU hard-sigmoid (numerics C.6): sat(round_half_up(clamp(q·2731 + 3·2731·2^p_in, 0, 2^32) /
    2^(p_in + 14 − p_out)))."""
    tmp = np.clip(_i64(q) * multiplier + 3 * multiplier * (1 << fix_pos_in), 0, 1 << 32)
    return _clip_to(_round_half_up_shift(tmp, fix_pos_in + shift - fix_pos_out), qmin, qmax, q.dtype)


def hswish_dpu(q: np.ndarray, *, fix_pos_in: int, fix_pos_out: int, multiplier: int = 2731, shift: int = 14,
               internal_fix_pos: int = 7, qmin: int = -128, qmax: int = 127) -> np.ndarray:
    """DPU hard-swish (numerics C.6, section 7): t = hsigmoid(q) as 8 bits at fix_pos 7 ([−128, 127] whatever the
    activation width), y = sat(round_half_up(q·t / 2^(p_in + 7 − p_out)))."""
    t = hsigmoid_dpu(_i64(q), fix_pos_in=fix_pos_in, fix_pos_out=internal_fix_pos, multiplier=multiplier,
                     shift=shift, qmin=-128, qmax=127)
    y = _round_half_up_shift(_i64(q) * t, fix_pos_in + internal_fix_pos - fix_pos_out)
    return _clip_to(y, qmin, qmax, q.dtype)
