// Bindings of the distance kernels: float32 and float64 overloads of one name, C-contiguous arrays
// only (never a silent copy: the Python layer converts once), output buffer allocated by Python,
// GIL released around the C++ work.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "latentbridge/bindings.hpp"
#include "latentbridge/check.hpp"
#include "latentbridge/distance.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace {

latentbridge::Metric parse_metric(const std::string& name) {
    if (name == "euclidean") return latentbridge::Metric::euclidean;
    if (name == "sqeuclidean") return latentbridge::Metric::sqeuclidean;
    if (name == "cosine") return latentbridge::Metric::cosine;
    latentbridge::fail("pairwise_distances", "unknown metric '" + name + "'");
}

template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

template <typename T>
void def_pairwise(py::module_& m) {
    m.def(
        "pairwise_distances",
        [](CArray<T> X, py::object Y, CArray<T> out, const std::string& metric, int n_threads) {
            const char* op = "pairwise_distances";
            LATENTBRIDGE_CHECK(X.ndim() == 2 && out.ndim() == 2, op, "X and out must be 2-D");
            const T* yptr = nullptr;
            latentbridge::index_t m_rows = X.shape(0);
            CArray<T> Yarr;
            if (!Y.is_none()) {
                LATENTBRIDGE_CHECK(CArray<T>::check_(Y), op,
                                   "Y must be a C-contiguous array of the same dtype as X");
                Yarr = Y.cast<CArray<T>>();
                LATENTBRIDGE_CHECK(Yarr.ndim() == 2 && Yarr.shape(1) == X.shape(1), op,
                                   "Y must be 2-D with as many columns as X");
                yptr = Yarr.data();
                m_rows = Yarr.shape(0);
            }
            LATENTBRIDGE_CHECK(out.shape(0) == X.shape(0) && out.shape(1) == m_rows, op,
                               "out must have shape (X.rows, Y.rows)");
            const auto metric_id = parse_metric(metric);
            const T* xptr = X.data();
            T* optr = out.mutable_data();
            const auto n = X.shape(0), d = X.shape(1);
            py::gil_scoped_release nogil;
            latentbridge::pairwise_distances<T>(xptr, n, yptr, m_rows, d, metric_id, optr,
                                                n_threads);
        },
        "X"_a.noconvert(), "Y"_a.none(true), "out"_a.noconvert(), "metric"_a = "euclidean",
        "n_threads"_a = 1,
        "Distances between the rows of X and Y (None: Y = X) written into out.");
}

}  // namespace

LATENTBRIDGE_BINDINGS(distance) {
    def_pairwise<float>(m);
    def_pairwise<double>(m);
}
