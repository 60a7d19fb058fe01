// Float-scale requantization as a TileEpilogue (tile_epilogue.h): a GEMM / convolution hands every
// finished int32 tile to it and it writes the requantized tile of `out` (same row/column coordinates,
// row stride ldo), so the int32 result is read once, while hot, on the thread that produced it. The
// arithmetic is exactly ApplyRequantizeFloat of requantize.h (and so exactly RequantizeFloat on the whole
// array: every element depends only on its own accumulator and its channel's constants).
#pragma once

#include <cstdint>
#include <type_traits>

#include "hwsim/requantize.h"
#include "hwsim/requantize_float_simd.h"
#include "hwsim/tile_epilogue.h"

namespace hwsim {

#if defined(HWSIM_HAVE_X86_REQUANT_SIMD)
namespace requant_epilogue_detail {

// The AVX-512 kernel of requantize_float_simd.h (RowsAvx512, multiply, int32 bias or none) with the loops
// exchanged: 16-column blocks outside, rows inside, so each block's constants (scale, lo, hi, zp, bias)
// are loaded once per tile instead of once per row. Per element the very same instructions run in the
// same order, so the results are identical.
template <int kBias, typename Out>
__attribute__((target("avx512f"))) void ColumnsAvx512(const int32_t* acc, int64_t lda, int64_t rows, int64_t cols,
                                                      const FloatRequantColumns& k, Out* out, int64_t ldo) {
    constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __mmask16 kAll = 0xFFFF;
    for (int64_t c = 0; c < cols; c += 16) {
        const int64_t left = cols - c;
        const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
        const __m512i bias = kBias == 1 ? _mm512_maskz_loadu_epi32(m, k.bias_i + c) : _mm512_setzero_si512();
        const __m512 s = _mm512_maskz_loadu_ps(m, k.scale + c);
        const __m512 lo = _mm512_maskz_loadu_ps(m, k.lo + c);
        const __m512 hi = _mm512_maskz_loadu_ps(m, k.hi + c);
        const __m512i zp = _mm512_maskz_loadu_epi32(m, k.zp + c);
        const int32_t* a = acc + c;
        Out* y = out + c;
        for (int64_t r = 0; r < rows; ++r, a += lda, y += ldo) {
            __m512i raw = _mm512_maskz_loadu_epi32(m, a);
            if (kBias == 1) raw = _mm512_add_epi32(raw, bias);
            __m512 v = _mm512_maskz_cvt_roundepi32_ps(kAll, raw, kRne);
            v = _mm512_maskz_mul_round_ps(kAll, v, s, kRne);
            v = _mm512_maskz_max_ps(kAll, lo, v);
            v = _mm512_maskz_min_ps(kAll, hi, v);
            __m512i q = _mm512_maskz_cvt_roundps_epi32(kAll, v, kRne);
            q = _mm512_add_epi32(q, zp);
            if constexpr (sizeof(Out) == 1) {
                _mm512_mask_cvtepi32_storeu_epi8(y, m, q);
            } else if constexpr (sizeof(Out) == 2) {
                _mm512_mask_cvtepi32_storeu_epi16(y, m, q);
            } else {
                _mm512_mask_storeu_epi32(y, m, q);
            }
        }
    }
}

}  // namespace requant_epilogue_detail
#endif

template <typename Real, typename Out>
struct FloatRequantEpilogue {
    const FloatRequantPlan<Real>* plan = nullptr;
    Out* out = nullptr;
    int64_t ldo = 0;
    FloatRequantRegisters registers;  // filled by hook() when the plan has a register form

    static void run(const void* ctx, const int32_t* tile, int64_t ldc, int64_t row0, int64_t rows, int64_t col0,
                    int64_t cols) {
        const auto* self = static_cast<const FloatRequantEpilogue*>(ctx);
        const FloatRequantPlan<Real>& p = *self->plan;
        Out* y = self->out + row0 * self->ldo + col0;
#if defined(HWSIM_HAVE_X86_REQUANT_SIMD)
        // The fused bindings' scheme (float32, multiply, int32 bias or none, half to even) on AVX-512.
        if constexpr (std::is_same<Real, float>::value) {
            const FloatRequantOptions& o = p.o;
            if (p.small && p.isa == RequantIsa::Avx512 && o.rounding == RoundingMode::HALF_TO_EVEN &&
                !o.scale_divides && (o.bias == FloatBias::NONE || o.bias == FloatBias::INT32) && rows > 0 && cols > 0) {
                const FloatRequantColumns k = p.columns(col0);
                if (o.bias == FloatBias::INT32)
                    requant_epilogue_detail::ColumnsAvx512<1, Out>(tile, ldc, rows, cols, k, y, self->ldo);
                else
                    requant_epilogue_detail::ColumnsAvx512<0, Out>(tile, ldc, rows, cols, k, y, self->ldo);
                return;
            }
        }
#endif
        ApplyRequantizeFloat<Real, Out>(p, tile, ldc, row0, rows, col0, cols, y, self->ldo);
    }

    // The hook; valid while this object (and the plan) live. The register form is offered for the scheme
    // ColumnsAvx512 runs (float32, multiply, int32 bias or none, half to even) with 8-bit outputs.
    TileEpilogue hook() {
        TileEpilogue e;
        e.fn = &FloatRequantEpilogue::run;
        e.ctx = this;
        if constexpr (std::is_same<Real, float>::value && sizeof(Out) == 1) {
            const FloatRequantPlan<Real>& p = *plan;
            const FloatRequantOptions& o = p.o;
            if (p.small && p.isa == RequantIsa::Avx512 && o.rounding == RoundingMode::HALF_TO_EVEN &&
                !o.scale_divides && (o.bias == FloatBias::NONE || o.bias == FloatBias::INT32)) {
                const FloatRequantColumns k = p.columns(0);
                registers.bias = o.bias == FloatBias::INT32 ? k.bias_i : nullptr;
                registers.scale = k.scale;
                registers.lo = k.lo;
                registers.hi = k.hi;
                registers.zp = k.zp;
                registers.out = reinterpret_cast<uint8_t*>(out);
                registers.ldo = ldo;
                e.registers = &registers;
            }
        }
        return e;
    }
};

}  // namespace hwsim
