// Pairwise distances between the rows of two matrices in the GEMM form
// ||x - y||^2 = ||x||^2 + ||y||^2 - 2 x.y, computed on mean-shifted data with a direct
// recomputation of the pairs where cancellation would cost accuracy.
#pragma once

#include "latentbridge/types.hpp"

namespace latentbridge {

/// Pairs with ||x - y||^2 < ratio * (||x||^2 + ||y||^2) after the GEMM form are recomputed
/// directly: below it the GEMM form can lose more than ~1e-4 (float) or ~1e-12 (double) relative
/// accuracy. Shared by the CPU and CUDA kernels.
template <typename T>
constexpr double distance_recompute_ratio() {
    return sizeof(T) == 4 ? 2e-2 : 1e-2;
}

/// Distances between the rows of X (n x d, row-major) and Y (m x d, row-major) into out (n x m,
/// row-major). Y == nullptr means Y = X: the result is then exactly symmetric with an exactly zero
/// diagonal. Euclidean results are never negative. Cosine distance is 1 - cos, with rows of zero
/// norm at distance 1 from everything but themselves (scikit-learn's convention), clipped to [0,
/// 2]. T is float or double; norms and the epilogue are evaluated in double.
template <typename T>
void pairwise_distances(const T* X, index_t n, const T* Y, index_t m, index_t d, Metric metric,
                        T* out, int n_threads);

}  // namespace latentbridge
