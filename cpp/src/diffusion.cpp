// Mahalanobis re-ranking, kernel-graph assembly and normalisation for diffusion maps. Memory is
// O(n k): the candidates, the kept lists and the CSR graph; no n x n matrix is ever formed.
#include "latentbridge/diffusion.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "latentbridge/detail/check.hpp"
#include "latentbridge/detail/parallel.hpp"
#include "latentbridge/eigsh.hpp"

namespace latentbridge {
namespace {

// |G (b - a)|^2 for a factor G (r x m).
inline double form(const double* G, const double* diff, index_t r, index_t m) {
    double acc = 0.0;
    for (index_t s = 0; s < r; ++s) {
        const double* g = G + s * m;
        double z = 0.0;
        for (index_t t = 0; t < m; ++t) z += g[t] * diff[t];
        acc += z * z;
    }
    return acc;
}

}  // namespace

void mahalanobis_rerank(const double* Y, const double* G, index_t n, index_t m, index_t r,
                        const double* Yq, const double* Gq, index_t nq, const index_t* cand,
                        index_t kc, index_t k, index_t* idx, double* d2, int n_threads,
                        const index_t* order) {
    const char* op = "mahalanobis_rerank";
    LATENTBRIDGE_CHECK(n >= 1 && m >= 1 && r >= 1 && k >= 1 && k <= kc, op,
                       "need n, m, r >= 1 and 1 <= k <= kc");
    const bool self = Yq == nullptr;
    if (self) nq = n;
    const index_t block = 512;
    const index_t n_blocks = (nq + block - 1) / block;
    parallel_for(n_blocks, n_threads, [&](index_t b, int) {
        std::vector<std::pair<double, index_t>> buf(static_cast<std::size_t>(kc));
        std::vector<double> diff(static_cast<std::size_t>(m));
        for (index_t t = b * block; t < std::min(nq, (b + 1) * block); ++t) {
            const index_t i = order ? order[t] : t;
            LATENTBRIDGE_CHECK(i >= 0 && i < nq, op, "order must be a permutation of the queries");
            index_t cnt = 0;
            for (index_t c = 0; c < kc; ++c) {
                const index_t j = cand[i * kc + c];
                if (j < 0) continue;
                LATENTBRIDGE_CHECK(j < n, op, "candidate index out of range");
                double v;
                if (self) {
                    // canonical order (lo, hi) so that d2(i, j) and d2(j, i) are the same bits
                    const index_t lo = std::min(i, j), hi = std::max(i, j);
                    for (index_t t = 0; t < m; ++t) diff[t] = Y[hi * m + t] - Y[lo * m + t];
                    v = form(G + lo * r * m, diff.data(), r, m) +
                        form(G + hi * r * m, diff.data(), r, m);
                } else {
                    for (index_t t = 0; t < m; ++t) diff[t] = Y[j * m + t] - Yq[i * m + t];
                    v = form(Gq + i * r * m, diff.data(), r, m) +
                        form(G + j * r * m, diff.data(), r, m);
                }
                buf[cnt++] = {v, j};
            }
            LATENTBRIDGE_CHECK(cnt >= k, op, "fewer valid candidates than neighbours requested");
            std::partial_sort(buf.begin(), buf.begin() + k, buf.begin() + cnt);
            for (index_t t = 0; t < k; ++t) {
                idx[i * k + t] = buf[t].second;
                d2[i * k + t] = buf[t].first;
            }
        }
    });
}

void batched_eigh(const double* A, index_t n, index_t m, double* w, double* V, int n_threads) {
    LATENTBRIDGE_CHECK(n >= 0 && m >= 1, "batched_eigh", "need m >= 1");
    using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const index_t block = 1024;
    parallel_for((n + block - 1) / block, n_threads, [&](index_t b, int) {
        Eigen::SelfAdjointEigenSolver<Mat> es(m);
        for (index_t i = b * block; i < std::min(n, (b + 1) * block); ++i) {
            const Eigen::Map<const Mat> Ai(A + i * m * m, m, m);
            es.compute(Ai, Eigen::ComputeEigenvectors);
            LATENTBRIDGE_CHECK(es.info() == Eigen::Success, "batched_eigh", "no convergence");
            Eigen::Map<Eigen::VectorXd>(w + i * m, m) = es.eigenvalues();
            Eigen::Map<Mat>(V + i * m * m, m, m) = es.eigenvectors();
        }
    });
}

double median_kth_distance(const double* d2, index_t n, index_t k, index_t k_eps) {
    LATENTBRIDGE_CHECK(n >= 1 && k_eps >= 1 && k_eps <= k, "median_kth_distance",
                       "need 1 <= k_eps <= k");
    std::vector<double> v(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) v[i] = d2[i * k + k_eps - 1];
    const std::size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + mid, v.end());
    double med = v[mid];
    if (v.size() % 2 == 0) {
        const double lower = *std::max_element(v.begin(), v.begin() + mid);
        med = 0.5 * (med + lower);
    }
    return med;
}

void check_graph_args(const index_t* idx, const double* d2, index_t n, index_t k, double epsilon,
                      double alpha) {
    const char* op = "diffusion_graph";
    LATENTBRIDGE_CHECK(n >= 1 && k >= 0, op, "need n >= 1 and k >= 0");
    LATENTBRIDGE_CHECK(n < std::numeric_limits<std::int32_t>::max(), op,
                       "too many points for 32-bit indices");
    LATENTBRIDGE_CHECK(epsilon > 0 && std::isfinite(epsilon), op,
                       "epsilon must be positive and finite");
    LATENTBRIDGE_CHECK(alpha >= 0 && std::isfinite(alpha), op,
                       "alpha must be non-negative and finite");
    for (index_t i = 0; i < n; ++i) {
        for (index_t t = 0; t < k; ++t) {
            const index_t j = idx[i * k + t];
            if (j < 0 || j == i) continue;
            LATENTBRIDGE_CHECK(j < n, op, "neighbour index out of range");
            const double v = d2[i * k + t];
            LATENTBRIDGE_CHECK(v >= 0 && std::isfinite(v), op,
                               "squared distances must be non-negative and finite");
        }
    }
}

DiffusionGraph diffusion_graph(const index_t* idx, const double* d2, index_t n, index_t k,
                               double epsilon, double alpha, int n_threads) {
    check_graph_args(idx, d2, n, k, epsilon, alpha);
    // 1. Row counts of the directed edges in both directions (duplicates removed later).
    std::vector<std::int64_t> count(static_cast<std::size_t>(n + 1), 0);
    for (index_t i = 0; i < n; ++i) {
        count[i + 1] += 1;  // diagonal
        for (index_t t = 0; t < k; ++t) {
            const index_t j = idx[i * k + t];
            if (j < 0 || j == i) continue;
            count[i + 1] += 1;
            count[j + 1] += 1;
        }
    }
    for (index_t i = 0; i < n; ++i) count[i + 1] += count[i];
    std::vector<std::pair<std::int32_t, double>> edges(static_cast<std::size_t>(count[n]));
    {
        std::vector<std::int64_t> fill(count.begin(), count.end() - 1);
        for (index_t i = 0; i < n; ++i) {
            edges[fill[i]++] = {static_cast<std::int32_t>(i), 0.0};
            for (index_t t = 0; t < k; ++t) {
                const index_t j = idx[i * k + t];
                if (j < 0 || j == i) continue;
                const double v = d2[i * k + t];
                edges[fill[i]++] = {static_cast<std::int32_t>(j), v};
                edges[fill[j]++] = {static_cast<std::int32_t>(i), v};
            }
        }
    }
    // 2. Sort each row, merge duplicates (keep the smaller distance: both are the same pair).
    std::vector<std::int64_t> kept(static_cast<std::size_t>(n), 0);
    parallel_for((n + 1023) / 1024, n_threads, [&](index_t b, int) {
        for (index_t i = b * 1024; i < std::min(n, (b + 1) * 1024); ++i) {
            auto first = edges.begin() + count[i], last = edges.begin() + count[i + 1];
            std::sort(first, last);
            auto out = first;
            for (auto it = first; it != last; ++it) {
                if (out != first && (out - 1)->first == it->first) continue;  // sorted: min first
                *out++ = *it;
            }
            kept[i] = out - first;
        }
    });
    DiffusionGraph g;
    g.n = n;
    g.indptr.assign(static_cast<std::size_t>(n + 1), 0);
    for (index_t i = 0; i < n; ++i) g.indptr[i + 1] = g.indptr[i] + kept[i];
    const std::int64_t nnz = g.indptr[n];
    g.indices.resize(static_cast<std::size_t>(nnz));
    g.values.resize(static_cast<std::size_t>(nnz));
    g.p.assign(static_cast<std::size_t>(n), 0.0);
    g.q.assign(static_cast<std::size_t>(n), 0.0);
    const double inv2eps = 1.0 / (2.0 * epsilon);
    auto blocks = (n + 1023) / 1024;
    // 3. Kernel values and p = K 1.
    parallel_for(blocks, n_threads, [&](index_t b, int) {
        for (index_t i = b * 1024; i < std::min(n, (b + 1) * 1024); ++i) {
            double sum = 0.0;
            for (std::int64_t e = 0; e < kept[i]; ++e) {
                const auto& ed = edges[count[i] + e];
                const std::int64_t pos = g.indptr[i] + e;
                g.indices[pos] = ed.first;
                const double kv = std::exp(-ed.second * inv2eps);
                g.values[pos] = kv;
                sum += kv;
            }
            g.p[i] = sum;
        }
    });
    std::vector<std::pair<std::int32_t, double>>().swap(edges);
    // 4. W = P^-alpha K P^-alpha, q = W 1; then T = Q^-1/2 W Q^-1/2 (products commute: symmetric).
    std::vector<double> ip(static_cast<std::size_t>(n)), iq(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) ip[i] = std::pow(g.p[i], -alpha);
    parallel_for(blocks, n_threads, [&](index_t b, int) {
        for (index_t i = b * 1024; i < std::min(n, (b + 1) * 1024); ++i) {
            double sum = 0.0;
            for (std::int64_t e = g.indptr[i]; e < g.indptr[i + 1]; ++e) {
                const double w = g.values[e] * (ip[i] * ip[g.indices[e]]);
                g.values[e] = w;
                sum += w;
            }
            g.q[i] = sum;
        }
    });
    for (index_t i = 0; i < n; ++i) iq[i] = 1.0 / std::sqrt(g.q[i]);
    parallel_for(blocks, n_threads, [&](index_t b, int) {
        for (index_t i = b * 1024; i < std::min(n, (b + 1) * 1024); ++i)
            for (std::int64_t e = g.indptr[i]; e < g.indptr[i + 1]; ++e)
                g.values[e] *= iq[i] * iq[g.indices[e]];
    });
    return g;
}

std::int64_t diffusion_workspace_bytes(index_t n, index_t k, index_t kc, index_t nev) {
    return 88 * n * k + 16 * n * kc + eigsh_workspace_bytes(n, nev, 1, EigshOptions{});
}

}  // namespace latentbridge
