// Pairwise distances on the GPU: the same contract as the CPU kernel (cpp/src/distance.cpp).
// A shared-memory tiled kernel computes the dot products of mean-shifted rows with each thread
// owning a TM x TN register tile; the epilogue (in double) forms |x|^2 + |y|^2 - 2 x.y, recomputes
// directly the pairs where cancellation would cost accuracy, clamps at zero and takes the root.
// Y = X computes every tile: the accumulation order over k is the same for (i, j) and (j, i) and
// products commute inside an FMA, so the result is still exactly symmetric.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "check.cuh"
#include "latentbridge/detail/check.hpp"
#include "latentbridge/distance.hpp"
#include "latentbridge_cuda/api.hpp"

namespace latentbridge {
namespace cuda {
namespace {

template <typename T>
struct TileShape;
template <>
struct TileShape<float> {
    static constexpr int BM = 128, BN = 128, BK = 8, TM = 8, TN = 8;
};
template <>
struct TileShape<double> {
    static constexpr int BM = 64, BN = 64, BK = 8, TM = 4, TN = 4;
};

// Column sums (double) of X (rows x d) into acc (atomicAdd over row chunks).
template <typename T>
__global__ void column_sums(const T* __restrict__ X, std::int64_t rows, std::int64_t d,
                            double* __restrict__ acc) {
    const std::int64_t k = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
    if (k >= d) return;
    const std::int64_t r0 = blockIdx.y * 256LL;
    const std::int64_t r1 = r0 + 256 < rows ? r0 + 256 : rows;
    double s = 0.0;
    for (std::int64_t r = r0; r < r1; ++r) s += static_cast<double>(X[r * d + k]);
    atomicAdd(acc + k, s);
}

template <typename T>
__global__ void finish_shift(const double* __restrict__ acc, std::int64_t d, double count,
                             T* __restrict__ shift) {
    const std::int64_t k = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
    if (k < d) shift[k] = static_cast<T>(acc[k] / count);
}

// Squared norms (double) of the shifted rows, one warp per row; shift may be null.
template <typename T>
__global__ void row_norms(const T* __restrict__ X, std::int64_t rows, std::int64_t d,
                          const T* __restrict__ shift, double* __restrict__ out) {
    const std::int64_t row = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    double s = 0.0;
    for (std::int64_t k = lane; k < d; k += 32) {
        const double v = shift ? static_cast<double>(static_cast<T>(X[row * d + k] - shift[k]))
                               : static_cast<double>(X[row * d + k]);
        s += v * v;
    }
    for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
    if (lane == 0) out[row] = s;
}

template <typename T>
__device__ double direct_sqdist(const T* __restrict__ x, const T* __restrict__ y, std::int64_t d) {
    double acc = 0.0;
    for (std::int64_t k = 0; k < d; ++k) {
        const double t = static_cast<double>(x[k]) - static_cast<double>(y[k]);
        acc += t * t;
    }
    return acc;
}

// metric: 0 sqeuclidean, 1 euclidean, 2 cosine.
template <typename T>
__global__ void __launch_bounds__((TileShape<T>::BM / TileShape<T>::TM) *
                                  (TileShape<T>::BN / TileShape<T>::TN))
    distance_tiles(const T* __restrict__ X, std::int64_t n, const T* __restrict__ Y, std::int64_t m,
                   std::int64_t d, const T* __restrict__ shift, const double* __restrict__ nx,
                   const double* __restrict__ ny, int metric, bool symmetric, T* __restrict__ out) {
    using S = TileShape<T>;
    constexpr int BM = S::BM, BN = S::BN, BK = S::BK, TM = S::TM, TN = S::TN;
    constexpr int THREADS = (BM / TM) * (BN / TN);
    __shared__ T As[BK][BM + 4];
    __shared__ T Bs[BK][BN + 4];
    const int tid = threadIdx.x;
    const int tx = tid % (BN / TN), ty = tid / (BN / TN);
    const std::int64_t i0 = static_cast<std::int64_t>(blockIdx.y) * BM;
    const std::int64_t j0 = static_cast<std::int64_t>(blockIdx.x) * BN;

    T acc[TM][TN];
#pragma unroll
    for (int r = 0; r < TM; ++r)
#pragma unroll
        for (int c = 0; c < TN; ++c) acc[r][c] = T(0);

    for (std::int64_t k0 = 0; k0 < d; k0 += BK) {
#pragma unroll
        for (int e = tid; e < BM * BK; e += THREADS) {
            const int row = e / BK, k = e % BK;
            const std::int64_t gi = i0 + row, gk = k0 + k;
            T v = T(0);
            if (gi < n && gk < d) v = shift ? X[gi * d + gk] - shift[gk] : X[gi * d + gk];
            As[k][row] = v;
        }
#pragma unroll
        for (int e = tid; e < BN * BK; e += THREADS) {
            const int row = e / BK, k = e % BK;
            const std::int64_t gj = j0 + row, gk = k0 + k;
            T v = T(0);
            if (gj < m && gk < d) v = shift ? Y[gj * d + gk] - shift[gk] : Y[gj * d + gk];
            Bs[k][row] = v;
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < BK; ++k) {
            T a[TM], b[TN];
#pragma unroll
            for (int r = 0; r < TM; ++r) a[r] = As[k][ty * TM + r];
#pragma unroll
            for (int c = 0; c < TN; ++c) b[c] = Bs[k][tx * TN + c];
#pragma unroll
            for (int r = 0; r < TM; ++r)
#pragma unroll
                for (int c = 0; c < TN; ++c) acc[r][c] = fma(a[r], b[c], acc[r][c]);
        }
        __syncthreads();
    }

    const double ratio = distance_recompute_ratio<T>();
#pragma unroll
    for (int r = 0; r < TM; ++r) {
        const std::int64_t i = i0 + ty * TM + r;
        if (i >= n) continue;
#pragma unroll
        for (int c = 0; c < TN; ++c) {
            const std::int64_t j = j0 + tx * TN + c;
            if (j >= m) continue;
            double v;
            if (symmetric && i == j) {
                v = 0.0;
            } else if (metric == 2) {
                const double den = nx[i] * ny[j];
                v = den > 0 ? 1.0 - static_cast<double>(acc[r][c]) / sqrt(den) : 1.0;
                v = fmin(2.0, fmax(0.0, v));
            } else {
                const double scale = nx[i] + ny[j];
                double d2 = scale - 2.0 * static_cast<double>(acc[r][c]);
                if (d2 < ratio * scale) d2 = direct_sqdist(X + i * d, Y + j * d, d);
                d2 = fmax(d2, 0.0);
                v = metric == 1 ? sqrt(d2) : d2;
            }
            out[i * m + j] = static_cast<T>(v);
        }
    }
}

int metric_code(Metric metric) {
    switch (metric) {
        case Metric::sqeuclidean: return 0;
        case Metric::euclidean: return 1;
        default: return 2;
    }
}

}  // namespace

template <typename T>
void pairwise_distances_device(const T* X, index_t n, const T* Y, index_t m, index_t d,
                               Metric metric, T* out, void* stream_ptr, int device) {
    const char* op = "pairwise_distances(cuda)";
    LATENTBRIDGE_CHECK(n >= 0 && m >= 0 && d >= 0, op, "negative size");
    const bool sym = (Y == nullptr);
    if (sym) {
        Y = X;
        m = n;
    }
    if (n == 0 || m == 0) return;
    LATENTBRIDGE_CHECK((n + TileShape<T>::BM - 1) / TileShape<T>::BM <= 65535, op,
                       "X has too many rows for one launch (at most 65535 tiles of rows)");
    DeviceGuard guard(device);
    auto stream = static_cast<cudaStream_t>(stream_ptr);
    const bool cosine = metric == Metric::cosine;

    DeviceBuffer<T> shift;
    if (!cosine && d > 0) {
        DeviceBuffer<double> acc(static_cast<std::size_t>(d));
        LATENTBRIDGE_CUDA_CHECK(cudaMemsetAsync(acc.get(), 0, sizeof(double) * d, stream));
        const dim3 block(128);
        auto launch_sums = [&](const T* Z, index_t rows) {
            const dim3 grid(static_cast<unsigned>((d + 127) / 128),
                            static_cast<unsigned>((rows + 255) / 256));
            column_sums<T><<<grid, block, 0, stream>>>(Z, rows, d, acc.get());
            LATENTBRIDGE_CUDA_CHECK(cudaGetLastError());
        };
        launch_sums(X, n);
        if (!sym) launch_sums(Y, m);
        shift = DeviceBuffer<T>(static_cast<std::size_t>(d));
        finish_shift<T><<<static_cast<unsigned>((d + 255) / 256), 256, 0, stream>>>(
            acc.get(), d, static_cast<double>(sym ? n : n + m), shift.get());
        LATENTBRIDGE_CUDA_CHECK(cudaGetLastError());
        LATENTBRIDGE_CUDA_CHECK(cudaStreamSynchronize(stream));  // acc is freed on return
    }
    DeviceBuffer<double> nx(static_cast<std::size_t>(n));
    DeviceBuffer<double> ny_own(sym ? 0 : static_cast<std::size_t>(m));
    const double* ny = sym ? nx.get() : ny_own.get();
    auto launch_norms = [&](const T* Z, index_t rows, double* dst) {
        row_norms<T><<<static_cast<unsigned>((rows * 32 + 255) / 256), 256, 0, stream>>>(
            Z, rows, d, shift.get(), dst);
        LATENTBRIDGE_CUDA_CHECK(cudaGetLastError());
    };
    launch_norms(X, n, nx.get());
    if (!sym) launch_norms(Y, m, ny_own.get());

    using S = TileShape<T>;
    const dim3 grid(static_cast<unsigned>((m + S::BN - 1) / S::BN),
                    static_cast<unsigned>((n + S::BM - 1) / S::BM));
    const dim3 block((S::BM / S::TM) * (S::BN / S::TN));
    distance_tiles<T><<<grid, block, 0, stream>>>(X, n, Y, m, d, shift.get(), nx.get(), ny,
                                                  metric_code(metric), sym, out);
    LATENTBRIDGE_CUDA_CHECK(cudaGetLastError());
    LATENTBRIDGE_CUDA_CHECK(cudaStreamSynchronize(stream));  // temporaries are freed on return
}

template <typename T>
void pairwise_distances(const T* X, index_t n, const T* Y, index_t m, index_t d, Metric metric,
                        T* out) {
    const bool sym = (Y == nullptr);
    const index_t rows_y = sym ? n : m;
    if (n == 0 || rows_y == 0) return;
    DeviceBuffer<T> dX(static_cast<std::size_t>(n * d));
    DeviceBuffer<T> dY(sym ? 0 : static_cast<std::size_t>(m * d));
    DeviceBuffer<T> dO(static_cast<std::size_t>(n * rows_y));
    LATENTBRIDGE_CUDA_CHECK(cudaMemcpy(dX.get(), X, sizeof(T) * n * d, cudaMemcpyHostToDevice));
    if (!sym)
        LATENTBRIDGE_CUDA_CHECK(cudaMemcpy(dY.get(), Y, sizeof(T) * m * d, cudaMemcpyHostToDevice));
    int device = 0;
    LATENTBRIDGE_CUDA_CHECK(cudaGetDevice(&device));
    pairwise_distances_device<T>(dX.get(), n, sym ? nullptr : dY.get(), m, d, metric, dO.get(),
                                 nullptr, device);
    LATENTBRIDGE_CUDA_CHECK(
        cudaMemcpy(out, dO.get(), sizeof(T) * n * rows_y, cudaMemcpyDeviceToHost));
}

template void pairwise_distances<float>(const float*, index_t, const float*, index_t, index_t,
                                        Metric, float*);
template void pairwise_distances<double>(const double*, index_t, const double*, index_t, index_t,
                                         Metric, double*);
template void pairwise_distances_device<float>(const float*, index_t, const float*, index_t,
                                               index_t, Metric, float*, void*, int);
template void pairwise_distances_device<double>(const double*, index_t, const double*, index_t,
                                                index_t, Metric, double*, void*, int);

}  // namespace cuda
}  // namespace latentbridge
