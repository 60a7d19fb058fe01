// Portable scalar GEMM micro-kernels over the packed layouts of gemm_packed_weights.h. They define, in
// plain C++, what the SIMD kernels must reproduce bit for bit; on non-x86 machines they are the fast path.
//
// Micro-kernel contract (shared by gemm_avx2.h and gemm_avx512vnni.h):
//   a      A block rows, row-major with row stride lda bytes: `rows` rows (1..kMicroRows), `groups` K-groups
//          of 4 bytes a' each (a' = a, or a + 128 for int8 A; zero padded to whole groups)
//   b      packed B panel, already advanced to the first K-group of this K block (group stride 256 bytes)
//   c      output rows, row stride ldc int32; only columns [0, n_valid) are read or written
//   accumulate  false: c = block sum; true: c += block sum (int32 wrap-around, like VPADDD)
#pragma once

#include <cstdint>

#include "hwsim/gemm_packed_weights.h"
#include "hwsim/gemm_types.h"

namespace hwsim {

using GemmMicroKernel = void (*)(const uint8_t* a, int64_t lda, int rows, int64_t groups, const int8_t* b, int32_t* c,
                                 int64_t ldc, int n_valid, bool accumulate);

// EXACT: c[r, j] (+)= sum_k a'[r, k] * b[j, k] in int32 wrap-around arithmetic (each 4-product group is
// exact: |sum| <= 4 * 255 * 128 < 2^31). Mirrors VPDPBUSD (which also wraps its int32 accumulate).
inline void microkernel_exact_scalar(const uint8_t* a, int64_t lda, int rows, int64_t groups, const int8_t* b,
                                     int32_t* c, int64_t ldc, int n_valid, bool accumulate) {
    for (int r = 0; r < rows; ++r) {
        uint32_t acc[kPanelCols] = {};
        for (int64_t g = 0; g < groups; ++g) {
            const uint8_t* ar = a + r * lda + g * kKGroup;
            const int8_t* bg = b + g * kPanelGroupBytes;
            const int32_t a0 = ar[0], a1 = ar[1], a2 = ar[2], a3 = ar[3];
            for (int j = 0; j < kPanelCols; ++j) {
                const int8_t* bj = bg + j * kKGroup;
                acc[j] += static_cast<uint32_t>(a0 * bj[0] + a1 * bj[1] + a2 * bj[2] + a3 * bj[3]);
            }
        }
        int32_t* cr = c + r * ldc;
        for (int j = 0; j < n_valid; ++j)
            cr[j] = accumulate ? wrapping_add_i32(cr[j], static_cast<int32_t>(acc[j])) : static_cast<int32_t>(acc[j]);
    }
}

// AVX2_PAIRS: c[r, j] (+)= sum_i sat16(a'[2i] * b[2i] + a'[2i+1] * b[2i+1]), the int16 saturation of
// VPMADDUBSW on each adjacent pair, then exact int32 sums (VPMADDWD with ones, VPADDD) wrapping in int32.
inline void microkernel_pairs_scalar(const uint8_t* a, int64_t lda, int rows, int64_t groups, const int8_t* b,
                                     int32_t* c, int64_t ldc, int n_valid, bool accumulate) {
    for (int r = 0; r < rows; ++r) {
        uint32_t acc[kPanelCols] = {};
        for (int64_t g = 0; g < groups; ++g) {
            const uint8_t* ar = a + r * lda + g * kKGroup;
            const int8_t* bg = b + g * kPanelGroupBytes;
            const int32_t a0 = ar[0], a1 = ar[1], a2 = ar[2], a3 = ar[3];
            for (int j = 0; j < kPanelCols; ++j) {
                const int8_t* bj = bg + j * kKGroup;
                const int32_t lo = saturate_to_int16(a0 * bj[0] + a1 * bj[1]);
                const int32_t hi = saturate_to_int16(a2 * bj[2] + a3 * bj[3]);
                acc[j] += static_cast<uint32_t>(lo + hi);
            }
        }
        int32_t* cr = c + r * ldc;
        for (int j = 0; j < n_valid; ++j)
            cr[j] = accumulate ? wrapping_add_i32(cr[j], static_cast<int32_t>(acc[j])) : static_cast<int32_t>(acc[j]);
    }
}

}  // namespace hwsim
