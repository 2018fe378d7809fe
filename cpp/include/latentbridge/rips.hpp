// Vietoris-Rips persistent homology of a dense distance matrix (Ripser's algorithm: H0 by
// union-find, higher degrees by cohomology with clearing, implicit coboundaries in the
// combinatorial number system, emergent zero-persistence pairs), and the structured
// R-Cross-Barcode_1 reduction of Barannikov et al. that never builds the doubled 2N x 2N matrix.
// Filtration values are float32 (as in ripser and giotto-ph); coefficients are Z/2.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "latentbridge/types.hpp"

namespace latentbridge {

/// One persistence interval [birth, death); death is +inf for an essential class.
using Bar = std::array<float, 2>;

/// The reductions behind rips_barcodes, both exact: Ripser's cohomology (rips.cpp, any maxdim)
/// and streaming homology reduced to zero differentials (rips_homology.cpp, 1 <= maxdim <= 3,
/// n < 65536); `automatic` takes homology wherever it applies.
enum class RipsEngine { automatic, cohomology, homology };

/// The edges behind one bar, as vertex numbers: {b1, b2, d1, d2}. (b1, b2) is the birth edge, the
/// longest edge of the simplex that creates the class (a bar of degree 0 is born at a vertex: b1
/// is that vertex, b2 = -1); (d1, d2) is the death edge, the longest edge of the simplex that
/// kills it, -1, -1 for an essential class. Their lengths are the birth and the death. Among
/// edges of equal length the one latest in the engine's filtration order is taken: cohomology
/// orders equal diameters by decreasing colex index (the edge of least index b2 (b2 - 1) / 2 + b1
/// is taken), homology by increasing colex index (the edge of greatest index; in its top degree a
/// tie between killing simplices goes by the order it meets them, see rips_homology.cpp). Vertices
/// are ascending within an edge.
using PairEdges = std::array<std::int64_t, 4>;

/// Vietoris-Rips barcodes in degrees 0..maxdim of the n x n distance matrix D (row-major
/// float32; only the strict lower triangle D[i * n + j], j < i, is read; +inf entries are absent
/// edges). Simplices with a diameter above `threshold` are left out; pass the enclosing radius
/// (or any larger value) for the full barcode. Bars of zero length are dropped; H0 keeps one
/// [0, inf) bar per connected component. Throws std::overflow_error when C(n, maxdim + 2) does
/// not fit in a signed 64-bit simplex index (cohomology), std::invalid_argument for bad sizes or
/// an engine that does not apply. With `pairs`, (*pairs)[k][t] receives the edges of bars[k][t]
/// (the degree-0 bar [0, d) of a component that merges into an older one: its root, the vertex
/// of least number, and the merging edge); both engines record them. n_threads parallelises the
/// homology engine (see rips_barcodes_homology).
std::vector<std::vector<Bar>> rips_barcodes(const float* D, index_t n, int maxdim, float threshold,
                                            std::vector<std::vector<PairEdges>>* pairs = nullptr,
                                            RipsEngine engine = RipsEngine::automatic,
                                            int n_threads = 1);

/// The streaming-homology engine of rips_barcodes alone (1 <= maxdim <= 3, n < 65536);
/// n_threads lists and sorts the simplices concurrently, and from 2 on runs the reduction as a
/// two-stage pipeline (the lower degrees and the coface search, then the top degree); the result
/// does not depend on it. `pairs` as in rips_barcodes.
std::vector<std::vector<Bar>> rips_barcodes_homology(
    const float* D, index_t n, int maxdim, float threshold, int n_threads = 1,
    std::vector<std::vector<PairEdges>>* pairs = nullptr);

/// Enclosing radius min_i max_j D[i, j] of a full n x n matrix (row-major): beyond it the
/// Rips complex is a cone, so truncating there changes no barcode. +inf for n == 0.
float enclosing_radius(const float* D, index_t n);

/// What check_distance_matrix found: `clean` when the n x n matrix (row-major) has no NaN, no
/// negative entry, a zero diagonal, is symmetric to (rtol, atol) as numpy's allclose(D, D.T,
/// rtol, atol) computes it in D's precision (+inf entries equal to their mirror), and (float64)
/// has no finite entry above float32's largest; then `enclosing` is its enclosing radius as
/// enclosing_radius computes it on the float32 matrix (+inf for n == 0).
struct DistanceCheck {
    bool clean;
    float enclosing;
};

/// vr_barcode's checks of a distance matrix in one pass over its rows and one over pairs of
/// mirrored 128 x 128 tiles, on n_threads. The float64 overload also writes D rounded to float32
/// into out32 (n x n) when it is not null (complete only when the result is clean).
DistanceCheck check_distance_matrix(const float* D, index_t n, double rtol, double atol,
                                    int n_threads = 1);
DistanceCheck check_distance_matrix(const double* D, index_t n, double rtol, double atol,
                                    int n_threads = 1, float* out32 = nullptr);

/// The reductions behind r_cross_barcode_h1, all exact: `automatic` runs cohomology under a
/// budget of CPU time (of the threads of this reduction together) and hands over to homology
/// once its time so far, projected over all its columns, exceeds it (checked from 1/16 of the
/// budget on), or past four budgets in any case.
enum class CrossEngine { automatic, cohomology, homology };

/// R-Cross-Barcode_1 from the n x n matrices w (distances of the first representation) and
/// m = min(w, w~) (row-major float32, symmetric, zero diagonal, m <= w elementwise). Equal to
/// the degree-1 barcode of the doubled matrix [[0, w^T], [w, m]]: computed on the cone form
/// (vertices 0..n-1 and an apex c; edges (i, j) at m_ij, ordinary triangles at their
/// m-diameter, one cone triangle (i, j, c) at w_ij per edge), truncated at the enclosing radius
/// of w, either as relative cohomology (rips.cpp; n_threads parallelises the neighbour lists,
/// the search for the columns that are not zero-persistence pairs, the only ones it stores and
/// reduces, and from 2 on their reduction, in rounds of columns taken further side by side and
/// concluded in order: bars and pairs do not depend on n_threads) or as streaming relative homology
/// (rips_cross_homology.cpp, single-threaded). Returns the finite bars. Throws
/// std::invalid_argument when some m_ij > w_ij. With `pairs`, (*pairs)[t] receives the edges of
/// bar t in the vertex numbers of the doubled matrix (0..n-1 its first block, n..2n-1 the second):
/// the birth edge (n + i, n + j) of m_ij; the death edge (n + i, n + j) of an ordinary triangle's
/// longest m-edge, or (i, n + j), i < j, for a cone triangle at w_ij (the cross edge of length
/// w_ij; (j, n + i) has the same length).
std::vector<Bar> r_cross_barcode_h1(const float* w, const float* m, index_t n, int n_threads = 1,
                                    CrossEngine engine = CrossEngine::automatic,
                                    std::vector<PairEdges>* pairs = nullptr);

/// Bytes rips_barcodes holds for an n x n matrix besides the input, in degrees up to
/// min(maxdim, 1): its symmetric float32 copy and the edge list (16 bytes an edge), from degree 1
/// on the H1 columns and the reducer's tables. Measured peaks of vr_barcode (with the caller's
/// float32 copy and validation temporaries): 36 n^2 for maxdim = 0, 60 n^2 for maxdim >= 1.
/// The simplices of degrees >= 2 are bounded by rips_simplex_bytes.
std::int64_t rips_workspace_bytes(index_t n, int maxdim);

/// Upper bound on the bytes of the simplex lists rips_barcodes stores for degrees 2..maxdim of D
/// (n x n, row-major float32) truncated at `threshold`. A simplex with s vertices is a clique of
/// the threshold graph; counted once from each of its vertices there are at most
/// sum_v C(deg_v, s - 1) / s of them (deg_v: the neighbours of v within the threshold, +inf
/// entries absent). Degree k keeps the (k + 1)-vertex columns and, to seed the next degree, the
/// k-vertex simplices: 56 bytes each with the sort and the reducer's tables (measured on dense
/// random clouds). Returns 56 max_{2 <= k <= maxdim} (cliques(k + 1) + cliques(k)) as a double
/// (it grows combinatorially; saturates at the largest finite double); 0 for maxdim < 2.
double rips_simplex_bytes(const float* D, index_t n, int maxdim, float threshold);

/// Whether `automatic` takes the homology engine for n points and maxdim (1 <= maxdim <= 3,
/// n < 65536).
bool rips_homology_applies(index_t n, int maxdim);

/// Bytes a homology-engine run of rips_barcodes holds at its peak for D (n x n, row-major
/// float32) truncated at `threshold`, counting the float32 matrix it reads: 8 n^2 (that matrix
/// and the engine's symmetric copy), 8 n ceil(n / 64) (the bit sets of the edges taken), 24 n
/// (union-find and marks), for maxdim = 2 2 n^2 (a 32-bit slot per edge), a bit per vertex
/// (maxdim 1) or per edge (maxdim 2) in 64-bit words (whether its active list may hold links), and
/// 40 bytes per simplex of degrees 1..maxdim (cliques of 2..maxdim+1 vertices, bounded as in
/// rips_simplex_bytes; exact for the edges), 56 for degrees
/// >= 2 with n_threads >= 2. Of the 40 bytes, 16 are the simplex's list entry (8 for an edge,
/// packed); the rest covers the radix sort's buffer (16, an edge 8) while the lists are sorted,
/// then the homology classes, the live
/// simplices and the active lists of the reduction. That rest, and the 16 more of two threads
/// (per-thread allocation arenas), are measured figures, not bounds: with the true simplex
/// counts, the peak RSS growth of one rips_barcodes call over the input was 16.6 bytes of
/// reduction state per listed simplex on o3_1024 (H3), below the sort's 16 on a Gaussian cloud
/// (H1, 1.7 million edges) and on sphere_3_192 (H2); measured over modelled 0.84, 0.83 and 0.82
/// on one thread, 0.86, 0.75 and 0.79 on two (bench/notes/topology-speed.md). Data whose classes
/// grow long can exceed it; the clique bounds are loose above degree 1 (o3_1024: 4.5x the true
/// counts' model). The rows of D are counted on n_threads.
double rips_homology_bytes(const float* D, index_t n, int maxdim, float threshold,
                           int n_threads = 1);

/// Bytes of the larger of the two engines of r_cross_barcode_h1 for n points, E = n (n - 1) / 2
/// edges (the engines run one after the other, so the peak is the larger): cohomology keeps a
/// 16-byte entry per column it reduces (twice while they are gathered) and the reducer's pivot
/// table, at most 48 E (in practice the columns are about as many as the bars: 45,427 of 31
/// million edges for the 64-D family at n = 10,000), and per vertex its max(64, n / 8) nearest
/// neighbours under m (8 bytes each) and their set as n bits; with n_threads >= 2 the parallel
/// reduction adds per thread a working column and 32 partly reduced columns' combinations,
/// which, like the reduced columns' own, depend on the data and are not included;
/// streaming homology keeps per edge its end points (16), filtration value (4), cone
/// entry (4), class and inverse-index headers (48), hash (8) and two flags (2), 82 E, plus the n x
/// n table of 32-bit edge ranks and an n x n bit set. The contents of the homology classes depend
/// on the data and are not included (noise against a plane, 1200 points: about 290 n^2 more).
std::int64_t r_cross_workspace_bytes(index_t n);

/// The streaming-homology engine alone: fast where the cohomology cocycles are large cuts (a
/// noise representation against a structured one). `pairs` as in r_cross_barcode_h1.
std::vector<Bar> r_cross_barcode_h1_homology(const float* w, const float* m, index_t n,
                                             std::vector<PairEdges>* pairs = nullptr);

}  // namespace latentbridge
