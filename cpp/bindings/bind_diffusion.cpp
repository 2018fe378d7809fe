// Bindings of the diffusion-map kernels: exact k-NN, Mahalanobis re-ranking, the normalised kernel
// graph and the sparse symmetric eigensolver (their argument-checking bodies are shared with _cuda:
// bind_diffusion_ops.hpp), plus the CPU-only helpers. float64 C-contiguous arrays only (the Python
// layer converts once); results are numpy arrays that own the C++ buffers (no copy); the GIL is
// released around all C++ work.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bind_diffusion_ops.hpp"
#include "bindings.hpp"
#include "latentbridge/detail/check.hpp"
#include "latentbridge/diffusion.hpp"
#include "latentbridge/eigsh.hpp"
#include "latentbridge/knn.hpp"

namespace py = pybind11;
using namespace pybind11::literals;
using latentbridge::index_t;

using latentbridge::bind::CArray;
using latentbridge::bind::to_numpy;

namespace {

void bind_eigsh_options(py::module_& m) {
    using latentbridge::EigshOptions;
    const EigshOptions d{};  // the defaults live in the C++ struct only
    py::class_<EigshOptions>(
        m, "EigshOptions",
        "Options of eigsh_largest; every field has the C++ default when not given.")
        .def(py::init([](index_t ncv, double tol, index_t max_matvec, std::uint64_t seed,
                         int n_threads, index_t dense_below, int poly_degree, bool reorder) {
                 return EigshOptions{ncv,       tol,         max_matvec,  seed,
                                     n_threads, dense_below, poly_degree, reorder};
             }),
             py::kw_only(), "ncv"_a = d.ncv, "tol"_a = d.tol, "max_matvec"_a = d.max_matvec,
             "seed"_a = d.seed, "n_threads"_a = d.n_threads, "dense_below"_a = d.dense_below,
             "poly_degree"_a = d.poly_degree, "reorder"_a = d.reorder)
        .def_readwrite(
            "ncv", &EigshOptions::ncv,
            "Lanczos basis size; 0 = max(2 nev + 1, nev + 32), capped by n - n_deflate - 1.")
        .def_readwrite("tol", &EigshOptions::tol,
                       "Residual |A x - theta x| <= tol * max(1, |theta_max|).")
        .def_readwrite("max_matvec", &EigshOptions::max_matvec,
                       "Products with A at most; 0 = max(100000, 200 ncv).")
        .def_readwrite("seed", &EigshOptions::seed, "Seed of the random start vector.")
        .def_readwrite("n_threads", &EigshOptions::n_threads, "CPU threads (ignored by _cuda).")
        .def_readwrite("dense_below", &EigshOptions::dense_below,
                       "Dense eigensolver when n - n_deflate is below this.")
        .def_readwrite("poly_degree", &EigshOptions::poly_degree,
                       "Chebyshev filter degree (made odd); 1 = plain Lanczos, -1 = automatic.")
        .def_readwrite("reorder", &EigshOptions::reorder,
                       "Solve on the reverse Cuthill-McKee reordering (cache locality).")
        .def("__repr__", [](const EigshOptions& o) {
            return "EigshOptions(ncv=" + std::to_string(o.ncv) +
                   ", tol=" + py::repr(py::float_(o.tol)).cast<std::string>() +
                   ", max_matvec=" + std::to_string(o.max_matvec) +
                   ", seed=" + std::to_string(o.seed) +
                   ", n_threads=" + std::to_string(o.n_threads) +
                   ", dense_below=" + std::to_string(o.dense_below) +
                   ", poly_degree=" + std::to_string(o.poly_degree) +
                   ", reorder=" + (o.reorder ? "True" : "False") + ")";
        });
}

void bind_resources(py::module_& m) {
    using latentbridge::EigshOptions;
    m.def("lanczos_basis_size", &latentbridge::lanczos_basis_size, "n"_a, "nev"_a,
          "n_deflate"_a = 0, "options"_a = EigshOptions{},
          "Lanczos vectors eigsh_largest keeps (besides the deflated ones).");
    m.def("eigsh_workspace_bytes", &latentbridge::eigsh_workspace_bytes, "n"_a, "nev"_a,
          "n_deflate"_a = 0, "options"_a = EigshOptions{},
          "Bytes of eigsh_largest's working vectors (or dense matrices).");
    m.def(
        "diffusion_workspace_bytes", &latentbridge::diffusion_workspace_bytes, "n"_a, "k"_a, "kc"_a,
        "nev"_a,
        "Bytes of a diffusion map's k-NN lists, candidates, kernel graph and eigensolver vectors.");
}

}  // namespace

void latentbridge::bind::bind_diffusion(py::module_& m) {
    namespace lbb = latentbridge::bind;
    bind_eigsh_options(m);
    bind_resources(m);
    lbb::def_knn_sqeuclidean(m, &latentbridge::knn_sqeuclidean);
    lbb::def_mahalanobis_rerank(m, &latentbridge::mahalanobis_rerank);
    lbb::def_diffusion_graph(m, &latentbridge::diffusion_graph);
    lbb::def_eigsh_largest(m, &latentbridge::eigsh_largest);

    m.def(
        "kdtree_order",
        [](CArray<double> X) {
            LATENTBRIDGE_CHECK(X.ndim() == 2 && X.shape(0) >= 1, "kdtree_order",
                               "X must be 2-D and non-empty");
            const index_t n = X.shape(0), d = X.shape(1);
            std::vector<index_t> order(static_cast<std::size_t>(n));
            {
                py::gil_scoped_release nogil;
                latentbridge::kdtree_order(X.data(), n, d, order.data());
            }
            return to_numpy(std::move(order), {n});
        },
        "X"_a.noconvert(),
        "A locality-preserving permutation of the rows of X (kd-tree leaf order).");

    m.def(
        "batched_eigh",
        [](CArray<double> A, int n_threads) {
            LATENTBRIDGE_CHECK(A.ndim() == 3 && A.shape(1) == A.shape(2), "batched_eigh",
                               "A must have shape (n, m, m)");
            const index_t n = A.shape(0), mm = A.shape(1);
            std::vector<double> w(static_cast<std::size_t>(n * mm)),
                V(static_cast<std::size_t>(n * mm * mm));
            {
                py::gil_scoped_release nogil;
                latentbridge::batched_eigh(A.data(), n, mm, w.data(), V.data(), n_threads);
            }
            return py::make_tuple(to_numpy(std::move(w), {n, mm}),
                                  to_numpy(std::move(V), {n, mm, mm}));
        },
        "A"_a.noconvert(), "n_threads"_a = 1,
        "Eigenvalues (ascending) and eigenvectors (columns) of each symmetric A[i], as "
        "numpy.linalg.eigh.");

    m.def(
        "median_kth_distance",
        [](CArray<double> d2, index_t k_eps) {
            LATENTBRIDGE_CHECK(d2.ndim() == 2, "median_kth_distance", "d2 must be 2-D");
            return latentbridge::median_kth_distance(d2.data(), d2.shape(0), d2.shape(1), k_eps);
        },
        "d2"_a.noconvert(), "k_eps"_a);
}
