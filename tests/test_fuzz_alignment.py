"""Property-based tests of the alignment estimators (Procrustes, LinearMap, RidgeMap fit /
partial_fit / transform, analytic_map, ICP) over random shapes, dtypes, layouts, magnitudes and
degenerate data. Oracles: scipy's orthogonal_procrustes, an SVD projection (least-squares fitted
values), scikit-learn's Ridge, the defining identity of analytic_map. LATENTBRIDGE_FUZZ_EXAMPLES
scales the number of cases."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.distance import cdist

import latentbridge as lb
from _fuzz import FUZZ, as_used, first_error, matrices, truncate, with_value_error


def paired(X, Y, n):
    truncate(X, n), truncate(Y, n)
    err = first_error(X, Y)
    return with_value_error(err, X.array.shape[0] != Y.array.shape[0])


def sq(A):
    return float(np.sum(A * A))


@FUZZ
@given(X=matrices(), Y=matrices(), n=st.integers(0, 9), scale=st.booleans(), center=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_procrustes(X, Y, n, scale, center, seed):
    err = paired(X, Y, n)
    est = lb.Procrustes(scale=scale, center=center)
    if err is not None:
        with pytest.raises(err):
            est.fit(X.array, Y.array)
        return
    est.fit(X.array, Y.array)
    A, B = as_used(X, np.float64), as_used(Y, np.float64)
    mx, my = (A.mean(0), B.mean(0)) if center else (0.0, 0.0)
    Ac, Bc = A - mx, B - my
    R = est.rotation_
    k = min(A.shape[1], B.shape[1])
    np.testing.assert_allclose(R.T @ R if A.shape[1] >= B.shape[1] else R @ R.T, np.eye(k),
                               atol=1e-8)
    # the loss of the fitted map equals the optimum of the oracle (R itself is not unique)
    if A.shape[1] == B.shape[1]:
        R0, S0 = orthogonal_procrustes(Ac, Bc)
        s0 = S0 / sq(Ac) if scale and sq(Ac) > 0 else (0.0 if scale else 1.0)
        best = sq(Bc - s0 * Ac @ R0)
        pred = est.transform(A).astype(np.float64)
        got = sq(B - pred)
        tol = 1e-6 * (sq(Bc) + (s0 ** 2 + 1) * sq(Ac)) + 1e-12 * (sq(A) + sq(B)) + 1e-300
        assert got <= best + tol
    # invariance: a rigid motion of Y moves the predictions with it
    if A.shape[1] == B.shape[1] and center:
        rng = np.random.default_rng(seed)
        Q = np.linalg.qr(rng.standard_normal((B.shape[1], B.shape[1])))[0]
        t = rng.standard_normal(B.shape[1]) * (np.abs(B).max(initial=0) + 1)
        moved = lb.Procrustes(scale=scale, center=True).fit(A, B @ Q + t)
        lhs = sq(B @ Q + t - moved.transform(A))
        rhs = sq(B - lb.Procrustes(scale=scale, center=True).fit(A, B).transform(A))
        assert abs(lhs - rhs) <= 1e-6 * (sq(Bc) + sq(Ac)) + 1e-12 * (sq(A) + sq(B) + sq(t)) \
            + 1e-300


@FUZZ
@given(X=matrices(), Y=matrices(), n=st.integers(0, 9), fit_intercept=st.booleans())
def test_linear_map(X, Y, n, fit_intercept):
    err = paired(X, Y, n)
    est = lb.LinearMap(fit_intercept=fit_intercept)
    if err is not None:
        with pytest.raises(err):
            est.fit(X.array, Y.array)
        return
    est.fit(X.array, Y.array)
    A, B = as_used(X, np.float64), as_used(Y, np.float64)
    mx, my = (A.mean(0), B.mean(0)) if fit_intercept else (0.0, 0.0)
    # fitted values are unique even when W is not: the projection of Y onto the column space
    U, S, _ = np.linalg.svd(A - mx, full_matrices=False)
    r = int(np.sum(S > S.max(initial=0.0) * max(A.shape) * np.finfo(np.float64).eps))
    ref = U[:, :r] @ (U[:, :r].T @ (B - my)) + my
    got = est.transform(X.array).astype(np.float64)
    assert got.shape == B.shape
    scale = np.sqrt(sq(B - my)) + np.abs(my).max(initial=0) * np.sqrt(B.size) + 1e-300
    tol = 1e-3 if X.array.dtype == np.float32 else 1e-6
    assert np.sqrt(sq(got - ref)) <= tol * scale


@FUZZ
@given(X=matrices(min_cols=1), Y=matrices(min_cols=1), n=st.integers(0, 9),
       alpha=st.sampled_from((0.0, 1e-3, 1.0, 100.0)), fit_intercept=st.booleans(),
       split=st.integers(0, 9), backend_device=st.sampled_from(("cpu",)))
def test_ridge_map(X, Y, n, alpha, fit_intercept, split, backend_device):
    from sklearn.linear_model import Ridge

    err = paired(X, Y, n)
    est = lb.RidgeMap(alpha=alpha, fit_intercept=fit_intercept, device=backend_device)
    if err is not None:
        with pytest.raises(err):
            est.fit(X.array, Y.array)
            est.coef_
        return
    A, B = as_used(X, np.float64), as_used(Y, np.float64)
    mag = max(np.abs(A).max(initial=0), np.abs(B).max(initial=0))
    est.fit(X.array, Y.array)
    got = est.transform(A).astype(np.float64)
    assert np.all(np.isfinite(got))
    if alpha > 0 and 1e-6 < np.abs(A).max(initial=0) < 1e6:
        ref = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="svd").fit(A, B).predict(A).reshape(got.shape)
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6 * (mag + 1))
    # partial_fit over two chunks gives the map of fit on the whole
    s = min(split, A.shape[0])
    chunked = lb.RidgeMap(alpha=alpha, fit_intercept=fit_intercept)
    for a, b in ((X.array[:s], Y.array[:s]), (X.array[s:], Y.array[s:])):
        if a.shape[0]:
            chunked.partial_fit(a, b)
    np.testing.assert_allclose(chunked.transform(A), got, rtol=1e-6, atol=1e-6 * (mag + 1))
    with pytest.raises(ValueError):
        est.transform(np.zeros((1, A.shape[1] + 1)))


@FUZZ
@given(W_A=matrices(max_rows=5, max_cols=6, structure="random"),
       W_B=matrices(max_rows=5, max_cols=6, structure="random"),
       F=matrices(max_cols=6, structure="random"), bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_analytic_map(W_A, W_B, F, bias, seed):
    rng = np.random.default_rng(seed)
    c = W_A.array.shape[0]
    b_A = rng.standard_normal(c) if bias else None
    b_B = rng.standard_normal(W_B.array.shape[0]) if bias else None
    err = first_error(W_A, W_B)
    err = with_value_error(err, W_A.array.shape[0] != W_B.array.shape[0])
    if err is not None:
        with pytest.raises(err):
            lb.analytic_map(W_A.array, W_B.array, b_A, b_B)
        return
    with warnings.catch_warnings():   # documented: rank-deficient W_B warns (least squares)
        warnings.simplefilter("ignore", UserWarning)
        M = lb.analytic_map(W_A.array, W_B.array, b_A, b_B)
    WA, WB = as_used(W_A, np.float64), as_used(W_B, np.float64)
    if F.error is None and F.array.shape[0] and F.array.shape[1] == WA.shape[1] \
            and np.linalg.matrix_rank(WB) == WB.shape[0]:
        Fv = as_used(F, np.float64)
        lhs = M.transform(Fv) @ WB.T + (0 if b_B is None else b_B)
        rhs = Fv @ WA.T + (0 if b_A is None else b_A)
        cond = np.linalg.cond(WB)
        scale = np.abs(Fv).max() * np.abs(WA).max() * WA.shape[1] + 1
        if cond < 1e6:
            np.testing.assert_allclose(lhs, rhs, atol=1e-6 * cond * scale, rtol=1e-6)


@FUZZ
@given(X=matrices(min_rows=1, min_cols=1, bad=False), seed=st.integers(0, 2**32 - 1),
       labels=st.booleans(), max_iter=st.integers(1, 5))
def test_icp(X, seed, labels, max_iter):
    """ICP on a rigidly moved copy: runs, returns finite maps of the right shape, and with class
    labels over well-separated points recovers the motion."""
    if X.error is not None:
        with pytest.raises(ValueError):
            lb.ICP(max_iter=max_iter).fit(X.array, X.array)
        return
    rng = np.random.default_rng(seed)
    A = as_used(X, np.float64)
    n, d = A.shape
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    B = A @ Q + 1.0
    ly = np.arange(n) % 3 if labels else None
    est = lb.ICP(max_iter=max_iter, estimator=lb.Procrustes(center=True))
    try:
        est.fit(A, B, ly, ly)
    except ValueError as exc:        # documented: no labels and no fitted estimator to start from
        assert ly is None or "class" in str(exc)
        return
    out = est.transform(A)
    assert out.shape == B.shape and np.all(np.isfinite(out))


@settings(parent=FUZZ, max_examples=max(4, FUZZ.max_examples // 6))
@given(n=st.integers(2049, 2300), m=st.integers(1, 300), d=st.integers(1, 3),
       ties=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_icp_first_matches_beyond_the_row_block(n, m, d, ties, seed):
    """More source rows than one 2048-row distance block, optionally on an integer grid (many
    equally near targets): every first match (identity start) is a nearest target by the brute
    force distances, and the first history entry is the mean of those minima."""
    rng = np.random.default_rng(seed)
    if ties:
        X = rng.integers(-4, 5, size=(n, d)).astype(np.float64)
        Y = rng.integers(-4, 5, size=(m, d)).astype(np.float64)
    else:
        X, Y = rng.standard_normal((n, d)), rng.standard_normal((m, d))
    icp = lb.ICP(max_iter=1).fit(X, Y)
    D = cdist(X, Y, "sqeuclidean")
    nearest = D.min(axis=1)
    got = D[np.arange(n), icp.matches_]
    assert np.all(got <= nearest + 1e-9 * (1 + nearest))
    assert icp.history_[0] == pytest.approx(nearest.mean(), rel=1e-9, abs=1e-12)
