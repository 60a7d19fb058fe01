// Lookup-table activations: application (256-entry table for 8-bit codes, 65536 for 16-bit, indexed
// by the input's bit pattern) and the TFLite int8 LOGISTIC/TANH table builder.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace hwsim {

// out[i] = table[(unsigned)x[i]]: an 8-bit code indexes a 256-entry table, a 16-bit code a
// 65536-entry table, by its two's-complement bit pattern (TFLite: lut[(uint8_t)v]).
template <typename In, typename Out>
void ApplyLut(const In* x, int64_t n, const Out* table, Out* out) {
  using Index = typename std::conditional<sizeof(In) == 1, uint8_t, uint16_t>::type;
  for (int64_t i = 0; i < n; ++i) out[i] = table[static_cast<Index>(x[i])];
}

enum class LutFunction : int { LOGISTIC = 0, TANH = 1 };

// TFLite LUTPopulateInt8 (kernels/internal/common.h; numerics.md A.7 item 1), all in float32 with the
// host libm's expf/tanhf:
//   inv = 1 / s_out; for v in [min(T), max(T)]: x = s_in * float(v - zp_in);
//   y = 1 / (1 + expf(-x)) (LOGISTIC) or tanhf(x) (TANH); r = roundf(y * inv) (half away from zero);
//   q = int(r + float(zp_out)); table[(uint8)v] = clamp(q, min(T), max(T)).
// T = int8_t or uint8_t. -ffp-contract=off keeps every float operation separately rounded.
template <typename T>
void BuildLutTfliteInt8(LutFunction fn, float input_scale, int32_t input_zero_point, float output_scale,
                        int32_t output_zero_point, T* table) {
  const float inverse_scale = 1.0f / output_scale;
  const int32_t minval = std::numeric_limits<T>::min(), maxval = std::numeric_limits<T>::max();
  for (int32_t v = minval; v <= maxval; ++v) {
    const float x = input_scale * static_cast<float>(v - input_zero_point);
    const float y = fn == LutFunction::LOGISTIC ? 1.0f / (1.0f + std::exp(-x)) : std::tanh(x);
    const float r = std::round(y * inverse_scale);
    const float shifted = r + static_cast<float>(output_zero_point);
    const int32_t q = std::isfinite(shifted) ? static_cast<int32_t>(std::max(std::min(shifted, 1e9f), -1e9f)) : 0;
    table[static_cast<uint8_t>(static_cast<T>(v))] = static_cast<T>(std::max(std::min(maxval, q), minval));
  }
}

}  // namespace hwsim
