// The diffusion graph on the GPU, the contract of latentbridge::diffusion_graph
// (cpp/src/diffusion.cpp) on host k-NN lists copied to the current device, ordered on the caller's
// stream: (row * n + col, d2) for both directions of every kept pair plus the diagonal (invalid
// entries get a sentinel key that sorts last), cub::DeviceRadixSort on the keys, then
// cub::DeviceReduce::ReduceByKey with min merges duplicates; the row starts are the positions where
// the row of the sorted keys changes (every row holds its diagonal, so none is empty). Kernel
// values, P^-alpha, W, q and T then run one warp per row (row sums in a different order than the
// CPU: equal to ~1e-15 relative, not bitwise). Values stay exactly symmetric: the merged d2 of
// (i, j) and (j, i) come from the same entries and the scalings are products of commuting factors.
#include <cuda_runtime.h>

#include <cub/cub.cuh>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "check.cuh"
#include "launch.cuh"
#include "latentbridge/detail/check.hpp"
#include "latentbridge_cuda/diffusion.hpp"

namespace latentbridge {
namespace cuda {
namespace {

constexpr int kRowThreads = 256;  // block size of the one-warp-per-row kernels

// Directed edges: entry e of the lists gives (i, j) at 2e and (j, i) at 2e + 1 (the sentinel key
// n * n when ignored), the diagonal (i, i, 0) at 2 n k + i.
__global__ void emit_edges_kernel(const index_t* __restrict__ idx, const double* __restrict__ d2,
                                  index_t n, index_t k, std::uint64_t* __restrict__ keys,
                                  double* __restrict__ vals) {
    const index_t nk = n * k;
    const std::uint64_t un = static_cast<std::uint64_t>(n);
    const std::uint64_t sentinel = un * un;
    const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
    for (index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < nk + n;
         e += stride) {
        if (e < nk) {
            const index_t i = e / k;
            const index_t j = idx[e];
            if (j < 0 || j == i) {
                keys[2 * e] = sentinel;
                keys[2 * e + 1] = sentinel;
                vals[2 * e] = 0.0;
                vals[2 * e + 1] = 0.0;
            } else {
                const double v = d2[e];
                keys[2 * e] = static_cast<std::uint64_t>(i) * un + static_cast<std::uint64_t>(j);
                keys[2 * e + 1] = static_cast<std::uint64_t>(j) * un + static_cast<std::uint64_t>(i);
                vals[2 * e] = v;
                vals[2 * e + 1] = v;
            }
        } else {
            const index_t i = e - nk;
            keys[2 * nk + i] = static_cast<std::uint64_t>(i) * un + static_cast<std::uint64_t>(i);
            vals[2 * nk + i] = 0.0;
        }
    }
}

struct MinOp {
    __host__ __device__ double operator()(const double& x, const double& y) const {
        return y < x ? y : x;
    }
};

// Column indices and row starts from the unique sorted keys (every row is non-empty).
__global__ void csr_kernel(const std::uint64_t* __restrict__ keys, index_t nnz, index_t n,
                           std::int64_t* __restrict__ indptr, std::int32_t* __restrict__ indices) {
    const std::uint64_t un = static_cast<std::uint64_t>(n);
    const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
    for (index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < nnz;
         e += stride) {
        const std::uint64_t key = keys[e];
        const std::uint64_t row = key / un;
        indices[e] = static_cast<std::int32_t>(key - row * un);
        if (e == 0 || keys[e - 1] / un != row) indptr[row] = e;
        if (e == nnz - 1) indptr[n] = nnz;
    }
}

// One warp per row: K = exp(-d2 / (2 eps)) in place, p = K 1, ip = p^-alpha.
__global__ void kernel_values_kernel(const std::int64_t* __restrict__ indptr, index_t n,
                                     double inv2eps, double alpha, double* __restrict__ vals,
                                     double* __restrict__ p, double* __restrict__ ip) {
    const int lane = threadIdx.x & 31;
    const index_t warps = static_cast<index_t>(gridDim.x) * (blockDim.x / 32);
    for (index_t i = (static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; i < n;
         i += warps) {
        double s = 0.0;
        for (std::int64_t e = indptr[i] + lane; e < indptr[i + 1]; e += 32) {
            const double kv = exp(-vals[e] * inv2eps);
            vals[e] = kv;
            s += kv;
        }
        s = warp_sum(s);
        if (lane == 0) {
            p[i] = s;
            ip[i] = pow(s, -alpha);
        }
    }
}

// One warp per row: W = P^-alpha K P^-alpha in place, q = W 1, iq = q^-1/2.
__global__ void alpha_kernel(const std::int64_t* __restrict__ indptr,
                             const std::int32_t* __restrict__ indices, index_t n,
                             const double* __restrict__ ip, double* __restrict__ vals,
                             double* __restrict__ q, double* __restrict__ iq) {
    const int lane = threadIdx.x & 31;
    const index_t warps = static_cast<index_t>(gridDim.x) * (blockDim.x / 32);
    for (index_t i = (static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; i < n;
         i += warps) {
        const double ipi = ip[i];
        double s = 0.0;
        for (std::int64_t e = indptr[i] + lane; e < indptr[i + 1]; e += 32) {
            const double w = vals[e] * (ipi * ip[indices[e]]);
            vals[e] = w;
            s = __dadd_rn(s, w);  // the sum of the stored values (no FMA)
        }
        s = warp_sum(s);
        if (lane == 0) {
            q[i] = s;
            iq[i] = 1.0 / sqrt(s);
        }
    }
}

// One warp per row: T = Q^-1/2 W Q^-1/2 in place.
__global__ void symmetric_kernel(const std::int64_t* __restrict__ indptr,
                                 const std::int32_t* __restrict__ indices, index_t n,
                                 const double* __restrict__ iq, double* __restrict__ vals) {
    const int lane = threadIdx.x & 31;
    const index_t warps = static_cast<index_t>(gridDim.x) * (blockDim.x / 32);
    for (index_t i = (static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; i < n;
         i += warps) {
        const double iqi = iq[i];
        for (std::int64_t e = indptr[i] + lane; e < indptr[i + 1]; e += 32)
            vals[e] = vals[e] * (iqi * iq[indices[e]]);
    }
}

}  // namespace

DiffusionGraph diffusion_graph(const index_t* idx, const double* d2, index_t n, index_t k,
                               double epsilon, double alpha, void* stream_ptr) {
    const char* op = "diffusion_graph";
    check_graph_args(idx, d2, n, k, epsilon, alpha);  // the CPU's checks, in its order

    const cudaStream_t stream = as_stream(stream_ptr);
    const index_t nk = n * k;
    const index_t total = 2 * nk + n;
    DeviceBuffer<index_t> didx = upload(idx, static_cast<std::size_t>(nk), stream);
    DeviceBuffer<double> dd2 = upload(d2, static_cast<std::size_t>(nk), stream);
    DeviceBuffer<std::uint64_t> keys_a(static_cast<std::size_t>(total));
    DeviceBuffer<std::uint64_t> keys_b(static_cast<std::size_t>(total));
    DeviceBuffer<double> vals_a(static_cast<std::size_t>(total));
    DeviceBuffer<double> vals_b(static_cast<std::size_t>(total));
    emit_edges_kernel<<<stride_grid(nk + n, 256), 256, 0, stream>>>(didx.get(), dd2.get(), n, k, keys_a.get(),
                                                      vals_a.get());
    check_launch();
    LATENTBRIDGE_CUDA_CHECK(cudaStreamSynchronize(stream));  // the lists are freed here
    didx = DeviceBuffer<index_t>();
    dd2 = DeviceBuffer<double>();

    // Sort by (row, col), merge duplicates keeping the smaller distance.
    const std::uint64_t sentinel = static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(n);
    int end_bit = 1;
    while (end_bit < 64 && (sentinel >> end_bit) != 0) ++end_bit;
    cub::DoubleBuffer<std::uint64_t> keys(keys_a.get(), keys_b.get());
    cub::DoubleBuffer<double> vals(vals_a.get(), vals_b.get());
    DeviceBuffer<unsigned long long> druns(1);
    std::size_t sort_bytes = 0, reduce_bytes = 0;
    LATENTBRIDGE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, keys, vals, total,
                                                            0, end_bit, stream));
    LATENTBRIDGE_CUDA_CHECK(cub::DeviceReduce::ReduceByKey(
        nullptr, reduce_bytes, keys.Current(), keys.Alternate(), vals.Current(), vals.Alternate(),
        druns.get(), MinOp(), total, stream));
    DeviceBuffer<unsigned char> temp(std::max<std::size_t>(1, std::max(sort_bytes, reduce_bytes)));
    LATENTBRIDGE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.get(), sort_bytes, keys, vals,
                                                            total, 0, end_bit, stream));
    // After the sort, Current() holds the sorted pairs and Alternate() is free for the merge.
    const std::uint64_t* ukeys = keys.Alternate();
    double* uvals = vals.Alternate();
    LATENTBRIDGE_CUDA_CHECK(cub::DeviceReduce::ReduceByKey(
        temp.get(), reduce_bytes, keys.Current(), keys.Alternate(), vals.Current(),
        vals.Alternate(), druns.get(), MinOp(), total, stream));
    unsigned long long runs = 0;
    download(&runs, druns.get(), 1, stream);
    LATENTBRIDGE_CHECK(runs >= 1 && runs <= static_cast<unsigned long long>(total), op,
                       "internal error: bad number of merged edges");
    std::uint64_t last_key = 0;
    download(&last_key, ukeys + (runs - 1), 1, stream);
    const index_t nnz = static_cast<index_t>(runs) - (last_key == sentinel ? 1 : 0);

    DeviceBuffer<std::int64_t> dindptr(static_cast<std::size_t>(n + 1));
    DeviceBuffer<std::int32_t> dindices(static_cast<std::size_t>(nnz));
    DeviceBuffer<double> dp(static_cast<std::size_t>(n)), dq(static_cast<std::size_t>(n));
    DeviceBuffer<double> dip(static_cast<std::size_t>(n)), diq(static_cast<std::size_t>(n));
    csr_kernel<<<stride_grid(nnz, 256), 256, 0, stream>>>(ukeys, nnz, n, dindptr.get(), dindices.get());
    check_launch();
    const unsigned row_grid = stride_grid(n * 32, kRowThreads);
    const double inv2eps = 1.0 / (2.0 * epsilon);
    kernel_values_kernel<<<row_grid, kRowThreads, 0, stream>>>(dindptr.get(), n, inv2eps, alpha, uvals,
                                                    dp.get(), dip.get());
    check_launch();
    alpha_kernel<<<row_grid, kRowThreads, 0, stream>>>(dindptr.get(), dindices.get(), n, dip.get(), uvals,
                                            dq.get(), diq.get());
    check_launch();
    symmetric_kernel<<<row_grid, kRowThreads, 0, stream>>>(dindptr.get(), dindices.get(), n, diq.get(), uvals);
    check_launch();

    DiffusionGraph g;
    g.n = n;
    g.indptr.resize(static_cast<std::size_t>(n + 1));
    g.indices.resize(static_cast<std::size_t>(nnz));
    g.values.resize(static_cast<std::size_t>(nnz));
    g.p.resize(static_cast<std::size_t>(n));
    g.q.resize(static_cast<std::size_t>(n));
    download(g.indptr.data(), dindptr.get(), g.indptr.size(), stream);
    download(g.indices.data(), dindices.get(), g.indices.size(), stream);
    download(g.values.data(), uvals, g.values.size(), stream);
    download(g.p.data(), dp.get(), g.p.size(), stream);
    download(g.q.data(), dq.get(), g.q.size(), stream);
    return g;
}

}  // namespace cuda
}  // namespace latentbridge
