// TFLite int8/uint8 element-wise activations whose output depends on the input code only: HARD_SWISH
// (reference kernel, numerics.md A.8), LEAKY_RELU as the reference kernel computes it (two gemmlowp
// multipliers, A.7) and as XNNPACK computes it (8-bit fixed-point multipliers, measured:
// tests/oracle/test_tflite_oracle.py::test_leaky_relu_all_codes). The multipliers come from Python
// (hwsim.emulate.op_kernels), which also turns these functions into 256-entry tables.
#pragma once

#include <cstdint>

#include "hwsim/assumptions.h"
#include "hwsim/fixedpoint.h"

namespace hwsim {

// Saturating left shift of an int16 by n >= 0 (TFLite hard_swish.h SaturatingLeftShift): x * 2^n clamped
// to [-2^15, 2^15 - 1].
inline int16_t SaturatingLeftShiftInt16(int16_t x, int n) {
  const int64_t v = static_cast<int64_t>(x) * (int64_t{1} << n);
  return static_cast<int16_t>(v < -32768 ? -32768 : (v > 32767 ? 32767 : v));
}

// HARD_SWISH int8/uint8 (TFLite reference_ops::HardSwish, numerics A.8), int16 fixed point:
//   v = 128 (q - zp_in);  pre = SRDHM16(v, M_out)
//   r = v; if e_r > 0: r = sat16(r 2^(e_r - 1)); r = SRDHM16(r, M_relu); if e_r > 0: r = sat16(2 r);
//   if e_r < 0: r = RDBP(r, -e_r);  r = (r + 2^15) >> 1          (reluish in [0, 1) as Q0.15)
//   y = RDBP(SDHM16(r, pre), -e_out) + zp_out, clamped           (SDHM16 truncates on purpose)
// Requires e_out <= 0 and e_relu <= 15 (TFLite checks the first at prepare).
template <typename T>
void HardSwishTflite(const T* x, int64_t n, int32_t zp_in, int32_t zp_out, int16_t m_out, int e_out,
                     int16_t m_relu, int e_relu, int32_t qmin, int32_t qmax, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    const int16_t v = static_cast<int16_t>((static_cast<int32_t>(x[i]) - zp_in) * 128);
    const int16_t pre = SaturatingRoundingDoublingHighMul(v, m_out);
    int16_t r = v;
    if (e_relu > 0) r = SaturatingLeftShiftInt16(r, e_relu - 1);
    r = SaturatingRoundingDoublingHighMul(r, m_relu);
    if (e_relu > 0) r = SaturatingLeftShiftInt16(r, 1);
    if (e_relu < 0) r = RoundingDivideByPOT<int16_t>(r, -e_relu);
    r = static_cast<int16_t>((static_cast<int32_t>(r) + (1 << 15)) >> 1);
    const int16_t p = SaturatingDoublingHighMul(r, pre);
    int32_t y = static_cast<int32_t>(RoundingDivideByPOT<int16_t>(p, -e_out)) + zp_out;
    out[i] = static_cast<T>(y < qmin ? qmin : (y > qmax ? qmax : y));
  }
}

// LEAKY_RELU, TFLite reference (reference_ops::QuantizeLeakyRelu, numerics A.7): d = q - zp_in;
// y = zp_out + MBQM(d, M_identity, e_identity) if d >= 0 else zp_out + MBQM(d, M_alpha, e_alpha), with
// gemmlowp double rounding (SRDHM, then RDBP), clamped.
template <typename T>
void LeakyReluTflite(const T* x, int64_t n, int32_t zp_in, int32_t zp_out, int32_t m_identity, int e_identity,
                     int32_t m_alpha, int e_alpha, int32_t qmin, int32_t qmax, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    const int32_t d = static_cast<int32_t>(x[i]) - zp_in;
    const int32_t y = zp_out + (d >= 0 ? MultiplyByQuantizedMultiplierDoubleRounding(d, m_identity, e_identity)
                                       : MultiplyByQuantizedMultiplierDoubleRounding(d, m_alpha, e_alpha));
    out[i] = static_cast<T>(y < qmin ? qmin : (y > qmax ? qmax : y));
  }
}

// LEAKY_RELU, XNNPACK (measured): 8-bit fixed-point multipliers m = rint(256 s_in/s_out) for d >= 0 and
// rint(256 alpha s_in/s_out) otherwise; y = zp_out + ((d m + 128) >> 8) (arithmetic shift: one rounding,
// ties toward +inf), clamped. Exact in int64.
template <typename T>
void LeakyReluXnnpack(const T* x, int64_t n, int32_t zp_in, int32_t zp_out, int32_t m_positive,
                      int32_t m_negative, int32_t qmin, int32_t qmax, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t d = static_cast<int64_t>(x[i]) - zp_in;
    const int64_t y = zp_out + ((d * (d >= 0 ? m_positive : m_negative) + 128) >> 8);
    out[i] = static_cast<T>(y < qmin ? qmin : (y > qmax ? qmax : y));
  }
}

}  // namespace hwsim
