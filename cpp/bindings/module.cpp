// The _core extension module: runs every binding group registered with LATENTBRIDGE_BINDINGS
// (in name order, so the module's layout does not depend on link order) and adds build information.
#include <algorithm>
#include <thread>

#include <Eigen/Core>

#include <pybind11/stl.h>

#include "latentbridge/bindings.hpp"
#include "latentbridge/gemm.hpp"
#include "latentbridge/parallel.hpp"

#ifndef LATENTBRIDGE_VERSION
#define LATENTBRIDGE_VERSION "dev"
#endif

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
    m.doc() = "latentbridge C++ core (private: use the latentbridge package)";
    auto registry = latentbridge::binding_registry();
    std::sort(registry.begin(), registry.end());
    for (const auto& entry : registry) entry.second(m);

    m.def("build_info", [] {
        py::dict info;
        info["version"] = LATENTBRIDGE_VERSION;
#if defined(__clang__)
        info["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
        info["compiler"] = std::string("gcc ") + __VERSION__;
#else
        info["compiler"] = "unknown";
#endif
        info["eigen"] = std::to_string(EIGEN_WORLD_VERSION) + "." +
                        std::to_string(EIGEN_MAJOR_VERSION) + "." +
                        std::to_string(EIGEN_MINOR_VERSION);
        info["simd"] = latentbridge::simd_isa();
        info["simd_available"] = latentbridge::available_simd_isas();
        info["hardware_threads"] = latentbridge::hardware_threads();
        return info;
    });
    m.def("set_simd_isa", &latentbridge::set_simd_isa, py::arg("name"),
          "Select the instruction set of the CPU kernels (for tests and benchmarks).");
    m.def("simd_isa", &latentbridge::simd_isa);
}
