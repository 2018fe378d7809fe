"""Each measure of latentbridge.measures against an independent oracle: scipy, scikit-learn, a dense
closed form from the paper written here, rsatoolbox 0.3.2 and repsim 0.1.5 (skipped, with the
reason, when not installed), and its bad-input errors."""

import importlib
import warnings

import numpy as np
import pytest
import scipy.linalg as sla
from scipy.spatial.distance import cdist, pdist
from scipy.stats import kendalltau, pearsonr, spearmanr

import latentbridge as lb
from latentbridge.measures import RegularisationWarning
from latentbridge.measures.spectral import heat_trace_slq, knn_laplacian
from test_similarity import _hsic_unbiased as hsic_unbiased  # Song et al. (2012), dense


def data(n=40, p=5, q=7, seed=0, noise=0.5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + 2.0
    Y = X @ rng.standard_normal((p, q)) + noise * rng.standard_normal((n, q)) - 1.0
    return X, Y


def centred(A):
    return A - A.mean(axis=0)


def scipy_canonical_correlations(X, Y):
    """Hotelling's canonical correlations: singular values of Q_x^T Q_y (economic QR)."""
    Qx, _ = sla.qr(centred(X), mode="economic")
    Qy, _ = sla.qr(centred(Y), mode="economic")
    return sla.svdvals(Qx.T @ Qy)


def padded_unit(A, d):
    A = centred(A)
    return np.hstack([A, np.zeros((A.shape[0], d - A.shape[1]))]) / np.linalg.norm(A)


# ---- shape metrics ---------------------------------------------------------------------------

def test_procrustes_distance_matches_scipy_orthogonal_procrustes():
    X, Y = data()
    A, B = padded_unit(X, 7), padded_unit(Y, 7)
    R, _ = sla.orthogonal_procrustes(B, A)       # argmin_R ||B R - A||_F over orthogonal R
    assert lb.procrustes_distance(X, Y) == pytest.approx(np.linalg.norm(A - B @ R), abs=1e-10)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("angular", [True, False])
def test_shape_distance_matches_explicit_whitening_and_alignment(alpha, angular):
    """Williams et al. 2021: whiten X_c (1-a) S + a mu I, normalise, align with scipy Procrustes."""
    X, Y = data(n=60)

    def whiten(A):
        Ac = centred(A)
        S = Ac.T @ Ac
        M = (1 - alpha) * S + alpha * np.trace(S) / S.shape[0] * np.eye(S.shape[0])
        return Ac @ np.real(sla.inv(sla.sqrtm(M)))

    A, B = padded_unit(whiten(X), 7), padded_unit(whiten(Y), 7)
    R, _ = sla.orthogonal_procrustes(B, A)
    euclid = np.linalg.norm(A - B @ R)
    expected = 2 * np.arcsin(euclid / 2) if angular else euclid   # chord -> angle on the sphere
    got = lb.shape_distance(X, Y, alpha=alpha, angular=angular)
    assert got == pytest.approx(expected, abs=1e-8)


def test_shape_distance_alpha0_is_the_mean_canonical_correlation_angle():
    X, Y = data(n=80)
    rho = scipy_canonical_correlations(X, Y)
    expected = np.arccos(rho.sum() / np.sqrt(5 * 7))
    assert lb.shape_distance(X, Y, alpha=0.0) == pytest.approx(expected, abs=1e-9)


def test_shape_distance_alpha0_with_fewer_samples_than_features_is_the_ridge_whitened_value():
    """rank(X) + rank(Y) > n - 1: each side whitened by (S + 0.1 mu I)^(-1/2), written out densely."""
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((12, 8)), rng.standard_normal((12, 6))

    def whiten(A):
        Ac = centred(A)
        S = Ac.T @ Ac
        M = S + 0.1 * np.trace(S) / S.shape[0] * np.eye(S.shape[0])
        return Ac @ np.real(sla.inv(sla.sqrtm(M)))

    A, B = whiten(X), whiten(Y)
    cos = np.sum(sla.svdvals(A.T @ B)) / (np.linalg.norm(A) * np.linalg.norm(B))
    with pytest.warns(RegularisationWarning):
        got = lb.shape_distance(X, Y, alpha=0.0)
    assert got == pytest.approx(np.arccos(cos), abs=1e-9)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_shape_metrics_of_rotated_copies_are_exactly_at_their_bounds(alpha):
    """Y = c X Q + b: the rounded cosine may exceed 1; each value is clipped to its bound."""
    rng = np.random.default_rng(3)
    for _ in range(10):
        X = rng.standard_normal((15, 4)) * rng.uniform(0.5, 2, 4)
        Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
        Y = rng.uniform(0.1, 10) * X @ Q + rng.standard_normal(4)
        assert lb.shape_distance(X, Y, alpha=alpha) == pytest.approx(0.0, abs=2e-7)
        assert lb.shape_distance(X, Y, alpha=alpha, angular=False) == pytest.approx(0.0, abs=2e-7)
        if alpha == 1.0:
            similarity = lb.bures_similarity(X, Y)
            assert similarity <= 1.0 and similarity == pytest.approx(1.0, abs=1e-12)
            assert lb.bures_distance(X, X @ Q) == pytest.approx(0.0, abs=1e-6)


def test_shape_distance_checks_alpha_and_angular_by_name():
    X, Y = data(n=12)
    for alpha in (1.5, -0.1):
        with pytest.raises(ValueError) as err:
            lb.shape_distance(X, Y, alpha=alpha)
        assert str(err.value) == f"alpha must be in [0.0, 1.0]; got {alpha}."
    with pytest.raises(TypeError) as err:
        lb.shape_distance(X, Y, angular="yes")
    assert str(err.value) == "angular must be True or False; got 'yes' (str)."


def test_participation_ratio_from_the_eigenvalues():
    from latentbridge.measures.dimensions import participation_ratio

    X, _ = data(n=30)
    S = centred(X).T @ centred(X)
    ev = np.linalg.eigvalsh(S)
    assert participation_ratio(S) == pytest.approx(ev.sum() ** 2 / (ev ** 2).sum(), rel=1e-12)


def test_bures_against_dense_gram_matrices():
    """Bures distance of K = X_c X_c^T / n via scipy's sqrtm; NBS = fidelity / sqrt(tr tr)."""
    X, Y = data(n=25)
    Kx, Ky = centred(X) @ centred(X).T / 25, centred(Y) @ centred(Y).T / 25
    root = np.real(sla.sqrtm(Kx))
    fid = np.trace(np.real(sla.sqrtm(root @ Ky @ root)))
    d2 = np.trace(Kx) + np.trace(Ky) - 2 * fid
    assert lb.bures_distance(X, Y) == pytest.approx(np.sqrt(d2), rel=1e-6)
    assert lb.bures_similarity(X, Y) == pytest.approx(fid / np.sqrt(np.trace(Kx) * np.trace(Ky)),
                                                      rel=1e-6)


def test_ensd_against_dense_gram_matrices():
    """Giaffar et al. 2023: tr Kx tr Ky tr(Kx Ky) / (tr Kx^2 tr Ky^2); ENSD(X, X) = PR(X)."""
    X, Y = data(n=30)
    Kx, Ky = centred(X) @ centred(X).T, centred(Y) @ centred(Y).T
    expected = np.trace(Kx) * np.trace(Ky) * np.trace(Kx @ Ky) / (np.trace(Kx @ Kx)
                                                                 * np.trace(Ky @ Ky))
    assert lb.ensd(X, Y) == pytest.approx(expected, rel=1e-10)
    ev = np.linalg.eigvalsh(np.cov(X.T))
    assert lb.ensd(X, X) == pytest.approx(ev.sum() ** 2 / (ev ** 2).sum(), rel=1e-10)


# ---- CCA ------------------------------------------------------------------------------------

def test_cca_kinds_match_scipy_canonical_correlations():
    X, Y = data(n=70)
    rho = scipy_canonical_correlations(X, Y)[:5]
    assert lb.cca(X, Y, kind="mean") == pytest.approx(rho.mean(), abs=1e-10)
    assert lb.cca(X, Y, kind="yanai") == pytest.approx(np.sum(rho ** 2) / np.sqrt(35), abs=1e-10)
    assert lb.cca(X, Y, kind="pillai") == pytest.approx(np.sum(rho ** 2) / 5, abs=1e-10)


def test_cca_against_repsim():
    repsim = pytest.importorskip("repsim", reason="repsim 0.1.5 (pip) is the optional oracle")
    X, Y = data(n=90, p=6, q=6)
    # repsim's labels differ from ours (see the cca docstring)
    assert lb.cca(X, Y, kind="mean") == pytest.approx(repsim.cca([X, Y], "pillai")[0, 1], abs=1e-8)
    assert lb.cca(X, Y, kind="pillai") == pytest.approx(repsim.cca([X, Y], "yanai")[0, 1], abs=1e-8)
    assert lb.cca(X, Y, kind="yanai") == pytest.approx(repsim.cca([X, Y], "yanai")[0, 1], abs=1e-8)


def test_cca_rank_deficient_uses_the_ranks():
    X, _ = data(n=60)
    X2 = np.hstack([X, X[:, :2] + X[:, 2:4]])             # 7 columns, rank 5
    Y = X @ np.random.default_rng(1).standard_normal((5, 5))
    assert lb.cca(X2, Y, kind="mean") == pytest.approx(1.0, abs=1e-8)


def test_cca_fewer_samples_than_features_warns_and_regularises():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((20, 30)), rng.standard_normal((20, 30))
    with pytest.warns(RegularisationWarning, match="fewer samples than features"):
        value = lb.cca(X, Y)
    assert 0.0 < value < 0.9                             # unregularised: 1 whatever the data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lb.cca(X, Y, ridge=0.1) == pytest.approx(value)
    with pytest.warns(RegularisationWarning):
        lb.shape_distance(X, Y, alpha=0.0)


def attributed_here(record):
    """The warning's file is the caller's (this file), not one of latentbridge's nor mutmut's
    trampoline (which sits between the mutated functions in the mutation runs)."""
    return record.filename == __file__


def test_cca_warning_names_the_ranks_and_points_at_the_caller():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((20, 30)), rng.standard_normal((20, 30))
    with pytest.warns(RegularisationWarning) as record:
        lb.cca(X, Y)
    assert str(record[0].message).startswith(
        "cca: rank(X) + rank(Y) = 19 + 19 > n - 1 = 19 (fewer samples than features), so 19 "
        "canonical correlation(s) equal 1 whatever the data; returning the ridge-regularised value "
        "(ridge = 0.1 x the mean variance).")
    assert attributed_here(record[0])
    with pytest.warns(RegularisationWarning) as record:
        lb.shape_distance(X[:, :4], Y[:, :16], alpha=0.0)     # ranks 4 + 16 = 20 > 19
    assert str(record[0].message).startswith(
        "shape_distance(alpha=0): rank(X) + rank(Y) = 4 + 16 > n - 1 = 19 (fewer samples than "
        "features), so 1 canonical correlation(s) equal 1")
    assert attributed_here(record[0])


def test_cca_kind_message():
    X, Y = data(n=12)
    with pytest.raises(ValueError) as err:
        lb.cca(X, Y, kind="sum")
    assert str(err.value) == "kind must be one of ('mean', 'yanai', 'pillai'); got 'sum'."


def test_cca_without_ridge_at_the_rank_bound_is_the_plain_value():
    """rank(X) + rank(Y) = n - 1 exactly: defined, no warning, scipy's canonical correlations."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((10, 4)), rng.standard_normal((10, 5))
    rho = scipy_canonical_correlations(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lb.cca(X, Y) == pytest.approx(rho.mean(), abs=1e-10)
        assert lb.shape_distance(X, Y, alpha=0.0) == pytest.approx(
            np.arccos(rho.sum() / np.sqrt(4 * 5)), abs=1e-9)


def test_canonical_correlations_of_linear_images_are_at_most_one():
    """Y = X M (M invertible): every rho is 1 in exact arithmetic; the rounded singular values
    above 1 are clipped, so each summary is exactly 1."""
    from latentbridge.measures.cca import canonical_correlations

    for seed in range(5):
        rng = np.random.default_rng(seed)
        X = 10.0 ** rng.uniform(-3, 3) * rng.standard_normal((30, 4)) + 100 * rng.standard_normal(4)
        rho, kx, ky = canonical_correlations(X, X @ rng.standard_normal((4, 4)))
        assert (kx, ky) == (4, 4) and rho.shape == (4,)
        assert np.all(rho <= 1.0) and rho == pytest.approx(np.ones(4), abs=1e-9)
        for kind in ("mean", "yanai", "pillai"):
            assert 1.0 - 1e-9 <= lb.cca(X, X, kind=kind) <= 1.0


# ---- RSA -------------------------------------------------------------------------------------

@pytest.mark.parametrize("rdm, metric", [("correlation", "correlation"), ("cosine", "cosine"),
                                         ("euclidean", "euclidean")])
@pytest.mark.parametrize("compare, stat", [("spearman", spearmanr), ("pearson", pearsonr),
                                           ("kendall", kendalltau)])
def test_rsa_matches_scipy(rdm, metric, compare, stat):
    X, Y = data(n=30)
    expected = stat(pdist(X, metric), pdist(Y, metric)).statistic
    assert lb.rsa(X, Y, rdm=rdm, compare=compare) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("compare, method", [("spearman", "spearman"), ("pearson", "corr"),
                                             ("kendall", "kendall")])
def test_rsa_matches_rsatoolbox(compare, method):
    pytest.importorskip("h5py", reason="rsatoolbox needs h5py")
    rsatoolbox = pytest.importorskip("rsatoolbox", reason="rsatoolbox 0.3.2 is the optional oracle")
    X, Y = data(n=30)

    def rdm(A):
        return rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(A), method="correlation")

    expected = float(rsatoolbox.rdm.compare(rdm(X), rdm(Y), method=method)[0, 0])
    assert lb.rsa(X, Y, compare=compare) == pytest.approx(expected, abs=1e-8)


def test_rsa_euclidean_rdm_vs_rsatoolbox_squared_distances():
    """rsatoolbox's Euclidean RDM is ||x_i - x_j||^2 / p: Spearman agrees with ours."""
    pytest.importorskip("h5py", reason="rsatoolbox needs h5py")
    rsatoolbox = pytest.importorskip("rsatoolbox", reason="rsatoolbox 0.3.2 is the optional oracle")
    X, Y = data(n=25)
    r = [rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(A), method="euclidean") for A in (X, Y)]
    expected = float(rsatoolbox.rdm.compare(r[0], r[1], method="spearman")[0, 0])
    assert lb.rsa(X, Y, rdm="euclidean") == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("rdm", ["correlation", "cosine", "euclidean"])
def test_rdm_vector_in_small_row_blocks_matches_scipy_pdist(rdm, monkeypatch):
    """Blocks of 4 rows over 11 (the last block shorter): the same upper triangle as pdist."""
    rsa_module = importlib.import_module("latentbridge.measures.rsa")   # the package's rsa is the function
    monkeypatch.setattr(rsa_module, "_BLOCK", 4)
    for n in (9, 10, 11):                                  # the last start row at n - 1, n - 2, n - 3
        X, _ = data(n=n)
        got = rsa_module.rdm_vector(X, rdm)
        assert got.shape == (n * (n - 1) // 2,) and got.dtype == np.float64
        np.testing.assert_allclose(got, pdist(X, rdm), rtol=1e-12, atol=1e-12)


def test_rdm_vector_asks_for_one_block_of_rows_at_a_time_on_the_cpu(monkeypatch):
    """A spy in place of pairwise_distances records what each call is given."""
    from latentbridge import distance

    rsa_module = importlib.import_module("latentbridge.measures.rsa")
    monkeypatch.setattr(rsa_module, "_BLOCK", 4)
    calls, real = [], distance.pairwise_distances

    def spy(A, B, **kwargs):
        calls.append((A.shape[0], B.shape[0], kwargs))
        return real(A, B, **kwargs)

    monkeypatch.setattr(distance, "pairwise_distances", spy)
    X, _ = data(n=10)
    np.testing.assert_allclose(rsa_module.rdm_vector(X, "euclidean"), pdist(X), rtol=1e-12)
    kwargs = {"metric": "euclidean", "device": "cpu"}
    assert calls == [(4, 10, kwargs), (4, 6, kwargs), (1, 2, kwargs)]


def test_rdm_vector_defaults_names_and_precision():
    rsa_module = importlib.import_module("latentbridge.measures.rsa")
    X, _ = data(n=6)
    np.testing.assert_allclose(rsa_module.rdm_vector(X), pdist(X, "correlation"), rtol=1e-12)
    X32 = X.astype(np.float32)                             # computed in float64 all the same
    np.testing.assert_allclose(rsa_module.rdm_vector(X32, "euclidean"),
                               pdist(X32.astype(np.float64)), rtol=1e-13)
    assert rsa_module.rdm_vector(X[:3], "cosine").shape == (3,)
    with pytest.raises(ValueError, match="^Y has 2 sample"):
        rsa_module.rdm_vector(X[:2], "cosine", name="Y")
    with pytest.raises(ValueError, match="^X has 2 sample"):
        rsa_module.rdm_vector(X[:2])
    zero = X.copy()
    zero[2] = 0.0
    with pytest.raises(ValueError, match="^row 2 of X is all zero"):
        rsa_module.rdm_vector(zero, "cosine")
    with pytest.raises(ValueError, match="^row 2 of B is all zero"):
        rsa_module.rdm_vector(zero, "cosine", name="B")
    with pytest.raises(ValueError) as err:
        rsa_module.rdm_vector(X, "manhattan")
    assert str(err.value) == ("rdm must be one of ('correlation', 'euclidean', 'cosine'); got "
                              "'manhattan'.")


def test_rsa_pearson_stays_in_minus_one_one():
    """Exact +-1 cases whose rounded correlation leaves [-1, 1] unless clipped: Z against c Z, and
    three collinear points t in (0, 1/2) against three whose distances are 2 b (1 - t) - b d."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        Z = rng.standard_normal((5, 2))
        value = lb.rsa(Z, rng.uniform(0.1, 10) * Z, rdm="euclidean", compare="pearson")
        assert value <= 1.0 and value == pytest.approx(1.0, abs=1e-12)
        t, b = rng.uniform(0.1, 0.45), rng.uniform(0.5, 3.0)
        X, Y = np.array([[0.0], [t], [1.0]]), np.array([[0.0], [b * (2 - 3 * t)], [b * (1 - 2 * t)]])
        value = lb.rsa(X, Y, rdm="euclidean", compare="pearson")
        assert value >= -1.0 and value == pytest.approx(-1.0, abs=1e-12)


@pytest.mark.parametrize("compare", ["spearman", "pearson", "kendall"])
def test_rsa_at_extreme_magnitudes_is_the_plain_value(compare):
    """Each comparison is invariant to rescaling either representation (Euclidean RDM), also where
    the squared deviations of the distances would underflow (1e-170) or overflow (1e160)."""
    X, Y = data(n=10, noise=1.0)
    expected = lb.rsa(X, Y, rdm="euclidean", compare=compare)
    got = lb.rsa(X * 1e-170, Y * 1e160, rdm="euclidean", compare=compare)
    assert got == pytest.approx(expected, rel=1e-12)


def test_rsa_undefined_rows_are_named():
    X, Y = data(n=8)
    bad = X.copy()
    bad[3] = 2.5
    bad[5] = 1.0
    with pytest.raises(ValueError) as err:
        lb.rsa(bad, Y)
    assert str(err.value) == (
        "row 3 of X is constant: its correlation similarity to the other rows is undefined. Remove "
        "such rows or use the Euclidean variant (metric='euclidean' / rdm='euclidean').")
    zero = Y.copy()
    zero[6] = 0.0
    with pytest.raises(ValueError, match="^row 6 of Y is all zero: its cosine similarity"):
        lb.rsa(X, zero, rdm="cosine")
    assert np.isfinite(lb.rsa(X, zero, rdm="euclidean"))


@pytest.mark.parametrize("compare", ["spearman", "pearson", "kendall"])
@pytest.mark.parametrize("rdm", ["correlation", "euclidean"])
def test_rsa_constant_rdm_is_an_error_for_every_comparison(rdm, compare):
    """The rows of I_4 are equally far apart (distance sqrt 2, correlation -1/3)."""
    X, Y = np.eye(4), data(n=4, p=4)[0]
    message = (f"the {rdm} RDM of one representation is constant (all pairs equally dissimilar): "
               "the correlation between the RDMs is undefined.")
    for A, B in ((X, Y), (Y, X)):
        with pytest.raises(ValueError) as err:
            lb.rsa(A, B, rdm=rdm, compare=compare)
        assert str(err.value) == message


def test_rsa_needs_three_rows_in_each_representation():
    X, Y = data(n=3)
    assert np.isfinite(lb.rsa(X, Y, compare="pearson"))
    with pytest.raises(ValueError, match="^X has 2 sample"):
        lb.rsa(X[:2], Y)
    with pytest.raises(ValueError, match="^Y has 2 sample"):
        lb.rsa(X, Y[:2])


@pytest.mark.parametrize("compare, copies", [("spearman", 4), ("kendall", 4), ("pearson", 2)])
def test_rsa_memory_check_counts_the_rdm_vectors_and_the_row_blocks(compare, copies, monkeypatch):
    """n = 12: 66 pairs, each RDM vector (with its ranks) in float64, and two 12 x 1024 blocks."""
    X, Y = data(n=12)
    need = 8 * 66 * copies + 8 * 12 * 1024 * 2
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(need))
    lb.rsa(X, Y, compare=compare)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(need - 1))
    with pytest.raises(MemoryError, match=rf"^rsa RDM vectors \(n \(n - 1\) / 2,\) = \(66,\) "
                                          rf"float64 needs .* \({need} bytes\)"):
        lb.rsa(X, Y, compare=compare)


# ---- neighbourhoods --------------------------------------------------------------------------

def brute_knn(A, k, metric="cosine"):
    D = cdist(A, A, metric)
    np.fill_diagonal(D, np.inf)
    return np.argsort(D, axis=1, kind="stable")[:, :k]


def brute_jaccard_and_rank(X, Y, k, metric):
    """Per-row Jaccard index and rank similarity (Wang et al. 2020) of the k-NN lists."""
    nx, ny = brute_knn(X, k, metric), brute_knn(Y, k, metric)
    jac, rank = [], []
    for a, b in zip(nx, ny):
        shared = set(a) & set(b)
        jac.append(len(shared) / len(set(a) | set(b)))
        if not shared:
            rank.append(0.0)
            continue
        ra = {j: r + 1 for r, j in enumerate(a)}
        rb = {j: r + 1 for r, j in enumerate(b)}
        s = sum(2.0 / ((1 + abs(ra[j] - rb[j])) * (ra[j] + rb[j])) for j in shared)
        rank.append(s / sum(1.0 / t for t in range(1, len(shared) + 1)))
    return np.array(jac), np.array(rank)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_jaccard_and_rank_similarity_by_brute_force(metric):
    X, Y = data(n=50, noise=1.0)
    jac, rank = brute_jaccard_and_rank(X, Y, 6, metric)
    assert lb.jaccard_knn(X, Y, k=6, metric=metric) == pytest.approx(np.mean(jac), abs=1e-12)
    assert lb.rank_similarity(X, Y, k=6, metric=metric) == pytest.approx(np.mean(rank), abs=1e-12)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_jaccard_and_rank_similarity_when_the_last_rows_share_no_neighbour(metric):
    """Independent X and Y (12 x 3, k = 2): rows 9-11 share no neighbour and count 0 in the mean
    over all 12 rows."""
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((12, 3)), rng.standard_normal((12, 3))
    jac, rank = brute_jaccard_and_rank(X, Y, 2, metric)
    assert np.all(jac[9:] == 0) and np.all(rank[9:] == 0) and jac.shape == (12,)
    assert lb.jaccard_knn(X, Y, k=2, metric=metric) == pytest.approx(np.mean(jac), abs=1e-12)
    assert lb.rank_similarity(X, Y, k=2, metric=metric) == pytest.approx(np.mean(rank), abs=1e-12)


def test_jaccard_and_rank_similarity_with_tied_distances_by_brute_force():
    """Points of a small integer lattice: many equal distances, broken by index on both sides."""
    rng = np.random.default_rng(4)
    X, Y = rng.integers(0, 3, (40, 3)).astype(float), rng.integers(0, 3, (40, 2)).astype(float)
    for k in (3, 5, 6):
        jac, rank = brute_jaccard_and_rank(X, Y, k, "euclidean")
        assert lb.jaccard_knn(X, Y, k=k, metric="euclidean") == pytest.approx(np.mean(jac), abs=1e-12)
        assert lb.rank_similarity(X, Y, k=k, metric="euclidean") == pytest.approx(np.mean(rank),
                                                                                abs=1e-12)


def test_second_order_cosine_by_brute_force():
    X, Y = data(n=50, noise=1.0)
    k = 5
    Sx, Sy = 1 - cdist(X, X, "cosine"), 1 - cdist(Y, Y, "cosine")
    nx, ny = brute_knn(X, k), brute_knn(Y, k)
    vals = []
    for i in range(50):
        u = sorted(set(nx[i]) | set(ny[i]))
        a, b = Sx[i, u], Sy[i, u]
        vals.append(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert lb.second_order_cosine(X, Y, k=k) == pytest.approx(np.mean(vals), abs=1e-12)


def dense_cknna(X, Y, k):
    """Huh et al. 2024: unbiased HSIC of the kernels masked by the mutual top-k inner products."""
    K, L = X @ X.T, Y @ Y.T

    def mask(G):
        G = G.copy()
        np.fill_diagonal(G, -np.inf)
        M = np.zeros_like(G)
        np.put_along_axis(M, np.argsort(-G, axis=1, kind="stable")[:, :k], 1.0, axis=1)
        return M

    Mk, Ml = mask(K), mask(L)
    kl = hsic_unbiased(Mk * Ml * K, Mk * Ml * L)
    kk = hsic_unbiased(Mk * K, Mk * K)
    ll = hsic_unbiased(Ml * L, Ml * L)
    return kl / np.sqrt(kk * ll)


def test_second_order_cosine_of_two_rows_is_plus_or_minus_one():
    """n = 2, k = 1: each s vector has the single entry cos(a_0, a_1), so each row's cosine is the
    sign of cos(x_0, x_1) cos(y_0, y_1); rounded, it leaves [-1, 1] unless clipped."""
    rng = np.random.default_rng(0)
    for _ in range(60):
        X, Y = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
        sign = np.sign((1 - pdist(X, "cosine")[0]) * (1 - pdist(Y, "cosine")[0]))
        value = lb.second_order_cosine(X, Y, k=1)
        assert -1.0 <= value <= 1.0 and value == pytest.approx(sign, abs=1e-12)


def test_cknna_against_the_dense_definition():
    X, Y = data(n=40, noise=1.0)
    assert lb.cknna(X, Y, k=7) == pytest.approx(dense_cknna(X, Y, 7), rel=1e-9)


def test_cknna_in_small_row_blocks_against_the_dense_definition(monkeypatch):
    """Blocks of 3 rows over 11 (the last one shorter): the self-exclusion offset of each block."""
    monkeypatch.setattr(importlib.import_module("latentbridge.measures.neighbors"), "_BLOCK", 3)
    X, Y = data(n=11, noise=1.0)
    for k in (1, 4, 10):
        assert lb.cknna(X, Y, k=k) == pytest.approx(dense_cknna(X, Y, k), rel=1e-9)


def test_cknna_with_tied_inner_products_against_the_dense_definition():
    """Rows of a small integer lattice (40 > 16 rows: numpy's unstable sort would reorder ties)."""
    rng = np.random.default_rng(5)
    X, Y = rng.integers(0, 3, (40, 3)).astype(float), rng.integers(0, 3, (40, 3)).astype(float)
    for k in (3, 5):
        assert lb.cknna(X, Y, k=k) == pytest.approx(dense_cknna(X, Y, k), rel=1e-9)


def test_cknna_small_and_degenerate_inputs():
    X, Y = data(n=4, noise=1.0)
    assert lb.cknna(X, Y, k=3) == pytest.approx(dense_cknna(X, Y, 3), rel=1e-9)   # 4 rows suffice
    with pytest.raises(ValueError) as err:
        lb.cknna(X[:3], Y[:3], k=2)
    assert str(err.value) == "cknna needs at least 4 rows (the unbiased HSIC); X and Y have 3."
    rng = np.random.default_rng(2079)                      # a case found by search: Align(K, K) < 0
    n, k = int(rng.integers(4, 8)), int(rng.integers(1, 4))
    X = rng.standard_normal((n, 2)) + rng.uniform(-3, 3, 2)
    Y = rng.standard_normal((n, 2))
    with pytest.raises(ValueError) as err:
        lb.cknna(X, Y, k=k)
    assert str(err.value) == (
        "cknna is undefined: the neighbour-masked self-alignment of X or Y is not positive "
        "(Align(K, K) = -0.0171, Align(L, L) = 1.75). Raise k or check the inputs.")
    rng = np.random.default_rng(7651)                      # another, at n = 5: Align(L, L) < 0
    n, k = int(rng.integers(5, 9)), int(rng.integers(1, 5))
    X = rng.standard_normal((n, 2)) * rng.uniform(0.1, 1, 2) + rng.uniform(-5, 5, 2)
    Y = rng.standard_normal((n, 2))
    with pytest.raises(ValueError, match=r"\(Align\(K, K\) = 4.46, Align\(L, L\) = -0.0424\)"):
        lb.cknna(X, Y, k=k)
    # equal rows, k = n - 1 = 3: the masked HSIC is 12 + 16 * 9 / 6 - 2 * 4 * 9 / 2 = 0 exactly
    with pytest.raises(ValueError, match=r"\(Align\(K, K\) = .*, Align\(L, L\) = 0\)"):
        lb.cknna(X[:4], np.ones((4, 2)), k=3)


NEIGHBOUR_MEASURES = ["jaccard_knn", "rank_similarity", "second_order_cosine", "cknna"]


@pytest.mark.parametrize("name", NEIGHBOUR_MEASURES)
def test_neighbour_measures_check_k_and_its_memory(name, monkeypatch):
    X, Y = data(n=12, noise=1.0)
    f = getattr(lb, name)
    assert np.isfinite(f(X, Y, k=11))                       # k = n - 1: every other row
    for k in (12, 0):
        with pytest.raises(ValueError) as err:
            f(X, Y, k=k)
        assert str(err.value) == f"k must be in [1, 11]; got {k}."
    need = 8 * 12 * 4 * 6                                   # six (n, k) neighbour arrays
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(need))
    f(X, Y, k=4)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(need - 1))
    with pytest.raises(MemoryError, match=rf"^neighbour lists \(n, k\) = \(12, 4\) needs .* "
                                          rf"\({need} bytes\)"):
        f(X, Y, k=4)


@pytest.mark.parametrize("name", NEIGHBOUR_MEASURES)
def test_neighbour_measures_name_each_input_and_compute_in_float64(name):
    X, Y = data(n=12, noise=1.0)
    f = getattr(lb, name)
    for A, B, which in ((X[:1], Y[:1], "X"), (X, Y[:1], "Y")):
        with pytest.raises(ValueError, match=f"^{which} has 1 sample\\(s\\) .*at least 2"):
            f(A, B, k=1)
    for A, B, which in ((np.c_[X[:, :4], np.full(12, np.nan)], Y, "X"), (X, Y + np.inf, "Y")):
        with pytest.raises(ValueError, match=f"^{which} "):
            f(A, B, k=3)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    expected = f(X32.astype(np.float64), Y32.astype(np.float64), k=4)
    assert f(X32, Y32, k=4) == pytest.approx(expected, rel=1e-13, abs=1e-15)
    if name != "cknna":                                   # cknna needs 4 rows
        assert np.isfinite(f(X[:2], Y[:2], k=1))


def test_knn_lists_defaults_to_cosine_neighbours_of_x():
    from latentbridge.measures.neighbors import knn_lists

    X, _ = data(n=15, noise=1.0)
    np.testing.assert_array_equal(knn_lists(X, 4), brute_knn(X, 4, "cosine"))
    zero = X.copy()
    zero[5] = 0.0
    with pytest.raises(ValueError, match="^row 5 of X is all zero"):
        knn_lists(zero, 4)


@pytest.mark.parametrize("name", NEIGHBOUR_MEASURES)
def test_neighbour_measures_default_to_ten_neighbours(name):
    X, Y = data(n=24, noise=1.0)
    f = getattr(lb, name)
    assert f(X, Y) == f(X, Y, k=10) != f(X, Y, k=11)


@pytest.mark.parametrize("name", ["jaccard_knn", "rank_similarity", "second_order_cosine"])
def test_cosine_neighbours_name_the_zero_row(name):
    X, Y = data(n=12, noise=1.0)
    f = getattr(lb, name)
    for i, (A, B, which) in enumerate(((X, Y, "X"), (Y, X, "Y"))):
        zero = A.copy()
        zero[i + 2] = 0.0
        args = (zero, B) if which == "X" else (B, zero)
        with pytest.raises(ValueError, match=f"^row {i + 2} of {which} is all zero: its cosine"):
            f(*args, k=3)


@pytest.mark.parametrize("name", ["jaccard_knn", "rank_similarity"])
def test_neighbour_metric_is_checked_and_names_the_representation(name):
    X, Y = data(n=12, noise=1.0)
    f = getattr(lb, name)
    with pytest.raises(ValueError) as err:
        f(X, Y, k=3, metric="l1")
    assert str(err.value) == "metric must be one of ('cosine', 'euclidean'); got 'l1'."
    zero = Y.copy()
    zero[4] = 0.0
    with pytest.raises(ValueError, match="^row 4 of Y is all zero: its cosine similarity"):
        f(X, zero, k=3)
    assert np.isfinite(f(X, zero, k=3, metric="euclidean"))


@pytest.mark.parametrize("name", ["jaccard_knn", "rank_similarity", "second_order_cosine"])
def test_neighbour_measures_pass_n_jobs_to_the_knn_search(name, monkeypatch):
    from latentbridge import _core

    threads, real = [], _core.knn_sqeuclidean

    def spy(A, Q, k, n_threads, *rest):
        threads.append(n_threads)
        return real(A, Q, k, n_threads, *rest)

    monkeypatch.setattr(_core, "knn_sqeuclidean", spy)
    X, Y = data(n=20, noise=1.0)
    f = getattr(lb, name)
    assert f(X, Y, k=4, n_jobs=3) == f(X, Y, k=4)
    assert threads == [3, 3, 1, 1]


def test_second_order_cosine_row_orthogonal_to_every_neighbour_counts_zero():
    """Row 0 of X is orthogonal to every other row: its vector s_X(0) is zero and it contributes 0;
    the other rows by brute force over the neighbour unions."""
    rng = np.random.default_rng(3)
    X = np.vstack([[1.0, 0.0, 0.0], np.c_[np.zeros(11), rng.standard_normal((11, 2))]])
    Y = rng.standard_normal((12, 3))
    k = 3
    Sx, Sy = 1 - cdist(X, X, "cosine"), 1 - cdist(Y, Y, "cosine")
    nx, ny = brute_knn(X, k), brute_knn(Y, k)
    vals = [0.0]
    for i in range(1, 12):
        u = sorted(set(nx[i]) | set(ny[i]))
        a, b = Sx[i, u], Sy[i, u]
        vals.append(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert lb.second_order_cosine(X, Y, k=k) == pytest.approx(np.mean(vals), abs=1e-12)


# ---- prediction-based -------------------------------------------------------------------------

@pytest.mark.parametrize("lam", [0.0, 0.05, 1.0])
def test_gulp_equals_the_distance_between_ridge_hat_matrices(lam):
    """Boix-Adsera et al. 2022: d^2 = ||H_x - H_y||_F^2, H = A (A^T A + n lam I)^+ A^T after
    centring and scaling to ||A||_F^2 = n."""
    X, Y = data(n=35)

    def hat(A):
        A = centred(A)
        A = A * np.sqrt(35) / np.linalg.norm(A)
        return A @ np.linalg.pinv(A.T @ A + 35 * lam * np.eye(A.shape[1])) @ A.T

    expected = np.linalg.norm(hat(X) - hat(Y))
    assert lb.gulp(X, Y, lam=lam) == pytest.approx(expected, rel=1e-7)
    if lam == 0.0:
        rho = scipy_canonical_correlations(X, Y)
        assert lb.gulp(X, Y, lam=0.0) ** 2 == pytest.approx(5 + 7 - 2 * np.sum(rho ** 2), rel=1e-7)


def test_regression_predictivity_matches_scikit_learn_ridge():
    from sklearn.linear_model import Ridge

    X, Y = data(n=60)
    order = np.random.default_rng(0).permutation(60)
    sse = sst = 0.0
    for test in np.array_split(order, 4):
        train = np.setdiff1d(order, test)
        model = Ridge(alpha=2.0).fit(X[train], Y[train])
        sse += np.sum((Y[test] - model.predict(X[test])) ** 2)
        sst += np.sum((Y[test] - Y[train].mean(axis=0)) ** 2)
    got = lb.regression_predictivity(X, Y, alphas=[2.0], cv=4, random_state=0)
    assert got == pytest.approx(1 - sse / sst, abs=1e-10)


def test_gulp_rank_deficient_least_squares_and_identical_inputs():
    """lam = 0 on 7 columns of rank 5: the hat matrix is the projection on the column space, so
    GULP equals the distance of the rank-5 representation; rotated copies are at distance 0."""
    X, Y = data(n=30)
    X2 = np.hstack([X, X[:, :2] - X[:, 2:4]])
    assert lb.gulp(X2, Y, lam=0.0) == pytest.approx(lb.gulp(X, Y, lam=0.0), rel=1e-8)
    rng = np.random.default_rng(6)
    for _ in range(10):
        Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
        for lam in (0.0, 0.01):
            value = lb.gulp(X, rng.uniform(0.1, 10) * X @ Q + 1.0, lam=lam)
            assert value == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError) as err:
        lb.gulp(X, Y, lam=-1.0)
    assert str(err.value) == "lam must be >= 0.0; got -1.0."


def test_regression_predictivity_defaults_and_arguments_passed_to_the_ridge_map(monkeypatch):
    """A spy in place of RidgeMap records the penalties and threads of each fold's fit."""
    from latentbridge import alignment

    fits, real = [], alignment.RidgeMap

    class Spy(real):
        def fit(self, X, Y):
            fits.append((list(self.alphas), self.n_jobs, X.shape[0], Y.dtype))
            return super().fit(X, Y)

    monkeypatch.setattr(alignment, "RidgeMap", Spy)
    X, Y = data(n=20)
    value = lb.regression_predictivity(X, Y.astype(np.float32))
    assert fits == [([10.0 ** e for e in range(-3, 4)], None, 16, np.float64)] * 5
    assert value == pytest.approx(lb.regression_predictivity(X, Y, cv=5, random_state=0), rel=1e-6)
    assert value != lb.regression_predictivity(X, Y, random_state=1)
    fits.clear()
    lb.regression_predictivity(X, Y, alphas=[0.5, 2], cv=4, n_jobs=2)
    assert fits == [([0.5, 2.0], 2, 15, np.float64)] * 4


def test_gulp_default_penalty_and_alphas_checked_one_by_one():
    X, Y = data(n=20)
    assert lb.gulp(X, Y) == lb.gulp(X, Y, lam=0.01) != lb.gulp(X, Y, lam=1.0)
    with pytest.raises(TypeError) as err:                 # each penalty as given, not as a str array
        lb.regression_predictivity(X, Y, alphas=[1, "x"])
    assert str(err.value) == "alphas[i] must be a real number; got 'x' (str)."


def test_regression_predictivity_bad_input_messages():
    X, Y = data(n=12)
    assert np.isfinite(lb.regression_predictivity(X, Y, cv=6))        # folds of 2 rows
    for kwargs, message in (({"cv": 7}, "cv must be in [2, 6]; got 7."),
                            ({"cv": 1}, "cv must be in [2, 6]; got 1."),
                            ({"alphas": [1.0, 0.0]}, "alphas[i] must be > 0.0; got 0.0."),
                            ({"alphas": []}, "alphas must hold at least one penalty.")):
        with pytest.raises(ValueError) as err:
            lb.regression_predictivity(X, Y, **kwargs)
        assert str(err.value) == message
    with pytest.raises(ValueError) as err:
        lb.regression_predictivity(X, np.ones_like(Y))
    assert str(err.value) == ("Y is constant (all rows equal): R^2 is undefined. Check that the "
                              "target representation is not collapsed.")
    assert np.isfinite(lb.regression_predictivity(np.ones_like(X), Y, cv=2))  # a constant X is fine
    assert np.isfinite(lb.regression_predictivity(X[:4], Y[:4], cv=2))
    for A, B, name in ((X[:3], Y[:3], "X"), (X, Y[:3], "Y")):
        with pytest.raises(ValueError, match=f"^{name} has 3 sample"):
            lb.regression_predictivity(A, B, cv=2)


# ---- IMD ------------------------------------------------------------------------------------

def dense_knn_laplacian(A, k):
    W = np.zeros((len(A), len(A)))
    for i, row in enumerate(brute_knn(A, k, "euclidean")):
        W[i, row] = W[row, i] = 1.0
    s = 1 / np.sqrt(W.sum(axis=1))
    return np.eye(len(A)) - s[:, None] * W * s[None, :]


def test_knn_laplacian_and_slq_heat_trace_against_dense_eigenvalues():
    X, _ = data(n=120, p=3)
    L = knn_laplacian(X, 5)
    dense = dense_knn_laplacian(X, 5)
    np.testing.assert_allclose(L.toarray(), dense, atol=1e-14)
    times = np.logspace(-1, 1, 16)
    exact = np.exp(-np.outer(times, np.linalg.eigvalsh(dense))).sum(axis=1)
    est = heat_trace_slq(L, times, n_probes=400, lanczos_steps=20, seed=0)
    np.testing.assert_allclose(est, exact, rtol=0.03)


def test_imd_close_to_the_exact_dense_value():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 3))
    Y = np.c_[np.cos(np.linspace(0, 6, 150)), np.sin(np.linspace(0, 6, 150)), np.zeros(150)]
    times = np.logspace(-1, 1, 64)

    def descriptor(A):
        return np.exp(-np.outer(times, np.linalg.eigvalsh(dense_knn_laplacian(A, 5)))).mean(axis=1)

    exact = np.max(np.exp(-2 * (times + 1 / times)) * np.abs(descriptor(X) - descriptor(Y)))
    got = lb.imd(X, Y, times=times, n_probes=300, lanczos_steps=20)
    assert got == pytest.approx(exact, rel=0.1)
    assert lb.imd(X, X * 3.0 + 1.0) == pytest.approx(0.0, abs=1e-12)   # same graph, same probes


def exact_probe_heat_trace(L, times, n_probes, seed):
    """SLQ with a full Krylov space is Gauss quadrature with every node: q' f(L) q exactly, so the
    estimate is n / m sum_s [q_s' exp(-t L) q_s + t e^-t (q_s' L q_s)] - t e^-t tr L with the
    same unit Gaussian probes, written out with a dense eigendecomposition."""
    L = L.toarray()
    n = L.shape[0]
    Q = np.random.default_rng(seed).standard_normal((n, n_probes))
    Q /= np.linalg.norm(Q, axis=0)
    w, V = np.linalg.eigh(L)
    P = (V.T @ Q) ** 2                                      # (eigenvalue, probe) weights
    quad_exp = n * np.exp(-np.outer(times, w)) @ P.sum(axis=1) / n_probes
    quad_lin = n * np.sum(w @ P) / n_probes
    return quad_exp + times * np.exp(-times) * (quad_lin - np.trace(L))


@pytest.mark.parametrize("n, k, steps", [(7, 2, 7), (7, 2, 12), (8, 7, 6)])
def test_heat_trace_slq_with_a_full_krylov_space_is_exact(n, k, steps):
    """lanczos_steps >= n (capped at n), and the complete graph (k = n - 1: two eigenvalues, so each
    probe's Krylov space ends after 2 steps of 6)."""
    X, _ = data(n=n, p=3)
    L = knn_laplacian(X, k)
    times = np.logspace(-1, 1, 9)
    got = heat_trace_slq(L, times, n_probes=5, lanczos_steps=steps, seed=3)
    np.testing.assert_allclose(got, exact_probe_heat_trace(L, times, 5, 3), rtol=1e-10, atol=1e-12)


def test_heat_trace_slq_of_a_generic_symmetric_matrix_with_n_steps_is_exact():
    """Seven distinct eigenvalues: every one of the n Lanczos steps is needed (a k-NN graph's
    repeated eigenvalues end the Krylov space early); times of any real type are float64."""
    from fractions import Fraction

    import scipy.sparse as sp

    rng = np.random.default_rng(8)
    A = rng.standard_normal((7, 7))
    L = sp.csr_matrix(A + A.T + 7 * np.eye(7))
    times = np.array([0.3, 1.0, 2.5])
    exact = exact_probe_heat_trace(L, times, 4, 11)
    got = heat_trace_slq(L, times, n_probes=4, lanczos_steps=7, seed=11)
    np.testing.assert_allclose(got, exact, rtol=1e-10)
    fractions = [Fraction(3, 10), 1, Fraction(5, 2)]
    np.testing.assert_allclose(heat_trace_slq(L, fractions, n_probes=4, lanczos_steps=7, seed=11),
                               exact, rtol=1e-10)
    assert not np.allclose(heat_trace_slq(L, times, n_probes=4, lanczos_steps=5, seed=11), exact,
                           rtol=1e-6)


def test_heat_trace_slq_defaults():
    X, _ = data(n=30, p=3)
    L = knn_laplacian(X, 4)
    times = np.array([0.5, 2.0])
    default = heat_trace_slq(L, times)
    np.testing.assert_array_equal(default, heat_trace_slq(L, times, n_probes=100, lanczos_steps=10,
                                                          seed=0))
    for kwargs in ({"n_probes": 101}, {"lanczos_steps": 11}, {"seed": 1}):
        assert not np.array_equal(heat_trace_slq(L, times, **kwargs), default)


def test_imd_with_full_krylov_spaces_against_the_exact_probe_traces():
    X, Y = data(n=9, p=3, q=2, noise=1.0)
    times = np.logspace(-1, 1, 17)
    seed = int(np.random.default_rng(4).integers(0, 2**63 - 1))   # imd's probe seed from random_state
    hx = exact_probe_heat_trace(knn_laplacian(X, 3), times, 6, seed) / 9
    hy = exact_probe_heat_trace(knn_laplacian(Y, 3), times, 6, seed) / 9
    expected = np.max(np.exp(-2 * (times + 1 / times)) * np.abs(hx - hy))
    got = lb.imd(X, Y, k=3, n_probes=6, lanczos_steps=9, times=times, random_state=4)
    assert got == pytest.approx(expected, rel=1e-9)
    assert lb.imd(X, Y, k=3, n_probes=6, lanczos_steps=9, times=times, random_state=5) != got


def test_imd_passes_lanczos_steps_and_a_seed_from_zero():
    """lanczos_steps reaches the quadrature; the probe seed is Generator.integers(0, 2**63 - 1) of
    random_state (a seed drawn from another range is another seed)."""
    X, Y = data(n=30, p=3, q=2, noise=1.0)
    assert lb.imd(X, Y, lanczos_steps=3) != lb.imd(X, Y, lanczos_steps=10)
    times = np.logspace(-1, 1, 5)
    for state in range(4):
        seed = int(np.random.default_rng(state).integers(0, 2**63 - 1))
        hx = heat_trace_slq(knn_laplacian(X, 5), times, n_probes=8, lanczos_steps=6, seed=seed) / 30
        hy = heat_trace_slq(knn_laplacian(Y, 5), times, n_probes=8, lanczos_steps=6, seed=seed) / 30
        expected = np.max(np.exp(-2 * (times + 1 / times)) * np.abs(hx - hy))
        got = lb.imd(X, Y, n_probes=8, lanczos_steps=6, times=times, random_state=state)
        assert got == pytest.approx(expected, rel=1e-12)


def test_imd_parameters_are_checked_by_name(monkeypatch):
    X, Y = data(n=10, noise=1.0)
    for kwargs, message in (
            ({"n_probes": 0}, "n_probes must be >= 1; got 0."),
            ({"lanczos_steps": 0}, "lanczos_steps must be >= 1; got 0."),
            ({"times": [[1.0, 2.0]]}, None), ({"times": []}, None), ({"times": [1.0, np.inf]}, None),
            ({"times": [1.0, np.nan]}, None), ({"times": [1.0, -1.0]}, None)):
        with pytest.raises(ValueError) as err:
            lb.imd(X, Y, **kwargs)
        assert str(err.value) == (message or "times must be a non-empty 1-D array of positive finite "
                                             "diffusion times.")
    assert np.isfinite(lb.imd(X, Y, times=2.0, n_probes=4))  # one time, as a scalar
    with pytest.raises(ValueError) as err:
        lb.imd(X, Y[:6], k=6)
    assert str(err.value) == "k must be in [1, 5]; got 6."
    need = 8 * 10 * (4 * (5 + 3) + 4 * 3)                   # Lanczos basis and graph of X (n = 10)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(need))
    lb.imd(X, Y, k=3, n_probes=4, lanczos_steps=5)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(need - 1))
    with pytest.raises(MemoryError, match=rf"^imd Lanczos basis \(n, probes, steps\) = \(10, 4, 5\) "
                                          rf"needs .* \({need} bytes\)"):
        lb.imd(X, Y, k=3, n_probes=4, lanczos_steps=5)


def test_imd_defaults_times_and_threads(monkeypatch):
    from fractions import Fraction

    from latentbridge import _core

    X, Y = data(n=20, p=3, q=2, noise=1.0)
    explicit = lb.imd(X, Y, k=5, n_probes=100, lanczos_steps=10, times=np.logspace(-1, 1, 256),
                      random_state=0)
    assert lb.imd(X, Y) == explicit
    times = [Fraction(1, 2), 2]                             # any real numbers, as float64
    assert lb.imd(X, Y, times=times) == lb.imd(X, Y, times=[0.5, 2.0])
    threads, real = [], _core.knn_sqeuclidean

    def spy(A, Q, k, n_threads, *rest):
        threads.append(n_threads)
        return real(A, Q, k, n_threads, *rest)

    monkeypatch.setattr(_core, "knn_sqeuclidean", spy)
    assert lb.imd(X, Y, n_jobs=3, n_probes=10) == lb.imd(X, Y, n_probes=10)
    assert threads == [3, 3, 1, 1]


def test_imd_names_each_cloud_and_takes_two_rows():
    X, Y = data(n=10, noise=1.0)
    for A, B, which in ((X[:1], Y, "X"), (X, Y[:1], "Y")):
        with pytest.raises(ValueError, match=f"^{which} has 1 sample"):
            lb.imd(A, B, k=1)
    with pytest.raises(ValueError, match="^Y "):
        lb.imd(X, Y + np.nan)
    assert np.isfinite(lb.imd(X[:2], Y, k=1, n_probes=4))


def test_imd_accepts_different_sample_counts():
    rng = np.random.default_rng(1)
    assert lb.imd(rng.standard_normal((60, 4)), rng.standard_normal((90, 2))) >= 0.0


# ---- disagreement ----------------------------------------------------------------------------

def test_disagreement_closed_forms():
    a = np.array([0, 1, 2, 2, 1, 0, 0, 1])
    b = np.array([0, 1, 1, 2, 0, 0, 2, 1])
    y = np.array([0, 1, 2, 1, 1, 0, 2, 1])
    assert lb.disagreement(a, b) == 3 / 8
    err = (2 / 8 + 3 / 8) / 2     # a errs at 2 inputs, b at 3
    assert lb.disagreement(a, b, y=y) == pytest.approx((3 / 8) / err)
    scores = np.eye(3)[a] * 5.0
    assert lb.disagreement(scores, b) == 3 / 8
    with pytest.raises(ValueError, match="always right"):
        lb.disagreement(y, y, y=y)


# ---- arguments passed on ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["procrustes_distance", "shape_distance", "cca", "bures_distance",
                                  "bures_similarity", "ensd", "gulp"])
def test_scatter_measures_pass_n_jobs_to_the_accumulator(name, monkeypatch):
    """A spy in place of the streamed accumulator records the thread count each call asks for."""
    from latentbridge.measures import _moments

    threads, real = [], _moments.CrossStats

    def spy(*args, **kwargs):
        threads.append(kwargs["n_threads"])
        return real(*args, **kwargs)

    monkeypatch.setattr(_moments, "CrossStats", spy)
    X, Y = data(n=30)
    f = getattr(lb, name)
    assert f(X, Y, n_jobs=3) == pytest.approx(f(X, Y), rel=1e-12)
    assert threads == [3, 1]


def test_disagreement_label_types_and_bad_input_messages():
    assert lb.disagreement(["a", "b", "c"], ["a", "c", "c"]) == pytest.approx(1 / 3)   # kind U
    assert lb.disagreement([b"a", b"b"], [b"a", b"a"]) == 0.5                           # kind S
    assert lb.disagreement([0.0, 1.0, 2.0], [0.0, 1.0, 1.0]) == pytest.approx(1 / 3)    # finite floats
    assert lb.disagreement([True, False], [True, True]) == 0.5
    assert lb.disagreement([3], [4]) == 1.0                                             # one input
    cube = np.zeros((2, 2, 2))
    for args, kwargs, error, message in (
            ((cube, [0, 1]), {}, ValueError, "pred_a must be 1-D labels (n,) or 2-D class scores "
                                             "(n, n_classes); got shape (2, 2, 2)."),
            (([0, 1], cube), {}, ValueError, "pred_b must be 1-D labels (n,) or 2-D class scores "
                                             "(n, n_classes); got shape (2, 2, 2)."),
            (([0, 1], [0, 1]), {"y": cube}, ValueError, "y must be 1-D labels (n,) or 2-D class "
                                                        "scores (n, n_classes); got shape (2, 2, 2)."),
            (([0j, 1j], [0, 1]), {}, TypeError, "pred_a must hold integer, boolean, float or string "
                                                "labels; got dtype complex128."),
            (([0, 1], [0.0, np.nan]), {}, ValueError, "pred_b contains NaN or infinity."),
            (([np.inf, 1.0], [0, 1]), {}, ValueError, "pred_a contains NaN or infinity."),
            (([0, 1], [0, 1]), {"y": [0.0, np.nan]}, ValueError, "y contains NaN or infinity."),
            (([], []), {}, ValueError, "pred_a and pred_b must be non-empty with the same number of "
                                       "inputs; got 0 and 0."),
            (([0, 1], [0, 1, 1]), {}, ValueError, "pred_a and pred_b must be non-empty with the same "
                                                  "number of inputs; got 2 and 3."),
            (([0, 1], [0, 1]), {"y": [0, 1, 1]}, ValueError, "y must be 1-D labels with one entry "
                                                             "per input (2); got shape (3,)."),
            (([0, 1], [0, 1]), {"y": [0, 1]}, ValueError, "both classifiers are always right on y: "
             "the disagreement normalised by the error rate is undefined (call without y for the "
             "raw fraction).")):
        with pytest.raises(error) as err:
            lb.disagreement(*args, **kwargs)
        assert str(err.value) == message
    scores = np.array([[0.0, np.nan], [1.0, 0.0]])
    for args, name in (((scores, [0, 1]), "pred_a"), (([0, 1], scores), "pred_b")):
        with pytest.raises(ValueError, match=f"^{name} contains NaN"):
            lb.disagreement(*args)


def test_scatter_moments_rescale_check_memory_and_backend(monkeypatch):
    """Unit rescaling first (1e170 and 1e-170 would overflow and underflow the scatter
    matrices), two rows suffice, the memory check counts the three float64 scatter matrices, and
    the accumulator gets the CPU backend."""
    from latentbridge.measures import _moments

    X, Y = data(n=20)
    for name in ("procrustes_distance", "cca", "gulp", "ensd"):
        f = getattr(lb, name)
        assert f(X * 1e170, Y * 1e-170) == pytest.approx(f(X, Y), rel=1e-9)
    assert np.isfinite(lb.procrustes_distance(X[:2], Y[:2]))
    need = 8 * 3 * (5 * 5 + 7 * 7 + 5 * 7)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(need))
    lb.bures_distance(X, Y)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(need - 1))
    with pytest.raises(MemoryError, match=rf"^scatter matrices \(p, q\) = \(5, 7\) float64 needs "
                                          rf".* \({need} bytes\)"):
        lb.bures_distance(X, Y)
    monkeypatch.delenv("LATENTBRIDGE_MEMORY_LIMIT")
    backends, real = [], _moments.CrossStats

    def spy(*args, **kwargs):
        backends.append(kwargs["backend"])
        return real(*args, **{**kwargs, "backend": "blas"})

    monkeypatch.setattr(_moments, "CrossStats", spy)
    monkeypatch.setattr(_moments, "backend_for", lambda device: f"backend of {device}")
    lb.ensd(X, Y)
    assert backends == ["backend of cpu"]


def test_linearly_dependent_columns_change_no_whitened_measure():
    """Three extra columns in the span of two others: their rounding-level eigenvalues are below
    the rank tolerance and dropped, so CCA, shape_distance(alpha=0) and GULP(lam=0) are those of
    the five independent columns."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((40, 5)) + 2.0
        Y = X @ rng.standard_normal((5, 6)) + rng.standard_normal((40, 6))
        X2 = np.hstack([X, X[:, :2] @ rng.standard_normal((2, 3))])
        assert lb.cca(X2, Y) == pytest.approx(lb.cca(X, Y), rel=1e-8)
        assert lb.shape_distance(X2, Y, alpha=0.0) == pytest.approx(
            lb.shape_distance(X, Y, alpha=0.0), rel=1e-8)
        assert lb.gulp(X2, Y, lam=0.0) == pytest.approx(lb.gulp(X, Y, lam=0.0), rel=1e-8)


def test_cca_ridge_message_and_full_warning():
    X, Y = data(n=12)
    with pytest.raises(ValueError) as err:
        lb.cca(X, Y, ridge=-1.0)
    assert str(err.value) == "ridge must be >= 0.0; got -1.0."
    rng = np.random.default_rng(0)
    with pytest.warns(RegularisationWarning) as record:
        lb.cca(rng.standard_normal((6, 4)), rng.standard_normal((6, 4)))
    assert str(record[0].message) == (
        "cca: rank(X) + rank(Y) = 4 + 4 > n - 1 = 5 (fewer samples than features), so 3 canonical "
        "correlation(s) equal 1 whatever the data; returning the ridge-regularised value (ridge = "
        "0.1 x the mean variance). Pass more samples, or ridge= explicitly to choose the "
        "regularisation and silence this warning.")


# ---- bad input -------------------------------------------------------------------------------

PAIRED = ["procrustes_distance", "shape_distance", "cca", "rsa", "jaccard_knn", "rank_similarity",
          "second_order_cosine", "cknna", "bures_distance", "bures_similarity", "ensd", "gulp",
          "regression_predictivity"]


@pytest.mark.parametrize("name", PAIRED)
def test_mismatched_rows_nan_and_too_few_rows(name):
    f = getattr(lb, name)
    X, Y = data(n=12)
    with pytest.raises(ValueError, match="same number of rows"):
        f(X, Y[:-1])
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        f(bad, Y)
    with pytest.raises(ValueError, match="row"):
        f(X[:1], Y[:1])
    with pytest.raises(TypeError):
        f(X.astype(complex), Y)


@pytest.mark.parametrize("name", ["procrustes_distance", "shape_distance", "cca", "bures_distance",
                                  "bures_similarity", "ensd", "gulp", "regression_predictivity"])
def test_constant_representation_is_an_error(name):
    X, Y = data(n=12)
    with pytest.raises(ValueError, match="constant"):
        getattr(lb, name)(X, np.ones_like(Y))


@pytest.mark.parametrize("name", ["jaccard_knn", "rank_similarity", "second_order_cosine", "cknna"])
def test_k_must_be_below_n(name):
    X, Y = data(n=10)
    with pytest.raises(ValueError, match="k must be"):
        getattr(lb, name)(X, Y, k=10)
    with pytest.raises(ValueError, match="all zero"):
        lb.jaccard_knn(np.vstack([X[:-1], np.zeros(5)]), Y, k=3)


def test_bad_parameters():
    X, Y = data(n=12)
    with pytest.raises(ValueError, match="^kind must be one of"):
        lb.cca(X, Y, kind="sum")
    with pytest.raises(ValueError, match=r"^alpha must be in \[0.0, 1.0\]; got 1.5."):
        lb.shape_distance(X, Y, alpha=1.5)
    with pytest.raises(TypeError, match="^angular must be True or False"):
        lb.shape_distance(X, Y, angular="yes")
    with pytest.raises(ValueError, match="^rdm must be one of"):
        lb.rsa(X, Y, rdm="manhattan")
    with pytest.raises(ValueError, match="^compare must be one of"):
        lb.rsa(X, Y, compare="cosine")
    with pytest.raises(ValueError, match="constant"):
        lb.rsa(np.c_[X[:, :1], X[:, :1]], Y)            # a row constant across its features
    with pytest.raises(ValueError, match="lam"):
        lb.gulp(X, Y, lam=-1.0)
    with pytest.raises(ValueError, match="cv"):
        lb.regression_predictivity(X, Y, cv=7)
    with pytest.raises(ValueError, match="times"):
        lb.imd(X, Y, times=[0.0, 1.0])
    with pytest.raises(ValueError, match="k must be"):
        lb.imd(X, Y, k=12)
    with pytest.raises(ValueError, match="same number of inputs"):
        lb.disagreement([0, 1], [0, 1, 1])


def test_psd_eigh_rank_is_numpys_matrix_rank_and_eigenvalues_are_clipped_at_zero():
    """psd_eigh's rank uses numpy's matrix_rank rule (largest eigenvalue x size x eps) at every
    scale, small ones included, and its eigenvalues are never negative, also where eigh returns
    rounding-level negatives for an exactly singular matrix."""
    from latentbridge.measures._moments import psd_eigh

    rng = np.random.default_rng(7)
    negatives_seen = 0
    for trial in range(20):
        Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
        # eigenvalues 1e-3, 5e-4, 1e-17 (between 4 eps x 1e-3 and 4 eps) and an exact 0
        S = 10.0 ** -(trial % 3) * (Q * [1e-3, 5e-4, 1e-17, 0.0]) @ Q.T
        S = (S + S.T) / 2
        negatives_seen += np.linalg.eigvalsh(S).min() < 0
        w, V, rank, tol = psd_eigh(S)
        assert rank == np.linalg.matrix_rank(S)
        assert w.min() >= 0.0
        np.testing.assert_allclose((V * w) @ V.T, S, atol=1e-18)
    assert negatives_seen > 0  # the clip was exercised


def _whitened_shape_cosine_by_hand(X, Y, alpha):
    """cos(theta) of Williams et al.'s shape metric, every direction whitened (no rank cut)."""
    def whiten(A):
        Ac = A - A.mean(axis=0)
        S = Ac.T @ Ac
        w, V = np.linalg.eigh(S)
        w = np.clip(w, 0.0, None)
        return Ac @ (V / np.sqrt((1 - alpha) * w + alpha * w.sum() / len(w))) @ V.T
    Xa, Ya = whiten(X), whiten(Y)
    s = np.linalg.svd(Xa.T @ Ya, compute_uv=False)
    return s.sum() / (np.linalg.norm(Xa) * np.linalg.norm(Ya))


def test_partial_whitening_keeps_directions_below_the_rank_tolerance():
    """With 0 < alpha < 1 every direction of X is shrunk towards the mean variance and kept, also one
    whose own variance is below the rank tolerance: here X's third direction (variance ~1e-18 of the
    others) carries Y's first column, and dropping it moves cos(theta) by ~1e-8."""
    rng = np.random.default_rng(3)
    n = 60
    x1, x2, z = rng.standard_normal((3, n))
    X = np.column_stack([x1, x2, x1 + x2 + 1e-9 * z])
    Y = np.column_stack([z, rng.standard_normal((n, 2))])
    for alpha in (0.25, 0.5):
        expected = np.arccos(_whitened_shape_cosine_by_hand(X, Y, alpha))
        assert lb.shape_distance(X, Y, alpha=alpha) == pytest.approx(expected, rel=1e-11)


@pytest.mark.parametrize("scale", [1e-3, 1e-6, 1e3])
def test_regularised_linear_measures_are_invariant_to_the_scale_of_the_data(scale):
    """The partially whitened shape metric and ridge CCA use the mean eigenvalue as their unit, so
    data of any magnitude (scatter eigenvalues far below 1 included) give the same value."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((40, 4))
    Y = X @ rng.standard_normal((4, 3)) + 0.5 * rng.standard_normal((40, 3))
    assert lb.shape_distance(scale * X, Y, alpha=0.5) == pytest.approx(
        np.arccos(_whitened_shape_cosine_by_hand(X, Y, 0.5)), rel=1e-10)
    assert lb.cca(scale * X, scale * Y, ridge=0.1) == pytest.approx(lb.cca(X, Y, ridge=0.1), rel=1e-10)
