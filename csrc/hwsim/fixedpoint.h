// gemmlowp / TFLite fixed-point primitives (google/gemmlowp fixedpoint/fixedpoint.h,
// tensorflow/lite/kernels/internal/common.h|cc), reproduced in logic; see numerics.md section 0 and A.3.
#pragma once

#include <cstdint>
#include <limits>

#include "hwsim/assumptions.h"
#include "hwsim/int_range.h"

namespace hwsim {

// SRDHM, int32 (ARM VQRDMULH): round(a*b / 2^31) with ties toward +inf, computed as
// trunc((a*b + nudge) / 2^31) with nudge = 2^30 if a*b >= 0 else 1 - 2^30. The single overflowing
// case a = b = -2^31 saturates to 2^31 - 1.
inline int32_t SaturatingRoundingDoublingHighMul(int32_t a, int32_t b) {
  if (a == b && a == std::numeric_limits<int32_t>::min()) return std::numeric_limits<int32_t>::max();
  const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  const int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : (1 - (int64_t{1} << 30));
  return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));
}

// SRDHM, int16 (ARM VQRDMULH.S16): round(a*b / 2^15), ties toward +inf; a = b = -2^15 saturates to 2^15 - 1.
inline int16_t SaturatingRoundingDoublingHighMul(int16_t a, int16_t b) {
  if (a == b && a == std::numeric_limits<int16_t>::min()) return std::numeric_limits<int16_t>::max();
  const int32_t ab = static_cast<int32_t>(a) * static_cast<int32_t>(b);
  const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
  return static_cast<int16_t>((ab + nudge) / (1 << 15));
}

// Truncating doubling high multiply, int16 (TFLite hard_swish.h SaturatingDoublingHighMul; ARM VQDMULH):
// trunc(a*b / 2^15), no rounding on purpose; a = b = -2^15 saturates to 2^15 - 1.
inline int16_t SaturatingDoublingHighMul(int16_t a, int16_t b) {
  if (a == b && a == std::numeric_limits<int16_t>::min()) return std::numeric_limits<int16_t>::max();
  const int32_t ab = static_cast<int32_t>(a) * static_cast<int32_t>(b);
  return static_cast<int16_t>(ab / (1 << 15));
}

// Truncating doubling high multiply, int32 (ARM VQDMULH.S32): trunc(a*b / 2^31); -2^31 * -2^31 saturates.
inline int32_t SaturatingDoublingHighMul(int32_t a, int32_t b) {
  if (a == b && a == std::numeric_limits<int32_t>::min()) return std::numeric_limits<int32_t>::max();
  const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  return static_cast<int32_t>(ab / (int64_t{1} << 31));
}

// RDBP (gemmlowp RoundingDivideByPOT, ARM VRSHL by -n after a sign fix-up): x / 2^n rounded half away
// from zero, 0 <= n <= 31 (int32) / 15 (int16). threshold = (mask >> 1) + (x < 0); carry if rem > threshold.
template <typename T>
inline T RoundingDivideByPOT(T x, int n) {
  using Wide = int64_t;
  const Wide mask = (Wide{1} << n) - 1;
  const Wide remainder = static_cast<Wide>(x) & mask;
  const Wide threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return static_cast<T>((static_cast<Wide>(x) >> n) + (remainder > threshold ? 1 : 0));
}

// MultiplyByQuantizedMultiplier, gemmlowp double rounding (TFLite default build, TFLITE_SINGLE_ROUNDING
// undefined): RDBP(SRDHM(x * 2^max(shift,0), M), max(-shift,0)). Two roundings: ties toward +inf at
// the 2^31 boundary, then ties away from zero for the shift. shift in [-31, 30]. x * 2^left wraps as
// int32 (TFLite requires it not to overflow; compiled code wraps).
inline int32_t MultiplyByQuantizedMultiplierDoubleRounding(int32_t x, int32_t multiplier, int shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  const int32_t shifted = WrapToInt32(static_cast<int64_t>(x) * (int64_t{1} << left));
  return RoundingDivideByPOT<int32_t>(SaturatingRoundingDoublingHighMul(shifted, multiplier), right);
}

// MultiplyByQuantizedMultiplier, single rounding (TFLITE_SINGLE_ROUNDING=1; ruy apply_multiplier):
// (x*M + 2^(t-1)) >> t in int64 with t = 31 - shift, shift in [-31, 30]: one rounding, ties toward +inf.
// The int64 result is narrowed to int32 by wrapping (TFLite only DCHECKs the range).
inline int32_t MultiplyByQuantizedMultiplierSingleRounding(int32_t x, int32_t multiplier, int shift) {
  const int total_shift = 31 - shift;
  const int64_t round = int64_t{1} << (total_shift - 1);
  const int64_t result = (static_cast<int64_t>(x) * static_cast<int64_t>(multiplier) + round) >> total_shift;
  return WrapToInt32(result);
}

// MultiplyByQuantizedMultiplier, int64 input (TFLite 16x8 kernels; identical in both build modes):
// the multiplier is first reduced to 15 bits, M16 = M < 0x7FFF0000 ? (M + 2^15) >> 16 : 0x7FFF, then
// (x*M16 + 2^(t-1)) >> t with t = 15 - shift; one rounding, ties toward +inf. Requires
// x in [-2^47, 2^47) and shift in [-31, 7]; result narrowed to int32 by wrapping.
inline int32_t MultiplyByQuantizedMultiplierInt64(int64_t x, int32_t multiplier, int shift) {
  const int32_t reduced = multiplier < 0x7FFF0000 ? ((multiplier + (1 << 15)) >> 16) : 0x7FFF;
  const int total_shift = 15 - shift;
  const int64_t round = int64_t{1} << (total_shift - 1);
  const int64_t result = (x * static_cast<int64_t>(reduced) + round) >> total_shift;
  return WrapToInt32(result);
}

enum class MultiplierVariant : int {
  DOUBLE_ROUNDING = 0,  // MultiplyByQuantizedMultiplierDoubleRounding
  SINGLE_ROUNDING = 1,  // MultiplyByQuantizedMultiplierSingleRounding
  INT64_16BIT = 2,      // MultiplyByQuantizedMultiplierInt64
};

}  // namespace hwsim
