// Requantization: int32 (or int64) accumulators -> narrow integers, one named scheme per function.
// Arrays are row-major [rows, C]: the LAST axis is the channel axis. Every per-channel parameter is a
// pointer plus a length that is either 1 (per-tensor) or C (per-channel); `Pick` selects the element.
// Output: q = clamp(..., qmin, qmax) where [qmin, qmax] is the caller's combined type / activation range.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "hwsim/assumptions.h"
#include "hwsim/fixedpoint.h"
#include "hwsim/int_range.h"
#include "hwsim/rounding.h"

namespace hwsim {

template <typename T>
inline T Pick(const T* p, int64_t len, int64_t c) { return p[len == 1 ? 0 : c]; }

// ---------------------------------------------------------------------------------------------
// (a) Float-scale requantization (onnxruntime MLAS, fbgemm ReQuantizeOutput, XNNPACK fp32, TFLM float FC).
enum class FloatBias : int {
  NONE = 0,
  INT32 = 1,             // raw = wrap32(acc + bias_i32), then converted (MLAS, XNNPACK, fbgemm int bias)
  FLOAT_DIVIDE = 2,      // raw_f = Real(acc) + bias_f / bias_scale      (fbgemm float bias, generic + per-channel)
  FLOAT_RECIPROCAL = 3,  // raw_f = Real(acc) + bias_f * (1 / bias_scale) (fbgemm float bias, AVX2 per-tensor)
};

struct FloatRequantOptions {
  bool scale_divides = false;          // v = raw_f / scale instead of raw_f * scale
  FloatBias bias = FloatBias::NONE;
  bool clamp_before_rounding = false;  // clamp v to [qmin - zp, qmax - zp] in Real before rounding (MLAS, XNNPACK)
  RoundingMode rounding = RoundingMode::HALF_TO_EVEN;
  uint64_t seed = 0;
};

// v = Real(raw) [+ float bias] then * scale (or / scale), all in Real (float = fp32, double = fp64) with
// one IEEE rounding per operation (no FMA); int -> float conversion rounds to nearest even. Then either
// clamp in Real and round, or round and clamp; + zp. Rounding of a float32 value is done exactly in
// double (same integer). Overflowing conversions saturate (real x86 cvtps2dq would give INT_MIN).
template <typename Real, typename Out>
void RequantizeFloat(const int32_t* acc, int64_t rows, int64_t C, const int32_t* bias_i, const Real* bias_f,
                     const Real* bias_scale, int64_t bias_scale_len, const Real* scale, int64_t scale_len,
                     const int32_t* zp, int64_t zp_len, int64_t qmin, int64_t qmax, const FloatRequantOptions& o,
                     Out* out) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c;
      int32_t raw = acc[i];
      if (o.bias == FloatBias::INT32) raw = WrapToInt32(static_cast<int64_t>(raw) + bias_i[c]);
      Real v = static_cast<Real>(raw);
      if (o.bias == FloatBias::FLOAT_DIVIDE) {
        v = v + bias_f[c] / Pick(bias_scale, bias_scale_len, c);
      } else if (o.bias == FloatBias::FLOAT_RECIPROCAL) {
        const Real rcp = Real(1) / Pick(bias_scale, bias_scale_len, c);
        v = v + bias_f[c] * rcp;
      }
      const Real s = Pick(scale, scale_len, c);
      v = o.scale_divides ? v / s : v * s;
      const int64_t z = Pick(zp, zp_len, c);
      if (o.clamp_before_rounding) {
        const Real lo = static_cast<Real>(qmin - z), hi = static_cast<Real>(qmax - z);
        v = std::min(std::max(v, lo), hi);  // (v is finite: int32 times a finite scale)
      }
      const double rounded = RoundFloat(static_cast<double>(v), o.rounding, o.seed, static_cast<uint64_t>(i));
      out[i] = static_cast<Out>(SaturateDoubleToInt(rounded, qmin - z, qmax - z) + z);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// (b) TFLite fixed point: acc (+ bias, wrapping in the accumulator type), MBQM by the named variant,
// + zp (int32 wrap, as the compiled kernel does), clamp. Acc = int32_t (DOUBLE/SINGLE/INT64_16BIT) or
// int64_t (INT64_16BIT only: the 16x8 kernels).
template <typename Acc, typename Out>
void RequantizeFixedPoint(const Acc* acc, int64_t rows, int64_t C, const Acc* bias, const int32_t* mult,
                          int64_t mult_len, const int32_t* shift, int64_t shift_len, const int32_t* zp, int64_t zp_len,
                          int64_t qmin, int64_t qmax, MultiplierVariant variant, Out* out) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c;
      Acc a = acc[i];
      if (bias != nullptr) {
        // Wrapping add in the accumulator's own width (unsigned arithmetic: no UB).
        using U = typename UnsignedOf<Acc>::type;
        a = static_cast<Acc>(static_cast<U>(a) + static_cast<U>(bias[c]));
      }
      const int32_t m = Pick(mult, mult_len, c);
      const int sh = Pick(shift, shift_len, c);
      int32_t scaled;
      switch (variant) {
        case MultiplierVariant::DOUBLE_ROUNDING:
          scaled = MultiplyByQuantizedMultiplierDoubleRounding(static_cast<int32_t>(a), m, sh);
          break;
        case MultiplierVariant::SINGLE_ROUNDING:
          scaled = MultiplyByQuantizedMultiplierSingleRounding(static_cast<int32_t>(a), m, sh);
          break;
        default:
          scaled = MultiplyByQuantizedMultiplierInt64(static_cast<int64_t>(a), m, sh);
          break;
      }
      const int64_t withzp = WrapToInt32(static_cast<int64_t>(scaled) + Pick(zp, zp_len, c));
      out[i] = static_cast<Out>(std::min(std::max(withzp, qmin), qmax));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// (c) Power-of-two shift (Xilinx DPU conv requant, numerics C.4):
//   y = sat(round((acc + bias * 2^shift_bias) / 2^shift_cut) + zp)
// computed exactly in 128-bit integers (one rounding, default HALF_UP = DPU_ROUND). Either shift may be
// negative: a negative shift_bias right-shifts the bias and a negative shift_cut is a left shift, both
// without intermediate rounding. Shifts must be in [-32, 32] (the binding checks).
template <typename Acc, typename Out>
void RequantizePow2(const Acc* acc, int64_t rows, int64_t C, const Acc* bias, const int32_t* shift_bias,
                    int64_t shift_bias_len, const int32_t* shift_cut, int64_t shift_cut_len, const int32_t* zp,
                    int64_t zp_len, int64_t qmin, int64_t qmax, RoundingMode mode, uint64_t seed, Out* out) {
  const int128_t big = int128_t{1} << 64;  // far outside any output range: a safe saturation sentinel
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c;
      const int sc = Pick(shift_cut, shift_cut_len, c);
      int128_t num = static_cast<int128_t>(acc[i]);
      int total = sc;
      if (bias != nullptr) {
        const int sb = Pick(shift_bias, shift_bias_len, c);
        const int k = sb < 0 ? -sb : 0;  // common denominator 2^k
        num = num * (int128_t{1} << k) + static_cast<int128_t>(bias[c]) * (int128_t{1} << (sb + k));
        total = sc + k;
      }
      int128_t v;
      if (total >= 0) {
        v = RoundingRightShift<int128_t>(num, total, mode, seed, static_cast<uint64_t>(i));
      } else {
        v = num > big ? big : (num < -big ? -big : num * (int128_t{1} << -total));
      }
      const int64_t z = Pick(zp, zp_len, c);
      const int128_t lo = qmin - z, hi = qmax - z;
      v = v < lo ? lo : (v > hi ? hi : v);
      out[i] = static_cast<Out>(static_cast<int64_t>(v) + z);
    }
  }
}

}  // namespace hwsim
