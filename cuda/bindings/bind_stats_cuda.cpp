// CUDA bindings of the streamed sufficient statistics: the same name and signature as _core's
// cross_accumulate (n_threads accepted and ignored), float32 and float64 chunks under one name,
// float64 accumulators owned by Python (updated in place), GIL released around the products.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "latentbridge/bindings.hpp"
#include "latentbridge/check.hpp"
#include "latentbridge_cuda/stats.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

// A float64 C-contiguous vector of length len, or null for None.
double* optional_vector(const py::object& obj, latentbridge::index_t len, const char* what) {
    if (obj.is_none()) return nullptr;
    LATENTBRIDGE_CHECK(CArray<double>::check_(obj), "cross_accumulate",
                       std::string(what) + " must be a C-contiguous float64 array or None");
    auto arr = obj.cast<CArray<double>>();
    LATENTBRIDGE_CHECK(arr.ndim() == 1 && arr.shape(0) == len, "cross_accumulate",
                       std::string(what) + " has the wrong length");
    return arr.mutable_data();
}

template <typename T>
void def_cross(py::module_& m) {
    m.def(
        "cross_accumulate",
        [](CArray<T> A, py::object a, py::object B, py::object b, CArray<double> C, py::object sum_a,
           py::object sum_b, int /*n_threads*/) {
            const char* op = "cross_accumulate";
            LATENTBRIDGE_CHECK(A.ndim() == 2, op, "A must be 2-D");
            const auto n = A.shape(0), p = A.shape(1);
            const T* bptr = nullptr;
            latentbridge::index_t q = p;
            CArray<T> Barr;
            if (!B.is_none()) {
                LATENTBRIDGE_CHECK(CArray<T>::check_(B), op,
                                   "B must be a C-contiguous array of the same dtype as A");
                Barr = B.cast<CArray<T>>();
                LATENTBRIDGE_CHECK(Barr.ndim() == 2 && Barr.shape(0) == n, op,
                                   "B must be 2-D with as many rows as A");
                bptr = Barr.data();
                q = Barr.shape(1);
            }
            LATENTBRIDGE_CHECK(C.ndim() == 2 && C.shape(0) == p && C.shape(1) == q, op,
                               "C must have shape (A.cols, B.cols)");
            const double* ap = optional_vector(a, p, "a");
            const double* bp = B.is_none() ? nullptr : optional_vector(b, q, "b");
            double* sap = optional_vector(sum_a, p, "sum_a");
            double* sbp = B.is_none() ? nullptr : optional_vector(sum_b, q, "sum_b");
            const T* aptr = A.data();
            double* cptr = C.mutable_data();
            py::gil_scoped_release nogil;
            latentbridge::cuda::cross_accumulate<T>(aptr, n, p, ap, bptr, q, bp, cptr, sap, sbp);
        },
        "A"_a.noconvert(), "a"_a.none(true), "B"_a.none(true), "b"_a.none(true),
        "C"_a.noconvert(), "sum_a"_a.none(true) = py::none(), "sum_b"_a.none(true) = py::none(),
        "n_threads"_a = 1,
        "C += (A - a)^T (B - b) in float64 (B None: B = A, C made exactly symmetric); sum_a/sum_b "
        "+= column sums of the shifted chunks.");
}

}  // namespace

LATENTBRIDGE_BINDINGS(stats_cuda) {
    def_cross<float>(m);
    def_cross<double>(m);
}
