// Streamed cross products in float64. Each call transposes (and converts, and shifts) a block of
// rows of A and B into float64 column panels, then hands output tiles of C to the dot-tile kernel
// of gemm.hpp, one tile per task over the threads, adding each finished tile into C. The k (row)
// dimension is cut into blocks so the transposed copies stay small whatever the chunk size.
#include "latentbridge/stats.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "latentbridge/detail/check.hpp"
#include "latentbridge/detail/gemm.hpp"
#include "latentbridge/detail/parallel.hpp"

namespace latentbridge {
namespace {

constexpr index_t kBlockRows = 2048;  // rows of A/B transposed at once (the kernel's depth)
constexpr index_t kTr = 32;           // transpose tile

// dst (p x kb, row-major) = (src[r0 : r0 + kb, :] - shift)^T in double; sums += column sums.
template <typename T>
void transpose_block(const T* src, index_t p, index_t r0, index_t kb, const double* shift,
                     double* dst, int n_threads) {
    const index_t col_tiles = (p + kTr - 1) / kTr;
    parallel_for(col_tiles, n_threads, [&](index_t ct, int) {
        const index_t c0 = ct * kTr, c1 = std::min(p, c0 + kTr);
        for (index_t i0 = 0; i0 < kb; i0 += kTr) {
            const index_t i1 = std::min(kb, i0 + kTr);
            for (index_t i = i0; i < i1; ++i) {
                const T* row = src + (r0 + i) * p;
                for (index_t c = c0; c < c1; ++c) {
                    const double v = static_cast<double>(row[c]);
                    dst[c * kb + i] = shift ? v - shift[c] : v;
                }
            }
        }
    });
}

void add_row_sums(const double* M, index_t rows, index_t cols, double* sums) {
    if (!sums) return;
    for (index_t r = 0; r < rows; ++r) {
        const double* m = M + r * cols;
        double acc = 0.0;
        for (index_t c = 0; c < cols; ++c) acc += m[c];
        sums[r] += acc;
    }
}

}  // namespace

template <typename T>
void cross_accumulate(const T* A, index_t n, index_t p, const double* a, const T* B, index_t q,
                      const double* b, double* C, double* sum_a, double* sum_b, int n_threads) {
    const char* op = "cross_accumulate";
    LATENTBRIDGE_CHECK(n >= 0 && p >= 0 && q >= 0, op, "negative size");
    LATENTBRIDGE_CHECK(A != nullptr && C != nullptr, op, "null pointer");
    const bool sym = (B == nullptr);
    if (sym) q = p;
    n_threads = std::max(1, n_threads);
    if (n > 0 && p > 0 && q > 0) {
        const auto& K = dot_tile_kernel<double>();
        const index_t mc = K.mc, nc = K.nc;
        const index_t row_tiles = (p + mc - 1) / mc, col_tiles = (q + nc - 1) / nc;
        std::vector<std::pair<index_t, index_t>> tiles;
        for (index_t bi = 0; bi < row_tiles; ++bi)
            for (index_t bj = 0; bj < col_tiles; ++bj)
                if (!sym || std::min(q, (bj + 1) * nc) - 1 >= bi * mc) tiles.emplace_back(bi, bj);
        const index_t kb_max = std::min(n, kBlockRows);
        std::vector<double> At(static_cast<std::size_t>(p * kb_max));
        std::vector<double> Bt(sym ? 0 : static_cast<std::size_t>(q * kb_max));
        const int workers = std::max(1, std::min<int>(n_threads, static_cast<int>(tiles.size())));
        std::vector<std::vector<double>> work(workers), cbuf(workers);
        for (index_t r0 = 0; r0 < n; r0 += kBlockRows) {
            const index_t kb = std::min(kBlockRows, n - r0);
            transpose_block(A, p, r0, kb, a, At.data(), n_threads);
            add_row_sums(At.data(), p, kb, sum_a);
            const double* Bp = At.data();
            if (!sym) {
                transpose_block(B, q, r0, kb, b, Bt.data(), n_threads);
                add_row_sums(Bt.data(), q, kb, sum_b);
                Bp = Bt.data();
            }
            parallel_for(static_cast<index_t>(tiles.size()), workers, [&](index_t t, int w) {
                if (work[w].empty()) {
                    work[w].resize(K.work_size);
                    cbuf[w].resize(static_cast<std::size_t>(mc * nc));
                }
                const index_t i0 = tiles[t].first * mc, j0 = tiles[t].second * nc;
                const index_t rows = std::min(mc, p - i0), cols = std::min(nc, q - j0);
                double* tile = cbuf[w].data();
                K.run(At.data() + i0 * kb, kb, rows, Bp + j0 * kb, kb, cols, kb, nullptr, tile, nc,
                      work[w].data());
                for (index_t ii = 0; ii < rows; ++ii) {
                    const index_t i = i0 + ii;
                    const index_t jj0 = sym ? std::max<index_t>(0, i - j0) : 0;
                    double* c = C + i * q + j0;
                    const double* s = tile + ii * nc;
                    for (index_t jj = jj0; jj < cols; ++jj) c[jj] += s[jj];
                }
            });
        }
    } else if (n > 0) {
        // no products to form, but the sums still count
        for (index_t i = 0; i < n; ++i) {
            if (sum_a)
                for (index_t c = 0; c < p; ++c) sum_a[c] += double(A[i * p + c]) - (a ? a[c] : 0.0);
            if (!sym && sum_b)
                for (index_t c = 0; c < q; ++c) sum_b[c] += double(B[i * q + c]) - (b ? b[c] : 0.0);
        }
    }
    if (sym)
        for (index_t i = 0; i < p; ++i)
            for (index_t j = 0; j < i; ++j) C[i * p + j] = C[j * p + i];
}

template void cross_accumulate<float>(const float*, index_t, index_t, const double*, const float*,
                                      index_t, const double*, double*, double*, double*, int);
template void cross_accumulate<double>(const double*, index_t, index_t, const double*,
                                       const double*, index_t, const double*, double*, double*,
                                       double*, int);

}  // namespace latentbridge
