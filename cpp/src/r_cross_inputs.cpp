// The float32 inputs of the R-Cross-Barcode engine from the normalised float64 matrices: a
// conversion (round to nearest, as numpy's astype), the snapping of entries below eps to +0 and
// the minimum, in one pass over blocks of rows.
#include "latentbridge/r_cross_inputs.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "latentbridge/detail/parallel.hpp"

namespace latentbridge {

int r_cross_inputs(const double* r1, const double* r2, index_t n, double eps, float* w, float* m,
                   int n_threads) {
    constexpr double kMax = std::numeric_limits<float>::max();
    constexpr index_t kRows = 64;
    std::atomic<int> beyond{0};
    // a value float cannot hold (finite, above its range) would make the cast undefined: flagged
    // and written as 0
    const auto to_float = [eps, kMax](double v, bool& bad) {
        bad |= v > kMax && !std::isinf(v);
        return v < eps || (v > kMax && !std::isinf(v)) ? 0.0f : static_cast<float>(v);
    };
    parallel_for((n + kRows - 1) / kRows, n_threads, [&](index_t block, int) {
        const std::size_t begin = static_cast<std::size_t>(block * kRows * n);
        const std::size_t end = static_cast<std::size_t>(std::min(n, (block + 1) * kRows) * n);
        bool bad1 = false, bad2 = false;
        for (std::size_t t = begin; t < end; ++t) {
            const float wv = to_float(r1[t], bad1), mv = to_float(r2[t], bad2);
            w[t] = wv;
            m[t] = mv <= wv ? mv : wv;  // np.minimum(m, w): m where equal
        }
        if (bad1) beyond.fetch_or(1);
        if (bad2) beyond.fetch_or(2);
    });
    const int flags = beyond.load();
    return flags & 1 ? 1 : flags & 2 ? 2 : 0;
}

}  // namespace latentbridge
