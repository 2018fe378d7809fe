// CUDA bindings of the streamed sufficient statistics: the same name, signature and checks as
// _core's cross_accumulate (bind_ops.hpp); n_threads is accepted and ignored.
#include "bind_ops.hpp"
#include "bindings.hpp"
#include "latentbridge_cuda/stats.hpp"

namespace {

template <typename T>
void cross_accumulate_cuda(const T* A, latentbridge::index_t n, latentbridge::index_t p,
                           const double* a, const T* B, latentbridge::index_t q, const double* b,
                           double* C, double* sum_a, double* sum_b, int /*n_threads*/) {
    latentbridge::cuda::cross_accumulate<T>(A, n, p, a, B, q, b, C, sum_a, sum_b);
}

}  // namespace

void latentbridge::bind::bind_stats_cuda(pybind11::module_& m) {
    latentbridge::bind::def_cross_accumulate<float>(m, &cross_accumulate_cuda<float>);
    latentbridge::bind::def_cross_accumulate<double>(m, &cross_accumulate_cuda<double>);
}
