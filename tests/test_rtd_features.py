"""Tests of the RTD features of issue 11: distance matrices in (metric="precomputed"), per-trial RTD
values (return_trials) and RTD-Lite.

Oracles: the barcodes of the point clouds themselves (a precomputed Euclidean matrix must give the
same bars), giotto-ph on the official doubled matrix of a non-Euclidean weighted graph, a
brute-force RTD-Lite written here (scipy's minimum_spanning_tree plus a union-find that grows each
pair of components edge by edge), and the identities MST(w) - MST(m) = total bar length, 0 on
identical inputs, symmetry in P and Q.
"""

import re

import numpy as np
import pytest
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import cdist
from test_topology import doubled

import latentbridge as lb

gph = pytest.importorskip("gph")


def canon(bars):
    bars = np.asarray(bars, dtype=np.float64).reshape(-1, 2)
    bars = bars[bars[:, 1] > bars[:, 0]]
    return bars[np.lexsort((bars[:, 1], bars[:, 0]))]


def related_pair(n, seed, noise=0.4):
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((n, 4))
    Q = P @ rng.standard_normal((4, 3)) + noise * rng.standard_normal((n, 3))
    return P, Q


def weighted_graph(n, rng):
    """A symmetric non-negative matrix with a zero diagonal that violates the triangle inequality
    (not the distances of any point cloud): random weights, a few of them tiny shortcuts."""
    W = rng.uniform(0.1, 2.0, size=(n, n))
    W[rng.random((n, n)) < 0.05] = 1e-3
    W = np.triu(W, 1)
    return W + W.T


def quantile_normalised(W):
    return W / np.quantile(W, 0.9)


def doubled_barcode(r1, r2, dim):
    """giotto-ph on the official layout [[0, r1^T], [r1, min(r1, r2)]], snapped like the reference
    (entries below mean(r1) * 1e-6 become 0) and rounded to float32 like every engine."""
    d = doubled(r1, r2).astype(np.float32).astype(np.float64)
    bars = gph.ripser_parallel(d, maxdim=dim, metric="precomputed", n_threads=1)["dgms"][dim]
    return canon(bars[np.isfinite(bars[:, 1])])


# ---- item 5: metric="precomputed" ----------------------------------------------------------------

@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("dim", [1, 2])   # degree 0 has no finite bar
def test_precomputed_matrices_give_the_barcodes_of_the_point_clouds(metric, dim):
    P, Q = related_pair(40 if dim == 1 else 20, seed=1)
    DP = lb.pairwise_distances(P, metric=metric, device="cpu")
    DQ = lb.pairwise_distances(Q, metric=metric, device="cpu")
    from_points = lb.r_cross_barcode(P, Q, dim=dim, metric=metric, device="cpu")
    from_matrices = lb.r_cross_barcode(DP, DQ, dim=dim, metric="precomputed")
    assert len(from_points) > 0
    np.testing.assert_array_equal(from_matrices, from_points)


def test_precomputed_rtd_takes_rows_and_columns_of_each_subset():
    P, Q = related_pair(60, seed=2)
    DP, DQ = cdist(P, P), cdist(Q, Q)
    kw = dict(trials=3, batch=25, seed=7, return_trials=True)
    got = lb.rtd(DP, DQ, metric="precomputed", **kw)
    # by hand: the subsets rtd draws from its seed, each one's symmetric R-Cross total
    gen = np.random.default_rng(7)
    expected = []
    for _ in range(3):
        idx = gen.permutation(60)[:25]
        r1 = quantile_normalised(DP[np.ix_(idx, idx)])
        r2 = quantile_normalised(DQ[np.ix_(idx, idx)])
        totals = [np.sum(np.diff(doubled_barcode(a, b, 1), axis=1)) for a, b in ((r1, r2), (r2, r1))]
        expected.append(np.mean(totals))
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    # the point clouds with the same metric draw the same subsets
    np.testing.assert_allclose(lb.rtd(P, Q, device="cpu", **kw), got, rtol=1e-12)


def test_weighted_graph_barcode_matches_giotto_on_the_doubled_matrix():
    rng = np.random.default_rng(3)
    W1, W2 = weighted_graph(30, rng), weighted_graph(30, rng)
    r1, r2 = quantile_normalised(W1), quantile_normalised(W2)
    # not a metric: some r1[i, k] > r1[i, j] + r1[j, k]
    assert np.any(r1[:, None, :] > r1[:, :, None] + r1[None, :, :])
    for dim in (1, 2):   # degree 0 has no finite bar
        got = lb.r_cross_barcode(W1, W2, dim=dim, metric="precomputed")
        ref = doubled_barcode(r1, r2, dim)
        assert len(ref) > 0
        np.testing.assert_array_equal(got, ref)
    # the other direction and the unnormalised graph
    np.testing.assert_array_equal(lb.r_cross_barcode(W2, W1, metric="precomputed"),
                                  doubled_barcode(r2, r1, 1))
    np.testing.assert_array_equal(lb.r_cross_barcode(W1, W2, metric="precomputed", norm=None),
                                  doubled_barcode(W1, W2, 1))


@pytest.mark.parametrize("metric", ["sqeuclidean", "cosine"])
def test_rtd_metric_is_that_of_r_cross_barcode(metric):
    P, Q = related_pair(30, seed=4)
    got = lb.rtd(P, Q, trials=1, batch=30, symmetric=False, metric=metric, device="cpu")
    bars = lb.r_cross_barcode(P, Q, metric=metric, device="cpu")
    assert got == pytest.approx(float(np.sum(bars[:, 1] - bars[:, 0])), rel=1e-12)
    assert got != pytest.approx(lb.rtd(P, Q, trials=1, batch=30, symmetric=False, device="cpu"))


def test_precomputed_tolerates_round_off_below_1e_12_and_symmetrises():
    rng = np.random.default_rng(5)
    W1, W2 = weighted_graph(20, rng), weighted_graph(20, rng)
    skewed = W1.copy()
    skewed[2, 7] *= 1 + 2e-13                      # 2e-13 relative: accepted, triangles averaged
    fixed = (skewed + skewed.T) / 2
    np.testing.assert_array_equal(lb.r_cross_barcode(skewed, W2, metric="precomputed"),
                                  lb.r_cross_barcode(fixed, W2, metric="precomputed"))


def test_precomputed_symmetry_tolerance_is_relative_to_the_largest_entry():
    """1e-12 of the largest entry, at any scale: a 2e-13 relative skew passes at 1e6 and at 1e-6,
    1e-11 fails; an all-zero graph (largest entry 0) is exactly symmetric and passes."""
    rng = np.random.default_rng(5)
    W1, W2 = weighted_graph(12, rng), weighted_graph(12, rng)
    for scale in (1e6, 1e-6):
        for rel, ok in ((2e-13, True), (1e-11, False)):
            skewed = scale * W1
            skewed[2, 7] += rel * scale * W1.max()
            if ok:
                np.testing.assert_array_equal(
                    lb.r_cross_barcode(skewed, W2, metric="precomputed"),
                    lb.r_cross_barcode((skewed + skewed.T) / 2, W2, metric="precomputed"))
            else:
                with pytest.raises(ValueError, match="^P must be symmetric with metric='precomputed'"):
                    lb.r_cross_barcode(skewed, W2, metric="precomputed")
    Z = np.zeros((5, 5))
    assert lb.r_cross_barcode(Z, Z, metric="precomputed", norm=None).shape == (0, 2)
    assert lb.rtd(Z, Z, metric="precomputed", norm=None, batch=5, trials=1) == 0.0


def test_precomputed_two_vertices_and_the_whole_messages():
    """Two vertices are enough for a precomputed graph (one edge); the messages name the argument,
    the metric, the largest asymmetry and the first NaN's row and column."""
    one_edge = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert lb.r_cross_barcode(one_edge, 2 * one_edge, metric="precomputed").shape == (0, 2)
    assert lb.rtd_lite(one_edge, 2 * one_edge, metric="precomputed") == 0.0
    X = np.random.default_rng(6).standard_normal((8, 2))
    D = cdist(X, X)
    skewed = D + np.triu(np.full(D.shape, 1e-9), 1)
    message = ("Q must be symmetric with metric='precomputed' (to 1e-12 of its largest entry; the "
               "largest difference |Q[i, j] - Q[j, i]| is 1e-09); pass (Q + Q.T) / 2 if it holds "
               "round-off.")
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        lb.r_cross_barcode(D, skewed, metric="precomputed")
    holed = D.copy()
    holed[1, 2] = holed[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"^D contains NaN \(first at row 1, column 2\)\.$"):
        lb.vr_barcode(holed)
    with pytest.raises(ValueError, match=r"^P contains NaN"):
        lb.r_cross_barcode(holed, D, metric="precomputed")


BAD_MATRICES = {
    "not square": (lambda D: D[:, :-1], ValueError, "P must be a square"),
    "asymmetric": (lambda D: D + np.triu(np.full(D.shape, 1e-9), 1), ValueError,
                   "P must be symmetric"),
    "diagonal": (lambda D: D + np.eye(len(D)), ValueError, "P must have a zero diagonal"),
    "negative": (lambda D: np.where(D > 1, -D, D), ValueError, "P has negative entries"),
    "nan": (lambda D: np.where(np.eye(len(D))[::-1] > 0, np.nan, D), ValueError,
            "P contains NaN"),
    "inf": (lambda D: np.where(np.eye(len(D))[::-1] > 0, np.inf, D), ValueError,
            "P contains NaN or infinity"),
    "one row": (lambda D: D[:1, :1], ValueError, "P has 1 sample"),
    "1-D": (lambda D: D[0], ValueError, "P must be 2-D"),
    "strings": (lambda D: D.astype(str), TypeError, "P must be a numeric"),
    "complex": (lambda D: D + 0j, TypeError, "P is complex"),
}


@pytest.mark.parametrize("case", sorted(BAD_MATRICES))
@pytest.mark.parametrize("func", ["r_cross_barcode", "rtd", "rtd_lite"])
def test_bad_precomputed_matrices_raise_naming_the_argument(case, func):
    X = np.random.default_rng(6).standard_normal((8, 2))
    D = cdist(X, X)
    corrupt, err, message = BAD_MATRICES[case]
    call = getattr(lb, func)
    kw = {"batch": 4, "trials": 1} if func == "rtd" else {}
    with pytest.raises(err, match=message):
        call(corrupt(D), D, metric="precomputed", **kw)
    if case not in ("not square", "1-D", "one row"):   # those fail on P first (row counts)
        with pytest.raises(err, match=message.replace("P ", "Q ", 1)):
            call(D, corrupt(D), metric="precomputed", **kw)


def test_precomputed_other_errors():
    D = cdist(np.eye(5), np.eye(5))
    with pytest.raises(ValueError, match="same number of rows"):
        lb.r_cross_barcode(D, D[:4, :4], metric="precomputed")
    with pytest.raises(ValueError, match="metric"):
        lb.rtd(D, D, metric="manhattan", batch=5)
    with pytest.raises(ValueError, match="metric"):
        lb.rtd_lite(D, D, metric="l1")
    # a matrix whose 0.9-quantile is 0 cannot be quantile-normalised
    sparse = np.zeros((5, 5))
    sparse[0, 1] = sparse[1, 0] = 1.0
    with pytest.raises(ValueError, match="zero entries in a precomputed P"):
        lb.r_cross_barcode(sparse, D, metric="precomputed")
    # a point cloud is not a distance matrix: rejected, not silently read as one
    with pytest.raises(ValueError, match="P must be a square"):
        lb.rtd(np.ones((6, 3)), np.ones((6, 3)), metric="precomputed", batch=4)


# ---- item 6: return_trials -----------------------------------------------------------------------

@pytest.mark.parametrize("symmetric", [True, False])
def test_return_trials_gives_each_trial_whose_mean_is_rtd(symmetric):
    P, Q = related_pair(50, seed=8, noise=1.0)
    kw = dict(trials=4, batch=20, seed=11, symmetric=symmetric, device="cpu")
    trials = lb.rtd(P, Q, return_trials=True, **kw)
    assert isinstance(trials, np.ndarray) and trials.shape == (4,) and trials.dtype == np.float64
    assert np.mean(trials) == lb.rtd(P, Q, **kw)
    assert np.std(trials) > 0                        # different subsets, different values
    # oracle: each trial from the R-Cross-Barcodes of its subset (both orders averaged)
    gen = np.random.default_rng(11)
    for value in trials:
        idx = gen.permutation(50)[:20]
        r1 = quantile_normalised(cdist(P[idx], P[idx]))
        r2 = quantile_normalised(cdist(Q[idx], Q[idx]))
        orders = ((r1, r2), (r2, r1)) if symmetric else ((r1, r2),)
        by_hand = np.mean([np.sum(np.diff(doubled_barcode(a, b, 1), axis=1)) for a, b in orders])
        assert value == pytest.approx(by_hand, rel=1e-9)


def test_return_trials_and_symmetric_must_be_bools():
    P = np.random.default_rng(9).standard_normal((10, 2))
    for name in ("return_trials", "symmetric"):
        for bad in (1, "yes", None):
            with pytest.raises(TypeError, match=name):
                lb.rtd(P, P, batch=5, **{name: bad})


# ---- item 7: RTD-Lite ----------------------------------------------------------------------------

def brute_force_rtd_lite(w, w_tilde):
    """The definition, directly: scipy MSTs (Kruskal order) and, for every tree edge e of m, a
    union-find started from the components of the lighter edges of m's tree and grown by the tree
    edges of w (w~) in increasing order until e's two components meet."""
    m = np.minimum(w, w_tilde)

    def tree(W):
        T = minimum_spanning_tree(W).tocoo()      # generic data: no zero off-diagonal entries
        order = np.argsort(T.data, kind="stable")
        return list(zip(T.row[order], T.col[order])), T.data[order]

    def find(parent, x):
        while parent[x] != x:
            x = parent[x]
        return x

    (m_edges, m_weights), trees = tree(m), {"1->2": tree(w), "2->1": tree(w_tilde)}
    bars = {"1->2": [], "2->1": []}
    parent = list(range(len(w)))
    for (u, v), c in zip(m_edges, m_weights):
        cu, cv = find(parent, u), find(parent, v)
        for key, (edges, weights) in trees.items():
            grown = parent.copy()
            for (x, y), a in zip(edges, weights):
                grown[find(grown, x)] = find(grown, y)
                if find(grown, cu) == find(grown, cv):
                    break
            if a > c:
                bars[key].append((c, a))
        parent[cu] = cv
    value = 0.5 * ((trees["1->2"][1].sum() - m_weights.sum())
                   + (trees["2->1"][1].sum() - m_weights.sum()))
    return value, {k: canon(b) for k, b in bars.items()}


@pytest.mark.parametrize("n, seed, noise", [(2, 0, 1.0), (6, 1, 0.5), (40, 2, 0.3), (120, 3, 1.0)])
def test_rtd_lite_matches_the_brute_force_definition(n, seed, noise):
    P, Q = related_pair(n, seed, noise)
    value, bars = lb.rtd_lite(P, Q, return_barcodes=True)
    w, w_tilde = quantile_normalised(cdist(P, P)), quantile_normalised(cdist(Q, Q))
    ref_value, ref_bars = brute_force_rtd_lite(w, w_tilde)
    assert value == pytest.approx(ref_value, rel=1e-12, abs=1e-15)
    assert lb.rtd_lite(P, Q) == value
    assert set(bars) == {"1->2", "2->1"}
    for key in bars:
        assert bars[key].dtype == np.float64 and bars[key].shape[1] == 2
        np.testing.assert_allclose(bars[key], ref_bars[key], rtol=1e-12, atol=0)
    # each barcode's total length is MST(w) - MST(m) (resp. w~): twice the value together
    total = sum(float(np.sum(b[:, 1] - b[:, 0])) for b in bars.values())
    assert total == pytest.approx(2 * value, rel=1e-10)


def test_rtd_lite_barcodes_on_many_small_shapes_against_the_brute_force():
    """Random sizes and shapes of trees: clouds in 1-D (path-shaped trees, long paths to climb),
    clusters, and unrelated pairs (w and w~ trees far apart)."""
    rng = np.random.default_rng(21)
    for case in range(40):
        n = int(rng.integers(3, 25))
        d_p, d_q = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        P = rng.standard_normal((n, d_p)) + 4 * rng.integers(0, 3, size=(n, 1)) * (case % 2)
        Q = rng.standard_normal((n, d_q)) if case % 3 else P[:, :1] + 0.3 * rng.random((n, 1))
        value, bars = lb.rtd_lite(P, Q, return_barcodes=True)
        ref_value, ref_bars = brute_force_rtd_lite(quantile_normalised(cdist(P, P)),
                                                   quantile_normalised(cdist(Q, Q)))
        assert value == pytest.approx(ref_value, rel=1e-10), case
        for key in bars:
            np.testing.assert_allclose(bars[key], ref_bars[key], rtol=1e-12, err_msg=str(case))


@pytest.mark.parametrize("norm", ["median", "mean", None])
@pytest.mark.parametrize("metric", ["sqeuclidean", "cosine", "precomputed"])
def test_rtd_lite_norms_and_metrics_against_the_brute_force(norm, metric):
    rng = np.random.default_rng(12)
    if metric == "precomputed":
        P, Q = weighted_graph(25, rng), weighted_graph(25, rng)
        w, w_tilde = P, Q
    else:
        P, Q = related_pair(25, seed=13)
        w, w_tilde = cdist(P, P, metric), cdist(Q, Q, metric)
    scale = {"median": np.median, "mean": np.mean, None: lambda r: 1.0}[norm]
    value, bars = lb.rtd_lite(P, Q, norm=norm, metric=metric, return_barcodes=True)
    ref_value, ref_bars = brute_force_rtd_lite(w / scale(w), w_tilde / scale(w_tilde))
    assert value == pytest.approx(ref_value, rel=1e-9)
    for key in bars:
        np.testing.assert_allclose(bars[key], ref_bars[key], rtol=1e-9, atol=1e-12)


def test_rtd_lite_is_zero_on_identical_inputs_and_symmetric():
    P, Q = related_pair(60, seed=14, noise=0.8)
    value, bars = lb.rtd_lite(P, P, return_barcodes=True)
    assert value == 0.0 and all(len(b) == 0 for b in bars.values())
    # identical up to the normalisation: a rotated, scaled, shifted copy has the same matrix / c
    R = np.linalg.qr(np.random.default_rng(15).standard_normal((4, 4)))[0]
    assert lb.rtd_lite(P, 3.0 * P @ R + 1.0) == pytest.approx(0.0, abs=1e-12)
    forward, fb = lb.rtd_lite(P, Q, return_barcodes=True)
    backward, bb = lb.rtd_lite(Q, P, return_barcodes=True)
    assert forward > 0 and forward == pytest.approx(backward, rel=1e-12)
    np.testing.assert_array_equal(fb["1->2"], bb["2->1"])
    np.testing.assert_array_equal(fb["2->1"], bb["1->2"])


def test_rtd_lite_collapsed_second_representation_is_the_h0_barcode_of_the_first():
    """With Q collapsed onto one point (norm=None), m = 0: every tree edge of m is born at 0 and
    dies when w joins its components, so "1->2" is the finite H0 barcode of P (giotto-ph)."""
    P, _ = related_pair(30, seed=16)
    value, bars = lb.rtd_lite(P, np.zeros((30, 2)), norm=None, return_barcodes=True)
    h0 = gph.ripser_parallel(cdist(P, P), maxdim=0, metric="precomputed", n_threads=1)["dgms"][0]
    np.testing.assert_allclose(bars["1->2"], canon(h0[np.isfinite(h0[:, 1])]), rtol=1e-6)
    assert len(bars["2->1"]) == 0
    assert value == pytest.approx(0.5 * minimum_spanning_tree(cdist(P, P)).sum(), rel=1e-12)


def test_rtd_lite_ties_and_duplicates():
    """Integer grids (many equal distances) and duplicated rows (zero weights): the value is still
    the MST difference and the barcodes still add up to it."""
    rng = np.random.default_rng(17)
    P = rng.integers(0, 3, size=(30, 2)).astype(float)
    Q = rng.integers(0, 3, size=(30, 2)).astype(float)
    value, bars = lb.rtd_lite(P, Q, norm=None, return_barcodes=True)
    w, w_tilde = cdist(P, P), cdist(Q, Q)
    m = np.minimum(w, w_tilde)

    def mst(W):   # scipy drops zero entries: shift every off-diagonal weight by 1, then subtract
        return minimum_spanning_tree(W + 1 - np.eye(len(W))).sum() - (len(W) - 1)
    expected = 0.5 * ((mst(w) - mst(m)) + (mst(w_tilde) - mst(m)))
    assert value == pytest.approx(expected, abs=1e-9)
    total = sum(float(np.sum(b[:, 1] - b[:, 0])) for b in bars.values())
    assert total == pytest.approx(2 * value, abs=1e-9)


P_ERR = np.random.default_rng(18).standard_normal((10, 3))
NAN_Q = np.where(np.arange(30).reshape(10, 3) == 7, np.nan, P_ERR)
FAR = np.array([[-1.5e308], [1.5e308], [0.0]])       # finite rows, an infinite distance
RTD_LITE_ERRORS = [
    ((P_ERR, P_ERR[:9]), {}, ValueError, "same number of rows"),
    ((P_ERR[:1], P_ERR[:1]), {}, ValueError, "P has 1 sample"),
    ((P_ERR, NAN_Q), {}, ValueError, "Q contains NaN"),
    ((P_ERR, P_ERR), {"norm": "max"}, ValueError, "norm"),
    ((P_ERR, P_ERR), {"return_barcodes": 1}, TypeError, "return_barcodes"),
    ((P_ERR, np.ones((10, 2))), {}, ValueError, "quantile of Q"),   # all distances 0
    ((FAR, FAR[::-1]), {"norm": None}, ValueError, "distances of P overflow"),
    ((P_ERR.astype(complex), P_ERR), {}, TypeError, "P is complex"),
]


@pytest.mark.parametrize("args, kwargs, err, match", RTD_LITE_ERRORS)
def test_rtd_lite_errors(args, kwargs, err, match):
    with pytest.raises(err, match=match):
        lb.rtd_lite(*args, **kwargs)


def test_rtd_lite_memory_estimate(monkeypatch):
    P = np.random.default_rng(19).standard_normal((300, 2))
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "1M")
    with pytest.raises(MemoryError, match="rtd_lite"):
        lb.rtd_lite(P, P)


def test_rtd_lite_is_registered_for_compare_many():
    info = lb.measures.registry()["rtd_lite"]
    assert info.func is lb.rtd_lite and info.kind == "distance"
    assert info.identical_value == 0.0 and info.symmetric
    P, Q = related_pair(30, seed=20)
    result = lb.compare_many({"P": P, "Q": Q}, metrics=("rtd_lite",), progress=False)
    assert result["rtd_lite"][0, 1] == pytest.approx(lb.rtd_lite(P, Q), rel=1e-12)


RTD_LITE_MESSAGES = [   # (P, Q, options, error, the whole message)
    (P_ERR, P_ERR, {"norm": "max"}, ValueError,
     "norm must be one of ('quantile', 'median', 'mean', None); got 'max'."),
    (P_ERR, P_ERR, {"metric": "l1"}, ValueError,
     "metric must be one of ('euclidean', 'sqeuclidean', 'cosine', 'precomputed'); got 'l1'."),
    (P_ERR, P_ERR, {"return_barcodes": 1}, TypeError, "return_barcodes must be True or False; got 1 (int)."),
    (FAR, FAR[::-1], {"norm": None}, ValueError,
     "the distances of P overflow float64 (some are infinite); rescale P, e.g. divide it by its largest "
     "absolute value."),
    (np.ones((10, 2)), P_ERR, {}, ValueError,
     "the 0.9-quantile of P's pairwise distances is 0.0, so norm='quantile' cannot scale them (too many "
     "coinciding rows in P, or zero entries in a precomputed P); use norm=None or another norm."),
    (np.arange(3.0)[:, None], FAR, {"norm": None}, ValueError,
     "the distances of Q overflow float64 (some are infinite); rescale Q, e.g. divide it by its largest "
     "absolute value."),
]


@pytest.mark.parametrize("P, Q, kwargs, err, message", RTD_LITE_MESSAGES)
def test_rtd_lite_whole_messages(P, Q, kwargs, err, message):
    with pytest.raises(err, match="^" + re.escape(message) + "$"):
        lb.rtd_lite(P, Q, **kwargs)


def test_rtd_lite_memory_estimate_is_64_bytes_per_pair(monkeypatch):
    """Three n x n float64 matrices and at most five temporaries: 64 n^2 bytes, asked before any
    distance is computed (the recorder stops the call)."""
    import sys

    seen = []

    class Stop(Exception):
        pass

    def recorder(nbytes, what):
        seen.append((int(nbytes), what))
        raise Stop

    monkeypatch.setattr(sys.modules["latentbridge.rtd_lite"], "check_allocation", recorder)
    with pytest.raises(Stop):
        lb.rtd_lite(np.zeros((4000, 1)), np.zeros((4000, 1)))
    assert seen == [(64 * 4000 * 4000, "rtd_lite distance matrices (4000, 4000)")]


def test_float32_precomputed_triangles_are_averaged_in_float64():
    """A float32 graph whose two triangles differ by one float32 step (2**-23 at weight 1, within
    1e-12 of the largest entry 2**24): the average 1 + 2**-24 exists only in float64, and the
    light edge (0, 1) is in every spanning tree, so rtd_lite sees it."""
    rng = np.random.default_rng(29)
    W = np.triu(rng.uniform(2.0**23, 2.0**24, size=(6, 6)).astype(np.float32), 1)
    W = W + W.T
    W[0, 1], W[1, 0] = 1.0, np.float32(1.0 + 2.0**-23)
    other = np.full((6, 6), 2.0**22) - np.diag(np.full(6, 2.0**22))
    averaged = (W.astype(np.float64) + W.T.astype(np.float64)) / 2
    assert averaged[0, 1] == 1.0 + 2.0**-24 != float(np.float32(averaged[0, 1]))
    expected = lb.rtd_lite(averaged, other, metric="precomputed", norm=None)
    assert lb.rtd_lite(W, other, metric="precomputed", norm=None) == expected
