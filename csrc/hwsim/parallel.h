// Explicit thread fan-out. There is no pool and no global state: every call that wants threads takes a
// `threads` count, starts that many std::threads (the caller's thread does one share) and joins them
// before returning. Work items are handed out through a local atomic counter (dynamic scheduling), so
// results never depend on the thread count: each item writes its own disjoint part of the output.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "hwsim/cpu_features.h"

namespace hwsim {

// 0 means "all hardware threads"; negative counts are a caller error and are treated as 1.
inline int resolve_threads(int threads) {
    if (threads == 0) return hardware_threads();
    return threads < 1 ? 1 : threads;
}

// Calls body(worker, item) for every item in [0, n_items), on min(threads, n_items) threads.
// `worker` is in [0, workers) and lets the body use per-thread scratch memory. body must not throw.
template <class Body>
void parallel_for_dynamic(int64_t n_items, int threads, Body&& body) {
    if (n_items <= 0) return;
    const int workers = static_cast<int>(std::min<int64_t>(resolve_threads(threads), n_items));
    if (workers == 1) {
        for (int64_t i = 0; i < n_items; ++i) body(0, i);
        return;
    }
    std::atomic<int64_t> next{0};
    auto run = [&](int worker) {
        for (int64_t i = next.fetch_add(1); i < n_items; i = next.fetch_add(1)) body(worker, i);
    };
    std::vector<std::thread> pool;
    pool.reserve(workers - 1);
    for (int w = 1; w < workers; ++w) {
        // If the OS refuses a thread, the started ones and the caller still drain every item.
        try {
            pool.emplace_back(run, w);
        } catch (...) {
            break;
        }
    }
    run(0);
    for (auto& t : pool) t.join();
}

// Number of workers parallel_for_dynamic will use for n_items items (to size per-worker scratch).
inline int parallel_workers(int64_t n_items, int threads) {
    return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(resolve_threads(threads), n_items)));
}

}  // namespace hwsim
