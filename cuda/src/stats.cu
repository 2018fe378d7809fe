// Streamed cross products (A - a)^T (B - b) in float64 on the GPU: a shared-memory tiled kernel in
// which each block owns a 64 x 64 tile of C and each thread a 4 x 4 register tile (strided by 16 so
// consecutive threads touch consecutive columns); the chunk's rows are the reduction dimension,
// read BK at a time, converted to double and shifted while loaded into shared memory. With B = A
// only the tiles on or above the diagonal run and the host mirrors the upper triangle. Column sums
// use one thread per column and double atomics across row blocks.
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "check.cuh"
#include "launch.cuh"
#include "latentbridge/detail/check.hpp"
#include "latentbridge_cuda/stats.hpp"

namespace latentbridge {
namespace cuda {
namespace {

constexpr int kBM = 64, kBN = 64, kBK = 16, kT = 4;  // tile rows/cols, depth, per-thread outputs
constexpr int kThreads = (kBM / kT) * (kBN / kT);    // 256
constexpr int kSumRows = 256;                        // rows per block of the column-sum kernel

template <typename T>
__global__ void cross_tile_kernel(const T* __restrict__ A, std::int64_t n, std::int64_t p,
                                  const double* __restrict__ a, const T* __restrict__ B,
                                  std::int64_t q, const double* __restrict__ b,
                                  double* __restrict__ C, bool sym) {
    const std::int64_t i0 = static_cast<std::int64_t>(blockIdx.y) * kBM;
    const std::int64_t j0 = static_cast<std::int64_t>(blockIdx.x) * kBN;
    if (sym && j0 + kBN <= i0) return;  // entirely below the diagonal
    __shared__ double As[kBK][kBM];
    __shared__ double Bs[kBK][kBN];
    const int tx = threadIdx.x % (kBN / kT), ty = threadIdx.x / (kBN / kT);
    double acc[kT][kT];
#pragma unroll
    for (int m = 0; m < kT; ++m)
#pragma unroll
        for (int c = 0; c < kT; ++c) acc[m][c] = 0.0;
    for (std::int64_t k0 = 0; k0 < n; k0 += kBK) {
        for (int e = threadIdx.x; e < kBK * kBM; e += kThreads) {
            const int kk = e / kBM, ii = e % kBM;
            const std::int64_t k = k0 + kk, i = i0 + ii;
            double v = 0.0;
            if (k < n && i < p) v = static_cast<double>(A[k * p + i]) - (a ? a[i] : 0.0);
            As[kk][ii] = v;
        }
        for (int e = threadIdx.x; e < kBK * kBN; e += kThreads) {
            const int kk = e / kBN, jj = e % kBN;
            const std::int64_t k = k0 + kk, j = j0 + jj;
            double v = 0.0;
            if (k < n && j < q) v = static_cast<double>(B[k * q + j]) - (b ? b[j] : 0.0);
            Bs[kk][jj] = v;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kBK; ++kk) {
            double ra[kT], rb[kT];
#pragma unroll
            for (int m = 0; m < kT; ++m) ra[m] = As[kk][ty + m * (kBM / kT)];
#pragma unroll
            for (int c = 0; c < kT; ++c) rb[c] = Bs[kk][tx + c * (kBN / kT)];
#pragma unroll
            for (int m = 0; m < kT; ++m)
#pragma unroll
                for (int c = 0; c < kT; ++c) acc[m][c] = fma(ra[m], rb[c], acc[m][c]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int m = 0; m < kT; ++m) {
        const std::int64_t i = i0 + ty + m * (kBM / kT);
        if (i >= p) continue;
#pragma unroll
        for (int c = 0; c < kT; ++c) {
            const std::int64_t j = j0 + tx + c * (kBN / kT);
            if (j < q && (!sym || j >= i)) C[i * q + j] += acc[m][c];
        }
    }
}

template <typename T>
__global__ void shifted_column_sums(const T* __restrict__ X, std::int64_t rows, std::int64_t d,
                                    const double* __restrict__ shift, double* __restrict__ acc) {
    const std::int64_t k = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
    if (k >= d) return;
    const std::int64_t r0 = static_cast<std::int64_t>(blockIdx.y) * kSumRows;
    const std::int64_t r1 = r0 + kSumRows < rows ? r0 + kSumRows : rows;
    const double s0 = shift ? shift[k] : 0.0;
    double s = 0.0;
    for (std::int64_t r = r0; r < r1; ++r) s += static_cast<double>(X[r * d + k]) - s0;
    atomicAdd(acc + k, s);
}

template <typename T>
void add_column_sums(const DeviceBuffer<T>& X, std::int64_t rows, std::int64_t d,
                     const DeviceBuffer<double>& shift, bool has_shift, double* host_sums,
                     cudaStream_t stream) {
    if (!host_sums || rows == 0 || d == 0) return;
    DeviceBuffer<double> acc(static_cast<std::size_t>(d));
    LATENTBRIDGE_CUDA_CHECK(
        cudaMemsetAsync(acc.get(), 0, static_cast<std::size_t>(d) * sizeof(double), stream));
    const dim3 grid(static_cast<unsigned>((d + 127) / 128),
                    static_cast<unsigned>((rows + kSumRows - 1) / kSumRows));
    shifted_column_sums<T><<<grid, 128, 0, stream>>>(X.get(), rows, d,
                                                      has_shift ? shift.get() : nullptr, acc.get());
    check_launch();
    std::vector<double> tmp(static_cast<std::size_t>(d));
    download(tmp.data(), acc.get(), tmp.size(), stream);
    for (std::int64_t k = 0; k < d; ++k) host_sums[k] += tmp[static_cast<std::size_t>(k)];
}

}  // namespace

template <typename T>
void cross_accumulate(const T* A, index_t n, index_t p, const double* a, const T* B, index_t q,
                      const double* b, double* C, double* sum_a, double* sum_b,
                      void* stream_ptr) {
    const char* op = "cross_accumulate";
    const cudaStream_t stream = as_stream(stream_ptr);
    LATENTBRIDGE_CHECK(n >= 0 && p >= 0 && q >= 0, op, "negative size");
    LATENTBRIDGE_CHECK(A != nullptr && C != nullptr, op, "null pointer");
    const bool sym = (B == nullptr);
    if (sym) {
        q = p;
        b = a;
    }
    LATENTBRIDGE_CHECK((p + kBM - 1) / kBM < 65536, op, "too many columns for one grid");
    if (n > 0 && p > 0 && q > 0) {
        const auto np = static_cast<std::size_t>(n * p), nq = static_cast<std::size_t>(n * q);
        DeviceBuffer<T> dA = upload(A, np, stream);
        DeviceBuffer<T> dB = sym ? DeviceBuffer<T>() : upload(B, nq, stream);
        DeviceBuffer<double> da = a ? upload(a, static_cast<std::size_t>(p), stream) : DeviceBuffer<double>();
        DeviceBuffer<double> db =
            (!sym && b) ? upload(b, static_cast<std::size_t>(q), stream) : DeviceBuffer<double>();
        DeviceBuffer<double> dC = upload(C, static_cast<std::size_t>(p * q), stream);
        const dim3 grid(static_cast<unsigned>((q + kBN - 1) / kBN),
                        static_cast<unsigned>((p + kBM - 1) / kBM));
        cross_tile_kernel<T><<<grid, kThreads, 0, stream>>>(dA.get(), n, p, a ? da.get() : nullptr,
                                                 sym ? dA.get() : dB.get(), q,
                                                 sym ? (a ? da.get() : nullptr)
                                                     : (b ? db.get() : nullptr),
                                                 dC.get(), sym);
        check_launch();
        add_column_sums(dA, n, p, da, a != nullptr, sum_a, stream);
        if (!sym) add_column_sums(dB, n, q, db, b != nullptr, sum_b, stream);
        download(C, dC.get(), static_cast<std::size_t>(p * q), stream);
    }
    if (sym)
        for (index_t i = 0; i < p; ++i)
            for (index_t j = 0; j < i; ++j) C[i * p + j] = C[j * p + i];
}

template void cross_accumulate<float>(const float*, index_t, index_t, const double*, const float*,
                                      index_t, const double*, double*, double*, double*, void*);
template void cross_accumulate<double>(const double*, index_t, index_t, const double*,
                                       const double*, index_t, const double*, double*, double*,
                                       double*, void*);

}  // namespace cuda
}  // namespace latentbridge
