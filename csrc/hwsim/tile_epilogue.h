// A hook called on finished blocks of an int32 result (a GEMM / convolution output tile), so that a
// consumer such as requantization can read each block while it is hot in cache, on the thread that
// computed it. The producer guarantees: when the hook runs on a tile, every element of it is final
// (all K blocks and zero-point compensation done); tiles are disjoint; hooks of different tiles may run
// concurrently. The hook must only write memory that belongs to its tile.
#pragma once

#include <algorithm>
#include <cstdint>

#include "hwsim/parallel.h"

namespace hwsim {

// The one epilogue GEMM kernels can also apply to accumulator registers, without storing the int32 tile:
// float-scale requantization to 8-bit codes (FloatRequantEpilogue, requantize_epilogue.h), per column c
//   q = int8/uint8( round_half_even(min(hi[c], max(lo[c], float(wrap32(acc + bias[c])) * scale[c]))) + zp[c] )
// (clamped, so the 8-bit truncation never changes the value). Arrays are indexed by the owner's column.
struct FloatRequantRegisters {
    const int32_t* bias = nullptr;  // nullptr: no bias
    const float* scale = nullptr;
    const float* lo = nullptr;
    const float* hi = nullptr;
    const int32_t* zp = nullptr;
    uint8_t* out = nullptr;  // the owner's [rows, columns] 8-bit output
    int64_t ldo = 0;
};

struct TileEpilogue {
    // tile points at result element (row0, col0) of an int32 array with row stride ldc; the tile spans
    // rows [row0, row0 + rows) and columns [col0, col0 + cols) in the coordinates of the hook's owner
    // (the producer's columns + col_offset: group g of a grouped convolution adds g * O/groups).
    using Fn = void (*)(const void* ctx, const int32_t* tile, int64_t ldc, int64_t row0, int64_t rows, int64_t col0,
                        int64_t cols);
    Fn fn = nullptr;
    const void* ctx = nullptr;
    int64_t col_offset = 0;
    // Optional: the same epilogue in register form. A producer may apply it instead of calling fn (the
    // integers are the same); columns are then shifted by col_offset as for fn.
    const FloatRequantRegisters* registers = nullptr;

    void operator()(const int32_t* tile, int64_t ldc, int64_t row0, int64_t rows, int64_t col0, int64_t cols) const {
        fn(ctx, tile, ldc, row0, rows, col0 + col_offset, cols);
    }
    TileEpilogue shifted(int64_t cols) const {
        TileEpilogue e = *this;
        e.col_offset += cols;
        return e;
    }
};

// Applies epi to a whole finished [m, n] result (row stride ldc) in blocks of rows, on `threads` threads:
// the form used after paths that do not produce tiles (sequential / narrow-accumulator GEMMs).
inline void apply_tile_epilogue(const TileEpilogue& epi, const int32_t* c, int64_t ldc, int64_t m, int64_t n,
                                int threads) {
    if (m <= 0 || n <= 0) return;
    const int64_t rows_per_item = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(n, 1));
    const int64_t items = (m + rows_per_item - 1) / rows_per_item;
    parallel_for_dynamic(items, threads, [&](int, int64_t i) {
        const int64_t r0 = i * rows_per_item, r = std::min(rows_per_item, m - r0);
        epi(c + r0 * ldc, ldc, r0, r, 0, n);
    });
}

}  // namespace hwsim
