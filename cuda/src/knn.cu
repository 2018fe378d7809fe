// Exact k-NN on the GPU (float64), the contract of latentbridge::knn_sqeuclidean (cpp/src/knn.cpp)
// on host arrays copied to the current device and back inside the call, ordered on the caller's
// stream.
//
// The host orders the points by the core's kd partition (detail/kd_partition.hpp, kd_leaf_order)
// with splits on multiples of kTile rows, so every tile of kTile consecutive reordered points is a
// kd leaf, and stores the bounding box of each tile; the queries are ordered the same way (the
// points themselves in self mode, a kd order of Q with kBlock-row leaves otherwise) with the
// bounding box of each block of kBlock queries. One thread per query; its k best (distance,
// original index) pairs live in its own row of the output as a max-heap (neighbour_list.cuh;
// lexicographic order, so the result does not depend on the order in which tiles are visited;
// heap-sorted at the end). A block first visits its own tiles (self mode) or the tile nearest to
// its query box (found by a small kernel), then ceil(k / kTile) tiles on each side, nearest first;
// then it scans all tiles kBlock at a time: a tile is a candidate when its box is within the
// largest current k-th distance of the block from the query box, and a candidate is loaded into
// shared memory (d <= kSmallDim, with the queries; read from global memory otherwise) only when
// some thread's own query is within its k-th distance of the tile box (__syncthreads_or); threads
// out of range are masked, never returned early. Distances are computed without FMA contraction
// (__dsub_rn/__dmul_rn/__dadd_rn, t ascending), i.e. exactly as the CPU code, and box distances the
// same way: rounding is monotone, so a box distance never exceeds the distance to a point inside
// the box and pruning is exact; a point enters a list when it beats the k-th by (distance, index),
// so ties at the k-th place go to the smaller index, as on the CPU. Rows are written directly at
// the original query index when the whole (nq x k) output fits in half the free device memory,
// else per batch of queries and scattered on the host.
#include <cuda_runtime.h>
#include <math_constants.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "check.cuh"
#include "launch.cuh"
#include "latentbridge/detail/check.hpp"
#include "latentbridge/detail/kd_partition.hpp"
#include "latentbridge_cuda/knn.hpp"
#include "neighbour_list.cuh"

namespace latentbridge {
namespace cuda {
namespace {

constexpr int kWarps = kBlock / 32;
constexpr int kTile = 64;  // points per tile (a kd leaf)

// Distance from x to [lo, hi] along one axis (0 inside), rounded like the point differences.
__device__ __forceinline__ double box_gap(double x, double lo, double hi) {
    return x < lo ? __dsub_rn(lo, x) : (x > hi ? __dsub_rn(x, hi) : 0.0);
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
        const double m = warp_max(valid ? wd : -CUDART_INF);
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

// ---- host helpers ----------------------------------------------------------------------------------

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
                     index_t* idx, double* d2, void* stream_ptr) {
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
    const std::vector<index_t> perm = kd_leaf_order(X, n, d, kTile);
    const std::vector<double> Xp = gather_rows(X, perm, d);
    std::vector<double> tlo, thi;
    group_boxes(Xp.data(), n, d, kTile, tlo, thi);
    std::vector<index_t> qperm_own;
    std::vector<double> Qp_own;
    if (!self) {
        qperm_own = kd_leaf_order(Q, nq, d, kBlock);
        Qp_own = gather_rows(Q, qperm_own, d);
    }
    const std::vector<index_t>& qperm = self ? perm : qperm_own;
    const double* Qp = self ? Xp.data() : Qp_own.data();
    std::vector<double> qlo, qhi;
    group_boxes(Qp, nq, d, kBlock, qlo, qhi);

    const cudaStream_t stream = as_stream(stream_ptr);
    const auto nd = static_cast<std::size_t>(n * d);
    DeviceBuffer<double> dX = upload(Xp.data(), nd, stream);
    DeviceBuffer<index_t> dorig = upload(perm.data(), perm.size(), stream);
    DeviceBuffer<double> dtlo = upload(tlo.data(), tlo.size(), stream);
    DeviceBuffer<double> dthi = upload(thi.data(), thi.size(), stream);
    DeviceBuffer<double> dQ = self ? DeviceBuffer<double>()
                                   : upload(Qp, static_cast<std::size_t>(nq * d), stream);
    DeviceBuffer<double> dqlo = upload(qlo.data(), qlo.size(), stream);
    DeviceBuffer<double> dqhi = upload(qhi.data(), qhi.size(), stream);
    DeviceBuffer<index_t> dseed;
    if (!self) {
        dseed = DeviceBuffer<index_t>(static_cast<std::size_t>(nqb));
        knn_seed_kernel<<<static_cast<unsigned>(nqb), kBlock, 0, stream>>>(
            dqlo.get(), dqhi.get(), dtlo.get(), dthi.get(), ntiles, d, dseed.get());
        check_launch();
    }

    // The lists are the output rows: at their final place when all of them fit in the budget,
    // else per batch of queries (in processing order) scattered on the host.
    const std::size_t row_bytes = static_cast<std::size_t>(k) * (sizeof(index_t) + sizeof(double));
    const std::size_t budget = device_memory_budget();
    const bool single = static_cast<std::size_t>(nq) <= budget / row_bytes;
    index_t batch = nq;
    DeviceBuffer<index_t> dqperm;
    if (single) {
        if (!self) dqperm = upload(qperm.data(), qperm.size(), stream);
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
        knn_kernel<<<grid, kBlock, smem, stream>>>(p);
        check_launch();
        if (single) {
            download(idx, didx.get(), static_cast<std::size_t>(nq * k), stream);
            download(d2, dd2.get(), static_cast<std::size_t>(nq * k), stream);
        } else {
            const auto count = static_cast<std::size_t>((b1 - b0) * k);
            download(stage_idx.data(), didx.get(), count, stream);
            download(stage_d2.data(), dd2.get(), count, stream);
            for (index_t s = 0; s < b1 - b0; ++s) {
                const index_t row = qperm[static_cast<std::size_t>(b0 + s)];
                std::memcpy(idx + row * k, stage_idx.data() + s * k, sizeof(index_t) * k);
                std::memcpy(d2 + row * k, stage_d2.data() + s * k, sizeof(double) * k);
            }
        }
    }
}

}  // namespace cuda
}  // namespace latentbridge
