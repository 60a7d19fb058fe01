// Group-wise (sub-block) integer GEMM: weights with one scale per (output row n, K-group g).
//
//   a: [M, K] uint8 or int8 activations with zero point zp_a;  b: [N, K] int8 weights (symmetric, zp 0);
//   groups of `group_size` consecutive K elements; the last group may be ragged (K % G != 0 is allowed:
//   group g covers k in [g*G, min(K, (g+1)*G))), so there are ceil(K / G) groups.
//
//   p_g[m, n] = sum_{k in g} (a[m,k] - zp_a) * b[n,k], exact in int32 (the caller bounds G so that
//   G * 255 * 128 < 2^31, i.e. G <= 65793 — there is no overflow to model).
//
// Two ways a sub-block accelerator applies the group scales, named after what happens to the bits:
//   GROUP_FLOAT         y[m,n] = sum_g float32(p_g) * s[n,g], in float32, ascending g, starting from +0.0f,
//                       every multiply and add rounded separately to nearest-even (no FMA: the build uses
//                       -ffp-contract=off). The int32 -> float32 conversion is RNE (CVTDQ2PS).
//   GROUP_FIXED_POINT   m[n,g] = integer multiplier with F fraction bits relative to a per-row reference scale
//                       r[n] (s[n,g] ~= r[n] * m[n,g] / 2^F, see GroupScalesToFixedPoint).
//                       acc = 0; for g ascending: acc = sat_A(acc + RoundingRightShift(p_g * m[n,g], F, rounding))
//                       (rounding.h; any RoundingMode except STOCHASTIC, which the binding rejects)
//                       with p_g * m exact in int64 and sat_A the clamp to a signed A-bit accumulator
//                       (A = acc_bits in [2, 64]); outputs with at least one clamped add are counted (the
//                       convention of gemm.h's overflow count). The caller requantizes acc
//                       with the reference scale (real value = s_a * r[n] * acc).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "hwsim/depthwise_conv2d.h"  // DepthwiseIsa, ResolveDepthwiseIsa, ParallelChunks
#include "hwsim/rounding.h"          // RoundingMode, RoundingRightShift

namespace hwsim {

// Converts float scales s [N, groups] (finite, >= 0) to a reference scale per row r[n] = max_g s[n,g]
// (1.0 if the whole row is 0) and multipliers m[n,g] = RNE(double(s)/double(r) * 2^F) in [0, 2^F].
// Error bound: |r*m/2^F - s| <= r * 2^-(F+1) (plus the ~2^-53 relative error of the double division),
// so each group's partial sum is scaled with an absolute error of at most |p_g| * 2^-(F+1) in units of r,
// and the rounding of each shift adds at most 1/2 (round-to-nearest modes) or 1 (floor/trunc) LSB per group.
inline void GroupScalesToFixedPoint(const float* scales, int64_t n_rows, int64_t groups, int frac_bits,
                                    float* reference, int32_t* multipliers) {
    if (frac_bits < 0 || frac_bits > 30) throw std::invalid_argument("frac_bits must be in [0, 30]");
    const double one = std::ldexp(1.0, frac_bits);
    for (int64_t n = 0; n < n_rows; ++n) {
        const float* s = scales + n * groups;
        float r = 0.0f;
        for (int64_t g = 0; g < groups; ++g) {
            if (!(s[g] >= 0.0f) || !std::isfinite(s[g])) throw std::invalid_argument("scales must be finite and >= 0");
            r = std::max(r, s[g]);
        }
        if (r == 0.0f) r = 1.0f;
        reference[n] = r;
        for (int64_t g = 0; g < groups; ++g)
            multipliers[n * groups + g] = static_cast<int32_t>(std::nearbyint(double(s[g]) / double(r) * one));
    }
}

struct GroupwiseGemmShape {
    int64_t m = 1, n = 1, k = 1, group_size = 1;
    int64_t groups() const { return (k + group_size - 1) / group_size; }
};

namespace groupwise_detail {

// Partial sums of one activation row (already minus zp, int32) against one weight row, one per group.
__attribute__((always_inline)) inline void RowGroupSums(const int32_t* a_row, const int8_t* b_row,
                                                        const GroupwiseGemmShape& s, int32_t* p) {
    const int64_t groups = s.groups();
    for (int64_t g = 0; g < groups; ++g) {
        const int64_t k0 = g * s.group_size, k1 = std::min(s.k, k0 + s.group_size);
        int32_t sum = 0;
        for (int64_t k = k0; k < k1; ++k) sum += a_row[k] * static_cast<int32_t>(b_row[k]);
        p[g] = sum;
    }
}

template <typename AT>
__attribute__((always_inline)) inline void PartialSumRows(const AT* a, int32_t zp, const int8_t* b,
                                                          const GroupwiseGemmShape& s, int32_t* p, int64_t m0,
                                                          int64_t m1) {
    std::vector<int32_t> row(static_cast<size_t>(s.k));
    const int64_t groups = s.groups();
    for (int64_t m = m0; m < m1; ++m) {
        for (int64_t k = 0; k < s.k; ++k) row[k] = static_cast<int32_t>(a[m * s.k + k]) - zp;
        for (int64_t n = 0; n < s.n; ++n) RowGroupSums(row.data(), b + n * s.k, s, p + (m * s.n + n) * groups);
    }
}

template <typename AT>
void PartialSumRowsScalar(const AT* a, int32_t zp, const int8_t* b, const GroupwiseGemmShape& s, int32_t* p,
                          int64_t m0, int64_t m1) {
    PartialSumRows(a, zp, b, s, p, m0, m1);
}

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
template <typename AT>
__attribute__((target("avx2"))) void PartialSumRowsAvx2(const AT* a, int32_t zp, const int8_t* b,
                                                        const GroupwiseGemmShape& s, int32_t* p, int64_t m0,
                                                        int64_t m1) {
    PartialSumRows(a, zp, b, s, p, m0, m1);
}
template <typename AT>
__attribute__((target("avx512f,avx512bw"))) void PartialSumRowsAvx512(const AT* a, int32_t zp, const int8_t* b,
                                                                      const GroupwiseGemmShape& s, int32_t* p,
                                                                      int64_t m0, int64_t m1) {
    PartialSumRows(a, zp, b, s, p, m0, m1);
}
#endif

}  // namespace groupwise_detail

// Exact int32 partial sums p[m, n, g] (layout [M, N, groups]).
template <typename AT>
void GroupPartialSumsS32(const AT* a, int32_t a_zero_point, const int8_t* b, const GroupwiseGemmShape& s,
                         int32_t* partial, DepthwiseIsa isa, int threads) {
    const DepthwiseIsa path = ResolveDepthwiseIsa(isa);
    ParallelChunks(s.m, threads, [&](int64_t m0, int64_t m1) {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
        if (path == DepthwiseIsa::kAvx512)
            return groupwise_detail::PartialSumRowsAvx512(a, a_zero_point, b, s, partial, m0, m1);
        if (path == DepthwiseIsa::kAvx2)
            return groupwise_detail::PartialSumRowsAvx2(a, a_zero_point, b, s, partial, m0, m1);
#endif
        groupwise_detail::PartialSumRowsScalar(a, a_zero_point, b, s, partial, m0, m1);
    });
}

// GROUP_FLOAT: y[m,n] = sum_g float32(p[m,n,g]) * scales[n,g], float32, ascending g, no FMA.
inline void GroupFloatAccumulate(const int32_t* partial, const float* scales, const GroupwiseGemmShape& s, float* y) {
    const int64_t groups = s.groups();
    for (int64_t m = 0; m < s.m; ++m)
        for (int64_t n = 0; n < s.n; ++n) {
            const int32_t* p = partial + (m * s.n + n) * groups;
            const float* sc = scales + n * groups;
            float acc = 0.0f;
            for (int64_t g = 0; g < groups; ++g) {
                const float term = static_cast<float>(p[g]) * sc[g];
                acc = acc + term;
            }
            y[m * s.n + n] = acc;
        }
}

// GROUP_FIXED_POINT: acc[m,n] = sat_A(... sat_A(0 + RRS(p_0*m_0, F)) + RRS(p_1*m_1, F) ...), A = acc_bits.
// Returns the number of outputs in which at least one addition clamped. multipliers: [N, groups]; 0 <= F <= 62.
inline int64_t GroupFixedPointAccumulate(const int32_t* partial, const int32_t* multipliers,
                                         const GroupwiseGemmShape& s, int frac_bits, RoundingMode rounding,
                                         int acc_bits, int64_t* acc_out) {
    const int64_t groups = s.groups();
    const int64_t hi = acc_bits >= 64 ? INT64_MAX : (int64_t{1} << (acc_bits - 1)) - 1;
    const int64_t lo = acc_bits >= 64 ? INT64_MIN : -(int64_t{1} << (acc_bits - 1));
    int64_t clamps = 0;
    for (int64_t m = 0; m < s.m; ++m)
        for (int64_t n = 0; n < s.n; ++n) {
            const int32_t* p = partial + (m * s.n + n) * groups;
            const int32_t* mul = multipliers + n * groups;
            int64_t acc = 0;
            bool clamped = false;
            for (int64_t g = 0; g < groups; ++g) {
                const int64_t term = RoundingRightShift<int64_t>(int64_t{p[g]} * mul[g], frac_bits, rounding);
                int64_t sum;
                if (__builtin_add_overflow(acc, term, &sum)) {  // only reachable when acc_bits == 64
                    sum = term > 0 ? hi : lo;
                    clamped = true;
                } else if (sum > hi) {
                    sum = hi;
                    clamped = true;
                } else if (sum < lo) {
                    sum = lo;
                    clamped = true;
                }
                acc = sum;
            }
            acc_out[m * s.n + n] = acc;
            clamps += clamped ? 1 : 0;
        }
    return clamps;
}

}  // namespace hwsim
