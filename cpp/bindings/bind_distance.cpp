// Bindings of the CPU distance kernels: float32 and float64 overloads of one name (the shared
// argument checks live in bind_ops.hpp, also used by the _cuda module).
#include "bind_ops.hpp"
#include "bindings.hpp"
#include "latentbridge/distance.hpp"

void latentbridge::bind::bind_distance(pybind11::module_& m) {
    latentbridge::bind::def_pairwise_distances<float>(m, &latentbridge::pairwise_distances<float>);
    latentbridge::bind::def_pairwise_distances<double>(m,
                                                       &latentbridge::pairwise_distances<double>);
}
