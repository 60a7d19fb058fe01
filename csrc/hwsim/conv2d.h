// 2-D convolution (NHWC activations, OHWI weights, groups) on the GEMM engine of gemm.h.
//
// x [N, H, W, C] uint8/int8, w [O, KH, KW, C/groups] int8, result int32 [N, OH, OW, O].
// For group g, output channel o = g * O/groups + j:
//   y[n, oh, ow, o] = GEMM over k = (kh, kw, ci), ci innermost (FBGEMM's channels-last im2col order; it is
//   also the pairing order of GemmMode::Avx2Pairs: pairs are k = 2i, 2i+1 of this flattened order), of
//   a = x[n, oh*sh - pad_top + kh*dh, ow*sw - pad_left + kw*dw, g*C/groups + ci] and b = w[o, kh, kw, ci],
//   where taps outside the input read the input zero point (a real 0). Every GEMM rule (modes, acc_bits,
//   overflow, counts) applies per output exactly as in gemm.h, with K = KH*KW*C/groups.
// Paths: 1x1 stride-1 unpadded convolutions read x directly as a [N*H*W, C] matrix (no gathering);
// all others gather im2col rows block by block while packing A. Groups run as one GEMM per group
// (fanned out over threads when there are at least as many groups as threads).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "hwsim/gemm.h"
#include "hwsim/im2col.h"
#include "hwsim/parallel.h"
#include "hwsim/tile_epilogue.h"

namespace hwsim {

// OHWI weights packed per group (one PackedWeights of [O/groups, KH*KW*C/groups] each), reusable.
struct PackedConvWeights {
    int64_t out_c = 0, kernel_h = 0, kernel_w = 0, group_in_c = 0, groups = 1;
    std::vector<std::shared_ptr<PackedWeights>> per_group;
    CpuFeatures host;  // detected at packing time (see PackedWeights::host)
};

// w: OHWI int8, contiguous; zp: out_c zero points or nullptr.
inline std::shared_ptr<PackedConvWeights> pack_conv_weights(const int8_t* w, int64_t out_c, int64_t kernel_h,
                                                            int64_t kernel_w, int64_t group_in_c, int64_t groups,
                                                            const int32_t* zp) {
    auto pc = std::make_shared<PackedConvWeights>();
    pc->out_c = out_c;
    pc->kernel_h = kernel_h;
    pc->kernel_w = kernel_w;
    pc->group_in_c = group_in_c;
    pc->groups = groups;
    pc->host = detect_cpu_features();
    const int64_t og = out_c / groups, k = kernel_h * kernel_w * group_in_c;
    for (int64_t g = 0; g < groups; ++g)
        pc->per_group.push_back(pack_weights(w + g * og * k, og, k, k, zp ? zp + g * og : nullptr, &pc->host));
    return pc;
}

// geo must be valid (checked by the caller: positive sizes, divisibility, out_h/out_w >= 1) and match w.
// y: [N*OH*OW, O] int32, or nullptr when epi is given (the result then only reaches epi, see gemm_s32).
// Returns the summed overflow count (see gemm.h). epi (optional) runs on every
// finished block of y, in y's coordinates (rows of N*OH*OW, columns of O: group g's GEMM column j is
// column g * O/groups + j).
inline int64_t conv2d_s32(const uint8_t* x, bool x_signed, int32_t x_zero_point, const PackedConvWeights& w,
                          const Conv2dGeometry& geo, int32_t* y, const GemmOptions& opt,
                          const TileEpilogue* epi = nullptr) {
    const int64_t groups = geo.groups, og = geo.group_out_c(), cg = geo.group_in_c();
    const int64_t m = geo.gemm_m();
    const int threads = resolve_threads(opt.threads);
    const bool fan_out_groups = groups > 1 && groups >= threads;
    GemmOptions inner = opt;
    if (fan_out_groups) inner.threads = 1;
    std::vector<int64_t> counts(static_cast<size_t>(groups), 0);
    auto run_group = [&](int64_t g) {
        int32_t* yg = y != nullptr ? y + g * og : nullptr;  // nullptr: result only reaches epi (gemm_s32)
        TileEpilogue group_epi;
        if (epi != nullptr) group_epi = epi->shifted(g * og);
        const TileEpilogue* ge = epi != nullptr ? &group_epi : nullptr;
        if (geo.is_pointwise()) {
            GemmActivations<DenseRows> a{DenseRows{x + g * cg, geo.in_c}, m, cg, x_signed, x_zero_point};
            counts[g] = gemm_s32(a, *w.per_group[g], yg, geo.out_c, inner, ge);
        } else {
            Im2colRows rows{x, geo, g * cg, static_cast<uint8_t>(x_zero_point & 0xFF)};
            GemmActivations<Im2colRows> a{rows, m, geo.gemm_k(), x_signed, x_zero_point};
            counts[g] = gemm_s32(a, *w.per_group[g], yg, geo.out_c, inner, ge);
        }
    };
    if (fan_out_groups) {
        parallel_for_dynamic(groups, threads, [&](int, int64_t g) { run_group(g); }, opt.pool);
    } else {
        for (int64_t g = 0; g < groups; ++g) run_group(g);
    }
    int64_t total = 0;
    for (int64_t v : counts) total += v;
    return total;
}

}  // namespace hwsim
