// Pairwise distances on the GPU: the same contract as the CPU kernel (cpp/src/distance.cpp).
// A register-tiled kernel in the style of fast SGEMM kernels computes the dot products of
// mean-shifted rows: 256 threads own a BM x BN tile of the output, each warp a contiguous sub-block
// and each thread TM x TN values in chunks of V consecutive rows / columns (V = 16 bytes / sizeof
// T, so every shared-memory read and, where alignment allows, every global load and output store is
// one 16-byte vector). The k-panels of the two inputs are staged through registers into two
// shared-memory buffers (the loads of panel t + 1 are in flight while panel t is multiplied),
// stored transposed into rows padded by V elements, which keeps both the transposed stores and
// the vector reads free of bank conflicts. The epilogue (in double) forms |x|^2 + |y|^2 - 2 x.y,
// recomputes directly the pairs where cancellation would cost accuracy, clamps at zero and takes
// the root. For Y = X only tiles holding pairs i <= j run; each pair i < j is evaluated once and
// its value written to both (i, j) and (j, i), so the result is exactly symmetric.
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

// The tile of one block: BM x BN outputs, 8 warps as 4 x 2, 32 lanes as 4 x 8 per warp; a thread
// owns TM x TN values in chunks of V consecutive rows and columns (V values make one 16 bytes).
template <typename T>
struct TileShape;
template <>
struct TileShape<float> {
    static constexpr int BM = 128, BN = 128;
};
template <>
struct TileShape<double> {
    static constexpr int BM = 128, BN = 64;
};

template <typename T>
struct Tiling {
    static constexpr int BM = TileShape<T>::BM, BN = TileShape<T>::BN, BK = 8;
    static constexpr int WARP_ROWS = 4, WARP_COLS = 2, LANE_ROWS = 4, LANE_COLS = 8;
    static constexpr int THREADS = 32 * WARP_ROWS * WARP_COLS;
    static constexpr int V = 16 / static_cast<int>(sizeof(T));
    static constexpr int TM = BM / (WARP_ROWS * LANE_ROWS), TN = BN / (WARP_COLS * LANE_COLS);
    // Rows of a panel padded by V elements: a warp's transposed stores (store_panel) then fall in
    // distinct banks (float: bank (4 k + row) mod 32; double: bank pair (2 k + row) mod 16) and
    // the rows stay 16-byte aligned for the vector reads.
    static constexpr int PAD = V;
    static constexpr int A_LOADS = BM * BK / (V * THREADS), B_LOADS = BN * BK / (V * THREADS);
    static_assert(TM % V == 0 && TN % V == 0 && BK % V == 0, "chunks of whole vectors");
    static_assert(A_LOADS * V * THREADS == BM * BK && B_LOADS * V * THREADS == BN * BK,
                  "every thread loads the same number of vectors");
};

// One k-panel of both inputs, transposed: a[k][row], b[k][col] (16-byte aligned rows).
template <typename T>
struct alignas(16) Panel {
    T a[Tiling<T>::BK][Tiling<T>::BM + Tiling<T>::PAD];
    T b[Tiling<T>::BK][Tiling<T>::BN + Tiling<T>::PAD];
};

// V consecutive values as one 16-byte access (p must be 16-byte aligned).
template <typename T>
struct Vec16;
template <>
struct Vec16<float> {
    __device__ static void load(const float* p, float (&v)[4]) {
        const float4 t = *reinterpret_cast<const float4*>(p);
        v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
    }
    __device__ static void store(float* p, const float (&v)[4]) {
        *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
    }
};
template <>
struct Vec16<double> {
    __device__ static void load(const double* p, double (&v)[2]) {
        const double2 t = *reinterpret_cast<const double2*>(p);
        v[0] = t.x, v[1] = t.y;
    }
    __device__ static void store(double* p, const double (&v)[2]) {
        *reinterpret_cast<double2*>(p) = make_double2(v[0], v[1]);
    }
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
    const std::int64_t row =
        (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32;
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

// Registers <- the k-panel [k0, k0 + BK) of rows r0.. of Z (rows x d) minus shift (null: none).
// Slot s of thread tid holds vector v = tid + s * THREADS: row r0 + v / (BK / V), columns
// k0 + (v % (BK / V)) * V + [0, V); rows or columns outside Z give 0. VEC: Z is 16-byte aligned
// and V divides d, so each slot is one 16-byte load (a warp reads whole 32-byte sectors).
template <typename T, int LOADS, bool VEC>
__device__ void load_panel(const T* __restrict__ Z, std::int64_t rows, std::int64_t d,
                           const T* __restrict__ shift, std::int64_t r0, std::int64_t k0, int tid,
                           T (&reg)[LOADS][Tiling<T>::V]) {
    using S = Tiling<T>;
    constexpr int V = S::V, PER_ROW = S::BK / V;
#pragma unroll
    for (int s = 0; s < LOADS; ++s) {
        const int v = tid + s * S::THREADS;
        const std::int64_t r = r0 + v / PER_ROW, k = k0 + (v % PER_ROW) * V;
        if (VEC) {
            if (r < rows && k < d) {
                Vec16<T>::load(Z + r * d + k, reg[s]);
                if (shift) {
                    T sh[V];
                    Vec16<T>::load(shift + k, sh);
#pragma unroll
                    for (int q = 0; q < V; ++q) reg[s][q] -= sh[q];
                }
            } else {
#pragma unroll
                for (int q = 0; q < V; ++q) reg[s][q] = T(0);
            }
        } else {
#pragma unroll
            for (int q = 0; q < V; ++q) {
                const std::int64_t kq = k + q;
                T x = T(0);
                if (r < rows && kq < d) x = shift ? Z[r * d + kq] - shift[kq] : Z[r * d + kq];
                reg[s][q] = x;
            }
        }
    }
}

// Shared panel (dst[k][row]) <- the registers of load_panel, transposed.
template <typename T, int LOADS, int LD>
__device__ void store_panel(T (*dst)[LD], int tid, const T (&reg)[LOADS][Tiling<T>::V]) {
    using S = Tiling<T>;
    constexpr int V = S::V, PER_ROW = S::BK / V;
#pragma unroll
    for (int s = 0; s < LOADS; ++s) {
        const int v = tid + s * S::THREADS;
        const int row = v / PER_ROW, k = (v % PER_ROW) * V;
#pragma unroll
        for (int q = 0; q < V; ++q) dst[k + q][row] = reg[s][q];
    }
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

// metric: 0 sqeuclidean, 1 euclidean, 2 cosine. The distance of rows i of X and j of Y from the dot
// product of their shifted rows (double epilogue; a direct recompute where cancellation bites).
template <typename T>
__device__ double finish_distance(double dot, std::int64_t i, std::int64_t j,
                                  const T* __restrict__ X, const T* __restrict__ Y, std::int64_t d,
                                  const double* __restrict__ nx, const double* __restrict__ ny,
                                  int metric) {
    if (metric == 2) {
        const double den = nx[i] * ny[j];
        const double v = den > 0 ? 1.0 - dot / sqrt(den) : 1.0;
        return fmin(2.0, fmax(0.0, v));
    }
    const double scale = nx[i] + ny[j];
    double d2 = scale - 2.0 * dot;
    if (d2 < distance_recompute_ratio<T>() * scale) d2 = direct_sqdist(X + i * d, Y + j * d, d);
    d2 = fmax(d2, 0.0);
    return metric == 1 ? sqrt(d2) : d2;
}

// dst[0, V) <- v: one 16-byte store when whole (dst 16-byte aligned), else each q with keep(q).
template <typename T, typename Keep>
__device__ void store_chunk(T* __restrict__ dst, const T (&v)[Tiling<T>::V], bool whole,
                            Keep keep) {
    if (whole) {
        Vec16<T>::store(dst, v);
        return;
    }
#pragma unroll
    for (int q = 0; q < Tiling<T>::V; ++q)
        if (keep(q)) dst[q] = v[q];
}

// One BM x BN tile of out (n x m). VEC: 16-byte loads of X and Y (see load_panel); vec_out: out is
// 16-byte aligned and V divides m, so whole chunks are stored as one 16-byte vector. symmetric
// (Y = X, m = n): tiles whose pairs all have i > j return at once; the others evaluate the pairs
// i < j and write them to (i, j) and (j, i), and zero the diagonal.
template <typename T, bool VEC>
__global__ void __launch_bounds__(Tiling<T>::THREADS)
    distance_tiles(const T* __restrict__ X, std::int64_t n, const T* __restrict__ Y, std::int64_t m,
                   std::int64_t d, const T* __restrict__ shift, const double* __restrict__ nx,
                   const double* __restrict__ ny, int metric, bool symmetric, bool vec_out,
                   T* __restrict__ out) {
    using S = Tiling<T>;
    constexpr int BM = S::BM, BN = S::BN, BK = S::BK, V = S::V, TM = S::TM, TN = S::TN;
    constexpr int ROW_STEP = S::LANE_ROWS * V, COL_STEP = S::LANE_COLS * V;
    const std::int64_t i0 = static_cast<std::int64_t>(blockIdx.y) * BM;
    const std::int64_t j0 = static_cast<std::int64_t>(blockIdx.x) * BN;
    if (symmetric && i0 >= j0 + BN) return;  // the whole block: no barrier is skipped by a few
    __shared__ Panel<T> panel[2];
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    // Thread row r is row_base + (r / V) * ROW_STEP + r % V, column c likewise.
    const int row_base = (warp / S::WARP_COLS) * (BM / S::WARP_ROWS) + (lane / S::LANE_COLS) * V;
    const int col_base = (warp % S::WARP_COLS) * (BN / S::WARP_COLS) + (lane % S::LANE_COLS) * V;

    T acc[TM][TN];
#pragma unroll
    for (int r = 0; r < TM; ++r)
#pragma unroll
        for (int c = 0; c < TN; ++c) acc[r][c] = T(0);

    T ra[S::A_LOADS][V], rb[S::B_LOADS][V];
    load_panel<T, S::A_LOADS, VEC>(X, n, d, shift, i0, 0, tid, ra);
    load_panel<T, S::B_LOADS, VEC>(Y, m, d, shift, j0, 0, tid, rb);
    store_panel(panel[0].a, tid, ra);
    store_panel(panel[0].b, tid, rb);
    __syncthreads();
    const std::int64_t panels = (d + BK - 1) / BK;
    for (std::int64_t t = 0; t < panels; ++t) {
        // Panel t + 1 is read from global memory while panel t is multiplied; one barrier per
        // panel suffices: the buffer written below was last read before the previous barrier.
        const bool more = t + 1 < panels;
        if (more) {
            load_panel<T, S::A_LOADS, VEC>(X, n, d, shift, i0, (t + 1) * BK, tid, ra);
            load_panel<T, S::B_LOADS, VEC>(Y, m, d, shift, j0, (t + 1) * BK, tid, rb);
        }
        const Panel<T>& p = panel[t & 1];
#pragma unroll
        for (int k = 0; k < BK; ++k) {
            T a[TM / V][V], b[TN / V][V];
#pragma unroll
            for (int rc = 0; rc < TM / V; ++rc)
                Vec16<T>::load(&p.a[k][row_base + rc * ROW_STEP], a[rc]);
#pragma unroll
            for (int cc = 0; cc < TN / V; ++cc)
                Vec16<T>::load(&p.b[k][col_base + cc * COL_STEP], b[cc]);
#pragma unroll
            for (int r = 0; r < TM; ++r)
#pragma unroll
                for (int c = 0; c < TN; ++c)
                    acc[r][c] = fma(a[r / V][r % V], b[c / V][c % V], acc[r][c]);
        }
        if (more) {
            store_panel(panel[(t + 1) & 1].a, tid, ra);
            store_panel(panel[(t + 1) & 1].b, tid, rb);
        }
        __syncthreads();
    }

    // The distances, in place of the dot products (pairs outside out, or i > j when symmetric,
    // are left alone and never stored).
#pragma unroll
    for (int r = 0; r < TM; ++r) {
        const std::int64_t i = i0 + row_base + (r / V) * ROW_STEP + r % V;
#pragma unroll
        for (int c = 0; c < TN; ++c) {
            const std::int64_t j = j0 + col_base + (c / V) * COL_STEP + c % V;
            if (i >= n || j >= m || (symmetric && i >= j)) {
                if (symmetric && i == j) acc[r][c] = T(0);
                continue;
            }
            const double dot = static_cast<double>(acc[r][c]);
            acc[r][c] = static_cast<T>(finish_distance(dot, i, j, X, Y, d, nx, ny, metric));
        }
    }
    // Stores: (i, j) row by row; for Y = X also (j, i) column by column. Tiles wholly above the
    // diagonal (and every tile when Y != X) store whole chunks as 16-byte vectors.
    const bool above = symmetric && i0 + BM <= j0;
    const bool whole = vec_out && (!symmetric || above);
#pragma unroll
    for (int r = 0; r < TM; ++r) {
        const std::int64_t i = i0 + row_base + (r / V) * ROW_STEP + r % V;
        if (i >= n) continue;
#pragma unroll
        for (int cc = 0; cc < TN / V; ++cc) {
            const std::int64_t j = j0 + col_base + cc * COL_STEP;
            T v[V];
#pragma unroll
            for (int q = 0; q < V; ++q) v[q] = acc[r][cc * V + q];
            store_chunk(out + i * m + j, v, whole && j + V <= m,
                        [&](int q) { return j + q < m && (!symmetric || i <= j + q); });
        }
    }
    if (!symmetric) return;
    const bool whole_mirror = vec_out && above;
#pragma unroll
    for (int c = 0; c < TN; ++c) {
        const std::int64_t j = j0 + col_base + (c / V) * COL_STEP + c % V;
        if (j >= m) continue;
#pragma unroll
        for (int rc = 0; rc < TM / V; ++rc) {
            const std::int64_t i = i0 + row_base + rc * ROW_STEP;
            T v[V];
#pragma unroll
            for (int q = 0; q < V; ++q) v[q] = acc[rc * V + q][c];
            store_chunk(out + j * m + i, v, whole_mirror && i + V <= n,
                        [&](int q) { return i + q < j; });
        }
    }
}

int metric_code(Metric metric) {
    switch (metric) {
        case Metric::sqeuclidean:
            return 0;
        case Metric::euclidean:
            return 1;
        default:
            return 2;
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
    LATENTBRIDGE_CHECK((n + Tiling<T>::BM - 1) / Tiling<T>::BM <= 65535, op,
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

    using S = Tiling<T>;
    const auto aligned16 = [](const void* p) {
        return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
    };
    const bool vec_in = d % S::V == 0 && aligned16(X) && aligned16(Y);
    const bool vec_out = m % S::V == 0 && aligned16(out);
    const auto kernel = vec_in ? distance_tiles<T, true> : distance_tiles<T, false>;
    const dim3 grid(static_cast<unsigned>((m + S::BN - 1) / S::BN),
                    static_cast<unsigned>((n + S::BM - 1) / S::BM));
    kernel<<<grid, S::THREADS, 0, stream>>>(X, n, Y, m, d, shift.get(), nx.get(), ny,
                                            metric_code(metric), sym, vec_out, out);
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
