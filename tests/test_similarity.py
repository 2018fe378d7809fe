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


def test_mutual_knn_single_neighbour_of_hundreds_of_points_matches_brute_force():
    """k = 1 above 256 points: the nearest neighbour is argpartition's 0th entry (k - 1); asking for the
    (k - 2) = -1st, the largest, instead leaves the first column in no particular order, which numpy's
    selection shows only on rows longer than 256 (the n = 30 tests pass either way)."""
    rng = np.random.default_rng(21)
    X = rng.standard_normal((300, 4))
    Y = X + 0.1 * rng.standard_normal((300, 4))
    got = lb.mutual_knn(X, Y, k=1, metric="euclidean")
    assert got == pytest.approx(_mutual_knn_brute(X, Y, 1), abs=1e-12)
    assert 0.2 < got < 0.9


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


# --- second pass over the mutation run's survivors (issue 17) ----------------------------------------

from latentbridge import similarity  # noqa: E402


def _related(n, p, q, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    Y = np.tanh(X @ rng.standard_normal((p, q))) + 0.3 * rng.standard_normal((n, q))
    return X, Y


_SCALE_FREE = {
    "cka": lambda X, Y: lb.cka(X, Y),
    "cka_debiased": lambda X, Y: lb.cka(X, Y, debiased=True),
    "cka_gram_form": lambda X, Y: lb.cka(X[:9], Y[:9]),          # n small against p + q
    "cka_linear_ignores_sigma": lambda X, Y: lb.cka(X, Y, sigma=2.0),
    "cka_rbf_median": lambda X, Y: lb.cka(X, Y, kernel="rbf"),
    "minibatch": lambda X, Y: lb.minibatch_cka(X, Y, batch_size=25, random_state=1),
    "minibatch_linear_ignores_sigma": lambda X, Y: lb.minibatch_cka(X, Y, batch_size=25, sigma=2.0,
                                                                    random_state=1),
    "minibatch_rbf_median": lambda X, Y: lb.minibatch_cka(X, Y, batch_size=25, kernel="rbf",
                                                          random_state=1),
    "svcca": lambda X, Y: lb.svcca(X, Y, threshold=0.95),
    "pwcca": lb.pwcca,
    "pwcca_yx": lambda X, Y: lb.pwcca(Y, X),
}


@pytest.mark.parametrize("scale", [1e307, 1e-290])
@pytest.mark.parametrize("negative", [False, True])
@pytest.mark.parametrize("measure", list(_SCALE_FREE))
def test_scale_free_measures_at_extreme_magnitudes(measure, scale, negative):
    """Every measure here is invariant to scaling each representation, so data near the float64
    limits (where squares and column sums overflow or underflow) must give the unit-scale value.
    negative: X has only negative entries (its magnitude is then -min, not max)."""
    X, Y = _related(60, 4, 12, seed=20)
    if negative:
        X = -(np.abs(X) + 0.5)
    f = _SCALE_FREE[measure]
    assert f(X * scale, Y * scale) == pytest.approx(f(X, Y), rel=1e-9)


def test_rbf_explicit_sigma_is_in_the_units_of_the_data():
    """An explicit sigma is not rescaled with the data: X * s with sigma * s gives the value of X
    with sigma, also beyond 2^100 where the scale-free measures rescale their input."""
    X, Y = _related(40, 3, 4, seed=21)
    s = 1e40
    for f in (lambda A, B, sg: lb.cka(A, B, kernel="rbf", sigma=sg),
              lambda A, B, sg: lb.minibatch_cka(A, B, kernel="rbf", sigma=sg, batch_size=20,
                                                random_state=0)):
        assert f(X * s, Y * s, 1.3 * s) == pytest.approx(f(X, Y, 1.3), rel=1e-9)


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_far_from_the_origin_in_the_gram_form(debiased):
    """Columns offset by 1e8 (each differently; the data on a 2^-20 grid, so the shifted values are
    exact): the Gram form centres the columns first; without that, the n x n products would lose
    every digit to the offsets."""
    X, Y = _related(14, 10, 10, seed=22)     # n (p + q) < p^2 + q^2 + p q: the Gram form
    X, Y = np.round(X * 2**20) / 2**20, np.round(Y * 2**20) / 2**20   # exact after the shift
    ref = _cka_ref(X @ X.T, Y @ Y.T, _hsic_unbiased if debiased else _hsic_biased)
    shift = 1e8 * np.arange(1, 11)
    assert lb.cka(X + shift, Y - shift, debiased=debiased) == pytest.approx(ref, rel=1e-9)


def test_minibatch_linear_cka_far_from_the_origin():
    X, Y = _related(60, 3, 2, seed=23)
    X, Y = np.round(X * 2**20) / 2**20, np.round(Y * 2**20) / 2**20   # exact after the shift
    shift = 1e8 * np.arange(1, 4)
    ref = lb.minibatch_cka(X, Y, batch_size=20, random_state=4)
    got = lb.minibatch_cka(X + shift, Y - shift[:2], batch_size=20, random_state=4)
    assert got == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_in_the_gram_form_matches_the_definition(debiased):
    X, Y = _related(12, 15, 10, seed=24)
    hsic = _hsic_unbiased if debiased else _hsic_biased
    assert lb.cka(X, Y, debiased=debiased) == pytest.approx(
        _cka_ref(X @ X.T, Y @ Y.T, hsic), rel=1e-10)


def test_hsic_pieces_are_the_estimators_themselves():
    """The private HSIC helpers return HSIC (not a multiple of it: a common factor would cancel in
    every CKA ratio and go unnoticed there)."""
    X, Y = _related(20, 3, 2, seed=25)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    K, L = X @ X.T, Y @ Y.T
    assert similarity._gram_hsic(K, L, False) == pytest.approx(_hsic_biased(K, L), rel=1e-12)
    assert similarity._gram_hsic(K, L, True) == pytest.approx(_hsic_unbiased(K, L), rel=1e-12)
    for debiased, hsic in ((False, _hsic_biased), (True, _hsic_unbiased)):
        got = similarity._linear_feature_hsics(X, Y, debiased, 1)
        ref = (hsic(K, L), hsic(K, K), hsic(L, L))
        np.testing.assert_allclose(got, ref, rtol=1e-10)
    assert _hsic_biased(Xc @ Xc.T, Yc @ Yc.T) == pytest.approx(
        np.linalg.norm(Xc.T @ Yc) ** 2 / 19 ** 2, rel=1e-12)


def _unbiased_linear_hsic(X, Y):
    """Song et al.'s HSIC_1 for the linear kernel without n x n matrices, written from its
    definition: with centred rows (HSIC_1 does not change when features are shifted) and
    k_i = |x_i|^2, l_i = |y_i|^2, sum_{i != j} K_ij L_ij = ||X'Y||_F^2 - sum k l, the zero-diagonal
    Gram sums are -sum k and -sum l, and their row sums are -k and -l."""
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    k, l_ = (Xc ** 2).sum(1), (Yc ** 2).sum(1)
    n = len(X)
    off = np.linalg.norm(Xc.T @ Yc) ** 2 - k @ l_
    return (off + k.sum() * l_.sum() / ((n - 1) * (n - 2)) - 2.0 * (k @ l_) / (n - 2)) / (n * (n - 3))


def test_debiased_feature_form_beyond_two_row_blocks():
    """n = 17000 rows: the row norms are computed in blocks of 8192 rows, so three blocks; every
    row's norm must enter (the value is also invariant to the order of the samples)."""
    rng = np.random.default_rng(26)
    X = rng.standard_normal((17000, 3))
    X[12000:] *= 3.0                                   # rows of the last blocks weigh more
    Y = X[:, :2] ** 2 + rng.standard_normal((17000, 2))
    h = _unbiased_linear_hsic
    ref = h(X, Y) / np.sqrt(h(X, X) * h(Y, Y))
    got = lb.cka(X, Y, debiased=True)
    assert got == pytest.approx(ref, rel=1e-10)
    perm = rng.permutation(17000)
    assert lb.cka(X[perm], Y[perm], debiased=True) == pytest.approx(got, rel=1e-10)


class _CrossStatsSpy:
    """Stands in for similarity.CrossStats: records the keyword arguments of each construction
    (the feature form of linear CKA) and builds the real accumulator on the CPU."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = similarity.CrossStats

        def make(*args, **kwargs):
            self.calls.append(dict(kwargs))
            kwargs["backend"] = "blas"
            return real(*args, **kwargs)

        monkeypatch.setattr(similarity, "CrossStats", make)


def test_linear_cka_passes_threads_and_device_to_the_accumulator(monkeypatch):
    spy = _CrossStatsSpy(monkeypatch)
    monkeypatch.setattr(similarity, "backend_for", lambda device: f"backend of {device}")
    X, Y = _related(300, 4, 3, seed=27)
    ref = lb.cka(X, Y)
    assert lb.cka(X, Y, n_jobs=3, device="auto") == pytest.approx(ref, rel=1e-12)
    assert [c["n_threads"] for c in spy.calls] == [1, 3]
    assert [c["backend"] for c in spy.calls] == ["backend of cpu", "backend of auto"]


def test_linear_cka_device_is_checked():
    X, Y = _related(30, 3, 2, seed=28)
    with pytest.raises(ValueError, match=r"^device must be one of"):
        lb.cka(X, Y, device="tpu")
    for X_, Y_ in ((X, Y), (X[:5], np.c_[Y[:5], X[:5], Y[:5]])):    # the feature and Gram forms
        with pytest.raises(ValueError, match=r"^n_jobs must be a non-zero integer"):
            lb.cka(X_, Y_, n_jobs=0)


@pytest.mark.parametrize(("n", "gram"), [(5, True), (6, False)])
def test_linear_cka_takes_the_cheaper_form(monkeypatch, n, gram):
    """p = q = 4: the Gram form costs n^2 (p + q) = 8 n^2, the feature form n (p^2 + q^2 + p q) =
    48 n; the Gram form is taken only when strictly cheaper (n = 5), not at the tie (n = 6)."""
    spy = _CrossStatsSpy(monkeypatch)
    X, Y = _related(n, 4, 4, seed=29)
    assert lb.cka(X, Y) == pytest.approx(_cka_ref(X @ X.T, Y @ Y.T, _hsic_biased), rel=1e-10)
    assert (not spy.calls) == gram


def test_linear_cka_on_cuda_always_takes_the_feature_form(monkeypatch):
    """With a CUDA backend the products go to the device even where the Gram form would be cheaper."""
    spy = _CrossStatsSpy(monkeypatch)
    monkeypatch.setattr(similarity, "backend_for", lambda device: "cuda")
    X, Y = _related(5, 4, 4, seed=29)
    assert lb.cka(X, Y, device="cuda") == pytest.approx(
        _cka_ref(X @ X.T, Y @ Y.T, _hsic_biased), rel=1e-10)
    assert [c["backend"] for c in spy.calls] == ["cuda"]


def test_linear_cka_gram_form_only_within_the_memory_limit(monkeypatch):
    """n = 14, p = q = 10: the Gram form is cheaper (14 * 20 < 300) and needs 8 n^2 (4 + 2) bytes
    debiased, 8 n^2 4 biased; the feature form 8 (3 (p^2 + q^2 + p q) + 2 n) = 7424 bytes. At the
    exact limit the Gram form is taken; one byte less, the feature form (or, when that needs more,
    a MemoryError naming it)."""
    spy = _CrossStatsSpy(monkeypatch)
    X, Y = _related(14, 10, 10, seed=30)
    ref = {d: _cka_ref(X @ X.T, Y @ Y.T, _hsic_unbiased if d else _hsic_biased) for d in (0, 1)}
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(8 * 14 * 14 * 6))
    assert lb.cka(X, Y, debiased=True) == pytest.approx(ref[1], rel=1e-10) and not spy.calls
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(8 * 14 * 14 * 6 - 1))
    assert lb.cka(X, Y, debiased=True) == pytest.approx(ref[1], rel=1e-10) and len(spy.calls) == 1
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(8 * 14 * 14 * 4))
    assert lb.cka(X, Y) == pytest.approx(ref[0], rel=1e-10) and len(spy.calls) == 1
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(8 * 14 * 14 * 4 - 1))
    with pytest.raises(MemoryError, match=r"^cka\(kernel='linear'\) statistics \(p, q\) = \(10, 10\) "
                                          r"float64 needs 7.2 KiB \(7424 bytes\)"):
        lb.cka(X, Y)


def test_linear_cka_feature_form_memory_check(monkeypatch):
    """The feature form asks for 8 (3 (p^2 + q^2 + p q) + 2 n) bytes: (n, p, q) = (200, 3, 2) ->
    8 (3 * 19 + 400) = 3656."""
    X, Y = _related(200, 3, 2, seed=31)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "3656")
    assert lb.cka(X, Y) == pytest.approx(_cka_ref(X @ X.T, Y @ Y.T, _hsic_biased), rel=1e-10)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "3655")
    with pytest.raises(MemoryError, match=r"statistics \(p, q\) = \(3, 2\) float64 needs 3.6 KiB"):
        lb.cka(X, Y)


@pytest.mark.parametrize("debiased", [False, True])
def test_rbf_cka_memory_check(monkeypatch, debiased):
    n = 20
    X, Y = _related(n, 3, 2, seed=32)
    need = 8 * n * n * (6 if debiased else 4)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(need))
    lb.cka(X, Y, kernel="rbf", debiased=debiased)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(need - 1))
    with pytest.raises(MemoryError, match=rf"^cka\(kernel='rbf'\) Gram matrices \({n}, {n}\) float64 "
                                          rf"needs .* \({need} bytes\)"):
        lb.cka(X, Y, kernel="rbf", debiased=debiased)


def test_ratio_refuses_non_positive_self_hsic():
    """CKA's denominator needs both self-HSICs positive (the debiased ones can be <= 0)."""
    assert similarity._ratio(0.5, 1.0, 4.0) == pytest.approx(0.25)
    for xx, yy in ((0.0, 1.0), (1.0, 0.0), (-1.0, 4.0), (4.0, -1.0), (-1.0, -4.0)):
        with pytest.raises(ValueError, match=r"^CKA is undefined: one representation has zero \(or, "
                                             r"debiased, non-positive\) self-HSIC - e\.g\. a "
                                             r"constant representation\. Check X and Y\.$"):
            similarity._ratio(0.5, xx, yy)


def test_cka_debiased_message_names_the_argument(pair):
    X, Y = pair
    with pytest.raises(TypeError, match=r"^debiased must be True or False; got 'yes'\.$"):
        lb.cka(X, Y, debiased="yes")
    with pytest.raises(ValueError, match=r"^Y is constant \(all rows equal\): the similarity is "
                                         r"undefined\. Check that the representation is not "
                                         r"collapsed\.$"):
        lb.cka(X[:10], np.ones((10, 3)))


# ---- svcca / pwcca boundaries

def _orthonormal_centred(n, k, seed):
    """k orthonormal n-vectors orthogonal to the ones vector (already centred)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, k))
    return np.linalg.qr(A - A.mean(0))[0]


def test_svcca_threshold_reached_exactly_keeps_the_fewest_directions():
    """X's squared singular values are 3 and 1 (directions a, b): a alone explains exactly 0.75 of
    the variance, so threshold = 0.75 keeps only a, which is orthogonal to Y = [b, c]: SVCCA = 0.
    Just above 0.75 both are kept and the correlations are (1, 0): SVCCA = 0.5."""
    a, b, c = _orthonormal_centred(12, 3, seed=33).T
    X = np.c_[np.sqrt(3.0) * a, b]
    Y = np.c_[b, c]
    assert lb.svcca(X, Y, threshold=0.75) == pytest.approx(0.0, abs=1e-12)
    assert lb.svcca(X, Y, threshold=0.76) == pytest.approx(0.5, abs=1e-12)


def test_cca_family_on_two_samples():
    """Two samples: the centred columns all lie on (1, -1), so the one canonical correlation is 1.
    PWCCA refuses: rank(X) + rank(Y) = 2 > n - 1 = 1."""
    rng = np.random.default_rng(34)
    X, Y = rng.standard_normal((2, 3)), rng.standard_normal((2, 2))
    assert lb.svcca(X, Y) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"^pwcca needs more samples than the ranks of X and Y"):
        lb.pwcca(X, Y)


def test_pwcca_too_few_samples_message_in_full():
    rng = np.random.default_rng(35)
    X, Y = rng.standard_normal((20, 30)), rng.standard_normal((20, 5))
    with pytest.raises(ValueError) as err:
        lb.pwcca(X, Y)
    assert str(err.value) == (
        "pwcca needs more samples than the ranks of X and Y together: n = 20 samples but "
        "rank(X) + rank(Y) = 19 + 5 > n - 1 = 19, so 5 canonical correlation(s) equal 1 whatever "
        "the data. Pass more samples, or reduce the features first (PCA, or svcca with "
        "threshold < 1).")


# ---- minibatch CKA

def _minibatch_by_hand(batches, gram):
    hs = np.zeros(3)
    for Xb, Yb in batches:
        K, L = gram(Xb), gram(Yb)
        hs += (_hsic_unbiased(K, L), _hsic_unbiased(K, K), _hsic_unbiased(L, L))
    return hs[0] / np.sqrt(hs[1] * hs[2])


def _linear_gram(A):
    return A @ A.T


def _rbf_gram_median(A, sigma=None):
    sq = ((A[:, None] - A[None]) ** 2).sum(-1)
    if sigma is None:
        d = np.sqrt(sq[np.triu_indices(len(A), 1)])
        sigma = np.median(d[d > 0])
    return np.exp(-sq / (2 * sigma ** 2))


@pytest.mark.parametrize(("n", "batch_size", "kept"), [(203, 100, 2), (204, 100, 3), (4, 4, 1)])
def test_minibatch_cka_drops_only_a_last_batch_of_fewer_than_four_rows(n, batch_size, kept):
    X, Y = _related(n, 3, 2, seed=36)
    order = np.random.default_rng(5).permutation(n)
    batches = [(X[order[i:i + batch_size]], Y[order[i:i + batch_size]])
               for i in range(0, n, batch_size)][:kept]
    got = lb.minibatch_cka(X, Y, batch_size=batch_size, random_state=5)
    assert got == pytest.approx(_minibatch_by_hand(batches, _linear_gram), rel=1e-10)


def test_minibatch_cka_default_batch_size_is_1024():
    X, Y = _related(1030, 2, 2, seed=37)
    order = np.random.default_rng(6).permutation(1030)
    batches = [(X[order[:1024]], Y[order[:1024]]), (X[order[1024:]], Y[order[1024:]])]
    got = lb.minibatch_cka(X, Y, random_state=6)
    assert got == pytest.approx(_minibatch_by_hand(batches, _linear_gram), rel=1e-9)


def test_minibatch_cka_rbf_explicit_sigma_and_median_rule():
    X, Y = _related(60, 3, 2, seed=38)
    order = np.random.default_rng(7).permutation(60)
    batches = [(X[order[i:i + 30]], Y[order[i:i + 30]]) for i in (0, 30)]
    got = lb.minibatch_cka(X, Y, batch_size=30, kernel="rbf", sigma=0.8, random_state=7)
    assert got == pytest.approx(
        _minibatch_by_hand(batches, lambda A: _rbf_gram_median(A, 0.8)), rel=1e-10)
    got = lb.minibatch_cka(X, Y, batch_size=30, kernel="rbf", random_state=7)
    assert got == pytest.approx(_minibatch_by_hand(batches, _rbf_gram_median), rel=1e-10)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_minibatch_cka_a_constant_batch_adds_nothing(kernel):
    """A batch whose rows are all equal (in X and in Y) has constant kernels, whose HSIC_1 with
    anything is 0: it is accepted (a stream may hold one) and leaves the sums unchanged."""
    X, Y = _related(40, 3, 2, seed=39)
    batches = [(X[:20], Y[:20]), (X[20:], Y[20:])]
    gram = _linear_gram if kernel == "linear" else _rbf_gram_median
    ref = _minibatch_by_hand(batches, gram)
    with_constant = [batches[0], (np.tile(X[:1], (7, 1)), np.tile(Y[:1], (7, 1))), batches[1]]
    assert lb.minibatch_cka(iter(with_constant), kernel=kernel) == pytest.approx(ref, rel=1e-10)


def test_minibatch_cka_batches_of_exactly_four_rows():
    X, Y = _related(8, 3, 2, seed=40)
    batches = [(X[:4], Y[:4]), (X[4:], Y[4:])]
    assert lb.minibatch_cka(iter(batches)) == pytest.approx(
        _minibatch_by_hand(batches, _linear_gram), rel=1e-10)


def test_minibatch_cka_memory_check_per_batch(monkeypatch):
    """Each batch's Gram matrices need 8 b^2 (4 + 2) bytes (the unbiased HSIC): b = 30 -> 43200."""
    X, Y = _related(60, 3, 2, seed=41)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "43200")
    lb.minibatch_cka(X, Y, batch_size=30, random_state=0)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "43199")
    with pytest.raises(MemoryError, match=r"^minibatch_cka Gram matrices of a batch \(30, 30\) float64 "
                                          r"\(lower batch_size\) needs"):
        lb.minibatch_cka(X, Y, batch_size=30, random_state=0)


def test_minibatch_cka_bad_input_messages(pair):
    X, Y = pair
    with pytest.raises(ValueError, match=r"^kernel must be one of \('linear', 'rbf'\); got 'poly'"):
        lb.minibatch_cka(X, Y, kernel="poly")
    with pytest.raises(ValueError, match=r"^sigma must be a positive number or None"):
        lb.minibatch_cka(X, Y, kernel="rbf", sigma=-1.0)
    with pytest.raises(ValueError, match=r"^batch_size must be"):
        lb.minibatch_cka(X, Y, batch_size=3)
    with pytest.raises(ValueError, match=r"^X has 3 sample\(s\) .*at least 4 required"):
        lb.minibatch_cka(X[:3], Y[:3])
    with pytest.raises(TypeError) as err:
        lb.minibatch_cka(X)
    assert str(err.value) == ("minibatch_cka(X) without Y needs an iterable of (X_b, Y_b) pairs; "
                              "pass Y for arrays.")
    with pytest.raises(TypeError) as err:
        lb.minibatch_cka([(X, Y), X[0]])
    assert str(err.value) == "each batch must be a pair (X_b, Y_b) of arrays."
    with pytest.raises(ValueError) as err:
        lb.minibatch_cka(iter([]))
    assert str(err.value) == "minibatch_cka received no batch of at least 4 rows."


def test_float32_input_far_from_the_origin_gives_the_float64_value():
    """float32 input is centred in float64 (a float32 column mean would leave a residual offset of
    a float32 rounding of 3e3, which leaks into the canonical directions: 3e-6 on this data)."""
    X, Y = _related(200, 5, 4, seed=42)
    X32 = (X + 3e3 * np.arange(1, 6)).astype(np.float32)
    Y32 = (Y - 2e3).astype(np.float32)
    X64, Y64 = X32.astype(np.float64), Y32.astype(np.float64)
    for f in (lb.svcca, lb.pwcca, lambda A, B: lb.pwcca(B, A),
              lambda A, B: lb.cka(A[:8], B[:8]), lambda A, B: lb.cka(A[:8], B[:8], debiased=True),
              lambda A, B: lb.minibatch_cka(A, B, batch_size=50, random_state=0)):
        assert f(X32, Y32) == pytest.approx(f(X64, Y64), rel=1e-10)


def test_cca_family_counts_the_numerical_rank():
    """40 columns of rank 3 (n = 30): the rounding leaves 27 more singular values of the centred X
    near 1e-17 of the largest; numpy's matrix_rank tolerance (S_max max(n, p) eps) drops them, so
    CCA sees X's 3-dimensional column space, the one of B: the same SVCCA as B."""
    rng = np.random.default_rng(43)
    B = rng.standard_normal((30, 3))
    X, Y = B @ rng.standard_normal((3, 40)), rng.standard_normal((30, 4))
    assert np.linalg.matrix_rank(X - X.mean(0)) == 3
    assert lb.svcca(X, Y, threshold=1.0) == pytest.approx(lb.svcca(B, Y, threshold=1.0), rel=1e-10)
    assert 0.0 < lb.pwcca(X, Y) < 1.0           # 3 + 4 <= n - 1: defined


def test_pwcca_of_an_invertible_image_is_one_and_never_above():
    """Y = X M: every canonical correlation is 1, and the result stays in the documented [0, 1].
    The normalised weights sum to 1 + 2^-52 on a few percent of draws (which ones depends on the
    BLAS), so 300 draws are tried; with identical X and Y the same holds."""
    for seed in range(300):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((30, 6))
        for Y in (X, X @ rng.standard_normal((6, 6))):
            value = lb.pwcca(X, Y)
            assert value == pytest.approx(1.0, abs=1e-12)
            assert 0.0 <= value <= 1.0


def test_mutual_knn_defaults_boundaries_and_messages(monkeypatch):
    rng = np.random.default_rng(44)
    X, Y = rng.standard_normal((30, 3)), rng.standard_normal((30, 3))
    unit = lambda A: A / np.linalg.norm(A, axis=1, keepdims=True)  # noqa: E731
    assert lb.mutual_knn(X, Y) == pytest.approx(_mutual_knn_brute(unit(X), unit(Y), 10), abs=1e-12)
    for k in (1, 2, 3):
        assert lb.mutual_knn(X, Y, k=k, metric="euclidean") == pytest.approx(
            _mutual_knn_brute(X, Y, k), abs=1e-12)
    # all other points are the k = n - 1 neighbours, also of a constant representation
    assert lb.mutual_knn(np.ones((6, 2)), X[:6], k=5, metric="euclidean") == 1.0
    assert lb.mutual_knn(X[:2], Y[:2], k=1) == 1.0
    with pytest.raises(ValueError, match=r"^metric must be one of \('cosine', 'euclidean'\)"):
        lb.mutual_knn(X, Y, metric="manhattan")
    need = 4 * 30 * 10 * np.dtype(np.intp).itemsize
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(need))
    lb.mutual_knn(X, Y)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(need - 1))
    with pytest.raises(MemoryError, match=r"^mutual_knn neighbour lists \(n, 2 k\) = \(30, 20\) needs"):
        lb.mutual_knn(X, Y)


def test_each_representation_is_named_in_its_error(pair):
    X, Y = pair
    bad = np.array(Y)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^Y contains NaN or infinity"):
        lb.cka(X, bad)
    with pytest.raises(ValueError, match=r"^X is constant \(all rows equal\)"):
        lb.cka(np.ones((10, 3)), Y[:10])
    with pytest.raises(ValueError, match=r"^Y has 3 sample\(s\) .*at least 4 required"):
        lb.cka(X[:4], Y[:3], debiased=True)
