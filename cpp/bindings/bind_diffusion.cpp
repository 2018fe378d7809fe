// Bindings of the diffusion-map kernels: exact k-NN, Mahalanobis re-ranking, the normalised kernel
// graph and the sparse symmetric eigensolver (their argument-checking bodies are shared with _cuda:
// bind_diffusion_ops.hpp), plus the CPU-only helpers. float64 C-contiguous arrays only (the Python
// layer converts once); results are numpy arrays that own the C++ buffers (no copy); the GIL is
// released around all C++ work.
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "latentbridge/bind_diffusion_ops.hpp"
#include "latentbridge/bindings.hpp"
#include "latentbridge/check.hpp"
#include "latentbridge/diffusion.hpp"
#include "latentbridge/eigsh.hpp"
#include "latentbridge/knn.hpp"

namespace py = pybind11;
using namespace pybind11::literals;
using latentbridge::index_t;

using latentbridge::bind::CArray;
using latentbridge::bind::to_numpy;

LATENTBRIDGE_BINDINGS(diffusion) {
    namespace lbb = latentbridge::bind;
    lbb::def_knn_sqeuclidean(m, &latentbridge::knn_sqeuclidean);
    lbb::def_mahalanobis_rerank(m, &latentbridge::mahalanobis_rerank);
    lbb::def_diffusion_graph(m, &latentbridge::diffusion_graph);
    lbb::def_eigsh_largest(m, &latentbridge::eigsh_largest);

    m.def(
        "kdtree_order",
        [](CArray<double> X) {
            LATENTBRIDGE_CHECK(X.ndim() == 2 && X.shape(0) >= 1, "kdtree_order", "X must be 2-D and non-empty");
            const index_t n = X.shape(0), d = X.shape(1);
            std::vector<index_t> order(static_cast<std::size_t>(n));
            {
                py::gil_scoped_release nogil;
                latentbridge::kdtree_order(X.data(), n, d, order.data());
            }
            return to_numpy(std::move(order), {n});
        },
        "X"_a.noconvert(), "A locality-preserving permutation of the rows of X (kd-tree leaf order).");

    m.def(
        "batched_eigh",
        [](CArray<double> A, int n_threads) {
            LATENTBRIDGE_CHECK(A.ndim() == 3 && A.shape(1) == A.shape(2), "batched_eigh",
                               "A must have shape (n, m, m)");
            const index_t n = A.shape(0), mm = A.shape(1);
            std::vector<double> w(static_cast<std::size_t>(n * mm)), V(static_cast<std::size_t>(n * mm * mm));
            {
                py::gil_scoped_release nogil;
                latentbridge::batched_eigh(A.data(), n, mm, w.data(), V.data(), n_threads);
            }
            return py::make_tuple(to_numpy(std::move(w), {n, mm}), to_numpy(std::move(V), {n, mm, mm}));
        },
        "A"_a.noconvert(), "n_threads"_a = 1,
        "Eigenvalues (ascending) and eigenvectors (columns) of each symmetric A[i], as numpy.linalg.eigh.");

    m.def(
        "median_kth_distance",
        [](CArray<double> d2, index_t k_eps) {
            LATENTBRIDGE_CHECK(d2.ndim() == 2, "median_kth_distance", "d2 must be 2-D");
            return latentbridge::median_kth_distance(d2.data(), d2.shape(0), d2.shape(1), k_eps);
        },
        "d2"_a.noconvert(), "k_eps"_a);

    m.def(
        "csr_matvec",
        [](CArray<std::int64_t> indptr, CArray<std::int32_t> indices, CArray<double> data,
           CArray<double> x, int n_threads) {
            LATENTBRIDGE_CHECK(indptr.ndim() == 1 && indptr.shape(0) >= 1 && indices.ndim() == 1 &&
                                   data.ndim() == 1,
                               "csr_matvec", "indptr, indices and data must be 1-D, indptr non-empty");
            const index_t n = indptr.shape(0) - 1;
            LATENTBRIDGE_CHECK(x.ndim() == 1 && x.shape(0) == n, "csr_matvec", "x must have length n");
            LATENTBRIDGE_CHECK(indices.shape(0) == data.shape(0) && indptr.at(0) == 0 &&
                                   indptr.at(n) == indices.shape(0),
                               "csr_matvec", "inconsistent CSR arrays");
            for (index_t i = 0; i < n; ++i)
                LATENTBRIDGE_CHECK(indptr.at(i) <= indptr.at(i + 1), "csr_matvec",
                                   "indptr must be non-decreasing");
            for (py::ssize_t e = 0; e < indices.shape(0); ++e)
                LATENTBRIDGE_CHECK(indices.at(e) >= 0 && indices.at(e) < n, "csr_matvec",
                                   "column index out of range");
            std::vector<double> y(static_cast<std::size_t>(n));
            latentbridge::CsrView A{n, indptr.data(), indices.data(), data.data()};
            {
                py::gil_scoped_release nogil;
                latentbridge::csr_matvec(A, x.data(), y.data(), n_threads);
            }
            return to_numpy(std::move(y), {n});
        },
        "indptr"_a.noconvert(), "indices"_a.noconvert(), "data"_a.noconvert(), "x"_a.noconvert(),
        "n_threads"_a = 1);
}
