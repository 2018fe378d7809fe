// Register-blocked "dot tile" kernels: C = (X - s)(Y - s)^T for one output tile, packed BLIS-style
// (an MR x KC panel of X against a KC x NR panel of Y per micro-kernel call). The same source is
// compiled once per instruction set (generic, AVX2+FMA, AVX-512) and the best one the CPU supports
// is chosen at run time, so distributed builds never need -march=native.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "latentbridge/types.hpp"

namespace latentbridge {

/// One ISA's dot-tile kernel for element type T.
template <typename T>
struct DotTileKernel {
    const char* isa;        ///< "generic", "avx2" or "avx512"
    index_t mc, nc, kc;     ///< largest tile (rows x cols) and depth block
    std::size_t work_size;  ///< elements of scratch a call needs (pass work of this size)
    /// C[i * ldc + j] = sum_k (X[i * ldx + k] - s[k]) * (Y[j * ldy + k] - s[k]) for i < rows <= mc,
    /// j < cols <= nc, k < d (any d). X, Y, C row-major; s may be null (no shift).
    void (*run)(const T* X, index_t ldx, index_t rows, const T* Y, index_t ldy, index_t cols,
                index_t d, const T* s, T* C, index_t ldc, T* work);
    /// Distance epilogue of one row: o[j] = g(max(0, nxi + ny[j] - 2 c[j])) for j < count, g the
    /// square root when `root`, else identity. Returns true when some j has
    /// nxi + ny[j] - 2 c[j] < ratio * (nxi + ny[j]) (cancellation: the caller recomputes those).
    bool (*sq_epilogue)(const T* c, const double* ny, double nxi, index_t count, double ratio,
                        bool root, T* o);
    /// Cosine epilogue of one row: o[j] = clip(1 - c[j] * inxi * iny[j], 0, 2) for j < count.
    void (*cos_epilogue)(const T* c, const double* iny, double inxi, index_t count, T* o);
};

/// The kernel currently selected (the best the CPU supports unless set_simd_isa chose another).
template <typename T>
const DotTileKernel<T>& dot_tile_kernel();

/// ISAs this CPU can run, best first (always ends with "generic").
std::vector<std::string> available_simd_isas();
/// Name of the selected ISA.
std::string simd_isa();
/// Select an ISA by name (for tests and benchmarks); std::invalid_argument if unavailable.
void set_simd_isa(const std::string& name);

}  // namespace latentbridge
