// Depthwise 2-D convolution, uint8/int8 activations x int8 weights -> int32 accumulators (NHWC).
//
// Layout: x is NHWC [N, H, W, C]; w is OHWI [C*mult, KH, KW, 1], the IR's Conv2D weights with groups == C;
// the result is NHWC [N, OH, OW, C*mult]. Output channel oc reads input channel oc / mult (oc = c*mult + m),
// the grouping of ONNX/PyTorch groups == C and of TFLite's depth_multiplier.
//
// Two accumulation modes, both deterministic integer arithmetic (no rounding anywhere):
//   kExact          acc = sum over taps (x - zp) * (w - w_zp[oc]) (w_zp optional, default 0). Padding taps hold
//                   the zero point (real 0), so they add nothing. |product| <= 255 * 255; the caller bounds taps
//                   (<= kMaxDepthwiseTaps) so the int32 sum can never overflow.
//   kFbgemmPairs    PyTorch fbgemm's depthwise kernel (measured, numerics.md section 7): raw x * w products,
//                   padding taps holding the raw value zp, taps ordered t = kh*KW + kw and summed in pairs
//                   (0,1), (2,3), ... with each pair SATURATED to int16 (VPMADDUBSW: sat16(a0*b0 + a1*b1)),
//                   an odd last tap alone (its single product always fits int16); the pair sums are added
//                   exactly in int32 (VPMADDWD with ones + VPADDD), then zp * sum(w) is subtracted exactly.
//                   fbgemm routes to this kernel only for square 3x3/5x5/7x7, stride 1 or 2, dilation 1,
//                   "same" padding (K-1)/2, C % 8 == 0 and multiplier 1 or 2 (hwsim/emulate/ref_depthwise.py,
//                   fbgemm_routes_depthwise); the mode itself accepts any geometry.
//
// The kernel body is written once; SIMD paths are the same body compiled under AVX2 / AVX-512BW target
// attributes (the compiler vectorises the channel loops), so every path is bit-identical by construction.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <vector>

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "hwsim/cpu_features.h"
#include "hwsim/parallel.h"
#include "hwsim/tile_epilogue.h"

namespace hwsim {

enum class DepthwiseMode : int { kExact = 0, kFbgemmPairs = 1 };

// Instruction-set path of the depthwise and group-wise kernels. kAuto picks the best the CPU has.
enum class DepthwiseIsa : int { kAuto = 0, kScalar = 1, kAvx2 = 2, kAvx512 = 3 };

// Largest KH*KW accepted: 16384 taps * 65025 (largest |(x - zp)(w - w_zp)|) < 2^31, and in the pairs mode
// 8192 pairs * 32768 + 255 * 128 * 16384 (zp * sum w) < 2^31.
constexpr int kMaxDepthwiseTaps = 16384;

struct DepthwiseConv2DShape {
    int n = 1, h = 1, w = 1, c = 1;          // input NHWC
    int kh = 1, kw = 1, multiplier = 1;       // kernel and depth multiplier
    int stride_h = 1, stride_w = 1;
    int dilation_h = 1, dilation_w = 1;
    int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;

    int out_channels() const { return c * multiplier; }
    // Output extent; <= 0 means the (dilated) kernel does not fit the padded input. Computed in int64 so any
    // int inputs are safe; the caller keeps padded extents and dilated kernel extents below 2^30.
    int out_h() const { return Extent(h, pad_top + int64_t{pad_bottom}, kh, dilation_h, stride_h); }
    int out_w() const { return Extent(w, pad_left + int64_t{pad_right}, kw, dilation_w, stride_w); }
    static int Extent(int64_t in, int64_t pads, int64_t k, int64_t dil, int64_t stride) {
        const int64_t span = in + pads - dil * (k - 1) - 1;
        return span < 0 ? 0 : static_cast<int>(span / stride + 1);
    }
};

// Whether `isa` can run on this CPU (AVX-512 needs F + BW). Asks libgcc's feature bits, which it reads
// from CPUID once per process, not CPUID itself: CPUID traps under virtualisation (~13 us per
// detect_cpu_features() in a sandbox), which showed up in every small depthwise call.
inline bool DepthwiseIsaSupported(DepthwiseIsa isa) {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    __builtin_cpu_init();
    switch (isa) {
        case DepthwiseIsa::kAvx2: return __builtin_cpu_supports("avx2");
        case DepthwiseIsa::kAvx512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
        default: return true;
    }
#else
    return isa == DepthwiseIsa::kAuto || isa == DepthwiseIsa::kScalar;
#endif
}

// Resolves kAuto to the widest available path; throws std::invalid_argument if a forced path is missing.
inline DepthwiseIsa ResolveDepthwiseIsa(DepthwiseIsa isa) {
    if (isa == DepthwiseIsa::kAuto) {
        if (DepthwiseIsaSupported(DepthwiseIsa::kAvx512)) return DepthwiseIsa::kAvx512;
        if (DepthwiseIsaSupported(DepthwiseIsa::kAvx2)) return DepthwiseIsa::kAvx2;
        return DepthwiseIsa::kScalar;
    }
    if (!DepthwiseIsaSupported(isa))
        throw std::invalid_argument(isa == DepthwiseIsa::kAvx2 ? "isa: this CPU has no AVX2"
                                                               : "isa: this CPU has no AVX-512BW");
    return isa;
}

// Runs body(begin, end) over contiguous chunks of [0, total) on up to `threads` threads (0 = all hardware
// threads); each chunk writes a disjoint part of the output, so results do not depend on `threads`.
template <typename Body>
void ParallelChunks(int64_t total, int threads, const Body& body, WorkerPool* pool = nullptr) {
    if (total <= 0) return;
    const int workers = parallel_workers(total, threads);
    const int64_t chunks = std::min<int64_t>(total, int64_t{workers} * 4);
    const int64_t per = (total + chunks - 1) / chunks;
    parallel_for_dynamic(chunks, workers, [&](int, int64_t i) {
        const int64_t b = i * per, e = std::min(total, b + per);
        if (b < e) body(b, e);
    }, pool);
}

namespace depthwise_detail {

// Weights repacked tap-major: wt[t * OC + oc] = w[oc, kh, kw, 0] with t = kh*KW + kw, widened to int32.
struct PackedDepthwiseWeights {
    std::vector<int32_t> taps;     // [KH*KW, OC]
    std::vector<int32_t> sum;      // [OC], sum over taps (for the zp * sum(w) correction)
};

// w_zero_point (nullable, one per output channel) is subtracted here, so the kernels see w - w_zp.
inline PackedDepthwiseWeights PackWeights(const int8_t* w_ohwi, const int32_t* w_zero_point,
                                          const DepthwiseConv2DShape& s) {
    const int oc_n = s.out_channels(), taps = s.kh * s.kw;
    PackedDepthwiseWeights p;
    p.taps.resize(static_cast<size_t>(taps) * oc_n);
    p.sum.assign(static_cast<size_t>(oc_n), 0);
    for (int oc = 0; oc < oc_n; ++oc)
        for (int t = 0; t < taps; ++t) {
            const int32_t v = w_ohwi[static_cast<size_t>(oc) * taps + t] - (w_zero_point ? w_zero_point[oc] : 0);
            p.taps[static_cast<size_t>(t) * oc_n + oc] = v;
            p.sum[oc] += v;
        }
    return p;
}

// Loads the input channels feeding every output channel of tap (ih, iw) into `dst` (length OC), minus
// `subtract`; a tap outside the image loads the zero point (so x - subtract = zp - subtract).
template <typename XT>
__attribute__((always_inline)) inline void LoadTap(const XT* x_img, const DepthwiseConv2DShape& s, int ih, int iw,
                                                   int32_t zp, int32_t subtract, int32_t* dst) {
    const int c_n = s.c, mult = s.multiplier, oc_n = c_n * mult;
    if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) {
        const int32_t v = zp - subtract;
        for (int oc = 0; oc < oc_n; ++oc) dst[oc] = v;
        return;
    }
    const XT* px = x_img + (static_cast<int64_t>(ih) * s.w + iw) * c_n;
    if (mult == 1) {
        for (int c = 0; c < c_n; ++c) dst[c] = static_cast<int32_t>(px[c]) - subtract;
    } else {
        for (int c = 0; c < c_n; ++c) {
            const int32_t v = static_cast<int32_t>(px[c]) - subtract;
            for (int m = 0; m < mult; ++m) dst[c * mult + m] = v;
        }
    }
}

// One batch of output rows [row_begin, row_end) where row = n*OH + oh. The portable body of every path.
template <typename XT>
__attribute__((always_inline)) inline void DepthwiseRows(const XT* x, const PackedDepthwiseWeights& pw,
                                                         int32_t* out, const DepthwiseConv2DShape& s, int32_t zp,
                                                         DepthwiseMode mode, int64_t row_begin, int64_t row_end) {
    const int oc_n = s.out_channels(), oh_n = s.out_h(), ow_n = s.out_w();
    std::vector<int32_t> xa(static_cast<size_t>(oc_n)), xb(static_cast<size_t>(oc_n));
    int32_t* a = xa.data();
    int32_t* b = xb.data();
    const int32_t* wt = pw.taps.data();
    const int taps = s.kh * s.kw;
    for (int64_t row = row_begin; row < row_end; ++row) {
        const int64_t n = row / oh_n;
        const int oh = static_cast<int>(row % oh_n);
        const XT* x_img = x + n * static_cast<int64_t>(s.h) * s.w * s.c;
        for (int ow = 0; ow < ow_n; ++ow) {
            int32_t* acc = out + (row * ow_n + ow) * oc_n;
            for (int oc = 0; oc < oc_n; ++oc) acc[oc] = 0;
            const int ih0 = oh * s.stride_h - s.pad_top, iw0 = ow * s.stride_w - s.pad_left;
            if (mode == DepthwiseMode::kExact) {
                for (int t = 0; t < taps; ++t) {
                    const int ih = ih0 + (t / s.kw) * s.dilation_h, iw = iw0 + (t % s.kw) * s.dilation_w;
                    if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;  // (zp - zp) * w = 0
                    LoadTap(x_img, s, ih, iw, zp, zp, a);
                    const int32_t* wrow = wt + static_cast<int64_t>(t) * oc_n;
                    for (int oc = 0; oc < oc_n; ++oc) acc[oc] += a[oc] * wrow[oc];
                }
            } else {
                for (int t = 0; t < taps; t += 2) {
                    const int ih = ih0 + (t / s.kw) * s.dilation_h, iw = iw0 + (t % s.kw) * s.dilation_w;
                    LoadTap(x_img, s, ih, iw, zp, 0, a);
                    const int32_t* w0 = wt + static_cast<int64_t>(t) * oc_n;
                    if (t + 1 < taps) {
                        const int ih1 = ih0 + ((t + 1) / s.kw) * s.dilation_h;
                        const int iw1 = iw0 + ((t + 1) % s.kw) * s.dilation_w;
                        LoadTap(x_img, s, ih1, iw1, zp, 0, b);
                        const int32_t* w1 = w0 + oc_n;
                        for (int oc = 0; oc < oc_n; ++oc) {
                            const int32_t pair = a[oc] * w0[oc] + b[oc] * w1[oc];
                            acc[oc] += std::min<int32_t>(32767, std::max<int32_t>(-32768, pair));
                        }
                    } else {
                        for (int oc = 0; oc < oc_n; ++oc) acc[oc] += a[oc] * w0[oc];
                    }
                }
                const int32_t* wsum = pw.sum.data();
                for (int oc = 0; oc < oc_n; ++oc) acc[oc] -= zp * wsum[oc];
            }
        }
    }
}

template <typename XT>
void DepthwiseRowsScalar(const XT* x, const PackedDepthwiseWeights& pw, int32_t* out, const DepthwiseConv2DShape& s,
                         int32_t zp, DepthwiseMode mode, int64_t b, int64_t e) {
    DepthwiseRows(x, pw, out, s, zp, mode, b, e);
}

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
template <typename XT>
__attribute__((target("avx2"))) void DepthwiseRowsAvx2(const XT* x, const PackedDepthwiseWeights& pw, int32_t* out,
                                                       const DepthwiseConv2DShape& s, int32_t zp, DepthwiseMode mode,
                                                       int64_t b, int64_t e) {
    DepthwiseRows(x, pw, out, s, zp, mode, b, e);
}
template <typename XT>
__attribute__((target("avx512f,avx512bw"))) void DepthwiseRowsAvx512(const XT* x, const PackedDepthwiseWeights& pw,
                                                                     int32_t* out, const DepthwiseConv2DShape& s,
                                                                     int32_t zp, DepthwiseMode mode, int64_t b,
                                                                     int64_t e) {
    DepthwiseRows(x, pw, out, s, zp, mode, b, e);
}
#endif

// ---- Explicit AVX-512 kernel for the common case: 3x3, multiplier 1, dilation 1, any stride / padding.
// The same arithmetic as DepthwiseRows (bit-identical by construction of the integer operations):
//   kExact        acc = sum over in-bounds taps of (x - zp) * w_t   (VPMOVZXBD/VPMOVSXBD, VPSUBD, VPMULLD,
//                 VPADDD; out-of-bounds taps add (zp - zp) * w = 0 and are skipped)
//   kFbgemmPairs  acc = sum over pairs (t, t+1) of clamp16(x_t * w_t + x_{t+1} * w_{t+1}) + x_8 * w_8
//                 - zp * sum w (out-of-bounds taps read the raw zp), VPMINSD/VPMAXSD as the int16 clamp.
// |products| <= 255 * 255 and at most 9 taps: every int32 sum is exact, so VPMULLD/VPADDD equal the
// scalar int32 arithmetic. Channels go in blocks of 16 lanes (a masked block for the C % 16 tail); the
// 9 weight vectors of a block stay in registers for a whole output row.
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#define HWSIM_HAVE_DW3X3_AVX512 1

inline bool Depthwise3x3FastApplies(const DepthwiseConv2DShape& s) {
    return s.kh == 3 && s.kw == 3 && s.multiplier == 1 && s.dilation_h == 1 && s.dilation_w == 1;
}

template <typename XT>
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline __m512i Load16(const XT* p, __mmask16 m) {
    const __m128i b = _mm_maskz_loadu_epi8(m, p);
    // All-lanes zero-masked forms: the same instructions, without GCC 12's "_mm512_undefined" warnings.
    if constexpr (std::is_signed<XT>::value) return _mm512_maskz_cvtepi8_epi32(0xFFFF, b);
    else return _mm512_maskz_cvtepu8_epi32(0xFFFF, b);
}

// Per int32 lane: the low 16 bits of a as the low half, the low 16 bits of b as the high half.
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline __m512i InterleaveLow16(__m512i a, __m512i b) {
    return _mm512_mask_blend_epi16(static_cast<__mmask32>(0xAAAAAAAAu), a,
                                   _mm512_maskz_slli_epi32(0xFFFF, b, 16));  // all-lanes form: see Load16
}

// The three input rows a 3x3 window of output row `row` (= n * OH + oh) reads: its image, its top input
// row (may lie in the padding) and which of the rows lie inside the image.
template <typename XT>
struct Window3Rows {
    const XT* x_img;
    int ih0;
    bool row_ok[3];
    Window3Rows(const XT* x, const DepthwiseConv2DShape& s, int64_t row) {
        const int oh_n = s.out_h();
        x_img = x + row / oh_n * static_cast<int64_t>(s.h) * s.w * s.c;
        ih0 = static_cast<int>(row % oh_n) * s.stride_h - s.pad_top;
        for (int i = 0; i < 3; ++i) row_ok[i] = ih0 + i >= 0 && ih0 + i < s.h;
    }
};

// Output row `row` (= n * OH + oh) of channels [0, OC) into out_row ([OW, OC] int32).
template <typename XT, bool kPairs>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void DepthwiseRow3x3Avx512(
        const XT* x, const PackedDepthwiseWeights& pw, int32_t* out_row, const DepthwiseConv2DShape& s, int32_t zp,
        int64_t row) {
    const int c_n = s.c, ow_n = s.out_w();
    const Window3Rows<XT> win(x, s, row);
    const XT* x_img = win.x_img;
    const int ih0 = win.ih0;
    const bool* row_ok = win.row_ok;
    const __m512i zpv = _mm512_set1_epi32(zp);
    const __m512i lo16 = _mm512_set1_epi32(-32768), hi16 = _mm512_set1_epi32(32767);
    for (int c0 = 0; c0 < c_n; c0 += 16) {
        const int left = c_n - c0;
        const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
        __m512i wv[9];
#pragma GCC unroll 9
        for (int t = 0; t < 9; ++t) wv[t] = _mm512_maskz_loadu_epi32(m, pw.taps.data() + static_cast<int64_t>(t) * c_n + c0);
        const __m512i zp_wsum = _mm512_mullo_epi32(zpv, _mm512_maskz_loadu_epi32(m, pw.sum.data() + c0));
        // Tap pairs (w0, w1) as int16 halves of each int32 lane (low, high) for VPMADDWD; tap 8 paired with 0.
        __m512i wpair[5];
#pragma GCC unroll 4
        for (int t = 0; t < 8; t += 2) wpair[t / 2] = InterleaveLow16(wv[t], wv[t + 1]);
        wpair[4] = _mm512_and_si512(wv[8], _mm512_set1_epi32(0xFFFF));
        for (int ow = 0; ow < ow_n; ++ow) {
            const int iw0 = ow * s.stride_w - s.pad_left;
            bool col_ok[3];
            for (int j = 0; j < 3; ++j) col_ok[j] = iw0 + j >= 0 && iw0 + j < s.w;
            const int64_t base = (static_cast<int64_t>(ih0) * s.w + iw0) * c_n + c0;  // may be < 0; used only in bounds
            __m512i acc = _mm512_setzero_si512();
            // the 9 taps, 16 channels each: x inside the image, the zero point on padding taps
            __m512i xt[9];
#pragma GCC unroll 9
            for (int t = 0; t < 9; ++t) {
                const int i = t / 3, j = t % 3;
                xt[t] = row_ok[i] && col_ok[j] ? Load16(x_img + (base + (static_cast<int64_t>(i) * s.w + j) * c_n), m) : zpv;
            }
            if constexpr (!kPairs) {
                // sum (x - zp) * w = sum x' * w - zp * sum(w), x' = x on taps inside the image and zp on
                // padding taps (which then add nothing); |x'|, |w| <= 255 fit int16 and each VPMADDWD pair
                // sum |x'0*w0 + x'1*w1| <= 2 * 255 * 255, so every step is exact in int32 (the same
                // integers as summing the products one by one).
#pragma GCC unroll 4
                for (int t = 0; t < 8; t += 2)
                    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(InterleaveLow16(xt[t], xt[t + 1]), wpair[t / 2]));
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(xt[8], wpair[4]));  // (x'8, *) . (w8, 0)
                acc = _mm512_sub_epi32(acc, zp_wsum);
            } else {
#pragma GCC unroll 4
                for (int t = 0; t < 8; t += 2) {
                    __m512i pair = _mm512_add_epi32(_mm512_mullo_epi32(xt[t], wv[t]), _mm512_mullo_epi32(xt[t + 1], wv[t + 1]));
                    pair = _mm512_maskz_min_epi32(0xFFFF, hi16, _mm512_maskz_max_epi32(0xFFFF, lo16, pair));
                    acc = _mm512_add_epi32(acc, pair);
                }
                acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(xt[8], wv[8]));
                acc = _mm512_sub_epi32(acc, zp_wsum);
            }
            _mm512_mask_storeu_epi32(out_row + static_cast<int64_t>(ow) * c_n + c0, m, acc);
        }
    }
}

// (P_c, S_c) of input column iw (see DepthwiseRow3x3ColumnsAvx512): x_top points at channel c0 of column 0
// of the window's top row; a column outside the image, or a row outside it, holds the zero point.
template <typename XT>
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline void Column3x3(
        const XT* x_top, const DepthwiseConv2DShape& s, int iw, const bool* row_ok, __m512i zpv, __mmask16 m,
        __m512i& pc, __m512i& sc) {
    if (iw < 0 || iw >= s.w) {
        pc = InterleaveLow16(zpv, zpv);
        sc = zpv;
        return;
    }
    const XT* px = x_top + static_cast<int64_t>(iw) * s.c;
    const int64_t ld = static_cast<int64_t>(s.w) * s.c;
    const __m512i x0 = row_ok[0] ? Load16(px, m) : zpv;
    const __m512i x1 = row_ok[1] ? Load16(px + ld, m) : zpv;
    sc = row_ok[2] ? Load16(px + 2 * ld, m) : zpv;
    pc = InterleaveLow16(x0, x1);
}

// kExact only, the faster form of DepthwiseRow3x3Avx512<XT, false>: the same sum
//   acc = sum over the 9 taps of x' * w - zp * sum(w)   (x' = x inside the image, zp on padding taps)
// with the taps paired by rows instead of in tap order. Per input column c of the three rows:
//   P_c = (x'_0c, x'_1c) as the int16 halves of each int32 lane, S_c = x'_2c,
// and output column ow (first input column c0 = ow * stride - pad_left) sums
//   VPMADDWD(P_{c0+j}, (w_0j, w_1j)) + VPMADDWD(S_{c0+j}, (w_2j, 0)) for j = 0, 1, 2.
// Each product and each pair sum is exact in int32 (|x'|, |w| <= 255), so the result equals the tap-order
// sum bit for bit (int32 addition is exact here and order independent). An input column is loaded and
// widened once and then serves every output that reads it (3 with stride 1) instead of once per tap.
template <typename XT>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void DepthwiseRow3x3ColumnsAvx512(
        const XT* x, const PackedDepthwiseWeights& pw, int32_t* out_row, const DepthwiseConv2DShape& s, int32_t zp,
        int64_t row) {
    const int c_n = s.c, ow_n = s.out_w();
    const Window3Rows<XT> win(x, s, row);
    const XT* x_img = win.x_img;
    const int ih0 = win.ih0;
    const bool* row_ok = win.row_ok;
    const int stride = s.stride_w;
    const __m512i zpv = _mm512_set1_epi32(zp);
    const __m512i low16 = _mm512_set1_epi32(0xFFFF);
    for (int c0 = 0; c0 < c_n; c0 += 16) {
        const int left = c_n - c0;
        const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
        const int32_t* wt = pw.taps.data() + c0;
        __m512i wp[3], ws[3];
#pragma GCC unroll 3
        for (int j = 0; j < 3; ++j) {
            wp[j] = InterleaveLow16(_mm512_maskz_loadu_epi32(m, wt + static_cast<int64_t>(j) * c_n),
                                    _mm512_maskz_loadu_epi32(m, wt + static_cast<int64_t>(3 + j) * c_n));
            ws[j] = _mm512_and_si512(_mm512_maskz_loadu_epi32(m, wt + static_cast<int64_t>(6 + j) * c_n), low16);
        }
        const __m512i init = _mm512_sub_epi32(_mm512_setzero_si512(),
                                              _mm512_mullo_epi32(zpv, _mm512_maskz_loadu_epi32(m, pw.sum.data() + c0)));
        const XT* x_top = x_img + static_cast<int64_t>(ih0) * s.w * c_n + c0;  // row ih0 may be outside
        __m512i p0 = zpv, s0 = zpv, p1 = zpv, s1 = zpv, p2 = zpv, s2 = zpv;
        const int iw_first = -s.pad_left;
        Column3x3(x_top, s, iw_first, row_ok, zpv, m, p0, s0);
        Column3x3(x_top, s, iw_first + 1, row_ok, zpv, m, p1, s1);
        for (int ow = 0; ow < ow_n; ++ow) {
            const int iw0 = ow * stride - s.pad_left;
            if (ow > 0) {
                if (stride == 1) {
                    p0 = p1; s0 = s1; p1 = p2; s1 = s2;
                } else if (stride == 2) {
                    p0 = p2; s0 = s2;
                    Column3x3(x_top, s, iw0 + 1, row_ok, zpv, m, p1, s1);
                } else {
                    Column3x3(x_top, s, iw0, row_ok, zpv, m, p0, s0);
                    Column3x3(x_top, s, iw0 + 1, row_ok, zpv, m, p1, s1);
                }
            }
            Column3x3(x_top, s, iw0 + 2, row_ok, zpv, m, p2, s2);
            __m512i acc = _mm512_add_epi32(init, _mm512_madd_epi16(p0, wp[0]));
            acc = _mm512_add_epi32(acc, _mm512_madd_epi16(s0, ws[0]));
            acc = _mm512_add_epi32(acc, _mm512_madd_epi16(p1, wp[1]));
            acc = _mm512_add_epi32(acc, _mm512_madd_epi16(s1, ws[1]));
            acc = _mm512_add_epi32(acc, _mm512_madd_epi16(p2, wp[2]));
            acc = _mm512_add_epi32(acc, _mm512_madd_epi16(s2, ws[2]));
            _mm512_mask_storeu_epi32(out_row + static_cast<int64_t>(ow) * c_n + c0, m, acc);
        }
    }
}
#endif

}  // namespace depthwise_detail

// Depthwise convolution into int32 (see the top of this file for both modes). x: [N,H,W,C] (uint8_t or
// int8_t), w: OHWI [C*mult, KH, KW, 1] int8, out: [N, OH, OW, C*mult]. w_zero_point: nullptr (symmetric
// weights) or one int8-range value per output channel; kExact then sums (x - x_zp) * (w - w_zp), each
// product within 255 * 255, so the tap bound keeps the int32 sum exact. kFbgemmPairs models symmetric
// weights (fbgemm's kernel): the caller passes nullptr. Shapes are validated by the caller.
// epi (optional) runs on each finished chunk of output rows ([rows of N*OH*OW, C*mult] coordinates) on the
// thread that computed it. out may be nullptr when epi is given: the int32 result then only reaches epi
// (computed one output row at a time into per-thread scratch memory).
// Paths: 3x3, multiplier 1, dilation 1 on AVX-512 runs DepthwiseRow3x3Avx512; everything else the
// portable body compiled for the chosen ISA. All give identical integers.
template <typename XT>
void DepthwiseConv2DS32Packed(const XT* x, const depthwise_detail::PackedDepthwiseWeights& pw, int32_t* out,
                              const DepthwiseConv2DShape& s, int32_t x_zero_point, DepthwiseMode mode,
                              DepthwiseIsa isa, int threads, const TileEpilogue* epi = nullptr,
                              WorkerPool* pool = nullptr);

template <typename XT>
void DepthwiseConv2DS32(const XT* x, const int8_t* w_ohwi, int32_t* out, const DepthwiseConv2DShape& s,
                        int32_t x_zero_point, DepthwiseMode mode, DepthwiseIsa isa, int threads,
                        const int32_t* w_zero_point = nullptr, const TileEpilogue* epi = nullptr,
                        WorkerPool* pool = nullptr) {
    DepthwiseConv2DS32Packed(x, depthwise_detail::PackWeights(w_ohwi, w_zero_point, s), out, s, x_zero_point, mode, isa,
                             threads, epi, pool);
}

// DepthwiseConv2DS32 with weights packed beforehand by depthwise_detail::PackWeights for the same
// out_channels, KH and KW (a prepared layer packs them once).
template <typename XT>
void DepthwiseConv2DS32Packed(const XT* x, const depthwise_detail::PackedDepthwiseWeights& pw, int32_t* out,
                              const DepthwiseConv2DShape& s, int32_t x_zero_point, DepthwiseMode mode,
                              DepthwiseIsa isa, int threads, const TileEpilogue* epi, WorkerPool* pool) {
    const int64_t rows = static_cast<int64_t>(s.n) * s.out_h();
    const DepthwiseIsa path = ResolveDepthwiseIsa(isa);
    const int64_t oc_n = s.out_channels(), ow_n = s.out_w();
    // Starting a thread costs tens of microseconds: small layers run on fewer workers (speed only). A
    // pool's workers are already running, so a few microseconds of work are worth handing over.
    const int64_t min_macs_per_worker = pool != nullptr ? int64_t{1} << 15 : int64_t{1} << 19;
    const int64_t macs = rows * ow_n * oc_n * s.kh * s.kw;
    threads = static_cast<int>(std::min<int64_t>(resolve_threads(threads), std::max<int64_t>(1, macs / min_macs_per_worker)));
#if defined(HWSIM_HAVE_DW3X3_AVX512)
    if (path == DepthwiseIsa::kAvx512 && depthwise_detail::Depthwise3x3FastApplies(s)) {
        auto row_fn = mode == DepthwiseMode::kFbgemmPairs ? &depthwise_detail::DepthwiseRow3x3Avx512<XT, true>
                                                          : &depthwise_detail::DepthwiseRow3x3ColumnsAvx512<XT>;
        const bool scratch = out == nullptr;
        ParallelChunks(rows, threads, [&](int64_t b, int64_t e) {
            std::vector<int32_t> row_buf(scratch ? static_cast<size_t>(ow_n * oc_n) : 0);
            for (int64_t row = b; row < e; ++row) {
                int32_t* o = scratch ? row_buf.data() : out + row * ow_n * oc_n;
                row_fn(x, pw, o, s, x_zero_point, row);
                if (scratch && epi != nullptr) (*epi)(o, oc_n, row * ow_n, ow_n, 0, oc_n);
            }
            if (!scratch && epi != nullptr) (*epi)(out + b * ow_n * oc_n, oc_n, b * ow_n, (e - b) * ow_n, 0, oc_n);
        }, pool);
        return;
    }
#endif
    std::vector<int32_t> own;
    if (out == nullptr) {
        own.resize(static_cast<size_t>(std::max<int64_t>(rows * ow_n * oc_n, 1)));
        out = own.data();
    }
    ParallelChunks(rows, threads, [&](int64_t b, int64_t e) {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
        if (path == DepthwiseIsa::kAvx512) depthwise_detail::DepthwiseRowsAvx512(x, pw, out, s, x_zero_point, mode, b, e);
        else if (path == DepthwiseIsa::kAvx2) depthwise_detail::DepthwiseRowsAvx2(x, pw, out, s, x_zero_point, mode, b, e);
        else
#endif
        depthwise_detail::DepthwiseRowsScalar(x, pw, out, s, x_zero_point, mode, b, e);
        if (epi != nullptr) (*epi)(out + b * ow_n * oc_n, oc_n, b * ow_n, (e - b) * ow_n, 0, oc_n);
    }, pool);
}

}  // namespace hwsim
