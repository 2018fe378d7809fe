// Binding definitions of the diffusion-map kernels shared by the _core and _cuda modules: one
// argument-checking body per op, instantiated with the device's implementation (see bind_ops.hpp).
// float64 C-contiguous arrays only; results are numpy arrays that own the C++ buffers (no copy);
// the GIL is released around the implementation.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "bind_ops.hpp"
#include "latentbridge/detail/check.hpp"
#include "latentbridge/diffusion.hpp"
#include "latentbridge/eigsh.hpp"
#include "latentbridge/types.hpp"

namespace latentbridge {
namespace bind {

/// A numpy array that takes ownership of a std::vector (no copy).
template <typename T>
py::array_t<T> to_numpy(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
    auto* owner = new std::vector<T>(std::move(v));
    py::capsule free_when_done(owner, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return py::array_t<T>(shape, owner->data(), free_when_done);
}

/// obj as a C-contiguous array of T, or an empty array for None; anything else is rejected.
template <typename T>
CArray<T> optional_array(const py::object& obj, const char* op, const char* what) {
    if (obj.is_none()) return CArray<T>();
    LATENTBRIDGE_CHECK(CArray<T>::check_(obj), op, what);
    return obj.cast<CArray<T>>();
}

/// knn_sqeuclidean with impl(X, n, d, Q | nullptr, nq, k, idx, d2, n_threads, method).
template <typename Impl>
void def_knn_sqeuclidean(py::module_& m, Impl impl) {
    using namespace pybind11::literals;
    m.def(
        "knn_sqeuclidean",
        [impl](CArray<double> X, py::object Q, index_t k, int n_threads, int method) {
            const char* op = "knn_sqeuclidean";
            LATENTBRIDGE_CHECK(X.ndim() == 2, op, "X must be 2-D");
            const index_t n = X.shape(0), d = X.shape(1);
            auto Qa =
                optional_array<double>(Q, op, "Q must be a C-contiguous float64 array or None");
            const double* qptr = nullptr;
            index_t nq = n;
            if (!Q.is_none()) {
                LATENTBRIDGE_CHECK(Qa.ndim() == 2 && Qa.shape(1) == d, op,
                                   "Q must be 2-D with as many columns as X");
                qptr = Qa.data();
                nq = Qa.shape(0);
            }
            LATENTBRIDGE_CHECK(k >= 1 && k <= (qptr ? n : n - 1), op,
                               "k must be in [1, n] ([1, n - 1] for Q=None)");
            std::vector<index_t> idx(static_cast<std::size_t>(nq * k));
            std::vector<double> d2(static_cast<std::size_t>(nq * k));
            {
                py::gil_scoped_release nogil;
                impl(X.data(), n, d, qptr, nq, k, idx.data(), d2.data(), n_threads, method);
            }
            return py::make_tuple(to_numpy(std::move(idx), {nq, k}),
                                  to_numpy(std::move(d2), {nq, k}));
        },
        "X"_a.noconvert(), "Q"_a.none(true), "k"_a, "n_threads"_a = 1, "method"_a = 0,
        "Exact k nearest neighbours (squared Euclidean) of the rows of Q (None: X, self excluded) "
        "among the rows of X; returns (idx int64 (nq, k), d2 (nq, k)) sorted by (distance, index). "
        "method: 0 auto, 1 kd-tree, 2 brute force.");
}

/// mahalanobis_rerank with impl(Y, G, n, m, r, Yq, Gq, nq, cand, kc, k, idx, d2, n_threads, order),
/// as latentbridge::mahalanobis_rerank.
template <typename Impl>
void def_mahalanobis_rerank(py::module_& m, Impl impl) {
    using namespace pybind11::literals;
    m.def(
        "mahalanobis_rerank",
        [impl](CArray<double> Y, CArray<double> G, py::object Yq, py::object Gq,
               CArray<index_t> cand, index_t k, int n_threads, py::object order) {
            const char* op = "mahalanobis_rerank";
            LATENTBRIDGE_CHECK(Y.ndim() == 2 && G.ndim() == 3, op, "Y must be 2-D and G 3-D");
            const index_t n = Y.shape(0), mdim = Y.shape(1), r = G.shape(1);
            LATENTBRIDGE_CHECK(G.shape(0) == n && G.shape(2) == mdim, op,
                               "G must have shape (n, r, m)");
            auto Yqa =
                optional_array<double>(Yq, op, "Yq must be a C-contiguous float64 array or None");
            auto Gqa =
                optional_array<double>(Gq, op, "Gq must be a C-contiguous float64 array or None");
            LATENTBRIDGE_CHECK(Yq.is_none() == Gq.is_none(), op, "give both Yq and Gq, or neither");
            index_t nq = n;
            const double *yq = nullptr, *gq = nullptr;
            if (!Yq.is_none()) {
                nq = Yqa.shape(0);
                LATENTBRIDGE_CHECK(Yqa.ndim() == 2 && Yqa.shape(1) == mdim, op,
                                   "Yq must be (nq, m)");
                LATENTBRIDGE_CHECK(Gqa.ndim() == 3 && Gqa.shape(0) == nq && Gqa.shape(1) == r &&
                                       Gqa.shape(2) == mdim,
                                   op, "Gq must be (nq, r, m)");
                yq = Yqa.data();
                gq = Gqa.data();
            }
            LATENTBRIDGE_CHECK(cand.ndim() == 2 && cand.shape(0) == nq, op,
                               "cand must be (nq, kc)");
            const index_t kc = cand.shape(1);
            LATENTBRIDGE_CHECK(k >= 1 && k <= kc, op, "k must be in [1, kc]");
            auto ord = optional_array<index_t>(order, op,
                                               "order must be a C-contiguous int64 array or None");
            const index_t* optr = nullptr;
            if (!order.is_none()) {
                LATENTBRIDGE_CHECK(ord.ndim() == 1 && ord.shape(0) == nq, op,
                                   "order must have length nq");
                optr = ord.data();
                std::vector<char> seen(static_cast<std::size_t>(nq), 0);
                for (index_t t = 0; t < nq; ++t) {
                    LATENTBRIDGE_CHECK(optr[t] >= 0 && optr[t] < nq && !seen[optr[t]], op,
                                       "order must be a permutation of range(nq)");
                    seen[optr[t]] = 1;
                }
            }
            std::vector<index_t> idx(static_cast<std::size_t>(nq * k), -1);
            std::vector<double> d2(static_cast<std::size_t>(nq * k));
            {
                py::gil_scoped_release nogil;
                impl(Y.data(), G.data(), n, mdim, r, yq, gq, nq, cand.data(), kc, k, idx.data(),
                     d2.data(), n_threads, optr);
            }
            return py::make_tuple(to_numpy(std::move(idx), {nq, k}),
                                  to_numpy(std::move(d2), {nq, k}));
        },
        "Y"_a.noconvert(), "G"_a.noconvert(), "Yq"_a.none(true), "Gq"_a.none(true),
        "cand"_a.noconvert(), "k"_a, "n_threads"_a = 1, "order"_a.none(true) = py::none(),
        "Keep the k candidates with the smallest (y_q - y_j)^T (G_q^T G_q + G_j^T G_j) (y_q - "
        "y_j).");
}

/// diffusion_graph with impl(idx, d2, n, k, epsilon, alpha, n_threads) -> DiffusionGraph.
template <typename Impl>
void def_diffusion_graph(py::module_& m, Impl impl) {
    using namespace pybind11::literals;
    m.def(
        "diffusion_graph",
        [impl](CArray<index_t> idx, CArray<double> d2, double epsilon, double alpha,
               int n_threads) {
            const char* op = "diffusion_graph";
            LATENTBRIDGE_CHECK(idx.ndim() == 2 && d2.ndim() == 2 && idx.shape(0) == d2.shape(0) &&
                                   idx.shape(1) == d2.shape(1),
                               op, "idx and d2 must be 2-D of the same shape");
            const index_t n = idx.shape(0), k = idx.shape(1);
            DiffusionGraph g;
            {
                py::gil_scoped_release nogil;
                g = impl(idx.data(), d2.data(), n, k, epsilon, alpha, n_threads);
            }
            const auto nnz = static_cast<py::ssize_t>(g.indices.size());
            py::dict out;
            out["indptr"] = to_numpy(std::move(g.indptr), {n + 1});
            out["indices"] = to_numpy(std::move(g.indices), {nnz});
            out["data"] = to_numpy(std::move(g.values), {nnz});
            out["p"] = to_numpy(std::move(g.p), {n});
            out["q"] = to_numpy(std::move(g.q), {n});
            return out;
        },
        "idx"_a.noconvert(), "d2"_a.noconvert(), "epsilon"_a, "alpha"_a, "n_threads"_a = 1,
        "Symmetric normalised kernel T = Q^-1/2 W Q^-1/2 (CSR) on the union of the k-NN lists.");
}

/// eigsh_largest(indptr, indices, data, nev, deflate=None, options=EigshOptions()) with
/// impl(CsrView, nev, Z | nullptr, n_deflate, EigshOptions) -> EigshResult. EigshOptions must be
/// registered first (bind_eigsh_options in _core; _cuda takes _core's class).
template <typename Impl>
void def_eigsh_largest(py::module_& m, Impl impl) {
    using namespace pybind11::literals;
    m.def(
        "eigsh_largest",
        [impl](CArray<std::int64_t> indptr, CArray<std::int32_t> indices, CArray<double> data,
               index_t nev, py::object deflate, const EigshOptions& opt) {
            const char* op = "eigsh_largest";
            LATENTBRIDGE_CHECK(indptr.ndim() == 1 && indptr.shape(0) >= 2, op,
                               "indptr must be 1-D (n + 1)");
            const index_t n = indptr.shape(0) - 1;
            LATENTBRIDGE_CHECK(
                indices.ndim() == 1 && data.ndim() == 1 && indices.shape(0) == data.shape(0), op,
                "indices and data must be 1-D of the same length");
            LATENTBRIDGE_CHECK(indptr.at(0) == 0 && indptr.at(n) == indices.shape(0), op,
                               "indptr must start at 0 and end at nnz");
            auto Z = optional_array<double>(deflate, op,
                                            "deflate must be a C-contiguous float64 array or None");
            index_t nd = 0;
            if (!deflate.is_none()) {
                LATENTBRIDGE_CHECK(Z.ndim() == 2 && Z.shape(0) == n, op, "deflate must be (n, r)");
                nd = Z.shape(1);
            }
            CsrView A{n, indptr.data(), indices.data(), data.data()};
            EigshResult r;
            {
                py::gil_scoped_release nogil;
                r = impl(A, nev, nd ? Z.data() : nullptr, nd, opt);
            }
            py::dict info;
            info["n_matvec"] = r.n_matvec;
            info["n_restart"] = r.n_restart;
            info["converged"] = r.converged;
            info["max_residual"] = r.max_residual;
            info["n_reorth"] = r.n_reorth;
            info["seconds_matvec"] = r.seconds_matvec;
            info["seconds_orth"] = r.seconds_orth;
            info["seconds_restart"] = r.seconds_restart;
            return py::make_tuple(to_numpy(std::move(r.values), {nev}),
                                  to_numpy(std::move(r.vectors), {n, nev}), info);
        },
        "indptr"_a.noconvert(), "indices"_a.noconvert(), "data"_a.noconvert(), "nev"_a,
        "deflate"_a.none(true) = py::none(), "options"_a = EigshOptions{},
        "Largest nev eigenpairs of a symmetric CSR matrix (thick-restart Lanczos, float64), in the "
        "orthogonal complement of the columns of deflate; returns (values desc, vectors (n, nev), "
        "info). options: an EigshOptions (basis size, tolerance, seed, threads, filter).");
}

}  // namespace bind
}  // namespace latentbridge
