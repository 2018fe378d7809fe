// np.quantile of a symmetric matrix with a zero diagonal from its strict upper triangle. Sorted,
// the n^2 entries are the n diagonal zeros, then every triangle value twice (no entry is below
// zero), so the k-th order statistic of the matrix is 0 for k < n and the ((k - n) / 2)-th of the
// triangle above; numpy's interpolation between two order statistics is then redone in the same
// float64 operations.
//
// The triangle's order statistics: a sample of its values brackets the rank, one pass counts the
// values below the bracket and gathers those inside it, and a selection among those settles it
// (a copy and a selection of the whole triangle where the bracket misses, or for small n).
#include "latentbridge/symmetric_quantile.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "latentbridge/detail/check.hpp"

namespace latentbridge {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// The values of ranks h and h + 1 (h alone when it is the last) of `values`, by selection.
std::pair<double, double> select_pair(std::vector<double>& values, std::size_t h) {
    const auto at = values.begin() + static_cast<std::ptrdiff_t>(h);
    std::nth_element(values.begin(), at, values.end());
    const double next = h + 1 < values.size() ? *std::min_element(at + 1, values.end()) : *at;
    return {*at, next};
}

/// The values of ranks h and h + 1 of the strict upper triangle of D (ascending); NaN in both
/// when the triangle holds a NaN.
std::pair<double, double> upper_ranks(const double* D, index_t n, std::size_t h) {
    const std::size_t size = static_cast<std::size_t>(n * (n - 1) / 2);
    // the bracket [lo, hi] from a sample of s pseudo-random pairs i != j: h's rank in the sample
    // -+ 4 standard deviations of a sample quantile (its rank's, p (1 - p) s)
    double lo = -std::numeric_limits<double>::infinity(), hi = -lo;
    if (size >= (1u << 14)) {
        std::vector<double> sample;
        std::uint64_t state = 0x9e3779b97f4a7c15ULL;
        auto next = [&state, n]() {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            return static_cast<index_t>((state >> 33) % static_cast<std::uint64_t>(n));
        };
        constexpr std::size_t kSample = 2048;
        while (sample.size() < kSample) {
            const index_t i = next(), j = next();
            const double v = D[std::min(i, j) * n + std::max(i, j)];
            if (i != j && !std::isnan(v)) sample.push_back(v);
        }
        std::sort(sample.begin(), sample.end());
        const double s = static_cast<double>(kSample), p = static_cast<double>(h) / size;
        const double at = p * s, margin = 4.0 * std::sqrt(p * (1.0 - p) * s) + 2.0;
        if (at - margin >= 0.0) lo = sample[static_cast<std::size_t>(at - margin)];
        if (at + margin + 1.0 < s) hi = sample[static_cast<std::size_t>(at + margin + 1.0)];
    }
    std::vector<double> inside;
    std::size_t below = 0;
    bool nan = false;
    for (index_t i = 0; i + 1 < n; ++i) {
        const double* row = D + i * n;
        for (index_t j = i + 1; j < n; ++j) {
            const double v = row[j];
            nan |= std::isnan(v);
            below += v < lo ? 1u : 0u;
            if (v >= lo && v <= hi) inside.push_back(v);
        }
    }
    if (nan) return {kNaN, kNaN};  // numpy: NaN sorts last, then the quantile is NaN
    const std::size_t last = std::min(h + 1, size - 1);
    if (below <= h && last < below + inside.size()) return select_pair(inside, h - below);
    inside.clear();  // the bracket missed: the whole triangle
    inside.reserve(size);
    for (index_t i = 0; i + 1 < n; ++i)
        inside.insert(inside.end(), D + i * n + i + 1, D + (i + 1) * n);
    return select_pair(inside, h);
}

}  // namespace

double symmetric_quantile(const double* D, index_t n, double q) {
    LATENTBRIDGE_CHECK(n >= 1, "symmetric_quantile", "the matrix must have at least one row");
    LATENTBRIDGE_CHECK(q >= 0.0 && q <= 1.0, "symmetric_quantile", "q must lie in [0, 1]");
    // numpy's "linear" method: virtual index (N - 1) q between the order statistics floor and
    // floor + 1, both the last one (and gamma = index + 1, numpy's bookkeeping) from N - 1 on
    const std::int64_t count = static_cast<std::int64_t>(n) * n;
    const double virtual_index = static_cast<double>(count - 1) * q;
    std::int64_t k0, k1;
    double gamma;
    if (virtual_index >= static_cast<double>(count - 1)) {
        k0 = k1 = count - 1;
        gamma = virtual_index + 1.0;
    } else {
        const double below = std::floor(virtual_index);
        k0 = static_cast<std::int64_t>(below);
        k1 = k0 + 1;
        gamma = virtual_index - below;
    }
    // order statistic k of the matrix: 0 below n, else rank (k - n) / 2 of the triangle
    double a = 0.0, b = 0.0;
    if (k1 >= n) {
        const std::int64_t first = k0 >= n ? k0 : k1;
        const std::size_t h = static_cast<std::size_t>((first - n) / 2);
        const auto [x, y] = upper_ranks(D, n, h);
        if (std::isnan(x)) return kNaN;
        if (k0 >= n) a = x;
        b = (k1 - n) / 2 == static_cast<std::int64_t>(h) ? x : y;
    } else if (n > 1 && std::isnan(upper_ranks(D, n, 0).first)) {
        return kNaN;  // both order statistics are diagonal zeros, but numpy still gives NaN
    }
    // numpy's _lerp: a + (b - a) t, or b - (b - a) (1 - t) from t = 0.5 on
    const double diff = b - a;
    return gamma >= 0.5 ? b - diff * (1.0 - gamma) : a + diff * gamma;
}

}  // namespace latentbridge
