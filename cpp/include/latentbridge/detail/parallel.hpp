// A minimal thread pool-free parallel loop: n_threads std::threads pull task indices from an atomic
// counter (dynamic scheduling). The first exception thrown by any worker stops the loop and is
// rethrown on the calling thread, as hnswlib's ParallelFor does. No OpenMP, so the thread count is
// exactly what the caller asked for and nothing lingers after the call.
//
// Interruption: the calling thread (worker 0) runs the process-wide interrupt poll between tasks,
// at most every interrupt_poll_interval. The Python module installs a poll that, on Python's main
// thread only, briefly takes the GIL and runs PyErr_CheckSignals, and throws when a handler raised
// (KeyboardInterrupt on Ctrl-C); the loop then stops like for any other exception, so a long
// kernel returns to Python within one poll interval plus one task. Without a poll installed (C++
// benchmarks) nothing is checked.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
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

/// Interrupt poll: called on the thread that called parallel_for; throws to abort the loop.
using InterruptPoll = void (*)();

inline std::atomic<InterruptPoll>& interrupt_poll() {
    static std::atomic<InterruptPoll> poll{nullptr};
    return poll;
}

/// Minimal time between two polls on one thread.
constexpr std::chrono::milliseconds interrupt_poll_interval{50};

namespace detail {

/// Run the installed poll when the interval has passed since this thread's last poll.
inline void maybe_poll_interrupt() {
    const InterruptPoll poll = interrupt_poll().load(std::memory_order_acquire);
    if (poll == nullptr) return;
    thread_local auto last = std::chrono::steady_clock::now();
    const auto now = std::chrono::steady_clock::now();
    if (now - last < interrupt_poll_interval) return;
    last = now;
    poll();
}

}  // namespace detail

/// Run f(task, worker) for task in [0, n_tasks) on up to n_threads threads (worker in
/// [0, n_threads)). With n_threads <= 1 or a single task everything runs on the caller's thread.
/// The caller's thread polls for interruption between its tasks (see the file comment).
template <typename F>
void parallel_for(index_t n_tasks, int n_threads, F&& f) {
    if (n_tasks <= 0) return;
    const int workers =
        static_cast<int>(std::max<index_t>(1, std::min<index_t>(n_threads, n_tasks)));
    if (workers == 1) {
        for (index_t t = 0; t < n_tasks; ++t) {
            detail::maybe_poll_interrupt();
            f(t, 0);
        }
        return;
    }
    std::atomic<index_t> next{0};
    std::atomic<bool> stop{false};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto body = [&](int worker) {
        try {
            for (index_t t = next.fetch_add(1);
                 t < n_tasks && !stop.load(std::memory_order_relaxed); t = next.fetch_add(1)) {
                if (worker == 0) detail::maybe_poll_interrupt();
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
