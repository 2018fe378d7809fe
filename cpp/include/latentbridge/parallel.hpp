// A minimal thread pool-free parallel loop: n_threads std::threads pull task indices from an atomic
// counter (dynamic scheduling). The first exception thrown by any worker stops the loop and is
// rethrown on the calling thread, as hnswlib's ParallelFor does. No OpenMP, so the thread count is
// exactly what the caller asked for and nothing lingers after the call.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "latentbridge/types.hpp"

namespace latentbridge {

/// Number of hardware threads (at least 1).
inline int hardware_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

/// Run f(task, worker) for task in [0, n_tasks) on up to n_threads threads (worker in
/// [0, n_threads)). With n_threads <= 1 or a single task everything runs on the caller's thread.
template <typename F>
void parallel_for(index_t n_tasks, int n_threads, F&& f) {
    if (n_tasks <= 0) return;
    const int workers = static_cast<int>(std::max<index_t>(1, std::min<index_t>(n_threads, n_tasks)));
    if (workers == 1) {
        for (index_t t = 0; t < n_tasks; ++t) f(t, 0);
        return;
    }
    std::atomic<index_t> next{0};
    std::atomic<bool> stop{false};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto body = [&](int worker) {
        try {
            for (index_t t = next.fetch_add(1); t < n_tasks && !stop.load(std::memory_order_relaxed);
                 t = next.fetch_add(1)) {
                f(t, worker);
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
            stop = true;
        }
    };
    std::vector<std::thread> threads;
    threads.reserve(static_cast<std::size_t>(workers - 1));
    for (int w = 1; w < workers; ++w) threads.emplace_back(body, w);
    body(0);
    for (auto& t : threads) t.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace latentbridge
