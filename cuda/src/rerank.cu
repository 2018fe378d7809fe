// Mahalanobis re-ranking of k-NN candidates on the GPU, the contract of
// latentbridge::mahalanobis_rerank (cpp/src/diffusion.cpp) on host arrays copied to the current
// device and back inside the call, ordered on the caller's stream: one thread per query, the form
// |G diff|^2 evaluated in the CPU loop order without FMA (bitwise equal to the CPU; canonical
// (lo, hi) order in self mode), the k best kept in the query's output row as the max-heap of
// neighbour_list.cuh; invalid candidates are reported through a flag word and thrown on the host.
// Queries are processed in batches bounded by the free device memory.
#include <cuda_runtime.h>
#include <math_constants.h>

#include <algorithm>

#include "check.cuh"
#include "launch.cuh"
#include "latentbridge/detail/check.hpp"
#include "latentbridge_cuda/diffusion.hpp"
#include "neighbour_list.cuh"

namespace latentbridge {
namespace cuda {
namespace {

struct RerankParams {
    const double* Y;    // n x m
    const double* G;    // n x r x m
    const double* Yq;   // rows x m of this batch (null in self mode)
    const double* Gq;   // rows x r x m
    const index_t* cand;  // rows x kc
    index_t* out_idx;   // rows x k
    double* out_d2;
    int* flags;         // bit 0: candidate index out of range, bit 1: too few valid candidates
    index_t n, m, r, kc, k;
    index_t i_begin, rows;  // query indices [i_begin, i_begin + rows)
};

// |Gm diff|^2, as the CPU form(): s over rows, t over m, no FMA contraction.
__device__ __forceinline__ double form_small(const double* Gm, const double* diff, index_t r,
                                             index_t m) {
    double acc = 0.0;
    for (index_t s = 0; s < r; ++s) {
        const double* gs = Gm + s * m;
        double z = 0.0;
#pragma unroll
        for (int t = 0; t < kSmallDim; ++t)
            if (t < m) z = __dadd_rn(z, __dmul_rn(gs[t], diff[t]));
        acc = add_square(acc, z);
    }
    return acc;
}

// The same with diff = b - a recomputed on the fly (any m; the same bits).
__device__ __forceinline__ double form_any(const double* Gm, const double* a, const double* b,
                                           index_t r, index_t m) {
    double acc = 0.0;
    for (index_t s = 0; s < r; ++s) {
        const double* gs = Gm + s * m;
        double z = 0.0;
        for (index_t t = 0; t < m; ++t) z = __dadd_rn(z, __dmul_rn(gs[t], __dsub_rn(b[t], a[t])));
        acc = add_square(acc, z);
    }
    return acc;
}

template <bool kSmall>
__global__ void __launch_bounds__(kBlock) rerank_kernel(const RerankParams a) {
    const index_t t = static_cast<index_t>(blockIdx.x) * kBlock + threadIdx.x;
    if (t >= a.rows) return;  // no barrier in this kernel
    const index_t i = a.i_begin + t;
    const index_t m = a.m, r = a.r, k = a.k;
    const bool self = a.Yq == nullptr;
    const index_t* crow = a.cand + t * a.kc;
    double* Ld = a.out_d2 + t * k;
    index_t* Li = a.out_idx + t * k;
    heap_init(Ld, Li, k);
    double wd = CUDART_INF;
    index_t wi = kNoIndex;
    index_t count = 0;
    for (index_t c = 0; c < a.kc; ++c) {
        const index_t j = crow[c];
        if (j < 0) continue;
        if (j >= a.n) {
            atomicOr(a.flags, 1);
            continue;
        }
        const double *ya, *yb, *g1, *g2;  // diff = yb - ya; v = form(g1) + form(g2)
        if (self) {
            // canonical order (lo, hi): d2(i, j) and d2(j, i) are the same bits
            const index_t lo = i < j ? i : j, hi = i < j ? j : i;
            ya = a.Y + lo * m;
            yb = a.Y + hi * m;
            g1 = a.G + lo * r * m;
            g2 = a.G + hi * r * m;
        } else {
            ya = a.Yq + t * m;
            yb = a.Y + j * m;
            g1 = a.Gq + t * r * m;
            g2 = a.G + j * r * m;
        }
        double v;
        if constexpr (kSmall) {
            double diff[kSmallDim];
#pragma unroll
            for (int u = 0; u < kSmallDim; ++u)
                diff[u] = u < m ? __dsub_rn(yb[u], ya[u]) : 0.0;
            v = __dadd_rn(form_small(g1, diff, r, m), form_small(g2, diff, r, m));
        } else {
            v = __dadd_rn(form_any(g1, ya, yb, r, m), form_any(g2, ya, yb, r, m));
        }
        ++count;
        if (pair_less(v, j, wd, wi)) heap_offer(Ld, Li, k, v, j, wd, wi);
    }
    if (count < k) atomicOr(a.flags, 2);
    heap_finish(Ld, Li, k);
}

}  // namespace

void mahalanobis_rerank(const double* Y, const double* G, index_t n, index_t m, index_t r,
                        const double* Yq, const double* Gq, index_t nq, const index_t* cand,
                        index_t kc, index_t k, index_t* idx, double* d2, void* stream_ptr) {
    const char* op = "mahalanobis_rerank";
    LATENTBRIDGE_CHECK(n >= 1 && m >= 1 && r >= 1 && k >= 1 && k <= kc, op,
                       "need n, m, r >= 1 and 1 <= k <= kc");
    const bool self = Yq == nullptr;
    if (self) nq = n;
    if (nq <= 0) return;
    LATENTBRIDGE_CHECK(self || Gq != nullptr, op, "Gq is required with Yq");

    const cudaStream_t stream = as_stream(stream_ptr);
    DeviceBuffer<double> dY = upload(Y, static_cast<std::size_t>(n * m), stream);
    DeviceBuffer<double> dG = upload(G, static_cast<std::size_t>(n * r * m), stream);
    const std::size_t row_bytes =
        static_cast<std::size_t>(kc) * sizeof(index_t) +
        static_cast<std::size_t>(k) * (sizeof(index_t) + sizeof(double)) +
        (self ? 0 : static_cast<std::size_t>(m + r * m) * sizeof(double));
    const index_t rows = std::min<index_t>(
        nq, std::max<index_t>(kBlock, static_cast<index_t>(device_memory_budget() / row_bytes)));
    DeviceBuffer<index_t> dcand(static_cast<std::size_t>(rows * kc));
    DeviceBuffer<index_t> didx(static_cast<std::size_t>(rows * k));
    DeviceBuffer<double> dd2(static_cast<std::size_t>(rows * k));
    DeviceBuffer<double> dYq(self ? 0 : static_cast<std::size_t>(rows * m));
    DeviceBuffer<double> dGq(self ? 0 : static_cast<std::size_t>(rows * r * m));
    DeviceBuffer<int> dflags(1);
    LATENTBRIDGE_CUDA_CHECK(cudaMemsetAsync(dflags.get(), 0, sizeof(int), stream));

    RerankParams p{};
    p.Y = dY.get();
    p.G = dG.get();
    p.Yq = self ? nullptr : dYq.get();
    p.Gq = self ? nullptr : dGq.get();
    p.cand = dcand.get();
    p.out_idx = didx.get();
    p.out_d2 = dd2.get();
    p.flags = dflags.get();
    p.n = n;
    p.m = m;
    p.r = r;
    p.kc = kc;
    p.k = k;
    for (index_t b0 = 0; b0 < nq; b0 += rows) {
        const index_t cnt = std::min(rows, nq - b0);
        copy_to_device(dcand.get(), cand + b0 * kc, static_cast<std::size_t>(cnt * kc), stream);
        if (!self) {
            copy_to_device(dYq.get(), Yq + b0 * m, static_cast<std::size_t>(cnt * m), stream);
            copy_to_device(dGq.get(), Gq + b0 * r * m, static_cast<std::size_t>(cnt * r * m), stream);
        }
        p.i_begin = b0;
        p.rows = cnt;
        const auto grid = static_cast<unsigned>((cnt + kBlock - 1) / kBlock);
        if (m <= kSmallDim) {
            rerank_kernel<true><<<grid, kBlock, 0, stream>>>(p);
        } else {
            rerank_kernel<false><<<grid, kBlock, 0, stream>>>(p);
        }
        check_launch();
        int flags = 0;
        download(&flags, dflags.get(), 1, stream);
        LATENTBRIDGE_CHECK(!(flags & 1), op, "candidate index out of range");
        LATENTBRIDGE_CHECK(!(flags & 2), op, "fewer valid candidates than neighbours requested");
        download(idx + b0 * k, didx.get(), static_cast<std::size_t>(cnt * k), stream);
        download(d2 + b0 * k, dd2.get(), static_cast<std::size_t>(cnt * k), stream);
    }
}

}  // namespace cuda
}  // namespace latentbridge
