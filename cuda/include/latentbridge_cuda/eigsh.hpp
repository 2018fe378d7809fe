// Host-callable API of the CUDA eigensolver (no CUDA types): the same contract as
// latentbridge::eigsh_largest (cpp/include/latentbridge/eigsh.hpp) on a host CSR matrix that is
// copied to the current CUDA device. The thick-restart Lanczos driver is the CPU one
// (latentbridge/detail/lanczos.hpp); only the n-vectors and their operations live on the device.
// stream: a cudaStream_t as void* (nullptr = the legacy default stream) on which the copies and
// kernels are ordered; the call returns when the result is on the host.
#pragma once

#include "latentbridge/eigsh.hpp"
#include "latentbridge/types.hpp"

namespace latentbridge {
namespace cuda {

/// The nev algebraically largest eigenpairs of the symmetric CSR matrix A in the orthogonal
/// complement of the columns of Z (n x n_deflate row-major, may be null with n_deflate = 0), as
/// latentbridge::eigsh_largest. opt.n_threads and opt.reorder are ignored (the matrix is not
/// reordered: on the GPU the gathered vector stays in L2). Small problems use the dense host
/// solver.
EigshResult eigsh_largest(const CsrView& A, index_t nev, const double* Z, index_t n_deflate,
                          const EigshOptions& opt, void* stream = nullptr);

}  // namespace cuda
}  // namespace latentbridge
