"""The diffusion package's additions for the paper's experiments (Bertalan et al., arXiv:2007.05646):
the bandwidth-free eigenvalues lambda_p, geometric harmonics (Nystrom extension of any function),
the ICP estimate of the orthogonal block O, and the intrinsic dimension with Whitney's 2 d + 1 check.

Oracles: closed-form spectra of the Neumann Laplacian, scipy's cdist / cKDTree and numpy's eigh
(computations written here), known manifolds, and the Procrustes map from the true correspondences.
"""

import itertools
import os
import types
import warnings

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from sklearn.utils.estimator_checks import parametrize_with_checks

import latentbridge as lb
from latentbridge.diffusion import WhitneyCheck, WhitneyWarning

# ---------------------------------------------------------------------------------------------
# intrinsic_eigenvalues_: lambda_p = a_p^(1 / (2 epsilon))


def test_intrinsic_eigenvalues_match_the_neumann_laplacian_of_an_interval():
    # unit interval, Euclidean kernel exp(-d2 / (2 eps)): a_p ~ exp(-eps mu_p / 2), so
    # -4 log lambda_p -> mu_p = (p pi)^2 (Neumann eigenvalues of -d^2/dx^2 on [0, 1])
    n = 600
    x = ((np.arange(n) + 0.5) / n)[:, None]
    dm = lb.DiffusionMaps(3, n_neighbors=48, random_state=0).fit(x)
    mu = -4.0 * np.log(dm.intrinsic_eigenvalues_)
    np.testing.assert_allclose(mu, (np.arange(1, 4) * np.pi) ** 2, rtol=0.03)


def test_intrinsic_eigenvalues_do_not_depend_on_epsilon_but_a_p_does():
    n = 600
    x = ((np.arange(n) + 0.5) / n)[:, None] * 2.0  # interval of length 2: mu_1 = (pi / 2)^2
    eps = lb.DiffusionMaps(2, n_neighbors=64, random_state=0).fit(x).epsilon_
    fits = [lb.DiffusionMaps(2, epsilon=e, n_neighbors=64, random_state=0).fit(x) for e in (eps, 2 * eps)]
    assert abs(fits[0].eigenvalues_[0] - fits[1].eigenvalues_[0]) > 1e-4
    np.testing.assert_allclose(fits[0].intrinsic_eigenvalues_, fits[1].intrinsic_eigenvalues_, rtol=0.03)
    np.testing.assert_allclose(-4 * np.log(fits[0].intrinsic_eigenvalues_[0]), (np.pi / 2) ** 2, rtol=0.03)


def test_intrinsic_eigenvalues_of_a_mahalanobis_map_use_the_metric():
    # the observation y = 3 x with precisions 1/9 is the unit interval in the metric; the distance
    # (C_i + C_j) is twice the squared length, so -8 log lambda_p -> (p pi)^2
    n = 600
    x = ((np.arange(n) + 0.5) / n)[:, None]
    dm = lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=48, random_state=0)
    dm.fit(3.0 * x, precisions=np.full((n, 1, 1), 1.0 / 9.0))
    np.testing.assert_allclose(-8 * np.log(dm.intrinsic_eigenvalues_), (np.arange(1, 3) * np.pi) ** 2,
                               rtol=0.03)


# ---------------------------------------------------------------------------------------------
# GeometricHarmonics


def _circle(n, rng):
    t = rng.uniform(0, 2 * np.pi, n)
    return np.c_[np.cos(t), np.sin(t)], np.cos(t) + 0.5 * np.sin(4 * t)


def test_geometric_harmonics_extension_error_falls_with_n():
    rng = np.random.default_rng(0)
    Xt, ft = _circle(300, rng)
    errors = []
    for n in (15, 30, 60):
        X, f = _circle(n, rng)
        gh = lb.GeometricHarmonics().fit(X, f)
        errors.append(float(np.sqrt(np.mean((gh.predict(Xt) - ft) ** 2))))
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 1e-4, errors


def test_geometric_harmonics_reproduce_their_own_eigenvectors_at_the_training_points():
    rng = np.random.default_rng(1)
    X, _ = _circle(120, rng)
    eps = lb.GeometricHarmonics().fit(X, np.zeros(120)).epsilon_
    # the kernel's eigenvectors, computed here with scipy's cdist and numpy's eigh
    _, psi = np.linalg.eigh(np.exp(-cdist(X, X, "sqeuclidean") / (2 * eps)))
    psi = psi[:, ::-1][:, :6]
    gh = lb.GeometricHarmonics(epsilon=eps, delta=1e-3).fit(X, psi)
    np.testing.assert_allclose(gh.predict(X), psi, atol=1e-8)
    # and their Nystrom extension is (1 / sigma) K(x, X) psi, written out
    Xn, _ = _circle(30, rng)
    sig = np.linalg.eigvalsh(np.exp(-cdist(X, X, "sqeuclidean") / (2 * eps)))[::-1][:6]
    expected = np.exp(-cdist(Xn, X, "sqeuclidean") / (2 * eps)) @ psi / sig
    np.testing.assert_allclose(gh.predict(Xn), expected, atol=1e-8)


def test_geometric_harmonics_extend_a_network_function_over_a_diffusion_embedding():
    # B observes x in [0, 1] through 3 tanh neurons; a further function g(x) sampled at B's points
    # is extended over B's diffusion coordinate and read at new inputs through the Nystrom map
    rng = np.random.default_rng(2)
    W, b = np.array([[1.5, -2.0, 0.7]]), np.array([0.1, 0.4, -0.3])

    def observe(x):
        return np.tanh(x[:, None] * W + b)

    x = np.sort(rng.uniform(0, 1, 400))
    dm = lb.DiffusionMaps(1, n_neighbors=20, random_state=0).fit(observe(x))
    g = np.exp(-x) * np.sin(3 * x)
    gh = lb.GeometricHarmonics().fit(dm.embedding_, g)
    x_new = rng.uniform(0.05, 0.95, 100)
    pred = gh.predict(dm.transform(observe(x_new)))
    err = pred - np.exp(-x_new) * np.sin(3 * x_new)  # the range of g is about 0.45
    assert np.max(np.abs(err)) < 0.03 and np.sqrt(np.mean(err**2)) < 0.005


# latentbridge's dtype rule (as_float_matrix): non-real dtypes are a TypeError, as in
# tests/test_sklearn_estimators.py
_DTYPE_RULE = {"check_complex_data": "complex input is a TypeError by latentbridge's dtype rule",
               "check_dtype_object": "object arrays are a TypeError by latentbridge's dtype rule"}


@parametrize_with_checks([lb.GeometricHarmonics(k_epsilon=2)], expected_failed_checks=lambda est: _DTYPE_RULE)
def test_geometric_harmonics_is_a_scikit_learn_regressor(estimator, check):
    check(estimator)


def test_geometric_harmonics_shapes_and_bad_input():
    X = np.linspace(0, 1, 50)[:, None]
    y2 = np.c_[X[:, 0], X[:, 0] ** 2]
    gh = lb.GeometricHarmonics().fit(X, y2)
    assert gh.predict(X[:5]).shape == (5, 2)
    assert lb.GeometricHarmonics().fit(X, X[:, 0]).predict(X[:5]).shape == (5,)
    with pytest.raises(ValueError, match="same number of rows"):
        lb.GeometricHarmonics().fit(X, np.zeros(49))
    with pytest.raises(ValueError, match="NaN"):
        lb.GeometricHarmonics().fit(X, np.full(50, np.nan))
    with pytest.raises(ValueError, match="epsilon"):
        lb.GeometricHarmonics(epsilon="median").fit(X, X[:, 0])
    with pytest.raises(ValueError, match="duplicates"):
        lb.GeometricHarmonics().fit(np.zeros((30, 2)), np.zeros(30))
    with pytest.raises(ValueError, match="subsample"):
        lb.GeometricHarmonics().fit(np.zeros((6001, 1)), np.zeros(6001))
    with pytest.raises(ValueError, match="delta"):
        lb.GeometricHarmonics(delta=1.0).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="features"):
        gh.predict(np.zeros((3, 2)))
    with pytest.raises(lb.NotFittedError):
        lb.GeometricHarmonics().predict(X)


# ---------------------------------------------------------------------------------------------
# NetworkTransformation(orthogonal="icp")


def _two_observations(rng, n):
    """Inputs x (non-uniform on [0, 1], so no symmetry of the sampled curve), two networks'
    activations and their Jacobian precisions."""
    x = rng.uniform(0, 1, n) ** 1.5
    Wa, ba = np.array([1.2, -0.8, 2.0]), np.array([0.2, -0.1, 0.3])
    Wb, bb = np.array([-1.7, 0.9, 0.5, 1.1]), np.array([0.0, 0.3, -0.2, 0.1])
    Ya, Yb = np.tanh(np.outer(x, Wa) + ba), np.tanh(np.outer(x, Wb) + bb)
    Ja = ((1 - Ya**2) * Wa)[:, :, None]
    Jb = ((1 - Yb**2) * Wb)[:, :, None]
    return x, Ya, Yb, lb.precisions_from_jacobians(Ja), lb.precisions_from_jacobians(Jb)


def test_icp_recovers_the_orthogonal_map_of_the_true_correspondences():
    rng = np.random.default_rng(3)
    x, Ya, Yb, Ca, Cb = _two_observations(rng, 500)
    perm = rng.permutation(500)  # B's rows shuffled: no correspondence is passed to ICP
    dmaps = lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=20, random_state=0)
    paired = lb.NetworkTransformation(dmaps).fit(Ya, Yb[perm], Ca, Cb[perm], pairs=(perm, np.arange(500)))
    icp = lb.NetworkTransformation(dmaps, orthogonal="icp").fit(Ya, Yb[perm], Ca, Cb[perm])
    np.testing.assert_allclose(np.abs(np.diag(paired.orthogonal_)), 1.0, atol=0.05)
    np.testing.assert_allclose(icp.orthogonal_, paired.orthogonal_, atol=0.05)
    np.testing.assert_allclose(icp.orthogonal_ @ icp.orthogonal_.T, np.eye(2), atol=1e-10)
    assert icp.matching_error_ < 0.01
    x_new = rng.uniform(0.05, 0.95, 50) ** 1.5
    Ya_new = np.tanh(np.outer(x_new, [1.2, -0.8, 2.0]) + [0.2, -0.1, 0.3])
    Yb_true = np.tanh(np.outer(x_new, [-1.7, 0.9, 0.5, 1.1]) + [0.0, 0.3, -0.2, 0.1])
    assert np.max(np.abs(icp.transform(Ya_new) - Yb_true)) < 0.05


def test_icp_keeps_all_components_in_one_block():
    rng = np.random.default_rng(5)
    _, Ya, Yb, Ca, Cb = _two_observations(rng, 200)
    dmaps = lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=20, random_state=0)
    nt = lb.NetworkTransformation(dmaps, orthogonal="icp").fit(Ya, Yb, Ca, Cb)
    assert [b.tolist() for b in nt.blocks_] == [[0, 1]]
    np.testing.assert_allclose(nt.orthogonal_ @ nt.orthogonal_.T, np.eye(2), atol=1e-10)


def test_icp_works_with_different_sample_sizes_and_rejects_pairs():
    rng = np.random.default_rng(4)
    _, Ya, _, Ca, _ = _two_observations(rng, 300)
    _, _, Yb, _, Cb = _two_observations(rng, 400)
    dmaps = lb.DiffusionMaps(1, metric="mahalanobis", n_neighbors=20, random_state=0)
    nt = lb.NetworkTransformation(dmaps, orthogonal="icp").fit(Ya, Yb, Ca, Cb)
    assert nt.orthogonal_.shape == (1, 1) and abs(abs(nt.orthogonal_[0, 0]) - 1) < 1e-12
    with pytest.raises(ValueError, match="pairs=None"):
        lb.NetworkTransformation(dmaps, orthogonal="icp").fit(Ya, Ya, Ca, Ca, pairs=([0], [0]))
    with pytest.raises(ValueError, match="orthogonal"):
        lb.NetworkTransformation(dmaps, orthogonal="kabsch").fit(Ya, Ya, Ca, Ca)


# ---------------------------------------------------------------------------------------------
# intrinsic_dimension and whitney_check


def _levina_bickel_by_hand(Y, k):
    dist, _ = cKDTree(Y).query(Y, k + 1)
    T = dist[:, 1:]
    inv = np.mean(np.log(T[:, -1:] / T[:, :-1]), axis=1)
    return 1.0 / np.mean(inv)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_intrinsic_dimension_of_known_manifolds(d):
    rng = np.random.default_rng(d)
    n = 1500
    if d == 1:  # a closed curve in R^4
        t = rng.uniform(0, 2 * np.pi, n)
        Y = np.c_[np.cos(t), np.sin(t), np.cos(2 * t), np.sin(3 * t)]
    elif d == 2:  # the unit sphere in R^3
        Y = rng.normal(size=(n, 3))
        Y /= np.linalg.norm(Y, axis=1, keepdims=True)
    else:  # the 3-torus-like product of three circles in R^6 (no boundary, no bias from it)
        t = rng.uniform(0, 2 * np.pi, (n, 3))
        Y = np.c_[np.cos(t), np.sin(t)]
    est = lb.intrinsic_dimension(Y, n_neighbors=10)
    assert abs(est - d) < 0.12 * d, est
    assert est == pytest.approx(_levina_bickel_by_hand(Y, 10), rel=1e-10)


def test_intrinsic_dimension_bad_input():
    Y = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(ValueError, match="duplicate"):
        lb.intrinsic_dimension(np.vstack([Y, Y[:1]]))
    with pytest.raises(ValueError, match="at least 2"):
        lb.intrinsic_dimension(Y, n_neighbors=1)
    with pytest.raises(ValueError, match="row"):
        lb.intrinsic_dimension(Y[:5], n_neighbors=10)
    with pytest.raises(ValueError, match="NaN"):
        lb.intrinsic_dimension(np.full((20, 2), np.nan))


def test_whitney_check_flags_too_few_measurements():
    t = np.random.default_rng(5).uniform(0, 2 * np.pi, 400)
    circle = np.c_[np.cos(t), np.sin(t)]  # 1-D, two measurements: 2 < 2 * 1 + 1
    with pytest.warns(WhitneyWarning, match="2 d \\+ 1"):
        res = lb.whitney_check(circle)
    assert isinstance(res, WhitneyCheck)
    assert res.required == 3 and res.n_measurements == 2 and not res.sufficient
    assert abs(res.dimension - 1) < 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = lb.whitney_check(np.c_[circle, np.cos(2 * t)])
        quiet = lb.whitney_check(circle, warn=False)
        given = lb.whitney_check(np.c_[circle, t, t**2, t**3], dimension=2)
    assert ok.sufficient and ok.required == 3
    assert not quiet.sufficient
    assert given == WhitneyCheck(2.0, 5, 5, True)
    with pytest.raises(ValueError, match="dimension"):
        lb.whitney_check(circle, dimension=0)
    with pytest.raises(TypeError, match="warn"):
        lb.whitney_check(circle, warn="yes")


@pytest.mark.parametrize("params,error,message", [
    (dict(k_epsilon=0), ValueError, r"^k_epsilon must be >= 1"),
    (dict(n_harmonics=0), ValueError, r"^n_harmonics must be >= 1"),
    (dict(n_harmonics=1.5), TypeError, r"^n_harmonics must be an integer"),
    (dict(delta=-0.1), ValueError, r"^delta must be in \[0.0, 1.0\)"),
    (dict(epsilon=0.0), ValueError, r"^epsilon must be > 0"),
    (dict(epsilon="median"), ValueError, r"^epsilon must be one of \('auto',\)"),
    (dict(n_jobs=0), ValueError, r"^n_jobs must be a non-zero integer"),
    (dict(k_epsilon=20), ValueError, r"^k_epsilon=20 needs more than 20 points; X has 20\."),
])
def test_geometric_harmonics_bad_parameters_are_named(params, error, message):
    X = np.random.default_rng(3).standard_normal((20, 2))
    with pytest.raises(error, match=message):
        lb.GeometricHarmonics(**params).fit(X, X[:, 0])


def test_geometric_harmonics_bad_targets_are_named():
    X = np.random.default_rng(3).standard_normal((20, 2))
    with pytest.raises(ValueError, match=r"^GeometricHarmonics requires y to be passed, but the target y is None"):
        lb.GeometricHarmonics().fit(X, None)
    with pytest.raises(ValueError, match=r"^y must be 1-D of shape \(20,\) or 2-D of shape \(20, q\)"):
        lb.GeometricHarmonics().fit(X, np.zeros((20, 2, 2)))
    with pytest.raises(ValueError, match=r"^X and y must have the same number of rows; got 20 and 19\."):
        lb.GeometricHarmonics().fit(X, np.zeros(19))
    # the largest k_epsilon that the points allow, and a fixed epsilon that ignores k_epsilon
    assert lb.GeometricHarmonics(k_epsilon=19).fit(X, X[:, 0]).epsilon_ > 0
    assert lb.GeometricHarmonics(epsilon=0.5, k_epsilon=50).fit(X, X[:, 0]).epsilon_ == 0.5


def _harmonics_by_hand(X, y, epsilon, delta, n_harmonics):
    K = np.exp(-cdist(X, X, "sqeuclidean") / (2 * epsilon))
    sigma, psi = np.linalg.eigh(K)
    sigma, psi = sigma[::-1], psi[:, ::-1]
    keep = np.flatnonzero(sigma > delta * sigma[0])[: n_harmonics or None]
    return sigma[keep], psi[:, keep] @ ((psi[:, keep].T @ y) / sigma[keep, None])


@pytest.mark.parametrize("delta,n_harmonics", [(1e-3, None), (1e-3, 3), (1e-3, 1000), (1e-6, None), (0.5, None)])
def test_geometric_harmonics_against_the_eigendecomposition_by_hand(delta, n_harmonics):
    rng = np.random.default_rng(4)
    X = rng.uniform(size=(40, 2))
    y = np.c_[np.sin(3 * X[:, 0]), X[:, 1] ** 2]
    gh = lb.GeometricHarmonics(delta=delta, n_harmonics=n_harmonics, k_epsilon=5).fit(X, y)
    dist, _ = cKDTree(X).query(X, 6)
    assert gh.epsilon_ == pytest.approx(np.median(dist[:, 5] ** 2), rel=1e-12)  # 5th neighbour
    sigma, dual = _harmonics_by_hand(X, y, gh.epsilon_, delta, n_harmonics)
    assert gh.n_harmonics_ == len(sigma)
    np.testing.assert_allclose(gh.eigenvalues_, sigma, rtol=1e-10)
    Xn = rng.uniform(size=(7, 2))
    expected = np.exp(-cdist(Xn, X, "sqeuclidean") / (2 * gh.epsilon_)) @ dual
    np.testing.assert_allclose(gh.predict(Xn), expected, rtol=1e-6, atol=1e-8 * np.abs(expected).max())


@pytest.mark.parametrize("dimension,required", [(0.3, 3), (1.4, 3), (1.6, 5), (3.0, 7)])
def test_whitney_count_rounds_the_dimension_with_a_floor_of_one(dimension, required):
    Y = np.random.default_rng(6).standard_normal((30, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WhitneyWarning)
        res = lb.whitney_check(Y, dimension=dimension)
    assert res == WhitneyCheck(dimension, 5, required, 5 >= required)


def test_whitney_warning_text():
    Y = np.random.default_rng(7).standard_normal((30, 2))
    with pytest.warns(WhitneyWarning) as record:
        lb.whitney_check(Y, dimension=1.0)
    assert str(record[0].message) == (
        "2 measurement(s) of a 1.00-dimensional manifold: Whitney's theorem guarantees an embedding "
        "without folding only from 3 (2 d + 1) generic measurements. Select more neurons (e.g. hidden "
        "units as well as the outputs).")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lb.whitney_check(Y[:, :1].repeat(3, axis=1) + Y[:, 1:], dimension=1.0).sufficient  # m = 2 d + 1


def test_intrinsic_dimension_names_its_arguments_and_rejects_pure_ties():
    Y = np.random.default_rng(8).standard_normal((30, 2))
    with pytest.raises(ValueError, match=r"^n_neighbors must be at least 2 .*; got 1\."):
        lb.intrinsic_dimension(Y, n_neighbors=1)
    with pytest.raises(ValueError, match=r"^n_neighbors must be >= 1"):
        lb.intrinsic_dimension(Y, n_neighbors=0)
    with pytest.raises(ValueError, match=r"^Y has 10 sample\(s\)"):
        lb.intrinsic_dimension(Y[:10], n_neighbors=10)
    assert lb.intrinsic_dimension(Y[:11], n_neighbors=10) > 0  # n = k + 1 is enough
    with pytest.raises(ValueError, match=r"^Y\[5\] has a duplicate"):  # the first of the pair
        lb.intrinsic_dimension(np.vstack([Y, Y[5:6]]), n_neighbors=5)
    # the corners of a square: both nearest neighbours of every corner are exactly as far
    square = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(ValueError, match=r"^Y has too many ties among neighbour distances"):
        lb.intrinsic_dimension(square, n_neighbors=2)
    with pytest.raises(TypeError, match=r"^warn must be True or False"):
        lb.whitney_check(Y, warn=1)
    with pytest.raises(ValueError, match=r"^dimension must be > 0"):
        lb.whitney_check(Y, dimension=0.0)


def test_icp_helpers_by_hand():
    from latentbridge.diffusion.transformation import _evenly_spaced, _icp_orthogonal, _matching_error

    np.testing.assert_array_equal(_evenly_spaced(5, 5), np.arange(5))
    idx = _evenly_spaced(11, 4)  # 0, 3.33, 6.67, 10 rounded
    np.testing.assert_array_equal(idx, [0, 3, 7, 10])
    rng = np.random.default_rng(9)
    P, B = rng.standard_normal((6, 2)), rng.standard_normal((9, 2))
    brute = np.mean([min(np.sum((p - b) ** 2) for b in B) for p in P])
    assert _matching_error(P, B) == pytest.approx(brute, rel=1e-12)
    # an asymmetric cloud and its image under a reflection: O is recovered, the matching error
    # (relative to B's mean squared norm) is 0 whatever B's scale
    A = rng.standard_normal((40, 2)) * [2.0, 0.5] + [0.3, 0.1]
    A = A @ np.linalg.qr(rng.standard_normal((2, 2)))[0]
    O_true = np.array([[0.0, 1.0], [1.0, 0.0]])
    O, err = _icp_orthogonal(A, A @ O_true)
    np.testing.assert_allclose(O, O_true, atol=1e-8)
    assert err < 1e-15
    # beyond 6 components ICP starts from the identity only: a small rotation is still found
    A7 = rng.standard_normal((60, 7)) * np.arange(1, 8)
    Q = np.linalg.qr(np.eye(7) + 0.01 * rng.standard_normal((7, 7)))[0]
    Q *= np.sign(np.diag(Q))
    O7, err7 = _icp_orthogonal(A7, A7 @ Q)
    np.testing.assert_allclose(O7, Q, atol=1e-6)
    assert err7 < 1e-12


def test_icp_helpers_index_beyond_the_point_limit():
    from latentbridge.diffusion.transformation import _evenly_spaced

    # more rows than the limit: the rows kept are those nearest to an even spacing, usable as indices
    rows = np.arange(2500) * 10
    kept = rows[_evenly_spaced(2500, 1000)]
    expected = [10 * int(np.floor(i * 2499 / 999 + 0.5)) for i in range(1000)]
    np.testing.assert_array_equal(kept, expected)


def test_icp_orthogonal_is_an_uncentred_fixed_point_with_the_relative_matching_error():
    from latentbridge.diffusion.transformation import _icp_orthogonal

    rng = np.random.default_rng(12)
    A = rng.standard_normal((80, 2)) * [2.0, 0.6] + [0.4, -0.2]
    O_true = np.array([[0.0, -1.0], [1.0, 0.0]])
    # B: the rotated cloud, shifted and noisy, so that no orthogonal map matches it exactly
    B = A @ O_true + [0.5, 0.3] + 0.05 * rng.standard_normal((80, 2))
    O, err = _icp_orthogonal(A, B)
    # an uncentred ICP ends where O is the orthogonal Procrustes solution (no centring, no
    # translation) of A against its nearest points of B
    match = cKDTree(B).query(A @ O)[1]
    U, _, Vt = np.linalg.svd(A.T @ B[match])
    np.testing.assert_allclose(O, U @ Vt, atol=1e-9)
    nearest = cdist(A @ O, B, "sqeuclidean").min(axis=1)
    assert err == pytest.approx(np.mean(nearest) / np.mean(np.sum(B**2, axis=1)), rel=1e-10)
    assert err > 1e-3


def test_icp_orthogonal_starts_and_tie_rule(monkeypatch):
    """A spy in place of ICP: one fit per sign-flip start (n_components <= 6), one from the identity
    beyond, each an uncentred Procrustes ICP of at most 100 iterations; of two starts with the same
    error, the one whose first differing sign is +1 is kept."""
    import latentbridge.diffusion.transformation as transformation

    fits = []

    class SpyICP:
        def __init__(self, **params):
            self.params = params

        def fit(self, X, Y):
            fits.append((self.params, np.array(X)))
            self.estimator_ = types.SimpleNamespace(rotation_=np.eye(X.shape[1]))
            return self

    monkeypatch.setattr(transformation, "ICP", SpyICP)
    rng = np.random.default_rng(13)
    for L, n_starts in ((1, 2), (2, 4), (6, 64), (7, 1)):
        fits.clear()
        A = rng.uniform(1.0, 2.0, (10, L))
        transformation._icp_orthogonal(A, A)
        assert len(fits) == n_starts
        signs = {tuple(np.sign(X[0]).astype(int)) for _, X in fits}
        if L <= 6:
            assert signs == set(itertools.product((1, -1), repeat=L))
        else:
            assert signs == {(1,) * L}
        for params, X in fits:
            assert set(params) == {"estimator", "max_iter"} and params["max_iter"] == 100
            procrustes = params["estimator"]
            assert isinstance(procrustes, lb.Procrustes)
            assert procrustes.get_params() == lb.Procrustes(center=False).get_params()
            np.testing.assert_array_equal(np.abs(X), A)

    # ties: the matching error of each start's O = diag(signs) read from a table
    A = rng.uniform(1.0, 2.0, (10, 3))
    for tied, kept in ((((1, -1, 1), (-1, 1, 1)), (1, -1, 1)),
                       (((-1, 1, -1), (-1, -1, 1), (1, -1, -1)), (1, -1, -1)),
                       (((-1, -1, -1), (-1, 1, 1)), (-1, 1, 1))):
        def matching_error(P, B, tied=tied):
            return 1.0 if tuple(np.sign(P[0]).astype(int)) in tied else 2.0

        monkeypatch.setattr(transformation, "_matching_error", matching_error)
        O, err = transformation._icp_orthogonal(A, A)
        np.testing.assert_array_equal(O, np.diag(kept))
        assert err == pytest.approx(1.0 / np.mean(np.sum(A**2, axis=1)), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# GeometricHarmonics: messages in full, memory estimates, threads, dtypes, the smallest inputs


def test_geometric_harmonics_target_messages_in_full():
    X = np.random.default_rng(6).standard_normal((20, 2))
    gh = lb.GeometricHarmonics()
    with pytest.raises(ValueError, match=r"^GeometricHarmonics requires y to be passed, but the target y is None: "
                                         r"pass the function values at the rows of X\.$"):
        gh.fit(X, None)
    # that fit failed after recording the input width: there is still nothing to predict with
    assert gh.n_features_in_ == 2
    with pytest.raises(lb.NotFittedError):
        gh.predict(X)
    with pytest.raises(ValueError, match=r"^y contains NaN or infinity \(first at row 3, column 0\)"):
        gh.fit(X, np.where(np.arange(20) == 3, np.nan, 1.0))
    with pytest.raises(ValueError, match=r"^y must be .*; got shape \(\)\.$"):
        gh.fit(X, 5.0)
    with pytest.raises(ValueError, match=r"^epsilon='auto' is 0: at least half of the points have k_epsilon "
                                         r"duplicates\. Remove duplicates, raise k_epsilon or pass a positive "
                                         r"epsilon\.$"):
        lb.GeometricHarmonics(k_epsilon=2).fit(np.repeat(X[:4], 3, axis=0), np.zeros(12))


def test_geometric_harmonics_target_shape_message_says_what_y_may_be():
    # a scalar or a 3-D y: the message gives both accepted shapes with the number of rows of X
    X = np.random.default_rng(9).standard_normal((20, 2))
    for y, shape in ((5.0, r"\(\)"), (np.zeros((20, 2, 2)), r"\(20, 2, 2\)")):
        with pytest.raises(ValueError, match=r"^y must be 1-D of shape \(20,\) or 2-D of shape \(20, q\): one "
                                             r"value or row of values per row of X; got shape " + shape + r"\.$"):
            lb.GeometricHarmonics().fit(X, y)
    # both accepted shapes fit (the same function as one column or a vector)
    np.testing.assert_allclose(lb.GeometricHarmonics().fit(X, X[:, :1]).predict(X)[:, 0],
                               lb.GeometricHarmonics().fit(X, X[:, 0]).predict(X), rtol=1e-12, atol=1e-12)


def test_geometric_harmonics_empty_targets_are_named():
    # no values (a 1-D y of length 0 included) or no columns: the dtype rule's messages, naming y
    X = np.random.default_rng(10).standard_normal((20, 2))
    for y, message in ((np.zeros(0), r"^y has 0 sample\(s\) \(rows, shape=\(0, 1\)\); at least 1 required"),
                       (np.zeros((0, 2)), r"^y has 0 sample\(s\) \(rows, shape=\(0, 2\)\); at least 1 required"),
                       (np.zeros((20, 0)), r"^y has 0 feature\(s\) \(shape=\(20, 0\)\)")):
        with pytest.raises(ValueError, match=message):
            lb.GeometricHarmonics().fit(X, y)


def test_geometric_harmonics_memory_estimates(monkeypatch):
    """fit holds four dense n x n float64 arrays (the squared distances, the kernel, its
    eigenvectors and the eigensolver's copy), predict one (n_new, n) block of kernel rows."""
    X = np.random.default_rng(7).standard_normal((50, 3))
    Xn = np.random.default_rng(8).standard_normal((7, 3))
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(4 * 8 * 50 * 50))
    gh = lb.GeometricHarmonics().fit(X, X[:, 0])
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(4 * 8 * 50 * 50 - 1))
    with pytest.raises(MemoryError, match=r"^GeometricHarmonics kernel \(50, 50\) float64 needs 78\.1 KiB "
                                          r"\(80000 bytes\)"):
        lb.GeometricHarmonics().fit(X, X[:, 0])
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(8 * 7 * 50))
    assert gh.predict(Xn).shape == (7,)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(8 * 7 * 50 - 1))
    with pytest.raises(MemoryError, match=r"^GeometricHarmonics\.predict kernel rows \(7, 50\) needs 2\.7 KiB "
                                          r"\(2800 bytes\)"):
        gh.predict(Xn)
    # 6000 points are allowed (the memory limit stops this fit, not the size rule); 6001 are not
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "1M")
    line = np.arange(6000.0)[:, None]
    with pytest.raises(MemoryError, match=r"^GeometricHarmonics kernel \(6000, 6000\) float64 needs"):
        lb.GeometricHarmonics().fit(line, line[:, 0])


def test_geometric_harmonics_n_jobs_limits_blas(monkeypatch):
    from latentbridge.diffusion import harmonics

    calls = []
    real = harmonics.threadpool_limits

    def spy(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(harmonics, "threadpool_limits", spy)
    X = np.random.default_rng(9).standard_normal((30, 2))
    for n_jobs, threads in ((3, 3), (None, 1)):
        calls.clear()
        gh = lb.GeometricHarmonics(n_jobs=n_jobs).fit(X, X[:, 0])
        assert calls == [dict(limits=threads, user_api="blas")] * 2  # eigh, then the projection
        gh.predict(X[:4])
        assert calls[2:] == [dict(limits=threads, user_api="blas")]


def test_geometric_harmonics_compute_in_float64_whatever_the_input():
    rng = np.random.default_rng(10)
    X32 = rng.uniform(size=(40, 2)).astype(np.float32)
    y = np.sin(3 * X32[:, 0].astype(np.float64))
    gh = lb.GeometricHarmonics(delta=1e-3, k_epsilon=5).fit(X32, y)
    X = X32.astype(np.float64)
    sigma, dual = _harmonics_by_hand(X, y[:, None], gh.epsilon_, 1e-3, None)
    dual = dual[:, 0]
    np.testing.assert_allclose(gh.eigenvalues_, sigma, rtol=1e-10)
    np.testing.assert_allclose(gh.dual_coef_[:, 0], dual, rtol=1e-8, atol=1e-9 * np.abs(dual).max())
    Xn32 = rng.uniform(size=(7, 2)).astype(np.float32)
    expected = np.exp(-cdist(Xn32.astype(np.float64), X, "sqeuclidean") / (2 * gh.epsilon_)) @ dual
    got = gh.predict(Xn32)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10 * np.abs(expected).max())


def test_geometric_harmonics_of_two_points_and_of_one_harmonic():
    # two points at squared distance 2 epsilon ln 2: K = [[1, 1/2], [1/2, 1]], eigenvalues 3/2 and
    # 1/2 with eigenvectors (1, 1) / sqrt 2 and (1, -1) / sqrt 2; both kept, y is interpolated
    eps = 1.0
    X = np.array([[0.0], [np.sqrt(2 * eps * np.log(2.0))]])
    y = np.array([1.0, 3.0])
    gh = lb.GeometricHarmonics(epsilon=eps).fit(X, y)
    np.testing.assert_allclose(gh.eigenvalues_, [1.5, 0.5], rtol=1e-12)
    np.testing.assert_allclose(gh.predict(X), y, rtol=1e-12)
    # one harmonic, psi = (1, 1) / sqrt 2: dual_coef = psi <psi, y> / 1.5 = (4 / 3, 4 / 3), so the
    # extension is (k(x, x_0) + k(x, x_1)) 4 / 3, and 2 (the mean of y) at both training points
    one = lb.GeometricHarmonics(epsilon=eps, n_harmonics=1).fit(X, y)
    assert one.n_harmonics_ == 1
    np.testing.assert_allclose(one.predict(X), [2.0, 2.0], rtol=1e-12)
    x = np.array([[0.3]])
    k = np.exp(-((x[0, 0] - X[:, 0]) ** 2) / (2 * eps))
    np.testing.assert_allclose(one.predict(x), [np.sum(k) * 4.0 / 3.0], rtol=1e-12)
    with pytest.raises(ValueError, match=r"^X has 1 sample\(s\) \(rows, shape=\(1, 1\)\); at least 2 required\.$"):
        lb.GeometricHarmonics(epsilon=eps).fit(X[:1], y[:1])


def test_geometric_harmonics_keep_only_eigenvalues_above_the_threshold(monkeypatch):
    """A fake eigendecomposition with exactly representable eigenvalues: sigma_l = delta sigma_0
    exactly is dropped (the rule is sigma_l > delta sigma_0)."""
    n = 4
    psi = np.linalg.qr(np.random.default_rng(11).standard_normal((n, n)))[0]
    sigma = np.array([0.125, 0.25, 0.5, 1.0])  # ascending, as eigh returns them

    def fake_eigh(K):
        assert K.shape == (n, n)
        return sigma.copy(), psi.copy()

    monkeypatch.setattr(np.linalg, "eigh", fake_eigh)
    X = np.arange(n, dtype=float)[:, None]
    for delta, kept in ((0.5, 1), (0.25, 2), (0.2, 3), (0.0, 4)):
        gh = lb.GeometricHarmonics(epsilon=1.0, delta=delta).fit(X, np.ones(n))
        assert gh.n_harmonics_ == kept
        np.testing.assert_array_equal(gh.eigenvalues_, sigma[::-1][:kept])


# ---------------------------------------------------------------------------------------------
# intrinsic_dimension and whitney_check: the neighbour counts, threads, dtypes and messages in full


def test_intrinsic_dimension_and_whitney_check_use_the_neighbour_count_they_are_given():
    Y = np.random.default_rng(20).standard_normal((200, 3))
    by_hand = {k: _levina_bickel_by_hand(Y, k) for k in (5, 10, 11)}
    assert min(abs(by_hand[10] - by_hand[5]), abs(by_hand[10] - by_hand[11])) > 1e-4  # they differ here
    assert lb.intrinsic_dimension(Y) == pytest.approx(by_hand[10], rel=1e-10)  # the default k = 10
    assert lb.whitney_check(Y, warn=False).dimension == pytest.approx(by_hand[10], rel=1e-10)
    assert lb.whitney_check(Y, n_neighbors=5, warn=False).dimension == pytest.approx(by_hand[5], rel=1e-10)


def test_intrinsic_dimension_passes_n_jobs_to_the_neighbour_search(monkeypatch):
    """A spy in place of the k-NN search: the threads asked for reach it (None: 1, -1: every CPU),
    from intrinsic_dimension and through whitney_check."""
    from latentbridge.diffusion import dimension

    threads = []
    real = dimension.euclidean_candidates

    def spy(device, Y, queries, k, n_threads):
        threads.append(n_threads)
        return real(device, Y, queries, k, n_threads)

    monkeypatch.setattr(dimension, "euclidean_candidates", spy)
    Y = np.random.default_rng(21).standard_normal((60, 2))
    for n_jobs, expected in ((None, 1), (3, 3), (-1, os.cpu_count() or 1)):
        threads.clear()
        lb.intrinsic_dimension(Y, n_jobs=n_jobs)
        lb.whitney_check(Y, n_jobs=n_jobs, warn=False)
        assert threads == [expected, expected]


def test_intrinsic_dimension_computes_in_float64_for_float32_input():
    # the neighbour distances of float32 points, squared in float32, carry relative errors near
    # 1e-7; the estimate must be that of the same points in float64 (computed here with cKDTree)
    Y32 = np.random.default_rng(22).standard_normal((300, 2)).astype(np.float32)
    expected = _levina_bickel_by_hand(Y32.astype(np.float64), 6)
    assert lb.intrinsic_dimension(Y32, n_neighbors=6) == pytest.approx(expected, rel=1e-12)


def test_intrinsic_dimension_duplicate_message_in_full():
    Y = np.random.default_rng(23).standard_normal((30, 2))
    with pytest.raises(ValueError, match=r"^Y\[2\] has a duplicate: zero neighbour distances have no logarithm\. "
                                         r"Remove duplicated rows \(e\.g\. numpy\.unique\(Y, axis=0\)\) before "
                                         r"estimating the dimension\.$"):
        lb.intrinsic_dimension(np.vstack([Y, Y[2:3]]), n_neighbors=5)


def test_whitney_check_names_y_and_needs_two_rows_when_the_dimension_is_given():
    Y = np.random.default_rng(24).standard_normal((10, 3))
    with pytest.raises(ValueError, match=r"^Y contains NaN or infinity \(first at row 2, column 1\)\."):
        lb.whitney_check(np.where((np.arange(10) == 2)[:, None] & (np.arange(3) == 1), np.inf, Y), dimension=1.0)
    with pytest.raises(ValueError, match=r"^Y has 1 sample\(s\) \(rows, shape=\(1, 3\)\); at least 2 required\.$"):
        lb.whitney_check(Y[:1], dimension=1.0)
    # two rows are enough when d is given (nothing is estimated from them): 3 >= 2 * 1 + 1
    assert lb.whitney_check(Y[:2], dimension=1.0) == WhitneyCheck(1.0, 3, 3, True)


def test_whitney_warning_points_at_the_caller():
    Y = np.random.default_rng(25).standard_normal((30, 2))
    with pytest.warns(WhitneyWarning) as record:
        lb.whitney_check(Y, dimension=1.0)
    assert len(record) == 1
    # attributed to the caller's line (this file), never to dimension.py itself, also under mutmut
    # (whose trampoline adds frames in between)
    assert record[0].filename == __file__
