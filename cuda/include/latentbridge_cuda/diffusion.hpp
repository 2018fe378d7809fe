// Host-callable API of the CUDA diffusion-map kernels (no CUDA types): the same contracts as the CPU
// functions in cpp/include/latentbridge/knn.hpp and diffusion.hpp, on host arrays that are copied to
// the current CUDA device and back inside each call. Errors throw std::runtime_error (bad arguments
// with the op name, CUDA failures with the CUDA error text).
#pragma once

#include "latentbridge/diffusion.hpp"
#include "latentbridge/types.hpp"

namespace latentbridge {
namespace cuda {

/// Exact k nearest rows of X (n x d) to each row of Q (nq x d) in squared Euclidean distance, as
/// latentbridge::knn_sqeuclidean: Q == nullptr means Q = X (nq = n), each point excluded from its
/// own list; idx, d2 (nq x k) sorted by (distance, index); d2 recomputed directly as
/// sum_t (x_t - q_t)^2 in float64. Requires 1 <= k <= n (k <= n - 1 when Q == nullptr).
void knn_sqeuclidean(const double* X, index_t n, index_t d, const double* Q, index_t nq, index_t k,
                     index_t* idx, double* d2);

/// As latentbridge::mahalanobis_rerank (without the cache-order hint): keep the k candidates with
/// the smallest (y_q - y_j)^T (G_q^T G_q + G_j^T G_j) (y_q - y_j), sorted by (d2, index).
void mahalanobis_rerank(const double* Y, const double* G, index_t n, index_t m, index_t r,
                        const double* Yq, const double* Gq, index_t nq, const index_t* cand,
                        index_t kc, index_t k, index_t* idx, double* d2);

/// As latentbridge::diffusion_graph: the symmetric normalised kernel on the union of the k-NN lists.
DiffusionGraph diffusion_graph(const index_t* idx, const double* d2, index_t n, index_t k,
                               double epsilon, double alpha);

}  // namespace cuda
}  // namespace latentbridge
