// Zero-point compensation of a GEMM tile (gemm.h): the kernels sum a' * b over K; the driver then adds
//   comp[r, n] = -a_zp' * sum_k b[n, k] - b_zp[n] * sum_k a'[r, k] + K * a_zp' * b_zp[n]
// to every output, all in int32 wrap-around arithmetic (VPMULLD / VPADDD). Integer addition and
// multiplication mod 2^32 are associative and commutative, so the per-column part is folded once per call
//   col_comp[n] = wrap32(-a_zp' * sum_k b[n, k] + (K * a_zp') * b_zp[n])
// and the tile loop adds col_comp[n] + (-b_zp[n]) * row_sum[r]: bit-identical to the term-by-term form.
// The loop is written once in portable C++ and compiled again under AVX2 / AVX-512 target attributes
// (the compiler vectorises it; integer results cannot depend on that).
#pragma once

#include <cstdint>
#include <vector>

#include "hwsim/cpu_features.h"
#include "hwsim/gemm_packed_weights.h"
#include "hwsim/gemm_types.h"

namespace hwsim {

// Per-column constants of one GEMM call (n columns of b, activation zero point a_zp' after the +128 shift
// of int8 activations).
struct GemmCompensation {
    std::vector<int32_t> col_comp;  // wrap32(-a_zp' * sum_k b[n] + K * a_zp' * b_zp[n])
    std::vector<int32_t> neg_zb;    // -b_zp[n] (empty when every b_zp is 0: no row term)
    bool needed = false;            // false: every compensation term is 0

    GemmCompensation(const PackedWeights& b, int32_t a_zp_shifted) {
        const bool need_row = !b.zero_point_all_zero;
        needed = need_row || a_zp_shifted != 0;
        if (!needed) return;
        const int32_t k_azp = wrapping_mul_i32(static_cast<int32_t>(b.k), a_zp_shifted);
        col_comp.resize(static_cast<size_t>(b.n));
        for (int64_t col = 0; col < b.n; ++col)
            col_comp[col] = wrapping_add_i32(wrapping_mul_i32(-a_zp_shifted, b.row_sum[col]),
                                             wrapping_mul_i32(k_azp, b.zero_point[col]));
        if (need_row) {
            neg_zb.resize(static_cast<size_t>(b.n));
            for (int64_t col = 0; col < b.n; ++col) neg_zb[col] = -b.zero_point[col];
        }
    }
};

namespace comp_detail {

// c[r, j] += col_comp[j] (+ neg_zb[j] * row_sum[r]) for r < rows, j < cols; uint32 arithmetic = wrap.
__attribute__((always_inline)) inline void add_rows(int32_t* c, int64_t ldc, int64_t rows, int64_t cols,
                                                    const int32_t* __restrict col_comp,
                                                    const int32_t* __restrict neg_zb,
                                                    const int32_t* __restrict row_sum) {
    for (int64_t r = 0; r < rows; ++r) {
        uint32_t* __restrict cr = reinterpret_cast<uint32_t*>(c + r * ldc);
        const uint32_t* __restrict cc = reinterpret_cast<const uint32_t*>(col_comp);
        if (neg_zb == nullptr) {
            for (int64_t j = 0; j < cols; ++j) cr[j] += cc[j];
        } else {
            const uint32_t rs = static_cast<uint32_t>(row_sum[r]);
            const uint32_t* __restrict nz = reinterpret_cast<const uint32_t*>(neg_zb);
            for (int64_t j = 0; j < cols; ++j) cr[j] += cc[j] + nz[j] * rs;
        }
    }
}

inline void add_rows_portable(int32_t* c, int64_t ldc, int64_t rows, int64_t cols, const int32_t* cc,
                              const int32_t* nz, const int32_t* rs) {
    add_rows(c, ldc, rows, cols, cc, nz, rs);
}

#if defined(__x86_64__) || defined(_M_X64)
__attribute__((target("avx2"))) inline void add_rows_avx2(int32_t* c, int64_t ldc, int64_t rows, int64_t cols,
                                                          const int32_t* cc, const int32_t* nz, const int32_t* rs) {
    add_rows(c, ldc, rows, cols, cc, nz, rs);
}
__attribute__((target("avx512f"))) inline void add_rows_avx512(int32_t* c, int64_t ldc, int64_t rows, int64_t cols,
                                                               const int32_t* cc, const int32_t* nz,
                                                               const int32_t* rs) {
    add_rows(c, ldc, rows, cols, cc, nz, rs);
}
#endif

}  // namespace comp_detail

// Adds the compensation to the tile c (rows x cols, row stride ldc) whose first column is GEMM column
// col0; row_sum[r] = sum_k a'[r, k] of the tile's rows. isa: the GEMM's ISA (picks the vector width only).
inline void add_gemm_compensation(const GemmCompensation& comp, GemmIsa isa, int32_t* c, int64_t ldc, int64_t rows,
                                  int64_t col0, int64_t cols, const int32_t* row_sum) {
    if (!comp.needed) return;
    const int32_t* cc = comp.col_comp.data() + col0;
    const int32_t* nz = comp.neg_zb.empty() ? nullptr : comp.neg_zb.data() + col0;
#if defined(__x86_64__) || defined(_M_X64)
    if (isa == GemmIsa::Amx || isa == GemmIsa::Avx512Vnni) return comp_detail::add_rows_avx512(c, ldc, rows, cols, cc, nz, row_sum);
    if (isa == GemmIsa::Avx2) return comp_detail::add_rows_avx2(c, ldc, rows, cols, cc, nz, row_sum);
#endif
    comp_detail::add_rows_portable(c, ldc, rows, cols, cc, nz, row_sum);
}

}  // namespace hwsim
