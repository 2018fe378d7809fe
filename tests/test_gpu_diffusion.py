"""The CUDA diffusion-map pipeline against the CPU one, stage by stage and end to end (skipped with
the probe's reason when no device is usable). The CPU path is itself tested against cKDTree, numpy,
ARPACK and the paper in test_diffusion.py, so agreement here ties the GPU to those oracles."""

import numpy as np
import pytest
import scipy.sparse as sp

import latentbridge as lb
from latentbridge import _backend, _core

from test_diffusion import _tanh_square

pytestmark = pytest.mark.gpu


def _cuda():
    return _backend.kernels("cuda")


def _subspace_cos(A, B):
    """Smallest cosine of the principal angles between the column spaces of A and B."""
    qa, _ = np.linalg.qr(A)
    qb, _ = np.linalg.qr(B)
    return np.linalg.svd(qa.T @ qb, compute_uv=False).min()


@pytest.mark.parametrize("d", [1, 2, 5, 20, 70])
@pytest.mark.parametrize("k", [1, 7, 96])
def test_knn_matches_cpu(d, k):
    rng = np.random.default_rng(d * 100 + k)
    n = 3000
    X = rng.standard_normal((n, d))
    X[10:20] = X[0]  # exact duplicates: ties at distance 0 are ordered by index
    Q = np.ascontiguousarray(np.vstack([rng.standard_normal((500, d)), X[:5]]))
    for q in (None, Q):
        ref_i, ref_d = _core.knn_sqeuclidean(X, q, k, 2)
        got_i, got_d = _cuda().knn_sqeuclidean(X, q, k, 1)
        # the device evaluates sum_t (x_t - q_t)^2 without FMA contraction in the CPU's order, so
        # distances and the (distance, index) order are bit-identical
        np.testing.assert_array_equal(got_d, ref_d)
        np.testing.assert_array_equal(got_i, ref_i)
    # self mode excludes the point itself, but not its duplicates
    idx, d2 = _cuda().knn_sqeuclidean(X, None, k, 1)
    assert not (idx == np.arange(n)[:, None]).any()
    if k >= 9:
        assert set(idx[0, :10]) == set(range(10, 20))
        np.testing.assert_array_equal(d2[0, :10], 0.0)


def test_knn_large_k_and_all_points():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((700, 3))
    for k in (699, 300):
        ref_i, ref_d = _core.knn_sqeuclidean(X, None, k, 1)
        got_i, got_d = _cuda().knn_sqeuclidean(X, None, k, 1)
        np.testing.assert_array_equal(got_i, ref_i)
        np.testing.assert_array_equal(got_d, ref_d)
    got_i, _ = _cuda().knn_sqeuclidean(X, np.ascontiguousarray(X[:50]), 700, 1)
    assert (np.sort(got_i, axis=1) == np.arange(700)).all()


def test_rerank_matches_cpu_and_is_symmetric():
    _, Y, C = _tanh_square(4000)
    from latentbridge.diffusion.precisions import factors_from_precisions

    G = factors_from_precisions(C, "precisions")
    cand, _ = _core.knn_sqeuclidean(Y, None, 96, 2)
    ref_i, ref_d = _core.mahalanobis_rerank(Y, G, None, None, cand, 32, 2)
    got_i, got_d = _cuda().mahalanobis_rerank(Y, G, None, None, cand, 32, 1)
    np.testing.assert_array_equal(got_d, ref_d)  # same FMA-free arithmetic as the CPU
    np.testing.assert_array_equal(got_i, ref_i)
    # d2(i, j) == d2(j, i) bit for bit wherever both directions were kept
    pairs = {(i, j): v for i, row in enumerate(got_i) for j, v in zip(row, got_d[i])}
    both = [(a, b) for (a, b) in pairs if (b, a) in pairs]
    assert both and all(pairs[a, b] == pairs[b, a] for a, b in both)
    # queries with their own precisions; invalid (-1) candidates are skipped
    Yq, Gq = np.ascontiguousarray(Y[:300] + 1e-3), np.ascontiguousarray(G[:300])
    cq, _ = _core.knn_sqeuclidean(Y, Yq, 40, 1)
    cq[:, -3:] = -1
    ref = _core.mahalanobis_rerank(Y, G, Yq, Gq, cq, 20, 1)
    got = _cuda().mahalanobis_rerank(Y, G, Yq, Gq, cq, 20, 1)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_graph_matches_cpu(alpha):
    rng = np.random.default_rng(2)
    Y = rng.uniform(size=(5000, 3))
    idx, d2 = _core.knn_sqeuclidean(Y, None, 16, 2)
    eps = _core.median_kth_distance(d2, 8)
    ref = _core.diffusion_graph(idx, d2, eps, alpha, 2)
    got = _cuda().diffusion_graph(idx, d2, eps, alpha, 1)
    np.testing.assert_array_equal(got["indptr"], ref["indptr"])
    np.testing.assert_array_equal(got["indices"], ref["indices"])
    for key in ("data", "p", "q"):
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-12)
    T = sp.csr_matrix((got["data"], got["indices"], got["indptr"]), shape=(5000, 5000))
    assert abs(T - T.T).max() == 0.0


@pytest.mark.parametrize("n,degree", [(3000, 1), (3000, 11), (30000, -1)])
def test_eigsh_matches_cpu(n, degree):
    rng = np.random.default_rng(3)
    Y = rng.uniform(size=(n, 2)) * [2.0, 1.0]
    idx, d2 = _core.knn_sqeuclidean(Y, None, 12, 2)
    g = _core.diffusion_graph(idx, d2, _core.median_kth_distance(d2, 6), 1.0, 2)
    z = np.sqrt(g["q"])
    z = (z / np.linalg.norm(z))[:, None]
    args = (g["indptr"], g["indices"], g["data"], 8, z, _core.EigshOptions(tol=1e-10, seed=7, poly_degree=degree))
    ref_v, ref_x, ref_info = _core.eigsh_largest(*args)
    got_v, got_x, info = _cuda().eigsh_largest(*args)
    assert info["converged"] and ref_info["converged"]
    np.testing.assert_allclose(got_v, ref_v, atol=1e-9)
    np.testing.assert_allclose(got_x.T @ got_x, np.eye(8), atol=1e-8)
    T = sp.csr_matrix((g["data"], g["indices"], g["indptr"]), shape=(n, n))
    assert np.linalg.norm(T @ got_x - got_x * got_v, axis=0).max() < 1e-8
    assert np.abs(got_x.T @ z).max() < 1e-8  # deflated
    assert _subspace_cos(got_x[:, :4], ref_x[:, :4]) > 1 - 1e-6


@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
def test_diffusion_maps_cuda_matches_cpu(metric):
    X, Y, C = _tanh_square(6000, seed=4)
    prec = C if metric == "mahalanobis" else None
    kw = dict(metric=metric, n_neighbors=32, random_state=0)
    cpu = lb.DiffusionMaps(6, device="cpu", **kw).fit(Y, precisions=prec)
    gpu = lb.DiffusionMaps(6, device="cuda", **kw).fit(Y, precisions=prec)
    assert gpu.device_ == "cuda"
    assert gpu.epsilon_ == pytest.approx(cpu.epsilon_, rel=1e-12)
    np.testing.assert_allclose(gpu.eigenvalues_, cpu.eigenvalues_, atol=1e-9)
    if metric == "mahalanobis":
        assert gpu.neighbor_recall_ == pytest.approx(cpu.neighbor_recall_)
    # compare coordinates up to rotation inside (near-)degenerate eigenspaces
    assert _subspace_cos(gpu.embedding_, cpu.embedding_) > 1 - 1e-6
    Yn = np.ascontiguousarray(Y[:200] * 0.999)
    Cn = C[:200] if metric == "mahalanobis" else None
    ours = gpu.transform(Yn, Cn)
    R, *_ = np.linalg.lstsq(cpu.embedding_, gpu.embedding_, rcond=None)
    np.testing.assert_allclose(ours, cpu.transform(Yn, Cn) @ R, atol=1e-5)
    np.testing.assert_allclose(gpu.inverse_transform(gpu.embedding_[:50]), Y[:50], atol=1e-12)


def test_cuda_bad_input_is_rejected_like_cpu():
    X = np.random.default_rng(0).standard_normal((10, 2))
    for mod in (_core, _cuda()):
        with pytest.raises(ValueError, match="k must be"):
            mod.knn_sqeuclidean(X, None, 10, 1)
        idx, d2 = _core.knn_sqeuclidean(X, None, 3, 1)
        with pytest.raises(ValueError, match="epsilon"):
            mod.diffusion_graph(idx, d2, -1.0, 1.0, 1)
        bad = idx.copy()
        bad[0, 0] = 99
        with pytest.raises(ValueError, match="out of range"):
            mod.diffusion_graph(bad, d2, 1.0, 1.0, 1)
