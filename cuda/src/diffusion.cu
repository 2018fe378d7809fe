// Diffusion-map building blocks on the GPU: the same contracts as the CPU functions in
// cpp/src/knn.cpp (knn_sqeuclidean) and cpp/src/diffusion.cpp (mahalanobis_rerank,
// diffusion_graph), on host arrays copied to the current device and back inside each call.
//
// k-NN (exact, float64). The host orders the points by a kd-tree whose splits fall on multiples of
// kTile rows, so every tile of kTile consecutive reordered points is a kd leaf, and stores the
// bounding box of each tile; the queries are ordered the same way (the points themselves in self
// mode, a kd order of Q with kBlock-row leaves otherwise) with the bounding box of each block of
// kBlock queries. One thread per query; its k best (distance, original index) pairs live in its
// own row of the output as a max-heap (lexicographic order, so the result does not depend on the
// order in which tiles are visited; heap-sorted at the end). A block first visits its own tiles
// (self mode) or the tile nearest to its query box (found by a small kernel), then ceil(k / kTile)
// tiles on each side, nearest first; then it scans all tiles kBlock at a time: a tile is a
// candidate when its box is within the largest current k-th distance of the block from the query
// box, and a candidate is loaded into shared memory (d <= kSmallDim, with the queries; read from
// global memory otherwise) only when some thread's own query is within its k-th distance of the
// tile box (__syncthreads_or); threads out of range are masked, never returned early. Distances
// are computed without FMA contraction (__dsub_rn/__dmul_rn/__dadd_rn, t ascending), i.e. exactly
// as the CPU code, and box distances the same way: rounding is monotone, so a box distance never
// exceeds the distance to a point inside the box and pruning is exact. Rows are written directly
// at the original query index when the whole (nq x k) output fits in half the free device memory,
// else per batch of queries and scattered on the host.
//
// Mahalanobis re-ranking: one thread per query, the form |G diff|^2 evaluated in the CPU loop order
// without FMA (bitwise equal to the CPU; canonical (lo, hi) order in self mode), the same heap in
// the output row; invalid candidates are reported through a flag word and thrown on the host.
// Queries are processed in batches bounded by the free device memory.
//
// Graph: (row * n + col, d2) for both directions of every kept pair plus the diagonal (invalid
// entries get a sentinel key that sorts last), cub::DeviceRadixSort on the keys, then
// cub::DeviceReduce::ReduceByKey with min merges duplicates; the row starts are the positions where
// the row of the sorted keys changes (every row holds its diagonal, so none is empty). Kernel
// values, P^-alpha, W, q and T then run one warp per row (row sums in a different order than the
// CPU: equal to ~1e-15 relative, not bitwise). Values stay exactly symmetric: the merged d2 of
// (i, j) and (j, i) come from the same entries and the scalings are products of commuting factors.
#include <cuda_runtime.h>
#include <math_constants.h>

#include <cub/cub.cuh>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <future>
#include <limits>
#include <numeric>
#include <system_error>
#include <thread>
#include <vector>

#include "check.cuh"
#include "latentbridge/detail/check.hpp"
#include "latentbridge_cuda/diffusion.hpp"

namespace latentbridge {
namespace cuda {
namespace {

constexpr int kBlock = 128;     // queries (threads) per block of the k-NN and re-ranking kernels
constexpr int kWarps = kBlock / 32;
constexpr int kTile = 64;       // points per tile (a kd leaf) of the k-NN kernel
constexpr int kSmallDim = 16;   // up to this dimension: queries and tiles in shared memory
constexpr index_t kNoIndex = INT64_MAX;  // index of the +inf sentinel entries of a list
constexpr int kRowThreads = 256;        // block size of the one-warp-per-row graph kernels

// ---- device helpers --------------------------------------------------------------------------------

__device__ __forceinline__ bool pair_less(double da, index_t ia, double db, index_t ib) {
    return da < db || (da == db && ia < ib);
}

// The running k best of a query: a max-heap of (distance, index) pairs in (Hd, Hi)[0, k), ordered
// lexicographically, its root the k-th best; initially k (+inf, kNoIndex) sentinels. O(log k)
// memory accesses per accepted candidate, with a trip count that varies little between the lanes.

// Replaces the root by (vd, vi) and sifts it down in the heap of the given size.
__device__ __forceinline__ void heap_replace_top(double* Hd, index_t* Hi, index_t size, double vd,
                                                 index_t vi) {
    index_t pos = 0;
    for (;;) {
        index_t c = 2 * pos + 1;
        if (c >= size) break;
        double cd = Hd[c];
        index_t ci = Hi[c];
        if (c + 1 < size) {
            const double rd = Hd[c + 1];
            const index_t ri = Hi[c + 1];
            if (pair_less(cd, ci, rd, ri)) {
                ++c;
                cd = rd;
                ci = ri;
            }
        }
        if (!pair_less(vd, vi, cd, ci)) break;
        Hd[pos] = cd;
        Hi[pos] = ci;
        pos = c;
    }
    Hd[pos] = vd;
    Hi[pos] = vi;
}

__device__ __forceinline__ void heap_init(double* Hd, index_t* Hi, index_t k) {
    for (index_t s = 0; s < k; ++s) {
        Hd[s] = CUDART_INF;
        Hi[s] = kNoIndex;
    }
}

// Offers (dist, j), known to beat the root (wd, wi), and reloads the root.
__device__ __forceinline__ void heap_offer(double* Hd, index_t* Hi, index_t k, double dist,
                                           index_t j, double& wd, index_t& wi) {
    heap_replace_top(Hd, Hi, k, dist, j);
    wd = Hd[0];
    wi = Hi[0];
}

// Heap sort in place: the k entries in ascending (distance, index) order.
__device__ __forceinline__ void heap_finish(double* Hd, index_t* Hi, index_t k) {
    for (index_t end = k - 1; end > 0; --end) {
        const double td = Hd[0], ld = Hd[end];
        const index_t ti = Hi[0], li = Hi[end];
        Hd[end] = td;
        Hi[end] = ti;
        heap_replace_top(Hd, Hi, end, ld, li);
    }
}

// Distance from x to [lo, hi] along one axis (0 inside), rounded like the point differences.
__device__ __forceinline__ double box_gap(double x, double lo, double hi) {
    return x < lo ? __dsub_rn(lo, x) : (x > hi ? __dsub_rn(x, hi) : 0.0);
}

__device__ __forceinline__ double add_square(double acc, double u) {
    return __dadd_rn(acc, __dmul_rn(u, u));
}

// Squared distance from a query to point p, and to the box [lo, hi]: query coordinate t is
// q[t * qs] (a column of the block's shared query table, or a row in global memory).
__device__ __forceinline__ double query_dist(const double* q, int qs, const double* p, index_t d) {
    double acc = 0.0;
    for (index_t t = 0; t < d; ++t) acc = add_square(acc, __dsub_rn(q[t * qs], p[t]));
    return acc;
}

__device__ __forceinline__ double query_box(const double* q, int qs, const double* lo,
                                            const double* hi, index_t d) {
    double acc = 0.0;
    for (index_t t = 0; t < d; ++t) acc = add_square(acc, box_gap(q[t * qs], lo[t], hi[t]));
    return acc;
}

// Squared distance between the boxes [alo, ahi] and [blo, bhi]: a lower bound of query_box for
// every query inside [alo, ahi] (term by term, and rounding is monotone).
__device__ __forceinline__ double box_box(const double* alo, const double* ahi, const double* blo,
                                          const double* bhi, index_t d) {
    double acc = 0.0;
    for (index_t t = 0; t < d; ++t) {
        const double u = blo[t] > ahi[t] ? __dsub_rn(blo[t], ahi[t])
                                         : (alo[t] > bhi[t] ? __dsub_rn(alo[t], bhi[t]) : 0.0);
        acc = add_square(acc, u);
    }
    return acc;
}

__device__ __forceinline__ double warp_sum(double v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// ---- k-NN ------------------------------------------------------------------------------------------

struct KnnParams {
    const double* X;       // n x d, kd order
    const index_t* orig;   // n: original index of each reordered point
    const double* tlo;     // ntiles x d tile boxes
    const double* thi;
    const double* Q;       // queries (nq x d) in their processing order; == X in self mode
    const double* qlo;     // boxes of the blocks of kBlock queries (global block number)
    const double* qhi;
    const index_t* seed;   // per query block: the tile nearest to its box (null in self mode)
    const index_t* rowmap; // output row of each query position, or null: row = g - q_begin
    index_t* out_idx;      // rows of k entries (the running lists)
    double* out_d2;
    index_t n, d, ntiles, k;
    index_t q_begin, q_end;  // this launch's queries; q_begin is a multiple of kBlock
    index_t reach;           // tiles visited first on each side of the block's own tiles
    bool self;
    bool stage;              // d <= kSmallDim: queries and tiles staged in shared memory
};

// Per query block: the tile whose box is nearest to the centre of the block's query box (ties to
// the smaller tile), where its lists start.
__global__ void __launch_bounds__(kBlock)
    knn_seed_kernel(const double* __restrict__ qlo, const double* __restrict__ qhi,
                    const double* __restrict__ tlo, const double* __restrict__ thi,
                    index_t ntiles, index_t d, index_t* __restrict__ seed) {
    __shared__ double s_d[kBlock];
    __shared__ index_t s_t[kBlock];
    const index_t qb = blockIdx.x;
    const double* lo = qlo + qb * d;
    const double* hi = qhi + qb * d;
    double best = CUDART_INF;
    index_t bt = ntiles;  // none yet
    for (index_t t = threadIdx.x; t < ntiles; t += kBlock) {
        double acc = 0.0;
        for (index_t c = 0; c < d; ++c) {
            const double x = 0.5 * lo[c] + 0.5 * hi[c];
            acc = add_square(acc, box_gap(x, tlo[t * d + c], thi[t * d + c]));
        }
        if (bt == ntiles || acc < best) {
            best = acc;
            bt = t;
        }
    }
    s_d[threadIdx.x] = best;
    s_t[threadIdx.x] = bt;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < kBlock; ++w) {
            if (s_t[w] == ntiles) continue;
            if (bt == ntiles || pair_less(s_d[w], s_t[w], best, bt)) {
                best = s_d[w];
                bt = s_t[w];
            }
        }
        seed[qb] = (bt >= 0 && bt < ntiles) ? bt : 0;
    }
}

__global__ void __launch_bounds__(kBlock, 8) knn_kernel(const KnnParams a) {
    // Staged (d <= kSmallDim): the block's queries (d x kBlock, column per thread), then the
    // current tile (kTile x d).
    extern __shared__ double s_dyn[];
    __shared__ index_t s_orig[kTile];
    __shared__ index_t s_list[kBlock];
    __shared__ double s_red[kWarps];
    __shared__ int s_cnt[kWarps];

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const index_t d = a.d, k = a.k;
    const bool stage = a.stage;
    const index_t q0 = a.q_begin + static_cast<index_t>(blockIdx.x) * kBlock;
    const index_t qb = q0 / kBlock;
    const index_t g = q0 + tid;
    const bool valid = g < a.q_end;  // threads past the end are masked, never returned early
    const double* q = a.Q + (valid ? g : q0) * d;
    int qs = 1;
    double* s_pts = s_dyn + kBlock * d;
    if (stage) {
        for (index_t t = 0; t < d; ++t) s_dyn[t * kBlock + tid] = q[t];
        q = s_dyn + tid;  // own column; written and read by this thread only
        qs = kBlock;
    }

    double* Ld = nullptr;
    index_t* Li = nullptr;
    if (valid) {
        const index_t row = a.rowmap ? a.rowmap[g] : g - a.q_begin;
        Ld = a.out_d2 + row * k;
        Li = a.out_idx + row * k;
        heap_init(Ld, Li, k);
    }
    double wd = CUDART_INF;  // the root of the heap: the k-th best so far
    index_t wi = kNoIndex;

    // Offers the points of one tile to every thread whose query is close enough to its box.
    // Called uniformly by the whole block.
    auto process = [&](index_t tile) {
        const bool need = valid && query_box(q, qs, a.tlo + tile * d, a.thi + tile * d, d) <= wd;
        if (!__syncthreads_or(need)) return;
        const index_t p0 = tile * kTile;
        const int cnt = static_cast<int>(a.n - p0 < kTile ? a.n - p0 : kTile);
        const double* P = a.X + p0 * d;
        const index_t* O = a.orig + p0;
        if (stage) {
            const int len = cnt * static_cast<int>(d);
            for (int e = tid; e < len; e += kBlock) s_pts[e] = P[e];
            for (int e = tid; e < cnt; e += kBlock) s_orig[e] = O[e];
            __syncthreads();
            P = s_pts;
            O = s_orig;
        }
        if (need) {
            for (int e = 0; e < cnt; ++e) {
                if (a.self && p0 + e == g) continue;  // not its own neighbour (duplicates are)
                const double dist = query_dist(q, qs, P + e * d, d);
                if (dist < wd || (dist == wd && O[e] < wi)) heap_offer(Ld, Li, k, dist, O[e], wd, wi);
            }
        }
        if (stage) __syncthreads();  // s_pts / s_orig are reused by the next tile
    };

    // 1. The block's own tiles (self) or its nearest tile, then up to `reach` tiles on each side,
    // nearest first, to fill the lists with good candidates.
    index_t own_lo, own_hi;
    if (a.self) {
        const index_t g_last = (q0 + kBlock < a.q_end ? q0 + kBlock : a.q_end) - 1;
        own_lo = q0 / kTile;
        own_hi = g_last / kTile;
    } else {
        own_lo = own_hi = a.seed[qb];
    }
    for (index_t t = own_lo; t <= own_hi; ++t) process(t);
    for (index_t r = 1; r <= a.reach; ++r) {
        if (own_lo - r >= 0) process(own_lo - r);
        if (own_hi + r < a.ntiles) process(own_hi + r);
    }
    const index_t first = own_lo > a.reach ? own_lo - a.reach : 0;  // the tiles visited so far
    const index_t last = own_hi + a.reach < a.ntiles - 1 ? own_hi + a.reach : a.ntiles - 1;

    // 2. All other tiles, kBlock at a time: keep those whose box is within the block's largest
    // k-th distance of the query box, then offer them in tile order.
    const double* bq_lo = a.qlo + qb * d;
    const double* bq_hi = a.qhi + qb * d;
    for (index_t c0 = 0; c0 < a.ntiles; c0 += kBlock) {
        double m = valid ? wd : -CUDART_INF;
        for (int off = 16; off > 0; off >>= 1) m = fmax(m, __shfl_xor_sync(0xffffffffu, m, off));
        if (lane == 0) s_red[warp] = m;
        __syncthreads();
        double radius = s_red[0];
        for (int w = 1; w < kWarps; ++w) radius = fmax(radius, s_red[w]);
        const index_t tile = c0 + tid;
        bool flag = false;
        if (tile < a.ntiles && (tile < first || tile > last))
            flag = box_box(bq_lo, bq_hi, a.tlo + tile * d, a.thi + tile * d, d) <= radius;
        const unsigned ballot = __ballot_sync(0xffffffffu, flag);
        if (lane == 0) s_cnt[warp] = __popc(ballot);
        __syncthreads();
        int offset = 0, total = 0;
        for (int w = 0; w < kWarps; ++w) {
            if (w < warp) offset += s_cnt[w];
            total += s_cnt[w];
        }
        if (flag) s_list[offset + __popc(ballot & ((1u << lane) - 1u))] = tile;
        __syncthreads();
        for (int e = 0; e < total; ++e) process(s_list[e]);
        __syncthreads();  // s_red, s_cnt and s_list are rewritten by the next chunk
    }
    if (valid) heap_finish(Ld, Li, k);
}

// ---- Mahalanobis re-ranking ------------------------------------------------------------------------

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

// ---- diffusion graph -------------------------------------------------------------------------------

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

// ---- host helpers ----------------------------------------------------------------------------------

template <typename T>
DeviceBuffer<T> upload(const T* host, std::size_t count) {
    DeviceBuffer<T> buf(count);
    if (count)
        LATENTBRIDGE_CUDA_CHECK(
            cudaMemcpy(buf.get(), host, count * sizeof(T), cudaMemcpyHostToDevice));
    return buf;
}

template <typename T>
void download(T* host, const T* dev, std::size_t count) {
    if (count)
        LATENTBRIDGE_CUDA_CHECK(cudaMemcpy(host, dev, count * sizeof(T), cudaMemcpyDeviceToHost));
}

// Grid of a grid-stride loop over `items` with `threads` per block.
unsigned grid_for(index_t items, int threads) {
    const index_t blocks = (items + threads - 1) / threads;
    return static_cast<unsigned>(std::max<index_t>(1, std::min<index_t>(blocks, index_t(1) << 20)));
}

// Half of the free device memory: the budget of the per-query buffers.
std::size_t memory_budget() {
    std::size_t free_bytes = 0, total_bytes = 0;
    LATENTBRIDGE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    return free_bytes / 2;
}

// Strict weak order on doubles with NaN last (nth_element needs one).
inline bool coord_less(double x, double y) { return x < y || (!std::isnan(x) && std::isnan(y)); }

// kd-tree order of the rows perm[begin, end) (median splits on the widest side) whose splits fall
// on multiples of `leaf` positions: the consecutive groups of `leaf` rows are its leaves. The left
// halves of the top `par_depth` levels are split on their own threads.
void kd_split(const double* X, index_t d, index_t leaf, index_t* perm, index_t begin, index_t end,
              int par_depth) {
    std::vector<double> lo(static_cast<std::size_t>(d)), hi(static_cast<std::size_t>(d));
    while (end - begin > leaf) {
        std::fill(lo.begin(), lo.end(), std::numeric_limits<double>::infinity());
        std::fill(hi.begin(), hi.end(), -std::numeric_limits<double>::infinity());
        for (index_t i = begin; i < end; ++i) {
            const double* x = X + perm[i] * d;
            for (index_t t = 0; t < d; ++t) {
                lo[t] = std::min(lo[t], x[t]);
                hi[t] = std::max(hi[t], x[t]);
            }
        }
        index_t dim = 0;
        for (index_t t = 1; t < d; ++t)
            if (hi[t] - lo[t] > hi[dim] - lo[dim]) dim = t;
        const index_t leaves = (end - begin + leaf - 1) / leaf;  // >= 2
        const index_t mid = begin + (leaves + 1) / 2 * leaf;     // in (begin, end)
        if (hi[dim] > lo[dim])
            std::nth_element(perm + begin, perm + mid, perm + end, [&](index_t a, index_t b) {
                return coord_less(X[a * d + dim], X[b * d + dim]);
            });
        --par_depth;
        if (par_depth >= 0 && end - begin >= (index_t(1) << 15)) {
            std::future<void> left;
            try {
                left = std::async(std::launch::async, kd_split, X, d, leaf, perm, begin, mid, par_depth);
            } catch (const std::system_error&) {
                // no thread to be had: stay serial (left is not valid)
            }
            if (left.valid()) {
                kd_split(X, d, leaf, perm, mid, end, par_depth);
                left.get();
                return;
            }
        }
        kd_split(X, d, leaf, perm, begin, mid, par_depth);
        begin = mid;
    }
}

std::vector<index_t> kd_order(const double* X, index_t n, index_t d, index_t leaf) {
    std::vector<index_t> perm(static_cast<std::size_t>(n));
    std::iota(perm.begin(), perm.end(), index_t(0));
    int par_depth = 0;
    for (unsigned hw = std::thread::hardware_concurrency(); hw > 1 && par_depth < 4; hw /= 2)
        ++par_depth;
    kd_split(X, d, leaf, perm.data(), 0, n, par_depth);
    return perm;
}

std::vector<double> gather_rows(const double* X, const std::vector<index_t>& perm, index_t d) {
    std::vector<double> out(perm.size() * static_cast<std::size_t>(d));
    for (std::size_t i = 0; i < perm.size(); ++i)
        std::memcpy(out.data() + i * d, X + perm[i] * d, sizeof(double) * d);
    return out;
}

// Bounding boxes of the consecutive groups of `size` rows of Z (rows x d).
void group_boxes(const double* Z, index_t rows, index_t d, index_t size, std::vector<double>& lo,
                 std::vector<double>& hi) {
    const index_t groups = (rows + size - 1) / size;
    lo.assign(static_cast<std::size_t>(groups * d), std::numeric_limits<double>::infinity());
    hi.assign(static_cast<std::size_t>(groups * d), -std::numeric_limits<double>::infinity());
    for (index_t i = 0; i < rows; ++i) {
        double* l = lo.data() + (i / size) * d;
        double* h = hi.data() + (i / size) * d;
        const double* z = Z + i * d;
        for (index_t t = 0; t < d; ++t) {
            l[t] = std::min(l[t], z[t]);
            h[t] = std::max(h[t], z[t]);
        }
    }
}

}  // namespace

// ---- host API --------------------------------------------------------------------------------------

void knn_sqeuclidean(const double* X, index_t n, index_t d, const double* Q, index_t nq, index_t k,
                     index_t* idx, double* d2) {
    const char* op = "knn_sqeuclidean";
    LATENTBRIDGE_CHECK(n >= 1 && d >= 1 && k >= 1, op, "need n >= 1, d >= 1 and k >= 1");
    const bool self = Q == nullptr;
    if (self) {
        nq = n;
        LATENTBRIDGE_CHECK(k <= n - 1, op, "k must be at most n - 1 when querying the data itself");
    } else {
        LATENTBRIDGE_CHECK(k <= n, op, "k must be at most the number of data points");
    }
    if (nq <= 0) return;
    const index_t ntiles = (n + kTile - 1) / kTile;
    const index_t nqb = (nq + kBlock - 1) / kBlock;
    LATENTBRIDGE_CHECK(nqb < (index_t(1) << 31), op, "too many queries for one grid");

    // Host: kd orders, reordered rows, tile and query-block boxes.
    const std::vector<index_t> perm = kd_order(X, n, d, kTile);
    const std::vector<double> Xp = gather_rows(X, perm, d);
    std::vector<double> tlo, thi;
    group_boxes(Xp.data(), n, d, kTile, tlo, thi);
    std::vector<index_t> qperm_own;
    std::vector<double> Qp_own;
    if (!self) {
        qperm_own = kd_order(Q, nq, d, kBlock);
        Qp_own = gather_rows(Q, qperm_own, d);
    }
    const std::vector<index_t>& qperm = self ? perm : qperm_own;
    const double* Qp = self ? Xp.data() : Qp_own.data();
    std::vector<double> qlo, qhi;
    group_boxes(Qp, nq, d, kBlock, qlo, qhi);

    const auto nd = static_cast<std::size_t>(n * d);
    DeviceBuffer<double> dX = upload(Xp.data(), nd);
    DeviceBuffer<index_t> dorig = upload(perm.data(), perm.size());
    DeviceBuffer<double> dtlo = upload(tlo.data(), tlo.size());
    DeviceBuffer<double> dthi = upload(thi.data(), thi.size());
    DeviceBuffer<double> dQ = self ? DeviceBuffer<double>()
                                   : upload(Qp, static_cast<std::size_t>(nq * d));
    DeviceBuffer<double> dqlo = upload(qlo.data(), qlo.size());
    DeviceBuffer<double> dqhi = upload(qhi.data(), qhi.size());
    DeviceBuffer<index_t> dseed;
    if (!self) {
        dseed = DeviceBuffer<index_t>(static_cast<std::size_t>(nqb));
        knn_seed_kernel<<<static_cast<unsigned>(nqb), kBlock>>>(dqlo.get(), dqhi.get(), dtlo.get(),
                                                                dthi.get(), ntiles, d, dseed.get());
        LATENTBRIDGE_CUDA_CHECK(cudaGetLastError());
    }

    // The lists are the output rows: at their final place when all of them fit in the budget,
    // else per batch of queries (in processing order) scattered on the host.
    const std::size_t row_bytes = static_cast<std::size_t>(k) * (sizeof(index_t) + sizeof(double));
    const std::size_t budget = memory_budget();
    const bool single = static_cast<std::size_t>(nq) <= budget / row_bytes;
    index_t batch = nq;
    DeviceBuffer<index_t> dqperm;
    if (single) {
        if (!self) dqperm = upload(qperm.data(), qperm.size());
    } else {
        batch = std::max<index_t>(kBlock, static_cast<index_t>(budget / row_bytes) / kBlock * kBlock);
    }
    DeviceBuffer<index_t> didx(static_cast<std::size_t>(batch * k));
    DeviceBuffer<double> dd2(static_cast<std::size_t>(batch * k));
    std::vector<index_t> stage_idx;
    std::vector<double> stage_d2;
    if (!single) {
        stage_idx.resize(static_cast<std::size_t>(batch * k));
        stage_d2.resize(static_cast<std::size_t>(batch * k));
    }

    KnnParams p{};
    p.X = dX.get();
    p.orig = dorig.get();
    p.tlo = dtlo.get();
    p.thi = dthi.get();
    p.Q = self ? dX.get() : dQ.get();
    p.qlo = dqlo.get();
    p.qhi = dqhi.get();
    p.seed = self ? nullptr : dseed.get();
    p.rowmap = single ? (self ? dorig.get() : dqperm.get()) : nullptr;
    p.out_idx = didx.get();
    p.out_d2 = dd2.get();
    p.n = n;
    p.d = d;
    p.ntiles = ntiles;
    p.k = k;
    p.reach = std::max<index_t>(1, (k + kTile - 1) / kTile);
    p.self = self;
    p.stage = d <= kSmallDim;
    const std::size_t smem =
        p.stage ? static_cast<std::size_t>((kBlock + kTile) * d) * sizeof(double) : 0;
    for (index_t b0 = 0; b0 < nq; b0 += batch) {
        const index_t b1 = std::min(nq, b0 + batch);
        p.q_begin = b0;
        p.q_end = b1;
        const auto grid = static_cast<unsigned>((b1 - b0 + kBlock - 1) / kBlock);
        knn_kernel<<<grid, kBlock, smem>>>(p);
        LATENTBRIDGE_CUDA_CHECK(cudaGetLastError());
        if (single) {
            download(idx, didx.get(), static_cast<std::size_t>(nq * k));
            download(d2, dd2.get(), static_cast<std::size_t>(nq * k));
        } else {
            const auto count = static_cast<std::size_t>((b1 - b0) * k);
            download(stage_idx.data(), didx.get(), count);
            download(stage_d2.data(), dd2.get(), count);
            for (index_t s = 0; s < b1 - b0; ++s) {
                const index_t row = qperm[static_cast<std::size_t>(b0 + s)];
                std::memcpy(idx + row * k, stage_idx.data() + s * k, sizeof(index_t) * k);
                std::memcpy(d2 + row * k, stage_d2.data() + s * k, sizeof(double) * k);
            }
        }
    }
}

void mahalanobis_rerank(const double* Y, const double* G, index_t n, index_t m, index_t r,
                        const double* Yq, const double* Gq, index_t nq, const index_t* cand,
                        index_t kc, index_t k, index_t* idx, double* d2) {
    const char* op = "mahalanobis_rerank";
    LATENTBRIDGE_CHECK(n >= 1 && m >= 1 && r >= 1 && k >= 1 && k <= kc, op,
                       "need n, m, r >= 1 and 1 <= k <= kc");
    const bool self = Yq == nullptr;
    if (self) nq = n;
    if (nq <= 0) return;
    LATENTBRIDGE_CHECK(self || Gq != nullptr, op, "Gq is required with Yq");

    DeviceBuffer<double> dY = upload(Y, static_cast<std::size_t>(n * m));
    DeviceBuffer<double> dG = upload(G, static_cast<std::size_t>(n * r * m));
    const std::size_t row_bytes =
        static_cast<std::size_t>(kc) * sizeof(index_t) +
        static_cast<std::size_t>(k) * (sizeof(index_t) + sizeof(double)) +
        (self ? 0 : static_cast<std::size_t>(m + r * m) * sizeof(double));
    const index_t rows = std::min<index_t>(
        nq, std::max<index_t>(kBlock, static_cast<index_t>(memory_budget() / row_bytes)));
    DeviceBuffer<index_t> dcand(static_cast<std::size_t>(rows * kc));
    DeviceBuffer<index_t> didx(static_cast<std::size_t>(rows * k));
    DeviceBuffer<double> dd2(static_cast<std::size_t>(rows * k));
    DeviceBuffer<double> dYq(self ? 0 : static_cast<std::size_t>(rows * m));
    DeviceBuffer<double> dGq(self ? 0 : static_cast<std::size_t>(rows * r * m));
    DeviceBuffer<int> dflags(1);
    LATENTBRIDGE_CUDA_CHECK(cudaMemset(dflags.get(), 0, sizeof(int)));

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
        LATENTBRIDGE_CUDA_CHECK(cudaMemcpy(dcand.get(), cand + b0 * kc,
                                           sizeof(index_t) * static_cast<std::size_t>(cnt * kc),
                                           cudaMemcpyHostToDevice));
        if (!self) {
            LATENTBRIDGE_CUDA_CHECK(cudaMemcpy(dYq.get(), Yq + b0 * m,
                                               sizeof(double) * static_cast<std::size_t>(cnt * m),
                                               cudaMemcpyHostToDevice));
            LATENTBRIDGE_CUDA_CHECK(cudaMemcpy(dGq.get(), Gq + b0 * r * m,
                                               sizeof(double) * static_cast<std::size_t>(cnt * r * m),
                                               cudaMemcpyHostToDevice));
        }
        p.i_begin = b0;
        p.rows = cnt;
        const auto grid = static_cast<unsigned>((cnt + kBlock - 1) / kBlock);
        if (m <= kSmallDim)
            rerank_kernel<true><<<grid, kBlock>>>(p);
        else
            rerank_kernel<false><<<grid, kBlock>>>(p);
        LATENTBRIDGE_CUDA_CHECK(cudaGetLastError());
        int flags = 0;
        download(&flags, dflags.get(), 1);
        LATENTBRIDGE_CHECK(!(flags & 1), op, "candidate index out of range");
        LATENTBRIDGE_CHECK(!(flags & 2), op, "fewer valid candidates than neighbours requested");
        download(idx + b0 * k, didx.get(), static_cast<std::size_t>(cnt * k));
        download(d2 + b0 * k, dd2.get(), static_cast<std::size_t>(cnt * k));
    }
}

DiffusionGraph diffusion_graph(const index_t* idx, const double* d2, index_t n, index_t k,
                               double epsilon, double alpha) {
    const char* op = "diffusion_graph";
    check_graph_args(idx, d2, n, k, epsilon, alpha);  // the CPU's checks, in its order

    const index_t nk = n * k;
    const index_t total = 2 * nk + n;
    DeviceBuffer<index_t> didx = upload(idx, static_cast<std::size_t>(nk));
    DeviceBuffer<double> dd2 = upload(d2, static_cast<std::size_t>(nk));
    DeviceBuffer<std::uint64_t> keys_a(static_cast<std::size_t>(total));
    DeviceBuffer<std::uint64_t> keys_b(static_cast<std::size_t>(total));
    DeviceBuffer<double> vals_a(static_cast<std::size_t>(total));
    DeviceBuffer<double> vals_b(static_cast<std::size_t>(total));
    emit_edges_kernel<<<grid_for(nk + n, 256), 256>>>(didx.get(), dd2.get(), n, k, keys_a.get(),
                                                      vals_a.get());
    LATENTBRIDGE_CUDA_CHECK(cudaGetLastError());
    LATENTBRIDGE_CUDA_CHECK(cudaDeviceSynchronize());  // the lists are freed here
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
                                                            0, end_bit));
    LATENTBRIDGE_CUDA_CHECK(cub::DeviceReduce::ReduceByKey(
        nullptr, reduce_bytes, keys.Current(), keys.Alternate(), vals.Current(), vals.Alternate(),
        druns.get(), MinOp(), total));
    DeviceBuffer<unsigned char> temp(std::max<std::size_t>(1, std::max(sort_bytes, reduce_bytes)));
    LATENTBRIDGE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.get(), sort_bytes, keys, vals,
                                                            total, 0, end_bit));
    // After the sort, Current() holds the sorted pairs and Alternate() is free for the merge.
    const std::uint64_t* ukeys = keys.Alternate();
    double* uvals = vals.Alternate();
    LATENTBRIDGE_CUDA_CHECK(cub::DeviceReduce::ReduceByKey(
        temp.get(), reduce_bytes, keys.Current(), keys.Alternate(), vals.Current(),
        vals.Alternate(), druns.get(), MinOp(), total));
    unsigned long long runs = 0;
    download(&runs, druns.get(), 1);
    LATENTBRIDGE_CHECK(runs >= 1 && runs <= static_cast<unsigned long long>(total), op,
                       "internal error: bad number of merged edges");
    std::uint64_t last_key = 0;
    download(&last_key, ukeys + (runs - 1), 1);
    const index_t nnz = static_cast<index_t>(runs) - (last_key == sentinel ? 1 : 0);

    DeviceBuffer<std::int64_t> dindptr(static_cast<std::size_t>(n + 1));
    DeviceBuffer<std::int32_t> dindices(static_cast<std::size_t>(nnz));
    DeviceBuffer<double> dp(static_cast<std::size_t>(n)), dq(static_cast<std::size_t>(n));
    DeviceBuffer<double> dip(static_cast<std::size_t>(n)), diq(static_cast<std::size_t>(n));
    csr_kernel<<<grid_for(nnz, 256), 256>>>(ukeys, nnz, n, dindptr.get(), dindices.get());
    LATENTBRIDGE_CUDA_CHECK(cudaGetLastError());
    const unsigned row_grid = grid_for(n * 32, kRowThreads);
    const double inv2eps = 1.0 / (2.0 * epsilon);
    kernel_values_kernel<<<row_grid, kRowThreads>>>(dindptr.get(), n, inv2eps, alpha, uvals,
                                                    dp.get(), dip.get());
    LATENTBRIDGE_CUDA_CHECK(cudaGetLastError());
    alpha_kernel<<<row_grid, kRowThreads>>>(dindptr.get(), dindices.get(), n, dip.get(), uvals,
                                            dq.get(), diq.get());
    LATENTBRIDGE_CUDA_CHECK(cudaGetLastError());
    symmetric_kernel<<<row_grid, kRowThreads>>>(dindptr.get(), dindices.get(), n, diq.get(), uvals);
    LATENTBRIDGE_CUDA_CHECK(cudaGetLastError());

    DiffusionGraph g;
    g.n = n;
    g.indptr.resize(static_cast<std::size_t>(n + 1));
    g.indices.resize(static_cast<std::size_t>(nnz));
    g.values.resize(static_cast<std::size_t>(nnz));
    g.p.resize(static_cast<std::size_t>(n));
    g.q.resize(static_cast<std::size_t>(n));
    download(g.indptr.data(), dindptr.get(), g.indptr.size());
    download(g.indices.data(), dindices.get(), g.indices.size());
    download(g.values.data(), uvals, g.values.size());
    download(g.p.data(), dp.get(), g.p.size());
    download(g.q.data(), dq.get(), g.q.size());
    return g;
}

}  // namespace cuda
}  // namespace latentbridge
