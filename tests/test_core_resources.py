"""The C++ core's options and resource model (``_core.EigshOptions``, ``*_workspace_bytes``,
``lanczos_basis_size``, ``rips_simplex_bytes``), checked against closed forms and brute force."""

import itertools
import math

import numpy as np
import pytest

from latentbridge import _core


def test_eigsh_options_defaults_keywords_and_fields():
    o = _core.EigshOptions()
    assert (o.ncv, o.tol, o.max_matvec, o.seed, o.n_threads, o.dense_below, o.poly_degree, o.reorder) == (
        0, 1e-10, 0, 0, 1, 200, -1, True)
    o = _core.EigshOptions(tol=1e-6, seed=5, poly_degree=11, reorder=False)
    assert (o.tol, o.seed, o.poly_degree, o.reorder, o.ncv) == (1e-6, 5, 11, False, 0)
    o.ncv = 40
    assert o.ncv == 40 and "ncv=40" in repr(o)
    with pytest.raises(TypeError):
        _core.EigshOptions(0, 1e-6)  # keyword-only: no positional magic numbers
    with pytest.raises(TypeError):
        _core.EigshOptions(tolerance=1e-6)


def test_eigsh_options_are_read_by_the_solver():
    # a path graph's Laplacian-like tridiagonal matrix; closed-form eigenvalues 2 + 2 cos(pi j / (n + 1))
    n = 400
    indptr = np.zeros(n + 1, dtype=np.int64)
    rows = []
    for i in range(n):
        cols = [j for j in (i - 1, i, i + 1) if 0 <= j < n]
        rows.append(cols)
        indptr[i + 1] = indptr[i] + len(cols)
    indices = np.array([j for r in rows for j in r], dtype=np.int32)
    data = np.array([2.0 if i == j else 1.0 for i, r in enumerate(rows) for j in r])
    exact = np.sort(2 + 2 * np.cos(np.pi * np.arange(1, n + 1) / (n + 1)))[::-1][:3]
    vals, _, info = _core.eigsh_largest(indptr, indices, data, 3, None, _core.EigshOptions(tol=1e-9))
    np.testing.assert_allclose(vals, exact, atol=1e-7)
    assert info["converged"]
    # a budget of 10 products cannot converge: the option reaches the solver
    _, _, info = _core.eigsh_largest(indptr, indices, data, 3, None, _core.EigshOptions(max_matvec=10))
    assert not info["converged"] and info["n_matvec"] <= 10 + 40


@pytest.mark.parametrize("n,nev,nd", [(1000, 8, 1), (1000, 40, 1), (50, 8, 1), (10_000, 3, 0)])
def test_lanczos_basis_size_closed_form(n, nev, nd):
    assert _core.lanczos_basis_size(n, nev, nd) == min(max(2 * nev + 1, nev + 32), n - nd - 1)
    assert _core.lanczos_basis_size(n, nev, nd, _core.EigshOptions(ncv=20)) == min(20, n - nd - 1)


def test_workspace_bytes_closed_forms():
    n, k, kc, nev = 5000, 10, 30, 8
    ncv = max(2 * nev + 1, nev + 32)
    lanczos = 8 * n * (1 + ncv + 1 + 1)  # deflated vector, basis, spare column, work vector
    assert _core.eigsh_workspace_bytes(n, nev, 1) == lanczos
    assert _core.diffusion_workspace_bytes(n, k, kc, nev) == 88 * n * k + 16 * n * kc + lanczos
    assert _core.eigsh_workspace_bytes(150, 4, 1) == 24 * 150 * 150  # dense solver below 200
    assert _core.rips_workspace_bytes(100, 0) == 36 * 100**2
    assert _core.rips_workspace_bytes(100, 2) == 60 * 100**2
    # R-Cross: the homology engine's per-edge tables dominate the cohomology engine's 48 per edge
    n = 1000
    edges = n * (n - 1) // 2
    assert _core.r_cross_workspace_bytes(n) == 82 * edges + 4 * n * n + 8 * n * ((n + 63) // 64)
    assert _core.r_cross_workspace_bytes(n) > 48 * edges


def _cliques(D, thr, s):
    n = D.shape[0]
    adj = (D <= thr) & np.isfinite(D)
    return sum(all(adj[a, b] for a, b in itertools.combinations(c, 2))
               for c in itertools.combinations(range(n), s))


@pytest.mark.parametrize("thr", [None, 0.7, 1.2])
def test_rips_simplex_bytes_bounds_the_true_cliques(thr):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((16, 2))
    D = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1)).astype(np.float32)
    D[0, 5] = D[5, 0] = np.inf  # an absent edge
    t = _core.enclosing_radius(D) if thr is None else np.float32(thr)
    deg = ((D <= t) & np.isfinite(D)).sum(axis=1) - 1
    for maxdim in (2, 3):
        def bound(s):
            return sum(math.comb(int(d), s - 1) for d in deg) // s
        expected = 56 * max(bound(k + 1) + bound(k) for k in range(2, maxdim + 1))
        got = _core.rips_simplex_bytes(D, maxdim, thr)
        assert got == expected
        true = max(_cliques(D, t, k + 1) + _cliques(D, t, k) for k in range(2, maxdim + 1))
        assert got >= 56 * true
    assert _core.rips_simplex_bytes(D, 1, thr) == 0
