"""Persistence pairs of vr_barcode and r_cross_barcode (``return_pairs=True``).

Oracles: the distance matrix itself (every bar's birth and death are the lengths of its edges; for
the R-Cross-Barcode in the 2N x 2N matrix built here from the paper's definition), giotto-ph's
``return_generators`` and redzed's ``simplex_pairs`` (whose death simplices' longest edges are found
here) on inputs with distinct distances, a brute-force boundary-matrix reduction written here (for
tied matrices, in the homology engine's filtration order), and the engines against one another.
Both Vietoris-Rips engines (cohomology and homology) are checked.
"""

import itertools
from math import comb

import numpy as np
import pytest
from _fuzz import FUZZ
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from test_topology import doubled, official_inputs

import latentbridge as lb
from latentbridge import _core

gph = pytest.importorskip("gph")


# ---- helpers -------------------------------------------------------------------------------------

def cloud(seed, n, d=3):
    return np.random.default_rng(seed).standard_normal((n, d))


def as_float32_distances(X):
    return cdist(X, X).astype(np.float32)


def edge(a, b):
    return (min(a, b), max(a, b))


def longest_edge(D, simplex):
    """The longest edge of a simplex (distinct distances: unique)."""
    vs = list(simplex)
    best = max(((a, b) for i, a in enumerate(vs) for b in vs[:i]), key=lambda e: D[e[0], e[1]])
    return edge(*best)


def check_lengths(D, bars, pairs, degree):
    """Births and deaths are the lengths of the reported edges; essential bars have -1, -1."""
    D = np.asarray(D, dtype=np.float64)
    assert pairs.dtype == np.int64 and len(pairs) == len(bars)
    finite = np.isfinite(bars[:, 1])
    if degree == 0:
        assert pairs.shape[1] == 3
        assert np.all(bars[:, 0] == 0)
        death = pairs[:, 1:]
    else:
        assert pairs.shape[1] == 4
        np.testing.assert_array_equal(D[pairs[:, 0], pairs[:, 1]], bars[:, 0])
        assert np.all(pairs[:, 0] < pairs[:, 1])
        death = pairs[:, 2:]
    np.testing.assert_array_equal(D[death[finite, 0], death[finite, 1]], bars[finite, 1])
    assert np.all(death[finite, 0] < death[finite, 1])
    assert np.all(death[~finite] == -1)


def official_matrices(P, Q):
    """Normalised r1, r2 and the doubled matrix of the paper (test_topology's oracle)."""
    r1, r2 = official_inputs(P, Q)
    return r1, r2, doubled(r1, r2)


def cross_key(p, q, n):
    """An edge of the doubled matrix up to the twins of equal length: the cross edges (i, n + j)
    and (j, n + i) both have length w_ij, and a second-block edge (n + i, n + j) with w_ij <= w~_ij
    has it too; all map to {i, j} (the lengths are compared separately)."""
    return edge(p % n, q % n)


# ---- Vietoris-Rips -------------------------------------------------------------------------------

VR_ENGINES = ["cohomology", "homology"]


def vr_pairs(D, maxdim, engine, threshold=None):
    """(bars, pairs) of one engine of vr_barcode (``"auto"``: the public function)."""
    if engine == "auto":
        return lb.vr_barcode(D, maxdim=maxdim, threshold=threshold, return_pairs=True)
    D32 = np.ascontiguousarray(D, dtype=np.float32)
    return _core.rips_barcodes(D32, maxdim, threshold, return_pairs=True, engine=engine)


def test_vr_barcode_takes_the_homology_engine_with_pairs():
    # vr_barcode's pairs are the homology engine's (automatic keeps it when pairs are asked for)
    D = as_float32_distances(cloud(3, 20))
    bars, pairs = vr_pairs(D, 2, "auto")
    hb, hp = vr_pairs(D, 2, "homology")
    for k in range(3):
        order = np.lexsort((hb[k][:, 1], hb[k][:, 0]))
        np.testing.assert_array_equal(bars[k], hb[k][order])
        np.testing.assert_array_equal(pairs[k], hp[k][order])


@pytest.mark.parametrize("engine", VR_ENGINES)
@pytest.mark.parametrize("seed", range(4))
def test_vr_pairs_lengths_are_the_bars(seed, engine):
    D = as_float32_distances(cloud(seed, 24))
    bars, pairs = vr_pairs(D, 2, engine)
    assert len(bars) == len(pairs) == 3
    for k in range(3):
        check_lengths(D, bars[k], pairs[k], k)
    # the pairs do not change the bars
    for b, ref in zip(bars, _core.rips_barcodes(D, 2, None, engine=engine)):
        np.testing.assert_array_equal(b, ref)


@pytest.mark.parametrize("engine", VR_ENGINES)
def test_vr_pairs_lengths_with_ties_and_threshold(engine):
    # a 5 x 5 grid: many equal distances; a threshold below the square's diagonal leaves each
    # of the 16 unit squares as an essential H1 class
    g = np.array([(x, y) for x in range(5) for y in range(5)], dtype=np.float64)
    D = as_float32_distances(g)
    bars, pairs = vr_pairs(D, 2, engine, threshold=1.2)
    for k in range(3):
        check_lengths(D, bars[k], pairs[k], k)
    assert np.sum(np.isinf(bars[1][:, 1])) == 16
    assert np.all(pairs[1][:, 2:] == -1)
    bars, pairs = vr_pairs(D, 1, engine)
    for k in range(2):
        check_lengths(D, bars[k], pairs[k], k)


@pytest.mark.parametrize("engine", VR_ENGINES)
def test_vr_pairs_lengths_with_absent_edges(engine):
    # +inf entries are absent edges: no reported edge may be one, and with an infinite threshold
    # the classes they leave open are essential
    # (a noisy circle whose chords beyond two steps are absent, and a few short edges too)
    t = np.linspace(0, 2 * np.pi, 18, endpoint=False)
    X = np.c_[np.cos(t), np.sin(t)] + 0.03 * cloud(6, 18, 2)
    D = as_float32_distances(X)
    D[D > 0.8] = np.inf
    iu = np.triu_indices(18, 1)
    D[iu[0][::9], iu[1][::9]] = np.inf
    D = np.minimum(D, D.T)
    bars, pairs = vr_pairs(D, 2, engine, threshold=np.inf)
    for k in range(3):
        check_lengths(D, bars[k], pairs[k], k)
    assert np.isinf(bars[1][:, 1]).any()
    ref = gph.ripser_parallel(D.astype(np.float64), maxdim=2, metric="precomputed",
                              n_threads=1)["dgms"]
    for b, r in zip(bars, ref):
        r = r[r[:, 1] > r[:, 0]]
        np.testing.assert_array_equal(b[np.lexsort((b[:, 1], b[:, 0]))],
                                      r[np.lexsort((r[:, 1], r[:, 0]))])


@pytest.mark.parametrize("engine", VR_ENGINES)
def test_vr_pairs_agree_with_giotto_generators(engine):
    for seed in range(3):
        D = as_float32_distances(cloud(10 + seed, 30, 4))
        bars, pairs = vr_pairs(D, 2, engine)
        gens = gph.ripser_parallel(D.astype(np.float64), maxdim=2, metric="precomputed",
                                   n_threads=1, return_generators=True)["gens"]
        # degree 0: the merging edges (every vertex is born at 0, so which vertex of the dying
        # component is named is a convention: ours is its least vertex, giotto-ph's another)
        ours = sorted(edge(a, b) for v, a, b in pairs[0] if a >= 0)
        theirs = sorted(edge(a, b) for v, a, b in gens[0])
        assert ours == theirs
        dying = [v for v, a, b in pairs[0] if a >= 0]
        assert len(set(dying)) == len(dying) and 0 not in dying   # vertex 0's component survives
        for k in (1, 2):
            ours = sorted((edge(*p[:2]), edge(*p[2:])) for p in pairs[k])
            theirs = sorted((edge(*g[:2]), edge(*g[2:])) for g in gens[1][k - 1])
            assert ours == theirs


@pytest.mark.parametrize("engine", VR_ENGINES)
def test_vr_pairs_agree_with_redzed_simplex_pairs(engine):
    redzed = pytest.importorskip("redzed_tda")
    for seed in range(3):
        D = as_float32_distances(cloud(20 + seed, 25, 3))
        bars, pairs = vr_pairs(D, 2, engine)
        D64 = D.astype(np.float64)
        _, simplices = redzed.rips(D64, 2, float(_core.enclosing_radius(D)), True)
        ours = sorted(edge(a, b) for v, a, b in pairs[0] if a >= 0)
        theirs = sorted(edge(*d) for b, d in simplices[0] if d)
        assert ours == theirs       # the merging edges
        for k in (1, 2):
            ours = sorted((edge(*p[:2]), edge(*p[2:]) if p[2] >= 0 else None) for p in pairs[k])
            theirs = sorted((longest_edge(D64, b), longest_edge(D64, d) if d else None)
                            for b, d in simplices[k])
            assert ours == theirs


# ---- R-Cross-Barcode -----------------------------------------------------------------------------

def cross_problem(seed, n, kind="noisy"):
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((n, 6))
    if kind == "noisy":     # a noisy linear map of P
        Q = P @ rng.standard_normal((6, 4)) / 4 + 0.5 * rng.standard_normal((n, 4))
    elif kind == "plane":   # noise first, a plane second: the homology engine's family
        Q = rng.standard_normal((n, 2)) @ rng.standard_normal((2, 6))
    else:                   # a noisy circle against noise: bars in degree 2
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        P = np.c_[np.cos(t), np.sin(t)] + 0.05 * rng.standard_normal((n, 2))
        Q = rng.standard_normal((n, 3))
    return P, Q


@pytest.mark.parametrize("dim, kind", [(0, "noisy"), (0, "plane"), (1, "noisy"), (1, "plane"),
                                       (2, "circle")])
def test_r_cross_pairs_lengths_in_the_doubled_matrix(dim, kind):
    n = 30 if dim < 2 else 16
    P, Q = cross_problem(dim, n, kind)
    bars, pairs = lb.r_cross_barcode(P, Q, dim=dim, return_pairs=True)
    assert len(bars) > 0 or dim == 0    # degree 0: only the essential bar, which is not finite
    _, _, M = official_matrices(P, Q)
    M32 = M.astype(np.float32).astype(np.float64)
    check_lengths(M32, bars, pairs, dim)
    np.testing.assert_array_equal(bars, lb.r_cross_barcode(P, Q, dim=dim))
    if dim == 1:    # births in the second block, where w~ < w
        assert np.all(pairs[:, :2] >= n)
        r1, r2, _ = official_matrices(P, Q)
        assert np.all(r2[pairs[:, 0] - n, pairs[:, 1] - n] < r1[pairs[:, 0] - n, pairs[:, 1] - n])


@pytest.mark.parametrize("engine", ["auto", "cohomology", "homology"])
def test_every_r_cross_engine_records_its_pairs(engine):
    for kind in ("noisy", "plane"):
        P, Q = cross_problem(5, 40, kind)
        r1, r2, M = official_matrices(P, Q)
        w = r1.astype(np.float32)
        m = np.minimum(r1, r2).astype(np.float32)
        np.fill_diagonal(w, 0)
        np.fill_diagonal(m, 0)
        bars, pairs = _core.r_cross_barcode_h1(w, m, 1, engine, return_pairs=True)
        plain = _core.r_cross_barcode_h1(w, m, 1, engine)
        np.testing.assert_array_equal(bars, plain)
        check_lengths(M.astype(np.float32).astype(np.float64), bars, pairs, 1)


def test_r_cross_engines_pick_the_same_edges():
    # distinct distances: the two engines' pairs agree up to the twins of equal length
    for kind in ("noisy", "plane"):
        P, Q = cross_problem(7, 40, kind)
        r1, r2, _ = official_matrices(P, Q)
        w = r1.astype(np.float32)
        m = np.minimum(r1, r2).astype(np.float32)
        n = len(w)
        keyed = []
        for engine in ("cohomology", "homology"):
            bars, pairs = _core.r_cross_barcode_h1(w, m, 1, engine, return_pairs=True)
            keyed.append(sorted((tuple(b), cross_key(*p[:2], n), cross_key(*p[2:], n))
                                for b, p in zip(bars.tolist(), pairs)))
        assert keyed[0] == keyed[1]


def test_r_cross_pairs_agree_with_giotto_on_the_doubled_matrix():
    for seed, kind in [(1, "noisy"), (2, "plane"), (3, "noisy")]:
        P, Q = cross_problem(seed, 20, kind)
        _, _, M = official_matrices(P, Q)
        n = len(P)
        bars, pairs = lb.r_cross_barcode(P, Q, return_pairs=True)
        out = gph.ripser_parallel(M, maxdim=1, metric="precomputed", n_threads=1,
                                  return_generators=True)
        gens = out["gens"][1][0]
        theirs = sorted((cross_key(*g[:2], n), cross_key(*g[2:], n)) for g in gens
                        if M[g[2], g[3]] > M[g[0], g[1]])
        ours = sorted((cross_key(*p[:2], n), cross_key(*p[2:], n)) for p in pairs)
        assert len(ours) > 0 and ours == theirs


def test_r_cross_pairs_precomputed():
    P, Q = cross_problem(4, 25)
    wP, wQ = cdist(P, P), cdist(Q, Q)
    bars, pairs = lb.r_cross_barcode(wP, wQ, metric="precomputed", return_pairs=True)
    ref_bars, ref_pairs = lb.r_cross_barcode(P, Q, return_pairs=True)
    np.testing.assert_allclose(bars, ref_bars, rtol=1e-6)
    np.testing.assert_array_equal(pairs, ref_pairs)


def test_r_cross_pairs_do_not_depend_on_threads():
    P, Q = cross_problem(8, 60)
    bars, pairs = lb.r_cross_barcode(P, Q, return_pairs=True)
    bars2, pairs2 = lb.r_cross_barcode(P, Q, return_pairs=True, n_jobs=2)
    np.testing.assert_array_equal(bars, bars2)
    np.testing.assert_array_equal(pairs, pairs2)


# ---- heavy ties: every engine's edges still have the bars' lengths ---------------------------------

def tied_matrix(seed, n, levels):
    """A symmetric n x n matrix of small integers (massive ties), zero diagonal."""
    rng = np.random.default_rng(seed)
    A = rng.integers(1, levels + 1, size=(n, n)).astype(np.float32)
    A = np.triu(A, 1)
    return A + A.T


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 12), levels=st.integers(1, 4))
def test_vr_pairs_lengths_under_ties(seed, n, levels):
    D = tied_matrix(seed, n, levels)
    for engine in VR_ENGINES:
        bars, pairs = vr_pairs(D, 2, engine)
        for k in range(3):
            check_lengths(D, bars[k], pairs[k], k)


def colex_latest_edge(D, simplex):
    """The longest edge of a simplex, ties to the greatest colex index (the homology engine's
    rule: its filtration orders equal diameters by increasing colex index)."""
    return max(itertools.combinations(sorted(simplex), 2),
               key=lambda e: (D[e[0], e[1]], comb(e[1], 2) + e[0]))


def brute_force_pairs(D, maxdim, threshold):
    """Persistence pairs by the standard reduction of the full boundary matrix over Z/2, simplices
    up to maxdim + 1 ordered by (diameter, degree, colex index): per degree, the multiset of rows
    (birth, death, b1, b2, d1, d2) of the finite bars of positive length."""
    n = len(D)
    cells = []
    for size in range(1, maxdim + 3):
        for s in itertools.combinations(range(n), size):
            diam = max((D[a, b] for a, b in itertools.combinations(s, 2)), default=0.0)
            if diam <= threshold and np.isfinite(diam):
                colex = sum(comb(v, i + 1) for i, v in enumerate(s))
                cells.append((diam, size - 1, colex, s))
    cells.sort(key=lambda c: c[:3])
    index = {c[3]: t for t, c in enumerate(cells)}
    low_of = {}
    rows = [[] for _ in range(maxdim + 1)]
    for t, (diam, deg, _, s) in enumerate(cells):
        col = {index[f] for f in itertools.combinations(s, deg)} if deg > 0 else set()
        while col and max(col) in low_of:
            col ^= low_of[max(col)]
        if not col:
            continue
        low = max(col)
        low_of[low] = col
        birth = cells[low]
        if birth[1] <= maxdim and birth[0] < diam:
            b = colex_latest_edge(D, birth[3]) if birth[1] > 0 else ()
            rows[birth[1]].append((birth[0], diam) + tuple(b) + colex_latest_edge(D, s))
    return [sorted(r) for r in rows]


def killing_edges(D, k, death):
    """The edges that can be the death edge of a degree-k bar dying at `death`: the longest edge
    (greatest colex index among ties) of each (k + 1)-simplex of diameter `death`."""
    return {colex_latest_edge(D, t) for t in itertools.combinations(range(len(D)), k + 2)
            if max(D[a, b] for a, b in itertools.combinations(t, 2)) == death}


def rows(bars, pairs):
    finite = np.isfinite(bars[:, 1])
    return sorted((float(b[0]), float(b[1])) + tuple(int(v) for v in p)
                  for b, p in zip(bars[finite], pairs[finite]))


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(3, 8), levels=st.integers(1, 4))
def test_homology_engine_pairs_under_ties_equal_a_brute_force_reduction(seed, n, levels):
    # below the top degree the homology engine's filtration order is (diameter, degree, colex
    # index), so its pairs are those of the standard reduction in that order, and its edges follow
    # the greatest-colex tie rule: with maxdim 3, degrees 1 and 2 are checked exactly
    D = tied_matrix(seed, n, levels).astype(np.float64)
    threshold = float(np.min(D.max(axis=1)))
    expected = brute_force_pairs(D, 3, threshold)
    bars, pairs = vr_pairs(D, 3, "homology")
    for k in (1, 2):
        assert rows(bars[k], pairs[k]) == expected[k]
    # degree 0: the merging edges of Kruskal's algorithm in the same order
    got = sorted(edge(a, b) for v, a, b in pairs[0] if a >= 0)
    assert got == sorted(r[2:] for r in expected[0])


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(3, 9), levels=st.integers(1, 4),
       maxdim=st.integers(1, 3))
def test_homology_engine_top_degree_pairs_under_ties(seed, n, levels, maxdim):
    # the simplices of degree maxdim + 1 are met at the birth of their latest facet, not in colex
    # order, so among killers of equal diameter the engine's choice may differ from the standard
    # reduction's (vr_barcode's docstring): the bars are still those of the reduction, and each
    # death edge is the longest edge (greatest-colex tie rule) of a simplex of that diameter
    D = tied_matrix(seed, n, levels).astype(np.float64)
    threshold = float(np.min(D.max(axis=1)))
    expected = brute_force_pairs(D, maxdim, threshold)[maxdim]
    bars, pairs = vr_pairs(D, maxdim, "homology")
    got = rows(bars[maxdim], pairs[maxdim])
    assert [r[:2] for r in got] == [r[:2] for r in expected]
    for birth, death, b1, b2, d1, d2 in got:
        assert D[b1, b2] == birth
        assert (d1, d2) in killing_edges(D, maxdim, death)


def test_homology_engine_top_degree_killer_differs_from_colex_order():
    # a case where the two orders pick different killers (seed 22, 6 points, 4 levels: found by a
    # scan of 1440 tied matrices), so the docstring's caveat is about a real difference: the bars
    # agree, one death edge does not
    D = tied_matrix(22, 6, 4).astype(np.float64)
    threshold = float(np.min(D.max(axis=1)))
    expected = brute_force_pairs(D, 2, threshold)[2]
    got = rows(*[x[2] for x in vr_pairs(D, 2, "homology")])
    assert [r[:2] for r in got] == [r[:2] for r in expected]
    assert got != expected


def digit_matrix(seed, n):
    """A symmetric n x n float32 matrix, zero diagonal, whose entries are drawn from values that
    share their high 16 bits in groups and differ in either byte of the low 16 (the two stages of
    the engine's radix sort by diameter), with heavy ties: 0x3f80, 0x3f81, 0x4000 above
    0x0000, 0x0001, 0x00ff, 0x0100, 0x0101, 0xff00, 0xffff."""
    bits = np.array([(h << 16) | lo for h in (0x3F80, 0x3F81, 0x4000)
                     for lo in (0x0000, 0x0001, 0x00FF, 0x0100, 0x0101, 0xFF00, 0xFFFF)],
                    dtype=np.uint32)
    rng = np.random.default_rng(seed)
    A = np.triu(bits.view(np.float32)[rng.integers(0, len(bits), size=(n, n))], 1)
    return A + A.T


@pytest.mark.parametrize("seed", range(3))
def test_homology_engine_pairs_across_radix_digits_equal_a_brute_force_reduction(seed):
    # the edges and triangles are sorted by diameter in a pass on the high 16 bits and then, per
    # group of equal high bits, two stable passes on the low bytes: every tie must keep the colex
    # order, for every n_jobs. (Degrees 0 and 1 only: the top degree's cofaces are visited from
    # their latest facets, an order that may differ from the colex order among ties.)
    D = digit_matrix(seed, 20).astype(np.float64)
    threshold = float(np.min(D.max(axis=1)))
    expected = brute_force_pairs(D, 2, threshold)
    for n_jobs in (1, 2):
        bars, pairs = lb.vr_barcode(D, maxdim=2, return_pairs=True, n_jobs=n_jobs)
        finite = np.isfinite(bars[1][:, 1])
        got = sorted((float(b[0]), float(b[1])) + tuple(int(v) for v in p)
                     for b, p in zip(bars[1][finite], pairs[1][finite]))
        assert got == expected[1]
        got = sorted(edge(a, b) for v, a, b in pairs[0] if a >= 0)
        assert got == sorted(r[2:] for r in expected[0])


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 12), levels=st.integers(1, 4))
def test_r_cross_pairs_lengths_under_ties(seed, n, levels):
    w = tied_matrix(seed, n, levels)
    m = np.minimum(w, tied_matrix(seed + 1, n, levels))
    M = np.zeros((2 * n, 2 * n))
    M[n:, :n] = w
    M[:n, n:] = w.T
    M[n:, n:] = m
    for engine in ("cohomology", "homology"):
        bars, pairs = _core.r_cross_barcode_h1(w, m, 1, engine, return_pairs=True)
        check_lengths(M, bars, pairs, 1)


def test_pairs_of_empty_barcodes_have_the_right_shape():
    P = cloud(0, 15)
    bars, pairs = lb.r_cross_barcode(P, P, return_pairs=True)
    assert bars.shape == (0, 2) and pairs.shape == (0, 4) and pairs.dtype == np.int64
    bars, pairs = lb.r_cross_barcode(P, 2 * P, dim=0, return_pairs=True)
    assert pairs.shape == (len(bars), 3)
    bars, pairs = lb.vr_barcode(np.zeros((1, 1)), maxdim=1, return_pairs=True)
    assert pairs[0].tolist() == [[0, -1, -1]] and pairs[1].shape == (0, 4)


# ---- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_return_pairs_must_be_a_bool(bad):
    D = as_float32_distances(cloud(0, 5))
    with pytest.raises(TypeError, match="return_pairs"):
        lb.vr_barcode(D, return_pairs=bad)
    with pytest.raises(TypeError, match="return_pairs"):
        lb.r_cross_barcode(cloud(0, 5), cloud(1, 5), return_pairs=bad)


def test_bad_maxdim_and_dim_with_pairs_raise():
    D = as_float32_distances(cloud(0, 5))
    with pytest.raises(ValueError, match="maxdim"):
        lb.vr_barcode(D, maxdim=62, return_pairs=True)
    with pytest.raises(ValueError, match="dim"):
        lb.r_cross_barcode(cloud(0, 5), cloud(1, 5), dim=3, return_pairs=True)
