// Measures the machine's int8 dot-product peak: independent VPDPBUSD chains (no loads, no dependencies
// longer than the chain count) on `threads` threads at once. Used by benchmarks/bench_gemm.py to state
// "fraction of peak" from a measurement instead of an assumed clock and port count.
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace hwsim {

#if defined(__x86_64__) || defined(_M_X64)
// 16 independent accumulators x `iterations` VPDPBUSD zmm = 1024 * iterations int8 MACs. Returns a value
// depending on every accumulator so the work cannot be optimised away.
__attribute__((target("avx512f,avx512vnni"))) inline int64_t vpdpbusd_chain_loop(int64_t iterations) {
    __m512i acc[16];
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_epi32(i);
    __m512i a = _mm512_set1_epi32(0x01010101), b = _mm512_set1_epi32(0x02020202);
    for (int64_t it = 0; it < iterations; ++it) {
        __asm__ volatile("" : "+v"(a), "+v"(b));
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
    }
    int64_t s = 0;
    for (int i = 0; i < 16; ++i) {
        alignas(64) int32_t lanes[16];
        _mm512_store_si512(reinterpret_cast<void*>(lanes), acc[i]);
        for (int j = 0; j < 16; ++j) s += lanes[j];
    }
    return s;
}
#endif

// int8 MACs per second of VPDPBUSD zmm on `threads` threads (0 if the ISA is missing; the caller checks).
inline double measure_vpdpbusd_macs_per_second(int threads, int64_t iterations) {
#if defined(__x86_64__) || defined(_M_X64)
    std::vector<std::thread> pool;
    std::vector<int64_t> sink(static_cast<size_t>(threads), 0);
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&sink, t, iterations] { sink[t] = vpdpbusd_chain_loop(iterations); });
    for (auto& th : pool) th.join();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return dt > 0 ? 1024.0 * static_cast<double>(iterations) * threads / dt : 0.0;
#else
    (void)threads;
    (void)iterations;
    return 0.0;
#endif
}

}  // namespace hwsim
