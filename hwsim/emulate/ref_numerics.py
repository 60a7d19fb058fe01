"""Plain-Python/numpy twins of the numerics in `hwsim._core` (rounding, fixed point, requantization,
quantize/dequantize, packing).

Slow and obviously correct: integer work uses Python ints, exact rational work uses
`fractions.Fraction`, and float32/float64 steps are written one IEEE operation at a time with numpy
scalars. These are the oracles the compiled core is tested against; never use them on whole networks.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

_MODES = ("HALF_TO_EVEN", "HALF_AWAY_FROM_ZERO", "HALF_UP", "HALF_DOWN", "HALF_TOWARD_ZERO", "FLOOR", "TRUNCATE",
          "STOCHASTIC")
_M64 = (1 << 64) - 1


def mode_name(mode: Any) -> str:
    """Name of a rounding mode given as `hwsim._core.RoundingMode` or its name."""
    name = mode if isinstance(mode, str) else mode.name
    if name not in _MODES:
        raise ValueError(f"unknown rounding mode {mode!r}")
    return name


def stochastic_bits(seed: int, index: int) -> int:
    """SplitMix64 output for element `index` under `seed` (rounding.h StochasticBits)."""
    z = (seed + (index + 1) * 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def round_rational(v: Fraction, mode: Any, seed: int = 0, index: int = 0, *, float_stochastic: bool = False) -> int:
    """Round an exact rational by mode. STOCHASTIC: ceil iff u < frac, u from `stochastic_bits`
    (53-bit u for float inputs, 64-bit u otherwise, matching the two core primitives)."""
    name = mode_name(mode)
    q = math.floor(v)
    frac = v - q
    if frac == 0:
        return q
    if name == "STOCHASTIC":
        bits = stochastic_bits(seed, index)
        u = Fraction(bits >> 11, 1 << 53) if float_stochastic else Fraction(bits, 1 << 64)
        return q + 1 if u < frac else q
    half = Fraction(1, 2)
    if name == "HALF_TO_EVEN":
        up = frac > half or (frac == half and q % 2 == 1)
    elif name == "HALF_AWAY_FROM_ZERO":
        up = frac > half or (frac == half and q >= 0)
    elif name == "HALF_UP":
        up = frac >= half
    elif name == "HALF_DOWN":
        up = frac > half
    elif name == "HALF_TOWARD_ZERO":
        up = frac > half or (frac == half and q < 0)
    elif name == "FLOOR":
        up = False
    else:  # TRUNCATE
        up = q < 0
    return q + 1 if up else q


def round_float(x: np.ndarray, mode: Any, seed: int = 0) -> np.ndarray:
    """Twin of `_core.round_float`: float64 of the exactly rounded value; inf/nan pass through."""
    flat = np.asarray(x).ravel()
    out = np.empty(flat.shape, dtype=np.float64)
    for i, v in enumerate(flat):
        v = float(v)
        out[i] = v if not math.isfinite(v) else float(round_rational(Fraction(v), mode, seed, i, float_stochastic=True))
    return out.reshape(np.shape(x))


def rounding_right_shift(x: np.ndarray, n: int, mode: Any, seed: int = 0) -> np.ndarray:
    """Twin of `_core.rounding_right_shift`: x / 2^n rounded exactly, int64 out."""
    flat = np.asarray(x).ravel()
    out = [round_rational(Fraction(int(v), 1 << n), mode, seed, i) for i, v in enumerate(flat)]
    return np.array(out, dtype=np.int64).reshape(np.shape(x))


# ---------------------------------------------------------------------------------------------
# gemmlowp fixed point, one Python int at a time


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def wrap(v: int, bits: int, signed: bool = True) -> int:
    """Low `bits` bits of v, two's complement when signed."""
    v &= (1 << bits) - 1
    if signed and v >= 1 << (bits - 1):
        v -= 1 << bits
    return v


def srdhm(a: int, b: int, bits: int = 32) -> int:
    """SaturatingRoundingDoublingHighMul: nudge then truncating division by 2^(bits-1)."""
    lo = -(1 << (bits - 1))
    if a == b == lo:
        return -lo - 1
    p = a * b
    nudge = (1 << (bits - 2)) if p >= 0 else 1 - (1 << (bits - 2))
    return _trunc_div(p + nudge, 1 << (bits - 1))


def sdhm(a: int, b: int, bits: int = 32) -> int:
    """Truncating doubling high multiply: trunc(a*b / 2^(bits-1)), min*min saturates."""
    lo = -(1 << (bits - 1))
    if a == b == lo:
        return -lo - 1
    return _trunc_div(a * b, 1 << (bits - 1))


def rdbp(x: int, n: int) -> int:
    """RoundingDivideByPOT: x / 2^n, ties away from zero (exact rational form)."""
    return round_rational(Fraction(x, 1 << n), "HALF_AWAY_FROM_ZERO")


def mbqm_double(x: int, m: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier, double rounding: RDBP(SRDHM(wrap32(x * 2^left), M), right)."""
    left, right = max(shift, 0), max(-shift, 0)
    return rdbp(srdhm(wrap(x << left, 32), m), right)


def mbqm_single(x: int, m: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier, single rounding: x*M / 2^(31-shift) rounded half up, wrapped to int32."""
    return wrap(round_rational(Fraction(x * m, 1 << (31 - shift)), "HALF_UP"), 32)


def mbqm_int64(x: int, m: int, shift: int) -> int:
    """int64 MBQM: multiplier reduced to 15 bits, then x*M16 / 2^(15-shift) rounded half up, wrapped to int32."""
    m16 = (m + (1 << 15)) >> 16 if m < 0x7FFF0000 else 0x7FFF
    return wrap(round_rational(Fraction(x * m16, 1 << (15 - shift)), "HALF_UP"), 32)


_MBQM = {"double": mbqm_double, "single": mbqm_single, "int64_16bit": mbqm_int64}


def _variant(v: Any) -> str:
    if isinstance(v, str):
        return v
    return {"DOUBLE_ROUNDING": "double", "SINGLE_ROUNDING": "single", "INT64_16BIT": "int64_16bit"}[v.name]


def quantize_multiplier(real: float, single_rounding: bool = False) -> tuple[int, int]:
    """TFLite QuantizeMultiplier (numerics.md A.2) with Python's frexp and an exact half-away rounding."""
    if real == 0.0:
        return 0, 0
    f, e = math.frexp(real)
    q = round_rational(Fraction(f) * (1 << 31), "HALF_AWAY_FROM_ZERO")
    if q == 1 << 31:
        q //= 2
        e += 1
    if e < -31:
        q, e = 0, 0
    if single_rounding and e > 30:
        q, e = (1 << 31) - 1, 30
    return q, e


def _per_channel(p: Any, C: int) -> list:
    arr = np.atleast_1d(np.asarray(p)).ravel()
    return [arr[0 if arr.size == 1 else c] for c in range(C)]


def _rows(acc: np.ndarray) -> tuple[np.ndarray, int]:
    a = np.asarray(acc)
    C = a.shape[-1] if a.ndim else 1
    return a.reshape(-1, C) if C else a.reshape(0, 0), C


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: Any, shift: Any, variant: Any = "double") -> np.ndarray:
    """Twin of `_core.multiply_by_quantized_multiplier` (per-channel along the last axis)."""
    rows, C = _rows(x)
    f = _MBQM[_variant(variant)]
    ms, ss = _per_channel(multiplier, C), _per_channel(shift, C)
    out = [[f(int(v), int(ms[c]), int(ss[c])) for c, v in enumerate(row)] for row in rows]
    return np.array(out, dtype=np.int32).reshape(np.shape(x))


# ---------------------------------------------------------------------------------------------
# Requantization


def _clamp(v: int, lo: int, hi: int) -> int:
    return min(max(v, lo), hi)


def _out_dtype(qmin: int, qmax: int, out_dtype: Any) -> np.dtype:
    if out_dtype is not None:
        return np.dtype(out_dtype)
    for name in ("int8", "uint8", "int16", "uint16", "int32"):
        info = np.iinfo(name)
        if info.min <= qmin and qmax <= info.max:
            return np.dtype(name)
    raise ValueError("range does not fit int32")


def requantize_float(acc: np.ndarray, scale: Any, zero_point: Any, qmin: int, qmax: int, *, bias: Any = None,
                     bias_scale: Any = None, precision: str = "fp32", scale_op: str = "multiply",
                     bias_mode: str | None = None, clamp: str = "after_rounding", rounding: Any = "HALF_TO_EVEN",
                     seed: int = 0, out_dtype: Any = None) -> np.ndarray:
    """Twin of `_core.requantize_float`, one numpy float32/float64 scalar operation at a time."""
    real = np.float32 if precision == "fp32" else np.float64
    rows, C = _rows(acc)
    scales = [real(s) for s in _per_channel(scale, C)]
    zps = [int(z) for z in _per_channel(zero_point, C)]
    if bias is not None and bias_mode is None:
        bias_mode = "float_divide" if np.asarray(bias).dtype.kind == "f" else "int32"
    bscales = [real(s) for s in _per_channel(bias_scale, C)] if bias_scale is not None else None
    out = np.empty(rows.shape, dtype=_out_dtype(qmin, qmax, out_dtype))
    with np.errstate(all="ignore"):
        for r, row in enumerate(rows):
            for c, a in enumerate(row):
                i = r * C + c
                raw = int(a)
                if bias is not None and bias_mode == "int32":
                    raw = wrap(raw + int(bias[c]), 32)
                v = real(raw)
                if bias is not None and bias_mode == "float_divide":
                    v = real(v + real(real(bias[c]) / bscales[c]))
                elif bias is not None and bias_mode == "float_reciprocal":
                    v = real(v + real(real(bias[c]) * real(real(1) / bscales[c])))
                v = real(v / scales[c]) if scale_op == "divide" else real(v * scales[c])
                z = zps[c]
                if clamp == "before_rounding":
                    v = min(max(v, real(qmin - z)), real(qmax - z))
                fv = float(v)
                q = round_rational(Fraction(fv), rounding, seed, i, float_stochastic=True) if math.isfinite(fv) else (
                    qmax if fv > 0 else qmin)
                out[r, c] = _clamp(q, qmin - z, qmax - z) + z
    return out.reshape(np.shape(acc))


def requantize_fixed_point(acc: np.ndarray, multiplier: Any, shift: Any, zero_point: Any, qmin: int, qmax: int, *,
                           bias: Any = None, rounding: Any = "double", out_dtype: Any = None) -> np.ndarray:
    """Twin of `_core.requantize_fixed_point`: MBQM(acc + bias) + zp (int32 wrap), clamp."""
    rows, C = _rows(acc)
    acc_bits = 64 if np.asarray(acc).dtype == np.int64 else 32
    f = _MBQM[_variant(rounding)]
    ms, ss, zs = _per_channel(multiplier, C), _per_channel(shift, C), _per_channel(zero_point, C)
    out = np.empty(rows.shape, dtype=_out_dtype(qmin, qmax, out_dtype))
    for r, row in enumerate(rows):
        for c, a in enumerate(row):
            v = int(a)
            if bias is not None:
                v = wrap(v + int(bias[c]), acc_bits)
            out[r, c] = _clamp(wrap(f(v, int(ms[c]), int(ss[c])) + int(zs[c]), 32), qmin, qmax)
    return out.reshape(np.shape(acc))


def requantize_pow2(acc: np.ndarray, shift_cut: Any, zero_point: Any = 0, qmin: int = -128, qmax: int = 127, *,
                    bias: Any = None, shift_bias: Any = 0, rounding: Any = "HALF_UP", seed: int = 0,
                    out_dtype: Any = None) -> np.ndarray:
    """Twin of `_core.requantize_pow2`: exact rational (acc + bias*2^shift_bias) / 2^shift_cut, one rounding."""
    rows, C = _rows(acc)
    cuts, sbs, zs = _per_channel(shift_cut, C), _per_channel(shift_bias, C), _per_channel(zero_point, C)
    out = np.empty(rows.shape, dtype=_out_dtype(qmin, qmax, out_dtype))
    for r, row in enumerate(rows):
        for c, a in enumerate(row):
            v = Fraction(int(a))
            if bias is not None:
                v += int(bias[c]) * Fraction(2) ** int(sbs[c])
            v /= Fraction(2) ** int(cuts[c])
            z = int(zs[c])
            out[r, c] = _clamp(round_rational(v, rounding, seed, r * C + c), qmin - z, qmax - z) + z
    return out.reshape(np.shape(acc))


# ---------------------------------------------------------------------------------------------
# Quantize / dequantize


def float32_from_fraction(v: Fraction) -> np.float32:
    """The float32 nearest to an exact rational (ties to even): what one IEEE float32 operation returns."""
    if v == 0:
        return np.float32(0.0)
    sign = -1 if v < 0 else 1
    a = abs(v)
    e = math.floor(math.log2(a.numerator) - math.log2(a.denominator))
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    e = max(e, -126)  # subnormals share the minimum exponent
    ulp = Fraction(2) ** (e - 23)
    m = round_rational(a / ulp, "HALF_TO_EVEN")
    return np.float32(sign * float(m * ulp))


def _param_index(shape: tuple, axis: int | None, group_size: int | None, flat: int) -> tuple:
    if axis is None:
        return (0,)
    idx = list(np.unravel_index(flat, shape))
    if group_size is None:
        return (idx[axis],)
    idx[axis] //= group_size
    return tuple(idx)


def _param(p: Any, key: tuple, axis: int | None) -> Any:
    arr = np.asarray(p)
    if arr.size == 1:
        return arr.ravel()[0]
    return arr.reshape(-1)[key[0]] if len(key) == 1 else arr[key]


def quantize(x: np.ndarray, scale: Any, zero_point: Any, qmin: int, qmax: int, *, axis: int | None = None,
             group_size: int | None = None, rounding: Any = "HALF_TO_EVEN", overflow: Any = "SATURATE",
             method: str = "divide", precision: str = "fp32", seed: int = 0, out_dtype: Any = None) -> np.ndarray:
    """Twin of `_core.quantize`. The torch-style fma is evaluated exactly and rounded once to float32/64."""
    real = np.float32 if precision == "fp32" else np.float64
    x = np.asarray(x)
    if axis is not None and axis < 0:
        axis += x.ndim
    out = np.empty(x.size, dtype=_out_dtype(qmin, qmax, out_dtype))
    ov = overflow if isinstance(overflow, str) else overflow.name
    signed = qmin < 0
    bits = next(b for b in (*range(2, 17), 32) if (-(1 << (b - 1)) if signed else 0) <= qmin
                and qmax <= ((1 << (b - 1)) - 1 if signed else (1 << b) - 1))
    with np.errstate(all="ignore"):
        for i, xv in enumerate(x.ravel()):
            key = _param_index(x.shape, axis, group_size, i)
            s = real(_param(scale, key, axis))
            z = int(_param(zero_point, key, axis))
            xv = real(xv)
            add = z
            if method == "divide":
                t = real(xv / s)
            elif method == "multiply_reciprocal":
                t = real(xv * real(real(1) / s))
            elif method == "multiply_add_reciprocal":
                t = real(real(xv * real(real(1) / s)) + real(z))
                add = 0
            else:
                inv = real(real(1) / s)
                exact = Fraction(float(xv)) * Fraction(float(inv)) + z if math.isfinite(float(xv)) else None
                if exact is None:
                    t = real(xv * inv)
                elif real is np.float32:
                    t = float32_from_fraction(exact)
                else:
                    t = np.float64(float(exact))  # Fraction -> float is correctly rounded
                add = 0
            ft = float(t)
            if math.isnan(ft):
                q = 0
            elif math.isinf(ft):
                q = (1 << 62) if ft > 0 else -(1 << 62)
            else:
                q = _clamp(round_rational(Fraction(ft), rounding, seed, i, float_stochastic=True), -(1 << 62), 1 << 62)
            q += add
            if ov == "WRAP":
                q = _clamp(wrap(q, bits, signed), qmin, qmax)
            else:
                q = _clamp(q, qmin, qmax)
            out[i] = q
    return out.reshape(x.shape)


def dequantize(q: np.ndarray, scale: Any, zero_point: Any, *, axis: int | None = None, group_size: int | None = None,
               method: str = "subtract_then_scale", precision: str = "fp32") -> np.ndarray:
    """Twin of `_core.dequantize`."""
    real = np.float32 if precision == "fp32" else np.float64
    q = np.asarray(q)
    if axis is not None and axis < 0:
        axis += q.ndim
    out = np.empty(q.size, dtype=real)
    for i, qv in enumerate(q.ravel()):
        key = _param_index(q.shape, axis, group_size, i)
        s = real(_param(scale, key, axis))
        z = int(_param(zero_point, key, axis))
        if method == "subtract_then_scale":
            out[i] = real(real(int(qv) - z) * s)
        else:
            out[i] = real(real(real(int(qv)) * s) - real(real(z) * s))
    return out.reshape(q.shape)


# ---------------------------------------------------------------------------------------------
# Packing


def pack_bits(values: np.ndarray, bits: int, order: str = "low_first") -> np.ndarray:
    """Twin of `_core.pack_bits`: element j in byte j // (8 // bits)."""
    per = 8 // bits
    vals = [int(v) & ((1 << bits) - 1) for v in np.asarray(values).ravel()]
    out = [0] * ((len(vals) * bits + 7) // 8)
    for j, v in enumerate(vals):
        slot = j % per
        offset = slot * bits if order == "low_first" else 8 - (slot + 1) * bits
        out[j // per] |= v << offset
    return np.array(out, dtype=np.uint8)


def unpack_bits(data: np.ndarray, bits: int, count: int, signed: bool = True, order: str = "low_first") -> np.ndarray:
    """Twin of `_core.unpack_bits`."""
    per = 8 // bits
    data = np.asarray(data)
    out = []
    for j in range(count):
        slot = j % per
        offset = slot * bits if order == "low_first" else 8 - (slot + 1) * bits
        v = (int(data[j // per]) >> offset) & ((1 << bits) - 1)
        out.append(wrap(v, bits, True) if signed else v)
    return np.array(out, dtype=np.int8 if signed else np.uint8)


def int_range(bits: int, signed: bool = True, narrow: bool = False) -> tuple[int, int]:
    """(qmin, qmax); narrow drops the most negative signed code, or the top unsigned code (Brevitas)."""
    if signed:
        return -(1 << (bits - 1)) + int(narrow), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - int(narrow)
