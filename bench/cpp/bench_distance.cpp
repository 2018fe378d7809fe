// C++ benchmark of the pairwise-distance kernel: median wall time of repeated calls after a warm-up,
// for each instruction set this CPU supports, with the achieved GEMM rate.
// Usage: bench_distance [n=20000] [d=512] [threads=2] [repeat=3] [float|double]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "latentbridge/distance.hpp"
#include "latentbridge/detail/gemm.hpp"

namespace lb = latentbridge;

template <typename T>
void run(lb::index_t n, lb::index_t d, int threads, int repeat) {
    std::mt19937_64 gen(0);
    std::normal_distribution<double> normal;
    std::vector<T> X(static_cast<std::size_t>(n * d));
    for (auto& v : X) v = static_cast<T>(normal(gen));
    std::vector<T> out(static_cast<std::size_t>(n * n));
    for (const auto& isa : lb::available_simd_isas()) {
        lb::set_simd_isa(isa);
        lb::pairwise_distances<T>(X.data(), std::min<lb::index_t>(n, 1000), nullptr, 0, d,
                                  lb::Metric::euclidean, out.data(), threads);
        std::vector<double> times;
        for (int r = 0; r < repeat; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            lb::pairwise_distances<T>(X.data(), n, nullptr, 0, d, lb::Metric::euclidean, out.data(),
                                      threads);
            times.push_back(
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(times.begin(), times.end());
        const double med = times[times.size() / 2];
        const double flops = static_cast<double>(n) * n * d;  // half the matrix, 2 flops per FMA
        std::printf("%-8s %-7s n=%lld d=%lld threads=%d  median %.3f s  %.1f GFLOP/s\n",
                    sizeof(T) == 4 ? "float" : "double", isa.c_str(), static_cast<long long>(n),
                    static_cast<long long>(d), threads, med, flops / med / 1e9);
    }
}

int main(int argc, char** argv) {
    const lb::index_t n = argc > 1 ? std::atoll(argv[1]) : 20000;
    const lb::index_t d = argc > 2 ? std::atoll(argv[2]) : 512;
    const int threads = argc > 3 ? std::atoi(argv[3]) : 2;
    const int repeat = argc > 4 ? std::atoi(argv[4]) : 3;
    const std::string type = argc > 5 ? argv[5] : "float";
    if (type == "double")
        run<double>(n, d, threads, repeat);
    else
        run<float>(n, d, threads, repeat);
    return 0;
}
