// AVX-512 GEMM micro-kernels (contract: gemm_scalar.h). Register blocking: up to 6 rows x 4 zmm columns
// (64 output channels) of int32 accumulators = 24 zmm; per K-group one 64-byte load of B per zmm column
// and one 4-byte broadcast of A per row.
//   EXACT      VPDPBUSD: acc[j] += sum_{q<4} zext(a[q]) * sext(b[j][q]), no intermediate saturation, the
//              int32 accumulate wraps. Bit-identical to microkernel_exact_scalar.
//   AVX2_PAIRS 512-bit VPMADDUBSW (int16-saturated pairs) -> VPDPWSSD with ones (= VPMADDWD with ones
//              + VPADDD: the int16 pair sums added exactly, int32 accumulate wraps); the same arithmetic as
//              the 256-bit non-VNNI path, on 16 lanes. Bit-identical to microkernel_pairs_scalar.
#pragma once

#include <cstdint>

#include "hwsim/gemm_scalar.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

namespace hwsim {
namespace avx512_detail {

#define HWSIM_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vnni")))

HWSIM_TARGET_AVX512 inline __mmask16 column_mask(int n_valid, int z) {
    const int cnt = n_valid - 16 * z;
    if (cnt >= 16) return static_cast<__mmask16>(0xFFFF);
    if (cnt <= 0) return static_cast<__mmask16>(0);
    return static_cast<__mmask16>((1u << cnt) - 1u);
}

// R rows (1..6) x NZ zmm columns (1..4). kPairs selects the AVX2_PAIRS instruction sequence.
// acc[r][z] += the products of `groups` K groups of A rows r (row stride lda) with panel columns
// 16z..16z+15 of b (VPDPBUSD, or the AVX2 pair saturation of kPairs). Shared by every VNNI micro-kernel.
template <int R, int NZ, bool kPairs>
HWSIM_TARGET_AVX512 inline void accumulate_groups(const uint8_t* a, int64_t lda, int64_t groups, const int8_t* b,
                                                  __m512i (&acc)[R][NZ]) {
    const __m512i ones16 = _mm512_set1_epi16(1);
    for (int64_t g = 0; g < groups; ++g) {
        const int8_t* bg = b + g * kPanelGroupBytes;
        const uint8_t* ag = a + g * kKGroup;
        __m512i bv[NZ];
#pragma GCC unroll 4
        for (int z = 0; z < NZ; ++z) bv[z] = _mm512_loadu_si512(reinterpret_cast<const void*>(bg + 64 * z));
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) {
            int32_t a4;
            __builtin_memcpy(&a4, ag + r * lda, 4);
            const __m512i av = _mm512_set1_epi32(a4);
#pragma GCC unroll 4
            for (int z = 0; z < NZ; ++z) {
                if constexpr (kPairs) {
                    // VPDPWSSD with ones = VPMADDWD(ones) + VPADDD fused: exact pair-of-int16 sums, int32 wrap.
                    const __m512i p16 = _mm512_maddubs_epi16(av, bv[z]);  // sat16 per pair
                    acc[r][z] = _mm512_dpwssd_epi32(acc[r][z], p16, ones16);
                } else {
                    acc[r][z] = _mm512_dpbusd_epi32(acc[r][z], av, bv[z]);
                }
            }
        }
    }
}

template <int R, int NZ, bool kPairs>
HWSIM_TARGET_AVX512 inline void kernel(const uint8_t* a, int64_t lda, int64_t groups, const int8_t* b, int32_t* c,
                                       int64_t ldc,
                                       int n_valid, bool accumulate) {
    __m512i acc[R][NZ];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int z = 0; z < NZ; ++z) acc[r][z] = _mm512_setzero_si512();
    accumulate_groups<R, NZ, kPairs>(a, lda, groups, b, acc);
    // The block sum is complete; add the previous K blocks' partial sums (int32 wrap, like VPADDD).
#pragma GCC unroll 4
    for (int z = 0; z < NZ; ++z) {
        const __mmask16 mask = column_mask(n_valid, z);
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) {
            __m512i v = acc[r][z];
            if (accumulate) v = _mm512_add_epi32(v, _mm512_maskz_loadu_epi32(mask, c + r * ldc + 16 * z));
            _mm512_mask_storeu_epi32(c + r * ldc + 16 * z, mask, v);
        }
    }
}

template <int R, bool kPairs>
HWSIM_TARGET_AVX512 inline void kernel_rows(const uint8_t* a, int64_t lda, int64_t groups, const int8_t* b, int32_t* c,
                                            int64_t ldc, int n_valid, bool accumulate) {
    const int nz = (n_valid + 15) / 16;
    switch (nz) {
        case 1: kernel<R, 1, kPairs>(a, lda, groups, b, c, ldc, n_valid, accumulate); break;
        case 2: kernel<R, 2, kPairs>(a, lda, groups, b, c, ldc, n_valid, accumulate); break;
        case 3: kernel<R, 3, kPairs>(a, lda, groups, b, c, ldc, n_valid, accumulate); break;
        default: kernel<R, 4, kPairs>(a, lda, groups, b, c, ldc, n_valid, accumulate); break;
    }
}

template <bool kPairs>
HWSIM_TARGET_AVX512 void microkernel(const uint8_t* a, int64_t lda, int rows, int64_t groups, const int8_t* b,
                                     int32_t* c, int64_t ldc, int n_valid, bool accumulate) {
    switch (rows) {
        case 1: kernel_rows<1, kPairs>(a, lda, groups, b, c, ldc, n_valid, accumulate); break;
        case 2: kernel_rows<2, kPairs>(a, lda, groups, b, c, ldc, n_valid, accumulate); break;
        case 3: kernel_rows<3, kPairs>(a, lda, groups, b, c, ldc, n_valid, accumulate); break;
        case 4: kernel_rows<4, kPairs>(a, lda, groups, b, c, ldc, n_valid, accumulate); break;
        case 5: kernel_rows<5, kPairs>(a, lda, groups, b, c, ldc, n_valid, accumulate); break;
        default: kernel_rows<6, kPairs>(a, lda, groups, b, c, ldc, n_valid, accumulate); break;
    }
}

#undef HWSIM_TARGET_AVX512

}  // namespace avx512_detail

// EXACT with VPDPBUSD.
inline void microkernel_exact_avx512vnni(const uint8_t* a, int64_t lda, int rows, int64_t groups, const int8_t* b,
                                         int32_t* c, int64_t ldc, int n_valid, bool accumulate) {
    avx512_detail::microkernel<false>(a, lda, rows, groups, b, c, ldc, n_valid, accumulate);
}

// AVX2_PAIRS with 512-bit VPMADDUBSW + VPMADDWD + VPADDD.
inline void microkernel_pairs_avx512(const uint8_t* a, int64_t lda, int rows, int64_t groups, const int8_t* b,
                                     int32_t* c, int64_t ldc, int n_valid, bool accumulate) {
    avx512_detail::microkernel<true>(a, lda, rows, groups, b, c, ldc, n_valid, accumulate);
}

}  // namespace hwsim
#endif  // x86-64
