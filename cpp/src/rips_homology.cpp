// Vietoris-Rips persistence in degrees 1..3 by streaming homology kept reduced to zero
// differentials, after Kapulkin and Kershaw, "RedZeD: Computing persistent homology by Reduction to
// Zero Differentials" (arXiv 2606.06310), written here from the paper's ideas.
//
// The simplices of degrees 1..k (k = maxdim) are taken in filtration order (diameter, then degree,
// then colex order). Every d-simplex z whose class is non-zero carries cls(z): that class written
// in the live d-simplices (the positive ones not yet killed), so each live simplex has a zero
// differential. A new (d+1)-simplex s has the boundary b = sum of cls over its facets: b == 0 makes
// s live (a class is born); otherwise the latest live simplex j of b dies at diam(s) (the elder
// rule) and j is replaced by b - j in every class holding it (an inverse index lists them).
// Degree 0 is union-find.
//
// Degree k + 1 is never enumerated ("active enumeration"). A (k+1)-simplex t enters with its
// latest facet x, and only when x is born live (a facet that kills a class has no such coface, as
// the boundary of t forces b(x) == 0). Its boundary is cls(x) plus the classes of its other facets,
// and those are zero unless the facet is "active" (non-zero class). So at the birth of x only two
// kinds of cofaces x + w are visited: those that share a facet with an active k-simplex (found
// from the lists of active simplices per (k-1)-face), and one more whose other facets are all
// inactive (found by scanning the neighbours of x's least connected vertex): it kills what is left
// of cls(x), and any further one would have a zero boundary.
//
// Simplices are named by their vertices packed 16 bits each, the largest in the top bits, so the
// integer order is the colex order (n < 65536, k <= 3).
//
// The edges are listed and sorted packed in 64 bits (diameter bits above the key), half the memory
// traffic of a (diameter, key) pair.
//
// Threads: the simplices are listed (in blocks of largest vertices) and radix-sorted on n_threads;
// the reduction runs as a two-stage pipeline. The lower stage takes the simplices of degrees 1..k
// in order: H0, the classes of degrees 1..k-1, the boundaries of the k-simplices, and for each
// k-simplex x born live the first vertices w of its cofaces x + w entering with it (a scan of
// bit sets of the edges taken so far). It hands those x, in order, in blocks to the upper stage,
// which owns the top degree's classes and the active lists and reduces the cofaces. For k >= 2
// the scan for the cofaces goes to whichever stage is behind: the lower stage does it for a block
// while blocks wait in the queue (the upper stage is the slower), else it leaves it to the upper
// stage, which then reads bit sets that may already hold later edges and so tests every vertex
// found against the distances (ready). Either way the least such vertex is found, and the upper
// stage sees the same sequence on one thread or two, so the result does not depend on n_threads.
// Both stages request the hash-table slots of the facets a few simplices ahead of use (most of
// their time is spent waiting on memory for those look-ups). The upper stage's look-ups are array
// reads where they can be: the active lists of vertices (k = 1) and edges (k = 2) sit in arrays
// (FaceLists), and a link names the class of its simplex by a slot of the top degree's class slab
// and the slot's generation (ClassSlab), which says whether that class is still non-zero.
//
// Pairs: a finite bar is emitted where its class dies (the latest live simplex j of the boundary of
// the killing simplex s); its edges are the longest edge of j and of s. The engine's filtration
// order is (diameter, degree, colex order), so among edges of equal length the latest is the one
// of greatest colex index b2 (b2 - 1) / 2 + b1 (largest b2, then largest b1). Except in degree
// k + 1, whose simplices are met at the birth of their latest facet, in the order of the coface
// search: where several of equal diameter can kill a class of degree k, which one does (and so
// the death edge) may differ from the standard reduction in (diameter, degree, colex) order; the
// bars do not (tests/test_topology_pairs.py).
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "latentbridge/detail/check.hpp"
#include "latentbridge/detail/parallel.hpp"
#include "latentbridge/rips.hpp"

namespace latentbridge {
namespace {

using key_t = std::uint64_t;  // packed vertices, ascending from the low bits

/// Starts loading the cache line of p (a hint). The empty volatile asm keeps GCC from finding the
/// functions that only prefetch free of side effects and dropping their calls (-O2/-O3 dropped
/// every call of KeyMap::prefetch and FaceLists::prefetch: their prefetches never ran).
inline void prefetch_line(const void* p) {
    __builtin_prefetch(p);
    asm volatile("" : : "r"(p));
}

/// Tables smaller than this stay in cache; requesting their entries ahead only costs instructions
/// (sphere_3_192, whose tables are all small: cachegrind cost 587 M with the prefetches, 545 M
/// without; o3_1024 1435 M against 1333 M, its small tables and the early, small states of the
/// large ones).
constexpr std::size_t kPrefetchBytes = std::size_t{1} << 20;

/// An allocator whose value-less construct default-initialises (leaves numbers unset), so that
/// resizing a vector that is written in full next does not first fill it with zeros on one
/// thread (the sorted lists and the engine's matrix: tens of MB at N = 2000).
template <typename T>
struct NoZeroAllocator : std::allocator<T> {
    template <typename U>
    struct rebind {
        using other = NoZeroAllocator<U>;
    };
    NoZeroAllocator() = default;
    template <typename U>
    NoZeroAllocator(const NoZeroAllocator<U>&) noexcept {}
    template <typename U>
    void construct(U* p) noexcept {
        ::new (static_cast<void*>(p)) U;
    }
    template <typename U, typename... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};
template <typename T>
using Filled = std::vector<T, NoZeroAllocator<T>>;  // a vector written in full after resize
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr key_t kNoKey = ~key_t{0};  // never a simplex: vertices are distinct
constexpr int kMaxDim = 3;

struct Cell {
    float diam;
    key_t key;
};
inline bool earlier(const Cell& a, const Cell& b) {
    return a.diam < b.diam || (a.diam == b.diam && a.key < b.key);
}

/// An edge packed in 64 bits, its diameter's bits above its key (two 16-bit vertices): the
/// integer order of non-negative diameters' bits is their numeric order, so that of the packed
/// edges is the filtration order, and an edge takes half a Cell in the lists and the sort.
inline std::uint64_t pack_edge(float diam, key_t key) {
    std::uint32_t bits;
    std::memcpy(&bits, &diam, sizeof bits);
    return (std::uint64_t{bits} << 32) | key;
}
inline Cell unpack_edge(std::uint64_t e) {
    const auto bits = static_cast<std::uint32_t>(e >> 32);
    float diam;
    std::memcpy(&diam, &bits, sizeof diam);
    return {diam, e & 0xffffffffu};
}
inline std::uint32_t diameter_bits(std::uint64_t e) { return static_cast<std::uint32_t>(e >> 32); }
inline std::uint32_t diameter_bits(const Cell& c) {
    std::uint32_t bits;
    std::memcpy(&bits, &c.diam, sizeof bits);
    return bits;
}

inline index_t vertex_of(key_t key, int p) {
    return static_cast<index_t>((key >> (16 * p)) & 0xffff);
}

/// Key of the facet of a simplex that omits the vertex at position u (0..3).
inline key_t omit(key_t key, int u) {
    const key_t low = key & ((key_t{1} << (16 * u)) - 1);
    // two shifts, as one by 64 (u = 3) is undefined; the former test of u mispredicted (10 % of
    // the mispredicted branches on o3_1024, cachegrind)
    const key_t high = ((key >> 16) >> (16 * u)) << (16 * u);
    return low | high;
}

/// Open-addressing hash map from keys to V (linear probing, deletion by backward shift).
template <typename V>
class KeyMap {
   public:
    KeyMap() { slots_.resize(16); }
    V* find(key_t key) {
        std::size_t h = home(key);
        while (slots_[h].key != kNoKey) {
            if (slots_[h].key == key) return &slots_[h].val;
            h = (h + 1) & mask();
        }
        return nullptr;
    }
    /// The value of key, default-constructed when absent.
    V& operator[](key_t key) {
        if (2 * (size_ + 1) > slots_.size()) grow();
        std::size_t h = home(key);
        while (slots_[h].key != kNoKey) {
            if (slots_[h].key == key) return slots_[h].val;
            h = (h + 1) & mask();
        }
        slots_[h].key = key;
        ++size_;
        return slots_[h].val;
    }
    void erase(key_t key) {
        std::size_t i = home(key);
        while (slots_[i].key != key) {
            if (slots_[i].key == kNoKey) return;
            i = (i + 1) & mask();
        }
        for (std::size_t j = (i + 1) & mask(); slots_[j].key != kNoKey; j = (j + 1) & mask()) {
            const std::size_t h = home(slots_[j].key);
            // the entry at j may move to the hole at i unless its home lies cyclically in (i, j]
            const bool stays = i < j ? (h > i && h <= j) : (h > i || h <= j);
            if (stays) continue;
            slots_[i] = std::move(slots_[j]);
            i = j;
        }
        slots_[i].key = kNoKey;
        slots_[i].val = V{};
        --size_;
    }
    /// Starts loading the slot where key's search begins (a hint; changes nothing).
    void prefetch(key_t key) const {
        if (slots_.size() * sizeof(Slot) >= kPrefetchBytes) prefetch_line(&slots_[home(key)]);
    }
    std::size_t capacity() const { return slots_.size(); }
    template <typename F>
    void for_each(F&& f) const {
        for (const Slot& s : slots_)
            if (s.key != kNoKey) f(s.key, s.val);
    }

   private:
    struct Slot {
        key_t key = kNoKey;
        V val{};
    };
    std::size_t mask() const { return slots_.size() - 1; }
    std::size_t home(key_t key) const {
        key ^= key >> 31;
        key *= 0x9e3779b97f4a7c15ULL;
        key ^= key >> 29;
        return static_cast<std::size_t>(key) & mask();
    }
    void grow() {
        std::vector<Slot> old(slots_.size() * 2);
        old.swap(slots_);
        size_ = 0;
        for (Slot& s : old)
            if (s.key != kNoKey) (*this)[s.key] = std::move(s.val);
    }
    std::vector<Slot> slots_;
    std::size_t size_ = 0;
};

using Chain = std::vector<Cell>;  // live simplices, in filtration order

/// out = a + b over Z/2 (both sorted in filtration order).
void add_chains(const Chain& a, const Chain& b, Chain& out) {
    out.clear();
    std::size_t s = 0, t = 0;
    while (s < a.size() && t < b.size()) {
        if (a[s].key == b[t].key)
            ++s, ++t;
        else if (earlier(a[s], b[t]))
            out.push_back(a[s++]);
        else
            out.push_back(b[t++]);
    }
    out.insert(out.end(), a.begin() + static_cast<std::ptrdiff_t>(s), a.end());
    out.insert(out.end(), b.begin() + static_cast<std::ptrdiff_t>(t), b.end());
}

bool same_chain(const Chain& a, const Chain& b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(),
                      [](const Cell& x, const Cell& y) { return x.key == y.key; });
}

/// A live simplex: its diameter and the simplices whose class may hold it (checked on use).
struct Live {
    float diam = 0.0f;
    std::vector<key_t> holders;
};

/// The reduction state of one degree: classes of the simplices whose class is non-zero, and the
/// live simplices.
struct Degree {
    KeyMap<Chain> cls;
    KeyMap<Live> live;
};

/// The longest edge of the simplex on vertices v[0..count-1]: among edges of equal length the
/// latest in colex order (largest upper vertex, then largest lower vertex); ascending.
std::array<index_t, 2> longest_edge(const float* dist, index_t n, const index_t* v, int count) {
    std::array<index_t, 2> best{-1, -1};
    float best_len = -1.0f;
    for (int a = 0; a < count; ++a)
        for (int b = 0; b < count; ++b) {
            const index_t lo = v[b], hi = v[a];
            if (!(lo < hi)) continue;
            const float len = dist[hi * n + lo];
            if (len > best_len ||
                (len == best_len && (hi > best[1] || (hi == best[1] && lo > best[0])))) {
                best_len = len;
                best = {lo, hi};
            }
        }
    return best;
}

/// A class of the top degree: its slot in a ClassSlab and the slot's generation when it was
/// taken.
struct ClassRef {
    std::uint32_t slot;
    std::uint32_t gen;
};

/// The classes of the top degree, in slots reused through a free list. A slot's generation
/// changes when its class becomes zero, so a reference taken earlier says by itself whether that
/// class is still non-zero: the upper stage reads arrays instead of probing a hash table.
class ClassSlab {
   public:
    ClassRef add(const Cell& s) {
        std::uint32_t slot;
        if (free_.empty()) {
            slot = static_cast<std::uint32_t>(chains_.size());
            chains_.emplace_back();
            gen_.push_back(0);
        } else {
            slot = free_.back();
            free_.pop_back();
        }
        chains_[slot].assign(1, s);
        return {slot, gen_[slot]};
    }
    /// The class of r, or null when it has become zero since r was taken.
    Chain* find(ClassRef r) { return gen_[r.slot] == r.gen ? &chains_[r.slot] : nullptr; }
    bool active(ClassRef r) const { return gen_[r.slot] == r.gen; }
    void erase(ClassRef r) {
        ++gen_[r.slot];
        Chain().swap(chains_[r.slot]);  // (kept storage made o3_1024's upper stage slower)
        free_.push_back(r.slot);
    }
    static key_t pack(ClassRef r) { return (static_cast<key_t>(r.gen) << 32) | r.slot; }
    static ClassRef unpack(key_t z) {
        return {static_cast<std::uint32_t>(z), static_cast<std::uint32_t>(z >> 32)};
    }

   private:
    std::vector<Chain> chains_;
    std::vector<std::uint32_t> gen_;
    std::vector<std::uint32_t> free_;
};

/// An active top simplex seen from one of its facets: its class and the vertex it adds.
struct Link {
    ClassRef cls;
    std::int32_t vertex;
};

/// The active lists: for each (k-1)-face, the links of the active k-simplices containing it.
/// Faces are vertices for k = 1 and edges for k = 2, whose lists sit in arrays (an edge's slot in
/// a triangular table of n (n - 1) / 2 entries); triangles (k = 3) are hashed. A bit per face says
/// whether its list may hold links: most look-ups find none (89 % on sphere_3_192, 96 % on a
/// Gaussian cloud and on o3_1024), and that bit set is small enough to stay in cache where the
/// slots and the lists are not. For k = 1 and 2 a face has its own bit, cleared when its list
/// empties; for k = 3 the bits are a filter (a hash of the triangle picks the bit, 8 bits per slot
/// of the hash table), rebuilt from the lists that hold links whenever the table grows.
class FaceLists {
   public:
    FaceLists(index_t n, int k) : k_(k) {
        const std::size_t faces =
            k == 1   ? static_cast<std::size_t>(n)
            : k == 2 ? static_cast<std::size_t>(n) * static_cast<std::size_t>(n - 1) / 2
                     : 0;
        if (k == 1) lists_.resize(faces);
        if (k == 2) slot_.assign(faces, -1);
        if (k == 3)
            refilter();
        else
            held_.assign((faces + 63) / 64, 0);
    }
    /// Whether the list of `face` may hold links (false: it holds none).
    bool may_hold(key_t face) const {
        const std::size_t i = index(face);
        return (held_[i / 64] >> (i % 64)) & 1;
    }
    /// The list of `face` has become empty.
    void emptied(key_t face) {
        if (k_ == 3) return;  // (a filter's bit may be shared)
        const std::size_t i = index(face);
        held_[i / 64] &= ~(std::uint64_t{1} << (i % 64));
    }
    /// The list of `face`, or null when it never had one.
    std::vector<Link>* find(key_t face) {
        if (k_ == 1) return &lists_[face];
        if (k_ == 2) {
            const std::int32_t i = slot_[edge(face)];
            return i < 0 ? nullptr : &lists_[static_cast<std::size_t>(i)];
        }
        return map_.find(face);
    }
    /// The list of `face`, to which a link is about to be added.
    std::vector<Link>& operator[](key_t face) {
        std::vector<Link>* list;
        if (k_ == 1) {
            list = &lists_[face];
        } else if (k_ == 2) {
            std::int32_t& s = slot_[edge(face)];
            if (s < 0) {
                s = static_cast<std::int32_t>(lists_.size());
                lists_.emplace_back();
            }
            list = &lists_[static_cast<std::size_t>(s)];
        } else {
            const std::size_t slots = map_.capacity();
            list = &map_[face];
            if (map_.capacity() != slots) refilter();  // (before face's bit is set below)
        }
        const std::size_t i = index(face);
        held_[i / 64] |= std::uint64_t{1} << (i % 64);
        return *list;
    }
    /// Whether prefetch does anything: the table of list slots is too large to stay in cache.
    bool worth_prefetching() const {
        return k_ == 2 ? slot_.size() * sizeof(std::int32_t) >= kPrefetchBytes
               : k_ == 3
                   ? map_.capacity() * (sizeof(key_t) + sizeof(std::vector<Link>)) >= kPrefetchBytes
                   : false;
    }
    /// Starts loading where face's list is found (a hint; changes nothing).
    void prefetch(key_t face) const {
        if (!worth_prefetching() || !may_hold(face)) return;
        if (k_ == 2)
            prefetch_line(&slot_[edge(face)]);
        else
            map_.prefetch(face);
    }

   private:
    std::size_t index(key_t face) const {
        if (k_ == 1) return static_cast<std::size_t>(face);
        if (k_ == 2) return edge(face);
        return static_cast<std::size_t>((face * 0x9e3779b97f4a7c15ULL) >> filter_shift_);
    }
    static std::size_t edge(key_t face) {
        const std::size_t lo = vertex_of(face, 0), hi = vertex_of(face, 1);
        return hi * (hi - 1) / 2 + lo;
    }
    /// k = 3: the filter sized for the table (8 bits per slot), the bits of the lists that hold
    /// links set.
    void refilter() {
        const std::size_t bits = 8 * map_.capacity();  // a power of 2, at least 128
        filter_shift_ = 64 - __builtin_ctzll(bits);
        held_.assign(bits / 64, 0);
        map_.for_each([&](key_t face, const std::vector<Link>& list) {
            if (list.empty()) return;
            const std::size_t i = index(face);
            held_[i / 64] |= std::uint64_t{1} << (i % 64);
        });
    }
    int k_;
    std::vector<std::vector<Link>> lists_;  // k = 1: by vertex; k = 2: by slot_
    std::vector<std::int32_t> slot_;        // k = 2: edge -> index into lists_, -1: none yet
    KeyMap<std::vector<Link>> map_;         // k = 3
    std::vector<std::uint64_t> held_;       // a bit per face (k = 1, 2) or the filter (k = 3)
    int filter_shift_ = 0;                  // k = 3: the filter's index is the hash's top bits
};

class RipsHomology {
   public:
    RipsHomology(const float* D, index_t n, int maxdim, float threshold, int n_threads,
                 std::vector<std::vector<PairEdges>>* pairs)
        : n_(n),
          k_(maxdim),
          thr_(threshold),
          n_threads_(std::max(1, n_threads)),
          pairs_(pairs),
          dist_(static_cast<std::size_t>(n * n)),
          faces_(n, maxdim) {
        parallel_for(n, n_threads_, [&](index_t i, int) {
            for (index_t j = 0; j < n; ++j) dist_[i * n + j] = j < i ? D[i * n + j] : D[j * n + i];
            dist_[i * n + i] = 0.0f;
        });
    }

    std::vector<std::vector<Bar>> run() {
        bars_.assign(static_cast<std::size_t>(k_) + 1, {});
        if (pairs_) pairs_->assign(static_cast<std::size_t>(k_) + 1, {});
        enumerate();
        parent_.resize(static_cast<std::size_t>(n_));
        for (index_t v = 0; v < n_; ++v) parent_[v] = v;
        words_ = static_cast<std::size_t>((n_ + 63) / 64);
        older_.assign(words_ * static_cast<std::size_t>(n_), 0);
        stamp_of_.assign(static_cast<std::size_t>(n_), 0);
        group_of_.assign(static_cast<std::size_t>(n_), 0);
        seeds_.assign(static_cast<std::size_t>(n_), 0);  // (a vertex is a seed at most once per x)
        groups_.resize(static_cast<std::size_t>(n_));
        degrees_.resize(static_cast<std::size_t>(k_) + 1);
        block_.reserve(kBlock);

        if (n_threads_ > 1)
            run_pipelined();
        else
            run_lower();  // hands each block of top simplices to add_top at once
        for (index_t v = 0; v < n_; ++v)
            if (find(v) == v) {
                bars_[0].push_back({0.0f, kInf});
                if (pairs_) (*pairs_)[0].push_back({v, -1, -1, -1});
            }
        for (int d = 1; d <= k_; ++d)
            degrees_[d].live.for_each([&](key_t key, const Live& l) {
                bars_[d].push_back({l.diam, kInf});
                if (pairs_) {
                    const auto b = edge_of(key, d + 1);
                    (*pairs_)[d].push_back({b[0], b[1], -1, -1});
                }
            });
        return std::move(bars_);
    }

   private:
    float dist(index_t i, index_t j) const { return dist_[i * n_ + j]; }

    /// The longest edge (see longest_edge) of the simplex `key` with `count` vertices.
    std::array<index_t, 2> edge_of(key_t key, int count) const {
        index_t v[kMaxDim + 1];
        for (int p = 0; p < count; ++p) v[p] = vertex_of(key, p);
        return longest_edge(dist_.data(), n_, v, count);
    }
    bool within(float d) const { return d <= thr_ && d < kInf; }  // +inf: an absent edge

    /// The simplices of degrees 1..k within the threshold (cliques of the threshold graph), each
    /// degree in filtration order: listed in colex order (a depth-first search that picks the
    /// largest vertex first), then stably sorted by diameter. The largest vertices are split into
    /// blocks listed concurrently; their lists, taken in block order, are the colex order, so the
    /// result does not depend on n_threads.
    void enumerate() {
        const index_t blocks = std::min<index_t>(n_, n_threads_ > 1 ? 256 : 1);
        // block b takes the largest vertices [bound[b], bound[b + 1]); vertex v has up to v
        // neighbours below it, so the bounds split the pairs v (v - 1) / 2 evenly
        std::vector<index_t> bound(static_cast<std::size_t>(blocks) + 1);
        for (index_t b = 0; b <= blocks; ++b)
            bound[b] = static_cast<index_t>(
                std::ceil(static_cast<double>(n_) * std::sqrt(static_cast<double>(b) / blocks)));
        bound[blocks] = n_;
        std::vector<Part> parts(static_cast<std::size_t>(blocks));
        parallel_for(blocks, n_threads_, [&](index_t b, int) {
            parts[b].cells.assign(static_cast<std::size_t>(k_) + 1, {});
            list_cliques(bound[b], bound[b + 1], parts[b]);
        });
        std::vector<std::vector<std::uint64_t>*> edge_parts;
        for (Part& p : parts) edge_parts.push_back(&p.edges);
        sort_by_diameter(edge_parts, edges_);
        cells_.assign(static_cast<std::size_t>(k_) + 1, {});
        for (int d = 2; d <= k_; ++d) {
            std::vector<std::vector<Cell>*> cell_parts;
            for (Part& p : parts) cell_parts.push_back(&p.cells[d]);
            sort_by_diameter(cell_parts, cells_[d]);
        }
    }

    /// One block's simplices in colex order: the edges packed, the d-simplices for d >= 2 in
    /// cells[d].
    struct Part {
        std::vector<std::uint64_t> edges;
        std::vector<std::vector<Cell>> cells;
    };

    /// Appends to out the simplices whose largest vertex is in [first, last), colex order.
    void list_cliques(index_t first, index_t last, Part& out) const {
        std::vector<std::vector<index_t>> cand(static_cast<std::size_t>(k_) + 1);
        index_t vs[kMaxDim + 1];
        // vs[0..depth] chosen (descending), cand[depth]: their common neighbours below vs[depth]
        auto extend = [&](auto&& self, int depth, key_t key, float diam) -> void {
            const std::vector<index_t>& c = cand[depth];
            for (std::size_t t = 0; t < c.size(); ++t) {
                const index_t u = c[t];
                float du = diam;
                for (int p = 0; p <= depth; ++p) du = std::max(du, dist(vs[p], u));
                const key_t ku = (key << 16) | static_cast<key_t>(u);
                if (depth == 0)
                    out.edges.push_back(pack_edge(du, ku));
                else
                    out.cells[depth + 1].push_back({du, ku});
                if (depth + 1 >= k_ || depth + 1 >= kMaxDim) continue;  // (k_ <= kMaxDim)
                std::vector<index_t>& next = cand[depth + 1];
                next.clear();
                for (std::size_t r = 0; r < t; ++r)
                    if (within(dist(u, c[r]))) next.push_back(c[r]);
                if (next.empty()) continue;
                vs[depth + 1] = u;
                self(self, depth + 1, ku, du);
            }
        };
        for (index_t v = first; v < last; ++v) {
            detail::maybe_poll_interrupt();  // Ctrl-C (main thread only)
            cand[0].clear();
            for (index_t u = 0; u < v; ++u)
                if (within(dist(v, u))) cand[0].push_back(u);
            vs[0] = v;
            extend(extend, 0, static_cast<key_t>(v), 0.0f);
        }
    }

    /// Stable radix sort by diameter (the float's bits order non-negative floats as numbers) of
    /// the lists `in` taken one after the other (packed edges or Cells), into `out`; the lists are
    /// freed on the way. First a counting pass on the high 16 bits, which splits its input into
    /// n_threads contiguous ranges that count their digits and scatter concurrently (a range's
    /// entries of one digit go after those of the ranges before it, so the sort stays stable);
    /// then each bucket of equal high bits is sorted on its own by the low 16 bits, in two
    /// stable 8-bit passes (a bucket's 256 counters and entries stay in cache, where a 16-bit
    /// pass over the whole list scattered its writes over 65,536 places), buckets concurrently.
    template <typename T>
    void sort_by_diameter(const std::vector<std::vector<T>*>& in, Filled<T>& out) const {
        std::vector<const std::vector<T>*> from(in.begin(), in.end());
        std::size_t total = 0;
        for (const std::vector<T>* v : in) total += v->size();
        Filled<T> buf(total);
        const std::vector<std::size_t> start = radix_pass(from, 16, buf);
        for (std::vector<T>* v : in) std::vector<T>().swap(*v);
        out.resize(total);
        std::vector<std::size_t> buckets;  // the high digits present
        for (std::size_t g = 0; g + 1 < start.size(); ++g)
            if (start[g + 1] > start[g]) buckets.push_back(g);
        std::vector<std::vector<T>> scratch(static_cast<std::size_t>(n_threads_));
        parallel_for(static_cast<index_t>(buckets.size()), n_threads_, [&](index_t b, int worker) {
            const std::size_t lo = start[buckets[b]], hi = start[buckets[b] + 1];
            std::vector<T>& tmp = scratch[worker];
            if (tmp.size() < hi - lo) tmp.resize(hi - lo);
            byte_pass(buf.data() + lo, hi - lo, 0, tmp.data());
            byte_pass(tmp.data(), hi - lo, 8, out.data() + lo);
        });
    }

    /// One stable counting pass of n entries from `in` to `out` on the 8-bit digit at `shift` of
    /// the diameter's bits.
    template <typename T>
    static void byte_pass(const T* in, std::size_t n, int shift, T* out) {
        std::size_t pos[256] = {};
        for (std::size_t t = 0; t < n; ++t) ++pos[(diameter_bits(in[t]) >> shift) & 0xff];
        std::size_t at = 0;
        for (std::size_t& p : pos) {
            const std::size_t c = p;
            p = at;
            at += c;
        }
        for (std::size_t t = 0; t < n; ++t)
            out[pos[(diameter_bits(in[t]) >> shift) & 0xff]++] = in[t];
    }

    /// One stable counting pass on the 16-bit digit at `shift` of the diameter from the
    /// concatenation of `in` into `out` (of the total size); returns where each digit's entries
    /// start in out (65,537 offsets, the last the total).
    template <typename T>
    std::vector<std::size_t> radix_pass(const std::vector<const std::vector<T>*>& in, int shift,
                                        Filled<T>& out) const {
        constexpr std::size_t kDigits = 65536;
        auto digit = [shift](const T& x) { return (diameter_bits(x) >> shift) & 0xffff; };
        const std::size_t total = out.size();
        const index_t ranges = total < 4096 ? 1 : n_threads_;
        // visit the entries [lo, hi) of the concatenation
        auto visit = [&](std::size_t lo, std::size_t hi, auto&& f) {
            std::size_t start = 0;
            for (const std::vector<T>* v : in) {
                const std::size_t end = start + v->size();
                for (std::size_t t = std::max(lo, start); t < std::min(hi, end); ++t)
                    f((*v)[t - start]);
                start = end;
            }
        };
        std::vector<std::vector<std::size_t>> count(static_cast<std::size_t>(ranges),
                                                    std::vector<std::size_t>(kDigits, 0));
        auto lo_of = [&](index_t r) { return total * static_cast<std::size_t>(r) / ranges; };
        parallel_for(ranges, n_threads_, [&](index_t r, int) {
            visit(lo_of(r), lo_of(r + 1), [&](const T& x) { ++count[r][digit(x)]; });
        });
        // exclusive offsets: by digit, then by range within a digit
        std::vector<std::size_t> start(kDigits + 1);
        std::size_t at = 0;
        for (std::size_t g = 0; g < kDigits; ++g) {
            start[g] = at;
            for (index_t r = 0; r < ranges; ++r) {
                const std::size_t c = count[r][g];
                count[r][g] = at;
                at += c;
            }
        }
        start[kDigits] = at;
        parallel_for(ranges, n_threads_, [&](index_t r, int) {
            std::vector<std::size_t>& pos = count[r];
            visit(lo_of(r), lo_of(r + 1), [&](const T& x) { out[pos[digit(x)]++] = x; });
        });
        return start;
    }

    index_t find(index_t v) {
        while (parent_[v] != v) {
            parent_[v] = parent_[parent_[v]];
            v = parent_[v];
        }
        return v;
    }

    /// Scratch chains of one stage (the two stages of the pipeline run on different threads).
    struct Scratch {
        Chain bnd, tmp, kill_tmp;
    };

    /// A k-simplex x born with a zero boundary, as the lower stage hands it to add_top: the
    /// diameters of its facets and, when the lower stage scanned, the first vertices w
    /// (increasing, at most kCandidates) for which x + w is complete when x is taken with x its
    /// latest facet; `more` when the list may have been cut short. n_cand = -1 when it did not
    /// scan: on one thread (add_top runs at once, and leftover scans the bit sets of the edges
    /// taken, which are then current), or on two when the upper stage waited for work.
    static constexpr int kCandidates = 2;
    struct Top {
        Cell x;
        float facet_diam[kMaxDim + 1];
        index_t cand[kCandidates];
        int n_cand;
        bool more;
    };
    static constexpr std::size_t kBlock = 2048;   // top simplices handed over at once
    static constexpr std::size_t kScanQueue = 4;  // see emit_top

    std::size_t size_of(int d) const { return d == 1 ? edges_.size() : cells_[d].size(); }
    /// The diameter of the i-th d-simplex in filtration order.
    float diam_at(int d, std::size_t i) const {
        return d == 1 ? unpack_edge(edges_[i]).diam : cells_[d][i].diam;
    }

    /// The lower stage: the simplices of degrees 1..k in filtration order, all but the top
    /// degree's reduction (H0, the classes of degrees 1..k-1, the boundaries of the k-simplices
    /// and the search for their cofaces' vertices). The top degree's reduction is handed over in
    /// blocks (to_upper).
    void run_lower() {
        constexpr std::size_t kAhead = 8;  // the facets' classes are requested this far ahead
        std::vector<std::size_t> pos(static_cast<std::size_t>(k_) + 1, 0);
        for (std::uint64_t step = 0;; ++step) {
            if ((step & 4095) == 0) {
                detail::maybe_poll_interrupt();  // Ctrl-C (main thread only)
                if (stop_.load(std::memory_order_relaxed)) return;
            }
            int d = 0;
            for (int e = 1; e <= k_; ++e)
                if (pos[e] < size_of(e) && (d == 0 || diam_at(e, pos[e]) < diam_at(d, pos[d])))
                    d = e;
            if (d == 0) break;
            const Cell s = d == 1 ? unpack_edge(edges_[pos[1]++]) : cells_[d][pos[d]++];
            if (d >= 2 && pos[d] + kAhead < cells_[d].size()) {
                const key_t ahead = cells_[d][pos[d] + kAhead].key;
                for (int u = 0; u <= d; ++u) degrees_[d - 1].cls.prefetch(omit(ahead, u));
                if (d == k_ && dist_.size() * sizeof(float) >= kPrefetchBytes)
                    prefetch_diameters(ahead);
            }
            if (d == 1 && pos[1] + kAhead < edges_.size()) {  // the bit set words it will set
                const key_t ahead = unpack_edge(edges_[pos[1] + kAhead]).key;
                const auto i = static_cast<std::size_t>(vertex_of(ahead, 0));
                const auto j = static_cast<std::size_t>(vertex_of(ahead, 1));
                prefetch_line(&older_[i * words_ + j / 64]);
                prefetch_line(&older_[j * words_ + i / 64]);
                prefetch_line(&older_[i * words_]);  // where the coface scan starts
                prefetch_line(&older_[j * words_]);
            }
            if (d == 1)
                add_edge(s);
            else
                add_simplex(d, s);
        }
        to_upper();
    }

    /// The two stages on two threads: the lower one on a helper thread, add_top on the calling
    /// thread (which polls for Ctrl-C), joined by a queue of blocks. Both see the same sequence
    /// of top simplices as run_lower alone, so the result is the same.
    void run_pipelined() {
        pipelined_ = true;
        std::exception_ptr lower_error;
        std::thread lower([&] {
            try {
                run_lower();
            } catch (...) {
                lower_error = std::current_exception();
            }
            std::lock_guard<std::mutex> lock(queue_mutex_);
            lower_done_ = true;
            queue_cv_.notify_all();
        });
        try {
            std::vector<Top> block;
            for (;;) {
                {
                    std::unique_lock<std::mutex> lock(queue_mutex_);
                    while (!queue_cv_.wait_for(lock, interrupt_poll_interval,
                                               [&] { return !queue_.empty() || lower_done_; })) {
                        lock.unlock();
                        detail::maybe_poll_interrupt();  // Ctrl-C while the lower stage works
                        lock.lock();
                    }
                    if (queue_.empty()) break;
                    if (block.capacity() > 0) spare_.push_back(std::move(block));  // reduced
                    block = std::move(queue_.front());
                    queue_.pop_front();
                    queued_.store(queue_.size(), std::memory_order_relaxed);
                    queue_cv_.notify_all();
                }
                reduce_block(block);
                block.clear();  // (its storage goes back to the lower stage)
            }
        } catch (...) {
            {
                std::lock_guard<std::mutex> lock(queue_mutex_);
                stop_ = true;
                queue_cv_.notify_all();
            }
            lower.join();
            throw;
        }
        lower.join();
        if (lower_error) std::rethrow_exception(lower_error);
    }

    /// Hands the current block of top simplices to add_top: at once on one thread, through the
    /// queue (at most kMaxBlocks waiting) on two.
    void to_upper() {
        if (block_.empty()) return;
        if (!pipelined_) {
            reduce_block(block_);
            block_.clear();
            return;
        }
        constexpr std::size_t kMaxBlocks = 16;
        std::unique_lock<std::mutex> lock(queue_mutex_);
        queue_cv_.wait(lock, [&] { return queue_.size() < kMaxBlocks || stop_; });
        if (stop_) return;
        queue_.push_back(std::move(block_));
        queued_.store(queue_.size(), std::memory_order_relaxed);
        queue_cv_.notify_all();
        // a block the upper stage has reduced, when there is one (fresh storage of this size
        // comes from the system, page by page)
        if (spare_.empty()) {
            block_ = std::vector<Top>();
            block_.reserve(kBlock);
        } else {
            block_ = std::move(spare_.back());
            spare_.pop_back();
        }
    }

    /// x (degree k) is born with a zero boundary: its facets' diameters and, when this stage
    /// scans (see the file comment; decided per block), the first vertices w of its cofaces
    /// entering with it (the common neighbours of x's vertices by the edges taken so far, which
    /// are all edges up to diam(x), 64 at a time), then hand it on.
    void emit_top(const Cell& x) {
        const int count = k_ + 1;
        Top t;
        t.x = x;
        index_t v[kMaxDim + 1];
        for (int p = 0; p < count; ++p) v[p] = vertex_of(x.key, p);
        facet_diameters(v, t.facet_diam);
        if (!pipelined_) {  // one thread: add_top at once, its scan sees exactly the edges taken
            t.n_cand = -1;
            t.more = false;
            add_top(t);
            return;
        }
        // (for k = 1 the lower stage always scans: its rows of the bit sets and of the distances
        // are in cache from add_edge; the upper stage's scan of a block cost several times more on
        // Gaussian N = 5000, and it would need ready() for every vertex). For k >= 2 the lower
        // stage scans only when the upper one is well behind (more than 4 blocks waiting): with
        // the threshold at 1 block o3_1024's lower stage (its critical path) kept more of the
        // scans, 8 % slower on two threads; sphere_3_192's upper stage stays behind (its queue is
        // full) and leaves them to the lower stage either way.
        if (block_.empty())
            scan_here_ = k_ == 1 || queued_.load(std::memory_order_relaxed) > kScanQueue;
        if (!scan_here_) {  // the upper stage scans (it waits for work)
            t.n_cand = -1;
            t.more = false;
            block_.push_back(t);
            if (block_.size() == kBlock) to_upper();
            return;
        }
        t.n_cand = 0;
        t.more = false;
        const std::uint64_t* rows[kMaxDim + 1];
        for (int p = 0; p < count; ++p) rows[p] = &older_[static_cast<std::size_t>(v[p]) * words_];
        for (std::size_t q = 0; q < words_ && !t.more; ++q) {
            std::uint64_t bits = rows[0][q];
            for (int p = 1; p < count; ++p) bits &= rows[p][q];
            while (bits) {
                const index_t w = static_cast<index_t>(q * 64) + __builtin_ctzll(bits);
                bits &= bits - 1;
                if (count > 2 && !ready(t, v, w)) continue;
                t.cand[t.n_cand++] = w;
                if (t.n_cand == kCandidates) {  // there may be more
                    t.more = true;
                    break;
                }
            }
        }
        block_.push_back(t);
        if (block_.size() == kBlock) to_upper();
    }

    /// The diameters of the facets of the top simplex on v[0..k] (facet u omits v[u]): the
    /// longest of its edges that avoid v[u], each edge read once. Written out per degree: the
    /// loop over (u, a, b) that tested a != u and b != u held 21-60 % of the engine's mispredicted
    /// branches in -O2 builds (o3_1024, gauss2000; cachegrind); at -O3, 7-12 % fewer cycles.
    void facet_diameters(const index_t* v, float* out) const {
        if (k_ == 1) {
            out[0] = out[1] = 0.0f;
        } else if (k_ == 2) {
            out[0] = dist(v[1], v[2]);
            out[1] = dist(v[0], v[2]);
            out[2] = dist(v[0], v[1]);
        } else {
            const float d01 = dist(v[0], v[1]), d02 = dist(v[0], v[2]), d03 = dist(v[0], v[3]);
            const float d12 = dist(v[1], v[2]), d13 = dist(v[1], v[3]), d23 = dist(v[2], v[3]);
            out[0] = std::max(d12, std::max(d13, d23));
            out[1] = std::max(d02, std::max(d03, d23));
            out[2] = std::max(d01, std::max(d03, d13));
            out[3] = std::max(d01, std::max(d02, d12));
        }
    }

    /// Starts loading the distances facet_diameters will read for the top simplex `key`
    /// (o3_4096: its 64 MB matrix misses the cache).
    void prefetch_diameters(key_t key) const {
        const float* row[kMaxDim] = {};
        for (int p = 0; p < k_; ++p)
            row[p] =
                &dist_[static_cast<std::size_t>(vertex_of(key, p)) * static_cast<std::size_t>(n_)];
        if (k_ == 2) {
            prefetch_line(row[0] + vertex_of(key, 1));
            prefetch_line(row[0] + vertex_of(key, 2));
            prefetch_line(row[1] + vertex_of(key, 2));
        } else if (k_ == 3) {
            const index_t v1 = vertex_of(key, 1), v2 = vertex_of(key, 2), v3 = vertex_of(key, 3);
            prefetch_line(row[0] + v1);
            prefetch_line(row[0] + v2);
            prefetch_line(row[0] + v3);
            prefetch_line(row[1] + v2);
            prefetch_line(row[1] + v3);
            prefetch_line(row[2] + v3);
        }
    }

    /// Is the coface x + w complete when x is taken, x its latest facet (w not in x)? From the
    /// distances alone, so that either stage may ask.
    bool ready(const Top& t, const index_t* v, index_t w) const {
        return k_ == 1 ? ready_n<2>(t, v, w) : k_ == 2 ? ready_n<3>(t, v, w) : ready_n<4>(t, v, w);
    }
    /// ready for top simplices of `count` vertices (the loops unrolled).
    template <int count>
    bool ready_n(const Top& t, const index_t* v, index_t w) const {
        if (count == 2) return edge_before(v[0], w, t.x) && edge_before(v[1], w, t.x);
        float dw[kMaxDim + 1];
        for (int p = 0; p < count; ++p) {
            dw[p] = dist(v[p], w);  // row v[p]: the same rows for every w
            if (!(dw[p] <= t.x.diam)) return false;
        }
        for (int u = 0; u < count; ++u) {
            float f = t.facet_diam[u];
            for (int p = 0; p < count; ++p)
                if (p != u) f = std::max(f, dw[p]);
            // a facet of equal diameter comes first iff it is smaller in colex order, i.e.
            // iff w < v[u] (the two differ in w against v[u] only)
            if (f == t.x.diam && !(w < v[u])) return false;
        }
        return true;
    }

    /// Is the edge (a, w) taken before the edge x (filtration order: diameter, then colex)?
    bool edge_before(index_t a, index_t w, const Cell& x) const {
        const float d = dist(a, w);
        const key_t key = (static_cast<key_t>(std::max(a, w)) << 16) | std::min(a, w);
        return d < x.diam || (d == x.diam && key < x.key);
    }

    /// Sets a bit of older_ (the upper stage may read the word meanwhile: atomic, relaxed; only
    /// this thread writes).
    void set_bit(std::size_t word, index_t bit) {
        const std::uint64_t w = __atomic_load_n(&older_[word], __ATOMIC_RELAXED);
        __atomic_store_n(&older_[word], w | (std::uint64_t{1} << bit), __ATOMIC_RELAXED);
    }

    void add_edge(const Cell& s) {
        const index_t i = vertex_of(s.key, 0), j = vertex_of(s.key, 1);
        const index_t a = find(i), b = find(j);
        if (a != b) {
            parent_[std::max(a, b)] = std::min(a, b);  // the root is its component's least vertex
            if (s.diam > 0.0f) {
                bars_[0].push_back({0.0f, s.diam});
                if (pairs_) (*pairs_)[0].push_back({std::max(a, b), -1, i, j});
            }
        } else if (k_ == 1) {
            emit_top(s);
        } else {
            make_live(1, s);
        }
        set_bit(static_cast<std::size_t>(i) * words_ + static_cast<std::size_t>(j >> 6), j & 63);
        set_bit(static_cast<std::size_t>(j) * words_ + static_cast<std::size_t>(i >> 6), i & 63);
    }

    void add_simplex(int d, const Cell& s) {
        Degree& below = degrees_[d - 1];
        Scratch& sc = lower_scratch_;
        sc.bnd.clear();
        for (int u = 0; u <= d; ++u) {
            const Chain* c = below.cls.find(omit(s.key, u));
            if (c == nullptr) continue;
            add_chains(sc.bnd, *c, sc.tmp);
            sc.bnd.swap(sc.tmp);
        }
        if (!sc.bnd.empty()) {
            index_t v[kMaxDim + 1];
            for (int p = 0; p <= d; ++p) v[p] = vertex_of(s.key, p);
            kill(d - 1, sc.bnd, s.diam, v, d + 1, sc);
        } else if (d == k_) {
            emit_top(s);
        } else {
            make_live(d, s);
        }
    }

    void make_live(int d, const Cell& s) {
        degrees_[d].cls[s.key] = Chain{s};
        Live& l = degrees_[d].live[s.key];
        l.diam = s.diam;
        l.holders.assign(1, s.key);
    }

    /// make_live for the top degree: the class goes to a slot of top_cls_ (its holders entry is
    /// the packed reference).
    ClassRef make_live_top(const Cell& s) {
        const ClassRef r = top_cls_.add(s);
        Live& l = degrees_[k_].live[s.key];
        l.diam = s.diam;
        l.holders.assign(1, ClassSlab::pack(r));
        return r;
    }

    /// The latest simplex j of the non-zero boundary b (degree d) dies at `death`, killed by the
    /// simplex on the vertices killer[0..count-1]; every class holding j becomes class + b.
    /// (Holders are keys, or packed references into top_cls_ in the top degree.)
    void kill(int d, const Chain& b, float death, const index_t* killer, int count, Scratch& sc) {
        Degree& g = degrees_[d];
        const Cell j = b.back();
        if (j.diam < death) {
            bars_[d].push_back({j.diam, death});
            if (pairs_) {
                const auto bo = edge_of(j.key, d + 1);
                const auto de = longest_edge(dist_.data(), n_, killer, count);
                (*pairs_)[d].push_back({bo[0], bo[1], de[0], de[1]});
            }
        }
        std::vector<key_t> holders;
        {
            Live* l = g.live.find(j.key);
            holders.swap(l->holders);
            g.live.erase(j.key);
        }
        const bool top = d == k_;
        for (const key_t z : holders) {
            Chain* c = top ? top_cls_.find(ClassSlab::unpack(z)) : g.cls.find(z);
            if (c == nullptr ||
                !std::binary_search(c->begin(), c->end(), j,
                                    [](const Cell& x, const Cell& y) { return earlier(x, y); }))
                continue;  // a stale or repeated entry
            add_chains(*c, b, sc.kill_tmp);
            // the entries of b that z did not hold are new: z joins their holders
            std::size_t s = 0;
            for (const Cell& a : b) {
                while (s < c->size() && earlier((*c)[s], a)) ++s;
                if (a.key != j.key && !(s < c->size() && (*c)[s].key == a.key))
                    g.live.find(a.key)->holders.push_back(z);
            }
            if (!sc.kill_tmp.empty())
                c->swap(sc.kill_tmp);
            else if (top)
                top_cls_.erase(ClassSlab::unpack(z));
            else
                g.cls.erase(z);
        }
    }

    /// add_top for each of a block of top simplices, in order, polling for Ctrl-C; the lists of
    /// the facets a few simplices ahead are requested from memory first (the look-ups of
    /// add_top wait on memory, mostly misses of the faces_ table).
    void reduce_block(const std::vector<Top>& block) {
        constexpr std::size_t kAhead = 8;
        const int count = k_ + 1;
        const bool ahead = faces_.worth_prefetching();
        for (std::size_t t = 0; t < block.size(); ++t) {
            if ((t & 255) == 0) detail::maybe_poll_interrupt();  // Ctrl-C
            if (ahead && t + kAhead < block.size())
                for (int u = 0; u < count; ++u) faces_.prefetch(omit(block[t + kAhead].x.key, u));
            add_top(block[t]);
        }
    }

    /// The upper stage: x (degree k) is born; the cofaces x + w entering with it are reduced (see
    /// the file comment). Touches only the top degree's state, faces_ and the seed marks.
    void add_top(const Top& t) {
        if (k_ == 1)
            add_top_n<2>(t);
        else if (k_ == 2)
            add_top_n<3>(t);
        else
            add_top_n<4>(t);
    }
    /// add_top for top simplices of `count` vertices (the loops over their facets unrolled).
    template <int count>
    void add_top_n(const Top& t) {
        const Cell& x = t.x;
        index_t v[kMaxDim + 2];  // x's vertices, then the vertex of a killing coface
        for (int p = 0; p < count; ++p) v[p] = vertex_of(x.key, p);
        Scratch& sc = upper_scratch_;

        // the active simplices sharing a facet with x, grouped by the vertex they add
        ++stamp_;
        std::size_t n_seeds = 0;
        key_t faces[count];
        unsigned held = 0;  // bit u: the list of facet u may hold links (most hold none)
        for (int u = 0; u < count; ++u) {
            faces[u] = omit(x.key, u);
            held |= static_cast<unsigned>(faces_.may_hold(faces[u])) << u;
        }
        while (held != 0) {
            const int u = __builtin_ctz(held);
            held &= held - 1;
            const key_t face = faces[u];
            std::vector<Link>* list = faces_.find(face);
            if (list == nullptr) continue;
            for (std::size_t q = 0; q < list->size();) {
                const Link l = (*list)[q];
                if (!(dist(v[u], l.vertex) <= x.diam)) {  // x + w is not complete yet
                    ++q;
                    continue;
                }
                if (!top_cls_.active(l.cls)) {  // no longer active: drop the link
                    (*list)[q] = list->back();
                    list->pop_back();
                    continue;
                }
                ++q;
                if (stamp_of_[l.vertex] != stamp_) {
                    stamp_of_[l.vertex] = stamp_;
                    group_of_[l.vertex] = static_cast<std::int64_t>(n_seeds);
                    groups_[n_seeds].clear();
                    seeds_[n_seeds++] = l.vertex;
                }
                groups_[group_of_[l.vertex]].push_back(l.cls);
            }
            if (list->empty()) faces_.emptied(face);
        }

        if (n_seeds == 0) {  // x is the only active facet of its cofaces: one of them kills it
            if (leftover<count>(t, v) < 0) register_faces(x, make_live_top(x));
            return;
        }
        const ClassRef rx = make_live_top(x);
        for (std::size_t g = 0; g < n_seeds; ++g) {
            if (!ready_n<count>(t, v, seeds_[g])) continue;
            // the boundary cls(x) + sum of cls(y), y in the group: mostly zero (once x has died
            // its class is written in older simplices, often those of the group), so the sum of
            // the group is formed first, and copied only when one y is not enough
            const Chain* sum = nullptr;  // null: zero
            for (const ClassRef y : groups_[g]) {
                const Chain* c = top_cls_.find(y);
                if (c == nullptr) continue;
                if (sum == nullptr) {
                    sum = c;
                    continue;
                }
                add_chains(*sum, *c, sc.tmp);
                sc.bnd.swap(sc.tmp);
                sum = &sc.bnd;
            }
            if (sum != nullptr && sum->empty()) sum = nullptr;
            const Chain* cx = top_cls_.find(rx);
            if (sum == nullptr && cx == nullptr) continue;
            if (sum != nullptr && cx != nullptr) {
                if (same_chain(*sum, *cx)) continue;
                add_chains(*sum, *cx, sc.tmp);
                sc.bnd.swap(sc.tmp);
            } else if (sum != &sc.bnd) {
                sc.bnd = sum != nullptr ? *sum : *cx;
            }
            v[count] = seeds_[g];
            kill(k_, sc.bnd, x.diam, v, count + 1, sc);
        }
        const Chain* cx = top_cls_.find(rx);
        if (cx == nullptr) return;
        if ((v[count] = leftover<count>(t, v)) >= 0) {  // kills what is left of cls(x)
            sc.bnd = *cx;
            kill(k_, sc.bnd, x.diam, v, count + 1, sc);
            return;
        }
        register_faces(x, rx);
    }

    /// The least vertex w, not a seed, whose coface x + w enters with x, or -1: from the lower
    /// stage's candidates, then (when all of those are seeds and the list was cut short, or when
    /// there are none) by a scan of the bit sets of the edges after the last candidate. Every edge
    /// before x is in them; on two threads they may also hold edges taken after x, so every vertex
    /// found is tested (ready) unless the bit sets are exact (one thread, k = 1: the edges taken
    /// are exactly those before x, so w completes the coface).
    template <int count>
    index_t leftover(const Top& t, const index_t* v) const {
        index_t from = 0;
        if (t.n_cand >= 0) {
            for (int c = 0; c < t.n_cand; ++c)
                if (stamp_of_[t.cand[c]] != stamp_) return t.cand[c];
            if (!t.more) return -1;
            from = t.cand[kCandidates - 1] + 1;
        }
        const bool exact = count == 2 && !pipelined_;
        const std::uint64_t* rows[kMaxDim + 1];
        for (int p = 0; p < count; ++p) rows[p] = &older_[static_cast<std::size_t>(v[p]) * words_];
        for (std::size_t q = static_cast<std::size_t>(from) / 64; q < words_; ++q) {
            std::uint64_t bits = __atomic_load_n(&rows[0][q], __ATOMIC_RELAXED);
            for (int p = 1; p < count; ++p) bits &= __atomic_load_n(&rows[p][q], __ATOMIC_RELAXED);
            if (q == static_cast<std::size_t>(from) / 64) bits &= ~std::uint64_t{0} << (from & 63);
            while (bits) {
                const index_t w = static_cast<index_t>(q * 64) + __builtin_ctzll(bits);
                bits &= bits - 1;
                if (stamp_of_[w] != stamp_ && (exact || ready_n<count>(t, v, w))) return w;
            }
        }
        return -1;
    }

    void register_faces(const Cell& x, ClassRef r) {
        const int count = k_ + 1;
        for (int u = 0; u < count; ++u)
            faces_[omit(x.key, u)].push_back({r, static_cast<std::int32_t>(vertex_of(x.key, u))});
    }

    index_t n_;
    int k_;
    float thr_;
    int n_threads_;
    std::vector<std::vector<PairEdges>>* pairs_;  // null: no pairs recorded
    Filled<float> dist_;
    Filled<std::uint64_t> edges_;      // the edges in filtration order, packed
    std::vector<Filled<Cell>> cells_;  // cells_[d]: the d-simplices, d >= 2, in that order
    std::vector<std::vector<Bar>> bars_;
    std::vector<index_t> parent_;
    std::vector<std::uint64_t> older_;  // row v: bit set of v's neighbours by the edges taken
    std::size_t words_ = 0;
    std::vector<Degree> degrees_;
    ClassSlab top_cls_;  // the classes of the top degree (degrees_[k_].cls stays empty)
    FaceLists faces_;    // (k-1)-face -> active k-simplices containing it
    std::vector<std::uint64_t> stamp_of_;
    std::vector<std::int64_t> group_of_;
    std::uint64_t stamp_ = 0;
    std::vector<index_t> seeds_;  // the first n_seeds entries: this x's seeds, in order
    std::vector<std::vector<ClassRef>> groups_;
    Scratch lower_scratch_, upper_scratch_;
    // the pipeline between the stages
    bool pipelined_ = false;
    std::vector<Top> block_;  // being filled by the lower stage
    std::deque<std::vector<Top>> queue_;
    std::vector<std::vector<Top>> spare_;  // reduced blocks, empty, for the lower stage to refill
    std::mutex queue_mutex_;
    std::condition_variable queue_cv_;
    bool lower_done_ = false;
    std::atomic<bool> stop_{false};
    std::atomic<std::size_t> queued_{0};  // blocks in the queue
    bool scan_here_ = false;  // the lower stage scans for the cofaces of the current block
};

}  // namespace

std::vector<std::vector<Bar>> rips_barcodes_homology(const float* D, index_t n, int maxdim,
                                                     float threshold, int n_threads,
                                                     std::vector<std::vector<PairEdges>>* pairs) {
    const char* op = "vr_barcode";
    LATENTBRIDGE_CHECK(n >= 0 && n < 65536, op,
                       "the homology engine takes fewer than 65536 points");
    LATENTBRIDGE_CHECK(maxdim >= 1 && maxdim <= kMaxDim, op,
                       "the homology engine takes maxdim in [1, 3]");
    LATENTBRIDGE_CHECK(threshold >= 0.0f, op, "threshold must be non-negative (not NaN)");
    if (pairs) pairs->assign(static_cast<std::size_t>(maxdim) + 1, {});
    if (n == 0) return std::vector<std::vector<Bar>>(static_cast<std::size_t>(maxdim) + 1);
    return RipsHomology(D, n, maxdim, threshold, n_threads, pairs).run();
}

}  // namespace latentbridge
