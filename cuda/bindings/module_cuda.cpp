// The _cuda extension module: the same op names and signatures as _core (the Python layer picks the
// module, never the signature), plus device discovery for the lazy probe and a device-pointer entry
// point for torch/cupy arrays. Host compiler only: CUDA stays behind latentbridge_cuda/api.hpp.
#include <algorithm>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "latentbridge/bindings.hpp"
#include "latentbridge/check.hpp"
#include "latentbridge_cuda/api.hpp"

#ifndef LATENTBRIDGE_VERSION
#define LATENTBRIDGE_VERSION "dev"
#endif

namespace py = pybind11;
using namespace pybind11::literals;
namespace lb = latentbridge;

namespace {

lb::Metric parse_metric(const std::string& name) {
    if (name == "euclidean") return lb::Metric::euclidean;
    if (name == "sqeuclidean") return lb::Metric::sqeuclidean;
    if (name == "cosine") return lb::Metric::cosine;
    lb::fail("pairwise_distances", "unknown metric '" + name + "'");
}

template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

template <typename T>
void def_pairwise(py::module_& m) {
    m.def(
        "pairwise_distances",
        [](CArray<T> X, py::object Y, CArray<T> out, const std::string& metric, int /*n_threads*/) {
            const char* op = "pairwise_distances";
            LATENTBRIDGE_CHECK(X.ndim() == 2 && out.ndim() == 2, op, "X and out must be 2-D");
            const T* yptr = nullptr;
            lb::index_t rows_y = X.shape(0);
            CArray<T> Yarr;
            if (!Y.is_none()) {
                LATENTBRIDGE_CHECK(CArray<T>::check_(Y), op,
                                   "Y must be a C-contiguous array of the same dtype as X");
                Yarr = Y.cast<CArray<T>>();
                LATENTBRIDGE_CHECK(Yarr.ndim() == 2 && Yarr.shape(1) == X.shape(1), op,
                                   "Y must be 2-D with as many columns as X");
                yptr = Yarr.data();
                rows_y = Yarr.shape(0);
            }
            LATENTBRIDGE_CHECK(out.shape(0) == X.shape(0) && out.shape(1) == rows_y, op,
                               "out must have shape (X.rows, Y.rows)");
            const auto metric_id = parse_metric(metric);
            const T* xptr = X.data();
            T* optr = out.mutable_data();
            const auto n = X.shape(0), d = X.shape(1);
            py::gil_scoped_release nogil;
            lb::cuda::pairwise_distances<T>(xptr, n, yptr, rows_y, d, metric_id, optr);
        },
        "X"_a.noconvert(), "Y"_a.none(true), "out"_a.noconvert(), "metric"_a = "euclidean",
        "n_threads"_a = 1);
}

}  // namespace

LATENTBRIDGE_BINDINGS(distance) {
    def_pairwise<float>(m);
    def_pairwise<double>(m);
    m.def(
        "pairwise_distances_device",
        [](std::uintptr_t X, std::uintptr_t Y, std::uintptr_t out, lb::index_t n, lb::index_t m_rows,
           lb::index_t d, bool double_precision, const std::string& metric, std::uintptr_t stream,
           int device) {
            LATENTBRIDGE_CHECK(X != 0 && out != 0, "pairwise_distances_device", "null pointer");
            const auto metric_id = parse_metric(metric);
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
    auto registry = lb::binding_registry();
    std::sort(registry.begin(), registry.end());
    for (const auto& entry : registry) entry.second(m);
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
