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


# ---- PWCCA with distinct canonical correlations (the weights must be |projections|) ------------------

def _inv_sqrt(C):
    w, V = np.linalg.eigh(C)
    return (V / np.sqrt(w)) @ V.T


def _pwcca_by_whitening(X, Y):
    """PWCCA from the covariance form of CCA (a different route from the library's orthonormal
    bases): rho_i and u_i from the SVD of Cxx^-1/2 Cxy Cyy^-1/2, X's canonical variate
    h_i = Xc Cxx^-1/2 u_i normalised to unit length, weights alpha_i = sum_j |<h_i, x_j>| over X's
    centred columns x_j, normalised to sum 1; PWCCA = sum_i alpha_i rho_i (Morcos et al. 2018)."""
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    Wx, Wy = _inv_sqrt(Xc.T @ Xc), _inv_sqrt(Yc.T @ Yc)
    U, rho, _ = np.linalg.svd(Wx @ (Xc.T @ Yc) @ Wy)
    k = min(X.shape[1], Y.shape[1])
    H = Xc @ Wx @ U[:, :k]
    H /= np.linalg.norm(H, axis=0)
    alpha = np.abs(H.T @ Xc).sum(axis=1)
    return float(np.sum(alpha / alpha.sum() * rho[:k])), rho[:k]


def _distinct_correlations(n=400, seed=11):
    """X (n, 4) and Y (n, 3) whose canonical correlations are clearly different (~0.95, 0.6, 0.2),
    X's columns mixed so that the canonical variates project with both signs onto them."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 4))
    E = rng.standard_normal((n, 3))
    r = np.array([0.95, 0.6, 0.2])
    Y = Z[:, :3] * r + E * np.sqrt(1 - r ** 2)
    X = Z @ rng.standard_normal((4, 4))
    return X, Y @ rng.standard_normal((3, 3))


def test_pwcca_weights_are_absolute_projections():
    X, Y = _distinct_correlations()
    ref, rho = _pwcca_by_whitening(X, Y)
    assert rho[0] - rho[-1] > 0.5            # the weighting matters on this data
    assert lb.pwcca(X, Y) == pytest.approx(ref, rel=1e-10)
    # and it is a proper weighted mean: strictly between the smallest and largest correlation
    assert rho[-1] < lb.pwcca(X, Y) < rho[0]
    ref_yx, _ = _pwcca_by_whitening(Y, X)
    assert lb.pwcca(Y, X) == pytest.approx(ref_yx, rel=1e-10)


def test_pwcca_needs_more_samples_than_the_two_ranks():
    """With rank(X) + rank(Y) > n - 1 the two centred column spaces must intersect inside the
    (n - 1)-dimensional centred space, so some canonical correlations are 1 whatever the data."""
    rng = np.random.default_rng(12)
    X, Y = rng.standard_normal((20, 30)), rng.standard_normal((20, 5))
    with pytest.raises(ValueError, match=r"pwcca.*samples.*rank"):
        lb.pwcca(X, Y)
    with pytest.raises(ValueError, match="samples"):
        lb.pwcca(rng.standard_normal((12, 6)), rng.standard_normal((12, 6)))  # 6 + 6 > 11
    # 5 + 5 = 10 <= n - 1 = 10: defined, and unrelated data is far from 1
    assert lb.pwcca(rng.standard_normal((11, 5)), rng.standard_normal((11, 5))) < 1.0 - 1e-6
    # rank, not the number of columns, is what counts: 40 columns of rank 3
    B = rng.standard_normal((50, 3))
    wide = B @ rng.standard_normal((3, 40))
    assert lb.pwcca(wide, rng.standard_normal((50, 4))) < 1.0 - 1e-6


# ---- mutual kNN beyond one distance block (2048 rows) -----------------------------------------------

def _mutual_knn_brute(X, Y, k):
    """By hand: exact Euclidean neighbour lists from scipy's kd-tree, self excluded."""
    from scipy.spatial import cKDTree

    def lists(A):
        _, idx = cKDTree(A).query(A, k + 1)
        out = []
        for i, row in enumerate(idx):
            row = [j for j in row if j != i][:k]
            out.append(set(row))
        return out
    nx, ny = lists(X), lists(Y)
    return float(np.mean([len(a & b) / k for a, b in zip(nx, ny)]))


def test_mutual_knn_beyond_the_row_block_matches_brute_force():
    rng = np.random.default_rng(13)
    n = 2100                                           # > 2048: a second block of rows
    X = rng.standard_normal((n, 3))
    Y = X + 0.1 * rng.standard_normal((n, 3))          # partly shared neighbourhoods
    got = lb.mutual_knn(X, Y, k=5, metric="euclidean")
    assert got == pytest.approx(_mutual_knn_brute(X, Y, 5), abs=1e-12)
    assert 0.2 < got < 0.9
    # the rows of the second block alone: points must not count themselves as neighbours there
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)  # cosine order == Euclidean order on the sphere
    Yn = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    assert lb.mutual_knn(X, Y, k=5) == pytest.approx(_mutual_knn_brute(Xn, Yn, 5), abs=1e-12)


# --- boundaries the mutation run found unchecked (similarity.py survivors) ---------------------------


def test_linear_cka_of_two_samples_is_one():
    """With n = 2 the centred rows are +-(x1 - x2) / 2, so both centred Gram matrices are rank one with
    the same pattern [[1, -1], [-1, 1]] and biased linear CKA is exactly 1 (two samples are allowed)."""
    rng = np.random.default_rng(7)
    X, Y = rng.standard_normal((2, 5)), rng.standard_normal((2, 3))
    assert lb.cka(X, Y) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="X"):
        lb.cka(X[:1], Y[:1])


@pytest.mark.parametrize("threshold", [1, 1.0, 1e-9])
def test_svcca_threshold_accepts_the_closed_interval_end(pair, threshold):
    X, Y = pair
    value = lb.svcca(X, Y, threshold=threshold)
    assert 0.0 <= value <= 1.0 + 1e-12


@pytest.mark.parametrize("threshold", [0, 0.0, -0.5, 1.0000001, 2, True, float("nan"), "0.9"])
def test_svcca_threshold_outside_zero_one_raises(pair, threshold):
    X, Y = pair
    with pytest.raises(ValueError, match="threshold"):
        lb.svcca(X, Y, threshold=threshold)


@pytest.mark.parametrize("sigma", [0, 0.0, -1.0, float("inf"), float("nan"), True, "1"])
def test_rbf_cka_sigma_must_be_positive_and_finite(pair, sigma):
    X, Y = pair
    with pytest.raises(ValueError, match="sigma"):
        lb.cka(X, Y, kernel="rbf", sigma=sigma)


def test_rbf_cka_explicit_sigma_matches_the_gram_definition(pair):
    """An explicit sigma is used as given: exp(-|xi - xj|^2 / (2 sigma^2)) built here with numpy."""
    X, Y = pair
    sigma = 1.7

    def gram(A):
        sq = ((A[:, None, :] - A[None, :, :]) ** 2).sum(-1)
        return np.exp(-sq / (2 * sigma**2))

    ref = _cka_ref(gram(X), gram(Y), _hsic_biased)
    assert lb.cka(X, Y, kernel="rbf", sigma=sigma) == pytest.approx(ref, rel=1e-9)
