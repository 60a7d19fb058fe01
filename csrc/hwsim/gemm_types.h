// Vocabulary of the integer GEMM / convolution engine: arithmetic modes, accumulator overflow, options.
// These are the contract; gemm.h states the full semantics of each combination.
#pragma once

#include <cstdint>

#include "hwsim/cpu_features.h"

namespace hwsim {

class WorkerPool;  // parallel.h

// How the products are summed (see gemm.h for the exact definitions).
enum class GemmMode {
    Exact,      // sum of (a - a_zp) * (b - b_zp[n]) computed exactly (then accumulator rules apply)
    Avx2Pairs,  // x86 non-VNNI path: VPMADDUBSW saturates each u8 x s8 pair (k = 2i, 2i+1) to int16, then
                // VPMADDWD/VPADDD in int32; zero points (and +128 for int8 a) compensated exactly afterwards
};

// What the accumulator does when a value leaves its acc_bits range.
enum class AccOverflow {
    Wrap,      // two's-complement wrap to acc_bits; order independent (exact sum, then wrap once)
    Saturate,  // clamp to [-2^(acc_bits-1), 2^(acc_bits-1) - 1] after every addition, ascending k order
};

struct GemmOptions {
    GemmMode mode = GemmMode::Exact;
    int acc_bits = 32;  // in [8, 32]
    AccOverflow overflow = AccOverflow::Wrap;
    GemmIsa isa = GemmIsa::Scalar;  // already resolved and checked by the caller
    int threads = 1;                // 0 = all hardware threads
    bool count_overflow = false;    // compute the overflow count (may select the sequential path)
    WorkerPool* pool = nullptr;     // caller-owned persistent threads (threads = its size), or nullptr
};

// Plain int32 wrap-around arithmetic without signed-overflow UB: this is what VPADDD / VPDPBUSD do.
inline int32_t wrapping_add_i32(int32_t x, int32_t y) {
    return static_cast<int32_t>(static_cast<uint32_t>(x) + static_cast<uint32_t>(y));
}
inline int32_t wrapping_mul_i32(int32_t x, int32_t y) {
    return static_cast<int32_t>(static_cast<uint32_t>(x) * static_cast<uint32_t>(y));
}

// Two's-complement wrap of an exact value to `bits` (1..64) bits, sign-extended back.
inline int64_t wrap_to_bits(int64_t v, int bits) {
    if (bits >= 64) return v;
    const uint64_t mask = (uint64_t{1} << bits) - 1;
    uint64_t u = static_cast<uint64_t>(v) & mask;
    const uint64_t sign = uint64_t{1} << (bits - 1);
    return static_cast<int64_t>((u ^ sign) - sign);
}

// VPMADDUBSW lane result: saturate an exact pair sum to int16.
inline int32_t saturate_to_int16(int32_t v) {
    return v > 32767 ? 32767 : (v < -32768 ? -32768 : v);
}

}  // namespace hwsim
