// Float-scale requantization as a TileEpilogue (tile_epilogue.h): a GEMM / convolution hands every
// finished int32 tile to it and it writes the requantized tile of `out` (same row/column coordinates,
// row stride ldo), so the int32 result is read once, while hot, on the thread that produced it. The
// arithmetic is exactly ApplyRequantizeFloat of requantize.h (and so exactly RequantizeFloat on the whole
// array: every element depends only on its own accumulator and its channel's constants).
#pragma once

#include <cstdint>

#include "hwsim/requantize.h"
#include "hwsim/tile_epilogue.h"

namespace hwsim {

template <typename Real, typename Out>
struct FloatRequantEpilogue {
    const FloatRequantPlan<Real>* plan = nullptr;
    Out* out = nullptr;
    int64_t ldo = 0;

    static void run(const void* ctx, const int32_t* tile, int64_t ldc, int64_t row0, int64_t rows, int64_t col0,
                    int64_t cols) {
        const auto* self = static_cast<const FloatRequantEpilogue*>(ctx);
        ApplyRequantizeFloat<Real, Out>(*self->plan, tile, ldc, row0, rows, col0, cols,
                                        self->out + row0 * self->ldo + col0, self->ldo);
    }

    // The hook; valid while this object (and the plan) live.
    TileEpilogue hook() const {
        TileEpilogue e;
        e.fn = &FloatRequantEpilogue::run;
        e.ctx = this;
        return e;
    }
};

}  // namespace hwsim
