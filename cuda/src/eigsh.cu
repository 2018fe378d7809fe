// The CUDA backend of the thick-restart Lanczos driver (latentbridge/lanczos.hpp): the basis B
// (n x cols, column-major, leading dimension n), the work vectors and the output block live on the
// device; the driver's small matrices stay on the host. Kernels written here (this toolkit has no
// cuBLAS/cuSPARSE): a warp-per-row CSR product with the Chebyshev three-term update fused in, and
// tall-skinny projections B^T x, updates x -= B h and products B Y. Every reduction runs over a
// fixed grid of row blocks (a function of n only) and the per-block partial sums are added in
// block order by one thread per output, so results are deterministic (no atomics).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "check.cuh"
#include "launch.cuh"
#include "latentbridge/detail/check.hpp"
#include "latentbridge/detail/lanczos.hpp"
#include "latentbridge_cuda/eigsh.hpp"

namespace latentbridge {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kRowsPerSpmvBlock = kThreads / 32;  // one warp per row
constexpr index_t kCombineRows = 1 << 17;          // rows per chunk of an in-place product

// y[i] = mult * ((A x)_i - center * x_i) / half + gamma * z_i (z read only when gamma != 0).
__global__ void spmv_kernel(std::int64_t n, const std::int64_t* __restrict__ indptr,
                            const std::int32_t* __restrict__ indices,
                            const double* __restrict__ data, const double* __restrict__ x,
                            double* __restrict__ y, double mult, double center, double half,
                            double gamma, const double* __restrict__ z) {
    const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * kRowsPerSpmvBlock + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= n) return;  // whole warps leave together: no barrier below, only warp shuffles
    double acc = 0.0;
    for (std::int64_t e = indptr[row] + lane; e < indptr[row + 1]; e += 32) acc += data[e] * x[indices[e]];
    acc = warp_sum(acc);
    if (lane == 0) {
        double v = mult * (acc - center * x[row]) / half;
        if (gamma != 0.0) v += gamma * z[row];
        y[row] = v;
    }
}

// partial[c * blocks + b] = sum over the rows of block b of V[c * ld + r] * x[r] for c < nv, and
// of x[r]^2 for c == nv. Grid (blocks, nv + 1).
__global__ void project_kernel(const double* __restrict__ V, std::int64_t ld, std::int64_t nv,
                               const double* __restrict__ x, std::int64_t n, std::int64_t chunk,
                               double* __restrict__ partial) {
    __shared__ double shared[kThreads];
    const std::int64_t b = blockIdx.x, c = blockIdx.y;
    const std::int64_t r0 = b * chunk, r1 = min(n, r0 + chunk);
    const double* v = c < nv ? V + c * ld : x;
    double acc = 0.0;
    for (std::int64_t r = r0 + threadIdx.x; r < r1; r += kThreads) acc += v[r] * x[r];
    const double total = block_sum<kThreads>(acc, shared);
    if (threadIdx.x == 0) partial[c * gridDim.x + b] = total;
}

// out[c] = sum_b partial[c * blocks + b], in block order.
__global__ void reduce_partials_kernel(const double* __restrict__ partial, std::int64_t blocks,
                                       std::int64_t count, double* __restrict__ out) {
    const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= count) return;
    double acc = 0.0;
    for (std::int64_t b = 0; b < blocks; ++b) acc += partial[c * blocks + b];
    out[c] = acc;
}

// x[r] -= sum_c V[c * ld + r] h[c]; partial[b] = sum over the rows of block b of the new x[r]^2.
__global__ void subtract_kernel(const double* __restrict__ V, std::int64_t ld, std::int64_t nv,
                                const double* __restrict__ h, double* __restrict__ x, std::int64_t n,
                                std::int64_t chunk, double* __restrict__ partial) {
    __shared__ double shared[kThreads];
    const std::int64_t b = blockIdx.x;
    const std::int64_t r0 = b * chunk, r1 = min(n, r0 + chunk);
    double acc2 = 0.0;
    for (std::int64_t r = r0 + threadIdx.x; r < r1; r += kThreads) {
        double s = 0.0;
        for (std::int64_t c = 0; c < nv; ++c) s += V[c * ld + r] * h[c];
        const double v = x[r] - s;
        x[r] = v;
        acc2 += v * v;
    }
    const double total = block_sum<kThreads>(acc2, shared);
    if (threadIdx.x == 0) partial[b] = total;
}

// D[j * ldd + r] = sum_c S[c * lds + r] Y[c + j * m] for rows r < rows, j < kk (Y on the device).
__global__ void tall_product_kernel(const double* __restrict__ S, std::int64_t lds, std::int64_t m,
                                    const double* __restrict__ Y, std::int64_t kk,
                                    double* __restrict__ D, std::int64_t ldd, std::int64_t rows) {
    const std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    for (std::int64_t j = 0; j < kk; ++j) {
        double acc = 0.0;
        for (std::int64_t c = 0; c < m; ++c) acc += S[c * lds + r] * Y[c + j * m];
        D[j * ldd + r] = acc;
    }
}

__global__ void divide_kernel(const double* x, double* y, std::int64_t n, double d) {
    const std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (r < n) y[r] = x[r] / d;
}

// partial[c * blocks + b] = sum over the rows of block b of (P[c n + r] - theta_c Q[c n + r])^2.
__global__ void residual_kernel(const double* __restrict__ P, const double* __restrict__ Q,
                                const double* __restrict__ theta, std::int64_t n, std::int64_t chunk,
                                double* __restrict__ partial) {
    __shared__ double shared[kThreads];
    const std::int64_t b = blockIdx.x, c = blockIdx.y;
    const std::int64_t r0 = b * chunk, r1 = min(n, r0 + chunk);
    const double th = theta[c];
    double acc = 0.0;
    for (std::int64_t r = r0 + threadIdx.x; r < r1; r += kThreads) {
        const double v = P[c * n + r] - th * Q[c * n + r];
        acc += v * v;
    }
    const double total = block_sum<kThreads>(acc, shared);
    if (threadIdx.x == 0) partial[c * gridDim.x + b] = total;
}

class CudaBackend final : public LanczosBackend {
  public:
    CudaBackend(const CsrView& A, index_t cols, bool filtered, index_t max_nev, cudaStream_t stream)
        : n_(A.n), stream_(stream) {
        const std::int64_t nnz = A.indptr[A.n];
        indptr_ = DeviceBuffer<std::int64_t>(static_cast<std::size_t>(n_ + 1));
        indices_ = DeviceBuffer<std::int32_t>(static_cast<std::size_t>(std::max<std::int64_t>(nnz, 1)));
        data_ = DeviceBuffer<double>(static_cast<std::size_t>(std::max<std::int64_t>(nnz, 1)));
        copy_to_device(indptr_.get(), A.indptr, static_cast<std::size_t>(n_ + 1), stream_);
        copy_to_device(indices_.get(), A.indices, static_cast<std::size_t>(nnz), stream_);
        copy_to_device(data_.get(), A.data, static_cast<std::size_t>(nnz), stream_);
        // ~4 rows per thread: enough blocks to fill a large GPU in the row-block kernels
        blocks_ = std::max<index_t>(1, std::min<index_t>(4096, (n_ + 1023) / 1024));
        chunk_ = (n_ + blocks_ - 1) / blocks_;
        B_ = DeviceBuffer<double>(static_cast<std::size_t>(n_ * cols));
        w_ = DeviceBuffer<double>(static_cast<std::size_t>(n_));
        if (filtered) {
            for (auto* y : {&ya_, &yb_, &yc_}) *y = DeviceBuffer<double>(static_cast<std::size_t>(n_));
        }
        const index_t most = std::max<index_t>(cols, max_nev) + 1;
        partial_ = DeviceBuffer<double>(static_cast<std::size_t>(blocks_ * most));
        small_ = DeviceBuffer<double>(static_cast<std::size_t>(most * most));
        small2_ = DeviceBuffer<double>(static_cast<std::size_t>(most));
        host_.resize(static_cast<std::size_t>(most));
    }

    void set_column(index_t col, const double* v) override {
        copy_to_device(column(col), v, static_cast<std::size_t>(n_), stream_);
    }
    void project_column(index_t col, index_t nb, double* h) override {
        project(B_.get(), nb, column(col), h);
    }
    void subtract_from_column(index_t col, index_t nb, const double* h) override {
        subtract(nb, h, column(col));
    }
    double column_norm(index_t col) override { return std::sqrt(project(nullptr, 0, column(col), nullptr)); }
    void divide_column(index_t col, double d) override { divide(column(col), column(col), d); }
    void copy_column(index_t src, index_t dst) override {
        LATENTBRIDGE_CUDA_CHECK(cudaMemcpyAsync(column(dst), column(src), n_ * sizeof(double),
                                                cudaMemcpyDeviceToDevice, stream_));
    }

    double apply_and_project(index_t col, index_t nb, const LanczosFilter& f, double* h) override {
        const double* x = column(col);
        const double* prev = x;
        const double* cur = x;
        for (int d = 1; d <= f.degree; ++d) {
            double* out = w_.get();
            if (d != f.degree) {  // a buffer that is neither of the two inputs
                for (double* cand : {ya_.get(), yb_.get(), yc_.get()})
                    if (cand != prev && cand != cur) {
                        out = cand;
                        break;
                    }
            }
            if (f.degree == 1)
                spmv(cur, out, 1.0, 0.0, 1.0, 0.0, nullptr);
            else if (d == 1)
                spmv(cur, out, 1.0, f.center, f.half, 0.0, nullptr);
            else
                spmv(cur, out, 2.0, f.center, f.half, -1.0, prev);
            prev = cur;
            cur = out;
        }
        return project(B_.get(), nb, w_.get(), h);
    }
    void project_w(index_t nb, double* h) override { project(B_.get(), nb, w_.get(), h); }
    double subtract_from_w(index_t nb, const double* h) override { return subtract(nb, h, w_.get()); }
    double w_norm() override { return std::sqrt(project(nullptr, 0, w_.get(), nullptr)); }
    void w_to_column(index_t col, double d) override { divide(w_.get(), column(col), d); }

    void combine(index_t first, index_t m, const double* Y, index_t kk) override {
        upload_small(Y, m * kk);
        const index_t rows = std::min<index_t>(n_, kCombineRows);
        DeviceBuffer<double> tmp(static_cast<std::size_t>(rows * kk));
        for (index_t r0 = 0; r0 < n_; r0 += rows) {
            const index_t len = std::min<index_t>(rows, n_ - r0);
            tall_product_kernel<<<cover_grid(len, kThreads), kThreads, 0, stream_>>>(column(first) + r0, n_, m, small_.get(),
                                                                       kk, tmp.get(), len, len);
            check_launch();
            LATENTBRIDGE_CUDA_CHECK(cudaMemcpy2DAsync(column(first) + r0, n_ * sizeof(double), tmp.get(),
                                                      len * sizeof(double), len * sizeof(double),
                                                      static_cast<std::size_t>(kk), cudaMemcpyDeviceToDevice,
                                                      stream_));
        }
    }
    void ritz_gram(index_t first, index_t nev, double* G) override {
        if (AX_.size() < static_cast<std::size_t>(n_ * nev)) {
            AX_ = DeviceBuffer<double>(static_cast<std::size_t>(n_ * nev));
            AXR_ = DeviceBuffer<double>(static_cast<std::size_t>(n_ * nev));
        }
        for (index_t c = 0; c < nev; ++c) spmv(column(first + c), AX_.get() + c * n_, 1.0, 0.0, 1.0, 0.0, nullptr);
        // column j of G = X^T (A x_j)
        for (index_t j = 0; j < nev; ++j) project(column(first), nev, AX_.get() + j * n_, G + j * nev);
    }
    void ritz_rotate(index_t first, index_t nev, const double* R, const double* theta, double* res) override {
        ensure_out(nev);
        upload_small(R, nev * nev);
        tall_product_kernel<<<cover_grid(n_, kThreads), kThreads, 0, stream_>>>(column(first), n_, nev, small_.get(), nev,
                                                                  out_.get(), n_, n_);
        check_launch();
        tall_product_kernel<<<cover_grid(n_, kThreads), kThreads, 0, stream_>>>(AX_.get(), n_, nev, small_.get(), nev,
                                                                  AXR_.get(), n_, n_);
        check_launch();
        copy_to_device(small2_.get(), theta, static_cast<std::size_t>(nev), stream_);
        residual_kernel<<<dim3(static_cast<unsigned>(blocks_), static_cast<unsigned>(nev)), kThreads, 0, stream_>>>(
            AXR_.get(), out_.get(), small2_.get(), n_, chunk_, partial_.get());
        check_launch();
        reduce(nev, res);
        for (index_t c = 0; c < nev; ++c) res[c] = std::sqrt(res[c]);
    }
    void output_from_basis(index_t first, index_t nev) override {
        ensure_out(nev);
        LATENTBRIDGE_CUDA_CHECK(cudaMemcpyAsync(out_.get(), column(first), n_ * nev * sizeof(double),
                                                cudaMemcpyDeviceToDevice, stream_));
    }
    void download_output(index_t nev, double* vectors) override {
        std::vector<double> colmajor(static_cast<std::size_t>(n_ * nev));
        download(colmajor.data(), out_.get(), colmajor.size(), stream_);
        for (index_t i = 0; i < n_; ++i)
            for (index_t c = 0; c < nev; ++c) vectors[i * nev + c] = colmajor[c * n_ + i];
    }

  private:
    double* column(index_t col) const { return B_.get() + col * n_; }

    void spmv(const double* x, double* y, double mult, double center, double half, double gamma,
              const double* z) {
        spmv_kernel<<<cover_grid(n_, kRowsPerSpmvBlock), kThreads, 0, stream_>>>(n_, indptr_.get(), indices_.get(), data_.get(),
                                                                   x, y, mult, center, half, gamma, z);
        check_launch();
    }

    // h[0:nv] = V[:, :nv]^T x (V column-major with leading dimension n; h may be null when nv = 0);
    // returns |x|^2.
    double project(const double* V, index_t nv, const double* x, double* h) {
        project_kernel<<<dim3(static_cast<unsigned>(blocks_), static_cast<unsigned>(nv + 1)), kThreads, 0, stream_>>>(
            V, n_, nv, x, n_, chunk_, partial_.get());
        check_launch();
        reduce(nv + 1, host_.data());
        for (index_t c = 0; c < nv; ++c) h[c] = host_[c];
        return host_[nv];
    }

    // x -= B[:, :nb] h; returns the new |x|^2.
    double subtract(index_t nb, const double* h, double* x) {
        upload_small(h, nb);
        subtract_kernel<<<static_cast<unsigned>(blocks_), kThreads, 0, stream_>>>(B_.get(), n_, nb, small_.get(), x, n_,
                                                                      chunk_, partial_.get());
        check_launch();
        double norm2 = 0.0;
        reduce(1, &norm2);
        return norm2;
    }

    // out[0:count] (host) = the block-ordered sums of partial_ (count x blocks_).
    void reduce(index_t count, double* out) {
        reduce_partials_kernel<<<cover_grid(count, kThreads), kThreads, 0, stream_>>>(partial_.get(), blocks_, count,
                                                                        small2_.get());
        check_launch();
        download(out, small2_.get(), static_cast<std::size_t>(count), stream_);
    }

    void divide(const double* x, double* y, double d) {
        divide_kernel<<<cover_grid(n_, kThreads), kThreads, 0, stream_>>>(x, y, n_, d);
        check_launch();
    }

    void upload_small(const double* v, index_t count) {
        if (static_cast<std::size_t>(count) > small_.size()) small_ = DeviceBuffer<double>(static_cast<std::size_t>(count));
        copy_to_device(small_.get(), v, static_cast<std::size_t>(count), stream_);
    }

    void ensure_out(index_t nev) {
        if (out_.size() < static_cast<std::size_t>(n_ * nev)) out_ = DeviceBuffer<double>(static_cast<std::size_t>(n_ * nev));
    }

    index_t n_, blocks_ = 1, chunk_ = 1;
    cudaStream_t stream_;
    DeviceBuffer<std::int64_t> indptr_;
    DeviceBuffer<std::int32_t> indices_;
    DeviceBuffer<double> data_, B_, w_, ya_, yb_, yc_, partial_, small_, small2_, out_, AX_, AXR_;
    std::vector<double> host_;
};

}  // namespace

EigshResult eigsh_largest(const CsrView& A, index_t nev, const double* Z, index_t n_deflate,
                          const EigshOptions& opt, void* stream) {
    check_eigsh_args(A, nev, n_deflate, opt);
    if (eigsh_use_dense(A.n, nev, n_deflate, opt)) return dense_eigsh(A, nev, Z, n_deflate);
    const index_t m = lanczos_basis_size(A.n, nev, n_deflate, opt);
    const index_t cols = n_deflate + m + 1;
    LATENTBRIDGE_CHECK(cols <= 65535, "eigsh", "too many basis vectors for the CUDA solver (ncv + n_deflate)");
    CudaBackend backend(A, cols, lanczos_filter_degree(A.n, n_deflate, opt) > 1, nev, as_stream(stream));
    return lanczos_largest(backend, A.n, nev, Z, n_deflate, opt);
}

}  // namespace cuda
}  // namespace latentbridge
