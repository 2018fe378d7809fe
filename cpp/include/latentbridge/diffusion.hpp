// Building blocks of (Mahalanobis) diffusion maps on a sparse neighbourhood graph: exact re-ranking
// of Euclidean candidates by the pairwise quadratic form (y_i - y_j)^T (C_i + C_j) (y_i - y_j) with
// low-rank factors C_i = G_i^T G_i, the symmetric union kernel graph in CSR form, and its alpha-
// and symmetric normalisation (Coifman & Lafon 2006; Bertalan, Dietrich, Kevrekidis et al.,
// Algorithm 1).
#pragma once

#include <cstdint>
#include <vector>

#include "latentbridge/types.hpp"

namespace latentbridge {

/// Re-rank candidate neighbours by the Mahalanobis form and keep the k nearest.
/// Y (n x m) training points and G (n x r x m) their factors (C_j = G_j^T G_j), row-major.
/// Queries: Yq (nq x m) and Gq (nq x r x m); Yq == nullptr means the queries are the training
/// points themselves (then each pair is evaluated in a canonical order, so d2(i, j) == d2(j, i)
/// bit for bit). cand (nq x kc) holds candidate indices into Y (entries < 0 are ignored).
/// Writes idx, d2 (nq x k), sorted by (d2, index). Requires k <= kc. order (nq, optional) is the
/// order in which the queries are processed (e.g. kdtree_order: neighbouring queries share their
/// candidates' data in cache); it does not change the result.
void mahalanobis_rerank(const double* Y, const double* G, index_t n, index_t m, index_t r,
                        const double* Yq, const double* Gq, index_t nq, const index_t* cand,
                        index_t kc, index_t k, index_t* idx, double* d2, int n_threads,
                        const index_t* order = nullptr);

/// Eigen-decomposition of n symmetric m x m matrices A (n x m x m, row-major; only the lower
/// triangle is read): eigenvalues ascending into w (n x m), eigenvectors as the columns of each
/// V_i (n x m x m, row-major), as numpy.linalg.eigh. Threads over the matrices.
void batched_eigh(const double* A, index_t n, index_t m, double* w, double* V, int n_threads);

/// Median over the rows of the squared distance to the k_eps-th neighbour (1-based column
/// k_eps - 1 of the sorted (n x k) matrix d2).
double median_kth_distance(const double* d2, index_t n, index_t k, index_t k_eps);

/// Symmetric normalised diffusion kernel on the union of the k-NN lists (plus the diagonal).
struct DiffusionGraph {
    index_t n = 0;
    std::vector<std::int64_t> indptr;   ///< n + 1 row offsets
    std::vector<std::int32_t> indices;  ///< column indices, sorted within each row
    std::vector<double> values;         ///< T = Q^-1/2 W Q^-1/2, exactly symmetric
    std::vector<double> p;              ///< kernel row sums p = K 1 (K includes K_ii = 1)
    std::vector<double> q;              ///< row sums q = W 1 of W = P^-alpha K P^-alpha
};

/// The argument checks of diffusion_graph (shared with the CUDA implementation): n, k, epsilon,
/// alpha, and every used entry (index in range, distance non-negative and finite), in row order.
void check_graph_args(const index_t* idx, const double* d2, index_t n, index_t k, double epsilon,
                      double alpha);

/// Build K_ij = exp(-d2_ij / (2 epsilon)) on the symmetric union of the neighbour lists idx/d2
/// (n x k, entries < 0 ignored; d2 must be symmetric where both directions appear), then
/// W = P^-alpha K P^-alpha and T = Q^-1/2 W Q^-1/2.
DiffusionGraph diffusion_graph(const index_t* idx, const double* d2, index_t n, index_t k,
                               double epsilon, double alpha, int n_threads);

/// Bytes of the working arrays of a diffusion map of n points with k neighbours, kc Euclidean
/// candidates per point (kc = k without a metric) and nev eigenpairs: per (point, neighbour)
/// 88 bytes -- the k-NN lists (int64 index + float64 distance, 16), the caller's copies of them
/// (16), diffusion_graph's directed edge list (int32, float64) in both directions (32) and its
/// CSR of up to 2 n k entries (int32 index + float64 value, 24) -- plus 16 n kc for the candidate
/// lists and eigsh_workspace_bytes(n, nev, 1, EigshOptions{}) (the trivial eigenvector deflated).
std::int64_t diffusion_workspace_bytes(index_t n, index_t k, index_t kc, index_t nev);

}  // namespace latentbridge
