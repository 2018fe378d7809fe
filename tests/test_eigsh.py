"""The sparse Lanczos eigensolver of the core (``_core.eigsh_largest``) with few wanted eigenpairs.

The matrix is built here with scipy and numpy alone (a symmetric Gaussian kNN kernel, normalised as
``T = D^-1/2 W D^-1/2``), independent of the core's graph code; its top eigenpair is known in
closed form (eigenvalue 1, eigenvector ``sqrt(d) / ||sqrt(d)||``) and the rest comes from numpy's
dense ``eigvalsh``. Every reported convergence is checked against the true residual
``||T v - theta v||`` computed here: with nev = 1 a convergence test that skips the last wanted
Ritz pair has nothing left to test and would stop at once.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial import cKDTree

from latentbridge import _core

TOL = 1e-10


def normalised_kernel(n, seed, k=10):
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 2)) * [3.0, 1.0]
    dist, idx = cKDTree(X).query(X, k + 1)
    eps = np.median(dist[:, -1]) ** 2
    rows = np.repeat(np.arange(n), k)
    W = sp.csr_matrix((np.exp(-dist[:, 1:].ravel() ** 2 / eps), (rows, idx[:, 1:].ravel())),
                      shape=(n, n))
    W = W.maximum(W.T) + sp.identity(n)                     # symmetric, self loops
    d = np.asarray(W.sum(axis=1)).ravel()
    s = 1.0 / np.sqrt(d)
    T = sp.csr_matrix(sp.diags(s) @ W @ sp.diags(s))
    T = sp.csr_matrix((T + T.T) / 2)                        # exactly symmetric
    T.sort_indices()
    top = np.sqrt(d) / np.linalg.norm(np.sqrt(d))
    return T, top


def solve(T, nev, deflate=None, degree=1, reorder=False, seed=3):
    return _core.eigsh_largest(T.indptr.astype(np.int64), T.indices.astype(np.int32),
                               T.data.astype(np.float64), nev,
                               None if deflate is None else np.ascontiguousarray(deflate[:, None]),
                               _core.EigshOptions(tol=TOL, seed=seed, n_threads=2, dense_below=100,
                                                  poly_degree=degree, reorder=reorder))


@pytest.fixture(scope="module")
def problem():
    T, top = normalised_kernel(900, 0)
    ref = np.linalg.eigvalsh(T.toarray())[::-1]
    return T, top, ref


def check_pairs(T, vals, vecs, info, ref):
    assert info["converged"]
    resid = np.linalg.norm(T @ vecs - vecs * vals, axis=0)
    assert resid.max() <= 10 * TOL * max(1.0, np.abs(vals).max())
    # the reported residual is the one that decided convergence: it is not below the truth
    assert info["max_residual"] <= TOL * max(1.0, np.abs(vals).max())
    assert info["max_residual"] >= 0.01 * resid.max() or resid.max() < 1e-13
    np.testing.assert_allclose(vals, ref[: len(vals)], atol=1e-8)
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(vecs.shape[1]), atol=1e-8)


@pytest.mark.parametrize("degree, reorder", [(1, False), (1, True), (11, False)])
def test_single_eigenpair_deflated(problem, degree, reorder):
    """nev = 1 with the trivial eigenvector deflated: the second eigenvalue of T."""
    T, top, ref = problem
    vals, vecs, info = solve(T, 1, deflate=top, degree=degree, reorder=reorder)
    assert vals.shape == (1,) and vecs.shape == (T.shape[0], 1)
    check_pairs(T, vals, vecs, info, ref[1:])
    assert abs(vecs[:, 0] @ top) < 1e-8                       # orthogonal to the deflated vector
    assert info["n_matvec"] > 1


@pytest.mark.parametrize("degree", [1, 11])
def test_single_eigenpair_without_deflation_is_the_closed_form(problem, degree):
    T, top, ref = problem
    vals, vecs, info = solve(T, 1, degree=degree)
    check_pairs(T, vals, vecs, info, ref)
    assert vals[0] == pytest.approx(1.0, abs=1e-10)
    assert abs(abs(vecs[:, 0] @ top) - 1.0) < 1e-8


@pytest.mark.parametrize("nev", [2, 3, 5])
def test_few_eigenpairs(problem, nev):
    T, top, ref = problem
    vals, vecs, info = solve(T, nev, deflate=top, degree=11)
    check_pairs(T, vals, vecs, info, ref[1:])


def test_seed_changes_the_start_not_the_answer(problem):
    T, top, ref = problem
    a = solve(T, 1, deflate=top, seed=1)
    b = solve(T, 1, deflate=top, seed=99)
    assert a[0][0] == pytest.approx(b[0][0], abs=1e-10)
    assert abs(abs(a[1][:, 0] @ b[1][:, 0]) - 1.0) < 1e-8
