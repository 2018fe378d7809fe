// The q-quantile of a symmetric matrix with a zero diagonal, read from its strict upper triangle:
// the quantile normalisation of r_cross_barcode, rtd and rtd_lite without numpy's flattened copy
// and partition of all n^2 entries.
#pragma once

#include "latentbridge/types.hpp"

namespace latentbridge {

/// np.quantile(D, q) (method "linear", over all n^2 entries, float64 bit for bit) for a
/// row-major n x n matrix D (n >= 1) that is symmetric with a zero diagonal and no negative
/// entry; only the strict upper triangle is read (n (n - 1) / 2 values, copied once). NaN when
/// that triangle holds a NaN, as numpy gives. 0 <= q <= 1 (checked).
double symmetric_quantile(const double* D, index_t n, double q);

}  // namespace latentbridge
