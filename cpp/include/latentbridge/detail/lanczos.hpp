// The thick-restart Lanczos driver of eigsh_largest, separated from where the vectors live. The
// driver owns the algorithm (the projected matrix, restarts, the Chebyshev filter, convergence); a
// backend owns the n-vectors: a basis B of n x (n_deflate + ncv + 1) columns, the work vector w and
// the output block, and performs the O(n) operations on them. The CPU backend (eigsh.cpp) keeps
// them in host memory; the CUDA backend (cuda/src/eigsh.cu) in device memory, so one tested driver
// serves both. Small matrices (h, Y, G, R) are host arrays, column-major. Plain C++ types only, so
// that nvcc compiles backends without seeing Eigen.
#pragma once

#include <cstdint>
#include <vector>

#include "latentbridge/eigsh.hpp"
#include "latentbridge/types.hpp"

namespace latentbridge {

/// The operator of a Lanczos step: A itself (degree 1) or the odd Chebyshev polynomial of degree
/// `degree` in (A - center I) / half, by y_1 = (A - c) x / h, y_{j+1} = 2 (A - c) y_j / h -
/// y_{j-1}.
struct LanczosFilter {
    int degree = 1;
    double center = 0.0;
    double half = 1.0;
};

class LanczosBackend {
   public:
    virtual ~LanczosBackend() = default;
    /// B[:, col] = v (host array of n values).
    virtual void set_column(index_t col, const double* v) = 0;
    /// h[0:nb] = B[:, :nb]^T B[:, col] (host h).
    virtual void project_column(index_t col, index_t nb, double* h) = 0;
    /// B[:, col] -= B[:, :nb] h.
    virtual void subtract_from_column(index_t col, index_t nb, const double* h) = 0;
    virtual double column_norm(index_t col) = 0;
    /// B[:, col] /= d.
    virtual void divide_column(index_t col, double d) = 0;
    virtual void copy_column(index_t src, index_t dst) = 0;
    /// w = op(B[:, col]); h[0:nb] = B[:, :nb]^T w; returns |w|^2. Products with A: f.degree.
    virtual double apply_and_project(index_t col, index_t nb, const LanczosFilter& f,
                                     double* h) = 0;
    /// h[0:nb] = B[:, :nb]^T w.
    virtual void project_w(index_t nb, double* h) = 0;
    /// w -= B[:, :nb] h; returns |w|^2.
    virtual double subtract_from_w(index_t nb, const double* h) = 0;
    /// |w|.
    virtual double w_norm() = 0;
    /// B[:, col] = w / d.
    virtual void w_to_column(index_t col, double d) = 0;
    /// B[:, first:first+kk] = B[:, first:first+m] Y (Y: m x kk, column-major).
    virtual void combine(index_t first, index_t m, const double* Y, index_t kk) = 0;
    /// Rayleigh-Ritz, part 1: AX = A X for X = B[:, first:first+nev] (kept by the backend);
    /// G = X^T AX (nev x nev, column-major). nev products with A.
    virtual void ritz_gram(index_t first, index_t nev, double* G) = 0;
    /// Part 2: out = X R, res[c] = |AX R_c - theta_c out_c| (R: nev x nev column-major).
    virtual void ritz_rotate(index_t first, index_t nev, const double* R, const double* theta,
                             double* res) = 0;
    /// out = B[:, first:first+nev].
    virtual void output_from_basis(index_t first, index_t nev) = 0;
    /// vectors (host, n x nev row-major) = out.
    virtual void download_output(index_t nev, double* vectors) = 0;
};

/// Thick-restart Lanczos (with the Chebyshev filter and the convergence rules documented in
/// eigsh.cpp) on a backend whose basis has room for n_deflate + ncv + 1 columns, ncv as
/// lanczos_basis_size (eigsh.hpp). Z (n x n_deflate row-major, host) are loaded into the first
/// columns and orthonormalised. Only opt.ncv, tol, max_matvec, seed and poly_degree are read.
EigshResult lanczos_largest(LanczosBackend& backend, index_t n, index_t nev, const double* Z,
                            index_t n_deflate, const EigshOptions& opt);

/// Chebyshev filter degree: opt.poly_degree made odd (p(x) < 0 below the damped interval), or
/// automatically 11 when n - n_deflate >= 20000 and 1 (plain Lanczos) otherwise.
int lanczos_filter_degree(index_t n, index_t n_deflate, const EigshOptions& opt);

/// The checks of eigsh_largest on A, nev, n_deflate and opt (shared by the CPU and CUDA entry
/// points).
void check_eigsh_args(const CsrView& A, index_t nev, index_t n_deflate, const EigshOptions& opt);

/// Whether eigsh_largest uses the dense solver for this problem (tiny free dimension).
bool eigsh_use_dense(index_t n, index_t nev, index_t n_deflate, const EigshOptions& opt);

/// Dense fallback: all eigenpairs of A restricted to the complement of Z, the nev largest returned.
EigshResult dense_eigsh(const CsrView& A, index_t nev, const double* Z, index_t n_deflate);

}  // namespace latentbridge
