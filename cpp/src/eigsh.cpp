// Thick-restart Lanczos for the largest eigenpairs of a sparse symmetric matrix.
//
// The basis B = [Z | V] holds the deflated vectors Z followed by the Lanczos vectors V. Each step
// computes w = op(v_j) and orthogonalises it against all of B by classical Gram-Schmidt (a second
// pass only when the first removed more than 99 % of the norm), fusing the last SpMV with the
// projections per row chunk. The projected matrix H is filled from the Gram-Schmidt coefficients;
// after a thick restart it is diagonal (the kept Ritz values) with an arrow of couplings to the
// residual vector, and the Gram-Schmidt coefficients of the next step reproduce that arrow. Row
// chunks are fixed (independent of the thread count) and reduced in order, so the result does not
// depend on n_threads. The matrix is first permuted to reverse Cuthill-McKee order, which halves
// the time of a product on a k-NN graph of randomly ordered points (the gathers become local).
//
// Polynomial filtering (Fang & Saad, SIAM J. Sci. Comput. 34, 2012, "filtered Lanczos"): after a
// first plain cycle has located the spectrum, Lanczos runs on p(A), p the odd Chebyshev polynomial
// that is bounded by 1 on [lo, cut] (the unwanted part) and grows fast above it. The wanted
// eigenvectors are unchanged, the number of products with A stays close to that of plain Lanczos,
// but there are `degree` times fewer Gram-Schmidt steps and restarts, which dominate the memory
// traffic. Convergence is tested with the true residual ||A x - theta x|| after a Rayleigh-Ritz
// step with A on the candidate vectors, so the filter never affects the accuracy.
#include "latentbridge/eigsh.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "latentbridge/detail/check.hpp"
#include "latentbridge/detail/lanczos.hpp"
#include "latentbridge/detail/parallel.hpp"

namespace latentbridge {
namespace {

using Mat = Eigen::MatrixXd;  // column-major: one basis vector per contiguous column
using Vec = Eigen::VectorXd;
using Clock = std::chrono::steady_clock;

struct Chunks {
    index_t n, count, size;
    explicit Chunks(index_t n_) : n(n_) {
        count = std::max<index_t>(1, std::min<index_t>(64, n_ / 4096));
        size = (n_ + count - 1) / count;
    }
    index_t begin(index_t c) const { return std::min(n, c * size); }
    index_t len(index_t c) const { return std::min(n, (c + 1) * size) - begin(c); }
};

void spmv_rows(const CsrView& A, const double* x, double* y, index_t r0, index_t r1) {
    for (index_t i = r0; i < r1; ++i) {
        double acc = 0.0;
        for (std::int64_t e = A.indptr[i]; e < A.indptr[i + 1]; ++e)
            acc += A.data[e] * x[A.indices[e]];
        y[i] = acc;
    }
}

/// y = A x with n_threads threads.
void csr_matvec(const CsrView& A, const double* x, double* y, int n_threads) {
    const Chunks ch(A.n);
    parallel_for(ch.count, n_threads,
                 [&](index_t c, int) { spmv_rows(A, x, y, ch.begin(c), ch.begin(c) + ch.len(c)); });
}

// The CPU backend: the basis in one column-major matrix, products and projections by fixed row
// chunks (reduced in chunk order, so results do not depend on the thread count), the last SpMV of
// each step fused with the first projection.
class CpuBackend final : public LanczosBackend {
   public:
    CpuBackend(const CsrView& A, index_t cols, bool filtered, int n_threads)
        : A_(A), n_(A.n), chunks_(A.n) {
        B_.resize(n_, cols);
        partial_.resize(cols + 1, chunks_.count);
        w_.resize(n_);
        // Threads are started per pass (parallel_for); a pass over a small matrix is shorter than
        // that start-up (and much shorter than a time slice on a busy machine), so small problems
        // run on one thread: measured at n = 10k (0.36M non-zeros) 0.26 s on 1 thread, 1.3 s on 2.
        threads_ = A.indptr[A.n] >= 1000000 * static_cast<std::int64_t>(n_threads) ? n_threads : 1;
        if (filtered) {
            ya_.resize(n_);
            yb_.resize(n_);
            yc_.resize(n_);
        }
    }

    void set_column(index_t col, const double* v) override {
        B_.col(col) = Eigen::Map<const Vec>(v, n_);
    }
    void project_column(index_t col, index_t nb, double* h) override {
        Eigen::Map<Vec>(h, nb) = B_.leftCols(nb).transpose() * B_.col(col);
    }
    void subtract_from_column(index_t col, index_t nb, const double* h) override {
        B_.col(col) -= B_.leftCols(nb) * Eigen::Map<const Vec>(h, nb);
    }
    double column_norm(index_t col) override { return B_.col(col).norm(); }
    void divide_column(index_t col, double d) override { B_.col(col) /= d; }
    void copy_column(index_t src, index_t dst) override { B_.col(dst) = B_.col(src); }

    double apply_and_project(index_t col, index_t nb, const LanczosFilter& f, double* h) override {
        const double* x = B_.col(col).data();
        double* w = w_.data();
        const bool filtered = f.degree > 1;
        const double* prev = x;
        const double* cur = x;
        for (int d = 1; d <= f.degree; ++d) {
            const bool last = d == f.degree;
            double* out = w;
            if (!last) {  // a buffer that is neither of the two inputs
                for (double* cand : {ya_.data(), yb_.data(), yc_.data()})
                    if (cand != prev && cand != cur) {
                        out = cand;
                        break;
                    }
            }
            const double* pp = prev;
            const double* cc = cur;
            parallel_for(chunks_.count, threads_, [&](index_t c, int) {
                const index_t r0 = chunks_.begin(c), len = chunks_.len(c);
                spmv_rows(A_, cc, out, r0, r0 + len);
                if (filtered) {
                    if (d == 1) {
                        for (index_t i = r0; i < r0 + len; ++i)
                            out[i] = (out[i] - f.center * cc[i]) / f.half;
                    } else {
                        for (index_t i = r0; i < r0 + len; ++i)
                            out[i] = 2.0 * (out[i] - f.center * cc[i]) / f.half - pp[i];
                    }
                }
                if (last) {
                    partial_.col(c).head(nb).noalias() =
                        B_.block(r0, 0, len, nb).transpose() * w_.segment(r0, len);
                    partial_(nb, c) = w_.segment(r0, len).squaredNorm();
                }
            });
            prev = cur;
            cur = out;
        }
        Eigen::Map<Vec>(h, nb) = partial_.leftCols(chunks_.count).topRows(nb).rowwise().sum();
        return partial_.row(nb).head(chunks_.count).sum();
    }
    void project_w(index_t nb, double* h) override {
        parallel_for(chunks_.count, threads_, [&](index_t c, int) {
            const index_t r0 = chunks_.begin(c), len = chunks_.len(c);
            partial_.col(c).head(nb).noalias() =
                B_.block(r0, 0, len, nb).transpose() * w_.segment(r0, len);
        });
        Eigen::Map<Vec>(h, nb) = partial_.leftCols(chunks_.count).topRows(nb).rowwise().sum();
    }
    double subtract_from_w(index_t nb, const double* h) override {
        const Eigen::Map<const Vec> hh(h, nb);
        parallel_for(chunks_.count, threads_, [&](index_t c, int) {
            const index_t r0 = chunks_.begin(c), len = chunks_.len(c);
            w_.segment(r0, len).noalias() -= B_.block(r0, 0, len, nb) * hh;
            partial_(nb, c) = w_.segment(r0, len).squaredNorm();
        });
        return partial_.row(nb).head(chunks_.count).sum();
    }
    double w_norm() override { return w_.norm(); }
    void w_to_column(index_t col, double d) override { B_.col(col) = w_ / d; }

    void combine(index_t first, index_t m, const double* Y, index_t kk) override {
        const Eigen::Map<const Mat> Yk(Y, m, kk);
        parallel_for(chunks_.count, threads_, [&](index_t c, int) {
            const index_t r0 = chunks_.begin(c), len = chunks_.len(c);
            const Mat tmp = B_.block(r0, first, len, m) * Yk;
            B_.block(r0, first, len, kk) = tmp;
        });
    }
    void ritz_gram(index_t first, index_t nev, double* G) override {
        AX_.resize(n_, nev);
        for (index_t c = 0; c < nev; ++c)
            csr_matvec(A_, B_.col(first + c).data(), AX_.col(c).data(), threads_);
        Eigen::Map<Mat>(G, nev, nev) = B_.middleCols(first, nev).transpose() * AX_;
    }
    void ritz_rotate(index_t first, index_t nev, const double* R, const double* theta,
                     double* res) override {
        const Eigen::Map<const Mat> Rm(R, nev, nev);
        out_ = B_.middleCols(first, nev) * Rm;
        const Mat AXR = AX_ * Rm;
        for (index_t c = 0; c < nev; ++c) res[c] = (AXR.col(c) - theta[c] * out_.col(c)).norm();
    }
    void output_from_basis(index_t first, index_t nev) override {
        out_ = B_.middleCols(first, nev);
    }
    void download_output(index_t nev, double* vectors) override {
        for (index_t i = 0; i < n_; ++i)
            for (index_t c = 0; c < nev; ++c) vectors[i * nev + c] = out_(i, c);
    }

   private:
    const CsrView& A_;
    index_t n_;
    Chunks chunks_;
    Mat B_, partial_, out_, AX_;
    Vec w_, ya_, yb_, yc_;
    int threads_ = 1;
};

// The algorithm, on any backend. B = [Z | V | residual]: nd deflated columns, m Lanczos vectors.
class Lanczos {
   public:
    Lanczos(LanczosBackend& be, index_t n, index_t nev, index_t nd, const EigshOptions& opt)
        : be_(be), n_(n), nev_(nev), nd_(nd), opt_(opt) {
        m_ = lanczos_basis_size(n, nev, nd, opt);
        LATENTBRIDGE_CHECK(m_ > nev_, "eigsh", "ncv must exceed nev (and n - n_deflate - 1)");
        max_mv_ = opt.max_matvec > 0 ? opt.max_matvec : std::max<index_t>(100000, 200 * m_);
        degree_ = lanczos_filter_degree(n, nd, opt);
        h_.resize(nd_ + m_ + 1);
    }

    EigshResult run(const double* Z) {
        EigshResult res;
        // Load and orthonormalise Z (two passes of Gram-Schmidt per column).
        std::vector<double> col(static_cast<std::size_t>(n_));
        for (index_t c = 0; c < nd_; ++c) {
            for (index_t i = 0; i < n_; ++i) col[i] = Z[i * nd_ + c];
            be_.set_column(c, col.data());
        }
        for (index_t c = 0; c < nd_; ++c) {
            for (int pass = 0; pass < 2; ++pass) orthogonalise_column(c, c);
            const double nrm = be_.column_norm(c);
            LATENTBRIDGE_CHECK(nrm > 1e-8, "eigsh", "deflation vectors are linearly dependent");
            be_.divide_column(c, nrm);
        }
        std::mt19937_64 gen(opt_.seed);
        random_start(nd_, gen);

        Mat H = Mat::Zero(m_, m_);
        index_t k = 0;  // vectors kept by the last restart; V_k is the current start vector
        double beta_last = 0.0;
        Vec theta;
        Mat Y;
        for (;;) {
            for (index_t j = k; j < m_; ++j) {
                const index_t col = nd_ + j;
                step(col,
                     res);  // w = op(v_j) orthogonalised against B[:, :col+1]; h_ its coefficients
                for (index_t i = 0; i <= j; ++i) H(i, j) = H(j, i) = h_(nd_ + i);
                double beta = be_.w_norm();
                const double scale =
                    std::max(1.0, H.topLeftCorner(j + 1, j + 1).cwiseAbs().maxCoeff());
                if (beta <= 1e-12 * scale) {  // invariant subspace: continue from a fresh vector
                    beta = 0.0;
                    random_start(col + 1, gen);
                } else {
                    be_.w_to_column(col + 1, beta);
                }
                if (j + 1 < m_) H(j + 1, j) = H(j, j + 1) = beta;
                beta_last = beta;
            }
            Eigen::SelfAdjointEigenSolver<Mat> es(H);
            theta = es.eigenvalues().reverse();
            Y = es.eigenvectors().rowwise().reverse();
            if (!filtered_) {
                const double scale = std::max(1.0, theta.cwiseAbs().maxCoeff());
                double worst = 0.0;
                for (index_t i = 0; i < nev_; ++i)
                    worst = std::max(worst, std::abs(beta_last * Y(m_ - 1, i)));
                res.max_residual = worst;
                const bool done = worst <= opt_.tol * scale;
                if (done || res.n_matvec >= max_mv_) {
                    res.converged = done;
                    combine(Y.leftCols(nev_));
                    values_ = theta.head(nev_);
                    be_.output_from_basis(nd_, nev_);
                    break;
                }
                // Switch to the filter once the nev-th Ritz value has settled (moved by less than
                // 20 % of the wanted spread since the last restart): the cut is then well placed.
                // (Measured on the 100k-point benchmark: 1 % -> 1594 products, 20 % -> 1386.)
                const double wanted = theta(nev_ - 1), spread = theta(0) - wanted;
                const bool settled = std::abs(wanted - last_wanted_) < 0.2 * spread;
                last_wanted_ = wanted;
                if (degree_ > 1 && settled && setup_filter(theta)) {
                    // Restart the (now filtered) Krylov space from the sum of the current Ritz
                    // vectors of the wanted part: H of the plain cycle is not valid for p(A).
                    combine(Y.leftCols(nev_));
                    const Vec ones = Vec::Ones(nev_);
                    be_.combine(nd_, nev_, ones.data(), 1);
                    for (int pass = 0; pass < 2; ++pass) orthogonalise_column(nd_, nd_);
                    be_.divide_column(nd_, be_.column_norm(nd_));
                    H.setZero();
                    k = 0;
                    ++res.n_restart;
                    continue;
                }
            }
            // Thick restart: keep the top kk Ritz vectors and the residual direction.
            const index_t kk = std::min<index_t>(m_ - 1, nev_ + (m_ - nev_) / 2);
            const auto t0 = Clock::now();
            combine(Y.leftCols(kk));
            be_.copy_column(nd_ + m_, nd_ + kk);
            res.seconds_restart += std::chrono::duration<double>(Clock::now() - t0).count();
            if (filtered_) {
                // True residuals with A after a Rayleigh-Ritz step on the first nev Ritz vectors.
                const bool done = rayleigh_ritz(res);
                if (done || res.n_matvec >= max_mv_) {
                    res.converged = done;
                    break;
                }
            }
            H.setZero();
            for (index_t i = 0; i < kk; ++i) {
                H(i, i) = theta(i);
                H(i, kk) = H(kk, i) = beta_last * Y(m_ - 1, i);
            }
            k = kk;
            ++res.n_restart;
        }
        res.values.assign(values_.data(), values_.data() + nev_);
        res.vectors.resize(static_cast<std::size_t>(n_ * nev_));
        be_.download_output(nev_, res.vectors.data());
        return res;
    }

   private:
    // One Gram-Schmidt pass of column col against B[:, :nb] (nothing when nb == 0).
    void orthogonalise_column(index_t col, index_t nb) {
        if (nb == 0) return;
        be_.project_column(col, nb, h_.data());
        be_.subtract_from_column(col, nb, h_.data());
    }

    // Column `col` := a random unit vector orthogonal to B[:, :col].
    void random_start(index_t col, std::mt19937_64& gen) {
        std::normal_distribution<double> normal;
        std::vector<double> v(static_cast<std::size_t>(n_));
        for (index_t i = 0; i < n_; ++i) v[i] = normal(gen);
        be_.set_column(col, v.data());
        for (int pass = 0; pass < 2; ++pass) {
            orthogonalise_column(col, col);
            be_.divide_column(col, be_.column_norm(col));
        }
    }

    // w = op(B[:, col]) orthogonalised against B[:, :col+1] by classical Gram-Schmidt, the
    // coefficients in h_; a second pass runs only when the first removed more than 99 % of the
    // norm (DGKS-style test with a threshold chosen for an orthogonality level of ~1e-12, which is
    // all the method needs).
    void step(index_t col, EigshResult& res) {
        const index_t nb = col + 1;
        const auto t0 = Clock::now();
        LanczosFilter f;
        if (filtered_) f = filter_;
        const double before = be_.apply_and_project(col, nb, f, h_.data());
        res.n_matvec += f.degree;
        const auto t1 = Clock::now();
        const double after = be_.subtract_from_w(nb, h_.data());
        if (!(after > 1e-4 * before)) {  // squared norms: less than 1 % of the norm left
            ++res.n_reorth;
            Vec hh(nb);
            be_.project_w(nb, hh.data());
            be_.subtract_from_w(nb, hh.data());
            h_.head(nb) += hh;
        }
        const auto t2 = Clock::now();
        res.seconds_matvec += std::chrono::duration<double>(t1 - t0).count();
        res.seconds_orth += std::chrono::duration<double>(t2 - t1).count();
    }

    // Chebyshev filter from the Ritz values of the plain cycles: the damped interval is
    // [lo, cut] with lo below the smallest Ritz value and cut = theta_nev - 0.3 (theta_1 -
    // theta_nev) (below the nev-th eigenvalue, since Ritz values are lower bounds of the top
    // eigenvalues).
    bool setup_filter(const Vec& theta) {
        const double top = theta(0), wanted = theta(nev_ - 1), bottom = theta(theta.size() - 1);
        const double cut = wanted - 0.3 * (top - wanted);
        const double lo = bottom - 0.05 * (top - bottom);
        if (!(cut > lo + 0.2 * (top - lo))) return false;  // wanted part not separated: no gain
        filter_.degree = degree_;
        filter_.center = 0.5 * (cut + lo);
        filter_.half = 0.5 * (cut - lo);
        filtered_ = true;
        return true;
    }

    // Rayleigh-Ritz with A on X = V[:, :nev]; the backend keeps the rotated vectors as its output.
    // Returns whether every residual ||A x - theta x|| is below tol.
    bool rayleigh_ritz(EigshResult& res) {
        Mat G(nev_, nev_);
        be_.ritz_gram(nd_, nev_, G.data());
        res.n_matvec += nev_;
        G = 0.5 * (G + G.transpose()).eval();
        Eigen::SelfAdjointEigenSolver<Mat> es(G);
        const Vec th = es.eigenvalues().reverse();
        const Mat R = es.eigenvectors().rowwise().reverse();
        Vec r(nev_);
        be_.ritz_rotate(nd_, nev_, R.data(), th.data(), r.data());
        values_ = th;
        res.max_residual = r.maxCoeff();
        return res.max_residual <= opt_.tol * std::max(1.0, th.cwiseAbs().maxCoeff());
    }

    // V[:, :kk] := V[:, :m] * Yk.
    void combine(const Mat& Yk) { be_.combine(nd_, m_, Yk.data(), Yk.cols()); }

    LanczosBackend& be_;
    index_t n_, nev_, nd_, m_ = 0, max_mv_ = 0;
    EigshOptions opt_;
    Vec h_, values_;
    bool filtered_ = false;
    LanczosFilter filter_;
    int degree_ = 1;
    double last_wanted_ = std::numeric_limits<double>::quiet_NaN();
};

// Reverse Cuthill-McKee order (defined below).
std::vector<std::int32_t> rcm_order(const CsrView& A);

}  // namespace

EigshResult dense_eigsh(const CsrView& A, index_t nev, const double* Z, index_t nd) {
    const index_t n = A.n;
    Mat D = Mat::Zero(n, n);
    for (index_t i = 0; i < n; ++i)
        for (std::int64_t e = A.indptr[i]; e < A.indptr[i + 1]; ++e)
            D(i, A.indices[e]) += A.data[e];
    D = 0.5 * (D + D.transpose()).eval();
    Mat Q;  // orthonormal basis of the complement of Z
    if (nd > 0) {
        Mat Zm(n, nd);
        for (index_t i = 0; i < n; ++i)
            for (index_t c = 0; c < nd; ++c) Zm(i, c) = Z[i * nd + c];
        Eigen::HouseholderQR<Mat> qr(Zm);
        const Mat full = qr.householderQ();
        Q = full.rightCols(n - nd);
    } else {
        Q = Mat::Identity(n, n);
    }
    const Mat P = Q.transpose() * D * Q;
    Eigen::SelfAdjointEigenSolver<Mat> es(P);
    EigshResult res;
    const index_t cols = P.cols();
    res.values.resize(static_cast<std::size_t>(nev));
    res.vectors.resize(static_cast<std::size_t>(n * nev));
    for (index_t c = 0; c < nev; ++c) {
        res.values[c] = es.eigenvalues()(cols - 1 - c);
        const Vec v = Q * es.eigenvectors().col(cols - 1 - c);
        for (index_t i = 0; i < n; ++i) res.vectors[i * nev + c] = v(i);
    }
    res.converged = true;
    return res;
}

namespace {

// Reverse Cuthill-McKee order of the symmetric pattern of A (Cuthill & McKee 1969; George 1971):
// breadth-first search from a pseudo-peripheral node of each connected component, neighbours by
// increasing degree, then reversed. Neighbouring rows then touch neighbouring memory.
std::vector<std::int32_t> rcm_order(const CsrView& A) {
    const index_t n = A.n;
    auto degree = [&](index_t i) { return A.indptr[i + 1] - A.indptr[i]; };
    std::vector<std::int32_t> order;
    order.reserve(static_cast<std::size_t>(n));
    std::vector<char> seen(static_cast<std::size_t>(n), 0);
    std::vector<std::pair<std::int64_t, std::int32_t>> nbrs;
    // BFS from `start`, appending to `out` (when given) or just returning the last node reached.
    auto bfs = [&](std::int32_t start, std::vector<std::int32_t>* out, std::vector<char>& mark,
                   char value) {
        std::vector<std::int32_t> local;
        std::vector<std::int32_t>& q = out ? *out : local;
        const std::size_t head0 = q.size();
        q.push_back(start);
        mark[start] = value;
        std::int32_t last = start;
        for (std::size_t h = head0; h < q.size(); ++h) {
            const std::int32_t i = q[h];
            last = i;
            nbrs.clear();
            for (std::int64_t e = A.indptr[i]; e < A.indptr[i + 1]; ++e) {
                const std::int32_t j = A.indices[e];
                if (mark[j] != value) {
                    mark[j] = value;
                    nbrs.emplace_back(degree(j), j);
                }
            }
            std::sort(nbrs.begin(), nbrs.end());
            for (const auto& d : nbrs) q.push_back(d.second);
        }
        return last;
    };
    std::vector<char> probe(static_cast<std::size_t>(n), 0);
    char probe_value = 0;
    for (index_t s = 0; s < n; ++s) {
        if (seen[s]) continue;
        // pseudo-peripheral start: the last node of a BFS from s (a far end of the component)
        probe_value = static_cast<char>(probe_value == 1 ? 2 : 1);
        const std::int32_t start = bfs(static_cast<std::int32_t>(s), nullptr, probe, probe_value);
        bfs(start, &order, seen, 1);
    }
    std::reverse(order.begin(), order.end());
    return order;
}

}  // namespace

int lanczos_filter_degree(index_t n, index_t n_deflate, const EigshOptions& opt) {
    int degree = opt.poly_degree;
    if (degree < 0) degree = (n - n_deflate) >= 20000 ? 11 : 1;
    if (degree > 1 && degree % 2 == 0) ++degree;  // odd: p(x) < 0 below the interval
    return degree;
}

index_t lanczos_basis_size(index_t n, index_t nev, index_t n_deflate, const EigshOptions& opt) {
    const index_t m = opt.ncv > 0 ? opt.ncv : std::max<index_t>(2 * nev + 1, nev + 32);
    return std::min<index_t>(m, n - n_deflate - 1);
}

std::int64_t eigsh_workspace_bytes(index_t n, index_t nev, index_t n_deflate,
                                   const EigshOptions& opt) {
    if (eigsh_use_dense(n, nev, n_deflate, opt)) return 24 * n * n;
    const index_t basis = n_deflate + lanczos_basis_size(n, nev, n_deflate, opt) + 1;
    const index_t filter = lanczos_filter_degree(n, n_deflate, opt) > 1 ? 3 : 0;
    return 8 * n * (basis + 1 + filter);
}

bool eigsh_use_dense(index_t n, index_t nev, index_t n_deflate, const EigshOptions& opt) {
    const index_t free_dim = n - n_deflate;
    const index_t ncv = opt.ncv > 0 ? opt.ncv : std::max<index_t>(2 * nev + 1, nev + 32);
    return free_dim < opt.dense_below || free_dim <= ncv + 1;
}

void check_eigsh_args(const CsrView& A, index_t nev, index_t n_deflate, const EigshOptions& opt) {
    const char* op = "eigsh";
    LATENTBRIDGE_CHECK(A.n >= 1 && n_deflate >= 0 && nev >= 1, op, "need n >= 1 and nev >= 1");
    LATENTBRIDGE_CHECK(nev + n_deflate <= A.n, op, "nev + n_deflate must not exceed n");
    LATENTBRIDGE_CHECK(opt.tol > 0, op, "tol must be positive");
    for (index_t i = 0; i < A.n; ++i) {
        LATENTBRIDGE_CHECK(A.indptr[i] <= A.indptr[i + 1], op, "indptr must be non-decreasing");
    }
    for (std::int64_t e = 0; e < A.indptr[A.n]; ++e) {
        LATENTBRIDGE_CHECK(A.indices[e] >= 0 && A.indices[e] < A.n, op,
                           "column index out of range");
        LATENTBRIDGE_CHECK(std::isfinite(A.data[e]), op, "matrix entries must be finite");
    }
}

EigshResult lanczos_largest(LanczosBackend& backend, index_t n, index_t nev, const double* Z,
                            index_t n_deflate, const EigshOptions& opt) {
    Lanczos solver(backend, n, nev, n_deflate, opt);
    return solver.run(Z);
}

namespace {

EigshResult cpu_lanczos(const CsrView& A, index_t nev, const double* Z, index_t n_deflate,
                        const EigshOptions& opt) {
    const index_t cols = n_deflate + lanczos_basis_size(A.n, nev, n_deflate, opt) + 1;
    CpuBackend backend(A, cols, lanczos_filter_degree(A.n, n_deflate, opt) > 1, opt.n_threads);
    return lanczos_largest(backend, A.n, nev, Z, n_deflate, opt);
}

}  // namespace

EigshResult eigsh_largest(const CsrView& A, index_t nev, const double* Z, index_t n_deflate,
                          const EigshOptions& opt) {
    check_eigsh_args(A, nev, n_deflate, opt);
    if (eigsh_use_dense(A.n, nev, n_deflate, opt)) return dense_eigsh(A, nev, Z, n_deflate);
    if (!opt.reorder) return cpu_lanczos(A, nev, Z, n_deflate, opt);
    // Solve on the bandwidth-reduced matrix: its SpMV gathers from nearby memory.
    const index_t n = A.n;
    const std::vector<std::int32_t> order = rcm_order(A);
    std::vector<std::int32_t> inv(static_cast<std::size_t>(n));
    for (index_t p = 0; p < n; ++p) inv[order[p]] = static_cast<std::int32_t>(p);
    std::vector<std::int64_t> indptr(static_cast<std::size_t>(n + 1), 0);
    for (index_t p = 0; p < n; ++p)
        indptr[p + 1] = indptr[p] + (A.indptr[order[p] + 1] - A.indptr[order[p]]);
    std::vector<std::int32_t> indices(static_cast<std::size_t>(indptr[n]));
    std::vector<double> data(static_cast<std::size_t>(indptr[n]));
    parallel_for((n + 4095) / 4096, opt.n_threads, [&](index_t b, int) {
        std::vector<std::pair<std::int32_t, double>> row;
        for (index_t p = b * 4096; p < std::min(n, (b + 1) * 4096); ++p) {
            const index_t i = order[p];
            row.clear();
            for (std::int64_t e = A.indptr[i]; e < A.indptr[i + 1]; ++e)
                row.emplace_back(inv[A.indices[e]], A.data[e]);
            std::sort(row.begin(), row.end());
            std::int64_t pos = indptr[p];
            for (const auto& c : row) {
                indices[pos] = c.first;
                data[pos++] = c.second;
            }
        }
    });
    std::vector<double> Zp(static_cast<std::size_t>(n * n_deflate));
    for (index_t p = 0; p < n; ++p)
        for (index_t c = 0; c < n_deflate; ++c) Zp[p * n_deflate + c] = Z[order[p] * n_deflate + c];
    const CsrView B{n, indptr.data(), indices.data(), data.data()};
    EigshResult res = cpu_lanczos(B, nev, n_deflate ? Zp.data() : nullptr, n_deflate, opt);
    std::vector<double> vec(res.vectors.size());
    for (index_t p = 0; p < n; ++p)
        for (index_t c = 0; c < nev; ++c) vec[order[p] * nev + c] = res.vectors[p * nev + c];
    res.vectors.swap(vec);
    return res;
}

}  // namespace latentbridge
