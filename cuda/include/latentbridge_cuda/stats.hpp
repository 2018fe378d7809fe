// Host-callable API of the CUDA streamed statistics (no CUDA types): the same contract as
// latentbridge::cross_accumulate on the CPU (cpp/include/latentbridge/stats.hpp), on host arrays
// that are copied to the device and back inside the call. stream: a cudaStream_t as void*
// (nullptr = the legacy default stream) on which the copies and kernels are ordered; the call
// returns when C and the sums are updated on the host.
#pragma once

#include "latentbridge/types.hpp"

namespace latentbridge {
namespace cuda {

/// C (p x q, row-major float64, host) += (A - a)^T (B - b) for one chunk of n rows, formed in
/// float64 on the current CUDA device. A: n x p row-major host array (float or double), a: p
/// float64 shifts or null; B: n x q or null for B = A (then q = p, b = a, only the upper triangle
/// is computed and C is made exactly symmetric on return). sum_a / sum_b (host, may be null) +=
/// column sums of the shifted chunks. Throws std::runtime_error with the CUDA error text on
/// failure.
template <typename T>
void cross_accumulate(const T* A, index_t n, index_t p, const double* a, const T* B, index_t q,
                      const double* b, double* C, double* sum_a, double* sum_b,
                      void* stream = nullptr);

}  // namespace cuda
}  // namespace latentbridge
