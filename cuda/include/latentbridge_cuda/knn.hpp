// Host-callable API of the CUDA k-NN (no CUDA types): the contract of latentbridge::knn_sqeuclidean
// (cpp/include/latentbridge/knn.hpp) on host arrays that are copied to the current CUDA device and
// back inside the call. stream: a cudaStream_t as void* (nullptr = the legacy default stream) on
// which the copies and kernels are ordered; the call returns when the results are on the host.
// Errors throw std::runtime_error (bad arguments with the op name, CUDA failures with the CUDA
// error text).
#pragma once

#include "latentbridge/types.hpp"

namespace latentbridge {
namespace cuda {

/// Exact k nearest rows of X (n x d) to each row of Q (nq x d) in squared Euclidean distance, as
/// latentbridge::knn_sqeuclidean: Q == nullptr means Q = X (nq = n), each point excluded from its
/// own list; idx, d2 (nq x k) sorted by (distance, index), ties at the k-th place to the smaller
/// index; d2 recomputed directly as sum_t (x_t - q_t)^2 in float64. Requires 1 <= k <= n
/// (k <= n - 1 when Q == nullptr).
void knn_sqeuclidean(const double* X, index_t n, index_t d, const double* Q, index_t nq, index_t k,
                     index_t* idx, double* d2, void* stream = nullptr);

}  // namespace cuda
}  // namespace latentbridge
