"""Alignment estimators against independent oracles (scipy, numpy lstsq, scikit-learn Ridge)."""

import re

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import latentbridge as lb
from latentbridge import _stats
from latentbridge._base import NotFittedError


def _ro(*arrays):
    for a in arrays:
        a.setflags(write=False)
    return arrays if len(arrays) > 1 else arrays[0]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 12)) * 2 + 7      # far from the origin on purpose
    Y = X @ rng.standard_normal((12, 9)) + 0.3 * rng.standard_normal((400, 9)) - 4
    return _ro(X, Y)


@pytest.fixture(params=["blas", "native"])
def backend(request, monkeypatch):
    monkeypatch.setattr(_stats, "DEFAULT_BACKEND", request.param)
    return request.param


# ---- Procrustes ----------------------------------------------------------------------------------

def test_procrustes_matches_scipy(data):
    from scipy.linalg import orthogonal_procrustes

    X, Y = data
    Xs, Ys = X[:, :9], Y
    R, _ = orthogonal_procrustes(Xs, Ys)
    est = lb.Procrustes(center=False).fit(Xs, Ys)
    np.testing.assert_allclose(est.rotation_, R, atol=1e-10)
    np.testing.assert_allclose(est.transform(Xs), Xs @ R, atol=1e-9)
    mx, my = Xs.mean(0), Ys.mean(0)
    R2, _ = orthogonal_procrustes(Xs - mx, Ys - my)
    est = lb.Procrustes().fit(Xs, Ys)
    np.testing.assert_allclose(est.rotation_, R2, atol=1e-10)


def test_procrustes_recovers_similarity_transform():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 6))
    Q = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    Y = 2.5 * (X - X.mean(0)) @ Q + 3.0
    est = lb.Procrustes(scale=True, center=True).fit(X, Y)
    assert est.scale_ == pytest.approx(2.5, rel=1e-12)
    np.testing.assert_allclose(est.rotation_, Q, atol=1e-12)
    np.testing.assert_allclose(est.transform(X), Y, atol=1e-12)
    assert est.score(X, Y) == pytest.approx(1.0)
    # pinned semantics: Y ~ s (X - mean_X) R + mean_Y
    np.testing.assert_allclose(
        est.transform(X), est.scale_ * (X - est.mean_x_) @ est.rotation_ + est.mean_y_, atol=1e-12)


def test_procrustes_rectangular_has_orthonormal_columns():
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 5))
    R = lb.Procrustes().fit(X, Y).rotation_
    np.testing.assert_allclose(R.T @ R, np.eye(5), atol=1e-12)


# ---- LinearMap --------------------------------------------------------------------------------

def test_linear_map_matches_lstsq(data):
    X, Y = data
    est = lb.LinearMap().fit(X, Y)
    W = np.linalg.lstsq(np.c_[X, np.ones(len(X))], Y, rcond=None)[0]
    np.testing.assert_allclose(est.coef_.T, W[:-1], atol=1e-10)
    np.testing.assert_allclose(est.intercept_, W[-1], atol=1e-9)
    est = lb.LinearMap(fit_intercept=False).fit(X, Y)
    np.testing.assert_allclose(est.coef_.T, np.linalg.lstsq(X, Y, rcond=None)[0], atol=1e-10)


def test_linear_map_minimum_norm_when_underdetermined():
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((5, 20)), rng.standard_normal((5, 4))
    est = lb.LinearMap(fit_intercept=False).fit(X, Y)
    np.testing.assert_allclose(est.coef_.T, np.linalg.pinv(X) @ Y, atol=1e-10)
    np.testing.assert_allclose(est.transform(X), Y, atol=1e-10)
    assert est.rank_ == 5


# ---- RidgeMap ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_matches_sklearn(data, backend, fit_intercept):
    Ridge = pytest.importorskip("sklearn.linear_model").Ridge
    X, Y = data
    ref = Ridge(alpha=3.0, fit_intercept=fit_intercept).fit(X, Y)
    est = lb.RidgeMap(alpha=3.0, fit_intercept=fit_intercept).fit(X, Y)
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-9)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, atol=1e-8)
    np.testing.assert_allclose(est.transform(X), ref.predict(X), atol=1e-8)
    assert est.score(X, Y) == pytest.approx(ref.score(X, Y), abs=1e-10)


def test_ridge_partial_fit_equals_fit(data, backend):
    X, Y = data
    full = lb.RidgeMap(alpha=0.5).fit(X, Y)
    part = lb.RidgeMap(alpha=0.5)
    for i, idx in enumerate(np.array_split(np.arange(len(X)), 7)):
        part.partial_fit(X[idx], Y[idx])
        if i == 2:   # reading a fitted attribute solves; later chunks still count
            assert part.n_samples_seen_ == idx[-1] + 1 and part.coef_.shape == (9, 12)
    np.testing.assert_allclose(part.coef_, full.coef_, atol=1e-10)
    np.testing.assert_allclose(part.intercept_, full.intercept_, atol=1e-9)
    assert part.n_samples_seen_ == len(X)


def test_ridge_float32_chunks_accumulate_in_float64(backend):
    rng = np.random.default_rng(4)
    X = (rng.standard_normal((3000, 16)) + 100).astype(np.float32)
    Y = (X[:, :8] * 2 - 50 + rng.standard_normal((3000, 8))).astype(np.float32)
    ref = lb.RidgeMap(alpha=1.0).fit(X.astype(np.float64), Y.astype(np.float64))
    est = lb.RidgeMap(alpha=1.0)
    for idx in np.array_split(np.arange(3000), 4):
        est.partial_fit(X[idx], Y[idx])
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-8)
    assert est.transform(X).dtype == np.float32


def test_native_and_blas_statistics_agree():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((5000, 70)).astype(np.float32)
    Y = rng.standard_normal((5000, 33)).astype(np.float32)
    out = []
    for b in _stats.CPU_BACKENDS:
        st = _stats.CrossStats(70, 33, want_yy=True, backend=b, n_threads=2)
        st.update(X[:1234], Y[:1234]).update(X[1234:], Y[1234:])
        out.append((st.cxx(), st.cxy(), st.cyy(), st.yy_diag(), st.mean_x()))
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    Xc, Yc = X64 - X64.mean(0), Y64 - Y64.mean(0)
    ref = (Xc.T @ Xc, Xc.T @ Yc, Yc.T @ Yc, (Yc ** 2).sum(0), X64.mean(0))
    for got in out:
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-8)


def test_ridge_cv_gcv_against_bruteforce(data):
    X, Y = data
    alphas = [1e-3, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4]
    est = lb.RidgeMap(alphas=alphas).fit(X, Y)
    n = len(X)
    Xc = np.c_[X - X.mean(0)]
    gcv = []
    for a in alphas:   # explicit hat matrix (with the unpenalised intercept) for each alpha
        H = Xc @ np.linalg.solve(Xc.T @ Xc + a * np.eye(X.shape[1]), Xc.T) + 1.0 / n
        R = Y - H @ Y
        gcv.append(n * (R ** 2).sum() / (n - np.trace(H)) ** 2 / Y.shape[1])
    np.testing.assert_allclose(est.cv_values_, gcv, rtol=1e-8)
    assert est.alpha_ == alphas[int(np.argmin(gcv))]
    Ridge = pytest.importorskip("sklearn.linear_model").Ridge
    np.testing.assert_allclose(est.coef_, Ridge(alpha=est.alpha_).fit(X, Y).coef_, atol=1e-9)


def test_ridge_cv_agrees_with_sklearn_ridgecv_on_clear_case():
    RidgeCV = pytest.importorskip("sklearn.linear_model").RidgeCV
    rng = np.random.default_rng(6)
    X = rng.standard_normal((300, 30))
    Y = X @ rng.standard_normal((30, 4)) * 0.05 + rng.standard_normal((300, 4))
    alphas = [1e-2, 1.0, 1e2, 1e4]
    ours = lb.RidgeMap(alphas=alphas).fit(X, Y)
    ref = RidgeCV(alphas=alphas).fit(X, Y)
    assert ours.alpha_ == ref.alpha_


# ---- analytic map ----------------------------------------------------------------------------

def test_analytic_map_reproduces_source_logits():
    rng = np.random.default_rng(7)
    W_A, b_A = rng.standard_normal((10, 20)), rng.standard_normal(10)
    W_B, b_B = rng.standard_normal((10, 16)), rng.standard_normal(10)
    F_A = rng.standard_normal((50, 20))
    M = lb.analytic_map(W_A, W_B, b_A, b_B)
    assert isinstance(M, lb.LinearMap)
    np.testing.assert_allclose(M.transform(F_A) @ W_B.T + b_B, F_A @ W_A.T + b_A, atol=1e-10)
    y = np.argmax(F_A @ W_A.T + b_A, axis=1)
    assert lb.stitched_accuracy(F_A, y, W_B, b_B, mapping=M) == 1.0


def test_analytic_map_rank_deficient_warns():
    rng = np.random.default_rng(8)
    W_B = rng.standard_normal((10, 4))      # 10 classes in 4 dimensions: rank 4
    with pytest.warns(UserWarning, match="rank 4"):
        lb.analytic_map(rng.standard_normal((10, 6)), W_B)


def test_analytic_map_bad_shapes():
    with pytest.raises(ValueError, match="one row per class"):
        lb.analytic_map(np.ones((3, 4)), np.ones((5, 4)))
    with pytest.raises(ValueError, match="b_A must have"):
        lb.analytic_map(np.eye(3), np.eye(3), b_A=np.ones(2))


# ---- class means, ICP ---------------------------------------------------------------------------

def test_class_means():
    X = np.array([[0.0, 1.0], [2.0, 3.0], [10.0, 10.0]], dtype=np.float32)
    means, classes = lb.class_means(X, ["b", "b", "a"])
    assert list(classes) == ["a", "b"]
    np.testing.assert_allclose(means, [[10, 10], [1, 2]])
    assert means.dtype == np.float32
    with pytest.raises(ValueError, match="one label per row"):
        lb.class_means(X, [0, 1])


def test_icp_class_restricted_recovers_rigid_motion():
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 6, 240)
    X = rng.standard_normal((240, 5)) + 4 * rng.standard_normal((6, 5))[labels]
    Q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    perm = rng.permutation(240)
    Y = (X @ Q + 2.0)[perm]                 # unpaired: shuffled target
    icp = lb.ICP().fit(X, Y, labels, labels[perm])
    assert icp.converged_ and icp.n_iter_ <= 50
    np.testing.assert_allclose(icp.transform(X), X @ Q + 2.0, atol=1e-8)
    np.testing.assert_array_equal(perm[icp.matches_], np.arange(240))
    assert icp.history_[-1] < 1e-12


def test_icp_inner_estimator_and_reporting():
    rng = np.random.default_rng(10)
    X = rng.standard_normal((100, 3))
    A = rng.standard_normal((3, 3)) * 0.1 + np.eye(3)
    icp = lb.ICP(estimator=lb.LinearMap(), max_iter=3, tol=0.0).fit(X, X @ A)
    assert isinstance(icp.estimator_, lb.LinearMap)
    assert icp.n_iter_ <= 3 and len(icp.history_) == icp.n_iter_
    with pytest.raises(ValueError, match="same dimension"):
        lb.ICP().fit(X, X[:, :2])
    with pytest.raises(ValueError, match="both labels_x and labels_y"):
        lb.ICP().fit(X, X, labels_x=np.zeros(100))
    with pytest.raises(TypeError, match="fit and transform"):
        lb.ICP(estimator=object()).fit(X, X)


# ---- StitchingMLP -------------------------------------------------------------------------------

def test_stitching_mlp_learns_a_nonlinear_map():
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(11)
    X = rng.uniform(-1, 1, (400, 3))
    Y = np.c_[np.sin(2 * X[:, 0]), X[:, 1] * X[:, 2]]
    mlp = lb.StitchingMLP(k=4, max_iter=2000, random_state=0).fit(X, Y)
    assert mlp.mlp_.hidden_layer_sizes == (12, 12)
    assert mlp.score(X, Y) > 0.9
    assert mlp.score(X, Y) > lb.LinearMap().fit(X, Y).score(X, Y) + 0.2


# ---- estimator conventions and bad input -------------------------------------------------------

# Classes, not instances: an instance built at collection is shared by every pytest.main in one
# process (mutmut's stats, clean and mutant runs), so a fit in one run would leak into the next.
@pytest.mark.parametrize("cls", [lb.Procrustes, lb.LinearMap, lb.RidgeMap, lb.ICP,
                                 lb.StitchingMLP], ids=lambda c: c.__name__)
def test_estimator_conventions(cls, data):
    est = cls()
    params = est.get_params()
    assert type(est)(**params).get_params() == params
    with pytest.raises(NotFittedError):
        est.transform(data[0])
    if isinstance(est, (lb.ICP, lb.StitchingMLP)):
        return
    assert est.fit(*data) is est
    with pytest.raises(ValueError, match="features"):
        est.transform(data[0][:, :3])
    assert est.set_params(**params) is est
    with pytest.raises(ValueError, match="Invalid parameter"):
        est.set_params(bogus=1)


def test_bad_input(data):
    X, Y = data
    with pytest.raises(ValueError, match="same number of rows"):
        lb.RidgeMap().fit(X, Y[:10])
    with pytest.raises(ValueError, match="NaN"):
        lb.LinearMap().fit(np.full((5, 2), np.nan), np.ones((5, 2)))
    with pytest.raises(ValueError, match="alpha must be"):
        lb.RidgeMap(alpha=-1).fit(X, Y)
    with pytest.raises(ValueError, match="alphas must be"):
        lb.RidgeMap(alphas=[]).fit(X, Y)
    with pytest.raises(TypeError, match="scale must be True or False"):
        lb.Procrustes(scale="yes").fit(X, Y)
    est = lb.RidgeMap().partial_fit(X, Y)
    with pytest.raises(ValueError, match="same spaces"):
        est.partial_fit(X[:, :3], Y)
    with pytest.raises(TypeError, match="numeric"):
        lb.Procrustes().fit(np.array([["a"]]), np.array([["b"]]))


def test_native_kernel_rejects_bad_buffers():
    from latentbridge import _core

    A = np.ones((10, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="C must have shape"):
        _core.cross_accumulate(A, None, None, None, np.zeros((3, 3)), None, None, 1)
    with pytest.raises(ValueError, match="B must be"):
        _core.cross_accumulate(A, None, np.ones((10, 2)), None, np.zeros((4, 2)), None, None, 1)
    with pytest.raises(TypeError):
        _core.cross_accumulate(A, None, None, None, np.zeros((4, 4), np.float32), None, None, 1)


def test_native_kernel_column_sums_with_and_without_products():
    """The kernel's contract (its docstring): sum_a and sum_b gain the column sums of the shifted
    chunks, also when one side has no columns and no product is formed. Oracle: numpy."""
    from latentbridge import _core

    rng = np.random.default_rng(9)
    A, B = rng.standard_normal((7, 4)), rng.standard_normal((7, 3))
    a, b = rng.standard_normal(4), rng.standard_normal(3)
    for Bq, bq in ((B, b), (np.zeros((7, 0)), None)):
        C, sa = np.zeros((4, Bq.shape[1])), np.ones(4)
        _core.cross_accumulate(A, a, Bq, bq, C, sa, None, 1)
        np.testing.assert_allclose(sa, 1 + (A - a).sum(0), rtol=1e-13)
        np.testing.assert_allclose(C, (A - a).T @ (Bq - (0 if bq is None else bq)), rtol=1e-13)
    sb = np.ones(3)
    _core.cross_accumulate(np.zeros((7, 0)), None, B, b, np.zeros((0, 3)), None, sb, 1)
    np.testing.assert_allclose(sb, 1 + (B - b).sum(0), rtol=1e-13)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_statistics_match_cpu(dtype):
    rng = np.random.default_rng(12)
    X = (rng.standard_normal((3000, 130)) + 3).astype(dtype)
    Y = rng.standard_normal((3000, 70)).astype(dtype)
    got, ref = [], []
    for b, out in (("cuda", got), ("native", ref)):
        st = _stats.CrossStats(130, 70, want_yy=True, backend=b)
        st.update(X[:1000], Y[:1000]).update(X[1000:], Y[1000:])
        out += [st.cxx(), st.cxy(), st.cyy(), st.mean_x(), st.mean_y()]
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-11, atol=1e-9)
    cpu = lb.RidgeMap(alpha=2.0).fit(X, Y)
    gpu = lb.RidgeMap(alpha=2.0, device="cuda").fit(X, Y)
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, atol=1e-10)


# ---- modes and iterations the tests above do not reach -------------------------------------------

def test_procrustes_scale_without_centering_uses_the_source_norm():
    """Y = s X Q with s != 1 and no translation: s = trace(S) / ||X||_F^2 (Schoenemann), written
    out here from numpy's SVD of X^T Y."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((80, 5)) + 1.0
    Q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    est = lb.Procrustes(scale=True, center=False).fit(X, 2.5 * X @ Q)
    assert est.scale_ == pytest.approx(2.5, rel=1e-12)
    np.testing.assert_allclose(est.rotation_, Q, atol=1e-12)
    np.testing.assert_allclose(est.transform(X), 2.5 * X @ Q, atol=1e-11)
    np.testing.assert_allclose(est.intercept_, 0.0, atol=0)
    # with noise: the closed form by hand
    Y = 0.4 * X @ Q + 0.2 * rng.standard_normal((80, 5))
    U, S, Vt = np.linalg.svd(X.T @ Y)
    est = lb.Procrustes(scale=True, center=False).fit(X, Y)
    assert est.scale_ == pytest.approx(S.sum() / np.sum(X * X), rel=1e-12)
    np.testing.assert_allclose(est.rotation_, U @ Vt, atol=1e-12)


def _rotation_3d(angle, axis):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def test_icp_from_the_identity_iterates_until_the_matches_settle():
    """No labels: ICP starts from the identity, several iterations are needed before the matches
    are right, and it must not stop (nor report convergence) before the error settles."""
    rng = np.random.default_rng(12)
    X = rng.uniform(-1, 1, size=(300, 3)) * [3.0, 2.0, 1.0]
    R = _rotation_3d(0.25, [1.0, 2.0, 3.0])
    t = np.array([0.1, -0.2, 0.05])
    perm = rng.permutation(300)
    Y = (X @ R + t)[perm]
    icp = lb.ICP(max_iter=100, tol=1e-10).fit(X, Y)
    assert icp.converged_ and 3 <= icp.n_iter_ < 100
    np.testing.assert_allclose(icp.transform(X), X @ R + t, atol=1e-8)
    np.testing.assert_array_equal(perm[icp.matches_], np.arange(300))
    h = icp.history_
    assert len(h) == icp.n_iter_ and h[0] > 1e-3 and h[-1] < 1e-20
    assert np.all(np.diff(h) <= 1e-15)        # ICP never increases the matching error


# ---- what the mutation run (issue 17) found unchecked ---------------------------------------------

def _icp_rotation_problem():
    """The unlabelled 3-D problem above: several ICP iterations with strictly falling error."""
    rng = np.random.default_rng(12)
    X = rng.uniform(-1, 1, size=(300, 3)) * [3.0, 2.0, 1.0]
    perm = rng.permutation(300)
    return X, (X @ _rotation_3d(0.25, [1.0, 2.0, 3.0]) + [0.1, -0.2, 0.05])[perm]


class _SpyMap:
    """An inner estimator for ICP that records every ``fit`` it receives.

    The map is ``inner`` (identity when None); with ``flip`` every other ``transform`` call returns
    the negated map instead, so that successive matchings can differ at the same error.
    """

    def __init__(self, inner=None, flip=False):
        self.inner, self.flip, self.fits, self.calls = inner, flip, [], 0

    def fit(self, X, Y):
        self.fits.append((np.array(X), np.array(Y)))
        if self.inner is not None:
            self.inner.fit(X, Y)
        return self

    def transform(self, X):
        self.calls += 1
        Z = np.asarray(X) if self.inner is None else self.inner.transform(X)
        return -Z if self.flip and self.calls % 2 else Z


def test_class_means_accepts_column_and_row_labels_and_rejects_other_shapes():
    rng = np.random.default_rng(20)
    X = rng.standard_normal((6, 2))
    y = np.array([0, 1, 0, 2, 1, 0])
    ref = np.array([X[y == c].mean(axis=0) for c in (0, 1, 2)])      # brute force
    for labels in (y, y.reshape(-1, 1), y.reshape(1, -1), y.astype(float), list(y)):
        means, classes = lb.class_means(X, labels)
        np.testing.assert_allclose(means, ref, rtol=1e-14, atol=1e-15)
        assert classes.tolist() == [0, 1, 2]
    for bad in (y.reshape(2, 3), y.reshape(1, 1, 6), y[:5]):
        shape = re.escape(str(bad.shape))
        with pytest.raises(ValueError, match=rf"^y must be a 1-D array with one label per row "
                                             rf"\(6\); got shape {shape}\.$"):
            lb.class_means(X, bad)
    with pytest.raises(ValueError, match=r"^y contains NaN or infinity\.$"):
        lb.class_means(X, [0.0, 1.0, np.nan, 0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match=r"^X contains NaN"):
        lb.class_means(np.full((6, 2), np.nan), y)


def test_analytic_map_biases_follow_the_array_rule_and_messages_name_the_argument():
    rng = np.random.default_rng(21)
    W_A, W_B = rng.standard_normal((3, 5)), rng.standard_normal((3, 4))
    F = rng.standard_normal((7, 5))
    b_A, b_B = np.array([True, False, True]), np.array([False, False, True])
    # booleans and integers are promoted to float64; a column or a row is one vector
    for bA, bB in ((b_A, b_B), (b_A.reshape(-1, 1), b_B.reshape(1, -1)),
                   (b_A.astype(int).tolist(), b_B.astype(int).tolist())):
        M = lb.analytic_map(W_A, W_B, bA, bB)
        np.testing.assert_allclose(M.transform(F) @ W_B.T + b_B, F @ W_A.T + b_A, atol=1e-12)
        assert M.rank_ == 3 and M.n_features_in_ == 5
    nan = np.full((3, 5), np.nan)
    with pytest.raises(ValueError, match=r"^W_A contains NaN"):
        lb.analytic_map(nan, W_B)
    with pytest.raises(ValueError, match=r"^W_B contains NaN"):
        lb.analytic_map(W_A, nan)
    with pytest.raises(ValueError, match=r"^b_A contains NaN or infinity\.$"):
        lb.analytic_map(W_A, W_B, b_A=[0.0, np.inf, 1.0])
    with pytest.raises(ValueError, match=r"^b_B must have n_classes = 3 entries; got 2\.$"):
        lb.analytic_map(W_A, W_B, b_B=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"got 3 and 5 rows\. Pass the weights in \(n_classes, d\) "
                                         r"layout \(torch's nn\.Linear\.weight layout\)\.$"):
        lb.analytic_map(np.ones((3, 4)), np.ones((5, 4)))
    with pytest.warns(UserWarning, match=r"^W_B has rank 2 < n_classes = 3: no map reproduces A's "
                                         r"logits exactly; the returned map matches them in least "
                                         r"squares\.$"):
        M = lb.analytic_map(W_A, np.outer([1.0, 2.0, 0.0], [1, 0, 0, 0]) + np.outer(
            [0.0, 1.0, 1.0], [0, 1, 0, 0]))
    assert M.rank_ == 2


def test_icp_defaults_and_tags_are_the_documented_ones():
    assert lb.ICP().get_params() == {"estimator": None, "class_restricted": True, "max_iter": 50,
                                     "tol": 1e-6}
    assert lb.ICP().__sklearn_tags__().target_tags.required is True


def test_icp_starts_from_the_class_means_and_matches_within_classes():
    """A spy inner estimator (identity map) shows what ICP fits: first the class means (brute
    force), then the rows paired with their nearest target row of the same class (cdist)."""
    rng = np.random.default_rng(22)
    X, Y = rng.standard_normal((40, 2)), rng.standard_normal((30, 2))
    lx, ly = np.arange(40) % 3, np.arange(30) % 3
    spy = _SpyMap()
    icp = lb.ICP(estimator=spy, max_iter=1).fit(X, Y, lx, ly)
    assert spy.fits == []                 # the estimator passed in is copied, never fitted itself
    fits = icp.estimator_.fits
    np.testing.assert_allclose(fits[0][0], [X[lx == c].mean(0) for c in range(3)], atol=1e-15)
    np.testing.assert_allclose(fits[0][1], [Y[ly == c].mean(0) for c in range(3)], atol=1e-15)
    D = cdist(X, Y, "sqeuclidean")
    D_within = np.where(lx[:, None] == ly[None, :], D, np.inf)
    expected = D_within.argmin(axis=1)
    np.testing.assert_array_equal(icp.matches_, expected)
    np.testing.assert_array_equal(fits[1][1], Y[expected])
    np.testing.assert_allclose(icp.history_, [D_within.min(axis=1).mean()], rtol=1e-12)
    assert icp.n_iter_ == 1 and icp.converged_ is False and len(fits) == 2
    assert icp.n_targets_ == 2 and icp.n_features_in_ == 2
    with pytest.raises(ValueError, match="ICP is expecting 2 features"):
        icp.transform(X[:, :1])
    # without the restriction: the nearest among all target rows
    icp = lb.ICP(estimator=_SpyMap(), class_restricted=False, max_iter=1).fit(X, Y, lx, ly)
    np.testing.assert_array_equal(icp.matches_, D.argmin(axis=1))


def test_icp_stopping_rule_follows_the_error_history():
    """ICP stops at the first iteration whose error changed by <= tol times the previous one, or
    whose matches repeat. The full run (tol=0) gives the error history; runs with a looser tol
    must stop where the documented rule says, on that history."""
    X, Y = _icp_rotation_problem()
    full = lb.ICP(estimator=_SpyMap(lb.Procrustes()), max_iter=100, tol=0.0).fit(X, Y)
    h = full.history_
    # tol = 0: stops only when the matches repeat, never refitting on a repeated matching
    targets = [t for _, t in full.estimator_.fits]
    assert full.converged_ and len(targets) == full.n_iter_ - 1
    assert not any(np.array_equal(a, b) for a, b in zip(targets, targets[1:]))
    rel = np.abs(np.diff(h)) / h[:-1]
    stops = {}
    for tol in (0.1, 0.2):
        first = next((i + 2 for i, r in enumerate(rel) if r <= tol), full.n_iter_)
        icp = lb.ICP(max_iter=100, tol=tol).fit(X, Y)
        assert icp.converged_ and icp.n_iter_ == first
        np.testing.assert_allclose(icp.history_, h[:first], rtol=1e-12)
        stops[tol] = first
    assert stops[0.2] < stops[0.1] == full.n_iter_      # both branches of the rule were used


def test_icp_stops_when_the_error_repeats_even_if_the_matches_differ():
    """Integer points symmetric under negation: the spy's map alternates between +X and -X, so the
    matches change every iteration (rows 0, 2 then 1, 3) while the mean squared distance repeats
    (2.5)."""
    X = np.array([[1.0, 0.0], [0.0, 4.0]])
    Y = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 5.0], [0.0, -5.0]])
    icp = lb.ICP(estimator=_SpyMap(flip=True), max_iter=5, tol=0.0).fit(X, Y)
    assert icp.converged_ and icp.n_iter_ == 2
    h = icp.history_
    assert h[0] == h[1] and h[0] == pytest.approx(2.5, rel=1e-14)
    np.testing.assert_array_equal(icp.estimator_.fits[0][1], Y[[0, 2]])   # +X: rows 0 and 2


def test_icp_bad_input_names_the_argument():
    rng = np.random.default_rng(23)
    X, Y = rng.standard_normal((12, 2)), rng.standard_normal((10, 2))
    lx, ly = np.arange(12) % 2, np.arange(10) % 2
    cases = [
        (dict(class_restricted="yes"), (X, Y), TypeError, r"^class_restricted must be True or False"),
        (dict(max_iter=0), (X, Y), ValueError, r"^max_iter must be >= 1; got 0\.$"),
        (dict(tol=-1.0), (X, Y), ValueError, r"^tol must be >= 0\.0; got -1\.0\.$"),
        ({}, (X, None), ValueError,
         r"^ICP requires y to be passed, but the target y is None: pass Y \(m, q\), the target "
         r"point set \(its rows need not be paired with those of X\)\.$"),
        ({}, (X, np.full((3, 2), np.nan)), ValueError, r"^Y contains NaN"),
        ({}, (X, Y, lx), ValueError, r"^pass both labels_x and labels_y, or neither\.$"),
        ({}, (X, Y, lx[:5], ly), ValueError, r"^labels_x must be a 1-D array"),
        ({}, (X, Y, lx, ly[:5]), ValueError, r"^labels_y must be a 1-D array"),
        ({}, (X, Y, lx, ly * 2), ValueError,
         r"^labels_x and labels_y must contain the same classes; got \[0, 1\] and \[0, 2\]\.$"),
        ({}, (X, Y[:, :1]), ValueError,
         r"same dimension; got 2 and 1\. Pass labels_x/labels_y \(class means give the start\) "
         r"or fit the estimator on a few pairs first\.$"),
        (dict(estimator=_Truncating()), (X, Y, lx, ly), ValueError,
         r"^the estimator maps X to 1 dimensions but Y has 2\.$"),
    ]
    for params, args, exc, message in cases:
        with pytest.raises(exc, match=message):
            lb.ICP(**params).fit(*args)
    with pytest.raises(TypeError, match=r"^estimator must have fit and transform methods"):
        lb.ICP(estimator=object()).fit(X, Y)           # neither fit nor transform
    with pytest.raises(TypeError, match=r"^estimator must have fit and transform methods"):
        lb.ICP(estimator=_FitOnly()).fit(X, Y)


class _Truncating:
    """A map into one dimension whatever the target: ICP must refuse to match it against Y."""

    def fit(self, X, Y):
        return self

    def transform(self, X):
        return np.asarray(X)[:, :1]


class _FitOnly:
    def fit(self, X, Y):
        return self


def test_icp_transform_after_a_failed_fit_is_not_fitted():
    """A fit that fails after recording the input width leaves ``n_features_in_`` behind; the
    fitted check must look for the inner estimator, not for any attribute ending in '_'."""
    icp = lb.ICP()
    with pytest.raises(ValueError):
        icp.fit(np.ones((4, 2)), None)
    assert hasattr(icp, "n_features_in_")
    with pytest.raises(NotFittedError):
        icp.transform(np.ones((4, 2)))


def _gcv_bruteforce(X, Y, alpha, fit_intercept):
    """GCV of Golub, Heath & Wahba from the explicit hat matrix (pinv when alpha = 0)."""
    n = X.shape[0]
    Xc = X - X.mean(0) if fit_intercept else X
    H = Xc @ np.linalg.pinv(Xc.T @ Xc + alpha * np.eye(X.shape[1]), hermitian=True) @ Xc.T
    H = H + 1.0 / n if fit_intercept else H
    R = Y - H @ Y
    return n * (R ** 2).sum() / (n - np.trace(H)) ** 2 / Y.shape[1]


def test_ridge_without_intercept_from_chunks_with_different_means(backend):
    """fit_intercept=False rebuilds the raw statistics from the shifted ones: chunks far from each
    other (the shift is the first chunk's mean) must give scikit-learn's Ridge on all rows, and
    GCV over alphas must match the explicit hat matrix."""
    Ridge = pytest.importorskip("sklearn.linear_model").Ridge
    rng = np.random.default_rng(24)
    X = rng.standard_normal((90, 4)) + np.repeat([[5.0, -3, 1, 0], [-4, 2, 0, 6], [1, 1, -7, 2]],
                                                  30, axis=0)
    Y = X @ rng.standard_normal((4, 2)) + rng.standard_normal((90, 2)) + [3.0, -2.0]
    alphas = [0.1, 3.0, 100.0]
    one = lb.RidgeMap(alpha=3.0, fit_intercept=False)
    cv = lb.RidgeMap(alphas=alphas, fit_intercept=False)
    for idx in np.split(np.arange(90), 3):
        one.partial_fit(X[idx], Y[idx])
        cv.partial_fit(X[idx], Y[idx])
    ref = Ridge(alpha=3.0, fit_intercept=False).fit(X, Y)
    np.testing.assert_allclose(one.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(one.intercept_, 0.0, atol=0)
    np.testing.assert_allclose(cv.cv_values_, [_gcv_bruteforce(X, Y, a, False) for a in alphas],
                               rtol=1e-9)


def test_ridge_on_tiny_magnitudes_is_scale_free():
    """Data at 1e-9: every eigenvalue of X^T X is far below 1 yet none is at the rounding level, so
    alpha = 0 must give the least-squares map (numpy lstsq)."""
    rng = np.random.default_rng(25)
    X = rng.standard_normal((50, 4)) * 1e-9
    Y = X @ rng.standard_normal((4, 3)) + 1e-11 * rng.standard_normal((50, 3))
    est = lb.RidgeMap(alpha=0.0).fit(X, Y)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    np.testing.assert_allclose(est.coef_.T, np.linalg.lstsq(Xc, Yc, rcond=None)[0], rtol=1e-9)


def test_ridge_constant_feature_gets_no_weight():
    """A constant column is an exactly null direction of the centred X^T X: it gets zero weight for
    every alpha (scikit-learn's Ridge; the pinv hat matrix for GCV, alpha = 0 included, without a
    division-by-zero warning)."""
    Ridge = pytest.importorskip("sklearn.linear_model").Ridge
    rng = np.random.default_rng(26)
    X = np.c_[rng.standard_normal((40, 3)), np.full(40, 2.0)]
    Y = X[:, :3] @ rng.standard_normal((3, 2)) + 0.1 * rng.standard_normal((40, 2))
    est = lb.RidgeMap(alpha=1.0).fit(X, Y)
    ref = Ridge(alpha=1.0).fit(X, Y)
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-12)
    assert np.all(est.coef_[:, 3] == 0)
    alphas = [0.0, 1.0]
    cv = lb.RidgeMap(alphas=alphas).fit(X, Y)
    np.testing.assert_allclose(cv.cv_values_, [_gcv_bruteforce(X, Y, a, True) for a in alphas],
                               rtol=1e-9)


def test_ridge_fit_discards_earlier_chunks():
    rng = np.random.default_rng(27)
    X, Y = rng.standard_normal((30, 3)), rng.standard_normal((30, 2))
    est = lb.RidgeMap(alpha=0.5).partial_fit(X[:10] + 5, Y[:10])
    est.fit(X, Y)
    Ridge = pytest.importorskip("sklearn.linear_model").Ridge
    np.testing.assert_allclose(est.coef_, Ridge(alpha=0.5).fit(X, Y).coef_, atol=1e-12)
    assert est.n_samples_seen_ == 30


def test_ridge_negative_rounding_eigenvalue_counts_as_zero(monkeypatch):
    """eigh may return a null eigenvalue of X^T X as a tiny negative number. A spy around eigh
    turns the exact zero of a constant column into -1e-12 s_max: with a penalty of 2e-12 s_max the
    GCV must still equal the hat matrix's (where that direction contributes nothing)."""
    rng = np.random.default_rng(28)
    X = np.c_[rng.standard_normal((40, 3)), np.full(40, 2.0)]
    Y = X[:, :3] @ rng.standard_normal((3, 2)) + 0.1 * rng.standard_normal((40, 2))
    eigh = np.linalg.eigh
    smax = eigh(np.cov(X.T, bias=True) * 40)[0].max()

    def eigh_with_negative_null(A):
        s, V = eigh(A)
        assert s[0] == 0.0                 # the constant column's direction, exactly
        s[0] = -1e-12 * smax
        return s, V

    monkeypatch.setattr(np.linalg, "eigh", eigh_with_negative_null)
    alphas = [2e-12 * smax, 1.0]
    cv = lb.RidgeMap(alphas=alphas).fit(X, Y)
    monkeypatch.undo()
    np.testing.assert_allclose(cv.cv_values_, [_gcv_bruteforce(X, Y, a, True) for a in alphas],
                               rtol=1e-8)


def test_ridge_accumulates_on_the_requested_device_and_threads(monkeypatch):
    """A spy for backend_for: the device argument decides the backend of the statistics, n_jobs
    their thread count."""
    from latentbridge import alignment

    seen = []
    monkeypatch.setattr(_stats, "DEFAULT_BACKEND", "blas")
    monkeypatch.setattr(alignment, "backend_for", lambda device: seen.append(device) or "native")
    rng = np.random.default_rng(29)
    X, y = rng.standard_normal((20, 3)), rng.standard_normal(20)
    est = lb.RidgeMap(device="auto", n_jobs=3).fit(X, y)
    assert seen == ["auto"] and est.stats_.backend == "native" and est.stats_.n_threads == 3
    assert est.predict(X).shape == (20,) and est.transform(X).shape == (20, 1)
    part = lb.RidgeMap().partial_fit(X[:10], y[:10]).partial_fit(X[10:], y[10:])
    assert part.predict(X).shape == (20,)


class _FakeMLP:
    """Stands in for scikit-learn's MLPRegressor: records its settings and what ``fit`` received;
    predicts the fixed linear map ``A @ W`` (1-D when it was fitted on a 1-D target)."""

    made = []

    def __init__(self, **params):
        self.params = params
        _FakeMLP.made.append(self)

    def fit(self, A, t):
        if self.params["max_iter"] == 13:
            raise RuntimeError("training failed")
        self.A, self.t, self.n_iter_ = np.array(A), np.array(t), 7
        q = 1 if self.t.ndim == 1 else self.t.shape[1]
        self.W = np.arange(1.0, 1.0 + A.shape[1] * q).reshape(A.shape[1], q) / 10
        return self

    def predict(self, A):
        out = np.asarray(A) @ self.W
        return out.ravel() if self.t.ndim == 1 else out


def test_stitching_mlp_trains_the_documented_network_on_standardised_data(monkeypatch):
    """Spy for MLPRegressor: the network is l -> k l -> k l -> q ReLU/Adam with the parameters
    given; inputs and targets are z-scores (a constant column is left unscaled); the prediction
    is mapped back with the target's std and mean (all by hand here)."""
    import sklearn.neural_network

    monkeypatch.setattr(sklearn.neural_network, "MLPRegressor", _FakeMLP)
    _FakeMLP.made.clear()
    rng = np.random.default_rng(30)
    X = np.c_[rng.standard_normal((25, 2)) * [2.0, 0.5] + [1.0, -3.0], np.full(25, 4.0)]
    Y = np.c_[rng.standard_normal(25) * 3 + 2, np.full(25, -1.0)]
    est = lb.StitchingMLP(k=3, alpha=0.25, max_iter=40, learning_rate_init=0.05,
                          random_state=5).fit(X, Y)
    mlp = _FakeMLP.made[-1]
    assert mlp.params == dict(hidden_layer_sizes=(9, 9), activation="relu", solver="adam",
                              alpha=0.25, max_iter=40, learning_rate_init=0.05, random_state=5)
    sx = np.where(X.std(0) == 0, 1.0, X.std(0))
    sy = np.where(Y.std(0) == 0, 1.0, Y.std(0))
    np.testing.assert_allclose(mlp.A, (X - X.mean(0)) / sx, atol=1e-14)
    np.testing.assert_allclose(mlp.t, (Y - Y.mean(0)) / sy, atol=1e-14)
    Xn = rng.standard_normal((4, 3))
    np.testing.assert_allclose(est.transform(Xn), ((Xn - X.mean(0)) / sx) @ mlp.W * sy + Y.mean(0),
                               atol=1e-13)
    assert est.n_iter_ == 7 and est.n_targets_ == 2 and est.n_features_in_ == 3
    assert est.transform(Xn.astype(np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match="StitchingMLP is expecting 3 features"):
        est.transform(Xn[:, :2])
    # a 1-D target is trained as 1-D and predicted as 1-D
    est = lb.StitchingMLP().fit(X, Y[:, 0])
    mlp = _FakeMLP.made[-1]
    assert mlp.t.shape == (25,) and est.predict(Xn).shape == (4,)
    assert mlp.params["hidden_layer_sizes"] == (6, 6) and mlp.params["random_state"] is None


def test_stitching_mlp_failed_training_leaves_it_unfitted(monkeypatch):
    """fit sets the standardisation before training: if training fails, transform must still
    say the estimator is not fitted (the spy MLP fails when max_iter is 13)."""
    import sklearn.neural_network

    monkeypatch.setattr(sklearn.neural_network, "MLPRegressor", _FakeMLP)
    X = np.random.default_rng(38).standard_normal((10, 3))
    est = lb.StitchingMLP(max_iter=13)
    with pytest.raises(RuntimeError, match="training failed"):
        est.fit(X, X)
    assert hasattr(est, "x_mean_")
    with pytest.raises(NotFittedError):
        est.transform(X)


def test_stitching_mlp_defaults_and_bad_parameters():
    assert lb.StitchingMLP().get_params() == dict(k=2, alpha=1e-4, max_iter=500,
                                                  learning_rate_init=1e-3, random_state=None)
    assert lb.StitchingMLP(random_state=3).get_params()["random_state"] == 3
    X = np.random.default_rng(31).standard_normal((6, 2))
    for params, message in [
        (dict(k=0), r"^k must be >= 1; got 0\.$"),
        (dict(alpha=-1.0), r"^alpha must be >= 0\.0; got -1\.0\.$"),
        (dict(max_iter=0), r"^max_iter must be >= 1; got 0\.$"),
        (dict(learning_rate_init=0.0), r"^learning_rate_init must be > 0\.0; got 0\.0\.$"),
        (dict(learning_rate_init=-1.0), r"^learning_rate_init must be > 0\.0; got -1\.0\.$"),
    ]:
        with pytest.raises(ValueError, match=message):
            lb.StitchingMLP(**params).fit(X, X)
    with pytest.raises(ValueError, match=r"^X has 1 sample\(s\) .* at least 2 required"):
        lb.StitchingMLP().fit(X[:1], X[:1])


def test_ridge_rounding_level_directions_are_dropped_at_a_tiny_penalty():
    """X of rank 6 in 12 columns: the six null eigenvalues of X^T X come out at 0.01-1 times
    s_max eps (rounding). With alpha far below that level they must get no weight (the documented
    p eps s_max rule), so the map is the minimum-norm least-squares one (pinv), not rounding noise
    divided by rounding noise."""
    rng = np.random.default_rng(32)
    B = rng.standard_normal((60, 6)) + 1.0
    X = np.c_[B, B[:, :2] @ rng.standard_normal((2, 6))]
    Y = X @ rng.standard_normal((12, 2)) + rng.standard_normal((60, 2))
    est = lb.RidgeMap(alpha=1e-14).fit(X, Y)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    np.testing.assert_allclose(est.coef_.T, np.linalg.pinv(Xc) @ Yc, rtol=1e-7, atol=1e-9)


def test_ridge_gcv_near_interpolation_and_at_small_scale():
    """n = p + 1 rows: without penalty the fit interpolates (df = n), so its GCV is infinite and it
    is never chosen; a small penalty leaves n - df < 1, where GCV must still follow the hat
    matrix; data at 1e-3 (eigenvalues and residuals far below 1) likewise."""
    rng = np.random.default_rng(33)
    X, Y = rng.standard_normal((6, 5)), rng.standard_normal((6, 2))
    est = lb.RidgeMap(alphas=[0.0, 1e-3, 10.0]).fit(X, Y)
    assert est.cv_values_[0] == np.inf and est.alpha_ != 0.0
    np.testing.assert_allclose(est.cv_values_[1:], [_gcv_bruteforce(X, Y, a, True)
                                                    for a in (1e-3, 10.0)], rtol=1e-8)
    Xs = rng.standard_normal((30, 3)) * 1e-3
    Ys = Xs @ rng.standard_normal((3, 2)) + 1e-5 * rng.standard_normal((30, 2))
    alphas = [1e-9, 1e-7, 1e-5]
    est = lb.RidgeMap(alphas=alphas).fit(Xs, Ys)
    np.testing.assert_allclose(est.cv_values_, [_gcv_bruteforce(Xs, Ys, a, True) for a in alphas],
                               rtol=1e-8)


def test_ridge_without_penalty_is_the_minimum_norm_least_squares_map():
    """alpha = 0 on rank-deficient X (a constant column, a repeated one): numpy's pinv solution;
    on constant X the map is zero and the intercept is the mean of Y."""
    rng = np.random.default_rng(34)
    B = rng.standard_normal((30, 3))
    X = np.c_[B, B[:, 0], np.full(30, 5.0)]
    Y = B @ rng.standard_normal((3, 2)) + 0.1 * rng.standard_normal((30, 2))
    est = lb.RidgeMap(alpha=0.0).fit(X, Y)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    np.testing.assert_allclose(est.coef_.T, np.linalg.pinv(Xc) @ Yc, atol=1e-12)
    np.testing.assert_allclose(est.transform(X), Xc @ np.linalg.pinv(Xc) @ Yc + Y.mean(0),
                               atol=1e-12)
    const = lb.RidgeMap(alpha=0.0).fit(np.full((30, 2), 3.0), Y)
    assert np.all(const.coef_ == 0)
    np.testing.assert_allclose(const.intercept_, Y.mean(0), rtol=1e-14)


def test_ridge_parameters_defaults_and_lazy_attributes():
    assert lb.RidgeMap().get_params() == dict(alpha=1.0, alphas=None, fit_intercept=True,
                                              n_jobs=None, device="cpu")
    assert lb.RidgeMap(n_jobs=3).get_params()["n_jobs"] == 3
    rng = np.random.default_rng(35)
    X, Y = rng.standard_normal((20, 3)), rng.standard_normal((20, 2))
    est = lb.RidgeMap()
    with pytest.raises(AttributeError, match=r"^'RidgeMap' object has no attribute 'bogus_'$"):
        est.bogus_
    # a column of candidates is a sequence too; switching back to one alpha drops cv_values_
    est.set_params(alphas=np.array([[0.1], [10.0]])).fit(X, Y)
    assert est.cv_values_.shape == (2,)
    est.set_params(alphas=None).fit(X, Y)
    assert not hasattr(est, "cv_values_") and est.alpha_ == 1.0
    for params, exc, message in [
        (dict(alphas=2.0), TypeError, r"^alphas must be a sequence of numbers; got 2\.0\.$"),
        (dict(alphas=[]), ValueError, r"^alphas must be a non-empty sequence of finite numbers "
                                      r">= 0; got an empty one\.$"),
        (dict(alphas=[True, 1.0]), TypeError, r"^alphas\[0\] must be a real number"),
        (dict(alphas=[1.0, -2.0]), ValueError, r"^alphas\[1\] must be >= 0\.0; got -2\.0\.$"),
        (dict(fit_intercept=1), TypeError, r"^fit_intercept must be True or False"),
    ]:
        with pytest.raises(exc, match=message):
            lb.RidgeMap(**params).fit(X, Y)
    with pytest.raises(TypeError, match=r"^fit_intercept must be True or False"):
        lb.LinearMap(fit_intercept=1).fit(X, Y)
    with pytest.raises(TypeError, match=r"^center must be True or False"):
        lb.Procrustes(center=1).fit(X, Y)
    # a 1-D target is predicted 1-D by every affine map
    for est in (lb.LinearMap(), lb.LinearMap(fit_intercept=False), lb.Procrustes(),
                lb.RidgeMap()):
        assert est.fit(X, Y[:, 0]).predict(X).shape == (20,)


def test_procrustes_scale_for_small_and_zero_sources():
    """s = trace(S) / ||X - m_X||_F^2 also when that norm is below 1 (Y = 3 X Q at 1e-3); when X
    has no spread at all the scale is 0 and every row maps to the mean of Y."""
    rng = np.random.default_rng(36)
    X = rng.standard_normal((10, 3)) * 1e-3
    Q = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    for center in (True, False):
        est = lb.Procrustes(scale=True, center=center).fit(X, 3.0 * X @ Q)
        assert est.scale_ == pytest.approx(3.0, rel=1e-10)
    Y = rng.standard_normal((10, 3))
    for center, X0 in ((True, np.full((10, 3), 2.0)), (False, np.zeros((10, 3)))):
        est = lb.Procrustes(scale=True, center=center).fit(X0, Y)
        assert est.scale_ == 0.0
        np.testing.assert_allclose(est.transform(X0), np.broadcast_to(est.mean_y_, (10, 3)))


def test_affine_map_after_a_failed_fit_is_not_fitted():
    """RidgeMap checks n_jobs after recording the input width: the failed fit leaves
    n_features_in_ behind, and transform must still say the map is not fitted."""
    rng = np.random.default_rng(37)
    X, Y = rng.standard_normal((10, 3)), rng.standard_normal((10, 2))
    est = lb.RidgeMap(n_jobs=0)
    with pytest.raises(ValueError, match="n_jobs"):
        est.fit(X, Y)
    assert hasattr(est, "n_features_in_")
    with pytest.raises(NotFittedError):
        est.transform(X)


def test_paired_input_messages_and_target_shapes():
    rng = np.random.default_rng(39)
    X, Y = rng.standard_normal((12, 3)), rng.standard_normal((12, 2))
    with pytest.raises(ValueError, match=r"^X contains NaN"):
        lb.LinearMap().fit(np.full((12, 3), np.nan), Y)
    with pytest.raises(ValueError, match=r"^Y contains NaN"):
        lb.LinearMap().fit(X, np.full((12, 2), np.nan))
    with pytest.raises(ValueError, match=r"^LinearMap requires y to be passed, but the target y is "
                                         r"None: pass Y \(n_samples, n_targets\), the rows paired "
                                         r"with those of X\.$"):
        lb.LinearMap().fit(X, None)
    with pytest.raises(TypeError, match=r"^Y could not be converted to a numeric array"):
        lb.LinearMap().fit(X[:2], [[1.0, 2.0], [3.0]])
    # a 1-D target, as an array or a list, is one column and is predicted 1-D
    for y in (Y[:, 0], list(Y[:, 0])):
        est = lb.LinearMap().fit(X, y)
        assert est.coef_.shape == (1, 3) and est.predict(X).shape == (12,)
        assert est.transform(X).shape == (12, 1)
    est = lb.LinearMap().fit(X, Y)
    assert est.n_targets_ == 2 and list(est.get_feature_names_out()) == ["linearmap0",
                                                                         "linearmap1"]
    assert est.__sklearn_tags__().transformer_tags.preserves_dtype == ["float64", "float32"]
    M = lb.analytic_map(rng.standard_normal((3, 5)), rng.standard_normal((3, 4)))
    assert M.predict(rng.standard_normal((7, 5))).shape == (7, 4)
    part = lb.RidgeMap().partial_fit(X, Y)
    with pytest.raises(ValueError, match=r"^X has 2 features, but RidgeMap is expecting 3 features "
                                         r"as input: every partial_fit chunk must come from the "
                                         r"same spaces as the first\.$"):
        part.partial_fit(X[:, :2], Y)
    with pytest.raises(ValueError, match=r"^Y has 1 columns but earlier partial_fit chunks had 2: "
                                         r"every chunk must come from the same spaces as the "
                                         r"first\.$"):
        part.partial_fit(X, Y[:, :1])
