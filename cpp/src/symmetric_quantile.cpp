// np.quantile of a symmetric matrix with a zero diagonal from its strict upper triangle. Sorted,
// the n^2 entries are the n diagonal zeros, then every triangle value twice (no entry is below
// zero), so the k-th order statistic of the matrix is 0 for k < n and the ((k - n) / 2)-th of the
// triangle above; numpy's interpolation between two order statistics is then redone in the same
// float64 operations.
#include "latentbridge/symmetric_quantile.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "latentbridge/detail/check.hpp"

namespace latentbridge {

double symmetric_quantile(const double* D, index_t n, double q) {
    LATENTBRIDGE_CHECK(n >= 1, "symmetric_quantile", "the matrix must have at least one row");
    LATENTBRIDGE_CHECK(q >= 0.0 && q <= 1.0, "symmetric_quantile", "q must lie in [0, 1]");
    std::vector<double> upper;
    upper.reserve(static_cast<std::size_t>(n * (n - 1) / 2));
    bool nan = false;
    for (index_t i = 0; i + 1 < n; ++i) {
        const double* row = D + i * n;
        for (index_t j = i + 1; j < n; ++j) {
            nan |= std::isnan(row[j]);
            upper.push_back(row[j]);
        }
    }
    if (nan) return std::numeric_limits<double>::quiet_NaN();  // numpy: NaN sorts last, then NaN

    // The order statistic k of the full matrix; ascending k, so that the selection of the first
    // leaves the second as the least value after it.
    std::size_t selected = upper.size();  // the triangle index nth_element last settled
    auto order_statistic = [&](std::int64_t k) {
        if (k < n) return 0.0;
        const std::size_t h = static_cast<std::size_t>((k - n) / 2);
        if (h == selected) return upper[h];
        if (h == selected + 1) {  // everything past `selected` is >= it: the least of them
            const double least = *std::min_element(upper.begin() + h, upper.end());
            return least;
        }
        std::nth_element(upper.begin(), upper.begin() + static_cast<std::ptrdiff_t>(h),
                         upper.end());
        selected = h;
        return upper[h];
    };

    // numpy's "linear" method: virtual index (N - 1) q between the order statistics floor and
    // floor + 1, both the last one (and gamma = index + 1, numpy's bookkeeping) from N - 1 on
    const std::int64_t count = static_cast<std::int64_t>(n) * n;
    const double virtual_index = static_cast<double>(count - 1) * q;
    double a, b, gamma;
    if (virtual_index >= static_cast<double>(count - 1)) {
        a = b = order_statistic(count - 1);
        gamma = virtual_index + 1.0;
    } else {
        const double below = std::floor(virtual_index);
        const std::int64_t k = static_cast<std::int64_t>(below);
        a = order_statistic(k);
        b = order_statistic(k + 1);
        gamma = virtual_index - below;
    }
    // numpy's _lerp: a + (b - a) t, or b - (b - a) (1 - t) from t = 0.5 on
    const double diff = b - a;
    return gamma >= 0.5 ? b - diff * (1.0 - gamma) : a + diff * gamma;
}

}  // namespace latentbridge
