// AVX2 GEMM micro-kernels (contract: gemm_scalar.h). Register blocking: 3 rows x 2 ymm (16 output
// channels) at a time, looping over the 64-column panel and the micro-panel's rows.
//   AVX2_PAIRS VPMADDUBSW (u8 x s8 adjacent pairs, int16 saturation) -> VPMADDWD with ones -> VPADDD:
//              the real non-VNNI x86 sequence. Bit-identical to microkernel_pairs_scalar.
//   EXACT      A is split per byte into a_lo = a & 0x7F and a_hi = a & 0x80, so that no VPMADDUBSW pair can
//              saturate (|pair| <= 2 * 127 * 128 = 32512 for a_lo, 2 * 128 * 128 = 32768 only as -32768 for
//              a_hi, which is representable); both halves go through VPMADDWD with ones and VPADDD.
//              a_lo * b + a_hi * b = a * b, so the sum is exact and wraps in int32 like VPDPBUSD.
#pragma once

#include <cstdint>

#include "hwsim/gemm_scalar.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

namespace hwsim {
namespace avx2_detail {

#define HWSIM_TARGET_AVX2 __attribute__((target("avx2")))

HWSIM_TARGET_AVX2 inline __m256i column_mask(int n_valid) {  // lanes j < n_valid set (n_valid clamped to [0, 8])
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n_valid < 0 ? 0 : (n_valid > 8 ? 8 : n_valid)), idx);
}

// R rows (1..3) x 16 columns.
template <int R, bool kPairs>
HWSIM_TARGET_AVX2 inline void kernel(const uint8_t* a, int64_t lda, int64_t groups, const int8_t* b, int32_t* c,
                                     int64_t ldc, int n_valid, bool accumulate) {
    __m256i acc[R][2];
    const __m256i m0 = column_mask(n_valid), m1 = column_mask(n_valid - 8);
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    const __m256i ones16 = _mm256_set1_epi16(1);
    const __m256i low7 = _mm256_set1_epi8(0x7F);
    const __m256i high1 = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int64_t g = 0; g < groups; ++g) {
        const int8_t* bg = b + g * kPanelGroupBytes;
        const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bg));
        const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bg + 32));
        const uint8_t* ag = a + g * kKGroup;
#pragma GCC unroll 3
        for (int r = 0; r < R; ++r) {
            int32_t a4;
            __builtin_memcpy(&a4, ag + r * lda, 4);
            const __m256i av = _mm256_set1_epi32(a4);
            if constexpr (kPairs) {
                acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones16));
                acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones16));
            } else {
                const __m256i lo = _mm256_and_si256(av, low7), hi = _mm256_and_si256(av, high1);
                const __m256i s0 = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, b0), ones16),
                                                    _mm256_madd_epi16(_mm256_maddubs_epi16(hi, b0), ones16));
                const __m256i s1 = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, b1), ones16),
                                                    _mm256_madd_epi16(_mm256_maddubs_epi16(hi, b1), ones16));
                acc[r][0] = _mm256_add_epi32(acc[r][0], s0);
                acc[r][1] = _mm256_add_epi32(acc[r][1], s1);
            }
        }
    }
    // The block sum is complete; add the previous K blocks' partial sums (int32 wrap, like VPADDD).
    for (int r = 0; r < R; ++r) {
        if (accumulate) {
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_maskload_epi32(c + r * ldc, m0));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_maskload_epi32(c + r * ldc + 8, m1));
        }
        _mm256_maskstore_epi32(c + r * ldc, m0, acc[r][0]);
        _mm256_maskstore_epi32(c + r * ldc + 8, m1, acc[r][1]);
    }
}

template <bool kPairs>
HWSIM_TARGET_AVX2 void microkernel(const uint8_t* a, int64_t lda, int rows, int64_t groups, const int8_t* b, int32_t* c,
                                   int64_t ldc, int n_valid, bool accumulate) {
    for (int col = 0; col < n_valid; col += 16) {
        for (int r0 = 0; r0 < rows; r0 += 3) {
            const uint8_t* ar = a + r0 * lda;
            int32_t* cr = c + r0 * ldc + col;
            const int nv = n_valid - col;
            switch (rows - r0 >= 3 ? 3 : rows - r0) {
                case 1: kernel<1, kPairs>(ar, lda, groups, b + col * kKGroup, cr, ldc, nv, accumulate); break;
                case 2: kernel<2, kPairs>(ar, lda, groups, b + col * kKGroup, cr, ldc, nv, accumulate); break;
                default: kernel<3, kPairs>(ar, lda, groups, b + col * kKGroup, cr, ldc, nv, accumulate); break;
            }
        }
    }
}

#undef HWSIM_TARGET_AVX2

}  // namespace avx2_detail

inline void microkernel_exact_avx2(const uint8_t* a, int64_t lda, int rows, int64_t groups, const int8_t* b, int32_t* c,
                                   int64_t ldc, int n_valid, bool accumulate) {
    avx2_detail::microkernel<false>(a, lda, rows, groups, b, c, ldc, n_valid, accumulate);
}

inline void microkernel_pairs_avx2(const uint8_t* a, int64_t lda, int rows, int64_t groups, const int8_t* b, int32_t* c,
                                   int64_t ldc, int n_valid, bool accumulate) {
    avx2_detail::microkernel<true>(a, lda, rows, groups, b, c, ldc, n_valid, accumulate);
}

}  // namespace hwsim
#endif  // x86-64
