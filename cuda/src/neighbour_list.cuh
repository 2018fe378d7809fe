// The k best (distance, index) pairs of a query as a max-heap in its own output row, shared by the
// k-NN (knn.cu) and the Mahalanobis re-ranking (rerank.cu) kernels, with the block shape both use
// and the unfused square accumulation of their distances (no FMA contraction, so that distances
// are the CPU's bits).
#pragma once

#include <cuda_runtime.h>
#include <math_constants.h>

#include <cstdint>

#include "latentbridge/types.hpp"

namespace latentbridge {
namespace cuda {

constexpr int kBlock = 128;     // queries (threads) per block of the k-NN and re-ranking kernels
constexpr int kSmallDim = 16;   // up to this dimension: per-query data in shared memory / registers
constexpr index_t kNoIndex = INT64_MAX;  // index of the +inf sentinel entries of a list

// acc + u * u, rounded after the product and after the sum (never fused).
__device__ __forceinline__ double add_square(double acc, double u) {
    return __dadd_rn(acc, __dmul_rn(u, u));
}

__device__ __forceinline__ bool pair_less(double da, index_t ia, double db, index_t ib) {
    return da < db || (da == db && ia < ib);
}

// The running k best of a query: a max-heap of (distance, index) pairs in (Hd, Hi)[0, k), ordered
// lexicographically, its root the k-th best; initially k (+inf, kNoIndex) sentinels. O(log k)
// memory accesses per accepted candidate, with a trip count that varies little between the lanes.

// Replaces the root by (vd, vi) and sifts it down in the heap of the given size.
__device__ __forceinline__ void heap_replace_top(double* Hd, index_t* Hi, index_t size, double vd,
                                                 index_t vi) {
    index_t pos = 0;
    for (;;) {
        index_t c = 2 * pos + 1;
        if (c >= size) break;
        double cd = Hd[c];
        index_t ci = Hi[c];
        if (c + 1 < size) {
            const double rd = Hd[c + 1];
            const index_t ri = Hi[c + 1];
            if (pair_less(cd, ci, rd, ri)) {
                ++c;
                cd = rd;
                ci = ri;
            }
        }
        if (!pair_less(vd, vi, cd, ci)) break;
        Hd[pos] = cd;
        Hi[pos] = ci;
        pos = c;
    }
    Hd[pos] = vd;
    Hi[pos] = vi;
}

__device__ __forceinline__ void heap_init(double* Hd, index_t* Hi, index_t k) {
    for (index_t s = 0; s < k; ++s) {
        Hd[s] = CUDART_INF;
        Hi[s] = kNoIndex;
    }
}

// Offers (dist, j), known to beat the root (wd, wi), and reloads the root.
__device__ __forceinline__ void heap_offer(double* Hd, index_t* Hi, index_t k, double dist,
                                           index_t j, double& wd, index_t& wi) {
    heap_replace_top(Hd, Hi, k, dist, j);
    wd = Hd[0];
    wi = Hi[0];
}

// Heap sort in place: the k entries in ascending (distance, index) order.
__device__ __forceinline__ void heap_finish(double* Hd, index_t* Hi, index_t k) {
    for (index_t end = k - 1; end > 0; --end) {
        const double td = Hd[0], ld = Hd[end];
        const index_t ti = Hi[0], li = Hi[end];
        Hd[end] = td;
        Hi[end] = ti;
        heap_replace_top(Hd, Hi, end, ld, li);
    }
}


}  // namespace cuda
}  // namespace latentbridge
