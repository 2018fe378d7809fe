// Rounds of parallel tasks driven by the calling thread, shared by the parallel reductions of
// rips.cpp (R-Cross cohomology: columns taken further side by side) and rips_homology.cpp (the top
// degree of the homology engine: the coface search of a window of simplices), which both conclude
// each round's results in order on the calling thread so that the result does not depend on the
// number of threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "latentbridge/detail/parallel.hpp"

namespace latentbridge {
namespace detail {

/// Thrown by the threads of a parallel reduction once another thread has failed (RoundTeam's
/// `abort`).
struct Abandoned {};

/// Helper threads for rounds of parallel tasks that the calling thread drives. run(task, driver)
/// starts workers - 1 helpers and calls driver(round) on this thread; round(n) runs task(t,
/// worker) for every t in [0, n) on all the threads (this one is worker 0) and returns when all
/// are done. A round is claimed in one atomic word (round number, size, next task), so a helper
/// late from the last round claims nothing of the next. Between rounds the helpers yield for a
/// while, then sleep until the next. The first exception of any thread sets `abort` (the tasks'
/// polls throw once they see it, so every thread stops soon) and run rethrows it after the join.
class RoundTeam {
   public:
    explicit RoundTeam(int workers) : workers_(workers) {}
    std::atomic<bool> abort{false};

    template <typename Task, typename Driver>
    void run(Task&& task, Driver&& driver) {
        std::exception_ptr first;
        std::mutex first_mutex;
        const auto fail = [&] {
            {
                std::lock_guard<std::mutex> lock(first_mutex);
                if (!first && !abort.load()) first = std::current_exception();
            }
            abort = true;
            wake();
        };
        const auto work = [&](int worker, std::uint64_t round) {
            std::uint64_t cur = word_.load(std::memory_order_acquire);
            while ((cur >> 40) == round && (cur & kField) < ((cur >> 20) & kField)) {
                if (!word_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) continue;
                task(static_cast<std::size_t>(cur & kField), worker);
                if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == ((cur >> 20) & kField) &&
                    worker != 0)
                    wake();  // the round's last task: the driver may be asleep
                cur = word_.load(std::memory_order_acquire);
            }
        };
        const auto helper = [&](int worker) {
            try {
                std::uint64_t seen = 0;
                for (;;) {
                    wait([&] {
                        return stop_.load(std::memory_order_acquire) ||
                               (word_.load(std::memory_order_acquire) >> 40) != seen;
                    });
                    if (stop_.load() || abort.load()) return;
                    seen = word_.load(std::memory_order_acquire) >> 40;
                    work(worker, seen);
                }
            } catch (...) {
                fail();
            }
        };
        std::vector<std::thread> threads;
        threads.reserve(static_cast<std::size_t>(workers_ - 1));
        try {
            for (int w = 1; w < workers_; ++w) threads.emplace_back(helper, w);
            std::uint64_t round = 0;
            driver([&](std::size_t n) {
                if (n == 0) return;
                round = (round + 1) & ((std::uint64_t{1} << 24) - 1);
                done_.store(0, std::memory_order_relaxed);
                word_.store((round << 40) | (static_cast<std::uint64_t>(n) << 20),
                            std::memory_order_release);
                wake();
                work(0, round);
                wait([&] { return done_.load(std::memory_order_acquire) >= n; }, true);
                if (abort.load()) throw Abandoned{};
            });
        } catch (...) {
            fail();
        }
        stop_ = true;
        wake();
        for (std::thread& t : threads) t.join();
        if (first) std::rethrow_exception(first);
    }

    /// The most tasks in one round.
    static constexpr std::size_t kMaxTasks = (std::size_t{1} << 20) - 1;

   private:
    static constexpr std::uint64_t kField = (std::uint64_t{1} << 20) - 1;
    void wake() {
        {
            std::lock_guard<std::mutex> lock(sleep_mutex_);
        }
        sleep_.notify_all();
    }
    /// Until ready() or abort: a few yields (a round's hand-over is short on an idle machine),
    /// then asleep until wake() (a loaded one: a spinning thread would take a core from the
    /// others). The driver (`interruptible`) wakes at every poll interval to poll for Ctrl-C
    /// while a helper reduces a long column.
    template <typename Ready>
    void wait(Ready ready, bool interruptible = false) {
        for (int spins = 0; spins < kSpins; ++spins) {
            if (ready() || abort.load()) return;
            std::this_thread::yield();
        }
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        const auto done = [&] { return ready() || abort.load(); };
        if (!interruptible) return sleep_.wait(lock, done);
        while (!sleep_.wait_for(lock, interrupt_poll_interval, done)) {
            lock.unlock();
            detail::maybe_poll_interrupt();
            lock.lock();
        }
    }
    static constexpr int kSpins = 64;
    int workers_;
    std::atomic<std::uint64_t> word_{0};  // round (24 bits) | size (20) | next task (20)
    std::atomic<std::size_t> done_{0};
    std::atomic<bool> stop_{false};
    std::mutex sleep_mutex_;
    std::condition_variable sleep_;
};

}  // namespace detail
}  // namespace latentbridge
