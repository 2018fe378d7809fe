// R-Cross-Barcode_1 by streaming relative homology of the cone form (notes/rtd.md section 3.3).
//
// The cone form has, relative to the contractible star of its apex, one chain per edge (i, j) at
// m_ij, one ordinary triangle (i, j, k) at its m-diameter and one cone triangle (i, j, c) at w_ij
// whose boundary is the edge (i, j) alone. Its relative 0-chains are zero, so every edge is born
// as a class. The simplices are taken in a filtration order (edges by m, each followed by the
// triangles whose latest edge it is, cone triangles by w), and the homology is kept reduced to
// zero differentials, the view of Kapulkin and Kershaw's RedZeD (arXiv 2606.06310): every edge x
// carries its class cls(x), a sum of the edges still alive ("active"); a triangle t with
// b = sum of cls over its facets equal to zero creates a 2-cycle and changes nothing; otherwise
// the latest active edge y of b dies at the diameter of t (the elder rule), and y is replaced by
// b - y in every class that holds it (an inverse index lists them).
//
// Why homology here: where the first representation is noise and the second has structure, the
// cocycles that cohomology must carry are cuts of the structured cloud (O(n^2) edges each) while
// the cycles are paths, and the cohomology reduction of rips.cpp pays n^4.
//
// Two devices keep it fast: a 64-bit hash of each class (the XOR of fixed pseudo-random keys of
// its active edges) so that b == 0, the fate of almost every triangle, is decided in O(1); and
// enumeration of a triangle only when one of its facets has a non-empty class (an edge whose
// class is empty is a boundary, so a triangle whose three classes are empty has b == 0), from
// per-vertex lists of the edges with non-empty classes. A hash collision (probability 2^-64 per
// triangle) would drop a bar; the keys are deterministic, so results are reproducible.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "latentbridge/detail/check.hpp"
#include "latentbridge/detail/parallel.hpp"
#include "latentbridge/rips.hpp"

namespace latentbridge {
namespace {

using rank_t = std::int32_t;  // position of an edge in the filtration order
constexpr rank_t kAbsent = std::numeric_limits<rank_t>::max();

std::uint64_t edge_key(rank_t r) {  // splitmix64 of the rank: fixed, pseudo-random, never 0
    std::uint64_t x = static_cast<std::uint64_t>(r) + 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x | 1ULL;
}

/// out = a XOR b for sorted rank lists (symmetric difference, sorted); only_b(r) is called for
/// each entry r of b that a lacks.
template <typename OnlyB>
void xor_sorted(const std::vector<rank_t>& a, const std::vector<rank_t>& b,
                std::vector<rank_t>& out, OnlyB&& only_b) {
    out.clear();
    std::size_t s = 0, t = 0;
    while (s < a.size() && t < b.size()) {
        if (a[s] < b[t]) {
            out.push_back(a[s++]);
        } else if (b[t] < a[s]) {
            only_b(b[t]);
            out.push_back(b[t++]);
        } else {
            ++s, ++t;
        }
    }
    out.insert(out.end(), a.begin() + static_cast<std::ptrdiff_t>(s), a.end());
    for (; t < b.size(); ++t) {
        only_b(b[t]);
        out.push_back(b[t]);
    }
}

void xor_sorted(const std::vector<rank_t>& a, const std::vector<rank_t>& b,
                std::vector<rank_t>& out) {
    xor_sorted(a, b, out, [](rank_t) {});
}

class ConeHomology {
   public:
    ConeHomology(const float* w, const float* m, index_t n, float thr,
                 std::vector<PairEdges>* pairs)
        : w_(w), m_(m), n_(n), thr_(thr), pairs_(pairs) {}

    std::vector<Bar> run() {
        build_edges();
        const rank_t count = static_cast<rank_t>(ei_.size());
        cls_.assign(static_cast<std::size_t>(count), {});
        inv_.assign(static_cast<std::size_t>(count), {});
        hash_.assign(static_cast<std::size_t>(count), 0);
        listed_.assign(static_cast<std::size_t>(count), 0);
        live_.assign(static_cast<std::size_t>(count), 0);
        seen_.assign(static_cast<std::size_t>(n_), -1);
        words_ = static_cast<std::size_t>((n_ + 63) / 64);
        older_.assign(words_ * static_cast<std::size_t>(n_), 0);
        nonempty_.assign(static_cast<std::size_t>(n_), {});

        std::size_t next_cone = 0;
        for (rank_t e = 0; e < count; ++e) {
            if ((e & 1023) == 0) detail::maybe_poll_interrupt();  // Ctrl-C (main thread only)
            const float d = diam_[e];
            for (; next_cone < cones_.size() && w_at(cones_[next_cone]) < d; ++next_cone)
                cone_triangle(cones_[next_cone]);
            add_edge(e);
        }
        for (; next_cone < cones_.size(); ++next_cone) cone_triangle(cones_[next_cone]);
        return std::move(bars_);
    }

   private:
    struct Link {
        rank_t edge, k;  // an edge with a non-empty class, and its other vertex
    };

    float w_at(rank_t e) const { return w_[ei_[e] * n_ + ej_[e]]; }

    /// Edges with m <= thr sorted by (m, index), their ranks in an n x n table, and the cone
    /// triangles with m < w <= thr sorted by w (those with w == m are taken with their edge).
    void build_edges() {
        std::vector<std::int64_t> order;
        for (index_t j = 1; j < n_; ++j)
            for (index_t i = 0; i < j; ++i)
                if (m_[j * n_ + i] <= thr_) order.push_back(j * n_ + i);
        std::stable_sort(order.begin(), order.end(),
                         [this](std::int64_t a, std::int64_t b) { return m_[a] < m_[b]; });
        rank_.assign(static_cast<std::size_t>(n_ * n_), kAbsent);
        ei_.resize(order.size());
        ej_.resize(order.size());
        diam_.resize(order.size());
        for (std::size_t r = 0; r < order.size(); ++r) {
            const index_t j = order[r] / n_, i = order[r] % n_;
            ei_[r] = i;
            ej_[r] = j;
            diam_[r] = m_[order[r]];
            rank_[i * n_ + j] = rank_[j * n_ + i] = static_cast<rank_t>(r);
            const float wv = w_[order[r]];
            if (wv > diam_[r] && wv <= thr_) cones_.push_back(static_cast<rank_t>(r));
        }
        std::stable_sort(cones_.begin(), cones_.end(),
                         [this](rank_t a, rank_t b) { return w_at(a) < w_at(b); });
    }

    /// Edge e is born active; when w_e == m_e its cone triangle (same diameter, a valid next
    /// simplex) kills it at once. Then its ordinary triangles (i, j, k), k joined to i and j by
    /// older edges, are taken.
    void add_edge(rank_t e) {
        const index_t i = ei_[e], j = ej_[e];
        const bool coned = !(w_[i * n_ + j] > diam_[e]);
        if (!coned) {
            cls_[e].assign(1, e);
            inv_[e].assign(1, e);
            hash_[e] = edge_key(e);
            set_live(e);
        }
        if (coned || !triangles_full(e, i, j)) triangles_sparse(e, i, j);
        older_[static_cast<std::size_t>(i) * words_ + static_cast<std::size_t>(j >> 6)] |=
            1ULL << (j & 63);
        older_[static_cast<std::size_t>(j) * words_ + static_cast<std::size_t>(i >> 6)] |=
            1ULL << (i & 63);
    }

    /// All triangles of e from the bitsets of older neighbours, while e's class is non-empty.
    /// Returns false when the class became empty before the end (the rest is left to
    /// triangles_sparse, which visits only triangles with a non-empty facet class).
    bool triangles_full(rank_t e, index_t i, index_t j) {
        const std::uint64_t* gi = &older_[static_cast<std::size_t>(i) * words_];
        const std::uint64_t* gj = &older_[static_cast<std::size_t>(j) * words_];
        for (std::size_t t = 0; t < words_; ++t) {
            std::uint64_t bits = gi[t] & gj[t];
            while (bits) {
                const index_t k = static_cast<index_t>(t * 64) + __builtin_ctzll(bits);
                bits &= bits - 1;
                triangle(e, rank_[i * n_ + k], rank_[j * n_ + k], diam_[e]);
                if (cls_[e].empty()) {
                    ++stamp_;  // triangles up to k are done; the sparse pass may see them again
                    return false;
                }
            }
        }
        return true;
    }

    /// The triangles of e (whose class is empty) with a facet whose class is not: k from the
    /// lists of non-empty edges at i and at j, repeated until a pass changes no class.
    void triangles_sparse(rank_t e, index_t i, index_t j) {
        ++stamp_;
        for (;;) {
            const std::uint64_t deaths = deaths_;
            for (int side = 0; side < 2; ++side) {
                const index_t v = side == 0 ? i : j;
                const rank_t* other = &rank_[(side == 0 ? j : i) * n_];
                std::vector<Link>& list = nonempty_[v];
                for (std::size_t t = 0; t < list.size(); ++t) {
                    const Link l = list[t];
                    if (l.edge >= e || !live_[l.edge] || seen_[l.k] == stamp_) continue;
                    const rank_t b = other[l.k];
                    if (b >= e) continue;
                    seen_[l.k] = stamp_;
                    triangle(e, l.edge, b, diam_[e]);
                }
            }
            if (deaths == deaths_) return;
            ++stamp_;
        }
    }

    void triangle(rank_t e, rank_t a, rank_t b, float d) {
        const std::uint64_t h = hash_[e] ^ hash_[a] ^ hash_[b];
        if (h == 0) return;  // b == 0: the triangle creates a 2-cycle
        xor_sorted(cls_[a], cls_[b], tmp_);
        xor_sorted(tmp_, cls_[e], bnd_);
        kill(h, d, n_ + ei_[e], n_ + ej_[e]);  // e is the triangle's latest edge
    }

    void cone_triangle(rank_t x) {
        if (cls_[x].empty()) return;
        bnd_ = cls_[x];
        kill(hash_[x], w_at(x), ei_[x], n_ + ej_[x]);  // the cross edge of length w_x
    }

    /// The latest active edge y of bnd_ (its last entry) dies at diameter d, the length of the
    /// doubled matrix's edge (d1, d2); every class holding y becomes class XOR bnd_.
    void kill(std::uint64_t h, float d, index_t d1, index_t d2) {
        ++deaths_;
        const rank_t y = bnd_.back();
        if (diam_[y] < d) emit(y, d, d1, d2);
        std::vector<rank_t> holders;
        holders.swap(inv_[y]);
        std::size_t done = 0;
        for (const rank_t x : holders) {
            if ((++done & 4095) == 0) detail::maybe_poll_interrupt();
            std::vector<rank_t>& c = cls_[x];
            if (!std::binary_search(c.begin(), c.end(), y)) continue;  // stale or repeated entry
            // y, in both, cancels; the entries of bnd_ that x did not hold are new: x joins
            // their inverse lists, in the same pass
            xor_sorted(c, bnd_, tmp_, [&](rank_t a) { inv_[a].push_back(x); });
            c.swap(tmp_);
            hash_[x] ^= h;
            set_live(x);
        }
    }

    /// The pair recorder: bar [m_y, d) and, when asked for, its edges in the doubled numbering.
    void emit(rank_t y, float d, index_t d1, index_t d2) {
        bars_.push_back({diam_[y], d});
        if (pairs_) pairs_->push_back({n_ + ei_[y], n_ + ej_[y], d1, d2});
    }

    /// Records whether x's class is empty; a newly non-empty x goes on the lists of those of its
    /// two vertices whose list lacks it (listed_ bit 0: the list of ei, bit 1: of ej). Entries of
    /// empty classes are dropped lazily when a list is compacted.
    void set_live(rank_t x) {
        live_[x] = !cls_[x].empty();
        if (!live_[x]) return;
        for (int side = 0; side < 2; ++side) {
            if (listed_[x] & (1 << side)) continue;
            listed_[x] |= static_cast<std::uint8_t>(1 << side);
            const index_t v = side == 0 ? ei_[x] : ej_[x];
            std::vector<Link>& list = nonempty_[v];
            if (list.size() >= 64 && list.size() == list.capacity()) compact(list, v);
            list.push_back({x, static_cast<rank_t>(side == 0 ? ej_[x] : ei_[x])});
        }
    }

    void compact(std::vector<Link>& list, index_t v) {
        std::size_t out = 0;
        for (const Link l : list) {
            if (live_[l.edge])
                list[out++] = l;
            else
                listed_[l.edge] &= static_cast<std::uint8_t>(ei_[l.edge] == v ? ~1 : ~2);
        }
        list.resize(out);
    }

    const float* w_;
    const float* m_;
    index_t n_;
    float thr_;
    std::vector<rank_t> rank_, cones_;
    std::vector<index_t> ei_, ej_;
    std::vector<float> diam_;
    std::vector<std::vector<rank_t>> cls_, inv_;
    std::vector<std::vector<Link>> nonempty_;
    std::vector<std::uint64_t> hash_, older_;
    std::vector<std::uint8_t> listed_, live_;
    std::vector<std::int64_t> seen_;
    std::int64_t stamp_ = 0;
    std::uint64_t deaths_ = 0;
    std::size_t words_ = 0;
    std::vector<rank_t> tmp_, bnd_;
    std::vector<Bar> bars_;
    std::vector<PairEdges>* pairs_;
};

}  // namespace

std::vector<Bar> r_cross_barcode_h1_homology(const float* w, const float* m, index_t n,
                                             std::vector<PairEdges>* pairs) {
    const char* op = "r_cross_barcode";
    LATENTBRIDGE_CHECK(n >= 0, op, "negative number of points");
    LATENTBRIDGE_CHECK(n < 46341, op, "too many points for 32-bit edge ranks (n < 46341)");
    if (pairs) pairs->clear();
    if (n < 2) return {};
    for (index_t t = 0; t < n * n; ++t)
        LATENTBRIDGE_CHECK(m[t] <= w[t], op, "m must not exceed w (m = min(w, w~))");
    return ConeHomology(w, m, n, enclosing_radius(w, n), pairs).run();
}

}  // namespace latentbridge
