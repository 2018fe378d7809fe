// Largest eigenpairs of a sparse symmetric matrix in float64: thick-restart Lanczos (Wu & Simon,
// SIAM J. Matrix Anal. Appl. 22, 2000) with full reorthogonalisation, Chebyshev polynomial
// filtering for large problems, optional deflation of known
// eigenvectors, and a dense fallback for small matrices. Only sparse matrix-vector products touch
// the matrix, so the memory is O(nnz + n * ncv).
#pragma once

#include <cstdint>
#include <vector>

#include "latentbridge/types.hpp"

namespace latentbridge {

/// A CSR view of a symmetric n x n matrix (only the full pattern is supported, not a triangle).
struct CsrView {
    index_t n;
    const std::int64_t* indptr;   ///< n + 1
    const std::int32_t* indices;  ///< nnz
    const double* data;           ///< nnz
};

struct EigshOptions {
    index_t ncv = 0;         ///< Lanczos basis size; 0 = max(2 nev + 1, nev + 32), capped by n
    double tol = 1e-10;      ///< residual ||A x - theta x|| <= tol * max(1, |theta_max|)
    index_t max_matvec = 0;  ///< 0 = max(100000, 200 ncv)
    std::uint64_t seed = 0;  ///< seed of the random start vector
    int n_threads = 1;
    index_t dense_below = 200;  ///< use a dense eigensolver when n - n_deflate < this
    int poly_degree = -1;       ///< Chebyshev filter degree (odd); 1 = plain Lanczos, -1 = auto
    bool reorder = true;        ///< solve on the reverse Cuthill-McKee reordering (cache locality)
};

struct EigshResult {
    std::vector<double> values;   ///< nev eigenvalues, descending
    std::vector<double> vectors;  ///< n x nev row-major, orthonormal columns
    index_t n_matvec = 0;
    index_t n_restart = 0;
    bool converged = false;
    double max_residual = 0.0;
    index_t n_reorth = 0;          ///< steps that needed a second Gram-Schmidt pass
    double seconds_matvec = 0.0;   ///< time in the fused SpMV + first projection
    double seconds_orth = 0.0;     ///< time in the rest of the orthogonalisation
    double seconds_restart = 0.0;  ///< time in thick restarts
};

/// The nev algebraically largest eigenpairs of A restricted to the orthogonal complement of the
/// columns of Z (n x n_deflate, row-major; orthonormalised here; may be null with n_deflate = 0).
/// Use Z for known eigenvectors (e.g. the trivial top eigenvector of a diffusion operator).
EigshResult eigsh_largest(const CsrView& A, index_t nev, const double* Z, index_t n_deflate,
                          const EigshOptions& opt);

/// Lanczos basis size used for (n, nev, n_deflate, opt): opt.ncv or max(2 nev + 1, nev + 32),
/// capped by n - n_deflate - 1.
index_t lanczos_basis_size(index_t n, index_t nev, index_t n_deflate, const EigshOptions& opt);

/// Bytes of the n-vectors eigsh_largest allocates, besides the matrix and the result: with the
/// dense solver (eigsh_use_dense) the n x n matrix, the basis of the complement of Z and the
/// projected matrix, 24 n^2; with Lanczos the basis of n_deflate + ncv + 1 columns, the work
/// vector and, with the Chebyshev filter, its three recurrence vectors, 8 n per vector. The
/// reordered copy of the matrix (opt.reorder: 12 bytes a non-zero) is not included.
std::int64_t eigsh_workspace_bytes(index_t n, index_t nev, index_t n_deflate,
                                   const EigshOptions& opt);

}  // namespace latentbridge
