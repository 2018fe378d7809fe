"""The homology engine of vr_barcode (maxdim 1..3) on several threads against one thread and peers.

From two threads on, the engine runs as a pipeline: the lower stage (H0, the degrees below the top
one, the boundaries of the top degree's simplices and part of the coface search) on one thread,
the top degree's reduction on another, joined by a queue of blocks of simplices. A wrong hand-over
(a block reduced out of order, a coface search that reads bit sets already holding later edges
without testing the distances, candidates of the lower stage that skip a vertex) shows as bars or
pairs that depend on the thread count, or that differ from giotto-ph's or redzed's barcode. The
inputs give the top degree hundreds to thousands of simplices to reduce (hundreds of bars in it),
tied ones many killers of equal diameter, where the order in which the cofaces are met decides
the pairs.

Oracles: giotto-ph and redzed (bars; with distinct distances giotto-ph's generators), the lengths
of the reported edges in the matrix, and the engine on one thread (the same reduction without the
pipeline). The engine's raw output (bars and pairs in the order it emits them) must not depend on
the number of threads at all.
"""

import numpy as np
import pytest
from _fuzz import FUZZ
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from test_topology import canon
from test_topology_pairs import check_lengths, edge, tied_matrix

import latentbridge as lb
from latentbridge import _core

gph = pytest.importorskip("gph")


def cloud_matrix(seed, n, d, levels=None, sphere=False):
    """float32 distances of n Gaussian points in R^d (on the unit sphere with `sphere`); with
    `levels`, rounded up to multiples of 1 / levels (massive ties)."""
    X = np.random.default_rng(seed).standard_normal((n, d))
    if sphere:
        X /= np.linalg.norm(X, axis=1, keepdims=True)
    D = cdist(X, X)
    if levels is not None:
        D = np.ceil(D * levels) / levels
    return D.astype(np.float32)


def engine(D, maxdim, threads, threshold=None):
    """The homology engine's raw (bars, pairs), on `threads` threads."""
    thr = float(_core.enclosing_radius(D)) if threshold is None else threshold
    return _core.rips_barcodes(np.ascontiguousarray(D, dtype=np.float32), maxdim, thr,
                               return_pairs=True, engine="homology", n_threads=threads)


def columns_at_least(D, maxdim, threshold):
    """A lower bound on the simplices of degree maxdim that the top degree reduces (those born
    with a zero boundary): every maxdim-simplex is one unless it kills a class of degree
    maxdim - 1, and those are at most the (maxdim - 1)-simplices. Counted here as cliques of
    maxdim + 1 and maxdim vertices of the threshold graph."""
    A = (D <= threshold) & ~np.eye(len(D), dtype=bool)
    cliques = {1: len(D), 2: int(A.sum()) // 2}
    cliques[3] = int((A.astype(np.int64) @ A * A).sum()) // 6
    if maxdim == 3:
        count = 0
        for i, j in zip(*np.nonzero(np.triu(A, 1))):
            common = A[i] & A[j]
            count += int(A[np.ix_(common, common)].sum()) // 2   # edges among common neighbours
        cliques[4] = count // 6                                    # each 4-clique has 6 edges
    return cliques[maxdim + 1] - cliques[maxdim]


def assert_same(a, b):
    for k in range(len(a[0])):
        np.testing.assert_array_equal(a[0][k], b[0][k])
        np.testing.assert_array_equal(a[1][k], b[1][k])


CASES = {
    # name: (matrix, maxdim, threshold or None, least number of bars in the top degree)
    "gauss-h1": (lambda: cloud_matrix(0, 400, 4), 1, None, 200),
    "gauss-h1-tied": (lambda: cloud_matrix(0, 400, 4, levels=8), 1, None, 100),
    "sphere-h2": (lambda: cloud_matrix(1, 120, 4, sphere=True), 2, None, 20),
    "sphere-h2-tied": (lambda: cloud_matrix(1, 120, 4, levels=6, sphere=True), 2, None, 5),
    "sphere-h3": (lambda: cloud_matrix(2, 60, 4, sphere=True), 3, None, 1),
    "sphere-h3-tied": (lambda: cloud_matrix(2, 60, 4, levels=5, sphere=True), 3, None, 1),
    "cloud-h3-threshold": (lambda: cloud_matrix(3, 70, 5), 3, 2.2, 0),
    "integers-h2": (lambda: tied_matrix(5, 40, 3), 2, None, 30),
    "integers-h3": (lambda: tied_matrix(6, 24, 3), 3, None, 1),
}


@pytest.mark.parametrize("name", list(CASES))
def test_threads_give_the_sequential_bars_and_pairs_and_the_peers_barcodes(name):
    make, maxdim, threshold, least = CASES[name]
    D = make()
    ref = engine(D, maxdim, 1, threshold)
    assert len(ref[0][maxdim]) >= least
    thr = float(_core.enclosing_radius(D)) if threshold is None else threshold
    assert columns_at_least(D, maxdim, thr) >= 300
    for threads in (2, 3, 4):
        assert_same(engine(D, maxdim, threads, threshold), ref)
    theirs = gph.ripser_parallel(D.astype(np.float64), maxdim=maxdim, metric="precomputed",
                                 n_threads=1, thresh=thr)["dgms"]
    for k in range(maxdim + 1):
        np.testing.assert_array_equal(canon(ref[0][k]), canon(theirs[k]))
        check_lengths(D, ref[0][k], ref[1][k], k)


@pytest.mark.parametrize("name", ["gauss-h1-tied", "sphere-h2", "integers-h2"])
def test_threads_bars_equal_redzed(name):
    redzed = pytest.importorskip("redzed_tda")
    make, maxdim, _, _ = CASES[name]
    D = make()
    theirs = redzed.rips(D.astype(np.float64), maxdim, float(_core.enclosing_radius(D)))
    for threads in (1, 2, 4):
        bars = lb.vr_barcode(D, maxdim=maxdim, n_jobs=threads)
        for k in range(maxdim + 1):
            np.testing.assert_array_equal(canon(bars[k]), canon(theirs[k]))


@pytest.mark.parametrize("maxdim, n, sphere", [(1, 200, False), (2, 120, True)])
def test_threads_pairs_are_giottos_generators_with_distinct_distances(maxdim, n, sphere):
    D = cloud_matrix(7 + maxdim, n, 4, sphere=sphere)
    gens = gph.ripser_parallel(D.astype(np.float64), maxdim=maxdim, metric="precomputed",
                               n_threads=1, return_generators=True)["gens"]
    theirs = sorted((edge(*g[:2]), edge(*g[2:])) for g in gens[1][maxdim - 1])
    for threads in (1, 2, 4):
        _, pairs = lb.vr_barcode(D, maxdim=maxdim, return_pairs=True, n_jobs=threads)
        ours = sorted((edge(*p[:2]), edge(*p[2:])) for p in pairs[maxdim])
        assert len(ours) > 15 and ours == theirs


def test_threads_repeated_calls_are_deterministic():
    D = cloud_matrix(1, 70, 4, levels=6, sphere=True)
    first = engine(D, 2, 2)
    for _ in range(4):
        assert_same(engine(D, 2, 2), first)


@FUZZ
@given(n=st.integers(2, 40), levels=st.integers(1, 6), seed=st.integers(0, 2**32 - 1),
       maxdim=st.integers(1, 3), threads=st.sampled_from((2, 3, 5)))
def test_threads_fuzz_tied_matrices(n, levels, seed, maxdim, threads):
    """Random symmetric matrices of small integers (any ties, not metrics) up to maxdim 3: the
    engine on `threads` threads against one thread, and the bars against giotto-ph."""
    D = tied_matrix(seed, n, levels)
    ref = engine(D, maxdim, 1)
    assert_same(engine(D, maxdim, threads), ref)
    theirs = gph.ripser_parallel(D.astype(np.float64), maxdim=maxdim, metric="precomputed",
                                 n_threads=1, thresh=float(_core.enclosing_radius(D)))["dgms"]
    for k in range(maxdim + 1):
        np.testing.assert_array_equal(canon(ref[0][k]), canon(theirs[k]))
