// The two float32 matrices the R-Cross-Barcode engine reads, made from the normalised float64
// distance matrices in one pass: what numpy did in six (two range checks, two conversions with
// the reference's snapping, a minimum).
#pragma once

#include "latentbridge/types.hpp"

namespace latentbridge {

/// w = float32(r1) and m = min(float32(r2), w) for row-major n x n float64 r1 and r2, each entry
/// below eps (of either matrix) set to +0 first (the reference implementation's snapping), on
/// n_threads over blocks of rows; the same values as numpy's astype(np.float32), masked
/// assignment and np.minimum(m, w). Returns 0, or 1 (2) when r1 (r2) holds a finite entry above
/// float's largest value, which float32 cannot hold (w and m are then unspecified).
int r_cross_inputs(const double* r1, const double* r2, index_t n, double eps, float* w, float* m,
                   int n_threads = 1);

}  // namespace latentbridge
