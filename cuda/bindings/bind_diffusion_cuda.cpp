// CUDA bindings of the diffusion-map kernels: the same names, signatures and checks as _core's
// (bind_diffusion_ops.hpp). n_threads is accepted and ignored; so is mahalanobis_rerank's
// cache-order hint (it never changes the result). The arguments are host (numpy) arrays, so the
// calls run on the legacy default stream and return with their results on the host.
#include "bind_diffusion_ops.hpp"
#include "bindings.hpp"
#include "latentbridge_cuda/diffusion.hpp"
#include "latentbridge_cuda/eigsh.hpp"
#include "latentbridge_cuda/knn.hpp"

namespace lb = latentbridge;
using lb::index_t;

namespace {

void knn_cuda(const double* X, index_t n, index_t d, const double* Q, index_t nq, index_t k,
              index_t* idx, double* d2, int /*n_threads*/, int /*method*/) {
    lb::cuda::knn_sqeuclidean(X, n, d, Q, nq, k, idx, d2);
}

void rerank_cuda(const double* Y, const double* G, index_t n, index_t m, index_t r,
                 const double* Yq, const double* Gq, index_t nq, const index_t* cand, index_t kc,
                 index_t k, index_t* idx, double* d2, int /*n_threads*/, const index_t* /*order*/) {
    lb::cuda::mahalanobis_rerank(Y, G, n, m, r, Yq, Gq, nq, cand, kc, k, idx, d2);
}

lb::DiffusionGraph graph_cuda(const index_t* idx, const double* d2, index_t n, index_t k,
                              double epsilon, double alpha, int /*n_threads*/) {
    return lb::cuda::diffusion_graph(idx, d2, n, k, epsilon, alpha);
}

lb::EigshResult eigsh_cuda(const lb::CsrView& A, index_t nev, const double* Z, index_t n_deflate,
                           const lb::EigshOptions& opt) {
    return lb::cuda::eigsh_largest(A, nev, Z, n_deflate, opt);
}

}  // namespace

void lb::bind::bind_diffusion_cuda(pybind11::module_& m) {
    lb::bind::def_knn_sqeuclidean(m, &knn_cuda);
    lb::bind::def_mahalanobis_rerank(m, &rerank_cuda);
    lb::bind::def_diffusion_graph(m, &graph_cuda);
    lb::bind::def_eigsh_largest(m, &eigsh_cuda);
}
