// The EXACT VPDPBUSD micro-kernel of gemm_avx512vnni.h with the float-scale requantization applied to its
// accumulator registers (the register form of FloatRequantEpilogue, tile_epilogue.h): the int32 tile is
// never stored. Used by the GEMM driver for a single K block when the epilogue offers that form.
//
// Integer semantics, identical to "kernel, then add_gemm_compensation, then FloatRequantEpilogue":
//   acc[r, j] = init[j] + neg_zb[j] * row_sum[r] + sum_k a'[r, k] * b[j, k]     (int32 wrap-around)
// where the driver folds init[j] = wrap32(col_comp[j] + bias[j]); every step is an int32 wrap-around add or
// multiply, which are associative and commutative, so the order of the terms cannot change the result.
// Then per element exactly the instructions of ColumnsAvx512 (requantize_epilogue.h) after its bias add:
//   VCVTDQ2PS {rn-sae}, VMULPS {rn-sae}, VMAXPS lo, VMINPS hi, VCVTPS2DQ {rn-sae}, VPADDD zp, VPMOVDB.
#pragma once

#include <cstdint>

#include "hwsim/gemm_avx512vnni.h"
#include "hwsim/gemm_packed_weights.h"
#include "hwsim/tile_epilogue.h"

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#include <immintrin.h>
#define HWSIM_HAVE_VNNI_REQUANT_KERNEL 1

namespace hwsim {
namespace vnni_requant_detail {

#define HWSIM_TARGET_VNNI_RQ __attribute__((target("avx512f,avx512bw,avx512vnni")))

template <int R, int NZ>
HWSIM_TARGET_VNNI_RQ inline void kernel(const uint8_t* a, int64_t lda, int64_t groups, const int8_t* b,
                                        const int32_t* init, const int32_t* neg_zb, const int32_t* row_sum,
                                        const FloatRequantRegisters& q, int64_t col, int64_t row0, int n_valid) {
    constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __mmask16 kAll = 0xFFFF;
    __m512i acc[R][NZ];
#pragma GCC unroll 4
    for (int z = 0; z < NZ; ++z) {
        const __mmask16 m = avx512_detail::column_mask(n_valid, z);
        const __m512i base = _mm512_maskz_loadu_epi32(m, init + 16 * z);
        const __m512i nz = neg_zb != nullptr ? _mm512_maskz_loadu_epi32(m, neg_zb + 16 * z) : _mm512_setzero_si512();
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r)
            acc[r][z] = neg_zb != nullptr ? _mm512_add_epi32(base, _mm512_mullo_epi32(nz, _mm512_set1_epi32(row_sum[r])))
                                          : base;
    }
    avx512_detail::accumulate_groups<R, NZ, false>(a, lda, groups, b, acc);
#pragma GCC unroll 4
    for (int z = 0; z < NZ; ++z) {
        const __mmask16 m = avx512_detail::column_mask(n_valid, z);
        const int64_t c = col + 16 * z;
        const __m512 s = _mm512_maskz_loadu_ps(m, q.scale + c);
        const __m512 lo = _mm512_maskz_loadu_ps(m, q.lo + c);
        const __m512 hi = _mm512_maskz_loadu_ps(m, q.hi + c);
        const __m512i zp = _mm512_maskz_loadu_epi32(m, q.zp + c);
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) {
            __m512 v = _mm512_maskz_cvt_roundepi32_ps(kAll, acc[r][z], kRne);
            v = _mm512_maskz_mul_round_ps(kAll, v, s, kRne);
            v = _mm512_maskz_max_ps(kAll, lo, v);
            v = _mm512_maskz_min_ps(kAll, hi, v);
            const __m512i out = _mm512_add_epi32(_mm512_maskz_cvt_roundps_epi32(kAll, v, kRne), zp);
            _mm512_mask_cvtepi32_storeu_epi8(q.out + (row0 + r) * q.ldo + c, m, out);
        }
    }
}

template <int R>
HWSIM_TARGET_VNNI_RQ inline void kernel_rows(const uint8_t* a, int64_t lda, int64_t groups, const int8_t* b,
                                             const int32_t* init, const int32_t* neg_zb, const int32_t* row_sum,
                                             const FloatRequantRegisters& q, int64_t col, int64_t row0, int n_valid) {
    switch ((n_valid + 15) / 16) {
        case 1: kernel<R, 1>(a, lda, groups, b, init, neg_zb, row_sum, q, col, row0, n_valid); break;
        case 2: kernel<R, 2>(a, lda, groups, b, init, neg_zb, row_sum, q, col, row0, n_valid); break;
        case 3: kernel<R, 3>(a, lda, groups, b, init, neg_zb, row_sum, q, col, row0, n_valid); break;
        default: kernel<R, 4>(a, lda, groups, b, init, neg_zb, row_sum, q, col, row0, n_valid); break;
    }
}

#undef HWSIM_TARGET_VNNI_RQ

}  // namespace vnni_requant_detail

// rows (1..6) rows of a packed A block (row stride lda, `groups` K groups of 4) times one packed B panel
// (n_valid <= 64 columns, the owner's columns [col, col + n_valid)), requantized into q.out rows
// [row0, row0 + rows). init: n_valid column constants (compensation + bias); neg_zb: nullptr or n_valid
// values -b_zp, multiplied by row_sum[r] (rows values) per row.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline void microkernel_exact_requant_avx512vnni(
        const uint8_t* a, int64_t lda, int rows, int64_t groups, const int8_t* b, const int32_t* init,
        const int32_t* neg_zb, const int32_t* row_sum, const FloatRequantRegisters& q, int64_t col, int64_t row0,
        int n_valid) {
    using namespace vnni_requant_detail;
    switch (rows) {
        case 1: kernel_rows<1>(a, lda, groups, b, init, neg_zb, row_sum, q, col, row0, n_valid); break;
        case 2: kernel_rows<2>(a, lda, groups, b, init, neg_zb, row_sum, q, col, row0, n_valid); break;
        case 3: kernel_rows<3>(a, lda, groups, b, init, neg_zb, row_sum, q, col, row0, n_valid); break;
        case 4: kernel_rows<4>(a, lda, groups, b, init, neg_zb, row_sum, q, col, row0, n_valid); break;
        case 5: kernel_rows<5>(a, lda, groups, b, init, neg_zb, row_sum, q, col, row0, n_valid); break;
        default: kernel_rows<6>(a, lda, groups, b, init, neg_zb, row_sum, q, col, row0, n_valid); break;
    }
}

}  // namespace hwsim
#endif  // x86-64 GCC
