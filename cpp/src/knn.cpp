// Exact k-NN: a kd-tree (median split on the widest box side, bucket leaves, nearest child first,
// pruning by the distance to each child's bounding box) for d <= kKdTreeMaxDim, and a blocked
// brute-force search for larger d: the dot-tile kernel in the GEMM form screens the pairs (with a
// rounding-error bound, so it never drops a neighbour) and the rest compete with their exact
// distance. Both rank by (exact distance, index): ties at the k-th place go to the smaller index.
// The kd partition (detail/kd_partition.hpp) is defined here and shared with the CUDA k-NN.
#include "latentbridge/knn.hpp"

#include <algorithm>
#include <cmath>
#include <future>
#include <limits>
#include <numeric>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "latentbridge/detail/check.hpp"
#include "latentbridge/detail/gemm.hpp"
#include "latentbridge/detail/kd_partition.hpp"
#include "latentbridge/detail/parallel.hpp"

namespace latentbridge {

// ---- the kd partition (detail/kd_partition.hpp), shared with the CUDA k-NN ---------------------

void kd_box(const double* X, index_t d, const index_t* perm, index_t begin, index_t end, double* lo,
            double* hi) {
    std::fill(lo, lo + d, std::numeric_limits<double>::infinity());
    std::fill(hi, hi + d, -std::numeric_limits<double>::infinity());
    for (index_t i = begin; i < end; ++i) {
        const double* x = X + perm[i] * d;
        for (index_t t = 0; t < d; ++t) {
            lo[t] = std::min(lo[t], x[t]);
            hi[t] = std::max(hi[t], x[t]);
        }
    }
}

bool kd_partition(const double* X, index_t d, const double* lo, const double* hi, index_t* perm,
                  index_t begin, index_t mid, index_t end) {
    index_t dim = 0;
    for (index_t t = 1; t < d; ++t)
        if (hi[t] - lo[t] > hi[dim] - lo[dim]) dim = t;
    if (!(hi[dim] > lo[dim])) return false;
    // a strict weak order with NaN last (nth_element needs one)
    std::nth_element(perm + begin, perm + mid, perm + end, [&](index_t a, index_t b) {
        const double x = X[a * d + dim], y = X[b * d + dim];
        return x < y || (!std::isnan(x) && std::isnan(y));
    });
    return true;
}

namespace {

// Splits perm[begin, end) into leaf-aligned halves down to single leaves; the left halves of the
// top `par_depth` levels of ranges of at least 2^15 rows run on their own threads.
void kd_leaf_split(const double* X, index_t d, index_t leaf, index_t* perm, index_t begin,
                   index_t end, int par_depth) {
    std::vector<double> lo(static_cast<std::size_t>(d)), hi(static_cast<std::size_t>(d));
    while (end - begin > leaf) {
        kd_box(X, d, perm, begin, end, lo.data(), hi.data());
        const index_t leaves = (end - begin + leaf - 1) / leaf;           // >= 2
        const index_t mid = begin + (leaves + 1) / 2 * leaf;              // in (begin, end)
        kd_partition(X, d, lo.data(), hi.data(), perm, begin, mid, end);  // no-op when all equal
        --par_depth;
        if (par_depth >= 0 && end - begin >= (index_t(1) << 15)) {
            std::future<void> left;
            try {
                left = std::async(std::launch::async, kd_leaf_split, X, d, leaf, perm, begin, mid,
                                  par_depth);
            } catch (const std::system_error&) {
                // no thread to be had: stay serial (left is not valid)
            }
            if (left.valid()) {
                kd_leaf_split(X, d, leaf, perm, mid, end, par_depth);
                left.get();
                return;
            }
        }
        kd_leaf_split(X, d, leaf, perm, begin, mid, par_depth);
        begin = mid;
    }
}

}  // namespace

std::vector<index_t> kd_leaf_order(const double* X, index_t n, index_t d, index_t leaf) {
    LATENTBRIDGE_CHECK(n >= 1 && d >= 1 && leaf >= 1, "kd_leaf_order",
                       "need n >= 1, d >= 1 and leaf >= 1");
    std::vector<index_t> perm(static_cast<std::size_t>(n));
    std::iota(perm.begin(), perm.end(), index_t(0));
    int par_depth = 0;
    for (unsigned hw = std::thread::hardware_concurrency(); hw > 1 && par_depth < 4; hw /= 2)
        ++par_depth;
    kd_leaf_split(X, d, leaf, perm.data(), 0, n, par_depth);
    return perm;
}

// ---- exact k-NN
// --------------------------------------------------------------------------------------

namespace {

using Cand = std::pair<double, index_t>;  // (squared distance, index): ordered lexicographically

inline double sqdist(const double* a, const double* b, index_t d) {
    double acc = 0.0;
    for (index_t t = 0; t < d; ++t) {
        const double u = a[t] - b[t];
        acc += u * u;
    }
    return acc;
}

// The k best candidates seen so far, kept lazily: candidates below the current bound are appended
// to a buffer, which is cut back to the k best (nth_element) whenever it reaches 2k entries. The
// bound is the k-th best at the last cut, a valid (conservative) pruning radius. Amortised O(1) per
// accepted candidate, against O(log k) for a heap: it matters for the 100+ candidates of
// Mahalanobis re-ranking.
struct TopK {
    std::vector<Cand> buf;
    index_t k = 0;
    Cand bound{std::numeric_limits<double>::infinity(), std::numeric_limits<index_t>::max()};
    void reset(index_t k_) {
        k = k_;
        buf.clear();
        buf.reserve(static_cast<std::size_t>(2 * k_));
        bound = {std::numeric_limits<double>::infinity(), std::numeric_limits<index_t>::max()};
    }
    double worst() const { return bound.first; }
    void offer(double dist, index_t j) {
        const Cand c{dist, j};
        if (!(c < bound)) return;
        buf.push_back(c);
        if (static_cast<index_t>(buf.size()) == k &&
            bound.first == std::numeric_limits<double>::infinity()) {
            bound = *std::max_element(buf.begin(), buf.end());
        } else if (static_cast<index_t>(buf.size()) >= 2 * k) {
            cut();
        }
    }
    void cut() {
        std::nth_element(buf.begin(), buf.begin() + (k - 1), buf.end());
        buf.resize(static_cast<std::size_t>(k));
        bound = buf[k - 1];
    }
    void write_sorted(index_t* idx, double* d2) {
        if (static_cast<index_t>(buf.size()) > k) cut();
        std::sort(buf.begin(), buf.end());
        for (index_t t = 0; t < k; ++t) {
            idx[t] = buf[t].second;
            d2[t] = buf[t].first;
        }
    }
};

class KdTree {
   public:
    KdTree(const double* X, index_t n, index_t d, index_t leaf_size = 24)
        : d_(d), leaf_(leaf_size) {
        perm_.resize(static_cast<std::size_t>(n));
        std::iota(perm_.begin(), perm_.end(), index_t(0));
        nodes_.reserve(static_cast<std::size_t>(2 * (n / leaf_size + 1)));
        build(X, 0, n);
        pts_.resize(static_cast<std::size_t>(n * d));
        for (index_t i = 0; i < n; ++i)
            std::copy(X + perm_[i] * d, X + (perm_[i] + 1) * d, pts_.data() + i * d);
    }

    const std::vector<index_t>& perm() const { return perm_; }

    void query(const double* q, index_t exclude, TopK& top) const { search(0, q, exclude, top); }

   private:
    struct Node {
        index_t begin, end, left, right;
    };

    index_t build(const double* X, index_t begin, index_t end) {
        const index_t id = static_cast<index_t>(nodes_.size());
        nodes_.push_back({begin, end, -1, -1});
        const auto at = static_cast<std::size_t>(id * d_);  // this node's box
        box_lo_.resize(at + static_cast<std::size_t>(d_));
        box_hi_.resize(at + static_cast<std::size_t>(d_));
        kd_box(X, d_, perm_.data(), begin, end, box_lo_.data() + at, box_hi_.data() + at);
        if (end - begin <= leaf_) return id;
        const index_t mid = begin + (end - begin) / 2;
        if (!kd_partition(X, d_, box_lo_.data() + at, box_hi_.data() + at, perm_.data(), begin, mid,
                          end))
            return id;  // all points equal: keep one (large) leaf
        const index_t left = build(X, begin, mid);
        const index_t right = build(X, mid, end);
        nodes_[id].left = left;
        nodes_[id].right = right;
        return id;
    }

    double box_dist(index_t node, const double* q) const {
        const double* lo = box_lo_.data() + node * d_;
        const double* hi = box_hi_.data() + node * d_;
        double acc = 0.0;
        for (index_t t = 0; t < d_; ++t) {
            const double u = q[t] < lo[t] ? lo[t] - q[t] : (q[t] > hi[t] ? q[t] - hi[t] : 0.0);
            acc += u * u;
        }
        return acc;
    }

    void search(index_t node, const double* q, index_t exclude, TopK& top) const {
        const Node& nd = nodes_[node];
        if (nd.left < 0) {
            for (index_t i = nd.begin; i < nd.end; ++i) {
                const index_t j = perm_[i];
                if (j == exclude) continue;
                top.offer(sqdist(q, pts_.data() + i * d_, d_), j);
            }
            return;
        }
        const double dl = box_dist(nd.left, q), dr = box_dist(nd.right, q);
        const index_t first = dl <= dr ? nd.left : nd.right, second = dl <= dr ? nd.right : nd.left;
        const double d_first = std::min(dl, dr), d_second = std::max(dl, dr);
        if (d_first <= top.worst()) search(first, q, exclude, top);
        if (d_second <= top.worst()) search(second, q, exclude, top);
    }

    index_t d_, leaf_;
    std::vector<index_t> perm_;
    std::vector<Node> nodes_;
    std::vector<double> box_lo_, box_hi_, pts_;
};

void knn_kdtree(const double* X, index_t n, index_t d, const double* Q, index_t nq, index_t k,
                index_t* idx, double* d2, int n_threads) {
    const KdTree tree(X, n, d);
    const bool self = Q == nullptr;
    // Self queries run in tree order (neighbouring queries share the same nodes in cache).
    const index_t block = 256;
    const index_t n_blocks = (nq + block - 1) / block;
    const int workers = std::max(1, std::min<int>(n_threads, static_cast<int>(n_blocks)));
    std::vector<TopK> tops(static_cast<std::size_t>(workers));
    parallel_for(n_blocks, workers, [&](index_t b, int w) {
        TopK& top = tops[w];
        for (index_t t = b * block; t < std::min(nq, (b + 1) * block); ++t) {
            const index_t i = self ? tree.perm()[t] : t;
            const double* q = self ? X + i * d : Q + i * d;
            top.reset(k);
            tree.query(q, self ? i : -1, top);
            top.write_sorted(idx + i * k, d2 + i * k);
        }
    });
}

void knn_brute(const double* X, index_t n, index_t d, const double* Q, index_t nq, index_t k,
               index_t* idx, double* d2, int n_threads) {
    const bool self = Q == nullptr;
    if (self) Q = X;
    const auto& K = dot_tile_kernel<double>();
    std::vector<double> shift(static_cast<std::size_t>(d), 0.0);
    for (index_t i = 0; i < n; ++i)
        for (index_t t = 0; t < d; ++t) shift[t] += X[i * d + t];
    for (auto& s : shift) s /= static_cast<double>(n);
    auto norms = [&](const double* Z, index_t rows) {
        std::vector<double> out(static_cast<std::size_t>(rows));
        for (index_t i = 0; i < rows; ++i) {
            double acc = 0.0;
            for (index_t t = 0; t < d; ++t) {
                const double u = Z[i * d + t] - shift[t];
                acc += u * u;
            }
            out[i] = acc;
        }
        return out;
    };
    const std::vector<double> nx = norms(X, n);
    // |GEMM form - exact distance| <= slack * (|q - shift|^2 + |x - shift|^2): rounding of the
    // shifted rows (4u), of the two norms and the dot product (gamma_d each, gamma_d ~ d u), of the
    // final sum and difference (3u) and of the direct distance (gamma_d), with a factor 2 to spare
    // (u = eps / 2 is the unit roundoff).
    const double slack =
        (4.0 * static_cast<double>(d) + 16.0) * std::numeric_limits<double>::epsilon();
    const std::vector<double> nqv = self ? nx : norms(Q, nq);
    const index_t mc = K.mc, nc = K.nc;
    const index_t row_tiles = (nq + mc - 1) / mc;
    const int workers = std::max(1, std::min<int>(n_threads, static_cast<int>(row_tiles)));
    struct Scratch {
        std::vector<double> work, C;
        std::vector<TopK> tops;
    };
    std::vector<Scratch> scratch(static_cast<std::size_t>(workers));
    parallel_for(row_tiles, workers, [&](index_t bi, int w) {
        Scratch& s = scratch[w];
        if (s.work.empty()) {
            s.work.resize(K.work_size);
            s.C.resize(static_cast<std::size_t>(mc * nc));
            s.tops.resize(static_cast<std::size_t>(mc));
        }
        const index_t i0 = bi * mc, rows = std::min(mc, nq - i0);
        for (index_t ii = 0; ii < rows; ++ii) s.tops[ii].reset(k);
        for (index_t j0 = 0; j0 < n; j0 += nc) {
            const index_t cols = std::min(nc, n - j0);
            K.run(Q + i0 * d, d, rows, X + j0 * d, d, cols, d, shift.data(), s.C.data(), nc,
                  s.work.data());
            for (index_t ii = 0; ii < rows; ++ii) {
                const index_t i = i0 + ii;
                TopK& top = s.tops[ii];
                const double* c = s.C.data() + ii * nc;
                for (index_t jj = 0; jj < cols; ++jj) {
                    const index_t j = j0 + jj;
                    if (self && j == i) continue;
                    // the GEMM form only screens: a pair it proves beyond the current k-th
                    // distance is skipped, the others compete with their exact distance
                    const double scale = nqv[i] + nx[j];
                    if (scale - 2.0 * c[jj] - slack * scale > top.worst()) continue;
                    top.offer(sqdist(Q + i * d, X + j * d, d), j);
                }
            }
        }
        for (index_t ii = 0; ii < rows; ++ii) {
            const index_t i = i0 + ii;
            s.tops[ii].write_sorted(idx + i * k, d2 + i * k);
        }
    });
}

}  // namespace

void kdtree_order(const double* X, index_t n, index_t d, index_t* order) {
    LATENTBRIDGE_CHECK(n >= 1 && d >= 1, "kdtree_order", "need n >= 1 and d >= 1");
    const KdTree tree(X, n, d);
    std::copy(tree.perm().begin(), tree.perm().end(), order);
}

void knn_sqeuclidean(const double* X, index_t n, index_t d, const double* Q, index_t nq, index_t k,
                     index_t* idx, double* d2, int n_threads, int method) {
    const char* op = "knn_sqeuclidean";
    LATENTBRIDGE_CHECK(n >= 1 && d >= 1 && k >= 1, op, "need n >= 1, d >= 1 and k >= 1");
    if (Q == nullptr) {
        nq = n;
        LATENTBRIDGE_CHECK(k <= n - 1, op, "k must be at most n - 1 when querying the data itself");
    } else {
        LATENTBRIDGE_CHECK(k <= n, op, "k must be at most the number of data points");
    }
    if (nq == 0) return;
    const bool tree = method == 1 || (method == 0 && d <= kKdTreeMaxDim);
    if (tree)
        knn_kdtree(X, n, d, Q, nq, k, idx, d2, n_threads);
    else
        knn_brute(X, n, d, Q, nq, k, idx, d2, n_threads);
}

}  // namespace latentbridge
