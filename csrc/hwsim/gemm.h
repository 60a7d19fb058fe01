// Integer GEMM engine: C[M, N] (int32) from activations A[M, K] (uint8 or int8) and weights B[N, K] (int8).
//
// Semantics (the contract every ISA path and hwsim/emulate/ref_gemm.py implement bit for bit)
// ------------------------------------------------------------------------------------------
// Let a_zp be the activation zero point (in [0, 255] for uint8 A, [-128, 127] for int8 A) and b_zp[n] the
// weight zero point of output channel n (in [-128, 127]; scalar = same for every n). 4-bit and 2-bit
// values are just small values in the 8-bit lanes; they take the same path at the same speed.
//
// GemmMode::Exact
//   term t_k = (a[m,k] - a_zp) * (b[n,k] - b_zp[n]), k ascending.
//   acc_bits = 32, Wrap (default): C = sum_k t_k wrapped to int32, i.e. exact whenever the exact sum fits
//   int32 and otherwise the two's-complement wrap-around VPDPBUSD/VPADDD produce (|t_k| <= 255 * 255, so
//   this needs K > 33025 for extreme data).
// GemmMode::Avx2Pairs (the non-VNNI x86 kernels of oneDNN / MLAS / FBGEMM)
//   a' = a for uint8 A; a' = a + 128 for int8 A (the engines' s8s8 handling: make A unsigned, compensate
//   128 * sum_k b exactly; this is the definition for int8 A), a_zp' = a_zp (+ 128 for int8 A).
//   pair term p_i = sat16(a'[2i] * b[2i] + a'[2i+1] * b[2i+1]) (VPMADDUBSW; pairs are k = 2i, 2i+1 of the
//   K order given; an odd K's last element forms a pair with a zero), accumulated in i order;
//   then C = wrap32(acc + comp), comp = -a_zp' * sum_k b[n,k] - b_zp[n] * sum_k a'[m,k] + K * a_zp' * b_zp[n]
//   computed exactly (the engines' row/column offset compensation, added in int32).
// Narrow accumulators (acc_bits in [8, 32]) act on the accumulated sequence: the terms t_k in Exact mode,
// the pair terms p_i in Avx2Pairs mode (comp is then added in int32, as FBGEMM's acc16 path does).
//   Wrap: the exact sum, wrapped once to acc_bits (order independent), sign-extended to int32.
//   Saturate: acc = clamp(acc + term) to [-2^(acc_bits-1), 2^(acc_bits-1) - 1] after every term, starting
//   from 0, in ascending order (sequential; runs on the scalar sequential path unless bounds from the
//   data prove that no partial sum can leave the range, in which case it equals Wrap and Exact).
// Overflow count (count_overflow): the number of outputs for which
//   Exact:      Saturate: at least one addition was clamped; Wrap: the exact sum lies outside acc_bits.
//   Avx2Pairs:  at least one pair saturated to int16, or the accumulator overflowed as above, or the final
//               int32 add of comp wrapped.
//
// Paths: ISA kernels (scalar / AVX2 / AVX-512 VNNI / AMX-INT8; AMX runs Avx2Pairs on the AVX-512 kernel)
// compute the acc_bits = 32 Wrap result with blocking (A block of <= 192 rows x K block of 512, or 2048 for
// AMX; B in 64-column panels) and threads (tiles of the M x N plane, handed out dynamically). Other
// settings are served by the same kernels when data bounds prove that nothing can overflow (or, for
// Exact + Wrap, that the exact sum fits int32: wrapped afterwards), else by the sequential int64 scalar
// path (slow, exact). Results never depend on the ISA, the thread count or the blocking.
// An optional TileEpilogue (tile_epilogue.h) sees every finished tile of C (blocked paths: each
// work item's mc rows x panel range, on its thread; other paths: the whole result afterwards).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "hwsim/cpu_features.h"
#include "hwsim/gemm_amx.h"
#include "hwsim/gemm_avx2.h"
#include "hwsim/gemm_avx512vnni.h"
#include "hwsim/gemm_avx512vnni_requant.h"
#include "hwsim/gemm_compensation.h"
#include "hwsim/gemm_packed_weights.h"
#include "hwsim/gemm_scalar.h"
#include "hwsim/gemm_types.h"
#include "hwsim/im2col.h"
#include "hwsim/parallel.h"
#include "hwsim/tile_epilogue.h"

namespace hwsim {

// Activation operand as the driver sees it: a row source plus dtype and zero point.
template <class Rows>
struct GemmActivations {
    Rows rows;
    int64_t m = 0;
    int64_t k = 0;
    bool is_signed = false;  // int8 A (bit patterns are shifted by +128 while packing)
    int32_t zero_point = 0;
};

inline GemmMicroKernel select_microkernel(GemmIsa isa, GemmMode mode) {
    const bool pairs = mode == GemmMode::Avx2Pairs;
#if defined(HWSIM_HAVE_AMX_KERNEL)
    if (isa == GemmIsa::Amx) return pairs ? microkernel_pairs_avx512 : microkernel_exact_amx;
#endif
#if defined(__x86_64__) || defined(_M_X64)
    if (isa == GemmIsa::Avx512Vnni) return pairs ? microkernel_pairs_avx512 : microkernel_exact_avx512vnni;
    if (isa == GemmIsa::Avx2) return pairs ? microkernel_pairs_avx2 : microkernel_exact_avx2;
#endif
    return pairs ? microkernel_pairs_scalar : microkernel_exact_scalar;
}

namespace gemm_detail {

constexpr int64_t kBlockK = 512;    // K block: one packed-B panel slice is 64 x 512 bytes = 32 KiB (L1)
constexpr int64_t kBlockKAmx = 2048;  // AMX: longer K blocks amortise the tile store + add of C
constexpr int64_t kMaxBlockM = 192;  // M block: packed A block of 192 x 512 (AMX: 2048) bytes, in L2

// Short K runs the VNNI kernel instead of AMX when K <= kAmxMinK, or K <= kAmxNarrowK with at most
// kAmxNarrowN columns (see gemm_blocked_s32).
constexpr int64_t kAmxMinK = 16;
constexpr int64_t kAmxNarrowK = 32;
constexpr int64_t kAmxNarrowN = 32;
// AMX work per extra pool worker, in units of one output (its requantization) plus 64 MACs: below it the
// second core costs more (tile configuration, its share of A and B pulled into its caches) than it saves.
constexpr int64_t kAmxMinUnitsPerPoolWorker = int64_t{170} << 10;
constexpr int64_t kMinMacsPerWorker = int64_t{3} << 20;  // ~10 us of VNNI/AMX work per extra thread
// With a WorkerPool the extra workers are already running (spinning between jobs): handing them work
// costs about a microsecond, not a thread start.
constexpr int64_t kMinMacsPerPoolWorker = int64_t{1} << 17;

// The thread count for an m x n x k GEMM: one worker per kMinMacsPerWorker MACs, or with a pool per
// kMinMacsPerPoolWorker MACs (AMX: per kAmxMinUnitsPerPoolWorker units of one output plus 64 MACs); at most
// `threads` (resolved), at least 1. Only the speed depends on it, never the result.
inline int work_limited_threads(int threads, int64_t m, int64_t n, int64_t k, bool pooled, bool amx) {
    const int64_t macs = m * n * std::max<int64_t>(k, 1);
    const int64_t by_work = !pooled ? macs / kMinMacsPerWorker
                            : amx   ? (m * n + macs / 64) / kAmxMinUnitsPerPoolWorker
                                    : macs / kMinMacsPerPoolWorker;
    return static_cast<int>(std::min<int64_t>(resolve_threads(threads), std::max<int64_t>(1, by_work)));
}

// Row stride of a packed A block: whole 64-byte AMX tile rows.
inline int64_t a_block_stride(int64_t kc) { return (kc + 63) / 64 * 64; }

// Work items of a blocked GEMM. M is cut into one contiguous chunk of rows per worker (chunk starts on
// whole multiples of `granule` rows), each chunk into m_sub tiles of at most mc rows, each tile into
// n_tiles ranges of nc_panels panels. Items are numbered chunk by chunk, so the per-worker item ranges of
// parallel_for_dynamic are exactly the chunks: with a pool, a worker computes the same rows of every
// layer's output and reads, in the next layer, rows it wrote itself (parallel.h). An item may be empty
// (mr <= 0) when M is tiny.
struct Tiling {
    int64_t m = 0, chunks = 1, granule = 1, m_sub = 1, mc = 0, nc_panels = 1, n_tiles = 1, panels = 0;

    int64_t items() const { return chunks * m_sub * n_tiles; }
    int64_t chunk_begin(int64_t c) const { return c >= chunks ? m : m * c / chunks / granule * granule; }
    // Rows [*m0, *m0 + *mr) and panels [*p0, *p1) of item i.
    void item(int64_t i, int64_t* m0, int64_t* mr, int64_t* p0, int64_t* p1) const {
        const int64_t per_chunk = m_sub * n_tiles;
        const int64_t c = i / per_chunk, l = i % per_chunk, ms = l / n_tiles, nt = l % n_tiles;
        *m0 = chunk_begin(c) + ms * mc;
        *mr = std::min(mc, chunk_begin(c + 1) - *m0);
        *p0 = nt * nc_panels;
        *p1 = std::min(panels, *p0 + nc_panels);
    }
};

// Tiles of at most max_rows rows (a multiple of granule) x at most max_nc panels, one row chunk per
// thread; with several threads every chunk has at least two items where the shape allows, so a worker
// that finishes first has something to take over.
inline Tiling choose_tiling(int64_t m, int64_t panels, int threads, int64_t granule, int64_t max_rows,
                            int64_t max_nc) {
    auto ceil_div = [](int64_t v, int64_t d) { return (v + d - 1) / d; };
    Tiling t;
    t.m = std::max<int64_t>(m, 0);
    t.panels = std::max<int64_t>(panels, 1);
    t.chunks = std::max(1, threads);
    t.granule = m / t.chunks >= granule ? granule : kMicroRows;
    // Fewer rows than one micro-kernel call per worker (a dense layer at batch 1): one chunk, split by N.
    const bool split_n = t.chunks > 1 && m / t.chunks < kMicroRows;
    if (split_n) t.chunks = 1;
    int64_t rows = 0;  // the largest chunk
    for (int64_t c = 0; c < t.chunks; ++c) rows = std::max(rows, t.chunk_begin(c + 1) - t.chunk_begin(c));
    rows = std::max<int64_t>(rows, 1);
    t.nc_panels = std::min(t.panels, max_nc);
    t.n_tiles = ceil_div(t.panels, t.nc_panels);
    t.m_sub = ceil_div(rows, max_rows);
    if (split_n) {
        t.nc_panels = std::max<int64_t>(1, std::min(t.nc_panels, t.panels / (2 * int64_t{threads})));
        t.n_tiles = ceil_div(t.panels, t.nc_panels);
    } else if (threads > 1 && t.m_sub * t.n_tiles < 2) {
        if (t.panels > 1) {
            t.nc_panels = ceil_div(t.panels, 2);
            t.n_tiles = ceil_div(t.panels, t.nc_panels);
        } else if (rows >= 4 * t.granule) {
            t.m_sub = 2;
        }
    }
    t.mc = ceil_div(ceil_div(rows, t.m_sub), t.granule) * t.granule;
    return t;
}

// Copies rows [m0, m0 + mr) x columns [k0, k0 + kc) of A into a row-major block (row stride
// lda = kc rounded up to 64 bytes), adding +128 to int8 bit patterns (XOR 0x80), zero padding to lda.
// row_sum[r] += sum of the a' values copied for row m0 + r.
template <class Rows>
void pack_a_block(const GemmActivations<Rows>& a, int64_t m0, int64_t mr, int64_t k0, int64_t kc, uint8_t* dst,
                  int32_t* row_sum, bool want_row_sum) {
    const int64_t lda = a_block_stride(kc);
    a.rows.copy_rows(m0, mr, k0, kc, dst, lda);
    for (int64_t r = 0; r < mr; ++r) {
        uint8_t* row = dst + r * lda;
        if (a.is_signed)
            for (int64_t k = 0; k < kc; ++k) row[k] ^= 0x80;
        if (lda > kc) std::memset(row + kc, 0, static_cast<size_t>(lda - kc));
        if (want_row_sum) {
            int32_t s = 0;
            for (int64_t k = 0; k < kc; ++k) s += row[k];
            row_sum[r] += s;
        }
    }
}

}  // namespace gemm_detail

#if defined(HWSIM_HAVE_AMX_KERNEL)
namespace gemm_detail {

constexpr int64_t kAmxGroupRows = 32;            // rows of one block_32x64 call (2 A tiles)
constexpr int64_t kAmxABlockBytes = 256 << 10;   // packed A block budget of one work item (L2)
constexpr int64_t kAmxMaxGroups = 6;             // at most 192 rows per work item

// Work items of whole 32-row groups (at most the A block budget) x all panels, split as choose_tiling
// does: every item packs (gathers) its A block once for all of its panels, while B is already packed.
inline Tiling choose_amx_tiling(int64_t m, int64_t panels, int64_t lda, int threads) {
    const int64_t cap = std::max<int64_t>(1, std::min<int64_t>(kAmxMaxGroups, kAmxABlockBytes / (kAmxGroupRows * lda)));
    return choose_tiling(m, panels, threads, kAmxGroupRows, cap * kAmxGroupRows, std::max<int64_t>(panels, 1));
}

}  // namespace gemm_detail

// EXACT mode on AMX-INT8 (K past the VNNI cut-offs above): the acc_bits = 32 Wrap result, the same integers as every other
// path (the int32 wrap-around sum of all k; addition mod 2^32 is order independent). Every 32 x 64 block of
// C is accumulated over the whole of K inside the tiles (no partial sums in memory), stored once to an
// L1 scratch block, compensated (gemm_compensation.h) and handed to epi (or copied to c) right away.
// A is packed per work item (all of K, +128 for int8 A); a dense uint8 A whose K is a multiple of 64 with
// all-zero weight zero points (no row sums needed) is read by the tile loads in place, except for a last
// group of fewer than 32 rows, which is copied so that no load reads past the end of A.
template <class Rows>
void gemm_amx_blocked_s32(const GemmActivations<Rows>& a, const PackedWeights& b, int32_t* c, int64_t ldc,
                          int threads, const TileEpilogue* epi, WorkerPool* pool) {
    const int64_t m = a.m, n = b.n, k = b.k;
    const int64_t lda_p = gemm_detail::a_block_stride(k);
    const int64_t steps = lda_p / amx_detail::kTileBytes;
    const gemm_detail::Tiling t = gemm_detail::choose_amx_tiling(m, b.panels, lda_p, resolve_threads(threads));
    const int64_t n_items = t.items();
    const int workers = parallel_workers(n_items, threads);
    const bool need_row_sum = !b.zero_point_all_zero;
    bool direct = false;
    const uint8_t* a_base = nullptr;
    int64_t a_ld = 0;
    if constexpr (std::is_same<Rows, DenseRows>::value) {
        direct = !a.is_signed && !need_row_sum && k % amx_detail::kTileBytes == 0;
        a_base = a.rows.base;
        a_ld = a.rows.lda;
    }
    const int64_t block_rows = direct ? gemm_detail::kAmxGroupRows : t.mc;
    std::vector<AlignedBuffer<uint8_t>> a_blocks;
    std::vector<AlignedBuffer<int32_t>> stages;
    std::vector<std::vector<int32_t>> row_sums;
    for (int w = 0; w < workers; ++w) {
        a_blocks.push_back(make_aligned_buffer<uint8_t>(block_rows * lda_p));
        stages.push_back(make_aligned_buffer<int32_t>(gemm_detail::kAmxGroupRows * kPanelCols));
        row_sums.emplace_back(static_cast<size_t>(t.mc), 0);
    }
    const int32_t a_zp_shifted = a.zero_point + (a.is_signed ? 128 : 0);
    const GemmCompensation comp(b, a_zp_shifted);

    parallel_for_dynamic(n_items, threads, [&](int worker, int64_t item) {
        int64_t m0, mr, p_begin, p_end;
        t.item(item, &m0, &mr, &p_begin, &p_end);
        if (mr <= 0) return;
        uint8_t* a_block = a_blocks[worker].get();
        int32_t* stage = stages[worker].get();
        int32_t* row_sum = row_sums[worker].data();
        if (!direct) {
            std::fill(row_sum, row_sum + mr, 0);
            gemm_detail::pack_a_block(a, m0, mr, 0, k, a_block, row_sum, need_row_sum);
        } else if (mr % gemm_detail::kAmxGroupRows != 0) {
            const int64_t r_tail = mr / gemm_detail::kAmxGroupRows * gemm_detail::kAmxGroupRows;
            a.rows.copy_rows(m0 + r_tail, mr - r_tail, 0, k, a_block, lda_p);
        }
        amx_detail::configure_tiles();
        for (int64_t p = p_begin; p < p_end; ++p) {
            const int64_t n0 = p * kPanelCols;
            const int64_t nv = std::min<int64_t>(kPanelCols, n - n0);
            const int halves = nv > 32 ? 2 : 1;
            for (int64_t r0 = 0; r0 < mr; r0 += gemm_detail::kAmxGroupRows) {
                const int64_t rows = std::min<int64_t>(gemm_detail::kAmxGroupRows, mr - r0);
                const uint8_t* a0 = a_block + r0 * lda_p;
                int64_t la = lda_p;
                if (direct) {
                    if (rows == gemm_detail::kAmxGroupRows) {
                        a0 = a_base + (m0 + r0) * a_ld;
                        la = a_ld;
                    } else {
                        a0 = a_block;
                    }
                }
                amx_detail::block_32x64(a0, a0 + amx_detail::kTileRows * la, la, steps, b.panel(p), stage, halves);
                add_gemm_compensation(comp, GemmIsa::Amx, stage, kPanelCols, rows, n0, nv, row_sum + r0);
                if (c != nullptr) {
                    int32_t* ct = c + (m0 + r0) * ldc + n0;
                    for (int64_t r = 0; r < rows; ++r)
                        std::memcpy(ct + r * ldc, stage + r * kPanelCols, static_cast<size_t>(nv) * sizeof(int32_t));
                    if (epi != nullptr) (*epi)(ct, ldc, m0 + r0, rows, n0, nv);
                } else {
                    (*epi)(stage, kPanelCols, m0 + r0, rows, n0, nv);
                }
            }
        }
        amx_detail::release_tiles();
    }, pool);
}
#endif

// The acc_bits = 32 Wrap result of `mode` with the kernels of `isa` (blocked, threaded). C rows have
// stride ldc; only columns [0, b.n) are written. epi (optional) runs on every finished tile of C (one
// mc-row block x panel range per work item), on the thread that computed it. c == nullptr (only with an
// epi): every tile is computed into per-worker scratch memory and handed to epi from there, so the whole
// int32 result is never written to memory.
template <class Rows>
void gemm_blocked_s32(const GemmActivations<Rows>& a, const PackedWeights& b, int32_t* c, int64_t ldc, GemmMode mode,
                      GemmIsa isa, int threads, const TileEpilogue* epi = nullptr, WorkerPool* pool = nullptr) {
    const int64_t m = a.m, n = b.n, k = b.k;
    if (m <= 0 || n <= 0) return;
    // AMX pads K to whole 64-byte tile rows and N to 64-column panels: with very short K, or short K and
    // few columns, most of every TDPBUSD multiplies padding and the VNNI kernel (same integers: both wrap
    // the exact int32 sum), which requantizes from its registers, is faster (measured on Sapphire Rapids:
    // 12544x16x96 and 12544x32x16 faster on VNNI, 3136x24x144 and 784x32x192 on AMX).
    if (isa == GemmIsa::Amx && mode == GemmMode::Exact &&
        (k <= gemm_detail::kAmxMinK || (k <= gemm_detail::kAmxNarrowK && n <= gemm_detail::kAmxNarrowN)))
        isa = GemmIsa::Avx512Vnni;
    // Starting a thread costs tens of microseconds, handing work to a pool's worker a few: small GEMMs run
    // on fewer workers.
    const bool amx_exact = isa == GemmIsa::Amx && mode == GemmMode::Exact;
    threads = gemm_detail::work_limited_threads(threads, m, n, k, pool != nullptr, amx_exact);
#if defined(HWSIM_HAVE_AMX_KERNEL)
    if (amx_exact) return gemm_amx_blocked_s32(a, b, c, ldc, threads, epi, pool);
#endif
    const GemmMicroKernel kernel = select_microkernel(isa, mode);
    const gemm_detail::Tiling t = gemm_detail::choose_tiling(m, b.panels, resolve_threads(threads), kMicroRows,
                                                             gemm_detail::kMaxBlockM, 8);
    const int64_t n_items = t.items();
    const int workers = parallel_workers(n_items, threads);
    const int64_t block_k = amx_exact ? gemm_detail::kBlockKAmx : gemm_detail::kBlockK;
    const int64_t kc_max = std::min<int64_t>(block_k, std::max<int64_t>(b.kp, kKGroup));
    // AMX tiles read A in 32-row steps: the block buffer has whole 32-row groups (spare rows are ignored).
    const int64_t a_block_bytes = (t.mc + 31) / 32 * 32 * gemm_detail::a_block_stride(kc_max);
    const int64_t rows_per_call = amx_exact ? t.mc : kMicroRows;
    const bool scratch_c = c == nullptr;
    // One K block (most convolutions): every micro-tile is final when its kernel call returns, so it is
    // compensated and handed to epi right away, from L1 (in scratch_c mode from a micro-tile buffer: the
    // int32 result never leaves L1). Longer K: whole item tiles, finished after the last K block.
    const bool one_pass = k > 0 && k <= kc_max && !amx_exact;
    // The epilogue's register form on VNNI: requantized straight from the accumulators, whose start values
    // carry the compensation and the bias (gemm_avx512vnni_requant.h); no int32 tile at all.
    bool in_registers = false;
#if defined(HWSIM_HAVE_VNNI_REQUANT_KERNEL)
    in_registers = one_pass && scratch_c && epi != nullptr && epi->registers != nullptr && mode == GemmMode::Exact &&
                   isa == GemmIsa::Avx512Vnni;
#endif
    const int64_t scratch_ldc = one_pass ? kPanelCols : t.nc_panels * kPanelCols;
    const int64_t scratch_rows = one_pass ? kMicroRows : t.mc;
    std::vector<AlignedBuffer<uint8_t>> a_blocks;
    std::vector<AlignedBuffer<int32_t>> c_tiles;
    std::vector<std::vector<int32_t>> row_sums;
    for (int w = 0; w < workers; ++w) {
        a_blocks.push_back(make_aligned_buffer<uint8_t>(a_block_bytes));
        row_sums.emplace_back(static_cast<size_t>(t.mc), 0);
        if (scratch_c && !in_registers) c_tiles.push_back(make_aligned_buffer<int32_t>(scratch_rows * scratch_ldc));
    }
    const int32_t a_zp_shifted = a.zero_point + (a.is_signed ? 128 : 0);
    const bool need_row_sum = !b.zero_point_all_zero;
    const GemmCompensation comp(b, a_zp_shifted);
    std::vector<int32_t> acc_init;
#if defined(HWSIM_HAVE_VNNI_REQUANT_KERNEL)
    if (in_registers) {
        const int32_t* bias = epi->registers->bias;
        acc_init.resize(static_cast<size_t>(b.panels * kPanelCols), 0);
        for (int64_t j = 0; j < n; ++j)
            acc_init[j] = wrapping_add_i32(comp.needed ? comp.col_comp[j] : 0,
                                           bias != nullptr ? bias[j + epi->col_offset] : 0);
    }
#endif

    parallel_for_dynamic(n_items, threads, [&](int worker, int64_t item) {
        int64_t m0, mr, p_begin, p_end;
        t.item(item, &m0, &mr, &p_begin, &p_end);
        if (mr <= 0) return;
        if (one_pass) {
            uint8_t* a_block = a_blocks[worker].get();
            int32_t* row_sum = row_sums[worker].data();
            std::fill(row_sum, row_sum + mr, 0);
            gemm_detail::pack_a_block(a, m0, mr, 0, k, a_block, row_sum, need_row_sum);
            const int64_t lda = gemm_detail::a_block_stride(k), groups = (k + kKGroup - 1) / kKGroup;
            for (int64_t p = p_begin; p < p_end; ++p) {
                const int64_t n0 = p * kPanelCols;
                const int nv = static_cast<int>(std::min<int64_t>(kPanelCols, n - n0));
                for (int64_t r0 = 0; r0 < mr; r0 += kMicroRows) {
                    const int rows = static_cast<int>(std::min<int64_t>(kMicroRows, mr - r0));
#if defined(HWSIM_HAVE_VNNI_REQUANT_KERNEL)
                    if (in_registers) {
                        microkernel_exact_requant_avx512vnni(
                            a_block + r0 * lda, lda, rows, groups, b.panel(p), acc_init.data() + n0,
                            comp.neg_zb.empty() ? nullptr : comp.neg_zb.data() + n0, row_sum + r0, *epi->registers,
                            n0 + epi->col_offset, m0 + r0, nv);
                        continue;
                    }
#endif
                    int32_t* dst = scratch_c ? c_tiles[worker].get() : c + (m0 + r0) * ldc + n0;
                    const int64_t ld = scratch_c ? scratch_ldc : ldc;
                    kernel(a_block + r0 * lda, lda, rows, groups, b.panel(p), dst, ld, nv, false);
                    add_gemm_compensation(comp, isa, dst, ld, rows, n0, nv, row_sum + r0);
                    if (epi != nullptr) (*epi)(dst, ld, m0 + r0, rows, n0, nv);
                }
            }
            return;
        }
        const int64_t col0 = p_begin * kPanelCols, col1 = std::min(n, p_end * kPanelCols);
        // The tile's (row m0, column col0) element and row stride.
        int32_t* ct = scratch_c ? c_tiles[worker].get() : c + m0 * ldc + col0;
        const int64_t lc = scratch_c ? scratch_ldc : ldc;
        uint8_t* a_block = a_blocks[worker].get();
        int32_t* row_sum = row_sums[worker].data();
        std::fill(row_sum, row_sum + mr, 0);
        if (k == 0) {
            for (int64_t r = 0; r < mr; ++r) std::fill(ct + r * lc, ct + r * lc + (col1 - col0), 0);
        }
        for (int64_t k0 = 0; k0 < k; k0 += kc_max) {
            const int64_t kc = std::min(kc_max, k - k0);
            const int64_t groups = (kc + kKGroup - 1) / kKGroup;
            gemm_detail::pack_a_block(a, m0, mr, k0, kc, a_block, row_sum, need_row_sum);
            const int64_t lda = gemm_detail::a_block_stride(kc);
            for (int64_t p = p_begin; p < p_end; ++p) {
                const int64_t n0 = p * kPanelCols;
                const int nv = static_cast<int>(std::min<int64_t>(kPanelCols, n - n0));
                const int8_t* bp = b.panel(p) + (k0 / kKGroup) * kPanelGroupBytes;
                for (int64_t p0 = 0; p0 < mr; p0 += rows_per_call) {
                    const int rows = static_cast<int>(std::min<int64_t>(rows_per_call, mr - p0));
                    kernel(a_block + p0 * lda, lda, rows, groups, bp, ct + p0 * lc + (n0 - col0), lc, nv, k0 > 0);
                }
            }
        }
        add_gemm_compensation(comp, isa, ct, lc, mr, col0, col1 - col0, row_sum);
        if (epi != nullptr) (*epi)(ct, lc, m0, mr, col0, col1 - col0);
    }, pool);
}

// The sequential int64 path: every mode, acc_bits and overflow rule exactly as specified above, with the
// overflow count. Parallel over rows only (each output's accumulation stays in order).
template <class Rows>
int64_t gemm_sequential_s32(const GemmActivations<Rows>& a, const PackedWeights& b, int32_t* c, int64_t ldc,
                            const GemmOptions& opt) {
    const int64_t m = a.m, n = b.n, k = b.k;
    if (m <= 0 || n <= 0) return 0;
    std::vector<int8_t> b_rows(static_cast<size_t>(n * k));
    for (int64_t row = 0; row < n; ++row)
        for (int64_t col = 0; col < k; ++col) b_rows[row * k + col] = b.at(row, col);
    const int64_t hi = (int64_t{1} << (opt.acc_bits - 1)) - 1, lo = -hi - 1;
    const bool pairs = opt.mode == GemmMode::Avx2Pairs;
    const bool saturate = opt.overflow == AccOverflow::Saturate;
    const int64_t a_zp_shifted = a.zero_point + (a.is_signed ? 128 : 0);
    std::atomic<int64_t> count{0};
    const int64_t chunk = 16;
    const int64_t n_items = (m + chunk - 1) / chunk;
    const int workers = parallel_workers(n_items, opt.threads);
    std::vector<std::vector<uint8_t>> raw_rows(workers, std::vector<uint8_t>(static_cast<size_t>(k) + 1));
    std::vector<std::vector<int64_t>> val_rows(workers, std::vector<int64_t>(static_cast<size_t>(k) + 1));
    parallel_for_dynamic(n_items, opt.threads, [&](int worker, int64_t item) {
        int64_t local = 0;
        uint8_t* raw = raw_rows[worker].data();
        int64_t* av = val_rows[worker].data();  // a' (Avx2Pairs) or a - a_zp (Exact)
        for (int64_t row = item * chunk; row < std::min(m, (item + 1) * chunk); ++row) {
            a.rows.copy_row(row, 0, k, raw);
            int64_t a_sum = 0;
            for (int64_t col = 0; col < k; ++col) {
                const int64_t v = a.is_signed ? static_cast<int64_t>(static_cast<int8_t>(raw[col])) : raw[col];
                av[col] = pairs ? v + (a.is_signed ? 128 : 0) : v - a.zero_point;
                a_sum += av[col];
            }
            for (int64_t col_n = 0; col_n < n; ++col_n) {
                const int8_t* bn = b_rows.data() + col_n * k;
                const int64_t zb = b.zero_point[col_n];
                bool overflowed = false;
                int64_t acc = 0;
                if (!pairs) {
                    for (int64_t kk = 0; kk < k; ++kk) {
                        acc += av[kk] * (static_cast<int64_t>(bn[kk]) - zb);
                        if (saturate && (acc > hi || acc < lo)) {
                            acc = acc > hi ? hi : lo;
                            overflowed = true;
                        }
                    }
                } else {
                    int64_t b_sum = 0;
                    for (int64_t kk = 0; kk < k; kk += 2) {
                        int64_t p = av[kk] * bn[kk];
                        b_sum += bn[kk];
                        if (kk + 1 < k) {
                            p += av[kk + 1] * bn[kk + 1];
                            b_sum += bn[kk + 1];
                        }
                        if (p > 32767 || p < -32768) {
                            p = p > 32767 ? 32767 : -32768;
                            overflowed = true;
                        }
                        acc += p;
                        if (saturate && (acc > hi || acc < lo)) {
                            acc = acc > hi ? hi : lo;
                            overflowed = true;
                        }
                    }
                    if (!saturate && (acc > hi || acc < lo)) overflowed = true;
                    acc = wrap_to_bits(acc, opt.acc_bits);
                    const int64_t comp = -a_zp_shifted * b_sum - zb * a_sum + k * a_zp_shifted * zb;
                    const int64_t total = acc + comp;
                    if (total > std::numeric_limits<int32_t>::max() || total < std::numeric_limits<int32_t>::min())
                        overflowed = true;
                    acc = wrap_to_bits(total, 32);
                    c[row * ldc + col_n] = static_cast<int32_t>(acc);
                    local += overflowed ? 1 : 0;
                    continue;
                }
                if (!saturate && (acc > hi || acc < lo)) overflowed = true;
                c[row * ldc + col_n] = static_cast<int32_t>(wrap_to_bits(acc, opt.acc_bits));
                local += overflowed ? 1 : 0;
            }
        }
        count.fetch_add(local);
    });
    return count.load();
}

// max |a - a_zp| and max |a'| over all of A (a' = a, or a + 128 for int8 A), for overflow bounds.
template <class Rows>
void activation_bounds(const GemmActivations<Rows>& a, int threads, int64_t* max_abs_centered,
                       int64_t* max_abs_shifted) {
    // 256-entry presence table per worker: which byte values occur.
    const int64_t chunk = 64;
    const int64_t n_items = (a.m + chunk - 1) / chunk;
    const int workers = parallel_workers(n_items, threads);
    std::vector<std::vector<uint8_t>> seen(workers, std::vector<uint8_t>(256, 0));
    std::vector<std::vector<uint8_t>> tmp(workers, std::vector<uint8_t>(static_cast<size_t>(a.k) + 1));
    parallel_for_dynamic(n_items, threads, [&](int worker, int64_t item) {
        for (int64_t row = item * chunk; row < std::min(a.m, (item + 1) * chunk); ++row) {
            a.rows.copy_row(row, 0, a.k, tmp[worker].data());
            for (int64_t col = 0; col < a.k; ++col) seen[worker][tmp[worker][col]] = 1;
        }
    });
    int64_t mc = 0, ms = 0;
    for (int v = 0; v < 256; ++v) {
        bool any = false;
        for (auto& s : seen) any = any || s[v];
        if (!any) continue;
        const int64_t value = a.is_signed ? static_cast<int8_t>(v) : v;
        const int64_t shifted = value + (a.is_signed ? 128 : 0);
        mc = std::max<int64_t>(mc, value > a.zero_point ? value - a.zero_point : a.zero_point - value);
        ms = std::max<int64_t>(ms, shifted < 0 ? -shifted : shifted);
    }
    *max_abs_centered = mc;
    *max_abs_shifted = ms;
}

// The full GEMM per the contract above. Returns the overflow count (0 unless opt.count_overflow, or when
// the sequential path ran anyway). epi (optional) sees every element of C once it is final: per tile on
// the blocked paths, on the whole result afterwards on the others. c may be nullptr when epi is given:
// the result then only reaches epi (from per-thread scratch tiles, or a temporary on the other paths).
template <class Rows>
int64_t gemm_s32(const GemmActivations<Rows>& a, const PackedWeights& b, int32_t* c, int64_t ldc,
                 const GemmOptions& opt, const TileEpilogue* epi = nullptr) {
    const bool default_acc = opt.acc_bits == 32 && opt.overflow == AccOverflow::Wrap;
    if (default_acc && !opt.count_overflow) {
        gemm_blocked_s32(a, b, c, ldc, opt.mode, opt.isa, opt.threads, epi, opt.pool);
        return 0;
    }
    std::unique_ptr<int32_t[]> own;  // c == nullptr: the paths below need the whole result in memory
    if (c == nullptr) {
        own.reset(new int32_t[static_cast<size_t>(std::max<int64_t>(a.m * b.n, 1))]);
        c = own.get();
        ldc = b.n;
    }
    auto finish = [&](int64_t count) {
        if (epi != nullptr) apply_tile_epilogue(*epi, c, ldc, a.m, b.n, opt.threads);
        return count;
    };
    int64_t amax_c = 0, amax_s = 0;
    activation_bounds(a, opt.threads, &amax_c, &amax_s);
    const int64_t k = b.k;
    const int64_t acc_max = (int64_t{1} << (opt.acc_bits - 1)) - 1;
    const int64_t i32_max = std::numeric_limits<int32_t>::max();
    const int64_t exact_bound = k * amax_c * b.max_abs_b_minus_zp;  // >= |any partial sum of t_k|
    if (opt.mode == GemmMode::Exact) {
        if (exact_bound <= acc_max) {
            gemm_blocked_s32(a, b, c, ldc, opt.mode, opt.isa, opt.threads, epi, opt.pool);
            return 0;
        }
        if (opt.overflow == AccOverflow::Wrap && exact_bound <= i32_max) {
            gemm_blocked_s32(a, b, c, ldc, opt.mode, opt.isa, opt.threads, nullptr, opt.pool);
            int64_t count = 0;
            for (int64_t row = 0; row < a.m; ++row)
                for (int64_t col = 0; col < b.n; ++col) {
                    int32_t& v = c[row * ldc + col];
                    const int64_t w = wrap_to_bits(v, opt.acc_bits);
                    count += w != v ? 1 : 0;
                    v = static_cast<int32_t>(w);
                }
            return finish(count);
        }
    } else {
        const bool no_pair_saturates = 2 * amax_s * b.max_abs_b <= 32767;
        const int64_t raw_bound = k * amax_s * b.max_abs_b;
        if (no_pair_saturates && raw_bound <= acc_max && exact_bound <= i32_max) {
            gemm_blocked_s32(a, b, c, ldc, opt.mode, opt.isa, opt.threads, epi, opt.pool);
            return 0;
        }
    }
    return finish(gemm_sequential_s32(a, b, c, ldc, opt));
}

}  // namespace hwsim
