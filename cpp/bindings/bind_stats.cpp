// Bindings of the streamed sufficient statistics: float32 and float64 chunks under one name,
// float64 accumulators owned by Python (updated in place); checks shared with _cuda (bind_ops.hpp).
#include "bind_ops.hpp"
#include "bindings.hpp"
#include "latentbridge/stats.hpp"

void latentbridge::bind::bind_stats(pybind11::module_& m) {
    latentbridge::bind::def_cross_accumulate<float>(m, &latentbridge::cross_accumulate<float>);
    latentbridge::bind::def_cross_accumulate<double>(m, &latentbridge::cross_accumulate<double>);
}
