// A minimal thread pool-free parallel loop: n_threads - 1 helper threads and the caller pull task
// indices from an atomic counter (dynamic scheduling). The first exception thrown by any worker
// stops the loop and is rethrown on the calling thread, as hnswlib's ParallelFor does. No OpenMP,
// so the thread count is exactly what the caller asked for, and no thread outlives the call but a
// helper that starts late and ends at once.
//
// The caller never waits for a helper the scheduler has not started yet (HelperGate): once no
// task is left it closes the loop and waits only for the helpers running a task; a helper that
// starts later finds the loop closed and ends without touching it. On a loaded machine a helper
// may start milliseconds late, and every loop used to wait for each of them in join(): at load
// 3, 4 ms for the 0.02 ms check of a 100 x 100 matrix, 16 ms for vr_barcode's 0.8 ms engine.
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
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

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

/// Lets a caller go on without waiting for helper threads the scheduler has not started yet. A
/// helper enters (and runs its function) unless the caller has closed the gate by then; the
/// caller, once it needs no more helpers, closes it and waits only for the helpers inside. Held by
/// the caller and by each detached helper (std::shared_ptr), so that a helper started late can
/// still find the gate closed after the caller has returned.
class HelperGate {
   public:
    /// Starts a detached thread that runs (*fn)(worker) unless the gate is closed first. *fn must
    /// not throw and must stay valid until close() has returned. False when no thread could be
    /// started (the caller goes on with those it has).
    template <typename Fn>
    static bool launch(const std::shared_ptr<HelperGate>& gate, const Fn* fn, int worker) {
        try {
            std::thread([gate, fn, worker] {
                // Either this helper sees the gate closed, or close() sees it inside and waits:
                // sequentially consistent increment, store and loads.
                gate->inside_.fetch_add(1);
                if (!gate->closed_.load()) (*fn)(worker);
                if (gate->inside_.fetch_sub(1) == 1) {
                    std::lock_guard<std::mutex> lock(gate->mutex_);
                    gate->idle_.notify_all();
                }
            }).detach();
            return true;
        } catch (const std::system_error&) {
            return false;
        }
    }
    /// No helper enters from now on; returns once none is inside.
    void close() {
        closed_.store(true);
        if (inside_.load() == 0) return;
        std::unique_lock<std::mutex> lock(mutex_);
        idle_.wait(lock, [this] { return inside_.load() == 0; });
    }

   private:
    std::atomic<int> inside_{0};
    std::atomic<bool> closed_{false};
    std::mutex mutex_;
    std::condition_variable idle_;
};

}  // namespace detail

/// Run f(task, worker) for task in [0, n_tasks) on up to n_threads threads (worker in
/// [0, n_threads), each index on one thread at a time; a worker may get no task). With
/// n_threads <= 1 or a single task everything runs on the caller's thread. The caller's thread
/// polls for interruption between its tasks (see the file comment).
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
    const auto body = [&](int worker) {
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
    const auto gate = std::make_shared<detail::HelperGate>();
    for (int w = 1; w < workers; ++w)
        if (!detail::HelperGate::launch(gate, &body, w)) break;
    body(0);
    gate->close();  // no task is left: wait only for the helpers running one
    if (error) std::rethrow_exception(error);
}

}  // namespace latentbridge
