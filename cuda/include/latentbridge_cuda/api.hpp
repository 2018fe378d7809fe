// Host-callable API of the CUDA kernels: plain pointers and sizes, no CUDA types, so that the
// pybind11 module and C++ benchmarks are compiled by the host compiler alone. Functions taking
// host pointers copy to and from the device inside; *_device functions take device pointers and
// run on the given stream (a cudaStream_t passed as void*; nullptr = the legacy default stream).
// Errors throw std::runtime_error carrying the failing call and the CUDA error text.
#pragma once

#include <string>
#include <utility>

#include "latentbridge/types.hpp"

namespace latentbridge {
namespace cuda {

/// (number of usable devices, message explaining a zero); never throws.
std::pair<int, std::string> device_count();
/// Name, compute capability and memory of a device.
std::string device_name(int device);
/// CUDA runtime and driver versions, e.g. "runtime 13.0, driver 13.0".
std::string version_string();

/// Same contract as latentbridge::pairwise_distances (cpu): X (n x d), Y (m x d) or nullptr for
/// Y = X, out (n x m); all row-major host arrays.
template <typename T>
void pairwise_distances(const T* X, index_t n, const T* Y, index_t m, index_t d, Metric metric,
                        T* out);

/// The same on device arrays (X, Y, out device pointers; Y == nullptr for Y = X).
template <typename T>
void pairwise_distances_device(const T* X, index_t n, const T* Y, index_t m, index_t d,
                               Metric metric, T* out, void* stream, int device);

}  // namespace cuda
}  // namespace latentbridge
