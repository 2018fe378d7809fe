"""Exact k-NN of the C++ core (kd-tree and blocked brute force) on tie-heavy inputs.

Oracle: the full squared-distance matrix in numpy, each row ordered by (distance, index) -- the
order the core promises. On integer lattices every squared distance is an exact small integer, so
the oracle's order is exact and the key ``d2 * n + j`` sorts it in one pass. Lattices are where
the kd-tree's pruning meets exact ties: a box at exactly the current k-th distance may hold a
neighbour with a smaller index, so it must be searched (``<=``, not ``<``). A k that splits a shell
of equidistant neighbours (k = 5, 6, 10 on a square grid; any k on a 3-D grid) exposes it.
"""

import numpy as np
import pytest
from _fuzz import FUZZ
from hypothesis import given
from hypothesis import strategies as st

from latentbridge import _core

KDTREE, BRUTE = 1, 2


def lattice(*sides, spacing=1.0, offset=0.0):
    axes = [np.arange(s, dtype=np.float64) * spacing + offset for s in sides]
    return np.ascontiguousarray(np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(sides)))


def knn_oracle(X, Q, k):
    """(idx, d2) by brute force, rows ordered by (squared distance, index); Q None: self-query
    without the point itself."""
    self = Q is None
    Q = X if self else Q
    D = ((Q[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    if self:
        np.fill_diagonal(D, np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(X.shape[0]), D.shape), D), axis=-1)[:, :k]
    return order, np.take_along_axis(D, order, axis=1)


def check(X, Q, k, n_threads=2):
    """Both methods against the oracle: the same indices, distances within 1e-12."""
    ref_idx, ref_d2 = knn_oracle(X, Q, k)
    for method in (KDTREE, BRUTE):
        idx, d2 = _core.knn_sqeuclidean(X, Q, k, n_threads, method)
        np.testing.assert_allclose(d2, ref_d2, rtol=1e-12, atol=0, err_msg=f"method {method}")
        np.testing.assert_array_equal(idx, ref_idx, err_msg=f"method {method}, k {k}")


@pytest.mark.parametrize("k", [5, 6, 10, 8, 12])
def test_square_lattice_ties_split_by_k(k):
    """On a square grid the shells hold 4 (distance 1), 4 (sqrt 2), 4 (2), 8 (sqrt 5) points:
    k = 5, 6, 10 cut a shell, so the lowest indices of the shell must win."""
    check(lattice(13, 11), None, k)


@pytest.mark.parametrize("k", [1, 5, 7, 10, 20])
def test_cubic_lattice_ties(k):
    """A 3-D grid: 6 neighbours at distance 1, 12 at sqrt 2, 8 at sqrt 3."""
    check(lattice(7, 6, 5), None, k)


def test_lattice_queries_off_and_on_the_grid():
    X = lattice(9, 9, 3)
    Q = np.ascontiguousarray(np.vstack([lattice(4, 4, 2, spacing=2.0),            # on grid points
                                        lattice(3, 3, 2, spacing=2.0, offset=0.5)]))  # cell centres
    for k in (1, 4, 8, 9, 13):
        check(X, Q, k)


def test_duplicated_points_and_collinear_lattice():
    base = lattice(6, 5)
    X = np.ascontiguousarray(np.vstack([base, base[::3], base[:7]]))   # exact duplicates
    for k in (1, 2, 3, 6):
        check(X, None, k)
    line = lattice(200, 1)                                           # 1-D lattice in 2-D
    for k in (1, 2, 3):
        check(line, None, k)


def test_lattice_beyond_the_thread_blocks():
    """2600 points (more than ten 256-query blocks of the kd-tree and many brute-force tiles),
    threads on: the same exact order. The oracle key d2 * n + j is exact for integer d2."""
    X = lattice(52, 50)
    n, k = X.shape[0], 6
    ref = np.empty((n, k), dtype=np.int64)
    for r0 in range(0, n, 650):
        D = ((X[r0:r0 + 650, None, :] - X[None, :, :]) ** 2).sum(-1)
        D[np.arange(D.shape[0]), r0 + np.arange(D.shape[0])] = np.inf
        key = D * n + np.arange(n)
        part = np.argpartition(key, k, axis=1)[:, :k]
        ref[r0:r0 + 650] = np.take_along_axis(part, np.argsort(
            np.take_along_axis(key, part, axis=1), axis=1), axis=1)
    for method in (KDTREE, BRUTE):
        idx, _ = _core.knn_sqeuclidean(X, None, k, 2, method)
        np.testing.assert_array_equal(idx, ref)


@st.composite
def tied_clouds(draw):
    """Integer lattices (2-D or 3-D, random sides), optionally with duplicated rows, a random
    spacing (a power of two: distances stay exact) and a random sub-sample."""
    dim = draw(st.sampled_from((1, 2, 3)))
    sides = [draw(st.integers(1, 9 if dim < 3 else 5)) for _ in range(dim)]
    X = lattice(*sides, spacing=2.0 ** draw(st.integers(-3, 3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        X = np.vstack([X, X[rng.integers(0, len(X), size=max(1, len(X) // 4))]])
    if draw(st.booleans()) and len(X) > 4:
        X = X[rng.permutation(len(X))[: max(2, len(X) * 3 // 4)]]
    return np.ascontiguousarray(X)


@FUZZ
@given(X=tied_clouds(), data=st.data())
def test_knn_tied_property(X, data):
    """kd-tree == brute force == oracle, for every k, on tie-heavy clouds."""
    if X.shape[0] < 2:
        with pytest.raises(ValueError, match="k"):
            _core.knn_sqeuclidean(X, None, 1, 1, KDTREE)
        return
    k = data.draw(st.integers(1, min(X.shape[0] - 1, 16)))
    check(X, None, k, n_threads=data.draw(st.sampled_from((1, 2))))


def test_brute_force_tie_order_with_an_inexact_shift():
    """Duplicated lattice points: the brute force centres the data on its mean (not exact in binary
    here), so its screening distances are rounded; the k-th place must still go by exact distance,
    then index."""
    base = lattice(6, 5)
    X = np.ascontiguousarray(np.vstack([base, base[::3], base[:7]]))
    ref_idx, _ = knn_oracle(X, None, 1)
    idx, _ = _core.knn_sqeuclidean(X, None, 1, 1, BRUTE)
    np.testing.assert_array_equal(idx, ref_idx)


def test_exact_tie_at_the_box_boundary():
    """By hand: 30 points on the x axis and one point Q at (14.5, 1). The median split puts 0..14
    in one leaf and Q, 15..29 in the other; Q's nearest neighbours are 14 and 15 at exactly the
    same squared distance 1.25, and 14 (the lower index) lies in the leaf searched second, whose box
    is at exactly the current k-th distance."""
    pts = np.ascontiguousarray(np.vstack([lattice(30, 1), [[14.5, 1.0]]]))
    for method in (KDTREE, BRUTE):
        idx, d2 = _core.knn_sqeuclidean(pts, None, 3, 1, method)
        np.testing.assert_array_equal(idx[30], [14, 15, 13])
        np.testing.assert_array_equal(d2[30], [1.25, 1.25, 3.25])
        idx, d2 = _core.knn_sqeuclidean(pts, None, 1, 1, method)
        assert idx[30, 0] == 14 and d2[30, 0] == 1.25


@pytest.mark.parametrize("seed", range(4))
def test_high_dimensional_integer_ties(seed):
    """d = 17..24 (the brute force is the automatic choice there), coordinates in {0, 1, 2}: many
    exactly equidistant neighbours, a mean shift that is not exact, queries off the data too."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(17, 25))
    X = np.ascontiguousarray(rng.integers(0, 3, size=(300, d)).astype(np.float64))
    Q = np.ascontiguousarray(rng.integers(0, 3, size=(40, d)).astype(np.float64) + 0.5)
    for k in (1, 3, 17):
        check(X, None, k)
        check(X, Q, k)
        ref_idx, _ = knn_oracle(X, None, k)
        idx, _ = _core.knn_sqeuclidean(X, None, k, 2)  # automatic method
        np.testing.assert_array_equal(idx, ref_idx)


def test_brute_force_near_ties_below_the_screening_error():
    """d = 20 (brute force): two clusters 2e4 apart put the mean shift between them, so the GEMM
    form of a within-cluster squared distance (~1e-4) carries a rounding error of ~1e-7, while the
    candidates' exact squared distances differ by ~1e-9. The screen must allow for that error
    (a slack), or a nearer candidate screened as farther than the current k-th is dropped. Oracle:
    the exact distances, ordered by (distance, index)."""
    rng = np.random.default_rng(5)
    d, m = 20, 150
    centre = np.zeros(d)
    centre[0] = 1e4
    dirs = rng.standard_normal((m, d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    radii = np.sqrt(1e-4 + rng.permutation(m) * 1e-9)  # distinct, nearly tied distances to centre
    near = centre + dirs * radii[:, None]
    X = np.ascontiguousarray(np.vstack([centre, near, -near]))
    ref_idx, ref_d2 = knn_oracle(X, None, 40)
    assert np.all(np.diff(ref_d2[0]) > 0)  # the oracle's order is not a tie
    for k in (5, 17, 40):
        idx, _ = _core.knn_sqeuclidean(X, None, k, 1, BRUTE)
        np.testing.assert_array_equal(idx[0], ref_idx[0, :k], err_msg=f"k {k}")
        idx, _ = _core.knn_sqeuclidean(X[1:].copy(), X[:1].copy(), k, 1, BRUTE)
        np.testing.assert_array_equal(idx[0] + 1, ref_idx[0, :k], err_msg=f"query, k {k}")
