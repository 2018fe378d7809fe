// Driver of the CPU emulation test of the CUDA kernels (tests/test_cuda_emulated.py): calls the CPU
// function and the emulated CUDA function (cuda/src/*.cu rewritten by transform.py, run by
// emu_rt.cpp) on the same inputs and compares them. One line per case, then "PASS (n cases)" or
// "FAIL (m of n cases)"; exit status 0 only when every case passed.
//
//   emu_test [--sites] [group ...]   groups: knn rerank graph distance stats eigsh (default: all)
//
// Each case line reads "ok|FAIL group name [schedule: launches, threads, seconds] figures". With all
// groups, every kernel launch site of the .cu files must have run (--sites lists them all). Every
// case also requires that the emulated code freed all its device memory and that the memory
// checks of the emulation (guard zones, copy directions) found nothing.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <signal.h>
#include <unistd.h>

#include "latentbridge/diffusion.hpp"
#include "latentbridge/distance.hpp"
#include "latentbridge/eigsh.hpp"
#include "latentbridge/knn.hpp"
#include "latentbridge/stats.hpp"
#include "latentbridge_cuda/api.hpp"
#include "latentbridge_cuda/diffusion.hpp"
#include "latentbridge_cuda/eigsh.hpp"
#include "latentbridge_cuda/knn.hpp"
#include "latentbridge_cuda/stats.hpp"

namespace emu {  // emu_rt.cpp (not including cuda_runtime.h here keeps CUDA names out of this file)
extern int order_mode;
extern long long n_launch, n_blocks, n_threads_run;
extern long n_alloc, n_mem_faults;
extern std::size_t free_mem;
extern const bool fast_switch;
int report_unlaunched_sites(bool all);
}  // namespace emu

using namespace latentbridge;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kCpuThreads = 2;
const char* const kOrderName[] = {"fwd", "rev", "rand"};

int n_cases = 0, n_failed = 0;
const char* g_group = "";  // the group of the running case (first word of its line)
std::string g_detail;  // extra figures of the current case, printed on its line

void detail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void detail(const char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!g_detail.empty()) g_detail += ' ';
    g_detail += buf;
}

// Runs one case: body() returns true when CPU and emulated CUDA agree. The emulation schedule
// (resume order after barriers) and the free memory it reports are set for the case.
std::string g_case;  // the running case, for the watchdog

extern "C" void on_alarm(int) {
    static const char msg[] = "FAIL watchdog: a case ran longer than 300 s (an endless loop?): ";
    (void)!write(1, msg, sizeof msg - 1);
    (void)!write(1, g_case.data(), g_case.size());
    (void)!write(1, "\n", 1);
    _exit(3);
}

void run_case(const std::string& name, int order, std::size_t free_mem, const std::function<bool()>& body) {
    ++n_cases;
    g_case = name;
    alarm(300);
    emu::order_mode = order;
    emu::free_mem = free_mem;
    const long alloc0 = emu::n_alloc, faults0 = emu::n_mem_faults;
    const long long launch0 = emu::n_launch, threads0 = emu::n_threads_run;
    g_detail.clear();
    bool ok = false;
    const auto t0 = Clock::now();
    try {
        ok = body();
    } catch (const std::exception& e) {
        detail("unexpected exception: %s", e.what());
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (emu::n_alloc != alloc0) {
        detail("LEAK: %ld device allocations not freed", emu::n_alloc - alloc0);
        ok = false;
    }
    if (emu::n_mem_faults != faults0) {
        detail("MEMORY FAULTS: %ld", emu::n_mem_faults - faults0);
        ok = false;
    }
    if (!ok) ++n_failed;
    std::printf("%-4s %-8s %-52s [%s: %lld launches, %lld threads, %.2fs] %s\n", ok ? "ok" : "FAIL", g_group,
                name.c_str(), kOrderName[order], emu::n_launch - launch0, emu::n_threads_run - threads0, secs,
                g_detail.c_str());
    std::fflush(stdout);
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, f);
    std::vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

bool same_bits(const double* a, const double* b, std::size_t count) {
    return count == 0 || std::memcmp(a, b, count * sizeof(double)) == 0;
}

// Message of the exception thrown by f ("" when none), prefixed by its kind.
std::string thrown(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return std::string("invalid_argument: ") + e.what();
    } catch (const std::exception& e) {
        return std::string("other exception: ") + e.what();
    }
    return "";
}

bool same_error(const std::string& cpu, const std::string& gpu) {
    const bool ok = !cpu.empty() && cpu == gpu;
    if (ok)
        detail("both threw '%s'", cpu.c_str());
    else
        detail("cpu threw '%s', emulated cuda threw '%s'", cpu.c_str(), gpu.c_str());
    return ok;
}

// n x d points: normal coordinates (integers in [0, 4) when `grid`, for massive ties), and every
// 5th row an exact copy of an earlier row.
std::vector<double> points(std::mt19937_64& rng, index_t n, index_t d, bool grid) {
    std::vector<double> X(static_cast<std::size_t>(n * d));
    std::normal_distribution<double> N;
    std::uniform_int_distribution<int> I(0, 3);
    for (auto& x : X) x = grid ? double(I(rng)) : N(rng);
    for (index_t i = 5; i < n; i += 5) {
        const index_t src = std::uniform_int_distribution<index_t>(0, i - 1)(rng);
        std::copy_n(X.begin() + src * d, d, X.begin() + i * d);
    }
    return X;
}

// ---- k-NN ----------------------------------------------------------------------------------------------

bool knn_case(std::mt19937_64& rng, index_t n, index_t d, index_t nq, index_t k, bool self, bool grid) {
    const auto X = points(rng, n, d, grid);
    std::vector<double> Q;
    if (!self) {
        Q = points(rng, nq, d, grid);
        for (index_t i = 0; i < nq; i += 7) std::copy_n(X.begin() + (i % n) * d, d, Q.begin() + i * d);  // exact hits
    }
    const index_t rows = self ? n : nq;
    const auto cnt = static_cast<std::size_t>(rows * k);
    std::vector<index_t> ic(cnt, -7), ig(cnt, -9);
    std::vector<double> dc(cnt, -1.0), dg(cnt, -2.0);
    const double* q = self ? nullptr : Q.data();
    knn_sqeuclidean(X.data(), n, d, q, nq, k, ic.data(), dc.data(), kCpuThreads);
    cuda::knn_sqeuclidean(X.data(), n, d, q, nq, k, ig.data(), dg.data());
    std::size_t bad = 0, first = cnt;
    for (std::size_t e = 0; e < cnt; ++e)
        if (ic[e] != ig[e] || !same_bits(&dc[e], &dg[e], 1)) {
            ++bad;
            first = std::min(first, e);
        }
    std::size_t ties = 0;
    for (index_t i = 0; i < rows; ++i)
        for (index_t t = 1; t < k; ++t) ties += dc[i * k + t] == dc[i * k + t - 1];
    detail("tied pairs %zu; mismatches %zu", ties, bad);
    if (bad)
        detail("(first: row %zu slot %zu: cpu (%lld, %.17g) cuda (%lld, %.17g))", first / k, first % k,
               (long long)ic[first], dc[first], (long long)ig[first], dg[first]);
    return bad == 0;
}

void knn_cases(std::mt19937_64& rng) {
    int c = 0;
    for (const index_t d : {1, 3, 5, 20})
        for (const index_t k : {1, 7, 40})
            for (const bool self : {true, false}) {
                const index_t n = 400, nq = self ? n : 333;
                const bool grid = d <= 3;  // low dimension: integer grid, massive ties
                run_case(fmt("knn %s n=%lld nq=%lld d=%lld k=%lld%s", self ? "self " : "query", (long long)n,
                             (long long)nq, (long long)d, (long long)k, grid ? " grid" : ""),
                         c++ % 3, std::size_t(1) << 30, [&] { return knn_case(rng, n, d, nq, k, self, grid); });
            }
    // More than one tile on each side (k > 64), and the batched path (lists scattered on the host).
    run_case("knn self  n=700 d=4 k=70 (reach 2)", 1, std::size_t(1) << 30,
             [&] { return knn_case(rng, 700, 4, 700, 70, true, false); });
    run_case("knn self  n=600 d=5 k=16 batched (free 154 KB)", 2, 2 * 300 * 16 * 16,
             [&] { return knn_case(rng, 600, 5, 600, 16, true, false); });
    run_case("knn query n=600 d=20 k=7 batched (free 64 KB)", 0, 2 * 256 * 7 * 16 + 1000,
             [&] { return knn_case(rng, 600, 20, 450, 7, false, false); });
    run_case("knn self  n=3000 d=2 k=10 batched (free 600 KB)", 1, 2 * 1900 * 10 * 16,
             [&] { return knn_case(rng, 3000, 2, 3000, 10, true, false); });
    run_case("knn query n=2000 nq=2500 d=3 k=12 batched (free 600 KB)", 2, 2 * 1570 * 12 * 16,
             [&] { return knn_case(rng, 2000, 3, 2500, 12, false, false); });
    // Errors: the CPU's checks and messages.
    run_case("knn errors (k >= n self, k > n query)", 0, std::size_t(1) << 30, [&] {
        std::vector<double> X(30, 1.0), Q(6, 0.0);
        std::vector<index_t> i(400);
        std::vector<double> v(400);
        bool ok = same_error(thrown([&] { knn_sqeuclidean(X.data(), 10, 3, nullptr, 10, 10, i.data(), v.data(), 1); }),
                             thrown([&] { cuda::knn_sqeuclidean(X.data(), 10, 3, nullptr, 10, 10, i.data(), v.data()); }));
        ok &= same_error(thrown([&] { knn_sqeuclidean(X.data(), 10, 3, Q.data(), 2, 11, i.data(), v.data(), 1); }),
                         thrown([&] { cuda::knn_sqeuclidean(X.data(), 10, 3, Q.data(), 2, 11, i.data(), v.data()); }));
        return ok;
    });
}

// ---- Mahalanobis re-ranking ----------------------------------------------------------------------------

struct RerankData {
    std::vector<double> Y, G, Yq, Gq;
    std::vector<index_t> cand;
};

RerankData rerank_data(std::mt19937_64& rng, index_t n, index_t m, index_t r, index_t nq, index_t kc,
                       index_t k, bool self) {
    RerankData a;
    std::normal_distribution<double> N;
    auto fill = [&](std::vector<double>& v, std::size_t count) {
        v.resize(count);
        for (auto& x : v) x = N(rng);
    };
    fill(a.Y, static_cast<std::size_t>(n * m));
    fill(a.G, static_cast<std::size_t>(n * r * m));
    for (index_t i = 4; i < n; i += 4) {  // exact duplicates: equal forms, ties broken by index
        std::copy_n(a.Y.begin() + (i - 1) * m, m, a.Y.begin() + i * m);
        std::copy_n(a.G.begin() + (i - 1) * r * m, r * m, a.G.begin() + i * r * m);
    }
    const index_t rows = self ? n : nq;
    if (!self) {
        fill(a.Yq, static_cast<std::size_t>(nq * m));
        fill(a.Gq, static_cast<std::size_t>(nq * r * m));
    }
    a.cand.resize(static_cast<std::size_t>(rows * kc));
    std::uniform_int_distribution<index_t> J(-1, n - 1);
    for (index_t i = 0; i < rows; ++i) {
        index_t* c = a.cand.data() + i * kc;
        for (index_t t = 0; t < kc; ++t) c[t] = J(rng);
        for (index_t t = 0; t < k; ++t) c[t] = (i + 3 * t + 1) % n;  // at least k valid ones
        for (index_t t = k; t < kc; t += 3) c[t] = -1;                // ignored entries
        if (kc > k + 1) c[kc - 1] = c[0];                              // a repeated candidate
    }
    return a;
}

bool rerank_case(std::mt19937_64& rng, index_t n, index_t m, index_t r, index_t nq, index_t kc, index_t k,
                 bool self) {
    auto a = rerank_data(rng, n, m, r, nq, kc, k, self);
    const index_t rows = self ? n : nq;
    const auto cnt = static_cast<std::size_t>(rows * k);
    std::vector<index_t> ic(cnt, -7), ig(cnt, -9);
    std::vector<double> dc(cnt, -1.0), dg(cnt, -2.0);
    const double* yq = self ? nullptr : a.Yq.data();
    const double* gq = self ? nullptr : a.Gq.data();
    mahalanobis_rerank(a.Y.data(), a.G.data(), n, m, r, yq, gq, nq, a.cand.data(), kc, k, ic.data(), dc.data(),
                       kCpuThreads);
    cuda::mahalanobis_rerank(a.Y.data(), a.G.data(), n, m, r, yq, gq, nq, a.cand.data(), kc, k, ig.data(),
                             dg.data());
    std::size_t bad = 0;
    for (std::size_t e = 0; e < cnt; ++e) bad += ic[e] != ig[e] || !same_bits(&dc[e], &dg[e], 1);
    std::size_t neg = 0;
    for (index_t c : a.cand) neg += c < 0;
    detail("-1 candidates %zu; mismatches %zu", neg, bad);
    bool ok = bad == 0;
    // Errors: a candidate out of range; a row with fewer than k valid candidates.
    auto c2 = a.cand;
    c2[static_cast<std::size_t>((rows / 2) * kc + 1)] = n;
    ok &= same_error(thrown([&] {
                         mahalanobis_rerank(a.Y.data(), a.G.data(), n, m, r, yq, gq, nq, c2.data(), kc, k, ic.data(),
                                            dc.data(), kCpuThreads);
                     }),
                     thrown([&] {
                         cuda::mahalanobis_rerank(a.Y.data(), a.G.data(), n, m, r, yq, gq, nq, c2.data(), kc, k,
                                                  ig.data(), dg.data());
                     }));
    c2 = a.cand;
    for (index_t t = 0; t < kc - k + 1; ++t) c2[static_cast<std::size_t>((rows - 1) * kc + t)] = -1;
    ok &= same_error(thrown([&] {
                         mahalanobis_rerank(a.Y.data(), a.G.data(), n, m, r, yq, gq, nq, c2.data(), kc, k, ic.data(),
                                            dc.data(), kCpuThreads);
                     }),
                     thrown([&] {
                         cuda::mahalanobis_rerank(a.Y.data(), a.G.data(), n, m, r, yq, gq, nq, c2.data(), kc, k,
                                                  ig.data(), dg.data());
                     }));
    return ok;
}

void rerank_cases(std::mt19937_64& rng) {
    const std::size_t big = std::size_t(1) << 30;
    run_case("rerank self  n=300 m=5 r=3 kc=20 k=8", 0, big, [&] { return rerank_case(rng, 300, 5, 3, 300, 20, 8, true); });
    run_case("rerank query n=300 nq=200 m=5 r=2 kc=26 k=20", 1, big,
             [&] { return rerank_case(rng, 300, 5, 2, 200, 26, 20, false); });
    run_case("rerank self  n=200 m=18 r=2 kc=12 k=5 (m > 16)", 2, big,
             [&] { return rerank_case(rng, 200, 18, 2, 200, 12, 5, true); });
    run_case("rerank query n=200 nq=150 m=18 r=1 kc=12 k=5 (m > 16)", 0, big,
             [&] { return rerank_case(rng, 200, 18, 1, 150, 12, 5, false); });
    run_case("rerank self  n=400 m=4 r=4 kc=20 k=8 batched", 1, 2 * 200 * (20 * 8 + 8 * 16),
             [&] { return rerank_case(rng, 400, 4, 4, 400, 20, 8, true); });
    run_case("rerank query n=400 nq=333 m=4 r=4 kc=20 k=8 batched", 2, 2 * 130 * (20 * 8 + 8 * 16 + 20 * 8),
             [&] { return rerank_case(rng, 400, 4, 4, 333, 20, 8, false); });
}

// ---- diffusion graph -----------------------------------------------------------------------------------

struct Lists {
    std::vector<index_t> idx;
    std::vector<double> d2;
};

Lists knn_lists(std::mt19937_64& rng, index_t n, index_t d, index_t k, bool holes) {
    const auto X = points(rng, n, d, false);
    Lists L;
    L.idx.resize(static_cast<std::size_t>(n * k));
    L.d2.resize(static_cast<std::size_t>(n * k));
    knn_sqeuclidean(X.data(), n, d, nullptr, n, k, L.idx.data(), L.d2.data(), kCpuThreads);
    if (holes) {  // ignored entries (-1) and self references, both skipped by the graph
        std::uniform_int_distribution<index_t> E(0, n * k - 1);
        for (index_t t = 0; t < n / 2; ++t) {
            const index_t e = E(rng);
            L.idx[e] = t % 3 == 0 ? e / k : -1;
        }
    }
    return L;
}

double rel(double a, double b) { return a == b ? 0.0 : std::abs(a - b) / std::max(std::abs(a), std::abs(b)); }

bool graph_case(std::mt19937_64& rng, index_t n, index_t d, index_t k, double alpha, bool holes) {
    const Lists L = knn_lists(rng, n, d, k, holes);
    const double eps = median_kth_distance(L.d2.data(), n, k, std::min<index_t>(k, 5));
    const DiffusionGraph gc = diffusion_graph(L.idx.data(), L.d2.data(), n, k, eps, alpha, kCpuThreads);
    const DiffusionGraph gg = cuda::diffusion_graph(L.idx.data(), L.d2.data(), n, k, eps, alpha);
    if (gc.n != gg.n || gc.indptr != gg.indptr || gc.indices != gg.indices) {
        detail("pattern differs: nnz cpu %zu cuda %zu", gc.indices.size(), gg.indices.size());
        return false;
    }
    double err = 0;
    for (std::size_t e = 0; e < gc.values.size(); ++e) err = std::max(err, rel(gc.values[e], gg.values[e]));
    for (index_t i = 0; i < n; ++i) err = std::max({err, rel(gc.p[i], gg.p[i]), rel(gc.q[i], gg.q[i])});
    std::size_t asym = 0;  // T exactly symmetric
    for (index_t i = 0; i < n; ++i)
        for (auto e = gg.indptr[i]; e < gg.indptr[i + 1]; ++e) {
            const std::int32_t j = gg.indices[e];
            const auto b = gg.indices.begin() + gg.indptr[j], en = gg.indices.begin() + gg.indptr[j + 1];
            const auto it = std::lower_bound(b, en, static_cast<std::int32_t>(i));
            if (it == en || *it != i || gg.values[it - gg.indices.begin()] != gg.values[e]) ++asym;
        }
    detail("nnz %zu; max rel err values/p/q %.2e; asymmetric entries %zu", gg.indices.size(), err, asym);
    return err <= 1e-12 && asym == 0;
}

void graph_cases(std::mt19937_64& rng) {
    const std::size_t big = std::size_t(1) << 30;
    int c = 0;
    for (const double alpha : {0.0, 0.5, 1.0})
        run_case(fmt("graph n=500 d=3 k=10 alpha=%g holes", alpha), c++ % 3, big,
                 [&] { return graph_case(rng, 500, 3, 10, alpha, true); });
    run_case("graph n=600 d=5 k=15 alpha=0.5", 1, big, [&] { return graph_case(rng, 600, 5, 15, 0.5, false); });
    run_case("graph n=1 k=0 (diagonal only)", 0, big, [&] {
        index_t idx = 0;
        double d2 = 0;
        const DiffusionGraph gc = diffusion_graph(&idx, &d2, 1, 0, 1.0, 0.5, 1);
        const DiffusionGraph gg = cuda::diffusion_graph(&idx, &d2, 1, 0, 1.0, 0.5);
        return gc.indptr == gg.indptr && gc.indices == gg.indices && gc.values == gg.values && gc.p == gg.p &&
               gc.q == gg.q;
    });
    run_case("graph bad input (negative distance)", 0, big, [&] {
        Lists L = knn_lists(rng, 50, 2, 4, false);
        L.d2[37] = -1.0;
        bool ok = same_error(thrown([&] { diffusion_graph(L.idx.data(), L.d2.data(), 50, 4, 1.0, 0.5, 1); }),
                             thrown([&] { cuda::diffusion_graph(L.idx.data(), L.d2.data(), 50, 4, 1.0, 0.5); }));
        L.d2[37] = 0.5;
        L.idx[41] = 50;
        ok &= same_error(thrown([&] { diffusion_graph(L.idx.data(), L.d2.data(), 50, 4, 1.0, 0.5, 1); }),
                         thrown([&] { cuda::diffusion_graph(L.idx.data(), L.d2.data(), 50, 4, 1.0, 0.5); }));
        return ok;
    });
}

// ---- pairwise distances --------------------------------------------------------------------------------

template <typename T>
bool distance_case(std::mt19937_64& rng, index_t n, index_t m, index_t d, Metric metric, bool sym) {
    std::normal_distribution<double> N;
    std::vector<T> X(static_cast<std::size_t>(n * d)), Y(static_cast<std::size_t>(m * d));
    for (auto& x : X) x = static_cast<T>(3.0 + N(rng));  // offset: the mean shift matters
    for (auto& y : Y) y = static_cast<T>(3.0 + N(rng));
    if (!sym)
        for (index_t i = 0; i < std::min(n, m); i += 3) std::copy_n(X.begin() + i * d, d, Y.begin() + i * d);
    for (index_t i = 6; i < n; i += 6) std::copy_n(X.begin(), d, X.begin() + i * d);  // duplicates
    if (d > 1) std::fill_n(X.begin() + d, d, T(0));  // a zero row (cosine convention)
    const index_t cols = sym ? n : m;
    std::vector<T> oc(static_cast<std::size_t>(n * cols), T(-1)), og(oc.size(), T(-2));
    const T* y = sym ? nullptr : Y.data();
    pairwise_distances<T>(X.data(), n, y, m, d, metric, oc.data(), kCpuThreads);
    cuda::pairwise_distances<T>(X.data(), n, y, m, d, metric, og.data());
    // tests/conftest.py::tolerance
    const double rtol = sizeof(T) == 4 ? 2e-4 : 1e-10, atol = sizeof(T) == 4 ? 1e-5 : 1e-12;
    double worst = 0, diff = 0;  // max |g - c| / (atol + rtol |c|), max |g - c|
    for (std::size_t e = 0; e < oc.size(); ++e) {
        const double c = oc[e], g = og[e];
        worst = std::max(worst, std::isfinite(g) ? std::abs(g - c) / (atol + rtol * std::abs(c)) : 1e300);
        diff = std::max(diff, std::abs(g - c));
    }
    std::size_t asym = 0;
    if (sym)
        for (index_t i = 0; i < n; ++i) {
            asym += og[i * n + i] != T(0);
            for (index_t j = 0; j < i; ++j) asym += og[i * n + j] != og[j * n + i];
        }
    detail("max |cuda - cpu| %.1e = %.3f of conftest's tolerance%s", diff, worst,
           sym ? fmt("; asymmetric %zu", asym).c_str() : "");
    return worst <= 1.0 && asym == 0;
}

void distance_cases(std::mt19937_64& rng) {
    const std::size_t big = std::size_t(1) << 30;
    const char* mname[] = {"sqeuclidean", "euclidean", "cosine"};
    int c = 0;
    for (const Metric metric : {Metric::sqeuclidean, Metric::euclidean, Metric::cosine}) {
        const char* mn = mname[static_cast<int>(metric)];
        run_case(fmt("distance double %s 70x40 d=13", mn), c++ % 3, big,
                 [&] { return distance_case<double>(rng, 70, 40, 13, metric, false); });
        run_case(fmt("distance double %s 90 sym d=9", mn), c++ % 3, big,
                 [&] { return distance_case<double>(rng, 90, 90, 9, metric, true); });
        run_case(fmt("distance float %s 150x130 d=21", mn), c++ % 3, big,
                 [&] { return distance_case<float>(rng, 150, 130, 21, metric, false); });
        run_case(fmt("distance float %s 140 sym d=5", mn), c++ % 3, big,
                 [&] { return distance_case<float>(rng, 140, 140, 5, metric, true); });
    }
    run_case("distance double euclidean 33x17 d=1", 0, big,
             [&] { return distance_case<double>(rng, 33, 17, 1, Metric::euclidean, false); });
    // More than 256 rows: several row blocks of the column-sum kernel (atomics across blocks).
    run_case("distance double sqeuclidean 300x290 d=3", 1, big,
             [&] { return distance_case<double>(rng, 300, 290, 3, Metric::sqeuclidean, false); });
    run_case("distance float euclidean 520 sym d=4", 2, big,
             [&] { return distance_case<float>(rng, 520, 520, 4, Metric::euclidean, true); });
    // d a multiple of the 16-byte vector (4 floats, 2 doubles): the vector loads and stores, tiles
    // wholly above the diagonal and tiles across it, several tiles in both directions.
    run_case("distance double euclidean 200 sym d=6", 0, big,
             [&] { return distance_case<double>(rng, 200, 200, 6, Metric::euclidean, true); });
    run_case("distance double cosine 150x66 d=10", 1, big,
             [&] { return distance_case<double>(rng, 150, 66, 10, Metric::cosine, false); });
    run_case("distance float sqeuclidean 270x132 d=12", 2, big,
             [&] { return distance_case<float>(rng, 270, 132, 12, Metric::sqeuclidean, false); });
    run_case("distance float euclidean 300 sym d=8", 0, big,
             [&] { return distance_case<float>(rng, 300, 300, 8, Metric::euclidean, true); });
}

// ---- cross products ------------------------------------------------------------------------------------

template <typename T>
bool stats_case(std::mt19937_64& rng, index_t n, index_t p, index_t q, bool sym, bool shifts) {
    std::normal_distribution<double> N;
    std::vector<T> A(static_cast<std::size_t>(n * p)), B(static_cast<std::size_t>(n * q));
    for (auto& x : A) x = static_cast<T>(1.0 + N(rng));
    for (auto& x : B) x = static_cast<T>(-2.0 + N(rng));
    if (sym) q = p;
    std::vector<double> a(static_cast<std::size_t>(p)), b(static_cast<std::size_t>(q));
    for (auto& x : a) x = 1.0 + 0.1 * N(rng);
    for (auto& x : b) x = -2.0 + 0.1 * N(rng);
    std::vector<double> C0(static_cast<std::size_t>(p * q));
    for (auto& x : C0) x = N(rng);  // accumulates into C
    if (sym)
        for (index_t i = 0; i < p; ++i)
            for (index_t j = 0; j < i; ++j) C0[i * p + j] = C0[j * p + i];
    auto Cc = C0, Cg = C0;
    std::vector<double> sac(static_cast<std::size_t>(p), 0.5), sag = sac, sbc(static_cast<std::size_t>(q), -0.5),
        sbg = sbc;
    const T* Bp = sym ? nullptr : B.data();
    const double* ap = shifts ? a.data() : nullptr;
    const double* bp = shifts ? b.data() : nullptr;
    cross_accumulate<T>(A.data(), n, p, ap, Bp, q, bp, Cc.data(), sac.data(), sbc.data(), kCpuThreads);
    cuda::cross_accumulate<T>(A.data(), n, p, ap, Bp, q, bp, Cg.data(), sag.data(), sbg.data());
    // Sums of n products formed in float64 in another order: ~n ulp of the sum of |terms|.
    const double rtol = 1e-10, atol = 1e-10;
    double worst = 0, diff = 0;
    auto cmp = [&](const std::vector<double>& c, const std::vector<double>& g) {
        for (std::size_t e = 0; e < c.size(); ++e) {
            worst = std::max(worst, std::isfinite(g[e]) ? std::abs(g[e] - c[e]) / (atol + rtol * std::abs(c[e])) : 1e300);
            diff = std::max(diff, std::abs(g[e] - c[e]));
        }
    };
    cmp(Cc, Cg);
    cmp(sac, sag);
    if (!sym) cmp(sbc, sbg);
    std::size_t asym = 0;
    if (sym)
        for (index_t i = 0; i < p; ++i)
            for (index_t j = 0; j < i; ++j) asym += Cg[i * p + j] != Cg[j * p + i];
    detail("C and sums: max |cuda - cpu| %.1e = %.3f of (1e-10 + 1e-10 |cpu|)%s", diff, worst,
           sym ? fmt("; asymmetric %zu", asym).c_str() : "");
    return worst <= 1.0 && asym == 0;
}

void stats_cases(std::mt19937_64& rng) {
    const std::size_t big = std::size_t(1) << 30;
    run_case("cross_accumulate double 100 rows 70x50 shifted", 0, big,
             [&] { return stats_case<double>(rng, 100, 70, 50, false, true); });
    run_case("cross_accumulate double 37 rows 130 sym shifted", 1, big,
             [&] { return stats_case<double>(rng, 37, 130, 130, true, true); });
    run_case("cross_accumulate float 90 rows 20x65 unshifted", 2, big,
             [&] { return stats_case<float>(rng, 90, 20, 65, false, false); });
    run_case("cross_accumulate float 50 rows 66 sym unshifted", 0, big,
             [&] { return stats_case<float>(rng, 50, 66, 66, true, false); });
    // More than 256 rows: several row blocks of the column-sum kernel (atomics across blocks).
    run_case("cross_accumulate double 600 rows 30x20 shifted", 1, big,
             [&] { return stats_case<double>(rng, 600, 30, 20, false, true); });
    run_case("cross_accumulate float 530 rows 70 sym shifted", 2, big,
             [&] { return stats_case<float>(rng, 530, 70, 70, true, true); });
}

// ---- eigensolver ---------------------------------------------------------------------------------------

struct Csr {
    index_t n = 0;
    std::vector<std::int64_t> indptr;
    std::vector<std::int32_t> indices;
    std::vector<double> data, q;
    CsrView view() const { return CsrView{n, indptr.data(), indices.data(), data.data()}; }
};

// The symmetric diffusion kernel T of n uniform points in a 2 x 1 rectangle (12 neighbours, alpha 1):
// its top eigenvalue 1 has the eigenvector sqrt(q) (deflated), the next ones are close together.
Csr diffusion_kernel(index_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> U;
    std::vector<double> Y(static_cast<std::size_t>(2 * n));
    for (index_t i = 0; i < n; ++i) {
        Y[2 * i] = 2.0 * U(rng);
        Y[2 * i + 1] = U(rng);
    }
    const index_t k = 12;
    std::vector<index_t> idx(static_cast<std::size_t>(n * k));
    std::vector<double> d2(idx.size());
    knn_sqeuclidean(Y.data(), n, 2, nullptr, n, k, idx.data(), d2.data(), kCpuThreads);
    const double eps = median_kth_distance(d2.data(), n, k, 6);
    DiffusionGraph g = diffusion_graph(idx.data(), d2.data(), n, k, eps, 1.0, kCpuThreads);
    Csr A;
    A.n = n;
    A.indptr = std::move(g.indptr);
    A.indices = std::move(g.indices);
    A.data = std::move(g.values);
    A.q = std::move(g.q);
    return A;
}

double true_residual(const Csr& A, const std::vector<double>& V, index_t nev, const std::vector<double>& th) {
    double worst = 0;
    for (index_t c = 0; c < nev; ++c) {
        double s = 0;
        for (index_t i = 0; i < A.n; ++i) {
            double acc = 0;
            for (auto e = A.indptr[i]; e < A.indptr[i + 1]; ++e) acc += A.data[e] * V[A.indices[e] * nev + c];
            const double r = acc - th[c] * V[i * nev + c];
            s += r * r;
        }
        worst = std::max(worst, std::sqrt(s));
    }
    return worst;
}

// max |V^T V - I| and max |V^T z| for V (n x nev row-major).
void orthogonality(const std::vector<double>& V, index_t n, index_t nev, const std::vector<double>& z,
                   double& orth, double& defl) {
    orth = defl = 0;
    for (index_t a = 0; a < nev; ++a) {
        double sz = 0;
        for (index_t i = 0; i < n; ++i) sz += V[i * nev + a] * z[i];
        defl = std::max(defl, std::abs(sz));
        for (index_t b = 0; b <= a; ++b) {
            double s = 0;
            for (index_t i = 0; i < n; ++i) s += V[i * nev + a] * V[i * nev + b];
            orth = std::max(orth, std::abs(s - (a == b ? 1.0 : 0.0)));
        }
    }
}

bool eigsh_case(const Csr& A, index_t nev, int degree) {
    std::vector<double> z(static_cast<std::size_t>(A.n));
    double s = 0;
    for (double x : A.q) s += x;
    for (index_t i = 0; i < A.n; ++i) z[i] = std::sqrt(A.q[i] / s);  // the top eigenvector, deflated
    EigshOptions opt;
    opt.tol = 1e-10;
    opt.seed = 7;
    opt.n_threads = kCpuThreads;
    opt.poly_degree = degree;
    opt.reorder = false;  // the CUDA solver never reorders: same iteration as the CPU
    const EigshResult rc = eigsh_largest(A.view(), nev, z.data(), 1, opt);
    // A broken device path may never converge: bound it (the CPU needed rc.n_matvec, and the same
    // bound would not have changed its result).
    opt.max_matvec = 2 * rc.n_matvec + 100;
    const EigshResult rg = cuda::eigsh_largest(A.view(), nev, z.data(), 1, opt);
    double dval = 0;
    for (index_t c = 0; c < nev; ++c) dval = std::max(dval, std::abs(rc.values[c] - rg.values[c]));
    double orth, defl;
    orthogonality(rg.vectors, A.n, nev, z, orth, defl);
    const double res_c = true_residual(A, rc.vectors, nev, rc.values);
    const double res_g = true_residual(A, rg.vectors, nev, rg.values);
    bool finite = true;
    for (double x : rg.vectors) finite &= std::isfinite(x);
    detail("lambda %.12f..%.12f; max|dlambda| %.1e; converged cpu %d cuda %d; |V'V-I| %.1e; |V'z| %.1e; "
           "residual cpu %.1e cuda %.1e (reported %.1e); matvecs cpu %lld cuda %lld",
           rg.values[0], rg.values[nev - 1], dval, rc.converged, rg.converged, orth, defl, res_c, res_g,
           rg.max_residual, (long long)rc.n_matvec, (long long)rg.n_matvec);
    return dval <= 1e-9 && rc.converged == rg.converged && rg.converged && orth <= 1e-10 && defl <= 1e-10 &&
           res_g < 1e-8 && finite;
}

void eigsh_cases() {
    // n = 2000 takes ~11 s with the assembly context switch; the ucontext fallback (other
    // platforms) is ~15 times slower, so it gets a smaller matrix (still the Lanczos path).
    const index_t n = emu::fast_switch ? 2000 : 600;
    const Csr A = diffusion_kernel(n, 9);
    const std::size_t big = std::size_t(1) << 30;
    run_case(fmt("eigsh n=%lld nnz=%lld nev=8 deflate=1 degree=1", (long long)n, (long long)A.indptr[n]), 2, big,
             [&] { return eigsh_case(A, 8, 1); });
    run_case(fmt("eigsh n=%lld nnz=%lld nev=8 deflate=1 degree=11", (long long)n, (long long)A.indptr[n]), 1, big,
             [&] { return eigsh_case(A, 8, 11); });
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> groups;
    bool list_sites = false;
    for (int a = 1; a < argc; ++a) {
        if (std::strcmp(argv[a], "--sites") == 0)
            list_sites = true;
        else
            groups.push_back(argv[a]);
    }
    const std::vector<std::pair<const char*, std::function<void(std::mt19937_64&)>>> all = {
        {"knn", knn_cases},
        {"rerank", rerank_cases},
        {"graph", graph_cases},
        {"distance", distance_cases},
        {"stats", stats_cases},
        {"eigsh", [](std::mt19937_64&) { eigsh_cases(); }},
    };
    for (const auto& g : groups)
        if (std::none_of(all.begin(), all.end(), [&](const auto& e) { return g == e.first; })) {
            std::printf("FAIL (unknown group '%s'; groups: knn rerank graph distance stats eigsh)\n", g.c_str());
            return 2;
        }
    signal(SIGALRM, on_alarm);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    const auto t0 = Clock::now();
    for (const auto& [name, run] : all) {
        if (!groups.empty() && std::find(groups.begin(), groups.end(), name) == groups.end()) continue;
        std::mt19937_64 rng(20240611);  // per group: a group's inputs do not depend on the others
        g_group = name;
        run(rng);
    }
    alarm(0);
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    // With every group run, every kernel launch site of the .cu files must have run at least once:
    // a new kernel (or a path of the host code) without a case here fails the test.
    int unlaunched = 0;
    if (groups.empty() || list_sites) {
        unlaunched = emu::report_unlaunched_sites(list_sites);
        if (unlaunched && groups.empty())
            std::printf("FAIL coverage: %d kernel launch site(s) above never ran; add cases for them\n", unlaunched);
        else
            unlaunched = 0;
    }
    if (n_failed || unlaunched)
        std::printf("FAIL (%d of %d cases%s; %.1fs)\n", n_failed, n_cases, unlaunched ? ", unexercised launch sites" : "",
                    secs);
    else
        std::printf("PASS (%d cases; %.1fs)\n", n_cases, secs);
    return n_failed || unlaunched ? 1 : 0;
}
