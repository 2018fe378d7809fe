// Vietoris-Rips persistence after Bauer's Ripser (J. Appl. Comput. Topol. 2021), written here
// from the paper: simplices are numbered in the combinatorial number system (colex order),
// coboundaries are enumerated on the fly from the distance matrix, H0 comes from union-find over
// the sorted edges, and every higher degree is reduced as cohomology in reverse filtration order
// with clearing and the emergent-pair shortcut. The filtration is ordered by diameter, ties by
// reverse colex index, which makes the order total and the shortcut sound.
//
// The working column of a reduction is a merge of sorted runs, one per coboundary added, each
// enumerated lazily in windows of diameters of doubling width, so a pivot is found after looking
// only at cofacets that can precede it, at O(log runs) per entry.
//
// The R-Cross-Barcode_1 path reduces the relative cochains of the cone form of Barannikov et al.
// (notes/rtd.md section 3.3): the same Reducer, with a cofacet enumerator that lists, for an edge
// (i, j), its cone triangle (i, j, c) at w_ij and the ordinary triangles (i, j, k) at their
// m-diameter. Almost every edge is a zero-persistence pair (31.1 million of 31.15 at n = 10,000):
// those are found in parallel before the sequential pass and never stored, the pivot lookups
// recompute them from the triangle's edges (ConeComplex::implicit_pivot), so the pass and its
// pivot table hold only the reduced columns. On two or more threads that pass runs in rounds
// (r_cross_cohomology): the threads take a window of columns further side by side against the
// stored columns, and the calling thread concludes them in processing order.
// The bars of this complex live among the shortest edges, so each vertex keeps its nearest
// neighbours under m sorted, and a window of cofacets of (i, j) is read from a prefix of the
// lists of i and j instead of a scan of all n vertices (the scan remains past the lists' reach).
#include "latentbridge/rips.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "latentbridge/detail/check.hpp"
#include "latentbridge/detail/parallel.hpp"

#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#include <emmintrin.h>
#define LATENTBRIDGE_RIPS_SSE2 1
#endif

namespace latentbridge {
namespace {

using simplex_t = std::int64_t;
constexpr float kInf = std::numeric_limits<float>::infinity();

/// A simplex of the filtration: its diameter and its colex index.
struct Entry {
    float diam;
    simplex_t idx;
};

/// A limit on the CPU time of a reduction that another engine can take over, polled between
/// columns and during long ones (the reduction then throws DeadlineExpired). CPU rather than wall
/// time, so that a loaded machine does not change the choice of engine; the time of the threads
/// of this reduction only (each charges its own thread clock, Reducer::poll), so that problems
/// reduced side by side do not count. The thread that sets the deadline is charged from then on.
struct Deadline {
    /// Projections are measured against budget_seconds (hopeless), the time charged against
    /// limit_seconds (charge).
    Deadline(double budget_seconds, double limit_seconds)
        : start(now()), budget(budget_seconds), limit(limit_seconds) {}
    static double now() {
#ifdef CLOCK_THREAD_CPUTIME_ID
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
#else
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
            .count();
#endif
    }
    /// Adds the calling thread's CPU time since *mark (a value of now() on this thread) and moves
    /// the mark; true when the reduction's threads together have spent the limit.
    bool charge(double& mark) const {
        const double t = now();
        const auto ns = static_cast<std::int64_t>(1e9 * (t - mark));
        mark = t;
        return 1e-9 * static_cast<double>(spent_ns.fetch_add(ns, std::memory_order_relaxed) + ns) >
               limit;
    }
    /// True when a reduction is hopeless: past 1/16 of the budget, its CPU time so far (charged
    /// time less `base`, the setup's), spread over the `done` of its `total` columns, projects
    /// past the budget. Where the columns grow costlier as it goes (noise against a plane, n =
    /// 500: the first 32 of 624 columns take 32 ms, the first 256 take 8.7 s) the projection runs
    /// low, so the hand-over comes later than it could; a reduction whose first columns were its
    /// costliest could be handed over though it would have ended within the budget (both engines
    /// are exact: only time is at stake). Without it the whole budget was spent first (0.5 s of
    /// CPU at n = 500).
    bool hopeless(double base, std::size_t done, std::size_t total) const {
        const double spent =
            1e-9 * static_cast<double>(spent_ns.load(std::memory_order_relaxed)) - base;
        return done > 0 && spent > budget / 16 &&
               spent * static_cast<double>(total) > budget * static_cast<double>(done);
    }
    double start;  // now() of the thread that set the deadline, when it was set
    double budget, limit;
    mutable std::atomic<std::int64_t> spent_ns{0};
};
struct DeadlineExpired {};
/// Thrown by the helpers of a parallel reduction once another thread has failed (Reducer::poll).
struct Abandoned {};

/// The simplices behind a bar: the column's (birth) and the pivot's (death; -1 when essential).
using SimplexPair = std::array<simplex_t, 2>;

/// True when a comes later than b in the filtration (larger diameter; on ties, smaller index).
/// Columns are reduced in this order, and as a heap comparator it puts the earliest entry on top.
/// Where the compiler has 128-bit integers, one unsigned comparison of (diameter bits, complemented
/// index): diameters are >= 0, whose float bits order like the values (-0.0 masked to +0.0). The
/// sorts of cofacet windows and the merge heap of a reduction branch on this test; the two-branch
/// form added 1.2 M mispredicted branches to an R-Cross reduction at n = 500 (cachegrind), 7-12 %
/// of its time.
inline bool later(const Entry& a, const Entry& b) {
#ifdef __SIZEOF_INT128__
    const auto key = [](const Entry& e) {
        std::uint32_t bits;
        std::memcpy(&bits, &e.diam, sizeof bits);
        return (static_cast<unsigned __int128>(bits & 0x7fffffffu) << 64) |
               ~static_cast<std::uint64_t>(e.idx);
    };
    return key(a) > key(b);
#else
    return a.diam > b.diam || (a.diam == b.diam && a.idx < b.idx);
#endif
}
struct Later {
    bool operator()(const Entry& a, const Entry& b) const { return later(a, b); }
};

/// Binomial coefficients C(x, k) for 0 <= x <= n, 0 <= k <= kmax, checked against int64 overflow.
class Binomial {
   public:
    Binomial(index_t n, int kmax, const char* op)
        : n_(n), table_(static_cast<std::size_t>((kmax + 1) * (n + 1)), 0) {
        constexpr simplex_t kMax = std::numeric_limits<simplex_t>::max();
        for (index_t x = 0; x <= n; ++x) at(x, 0) = 1;
        for (int k = 1; k <= kmax; ++k) {
            for (index_t x = k; x <= n; ++x) {
                const simplex_t a = at(x - 1, k - 1), b = at(x - 1, k);
                if (a > kMax - b)
                    throw std::overflow_error(
                        std::string(op) + ": " + std::to_string(n) + " points are too many for " +
                        "simplices of " + std::to_string(k) + " vertices (their indices overflow " +
                        "64 bits); lower maxdim or the number of points");
                at(x, k) = a + b;
            }
        }
    }
    simplex_t operator()(index_t x, int k) const { return table_[k * (n_ + 1) + x]; }

   private:
    simplex_t& at(index_t x, int k) { return table_[k * (n_ + 1) + x]; }
    index_t n_;
    std::vector<simplex_t> table_;
};

/// Open-addressing hash map (linear probing, key and value side by side) from a pivot's simplex
/// index to the code of its column.
class PivotMap {
   public:
    PivotMap() { rehash(1 << 10); }
    std::int64_t find(simplex_t key) const {
        std::size_t h = mix(key) & mask_;
        while (slots_[h].key != kEmpty) {
            if (slots_[h].key == key) return slots_[h].val;
            h = (h + 1) & mask_;
        }
        return -1;
    }
    void insert(simplex_t key, std::int64_t val) {
        if (2 * (size_ + 1) > slots_.size()) rehash(2 * slots_.size());
        std::size_t h = mix(key) & mask_;
        while (slots_[h].key != kEmpty) h = (h + 1) & mask_;
        slots_[h] = {key, val};
        ++size_;
    }
    void reserve(std::size_t n) {
        std::size_t cap = slots_.size();
        while (cap < 2 * n + 2) cap *= 2;
        if (cap > slots_.size()) rehash(cap);
    }

   private:
    static constexpr simplex_t kEmpty = -1;
    struct Slot {
        simplex_t key;
        std::int64_t val;
    };
    static std::uint64_t mix(simplex_t key) {
        std::uint64_t x = static_cast<std::uint64_t>(key);
        x ^= x >> 31;
        x *= 0x9e3779b97f4a7c15ULL;
        x ^= x >> 29;
        return x;
    }
    void rehash(std::size_t cap) {
        std::vector<Slot> old(cap, Slot{kEmpty, -1});
        old.swap(slots_);
        mask_ = cap - 1;
        size_ = 0;
        for (const Slot& sl : old)
            if (sl.key != kEmpty) insert(sl.key, sl.val);
    }
    std::vector<Slot> slots_;
    std::size_t mask_ = 0, size_ = 0;
};

/// Whether a complex knows the emergent pairs without storing them: Cx::implicit_pivot(idx, cur)
/// gives the code of the column that holds pivot idx when the reduction is at column cur, or -1.
template <typename Cx, typename = void>
struct HasImplicitPivots : std::false_type {};
template <typename Cx>
struct HasImplicitPivots<Cx, std::void_t<decltype(&Cx::implicit_pivot)>> : std::true_type {};

/// Cohomology reduction over Z/2 of the columns of one degree, given a complex Cx that provides
/// threshold(), for_cofacets(s, lo, hi, f) (the cofacets with a diameter in (lo, hi], in any
/// order), zero_cofacet(s, z) (for reduce(): the earliest cofacet when it has the diameter of s;
/// reduce_one leaves the emergent pairs to the caller), diameter(idx),
/// and dense_slot(idx) / dense_size() for pivots better kept in an array than in the hash map;
/// optionally implicit_pivot (HasImplicitPivots) for pivots in neither.
/// A pivot's code is a column number (>= 0) or, for a column that is a single coboundary (an
/// emergent pair), -2 - the index of its simplex.
/// The windows of a coboundary's enumeration: the first one's width follows the recent gaps
/// between a column and its pivot, but not below gap_min times the threshold; each next one is
/// `growth` times wider.
struct WindowPolicy {
    float gap_min = 1e-3f;
    float growth = 2.0f;
};

template <typename Cx>
class Reducer {
   public:
    explicit Reducer(const Cx& cx, const Deadline* deadline = nullptr, WindowPolicy windows = {})
        : cx_(cx),
          dense_(cx.dense_size(), -1),
          deadline_(deadline),
          mark_(deadline ? deadline->start : 0.0),
          growth_(windows.growth) {
        const float thr = cx.threshold();
        gap_min_ = (thr > 0.0f && thr < kInf) ? thr * windows.gap_min : 1.0f;
        gap_ = (thr > 0.0f && thr < kInf) ? thr * 0.02f : kInf;
    }

    /// Reduces `columns` (in processing order: later in the filtration first) and appends the
    /// bars of positive length to `bars` (death +inf for a column that reduces to zero).
    void reduce(const std::vector<Entry>& columns, std::vector<Bar>& bars) {
        table_.reserve(columns.size());
        for (std::size_t c = 0; c < columns.size(); ++c) {
            const Entry s = columns[c];
            Entry z{0.0f, -1};
            if (cx_.zero_cofacet(s, z) && find_pivot(z.idx) == -1) {  // emergent: zero persistence
                insert_pivot(z.idx, -2 - s.idx);
                continue;
            }
            if ((c & 63) == 0) poll();
            reduce_column(s, bars);
        }
    }

    /// Reduces the single column s, the caller having settled that it is not an emergent pair
    /// (columns in processing order); returns its pivot ({s.diam, -1} when it reduces to zero).
    Entry reduce_one(const Entry& s, std::vector<Bar>& bars) {
        poll();
        begin_column(s);
        return reduce_loop(s, bars);
    }

    /// For a parallel reduction: this reducer's speculate() reads the stored columns of `owner`
    /// (which outlives it and stores nothing while others speculate), and its poll() throws
    /// Abandoned once *abort is set. Its deadline is charged with its own thread's time.
    void share_store(const Reducer& owner, const std::atomic<bool>* abort) {
        owner_ = &owner;
        abort_ = abort;
    }
    /// The owner of a parallel reduction: its poll() throws Abandoned once *abort is set.
    void watch(const std::atomic<bool>* abort) { abort_ = abort; }

    /// A column of a parallel reduction between rounds: the coboundaries of its simplex and of
    /// comb (each once) sum to a column whose earliest entry is pivot (idx -1: zero).
    struct Partial {
        Entry pivot{0.0f, -1};
        std::vector<Entry> comb;
        bool begun = false;  // false: not reduced at all yet
    };

    /// Takes column s further, safe on several reducers at once (share_store) as it stores
    /// nothing and appends no bar: adds the stored (and emergent) columns whose pivots its pivot
    /// meets until it meets none or it is zero. Concluded in processing order by conclude().
    void speculate(const Entry& s, Partial& col) {
        current_ = s;
        if (col.begun && (col.pivot.idx < 0 || find_pivot(col.pivot.idx) == -1)) return;
        if (owner_ && deadline_) mark_ = Deadline::now();  // the task may run on a new thread
        poll();
        if (!col.begun) {
            begin_column(s);
        } else {  // from the column past its pivot p (the entries before p cancel), p added away
            const Entry p = col.pivot;
            clear_column();
            const float lo = std::nextafter(p.diam, -kInf);
            open_run(s, lo, &p);
            for (const Entry& e : col.comb) open_run(e, lo, &p);
            work_.assign(col.comb.begin(), col.comb.end());
            add_column(find_pivot(p.idx), p);
        }
        col.begun = true;
        col.pivot = Entry{s.diam, -1};
        col.comb.clear();
        for (std::uint32_t additions = 1;; ++additions) {
            if ((additions & 255) == 0) poll();
            Entry p;
            if (!pivot(p)) break;
            const std::int64_t j = find_pivot(p.idx);
            if (j != -1) {
                add_column(j, p);
                continue;
            }
            compact_work();
            col.comb.assign(work_.begin(), work_.end());
            col.pivot = p;
            break;
        }
        if (owner_ && deadline_ && deadline_->charge(mark_)) throw DeadlineExpired{};
    }

    /// On the owner, for the next column s in processing order, speculated (col.begun): when its
    /// pivot is still free, stores it, appends its bar as reduce_one does, sets *out to the pivot
    /// and returns true; false when a column stored since has taken it (s needs more rounds).
    bool conclude(const Entry& s, const Partial& col, std::vector<Bar>& bars, Entry& out) {
        poll();
        if (col.pivot.idx < 0) {  // a zero column stays zero
            emit(bars, s, kInf, -1);
            out = col.pivot;
            return true;
        }
        current_ = s;
        if (find_pivot(col.pivot.idx) != -1) return false;
        work_.assign(col.comb.begin(), col.comb.end());
        out = store_column(s, col.pivot, bars);
        return true;
    }

    bool is_pivot(simplex_t idx) const { return find_pivot(idx) != -1; }

    /// Records a pair known in advance: column `s` has pivot `idx` without any reduction.
    void preset_emergent(simplex_t idx, simplex_t s) { insert_pivot(idx, -2 - s); }

    /// From now on, every bar appended also appends {its column's simplex, the pivot's simplex
    /// or -1 for an essential class} to *out (null: nothing is recorded).
    void record_pairs(std::vector<SimplexPair>* out) { pairs_out_ = out; }

   private:
    /// The pair recorder: a bar [s, death) and, when asked for, the simplices behind it.
    void emit(std::vector<Bar>& bars, const Entry& s, float death, simplex_t killer) {
        bars.push_back({s.diam, death});
        if (pairs_out_) pairs_out_->push_back({s.idx, killer});
    }

    struct Column {
        Entry s;
        std::int64_t off, len;  // the other simplices of the column's combination, in pool_
    };
    struct Run {
        std::size_t pos, end;  // the unmerged part of the current window, sorted, in entries_
        Entry src;             // the simplex whose coboundary this is
        float hi, width;       // diameters up to hi are enumerated; width of the next window
    };

    /// Reduces column s. The working column is the merge of sorted runs, one per coboundary added,
    /// so a pivot costs O(log runs). Each run enumerates its coboundary lazily, in windows of
    /// diameters of doubling width: a pivot is only compared against entries that can precede it.
    Entry reduce_column(const Entry& s, std::vector<Bar>& bars) {
        begin_column(s);
        return reduce_loop(s, bars);
    }

    void clear_column() {
        entries_.clear();
        runs_.clear();
        heap_.clear();
        work_.clear();
        width0_ = std::max(gap_min_, 0.0625f * gap_);
    }

    /// The working column of s before any addition: its coboundary.
    void begin_column(const Entry& s) {
        current_ = s;
        clear_column();
        open_run(s, -kInf);
    }

    /// Stores the working column (s plus the combination in work_) with its new pivot p.
    Entry store_column(const Entry& s, const Entry& p, std::vector<Bar>& bars) {
        compact_work();
        const std::int64_t off = static_cast<std::int64_t>(pool_.size());
        pool_.insert(pool_.end(), work_.begin(), work_.end());
        insert_pivot(p.idx, new_column(s, off, static_cast<std::int64_t>(work_.size())));
        if (p.diam > s.diam) emit(bars, s, p.diam, p.idx);
        gap_ = std::max(gap_min_, 0.8f * gap_ + 0.2f * (p.diam - s.diam));
        return p;
    }

    /// Adds columns to the working column of s until its pivot is new (stored) or none is left.
    Entry reduce_loop(const Entry& s, std::vector<Bar>& bars) {
        for (std::uint32_t additions = 1;; ++additions) {
            if ((additions & 255) == 0) poll();  // very long columns
            Entry p;
            if (!pivot(p)) {
                emit(bars, s, kInf, -1);
                return Entry{s.diam, -1};
            }
            const std::int64_t j = find_pivot(p.idx);
            if (j != -1) {
                add_column(j, p);
                continue;
            }
            return store_column(s, p, bars);
        }
    }

    void poll() {
        if (abort_ && abort_->load(std::memory_order_relaxed)) throw Abandoned{};
        if (!owner_) detail::maybe_poll_interrupt();  // Ctrl-C (main thread only)
        // the clock is a system call: read it at every 16th poll
        if (deadline_ && (++polls_ & 15) == 0 && deadline_->charge(mark_)) throw DeadlineExpired{};
    }

    static float window_end(float start, float gap, float thr) {
        return start + gap < thr ? start + gap : thr;
    }

    /// The reducer whose stored columns this one reads (share_store).
    const Reducer& store() const { return owner_ ? *owner_ : *this; }

    std::int64_t find_pivot(simplex_t idx) const {
        const Reducer& st = store();
        const std::int64_t slot = cx_.dense_slot(idx);
        const std::int64_t code =
            slot >= 0 ? st.dense_[static_cast<std::size_t>(slot)] : st.table_.find(idx);
        if constexpr (HasImplicitPivots<Cx>::value)
            if (code == -1) return cx_.implicit_pivot(idx, current_);
        return code;
    }

    void insert_pivot(simplex_t idx, std::int64_t code) {
        const std::int64_t slot = cx_.dense_slot(idx);
        if (slot >= 0)
            dense_[static_cast<std::size_t>(slot)] = code;
        else
            table_.insert(idx, code);
    }

    std::int64_t new_column(const Entry& s, std::int64_t off, std::int64_t len) {
        cols_.push_back({s, off, len});
        return static_cast<std::int64_t>(cols_.size()) - 1;
    }

    /// Starts the run of the coboundary of src, restricted to diameters above lo and, with
    /// `after`, to the entries that come after it in the filtration.
    void open_run(const Entry& src, float lo, const Entry* after = nullptr) {
        const float thr = cx_.threshold();
        Run r{0, 0, src, window_end(std::max(lo, src.diam), width0_, thr), width0_};
        if (!fill(r, lo)) return;
        if (after)
            while (!later(entries_[r.pos], *after))
                if (++r.pos == r.end && !next_window(r)) return;
        runs_.push_back(r);
        heap_push({entries_[r.pos], static_cast<std::int64_t>(runs_.size() - 1)});
    }

    /// Enumerates the window after r's current one (widened), past any empty ones; false when
    /// the threshold is passed.
    bool next_window(Run& r) {
        if (!(r.hi < cx_.threshold())) return false;
        const float lo = r.hi;
        r.width *= growth_;
        r.hi = window_end(lo, r.width, cx_.threshold());
        return fill(r, lo);
    }

    /// Enumerates the cofacets of r.src with a diameter in (lo, r.hi], widening the window until
    /// some are found or the threshold is passed; false when none are left.
    bool fill(Run& r, float lo) {
        const float thr = cx_.threshold();
        for (;;) {
            const std::size_t start = entries_.size();
            cx_.for_cofacets(r.src, lo, r.hi, [this](const Entry& e) {
                entries_.push_back(e);
                return true;
            });
            if (entries_.size() > start) {
                std::sort(entries_.begin() + static_cast<std::ptrdiff_t>(start), entries_.end(),
                          [](const Entry& x, const Entry& y) { return later(y, x); });
                r.pos = start;
                r.end = entries_.size();
                return true;
            }
            if (!(r.hi < thr)) return false;
            lo = r.hi;
            r.width *= growth_;
            r.hi = window_end(lo, r.width, thr);
        }
    }

    // A binary min-heap of the runs keyed by their heads (copied in, so comparisons touch only
    // the heap array): the run whose head comes earliest in the filtration is on top.
    struct Head {
        Entry e;
        std::int64_t run;
    };
    static bool earlier(const Head& a, const Head& b) { return later(b.e, a.e); }

    void heap_push(const Head& h) {
        std::size_t t = heap_.size();
        heap_.push_back(h);
        while (t > 0) {
            const std::size_t parent = (t - 1) / 2;
            if (!earlier(h, heap_[parent])) break;
            heap_[t] = heap_[parent];
            t = parent;
        }
        heap_[t] = h;
    }

    /// Replaces the top by h and restores the heap order.
    void heap_replace_top(const Head& h) {
        const std::size_t n = heap_.size();
        std::size_t t = 0;
        for (;;) {
            std::size_t c = 2 * t + 1;
            if (c >= n) break;
            if (c + 1 < n && earlier(heap_[c + 1], heap_[c])) ++c;
            if (!earlier(heap_[c], h)) break;
            heap_[t] = heap_[c];
            t = c;
        }
        heap_[t] = h;
    }

    void heap_pop_top() {
        const Head last = heap_.back();
        heap_.pop_back();
        if (!heap_.empty()) heap_replace_top(last);
    }

    /// Drops the head of the top run, enumerating its next window when its entries run out.
    void advance_top() {
        const std::int64_t id = heap_.front().run;
        Run& r = runs_[static_cast<std::size_t>(id)];
        if (++r.pos < r.end || next_window(r)) {
            heap_replace_top({entries_[r.pos], id});
            return;
        }
        heap_pop_top();
    }

    /// Adds column j, whose pivot p is the working column's (taken out of the merge by pivot()):
    /// the entries of its combination up to p sum to p alone, which cancels the working column's,
    /// so each of its coboundaries is enumerated from after p on.
    void add_column(std::int64_t j, const Entry& p) {
        const float lo = std::nextafter(p.diam, -kInf);
        if (j <= -2) {  // a single coboundary
            const simplex_t idx = -2 - j;
            const Entry e{cx_.diameter(idx), idx};
            open_run(e, lo, &p);
            work_.push_back(e);
            return;
        }
        const Reducer& st = store();
        const Column col = st.cols_[j];
        open_run(col.s, lo, &p);
        work_.push_back(col.s);
        for (std::int64_t t = 0; t < col.len; ++t) {
            const Entry e = st.pool_[col.off + t];
            open_run(e, lo, &p);
            work_.push_back(e);
        }
    }

    /// Earliest entry with odd multiplicity in the merge of the runs, taken out of the merge
    /// (the working column is the rest plus it).
    bool pivot(Entry& out) {
        while (!heap_.empty()) {
            const Entry p = heap_.front().e;
            bool odd = false;
            while (!heap_.empty() && heap_.front().e.idx == p.idx) {
                advance_top();
                odd = !odd;
            }
            if (odd) {
                out = p;
                return true;
            }
        }
        return false;
    }

    /// Sums the recorded combination over Z/2: pairs of equal simplices cancel.
    void compact_work() {
        std::sort(work_.begin(), work_.end(),
                  [](const Entry& a, const Entry& b) { return a.idx < b.idx; });
        std::size_t out = 0;
        for (std::size_t t = 0; t < work_.size();) {
            std::size_t u = t;
            while (u < work_.size() && work_[u].idx == work_[t].idx) ++u;
            if ((u - t) % 2 == 1) work_[out++] = work_[t];
            t = u;
        }
        work_.resize(out);
    }

    const Cx& cx_;
    PivotMap table_;
    std::vector<std::int64_t> dense_;
    std::vector<Column> cols_;
    std::vector<Entry> pool_, work_, entries_;
    std::vector<Run> runs_;
    std::vector<Head> heap_;
    float gap_ = kInf, gap_min_ = 1.0f, width0_ = kInf;
    Entry current_{0.0f, -1};  // the column being reduced
    const Deadline* deadline_;
    double mark_;                     // Deadline::now() when this thread's time was last charged
    const Reducer* owner_ = nullptr;  // share_store
    const std::atomic<bool>* abort_ = nullptr;
    float growth_;  // of the windows (WindowPolicy)
    std::uint32_t polls_ = 0;
    std::vector<SimplexPair>* pairs_out_ = nullptr;
};

// ---- the dense Vietoris-Rips complex ------------------------------------------------------------

class RipsComplex {
   public:
    RipsComplex(const float* D, index_t n, float threshold, int maxdim)
        : n_(n), thr_(threshold), binom_(n, maxdim + 2, "vr_barcode"), dist_(n * n, 0.0f) {
        for (index_t i = 0; i < n; ++i)
            for (index_t j = 0; j < i; ++j) dist_[i * n + j] = dist_[j * n + i] = D[i * n + j];
    }

    void set_dim(int dim) { dim_ = dim; }
    index_t n() const { return n_; }
    bool within(float d) const { return d <= thr_ && d < kInf; }
    float dist(index_t i, index_t j) const { return dist_[i * n_ + j]; }
    simplex_t binom(index_t x, int k) const { return binom_(x, k); }

    /// Vertices of the simplex idx with dim_ + 1 vertices, ascending.
    void vertices(simplex_t idx, int dim, index_t* out) const {
        index_t top = n_;
        for (int k = dim + 1; k >= 1; --k) {
            index_t lo = k - 1, hi = top - 1;
            while (lo < hi) {
                const index_t mid = (lo + hi + 1) / 2;
                if (binom_(mid, k) <= idx)
                    lo = mid;
                else
                    hi = mid - 1;
            }
            out[k - 1] = lo;
            idx -= binom_(lo, k);
            top = lo;
        }
    }

    float threshold() const { return thr_; }

    /// Cofacets of the dim_-simplex s with a diameter in (lo, hi], in decreasing index order
    /// (zero_cofacet relies on it); f returns false to stop.
    template <typename F>
    void for_cofacets(const Entry& s, float lo, float hi, F&& f) const {
        index_t vs[kMaxVertices];
        vertices(s.idx, dim_, vs);
        simplex_t below = s.idx, above = 0;
        int t = dim_;
        for (index_t k = n_ - 1; k >= 0; --k) {
            if (t >= 0 && vs[t] == k) {
                below -= binom_(k, t + 1);
                above += binom_(k, t + 2);
                --t;
                continue;
            }
            const float* row = &dist_[k * n_];
            float diam = s.diam;
            for (int v = 0; v <= dim_; ++v) diam = std::max(diam, row[vs[v]]);
            if (!(diam > lo && diam <= hi && diam < kInf)) continue;
            if (!f(Entry{diam, above + binom_(k, t + 2) + below})) return;
        }
    }

    float diameter(simplex_t idx) const {
        index_t vs[kMaxVertices];
        vertices(idx, dim_, vs);
        float d = 0.0f;
        for (int a = 0; a <= dim_; ++a)
            for (int b = 0; b < a; ++b) d = std::max(d, dist_[vs[a] * n_ + vs[b]]);
        return d;
    }
    std::size_t dense_size() const { return 0; }
    std::int64_t dense_slot(simplex_t) const { return -1; }

    /// The longest edge (ascending vertices) of the simplex idx with dim + 1 vertices; among edges
    /// of equal length the one of least colex index, which is the latest in the filtration order.
    std::array<index_t, 2> longest_edge(simplex_t idx, int dim) const {
        index_t vs[kMaxVertices];
        vertices(idx, dim, vs);
        std::array<index_t, 2> best{vs[0], vs[dim]};
        float longest = -kInf;
        simplex_t best_idx = std::numeric_limits<simplex_t>::max();
        for (int a = 1; a <= dim; ++a)
            for (int b = 0; b < a; ++b) {
                const float d = dist_[vs[a] * n_ + vs[b]];
                const simplex_t e = binom_(vs[a], 2) + vs[b];
                if (d > longest || (d == longest && e < best_idx)) {
                    longest = d;
                    best_idx = e;
                    best = {vs[b], vs[a]};
                }
            }
        return best;
    }

    bool zero_cofacet(const Entry& s, Entry& z) const {
        bool found = false;
        for_cofacets(s, -kInf, s.diam, [&](const Entry& e) {
            if (e.diam == s.diam) {
                z = e;
                found = true;
                return false;
            }
            return true;
        });
        return found;
    }

    static constexpr int kMaxVertices = 64;

   private:
    index_t n_;
    float thr_;
    Binomial binom_;
    std::vector<float> dist_;
    int dim_ = 1;
};

// ---- the cone form of the R-Cross complex -------------------------------------------------------

/// Calls emit(k, d) for every k in [a, b) whose d = max(sd, mi[k], mj[k]) lies in (lo, hi]: the
/// inner loop of every coboundary, four or eight lanes at a time where SSE2 is available.
template <typename Emit>
inline void window_scan(const float* mi, const float* mj, index_t a, index_t b, float sd, float lo,
                        float hi, Emit&& emit) {
    index_t k = a;
#ifdef LATENTBRIDGE_RIPS_SSE2
    const __m128 vsd = _mm_set1_ps(sd), vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi);
    for (; k + 8 <= b; k += 8) {
        const __m128 d0 = _mm_max_ps(vsd, _mm_max_ps(_mm_loadu_ps(mi + k), _mm_loadu_ps(mj + k)));
        const __m128 d1 =
            _mm_max_ps(vsd, _mm_max_ps(_mm_loadu_ps(mi + k + 4), _mm_loadu_ps(mj + k + 4)));
        const __m128 in0 = _mm_and_ps(_mm_cmpgt_ps(d0, vlo), _mm_cmple_ps(d0, vhi));
        const __m128 in1 = _mm_and_ps(_mm_cmpgt_ps(d1, vlo), _mm_cmple_ps(d1, vhi));
        unsigned mask = static_cast<unsigned>(_mm_movemask_ps(in0)) |
                        (static_cast<unsigned>(_mm_movemask_ps(in1)) << 4);
        while (mask) {
            const index_t t = k + __builtin_ctz(mask);
            mask &= mask - 1;
            emit(t, std::max(sd, std::max(mi[t], mj[t])));
        }
    }
#endif
    for (; k < b; ++k) {
        const float d = std::max(sd, std::max(mi[k], mj[k]));
        if (d > lo && d <= hi) emit(k, d);
    }
}

/// Per vertex i, its nearest neighbours under m, sorted: the L = min(n - 1, max(64, n / 8))
/// smallest m_ik (k != i) with their k, and the first value left out (+inf when all are in), so
/// that the list holds every k with m_ik below it. A window (lo, hi] of cofacets then costs the
/// length of a list prefix instead of a scan of all n vertices, wherever hi stays below it.
class NeighbourLists {
   public:
    struct Item {
        float m;
        std::int32_t k;
    };
    /// The list length L for n vertices.
    static index_t length(index_t n) {
        return std::min<index_t>(n - 1, std::max<index_t>(64, n / 8));
    }
    NeighbourLists(const float* m, index_t n, int n_threads)
        : len_(length(n)),
          words_((n + 63) / 64),
          items_(static_cast<std::size_t>(n * len_)),
          excluded_(static_cast<std::size_t>(n), kInf),
          bits_(static_cast<std::size_t>(n * words_), 0) {
        parallel_for(n, n_threads, [&](index_t i, int) {
            std::vector<Item> row;
            row.reserve(static_cast<std::size_t>(n - 1));
            const float* mi = m + i * n;
            for (index_t k = 0; k < n; ++k)
                if (k != i) row.push_back({mi[k], static_cast<std::int32_t>(k)});
            auto by_m = [](const Item& a, const Item& b) { return a.m < b.m; };
            if (len_ < n - 1) {
                std::nth_element(row.begin(), row.begin() + len_, row.end(), by_m);
                excluded_[static_cast<std::size_t>(i)] = row[static_cast<std::size_t>(len_)].m;
            }
            std::sort(row.begin(), row.begin() + len_, by_m);
            std::copy(row.begin(), row.begin() + len_, items_.begin() + i * len_);
            std::uint64_t* bits = bits_.data() + i * words_;
            for (index_t t = 0; t < len_; ++t) {
                const index_t k = row[static_cast<std::size_t>(t)].k;
                bits[k >> 6] |= std::uint64_t{1} << (k & 63);
            }
        });
    }
    /// True when k is on i's list. Where the list is complete at v (complete(i, v)), a k that is
    /// not has m_ik > v: a test on a bit row of n / 8 bytes that stays in cache, instead of a
    /// read of m_ik at a random place.
    bool listed(index_t i, index_t k) const {
        return (bits_[static_cast<std::size_t>(i * words_ + (k >> 6))] >> (k & 63)) & 1u;
    }
    /// True when the list of i holds every k with m_ik <= v.
    bool complete(index_t i, float v) const { return v < excluded_[static_cast<std::size_t>(i)]; }
    const Item* begin(index_t i) const { return items_.data() + i * len_; }
    /// The end of the prefix of i's list with m <= v: a binary search whose steps are
    /// conditional moves (a search of the whole list costs log2 L dependent loads; a galloping
    /// search mispredicted its exits, 14 % of the mispredicted branches of an R-Cross reduction
    /// at n = 300, cachegrind).
    const Item* upto(index_t i, float v) const {
        const Item* base = begin(i);
        for (index_t len = len_; len > 1;) {  // every item before base has m <= v
            const index_t half = len / 2;
            base = v < base[half].m ? base : base + half;
            len -= half;
        }
        return base + (v < base->m ? 0 : 1);
    }
    /// Row i of the list bit sets (words() words, bit k set when k is on i's list).
    const std::uint64_t* bit_row(index_t i) const { return bits_.data() + i * words_; }
    index_t words() const { return words_; }
    /// Bytes for n vertices.
    static std::int64_t bytes(index_t n) {
        return n * (length(n) * static_cast<std::int64_t>(sizeof(Item)) + 4 + 8 * ((n + 63) / 64));
    }

   private:
    index_t len_, words_;
    std::vector<Item> items_;
    std::vector<float> excluded_;
    std::vector<std::uint64_t> bits_;  // row i: the set of k on i's list
};

class ConeComplex {
   public:
    ConeComplex(const float* w, const float* m, index_t n, float threshold, int n_threads = 1)
        : w_(w),
          m_(m),
          n_(n),
          thr_(threshold),
          binom_(n + 1, 3, "r_cross_barcode"),
          near_(m, n, n_threads) {
        cone_base_ = binom_(n, 3);
    }

    /// Colex index of the triangle of edge s = (i, j), i < j, and a third vertex k.
    simplex_t triangle(simplex_t s, index_t i, index_t j, index_t k) const {
        if (k > j) return binom_(k, 3) + s;
        if (k > i) return binom_(j, 3) + binom_(k, 2) + i;
        return binom_(j, 3) + binom_(i, 2) + k;
    }

    void edge(simplex_t e, index_t& i, index_t& j) const {
        const double root = std::sqrt(1.0 + 8.0 * static_cast<double>(e));
        index_t v = static_cast<index_t>((1.0 + root) / 2.0);
        while (v > 1 && binom_(v, 2) > e) --v;
        while (binom_(v + 1, 2) <= e) ++v;
        j = v;
        i = static_cast<index_t>(e - binom_(v, 2));
    }

    float threshold() const { return thr_; }

    /// Cofacets of edge s with a diameter in (lo, hi], in no particular order.
    template <typename F>
    void for_cofacets(const Entry& s, float lo, float hi, F&& f) const {
        index_t i, j;
        edge(s.idx, i, j);
        const float wij = w_[i * n_ + j];
        if (wij > lo && wij <= hi) f(Entry{wij, cone_base_ + s.idx});
        const float* mi = m_ + i * n_;
        const float* mj = m_ + j * n_;
        const float sd = s.diam;
        if (sd > hi) return;
        if (listed_cofacets(s, i, j, lo, hi, f)) return;
        window_scan(mi, mj, j + 1, n_, sd, lo, hi,
                    [&](index_t k, float d) { f(Entry{d, binom_(k, 3) + s.idx}); });
        const simplex_t cj = binom_(j, 3);
        window_scan(mi, mj, i + 1, j, sd, lo, hi,
                    [&](index_t k, float d) { f(Entry{d, cj + binom_(k, 2) + i}); });
        const simplex_t cji = cj + binom_(i, 2);
        window_scan(mi, mj, 0, i, sd, lo, hi, [&](index_t k, float d) { f(Entry{d, cji + k}); });
    }

    float diameter(simplex_t e) const {
        index_t i, j;
        edge(e, i, j);
        return m_[i * n_ + j];
    }
    /// Only the pivots of reduced columns are stored (in the hash map); the emergent pairs are
    /// recomputed by implicit_pivot.
    std::size_t dense_size() const { return 0; }
    std::int64_t dense_slot(simplex_t) const { return -1; }
    simplex_t cone_base() const { return cone_base_; }

    /// The vertices a < b < c of the ordinary triangle t.
    void triangle_vertices(simplex_t t, index_t& a, index_t& b, index_t& c) const {
        index_t lo = 2, hi = n_ - 1;  // c: the largest vertex with C(c, 3) <= t
        while (lo < hi) {
            const index_t mid = (lo + hi + 1) / 2;
            if (binom_(mid, 3) <= t)
                lo = mid;
            else
                hi = mid - 1;
        }
        c = lo;
        edge(t - binom_(c, 3), a, b);
    }

    /// The column that has the triangle {a, b, c} (a < b < c) of diameter d as its zero cofacet
    /// and claims it first: of the triangle's edges (a, b), (a, c), (b, c) (increasing index, the
    /// processing order among equal diameters), the first one of m-length d that is a column
    /// (w > m) and whose zero_vertex is the third vertex. A later claimant finds the triangle
    /// taken and is reduced. Returns the edge index, -1 when none claims it.
    simplex_t claimant(index_t a, index_t b, index_t c, float d) const {
        const index_t ends[3][3] = {{a, b, c}, {a, c, b}, {b, c, a}};
        for (const auto& e : ends) {
            const index_t u = e[0], v = e[1];
            const float muv = m_[v * n_ + u];
            if (muv != d || !(w_[v * n_ + u] > muv)) continue;
            if (zero_vertex(u, v, d) == e[2]) return binom_(v, 2) + u;
        }
        return -1;
    }

    /// The code of the emergent column holding pivot t when the reduction is at column cur (see
    /// Reducer): the edge e of a cone triangle with w_e == m_e (paired in advance), or the
    /// claimant of an ordinary triangle once it has been processed (it precedes cur). A claimant
    /// holds its triangle unless a reduced column took it first; the caller looks up those
    /// (stored) pivots before this one. -1 when no emergent column holds t.
    std::int64_t implicit_pivot(simplex_t t, const Entry& cur) const {
        if (t >= cone_base_) {
            const simplex_t e = t - cone_base_;
            index_t i, j;
            edge(e, i, j);
            return w_[j * n_ + i] == m_[j * n_ + i] ? -2 - e : -1;
        }
        index_t a, b, c;
        triangle_vertices(t, a, b, c);
        const float d = std::max(m_[b * n_ + a], std::max(m_[c * n_ + a], m_[c * n_ + b]));
        const simplex_t f = claimant(a, b, c, d);
        if (f < 0 || !(d > cur.diam || f < cur.idx)) return -1;
        return -2 - f;
    }

    /// The edges of a bar (rips.hpp, r_cross_barcode_h1) in the numbering of the doubled matrix:
    /// first block 0..n-1, second block n..2n-1.
    PairEdges pair_edges(const SimplexPair& sp) const {
        index_t i, j;
        edge(sp[0], i, j);
        PairEdges out{n_ + i, n_ + j, -1, -1};
        if (sp[1] < 0) return out;
        if (sp[1] >= cone_base_) {  // cone triangle (i, j, c) at w_ij: the cross edge (i, n + j)
            edge(sp[1] - cone_base_, i, j);
            out[2] = i;
            out[3] = n_ + j;
            return out;
        }
        index_t a, b, c;  // an ordinary triangle
        triangle_vertices(sp[1], a, b, c);
        // its edges in increasing colex index; on equal m the first (latest in the filtration)
        const index_t ends[3][2] = {{a, b}, {a, c}, {b, c}};
        int best = 0;
        for (int t = 1; t < 3; ++t)
            if (m_[ends[t][0] * n_ + ends[t][1]] > m_[ends[best][0] * n_ + ends[best][1]]) best = t;
        out[2] = n_ + ends[best][0];
        out[3] = n_ + ends[best][1];
        return out;
    }

    /// The greatest k other than i and j with m_ik <= d and m_jk <= d (-1: none): the third
    /// vertex of the earliest ordinary cofacet of an edge (i, j) of diameter d, its zero cofacet
    /// when w_ij > m_ij (the cone triangle comes first when w_ij == m_ij). Where a neighbour list
    /// is complete at d, every such k is on it (on both when both are): the candidates are the
    /// set bits of the list bit sets (ANDed), tried from the greatest down. Otherwise (d large:
    /// one qualifies soon) a scan down from n - 1. The bit sets replaced a walk of the shorter
    /// list's prefix up to d: 8 % fewer cycles of an R-Cross reduction at n = 300, 6 % at 500
    /// (cachegrind: instructions / 2.5 + 15 per mispredicted branch).
    index_t zero_vertex(index_t i, index_t j, float d) const {
        const float* mi = m_ + i * n_;
        const float* mj = m_ + j * n_;
        const bool ci = near_.complete(i, d), cj = near_.complete(j, d);
        if (ci || cj) {
            const std::uint64_t* bi = near_.bit_row(ci ? i : j);
            const std::uint64_t* bj = near_.bit_row(cj ? j : i);
            for (index_t word = near_.words() - 1; word >= 0; --word) {
                for (std::uint64_t x = bi[word] & bj[word]; x;) {
                    const int bit = 63 - __builtin_clzll(x);
                    x &= ~(std::uint64_t{1} << bit);
                    const index_t k = word * 64 + bit;
                    if (k != i && k != j && mi[k] <= d && mj[k] <= d) return k;
                }
            }
            return -1;
        }
        index_t k = n_;
#ifdef LATENTBRIDGE_RIPS_SSE2
        const __m128 vd = _mm_set1_ps(d);
        for (; k >= 8; k -= 8) {
            const float* a = mi + k - 8;
            const float* b = mj + k - 8;
            const __m128 lo4 =
                _mm_and_ps(_mm_cmple_ps(_mm_loadu_ps(a), vd), _mm_cmple_ps(_mm_loadu_ps(b), vd));
            const __m128 hi4 = _mm_and_ps(_mm_cmple_ps(_mm_loadu_ps(a + 4), vd),
                                          _mm_cmple_ps(_mm_loadu_ps(b + 4), vd));
            unsigned mask = static_cast<unsigned>(_mm_movemask_ps(lo4)) |
                            (static_cast<unsigned>(_mm_movemask_ps(hi4)) << 4);
            for (const index_t v : {i, j})
                if (v >= k - 8 && v < k) mask &= ~(1u << (v - (k - 8)));
            if (mask) return k - 8 + 31 - __builtin_clz(mask);
        }
#endif
        for (--k; k >= 0; --k)
            if (k != i && k != j && mi[k] <= d && mj[k] <= d) return k;
        return -1;
    }

   private:
    /// The ordinary cofacets of s = (i, j) with an m-diameter in (lo, hi], sd = m_ij <= hi, from
    /// the neighbour lists; false (nothing emitted) when the lists do not reach hi.
    template <typename F>
    bool listed_cofacets(const Entry& s, index_t i, index_t j, float lo, float hi, F& f) const {
        const float* mi = m_ + i * n_;
        const float* mj = m_ + j * n_;
        const float sd = s.diam;
        if (sd > lo) {  // every k with m_ik, m_jk <= hi: walk the shorter complete prefix
            const bool ci = near_.complete(i, hi), cj = near_.complete(j, hi);
            if (!ci && !cj) return false;
            const bool by_i = ci && (!cj || near_.upto(i, hi) - near_.begin(i) <=
                                                near_.upto(j, hi) - near_.begin(j));
            const index_t a = by_i ? i : j, b = by_i ? j : i;
            const float* mb = by_i ? mj : mi;
            const bool filter = near_.complete(b, hi);  // then m_bk <= hi only for k on b's list
            emit_listed(
                s, i, j, near_.begin(a), near_.upto(a, hi),
                [&](index_t k) {
                    return (k != b) & (!filter | near_.listed(b, k)) & (mb[k] <= hi);
                },
                [&](const NeighbourLists::Item& it) {
                    return std::max(sd, std::max(it.m, mb[it.k]));
                },
                f);
            return true;
        }
        // sd <= lo: max(m_ik, m_jk) in (lo, hi]; from i's list those with m_ik in (lo, hi], from
        // j's those with m_jk in (lo, hi] and m_ik <= lo (the rest came from i's); both lists are
        // complete at hi, so a k off the other's list fails its test
        if (!near_.complete(i, hi) || !near_.complete(j, hi)) return false;
        emit_listed(
            s, i, j, near_.upto(i, lo), near_.upto(i, hi),
            [&](index_t k) { return (k != j) & near_.listed(j, k) & (mj[k] <= hi); },
            [&](const NeighbourLists::Item& it) { return std::max(it.m, mj[it.k]); }, f);
        emit_listed(
            s, i, j, near_.upto(j, lo), near_.upto(j, hi),
            [&](index_t k) { return (k != i) & near_.listed(i, k) & (mi[k] <= lo); },
            [](const NeighbourLists::Item& it) { return it.m; }, f);
        return true;
    }

    /// Calls f for the triangle (i, j, k) of each item k of [it, end) (a prefix of a neighbour
    /// list) with keep(k), at diameter diam(item). The tests of a walk fail unpredictably (about
    /// half the items are kept), so the kept items are gathered first without a branch, in
    /// blocks on the stack (the reducers of a parallel reduction enumerate side by side).
    template <typename Keep, typename Diam, typename F>
    void emit_listed(const Entry& s, index_t i, index_t j, const NeighbourLists::Item* it,
                     const NeighbourLists::Item* end, Keep keep, Diam diam, F& f) const {
        constexpr std::ptrdiff_t kBlock = 256;
        NeighbourLists::Item out[kBlock];
        while (it != end) {
            const NeighbourLists::Item* stop = end - it > kBlock ? it + kBlock : end;
            std::size_t count = 0;
            for (; it != stop; ++it) {
                out[count] = {diam(*it), it->k};
                count += keep(it->k) ? 1u : 0u;
            }
            for (std::size_t t = 0; t < count; ++t)
                f(Entry{out[t].m, triangle(s.idx, i, j, out[t].k)});
        }
    }

    const float* w_;
    const float* m_;
    index_t n_;
    float thr_;
    Binomial binom_;
    NeighbourLists near_;
    simplex_t cone_base_;
};

/// Helper threads for rounds of parallel tasks that the calling thread drives. run(task, driver)
/// starts workers - 1 helpers and calls driver(round) on this thread; round(n) runs task(t,
/// worker) for every t in [0, n) on all the threads (this one is worker 0) and returns when all
/// are done. A round is claimed in one atomic word (round number, size, next task), so a helper
/// late from the last round claims nothing of the next. Between rounds the helpers yield for a
/// while, then sleep until the next. The first exception of any thread sets `abort` (the tasks'
/// polls throw once they see it, so every thread stops soon) and run rethrows it once no helper
/// is running (a helper not started by then never joins: detail::HelperGate).
class RoundTeam {
   public:
    explicit RoundTeam(int workers) : workers_(workers) {}
    std::atomic<bool> abort{false};

    template <typename Task, typename Driver>
    void run(Task&& task, Driver&& driver) {
        std::exception_ptr first;
        std::mutex first_mutex;
        const auto fail = [&] {
            {
                std::lock_guard<std::mutex> lock(first_mutex);
                if (!first && !abort.load()) first = std::current_exception();
            }
            abort = true;
            wake();
        };
        const auto work = [&](int worker, std::uint64_t round) {
            std::uint64_t cur = word_.load(std::memory_order_acquire);
            while ((cur >> 40) == round && (cur & kField) < ((cur >> 20) & kField)) {
                if (!word_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) continue;
                task(static_cast<std::size_t>(cur & kField), worker);
                if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == ((cur >> 20) & kField) &&
                    worker != 0)
                    wake();  // the round's last task: the driver may be asleep
                cur = word_.load(std::memory_order_acquire);
            }
        };
        const auto helper = [&](int worker) {
            try {
                std::uint64_t seen = 0;
                for (;;) {
                    wait([&] {
                        return stop_.load(std::memory_order_acquire) ||
                               (word_.load(std::memory_order_acquire) >> 40) != seen;
                    });
                    if (stop_.load() || abort.load()) return;
                    seen = word_.load(std::memory_order_acquire) >> 40;
                    work(worker, seen);
                }
            } catch (...) {
                fail();
            }
        };
        // helpers the scheduler starts late join the rounds then, or find the gate closed
        const auto gate = std::make_shared<detail::HelperGate>();
        try {
            for (int w = 1; w < workers_; ++w)
                if (!detail::HelperGate::launch(gate, &helper, w)) break;
            std::uint64_t round = 0;
            driver([&](std::size_t n) {
                if (n == 0) return;
                round = (round + 1) & ((std::uint64_t{1} << 24) - 1);
                done_.store(0, std::memory_order_relaxed);
                word_.store((round << 40) | (static_cast<std::uint64_t>(n) << 20),
                            std::memory_order_release);
                wake();
                work(0, round);
                wait([&] { return done_.load(std::memory_order_acquire) >= n; }, true);
                if (abort.load()) throw Abandoned{};
            });
        } catch (...) {
            fail();
        }
        stop_ = true;
        wake();
        gate->close();
        if (first) std::rethrow_exception(first);
    }

    /// The most tasks in one round.
    static constexpr std::size_t kMaxTasks = (std::size_t{1} << 20) - 1;

   private:
    static constexpr std::uint64_t kField = (std::uint64_t{1} << 20) - 1;
    void wake() {
        {
            std::lock_guard<std::mutex> lock(sleep_mutex_);
        }
        sleep_.notify_all();
    }
    /// Until ready() or abort: a few yields (a round's hand-over is short on an idle machine),
    /// then asleep until wake() (a loaded one: a spinning thread would take a core from the
    /// others). The driver (`interruptible`) wakes at every poll interval to poll for Ctrl-C
    /// while a helper reduces a long column.
    template <typename Ready>
    void wait(Ready ready, bool interruptible = false) {
        for (int spins = 0; spins < kSpins; ++spins) {
            if (ready() || abort.load()) return;
            std::this_thread::yield();
        }
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        const auto done = [&] { return ready() || abort.load(); };
        if (!interruptible) return sleep_.wait(lock, done);
        while (!sleep_.wait_for(lock, interrupt_poll_interval, done)) {
            lock.unlock();
            detail::maybe_poll_interrupt();
            lock.lock();
        }
    }
    static constexpr int kSpins = 64;
    int workers_;
    std::atomic<std::uint64_t> word_{0};  // round (24 bits) | size (20) | next task (20)
    std::atomic<std::size_t> done_{0};
    std::atomic<bool> stop_{false};
    std::mutex sleep_mutex_;
    std::condition_variable sleep_;
};

/// The window of a round of the parallel R-Cross reduction, per thread: simulated critical paths
/// (each round's measured tasks spread over two idle threads, plus the sequential conclusions) of
/// 8 to 128 columns on two threads were flat within the noise at n = 300 and 500 and shortest
/// from 64 on at n = 2000 (bench/notes/topology-speed.md, fifth session).
constexpr std::size_t kRoundColumnsPerWorker = 32;

/// Sorts columns into processing order (later in the filtration first); with several threads the
/// parts are sorted in parallel and merged.
template <typename Compare = Later>
void sort_for_reduction(std::vector<Entry>& columns, int n_threads = 1, Compare later = Compare()) {
    const index_t n = static_cast<index_t>(columns.size());
    const index_t parts = std::min<index_t>(std::max(1, n_threads), 8);
    if (parts <= 1 || n < 65536) {
        std::sort(columns.begin(), columns.end(), later);
        return;
    }
    std::vector<index_t> bounds(static_cast<std::size_t>(parts) + 1);
    for (index_t t = 0; t <= parts; ++t) bounds[t] = n * t / parts;
    parallel_for(parts, n_threads, [&](index_t t, int) {
        std::sort(columns.begin() + bounds[t], columns.begin() + bounds[t + 1], later);
    });
    for (index_t width = 1; width < parts; width *= 2)
        for (index_t t = 0; t + width < parts; t += 2 * width)
            std::inplace_merge(columns.begin() + bounds[t], columns.begin() + bounds[t + width],
                               columns.begin() + bounds[std::min(t + 2 * width, parts)], later);
}

}  // namespace

float enclosing_radius(const float* D, index_t n) {
    float r = kInf;
    for (index_t i = 0; i < n; ++i) {
        const float* row = D + i * n;
        float mx = 0.0f;
        for (index_t j = 0; j < n; ++j) mx = std::max(mx, row[j]);
        r = std::min(r, mx);
    }
    return r;
}

std::vector<std::vector<Bar>> rips_barcodes(const float* D, index_t n, int maxdim, float threshold,
                                            std::vector<std::vector<PairEdges>>* pairs,
                                            RipsEngine engine, int n_threads) {
    const char* op = "vr_barcode";
    LATENTBRIDGE_CHECK(n >= 0, op, "negative number of points");
    LATENTBRIDGE_CHECK(maxdim >= 0 && maxdim < RipsComplex::kMaxVertices - 2, op,
                       "maxdim must be in [0, 61]");
    LATENTBRIDGE_CHECK(threshold >= 0.0f, op, "threshold must be non-negative (not NaN)");
    if (engine == RipsEngine::homology ||
        (engine == RipsEngine::automatic && rips_homology_applies(n, maxdim)))
        return rips_barcodes_homology(D, n, maxdim, threshold, n_threads, pairs);
    std::vector<std::vector<Bar>> bars(static_cast<std::size_t>(maxdim) + 1);
    if (pairs) pairs->assign(static_cast<std::size_t>(maxdim) + 1, {});
    if (n == 0) return bars;
    RipsComplex cx(D, n, threshold, std::max(maxdim, 1));

    // H0: union-find over the edges in filtration order; the non-tree edges are H1's columns.
    std::vector<Entry> edges;
    for (index_t j = 1; j < n; ++j)
        for (index_t i = 0; i < j; ++i) {
            const float d = cx.dist(i, j);
            if (cx.within(d)) edges.push_back({d, cx.binom(j, 2) + i});
        }
    std::sort(edges.begin(), edges.end(),
              [](const Entry& a, const Entry& b) { return later(b, a); });
    std::vector<index_t> parent(n);
    for (index_t v = 0; v < n; ++v) parent[v] = v;
    auto find = [&](index_t v) {
        while (parent[v] != v) {
            parent[v] = parent[parent[v]];
            v = parent[v];
        }
        return v;
    };
    std::vector<Entry> columns;
    for (const Entry& e : edges) {
        index_t vs[2];
        cx.vertices(e.idx, 1, vs);
        const index_t a = find(vs[0]), b = find(vs[1]);
        if (a != b) {
            parent[std::max(a, b)] = std::min(a, b);  // the younger root's component dies
            if (e.diam > 0.0f) {
                bars[0].push_back({0.0f, e.diam});
                if (pairs) (*pairs)[0].push_back({std::max(a, b), -1, vs[0], vs[1]});
            }
        } else if (maxdim >= 1) {
            columns.push_back(e);
        }
    }
    for (index_t v = 0; v < n; ++v)
        if (find(v) == v) {
            bars[0].push_back({0.0f, kInf});
            if (pairs) (*pairs)[0].push_back({v, -1, -1, -1});
        }
    if (maxdim == 0) return bars;
    std::reverse(columns.begin(), columns.end());  // later in the filtration first

    std::vector<Entry> simplices = std::move(edges);
    for (int dim = 1; dim <= maxdim; ++dim) {
        cx.set_dim(dim);
        Reducer<RipsComplex> reducer(cx);
        std::vector<SimplexPair> simplex_pairs;
        if (pairs) reducer.record_pairs(&simplex_pairs);
        reducer.reduce(columns, bars[dim]);
        if (pairs)
            for (const SimplexPair& sp : simplex_pairs) {
                const auto b = cx.longest_edge(sp[0], dim);
                const auto d =
                    sp[1] < 0 ? std::array<index_t, 2>{-1, -1} : cx.longest_edge(sp[1], dim + 1);
                (*pairs)[dim].push_back({b[0], b[1], d[0], d[1]});
            }
        if (dim == maxdim) break;
        // Next degree: every (dim+1)-simplex once (added vertex above the top one), minus the
        // pivots just found (clearing).
        const bool keep = dim + 1 < maxdim;  // the simplices themselves seed the degree after
        std::vector<Entry> next;
        columns.clear();
        index_t vs[RipsComplex::kMaxVertices];
        for (const Entry& s : simplices) {
            cx.vertices(s.idx, dim, vs);
            for (index_t k = vs[dim] + 1; k < n; ++k) {
                float diam = s.diam;
                for (int v = 0; v <= dim; ++v) diam = std::max(diam, cx.dist(k, vs[v]));
                if (!cx.within(diam)) continue;
                const Entry c{diam, cx.binom(k, dim + 2) + s.idx};
                if (keep) next.push_back(c);
                if (!reducer.is_pivot(c.idx)) columns.push_back(c);
            }
        }
        simplices.swap(next);
        sort_for_reduction(columns);
    }
    return bars;
}

namespace {

/// The cohomology reduction of the cone form (throws DeadlineExpired past the deadline). Only the
/// columns that are not emergent pairs are listed and reduced: an edge with w_ij == m_ij pairs
/// with its own cone triangle (i, j, c), its earliest cofacet, and an edge with w_ij > m_ij with
/// its zero cofacet when it is that triangle's claimant (ConeComplex::claimant) and no reduced
/// column took the triangle first. Neither kind is stored: the pivot lookups recompute them
/// (ConeComplex::implicit_pivot), so the sequential pass visits the few reduced columns only.
std::vector<Bar> r_cross_cohomology(const float* w, const float* m, index_t n, int n_threads,
                                    const Deadline* deadline, std::vector<PairEdges>* pairs) {
    const char* op = "r_cross_barcode";
    const float thr = enclosing_radius(w, n);
    ConeComplex cx(w, m, n, thr, n_threads);

    // The columns to reduce, in parallel over blocks of rows (row j stays in cache): the edges
    // (i, j) within the threshold with w_ij > m_ij and no zero cofacet, or one whose claimant
    // is another edge (equal m-lengths only).
    const index_t rows_per_block = 64;
    const index_t blocks = (n + rows_per_block - 1) / rows_per_block;
    std::vector<std::vector<Entry>> found(static_cast<std::size_t>(blocks));
    parallel_for(blocks, n_threads, [&](index_t blk, int) {
        std::vector<Entry>& out = found[static_cast<std::size_t>(blk)];
        for (index_t j = std::max<index_t>(1, blk * rows_per_block);
             j < std::min(n, (blk + 1) * rows_per_block); ++j) {
            const float* mj = m + j * n;
            const float* wj = w + j * n;
            const simplex_t base = j * (j - 1) / 2;
            for (index_t i = 0; i < j; ++i) {
                const float mv = mj[i], wv = wj[i];
                LATENTBRIDGE_CHECK(mv <= wv, op, "m must not exceed w (m = min(w, w~))");
                if (!(mv <= thr) || wv == mv) continue;
                const index_t k = cx.zero_vertex(i, j, mv);
                if (k >= 0) {
                    if (m[i * n + k] != mv && mj[k] != mv) continue;  // its own claimant
                    index_t v[3] = {i, j, k};
                    std::sort(v, v + 3);
                    if (cx.claimant(v[0], v[1], v[2], mv) == base + i) continue;
                }
                out.push_back({mv, base + i});
            }
        }
    });
    std::vector<Entry> columns;
    for (std::vector<Entry>& part : found) {
        columns.insert(columns.end(), part.begin(), part.end());
        std::vector<Entry>().swap(part);
    }
    sort_for_reduction(columns, n_threads);

    // Narrower windows than VR's: the cofacets of an edge past its vertices' neighbour lists
    // come from scans of all n vertices and are dense there (65-70 % of the entries enumerated
    // at n = 500 and 2000, 64-D family); growth 1.5 and a floor of 1 % of the threshold cost
    // 11-14 % fewer cycles (cachegrind: instructions / 2.5 + 15 per mispredicted branch) than
    // VR's 2 and 0.1 % (12 % at n = 300), and 1-7 % on the rings and rank-2 families.
    Reducer<ConeComplex> reducer(cx, deadline, WindowPolicy{1e-2f, 1.5f});
    std::vector<Bar> bars;
    std::vector<SimplexPair> simplex_pairs;
    if (pairs) reducer.record_pairs(&simplex_pairs);
    // A reduced column r whose pivot t has r's own diameter took t from t's claimant when that
    // comes after r: the claimant is then reduced as well, in its place (pending: a heap whose
    // front is processed first).
    const auto after = [](const Entry& a, const Entry& b) { return later(b, a); };
    std::vector<Entry> pending;
    const auto settle = [&](const Entry& s, const Entry& t) {
        if (t.idx < 0 || t.diam != s.diam || t.idx >= cx.cone_base()) return;
        index_t a, b, c;
        cx.triangle_vertices(t.idx, a, b, c);
        const simplex_t f = cx.claimant(a, b, c, t.diam);
        if (f > s.idx) {
            pending.push_back({t.diam, f});
            std::push_heap(pending.begin(), pending.end(), after);
        }
    };
    // the next column in processing order: a pending one when it precedes columns[next]
    const auto pending_first = [&](std::size_t next) {
        return !pending.empty() &&
               (next == columns.size() || later(pending.front(), columns[next]));
    };
    const auto pop_pending = [&] {
        std::pop_heap(pending.begin(), pending.end(), after);
        const Entry s = pending.back();
        pending.pop_back();
        return s;
    };
    const int workers = static_cast<int>(
        std::max<index_t>(1, std::min<index_t>(n_threads, static_cast<index_t>(columns.size()))));
    // the setup's CPU time on this thread, which the first charge of the reduction includes
    const double setup = deadline ? Deadline::now() - deadline->start : 0.0;
    const auto give_up_early = [&](std::size_t next) {
        if (deadline && deadline->hopeless(setup, next, columns.size())) throw DeadlineExpired{};
    };
    if (workers <= 1) {
        for (std::size_t next = 0; next < columns.size() || !pending.empty();) {
            const Entry s = pending_first(next) ? pop_pending() : columns[next++];
            settle(s, reducer.reduce_one(s, bars));
            give_up_early(next);
        }
    } else {
        // Rounds over a window of `chunk` columns from the first one not concluded: the workers
        // take each column of the window further side by side against the columns stored so
        // far (Reducer::speculate: no writes; a column whose pivot no stored column has taken
        // since its last round is left as it is), then this thread concludes them in processing
        // order (Reducer::conclude: store the column when its pivot is still free) up to the
        // first whose pivot a column stored in this round took; the next round starts there,
        // with every column's combination and pivot kept. Each round concludes at least its
        // first column (reduced against all the stored columns before it), and a column only
        // ever gets earlier columns' coboundaries added, so the pivots, hence the bars and
        // pairs, are those of the sequential reduction, whatever the number of threads.
        RoundTeam team(workers);
        std::vector<std::unique_ptr<Reducer<ConeComplex>>> helpers;
        for (int w = 1; w < workers; ++w) {
            helpers.push_back(
                std::make_unique<Reducer<ConeComplex>>(cx, deadline, WindowPolicy{1e-2f, 1.5f}));
            helpers.back()->share_store(reducer, &team.abort);
        }
        reducer.watch(&team.abort);
        const std::size_t chunk = std::min(
            RoundTeam::kMaxTasks, kRoundColumnsPerWorker * static_cast<std::size_t>(workers));
        std::vector<Reducer<ConeComplex>::Partial> ring(chunk);  // column c at c % chunk
        std::size_t next = 0, end = 0;  // the first column not concluded; past those in the ring
        team.run(
            [&](std::size_t t, int w) {
                Reducer<ConeComplex>& r = w == 0 ? reducer : *helpers[w - 1];
                r.speculate(columns[next + t], ring[(next + t) % chunk]);
            },
            [&](auto&& round) {
                while (next < columns.size() || !pending.empty()) {
                    const std::size_t stop = std::min(columns.size(), next + chunk);
                    for (; end < stop; ++end) ring[end % chunk].begun = false;
                    round(stop - next);
                    for (;;) {
                        if (pending_first(next)) {
                            const Entry s = pop_pending();
                            settle(s, reducer.reduce_one(s, bars));
                            continue;
                        }
                        Entry t;
                        if (next == stop ||
                            !reducer.conclude(columns[next], ring[next % chunk], bars, t))
                            break;
                        settle(columns[next], t);
                        ++next;
                    }
                    give_up_early(next);
                }
            });
    }
    std::vector<Bar> out;
    for (std::size_t t = 0; t < bars.size(); ++t) {
        if (!(bars[t][1] < kInf)) continue;
        out.push_back(bars[t]);
        if (pairs) pairs->push_back(cx.pair_edges(simplex_pairs[t]));
    }
    return out;
}

}  // namespace

std::vector<Bar> r_cross_barcode_h1(const float* w, const float* m, index_t n, int n_threads,
                                    CrossEngine engine, std::vector<PairEdges>* pairs) {
    LATENTBRIDGE_CHECK(n >= 0, "r_cross_barcode", "negative number of points");
    if (pairs) pairs->clear();
    if (n < 2) return {};
    if (engine == CrossEngine::homology) return r_cross_barcode_h1_homology(w, m, n, pairs);
    if (engine == CrossEngine::cohomology)
        return r_cross_cohomology(w, m, n, n_threads, nullptr, pairs);
    // Two exact engines with complementary failure modes: cohomology is fastest where the
    // cocycles stay small (similar representations, or the structured one first), streaming
    // homology where they are large cuts (noise first, structure second: n^4 for cohomology).
    // Cohomology runs first under a budget of kBudgetPerPair * n^2 CPU seconds of its threads,
    // four times or more its time on the families it wins (64-D linear map, this thread: 2e-7 n^2
    // at n = 500, 3e-7 at 4000, 4.5e-7 at 10,000). Homology takes over (the cohomology work done
    // so far is discarded) once the time so far, projected over all the columns, exceeds the
    // budget (Deadline::hopeless: noise against a plane is handed over at 5-20 % of its columns),
    // or past kLimitFactor budgets in any case. The projection cannot see a cost that comes last:
    // nearly equal representations (64-D map, noise 0.1 instead of 0.5) spend most of their time in
    // the last 1-2 % of the columns, long bars, where homology is slower still (2x at n = 2000),
    // and at n = 10,000 charged 1.8e-6 n^2 (178 s), so a limit of one budget would have handed them
    // over on a machine 12 % slower, to start again.
    constexpr double kBudgetPerPair = 2e-6;
    constexpr double kLimitFactor = 4.0;
    const double budget = std::max(0.05, kBudgetPerPair * static_cast<double>(n) * n);
    const Deadline deadline(budget, kLimitFactor * budget);
    try {
        return r_cross_cohomology(w, m, n, n_threads, &deadline, pairs);
    } catch (const DeadlineExpired&) {
        if (pairs) pairs->clear();
        return r_cross_barcode_h1_homology(w, m, n, pairs);
    }
}

std::int64_t rips_workspace_bytes(index_t n, int maxdim) { return (maxdim <= 0 ? 36 : 60) * n * n; }

namespace {

/// Upper bounds on the number of cliques with s = 2..max_vertices vertices of the threshold graph
/// of D (entry s - 2): a clique is counted once from each of its vertices, so there are at most
/// sum_v C(deg_v, s - 1) / s of them (deg_v: the neighbours of v within the threshold, +inf
/// entries absent); exact for s = 2 (the edges). The rows are counted on n_threads.
std::vector<long double> clique_bounds(const float* D, index_t n, int max_vertices, float threshold,
                                       int n_threads = 1) {
    std::vector<long double> out;
    if (n == 0 || max_vertices < 2) return out;
    // histogram of the vertex degrees in the threshold graph (the diagonal is not an edge); a
    // branch-free count of the row, then the diagonal taken off, so that the loop vectorises
    constexpr float inf = std::numeric_limits<float>::infinity();
    auto edge = [threshold](float d) {
        return static_cast<std::int32_t>((d <= threshold) & (d < inf));
    };
    std::vector<std::int32_t> degree(static_cast<std::size_t>(n));
    parallel_for(n, n_threads, [&](index_t i, int) {
        const float* row = D + i * n;
        std::int32_t within = 0;
        for (index_t j = 0; j < n; ++j) within += edge(row[j]);
        degree[i] = within - edge(row[i]);
    });
    std::vector<index_t> count_of_degree(static_cast<std::size_t>(n), 0);
    for (const std::int32_t deg : degree) ++count_of_degree[static_cast<std::size_t>(deg)];
    // C(deg, r) for every degree, updated from r to r + 1 by C(d, r + 1) = C(d, r) (d - r) / (r +
    // 1)
    std::vector<long double> binom(static_cast<std::size_t>(n), 1.0L);  // r = 0
    for (int s = 2; s <= max_vertices; ++s) {
        const int r = s - 2;  // binom: C(d, r) -> C(d, s - 1)
        for (index_t d = 0; d < n; ++d) binom[d] = d > r ? binom[d] * (d - r) / (r + 1) : 0.0L;
        long double total = 0.0L;
        for (index_t d = 0; d < n; ++d) total += count_of_degree[d] * binom[d];
        out.push_back(std::floor(total / s));
    }
    return out;
}

double saturated(long double bytes) {
    const long double cap = std::numeric_limits<double>::max();
    return static_cast<double>(bytes < cap ? bytes : cap);
}

}  // namespace

double rips_simplex_bytes(const float* D, index_t n, int maxdim, float threshold) {
    if (maxdim < 2 || n == 0) return 0.0;
    const std::vector<long double> cliques = clique_bounds(D, n, maxdim + 1, threshold);
    long double worst = 0.0L;
    for (int k = 2; k <= maxdim; ++k)  // (k + 1)-vertex columns and the k-vertex seeds
        worst = std::max(worst, cliques[k - 1] + cliques[k - 2]);
    return saturated(56.0L * worst);
}

bool rips_homology_applies(index_t n, int maxdim) {
    return maxdim >= 1 && maxdim <= 3 && n < 65536;
}

double rips_homology_bytes(const float* D, index_t n, int maxdim, float threshold, int n_threads) {
    if (n == 0) return 0.0;
    const long double words = static_cast<long double>((n + 63) / 64);
    const long double nn = static_cast<long double>(n) * static_cast<long double>(n);
    long double bytes = 8.0L * nn + 8.0L * words * n + 24.0L * n;
    if (maxdim == 2) bytes += 2.0L * nn;  // the active lists' slots of the edges
    // a bit per face of the active lists (vertices for maxdim 1, edges for maxdim 2)
    const long double faces = maxdim == 1   ? static_cast<long double>(n)
                              : maxdim == 2 ? static_cast<long double>(n) * (n - 1) / 2
                                            : 0.0L;
    bytes += 8.0L * std::ceil(faces / 64.0L);
    const std::vector<long double> cliques = clique_bounds(D, n, maxdim + 1, threshold, n_threads);
    for (std::size_t s = 0; s < cliques.size(); ++s)  // s + 2 vertices: degree s + 1
        bytes += (n_threads > 1 && s >= 1 ? 56.0L : 40.0L) * cliques[s];
    return saturated(bytes);
}

std::int64_t r_cross_workspace_bytes(index_t n) {
    const std::int64_t edges = n * (n - 1) / 2;
    const std::int64_t cohomology = 48 * edges + NeighbourLists::bytes(n);
    const std::int64_t words = (n + 63) / 64;
    const std::int64_t homology = 82 * edges + 4 * n * n + 8 * words * n;
    return std::max(cohomology, homology);
}

}  // namespace latentbridge
