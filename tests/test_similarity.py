"""CKA, SVCCA, PWCCA and mutual kNN against closed-form definitions written out here."""

import numpy as np
import pytest

import latentbridge as lb


def _hsic_biased(K, L):
    n = K.shape[0]
    H = np.eye(n) - 1.0 / n
    return np.trace(K @ H @ L @ H) / (n - 1) ** 2


def _hsic_unbiased(K, L):
    n = K.shape[0]
    K, L = K.copy(), L.copy()
    np.fill_diagonal(K, 0)
    np.fill_diagonal(L, 0)
    one = np.ones(n)
    return (np.trace(K @ L) + (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * one @ K @ L @ one) / (n * (n - 3))


def _cka_ref(K, L, hsic):
    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 10)) + 3.0
    Y = np.tanh(X @ rng.standard_normal((10, 6))) + 0.5 * rng.standard_normal((80, 6))
    X.setflags(write=False)
    Y.setflags(write=False)
    return X, Y


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_closed_form(pair, debiased):
    X, Y = pair
    hsic = _hsic_unbiased if debiased else _hsic_biased
    ref = _cka_ref(X @ X.T, Y @ Y.T, hsic)        # uncentred Grams: the estimators centre
    assert lb.cka(X, Y, debiased=debiased) == pytest.approx(ref, rel=1e-10)


def test_linear_cka_feature_space_formula():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3000, 20))           # n >> p: the feature-space path
    Y = X[:, :7] ** 2 + rng.standard_normal((3000, 7))
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    ref = np.linalg.norm(Yc.T @ Xc) ** 2 / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))
    assert lb.cka(X, Y) == pytest.approx(ref, rel=1e-12)
    sub = slice(0, 200)                           # unbiased: feature space == Gram definition
    ref_u = _cka_ref(X[sub] @ X[sub].T, Y[sub] @ Y[sub].T, _hsic_unbiased)
    from latentbridge import similarity

    got = similarity._ratio(*similarity._linear_feature_hsics(X[sub], Y[sub], True, 1))
    assert got == pytest.approx(ref_u, rel=1e-10)
    assert lb.cka(X[sub], Y[sub], debiased=True) == pytest.approx(ref_u, rel=1e-10)


def test_linear_cka_float32_accurate():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((20000, 16)) + 50
    Y = X @ rng.standard_normal((16, 16)) + rng.standard_normal((20000, 16))
    ref = lb.cka(X, Y)
    got = lb.cka(X.astype(np.float32), Y.astype(np.float32))
    assert got == pytest.approx(ref, abs=2e-6)


@pytest.mark.parametrize("debiased", [False, True])
def test_rbf_cka_closed_form(pair, debiased):
    X, Y = pair
    sigma = 1.7
    sq = lambda A: ((A[:, None] - A[None]) ** 2).sum(-1)  # noqa: E731
    K, L = np.exp(-sq(X) / (2 * sigma ** 2)), np.exp(-sq(Y) / (2 * sigma ** 2))
    hsic = _hsic_unbiased if debiased else _hsic_biased
    got = lb.cka(X, Y, kernel="rbf", sigma=sigma, debiased=debiased)
    assert got == pytest.approx(_cka_ref(K, L, hsic), rel=1e-9)


def test_rbf_median_rule(pair):
    X, Y = pair
    d = lambda A: np.sqrt(((A[:, None] - A[None]) ** 2).sum(-1))[np.triu_indices(len(A), 1)]  # noqa: E731
    sx, sy = np.median(d(X)), np.median(d(Y))
    sq = lambda A: ((A[:, None] - A[None]) ** 2).sum(-1)  # noqa: E731
    K, L = np.exp(-sq(X) / (2 * sx ** 2)), np.exp(-sq(Y) / (2 * sy ** 2))
    assert lb.cka(X, Y, kernel="rbf") == pytest.approx(_cka_ref(K, L, _hsic_biased), rel=1e-9)


def test_cka_invariances(pair):
    X, Y = pair
    rng = np.random.default_rng(3)
    Q = np.linalg.qr(rng.standard_normal((10, 10)))[0]
    base = lb.cka(X, Y)
    assert lb.cka(3.0 * X @ Q + 5.0, Y) == pytest.approx(base, rel=1e-10)
    assert lb.cka(X, X) == pytest.approx(1.0)
    assert lb.cka(X, Y) == pytest.approx(lb.cka(Y, X), rel=1e-12)
    assert lb.cka(X, Y, kernel="rbf") == pytest.approx(
        lb.cka(X @ Q * 2.0, Y, kernel="rbf"), rel=1e-9)   # median rule: scale-free


def test_minibatch_cka():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((600, 8))
    Y = X @ rng.standard_normal((8, 5)) + rng.standard_normal((600, 5))
    got = lb.minibatch_cka(X, Y, batch_size=200, random_state=0)
    # by hand: the same shuffle and batches
    order = np.random.default_rng(0).permutation(600)
    hs = np.zeros(3)
    for i in range(0, 600, 200):
        b = order[i:i + 200]
        Xc, Yc = X[b] - X[b].mean(0), Y[b] - Y[b].mean(0)
        K, L = Xc @ Xc.T, Yc @ Yc.T
        hs += (_hsic_unbiased(K, L), _hsic_unbiased(K, K), _hsic_unbiased(L, L))
    assert got == pytest.approx(hs[0] / np.sqrt(hs[1] * hs[2]), rel=1e-10)
    gen = ((X[order[i:i + 200]], Y[order[i:i + 200]]) for i in range(0, 600, 200))
    assert lb.minibatch_cka(gen) == pytest.approx(got, rel=1e-12)
    assert abs(got - lb.cka(X, Y, debiased=True)) < 0.05


def test_svcca_definition(pair):
    X, Y = pair
    def basis(A, thr):
        U, S, _ = np.linalg.svd(A - A.mean(0), full_matrices=False)
        k = int(np.argmax(np.cumsum(S ** 2) / np.sum(S ** 2) >= thr - 1e-12)) + 1
        return U[:, :k]
    Ux, Uy = basis(X, 0.9), basis(Y, 0.9)
    ref = np.linalg.svd(Ux.T @ Uy, compute_uv=False).mean()
    assert lb.svcca(X, Y, threshold=0.9) == pytest.approx(ref, rel=1e-10)
    Q = np.linalg.qr(np.random.default_rng(5).standard_normal((10, 10)))[0]
    assert lb.svcca(X @ Q * 3 + 1, X) == pytest.approx(1.0)


def test_cca_correlations_against_sklearn_free_definition(pair):
    """PWCCA with one-dimensional Y equals the multiple correlation coefficient."""
    X, Y = pair
    y = Y[:, :1]
    Xc, yc = X - X.mean(0), y - y.mean(0)
    beta = np.linalg.lstsq(Xc, yc, rcond=None)[0]
    r = np.corrcoef((Xc @ beta).ravel(), yc.ravel())[0, 1]
    assert lb.pwcca(y, X) == pytest.approx(r, rel=1e-10)
    assert lb.svcca(y, X, threshold=1.0) == pytest.approx(r, rel=1e-10)
    assert lb.pwcca(X, X @ np.diag(np.arange(1.0, 11.0))) == pytest.approx(1.0)


def test_mutual_knn():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((200, 5))
    Q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    assert lb.mutual_knn(X, 2 * X @ Q, k=10) == 1.0
    # hand-computed on a tiny case: neighbours by cosine
    A = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    B = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    # k=1: A's nn: 0<->1, 2<->3; B's nn: 0<->2, 1<->3  -> no overlap
    assert lb.mutual_knn(A, B, k=1) == 0.0
    assert lb.mutual_knn(A, A, k=1) == 1.0
    score = lb.mutual_knn(X, rng.standard_normal((200, 5)), k=10)
    assert score < 0.2


def test_bad_input(pair):
    X, Y = pair
    with pytest.raises(ValueError, match="kernel must be one of"):
        lb.cka(X, Y, kernel="poly")
    with pytest.raises(ValueError, match="same number of rows"):
        lb.cka(X, Y[:10])
    with pytest.raises(ValueError, match="sigma must be"):
        lb.cka(X, Y, kernel="rbf", sigma=-1.0)
    with pytest.raises(ValueError, match="at least 4"):
        lb.cka(X[:3], Y[:3], debiased=True)
    with pytest.raises(ValueError, match="undefined"):
        lb.cka(np.ones((10, 3)), Y[:10])
    with pytest.raises(ValueError, match="threshold"):
        lb.svcca(X, Y, threshold=1.5)
    with pytest.raises(ValueError, match="k must be"):
        lb.mutual_knn(X, Y, k=80)
    with pytest.raises(TypeError, match="debiased"):
        lb.cka(X, Y, debiased="yes")
    with pytest.raises(TypeError, match="pairs"):
        lb.minibatch_cka(X)


@pytest.mark.gpu
@pytest.mark.parametrize("debiased", [False, True])
def test_cka_cuda_matches_cpu(debiased):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((5000, 96)).astype(np.float32)
    Y = (X[:, :40] @ rng.standard_normal((40, 64))).astype(np.float32)
    cpu = lb.cka(X, Y, debiased=debiased)
    assert lb.cka(X, Y, debiased=debiased, device="cuda") == pytest.approx(cpu, rel=1e-11)
