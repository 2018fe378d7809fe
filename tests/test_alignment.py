"""Alignment estimators against independent oracles (scipy, numpy lstsq, scikit-learn Ridge)."""

import numpy as np
import pytest

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
    Yc = Y - Y.mean(0)
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
