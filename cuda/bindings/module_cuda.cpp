// The _cuda extension module: the same op names and signatures as _core (the Python layer picks the
// module, never the signature), plus device discovery for the lazy probe and a device-pointer entry
// point for torch/cupy arrays. Host compiler only: CUDA stays behind latentbridge_cuda/api.hpp.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bind_ops.hpp"
#include "bindings.hpp"
#include "latentbridge/detail/check.hpp"
#include "latentbridge_cuda/api.hpp"

#ifndef LATENTBRIDGE_VERSION
#define LATENTBRIDGE_VERSION "dev"
#endif

namespace py = pybind11;
using namespace pybind11::literals;
namespace lb = latentbridge;

namespace {

template <typename T>
void pairwise_distances_cuda(const T* X, lb::index_t n, const T* Y, lb::index_t m, lb::index_t d,
                             lb::Metric metric, T* out, int /*n_threads*/) {
    lb::cuda::pairwise_distances<T>(X, n, Y, m, d, metric, out);
}

}  // namespace

void lb::bind::bind_distance_cuda(py::module_& m) {
    lb::bind::def_pairwise_distances<float>(m, &pairwise_distances_cuda<float>);
    lb::bind::def_pairwise_distances<double>(m, &pairwise_distances_cuda<double>);
    m.def(
        "pairwise_distances_device",
        [](std::uintptr_t X, std::uintptr_t Y, std::uintptr_t out, lb::index_t n,
           lb::index_t m_rows, lb::index_t d, bool double_precision, const std::string& metric,
           std::uintptr_t stream, int device) {
            LATENTBRIDGE_CHECK(X != 0 && out != 0, "pairwise_distances_device", "null pointer");
            const auto metric_id = lb::bind::parse_metric(metric);
            py::gil_scoped_release nogil;
            auto* s = reinterpret_cast<void*>(stream);
            if (double_precision)
                lb::cuda::pairwise_distances_device<double>(
                    reinterpret_cast<const double*>(X), n, reinterpret_cast<const double*>(Y),
                    m_rows, d, metric_id, reinterpret_cast<double*>(out), s, device);
            else
                lb::cuda::pairwise_distances_device<float>(
                    reinterpret_cast<const float*>(X), n, reinterpret_cast<const float*>(Y), m_rows,
                    d, metric_id, reinterpret_cast<float*>(out), s, device);
        },
        "X"_a, "Y"_a, "out"_a, "n"_a, "m"_a, "d"_a, "double_precision"_a, "metric"_a, "stream"_a,
        "device"_a,
        "Distances between device arrays given as raw pointers (Y = 0 for Y = X), on `stream`.");
}

PYBIND11_MODULE(_cuda, m) {
    m.doc() = "latentbridge CUDA kernels (private: use the latentbridge package)";
    // one EigshOptions class for both modules: _core registers it, eigsh_largest here accepts it
    m.attr("EigshOptions") = py::module_::import("latentbridge._core").attr("EigshOptions");
    lb::bind::bind_distance_cuda(m);
    lb::bind::bind_stats_cuda(m);
    lb::bind::bind_diffusion_cuda(m);
    m.def("device_count", &lb::cuda::device_count,
          "(number of usable CUDA devices, message explaining a zero); never raises.");
    m.def("device_name", &lb::cuda::device_name, "device"_a = 0);
    m.def("build_info", [] {
        py::dict info;
        info["version"] = LATENTBRIDGE_VERSION;
        info["runtime"] = lb::cuda::version_string();
        return info;
    });
}
