// Host-callable API of the CUDA diffusion-map stages after the k-NN (no CUDA types): the same
// contracts as the CPU functions in cpp/include/latentbridge/diffusion.hpp, on host arrays that are
// copied to the current CUDA device and back inside each call. stream: a cudaStream_t as void*
// (nullptr = the legacy default stream) on which the copies and kernels are ordered; each call
// returns when its results are on the host. Errors throw std::runtime_error (bad arguments with the
// op name, CUDA failures with the CUDA error text). The k-NN is in knn.hpp.
#pragma once

#include "latentbridge/diffusion.hpp"
#include "latentbridge/types.hpp"

namespace latentbridge {
namespace cuda {

/// As latentbridge::mahalanobis_rerank (without the cache-order hint): keep the k candidates with
/// the smallest (y_q - y_j)^T (G_q^T G_q + G_j^T G_j) (y_q - y_j), sorted by (d2, index).
void mahalanobis_rerank(const double* Y, const double* G, index_t n, index_t m, index_t r,
                        const double* Yq, const double* Gq, index_t nq, const index_t* cand,
                        index_t kc, index_t k, index_t* idx, double* d2, void* stream = nullptr);

/// As latentbridge::diffusion_graph: the symmetric normalised kernel on the union of the k-NN
/// lists.
DiffusionGraph diffusion_graph(const index_t* idx, const double* d2, index_t n, index_t k,
                               double epsilon, double alpha, void* stream = nullptr);

}  // namespace cuda
}  // namespace latentbridge
