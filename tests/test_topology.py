"""Tests of vr_barcode, r_cross_barcode and rtd.

Oracles: giotto-ph (ripser_parallel on the same matrix, or on the doubled 2N x 2N R-Cross matrix),
known shapes, invariances, the special cases of notes/rtd.md section 3.6, the official RTD
README figures, and small versions of the paper's "clusters" and "rings" experiments.
"""

import math
import re
import threading

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import kendalltau

import latentbridge as lb
from latentbridge import _core, topology

gph = pytest.importorskip("gph")


# ---- helpers -------------------------------------------------------------------------------------

def canon(bars):
    bars = np.asarray(bars, dtype=np.float64).reshape(-1, 2)
    bars = bars[bars[:, 1] > bars[:, 0]]
    return bars[np.lexsort((bars[:, 1], bars[:, 0]))]


def giotto(M, maxdim):
    out = gph.ripser_parallel(np.asarray(M, dtype=np.float64), maxdim=maxdim,
                              metric="precomputed", n_threads=1)
    return [canon(d) for d in out["dgms"]]


def doubled(r1, r2):
    """The official layout [[0, r1^T], [r1, min(r1, r2)]] with the official snapping."""
    n = len(r1)
    d = np.zeros((2 * n, 2 * n))
    d[n:, :n] = r1
    d[:n, n:] = r1.T
    d[n:, n:] = np.minimum(r1, r2)
    d[d < r1.mean() * 1e-6] = 0
    return d


def official_inputs(P, Q):
    r1 = cdist(P, P)
    r2 = cdist(Q, Q)
    return r1 / np.quantile(r1, 0.9), r2 / np.quantile(r2, 0.9)


def ring(n, radius):
    t = 2 * np.pi * np.arange(n) / n
    return np.c_[np.cos(t), np.sin(t)] * radius


def rings(n_large, n_total, per_ring=100):
    """The official Rings.ipynb data (noise 0): n_large unit circles plus circles of other radii."""
    parts = []
    for i in range(n_total):
        if i < n_large:
            radius = 1.0
        else:
            idx = i - n_large
            radius = 1 + 0.25 * (2 + idx) / 2 if idx % 2 == 0 else 1 - 0.25 * (1 + idx) / 2
        parts.append(ring(per_ring, radius))
    return np.concatenate(parts)


def make_pair(kind, n, rng):
    """Representations of the same n samples, in the flavours the structured path must get right."""
    if kind == "random":
        P = rng.standard_normal((n, 5))
        Q = P @ rng.standard_normal((5, 4)) + 0.5 * rng.standard_normal((n, 4))
    elif kind == "clustered":
        centres = 6 * rng.standard_normal((4, 3))
        P = centres[rng.integers(0, 4, n)] + rng.standard_normal((n, 3))
        Q = P + 0.8 * rng.standard_normal((n, 3))
    elif kind == "ringed":
        P = np.concatenate([ring(n // 2, 1.0), ring(n - n // 2, 1.5)])
        Q = np.concatenate([ring(n // 2, 1.0), ring(n - n // 2, 1.0)])
    elif kind == "tied":
        P = np.round(rng.standard_normal((n, 2)) * 2) / 2
        Q = np.round(rng.standard_normal((n, 2)) * 2) / 2
    elif kind == "noise_vs_plane":  # issue 11's slow family: noise against a rank-2 cloud
        P = rng.standard_normal((n, 32))
        Q = rng.standard_normal((n, 2)) @ rng.standard_normal((2, 32))
    elif kind == "duplicated":
        base = rng.standard_normal((n // 2, 3))
        P = np.concatenate([base, base])[:n]
        Q = np.concatenate([base + 0.3 * rng.standard_normal(base.shape), base])[:n]
    else:
        raise AssertionError(kind)
    return P, Q


KINDS = ["random", "clustered", "ringed", "tied", "duplicated", "noise_vs_plane"]


# ---- vr_barcode ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["random", "tied", "duplicated", "grid"])
def test_vr_barcode_matches_giotto(kind):
    rng = np.random.default_rng(1)
    for trial in range(4):
        n = 25 + 9 * trial
        if kind == "random":
            X = rng.standard_normal((n, 3))
        elif kind == "tied":
            X = np.round(rng.standard_normal((n, 3)))
        elif kind == "duplicated":
            X = rng.standard_normal((n // 2, 2))
            X = np.concatenate([X, X, X[:3]])
        else:
            g = np.arange(5)
            X = np.array([(a, b) for a in g for b in g], dtype=float)[: n]
        D = cdist(X, X)
        ref = giotto(D.astype(np.float32), 2)
        got = lb.vr_barcode(D, maxdim=2)
        assert len(got) == 3
        for d in range(3):
            np.testing.assert_array_equal(canon(got[d]), ref[d])
        assert np.isinf(got[0][:, 1]).sum() == 1


def test_vr_barcode_circle_has_one_long_h1_bar():
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    X = np.c_[np.cos(t), np.sin(t)] + 0.01 * np.random.default_rng(0).standard_normal((40, 2))
    h0, h1 = lb.vr_barcode(lb.pairwise_distances(X))
    assert h0.shape[1] == 2 and np.isinf(h0[:, 1]).sum() == 1
    lengths = h1[:, 1] - h1[:, 0]
    assert lengths.max() > 1.0
    assert np.sort(lengths)[-2:-1].sum() < 0.1 * lengths.max() if len(lengths) > 1 else True


def test_vr_barcode_invariances_and_threshold():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 3))
    D = cdist(X, X)
    base = lb.vr_barcode(D, maxdim=2)
    perm = rng.permutation(40)
    for a, b in zip(base, lb.vr_barcode(D[np.ix_(perm, perm)], maxdim=2)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(base, lb.vr_barcode(4.0 * D, maxdim=2)):  # powers of two scale exactly
        np.testing.assert_array_equal(4.0 * a, b)
    radius = float(np.min(np.max(D, axis=1)))
    for thr in (radius, 1.5 * radius, np.inf):
        for a, b in zip(base, lb.vr_barcode(D, maxdim=2, threshold=thr)):
            np.testing.assert_array_equal(a, b)
    # below the enclosing radius the complex is truncated: compare with giotto-ph's truncation
    low = 0.6 * radius
    ref = gph.ripser_parallel(D, maxdim=1, metric="precomputed", thresh=low)["dgms"]
    got = lb.vr_barcode(D, maxdim=1, threshold=low)
    for d in range(2):
        np.testing.assert_array_equal(canon(got[d]), canon(ref[d]))
        np.testing.assert_array_equal(np.isinf(got[d][:, 1]).sum(), np.isinf(ref[d][:, 1]).sum())


def test_vr_barcode_components_and_small_inputs():
    D = np.array([[0, 1, np.inf], [1, 0, np.inf], [np.inf, np.inf, 0]])
    h0, h1 = lb.vr_barcode(D)
    np.testing.assert_array_equal(h0, [[0, 1], [0, np.inf], [0, np.inf]])
    assert h1.shape == (0, 2)
    h0, = lb.vr_barcode(np.zeros((1, 1)), maxdim=0)
    np.testing.assert_array_equal(h0, [[0, np.inf]])
    h0, h1 = lb.vr_barcode(np.zeros((4, 4)))  # all points coincide
    np.testing.assert_array_equal(h0, [[0, np.inf]])
    assert h1.shape == (0, 2)


def test_vr_barcode_errors():
    D = cdist(np.eye(4), np.eye(4))
    with pytest.raises(ValueError, match="square"):
        lb.vr_barcode(D[:3])
    with pytest.raises(ValueError, match="symmetric"):
        lb.vr_barcode(D + np.triu(np.ones((4, 4)), 1))
    with pytest.raises(ValueError, match="diagonal"):
        lb.vr_barcode(D + np.eye(4))
    with pytest.raises(ValueError, match="negative"):
        lb.vr_barcode(-D)
    bad = D.copy()
    bad[0, 1] = bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        lb.vr_barcode(bad)
    with pytest.raises(ValueError, match="maxdim"):
        lb.vr_barcode(D, maxdim=-1)
    with pytest.raises(TypeError, match="maxdim"):
        lb.vr_barcode(D, maxdim=1.5)
    with pytest.raises(ValueError, match="threshold"):
        lb.vr_barcode(D, threshold=-1.0)
    with pytest.raises(OverflowError, match="overflow"):
        X = np.random.default_rng(0).standard_normal((100, 2))
        lb.vr_barcode(cdist(X, X), maxdim=30)


# ---- r_cross_barcode against the doubled matrix --------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_r_cross_barcode_matches_giotto_on_doubled_matrix(kind):
    rng = np.random.default_rng(KINDS.index(kind))
    for n in (30, 64, 101):
        P, Q = make_pair(kind, n, rng)
        for A, B in ((P, Q), (Q, P)):  # both argument orders
            r1, r2 = official_inputs(A, B)
            ref = giotto(doubled(r1, r2), 1)
            got = lb.r_cross_barcode(A, B)
            np.testing.assert_array_equal(got, ref[1])
            np.testing.assert_array_equal(ref[0], [[0, np.inf]])  # H0: only the essential bar
            assert got.dtype == np.float64 and got.shape[1] == 2
            # every bar is at most max (w - w~)_+ (notes/rtd.md 3.5)
            if len(got):
                assert (got[:, 1] - got[:, 0]).max() <= (r1 - r2).max() + 1e-6


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("engine", ["cohomology", "homology"])
def test_each_r_cross_engine_matches_giotto(kind, engine):
    # r_cross_barcode picks an engine by time; each must give the doubled matrix's barcode alone
    rng = np.random.default_rng(10 + KINDS.index(kind))
    for n in (40, 90):
        P, Q = make_pair(kind, n, rng)
        for A, B in ((P, Q), (Q, P)):
            r1, r2 = official_inputs(A, B)
            D = doubled(r1, r2)  # snapped as the official code does
            w = D[n:, :n].astype(np.float32)
            m = D[n:, n:].astype(np.float32)
            ref = giotto(D, 1)[1]
            np.testing.assert_array_equal(canon(_core.r_cross_barcode_h1(w, m, 1, engine)), ref)


def test_r_cross_engine_choice_is_checked():
    w = np.zeros((3, 3), np.float32)
    with pytest.raises(ValueError, match="engine must be"):
        _core.r_cross_barcode_h1(w, w, 1, "fast")


def test_r_cross_barcode_other_norms_and_metrics():
    rng = np.random.default_rng(5)
    P, Q = make_pair("random", 60, rng)
    for norm in ("median", "mean", None):
        r1, r2 = cdist(P, P), cdist(Q, Q)
        if norm == "median":
            r1, r2 = r1 / np.median(r1), r2 / np.median(r2)
        elif norm == "mean":
            r1, r2 = r1 / r1.mean(), r2 / r2.mean()
        np.testing.assert_array_equal(lb.r_cross_barcode(P, Q, norm=norm),
                                      giotto(doubled(r1, r2), 1)[1])
    r1, r2 = cdist(P, P, "cosine"), cdist(Q, Q, "cosine")
    r1, r2 = r1 / np.quantile(r1, 0.9), r2 / np.quantile(r2, 0.9)
    got = lb.r_cross_barcode(P, Q, metric="cosine")
    ref = giotto(doubled(r1, r2), 1)[1]
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)  # distance round-off differs


def test_r_cross_barcode_degree_two_uses_the_doubled_complex():
    rng = np.random.default_rng(6)
    P, Q = make_pair("random", 22, rng)
    r1, r2 = official_inputs(P, Q)
    ref = giotto(doubled(r1, r2), 2)
    np.testing.assert_array_equal(lb.r_cross_barcode(P, Q, dim=2), ref[2])
    assert lb.r_cross_barcode(P, Q, dim=0).shape == (0, 2)


def test_r_cross_barcode_special_cases():
    rng = np.random.default_rng(7)
    P = rng.standard_normal((50, 3))
    assert lb.r_cross_barcode(P, P).shape == (0, 2)
    assert lb.r_cross_barcode(P, 3.0 * P).shape == (0, 2)  # scale-invariant normalisation
    collapsed = np.zeros((50, 2))
    # Q collapsed: the finite H0 barcode of P
    h0 = lb.vr_barcode(cdist(P, P), maxdim=0)[0]
    np.testing.assert_array_equal(lb.r_cross_barcode(P, collapsed, norm=None),
                                  h0[np.isfinite(h0[:, 1])])
    assert lb.r_cross_barcode(collapsed, P, norm=None).shape == (0, 2)
    with pytest.raises(ValueError, match="quantile of Q"):
        lb.r_cross_barcode(P, collapsed)


def test_r_cross_barcode_matches_official_readme_figures():
    # github.com/IlyaTrofimov/RTD README: P, Q = np.random.rand(1000, 2) after np.random.seed(7)
    state = np.random.RandomState(7)
    P, Q = state.rand(1000, 2), state.rand(1000, 2)
    bars = lb.r_cross_barcode(P, Q, n_jobs=2)
    lengths = bars[:, 1] - bars[:, 0]
    assert len(bars) == 1219
    assert lengths.max() == 0.15257642325013876
    assert np.median(lengths) == 0.05195973068475723


def test_r_cross_barcode_errors():
    P = np.random.default_rng(0).standard_normal((10, 3))
    with pytest.raises(ValueError, match="same number of rows"):
        lb.r_cross_barcode(P, P[:9])
    with pytest.raises(ValueError, match="at least 2"):
        lb.r_cross_barcode(P[:1], P[:1])
    bad = P.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        lb.r_cross_barcode(P, bad)
    with pytest.raises(ValueError, match="norm"):
        lb.r_cross_barcode(P, P, norm="max")
    with pytest.raises(ValueError, match="dim"):
        lb.r_cross_barcode(P, P, dim=3)
    with pytest.raises(ValueError, match="metric"):
        lb.r_cross_barcode(P, P, metric="manhattan")
    with pytest.raises(TypeError):
        lb.r_cross_barcode(P.astype(complex), P)


# ---- rtd -----------------------------------------------------------------------------------------

def test_rtd_definition_seed_and_threads():
    rng = np.random.default_rng(8)
    P, Q = make_pair("random", 150, rng)
    # batch >= n: every trial uses all rows, so rtd is the symmetric R-Cross total length
    b1, b2 = lb.r_cross_barcode(P, Q), lb.r_cross_barcode(Q, P)
    expected = 0.5 * ((b1[:, 1] - b1[:, 0]).sum() + (b2[:, 1] - b2[:, 0]).sum())
    assert lb.rtd(P, Q, trials=2, batch=150, seed=0) == pytest.approx(expected, rel=1e-12)
    with pytest.warns(UserWarning, match="batch=500 exceeds the 150 samples"):
        assert lb.rtd(P, Q, trials=2, batch=500, seed=0) == pytest.approx(expected, rel=1e-12)
    one_way = lb.rtd(P, Q, trials=1, batch=150, symmetric=False, seed=0)
    assert one_way == pytest.approx((b1[:, 1] - b1[:, 0]).sum(), rel=1e-12)
    # subsets: reproducible with a seed, identical for any n_jobs, and equal to the manual mean
    a = lb.rtd(P, Q, trials=3, batch=60, seed=3)
    assert a == lb.rtd(P, Q, trials=3, batch=60, seed=3, n_jobs=2)
    gen = np.random.default_rng(3)
    manual = []
    for _ in range(3):
        idx = gen.permutation(150)[:60]
        c1, c2 = lb.r_cross_barcode(P[idx], Q[idx]), lb.r_cross_barcode(Q[idx], P[idx])
        manual.append(0.5 * ((c1[:, 1] - c1[:, 0]).sum() + (c2[:, 1] - c2[:, 0]).sum()))
    assert a == pytest.approx(np.mean(manual), rel=1e-12)
    assert lb.rtd(P, Q, trials=3, batch=60, seed=4) != a
    assert lb.rtd(P, P, trials=2, batch=60, seed=0) == 0.0
    assert lb.rtd(P, 5.0 * Q, trials=3, batch=60, seed=3) == pytest.approx(a, rel=1e-6)
    d2 = lb.rtd(P[:20], Q[:20], trials=2, batch=20, dim=2, seed=0, n_jobs=2)
    c = lb.r_cross_barcode(P[:20], Q[:20], dim=2), lb.r_cross_barcode(Q[:20], P[:20], dim=2)
    assert d2 == pytest.approx(0.5 * sum((x[:, 1] - x[:, 0]).sum() for x in c), rel=1e-12)


def _total(bars):
    return float((bars[:, 1] - bars[:, 0]).sum())


def _one_way_by_hand(P, Q, trials, batch, seed):
    """The P -> Q total per trial on the seed's subsets, from r_cross_barcode (whose bars are
    checked against giotto-ph on the doubled matrix above)."""
    gen = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        idx = gen.permutation(len(P))[:batch]
        out.append(_total(lb.r_cross_barcode(P[idx], Q[idx])))
    return np.array(out)


def test_symmetric_rtd_is_the_mean_of_both_directions_on_lopsided_data():
    """Clustered P against unstructured Q: the two directions differ by a large factor, so taking
    one direction twice, or the wrong one, is visible."""
    rng = np.random.default_rng(21)
    centres = 8 * rng.standard_normal((5, 3))
    P = centres[rng.integers(0, 5, 90)] + 0.3 * rng.standard_normal((90, 3))
    Q = rng.standard_normal((90, 3))
    pq = _one_way_by_hand(P, Q, 3, 50, 7)
    qp = _one_way_by_hand(Q, P, 3, 50, 7)
    assert abs(pq.mean() - qp.mean()) > 0.25 * max(pq.mean(), qp.mean())
    kw = dict(trials=3, batch=50, seed=7)
    assert lb.rtd(P, Q, symmetric=False, **kw) == pytest.approx(pq.mean(), rel=1e-12)
    assert lb.rtd(Q, P, symmetric=False, **kw) == pytest.approx(qp.mean(), rel=1e-12)
    both = 0.5 * (pq.mean() + qp.mean())
    for n_jobs in (1, 2):
        assert lb.rtd(P, Q, n_jobs=n_jobs, **kw) == pytest.approx(both, rel=1e-12)
        assert lb.rtd(Q, P, n_jobs=n_jobs, **kw) == pytest.approx(both, rel=1e-12)


def test_symmetric_rtd_in_degrees_0_and_2():
    rng = np.random.default_rng(22)
    P = np.concatenate([ring(12, 1.0), ring(12, 3.0) + 5])
    Q = rng.standard_normal((24, 2))
    for dim in (0, 2):
        c1 = lb.r_cross_barcode(P, Q, dim=dim)
        c2 = lb.r_cross_barcode(Q, P, dim=dim)
        got = lb.rtd(P, Q, trials=1, batch=24, dim=dim, seed=0)
        assert got == pytest.approx(0.5 * (_total(c1) + _total(c2)), rel=1e-12)
        one = lb.rtd(P, Q, trials=1, batch=24, dim=dim, seed=0, symmetric=False)
        assert one == pytest.approx(_total(c1), rel=1e-12)


def test_rtd_batch_above_n_warns_and_uses_every_row():
    rng = np.random.default_rng(23)
    P, Q = make_pair("random", 40, rng)
    full = lb.rtd(P, Q, trials=1, batch=40, seed=0)
    with pytest.warns(UserWarning, match=r"batch=41 exceeds the 40 samples.*batch=40"):
        assert lb.rtd(P, Q, trials=3, batch=41, seed=5) == pytest.approx(full, rel=1e-12)


def test_rtd_errors():
    P = np.random.default_rng(0).standard_normal((10, 3))
    with pytest.raises(ValueError, match="same number of rows"):
        lb.rtd(P, P[:8])
    with pytest.raises(ValueError, match="trials"):
        lb.rtd(P, P, trials=0)
    with pytest.raises(ValueError, match="batch"):
        lb.rtd(P, P, batch=1)
    with pytest.raises(ValueError, match="n_jobs"):
        lb.rtd(P, P, n_jobs=0)
    with pytest.raises(TypeError, match="seed"):
        lb.rtd(P, P, seed="x")
    with pytest.raises(TypeError, match="symmetric"):
        lb.rtd(P, P, symmetric="yes")
    bad = P.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        lb.rtd(bad, P)


# ---- the paper's synthetic experiments (small versions) ------------------------------------------

def test_clusters_experiment_kendall_tau_is_one():
    # Clusters.ipynb: 60 groups of 5 Gaussian points; split them into k clusters 10 apart.
    state = np.random.RandomState(7)
    groups = [state.multivariate_normal(np.zeros(2), np.eye(2), 5) for _ in range(60)]
    base = np.concatenate(groups)

    def split(k):
        shifts = [10 * np.array([np.cos(2 * np.pi * (i % k) / k), np.sin(2 * np.pi * (i % k) / k)])
                  for i in range(60)]
        return np.concatenate([g + s for g, s in zip(groups, shifts)])

    ks = [2, 3, 4, 5, 6, 10, 12]  # the notebook's clusters_list
    values = [lb.rtd(base, split(k), trials=1, batch=300, seed=0, n_jobs=2) for k in ks]
    assert kendalltau(ks, values).statistic == pytest.approx(1.0)
    assert 5 < values[0] < values[-1] < 40


def test_rings_experiment_matches_the_official_notebook():
    # Rings.ipynb: 5 rings of 100 points; compare 1 unit ring + 4 others with k unit rings.
    # Heavily tied (duplicated circles): also checked bar for bar against giotto-ph at k = 2.
    base = rings(1, 5)
    values = []
    for k in range(1, 6):
        other = rings(k, 5)
        b1, b2 = lb.r_cross_barcode(base, other), lb.r_cross_barcode(other, base)
        values.append(0.5 * ((b1[:, 1] - b1[:, 0]).sum() + (b2[:, 1] - b2[:, 0]).sum()))
    assert values[0] == 0.0
    assert kendalltau(range(1, 6), values).statistic == pytest.approx(0.8)
    small_base, small_other = rings(1, 3, per_ring=40), rings(2, 3, per_ring=40)
    for A, B in ((small_base, small_other), (small_other, small_base)):
        r1, r2 = official_inputs(A, B)
        np.testing.assert_array_equal(lb.r_cross_barcode(A, B), giotto(doubled(r1, r2), 1)[1])


# ---- the C++ entry points ------------------------------------------------------------------------

def test_core_batch_equals_single_calls_and_rejects_bad_shapes():
    rng = np.random.default_rng(9)
    problems = []
    for n in (20, 35, 50):
        P, Q = make_pair("random", n, rng)
        r1, r2 = official_inputs(P, Q)
        problems.append((r1.astype(np.float32), np.minimum(r1, r2).astype(np.float32)))
    batch = _core.r_cross_barcode_h1_batch(problems, 2)
    for (w, m), got in zip(problems, batch):
        np.testing.assert_array_equal(canon(got), canon(_core.r_cross_barcode_h1(w, m, 1)))
    with pytest.raises(ValueError, match="same shape"):
        _core.r_cross_barcode_h1(problems[0][0], problems[1][1], 1)
    with pytest.raises(TypeError):
        _core.rips_barcodes(np.zeros((3, 3)), 1, None)  # float64: no silent copy


def test_r_cross_barcode_threads_dtypes_and_read_only_inputs():
    rng = np.random.default_rng(10)
    P, Q = make_pair("clustered", 120, rng)
    P.setflags(write=False)
    Q.setflags(write=False)
    ref = lb.r_cross_barcode(P, Q)
    np.testing.assert_array_equal(lb.r_cross_barcode(P, Q, n_jobs=2), ref)
    np.testing.assert_array_equal(lb.r_cross_barcode(P, Q, n_jobs=-1, device="cpu"), ref)
    # float32 and integer inputs are promoted to float64 before the distances
    np.testing.assert_array_equal(lb.r_cross_barcode(P.astype(np.float32), Q),
                                  lb.r_cross_barcode(P.astype(np.float32).astype(np.float64), Q))
    Pi = np.round(P * 10).astype(np.int64)
    np.testing.assert_array_equal(lb.r_cross_barcode(Pi, Q), lb.r_cross_barcode(Pi * 1.0, Q))
    D = cdist(P, P)
    D.setflags(write=False)
    for a, b in zip(lb.vr_barcode(D), lb.vr_barcode(D.astype(np.float32))):
        np.testing.assert_array_equal(a, b)


def test_enclosing_radius_is_min_over_rows_of_the_row_max():
    """The default threshold (and the simplex-count bound of vr_barcode): min_i max_j D_ij, by hand.
    A larger value (e.g. the diameter) gives the same barcodes, only slower, so only this pins it."""
    rng = np.random.default_rng(24)
    X = np.concatenate([rng.standard_normal((30, 2)), [[8.0, 0.0]]])    # one far point
    D = cdist(X, X).astype(np.float32)
    assert _core.enclosing_radius(D) == D.max(axis=1).min()
    assert _core.enclosing_radius(D) < D.max()


# ---- what reaches the engine, and the exact argument messages (mutation run of issue 17) --------

F32_MAX = float(np.finfo(np.float32).max)


class Spy:
    """Wraps a function and records the positional and keyword arguments of every call."""

    def __init__(self, fn, result=None):
        self.fn, self.result, self.calls = fn, result, []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.fn(*args, **kwargs) if self.result is None else self.result


def test_vr_barcode_threshold_above_float32_reaches_the_engine_as_inf(monkeypatch):
    """A threshold beyond float32 would be narrowed to float by undefined behaviour in C++: the
    engine must receive +inf for it, and every representable threshold unchanged; None reaches it
    as the enclosing radius of the float32 matrix (min over rows of the row maxima, by numpy)."""
    spy = Spy(_core.rips_barcodes)
    monkeypatch.setattr(_core, "rips_barcodes", spy)
    D = cdist(np.eye(3), np.eye(3))
    enclosing = float(D.astype(np.float32).max(axis=1).min())
    for given, passed in ((1e39, np.inf), (1e300, np.inf), (np.inf, np.inf), (F32_MAX, F32_MAX),
                          (0.5, 0.5), (None, enclosing)):
        lb.vr_barcode(D, threshold=given)
        assert spy.calls[-1][0][2] == passed


def test_vr_barcode_bounds_the_simplices_of_every_degree_that_can_be_numbered(monkeypatch):
    """The clique bound is asked for each maxdim >= 2 whose simplices of maxdim + 2 vertices can
    be numbered in 64 bits (math.comb(n, maxdim + 2) < 2**63), never otherwise. With no edges at
    all (every off-diagonal entry +inf) the engine itself is instant in any degree."""
    n = 67
    D = np.full((n, n), np.inf)
    np.fill_diagonal(D, 0.0)
    spy = Spy(_core.rips_simplex_bytes)
    monkeypatch.setattr(_core, "rips_simplex_bytes", spy)
    homology_spy = Spy(_core.rips_homology_bytes)
    monkeypatch.setattr(_core, "rips_homology_bytes", homology_spy)
    for maxdim in (0, 1, 2, 3, 4, 26, 27, 28, 29):
        spy.calls.clear()
        homology_spy.calls.clear()
        fits = math.comb(n, maxdim + 2) < 2**63
        if fits:
            bars = lb.vr_barcode(D, maxdim=maxdim)
            assert len(bars) == maxdim + 1 and len(bars[0]) == n
        else:   # 67 points, 30 vertices: the engine's own OverflowError, not a MemoryError
            with pytest.raises(OverflowError, match="overflow 64 bits"):
                lb.vr_barcode(D, maxdim=maxdim)
        homology = 1 <= maxdim <= 3          # the homology engine (n < 65536) has its own model
        assert _core.rips_homology_applies(n, maxdim) == homology
        assert len(homology_spy.calls) == (1 if homology else 0), maxdim
        assert len(spy.calls) == (1 if maxdim >= 2 and fits and not homology else 0), maxdim
    assert not math.comb(n, 30) < 2**63 and math.comb(n, 29) < 2**63   # the edge is at 27/28


def test_vr_barcode_degree_two_memory_bound_raises_before_the_engine(monkeypatch):
    """maxdim=2 on a full complex: the matrices fit a limit that the simplex lists exceed; the
    cohomology engine (maxdim 4 here) checks its matrices and edges first, then its lists."""
    X = np.random.default_rng(25).standard_normal((30, 2))
    D = cdist(X, X)
    D32 = D.astype(np.float32)
    radius = float(np.min(np.max(D32, axis=1)))
    degree_one = _core.rips_homology_bytes(D32, 1, radius)
    assert _core.rips_homology_bytes(D32, 2, radius) > degree_one + 1024
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(int(degree_one) + 1024))
    with pytest.raises(MemoryError,
                       match=r"^vr_barcode matrices and simplices of degrees 1\.\.2 for D \(30, 30\)"):
        lb.vr_barcode(D, maxdim=2)
    assert len(lb.vr_barcode(D, maxdim=1)) == 2
    workspace = _core.rips_workspace_bytes(30, 4)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(workspace + 1024))
    with pytest.raises(MemoryError, match=r"^vr_barcode simplices of degrees 2\.\.4 for D \(30, 30\)"):
        lb.vr_barcode(D, maxdim=4)


def test_run_threads_runs_here_for_one_thread_or_one_item_and_bounds_the_pool(monkeypatch):
    """_run_threads (rtd in degrees 0 and 2): in the calling thread for n_threads <= 1 or at most
    one item; otherwise on a pool of min(n_threads, items) workers; results in item order."""
    import concurrent.futures

    here = threading.get_ident()
    created = []
    real = concurrent.futures.ThreadPoolExecutor

    def pool(max_workers=None, **kw):
        created.append(max_workers)
        return real(max_workers=max_workers, **kw)

    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", pool)
    # (n_threads, items, the pool's workers or None for the calling thread)
    for n_threads, items, workers in ((1, 5, None), (0, 3, None), (4, 1, None), (8, 0, None),
                                      (2, 2, 2), (2, 5, 2), (3, 2, 2), (8, 3, 3)):
        created.clear()
        out = topology._run_threads(lambda x: (x * x, threading.get_ident()), list(range(items)),
                                    n_threads)
        assert [x for x, _ in out] == [i * i for i in range(items)]
        assert all((t == here) == (workers is None) for _, t in out)
        assert created == ([] if workers is None else [workers])


P10 = np.random.default_rng(0).standard_normal((10, 3))
D4 = cdist(np.eye(4), np.eye(4))
CHOICES_NORM = "('quantile', 'median', 'mean', None)"
CHOICES_METRIC = "('euclidean', 'sqeuclidean', 'cosine', 'precomputed')"
ARGUMENT_MESSAGES = [   # (function, arguments, error, the whole message)
    ("vr", dict(maxdim=-1), ValueError, "maxdim must be in [0, 61]; got -1."),
    ("vr", dict(maxdim=62), ValueError, "maxdim must be in [0, 61]; got 62."),
    ("vr", dict(threshold=-1.0), ValueError, "threshold must be >= 0; got -1.0."),
    ("vr", dict(return_pairs="yes"), TypeError, "return_pairs must be True or False; got 'yes' (str)."),
    ("vr_not_square", {}, ValueError, "D must be a square distance matrix; got shape (3, 4)."),
    ("vr_asymmetric", {}, ValueError,
     "D must be symmetric; pass (D + D.T) / 2 if it holds round-off."),
    ("rcross", dict(return_pairs=1), TypeError, "return_pairs must be True or False; got 1 (int)."),
    ("rtd", dict(trials=0), ValueError, "trials must be >= 1; got 0."),
    ("rtd", dict(batch=1), ValueError, "batch must be >= 2; got 1."),
    ("rtd", dict(symmetric=1), TypeError, "symmetric must be True or False; got 1 (int)."),
    ("rtd", dict(return_trials=1), TypeError, "return_trials must be True or False; got 1 (int)."),
] + [(func, kwargs, ValueError, message) for func in ("rcross", "rtd") for kwargs, message in (
    (dict(dim=3), "dim must be in [0, 2]; got 3."),
    (dict(dim=-1), "dim must be in [0, 2]; got -1."),
    (dict(norm="max"), f"norm must be one of {CHOICES_NORM}; got 'max'."),
    (dict(metric="l1"), f"metric must be one of {CHOICES_METRIC}; got 'l1'."))]


@pytest.mark.parametrize("func, kwargs, error, message", ARGUMENT_MESSAGES)
def test_argument_errors_start_with_the_argument_name(func, kwargs, error, message):
    with pytest.raises(error, match="^" + re.escape(message) + "$"):
        if func == "vr":
            lb.vr_barcode(D4, **kwargs)
        elif func == "vr_not_square":
            lb.vr_barcode(D4[:3])
        elif func == "vr_asymmetric":
            lb.vr_barcode(D4 + np.triu(np.ones((4, 4)), 1))
        elif func == "rcross":
            lb.r_cross_barcode(P10, P10, **kwargs)
        else:
            lb.rtd(P10, P10, **{"batch": 5, **kwargs})


class Stop(Exception):
    """Raised by the recording check_allocation once it has seen the estimate a test wants."""


def record_allocations(monkeypatch, stop_at):
    """Replace topology.check_allocation by a recorder of (bytes, what) that raises Stop at its
    ``stop_at``-th call (1-based), so that large sizes cost nothing."""
    seen = []

    def recorder(nbytes, what):
        seen.append((int(nbytes), what))
        if len(seen) == stop_at:
            raise Stop

    monkeypatch.setattr(topology, "check_allocation", recorder)
    return seen


# the bytes per n^2 of one problem's distances: two float64 matrices, their float64 minimum, the
# float32 w and m and a boolean mask (the comment of topology._DISTANCE_BYTES_PER_PAIR)
DISTANCE_BYTES = 8 + 8 + 8 + 4 + 4 + 2


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_r_cross_barcode_memory_estimate_is_distances_plus_one_reduction(dim, monkeypatch):
    n = 3000     # never computed: the recorder stops at the estimate
    seen = record_allocations(monkeypatch, 1)
    X = np.zeros((n, 1))
    with pytest.raises(Stop):
        lb.r_cross_barcode(X, X, dim=dim)
    engine = _core.r_cross_workspace_bytes(n) if dim == 1 else _core.rips_workspace_bytes(2 * n, dim)
    assert seen == [(DISTANCE_BYTES * n * n + engine,
                     f"r_cross_barcode distance matrices and reduction for ({n}, {n})")]


def test_vr_barcode_memory_estimates_and_what_the_clique_bound_receives(monkeypatch):
    X = np.random.default_rng(26).standard_normal((12, 2))
    D = cdist(X, X)
    seen = record_allocations(monkeypatch, 3)
    spy = Spy(_core.rips_simplex_bytes)
    monkeypatch.setattr(_core, "rips_simplex_bytes", spy)
    lb.vr_barcode(D, maxdim=4, threshold=0.75)      # maxdim 4: the cohomology engine
    assert len(spy.calls) == 1
    (D32, maxdim, threshold), _ = spy.calls[0]
    assert D32.dtype == np.float32 and np.array_equal(D32, D.astype(np.float32))
    assert (maxdim, threshold) == (4, 0.75)
    assert seen == [(_core.rips_workspace_bytes(12, 4), "vr_barcode matrices and edges for D (12, 12)"),
                    (int(_core.rips_simplex_bytes(D32, 4, 0.75)),
                     "vr_barcode simplices of degrees 2..4 for D (12, 12)")]
    seen.clear()
    spy.calls.clear()
    homology_spy = Spy(_core.rips_homology_bytes)
    monkeypatch.setattr(_core, "rips_homology_bytes", homology_spy)
    lb.vr_barcode(D, maxdim=3, threshold=0.75, n_jobs=2)  # maxdim 1..3: the homology engine's model
    assert not spy.calls and len(homology_spy.calls) == 1
    (H32, maxdim, threshold, threads), _ = homology_spy.calls[0]
    assert np.array_equal(H32, D32) and (maxdim, threshold, threads) == (3, 0.75, 2)
    assert seen == [(int(_core.rips_homology_bytes(D32, 3, 0.75, 2)),
                     "vr_barcode matrices and simplices of degrees 1..3 for D (12, 12)")]


@pytest.mark.parametrize("n, trials, n_jobs, symmetric, dim, per_group", [
    (20, 3, None, True, 1, 3),          # small subsets: every trial at once
    (1000, 40, None, True, 1, 16),      # 256 MiB / (16 * 1000^2) = 16 trials at once
    (1000, 5, None, False, 2, 5),
    (5000, 4, None, True, 1, 1),        # one 5000 x 5000 trial exceeds 256 MiB: one at a time...
    (5000, 4, 4, True, 0, 2),           # ...unless the threads need more: (4 + 1) // 2
    (5000, 1, 8, False, 1, 1),          # but never more than the trials
])
def test_rtd_memory_estimates_follow_the_trials_held_at_once(n, trials, n_jobs, symmetric, dim,
                                                            per_group, monkeypatch):
    seen = record_allocations(monkeypatch, 2)
    X = np.zeros((n, 1))
    with pytest.raises(Stop):
        lb.rtd(X, X, trials=trials, batch=n, n_jobs=n_jobs, symmetric=symmetric, dim=dim, seed=0)
    threads = 1 if n_jobs is None else n_jobs
    directions = 2 if symmetric else 1
    engine = _core.r_cross_workspace_bytes(n) if dim == 1 else _core.rips_workspace_bytes(2 * n, dim)
    held = per_group * directions * 8 * n * n + DISTANCE_BYTES * n * n
    assert seen == [
        (8 * (trials * n + n), f"rtd subsets ({trials}, {n})"),
        (held + min(threads, per_group * directions) * engine,
         f"rtd matrices of {per_group} trial(s) of ({n}, {n}) on {threads} thread(s)")]


def test_documented_defaults(monkeypatch):
    """vr_barcode(maxdim=1), r_cross_barcode(dim=1, norm="quantile", metric="euclidean") and
    rtd(trials=10, batch=500, symmetric=True, dim=1, norm="quantile", metric="euclidean"): the
    default calls equal the calls that spell the defaults out, on data where each one matters."""
    rng = np.random.default_rng(27)
    centres = 8 * rng.standard_normal((3, 3))
    P = centres[rng.integers(0, 3, 24)] + 0.3 * rng.standard_normal((24, 3))
    Q = rng.standard_normal((24, 3)) ** 3
    D = cdist(P, P)
    for a, b in zip(lb.vr_barcode(D), lb.vr_barcode(D, maxdim=1, threshold=None)):
        np.testing.assert_array_equal(a, b)
    assert len(lb.vr_barcode(D)) == 2
    explicit = dict(dim=1, norm="quantile", metric="euclidean")
    np.testing.assert_array_equal(lb.r_cross_barcode(P, Q), lb.r_cross_barcode(P, Q, **explicit))
    assert not np.array_equal(lb.r_cross_barcode(P, Q, dim=2), lb.r_cross_barcode(P, Q))
    with pytest.warns(UserWarning, match=whole_rtd_clamp(500, 24)):
        default = lb.rtd(P, Q, seed=3, return_trials=True)
    with pytest.warns(UserWarning, match=whole_rtd_clamp(500, 24)):
        spelled = lb.rtd(P, Q, trials=10, batch=500, symmetric=True, seed=3, return_trials=True, **explicit)
    assert default.shape == (10,)
    np.testing.assert_array_equal(default, spelled)
    assert default[0] != lb.rtd(P, Q, trials=1, batch=24, symmetric=False, seed=3)


def whole_rtd_clamp(batch, n):
    """The whole clamp warning of rtd, as a pytest match."""
    return "^" + re.escape(
        f"rtd: batch={batch} exceeds the {n} samples of P and Q; every trial uses all {n} rows "
        f"(identical subsets). Pass batch={n} (and trials=1) to use the whole set, or a smaller batch "
        "for random subsets.") + "$"


def test_rtd_negative_seed_message_names_the_seed():
    with pytest.raises(ValueError, match=r"^seed must be None, a non-negative int or a numpy Generator; "
                                         r"got -1 \(.+\)\.$"):
        lb.rtd(P10, P10, batch=5, seed=-1)


def test_vr_barcode_symmetry_tolerance_is_relative_1e_6_and_absolute_1e_12():
    """D is symmetric to rtol=1e-6 (atol=1e-12): a relative skew of 5e-6 is refused and 5e-7
    accepted; at the scale 1e-9 an absolute skew of 5e-15 passes and 5e-12 is refused."""
    X = np.random.default_rng(28).standard_normal((6, 2))
    D = cdist(X, X)
    for scale, skew, ok in ((1.0, 5e-6, False), (1.0, 5e-7, True), (1e-9, 5e-15, True), (1e-9, 5e-12, False)):
        skewed = scale * D
        skewed[1, 4] += skew * (D[1, 4] if scale == 1.0 else 1.0)
        if ok:
            for a, b in zip(lb.vr_barcode(skewed), lb.vr_barcode(scale * D)):
                np.testing.assert_allclose(a, b, rtol=1e-6)
        else:
            with pytest.raises(ValueError, match="^D must be symmetric"):
                lb.vr_barcode(skewed)


def test_float32_range_boundary_and_whole_message():
    """float32's largest value itself is a valid edge (kept, not refused); above it the message
    names the matrix and the fix."""
    E = np.array([[0.0, F32_MAX, 1.0], [F32_MAX, 0.0, F32_MAX], [1.0, F32_MAX, 0.0]])
    h0, _ = lb.vr_barcode(E)
    np.testing.assert_array_equal(h0, [[0.0, 1.0], [0.0, F32_MAX], [0.0, np.inf]])
    # beside an absent edge (+inf, so the largest entry does not settle it): still kept
    E4 = np.full((4, 4), np.inf)
    E4[:3, :3] = E
    E4[3, 3] = 0.0
    h0, _ = lb.vr_barcode(E4)
    np.testing.assert_array_equal(h0, [[0.0, 1.0], [0.0, F32_MAX], [0.0, np.inf], [0.0, np.inf]])
    tail = (" has finite entries above 3.4e+38, which float32 (the precision of the persistence engine) "
            "cannot hold; rescale the data (or use norm='quantile').")
    X = np.random.default_rng(0).standard_normal((6, 2))
    with pytest.raises(ValueError, match="^" + re.escape("D" + tail) + "$"):
        lb.vr_barcode(cdist(X, X) * 1e300)
    for big, name in (((X * 1e200, X), "P"), ((X, X * 1e200), "Q")):
        with pytest.raises(ValueError, match="^" + re.escape(f"the (normalised) distance matrix of {name}" + tail)):
            lb.r_cross_barcode(*big, norm=None, device="cpu")


@pytest.mark.parametrize("norm, what, P, value", [
    ("median", "median", np.r_[np.zeros((9, 2)), np.ones((1, 2))], "0.0"),   # 82 of 100 distances 0
    ("mean", "mean", np.ones((5, 2)), "0.0"),
    ("quantile", "0.9-quantile", np.ones((5, 2)), "0.0"),
    ("mean", "mean", np.array([[1.5e308], [-1.5e308]] * 2), "inf"),         # distances overflow
    ("median", "median", np.array([[1.5e308], [-1.5e308]] * 2), "inf"),
])
def test_a_normalisation_constant_that_cannot_scale_is_refused(norm, what, P, value):
    Q = np.random.default_rng(30).standard_normal((len(P), 2))
    message = (f"the {what} of P's pairwise distances is {value}, so norm={norm!r} cannot scale them (too "
               "many coinciding rows in P, or zero entries in a precomputed P); use norm=None or another norm.")
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        lb.r_cross_barcode(P, Q, norm=norm, device="cpu")


def test_two_samples_are_enough():
    """Two rows: one distance per representation, no cycle, so no finite bar and RTD 0."""
    P = np.array([[0.0, 0.0], [1.0, 2.0]])
    Q = np.array([[5.0], [-1.0]])
    assert lb.r_cross_barcode(P, Q).shape == (0, 2)
    assert lb.rtd(P, Q, trials=2, batch=2, seed=0) == 0.0


def test_rtd_groups_keep_every_trial_in_order_and_threads_reach_each_stage(monkeypatch):
    """300 trials of 240 rows exceed one group (256 MiB / (16 * 240^2) = 291 trials at once), so
    they run in two groups: a spy engine returns one bar of length 1, 2, 3, ... per problem, and
    the per-trial values must be those lengths in draw order, from both groups (one direction). n_jobs=2 must
    reach the engine (single r_cross_barcode calls too); the distances of fewer than 256 points are
    made on one thread (test_small_problems_prepare_on_one_thread)."""
    made = []

    def engine(problems, n_threads):
        made.append((len(problems), n_threads))
        start = sum(k for k, _ in made[:-1])
        return [np.array([[0.0, start + i + 1.0]]) for i in range(len(problems))]

    distance_jobs = []
    real_distances = topology.pairwise_distances

    def distances(X, **kw):
        distance_jobs.append(kw["n_jobs"])
        return real_distances(X, **kw)

    monkeypatch.setattr(_core, "r_cross_barcode_h1_batch", engine)
    monkeypatch.setattr(topology, "pairwise_distances", distances)
    X = np.random.default_rng(31).standard_normal((240, 2))
    trials = lb.rtd(X, X + 1.0, trials=300, batch=240, seed=0, n_jobs=2, symmetric=False, device="cpu",
                    return_trials=True)
    assert made == [(291, 2), (9, 2)]
    np.testing.assert_array_equal(trials, np.arange(300) + 1.0)
    assert set(distance_jobs) == {1} and len(distance_jobs) == 600
    spy = Spy(_core.r_cross_barcode_h1)
    monkeypatch.setattr(_core, "r_cross_barcode_h1", spy)
    distance_jobs.clear()
    lb.r_cross_barcode(X[:20], X[:20] ** 2, n_jobs=2)
    assert spy.calls[0][0][2] == 2 and distance_jobs == [1, 1]


@pytest.mark.parametrize("n,threads", [(255, 1), (256, 3)])
def test_small_problems_prepare_on_one_thread(n, threads, monkeypatch):
    """Below 256 points the distances, their side-by-side run and the C++ pass making w and m run on
    one thread (starting threads costs more there); from 256 on on n_jobs, in r_cross_barcode and
    in rtd (both directions). The reductions always get n_jobs."""
    distance_jobs, pools = [], []
    real_distances, real_run = topology.pairwise_distances, topology._run_threads

    def distances(X, **kw):
        distance_jobs.append(kw["n_jobs"])
        return real_distances(X, **kw)

    def run_threads(fn, items, n_threads):
        pools.append(n_threads)
        return real_run(fn, items, n_threads)

    monkeypatch.setattr(topology, "pairwise_distances", distances)
    monkeypatch.setattr(topology, "_run_threads", run_threads)
    inputs, engine, batch = Spy(_core.r_cross_inputs), Spy(_core.r_cross_barcode_h1), Spy(
        _core.r_cross_barcode_h1_batch)
    for name, spy in (("r_cross_inputs", inputs), ("r_cross_barcode_h1", engine),
                      ("r_cross_barcode_h1_batch", batch)):
        monkeypatch.setattr(_core, name, spy)
    X = np.random.default_rng(39).standard_normal((n, 2))
    lb.r_cross_barcode(X, X ** 2, n_jobs=3, device="cpu")
    assert distance_jobs == [threads, threads] and pools == [threads]
    assert engine.calls[0][0][2] == 3
    distance_jobs.clear()
    lb.rtd(X, X ** 2, trials=1, batch=n, seed=0, n_jobs=3, device="cpu")
    assert distance_jobs == [threads, threads] and batch.calls[0][0][1] == 3
    assert [args[5] for args, _ in inputs.calls] == [threads] * 3


@pytest.mark.parametrize("which", ["P", "Q"])
def test_rtd_messages_name_the_representation(which):
    """rtd's own messages name P or Q: a constant representation (no scale) and distances beyond
    float32 (norm=None)."""
    X = np.random.default_rng(32).standard_normal((12, 2))
    constant = np.ones((12, 2))
    pair = (constant, X) if which == "P" else (X, constant)
    message = (f"the 0.9-quantile of {which}'s pairwise distances is 0.0, so norm='quantile' cannot scale "
               f"them (too many coinciding rows in {which}, or zero entries in a precomputed {which}); use "
               "norm=None or another norm.")
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        lb.rtd(*pair, trials=1, batch=12, seed=0)
    big = (X * 1e200, X) if which == "P" else (X, X * 1e200)
    with pytest.raises(ValueError, match="^" + re.escape(f"the (normalised) distance matrix of {which} has")):
        lb.rtd(*big, trials=1, batch=12, seed=0, norm=None, device="cpu")


@pytest.mark.parametrize("where", [(290, 10), (10, 290), (200, 140), (299, 299 - 1), (127, 128)])
def test_vr_barcode_symmetry_check_reaches_every_tile(where):
    """n = 300 spans three 128-row tiles of the symmetry check: an asymmetry anywhere, far tiles and
    tile borders included, is refused, as numpy's allclose(D, D.T, rtol=1e-6, atol=1e-12) says."""
    X = np.random.default_rng(31).standard_normal((300, 3))
    D = cdist(X, X)
    assert len(lb.vr_barcode(D, maxdim=0)[0]) == 300
    D[where] += 1e-3
    assert not np.allclose(D, D.T, rtol=1e-6, atol=1e-12)
    with pytest.raises(ValueError, match="D must be symmetric"):
        lb.vr_barcode(D, maxdim=0)


def test_vr_barcode_symmetry_tolerance_is_inclusive():
    """allclose's rule is |a - b| <= atol + rtol |b|: a difference of exactly atol next to a zero
    entry is accepted, twice that is not (numpy's allclose is the oracle of both)."""
    for gap, accepted in ((1e-12, True), (2e-12, False)):
        D = np.array([[0.0, 0.0, 1.0], [gap, 0.0, 1.0], [1.0, 1.0, 0.0]])
        assert np.allclose(D, D.T, rtol=1e-6, atol=1e-12) == accepted
        if accepted:
            assert len(lb.vr_barcode(D, maxdim=0)[0]) == 3
        else:
            with pytest.raises(ValueError, match="D must be symmetric"):
                lb.vr_barcode(D, maxdim=0)


def _entry_at_the_snapping_threshold(a, b):
    """A 3 x 3 distance matrix whose entry (1, 2) is exactly ``mean * 1e-6`` of the matrix that
    holds it (the reference's snapping threshold eps), found by fixed-point iteration."""
    c = 0.0
    for _ in range(20):
        r = np.array([[0.0, a, b], [a, 0.0, c], [b, c, 0.0]])
        if r.mean() * 1e-6 == c:
            return r
        c = r.mean() * 1e-6
    raise AssertionError("no fixed point")  # pragma: no cover


def test_an_entry_of_w_exactly_at_the_snapping_threshold_is_kept():
    """The reference snaps entries *below* eps = mean(w) * 1e-6 to zero, so an entry equal to eps
    stays. w_12 = eps and w~_12 = 0: the edge (1, 2) of the second block enters at 0 and its cycle
    is filled by the cone triangle at w_12, so the barcode is the single bar (0, float32(eps))
    (with w_12 snapped it would have length 0 and vanish)."""
    r1 = _entry_at_the_snapping_threshold(1.0, 1.5)
    eps = r1[1, 2]
    assert eps == r1.mean() * 1e-6 and 0 < eps
    r2 = r1.copy()
    r2[1, 2] = r2[2, 1] = 0.0
    got = lb.r_cross_barcode(r1, r2, metric="precomputed", norm=None)
    np.testing.assert_array_equal(got, [[0.0, np.float32(eps)]])
    np.testing.assert_array_equal(got, giotto(doubled(r1, r2), 1)[1])


def test_an_entry_of_w_tilde_exactly_at_the_snapping_threshold_is_kept():
    """Two points, w_01 = 2 (eps = mean(w) * 1e-6 = 1e-6) and w~_01 = eps exactly: the edge enters
    at min(w, w~)_01 = eps, not snapped to 0, and dies at its cone triangle, w_01: one bar
    (float32(eps), 2)."""
    r1 = np.array([[0.0, 2.0], [2.0, 0.0]])
    eps = r1.mean() * 1e-6
    r2 = np.array([[0.0, eps], [eps, 0.0]])
    got = lb.r_cross_barcode(r1, r2, metric="precomputed", norm=None)
    np.testing.assert_array_equal(got, [[np.float32(eps), 2.0]])
    np.testing.assert_array_equal(got, giotto(doubled(r1, r2), 1)[1])


_PAIR_X = np.random.default_rng(33).standard_normal((4, 2))
_PAIR_D = cdist(_PAIR_X, _PAIR_X)
_PAIR_D_INF = _PAIR_D.copy()
_PAIR_D_INF[0, 1] = _PAIR_D_INF[1, 0] = np.inf
_SAME_ROWS = "P and Q must have the same number of rows (the same samples in the same order); got 4 and 3."


@pytest.mark.parametrize("P, Q, metric, message", [
    (_PAIR_X[:1], _PAIR_X[:1], "euclidean", "P has 1 sample(s) (rows, shape=(1, 2)); at least 2 required."),
    (_PAIR_X[:2], _PAIR_X[:1], "euclidean", "Q has 1 sample(s) (rows, shape=(1, 2)); at least 2 required."),
    (_PAIR_X, _PAIR_X[:3], "euclidean", _SAME_ROWS),
    (_PAIR_D, _PAIR_D[:3, :3], "precomputed", _SAME_ROWS),
    (_PAIR_D[:1, :1], _PAIR_D[:1, :1], "precomputed", "P has 1 sample(s) (rows, shape=(1, 1)); at least 2 required."),
    (_PAIR_D[:2, :2], _PAIR_D[:1, :1], "precomputed", "Q has 1 sample(s) (rows, shape=(1, 1)); at least 2 required."),
    (_PAIR_D_INF, _PAIR_D, "precomputed",
     "P contains NaN or infinity (first at row 0, column 1). Remove or impute those entries first."),
    (_PAIR_D, _PAIR_D_INF, "precomputed",
     "Q contains NaN or infinity (first at row 0, column 1). Remove or impute those entries first."),
    (_PAIR_D[:3], _PAIR_D, "precomputed",
     "P must be a square distance matrix with metric='precomputed'; got shape (3, 4)."),
    (_PAIR_D, _PAIR_D[:3], "precomputed",
     "Q must be a square distance matrix with metric='precomputed'; got shape (3, 4)."),
])
def test_pair_messages_name_the_argument(P, Q, metric, message):
    """Each bad input of the pair (too few rows, different rows, a non-finite or non-square
    precomputed matrix) is refused by a message that names P or Q, in r_cross_barcode and rtd."""
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        lb.r_cross_barcode(P, Q, metric=metric)
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        lb.rtd(P, Q, metric=metric, trials=1, batch=2, seed=0)


def test_float32_q_is_promoted_to_float64_before_its_distances():
    """Q in float32 gives the barcode of the same values in float64 (distances in float64, as for P,
    and as the official construction on scipy's float64 distances); distances computed in float32
    would differ in the last bits."""
    rng = np.random.default_rng(34)
    P, Q = make_pair("clustered", 60, rng)
    Q32 = Q.astype(np.float32)
    np.testing.assert_array_equal(lb.r_cross_barcode(P, Q32), lb.r_cross_barcode(P, Q32.astype(np.float64)))
    r1, r2 = official_inputs(P, Q32.astype(np.float64))
    np.testing.assert_array_equal(lb.r_cross_barcode(P, Q32), giotto(doubled(r1, r2), 1)[1])


def test_vr_barcode_degree_two_on_the_cohomology_engine_bounds_its_simplices(monkeypatch):
    """maxdim = 2 runs on the cohomology engine when the homology engine does not apply (n >= 65536,
    simulated here by a spy that says so): its simplex lists of degree 2 are then bounded like those
    of any maxdim >= 2, after the workspace."""
    X = np.random.default_rng(35).standard_normal((12, 2))
    D = cdist(X, X)
    applies = []

    def not_applicable(n, maxdim):
        applies.append((n, maxdim))
        return False

    monkeypatch.setattr(_core, "rips_homology_applies", not_applicable)
    seen = record_allocations(monkeypatch, 3)
    lb.vr_barcode(D, maxdim=2)
    D32 = D.astype(np.float32)
    assert applies == [(12, 2)]
    assert seen == [(_core.rips_workspace_bytes(12, 2), "vr_barcode matrices and edges for D (12, 12)"),
                    (int(_core.rips_simplex_bytes(D32, 2, None)),
                     "vr_barcode simplices of degrees 2..2 for D (12, 12)")]


@pytest.mark.parametrize("n_jobs, threads", [(None, 1), (2, 2), (3, 3)])
def test_vr_barcode_threads_reach_the_engine_with_and_without_pairs(n_jobs, threads, monkeypatch):
    """n_jobs becomes the engine's n_threads (None: 1), for the bars alone and with their pairs."""
    spy = Spy(_core.rips_barcodes)
    monkeypatch.setattr(_core, "rips_barcodes", spy)
    D = cdist(np.eye(4), np.eye(4))
    lb.vr_barcode(D, n_jobs=n_jobs)
    lb.vr_barcode(D, n_jobs=n_jobs, return_pairs=True)
    assert [kw.get("n_threads") for _, kw in spy.calls] == [threads, threads]


def test_vr_barcode_threshold_applies_with_pairs():
    """Below the enclosing radius the truncated complex's bars (giotto-ph's ``thresh`` as oracle),
    with the pairs too: the same bars as without them, and each finite death is the length of its
    death edge."""
    X = np.random.default_rng(36).standard_normal((30, 2))
    D = cdist(X, X)
    h0 = lb.vr_barcode(D, maxdim=0)[0]
    low = 0.9 * h0[np.isfinite(h0[:, 1]), 1].max()     # the last merge of components is cut
    ref = gph.ripser_parallel(D, maxdim=1, metric="precomputed", thresh=low)["dgms"]
    bars, pairs = lb.vr_barcode(D, maxdim=1, threshold=low, return_pairs=True)
    assert np.isinf(bars[0][:, 1]).sum() >= 2
    D32 = D.astype(np.float32)
    for d in range(2):
        np.testing.assert_array_equal(canon(bars[d]), canon(ref[d]))
        np.testing.assert_array_equal(np.isinf(bars[d][:, 1]).sum(), np.isinf(ref[d][:, 1]).sum())
        finite = np.isfinite(bars[d][:, 1])
        death = pairs[d][finite][:, -2:]
        np.testing.assert_array_equal(D32[death[:, 0], death[:, 1]], bars[d][finite, 1])


# ---- the C++ check of D (_checked_vr_matrix), mutation run of the merge of topo-t1b -------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vr_barcode_symmetry_tolerances_hold_for_float32_and_float64_matrices(dtype):
    """Both dtypes of D take the C++ check (float32 in place, float64 with its float32 copy) with
    numpy's allclose(D, D.T, rtol=1e-6, atol=1e-12) as the rule, each case 5x away from its edge:
    a relative skew of 5e-6 is refused and 2e-7 accepted; next to a zero entry (only atol can
    accept there) a gap of 2e-13 is accepted and 5e-12 refused."""
    X = np.random.default_rng(37).standard_normal((6, 2))
    base = cdist(X, X)
    cases = []
    for skew, ok in ((5e-6, False), (2e-7, True)):
        D = base.copy()
        D[1, 4] *= 1 + skew
        cases.append((D.astype(dtype), ok))
    for gap, ok in ((2e-13, True), (5e-12, False)):
        D = np.array([[0.0, 0.0, 1.0], [gap, 0.0, 1.0], [1.0, 1.0, 0.0]], dtype=dtype)
        cases.append((D, ok))
    for D, ok in cases:
        assert D.dtype == dtype
        wide = D.astype(np.float64)
        assert np.allclose(wide, wide.T, rtol=1e-6, atol=1e-12) == ok
        for maxdim in (0, 1):          # without and with the float32 copy of a float64 D
            if ok:
                got = lb.vr_barcode(D, maxdim=maxdim)
                lower = np.tril(wide) + np.tril(wide, -1).T     # the triangle the engine reads
                for g, r in zip(got, giotto(lower, maxdim)):
                    np.testing.assert_allclose(canon(g), r, rtol=1e-6, atol=0)
            else:
                with pytest.raises(ValueError, match="^" + re.escape(
                        "D must be symmetric; pass (D + D.T) / 2 if it holds round-off.") + "$"):
                    lb.vr_barcode(D, maxdim=maxdim)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_n_jobs_reaches_the_check_of_d_and_the_r_cross_inputs(dtype, monkeypatch):
    """n_jobs threads the one C++ pass over D in vr_barcode (both dtypes, with and without the
    float32 copy) and the C++ pass that makes w and m in r_cross_barcode and rtd (both directions)."""
    check = Spy(_core.check_distance_matrix)
    monkeypatch.setattr(_core, "check_distance_matrix", check)
    D = cdist(np.eye(4), np.eye(4)).astype(dtype)
    for maxdim in (0, 1):
        for n_jobs, threads in ((None, 1), (3, 3)):
            lb.vr_barcode(D, maxdim=maxdim, n_jobs=n_jobs)
            args, kwargs = check.calls[-1]
            assert args[0] is D and len(args) >= 4 and args[3] == threads and not kwargs
    inputs = Spy(_core.r_cross_inputs)
    monkeypatch.setattr(_core, "r_cross_inputs", inputs)
    X = np.random.default_rng(38).standard_normal((300, 2)).astype(dtype)
    lb.r_cross_barcode(X, X ** 2, n_jobs=3)
    lb.rtd(X, X ** 2, trials=2, batch=256, seed=0, n_jobs=3)
    assert len(inputs.calls) == 1 + 2 * 2
    assert all(len(args) == 6 and args[5] == 3 and not kwargs for args, kwargs in inputs.calls)


def test_vr_barcode_round_off_asymmetry_beside_an_entry_beyond_float32_is_refused_for_the_range():
    """The C++ pass refuses a matrix with a finite entry beyond float32; the Python checks then name
    the problem, so a matrix that numpy's allclose(D, D.T, rtol=1e-6, atol=1e-12) calls symmetric
    (a relative skew of 5e-7, a gap of exactly atol next to a zero entry, +inf at mirrored places)
    gets the range message in full, not the symmetry one, and no warning (inf - inf)."""
    inf = np.inf
    D = np.array([[0.0, 0.0, 1.0, inf],
                  [1e-12, 0.0, 1.0, 2.0],
                  [1.0, 1.0, 0.0, 1e39],
                  [inf, 2.0 * (1 + 5e-7), 1e39, 0.0]])
    assert np.allclose(D, D.T, rtol=1e-6, atol=1e-12)
    message = ("D has finite entries above 3.4e+38, which float32 (the precision of the persistence "
               "engine) cannot hold; rescale the data (or use norm='quantile').")
    for maxdim in (0, 1):
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            lb.vr_barcode(D, maxdim=maxdim)


def test_vr_barcode_messages_of_the_smallest_and_flat_inputs():
    """A 1 x 1 matrix is checked like any other (a diagonal entry, a NaN), and a 1-D array is
    refused by name, each message whole."""
    diagonal = ("D must have a zero diagonal (vertex weights are not supported); set "
                "np.fill_diagonal(D, 0) if the diagonal holds round-off.")
    for D, message in (([[0.5]], diagonal), ([[np.nan]], "D contains NaN (first at row 0, column 0)."),
                       (np.zeros(3), "D must be 2-D with shape (n_samples, n_features); got shape (3,). "
                        "Reshape your data: X.reshape(-1, 1) for a single feature or X.reshape(1, -1) "
                        "for a single sample.")):
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            lb.vr_barcode(D)


def test_vr_barcode_says_so_when_the_check_of_d_disagrees_with_the_python_checks(monkeypatch):
    """Should the C++ pass ever refuse a matrix that the Python checks accept, vr_barcode stops with
    an internal error rather than computing on it. A valid matrix for the Python checks: float32's
    largest value beside an absent edge (+inf), both kept (the range check refuses only finite
    entries above float32's largest, as np.float32 says)."""
    monkeypatch.setattr(_core, "check_distance_matrix", lambda *args: (False, 0.0))
    E = np.full((4, 4), np.inf)
    E[:3, :3] = [[0.0, F32_MAX, 1.0], [F32_MAX, 0.0, F32_MAX], [1.0, F32_MAX, 0.0]]
    E[3, 3] = 0.0
    assert np.isfinite(np.float32(E[0, 1])) and np.float32(E[0, 1]) == E[0, 1]
    message = "internal: the C++ check refused a matrix that the Python checks accept"
    with pytest.raises(AssertionError, match="^" + re.escape(message) + "$"):
        lb.vr_barcode(E)
