// The kd partition shared by the CPU k-NN (the kd-tree of knn.cpp) and the CUDA k-NN (the host
// side of cuda/src/knn.cu, which orders the points into kd-leaf tiles): bounding boxes, the median
// split on the widest side, and the leaf-aligned kd order. Defined in cpp/src/knn.cpp.
//
// Rows are addressed through a permutation: row perm[i] of X (n x d, row-major) is the i-th point
// of the order being built. A split at position mid of the range [begin, end) along side t puts
// the points with the (mid - begin) smallest coordinates x_t before mid (std::nth_element; NaN
// sorts last), the others after it; t is the widest side of the range's box, the first one on ties.
#pragma once

#include <vector>

#include "latentbridge/types.hpp"

namespace latentbridge {

/// Bounding box of the rows perm[begin, end) of X: lo[t] = min x_t, hi[t] = max x_t (d entries
/// each; +inf / -inf for an empty range).
void kd_box(const double* X, index_t d, const index_t* perm, index_t begin, index_t end, double* lo,
            double* hi);

/// Median split of perm[begin, end), whose box is [lo, hi], at position mid along its widest side
/// t = argmax_t (hi[t] - lo[t]). Returns false, leaving perm unchanged, when hi[t] > lo[t] does not
/// hold (every point has the same coordinates: nothing to split).
bool kd_partition(const double* X, index_t d, const double* lo, const double* hi, index_t* perm,
                  index_t begin, index_t mid, index_t end);

/// A kd order of the rows of X (n x d) whose splits fall on multiples of `leaf` positions, so that
/// the consecutive groups of `leaf` rows (the last one shorter) are its leaves: the left part of a
/// range of L leaves holds ceil(L / 2) of them. The top levels of large ranges are split on their
/// own threads (the result does not depend on it). Requires n >= 1, d >= 1, leaf >= 1.
std::vector<index_t> kd_leaf_order(const double* X, index_t n, index_t d, index_t leaf);

}  // namespace latentbridge
