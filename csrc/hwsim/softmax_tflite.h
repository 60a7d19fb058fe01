// TFLite int8/uint8 SOFTMAX over the last axis, both implementations of numerics.md A.9:
//  * SoftmaxFixedPoint: the reference kernel (op resolver BUILTIN_REF; reference_ops::Softmax), gemmlowp
//    fixed point: scaled differences in Q5.26, exp_on_negative_values, a Q12.19 sum, GetReciprocal.
//  * SoftmaxFloatTable: the default resolver's optimized kernel: a float32 table of exp(-s_in k), a
//    sequential float32 sum, one float32 reciprocal and a multiply, (p + 0.5 toward p's sign) truncated.
// The gemmlowp functions are reproduced from their documented semantics (fixedpoint.h): each fixed-point
// product is SaturatingRoundingDoublingHighMul, each rescale a rounding (RDBP) or saturating shift, and
// sums of raw values are plain int32 additions.
#pragma once

#include <cstdint>
#include <limits>

#include "hwsim/assumptions.h"
#include "hwsim/fixedpoint.h"

namespace hwsim {

// gemmlowp SaturatingRoundingMultiplyByPOT with a positive exponent: x * 2^n, saturated to int32.
inline int32_t SaturatingShiftLeftInt32(int32_t x, int n) {
  const int64_t v = static_cast<int64_t>(x) * (int64_t{1} << n);
  const int64_t lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max();
  return static_cast<int32_t>(v < lo ? lo : (v > hi ? hi : v));
}

// gemmlowp RoundingHalfSum: (a + b) / 2 rounded half away from zero, in int64.
inline int32_t RoundingHalfSumInt32(int32_t a, int32_t b) {
  const int64_t sum = static_cast<int64_t>(a) + static_cast<int64_t>(b);
  return static_cast<int32_t>((sum + (sum >= 0 ? 1 : -1)) / 2);
}

// gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl: a in [-1/4, 0) as Q0.31, exp(a) in
// Q0.31 by a 4th-order Taylor expansion around -1/8 (constants exp(-1/8) and 1/3 in Q0.31).
inline int32_t ExpOnIntervalNegativeQuarterToZero(int32_t a) {
  const int32_t exp_minus_one_eighth = 1895147668, one_third = 715827883;
  const int32_t x = a + (1 << 28);  // a + 1/8
  const int32_t x2 = SaturatingRoundingDoublingHighMul(x, x);
  const int32_t x3 = SaturatingRoundingDoublingHighMul(x2, x);
  const int32_t x4_over_4 = RoundingDivideByPOT<int32_t>(SaturatingRoundingDoublingHighMul(x2, x2), 2);
  const int32_t poly = RoundingDivideByPOT<int32_t>(
      SaturatingRoundingDoublingHighMul(x4_over_4 + x3, one_third) + x2, 1);  // x^4/24 + x^3/6 + x^2/2
  return exp_minus_one_eighth + SaturatingRoundingDoublingHighMul(exp_minus_one_eighth, x + poly);
}

// gemmlowp exp_on_negative_values: a <= 0 in Q(int_bits).(31 - int_bits), exp(a) in Q0.31. The fraction
// modulo 1/4 goes through the polynomial; each set bit 2^k (k = -2 .. int_bits - 1, at most 4) of the rest
// multiplies by exp(-2^k) in Q0.31. a = 0 gives the largest Q0.31 value 2^31 - 1. int_bits in [1, 5].
inline int32_t ExpOnNegativeValues(int32_t a, int int_bits) {
  static const int32_t kExpMinusPow2[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
  const int frac_bits = 31 - int_bits;
  const int32_t quarter = int32_t{1} << (frac_bits - 2);
  const int32_t a_mod_minus_quarter = (a & (quarter - 1)) - quarter;
  int32_t result = ExpOnIntervalNegativeQuarterToZero(SaturatingShiftLeftInt32(a_mod_minus_quarter, int_bits));
  const int32_t remainder = a_mod_minus_quarter - a;
  for (int k = -2; k <= 4; ++k) {
    if (int_bits > k && (remainder & (int32_t{1} << (frac_bits + k))) != 0)
      result = SaturatingRoundingDoublingHighMul(result, kExpMinusPow2[k + 2]);
  }
  return a == 0 ? std::numeric_limits<int32_t>::max() : result;
}

// gemmlowp one_over_one_plus_x_for_x_in_0_1: a in [0, 1) as Q0.31, 1/(1 + a) in Q0.31 by three
// Newton-Raphson steps in Q2.29 from 48/17 - 32/17 d, d = (1 + a)/2.
inline int32_t OneOverOnePlusX(int32_t a) {
  const int32_t half_denominator = RoundingHalfSumInt32(a, std::numeric_limits<int32_t>::max());
  int32_t x = 1515870810 + SaturatingRoundingDoublingHighMul(half_denominator, -1010580540);
  for (int i = 0; i < 3; ++i) {
    const int32_t one_minus = (int32_t{1} << 29) - SaturatingRoundingDoublingHighMul(half_denominator, x);
    x = x + SaturatingShiftLeftInt32(SaturatingRoundingDoublingHighMul(x, one_minus), 2);
  }
  return SaturatingShiftLeftInt32(x, 1);
}

// Count of leading zero bits of a 32-bit value (32 for 0).
inline int CountLeadingZeros32(uint32_t v) {
  int n = 0;
  for (uint32_t bit = 0x80000000u; bit != 0 && (v & bit) == 0; bit >>= 1) ++n;
  return n;
}

// SOFTMAX, TFLite reference kernel (numerics A.9, second bullet), rows of C codes. diff = q - max(row);
// diff < diff_min gives the type's minimum; otherwise x = SRDHM(diff 2^left_shift, M) in Q5.26,
// e = exp_on_negative_values(x), sum = sum of RDBP(e, 12) (Q12.19, int32 wrapping adds);
// recip = 1/(1 + (sum << clz(sum)) - 1) via OneOverOnePlusX, bits = 12 - clz(sum);
// y = RDBP(SRDHM(recip, e), bits + 31 - 8) + type minimum, clamped to the type (output scale 1/256).
// A sum of 2^28 or more (at least 512 values at the row maximum) makes that exponent exceed 31: the
// interpreter's BUILTIN_REF then aborts (measured with a 1000-wide row: gemmlowp asserts exponent <= 31);
// here the division continues exactly in int64. C is limited to 2048 so that the int32 sum cannot wrap.
template <typename T>
void SoftmaxFixedPoint(const T* x, int64_t rows, int64_t C, int32_t beta_multiplier, int beta_left_shift,
                       int32_t diff_min, T* out) {
  constexpr int kScaledDiffIntegerBits = 5, kAccumulationIntegerBits = 12;
  const int32_t tmin = std::numeric_limits<T>::min(), tmax = std::numeric_limits<T>::max();
  for (int64_t r = 0; r < rows; ++r) {
    const T* in = x + r * C;
    T* o = out + r * C;
    int32_t max_in_row = in[0];
    for (int64_t c = 1; c < C; ++c) max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
    uint32_t sum = 0;
    for (int64_t c = 0; c < C; ++c) {
      const int32_t diff = static_cast<int32_t>(in[c]) - max_in_row;
      if (diff < diff_min) continue;
      const int32_t scaled = SaturatingRoundingDoublingHighMul(diff * (int32_t{1} << beta_left_shift), beta_multiplier);
      sum += static_cast<uint32_t>(
          RoundingDivideByPOT<int32_t>(ExpOnNegativeValues(scaled, kScaledDiffIntegerBits), kAccumulationIntegerBits));
    }
    const int headroom_plus_one = CountLeadingZeros32(sum);
    const int num_bits_over_unit = kAccumulationIntegerBits - headroom_plus_one;
    const int32_t shifted_minus_one = static_cast<int32_t>((sum << headroom_plus_one) - (uint32_t{1} << 31));
    const int32_t recip = OneOverOnePlusX(shifted_minus_one);
    const int exponent = num_bits_over_unit + 31 - 8 * static_cast<int>(sizeof(T));
    for (int64_t c = 0; c < C; ++c) {
      const int32_t diff = static_cast<int32_t>(in[c]) - max_in_row;
      if (diff < diff_min) {
        o[c] = static_cast<T>(tmin);
        continue;
      }
      const int32_t scaled = SaturatingRoundingDoublingHighMul(diff * (int32_t{1} << beta_left_shift), beta_multiplier);
      const int32_t e = ExpOnNegativeValues(scaled, kScaledDiffIntegerBits);
      const int64_t y = static_cast<int64_t>(RoundingDivideByPOT<int64_t>(SaturatingRoundingDoublingHighMul(recip, e),
                                                                          exponent)) + tmin;
      o[c] = static_cast<T>(y < tmin ? tmin : (y > tmax ? tmax : y));
    }
  }
}

// SOFTMAX, TFLite optimized kernel (numerics A.9, first bullet), rows of C codes. table[k] = float32
// exp(-s_in k) for k = max(row) - q in [0, 255] (computed by the caller); sum added in float32 in column
// order; inv = 1 / (sum s_out); p = table[k] inv; y = trunc(p + copysign(0.5, p)) + zp_out in float32,
// clamped to [qmin, qmax]. Needs no FMA contraction (the build uses -ffp-contract=off).
template <typename T>
void SoftmaxFloatTable(const T* x, int64_t rows, int64_t C, const float* table, float output_scale,
                       int32_t zp_out, int32_t qmin, int32_t qmax, T* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* in = x + r * C;
    T* o = out + r * C;
    int32_t max_in_row = in[0];
    for (int64_t c = 1; c < C; ++c) max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
    float sum = 0.0f;
    for (int64_t c = 0; c < C; ++c) sum += table[max_in_row - static_cast<int32_t>(in[c])];
    const float inv = 1.0f / (sum * output_scale);
    for (int64_t c = 0; c < C; ++c) {
      const float p = table[max_in_row - static_cast<int32_t>(in[c])] * inv;
      const float rounded = p + (p < 0.0f ? -0.5f : 0.5f);
      const float t = rounded < -2147483648.0f ? -2147483648.0f : (rounded > 2147483520.0f ? 2147483520.0f : rounded);
      const int64_t y = static_cast<int64_t>(static_cast<int32_t>(t)) + zp_out;
      o[c] = static_cast<T>(y < qmin ? qmin : (y > qmax ? qmax : y));
    }
  }
}

}  // namespace hwsim
