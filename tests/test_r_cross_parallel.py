"""The parallel R-Cross cohomology reduction (n_threads >= 2) against the sequential one and giotto-ph.

With two or more threads the engine reduces its columns in rounds: the threads take a window of
columns further side by side against the columns stored so far, then the calling thread concludes
them in processing order, and a column whose pivot a column of the same round took goes on in the
next round. A wrong scheme shows as bars or pairs that depend on the thread count, or that differ
from giotto-ph's barcode of the official doubled matrix. The inputs have a few hundred columns
each (tens of rounds on 2 to 4 threads, columns that go on over several rounds), and the quantised
ones heavy ties, where a reduced column can take the zero-persistence pair of a later claimant,
which must then be reduced in its place.

Oracles: giotto-ph on the doubled matrix (bars; with distinct distances also its generators), the
lengths of the reported edges in that matrix, and the engine on one thread (the same reduction
without rounds).
"""

import time

import numpy as np
import pytest
from _fuzz import FUZZ
from hypothesis import given
from hypothesis import strategies as st
from test_topology import canon, doubled, official_inputs
from test_topology_pairs import check_lengths, cross_key

from latentbridge import _core

gph = pytest.importorskip("gph")


def linear_map_problem(seed, n, levels=None):
    """The bench's 64-D family (Q a noisy linear map of P), its doubled matrix snapped as the
    official code does; with `levels`, both normalised matrices rounded up to multiples of
    1 / levels (massive ties)."""
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((n, 64))
    Q = P @ rng.standard_normal((64, 64)) / 8 + 0.5 * rng.standard_normal((n, 64))
    r1, r2 = official_inputs(P, Q)
    if levels is not None:
        r1, r2 = np.ceil(r1 * levels) / levels, np.ceil(r2 * levels) / levels
    D = doubled(r1, r2)
    w = np.ascontiguousarray(D[n:, :n], dtype=np.float32)
    m = np.ascontiguousarray(D[n:, n:], dtype=np.float32)
    return D.astype(np.float32).astype(np.float64), w, m


def giotto_bars(D, **kwargs):
    return gph.ripser_parallel(D, maxdim=1, metric="precomputed", n_threads=1, **kwargs)


@pytest.mark.parametrize("seed, n, levels", [(0, 200, None), (1, 200, 16), (1, 200, 8),
                                             (1, 150, 4), (2, 120, None)])
def test_threads_give_the_sequential_bars_and_pairs_and_giottos_barcode(seed, n, levels):
    D, w, m = linear_map_problem(seed, n, levels)
    bars, pairs = _core.r_cross_barcode_h1(w, m, 1, "cohomology", return_pairs=True)
    assert len(bars) >= 40
    for threads in (2, 3, 4):
        got_bars, got_pairs = _core.r_cross_barcode_h1(w, m, threads, "cohomology",
                                                       return_pairs=True)
        np.testing.assert_array_equal(got_bars, bars)
        np.testing.assert_array_equal(got_pairs, pairs)
    ref = giotto_bars(D)["dgms"][1]
    np.testing.assert_array_equal(canon(bars), canon(ref[np.isfinite(ref[:, 1])]))
    check_lengths(D, bars, pairs, 1)


def test_threads_pairs_are_giottos_generators_with_distinct_distances():
    D, w, m = linear_map_problem(3, 160)
    n = len(w)
    gens = giotto_bars(D, return_generators=True)["gens"][1][0]
    theirs = sorted((cross_key(*g[:2], n), cross_key(*g[2:], n)) for g in gens
                    if D[g[2], g[3]] > D[g[0], g[1]])
    for threads in (1, 2, 4):
        _, pairs = _core.r_cross_barcode_h1(w, m, threads, "cohomology", return_pairs=True)
        ours = sorted((cross_key(*p[:2], n), cross_key(*p[2:], n)) for p in pairs)
        assert len(ours) > 100 and ours == theirs


def test_threads_repeated_calls_are_deterministic():
    _, w, m = linear_map_problem(4, 180, levels=16)
    first = _core.r_cross_barcode_h1(w, m, 2, "cohomology", return_pairs=True)
    for _ in range(5):
        again = _core.r_cross_barcode_h1(w, m, 2, "cohomology", return_pairs=True)
        np.testing.assert_array_equal(again[0], first[0])
        np.testing.assert_array_equal(again[1], first[1])


def test_threads_hand_over_to_homology_at_the_cpu_deadline():
    """Noise against a plane: cohomology alone takes minutes at n = 300 (its cocycles are large
    cuts); `auto` gives it a CPU budget of the reduction's threads together, then the homology
    engine takes over. With two threads the handover must still come (the call returns in
    seconds) and give that engine's bars and pairs."""
    rng = np.random.default_rng(0)
    n = 300
    P = rng.standard_normal((n, 32))
    Q = rng.standard_normal((n, 2)) @ rng.standard_normal((2, 32))
    r1, r2 = official_inputs(P, Q)
    D = doubled(r1, r2)
    w = np.ascontiguousarray(D[n:, :n], dtype=np.float32)
    m = np.ascontiguousarray(D[n:, n:], dtype=np.float32)
    ref = _core.r_cross_barcode_h1(w, m, 1, "homology", return_pairs=True)
    for threads in (2, 4):
        t0 = time.process_time()
        got = _core.r_cross_barcode_h1(w, m, threads, "auto", return_pairs=True)
        assert time.process_time() - t0 < 20.0
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
    assert len(ref[0]) > 100


@FUZZ
@given(n=st.integers(2, 70), levels=st.integers(1, 12), seed=st.integers(0, 2**32 - 1),
       threads=st.sampled_from((2, 3, 5)))
def test_threads_fuzz_tied_matrices(n, levels, seed, threads):
    """Random symmetric matrices of small integers (m = min(w, w~): any ties, not metrics), the
    engine on `threads` threads against one thread and giotto-ph on the doubled matrix."""
    rng = np.random.default_rng(seed)

    def tied():
        A = np.triu(rng.integers(1, levels + 1, size=(n, n)).astype(np.float64), 1)
        return A + A.T

    r1, r2 = tied(), tied()
    D = doubled(r1, r2)
    w = np.ascontiguousarray(D[n:, :n], dtype=np.float32)
    m = np.ascontiguousarray(D[n:, n:], dtype=np.float32)
    bars, pairs = _core.r_cross_barcode_h1(w, m, 1, "cohomology", return_pairs=True)
    got = _core.r_cross_barcode_h1(w, m, threads, "cohomology", return_pairs=True)
    np.testing.assert_array_equal(got[0], bars)
    np.testing.assert_array_equal(got[1], pairs)
    ref = giotto_bars(D)["dgms"][1]
    np.testing.assert_array_equal(canon(bars), canon(ref[np.isfinite(ref[:, 1])]))
