"""The streaming-homology engine of vr_barcode (cpp/src/rips_homology.cpp, maxdim 1..3).

Oracles: giotto-ph (``ripser_parallel`` on the same float32 matrix) and redzed-tda where it is
installed; both are independent implementations. Inputs cover generic clouds, spheres with H2 and
H3 classes, heavily tied integer distances, absent (+inf) edges and explicit thresholds.
"""

import itertools
import math
import textwrap

import numpy as np
import pytest

import latentbridge as lb
from latentbridge import _core

gph = pytest.importorskip("gph")


def canon(bars):
    bars = np.asarray(bars, dtype=np.float64).reshape(-1, 2)
    bars = bars[bars[:, 1] > bars[:, 0]]
    return bars[np.lexsort((bars[:, 1], bars[:, 0]))]


def giotto(D, maxdim, thresh=np.inf):
    out = gph.ripser_parallel(np.asarray(D, dtype=np.float64), maxdim=maxdim,
                              metric="precomputed", n_threads=1, thresh=thresh)
    return [canon(d) for d in out["dgms"]]


def distances(X):
    D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    return np.ascontiguousarray(D, dtype=np.float32)


def sphere(n, dim, seed):
    X = np.random.default_rng(seed).standard_normal((n, dim))
    return distances(X / np.linalg.norm(X, axis=1, keepdims=True))


def check_equal(got, ref):
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(canon(g), r)


@pytest.mark.parametrize("seed", range(3))
def test_h1_of_gaussian_clouds_equals_giotto(seed):
    D = distances(np.random.default_rng(seed).standard_normal((120, 8)))
    got = _core.rips_barcodes(D, 1, None, engine="homology")
    check_equal(got, giotto(D, 1))
    assert len(got[1]) > 5  # the case has H1 bars to get right


@pytest.mark.parametrize("maxdim,dim,n", [(2, 3, 60), (3, 4, 40)])
def test_spheres_equal_giotto_in_every_degree(maxdim, dim, n):
    D = sphere(n, dim, seed=maxdim)
    got = _core.rips_barcodes(D, maxdim, None, engine="homology")
    ref = giotto(D, maxdim)
    check_equal(got, ref)
    assert len(ref[maxdim]) >= 1  # a top-degree class exists


def test_threshold_and_essential_classes_equal_giotto():
    D = sphere(50, 4, seed=5)
    thr = float(np.quantile(D, 0.35))
    got = _core.rips_barcodes(D, 3, thr, engine="homology")
    ref = giotto(D, 3, thresh=thr)
    check_equal(got, ref)
    assert any(np.isinf(r[:, 1]).any() for r in ref[1:])  # truncation leaves essential bars


@pytest.mark.parametrize("seed", range(3))
def test_tied_integer_distances_equal_giotto(seed):
    # few distinct values: every tie-breaking rule of the engine is exercised
    rng = np.random.default_rng(seed)
    n = 24
    A = rng.integers(1, 5, size=(n, n)).astype(np.float32)
    D = np.triu(A, 1)
    D = D + D.T
    check_equal(_core.rips_barcodes(D, 2, None, engine="homology"), giotto(D, 2))


def test_absent_edges_equal_giotto():
    D = sphere(40, 3, seed=9)
    D[np.triu_indices(40, 1)[0][::7], np.triu_indices(40, 1)[1][::7]] = np.inf
    D = np.minimum(D, D.T)
    got = _core.rips_barcodes(D, 2, float(np.inf), engine="homology")
    check_equal(got, giotto(D, 2))


def test_vr_barcode_takes_the_homology_engine_and_agrees_with_cohomology():
    D = sphere(45, 3, seed=11)
    public = lb.vr_barcode(D, maxdim=2)
    ref = giotto(D, 2)
    check_equal(public, ref)
    check_equal(_core.rips_barcodes(D, 2, None, engine="cohomology"), ref)


def test_redzed_agrees_where_installed():
    redzed = pytest.importorskip("redzed_tda")
    D = sphere(40, 4, seed=3)
    thr = float(np.min(D.max(1)))
    ref = redzed.rips(D.astype(np.float64), maxdim=3, threshold=thr)
    got = _core.rips_barcodes(D, 3, None, engine="homology")
    for g, r in zip(got, ref):
        r = np.asarray(r, dtype=np.float64).reshape(-1, 2).astype(np.float32).astype(np.float64)
        np.testing.assert_array_equal(canon(g), canon(r))


def test_bad_engine_and_unsupported_degree_raise():
    D = sphere(10, 3, seed=0)
    with pytest.raises(ValueError, match="engine"):
        _core.rips_barcodes(D, 1, None, engine="fast")
    with pytest.raises(ValueError, match="maxdim"):
        _core.rips_barcodes(D, 4, None, engine="homology")
    # automatic: maxdim 0 and 4 go to the cohomology engine
    check_equal(_core.rips_barcodes(D, 4, None), giotto(D, 4))


@pytest.mark.parametrize("maxdim,n", [(1, 150), (2, 70), (3, 40)])
def test_results_do_not_depend_on_n_jobs(maxdim, n):
    # the threads list, sort and reduce concurrently; bars and pairs must be identical, and equal
    # to giotto-ph's bars
    D = sphere(n, maxdim + 1, seed=20 + maxdim)
    bars, pairs = lb.vr_barcode(D, maxdim=maxdim, return_pairs=True)
    check_equal(bars, giotto(D, maxdim))
    for n_jobs in (2, 3, -1):
        b, p = lb.vr_barcode(D, maxdim=maxdim, return_pairs=True, n_jobs=n_jobs)
        for x, y in zip(bars + pairs, b + p):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("maxdim,n", [(1, 160), (2, 60), (3, 30)])
def test_n_jobs_agree_over_many_blocks_with_ties_and_absent_edges(maxdim, n):
    # several thousand top simplices: with n_jobs=2 they cross the pipeline's queue in blocks of
    # 2048, and for maxdim >= 2 the scan for their cofaces moves between the stages (the upper stage
    # does it while it waits for work, on bit sets that may hold later edges); tied integer
    # distances and +inf entries test the tie rule of that scan. Oracle: giotto-ph; n_jobs=2 must
    # be identical.
    rng = np.random.default_rng(40 + maxdim)
    A = rng.integers(1, 6, size=(n, n)).astype(np.float32)
    D = np.triu(A, 1)
    iu = np.triu_indices(n, 1)
    absent = rng.random(len(iu[0])) < 0.05
    D[iu[0][absent], iu[1][absent]] = np.inf
    D = D + D.T
    tops = math.comb(n, maxdim + 1)
    assert tops > 4 * 2048  # many blocks (most of the simplices are within the threshold)
    bars, pairs = lb.vr_barcode(D, maxdim=maxdim, return_pairs=True, n_jobs=1)
    check_equal(bars, giotto(D, maxdim))
    assert len(bars[maxdim]) > 0
    for _ in range(3):  # the stages' timing differs from run to run
        b, p = lb.vr_barcode(D, maxdim=maxdim, return_pairs=True, n_jobs=2)
        for x, y in zip(bars + pairs, b + p):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("bad", [0, 1.5, "2"])
def test_bad_n_jobs_raises(bad):
    with pytest.raises(ValueError, match="n_jobs"):
        lb.vr_barcode(sphere(8, 3, seed=0), n_jobs=bad)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_negative_zero_distances_are_zero(n_jobs):
    """-0.0 passes the checks (it is >= 0), and its bits would sort after every positive
    diameter (the edges are sorted by their bits): bars and pairs of coinciding points written as
    -0.0 equal those with +0.0 (and giotto-ph)."""
    X = np.random.default_rng(3).standard_normal((40, 3))
    X[7] = X[3]
    X[21] = X[20] = X[5]
    D = distances(X)
    signed = np.where(D == 0, np.float32(-0.0), D)
    np.fill_diagonal(signed, 0.0)
    assert np.signbit(signed[3, 7]) and np.signbit(signed[20, 21])
    for maxdim in (1, 2):
        want = lb.vr_barcode(D, maxdim=maxdim, return_pairs=True, n_jobs=n_jobs)
        got = lb.vr_barcode(signed, maxdim=maxdim, return_pairs=True, n_jobs=n_jobs)
        for a, b in zip(got[0] + got[1], want[0] + want[1]):
            np.testing.assert_array_equal(a, b)
        check_equal(got[0], giotto(D, maxdim))


@pytest.mark.parametrize("seed", range(6))
def test_symmetry_check_is_numpys_allclose_across_tiles(seed):
    """vr_barcode's symmetry test (tiles of 128, an exact-equality pass first) against numpy's
    allclose(D, D.T, rtol=1e-6, atol=1e-12) on a 300 x 300 matrix with mirrored pairs moved just
    inside and just outside the tolerance, in the tiles' interiors and on their borders."""
    from latentbridge.topology import _nearly_symmetric

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((300, 4))
    D = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    assert _nearly_symmetric(D) and _nearly_symmetric(D.astype(np.float32))
    for _ in range(20):
        E = D.copy()
        for _ in range(int(rng.integers(1, 4))):
            i, j = rng.choice([0, 127, 128, 129, 255, 256, 299, int(rng.integers(300))], 2)
            if i == j:
                continue
            E[i, j] *= 1 + rng.choice([0.5e-6, 0.99e-6, 1.01e-6, 3e-6]) * rng.choice([-1, 1])
        assert _nearly_symmetric(E) == np.allclose(E, E.T, rtol=1e-6, atol=1e-12)


F32_MAX = float(np.finfo(np.float32).max)


def numpy_accepts(D):
    """vr_barcode's checks of D by numpy alone: no NaN, no negative entry, a zero diagonal,
    allclose(D, D.T, rtol=1e-6, atol=1e-12) (+inf equal to +inf) and no finite entry above
    float32's largest."""
    with np.errstate(invalid="ignore"):
        return not (np.isnan(D).any() or (D < 0).any() or (np.diagonal(D) != 0).any()
                    or not np.allclose(D, D.T, rtol=1e-6, atol=1e-12)
                    or (np.isfinite(D) & (D > F32_MAX)).any())


def spoiled(D, kind, rng):
    """A copy of D with one kind of defect (or of change that must be accepted) at random places,
    the 32-entry tile borders of the C++ symmetry pass among them."""
    E = D.copy()
    n = len(E)
    picks = [0, 31, 32, 33, 63, 64, n - 1, int(rng.integers(n))]
    i, j = (int(v) % n for v in rng.choice(picks, 2))
    if i == j:
        j = (i + 1) % n
    if kind == "nan":
        E[i, j] = np.nan
    elif kind == "negative":
        E[i, j] = E[j, i] = -E[i, j]
    elif kind == "negative_zero":        # -0.0 is not negative: accepted
        E[i, j] = E[j, i] = -0.0
    elif kind == "diagonal":
        E[i, i] = 1e-9
    elif kind == "skew":
        E[i, j] *= 1 + rng.choice([0.5e-6, 0.99e-6, 1.01e-6, 3e-6]) * rng.choice([-1, 1])
    elif kind == "inf_one_side":
        E[i, j] = np.inf
    elif kind == "inf_both":             # an absent edge: accepted
        E[i, j] = E[j, i] = np.inf
    elif kind == "beyond_float32":       # float64 only
        E[i, j] = E[j, i] = 1e39
    elif kind == "float32_max":          # representable: accepted
        E[i, j] = E[j, i] = F32_MAX
    return E


KINDS = ["none", "nan", "negative", "negative_zero", "diagonal", "skew", "inf_one_side", "inf_both",
         "beyond_float32", "float32_max"]


@pytest.mark.parametrize("n", [1, 2, 31, 32, 33, 65, 130])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpp_distance_check_equals_numpy(n, dtype):
    """The one-pass C++ check behind vr_barcode accepts exactly what numpy's checks accept, on
    both dtypes and either thread count; when it accepts, its enclosing radius is numpy's
    min over rows of the row maxima of the float32 matrix, and the float64 overload's float32
    copy is numpy's rounding."""
    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, 3))
    D = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    for kind in KINDS:
        if kind == "beyond_float32" and dtype == np.float32:
            continue
        for _ in range(6 if n > 1 else 1):
            E = spoiled(D, kind, rng).astype(dtype) if kind != "none" else D.astype(dtype)
            if n == 1 and kind not in ("none", "nan", "diagonal"):
                E = D.astype(dtype)
            for n_jobs in (1, 2):
                if dtype == np.float32:
                    clean, enclosing = _core.check_distance_matrix(E, 1e-6, 1e-12, n_jobs)
                    E32 = E
                else:
                    E32 = np.full(E.shape, -1.0, dtype=np.float32)
                    clean, enclosing = _core.check_distance_matrix(E, 1e-6, 1e-12, n_jobs, E32)
                assert clean == numpy_accepts(E), (kind, n_jobs)
                if clean:
                    with np.errstate(over="ignore"):
                        rounded = E.astype(np.float32)
                    assert enclosing == float(rounded.max(axis=1).min())
                    np.testing.assert_array_equal(E32, rounded)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vr_barcode_names_each_defect_of_d(dtype):
    """The messages of vr_barcode for each defect of D, float32 and float64 alike, and for a matrix
    it accepts, the bars of its float32 rounding."""
    X = np.random.default_rng(3).standard_normal((70, 3))
    D = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    cases = [("nan", r"^D contains NaN \(first at row 1, column 40\)\.$"),
             ("negative", r"^D has negative entries; distances must be >= 0\.$"),
             ("diagonal", r"^D must have a zero diagonal "),
             ("skew", r"^D must be symmetric; pass \(D \+ D\.T\) / 2 if it holds round-off\.$"),
             ("inf", r"^D must be symmetric"),
             ("beyond", r"^D has finite entries above 3\.4e\+38, which float32 ")]
    for kind, message in cases:
        if kind == "beyond" and dtype == np.float32:
            continue
        E = D.copy()
        if kind == "nan":
            E[1, 40] = E[40, 1] = E[50, 3] = np.nan
        elif kind == "negative":
            E[33, 2] = E[2, 33] = -1.0
        elif kind == "diagonal":
            E[64, 64] = 1e-9
        elif kind == "skew":
            E[31, 32] *= 1 + 3e-6
        elif kind == "inf":
            E[5, 66] = np.inf
        else:
            E[10, 20] = E[20, 10] = 1e39
        for n_jobs in (1, 2):
            with pytest.raises(ValueError, match=message):
                lb.vr_barcode(E.astype(dtype), n_jobs=n_jobs)
    E = D.astype(dtype)
    E[7, 9] = E[9, 7] = np.inf
    E[8, 9] *= 1 + 0.5e-6
    for maxdim in (0, 1, 2):   # the cohomology engine (0), the homology engine (1, 2)
        got = lb.vr_barcode(E, maxdim=maxdim, n_jobs=2)
        check_equal(got, giotto(np.minimum(E, E.T).astype(np.float32), maxdim))


# ---- memory model of the homology engine (rips_homology_bytes, behind check_allocation) -----------

def clique_bound(D, t, s):
    """sum_v C(deg_v, s - 1) / s over the threshold graph (each clique counted from its vertices)."""
    deg = ((D <= t) & np.isfinite(D)).sum(axis=1) - 1
    return sum(math.comb(int(d), s - 1) for d in deg) // s


def true_cliques(D, t, s):
    adj = (D <= t) & np.isfinite(D)
    return sum(all(adj[a, b] for a, b in itertools.combinations(c, 2))
               for c in itertools.combinations(range(len(D)), s))


@pytest.mark.parametrize("thr", [None, 0.9])
def test_homology_bytes_model(thr):
    D = sphere(14, 3, seed=7)
    D[0, 5] = D[5, 0] = np.inf  # an absent edge
    n = len(D)
    t = _core.enclosing_radius(D) if thr is None else np.float32(thr)
    fixed = 8 * n * n + 8 * n * ((n + 63) // 64) + 24 * n
    for maxdim in (1, 2, 3):
        counts = [clique_bound(D, t, s) for s in range(2, maxdim + 2)]
        assert counts[0] == true_cliques(D, t, 2)  # exact for the edges
        for s, c in zip(range(3, maxdim + 2), counts[1:]):
            assert c >= true_cliques(D, t, s)
        slots = 2 * n * n if maxdim == 2 else 0  # the edges' 32-bit slots of the active lists
        faces = {1: n, 2: n * (n - 1) // 2, 3: 0}[maxdim]   # a bit per face of the active lists
        slots += 8 * ((faces + 63) // 64)
        assert _core.rips_homology_bytes(D, maxdim, thr) == fixed + slots + 40 * sum(counts)
        assert _core.rips_homology_bytes(D, maxdim, thr, 2) == (
            fixed + slots + 40 * sum(counts) + 16 * sum(counts[1:]))


def test_vr_barcode_checks_the_homology_model(monkeypatch):
    D = sphere(30, 3, seed=8)
    need = _core.rips_homology_bytes(D, 2, None)
    assert _core.rips_homology_applies(30, 2) and not _core.rips_homology_applies(30, 4)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(int(need) - 1))
    with pytest.raises(MemoryError, match="vr_barcode matrices and simplices of degrees 1..2"):
        lb.vr_barcode(D, maxdim=2)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(int(need)))
    check_equal(lb.vr_barcode(D, maxdim=2), giotto(D, 2))


# ---- Ctrl-C ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_jobs", [1, 2])
def test_ctrl_c_interrupts_the_homology_engine(n_jobs):
    """H3 of 1600 points on S^3 (about 9 s of CPU, 5 s wall on two idle cores with two threads: 1200
    points finished inside the 1.5 s before SIGINT once the engine got faster): the engine polls for Ctrl-C while it lists the
    simplices and in its reduction (on two threads the caller runs the top stage, polls between
    top simplices and while it waits), so SIGINT returns within a second or two."""
    from test_reliability import interrupt_after

    code = textwrap.dedent(f"""
        import time
        import numpy as np
        import latentbridge as lb
        X = np.random.default_rng(0).standard_normal((1600, 4))
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        D = lb.pairwise_distances(X).astype(np.float32)
        print("ready", flush=True)
        t0 = time.perf_counter()
        try:
            lb.vr_barcode(D, maxdim=3, threshold=0.7, n_jobs={n_jobs})
        except KeyboardInterrupt:
            print("interrupted after %.3f at %.6f" % (time.perf_counter() - t0, time.time()), flush=True)
            raise
        print("finished after %.3f" % (time.perf_counter() - t0), flush=True)
    """)
    out, err, returncode, elapsed = interrupt_after(code, wait=1.5)
    assert "interrupted after" in out and "KeyboardInterrupt" in err, (out, err)
    assert elapsed < 2.0, f"took {elapsed:.2f} s to return after SIGINT"

# ---- R-Cross_1, cohomology engine: neighbour lists and threads (issue 11, engineer T2) ----------
# The cohomology engine reads windows of cofacets from per-vertex lists of the max(64, n / 8)
# nearest neighbours under m and falls back to a scan of all vertices past them; n > 65 makes the
# lists partial. Oracle: giotto-ph on the doubled matrix [[0, w^T], [w, m]] (finite H1 bars).


def cross_inputs(kind, n, seed):
    rng = np.random.default_rng(seed)
    if kind == "linear64":  # bars among the shortest edges: windows inside the lists
        P = rng.standard_normal((n, 64))
        Q = P @ rng.standard_normal((64, 64)) / 8 + 0.5 * rng.standard_normal((n, 64))
        w, wt = distances(P), distances(Q)
    elif kind == "plane_vs_noise":  # long bars: windows past the lists
        P = rng.standard_normal((n, 2)) @ rng.standard_normal((2, 8))
        w, wt = distances(P), distances(rng.standard_normal((n, 8)))
    else:  # "tied": rounded to a few integers, ties across every list boundary
        P = rng.standard_normal((n, 3))
        w = np.round(2 * distances(P))
        wt = np.round(2 * distances(P @ rng.standard_normal((3, 3)) + rng.standard_normal((n, 3))))
    return np.ascontiguousarray(w), np.ascontiguousarray(np.minimum(w, wt))


@pytest.mark.parametrize("kind", ["linear64", "plane_vs_noise", "tied"])
def test_r_cross_cohomology_with_partial_neighbour_lists_equals_giotto(kind):
    n = 110
    w, m = cross_inputs(kind, n, seed=5)
    ref = giotto(np.block([[np.zeros((n, n), np.float32), w.T], [w, m]]), 1)[1]
    ref = ref[np.isfinite(ref[:, 1])]
    assert len(ref) > 0
    for threads in (1, 2):
        got = _core.r_cross_barcode_h1(w, m, threads, "cohomology")
        np.testing.assert_array_equal(canon(got), ref)


@pytest.mark.parametrize("seed", [5, 17, 18])
def test_r_cross_cohomology_emergent_pairs_under_ties_equal_giotto(seed):
    # The engine stores no emergent pair: an edge owns its zero cofacet when it is the first of
    # the triangle's equally long edges whose zero cofacet it is (tied data: later edges are
    # reduced), and a reduced column whose pivot has its own length takes the triangle from a
    # later owner, which is then reduced too. Seeds 17 and 18 reach that last case (found by
    # counting it in an instrumented build), 5 only the first.
    n = 110
    w, m = cross_inputs("tied", n, seed)
    ref = giotto(np.block([[np.zeros((n, n), np.float32), w.T], [w, m]]), 1)[1]
    ref = ref[np.isfinite(ref[:, 1])]
    got, pairs = _core.r_cross_barcode_h1(w, m, 1, "cohomology", True)
    np.testing.assert_array_equal(canon(got), ref)
    D = np.block([[np.zeros((n, n), np.float32), w.T], [w, m]])  # each bar's edges have its lengths
    np.testing.assert_array_equal(D[pairs[:, 0], pairs[:, 1]], got[:, 0])
    np.testing.assert_array_equal(D[pairs[:, 2], pairs[:, 3]], got[:, 1])


def test_r_cross_barcode_is_the_same_for_every_n_jobs_and_names_the_bad_input():
    # n_jobs=2 builds the two normalised matrices side by side and splits the engine's passes
    rng = np.random.default_rng(8)
    P = rng.standard_normal((120, 16))
    Q = P @ rng.standard_normal((16, 16)) / 4 + 0.5 * rng.standard_normal((120, 16))
    ref = lb.r_cross_barcode(P, Q, n_jobs=1)
    assert len(ref) > 0
    for n_jobs in (2, 3):
        np.testing.assert_array_equal(lb.r_cross_barcode(P, Q, n_jobs=n_jobs), ref)
    # a constant Q has a zero 0.9-quantile: the error names Q, also from the worker thread
    with pytest.raises(ValueError, match="Q's pairwise distances"):
        lb.r_cross_barcode(P, np.ones_like(Q), n_jobs=2)


# ---- the quantile normalisation from the upper triangle (issue 11, engineer T2, fourth session) --
# r_cross_barcode, rtd and rtd_lite divide each distance matrix by np.quantile(r, 0.9) over all
# n^2 entries; _core.symmetric_quantile reads only the strict upper triangle. Oracle: np.quantile
# itself, compared bit for bit (the barcodes depend on the exact scale).


def symmetric_with_zero_diagonal(kind, n, rng):
    if kind == "uniform":
        A = rng.random((n, n))
    elif kind == "ties":  # few values: runs of ties across both order statistics
        A = rng.integers(0, 4, (n, n)).astype(np.float64)
    elif kind == "zeros":  # mostly zero off the diagonal: the order statistics among the zeros
        A = np.where(rng.random((n, n)) < 0.8, 0.0, rng.random((n, n)))
    else:  # "distances", with a repeated point
        X = rng.standard_normal((n, 3))
        X[-1] = X[0]
        A = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    return np.triu(A, 1) + np.triu(A, 1).T


@pytest.mark.parametrize("kind", ["uniform", "ties", "zeros", "distances"])
def test_symmetric_quantile_equals_numpy_bit_for_bit(kind):
    rng = np.random.default_rng(11)
    for n in list(range(1, 40)) + [64, 65, 127, 200, 300, 401]:
        D = symmetric_with_zero_diagonal(kind, n, rng)
        for q in (0.9, 0.0, 0.5, 1.0, 0.25, 0.999, float(rng.random())):
            want = np.float64(np.quantile(D, q))
            got = np.float64(_core.symmetric_quantile(D, q))
            assert got.tobytes() == want.tobytes(), (kind, n, q, got, want)


def test_symmetric_quantile_reads_the_upper_triangle_and_propagates_nan():
    rng = np.random.default_rng(12)
    D = symmetric_with_zero_diagonal("uniform", 30, rng)
    lower = np.tril(rng.random((30, 30)) + 5.0, -1)  # the strict lower triangle is not read
    assert _core.symmetric_quantile(np.triu(D) + lower, 0.9) == np.quantile(D, 0.9)
    D[3, 7] = D[7, 3] = np.nan
    assert np.isnan(_core.symmetric_quantile(D, 0.9)) and np.isnan(np.quantile(D, 0.9))
    with pytest.raises(ValueError, match="q must lie in"):
        _core.symmetric_quantile(D, 1.5)


def sampled_upper_pairs(n, count=2048):
    """The (i, j) pairs, i < j, whose values symmetric_quantile samples to bracket the rank: its
    fixed 64-bit LCG (cpp/src/symmetric_quantile.cpp), replayed here to build an adversarial matrix."""
    state, mask, out = 0x9E3779B97F4A7C15, (1 << 64) - 1, []
    while len(out) < count:
        ij = []
        for _ in range(2):
            state = (state * 6364136223846793005 + 1442695040888963407) & mask
            ij.append((state >> 33) % n)
        if ij[0] != ij[1]:
            out.append((min(ij), max(ij)))
    return out


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_symmetric_quantile_when_the_sample_misses_the_rank(q):
    # every sampled entry is far above the rest (>= 10 against [0, 1)), so the bracket the sample
    # gives lies above the rank sought and the whole triangle must be selected; oracle: np.quantile
    rng = np.random.default_rng(13)
    n = 200                                     # 19,900 triangle values: the sampled path
    A = np.triu(rng.random((n, n)), 1)
    for i, j in sampled_upper_pairs(n):
        A[i, j] = 10.0 + rng.random()
    D = A + A.T
    want = np.float64(np.quantile(D, q))
    got = np.float64(_core.symmetric_quantile(D, q))
    assert got.tobytes() == want.tobytes(), (q, got, want)


# ---- the engine's float32 inputs in one pass (issue 11, engineer T2, fourth session) -----------
# Oracle: the numpy formulation of the reference's snapping (astype, masked assignment of the
# entries below eps = mean(r1) * 1e-6, np.minimum), compared bit for bit.


def numpy_cross_inputs(r1, r2):
    eps = r1.mean() * 1e-6
    w = r1.astype(np.float32)
    w[r1 < eps] = 0.0
    m = r2.astype(np.float32)
    m[r2 < eps] = 0.0
    return w, np.minimum(m, w)


@pytest.mark.parametrize("n", [3, 4, 63, 64, 65, 130, 200])
def test_cross_inputs_equal_the_numpy_formulation(n):
    from latentbridge.topology import _cross_matrices

    rng = np.random.default_rng(n)
    X, Y = rng.standard_normal((n, 4)), rng.standard_normal((n, 4))
    X[1] = X[0] + 1e-9  # a pair below the snapping threshold in r1 (and so in w and m)
    Y[2] = Y[0]  # an exact zero off the diagonal of r2
    r1 = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1)) * 3.7
    r2 = np.round(np.sqrt(((Y[:, None] - Y[None]) ** 2).sum(-1)), 1)  # ties with w are rare
    r2[:n // 2] = r1[:n // 2]  # rows where m and w tie exactly
    r2[-1, -2] = r2[-2, -1] = 1e-12  # below the snapping threshold in r2 only
    want_w, want_m = numpy_cross_inputs(r1, r2)
    assert not want_w[0, 1] and want_w[0, 2] and want_w[-1, -2] and not want_m[-1, -2]
    for threads in (1, 2, 3):
        w, m = _cross_matrices(r1, r2, ("P", "Q"), threads)
        assert w.tobytes() == want_w.tobytes() and m.tobytes() == want_m.tobytes()


def test_cross_inputs_name_the_matrix_beyond_float32():
    from latentbridge.topology import _cross_matrices

    r = np.ones((70, 70))
    np.fill_diagonal(r, 0.0)
    big = r.copy()
    big[65, 3] = big[3, 65] = 1e300
    for r1, r2, name in ((big, r, "P"), (r, big, "Q")):
        with pytest.raises(ValueError, match=f"distance matrix of {name} has finite entries above"):
            _cross_matrices(r1, r2, ("P", "Q"), 2)
    big[65, 3] = big[3, 65] = np.inf  # an infinite entry is allowed (an absent edge)
    w, m = _cross_matrices(r, big, ("P", "Q"))
    want_w, want_m = numpy_cross_inputs(r, big)
    assert w.tobytes() == want_w.tobytes() and m.tobytes() == want_m.tobytes()
