"""Diffusion maps (Euclidean and Mahalanobis), the sparse eigensolver and network transformations.

Oracles: scipy's cKDTree (k-NN), a numpy brute force (quadratic forms), the dense Algorithm 1 written
out in numpy, scipy's ARPACK eigsh on the same sparse matrix, the Neumann-Laplacian spectrum of a
rectangle, numpy pinv for the precisions, and datafold when it is installed.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh
from scipy.spatial import cKDTree

import latentbridge as lb
from latentbridge import NotFittedError, _core
from latentbridge.diffusion import (
    CandidateRecallWarning,
    DisconnectedGraphWarning,
    EigensolverWarning,
    NystromWarning,
)

# ---------------------------------------------------------------------------------------------
# helpers and data


def _tanh_square(n, seed=0, m=5):
    """The paper's 4.3 setup: the square [-1, 1]^2 observed as tanh(W x + b) in R^m, with the
    rank-2 precisions pinv(J J^T) of the analytic Jacobian."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    W = np.random.default_rng(100 + seed).standard_normal((m, 2))
    b = 0.3 * np.random.default_rng(200 + seed).standard_normal(m)
    Y = np.tanh(X @ W.T + b)
    J = (1 - Y**2)[:, :, None] * W[None]
    return X, Y, lb.precisions_from_jacobians(J)


def _mlp_1d(seed, width=6, scale=3.0):
    """A random one-hidden-layer tanh network R -> R^width and its Jacobian."""
    r = np.random.default_rng(seed)
    w = r.standard_normal(width) * scale
    b = r.standard_normal(width)

    def f(x):
        y = np.tanh(np.outer(x, w) + b)
        return y, ((1 - y**2) * w)[:, :, None]

    return f


def _transformation(n_components, *, degenerate_rtol=0.1, **dmap_params):
    """NetworkTransformation over Mahalanobis DiffusionMaps(n_components, **dmap_params)."""
    dm = lb.DiffusionMaps(n_components, metric=dmap_params.pop("metric", "mahalanobis"), **dmap_params)
    return lb.NetworkTransformation(dm, degenerate_rtol=degenerate_rtol)


def _dense_algorithm1(Y, C, k_eps, n_comp, epsilon=None, alpha=1.0):
    """The paper's Algorithm 1 on all pairs, written out in numpy (independent of the C++ path)."""
    n = Y.shape[0]
    diff = Y[None, :, :] - Y[:, None, :]
    if C is None:
        d2 = np.sum(diff**2, axis=-1)
    else:
        d2 = np.einsum("ija,iab,ijb->ij", diff, C, diff) + np.einsum("ija,jab,ijb->ij", diff, C, diff)
    if epsilon is None:
        off = d2 + np.diag(np.full(n, np.inf))
        epsilon = np.median(np.sort(off, axis=1)[:, k_eps - 1])
    a, phi = _dense_spectrum(np.exp(-d2 / (2 * epsilon)), alpha, n_comp)
    return epsilon, a[1 : n_comp + 1], phi


def _dense_spectrum(K, alpha, n_comp):
    """All eigenvalues (descending) of T = Q^-1/2 P^-a K P^-a Q^-1/2 for a dense kernel K, and the
    first n_comp non-trivial coordinates phi = Q^-1/2 v at unit RMS."""
    p = K.sum(1)
    W = K / np.outer(p**alpha, p**alpha)
    q = W.sum(1)
    T = W / np.sqrt(np.outer(q, q))
    a, V = np.linalg.eigh(T)
    a, V = a[::-1], V[:, ::-1]
    phi = V[:, 1 : n_comp + 1] / np.sqrt(q)[:, None]
    return a, phi / np.sqrt(np.mean(phi**2, axis=0))


def _align_signs(A, B):
    s = np.sign(np.sum(A * B, axis=0))
    return A * s


# ---------------------------------------------------------------------------------------------
# C++ kernels


@pytest.mark.parametrize("method", [1, 2])
def test_knn_matches_ckdtree(method):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1500, 4))
    X.setflags(write=False)
    idx, d2 = _core.knn_sqeuclidean(X, None, 9, 2, method)
    dd, ii = cKDTree(X).query(X, 10)
    np.testing.assert_array_equal(idx, ii[:, 1:])
    np.testing.assert_allclose(d2, dd[:, 1:] ** 2, rtol=1e-12)
    Q = rng.standard_normal((77, 4))
    idx, d2 = _core.knn_sqeuclidean(X, Q, 5, 2, method)
    dd, ii = cKDTree(X).query(Q, 5)
    np.testing.assert_array_equal(idx, ii)


def test_knn_high_dimension_and_ties():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((600, 40))
    idx, _ = _core.knn_sqeuclidean(X, None, 7, 2)  # automatic: brute force for d > 16
    dd, ii = cKDTree(X).query(X, 8)
    np.testing.assert_array_equal(idx, ii[:, 1:])
    # a lattice has many equal distances: ties are broken by index, whatever the method
    g = np.stack(np.meshgrid(np.arange(12.0), np.arange(12.0)), -1).reshape(-1, 2)
    a, _ = _core.knn_sqeuclidean(g, None, 8, 1, 1)
    b, _ = _core.knn_sqeuclidean(g, None, 8, 2, 2)
    np.testing.assert_array_equal(a, b)


def test_mahalanobis_rerank_matches_numpy():
    rng = np.random.default_rng(2)
    n, m, r, kc, k = 300, 5, 2, 40, 12
    Y = rng.standard_normal((n, m))
    G = rng.standard_normal((n, r, m))
    cand, _ = _core.knn_sqeuclidean(Y, None, kc, 1)
    idx, d2 = _core.mahalanobis_rerank(Y, G, None, None, cand, k, 2)
    C = np.einsum("nra,nrb->nab", G, G)
    for i in range(0, n, 37):
        diff = Y[cand[i]] - Y[i]
        full = np.einsum("ja,ab,jb->j", diff, C[i], diff) + np.einsum("ja,jab,jb->j", diff, C[cand[i]], diff)
        order = np.lexsort((cand[i], full))[:k]
        np.testing.assert_array_equal(idx[i], cand[i][order])
        np.testing.assert_allclose(d2[i], full[order], rtol=1e-12)
    # processing the queries in kd-tree order (for cache locality) changes nothing
    order = _core.kdtree_order(Y)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    idx2, d22 = _core.mahalanobis_rerank(Y, G, None, None, cand, k, 2, order)
    np.testing.assert_array_equal(idx2, idx)
    np.testing.assert_array_equal(d22, d2)
    with pytest.raises(ValueError, match="permutation"):
        _core.mahalanobis_rerank(Y, G, None, None, cand, k, 1, np.zeros(n, dtype=np.int64))
    # exactly symmetric: d2(i, j) == d2(j, i) bit for bit wherever both appear
    lookup = {(i, j): v for i in range(n) for j, v in zip(idx[i], d2[i])}
    both = [(v, lookup[(j, i)]) for (i, j), v in lookup.items() if (j, i) in lookup]
    assert both and all(a == b for a, b in both)


def _random_graph(n, seed, k=12):
    rng = np.random.default_rng(seed)
    Y = rng.uniform(size=(n, 2)) * [2.0, 1.0]
    idx, d2 = _core.knn_sqeuclidean(Y, None, k, 2)
    eps = _core.median_kth_distance(d2, 6)
    g = _core.diffusion_graph(idx, d2, eps, 1.0, 2)
    return g, sp.csr_matrix((g["data"], g["indices"], g["indptr"]), shape=(n, n))


@pytest.mark.parametrize("degree,reorder", [(1, True), (11, True), (11, False)])
def test_eigsh_matches_arpack(degree, reorder):
    n, nev = 3000, 8
    g, T = _random_graph(n, 3)
    assert abs(T - T.T).max() == 0.0  # exactly symmetric
    ref = np.sort(eigsh(T, k=nev + 1, which="LA", tol=1e-13)[0])[::-1]
    z = np.sqrt(g["q"])
    z = (z / np.linalg.norm(z))[:, None]
    np.testing.assert_allclose(T @ z[:, 0], z[:, 0], atol=1e-13)  # the trivial eigenvector
    opt = _core.EigshOptions(tol=1e-10, seed=7, n_threads=2, poly_degree=degree, reorder=reorder)
    vals, vecs, info = _core.eigsh_largest(g["indptr"], g["indices"], g["data"], nev, z, opt)
    assert info["converged"]
    np.testing.assert_allclose(vals, ref[1:], atol=1e-8)
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(nev), atol=1e-8)
    resid = np.linalg.norm(T @ vecs - vecs * vals, axis=0)
    assert resid.max() < 1e-8
    # without deflation the trivial eigenvalue 1 comes first
    opt.n_threads = 1
    vals2, _, _ = _core.eigsh_largest(g["indptr"], g["indices"], g["data"], nev + 1, None, opt)
    np.testing.assert_allclose(vals2, ref, atol=1e-8)


def test_eigsh_dense_fallback_and_errors():
    g, T = _random_graph(150, 4, k=8)
    vals, vecs, _ = _core.eigsh_largest(g["indptr"], g["indices"], g["data"], 4)
    np.testing.assert_allclose(vals, np.linalg.eigvalsh(T.toarray())[::-1][:4], atol=1e-12)
    with pytest.raises(ValueError, match="nev"):
        _core.eigsh_largest(g["indptr"], g["indices"], g["data"], 151)
    bad = g["indices"].copy()
    bad[3] = 10_000
    with pytest.raises(ValueError, match="out of range"):
        _core.eigsh_largest(g["indptr"], bad, g["data"], 3)


# ---------------------------------------------------------------------------------------------
# DiffusionMaps against the dense Algorithm 1


@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
def test_dense_matches_numpy_algorithm1(metric):
    rng = np.random.default_rng(5)
    n, m = 160, 3
    Y = rng.uniform(size=(n, m)) * [3.0, 1.0, 0.5]
    C = None
    if metric == "mahalanobis":
        A = rng.standard_normal((n, 2, m))
        C = np.einsum("nra,nrb->nab", A, A) + 0.1 * np.eye(m)
    dm = lb.DiffusionMaps(4, metric=metric, n_neighbors=None, k_epsilon=7).fit(Y, precisions=C)
    eps, a, phi = _dense_algorithm1(Y, C, 7, 4)
    assert dm.epsilon_ == pytest.approx(eps, rel=1e-12)
    np.testing.assert_allclose(dm.eigenvalues_, a, atol=1e-10)
    np.testing.assert_allclose(dm.embedding_, _align_signs(phi, dm.embedding_), atol=1e-7)
    # Nystrom at the training points (all pairs): reproduces the embedding exactly
    np.testing.assert_allclose(dm.transform(Y, C), dm.embedding_, atol=1e-8)


def test_alpha_and_fixed_epsilon():
    rng = np.random.default_rng(6)
    Y = rng.standard_normal((120, 2)) * [2.0, 0.5]
    for alpha in (0.0, 0.5):
        dm = lb.DiffusionMaps(3, n_neighbors=None, epsilon=0.3, alpha=alpha).fit(Y)
        _, a, _ = _dense_algorithm1(Y, None, 10, 3, epsilon=0.3, alpha=alpha)
        assert dm.epsilon_ == 0.3
        np.testing.assert_allclose(dm.eigenvalues_, a, atol=1e-10)


def test_sparse_kernel_eigenvalues_vs_arpack():
    _, Y, C = _tanh_square(2500)
    dm = lb.DiffusionMaps(6, metric="mahalanobis", n_neighbors=24, n_jobs=2, random_state=0).fit(Y, precisions=C)
    T = dm.kernel_matrix_
    assert T.nnz < 2 * 24 * 2500 + 2500  # O(n k) memory
    ref = np.sort(eigsh(T, k=7, which="LA", tol=1e-13)[0])[::-1]
    assert ref[0] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(dm.eigenvalues_, ref[1:], atol=1e-8)
    phi = dm.embedding_
    np.testing.assert_allclose(np.sqrt(np.mean(phi**2, axis=0)), 1.0, rtol=1e-12)
    # same seed -> identical result; thread count does not matter either
    dm2 = lb.DiffusionMaps(6, metric="mahalanobis", n_neighbors=24, n_jobs=1, random_state=0).fit(Y, precisions=C)
    np.testing.assert_allclose(dm2.embedding_, dm.embedding_, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# spectra of known domains


def test_rectangle_neumann_spectrum():
    # [0, 2] x [0, 1], uniform: Neumann eigenvalues (i/2)^2 + j^2 -> 0.25, 1, 1, 1.25, 2, 2.25
    rng = np.random.default_rng(7)
    Y = rng.uniform(size=(6000, 2)) * [2.0, 1.0]
    dm = lb.DiffusionMaps(6, n_neighbors=64, n_jobs=2, random_state=0).fit(Y)
    g = -np.log(dm.eigenvalues_)
    np.testing.assert_allclose(g / g[0], [1, 4, 4, 5, 8, 9], rtol=0.08)
    # phi_1 is cos(pi x / 2) up to sign
    assert abs(np.corrcoef(dm.embedding_[:, 0], np.cos(np.pi * Y[:, 0] / 2))[0, 1]) > 0.995


def test_mahalanobis_square_is_intrinsic():
    # The square seen through tanh in R^5: the Mahalanobis spectrum is the square's (1:1:2:4:4),
    # the Euclidean one is distorted by the observation map.
    _, Y, C = _tanh_square(6000, seed=1)
    dm = lb.DiffusionMaps(5, metric="mahalanobis", n_neighbors=48, n_jobs=2, random_state=0).fit(Y, precisions=C)
    g = -np.log(dm.eigenvalues_)
    np.testing.assert_allclose(g / g[0], [1, 1, 2, 4, 4], rtol=0.08)
    de = lb.DiffusionMaps(5, n_neighbors=48, n_jobs=2, random_state=0).fit(Y)
    ge = -np.log(de.eigenvalues_)
    assert np.max(np.abs(ge / ge[0] - [1, 1, 2, 4, 4]) / [1, 1, 2, 4, 4]) > 0.15


def test_anisotropic_metrics_warn_and_candidate_factor_fixes_them():
    # tanh(W x) with cond(W) ~ 5.8: 3 x 32 Euclidean candidates truncate the Mahalanobis
    # neighbourhoods (biased spectrum, low recall); 12 x 32 candidates do not.
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (4000, 2))
    W = 0.8 * np.random.default_rng(7).standard_normal((4, 2))
    Y = np.tanh(X @ W.T)
    C = lb.precisions_from_jacobians((1 - Y**2)[:, :, None] * W[None])
    kw = dict(metric="mahalanobis", n_neighbors=32, n_jobs=2, random_state=0)
    with pytest.warns(CandidateRecallWarning, match="anisotropic"):
        dm = lb.DiffusionMaps(3, **kw).fit(Y, precisions=C)
    assert dm.neighbor_recall_ < 0.9
    g = -np.log(dm.eigenvalues_)
    assert g[1] / g[0] > 1.3
    dm = lb.DiffusionMaps(3, candidate_factor=12, **kw).fit(Y, precisions=C)
    assert dm.neighbor_recall_ > 0.97
    g = -np.log(dm.eigenvalues_)
    np.testing.assert_allclose(g / g[0], [1, 1, 2], rtol=0.08)


def test_remove_harmonics_selects_new_directions():
    # [0, 2.5] x [0, 1]: phi_1 = cos(pi x / 2.5), phi_2 = cos(2 pi x / 2.5) (a harmonic of phi_1),
    # phi_3 = cos(pi y): the two non-harmonic coordinates are the 1st and the 3rd.
    rng = np.random.default_rng(8)
    Y = rng.uniform(size=(3000, 2)) * [2.5, 1.0]
    dm = lb.DiffusionMaps(2, n_neighbors=32, remove_harmonics=True, n_jobs=2, random_state=0).fit(Y)
    np.testing.assert_array_equal(dm.selected_, [0, 2])
    assert dm.residuals_[0] == 1.0 and dm.residuals_[1] < 0.3 and dm.residuals_[2] > 0.7
    assert dm.embedding_.shape == (3000, 2) and dm.eigenvalues_.shape == (2,)
    assert abs(np.corrcoef(dm.embedding_[:, 1], np.cos(np.pi * Y[:, 1]))[0, 1]) > 0.99


# ---------------------------------------------------------------------------------------------
# out of sample, inverse


def test_nystrom_and_inverse_on_held_out_points():
    rng = np.random.default_rng(9)
    Y = rng.uniform(size=(3000, 2)) * [2.0, 1.0]
    dm = lb.DiffusionMaps(2, n_neighbors=32, n_jobs=2, random_state=0).fit(Y)
    Yt = rng.uniform(0.05, 0.95, size=(200, 2)) * [2.0, 1.0]
    E = dm.transform(Yt)
    # phi_1 ~ c cos(pi x / 2): held-out points fit it as well as the training points do
    basis = np.cos(np.pi * Y[:, 0] / 2)
    c = dm.embedding_[:, 0] @ basis / (basis @ basis)
    rms_train = np.sqrt(np.mean((dm.embedding_[:, 0] - c * basis) ** 2))
    rms_test = np.sqrt(np.mean((E[:, 0] - c * np.cos(np.pi * Yt[:, 0] / 2)) ** 2))
    assert rms_train < 0.03 and rms_test < 1.5 * rms_train
    # at training points Nystrom is close to the embedding (the kNN row vs the union-graph row)
    assert np.abs(dm.transform(Y[:300]) - dm.embedding_[:300]).max() < 0.05
    # inverse: exact at training coordinates, close on held-out ones
    np.testing.assert_allclose(dm.inverse_transform(dm.embedding_), Y, atol=1e-12)
    back = dm.inverse_transform(E)
    assert np.sqrt(np.mean((back - Yt) ** 2)) < 0.03


def test_mahalanobis_transform_without_precisions_is_nearest_neighbour():
    _, Y, C = _tanh_square(800, seed=2)
    dm = lb.DiffusionMaps(3, metric="mahalanobis", n_neighbors=16, random_state=0).fit(Y, precisions=C)
    Yt = Y[:10] + 1e-9
    np.testing.assert_array_equal(dm.transform(Yt), dm.embedding_[:10])


# ---------------------------------------------------------------------------------------------
# precisions


def test_precisions_from_neighborhoods_matches_pinv():
    rng = np.random.default_rng(10)
    n, q, m = 40, 15, 4
    base = rng.standard_normal((n, 1, m))
    tangent = rng.standard_normal((n, 2, m))
    N = base + np.einsum("nqr,nrm->nqm", rng.standard_normal((n, q, 2)), tangent)
    N += 1e-6 * rng.standard_normal(N.shape)
    P = lb.precisions_from_neighborhoods(N, rank=2)
    for i in range(0, n, 7):
        cov = np.cov(N[i], rowvar=False)
        w, V = np.linalg.eigh(cov)
        ref = (V[:, -2:] / w[-2:]) @ V[:, -2:].T
        np.testing.assert_allclose(P[i], ref, rtol=1e-8, atol=1e-10 * np.abs(ref).max())
        assert np.linalg.matrix_rank(P[i], tol=1e-8 * np.abs(P[i]).max()) == 2
    R = lb.precisions_from_neighborhoods(N, ridge=0.1)
    cov = np.cov(N[3], rowvar=False)
    np.testing.assert_allclose(R[3], np.linalg.inv(cov + 0.1 * np.trace(cov) * np.eye(m)), rtol=1e-8)
    full = lb.precisions_from_neighborhoods(N, rcond=1e-20)  # keeps the 1e-12 noise directions
    assert np.abs(full).max() > 1e6 * np.abs(P).max()
    with pytest.raises(ValueError, match="not both"):
        lb.precisions_from_neighborhoods(N, rank=2, ridge=0.1)
    with pytest.raises(ValueError, match="at least 2 samples"):
        lb.precisions_from_neighborhoods(N[:, :1])
    with pytest.raises(ValueError, match="3-D"):
        lb.precisions_from_neighborhoods(N[0])


def test_precisions_from_jacobians_matches_pinv():
    rng = np.random.default_rng(11)
    J = rng.standard_normal((30, 5, 2))
    P = lb.precisions_from_jacobians(J)
    for i in range(0, 30, 6):
        np.testing.assert_allclose(P[i], np.linalg.pinv(J[i] @ J[i].T), rtol=1e-8, atol=1e-10)
    # the Mahalanobis length of a tangent step J dx is |dx| (in burst units)
    dx = rng.standard_normal(2)
    step = J[0] @ dx
    assert step @ P[0] @ step == pytest.approx(dx @ dx, rel=1e-10)
    with pytest.raises(ValueError, match="NaN"):
        bad = J.copy()
        bad[2, 1, 1] = np.nan
        lb.precisions_from_jacobians(bad)


# ---------------------------------------------------------------------------------------------
# low-rank precision factors (wide layers)


def _gram(G):
    return np.einsum("nra,nrb->nab", G, G)


def _rel_close(A, B, rtol):
    """|A - B| <= rtol * max|B| per point (relative to each matrix's scale)."""
    for a, b in zip(A, B):
        assert np.abs(a - b).max() <= rtol * np.abs(b).max(), np.abs(a - b).max() / np.abs(b).max()


def test_jacobian_factors_reproduce_the_pinv():
    rng = np.random.default_rng(30)
    n, m, d = 25, 7, 3
    J = rng.standard_normal((n, m, d)) * np.exp(rng.uniform(-3, 3, (n, 1, 1)))
    J[4, :, 2] = J[4, :, 0] - 2 * J[4, :, 1]  # one rank-2 Jacobian: a zero row pads its factor
    G = lb.precisions_from_jacobians(J, factors=True)
    assert G.shape == (n, d, m) and G.dtype == np.float64
    assert not G[4, 2].any()
    oracle = np.stack([np.linalg.pinv(j @ j.T, rcond=1e-10, hermitian=True) for j in J])
    _rel_close(_gram(G), oracle, 1e-9)
    _rel_close(_gram(G), lb.precisions_from_jacobians(J), 1e-10)
    # fewer outputs than inputs: rank <= m
    Jw = rng.standard_normal((5, 2, 4))
    Gw = lb.precisions_from_jacobians(Jw, factors=True)
    assert Gw.shape == (5, 2, 2)
    _rel_close(_gram(Gw), np.linalg.inv(Jw @ Jw.transpose(0, 2, 1)), 1e-10)


def test_neighborhood_factors_reproduce_the_pinv():
    rng = np.random.default_rng(31)
    n, q, m = 20, 4, 9  # rank q - 1 = 3 < m
    N = rng.standard_normal((n, q, m)) * np.exp(rng.uniform(-3, 3, (n, 1, 1)))
    G = lb.precisions_from_neighborhoods(N, factors=True)
    assert G.shape == (n, q - 1, m) and G.dtype == np.float64
    oracle = np.stack([np.linalg.pinv(np.cov(b, rowvar=False), rcond=1e-10, hermitian=True) for b in N])
    _rel_close(_gram(G), oracle, 1e-9)
    _rel_close(_gram(G), lb.precisions_from_neighborhoods(N), 1e-10)
    # rank truncation: the two largest eigenvalues of each covariance
    G2 = lb.precisions_from_neighborhoods(N, rank=2, factors=True)
    assert G2.shape == (n, 2, m)
    for b, c in zip(N, _gram(G2)):
        w, V = np.linalg.eigh(np.cov(b, rowvar=False))
        ref = (V[:, -2:] / w[-2:]) @ V[:, -2:].T
        assert np.abs(c - ref).max() <= 1e-9 * np.abs(ref).max()
    # more samples than features (full-rank covariance) and a constant neighbourhood (zero factor)
    Nf = rng.standard_normal((3, 12, 4))
    Nf[1] = 5.0
    Gf = lb.precisions_from_neighborhoods(Nf, factors=True)
    assert Gf.shape == (3, 4, 4) and not Gf[1].any()
    np.testing.assert_allclose(_gram(Gf)[0], np.linalg.inv(np.cov(Nf[0], rowvar=False)), rtol=1e-10)
    with pytest.raises(ValueError, match=r"factors=True needs .*\(rank and/or rcond\), not ridge"):
        lb.precisions_from_neighborhoods(N, ridge=0.1, factors=True)
    with pytest.raises(TypeError, match="factors must be True or False"):
        lb.precisions_from_jacobians(N, factors="yes")


def test_fits_with_factors_equal_fits_with_precisions():
    X, Y, _ = _tanh_square(1500, seed=5)
    W = np.random.default_rng(100 + 5).standard_normal((5, 2))
    J = (1 - Y**2)[:, :, None] * W[None]
    C, G = lb.precisions_from_jacobians(J), lb.precisions_from_jacobians(J, factors=True)
    params = dict(metric="mahalanobis", n_neighbors=16, random_state=0)
    dense = lb.DiffusionMaps(4, **params).fit(Y, precisions=C)
    low = lb.DiffusionMaps(4, **params).fit(Y, precision_factors=G)
    np.testing.assert_allclose(low.eigenvalues_, dense.eigenvalues_, rtol=1e-10, atol=0)
    assert low.epsilon_ == pytest.approx(dense.epsilon_, rel=1e-12)
    np.testing.assert_allclose(low.embedding_, dense.embedding_, atol=1e-7)
    np.testing.assert_allclose(low.fit_transform(Y, precision_factors=G), dense.embedding_, atol=1e-7)
    new = slice(0, 40)
    np.testing.assert_allclose(low.transform(Y[new] * 1.001, precision_factors=G[new]),
                               dense.transform(Y[new] * 1.001, C[new]), atol=1e-7)
    # the two networks of 4.3 as factors: same eigenvalues and map as with dense precisions
    r = np.random.default_rng(6)
    Wb = r.standard_normal((6, 2))
    Yb = np.tanh(X @ Wb.T)
    Jb = (1 - Yb**2)[:, :, None] * Wb[None]
    pairs = (np.arange(30), np.arange(30))
    nt_dense = _transformation(2, n_neighbors=16, random_state=0).fit(
        Y, Yb, C, lb.precisions_from_jacobians(Jb), pairs=pairs)
    nt_low = _transformation(2, n_neighbors=16, random_state=0).fit(
        Y, Yb, pairs=pairs, precision_factors_a=G,
        precision_factors_b=lb.precisions_from_jacobians(Jb, factors=True))
    for a, b in ((nt_low.dmap_a_, nt_dense.dmap_a_), (nt_low.dmap_b_, nt_dense.dmap_b_)):
        np.testing.assert_allclose(a.eigenvalues_, b.eigenvalues_, rtol=1e-10, atol=0)
    np.testing.assert_allclose(nt_low.orthogonal_, nt_dense.orthogonal_, atol=1e-6)
    np.testing.assert_allclose(nt_low.transform(Y[new], precision_factors=G[new]),
                               nt_dense.transform(Y[new], C[new]), atol=1e-6)


def test_wide_layer_factors_never_form_m_by_m(monkeypatch):
    # CREPE full's width: one (m, m) float64 precision is 32 MiB, all n of them 6.4 GiB. Each step
    # must stay within a few copies of its O(n r m) input (numpy allocations, traced).
    import tracemalloc

    n, m, d = 200, 2048, 3
    rng = np.random.default_rng(32)
    X = rng.uniform(-1, 1, (n, d))
    W = rng.standard_normal((m, d)) / np.sqrt(d)
    Y = np.tanh(X @ W.T)
    J = (1 - Y**2)[:, :, None] * W[None]
    bursts = np.tanh((X[:, None, :] + 0.01 * rng.standard_normal((n, 4, d))) @ W.T)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "256M")  # every check_allocation stays below

    def peak_of(call):
        tracemalloc.start()
        try:
            out = call()
            return out, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    G, peak_j = peak_of(lambda: lb.precisions_from_jacobians(J, factors=True))
    Gb, peak_b = peak_of(lambda: lb.precisions_from_neighborhoods(bursts, factors=True))
    dm = lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=10, random_state=0)
    phi, peak_f = peak_of(lambda: dm.fit_transform(Y, precision_factors=G))
    assert G.shape == (n, d, m) and Gb.shape == (n, 3, m)
    assert np.isfinite(phi).all() and phi.shape == (n, 2)
    assert peak_j < 4 * J.nbytes and peak_b < 4 * bursts.nbytes, (peak_j, peak_b)
    assert peak_f < 2 * (Y.nbytes + G.nbytes), peak_f
    assert max(peak_j, peak_b, peak_f) < n * m * m * 8 / 100


def test_bad_precision_factors():
    rng = np.random.default_rng(33)
    Y = rng.standard_normal((50, 3))
    G = rng.standard_normal((50, 2, 3))
    C = _gram(G)
    maha = lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=10)
    with pytest.raises(ValueError, match="needs precisions.*or precision_factors"):
        maha.fit(Y)
    with pytest.raises(ValueError, match="either precisions .* or precision_factors .*not both"):
        maha.fit(Y, precisions=C, precision_factors=G)
    with pytest.raises(ValueError, match=r"precision_factors must have shape \(n, r, m\) = \(50, r, 3\) with r >= 1"):
        maha.fit(Y, precision_factors=G[:40])
    with pytest.raises(ValueError, match=r"precision_factors must have shape"):
        maha.fit(Y, precision_factors=G[:, :, :2])
    with pytest.raises(ValueError, match=r"precision_factors must have shape"):
        maha.fit(Y, precision_factors=G[:, 0])
    with pytest.raises(ValueError, match=r"precision_factors must have shape"):
        maha.fit(Y, precision_factors=G[:, :0])
    bad = G.copy()
    bad[7, 1, 2] = np.nan
    with pytest.raises(ValueError, match="precision_factors contains NaN"):
        maha.fit(Y, precision_factors=bad)
    zero = G.copy()
    zero[9] = 0.0
    with pytest.raises(ValueError, match=r"precision_factors\[9\] is zero"):
        maha.fit(Y, precision_factors=zero)
    with pytest.raises(TypeError, match="precision_factors must be a numeric"):
        maha.fit(Y, precision_factors="G")
    with pytest.raises(ValueError, match="precision_factors are only used with metric='mahalanobis'"):
        lb.DiffusionMaps(2, n_neighbors=10).fit(Y, precision_factors=G)
    dm = maha.fit(Y, precision_factors=G)
    with pytest.raises(ValueError, match="not both"):
        dm.transform(Y[:3], C[:3], precision_factors=G[:3])
    with pytest.raises(ValueError, match=r"precision_factors must have shape \(n, r, m\) = \(3, r, 3\)"):
        dm.transform(Y[:3], precision_factors=G[:4])
    nt = _transformation(1, n_neighbors=10)
    with pytest.raises(ValueError, match="not both"):
        nt.fit(Y, Y, C, precision_factors_a=G, precision_factors_b=G)


# ---------------------------------------------------------------------------------------------
# the paper's experiments (small versions)


def test_two_networks_agree_only_in_the_mahalanobis_metric():
    # 4.1/4.2: two different networks see the same 1-D input; Mahalanobis embeddings agree up to
    # sign, Euclidean ones do not.
    rng = np.random.default_rng(12)
    x = rng.uniform(-1, 1, 1000)
    fa, fb = _mlp_1d(10), _mlp_1d(11, scale=6.0)
    (Ya, Ja), (Yb, Jb) = fa(x), fb(x)
    Ca, Cb = lb.precisions_from_jacobians(Ja), lb.precisions_from_jacobians(Jb)
    kw = dict(n_neighbors=20, random_state=0)
    pa = lb.DiffusionMaps(2, metric="mahalanobis", **kw).fit(Ya, precisions=Ca).embedding_[:, 0]
    pb = lb.DiffusionMaps(2, metric="mahalanobis", **kw).fit(Yb, precisions=Cb).embedding_[:, 0]
    assert abs(np.corrcoef(pa, pb)[0, 1]) >= 0.99
    assert abs(np.corrcoef(pa, np.cos(np.pi * (x + 1) / 2))[0, 1]) >= 0.99
    ea = lb.DiffusionMaps(2, **kw).fit(Ya).embedding_[:, 0]
    eb = lb.DiffusionMaps(2, **kw).fit(Yb).embedding_[:, 0]
    assert abs(np.corrcoef(ea, eb)[0, 1]) < 0.9


def test_bursts_give_the_same_embedding():
    # precisions from input bursts (q = 15) with the Tikhonov metric, as in the paper
    rng = np.random.default_rng(13)
    x = rng.uniform(-1, 1, 800)
    f = _mlp_1d(14)
    Y, _ = f(x)
    bursts = np.stack([f(x + 0.01 * rng.standard_normal(800))[0] for _ in range(15)], axis=1)
    C = lb.precisions_from_neighborhoods(bursts, ridge=0.1)
    phi = lb.DiffusionMaps(1, metric="mahalanobis", n_neighbors=20, random_state=0).fit(Y, precisions=C).embedding_
    assert abs(np.corrcoef(phi[:, 0], np.cos(np.pi * (x + 1) / 2))[0, 1]) >= 0.99


def test_network_transformation_on_held_out_inputs():
    rng = np.random.default_rng(15)
    x = rng.uniform(-1, 1, 1000)
    xt = rng.uniform(-0.95, 0.95, 200)
    fa, fb = _mlp_1d(10), _mlp_1d(11, scale=6.0)
    (Ya, Ja), (Yb, Jb) = fa(x), fb(x)
    nt = _transformation(1, n_neighbors=20, random_state=0)
    assert nt.fit(Ya, Yb, lb.precisions_from_jacobians(Ja), lb.precisions_from_jacobians(Jb),
                  pairs=(np.arange(5), np.arange(5))) is nt
    assert nt.orthogonal_.shape == (1, 1) and abs(nt.orthogonal_[0, 0]) == 1.0
    (Yat, Jat), (Ybt, _) = fa(xt), fb(xt)
    pred = nt.transform(Yat, lb.precisions_from_jacobians(Jat))
    assert np.sqrt(np.mean((pred - Ybt) ** 2)) / Ybt.std() < 0.02
    pred_nn = nt.transform(Yat)  # nearest-neighbour fallback
    assert np.sqrt(np.mean((pred_nn - Ybt) ** 2)) / Ybt.std() < 0.05


def test_network_transformation_degenerate_block():
    # 4.3 (small): two observations of the square; a_1 ~ a_2, so O needs a 2 x 2 rotation block.
    X, Ya, Ca = _tanh_square(3000, seed=3)
    rng = np.random.default_rng(16)
    W = rng.standard_normal((4, 2))
    Yb = np.tanh(X @ W.T)
    Cb = lb.precisions_from_jacobians((1 - Yb**2)[:, :, None] * W[None])
    nt = _transformation(2, n_neighbors=32, n_jobs=2, random_state=0)
    nt.fit(Ya, Yb, Ca, Cb, pairs=(np.arange(20), np.arange(20)))
    assert [len(b) for b in nt.blocks_] == [2]
    np.testing.assert_allclose(nt.orthogonal_ @ nt.orthogonal_.T, np.eye(2), atol=1e-12)
    aligned = nt.dmap_a_.embedding_ @ nt.orthogonal_
    for c in range(2):
        assert np.corrcoef(aligned[:, c], nt.dmap_b_.embedding_[:, c])[0, 1] > 0.98
    with pytest.raises(ValueError, match="at least 2 pairs"):
        nt.fit(Ya, Yb, Ca, Cb, pairs=(np.arange(1), np.arange(1)))


# ---------------------------------------------------------------------------------------------
# warnings, bad input, estimator conventions


def test_disconnected_graph_warns():
    rng = np.random.default_rng(17)
    Y = np.vstack([rng.standard_normal((300, 2)), 100 + rng.standard_normal((300, 2))])
    with pytest.warns(DisconnectedGraphWarning, match="disconnected"):
        dm = lb.DiffusionMaps(2, n_neighbors=10, random_state=0).fit(Y)
    assert dm.eigenvalues_[0] == pytest.approx(1.0, abs=1e-9)


def test_nystrom_warns_on_near_zero_eigenvalues():
    rng = np.random.default_rng(18)
    Y = rng.standard_normal((12, 2))
    dm = lb.DiffusionMaps(3, n_neighbors=None, epsilon=1e12).fit(Y)  # K ~ all ones: rank one
    assert np.all(np.abs(dm.eigenvalues_) < 1e-10)
    with pytest.warns(NystromWarning, match="divides"):
        dm.transform(Y[:2])


def test_bad_input():
    rng = np.random.default_rng(19)
    Y = rng.standard_normal((50, 3))
    C = np.tile(np.eye(3), (50, 1, 1))
    maha = lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=10)
    with pytest.raises(ValueError, match="needs precisions"):
        maha.fit(Y)
    with pytest.raises(ValueError, match=r"shape \(50, 3, 3\)"):
        maha.fit(Y, precisions=C[:, :2, :2])
    with pytest.raises(ValueError, match="one matrix per point"):
        maha.fit(Y, precisions=C[:40])
    with pytest.raises(ValueError, match="only used with metric='mahalanobis'"):
        lb.DiffusionMaps(2, n_neighbors=10).fit(Y, precisions=C)
    bad = Y.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        lb.DiffusionMaps(2, n_neighbors=10).fit(bad)
    badC = C.copy()
    badC[3, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        maha.fit(Y, precisions=badC)
    asym = C.copy()
    asym[5, 0, 1] = 1.0
    with pytest.raises(ValueError, match="not symmetric"):
        maha.fit(Y, precisions=asym)
    with pytest.raises(ValueError, match="negative eigenvalue"):
        maha.fit(Y, precisions=-C)
    with pytest.raises(ValueError, match="too|needs more than"):
        lb.DiffusionMaps(2, n_neighbors=50).fit(Y)
    with pytest.raises(ValueError, match="k_epsilon"):
        lb.DiffusionMaps(2, n_neighbors=5, k_epsilon=10).fit(Y)
    with pytest.raises(ValueError, match="metric"):
        lb.DiffusionMaps(2, metric="cosine").fit(Y)
    with pytest.raises(ValueError, match="epsilon"):
        lb.DiffusionMaps(2, epsilon=-1.0).fit(Y)
    with pytest.raises(TypeError, match="n_components"):
        lb.DiffusionMaps(2.5).fit(Y)
    with pytest.raises(ValueError, match="n_components"):
        lb.DiffusionMaps(60, n_neighbors=None).fit(Y)
    with pytest.raises(ValueError, match="duplicates"):
        lb.DiffusionMaps(2, n_neighbors=12).fit(np.zeros((40, 2)))
    with pytest.raises(ValueError, match="all pairs"):
        lb.DiffusionMaps(2, n_neighbors=None).fit(np.random.default_rng(0).uniform(size=(8001, 2)))
    with pytest.raises(NotFittedError):
        lb.DiffusionMaps().transform(Y)
    dm = lb.DiffusionMaps(2, n_neighbors=10).fit(Y)
    with pytest.raises(ValueError, match="features"):
        dm.transform(Y[:, :2])
    with pytest.raises(ValueError, match="columns"):
        dm.inverse_transform(np.zeros((3, 5)))
    nt = _transformation(1, n_neighbors=10)
    with pytest.raises(ValueError, match="pairs"):
        nt.fit(Y, Y[:30], C, C[:30])
    with pytest.raises(ValueError, match="out of range"):
        nt.fit(Y, Y, C, C, pairs=(np.array([0, 99]), np.array([0, 1])))


def test_estimator_conventions():
    dm = lb.DiffusionMaps(3, metric="mahalanobis", n_neighbors=12)
    params = dm.get_params()
    assert params["n_components"] == 3 and params["n_neighbors"] == 12 and params["alpha"] == 1.0
    assert dm.set_params(alpha=0.5) is dm and dm.alpha == 0.5
    with pytest.raises(ValueError, match="Invalid parameter"):
        dm.set_params(bogus=1)
    assert "metric='mahalanobis'" in repr(dm)
    Y = np.random.default_rng(20).standard_normal((60, 2))
    e = lb.DiffusionMaps(2, n_neighbors=10, random_state=0)
    assert e.fit(Y) is e and e.n_features_in_ == 2
    np.testing.assert_array_equal(lb.DiffusionMaps(2, n_neighbors=10, random_state=0).fit_transform(Y),
                                  e.embedding_)
    nt = _transformation(2, n_neighbors=8, degenerate_rtol=0.2)
    params = nt.get_params()
    assert params["degenerate_rtol"] == 0.2 and params["diffusion_maps__metric"] == "mahalanobis"
    assert params["diffusion_maps__n_components"] == 2 and params["diffusion_maps__n_neighbors"] == 8
    # the default embedding: one Mahalanobis coordinate
    default = lb.NetworkTransformation()
    X, Ya, Ca = _tanh_square(300, seed=9)
    default.fit(Ya, Ya, Ca, Ca)
    assert default.dmap_a_.n_components == 1 and default.dmap_a_.metric == "mahalanobis"
    assert default.diffusion_maps is None  # fit clones; the parameter is untouched
    with pytest.raises(TypeError, match="diffusion_maps must be a latentbridge.DiffusionMaps"):
        lb.NetworkTransformation(3).fit(Ya, Ya, Ca, Ca)


def test_matches_datafold_euclidean():
    datafold = pytest.importorskip("datafold")
    from datafold.dynfold import DiffusionMaps as DFDiffusionMaps
    from datafold.pcfold import GaussianKernel

    rng = np.random.default_rng(21)
    Y = rng.uniform(size=(400, 2)) * [2.0, 1.0]
    eps = 0.05
    ours = lb.DiffusionMaps(5, n_neighbors=None, epsilon=eps).fit(Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = DFDiffusionMaps(kernel=GaussianKernel(epsilon=eps), n_eigenpairs=6, alpha=1.0,
                              symmetrize_kernel=True).fit(Y)
    vals = np.sort(np.real(np.asarray(ref.eigenvalues_)))[::-1]
    np.testing.assert_allclose(ours.eigenvalues_, vals[1:6], atol=1e-8)
    del datafold


# ---------------------------------------------------------------------------------------------
# the inverse map's interpolation rule, and the device every stage runs on


def _idw_by_hand(X, values, q, k):
    """Inverse-distance weighting of the k rows of X nearest to q, or the nearest row's value when
    it lies within 1e-12 * max(1, max|X|) of q (written out with numpy)."""
    d = np.sqrt(np.sum((X - q) ** 2, axis=1))
    near = np.argsort(d, kind="stable")[:k]
    if d[near[0]] <= 1e-12 * max(1.0, np.abs(X).max()):
        return values[near[0]]
    w = 1.0 / d[near]
    return w @ values[near] / w.sum()


@pytest.mark.parametrize("X,q,exact", [
    ([[0.0], [3.0], [-4.0]], 1e-12, True),        # within 1e-12 * max|X| = 4e-12 (max|X| > 1)
    ([[0.0], [3.0], [-4.0]], 1.0, False),
    ([[0.0], [0.3], [-0.4]], 0.9e-12, True),      # within 1e-12 (max|X| < 1: the floor of 1)
    ([[0.0], [0.3], [-0.4]], 1.5e-12, False),     # just outside
    ([[-1e-12], [0.25], [0.5]], 0.0, True),       # exactly at the tolerance (powers of two: no rounding)
])
def test_inverse_interpolation_snaps_to_a_training_point_only_within_its_tolerance(X, q, exact):
    from latentbridge.diffusion.maps import _idw

    X = np.array(X)
    values = np.array([[1.0, 2.0], [5.0, -1.0], [0.0, 7.0]])
    out = _idw(X, values, np.array([[q]]), 3, 1, "cpu")[0]
    expected = _idw_by_hand(X, values, np.array([q]), 3)
    if exact:
        np.testing.assert_array_equal(out, values[0])
    else:
        assert np.all(out != values[0])
        np.testing.assert_allclose(out, expected, rtol=1e-13, atol=0)


def test_inverse_interpolation_of_a_query_on_duplicated_training_points():
    from latentbridge.diffusion.maps import _idw

    X = np.array([[1.0], [1.0], [5.0]])  # the two nearest coincide with the query: no scale at all
    values = np.array([[2.0], [2.0], [9.0]])
    np.testing.assert_array_equal(_idw(X, values, np.array([[1.0]]), 2, 1, "cpu"), [[2.0]])


def test_out_of_sample_methods_name_their_argument():
    Y = np.random.default_rng(40).standard_normal((30, 2))
    dm = lb.DiffusionMaps(1, n_neighbors=8, k_epsilon=4, random_state=0).fit(Y)
    with pytest.raises(ValueError, match=r"^embedding contains NaN"):
        dm.inverse_transform([[np.nan]])
    with pytest.raises(ValueError, match=r"^Y_new contains NaN"):
        dm.transform([[0.0, np.nan]])


class _KernelSpy:
    """Stands in for the extension module of one device: records (function, device, arguments)
    per call and runs the CPU kernels (so a fit "on CUDA" computes exactly the CPU result)."""

    def __init__(self, device, calls):
        self._device, self._calls = device, calls

    def __getattr__(self, name):
        real = getattr(_core, name)

        def call(*args, **kwargs):
            self._calls.append((name, self._device, args, kwargs))
            return real(*args, **kwargs)

        return call


def test_every_stage_runs_on_the_resolved_device(monkeypatch):
    from latentbridge.diffusion import graph, maps, spectrum

    _, Y, C = _tanh_square(200, seed=3)
    params = dict(metric="mahalanobis", n_neighbors=8, k_epsilon=4, candidate_factor=2, random_state=0)
    cpu = lb.DiffusionMaps(2, **params).fit(Y, precisions=C)
    expected = [cpu.embedding_, cpu.transform(Y[:5], C[:5]), cpu.transform(Y[:5]),
                cpu.inverse_transform(cpu.embedding_[:5] + 0.01)]
    calls = []
    for module in (graph, spectrum):
        monkeypatch.setattr(module, "kernels", lambda device: _KernelSpy(device, calls))
    monkeypatch.setattr(maps, "resolve_device", lambda device: "cuda")
    dm = lb.DiffusionMaps(2, device="cuda", **params).fit(Y, precisions=C)
    assert dm.device_ == "cuda"
    got = [dm.embedding_, dm.transform(Y[:5], C[:5]), dm.transform(Y[:5]),  # Nystrom, nearest point
           dm.inverse_transform(dm.embedding_[:5] + 0.01)]
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    device_work = {"knn_sqeuclidean", "mahalanobis_rerank", "diffusion_graph", "eigsh_largest"}
    assert device_work <= {c[0] for c in calls}
    assert {c[1] for c in calls if c[0] in device_work} == {"cuda"}
    assert "kdtree_order" not in {c[0] for c in calls}  # a CPU-only cache optimisation


def test_n_jobs_reaches_every_threaded_kernel(monkeypatch):
    from latentbridge.diffusion import graph, precisions, spectrum

    calls = []
    for module in (graph, spectrum, precisions):
        monkeypatch.setattr(module, "kernels", lambda device: _KernelSpy(device, calls))
    _, Y, C = _tanh_square(200, seed=3)
    dm = lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=8, k_epsilon=4, candidate_factor=2,
                          n_jobs=3, random_state=0).fit(Y, precisions=C)
    dm.transform(Y[:5], C[:5])
    dm.transform(Y[:5])
    dm.inverse_transform(dm.embedding_[:5])
    # where each kernel takes its thread count
    position = {"knn_sqeuclidean": 3, "mahalanobis_rerank": 6, "diffusion_graph": 4, "batched_eigh": 1}
    threads = [args[position[name]] for name, _, args, _ in calls if name in position]
    threads += [kwargs["n_threads"] for name, _, _, kwargs in calls if name == "EigshOptions"]
    assert len(threads) >= 8 and set(threads) == {3}


def _bytes_asked(call):
    """The byte count a MemoryError under a 1-byte LATENTBRIDGE_MEMORY_LIMIT reports, and its text."""
    with pytest.raises(MemoryError) as info:
        call()
    text = str(info.value)
    return int(text.split(" bytes) but")[0].rsplit("(", 1)[1]), text


def test_out_of_sample_memory_checks_count_their_buffers(monkeypatch):
    rng = np.random.default_rng(41)
    Y = rng.standard_normal((40, 3))
    dm = lb.DiffusionMaps(2, n_neighbors=6, k_epsilon=3, random_state=0).fit(Y)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "1")
    n_new, L, m, k = 7, 2, 3, 6
    # Nystrom: per (new point, neighbour) the int64 index, the float64 distance, log-weight,
    # weight, Markov entry and training density, and the L gathered coordinates
    asked, text = _bytes_asked(lambda: dm.transform(rng.standard_normal((n_new, m))))
    assert asked == n_new * k * (8 * 6 + 8 * L)
    assert "DiffusionMaps.transform neighbour lists (n_new, k) = (7, 6) float64" in text
    # inverse: per (query, neighbour) the index and distance, the L differences and the m values
    # of the L + 1 nearest training points
    asked, text = _bytes_asked(lambda: dm.inverse_transform(rng.standard_normal((n_new, L))))
    assert asked == n_new * (L + 1) * (8 + 8 + 8 * L + 8 * m)
    assert "DiffusionMaps.inverse_transform neighbour lists (n_new, k) = (7, 3)" in text


def test_fit_transform_passes_the_metric_on():
    _, Y, C = _tanh_square(120, seed=4)
    w, V = np.linalg.eigh(C)
    G = np.sqrt(np.clip(w, 0.0, None))[:, :, None] * V.transpose(0, 2, 1)  # C = G^T G
    for metric in ({"precisions": C}, {"precision_factors": G}):
        params = dict(metric="mahalanobis", n_neighbors=8, k_epsilon=4, random_state=0)
        fitted = lb.DiffusionMaps(2, **params).fit(Y, **metric).embedding_
        np.testing.assert_array_equal(lb.DiffusionMaps(2, **params).fit_transform(Y, **metric), fitted)


@pytest.mark.parametrize("params,error,message", [
    (dict(n_components=0), ValueError, r"^n_components must be >= 1"),
    (dict(n_components=2.5), TypeError, r"^n_components must be an integer"),
    (dict(metric="cosine"), ValueError, r"^metric must be one of \('euclidean', 'mahalanobis'\)"),
    (dict(epsilon="median"), ValueError, r"^epsilon must be one of \('auto',\)"),
    (dict(epsilon=0.0), ValueError, r"^epsilon must be > 0"),
    (dict(k_epsilon=0), ValueError, r"^k_epsilon must be >= 1"),
    (dict(n_neighbors=0), ValueError, r"^n_neighbors must be >= 1"),
    (dict(n_neighbors=5, k_epsilon=6), ValueError, r"^k_epsilon \(6\) must not exceed n_neighbors \(5\)"),
    (dict(alpha=-0.1), ValueError, r"^alpha must be >= 0"),
    (dict(remove_harmonics="yes"), TypeError, r"^remove_harmonics must be True or False"),
    (dict(candidate_factor=0), ValueError, r"^candidate_factor must be >= 1"),
    (dict(tol=1.0), ValueError, r"^tol must be in \(0.0, 1.0\)"),
    (dict(device="tpu"), ValueError, r"^device must be one of"),
    (dict(n_jobs=0), ValueError, r"^n_jobs must be a non-zero integer"),
    (dict(n_neighbors=40), ValueError, r"^n_neighbors=40 needs more than 40 points; Y has 40"),
    (dict(n_neighbors=None, k_epsilon=40), ValueError, r"^k_epsilon=40 needs more than 40 points; Y has 40"),
    (dict(n_neighbors=None, n_components=40), ValueError,
     r"^n_components=40 needs at least 41 points .*; Y has 40"),
])
def test_each_bad_parameter_is_named(params, error, message):
    Y = np.random.default_rng(42).standard_normal((40, 2))
    with pytest.raises(error, match=message):
        lb.DiffusionMaps(**{"n_components": 2, "n_neighbors": 8, "k_epsilon": 4, **params}).fit(Y)


@pytest.mark.parametrize("params", [
    dict(alpha=0.0), dict(tol=1e-300), dict(epsilon=1e-3),
    dict(n_neighbors=39), dict(n_neighbors=None, k_epsilon=39), dict(n_neighbors=None, n_components=39),
    dict(n_neighbors=4, k_epsilon=4),
])
def test_parameters_at_their_limits_are_accepted(params):
    Y = np.random.default_rng(42).standard_normal((40, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lb.diffusion.DiffusionMapsWarning)  # edge fits may warn
        dm = lb.DiffusionMaps(**{"n_components": 2, "n_neighbors": 8, "k_epsilon": 4, **params}).fit(Y)
    assert dm.embedding_.shape == (40, params.get("n_components", 2))


def test_intrinsic_eigenvalues_of_a_disconnected_graph_are_one_at_any_epsilon():
    # epsilon far below every squared distance: K = I, T = I, every a_p = 1 (rounding may put
    # them a hair above), so lambda_p = a_p^(1 / (2 epsilon)) = 1, never an overflow to inf
    Y = np.random.default_rng(42).standard_normal((40, 2))
    with pytest.warns(DisconnectedGraphWarning):
        dm = lb.DiffusionMaps(2, n_neighbors=8, k_epsilon=4, epsilon=1e-300).fit(Y)
    np.testing.assert_allclose(dm.eigenvalues_, 1.0, atol=1e-12)
    np.testing.assert_array_equal(dm.intrinsic_eigenvalues_, 1.0)


def test_transform_with_factors_of_another_rank_than_the_training_ones():
    # zero rows do not change a precision G^T G, so factors of any rank describe the same metric:
    # the query factors are padded to the training rank, or the training ones to the query rank
    _, Y, C = _tanh_square(150, seed=5)
    w, V = np.linalg.eigh(C)  # C has rank 2 in R^5: its two largest eigenpairs
    G = np.sqrt(w[:, -2:])[:, :, None] * V[:, :, -2:].transpose(0, 2, 1)
    dm = lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=8, k_epsilon=4, random_state=0)
    dm.fit(Y, precision_factors=G)
    Yq, Gq = Y[:6] + 0.01, G[:6]
    zero = np.zeros((6, 1, 5))
    same_rank = dm.transform(Yq, precision_factors=Gq)
    np.testing.assert_allclose(dm.transform(Yq, precision_factors=np.concatenate([Gq, zero], axis=1)),
                               same_rank, rtol=1e-12, atol=1e-12)
    lower = Gq[:, 1:]  # rank 1: another metric, padded with a zero row to the training rank 2
    np.testing.assert_array_equal(dm.transform(Yq, precision_factors=lower),
                                  dm.transform(Yq, precision_factors=np.concatenate([lower, zero], axis=1)))
    assert np.isfinite(same_rank).all() and not np.allclose(dm.transform(Yq, precision_factors=lower), same_rank)


def _blocks_by_hand(ga, gb, rtol):
    """Consecutive components joined when |g_p - g_(p-1)| <= rtol max(|g_p|, |g_(p-1)|) in either
    network (g = -log a), written as a union of joined neighbours."""
    blocks = [[0]]
    for p in range(1, len(ga)):
        if any(abs(g[p] - g[p - 1]) <= rtol * max(abs(g[p]), abs(g[p - 1])) for g in (ga, gb)):
            blocks[-1].append(p)
        else:
            blocks.append([p])
    return blocks


@pytest.mark.parametrize("ga,gb,rtol,expected", [
    ([1, 1.05, 2, 2.1, 5], [1, 1.05, 2, 2.1, 5], 0.1, [[0, 1], [2, 3], [4]]),
    ([1, 1.05, 2, 2.1, 5], [1, 3, 2, 4.8, 5], 0.1, [[0, 1], [2, 3, 4]]),  # (3, 4) joined in B only
    ([2, 4], [2, 8], 0.5, [[0, 1]]),       # |4 - 2| = 0.5 * 4 exactly: the bound is inclusive
    ([2, 4], [2, 8], 0.49, [[0], [1]]),
    ([4, 2], [8, 2], 0.5, [[0, 1]]),       # relative to the larger of the two, in either order
    ([1, 2, 3], [1, 2, 3], 0.0, [[0], [1], [2]]),
])
def test_degenerate_blocks_follow_the_relative_gap_rule(ga, gb, rtol, expected):
    from latentbridge.diffusion.transformation import _degenerate_blocks

    ga, gb = np.array(ga, dtype=float), np.array(gb, dtype=float)
    assert _blocks_by_hand(ga, gb, rtol) == expected
    got = _degenerate_blocks(np.exp(-ga), np.exp(-gb), rtol)
    assert [b.tolist() for b in got] == expected


def test_degenerate_blocks_of_zero_or_negative_eigenvalues():
    from latentbridge.diffusion.transformation import _degenerate_blocks

    # a <= 0 (a truncated kernel) counts as 1e-300: two such components form one block
    a = np.array([np.exp(-1.0), 0.0, -1e-3])
    assert [b.tolist() for b in _degenerate_blocks(a, a, 0.1)] == [[0], [1, 2]]


def test_network_transformation_pairs_are_checked():
    rng = np.random.default_rng(43)
    Y = rng.standard_normal((40, 2))
    nt = lb.NetworkTransformation(lb.DiffusionMaps(2, n_neighbors=8, k_epsilon=4, random_state=0))
    cases = [
        ([np.arange(3), np.arange(3), np.arange(3)], TypeError, r"^pairs must be a tuple \(idx_a, idx_b\)"),
        ((np.arange(3),), TypeError, r"^pairs must be a tuple"),
        (np.arange(3), TypeError, r"^pairs must be a tuple"),
        ((np.zeros((2, 2), int), np.zeros((2, 2), int)), ValueError,
         r"^pairs must be two 1-D index arrays of the same length; got shapes \(2, 2\) and \(2, 2\)"),
        ((np.arange(3), np.arange(4)), ValueError, r"got shapes \(3,\) and \(4,\)"),
        ((np.arange(3.0), np.arange(3)), TypeError, r"^pairs must hold integer indices"),
        ((np.arange(3), np.arange(3.0)), TypeError, r"^pairs must hold integer indices"),
        ((np.array([-1, 0]), np.array([0, 1])), ValueError,
         r"^pairs indices out of range \(Y_a has 40 rows, Y_b has 30"),
        ((np.array([0, 40]), np.array([0, 1])), ValueError, r"out of range"),
        ((np.array([0, 1]), np.array([-1, 1])), ValueError, r"out of range"),
        ((np.array([0, 1]), np.array([0, 30])), ValueError, r"out of range"),
        ((np.array([], int), np.array([], int)), ValueError, r"^pairs has 0 correspondences"),
    ]
    for pairs, error, message in cases:
        with pytest.raises(error, match=message):
            nt.fit(Y, Y[:30], pairs=pairs)
    with pytest.raises(ValueError, match=r"^Y_a and Y_b have 40 and 30 rows; pass pairs"):
        nt.fit(Y, Y[:30])
    # at the edges: the last rows, a list instead of a tuple, unsigned indices
    for pairs in ((np.array([39, 0, 5]), np.array([29, 0, 5])), [np.arange(30), np.arange(30)],
                  (np.arange(30, dtype=np.uint32), np.arange(30, dtype=np.uint8))):
        assert nt.fit(Y, Y[:30], pairs=pairs).orthogonal_.shape == (2, 2)
    with pytest.raises(ValueError, match=r"^degenerate_rtol must be >= 0"):
        lb.NetworkTransformation(degenerate_rtol=-0.1).fit(Y, Y)
    with pytest.raises(ValueError, match=r"^orthogonal must be one of \('pairs', 'icp'\)"):
        lb.NetworkTransformation(orthogonal="kabsch").fit(Y, Y)


def test_network_transformation_messages_in_full_and_a_failed_fit():
    Y = np.random.default_rng(47).standard_normal((40, 2))
    nt = lb.NetworkTransformation(lb.DiffusionMaps(2, n_neighbors=8, k_epsilon=4, random_state=0))
    with pytest.raises(ValueError, match=r"^Y_a and Y_b have 40 and 30 rows; pass pairs=\(idx_a, idx_b\) to "
                                         r"say which points correspond\.$"):
        nt.fit(Y, Y[:30])
    # that fit failed after embedding both networks: it left no fitted attribute, nothing to transform with
    assert not any(name.endswith("_") for name in vars(nt))
    with pytest.raises(lb.NotFittedError):
        nt.transform(Y)
    with pytest.raises(TypeError, match=r"^diffusion_maps must be a latentbridge\.DiffusionMaps \(or None for "
                                        r"DiffusionMaps\(1, metric='mahalanobis'\)\); got 3\.$"):
        lb.NetworkTransformation(3).fit(Y, Y)
    with pytest.raises(ValueError, match=r"^orthogonal='icp' estimates O without correspondences; pass pairs=None, "
                                         r"or orthogonal='pairs' to use the pairs\.$"):
        lb.NetworkTransformation(orthogonal="icp").fit(Y, Y, pairs=([0], [0]))


def test_network_transformation_failed_refit_leaves_the_fit_as_it_was():
    """A refit that fails after embedding both networks (rows that do not correspond, too few
    pairs for a degenerate block) keeps every fitted attribute of the last successful fit: the
    same objects, the same O, the same transform. A successful "pairs" refit after an "icp" fit
    drops the icp-only matching_error_."""
    rng = np.random.default_rng(48)
    Y, Y_new, Y_held = rng.standard_normal((40, 2)), rng.standard_normal((40, 2)), rng.standard_normal((5, 2))
    nt = lb.NetworkTransformation(lb.DiffusionMaps(2, n_neighbors=8, k_epsilon=4, random_state=0),
                                  degenerate_rtol=10.0).fit(Y, 2.0 * Y)
    fitted = dict(vars(nt))
    O, mapped = nt.orthogonal_.copy(), nt.transform(Y_held)
    assert {"dmap_a_", "dmap_b_", "blocks_", "orthogonal_"} <= set(fitted)
    with pytest.raises(ValueError, match=r"^Y_a and Y_b have 40 and 30 rows"):
        nt.fit(Y_new, Y_new[:30])
    with pytest.raises(ValueError, match=r"^pairs has 1 correspondences"):
        nt.fit(Y_new, Y_new, pairs=(np.array([3]), np.array([3])))
    assert vars(nt).keys() == fitted.keys()
    assert all(vars(nt)[name] is value for name, value in fitted.items())
    np.testing.assert_array_equal(nt.orthogonal_, O)
    np.testing.assert_array_equal(nt.transform(Y_held), mapped)
    # the matching error belongs to the icp fit that computed it, and to no later fit
    nt.set_params(orthogonal="icp").fit(Y, Y)
    assert nt.matching_error_ >= 0.0
    nt.set_params(orthogonal="pairs").fit(Y, Y)
    assert not hasattr(nt, "matching_error_")


def test_network_transformation_default_rtol_and_the_fewest_pairs():
    # a 3 x 1 rectangle: -log a of its first two modes differ about fourfold, far outside the
    # default 10 % (and inside 110 %)
    Y = np.random.default_rng(46).uniform(size=(300, 2)) * [3.0, 1.0]
    dm = lb.DiffusionMaps(2, n_neighbors=20, random_state=0)
    nt = lb.NetworkTransformation(dm).fit(Y, Y)
    ga = -np.log(nt.dmap_a_.eigenvalues_)
    assert _blocks_by_hand(ga, ga, 0.1) == [[0], [1]] and _blocks_by_hand(ga, ga, 1.1) == [[0, 1]]
    assert [b.tolist() for b in nt.blocks_] == [[0], [1]]
    # one 2 x 2 block: two pairs are enough, one is not
    joined = lb.NetworkTransformation(dm, degenerate_rtol=10.0)
    O = joined.fit(Y, Y, pairs=(np.array([3, 40]), np.array([3, 40]))).orthogonal_
    np.testing.assert_allclose(O, np.eye(2), atol=1e-8)
    with pytest.raises(ValueError, match=r"^pairs has 1 correspondences but the largest degenerate eigenspace "
                                         r"has dimension 2; pass at least 2 pairs\.$"):
        joined.fit(Y, Y, pairs=(np.array([3]), np.array([3])))


_N = np.random.default_rng(44).standard_normal((5, 4, 3))
_J = np.random.default_rng(45).standard_normal((5, 3, 2))


@pytest.mark.parametrize("function,argument,params,error,message", [
    ("neighborhoods", _N[0], {}, ValueError, r"^neighborhoods must be 3-D with shape \(n, q, m\); got shape \(4, 3\)"),
    ("neighborhoods", "N", {}, TypeError, r"^neighborhoods must be a numeric 3-D array; got a str"),
    ("neighborhoods", _N[:, :1], {}, ValueError, r"^neighborhoods needs at least 2 samples per point"),
    ("neighborhoods", _N, dict(ridge=-1.0), ValueError, r"^ridge must be >= 0"),
    ("neighborhoods", _N, dict(ridge=0.1, rank=1), ValueError,
     r"^use either ridge \(Tikhonov\) or rank/rcond \(truncated pseudo-inverse\), not both\.$"),
    ("neighborhoods", _N, dict(ridge=0.1, rcond=0.1), ValueError, r"^use either ridge .* or rank/rcond"),
    ("neighborhoods", _N, dict(ridge=0.1, factors=True), ValueError,
     r"^factors=True needs a truncated pseudo-inverse \(rank and/or rcond\), not ridge: a ridge precision "
     r"has full rank m, so it has no low-rank factor\. Drop ridge, or pass factors=False for the "
     r"\(n, m, m\) precisions\.$"),
    ("neighborhoods", _N, dict(rank=4), ValueError, r"^rank must be in \[1, 3\]"),
    ("neighborhoods", _N, dict(rank=0), ValueError, r"^rank must be in \[1, 3\]"),
    ("neighborhoods", _N, dict(rcond=1.0), ValueError, r"^rcond must be in \[0.0, 1.0\)"),
    ("neighborhoods", _N, dict(rcond=-0.1), ValueError, r"^rcond must be in"),
    ("neighborhoods", _N, dict(factors=1), TypeError, r"^factors must be True or False"),
    ("jacobians", _J[0], {}, ValueError, r"^jacobians must be 3-D with shape \(n, m, d\); got shape \(3, 2\)"),
    ("jacobians", b"J", {}, TypeError, r"^jacobians must be a numeric 3-D array; got a bytes"),
    ("jacobians", _J, dict(rcond=1.0), ValueError, r"^rcond must be in \[0.0, 1.0\)"),
    ("jacobians", _J, dict(factors="yes"), TypeError, r"^factors must be True or False"),
])
def test_precision_arguments_are_named(function, argument, params, error, message):
    compute = {"neighborhoods": lb.precisions_from_neighborhoods, "jacobians": lb.precisions_from_jacobians}
    with pytest.raises(error, match=message):
        compute[function](argument, **params)


def test_precision_inputs_of_the_wrong_type_say_what_was_given():
    Y = np.random.default_rng(46).standard_normal((20, 3))
    maha = lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=6, k_epsilon=3)
    with pytest.raises(TypeError, match=r"^precision_factors must be a numeric 3-D array; got a str"):
        maha.fit(Y, precision_factors="G")
    with pytest.raises(TypeError, match=r"^precisions must be a numeric 3-D array; got a bytes"):
        maha.fit(Y, precisions=b"C")


def test_sparse_nystrom_uses_the_n_neighbors_nearest_training_points():
    # by hand: the union k-NN graph with the diagonal, p = K 1, and for a new point y the Markov
    # row over its k nearest training points, M(y, j) ~ K(y, j) p_j^-alpha, phi(y) = M phi / a
    rng = np.random.default_rng(47)
    Y = rng.uniform(size=(60, 2)) * [2.0, 1.0]
    k, alpha = 6, 0.5
    dm = lb.DiffusionMaps(2, n_neighbors=k, k_epsilon=3, alpha=alpha, random_state=0).fit(Y)
    tree = cKDTree(Y)
    _, nn = tree.query(Y, k + 1)
    A = np.eye(60, dtype=bool)
    A[np.repeat(np.arange(60), k), nn[:, 1:].ravel()] = True
    A |= A.T
    D2 = np.sum((Y[:, None] - Y[None]) ** 2, axis=-1)
    p = np.where(A, np.exp(-D2 / (2 * dm.epsilon_)), 0.0).sum(axis=1)
    Yq = rng.uniform(size=(9, 2)) * [2.0, 1.0]
    dq, iq = tree.query(Yq, k)
    w = np.exp(-(dq**2) / (2 * dm.epsilon_)) * p[iq] ** -alpha
    M = w / w.sum(axis=1, keepdims=True)
    expected = np.einsum("nk,nkc->nc", M, dm.embedding_[iq]) / dm.eigenvalues_
    np.testing.assert_allclose(dm.transform(Yq), expected, rtol=1e-10, atol=1e-12)


def test_nystrom_warning_threshold_and_where_it_points():
    rng = np.random.default_rng(48)
    Y = rng.standard_normal((30, 2))
    dm = lb.DiffusionMaps(2, n_neighbors=8, k_epsilon=4, random_state=0).fit(Y)
    dm.eigenvalues_ = np.array([0.5, 1e-10])  # at the threshold: no warning (warnings are errors)
    dm.transform(Y[:2])
    dm.eigenvalues_ = np.array([0.5, np.nextafter(1e-10, 0.0)])
    with pytest.warns(NystromWarning) as record:
        dm.transform(Y[:2])
    assert str(record[0].message).startswith(
        "1 eigenvalue(s) below 1e-10: the Nystrom extension divides by them, so those coordinates "
        "are unreliable.")
    # attributed to the caller, not to scikit-learn's set_output wrapper around transform (nor, under
    # mutmut, to its trampoline)
    assert record[0].filename == __file__


def test_out_of_sample_overflow_names_what_to_rescale():
    _, Y, C = _tanh_square(60, seed=6)
    maha = lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=8, k_epsilon=4, random_state=0)
    maha.fit(Y, precisions=C)
    G = np.tile(np.eye(5)[None], (3, 1, 1)) * 1e160
    with pytest.raises(ValueError, match=r"between the rows of Y_new and precisions overflow"):
        maha.transform(Y[:3] + 1.0, precision_factors=G)
    dm = lb.DiffusionMaps(2, n_neighbors=8, k_epsilon=4, random_state=0).fit(Y)
    with pytest.raises(ValueError, match=r"between the rows of Y_new overflow"):
        dm.transform(np.full((2, 5), 1e200))


def test_mahalanobis_transform_reranks_candidate_factor_times_more_candidates(monkeypatch):
    from latentbridge.diffusion import graph

    _, Y, C = _tanh_square(200, seed=3)
    dm = lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=8, k_epsilon=4, candidate_factor=2,
                          random_state=0).fit(Y, precisions=C)
    calls = []
    monkeypatch.setattr(graph, "kernels", lambda device: _KernelSpy(device, calls))
    dm.transform(Y[:5], C[:5])
    searched = [args[2] for name, _, args, _ in calls if name == "knn_sqeuclidean"]
    kept = [args[5] for name, _, args, _ in calls if name == "mahalanobis_rerank"]
    assert searched == [16] and kept == [8]  # 2 x 8 Euclidean candidates, the 8 nearest kept


def test_ridge_precisions_by_hand_and_a_constant_neighbourhood():
    # C_i = inv(cov_i + ridge trace(cov_i) I), and 0 for a neighbourhood without spread
    rng = np.random.default_rng(50)
    N = rng.standard_normal((4, 6, 3)) * [2.0, 1.0, 0.1]
    N[2] = 5.0  # constant
    ridge = 0.1
    got = lb.precisions_from_neighborhoods(N, ridge=ridge)
    for i in (0, 1, 3):
        cov = np.cov(N[i], rowvar=False)
        np.testing.assert_allclose(got[i], np.linalg.inv(cov + ridge * np.trace(cov) * np.eye(3)),
                                   rtol=1e-10)
    np.testing.assert_array_equal(got[2], 0.0)


def test_candidate_recall_warning_threshold_and_message(monkeypatch):
    from latentbridge.diffusion import maps

    _, Y, C = _tanh_square(100, seed=7)
    params = dict(metric="mahalanobis", n_neighbors=8, k_epsilon=4, candidate_factor=4, random_state=0)
    monkeypatch.setattr(maps, "neighbor_recall", lambda *args: 0.9)  # at the threshold: no warning
    assert lb.DiffusionMaps(2, **params).fit(Y, precisions=C).neighbor_recall_ == 0.9
    monkeypatch.setattr(maps, "neighbor_recall", lambda *args: np.nextafter(0.9, 0.0))
    with pytest.warns(CandidateRecallWarning) as record:
        lb.DiffusionMaps(2, **params).fit(Y, precisions=C)
    assert str(record[0].message) == (
        "only 90.0% of the Mahalanobis neighbours survive a wider candidate search: the metrics are "
        "too anisotropic for 4 x n_neighbors Euclidean candidates, which biases the spectrum. Raise "
        "candidate_factor.")


@pytest.mark.parametrize("params,sizes", [
    (dict(), (200, 8, 8, 2)),                                            # Euclidean: kc = k
    (dict(metric="mahalanobis", candidate_factor=3), (200, 8, 24, 2)),   # kc = candidate_factor k
    (dict(metric="mahalanobis", candidate_factor=30), (200, 8, 199, 2)),  # at most n - 1
    (dict(remove_harmonics=True), (200, 8, 8, 9)),                       # max(3 L + 3, L + 6)
    (dict(n_neighbors=None), (200, 199, 199, 2)),                        # all pairs
])
def test_fit_sizes_its_workspace_check_from_the_neighbour_lists(monkeypatch, params, sizes):
    from latentbridge.diffusion import maps

    _, Y, C = _tanh_square(200, seed=8)
    asked = []

    class Workspace:
        def diffusion_workspace_bytes(self, *args):
            asked.append(args)
            return _core.diffusion_workspace_bytes(*args)

    monkeypatch.setattr(maps, "kernels", lambda device: Workspace())
    params = {"n_neighbors": 8, "k_epsilon": 4, "random_state": 0, **params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lb.diffusion.DiffusionMapsWarning)
        lb.DiffusionMaps(2, **params).fit(Y, precisions=C if "metric" in params else None)
    assert asked == [sizes]
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "1")
    with pytest.raises(MemoryError, match=rf"^DiffusionMaps.fit k-NN lists and kernel graph \(n, n_neighbors\) = "
                                          rf"\({sizes[0]}, {sizes[1]}\) float64 needs"):
        lb.DiffusionMaps(2, **params).fit(Y, precisions=C if "metric" in params else None)


def test_each_random_state_seeds_the_eigensolver_from_the_whole_seed_range(monkeypatch):
    """random_state seeds the eigensolver's start vector: a spy on diffusion_spectrum records the
    seed of 40 fits (random_state 0 .. 39). They are distinct and spread over [0, 2**63 - 1):
    40 uniform draws there all fall below 2**60 with probability 8**-40, while a seed range of a
    few hundred values would repeat one (and start two random states from the same vector)."""
    from latentbridge.diffusion import maps

    seeds = []
    real = maps.diffusion_spectrum

    def spy(*args, seed, **kwargs):
        seeds.append(seed)
        return real(*args, seed=seed, **kwargs)

    monkeypatch.setattr(maps, "diffusion_spectrum", spy)
    Y = np.random.default_rng(12).standard_normal((24, 3))
    for state in range(40):
        lb.DiffusionMaps(1, n_neighbors=6, k_epsilon=3, random_state=state).fit(Y)
    assert len(seeds) == 40 and len(set(seeds)) == 40
    assert all(isinstance(s, int) and 0 <= s < 2**63 - 1 for s in seeds)
    assert max(seeds) >= 2**60


def test_two_points_closed_form():
    # K = [[1, e], [e, 1]], e = exp(-d2 / (2 eps)), eps = d2 (the one neighbour): T = K / (1 + e)
    # has eigenvalues 1 and (1 - e) / (1 + e); phi_1 = (1, -1) at unit RMS
    dm = lb.DiffusionMaps(1, n_neighbors=1, k_epsilon=1, random_state=0).fit([[0.0, 0.0], [1.0, 2.0]])
    e = np.exp(-0.5)
    assert dm.epsilon_ == 5.0
    np.testing.assert_allclose(dm.eigenvalues_, [(1 - e) / (1 + e)], rtol=1e-12)
    np.testing.assert_allclose(dm.embedding_, [[1.0], [-1.0]], rtol=1e-12)
    with pytest.raises(ValueError, match=r"^Y has 1 sample\(s\)"):
        lb.DiffusionMaps(1, n_neighbors=1, k_epsilon=1).fit([[0.0, 0.0]])


def test_fit_overflow_names_what_to_rescale_and_dense_fits_have_no_recall():
    Y = np.random.default_rng(51).standard_normal((20, 2))
    G = np.tile(np.eye(2)[None], (20, 1, 1))
    with pytest.raises(ValueError, match=r"^squared distances between the rows of Y overflow"):
        lb.DiffusionMaps(1, n_neighbors=4, k_epsilon=2).fit(Y * 1e200)
    with pytest.raises(ValueError, match=r"^squared distances between the rows of Y and precisions overflow"):
        lb.DiffusionMaps(1, metric="mahalanobis", n_neighbors=4, k_epsilon=2).fit(Y * 1e100,
                                                                                  precision_factors=G * 1e100)
    dense = lb.DiffusionMaps(1, metric="mahalanobis", n_neighbors=None, k_epsilon=2).fit(Y, precision_factors=G)
    assert dense.neighbor_recall_ is None  # no candidates to miss
    sparse = lb.DiffusionMaps(1, metric="mahalanobis", n_neighbors=4, k_epsilon=2).fit(Y, precision_factors=G)
    assert sparse.neighbor_recall_ == 1.0  # an isotropic metric: the Euclidean candidates are exact


def test_spectrum_helpers_by_hand():
    from latentbridge.diffusion.spectrum import _canonical_signs, n_candidate_eigenpairs, non_harmonic_columns

    assert [n_candidate_eigenpairs(L, True, 1000) for L in (1, 2, 3, 5)] == [7, 9, 12, 18]  # max(3L+3, L+6)
    assert n_candidate_eigenpairs(5, True, 10) == 9 and n_candidate_eigenpairs(5, False, 10) == 5
    # the L largest residuals, ties to the earlier column, returned in column order
    np.testing.assert_array_equal(non_harmonic_columns(np.array([1.0, 0.2, 0.9, 0.9, 0.1]), 2), [0, 2])
    np.testing.assert_array_equal(non_harmonic_columns(np.array([0.1, 0.5, 0.3]), 3), [0, 1, 2])
    V = np.array([[1.0, -3.0, 0.0, 2.0], [-2.0, 3.0, 0.0, -2.0], [0.5, 1.0, 0.0, 1.0]])
    # largest |entry| positive; on a tie the first such entry decides; a zero column stays
    expected = np.array([[-1.0, 3.0, 0.0, 2.0], [2.0, -3.0, 0.0, -2.0], [-0.5, -1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(_canonical_signs(V), expected)


def test_harmonic_residuals_against_weighted_least_squares_by_hand():
    from latentbridge.diffusion.spectrum import harmonic_residuals

    rng = np.random.default_rng(52)
    x = rng.uniform(-1, 1, 50)
    phi = np.c_[x, np.cos(np.pi * x), rng.standard_normal(50)]  # a direction, a harmonic, noise
    expected = [1.0]
    for k in (1, 2):
        X, y = phi[:, :k], phi[:, k]
        d2 = np.sum((X[:, None] - X[None]) ** 2, axis=-1)
        W = np.exp(-d2 / (np.median(d2[np.triu_indices(50, 1)]) / 3))
        np.fill_diagonal(W, 0.0)  # each point left out of its own fit
        A = np.c_[np.ones(50), X]
        pred = []
        for i in range(50):
            sw = np.sqrt(W[i])
            coef = np.linalg.lstsq(A * sw[:, None], y * sw, rcond=None)[0]
            pred.append(A[i] @ coef)
        expected.append(np.sqrt(np.sum((y - np.array(pred)) ** 2) / np.sum(y**2)))
    got = harmonic_residuals(phi, np.random.default_rng(0))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got[1] < 0.3 and got[2] > 0.7  # the harmonic is predicted from x, the noise is not
    # a subsample of s points: the same computation on those rows
    sub = harmonic_residuals(phi, np.random.default_rng(0), n_subsample=20)
    rows = np.sort(np.random.default_rng(0).choice(50, size=20, replace=False))
    np.testing.assert_allclose(sub, harmonic_residuals(phi[rows], np.random.default_rng(1)), rtol=1e-12)


def test_neighborhood_rcond_sweep_matches_the_pinv_cutoff_everywhere():
    # the cutoff between kept and dropped eigenvalues moves with rcond exactly as numpy's
    # pinv(hermitian=True) does, from rcond = 0 (every non-zero eigenvalue kept) up
    rng = np.random.default_rng(53)
    N = rng.standard_normal((5, 9, 4)) * [4.0, 1.5, 0.6, 0.2]
    cov = np.array([np.cov(x, rowvar=False) for x in N])
    for rcond in np.r_[0.0, np.geomspace(1e-3, 0.9, 40)]:
        expected = np.array([np.linalg.pinv(c, rcond=rcond, hermitian=True) for c in cov])
        got = lb.precisions_from_neighborhoods(N, rcond=rcond)
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10 * np.abs(expected).max())


def test_jacobian_rcond_sweep_matches_the_pinv_cutoff_everywhere():
    # pinv(J J^T) = pinv(J)^T pinv(J), with the singular values of J cut as numpy's pinv cuts them
    rng = np.random.default_rng(54)
    J = rng.standard_normal((5, 4, 3)) * [3.0, 0.8, 0.1]
    for rcond in np.geomspace(1e-3, 0.9, 40):
        P = np.linalg.pinv(J, rcond=rcond)
        expected = np.einsum("nia,nib->nab", P, P)
        np.testing.assert_allclose(lb.precisions_from_jacobians(J, rcond=rcond), expected,
                                   rtol=1e-8, atol=1e-10 * np.abs(expected).max())
        G = lb.precisions_from_jacobians(J, rcond=rcond, factors=True)
        np.testing.assert_allclose(np.einsum("nra,nrb->nab", G, G), expected,
                                   rtol=1e-8, atol=1e-10 * np.abs(expected).max())


def test_all_pairs_point_limit_is_inclusive(monkeypatch):
    from latentbridge.diffusion import maps

    monkeypatch.setattr(maps, "_DENSE_MAX_POINTS", 30)  # the rule at a size that fits a test
    Y = np.random.default_rng(55).standard_normal((31, 2))
    assert lb.DiffusionMaps(2, n_neighbors=None, k_epsilon=4).fit(Y[:30]).kernel_matrix_.nnz == 900
    with pytest.raises(ValueError, match=r"^n_neighbors=None \(all pairs\) needs O\(n\^2\) memory; Y has 31 points "
                                         r"\(limit 30\)\. Pass n_neighbors \(e\.g\. 32\) for a sparse kernel\.$"):
        lb.DiffusionMaps(2, n_neighbors=None, k_epsilon=4).fit(Y)
    assert lb.DiffusionMaps(2, n_neighbors=6, k_epsilon=4).fit(Y).embedding_.shape == (31, 2)


def test_neighbor_recall_by_brute_force():
    from latentbridge.diffusion.graph import nearest_neighbors, neighbor_recall

    rng = np.random.default_rng(56)
    n, k, cf = 40, 3, 2
    Y = rng.standard_normal((n, 2))
    G = rng.standard_normal((n, 1, 2)) * 3.0 + [[[1.0, 0.0]]]  # rank 1, strongly anisotropic
    D2e = np.sum((Y[:, None] - Y[None]) ** 2, axis=-1)
    diff = Y[:, None] - Y[None]
    D2m = np.sum(np.einsum("ira,ija->ijr", G, diff) ** 2, -1) + np.sum(np.einsum("jra,ija->ijr", G, diff) ** 2, -1)

    def maha_among_euclidean(i, n_candidates):
        order = [j for j in np.lexsort((np.arange(n), D2e[i])) if j != i][:n_candidates]
        return set(sorted(order, key=lambda j: (D2m[i, j], j))[:k])

    idx, _ = nearest_neighbors("cpu", Y, G, k, candidate_factor=cf)
    assert all(set(idx[i]) == maha_among_euclidean(i, cf * k) for i in range(n))
    # every point is sampled (256 > n); the wider search takes 4 times more candidates
    expected = np.mean([len(set(idx[i]) & maha_among_euclidean(i, 4 * cf * k)) / k for i in range(n)])
    assert neighbor_recall("cpu", Y, G, idx, cf, np.random.default_rng(0)) == pytest.approx(expected, rel=1e-12)
    assert expected < 0.95
    # 7 points: the 6 candidates are all the others already, nothing wider to search: 1.0
    idx7, _ = nearest_neighbors("cpu", Y[:7], G[:7], k, candidate_factor=cf)
    assert neighbor_recall("cpu", Y[:7], G[:7], idx7, cf, np.random.default_rng(0)) == 1.0


def test_neighbor_recall_when_points_miss_their_own_candidate_list():
    """Points 1e-170 apart on a line: every squared Euclidean distance underflows to 0, so the
    Euclidean candidates of point i are the lowest indices, and from i = 5 on the point is not among
    its own 5 (= big + 1) candidates (the points 0 .. 4): the farthest of them, point 4, is dropped
    instead. The metric G = 1e170 measures the positions t, placed so that the Mahalanobis nearest
    of 0 .. 3 often differs from that of the other four-point subsets of 0 .. 4. Oracle: brute
    force, as in test_neighbor_recall_by_brute_force."""
    from latentbridge.diffusion.graph import nearest_neighbors, neighbor_recall

    rng = np.random.default_rng(58)
    n, k, cf = 30, 1, 1  # kc = 1 candidate, the wider search 4
    t = np.r_[[0.0, 3.0, 20.0, -5.0, 6.0], rng.uniform(-8, 10, n - 5)]
    Y = (t * 1e-170)[:, None]
    G = np.full((n, 1, 1), 1e170)
    D2e = (Y[:, None, 0] - Y[None, :, 0]) ** 2
    assert np.all(D2e == 0)
    D2m = 2 * (1e170 * (Y[:, None, 0] - Y[None, :, 0])) ** 2

    def maha_among_euclidean(i, n_candidates):
        order = [j for j in np.lexsort((np.arange(n), D2e[i])) if j != i][:n_candidates]
        return set(sorted(order, key=lambda j: (D2m[i, j], j))[:k])

    idx, _ = nearest_neighbors("cpu", Y, G, k, candidate_factor=cf)
    assert all(set(idx[i]) == maha_among_euclidean(i, cf * k) for i in range(n))
    per_point = [len(set(idx[i]) & maha_among_euclidean(i, 4 * cf * k)) / k for i in range(n)]
    assert 0.0 < np.mean(per_point[5:]) < 1.0
    got = neighbor_recall("cpu", Y, G, idx, cf, np.random.default_rng(0))
    assert got == pytest.approx(np.mean(per_point), rel=1e-12)


@pytest.mark.parametrize("params", [{}, dict(factors=True), dict(ridge=0.1)])
def test_precisions_name_the_point_whose_precision_is_not_representable(params):
    rng = np.random.default_rng(57)
    N = rng.standard_normal((4, 5, 3))
    N[2] *= 1e-200  # its precision ~1e400
    J = rng.standard_normal((4, 3, 2))
    J[2] *= 1e-200
    with np.errstate(all="raise"):  # computed in float64 ranges only: no floating-point trap fires
        with pytest.raises(ValueError, match=r"^neighborhoods\[2\] is so small \(largest \|entry\| \d\.\d\de-200\) "
                                             r"that its precision overflows float64; rescale the activations\.$"):
            lb.precisions_from_neighborhoods(N, **params)
        if "ridge" not in params:
            with pytest.raises(ValueError, match=r"^jacobians\[2\] is so small"):
                lb.precisions_from_jacobians(J, **params)
        # a huge spread: its precision underflows to (nearly) 0 without a trap
        N[2] = rng.standard_normal((5, 3)) * 1e200
        assert np.abs(lb.precisions_from_neighborhoods(N, **params)[2]).max() < 1e-190  # ~0 or a factor ~1e-200
        if "ridge" not in params:
            J[2] = rng.standard_normal((3, 2)) * 1e200
            assert np.abs(lb.precisions_from_jacobians(J, **params)[2]).max() < 1e-190


def test_precision_checks_are_relative_to_each_points_scale_and_name_it():
    rng = np.random.default_rng(58)
    Y = rng.standard_normal((12, 2))
    C = np.tile(np.eye(2), (12, 1, 1))
    C[7] *= 1e6
    maha = lb.DiffusionMaps(1, metric="mahalanobis", n_neighbors=4, k_epsilon=2, random_state=0)
    tiny = C.copy()
    tiny[3] = 1e-6 * np.eye(2)
    tiny[3, 0, 1] += 1e-13  # asymmetry 1e-7 of this point's own scale (above 1e-8)
    with pytest.raises(ValueError, match=r"^precisions\[3\] is not symmetric"):
        maha.fit(Y, precisions=tiny)
    big = C.copy()
    big[7, 0, 1] += 1e-3  # 1e-9 of its scale 1e6: symmetric enough
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lb.diffusion.DiffusionMapsWarning)  # point 7 is far away
        maha.fit(Y, precisions=big)
    negative = C.copy()
    negative[4] = np.diag([1.0, -1e-3])
    with pytest.raises(ValueError, match=r"^precisions\[4\] has a negative eigenvalue \(-0\.001\)"):
        maha.fit(Y, precisions=negative)
    negative[4] = np.diag([1.0, -1e-9])  # within 1e-8 of the largest: rounding, accepted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lb.diffusion.DiffusionMapsWarning)
        maha.fit(Y, precisions=negative)
    zero = C.copy()
    zero[6] = 0.0
    with pytest.raises(ValueError, match=r"^precisions\[6\] is zero; every point needs a non-zero precision"):
        maha.fit(Y, precisions=zero)


def test_metric_argument_messages_in_full():
    Y = np.random.default_rng(62).standard_normal((12, 2))
    C = np.tile(np.eye(2), (12, 1, 1))
    dm = lb.DiffusionMaps(1, metric="mahalanobis", n_neighbors=4, k_epsilon=2)
    with pytest.raises(ValueError, match=r"^pass either precisions \(n, m, m\) or precision_factors \(n, r, m\), not "
                                         r"both: they describe the same metric\.$"):
        dm.fit(Y, precisions=C, precision_factors=C)
    with pytest.raises(ValueError, match=r"^metric='mahalanobis' needs precisions: one \(m, m\) precision matrix per "
                                         r"point, or precision_factors: one \(r, m\) factor G with precision G\^T G "
                                         r"per point \(see precisions_from_neighborhoods and "
                                         r"precisions_from_jacobians\)\.$"):
        dm.fit(Y)
    # 13 matrices of width 2 for 12 points: the count given is the 13 along axis 0
    with pytest.raises(ValueError, match=r"^precisions must have one matrix per point: expected 12 along axis 0, "
                                         r"got 13\.$"):
        dm.fit(Y, precisions=np.tile(np.eye(2), (13, 1, 1)))


def test_jacobian_precisions_of_a_constant_map_and_at_the_rcond_cut():
    """A zero Jacobian (the map is constant there) has the zero precision, pinv(0) = 0; a singular
    value exactly rcond times the largest is dropped, as numpy's pinv drops it (it keeps s > cut)."""
    J = np.zeros((2, 3, 2))
    J[1] = [[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]]  # singular values 2 and 1: 1 = 0.5 * 2
    np.testing.assert_array_equal(lb.precisions_from_jacobians(J)[0], np.zeros((3, 3)))
    np.testing.assert_array_equal(lb.precisions_from_jacobians(J, factors=True)[0], 0.0)
    for j in J:
        np.testing.assert_allclose(lb.precisions_from_jacobians(j[None], rcond=0.5)[0],
                                   np.linalg.pinv(j @ j.T, rcond=0.25), rtol=1e-15, atol=0.0)
    np.testing.assert_array_equal(lb.precisions_from_jacobians(J[1:], rcond=0.5)[0], np.diag([0.25, 0.0, 0.0]))


def test_float32_jacobians_are_computed_in_float64():
    # the float64 precisions of the float32 values: float32 arithmetic would be off by ~1e-7
    J = np.random.default_rng(63).standard_normal((6, 4, 3)).astype(np.float32)
    P = np.linalg.pinv(J.astype(np.float64))
    expected = np.einsum("nia,nib->nab", P, P)
    for factors in (False, True):
        got = lb.precisions_from_jacobians(J, factors=factors)
        assert got.dtype == np.float64
        np.testing.assert_allclose(_gram(got) if factors else got, expected, rtol=1e-12,
                                   atol=1e-13 * np.abs(expected).max())


def test_jacobian_factors_at_the_ends_of_float64_without_a_floating_point_trap():
    """Factors whose entries overflow float64 raise the ValueError that names the point, and
    factors with entries below the normal range come back, with no floating-point trap under
    np.errstate(all="raise") (no RuntimeWarning either: the suite turns warnings into errors)."""
    J = np.tile(np.eye(3, 2), (3, 1, 1))
    J[2] = [[1e-298, 0.0], [0.0, 1e-310], [0.0, 0.0]]  # a factor row 1 / 1e-310 > 1.8e308
    with np.errstate(all="raise"):
        with pytest.raises(ValueError, match=r"^jacobians\[2\] is so small \(largest \|entry\| 1e-298\) that its "
                                             r"precision overflows float64; rescale the activations\.$"):
            lb.precisions_from_jacobians(J, factors=True)
        Js = np.array([[1.0, 0.0], [1e-20, 0.0], [0.0, 1.0]])
        J[2] = 1e300 * Js  # factor entries 1e-300 and ~1e-320 (subnormal)
        G = lb.precisions_from_jacobians(J, factors=True)
    np.testing.assert_allclose(_gram(G[2:] * 1e300)[0], np.linalg.pinv(Js @ Js.T), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(_gram(G[:2]), np.tile(np.diag([1.0, 1.0, 0.0]), (2, 1, 1)), atol=1e-15)


def test_precision_symmetry_tolerance_is_inclusive():
    Y = np.random.default_rng(59).standard_normal((12, 2))
    C = np.tile(np.eye(2), (12, 1, 1))
    C[5, 0, 1] = 1e-8  # |C - C^T| = 1e-8 x its largest entry 1.0 exactly: accepted
    dm = lb.DiffusionMaps(1, metric="mahalanobis", n_neighbors=4, k_epsilon=2, random_state=0)
    assert dm.fit(Y, precisions=C).embedding_.shape == (12, 1)
    C[5, 0, 1] = 1.1e-8
    with pytest.raises(ValueError, match=r"^precisions\[5\] is not symmetric"):
        dm.fit(Y, precisions=C)


def test_precision_negative_eigenvalue_tolerance_is_inclusive():
    Y = np.random.default_rng(60).standard_normal((12, 2))
    C = np.tile(np.eye(2), (12, 1, 1))
    C[8] = np.diag([1.0, -1e-8])  # exactly -1e-8 x the largest eigenvalue: rounding, accepted
    dm = lb.DiffusionMaps(1, metric="mahalanobis", n_neighbors=4, k_epsilon=2, random_state=0)
    assert dm.fit(Y, precisions=C).embedding_.shape == (12, 1)
    C[8] = np.diag([1.0, -1.1e-8])
    with pytest.raises(ValueError, match=r"^precisions\[8\] has a negative eigenvalue"):
        dm.fit(Y, precisions=C)


def test_precision_sign_check_at_small_scales_and_exact_zeros():
    Y = np.random.default_rng(61).standard_normal((12, 2))
    C = np.tile(np.eye(2), (12, 1, 1))
    dm = lb.DiffusionMaps(1, metric="mahalanobis", n_neighbors=4, k_epsilon=2, random_state=0)
    C[2] = np.diag([1e-6, 0.0])  # positive semi-definite with an exact zero eigenvalue: accepted
    assert dm.fit(Y, precisions=C).embedding_.shape == (12, 1)
    C[2] = np.diag([1e-6, -1e-12])  # -1e-6 of this point's largest eigenvalue
    with pytest.raises(ValueError, match=r"^precisions\[2\] has a negative eigenvalue \(-1e-12\); precisions must "
                                         r"be positive semi-definite\.$"):
        dm.fit(Y, precisions=C)
    C[2, 0, 1] = 1.0
    with pytest.raises(ValueError, match=r"^precisions\[2\] is not symmetric; precisions must be symmetric positive "
                                         r"semi-definite \(use precisions_from_neighborhoods or "
                                         r"precisions_from_jacobians\)\.$"):
        dm.fit(Y, precisions=C)


def test_precision_eigenvalues_at_1e12_of_the_largest_are_dropped():
    # factors keep the eigenpairs above 1e-12 x the largest: diag(1, 1e-12) is the metric diag(1, 0)
    Y = np.random.default_rng(62).standard_normal((12, 2))
    C = np.tile(np.diag([1.0, 0.5]), (12, 1, 1))
    at = C.copy()
    at[3] = np.diag([1.0, 1e-12])
    dropped = C.copy()
    dropped[3] = np.diag([1.0, 0.0])
    params = dict(metric="mahalanobis", n_neighbors=4, k_epsilon=2, random_state=0)
    a = lb.DiffusionMaps(1, **params).fit(Y, precisions=at)
    b = lb.DiffusionMaps(1, **params).fit(Y, precisions=dropped)
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    above = C.copy()
    above[3] = np.diag([1.0, 1e-6])
    c = lb.DiffusionMaps(1, **params).fit(Y, precisions=above)
    assert not np.array_equal(c.kernel_matrix_.data, b.kernel_matrix_.data)


def test_precisions_of_lower_rank_than_the_others_keep_their_metric():
    # precisions of ranks 1 and 2 side by side: the fit equals the one on the exact factors
    rng = np.random.default_rng(63)
    Y = rng.standard_normal((14, 2))
    G = np.tile(np.diag([1.0, 0.7])[None], (14, 1, 1))
    G[[0, 5]] = [[1.0, 0.0], [0.0, 0.0]]  # rank 1: only the first coordinate counts there
    C = np.einsum("nra,nrb->nab", G, G)
    params = dict(metric="mahalanobis", n_neighbors=4, k_epsilon=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lb.diffusion.DiffusionMapsWarning)
        a = lb.DiffusionMaps(2, **params).fit(Y, precisions=C)
        b = lb.DiffusionMaps(2, **params).fit(Y, precision_factors=G)
    np.testing.assert_allclose(a.kernel_matrix_.toarray(), b.kernel_matrix_.toarray(), rtol=1e-10, atol=1e-14)


def test_nystrom_is_finite_under_trapping_floating_point_errors():
    # a tiny epsilon and a far query: the log-weights of the far neighbours overflow to -inf and
    # their weights underflow to 0, on purpose; only the nearest training point counts
    rng = np.random.default_rng(64)
    Y = rng.standard_normal((30, 2))
    with warnings.catch_warnings(), np.errstate(over="ignore"):  # (the fit is not under test here)
        warnings.simplefilter("ignore", lb.diffusion.DiffusionMapsWarning)
        dm = lb.DiffusionMaps(2, n_neighbors=6, k_epsilon=3, epsilon=1e-300, random_state=0).fit(Y)
    q = np.array([[1e9, 1e9]])
    nearest = np.argmin(np.sum((Y - q) ** 2, axis=1))
    with np.errstate(all="raise"):
        out = dm.transform(q)
    np.testing.assert_allclose(out, dm.embedding_[nearest:nearest + 1] / dm.eigenvalues_, rtol=1e-12)
    # a zero eigenvalue over a zero coordinate: 0 / 0 gives nan (and the NystromWarning), no trap
    dm.eigenvalues_ = np.array([dm.eigenvalues_[0], 0.0])
    dm.embedding_ = np.c_[dm.embedding_[:, 0], np.zeros(30)]
    with np.errstate(all="raise"), pytest.warns(NystromWarning):
        out = dm.transform(Y[:2])
    assert np.isnan(out[:, 1]).all() and np.isfinite(out[:, 0]).all()


class _ScriptedEigensolver:
    """Stands in for the kernels of a device: eigsh_largest returns a scripted result."""

    def __init__(self, vals, converged=True):
        self.vals, self.converged = np.asarray(vals, dtype=np.float64), converged
        self.EigshOptions = lambda **kw: kw

    def eigsh_largest(self, indptr, indices, data, n_eig, deflate, options):
        vecs = np.eye(4)[:, : len(self.vals)]
        info = {"converged": self.converged, "n_matvec": 17, "max_residual": 3.1e-3}
        return self.vals, vecs, info


def _spectrum_with(monkeypatch, vals, converged=True):
    from types import SimpleNamespace

    from latentbridge.diffusion import spectrum

    monkeypatch.setattr(spectrum, "kernels", lambda device: _ScriptedEigensolver(vals, converged))
    graph = SimpleNamespace(degree=np.ones(4), indptr=None, indices=None, data=None)
    return spectrum.diffusion_spectrum("cpu", graph, len(vals), tol=1e-8, seed=0)


def test_spectrum_warnings_state_the_solver_report_and_the_component_count(monkeypatch):
    """diffusion_spectrum's two warnings, by hand from a scripted eigensolver: the report of a solver
    that stopped early, and the number of components = the eigenvalues above 1 - 1e-9 plus the
    trivial one (deflated); a value exactly at 1 - 1e-9 is not counted, and alone warns nothing."""
    tol = 1e-9
    with pytest.warns(EigensolverWarning) as rec:
        _spectrum_with(monkeypatch, [0.5, 0.25], converged=False)
    assert [str(w.message) for w in rec] == [
        "the eigensolver stopped after 17 products with residual 3.10e-03 (tolerance 1e-08); the "
        "embedding may be inaccurate."]
    with pytest.warns(DisconnectedGraphWarning) as rec:
        _spectrum_with(monkeypatch, [1.0, 1.0 - tol / 2, 1.0 - tol, 0.5])
    assert [str(w.message) for w in rec] == [
        "the kernel graph is disconnected: 3 eigenvalues equal 1 (one per connected component). "
        "Raise n_neighbors or epsilon."]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vals, _, _ = _spectrum_with(monkeypatch, [1.0 - tol, 0.5])
    assert vals[0] == 1.0 - tol


def test_intrinsic_eigenvalues_clip_and_underflow():
    """lambda = clip(a, 0, 1)^(1 / (2 eps)) by hand: a tiny negative eigenvalue gives 0 (not NaN),
    a hair above 1 gives 1; an underflow to 0 is not an error even where numpy raises on one."""
    from latentbridge.diffusion.spectrum import intrinsic_eigenvalues

    got = intrinsic_eigenvalues(np.array([-1e-17, 0.5, 1.0 + 1e-15]), 0.3)
    np.testing.assert_array_equal(got, [0.0, 0.5 ** (1 / 0.6), 1.0])
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(intrinsic_eigenvalues(np.array([1e-3]), 1e-3), [0.0])


def test_non_harmonic_columns_ties_go_to_the_earlier_column_beyond_small_sorts():
    """40 residuals in two tied groups (beyond numpy's small-array insertion sort, where an unstable
    sort reorders ties): the 25 largest are all of the 0.9 group and the first 5 of the 0.5 group."""
    from latentbridge.diffusion.spectrum import non_harmonic_columns

    r = np.r_[np.full(20, 0.5), np.full(20, 0.9)]
    np.testing.assert_array_equal(non_harmonic_columns(r, 25), np.r_[np.arange(5), np.arange(20, 40)])


def test_harmonic_residuals_local_fits_carry_a_relative_ridge():
    """Each local fit is a ridge regression with lambda_i = 1e-10 tr(M_i) / (k + 1), M_i the
    weighted normal matrix of (1, Phi_{k-1}). A previous column of scale 3e-5 makes the slope's
    eigenvalue of M_i comparable to lambda_i, so the ridge shrinks the slope visibly: the second
    column, exactly linear in the first, gets a residual near 0.1 instead of 0. Oracle: each fit by
    hand as a least-squares problem with sqrt(lambda_i) I appended (the ridge's augmented form)."""
    from latentbridge.diffusion.spectrum import harmonic_residuals

    u = np.random.default_rng(59).uniform(-1, 1, 40)
    phi = np.c_[3e-5 * u, u]
    X, y = phi[:, :1], phi[:, 1]
    d2 = (X - X.T) ** 2
    W = np.exp(-d2 / (np.median(d2[np.triu_indices(40, 1)]) / 3))
    np.fill_diagonal(W, 0.0)
    A = np.c_[np.ones(40), X]
    pred = []
    for i in range(40):
        lam = 1e-10 * np.sum(W[i] @ (A * A)) / 2
        sw = np.sqrt(W[i])
        coef = np.linalg.lstsq(np.r_[A * sw[:, None], np.sqrt(lam) * np.eye(2)], np.r_[y * sw, 0.0, 0.0],
                               rcond=None)[0]
        pred.append(A[i] @ coef)
    expected = np.sqrt(np.sum((y - np.array(pred)) ** 2) / np.sum(y**2))
    assert 0.05 < expected < 0.2
    got = harmonic_residuals(phi, np.random.default_rng(0))
    assert got[0] == 1.0 and got[1] == pytest.approx(expected, rel=1e-8)


def test_harmonic_residuals_of_a_column_after_a_mostly_constant_one():
    """When more than half the sampled points share their previous coordinates, the median squared
    distance eps_r is 0: no kernel exists and the residual is 0 by definition; the next column is
    still computed (a function of the first two, so its residual is small, not the initial 1)."""
    from latentbridge.diffusion.spectrum import harmonic_residuals

    rng = np.random.default_rng(3)
    x = np.r_[np.zeros(30), np.linspace(1, 2, 10)]
    y = rng.uniform(-1, 1, 40)
    phi = np.c_[x, y, np.cos(np.pi * y)]
    got = harmonic_residuals(phi, np.random.default_rng(0))
    assert got[0] == 1.0 and got[1] == 0.0
    assert 0.0 < got[2] < 0.5


def test_auto_epsilon_zero_messages_by_hand():
    """epsilon='auto' of 0, by hand. Underflow: four points 1e-170 apart on a line, squared
    distances 0; the message quotes the median distance to the k_epsilon-th neighbour (second
    column of idx for k_epsilon = 2; per point 3, 2, 3, 5 x 1e-170 -> 3e-170). Duplicates: the
    median of those distances is 0 itself."""
    from latentbridge.diffusion.graph import auto_epsilon

    Y = np.array([[0.0], [1e-170], [3e-170], [6e-170]])
    idx = np.array([[1, 2], [0, 2], [1, 0], [2, 1]])  # first and second nearest of each point
    d2 = np.zeros((4, 2))
    msg = ("epsilon='auto' is 0: the squared distances between the rows of Y underflow float64 "
           "(median distance to the k_epsilon-th neighbour ~{}). Rescale Y (e.g. Y / Y.std()) or "
           "pass a positive epsilon.")
    with pytest.raises(ValueError) as e:
        auto_epsilon(Y, idx, d2, 2)
    assert str(e.value) == msg.format("3e-170")
    with pytest.raises(ValueError) as e:  # first neighbours: 1, 1, 2, 3 x 1e-170
        auto_epsilon(Y, idx, d2, 1)
    assert str(e.value) == msg.format("1.5e-170")
    Yd = np.array([[0.0], [0.0], [0.0], [1.0]])
    with pytest.raises(ValueError) as e:
        auto_epsilon(Yd, np.array([[1], [0], [0], [2]]), np.array([[0.0], [0.0], [0.0], [1.0]]), 1)
    assert str(e.value) == ("epsilon='auto' is 0: at least half of the points have k_epsilon "
                            "duplicates. Remove duplicates, raise k_epsilon or pass a positive epsilon.")


def test_graph_overflow_messages_in_full():
    """The two overflow errors of graph.py, whole: squared distances beyond float64, and an alpha
    whose p^-alpha underflows (p >= 1 for every point: its own kernel value is 1)."""
    from latentbridge.diffusion.graph import check_finite_distances, kernel_graph

    with pytest.raises(ValueError) as e:
        check_finite_distances(np.array([[1.0, np.inf]]), "Y")
    assert str(e.value) == ("squared distances between the rows of Y overflow float64 (|values| too "
                            "large, around 1e154 or more); rescale the data.")
    with pytest.raises(ValueError) as e:
        kernel_graph("cpu", np.array([[1], [0]]), np.array([[1.0], [1.0]]), 1.0, 1e6)
    assert str(e.value) == ("alpha=1000000.0 is too large for this data: the density normalisation "
                            "p^-alpha over- or underflows float64. Use alpha in [0, 1].")


def test_euclidean_neighbours_run_on_the_given_device(monkeypatch):
    """nearest_neighbors without metric factors asks the kernels of the device it was given (spy)."""
    from latentbridge.diffusion import graph

    seen = []

    class Spy:
        def knn_sqeuclidean(self, Y, queries, k, n_threads):
            return np.zeros((len(Y), k), np.int64), np.zeros((len(Y), k))

    monkeypatch.setattr(graph, "kernels", lambda device: seen.append(device) or Spy())
    graph.nearest_neighbors("cuda", np.zeros((5, 2)), None, 2, n_threads=3)
    assert seen == ["cuda"]


def test_neighbor_recall_wider_search_reaches_every_other_point():
    """n = 15, 6 candidates, the wider search capped at all n - 1 = 14 other points. Point 0's
    Mahalanobis-nearest point (same x: the rank-1 metric measures only x) is its Euclidean-farthest,
    so only a search over every other point finds it and the recall drops below 1. Oracle: brute
    force, as in test_neighbor_recall_by_brute_force."""
    from latentbridge.diffusion.graph import nearest_neighbors, neighbor_recall

    rng = np.random.default_rng(57)
    n, k, cf = 15, 3, 2
    Y = np.r_[[[0.0, 0.0]], np.c_[rng.uniform(0.5, 3.0, n - 2), rng.uniform(-1, 1, n - 2)], [[0.0, 100.0]]]
    G = np.tile([[[3.0, 0.0]]], (n, 1, 1))
    D2e = np.sum((Y[:, None] - Y[None]) ** 2, axis=-1)
    D2m = 2 * 9.0 * (Y[:, None, 0] - Y[None, :, 0]) ** 2

    def maha_among_euclidean(i, n_candidates):
        order = [j for j in np.lexsort((np.arange(n), D2e[i])) if j != i][:n_candidates]
        return set(sorted(order, key=lambda j: (D2m[i, j], j))[:k])

    idx, _ = nearest_neighbors("cpu", Y, G, k, candidate_factor=cf)
    assert n - 1 not in idx[0] and n - 1 in maha_among_euclidean(0, n - 1)
    expected = np.mean([len(set(idx[i]) & maha_among_euclidean(i, n - 1)) / k for i in range(n)])
    assert expected < 1.0
    assert neighbor_recall("cpu", Y, G, idx, cf, np.random.default_rng(0)) == pytest.approx(expected, rel=1e-12)
