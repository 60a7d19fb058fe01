// QuantizeMultiplier: real multiplier -> (int32 mantissa M, shift e) with m ~= M * 2^(e - 31).
// TFLite tensorflow/lite/kernels/internal/quantization_util.cc (QuantizeMultiplier); numerics.md A.2.
#pragma once

#include <cmath>
#include <cstdint>

namespace hwsim {

struct QuantizedMultiplier {
  int32_t multiplier;
  int shift;
};

// 1. m == 0 -> (0, 0).
// 2. (f, e) = frexp(m), f in [0.5, 1); M = round_half_away(f * 2^31) (C round, in double).
// 3. M == 2^31 (f rounded up to 1.0) -> M = 2^30, e += 1.
// 4. e < -31 -> (0, 0): tiny multipliers flush to zero.
// 5. single-rounding builds only: e > 30 -> e = 30, M = 2^31 - 1.
// Negative m gives a negative M (frexp keeps the sign; -2^31 is kept). Caller guarantees m is finite.
inline QuantizedMultiplier QuantizeMultiplier(double m, bool single_rounding) {
  if (m == 0.0) return {0, 0};
  int e = 0;
  const double f = std::frexp(m, &e);
  int64_t q = static_cast<int64_t>(std::round(f * static_cast<double>(int64_t{1} << 31)));
  if (q == (int64_t{1} << 31)) {  // like TFLite, only the positive overflow is folded
    q /= 2;
    ++e;
  }
  if (e < -31) {
    e = 0;
    q = 0;
  }
  if (single_rounding && e > 30) {
    e = 30;
    q = (int64_t{1} << 31) - 1;
  }
  return {static_cast<int32_t>(q), e};
}

}  // namespace hwsim
