// The packed-B (weights) layout shared by every GEMM kernel, and the packed-A micro-panel layout.
//
// B is given as [N, K] int8, one row per output channel (dense [out, in]; conv OHWI flattened per group).
// Packed B: columns in panels of kPanelCols = 64 output channels; K padded with zeros to Kp, a multiple of
// kKGroup = 4. Inside a panel, K-group g (k = 4g .. 4g+3) stores 64 columns x 4 bytes contiguously:
//     panel[p][g][j][q] = b[64p + j, 4g + q]   (0 for padded rows/columns)
// so one 64-byte load gives 16 columns x 4 k, exactly one VPDPBUSD operand (zmm), and a 32-byte load
// gives 8 columns (ymm). VPMADDUBSW on the same bytes pairs (4g, 4g+1) and (4g+2, 4g+3), i.e. k = 2i, 2i+1.
//
// Packed A block (built per block by the driver, gemm.h): row-major rows of a' (a as uint8; int8 a gets
// +128, i.e. XOR 0x80), zero padded to a multiple of 64 bytes (an AMX tile row); the VNNI/AVX2 kernels
// broadcast 4 bytes of a row at a time, the AMX kernel loads 16 rows x 64 bytes.
// Zero padding past K multiplies zero weights, so it never changes a result (not even a saturated pair:
// a lone product |u8 x s8| <= 255 * 128 = 32640 fits int16).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "hwsim/cpu_features.h"

namespace hwsim {

constexpr int kPanelCols = 64;
constexpr int kKGroup = 4;
constexpr int kMicroRows = 6;
constexpr int64_t kPanelGroupBytes = kPanelCols * kKGroup;  // 256

struct AlignedFree {
    void operator()(void* p) const { ::operator delete(p, std::align_val_t(64)); }
};
template <class T>
using AlignedBuffer = std::unique_ptr<T[], AlignedFree>;

template <class T>
AlignedBuffer<T> make_aligned_buffer(int64_t count) {
    const size_t bytes = static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(T);
    void* p = ::operator new(bytes, std::align_val_t(64));
    std::memset(p, 0, bytes);
    return AlignedBuffer<T>(static_cast<T*>(p));
}

// Weights packed once, reusable across calls and threads (read-only after construction).
struct PackedWeights {
    int64_t n = 0;         // output channels
    int64_t k = 0;         // reduction length
    int64_t kp = 0;        // k rounded up to a multiple of kKGroup
    int64_t panels = 0;    // ceil(n / kPanelCols)
    AlignedBuffer<int8_t> data;           // panels * kp * kPanelCols bytes (+ zeroed slack)
    std::vector<int32_t> row_sum;         // sum_k b[n, k] (exact; |.| <= 128 * k)
    std::vector<int32_t> zero_point;      // b_zero_point per n, in [-128, 127]
    bool zero_point_all_zero = true;
    int32_t max_abs_b = 0;                // max |b[n, k]| (for overflow bounds)
    int32_t max_abs_b_minus_zp = 0;       // max |b[n, k] - zp[n]|
    // The CPU's features, detected when the weights were packed: callers that reuse the packing resolve
    // "auto" ISAs from it instead of asking CPUID again (a trapping instruction under virtualisation).
    CpuFeatures host;

    const int8_t* panel(int64_t p) const { return data.get() + p * kp * kPanelCols; }
    int8_t at(int64_t row, int64_t col) const {  // b[row, col], read back from the packed layout
        const int64_t p = row / kPanelCols, j = row % kPanelCols;
        return panel(p)[(col / kKGroup) * kPanelGroupBytes + j * kKGroup + col % kKGroup];
    }
};

// Packs b ([n, k] int8, row stride ldb elements) with per-row zero points zp (n values, or nullptr = all 0).
// host: the CPU features to record (nullptr: detect them now).
inline std::shared_ptr<PackedWeights> pack_weights(const int8_t* b, int64_t n, int64_t k, int64_t ldb,
                                                   const int32_t* zp, const CpuFeatures* host = nullptr) {
    auto pw = std::make_shared<PackedWeights>();
    pw->n = n;
    pw->k = k;
    pw->kp = (k + kKGroup - 1) / kKGroup * kKGroup;
    pw->panels = (n + kPanelCols - 1) / kPanelCols;
    pw->host = host != nullptr ? *host : detect_cpu_features();
    // Slack of 16 K-groups: the AMX kernel reads whole 16-group tiles past the last group (gemm_amx.h).
    pw->data = make_aligned_buffer<int8_t>(pw->panels * pw->kp * kPanelCols + 16 * kPanelGroupBytes);
    pw->row_sum.assign(static_cast<size_t>(n), 0);
    pw->zero_point.assign(static_cast<size_t>(n), 0);
    for (int64_t row = 0; row < n; ++row) {
        const int8_t* src = b + row * ldb;
        int8_t* dst = pw->data.get() + (row / kPanelCols) * pw->kp * kPanelCols + (row % kPanelCols) * kKGroup;
        const int32_t z = zp ? zp[row] : 0;
        pw->zero_point[row] = z;
        if (z != 0) pw->zero_point_all_zero = false;
        int32_t sum = 0;
        for (int64_t col = 0; col < k; ++col) {
            const int32_t v = src[col];
            dst[(col / kKGroup) * kPanelGroupBytes + col % kKGroup] = src[col];
            sum += v;  // |sum| <= 128 * k: fits int32 for k < 2^24, which the binding enforces
            pw->max_abs_b = std::max(pw->max_abs_b, v < 0 ? -v : v);
            const int32_t d = v - z;
            pw->max_abs_b_minus_zp = std::max(pw->max_abs_b_minus_zp, d < 0 ? -d : d);
        }
        pw->row_sum[row] = sum;
    }
    return pw;
}

}  // namespace hwsim
