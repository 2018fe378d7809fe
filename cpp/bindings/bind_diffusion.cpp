// Bindings of the diffusion-map kernels: exact k-NN, Mahalanobis re-ranking, the normalised kernel
// graph and the sparse symmetric eigensolver. float64 C-contiguous arrays only (the Python layer
// converts once); results are returned as numpy arrays that own the C++ buffers (no copy); the GIL
// is released around all C++ work.
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "latentbridge/bindings.hpp"
#include "latentbridge/check.hpp"
#include "latentbridge/diffusion.hpp"
#include "latentbridge/eigsh.hpp"
#include "latentbridge/knn.hpp"

namespace py = pybind11;
using namespace pybind11::literals;
using latentbridge::index_t;

namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

// A numpy array that takes ownership of a std::vector (no copy).
template <typename T>
py::array_t<T> to_numpy(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
    auto* owner = new std::vector<T>(std::move(v));
    py::capsule free_when_done(owner, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return py::array_t<T>(shape, owner->data(), free_when_done);
}

template <typename T>
CArray<T> optional_array(const py::object& obj, const char* op, const char* what) {
    if (obj.is_none()) return CArray<T>();
    LATENTBRIDGE_CHECK(CArray<T>::check_(obj), op, what);
    return obj.cast<CArray<T>>();
}

}  // namespace

LATENTBRIDGE_BINDINGS(diffusion) {
    m.def(
        "knn_sqeuclidean",
        [](CArray<double> X, py::object Q, index_t k, int n_threads, int method) {
            const char* op = "knn_sqeuclidean";
            LATENTBRIDGE_CHECK(X.ndim() == 2, op, "X must be 2-D");
            const index_t n = X.shape(0), d = X.shape(1);
            auto Qa = optional_array<double>(Q, op, "Q must be a C-contiguous float64 array or None");
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
                latentbridge::knn_sqeuclidean(X.data(), n, d, qptr, nq, k, idx.data(), d2.data(),
                                              n_threads, method);
            }
            return py::make_tuple(to_numpy(std::move(idx), {nq, k}), to_numpy(std::move(d2), {nq, k}));
        },
        "X"_a.noconvert(), "Q"_a.none(true), "k"_a, "n_threads"_a = 1, "method"_a = 0,
        "Exact k nearest neighbours (squared Euclidean) of the rows of Q (None: X, self excluded) "
        "among the rows of X; returns (idx int64 (nq, k), d2 (nq, k)) sorted by (distance, index). "
        "method: 0 auto, 1 kd-tree, 2 brute force.");

    m.def(
        "mahalanobis_rerank",
        [](CArray<double> Y, CArray<double> G, py::object Yq, py::object Gq, CArray<index_t> cand,
           index_t k, int n_threads, py::object order) {
            const char* op = "mahalanobis_rerank";
            LATENTBRIDGE_CHECK(Y.ndim() == 2 && G.ndim() == 3, op, "Y must be 2-D and G 3-D");
            const index_t n = Y.shape(0), mdim = Y.shape(1), r = G.shape(1);
            LATENTBRIDGE_CHECK(G.shape(0) == n && G.shape(2) == mdim, op, "G must have shape (n, r, m)");
            auto Yqa = optional_array<double>(Yq, op, "Yq must be a C-contiguous float64 array or None");
            auto Gqa = optional_array<double>(Gq, op, "Gq must be a C-contiguous float64 array or None");
            LATENTBRIDGE_CHECK(Yq.is_none() == Gq.is_none(), op, "give both Yq and Gq, or neither");
            index_t nq = n;
            const double *yq = nullptr, *gq = nullptr;
            if (!Yq.is_none()) {
                nq = Yqa.shape(0);
                LATENTBRIDGE_CHECK(Yqa.ndim() == 2 && Yqa.shape(1) == mdim, op, "Yq must be (nq, m)");
                LATENTBRIDGE_CHECK(Gqa.ndim() == 3 && Gqa.shape(0) == nq && Gqa.shape(1) == r &&
                                       Gqa.shape(2) == mdim,
                                   op, "Gq must be (nq, r, m)");
                yq = Yqa.data();
                gq = Gqa.data();
            }
            LATENTBRIDGE_CHECK(cand.ndim() == 2 && cand.shape(0) == nq, op, "cand must be (nq, kc)");
            const index_t kc = cand.shape(1);
            LATENTBRIDGE_CHECK(k >= 1 && k <= kc, op, "k must be in [1, kc]");
            auto ord = optional_array<index_t>(order, op, "order must be a C-contiguous int64 array or None");
            const index_t* optr = nullptr;
            if (!order.is_none()) {
                LATENTBRIDGE_CHECK(ord.ndim() == 1 && ord.shape(0) == nq, op, "order must have length nq");
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
                latentbridge::mahalanobis_rerank(Y.data(), G.data(), n, mdim, r, yq, gq, nq,
                                                 cand.data(), kc, k, idx.data(), d2.data(), n_threads,
                                                 optr);
            }
            return py::make_tuple(to_numpy(std::move(idx), {nq, k}), to_numpy(std::move(d2), {nq, k}));
        },
        "Y"_a.noconvert(), "G"_a.noconvert(), "Yq"_a.none(true), "Gq"_a.none(true),
        "cand"_a.noconvert(), "k"_a, "n_threads"_a = 1, "order"_a.none(true) = py::none(),
        "Keep the k candidates with the smallest (y_q - y_j)^T (G_q^T G_q + G_j^T G_j) (y_q - y_j).");

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
        "diffusion_graph",
        [](CArray<index_t> idx, CArray<double> d2, double epsilon, double alpha, int n_threads) {
            const char* op = "diffusion_graph";
            LATENTBRIDGE_CHECK(idx.ndim() == 2 && d2.ndim() == 2 && idx.shape(0) == d2.shape(0) &&
                                   idx.shape(1) == d2.shape(1),
                               op, "idx and d2 must be 2-D of the same shape");
            const index_t n = idx.shape(0), k = idx.shape(1);
            latentbridge::DiffusionGraph g;
            {
                py::gil_scoped_release nogil;
                g = latentbridge::diffusion_graph(idx.data(), d2.data(), n, k, epsilon, alpha, n_threads);
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

    m.def(
        "eigsh_largest",
        [](CArray<std::int64_t> indptr, CArray<std::int32_t> indices, CArray<double> data, index_t nev,
           py::object deflate, index_t ncv, double tol, index_t max_matvec, std::uint64_t seed,
           int n_threads, index_t dense_below, int poly_degree, bool reorder) {
            const char* op = "eigsh_largest";
            LATENTBRIDGE_CHECK(indptr.ndim() == 1 && indptr.shape(0) >= 2, op, "indptr must be 1-D (n + 1)");
            const index_t n = indptr.shape(0) - 1;
            LATENTBRIDGE_CHECK(indices.ndim() == 1 && data.ndim() == 1 && indices.shape(0) == data.shape(0),
                               op, "indices and data must be 1-D of the same length");
            LATENTBRIDGE_CHECK(indptr.at(0) == 0 && indptr.at(n) == indices.shape(0), op,
                               "indptr must start at 0 and end at nnz");
            auto Z = optional_array<double>(deflate, op, "deflate must be a C-contiguous float64 array or None");
            index_t nd = 0;
            if (!deflate.is_none()) {
                LATENTBRIDGE_CHECK(Z.ndim() == 2 && Z.shape(0) == n, op, "deflate must be (n, r)");
                nd = Z.shape(1);
            }
            latentbridge::CsrView A{n, indptr.data(), indices.data(), data.data()};
            latentbridge::EigshOptions opt;
            opt.ncv = ncv;
            opt.tol = tol;
            opt.max_matvec = max_matvec;
            opt.seed = seed;
            opt.n_threads = n_threads;
            opt.dense_below = dense_below;
            opt.poly_degree = poly_degree;
            opt.reorder = reorder;
            latentbridge::EigshResult r;
            {
                py::gil_scoped_release nogil;
                r = latentbridge::eigsh_largest(A, nev, nd ? Z.data() : nullptr, nd, opt);
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
        "deflate"_a.none(true) = py::none(), "ncv"_a = 0, "tol"_a = 1e-10, "max_matvec"_a = 0,
        "seed"_a = 0, "n_threads"_a = 1, "dense_below"_a = 200, "poly_degree"_a = -1, "reorder"_a = true,
        "Largest nev eigenpairs of a symmetric CSR matrix (thick-restart Lanczos, float64), in the "
        "orthogonal complement of the columns of deflate; returns (values desc, vectors (n, nev), info). "
        "poly_degree: Chebyshev filter degree (1: plain Lanczos; -1: automatic).");

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
