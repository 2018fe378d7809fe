// Streamed sufficient statistics for linear/ridge maps and feature-space CKA: cross products
// (A - a)^T (B - b) of row chunks accumulated in float64 from float32 or float64 input, so that a
// data set of any number of rows is summarised in O(p q) memory. The products run on the
// ISA-dispatched dot-tile kernel of gemm.hpp over threads.
#pragma once

#include "latentbridge/types.hpp"

namespace latentbridge {

/// C (p x q, row-major float64) += (A - a)^T (B - b) for one chunk of n rows.
/// A: n x p row-major (T = float or double), a: p shifts in float64 (may be null: no shift).
/// B: n x q row-major, b: q shifts (may be null). B == nullptr means B = A (and q = p, b = a): only
/// the upper triangle is computed and C is made exactly symmetric on return (its strict lower
/// triangle is overwritten by the upper one).
/// sum_a (may be null, p entries) += column sums of (A - a); sum_b likewise for B (ignored when
/// B == nullptr). Every product and sum is formed in float64. n_threads >= 1 threads.
template <typename T>
void cross_accumulate(const T* A, index_t n, index_t p, const double* a, const T* B, index_t q,
                      const double* b, double* C, double* sum_a, double* sum_b, int n_threads);

}  // namespace latentbridge
