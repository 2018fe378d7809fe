"""The spectrum of a diffusion map: eigenpairs of the normalised kernel and diffusion coordinates.

Stages 3 and 4 of :meth:`DiffusionMaps.fit <latentbridge.diffusion.DiffusionMaps.fit>`:

* :func:`diffusion_spectrum`: the largest non-trivial eigenpairs ``(a_p, v_p)`` of the symmetric
  ``T = Q^-1/2 W Q^-1/2`` (thick-restart Lanczos in float64, the trivial eigenvector ``sqrt(q)``
  deflated) and the coordinates ``phi_p = Q^-1/2 v_p``, the right eigenvectors of the Markov
  matrix ``Q^-1 W``, each at unit root-mean-square with its largest-magnitude entry positive;
* :func:`harmonic_residuals` and :func:`non_harmonic_columns`: the local-linear-regression test
  of Dsilva, Talmon, Coifman and Kevrekidis (ACHA 44, 2018) that keeps the coordinates describing
  new directions rather than harmonics of earlier ones.
"""

from __future__ import annotations

import numpy as np

from .._backend import kernels
from .._warnings import warn_user
from .exceptions import DisconnectedGraphWarning, EigensolverWarning

__all__ = ["diffusion_spectrum", "harmonic_residuals", "non_harmonic_columns",
           "n_candidate_eigenpairs", "intrinsic_eigenvalues"]

#: Largest eigenvalue (after the trivial one) that still counts as "below 1" (connected graph).
_CONNECTED_TOL = 1e-9
#: Points used by the local-linear-regression harmonic test (a random subsample beyond this).
_LLR_SUBSAMPLE = 2000


def n_candidate_eigenpairs(n_components, remove_harmonics, n_points):
    """Eigenpairs to compute: ``n_components``, or ``max(3 L + 3, L + 6)`` candidates (at most
    ``n_points - 1``) for the harmonic test."""
    if not remove_harmonics:
        return n_components
    return min(max(3 * n_components + 3, n_components + 6), n_points - 1)


def diffusion_spectrum(device, graph, n_eig, *, tol, seed, n_threads=1):
    """The ``n_eig`` largest non-trivial eigenvalues of T (descending) and the diffusion
    coordinates ``phi`` (n, n_eig), with the eigensolver's report.

    Parameters
    ----------
    device : {"cpu", "cuda"}
    graph : KernelGraph
    n_eig : int
    tol : float
        Residual tolerance ``|T v - a v| <= tol`` (T's largest eigenvalue is 1).
    seed : int
        Seeds the start vector.
    n_threads : int

    Returns
    -------
    eigenvalues : ndarray of shape (n_eig,)
    phi : ndarray of shape (n, n_eig)
    info : dict
        ``converged``, ``n_matvec``, ``max_residual`` of the eigensolver.

    Warns
    -----
    EigensolverWarning
        The eigensolver stopped before ``tol``.
    DisconnectedGraphWarning
        A non-trivial eigenvalue equals 1: the graph has several connected components.
    """
    sq = np.sqrt(graph.degree)
    deflate = (sq / np.linalg.norm(sq))[:, None]
    ops = kernels(device)
    vals, vecs, info = ops.eigsh_largest(graph.indptr, graph.indices, graph.data, n_eig, deflate,
                                         ops.EigshOptions(tol=tol, seed=seed, n_threads=n_threads))
    if not info["converged"]:
        warn_user(
            f"the eigensolver stopped after {info['n_matvec']} products with residual "
            f"{info['max_residual']:.2e} (tolerance {tol:.0e}); the embedding may be "
            "inaccurate.", EigensolverWarning)
    if vals[0] > 1.0 - _CONNECTED_TOL:
        n_one = int(np.sum(vals > 1.0 - _CONNECTED_TOL)) + 1
        warn_user(
            f"the kernel graph is disconnected: {n_one} eigenvalues equal 1 (one per connected "
            "component). Raise n_neighbors or epsilon.", DisconnectedGraphWarning)
    phi = vecs / sq[:, None]
    phi /= np.sqrt(np.mean(phi * phi, axis=0))
    return vals, _canonical_signs(phi), info


def intrinsic_eigenvalues(eigenvalues, epsilon):
    """The paper's ``lambda_p = a_p^(1 / (2 epsilon))`` of the kernel eigenvalues ``a_p`` (clipped
    to [0, 1], T's spectrum: a truncated kernel can give tiny negative ones, and rounding puts the
    eigenvalues of a disconnected graph a hair above 1, which a small epsilon would blow up to
    infinity), independent of the bandwidth."""
    with np.errstate(under="ignore"):
        return np.clip(eigenvalues, 0.0, 1.0) ** (1.0 / (2.0 * float(epsilon)))


def _canonical_signs(V):
    """Flip columns so that the entry of largest magnitude is positive."""
    idx = np.argmax(np.abs(V), axis=0)
    signs = np.sign(V[idx, np.arange(V.shape[1])])
    signs[signs == 0] = 1.0
    return V * signs


def non_harmonic_columns(residuals, n_components):
    """Indices (ascending) of the ``n_components`` columns with the largest residuals."""
    return np.sort(np.argsort(-residuals, kind="stable")[:n_components])


def harmonic_residuals(phi, rng, n_subsample=_LLR_SUBSAMPLE):
    """Local-linear-regression residuals r_k of each column of phi given the previous columns.

    Dsilva et al. (2018): ``phi_k(j) ~ c_i + b_i^T Phi_{k-1}(j)`` with weights
    ``exp(-|Phi_{k-1}(i) - Phi_{k-1}(j)|^2 / eps_r)``, ``eps_r`` = median of squared distances / 3,
    point i left out of its own fit, each local fit a ridge regression with the relative ridge
    ``1e-10 tr(M_i) / (k + 1)`` (M_i its weighted normal matrix: defined when the neighbours are
    affinely dependent);
    ``r_k = sqrt(sum_i (phi_k(i) - c_i - b_i^T Phi_{k-1}(i))^2 / sum_i phi_k(i)^2)``, ``r_1 = 1``.
    Near 1: a new direction; near 0: a harmonic. Runs on a random subsample of ``n_subsample``
    points (O(s^2) per column, never O(n^2)).
    """
    n, L = phi.shape
    rows = np.sort(rng.choice(n, size=min(n, n_subsample), replace=False))
    P = phi[rows]
    s = P.shape[0]
    res = np.ones(L)
    for k in range(1, L):
        X = P[:, :k]
        y = P[:, k]
        sq = np.sum(X * X, axis=1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * X @ X.T, 0.0)
        eps_r = np.median(d2[np.triu_indices(s, 1)]) / 3.0
        if eps_r <= 0:
            res[k] = 0.0
            continue
        W = np.exp(-d2 / eps_r)
        np.fill_diagonal(W, 0.0)  # leave-one-out
        A = np.hstack([np.ones((s, 1)), X])  # (s, k+1)
        outer = (A[:, :, None] * A[:, None, :]).reshape(s, -1)
        M = (W @ outer).reshape(s, k + 1, k + 1)
        M += 1e-10 * np.trace(M, axis1=1, axis2=2)[:, None, None] / (k + 1) * np.eye(k + 1)
        rhs = W @ (A * y[:, None])
        coef = np.linalg.solve(M, rhs[:, :, None])[:, :, 0]
        pred = np.sum(A * coef, axis=1)
        res[k] = np.sqrt(np.sum((y - pred) ** 2) / np.sum(y**2))
    return res
