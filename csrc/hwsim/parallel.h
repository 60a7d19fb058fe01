// Explicit thread fan-out. There is no pool and no global state: every call that wants threads takes a
// `threads` count and starts its own std::threads; the caller's thread works too. Work items are handed
// out through an atomic counter (dynamic scheduling), so results never depend on the thread count: each
// item writes its own disjoint part of the output.
//
// The call returns as soon as every item is finished, without waiting for helper threads that have not
// been scheduled yet: on a loaded machine a new thread can wait milliseconds for a CPU, and joining it
// would cost more than the work. Helper threads are therefore detached and share only a small
// reference-counted state with the call; one that starts late finds no item left and exits without
// touching the caller's data (the body is only invoked for an item taken while the call still waits).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>

#include "hwsim/cpu_features.h"

namespace hwsim {

// 0 means "all hardware threads"; negative counts are a caller error and are treated as 1.
inline int resolve_threads(int threads) {
    if (threads == 0) return hardware_threads();
    return threads < 1 ? 1 : threads;
}

// Number of workers parallel_for_dynamic uses for n_items items (to size per-worker scratch).
inline int parallel_workers(int64_t n_items, int threads) {
    return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(resolve_threads(threads), n_items)));
}

namespace parallel_detail {

struct FanOutState {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    int64_t n_items = 0;
    void* body = nullptr;                         // valid only while the call waits (see above)
    void (*invoke)(void*, int, int64_t) = nullptr;
    std::mutex mutex;
    std::condition_variable all_done;
};

inline void drain(const std::shared_ptr<FanOutState>& s, int worker) {
    for (int64_t i = s->next.fetch_add(1); i < s->n_items; i = s->next.fetch_add(1)) {
        s->invoke(s->body, worker, i);
        if (s->done.fetch_add(1) + 1 == s->n_items) {
            std::lock_guard<std::mutex> lock(s->mutex);
            s->all_done.notify_all();
        }
    }
}

}  // namespace parallel_detail

// Calls body(worker, item) for every item in [0, n_items), on up to parallel_workers(n_items, threads)
// threads, and returns when all items are done. `worker` is in [0, workers) and lets the body use
// per-thread scratch memory. body must not throw.
template <class Body>
void parallel_for_dynamic(int64_t n_items, int threads, Body&& body) {
    if (n_items <= 0) return;
    const int workers = parallel_workers(n_items, threads);
    if (workers == 1) {
        for (int64_t i = 0; i < n_items; ++i) body(0, i);
        return;
    }
    using BodyType = std::remove_reference_t<Body>;
    auto state = std::make_shared<parallel_detail::FanOutState>();
    state->n_items = n_items;
    state->body = const_cast<void*>(static_cast<const void*>(&body));
    state->invoke = [](void* b, int worker, int64_t item) { (*static_cast<BodyType*>(b))(worker, item); };
    for (int w = 1; w < workers; ++w) {
        // If the OS refuses a thread, the caller (and the threads already started) drain every item.
        try {
            std::thread(parallel_detail::drain, state, w).detach();
        } catch (...) {
            break;
        }
    }
    parallel_detail::drain(state, 0);
    std::unique_lock<std::mutex> lock(state->mutex);
    state->all_done.wait(lock, [&] { return state->done.load() == n_items; });
}

}  // namespace hwsim
