// Exact k-nearest-neighbour search in the squared Euclidean metric: a kd-tree for low-dimensional
// data (the common case of diffusion maps: activations of a few neurons) and a blocked brute-force
// search on the register-blocked dot-tile kernel otherwise. Results are exact and deterministic:
// neighbours are ordered by (distance, index), so ties never depend on the thread count.
#pragma once

#include "latentbridge/types.hpp"

namespace latentbridge {

/// Above this dimension knn_sqeuclidean uses the blocked brute-force search instead of the kd-tree.
constexpr index_t kKdTreeMaxDim = 16;

/// The k nearest rows of X (n x d, row-major) to each row of Q (nq x d, row-major), in squared
/// Euclidean distance. Q == nullptr means Q = X (nq = n) and each point is excluded from its own
/// list (it is not its own neighbour; duplicates of it are). idx and d2 are (nq x k) row-major,
/// sorted by (distance, index); d2 holds directly recomputed squared distances, so the distance of
/// (i, j) equals that of (j, i) bit for bit. Requires k <= n (k <= n - 1 when Q == nullptr).
/// method: 0 = automatic, 1 = kd-tree, 2 = brute force.
void knn_sqeuclidean(const double* X, index_t n, index_t d, const double* Q, index_t nq, index_t k,
                     index_t* idx, double* d2, int n_threads, int method = 0);

/// A locality-preserving order of the rows of X (n x d): the leaf order of a kd-tree (median
/// splits on the widest side). Processing points in this order keeps their neighbours in cache.
void kdtree_order(const double* X, index_t n, index_t d, index_t* order);

}  // namespace latentbridge
