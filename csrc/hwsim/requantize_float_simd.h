// Explicit SIMD kernels for the common float-scale requantization (onnxruntime MLAS QGEMM/QConv output
// stage, XNNPACK fp32): float32, round half to even, clamp in float, + zero point. Row-major strided
// tiles of [rows, cols]; the channel axis is the column axis, so per-channel constants are loaded per
// column block. Every kernel computes, per element, exactly what RequantizeFloatSmallRows<HALF_TO_EVEN>
// in requantize.h computes (the scalar reference and the tail of every vector loop):
//   raw = acc [+ bias_i, int32 wrap-around (VPADDD)]
//   v   = float(raw)            one rounding to nearest even (VCVTDQ2PS)
//   [v  = v + bias_add]         one rounding (VADDPS)
//   v   = v * s  (or v / s)     one rounding (VMULPS / VDIVPS; never fused with the add)
//   v   = min(hi, max(lo, v))   lo = qmin - zp, hi = qmax - zp as floats (|lo|, |hi| < 2^22: exact);
//                               operand order as std::max(v, lo) / std::min(v, hi), so a NaN stays NaN
//   q   = round_half_even(v)    VCVTPS2DQ with embedded {rn-sae} (AVX-512) or VROUNDPS(nearest) +
//                               VCVTTPS2DQ (AVX2): the result never depends on MXCSR; NaN -> INT32_MIN
//   out = Out(q + zp)           int32 wrap-around add, then truncation to Out's width (VPMOVDB/VPMOVDW
//                               or a byte shuffle, never a saturating pack)
// Clamping before rounding gives the same integer as clamping after it (rounding is monotone and keeps
// integers), which is why every clamp order of the scalar code can use these kernels.
#pragma once

#include <cstdint>
#include <type_traits>

#include "hwsim/cpu_features.h"
#include "hwsim/rounding.h"

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#include <immintrin.h>
#define HWSIM_HAVE_X86_REQUANT_SIMD 1
#endif

namespace hwsim {

// Which requantization kernel runs. Resolve once per call (detect_cpu_features asks CPUID).
enum class RequantIsa : int { Scalar = 0, Avx2 = 1, Avx512 = 2 };

inline bool requant_isa_supported(RequantIsa isa, const CpuFeatures& f) {
#if defined(HWSIM_HAVE_X86_REQUANT_SIMD)
    if (isa == RequantIsa::Avx512) return f.avx512f;
    if (isa == RequantIsa::Avx2) return f.avx2;
#else
    (void)f;
    if (isa != RequantIsa::Scalar) return false;
#endif
    return true;
}

inline RequantIsa best_requant_isa(const CpuFeatures& f) {
#if defined(HWSIM_HAVE_X86_REQUANT_SIMD)
    if (f.avx512f) return RequantIsa::Avx512;
    if (f.avx2) return RequantIsa::Avx2;
#else
    (void)f;
#endif
    return RequantIsa::Scalar;
}

// best_requant_isa for this CPU without CPUID or system calls (libgcc's cached feature bits): cheap
// enough to ask on every call of an element-wise kernel.
inline RequantIsa host_requant_isa() {
#if defined(HWSIM_HAVE_X86_REQUANT_SIMD)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return RequantIsa::Avx512;
    if (__builtin_cpu_supports("avx2")) return RequantIsa::Avx2;
#endif
    return RequantIsa::Scalar;
}

// Per-channel constants of one float32 requantization, indexed by column of the tile (callers offset
// the pointers to the tile's first column). bias_i is read when kBias == 1, bias_add when kBias == 2.
struct FloatRequantColumns {
    const float* scale = nullptr;
    const float* lo = nullptr;
    const float* hi = nullptr;
    const int32_t* zp = nullptr;
    const int32_t* bias_i = nullptr;
    const float* bias_add = nullptr;
};

// One element of the kernels above, in portable C++ (the vector loops' tails; bit-identical to
// RequantizeFloatSmallRows<HALF_TO_EVEN, kDivides, kBias, float, Out>).
template <bool kDivides, int kBias, typename Out>
inline Out RequantizeFloatRneElement(int32_t acc, const FloatRequantColumns& k, int64_t c) {
    int32_t raw = acc;
    if (kBias == 1) raw = static_cast<int32_t>(static_cast<uint32_t>(raw) + static_cast<uint32_t>(k.bias_i[c]));
    float v = static_cast<float>(raw);
    if (kBias == 2) v = v + k.bias_add[c];
    v = kDivides ? v / k.scale[c] : v * k.scale[c];
    v = std::min(std::max(v, k.lo[c]), k.hi[c]);
    const int32_t q = RoundSmallToInt32<RoundingMode::HALF_TO_EVEN, float>(v);
    return static_cast<Out>(static_cast<int32_t>(static_cast<uint32_t>(q) + static_cast<uint32_t>(k.zp[c])));
}

#if defined(HWSIM_HAVE_X86_REQUANT_SIMD)
namespace requant_simd_detail {

// 16 lanes per step; the last partial block of a row uses masked loads and masked truncating stores.
template <bool kDivides, int kBias, typename Out>
__attribute__((target("avx512f"))) void RowsAvx512(const int32_t* acc, int64_t lda, int64_t rows, int64_t cols,
                                                   const FloatRequantColumns& k, Out* out, int64_t ldo) {
    constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    // All-lanes zero-masked forms: the same instructions, without GCC 12's "_mm512_undefined" warnings.
    const __mmask16 kAll = 0xFFFF;
    for (int64_t r = 0; r < rows; ++r) {
        const int32_t* a = acc + r * lda;
        Out* y = out + r * ldo;
        for (int64_t c = 0; c < cols; c += 16) {
            const int64_t left = cols - c;
            const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
            __m512i raw = _mm512_maskz_loadu_epi32(m, a + c);
            if (kBias == 1) raw = _mm512_add_epi32(raw, _mm512_maskz_loadu_epi32(m, k.bias_i + c));
            __m512 v = _mm512_maskz_cvt_roundepi32_ps(kAll, raw, kRne);
            if (kBias == 2) v = _mm512_maskz_add_round_ps(kAll, v, _mm512_maskz_loadu_ps(m, k.bias_add + c), kRne);
            const __m512 s = _mm512_maskz_loadu_ps(m, k.scale + c);
            v = kDivides ? _mm512_maskz_div_round_ps(kAll, v, s, kRne) : _mm512_maskz_mul_round_ps(kAll, v, s, kRne);
            v = _mm512_maskz_max_ps(kAll, _mm512_maskz_loadu_ps(m, k.lo + c), v);
            v = _mm512_maskz_min_ps(kAll, _mm512_maskz_loadu_ps(m, k.hi + c), v);
            __m512i q = _mm512_maskz_cvt_roundps_epi32(kAll, v, kRne);
            q = _mm512_add_epi32(q, _mm512_maskz_loadu_epi32(m, k.zp + c));
            if constexpr (sizeof(Out) == 1) {
                _mm512_mask_cvtepi32_storeu_epi8(y + c, m, q);
            } else if constexpr (sizeof(Out) == 2) {
                _mm512_mask_cvtepi32_storeu_epi16(y + c, m, q);
            } else {
                _mm512_mask_storeu_epi32(y + c, m, q);
            }
        }
    }
}

// 8 lanes per step; the rest of a row (< 8 columns) element by element.
template <bool kDivides, int kBias, typename Out>
__attribute__((target("avx2"))) void RowsAvx2(const int32_t* acc, int64_t lda, int64_t rows, int64_t cols,
                                              const FloatRequantColumns& k, Out* out, int64_t ldo) {
    // Byte 0 (or bytes 0-1) of every int32 lane to the low 4 (8) bytes of each 128-bit half: truncation.
    const __m256i pick8 = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                           0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i pick16 = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                            0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i join8 = _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0);
    const __m256i join16 = _mm256_setr_epi32(0, 1, 4, 5, 0, 0, 0, 0);
    const int64_t vec_cols = cols / 8 * 8;
    for (int64_t r = 0; r < rows; ++r) {
        const int32_t* a = acc + r * lda;
        Out* y = out + r * ldo;
        for (int64_t c = 0; c < vec_cols; c += 8) {
            __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + c));
            if (kBias == 1)
                raw = _mm256_add_epi32(raw, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k.bias_i + c)));
            __m256 v = _mm256_cvtepi32_ps(raw);  // exact below 2^24; above, MXCSR's default nearest-even
            if (kBias == 2) v = _mm256_add_ps(v, _mm256_loadu_ps(k.bias_add + c));
            const __m256 s = _mm256_loadu_ps(k.scale + c);
            v = kDivides ? _mm256_div_ps(v, s) : _mm256_mul_ps(v, s);
            v = _mm256_max_ps(_mm256_loadu_ps(k.lo + c), v);
            v = _mm256_min_ps(_mm256_loadu_ps(k.hi + c), v);
            v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            __m256i q = _mm256_cvttps_epi32(v);
            q = _mm256_add_epi32(q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k.zp + c)));
            if constexpr (sizeof(Out) == 1) {
                const __m256i b = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(q, pick8), join8);
                _mm_storel_epi64(reinterpret_cast<__m128i*>(y + c), _mm256_castsi256_si128(b));
            } else if constexpr (sizeof(Out) == 2) {
                const __m256i b = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(q, pick16), join16);
                _mm_storeu_si128(reinterpret_cast<__m128i*>(y + c), _mm256_castsi256_si128(b));
            } else {
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + c), q);
            }
        }
        for (int64_t c = vec_cols; c < cols; ++c) y[c] = RequantizeFloatRneElement<kDivides, kBias, Out>(a[c], k, c);
    }
}

}  // namespace requant_simd_detail
#endif

// Runs the kernel of `isa` on a [rows, cols] tile (acc row stride lda, out row stride ldo). Scalar (and
// every ISA on non-x86 machines) runs the portable element loop.
template <bool kDivides, int kBias, typename Out>
void RequantizeFloatRneRows(RequantIsa isa, const int32_t* acc, int64_t lda, int64_t rows, int64_t cols,
                            const FloatRequantColumns& k, Out* out, int64_t ldo) {
#if defined(HWSIM_HAVE_X86_REQUANT_SIMD)
    if (isa == RequantIsa::Avx512) return requant_simd_detail::RowsAvx512<kDivides, kBias, Out>(acc, lda, rows, cols, k, out, ldo);
    if (isa == RequantIsa::Avx2) return requant_simd_detail::RowsAvx2<kDivides, kBias, Out>(acc, lda, rows, cols, k, out, ldo);
#else
    (void)isa;
#endif
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
            out[r * ldo + c] = RequantizeFloatRneElement<kDivides, kBias, Out>(acc[r * lda + c], k, c);
}

}  // namespace hwsim
