// Binding definitions shared by the _core and _cuda modules: one argument-checking body per op,
// instantiated with the device's implementation, so both modules expose the same names and
// signatures and check their arguments identically. Included by binding translation units only.
// Arrays must already be C-contiguous with the right dtype (the Python layer converts once);
// anything else is rejected, never copied. The GIL is released around the implementation.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "latentbridge/detail/check.hpp"
#include "latentbridge/types.hpp"

namespace latentbridge {
namespace bind {

namespace py = pybind11;

template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

inline Metric parse_metric(const std::string& name) {
    if (name == "euclidean") return Metric::euclidean;
    if (name == "sqeuclidean") return Metric::sqeuclidean;
    if (name == "cosine") return Metric::cosine;
    fail("pairwise_distances", "unknown metric '" + name + "'");
}

/// pairwise_distances(X, Y | None, out, metric, n_threads) with
/// impl(X, n, Y | nullptr, m, d, metric, out, n_threads).
template <typename T, typename Impl>
void def_pairwise_distances(py::module_& m, Impl impl) {
    using namespace pybind11::literals;
    m.def(
        "pairwise_distances",
        [impl](CArray<T> X, py::object Y, CArray<T> out, const std::string& metric, int n_threads) {
            const char* op = "pairwise_distances";
            LATENTBRIDGE_CHECK(X.ndim() == 2 && out.ndim() == 2, op, "X and out must be 2-D");
            const T* yptr = nullptr;
            index_t rows_y = X.shape(0);
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
            const Metric metric_id = parse_metric(metric);
            const T* xptr = X.data();
            T* optr = out.mutable_data();
            const index_t n = X.shape(0), d = X.shape(1);
            py::gil_scoped_release nogil;
            impl(xptr, n, yptr, rows_y, d, metric_id, optr, n_threads);
        },
        "X"_a.noconvert(), "Y"_a.none(true), "out"_a.noconvert(), "metric"_a = "euclidean",
        "n_threads"_a = 1, "Distances between the rows of X and Y (None: Y = X) written into out.");
}

/// A float64 C-contiguous vector of length len, or null for None.
inline double* optional_vector(const py::object& obj, index_t len, const char* what) {
    if (obj.is_none()) return nullptr;
    LATENTBRIDGE_CHECK(CArray<double>::check_(obj), "cross_accumulate",
                       std::string(what) + " must be a C-contiguous float64 array or None");
    auto arr = obj.cast<CArray<double>>();
    LATENTBRIDGE_CHECK(arr.ndim() == 1 && arr.shape(0) == len, "cross_accumulate",
                       std::string(what) + " has the wrong length");
    return arr.mutable_data();
}

/// cross_accumulate(A, a, B, b, C, sum_a, sum_b, n_threads) with
/// impl(A, n, p, a, B | nullptr, q, b, C, sum_a, sum_b, n_threads).
template <typename T, typename Impl>
void def_cross_accumulate(py::module_& m, Impl impl) {
    using namespace pybind11::literals;
    m.def(
        "cross_accumulate",
        [impl](CArray<T> A, py::object a, py::object B, py::object b, CArray<double> C,
               py::object sum_a, py::object sum_b, int n_threads) {
            const char* op = "cross_accumulate";
            LATENTBRIDGE_CHECK(A.ndim() == 2, op, "A must be 2-D");
            const index_t n = A.shape(0), p = A.shape(1);
            const T* bptr = nullptr;
            index_t q = p;
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
            impl(aptr, n, p, ap, bptr, q, bp, cptr, sap, sbp, n_threads);
        },
        "A"_a.noconvert(), "a"_a.none(true), "B"_a.none(true), "b"_a.none(true), "C"_a.noconvert(),
        "sum_a"_a.none(true) = py::none(), "sum_b"_a.none(true) = py::none(), "n_threads"_a = 1,
        "C += (A - a)^T (B - b) in float64 (B None: B = A, C made exactly symmetric); sum_a/sum_b "
        "+= column sums of the shifted chunks.");
}

}  // namespace bind
}  // namespace latentbridge
