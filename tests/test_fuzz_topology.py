"""Property-based tests of vr_barcode, r_cross_barcode and rtd: random shapes (0, 1, 2, 3... rows),
dtypes (float16/32/64, ints, bool; complex/object/str must raise TypeError), layouts (Fortran,
strided, reversed views), read-only arrays, huge (1e30) and tiny (1e-30) magnitudes, duplicated,
collinear and constant points, NaN/inf, corrupted distance matrices and bad options. Every case
either matches giotto-ph (ripser_parallel on the same matrix, or on the doubled R-Cross matrix) or
raises the documented ValueError/TypeError naming the argument. LATENTBRIDGE_FUZZ_EXAMPLES scales
the number of cases (see tests/_fuzz.py)."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

import latentbridge as lb
from _fuzz import FUZZ, first_error, matrices, with_value_error
from test_topology import doubled

gph = pytest.importorskip("gph")

F32_MAX = float(np.finfo(np.float32).max)


# ---- oracles -------------------------------------------------------------------------------------

def canon(bars):
    bars = np.asarray(bars, dtype=np.float64).reshape(-1, 2)
    bars = bars[bars[:, 1] > bars[:, 0]]
    return bars[np.lexsort((bars[:, 1], bars[:, 0]))]


def giotto(M, maxdim, thresh=np.inf):
    """giotto-ph barcodes of the float32 rounding of M; +inf entries are absent edges (replaced by
    a value above every finite entry and cut by the threshold)."""
    M = np.asarray(M, dtype=np.float32).astype(np.float64)
    if len(M) == 0:
        return [np.zeros((0, 2)) for _ in range(maxdim + 1)]
    inf = np.isinf(M)
    if inf.any():
        top = M[~inf].max() if (~inf).any() else 0.0
        M = np.where(inf, 2 * top + 1, M)
        thresh = min(thresh, top)
    out = gph.ripser_parallel(M, maxdim=maxdim, metric="precomputed", n_threads=1,
                              thresh=float(thresh))
    return [canon(d) for d in out["dgms"]]


def normalised(X, norm):
    r = lb.pairwise_distances(np.asarray(X, dtype=np.float64), device="cpu")
    if norm is None:
        return r
    scale = {"quantile": lambda: np.quantile(r, 0.9), "median": lambda: np.median(r),
             "mean": lambda: r.mean()}[norm]()
    return None if not scale > 0 else r / scale


def rcross_oracle(r1, r2, dim):
    """Finite bars in degree dim of the official doubled matrix (with its snapping)."""
    bars = giotto(doubled(r1, r2), dim)[dim]
    return bars[np.isfinite(bars[:, 1])]


def assert_barcodes_equal(got, ref):
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g.dtype == np.float64 and g.ndim == 2 and g.shape[1] == 2
        np.testing.assert_array_equal(canon(g), r)
        np.testing.assert_array_equal(g, canon(g))    # sorted, no zero-length bars


# ---- vr_barcode ----------------------------------------------------------------------------------

CORRUPTIONS = ("none", "none", "none", "inf_edge", "asymmetric", "negative", "diagonal",
               "non_square", "one_d", "beyond_float32", "tiny_asymmetry")


@st.composite
def distance_cases(draw):
    """(D, expected error) from a random point cloud and a random corruption of its matrix."""
    X = draw(matrices(max_rows=7, max_cols=3))
    if X.error is TypeError:
        return X.array, TypeError             # complex/object/str: rejected before the shape
    with np.errstate(over="ignore", invalid="ignore"):
        D = cdist(X.values, X.values) if X.values.shape[1] else np.zeros((len(X.values),) * 2)
    err = ValueError if np.isnan(D).any() else None
    n = len(D)
    kind = draw(st.sampled_from(CORRUPTIONS))
    i, j = (draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))) if n else (0, 0)
    if kind == "inf_edge" and n > 1 and i != j:
        D[i, j] = D[j, i] = np.inf
    elif kind == "asymmetric" and n > 1 and i != j:
        D[i, j] = 2 * D[i, j] + 1
        err = ValueError
    elif kind == "negative" and n > 1 and i != j:
        D[i, j] = D[j, i] = -1.0
        err = ValueError
    elif kind == "diagonal" and n:
        D[i, i] = 0.5
        err = ValueError
    elif kind == "non_square":
        D = D[:, :-1] if n else np.zeros((0, 1))
        err = ValueError
    elif kind == "one_d":
        D = D.ravel()
        err = ValueError
    elif kind == "beyond_float32" and n > 1 and np.isfinite(D).all() and D.max() > 0:
        D = D / D.max() * 1e300                  # float32 would turn these edges into inf
        err = ValueError
    elif kind == "tiny_asymmetry" and n > 1 and i != j and np.isfinite(D).all():
        D[i, j] *= 1 + 1e-9                    # round-off: accepted, the lower triangle is read
        D[j, i] = D[i, j] if j > i else D[j, i]
    dtype = draw(st.sampled_from(("float64", "float64", "float32", "float16", "int64", "bool")))
    if dtype != "float64" and err is None and np.isfinite(D).all():
        D = np.minimum(D, D.T)      # rounding must not turn a 1e-9 asymmetry into a real one
        if dtype == "int64":
            D = np.round(np.minimum(D, 1e15)).astype(np.int64)
        elif dtype == "bool":
            D = D > np.median(D) if D.size else D.astype(bool)
        else:
            with np.errstate(over="ignore"):
                cast = D.astype(dtype)
            if np.isfinite(cast).all():
                D = cast
    layout = draw(st.sampled_from(("C", "F", "strided")))
    if layout == "F":
        D = np.asfortranarray(D)
    elif layout == "strided" and D.ndim == 2:
        big = np.zeros((2 * D.shape[0], 2 * D.shape[1]), dtype=D.dtype)
        big[::2, ::2] = D
        D = big[::2, ::2]
    if draw(st.booleans()):
        D.setflags(write=False)
    if D.shape[0] == 0:
        err = ValueError                       # no points: rejected like every empty input
    return D, err


@FUZZ
@given(case=distance_cases(), maxdim=st.integers(0, 3), thr=st.sampled_from((None, 0.5, 1.0, 2.0)))
def test_vr_barcode_fuzz(case, maxdim, thr):
    D, err = case
    if err is not None:
        with pytest.raises(err, match="D"):
            lb.vr_barcode(D, maxdim=maxdim)
        return
    finite = np.asarray(D, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    threshold = None if thr is None or not finite.size else thr * float(np.median(finite))
    got = lb.vr_barcode(D, maxdim=maxdim, threshold=threshold)
    ref = giotto(D, maxdim, np.inf if threshold is None else float(np.float32(threshold)))
    assert_barcodes_equal(got, ref)
    if len(D):
        assert np.isinf(got[0][:, 1]).sum() >= 1


@FUZZ
@given(X=matrices(min_rows=1, max_rows=8, min_cols=1, max_cols=3, bad=False),
       perm_seed=st.integers(0, 2**32 - 1), k=st.integers(-20, 20), maxdim=st.integers(0, 2))
def test_vr_barcode_permutation_scaling_and_rigid_motion(X, perm_seed, k, maxdim):
    if X.error is not None:
        return
    V = X.values
    n, d = V.shape
    base = lb.vr_barcode(cdist(V, V), maxdim=maxdim)
    perm = np.random.default_rng(perm_seed).permutation(n)
    D = cdist(V, V)
    for a, b in zip(base, lb.vr_barcode(D[np.ix_(perm, perm)], maxdim=maxdim)):
        np.testing.assert_array_equal(a, b)
    scale = 2.0 ** k
    D32 = D.astype(np.float32).astype(np.float64)
    if np.all((D32 == 0) | ((D32 * scale >= np.finfo(np.float32).tiny)
                            & (D32 * scale <= F32_MAX))):       # power of 2: exact in float32
        for a, b in zip(base, lb.vr_barcode(D32 * scale, maxdim=maxdim)):
            np.testing.assert_array_equal(scale * a, b)
    # rigid motion: signed coordinate permutation and a translation (both exact on integers)
    if X.array.dtype.kind in "iub":
        rng = np.random.default_rng(perm_seed)
        R = np.eye(d)[rng.permutation(d)] * rng.choice((-1.0, 1.0), size=d)
        W = V @ R + rng.integers(-5, 6, size=d)
        for a, b in zip(base, lb.vr_barcode(cdist(W, W), maxdim=maxdim)):
            np.testing.assert_array_equal(a, b)


BAD_MAXDIM = ((-1, ValueError), (62, ValueError), (1.5, TypeError), (True, TypeError),
              ("1", TypeError), (None, TypeError), (np.int64(2), None), (0, None))
BAD_THRESHOLD = ((-1.0, ValueError), (np.nan, ValueError), ("1", TypeError), (True, TypeError),
                 (1 + 2j, TypeError), (np.inf, None), (10**400, None), (Fraction(1, 2), None),
                 (np.float32(0.7), None), (0, None), (1e300, None))


@FUZZ
@given(X=matrices(min_rows=1, max_rows=6, min_cols=1, max_cols=3, bad=False),
       maxdim=st.sampled_from(BAD_MAXDIM), threshold=st.sampled_from(BAD_THRESHOLD))
def test_vr_barcode_options(X, maxdim, threshold):
    if X.error is not None:
        return
    D = cdist(X.values, X.values)
    (md, e1), (thr, e2) = maxdim, threshold
    if e1 or e2:
        with pytest.raises((e1 or e2, e2 or e1), match="maxdim" if e1 else "threshold"):
            lb.vr_barcode(D, maxdim=md, threshold=thr)
        return
    got = lb.vr_barcode(D, maxdim=md, threshold=thr)
    t = np.inf if isinstance(thr, int) and thr > F32_MAX else float(thr)
    t = np.inf if t > F32_MAX else float(np.float32(t))
    assert_barcodes_equal(got, giotto(D, int(md), t))


# ---- r_cross_barcode -----------------------------------------------------------------------------

@st.composite
def pairs(draw, max_rows=7):
    """Two cases with (usually) the same number of rows."""
    n = draw(st.integers(0, max_rows))
    P = draw(matrices(n=n, max_cols=3))
    m = n if draw(st.integers(0, 5)) else draw(st.integers(0, max_rows))
    Q = draw(matrices(n=m, max_cols=3))
    return P, Q


def rcross_error(P, Q, norm):
    err = first_error(P, Q)
    n, m = P.array.shape[0], Q.array.shape[0]
    err = with_value_error(err, n != m or n < 2)
    if err is not None:
        return err, None, None
    r1, r2 = normalised(P.values, norm), normalised(Q.values, norm)
    if r1 is None or r2 is None or max(np.abs(r1).max(), np.abs(r2).max()) > F32_MAX:
        return ValueError, None, None
    return None, r1, r2


@FUZZ
@given(pq=pairs(), dim=st.integers(0, 2),
       norm=st.sampled_from(("quantile", "median", "mean", None)),
       n_jobs=st.sampled_from((None, 1, 2, -1)))
def test_r_cross_barcode_fuzz(pq, dim, norm, n_jobs):
    P, Q = pq
    err, r1, r2 = rcross_error(P, Q, norm)
    if err is not None:
        with pytest.raises(err, match="P|Q"):
            lb.r_cross_barcode(P.array, Q.array, dim=dim, norm=norm, device="cpu", n_jobs=n_jobs)
        return
    got = lb.r_cross_barcode(P.array, Q.array, dim=dim, norm=norm, device="cpu", n_jobs=n_jobs)
    assert got.dtype == np.float64 and got.shape[1] == 2
    np.testing.assert_array_equal(got, rcross_oracle(r1, r2, dim))


@FUZZ
@given(pq=pairs(), k=st.integers(-30, 30), kq=st.integers(-30, 30), seed=st.integers(0, 2**32 - 1))
def test_r_cross_barcode_permutation_and_scaling(pq, k, kq, seed):
    P, Q = pq
    if rcross_error(P, Q, "quantile")[0] is not None or rcross_error(P, Q, None)[0] is not None:
        return
    A, B = P.values, Q.values
    base = lb.r_cross_barcode(A, B, device="cpu")
    # norm="quantile": invariant under scaling each representation (powers of two are exact)
    np.testing.assert_array_equal(
        lb.r_cross_barcode(A * 2.0 ** k, B * 2.0 ** kq, device="cpu"), base)
    # norm=None: the barcode scales with the points, unless float32 under/overflows
    raw = lb.r_cross_barcode(A, B, norm=None, device="cpu")
    r = np.concatenate([cdist(A, A).ravel(), cdist(B, B).ravel()])
    r = r[r > 0]
    if r.size == 0 or (r.min() * 2.0 ** k > 1e-30 and r.max() * 2.0 ** k < 1e30):
        np.testing.assert_array_equal(
            lb.r_cross_barcode(A * 2.0 ** k, B * 2.0 ** k, norm=None, device="cpu"),
            raw * 2.0 ** k)
    # permuting the samples (the same way in both) changes nothing
    perm = np.random.default_rng(seed).permutation(len(A))
    np.testing.assert_array_equal(lb.r_cross_barcode(A[perm], B[perm], device="cpu"), base)


@FUZZ
@given(pq=pairs(max_rows=6), seed=st.integers(0, 2**32 - 1))
def test_r_cross_barcode_rigid_motion(pq, seed):
    P, Q = pq
    if rcross_error(P, Q, "quantile")[0] is not None:
        return
    A, B = P.values, Q.values
    rng = np.random.default_rng(seed)
    R, _ = np.linalg.qr(rng.standard_normal((A.shape[1], A.shape[1])))
    moved = A @ R + rng.standard_normal(A.shape[1]) * np.abs(A).max()
    if rcross_error(type(P)(moved, moved, None), Q, "quantile")[0] is not None:
        return
    base = lb.r_cross_barcode(A, B, device="cpu")
    got = lb.r_cross_barcode(moved, B, device="cpu")
    # round-off moves the distances slightly: the total persistence moves by at most the
    # number of edges times the float32 round-off of the normalised distances
    r = normalised(A, "quantile")
    tol = 1e-4 * len(A) ** 2 * max(1.0, r.max())
    assert abs((got[:, 1] - got[:, 0]).sum() - (base[:, 1] - base[:, 0]).sum()) <= tol


BAD_OPTIONS = (("dim", 3, ValueError), ("dim", -1, ValueError), ("dim", 1.0, TypeError),
               ("norm", "max", ValueError), ("norm", 0.9, ValueError),
               ("metric", "manhattan", ValueError), ("n_jobs", 0, ValueError),
               ("n_jobs", 1.5, ValueError), ("device", "tpu", ValueError))


@FUZZ
@given(X=matrices(min_rows=2, max_rows=6, min_cols=1, bad=False), opt=st.sampled_from(BAD_OPTIONS))
def test_r_cross_barcode_options(X, opt):
    if X.error is not None:
        return
    name, value, err = opt
    with pytest.raises(err, match=name):
        lb.r_cross_barcode(X.array, X.array, **{name: value})


# ---- rtd -----------------------------------------------------------------------------------------

@FUZZ
@given(pq=pairs(max_rows=7), trials=st.integers(1, 3), batch=st.integers(2, 8),
       symmetric=st.booleans(), dim=st.integers(0, 2), seed=st.integers(0, 2**32 - 1),
       n_jobs=st.sampled_from((None, 2)))
def test_rtd_fuzz(pq, trials, batch, symmetric, dim, seed, n_jobs):
    P, Q = pq
    kw = dict(trials=trials, batch=batch, symmetric=symmetric, dim=dim, seed=seed, n_jobs=n_jobs,
              device="cpu")
    err, _, _ = rcross_error(P, Q, "quantile")
    n = P.array.shape[0]
    manual = []
    if err is None:
        gen = np.random.default_rng(seed)
        for _ in range(trials):
            idx = gen.permutation(n)[:min(batch, n)]
            e1, r1, r2 = rcross_error(type(P)(P.values[idx], P.values[idx], None),
                                      type(Q)(Q.values[idx], Q.values[idx], None), "quantile")
            if e1 is not None:
                err = e1
                break
            sums = [float(np.sum(np.diff(rcross_oracle(r1, r2, dim), axis=1)))]
            if symmetric:
                sums.append(float(np.sum(np.diff(rcross_oracle(r2, r1, dim), axis=1))))
            manual.append(np.mean(sums))
    # batch > n: clamped to n with a warning (given before the normalisation can fail)
    clamped = batch > n >= 2 and first_error(P, Q) is None and Q.array.shape[0] == n

    def call(A, B):
        if not clamped:
            return lb.rtd(A, B, **kw)
        with pytest.warns(UserWarning, match=f"batch={batch} exceeds the {n} samples"):
            return lb.rtd(A, B, **kw)

    if err is not None:
        with pytest.raises(err, match="P|Q"):
            call(P.array, Q.array)
        return
    got = call(P.array, Q.array)
    assert isinstance(got, float) and got >= 0
    assert got == pytest.approx(float(np.mean(manual)), rel=1e-9, abs=1e-12)
    assert call(P.array, Q.array) == got                          # same seed, same value
    if symmetric:
        assert call(Q.array, P.array) == got                      # symmetric in P and Q
    else:   # one direction: the other direction's value, by the oracle, is what swapping gives
        back = []
        gen = np.random.default_rng(seed)
        for _ in range(trials):
            idx = gen.permutation(n)[:min(batch, n)]
            _, r1, r2 = rcross_error(type(P)(P.values[idx], P.values[idx], None),
                                     type(Q)(Q.values[idx], Q.values[idx], None), "quantile")
            back.append(float(np.sum(np.diff(rcross_oracle(r2, r1, dim), axis=1))))
        assert call(Q.array, P.array) == pytest.approx(float(np.mean(back)), rel=1e-9, abs=1e-12)


BAD_RTD = (("trials", 0, ValueError), ("trials", -3, ValueError), ("trials", 2.0, TypeError),
           ("trials", True, TypeError), ("batch", 1, ValueError), ("batch", 0, ValueError),
           ("batch", "5", TypeError), ("batch", None, TypeError), ("seed", "x", TypeError),
           ("seed", 1.5, TypeError), ("seed", -1, ValueError), ("symmetric", "yes", TypeError),
           ("symmetric", 1, TypeError), ("dim", 5, ValueError), ("norm", "l2", ValueError),
           ("n_jobs", 0, ValueError), ("trials", 10**15, MemoryError))


@FUZZ
@given(X=matrices(min_rows=2, max_rows=6, min_cols=1, bad=False), opt=st.sampled_from(BAD_RTD))
def test_rtd_options(X, opt):
    if X.error is not None:
        return
    name, value, err = opt
    with pytest.raises(err, match=name if err is not MemoryError else "rtd"):
        lb.rtd(X.array, X.array, **{"batch": 2, name: value})   # batch <= n: no clamp warning


# ---- float32 range and memory estimates ----------------------------------------------------------

def test_values_beyond_float32_are_refused_not_dropped():
    X = np.random.default_rng(0).standard_normal((6, 2))
    D = cdist(X, X)
    # 1e300 would become +inf in float32, an absent edge: a silent change of the complex
    with pytest.raises(ValueError, match="D has finite entries above"):
        lb.vr_barcode(D * 1e300)
    assert_barcodes_equal(lb.vr_barcode(D * 1e30), giotto(D * 1e30, 1))   # 1e30 still fits
    with pytest.raises(ValueError, match="distance matrix of P"):
        lb.r_cross_barcode(X * 1e200, X, norm=None, device="cpu")
    with pytest.raises(ValueError, match="distance matrix of Q"):
        lb.r_cross_barcode(X, X * 1e200, norm=None, device="cpu")
    assert lb.r_cross_barcode(X * 1e200, X * 1e200, device="cpu").shape == (0, 2)  # normalised


@pytest.mark.parametrize("call", ["vr", "rcross", "rcross_dim2", "rtd", "rtd_trials"])
def test_memory_estimates_raise_before_allocating(call, monkeypatch):
    X = np.random.default_rng(1).standard_normal((300, 2))
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "1M")       # each needs more than 1 MiB
    with pytest.raises(MemoryError, match="vr_barcode|r_cross_barcode|rtd"):
        if call == "vr":
            lb.vr_barcode(cdist(X, X))
        elif call == "rcross":
            lb.r_cross_barcode(X, X, device="cpu")
        elif call == "rcross_dim2":
            lb.r_cross_barcode(X, X, dim=2, device="cpu")
        elif call == "rtd":
            lb.rtd(X, X, trials=1, batch=300, device="cpu")
        else:
            lb.rtd(X[:20], X[:20], trials=10**6, batch=20, device="cpu")
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "1G")       # and fit well below 1 GiB
    lb.vr_barcode(cdist(X, X), maxdim=0)
    lb.rtd(X, X, trials=1, batch=300, device="cpu")


# ---- the C++ entry points ------------------------------------------------------------------------

@FUZZ
@given(n=st.integers(0, 7), seed=st.integers(0, 2**32 - 1), n_problems=st.integers(0, 3),
       n_threads=st.sampled_from((-1, 0, 1, 2, 8)),
       threshold=st.sampled_from((None, np.nan, -1.0, 0.0, 0.5, 1e300, np.inf)),
       violate=st.booleans())
def test_core_entry_points(n, seed, n_problems, n_threads, threshold, violate):
    """The private engine must not crash either: an empty batch once divided by zero (SIGFPE),
    a NaN threshold was taken as 'no edges', 1e300 was narrowed to float by undefined behaviour."""
    from latentbridge import _core
    rng = np.random.default_rng(seed)
    X, Y = rng.standard_normal((n, 2)), rng.standard_normal((n, 2))
    w = cdist(X, X).astype(np.float32)
    m = np.minimum(w, cdist(Y, Y).astype(np.float32))
    if threshold is not None and not threshold >= 0:
        with pytest.raises(ValueError, match="threshold"):
            _core.rips_barcodes(w, 1, threshold)
    else:
        t = np.inf if threshold is None or threshold > F32_MAX else float(np.float32(threshold))
        got = _core.rips_barcodes(w, 1, threshold)      # unsorted: topology.py sorts
        assert len(got) == 2
        for g, r in zip(got, giotto(w, 1, t)):
            np.testing.assert_array_equal(canon(g), r)
    if violate and n > 1:
        m[1, 0] = m[0, 1] = w[1, 0] + 1
        with pytest.raises(ValueError, match="m must not exceed w"):
            _core.r_cross_barcode_h1_batch([(w, m)] * max(n_problems, 1), n_threads)
        return
    out = _core.r_cross_barcode_h1_batch([(w, m)] * n_problems, n_threads)
    assert len(out) == n_problems
    for bars in out:
        np.testing.assert_array_equal(canon(bars), canon(_core.r_cross_barcode_h1(w, m, 1)))
    # both engines against giotto-ph on the doubled matrix (finite bars; no snapping needed here:
    # the doubled matrix is built from w and m as they are)
    if n > 1:
        M = np.zeros((2 * n, 2 * n))
        M[n:, :n] = w
        M[:n, n:] = w.T
        M[n:, n:] = m
        ref = giotto(M, 1)[1]
        ref = ref[np.isfinite(ref[:, 1])]
        for engine in ("cohomology", "homology"):
            np.testing.assert_array_equal(canon(_core.r_cross_barcode_h1(w, m, 1, engine)), ref)


def test_combinatorial_explosion_is_a_memory_error_not_a_hang():
    # 40 points, maxdim=61: the indices fit in 64 bits, but the cliques of ~20 vertices number
    # ~1e11; this used to run (and allocate) until killed
    X = np.random.default_rng(2).standard_normal((40, 2))
    with pytest.raises(MemoryError, match="vr_barcode simplices of degrees 2..61"):
        lb.vr_barcode(cdist(X, X), maxdim=61)
    # a low threshold keeps the cliques small: the same call is then cheap and correct
    D = cdist(X, X)
    thr = float(np.quantile(D, 0.05))
    assert_barcodes_equal(lb.vr_barcode(D, maxdim=61, threshold=thr)[:4],
                          giotto(D, 3, float(np.float32(thr))))
