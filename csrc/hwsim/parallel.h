// Explicit thread fan-out, without global state: every call that wants threads takes a `threads` count
// and starts its own std::threads, or is handed a caller-owned WorkerPool (below: persistent threads that
// live and die with the pool object); the caller's thread works too. Each item writes its own disjoint
// part of the output, so results never depend on the thread count or on which thread ran an item.
//
// Scheduling is affine first, dynamic second: the items are split into one contiguous range per worker,
// each worker runs its own range from the front, and a worker that finishes early takes the items left
// in the others' ranges. Kernels number their items in output order (rows first), so with a pool the
// same core writes the same part of every layer's output and reads back, in the next layer, what it
// wrote itself: on the 2-core development VM, moving a 600 KiB half-buffer between cores on every call
// made a parallel memset 2.7x slower than keeping it in place, and made small layers slower on two
// threads than on one.
//
// The call returns as soon as every item is finished, without waiting for helper threads that have not
// been scheduled yet: on a loaded machine a new thread can wait milliseconds for a CPU, and joining it
// would cost more than the work. Helper threads are therefore detached and share only a small
// reference-counted state with the call; one that starts late finds no item left and exits without
// touching the caller's data (the body is only invoked for an item taken while the call still waits).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

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

// One worker's contiguous share of the items, on its own cache line (the owner and thieves both take
// items from the front).
struct alignas(64) ItemRange {
    std::atomic<int64_t> next{0};
    int64_t end = 0;
};

struct FanOutState {
    FanOutState(int64_t items, int workers) : n_items(items), n_ranges(workers), ranges(new ItemRange[workers]) {
        for (int w = 0; w < workers; ++w) {
            ranges[w].next.store(items * w / workers, std::memory_order_relaxed);
            ranges[w].end = items * (w + 1) / workers;
        }
    }
    std::atomic<int64_t> done{0};
    int64_t n_items = 0;
    int n_ranges = 1;
    std::unique_ptr<ItemRange[]> ranges;
    void* body = nullptr;                         // valid only while the call waits (see above)
    void (*invoke)(void*, int, int64_t) = nullptr;
    std::mutex mutex;
    std::condition_variable all_done;
};

// Runs the items of `worker`'s own range, then whatever is left of the other ranges.
inline void drain(const std::shared_ptr<FanOutState>& s, int worker) {
    for (int j = 0; j < s->n_ranges; ++j) {
        ItemRange& r = s->ranges[(worker + j) % s->n_ranges];
        for (int64_t i = r.next.fetch_add(1); i < r.end; i = r.next.fetch_add(1)) {
            s->invoke(s->body, worker, i);
            if (s->done.fetch_add(1) + 1 == s->n_items) {
                std::lock_guard<std::mutex> lock(s->mutex);
                s->all_done.notify_all();
            }
        }
    }
}

}  // namespace parallel_detail

// A caller-owned set of persistent worker threads (size() - 1 of them; the calling thread is worker 0).
// parallel_for_dynamic hands its items to them instead of starting threads. Between jobs a worker spins
// for kSpinMicros (so back-to-back layers find it awake, as onnxruntime's pool does), then sleeps on a
// condition variable. One job runs at a time: a call that finds the pool busy (another thread's job, or
// a nested call from inside a job) runs its items on the calling thread alone. The destructor stops and
// joins the threads; it must not run while a job is in progress. Results never depend on the pool.
class WorkerPool {
  public:
    static constexpr int64_t kSpinMicros = 300;

    explicit WorkerPool(int threads) : size_(resolve_threads(threads)) {
        for (int w = 1; w < size_; ++w) {
            try {
                threads_.emplace_back([this, w] { worker_loop(w); });
            } catch (...) {
                break;  // fewer threads than asked: the remaining workers' items go to the others
            }
        }
    }
    ~WorkerPool() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_.store(true);
        }
        wake_.notify_all();
        for (auto& t : threads_) t.join();
    }
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    int size() const { return size_; }

    // Runs every item of `state` on up to `workers` workers (this thread included); returns when all are
    // done, or false at once (nothing run) when the pool is busy.
    bool run(const std::shared_ptr<parallel_detail::FanOutState>& state, int workers) {
        std::unique_lock<std::mutex> busy(submit_, std::try_to_lock);
        if (!busy.owns_lock()) return false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            job_ = state;
            job_workers_ = workers;
            generation_.fetch_add(1, std::memory_order_release);
        }
        wake_.notify_all();
        parallel_detail::drain(state, 0);
        // Items taken by other workers: spin briefly, then sleep until the last one is done.
        for (int spin = 0; spin < 1024 && state->done.load(std::memory_order_acquire) != state->n_items; ++spin)
            relax();
        std::unique_lock<std::mutex> lock(state->mutex);
        state->all_done.wait(lock, [&] { return state->done.load() == state->n_items; });
        return true;
    }

  private:
    static void relax() {
#if defined(__x86_64__) || defined(_M_X64)
        __builtin_ia32_pause();
#else
        std::this_thread::yield();
#endif
    }

    void worker_loop(int index) {
        uint64_t seen = 0;
        for (;;) {
            // Spin on the generation counter for a while, then sleep.
            const auto t0 = std::chrono::steady_clock::now();
            for (int spin = 0; generation_.load(std::memory_order_acquire) == seen && !stop_.load(); ++spin) {
                if ((spin & 63) == 63 &&
                    std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(kSpinMicros))
                    break;
                relax();
            }
            std::shared_ptr<parallel_detail::FanOutState> job;
            int workers = 0;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
                if (stop_.load()) return;
                seen = generation_.load();
                job = job_;
                workers = job_workers_;
            }
            // A late worker may see a job that is already finished: drain then takes no item.
            if (job && index < workers) parallel_detail::drain(job, index);
        }
    }

    int size_ = 1;
    std::vector<std::thread> threads_;
    std::mutex submit_;  // held by the caller for the duration of a job
    std::mutex mutex_;   // guards job_, job_workers_ and the sleep/wake handshake
    std::condition_variable wake_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<bool> stop_{false};
    std::shared_ptr<parallel_detail::FanOutState> job_;
    int job_workers_ = 0;
};

// Calls body(worker, item) for every item in [0, n_items), on up to parallel_workers(n_items, threads)
// threads, and returns when all items are done. `worker` is in [0, workers) and lets the body use
// per-thread scratch memory. body must not throw. pool (optional): its threads do the work instead of
// new ones (at most pool->size() workers).
template <class Body>
void parallel_for_dynamic(int64_t n_items, int threads, Body&& body, WorkerPool* pool = nullptr) {
    if (n_items <= 0) return;
    int workers = parallel_workers(n_items, threads);
    if (pool != nullptr) workers = std::min(workers, pool->size());
    if (workers == 1) {
        for (int64_t i = 0; i < n_items; ++i) body(0, i);
        return;
    }
    using BodyType = std::remove_reference_t<Body>;
    auto state = std::make_shared<parallel_detail::FanOutState>(n_items, workers);
    state->body = const_cast<void*>(static_cast<const void*>(&body));
    state->invoke = [](void* b, int worker, int64_t item) { (*static_cast<BodyType*>(b))(worker, item); };
    if (pool != nullptr) {
        if (pool->run(state, workers)) return;
        for (int64_t i = 0; i < n_items; ++i) body(0, i);  // pool busy: this thread alone
        return;
    }
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
