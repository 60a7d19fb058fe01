// Element-wise integer ops: TFLite int8 ADD and MUL (reference kernels), float-scale add/mul
// (onnxruntime QLinearAdd/QLinearMul scalar form), Xilinx DPU eltwise add. Inputs have equal length
// (broadcasting is done by the caller).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "hwsim/fixedpoint.h"
#include "hwsim/int_range.h"
#include "hwsim/rounding.h"

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace hwsim {

// MBQM by variant for an int32 input (the double-rounding form with shift <= 0 is TFLite's
// MultiplyByQuantizedMultiplierSmallerThanOneExp; single-rounding builds route it to the single form).
inline int32_t MultiplyByQuantizedMultiplierVariant(int32_t x, int32_t m, int shift, MultiplierVariant v) {
  switch (v) {
    case MultiplierVariant::SINGLE_ROUNDING: return MultiplyByQuantizedMultiplierSingleRounding(x, m, shift);
    case MultiplierVariant::INT64_16BIT: return MultiplyByQuantizedMultiplierInt64(x, m, shift);
    default: return MultiplyByQuantizedMultiplierDoubleRounding(x, m, shift);
  }
}

struct TfliteAddParams {
  int32_t input1_offset, input2_offset;  // -zero_point of each input
  int left_shift;                        // 20 for int8, 15 for int16
  int32_t input1_multiplier, input2_multiplier, output_multiplier;
  int input1_shift, input2_shift, output_shift;
  int32_t output_offset;  // +zero_point of the output
  int32_t act_min, act_max;
  MultiplierVariant variant;
};

// TFLite ADD (reference/add.h AddElementwise; numerics.md A.5), three MBQM with their own roundings:
//   v_i = (q_i + offset_i) * 2^left_shift; w_i = MBQM(v_i, M_i, e_i); out = MBQM(w_1 + w_2, M_o, e_o) + zp_o; clamp.
// All sums are int32 and wrap like the compiled kernel.
template <typename T>
void AddTflite(const T* a, const T* b, int64_t n, const TfliteAddParams& p, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    const int32_t v1 = WrapToInt32((static_cast<int64_t>(a[i]) + p.input1_offset) * (int64_t{1} << p.left_shift));
    const int32_t v2 = WrapToInt32((static_cast<int64_t>(b[i]) + p.input2_offset) * (int64_t{1} << p.left_shift));
    const int32_t w1 = MultiplyByQuantizedMultiplierVariant(v1, p.input1_multiplier, p.input1_shift, p.variant);
    const int32_t w2 = MultiplyByQuantizedMultiplierVariant(v2, p.input2_multiplier, p.input2_shift, p.variant);
    const int32_t sum = WrapToInt32(static_cast<int64_t>(w1) + w2);
    const int32_t raw = WrapToInt32(
        static_cast<int64_t>(MultiplyByQuantizedMultiplierVariant(sum, p.output_multiplier, p.output_shift, p.variant)) +
        p.output_offset);
    out[i] = static_cast<T>(std::min(std::max(raw, p.act_min), p.act_max));
  }
}

struct TfliteMulParams {
  int32_t input1_offset, input2_offset, output_offset;
  int32_t output_multiplier;
  int output_shift;
  int32_t act_min, act_max;
  MultiplierVariant variant;
};

// TFLite MUL (reference/integer_ops/mul.h MulElementwise):
//   out = zp_o + MBQM((q1 + off1) * (q2 + off2), M, e); clamp. The product is int32.
template <typename T>
void MulTflite(const T* a, const T* b, int64_t n, const TfliteMulParams& p, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    const int32_t prod = WrapToInt32((static_cast<int64_t>(a[i]) + p.input1_offset) * (static_cast<int64_t>(b[i]) + p.input2_offset));
    const int32_t raw = WrapToInt32(
        static_cast<int64_t>(MultiplyByQuantizedMultiplierVariant(prod, p.output_multiplier, p.output_shift, p.variant)) +
        p.output_offset);
    out[i] = static_cast<T>(std::min(std::max(raw, p.act_min), p.act_max));
  }
}

struct FloatScaleBinaryParams {
  float a_scale, b_scale, c_scale;
  int32_t a_zero_point, b_zero_point, c_zero_point;
  int32_t qmin, qmax;
  RoundingMode rounding;
  bool mlas_avx2_form = true;  // AddFloatScale only: the FMA form below instead of the scalar one
};

// Float-scale ADD (onnxruntime com.microsoft QLinearAdd), float32, two forms:
//  mlas_avx2_form (onnxruntime MLAS qladd_avx2.cpp, what x86 hosts run; checked against onnxruntime 1.32):
//    rA = sa / sc; rB = sb / sc; fixed = float(zpc) - fma(rA, float(zpa), rB * float(zpb));
//    t = fma(float(a), rA, fma(float(b), rB, fixed))   (each fma rounded once)
//    The source writes fixed as zpc - (rA * zpa + rB * zpb); the compiler contracts that into the fma
//    above (measured: with two roundings 28 of 802,816 outputs differ for some scales;
//    docs/engine-findings.md).
//  scalar form (MLAS qladd.cpp MlasQLinearAddKernelRawHelper):
//    t = (sa * float(a - zpa) + sb * float(b - zpb)) / sc;  t += 0 (zpc is added after rounding)
//  then out = clamp(round(t) [+ zpc in the scalar form], qmin, qmax); rounding RNE by default; a NaN t
//  counts as 0. The mlas_avx2_form with RNE on int8/uint8 runs 8 lanes at a time on AVX2+FMA
//  (AddFloatScaleMlasAvx2 below), bit-identical to the element loop.
struct AddFloatScaleConstants {
  float ra, rb, fixed;
};

inline AddFloatScaleConstants AddFloatScaleMlasConstants(const FloatScaleBinaryParams& p) {
  const float ra = p.a_scale / p.c_scale, rb = p.b_scale / p.c_scale;
  const float fixed = static_cast<float>(p.c_zero_point) -
                      std::fma(ra, static_cast<float>(p.a_zero_point), rb * static_cast<float>(p.b_zero_point));
  return {ra, rb, fixed};
}

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
// Elements [0, n / 8 * 8) of the mlas_avx2_form with RNE, T = int8_t or uint8_t; returns how many it did.
//   VPMOVZXBD/VPMOVSXBD + VCVTDQ2PS (exact), VFMADD231PS twice (one rounding each = std::fma),
//   NaN -> 0 (VCMPORDPS + VANDPS), VMAXPS/VMINPS with float(qmin), float(qmax) (clamping an integer range
//   before rounding gives the same integer as after), VROUNDPS(nearest even) + VCVTTPS2DQ (no MXCSR
//   dependence), then the low byte of each lane (the value is already in [qmin, qmax]).
template <typename T>
__attribute__((target("avx2,fma"))) int64_t AddFloatScaleMlasAvx2(const T* a, const T* b, int64_t n,
                                                                 const AddFloatScaleConstants& k, int32_t qmin,
                                                                 int32_t qmax, T* out) {
  static_assert(sizeof(T) == 1, "int8 / uint8 only");
  const __m256 ra = _mm256_set1_ps(k.ra), rb = _mm256_set1_ps(k.rb), fixed = _mm256_set1_ps(k.fixed);
  const __m256 lo = _mm256_set1_ps(static_cast<float>(qmin)), hi = _mm256_set1_ps(static_cast<float>(qmax));
  const __m256i pick8 = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                         0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i join8 = _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0);
  const int64_t vec = n / 8 * 8;
  for (int64_t i = 0; i < vec; i += 8) {
    const __m128i a8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(a + i));
    const __m128i b8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + i));
    __m256i ai, bi;
    if constexpr (std::is_signed<T>::value) {
      ai = _mm256_cvtepi8_epi32(a8);
      bi = _mm256_cvtepi8_epi32(b8);
    } else {
      ai = _mm256_cvtepu8_epi32(a8);
      bi = _mm256_cvtepu8_epi32(b8);
    }
    __m256 t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ai), ra, _mm256_fmadd_ps(_mm256_cvtepi32_ps(bi), rb, fixed));
    t = _mm256_and_ps(t, _mm256_cmp_ps(t, t, _CMP_ORD_Q));
    t = _mm256_min_ps(hi, _mm256_max_ps(lo, t));
    const __m256i q = _mm256_cvttps_epi32(_mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(q, pick8), join8);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), _mm256_castsi256_si128(bytes));
  }
  return vec;
}
#endif

// Whether AddFloatScale may take the AVX2+FMA path here (libgcc's cached CPU bits: no CPUID per call).
inline bool AddFloatScaleHostHasAvx2Fma() {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

// allow_simd = false forces the element loop (tests compare both paths).
template <typename T>
void AddFloatScale(const T* a, const T* b, int64_t n, const FloatScaleBinaryParams& p, T* out,
                   bool allow_simd = true) {
  const AddFloatScaleConstants k = AddFloatScaleMlasConstants(p);
  int64_t start = 0;
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
  if constexpr (sizeof(T) == 1) {
    if (allow_simd && p.mlas_avx2_form && p.rounding == RoundingMode::HALF_TO_EVEN && AddFloatScaleHostHasAvx2Fma())
      start = AddFloatScaleMlasAvx2<T>(a, b, n, k, p.qmin, p.qmax, out);
  }
#else
  (void)allow_simd;
#endif
  for (int64_t i = start; i < n; ++i) {
    if (p.mlas_avx2_form) {
      const float t = std::fma(static_cast<float>(a[i]), k.ra, std::fma(static_cast<float>(b[i]), k.rb, k.fixed));
      const double r = RoundFloat(static_cast<double>(t), p.rounding, 0, static_cast<uint64_t>(i));
      const int64_t q = SaturateDoubleToInt(r, INT32_MIN, INT32_MAX);
      out[i] = static_cast<T>(std::min<int64_t>(std::max<int64_t>(q, p.qmin), p.qmax));
      continue;
    }
    const float va = p.a_scale * static_cast<float>(static_cast<int32_t>(a[i]) - p.a_zero_point);
    const float vb = p.b_scale * static_cast<float>(static_cast<int32_t>(b[i]) - p.b_zero_point);
    const float t = (va + vb) / p.c_scale;
    const double r = RoundFloat(static_cast<double>(t), p.rounding, 0, static_cast<uint64_t>(i));
    const int64_t q = SaturateDoubleToInt(r, INT32_MIN, INT32_MAX) + p.c_zero_point;
    out[i] = static_cast<T>(std::min<int64_t>(std::max<int64_t>(q, p.qmin), p.qmax));
  }
}

// Float-scale MUL (QLinearMul-style), float32:
//   va = sa * float(a - zpa); vb = sb * float(b - zpb); out = round((va * vb) / sc) + zpc; clamp.
template <typename T>
void MulFloatScale(const T* a, const T* b, int64_t n, const FloatScaleBinaryParams& p, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float va = p.a_scale * static_cast<float>(static_cast<int32_t>(a[i]) - p.a_zero_point);
    const float vb = p.b_scale * static_cast<float>(static_cast<int32_t>(b[i]) - p.b_zero_point);
    const float t = (va * vb) / p.c_scale;
    const double r = RoundFloat(static_cast<double>(t), p.rounding, 0, static_cast<uint64_t>(i));
    const int64_t q = SaturateDoubleToInt(r, INT32_MIN, INT32_MAX) + p.c_zero_point;
    out[i] = static_cast<T>(std::min<int64_t>(std::max<int64_t>(q, p.qmin), p.qmax));
  }
}

// Xilinx DPU eltwise ADD (vai_library eltwise-fix; numerics.md C.8): real value of q_i is q_i * 2^-p_i.
//   y = sat(round(sum_i q_i * 2^(p_out - p_i)))   exactly, one rounding (default HALF_UP = DPU_ROUND).
// Computed as (sum_i q_i * 2^(p_max - p_i)) / 2^(p_max - p_out) in 128-bit integers. Fix positions in [-32, 32].
template <typename T>
void EltwiseAddDpu(const T* a, const T* b, int64_t n, int pa, int pb, int pout, int64_t qmin, int64_t qmax,
                   RoundingMode mode, T* out) {
  const int pmax = std::max(pa, pb);
  const int cut = pmax - pout;
  for (int64_t i = 0; i < n; ++i) {
    const int128_t num = static_cast<int128_t>(a[i]) * (int128_t{1} << (pmax - pa)) +
                         static_cast<int128_t>(b[i]) * (int128_t{1} << (pmax - pb));
    const int128_t big = int128_t{1} << 64;  // saturation sentinel far outside any output range
    const int128_t v = cut >= 0 ? RoundingRightShift<int128_t>(num, cut, mode, 0, static_cast<uint64_t>(i))
                                : (num > big ? big : (num < -big ? -big : num * (int128_t{1} << -cut)));
    out[i] = static_cast<T>(v < qmin ? qmin : (v > qmax ? qmax : static_cast<int64_t>(v)));
  }
}

}  // namespace hwsim
