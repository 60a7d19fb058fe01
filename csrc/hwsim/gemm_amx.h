// AMX-INT8 GEMM kernel (Sapphire Rapids and later), EXACT mode only (AVX2_PAIRS has no AMX form; the
// driver uses the AVX-512 pairs kernel for it). Contract as in gemm_scalar.h, except that one call covers
// a whole A block (any number of rows; the block buffer is readable up to a multiple of 32 rows and is
// zero padded to a multiple of 64 bytes per row) and that B may be read up to 15 K-groups past `groups`
// (PackedWeights keeps that much slack; those bytes meet zero A bytes).
//
// TDPBUSD tmm_c, tmm_a, tmm_b: c[i][j] += sum_{q<4} zext(a[i][4g+q]) * sext(b[g][4j+q]) over the tile's 16
// K-groups, int32 accumulate without saturation (wraps), i.e. the same sums as VPDPBUSD, so the result is
// bit-identical to microkernel_exact_scalar (integer addition mod 2^32 is order independent).
// Tiling: 2 x 2 C tiles (32 rows x 32 columns of int32), A tiles 16 rows x 64 bytes (row stride lda),
// B tiles 16 K-groups x 64 bytes = 16 columns x 4 k, read straight from the packed panel (row stride 256).
// The tile configuration is loaded at the start of every call and released at its end, so no AMX state
// outlives a call.
#pragma once

#include <cstdint>

#include "hwsim/gemm_packed_weights.h"
#include "hwsim/gemm_types.h"

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__) && (defined(__clang__) || __GNUC__ >= 11)
#define HWSIM_HAVE_AMX_KERNEL 1
#include <immintrin.h>

namespace hwsim {
namespace amx_detail {

constexpr int64_t kTileRows = 16;
constexpr int64_t kTileBytes = 64;
constexpr int64_t kGroupsPerStep = kTileBytes / kKGroup;  // 16 K-groups (64 k) per TDPBUSD

struct alignas(64) TileConfig {
    uint8_t palette_id = 1;
    uint8_t start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};

#define HWSIM_TARGET_AMX __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw")))

HWSIM_TARGET_AMX inline void add_or_store(const int32_t* stage, int rows, int n_valid, int32_t* c, int64_t ldc,
                                          bool accumulate) {
    const __mmask16 m = n_valid >= 16 ? static_cast<__mmask16>(0xFFFF)
                                      : static_cast<__mmask16>((1u << (n_valid > 0 ? n_valid : 0)) - 1u);
    for (int r = 0; r < rows; ++r) {
        __m512i v = _mm512_loadu_si512(reinterpret_cast<const void*>(stage + r * 16));
        if (accumulate) v = _mm512_add_epi32(v, _mm512_maskz_loadu_epi32(m, c + r * ldc));
        _mm512_mask_storeu_epi32(c + r * ldc, m, v);
    }
}

HWSIM_TARGET_AMX inline void microkernel(const uint8_t* a, int64_t lda, int rows, int64_t groups, const int8_t* b,
                                         int32_t* c, int64_t ldc, int n_valid, bool accumulate) {
    TileConfig cfg;
    for (int t = 0; t < 4; ++t) {  // tmm0..3: C, 16 rows x 16 int32
        cfg.rows[t] = kTileRows;
        cfg.colsb[t] = kTileBytes;
    }
    for (int t = 4; t < 8; ++t) {  // tmm4..5: A (16 rows x 64 bytes); tmm6..7: B (16 groups x 64 bytes)
        cfg.rows[t] = kTileRows;
        cfg.colsb[t] = kTileBytes;
    }
    _tile_loadconfig(&cfg);
    alignas(64) int32_t stage[4][kTileRows * 16];
    const int64_t steps = (groups + kGroupsPerStep - 1) / kGroupsPerStep;
    for (int64_t r0 = 0; r0 < rows; r0 += 2 * kTileRows) {
        const uint8_t* a0 = a + r0 * lda;
        const uint8_t* a1 = a0 + kTileRows * lda;
        for (int col0 = 0; col0 < n_valid; col0 += 32) {
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            const int8_t* bc = b + col0 * kKGroup;
            for (int64_t s = 0; s < steps; ++s) {
                const int8_t* bs = bc + s * kGroupsPerStep * kPanelGroupBytes;
                _tile_loadd(4, a0 + s * kTileBytes, lda);
                _tile_loadd(5, a1 + s * kTileBytes, lda);
                _tile_loadd(6, bs, kPanelGroupBytes);
                _tile_loadd(7, bs + kTileBytes, kPanelGroupBytes);
                _tile_dpbusd(0, 4, 6);
                _tile_dpbusd(1, 4, 7);
                _tile_dpbusd(2, 5, 6);
                _tile_dpbusd(3, 5, 7);
            }
            _tile_stored(0, stage[0], 64);
            _tile_stored(1, stage[1], 64);
            _tile_stored(2, stage[2], 64);
            _tile_stored(3, stage[3], 64);
            const int rows_lo = static_cast<int>(rows - r0 < kTileRows ? rows - r0 : kTileRows);
            const int rows_hi = static_cast<int>(rows - r0 - kTileRows < kTileRows ? rows - r0 - kTileRows : kTileRows);
            int32_t* cb = c + r0 * ldc + col0;
            const int nv = n_valid - col0;
            add_or_store(stage[0], rows_lo, nv, cb, ldc, accumulate);
            if (nv > 16) add_or_store(stage[1], rows_lo, nv - 16, cb + 16, ldc, accumulate);
            if (rows_hi > 0) {
                add_or_store(stage[2], rows_hi, nv, cb + kTileRows * ldc, ldc, accumulate);
                if (nv > 16) add_or_store(stage[3], rows_hi, nv - 16, cb + kTileRows * ldc + 16, ldc, accumulate);
            }
        }
    }
    _tile_release();
}

// The tile configuration of block_32x64 (tmm0..3: C, tmm4..5: A, tmm6..7: B, all 16 rows x 64 bytes).
// Loaded once per work item by the fused driver (gemm.h, gemm_amx_blocked_s32) and released at its end.
HWSIM_TARGET_AMX inline void configure_tiles() {
    TileConfig cfg;
    for (int t = 0; t < 8; ++t) {
        cfg.rows[t] = kTileRows;
        cfg.colsb[t] = kTileBytes;
    }
    // GCC treats the configuration stores as dead (it does not see LDTILECFG read them): force them.
    __asm__ volatile("" : : "r"(&cfg) : "memory");
    _tile_loadconfig(&cfg);
}

HWSIM_TARGET_AMX inline void release_tiles() { _tile_release(); }

// 32 rows x (32 * halves) columns of one packed-B panel over all `steps` 64-byte K steps, accumulated in
// the tiles from zero (one TDPBUSD chain per C tile: the int32 wrap-around sum of every k, as VPDPBUSD),
// stored to out (row stride 64 int32). a0: rows 0..15, a1: rows 16..31 (row stride lda, steps * 64
// readable bytes per row; bytes past K must be 0 or meet zero weights). Needs configure_tiles().
HWSIM_TARGET_AMX inline void block_32x64(const uint8_t* a0, const uint8_t* a1, int64_t lda, int64_t steps,
                                         const int8_t* panel, int32_t* out, int halves) {
    constexpr int64_t kOutStride = 64 * sizeof(int32_t);
    for (int h = 0; h < halves; ++h) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        const int8_t* bc = panel + h * 32 * kKGroup;
        for (int64_t s = 0; s < steps; ++s) {
            const int8_t* bs = bc + s * kGroupsPerStep * kPanelGroupBytes;
            _tile_loadd(4, a0 + s * kTileBytes, lda);
            _tile_loadd(6, bs, kPanelGroupBytes);
            _tile_loadd(7, bs + kTileBytes, kPanelGroupBytes);
            _tile_loadd(5, a1 + s * kTileBytes, lda);
            _tile_dpbusd(0, 4, 6);
            _tile_dpbusd(1, 4, 7);
            _tile_dpbusd(2, 5, 6);
            _tile_dpbusd(3, 5, 7);
        }
        int32_t* o = out + h * 32;
        _tile_stored(0, o, kOutStride);
        _tile_stored(1, o + 16, kOutStride);
        _tile_stored(2, o + kTileRows * 64, kOutStride);
        _tile_stored(3, o + kTileRows * 64 + 16, kOutStride);
    }
}

#undef HWSIM_TARGET_AMX

}  // namespace amx_detail

inline void microkernel_exact_amx(const uint8_t* a, int64_t lda, int rows, int64_t groups, const int8_t* b, int32_t* c,
                                  int64_t ldc, int n_valid, bool accumulate) {
    amx_detail::microkernel(a, lda, rows, groups, b, c, ldc, n_valid, accumulate);
}

}  // namespace hwsim
#endif
