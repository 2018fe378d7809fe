// Pairwise distances: tiles of the GEMM form on mean-shifted data (the shift removes most of the
// cancellation of ||x||^2 + ||y||^2 - 2 x.y for data far from the origin), an epilogue in double,
// and a direct recomputation of the few pairs whose squared distance is small against their norms.
// Y = X computes only the upper triangle and mirrors it: exactly symmetric, exactly zero diagonal.
#include "latentbridge/distance.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "latentbridge/detail/check.hpp"
#include "latentbridge/detail/gemm.hpp"
#include "latentbridge/detail/parallel.hpp"

namespace latentbridge {
namespace {

template <typename T>
double direct_sqdist(const T* x, const T* y, index_t d) {
    double acc = 0.0;
    for (index_t k = 0; k < d; ++k) {
        const double t = static_cast<double>(x[k]) - static_cast<double>(y[k]);
        acc += t * t;
    }
    return acc;
}

}  // namespace

template <typename T>
void pairwise_distances(const T* X, index_t n, const T* Y, index_t m, index_t d, Metric metric,
                        T* out, int n_threads) {
    const char* op = "pairwise_distances";
    LATENTBRIDGE_CHECK(n >= 0 && m >= 0 && d >= 0, op, "negative size");
    const bool sym = (Y == nullptr);
    if (sym) {
        Y = X;
        m = n;
    }
    if (n == 0 || m == 0) return;
    const auto& K = dot_tile_kernel<T>();
    const bool cosine = metric == Metric::cosine;

    // Shift (euclidean): the mean of all rows of X and Y; squared norms of the shifted rows.
    std::vector<T> shift;
    if (!cosine) {
        std::vector<double> acc(static_cast<std::size_t>(d), 0.0);
        for (index_t i = 0; i < n; ++i)
            for (index_t k = 0; k < d; ++k) acc[k] += X[i * d + k];
        if (!sym)
            for (index_t j = 0; j < m; ++j)
                for (index_t k = 0; k < d; ++k) acc[k] += Y[j * d + k];
        const double cnt = static_cast<double>(sym ? n : n + m);
        shift.resize(static_cast<std::size_t>(d));
        for (index_t k = 0; k < d; ++k) shift[k] = static_cast<T>(acc[k] / cnt);
    }
    auto norms = [&](const T* Z, index_t rows) {
        std::vector<double> nz(static_cast<std::size_t>(rows));
        parallel_for((rows + 1023) / 1024, n_threads, [&](index_t b, int) {
            for (index_t i = b * 1024; i < std::min(rows, (b + 1) * 1024); ++i) {
                double acc = 0.0;
                for (index_t k = 0; k < d; ++k) {
                    // the same rounding as the packed operand of the kernel
                    const double v =
                        cosine ? Z[i * d + k] : static_cast<T>(Z[i * d + k] - shift[k]);
                    acc += v * v;
                }
                nz[i] = acc;
            }
        });
        return nz;
    };
    const std::vector<double> nx = norms(X, n);
    const std::vector<double> ny = sym ? nx : norms(Y, m);
    std::vector<double> inx, iny;
    if (cosine) {
        auto inv = [](const std::vector<double>& v) {
            std::vector<double> r(v.size());
            for (std::size_t i = 0; i < v.size(); ++i)
                r[i] = v[i] > 0 ? 1.0 / std::sqrt(v[i]) : 0.0;
            return r;
        };
        inx = inv(nx);
        iny = sym ? inx : inv(ny);
    }

    // Output tiles; with Y = X only those touching the upper triangle.
    const index_t mc = K.mc, nc = K.nc;
    const index_t row_tiles = (n + mc - 1) / mc, col_tiles = (m + nc - 1) / nc;
    std::vector<std::pair<index_t, index_t>> tiles;
    for (index_t bi = 0; bi < row_tiles; ++bi)
        for (index_t bj = 0; bj < col_tiles; ++bj)
            if (!sym || std::min(m, (bj + 1) * nc) - 1 > bi * mc) tiles.emplace_back(bi, bj);

    const int workers = std::max(1, std::min<int>(n_threads, static_cast<int>(tiles.size())));
    std::vector<std::vector<T>> work(workers), cbuf(workers);
    const T* s = cosine ? nullptr : shift.data();
    const double ratio = distance_recompute_ratio<T>();
    parallel_for(static_cast<index_t>(tiles.size()), workers, [&](index_t t, int w) {
        if (work[w].empty()) {
            work[w].resize(K.work_size);
            cbuf[w].resize(static_cast<std::size_t>(mc * nc));
        }
        const index_t i0 = tiles[t].first * mc, j0 = tiles[t].second * nc;
        const index_t rows = std::min(mc, n - i0), cols = std::min(nc, m - j0);
        T* C = cbuf[w].data();
        K.run(X + i0 * d, d, rows, Y + j0 * d, d, cols, d, s, C, nc, work[w].data());
        for (index_t ii = 0; ii < rows; ++ii) {
            const index_t i = i0 + ii;
            const index_t jj_start = sym ? std::max<index_t>(0, i + 1 - j0) : 0;
            T* o = out + i * m + j0;
            const T* c = C + ii * nc;
            if (cols <= jj_start) continue;
            const index_t count = cols - jj_start;
            if (cosine) {
                K.cos_epilogue(c + jj_start, iny.data() + j0 + jj_start, inx[i], count,
                               o + jj_start);
            } else if (K.sq_epilogue(c + jj_start, ny.data() + j0 + jj_start, nx[i], count, ratio,
                                     metric == Metric::euclidean, o + jj_start)) {
                for (index_t jj = jj_start; jj < cols; ++jj) {  // rare: cancellation-prone pairs
                    const index_t j = j0 + jj;
                    const double scale = nx[i] + ny[j];
                    if (scale - 2.0 * static_cast<double>(c[jj]) >= ratio * scale) continue;
                    const double d2 = direct_sqdist(X + i * d, Y + j * d, d);
                    o[jj] = static_cast<T>(metric == Metric::euclidean ? std::sqrt(d2) : d2);
                }
            }
        }
        if (sym) {  // mirror the computed part below the diagonal; write destination rows in order
            for (index_t jj = 0; jj < cols; ++jj) {
                const index_t j = j0 + jj;
                const index_t ii_end = std::min(rows, j - i0);  // rows i < j
                for (index_t ii = 0; ii < ii_end; ++ii)
                    out[j * m + i0 + ii] = out[(i0 + ii) * m + j];
            }
        }
    });
    if (sym)
        for (index_t i = 0; i < n; ++i) out[i * m + i] = T(0);
}

template void pairwise_distances<float>(const float*, index_t, const float*, index_t, index_t,
                                        Metric, float*, int);
template void pairwise_distances<double>(const double*, index_t, const double*, index_t, index_t,
                                         Metric, double*, int);

}  // namespace latentbridge
