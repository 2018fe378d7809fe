"""Mahalanobis diffusion maps and transformations between networks.

Implements Algorithms 1 and 2 of Bertalan, Dietrich, Kevrekidis et al., "Transformations between deep
neural networks" (arXiv:2007.05646), with the fixes described in the package notes: pairs are first
restricted to Euclidean candidates and then re-ranked in the Mahalanobis metric, epsilon comes from
the Mahalanobis distance to the ``k_epsilon``-th neighbour, the eigensolve is float64 with the trivial
eigenvector deflated, and the map between networks uses a full orthogonal block wherever eigenvalues
are (near-)degenerate. The hot paths (k-NN, quadratic forms, kernel graph, eigensolver) run in C++.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.sparse as sp

from ._backend import kernels, resolve_device
from ._base import BaseEstimator, check_is_fitted
from ._validation import (
    as_float_matrix,
    check_allocation,
    check_choice,
    check_n_jobs,
    check_positive_int,
    check_random_state,
)

__all__ = [
    "DiffusionMaps",
    "NetworkTransformation",
    "precisions_from_neighborhoods",
    "precisions_from_jacobians",
    "DiffusionMapsWarning",
    "DisconnectedGraphWarning",
    "NystromWarning",
    "EigensolverWarning",
    "CandidateRecallWarning",
]

#: Mahalanobis neighbours are chosen among this many times ``n_neighbors`` Euclidean candidates.
CANDIDATE_FACTOR = 3
#: neighbor_recall_ compares with a search over this many times more candidates ...
RECALL_FACTOR = 4
#: ... on this many random points.
RECALL_SAMPLE = 256
#: Below this neighbor_recall_, fit warns (CandidateRecallWarning).
MIN_NEIGHBOR_RECALL = 0.9
#: Residual tolerance of the Lanczos eigensolver (relative to the largest eigenvalue, 1).
EIGSH_TOL = 1e-8
#: Largest eigenvalue (after the trivial one) that still counts as "below 1" (connected graph).
CONNECTED_TOL = 1e-9
#: Nystrom warns when an eigenvalue is below this (it divides by the eigenvalue).
NYSTROM_MIN_EIGENVALUE = 1e-10
#: Largest n accepted with n_neighbors=None (the all-pairs kernel needs O(n^2) memory).
DENSE_MAX_POINTS = 8000
#: Points used by the local-linear-regression harmonic test (a random subsample beyond this).
LLR_SUBSAMPLE = 2000


class DiffusionMapsWarning(UserWarning):
    """Base class of the warnings of :mod:`latentbridge.diffusion`."""


class DisconnectedGraphWarning(DiffusionMapsWarning):
    """The kernel graph is disconnected: several eigenvalues equal 1 (epsilon or k too small)."""


class NystromWarning(DiffusionMapsWarning):
    """An eigenvalue is (near) zero, so the Nystrom extension divides by (almost) zero."""


class CandidateRecallWarning(DiffusionMapsWarning):
    """Euclidean candidates miss many Mahalanobis neighbours (strongly anisotropic metrics)."""


class EigensolverWarning(DiffusionMapsWarning):
    """The eigensolver stopped before reaching its tolerance."""


def _core():
    from . import _core

    return _core


# ----------------------------------------------------------------------------------------------
# validation helpers specific to stacks of matrices (the 2-D checks are _validation's)


def _as_float_stack(A, name, *, n=None, shape=None):
    """(n, a, b) float64 C-contiguous array; checks through as_float_matrix on a 2-D view."""
    if isinstance(A, (str, bytes)):
        raise TypeError(f"{name} must be a numeric 3-D array; got a {type(A).__name__}.")
    arr = np.asarray(A)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be 3-D with shape {shape or '(n, a, b)'}; got shape {arr.shape}.")
    if n is not None and arr.shape[0] != n:
        raise ValueError(
            f"{name} must have one matrix per point: expected {n} along axis 0, got {arr.shape[0]}."
        )
    if isinstance(shape, tuple) and tuple(arr.shape[1:]) != tuple(shape[1:]):
        raise ValueError(f"{name} must have shape {shape}; got {arr.shape}.")
    flat = as_float_matrix(arr.reshape(arr.shape[0], int(np.prod(arr.shape[1:]))), name,
                           dtype=np.float64, min_cols=1)
    return flat.reshape(arr.shape)


def _eigh(A, n_threads=1):
    """numpy.linalg.eigh of a stack of symmetric matrices, threaded in C++."""
    return _core().batched_eigh(np.ascontiguousarray(A, dtype=np.float64), n_threads)


def _precision_factors(C, name, n_threads=1):
    """Factors G (n, r, m) with C_i = G_i^T G_i, r the largest rank; validates symmetry and PSD."""
    n, m, _ = C.shape
    scale = np.abs(C).max(axis=(1, 2))
    asym = np.abs(C - C.transpose(0, 2, 1)).max(axis=(1, 2))
    bad = np.flatnonzero(asym > 1e-8 * np.maximum(scale, np.finfo(float).tiny))
    if bad.size:
        raise ValueError(
            f"{name}[{bad[0]}] is not symmetric; precisions must be symmetric positive "
            "semi-definite (use precisions_from_neighborhoods or precisions_from_jacobians)."
        )
    w, V = _eigh(0.5 * C + 0.5 * C.transpose(0, 2, 1), n_threads)  # halves first: no overflow
    wmax = w[:, -1]
    bad = np.flatnonzero(w[:, 0] < -1e-8 * np.maximum(wmax, 0.0) - 1e-300)
    if bad.size:
        raise ValueError(
            f"{name}[{bad[0]}] has a negative eigenvalue ({w[bad[0], 0]:.3g}); precisions must be "
            "positive semi-definite."
        )
    keep = w > 1e-12 * np.maximum(wmax, 0.0)[:, None]
    keep &= wmax[:, None] > 0
    zero = np.flatnonzero(~keep.any(axis=1))
    if zero.size:
        raise ValueError(f"{name}[{zero[0]}] is zero; every point needs a non-zero precision.")
    r = int(keep.sum(axis=1).max())
    w = np.where(keep, w, 0.0)[:, -r:]
    G = np.sqrt(w)[:, :, None] * V[:, :, -r:].transpose(0, 2, 1)
    return np.ascontiguousarray(G)


def _pad_rank(G, r):
    if G.shape[1] == r:
        return G
    out = np.zeros((G.shape[0], r, G.shape[2]))
    out[:, : G.shape[1]] = G
    return out


def _check_factors(G, name, n, m):
    """Validated precision factors: float64 (n, r, m), finite, no point with an all-zero factor."""
    if isinstance(G, (str, bytes)):
        raise TypeError(f"{name} must be a numeric 3-D array; got a {type(G).__name__}.")
    shape = np.shape(G)
    if len(shape) != 3 or shape[0] != n or shape[2] != m or shape[1] < 1:
        raise ValueError(
            f"{name} must have shape (n, r, m) = ({n}, r, {m}) with r >= 1, one factor G_i with "
            f"precision G_i^T G_i per point; got shape {shape}."
        )
    G = _as_float_stack(G, name)
    zero = np.flatnonzero(~G.any(axis=(1, 2)))
    if zero.size:
        raise ValueError(f"{name}[{zero[0]}] is zero; every point needs a non-zero precision.")
    return G


def _canonical_signs(V):
    """Flip columns so that the entry of largest magnitude is positive."""
    idx = np.argmax(np.abs(V), axis=0)
    signs = np.sign(V[idx, np.arange(V.shape[1])])
    signs[signs == 0] = 1.0
    return V * signs


def _llr_residuals(phi, rng, n_subsample=LLR_SUBSAMPLE):
    """Local-linear-regression residuals r_k of each column of phi given the previous columns.

    Dsilva et al. (2018): phi_k(j) ~ c_i + b_i^T Phi_{k-1}(j) with weights
    exp(-|Phi_{k-1}(i) - Phi_{k-1}(j)|^2 / eps_r), eps_r = median of squared distances / 3, point i
    left out of its own fit; r_1 = 1. Runs on a random subsample (O(s^2) per column, never O(n^2)).
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


# ----------------------------------------------------------------------------------------------
# precisions


def precisions_from_neighborhoods(neighborhoods, *, rank=None, rcond=None, ridge=0.0, factors=False):
    """Local precision (inverse covariance) matrices from point neighbourhoods.

    Parameters
    ----------
    neighborhoods : array_like of shape (n, q, m)
        For each of n points, q samples of its neighbourhood in R^m (e.g. a network applied to a
        small burst of inputs ``x_i + sigma * xi``); q >= 2.
    rank : int, optional
        Truncated pseudo-inverse: keep the ``rank`` largest eigenvalues of each covariance (use the
        intrinsic dimension d). Mutually exclusive with ``ridge``.
    rcond : float, optional
        Truncated pseudo-inverse: drop eigenvalues below ``rcond`` times the largest (default
        ``max(q, m) * machine epsilon``, numpy's ``pinv`` rule). Combined with ``rank``, both apply.
    ridge : float, default 0.0
        Tikhonov regularisation: ``C_i = inv(cov_i + ridge * trace(cov_i) * I)`` (relative to the
        trace, so it does not depend on the scale of the activations). Penalises displacements
        normal to the local tangent space; 0.1 is a good value for noisy bursts. A constant
        neighbourhood (zero covariance) gets a zero precision, as with the pseudo-inverse.
    factors : bool, default False
        Return low-rank factors ``G`` with ``C_i = G_i^T G_i`` instead of the (m, m) matrices
        (truncated pseudo-inverse only: a ridge precision has full rank m). Memory O(n q m)
        instead of O(n m^2); pass them to ``DiffusionMaps.fit(Y, precision_factors=G)``.

    Returns
    -------
    precisions : ndarray of shape (n, m, m), or (n, r, m) with ``factors=True``
        Symmetric positive semi-definite float64 matrices; with ``factors=True`` float64 factors
        with r <= min(q - 1, m) (the largest rank kept over the points, zero rows padding the
        others).

    Raises
    ------
    ValueError
        Wrong shape, no points, q < 2, NaN/inf, negative ``ridge``, ``ridge`` combined with
        ``rank``/``rcond`` or with ``factors=True``, or a neighbourhood so small that its
        precision overflows float64 (the computation runs on samples divided by their largest
        deviation, so it never over- or underflows itself).

    Notes
    -----
    The covariance is the sample covariance (ddof=1), ``cov_i = D_i^T D_i / (q - 1)`` with
    ``D_i`` the centred samples. Its rank is at most ``min(q - 1, d)``, so a plain inverse does
    not exist; the paper uses the pseudo-inverse. With the thin SVD ``D_i = U S V^T`` the
    eigenvalues of ``cov_i`` are ``s_k^2 / (q - 1)`` and
    ``pinv(cov_i) = sum_k (q - 1) / s_k^2 v_k v_k^T`` over the kept k, so the factor rows are
    ``G_ik = sqrt(q - 1) / s_k v_k^T``; no (m, m) matrix is formed on this path.
    """
    N = _as_float_stack(neighborhoods, "neighborhoods", shape="(n, q, m)")
    n, q, m = N.shape
    if q < 2:
        raise ValueError(f"neighborhoods needs at least 2 samples per point (axis 1); got {q}.")
    if isinstance(ridge, bool) or not isinstance(ridge, numbers.Real) or not np.isfinite(ridge) or ridge < 0:
        raise ValueError(f"ridge must be a non-negative number; got {ridge!r}.")
    if ridge > 0 and (rank is not None or rcond is not None):
        raise ValueError("use either ridge (Tikhonov) or rank/rcond (truncated pseudo-inverse), not both.")
    factors = _check_flag(factors, "factors")
    if ridge > 0 and factors:
        raise ValueError(
            "factors=True needs a truncated pseudo-inverse (rank and/or rcond), not ridge: a ridge "
            "precision has full rank m, so it has no low-rank factor. Drop ridge, or pass "
            "factors=False for the (n, m, m) precisions.")
    if rank is not None:
        rank = check_positive_int(rank, "rank", maximum=m)
    rcond = _check_rcond(rcond)
    D = N - N.mean(axis=1, keepdims=True)
    # work with D / s (s = max |D| per point) so that nothing over- or underflows; the precision
    # of D is that of D / s divided by s^2
    s = np.abs(D).max(axis=(1, 2))
    s = np.where(s > 0, s, 1.0)
    D /= s[:, None, None]
    if ridge > 0:
        cov = np.einsum("nqa,nqb->nab", D, D) / (q - 1)
        tr = np.trace(cov, axis1=1, axis2=2)
        # a constant neighbourhood has no scale to regularise with: its precision is 0 (as pinv)
        reg = cov + (ridge * np.where(tr > 0, tr, 1.0))[:, None, None] * np.eye(m)
        w, V = _eigh(reg)
        inv_w = np.where(tr[:, None] > 0, 1.0 / w, 0.0)
        C = np.einsum("nak,nk,nbk->nab", V, inv_w, V)
        return _unscale_precisions(C, s, "neighborhoods")
    _, sv, Vt = np.linalg.svd(D, full_matrices=False)  # sv descending, (n, min(q, m))
    tol = (max(q, m) * np.finfo(np.float64).eps) if rcond is None else rcond
    keep = sv**2 > tol * sv[:, :1] ** 2  # eigenvalues of cov above tol times the largest
    if rank is not None:
        keep[:, rank:] = False
    G = _kept_factors(np.sqrt(q - 1.0) / np.where(keep, sv, 1.0), Vt, keep)
    return _finish_factors(G, s, "neighborhoods", factors)


def precisions_from_jacobians(jacobians, *, rcond=None, factors=False):
    """Local precision matrices ``C_i = pinv(J_i J_i^T)`` from Jacobians of the observation map.

    Parameters
    ----------
    jacobians : array_like of shape (n, m, d)
        ``J_i = dy/dx`` at each point: the forward Jacobian of the map from the d intrinsic inputs
        to the m observed activations (m outputs by d inputs). The covariance of an isotropic input
        burst of scale sigma is ``sigma^2 J J^T``, so ``C_i`` is its pseudo-inverse in units of the
        burst (the paper's "J^T J" is the same object when J is the Jacobian of the inverse map).
    rcond : float, optional
        Singular values of J below ``rcond`` times the largest are treated as zero (default
        ``max(m, d) * machine epsilon``).
    factors : bool, default False
        Return factors ``G`` with ``C_i = G_i^T G_i`` (shape (n, r, m), r <= min(m, d)) instead of
        the (m, m) matrices: memory O(n d m) instead of O(n m^2), for wide layers. Pass them to
        ``DiffusionMaps.fit(Y, precision_factors=G)``.

    Returns
    -------
    precisions : ndarray of shape (n, m, m), or (n, r, m) with ``factors=True``
        Symmetric positive semi-definite, rank <= d; with ``factors=True`` float64 factors, r the
        largest rank kept over the points (zero rows pad the others).

    Raises
    ------
    ValueError
        Wrong shape, no points, NaN/inf, an invalid ``rcond``, or a Jacobian so small that its
        precision overflows float64. The computation runs on ``J_i / max|J_i|`` (any scale that
        does not overflow the result works).

    Notes
    -----
    With the thin SVD ``J_i = U S V^T``, ``pinv(J_i J_i^T) = U S^-2 U^T``, so the factor rows are
    ``G_ik = u_k^T / s_k`` over the kept singular values; no (m, m) matrix is formed on this path.
    """
    J = _as_float_stack(jacobians, "jacobians", shape="(n, m, d)")
    n, m, d = J.shape
    rcond = _check_rcond(rcond)
    factors = _check_flag(factors, "factors")
    scale = np.abs(J).max(axis=(1, 2))
    scale = np.where(scale > 0, scale, 1.0)
    U, sv, _ = np.linalg.svd(J / scale[:, None, None], full_matrices=False)
    tol = (max(m, d) * np.finfo(np.float64).eps) if rcond is None else rcond
    keep = sv > tol * sv[:, :1]
    G = _kept_factors(1.0 / np.where(keep, sv, 1.0), U.transpose(0, 2, 1), keep)
    return _finish_factors(G, scale, "jacobians", factors)


def _check_rcond(rcond):
    if rcond is not None and (isinstance(rcond, bool) or not isinstance(rcond, numbers.Real)
                              or not 0 <= rcond < 1):
        raise ValueError(f"rcond must be a number in [0, 1); got {rcond!r}.")
    return rcond


def _check_flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}.")
    return bool(value)


def _kept_factors(weights, rows, keep):
    """Factor rows ``weights[k] * rows[k]`` for the kept k (a prefix of each point's rows), cut
    to the largest kept count r >= 1 over the points; zero rows elsewhere. rows: (n, K, m)."""
    r = max(1, int(keep.sum(axis=1).max()))
    w = np.where(keep, weights, 0.0)[:, :r]
    return np.ascontiguousarray(w[:, :, None] * rows[:, :r, :])


def _finish_factors(G, s, name, factors):
    """From factors of the precisions of the rescaled samples (samples / s): the factors
    ``G / s`` (``factors=True``) or the precisions ``G^T G / s^2``; ValueError when they are not
    representable in float64."""
    if not factors:
        return _unscale_precisions(np.einsum("nra,nrb->nab", G, G), s, name)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        G /= s[:, None, None]  # G is the caller's fresh array
        # the largest entry of a PSD matrix is on its diagonal: C_aa = sum_r G_ra^2
        diag_max = np.einsum("nra,nra->na", G, G).max(axis=1)
    _raise_unrepresentable(np.isfinite(diag_max), s, name)
    return G


def _unscale_precisions(C, s, name):
    """C / s^2 per point, symmetrised; ValueError when the result is not representable."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        C = C / s[:, None, None] / s[:, None, None]
        C = 0.5 * C + 0.5 * C.transpose(0, 2, 1)
    _raise_unrepresentable(np.isfinite(C).all(axis=(1, 2)), s, name)
    return C


def _raise_unrepresentable(ok, s, name):
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        raise ValueError(
            f"{name}[{bad}] is so small (largest |entry| {s[bad]:.3g}) that its precision overflows "
            "float64; rescale the activations.")


# ----------------------------------------------------------------------------------------------
# diffusion maps


class DiffusionMaps(BaseEstimator):
    """Diffusion maps with a Euclidean or per-point Mahalanobis kernel (the paper's Algorithm 1).

    Parameters
    ----------
    n_components : int, default 10
        Number of non-trivial eigenpairs kept (the constant eigenvector is excluded).
    metric : {"euclidean", "mahalanobis"}, default "euclidean"
        ``"mahalanobis"`` uses ``d2_ij = (y_i - y_j)^T (C_i + C_j) (y_i - y_j)`` with the precision
        matrices passed to :meth:`fit` (datafold and Singer-Coifman use ``0.5 (C_i + C_j)``; the
        factor is absorbed by ``epsilon="auto"``).
    epsilon : "auto" or float, default "auto"
        Kernel ``exp(-d2 / (2 epsilon))``. ``"auto"``: the median over the points of ``d2`` to the
        ``k_epsilon``-th nearest neighbour (in the chosen metric, the point itself excluded).
    k_epsilon : int, default 10
        Neighbour rank used by ``epsilon="auto"``; at most ``n_neighbors``.
    n_neighbors : int or None, default 32
        Neighbours per point in the sparse kernel (the graph is the symmetric union of the k-NN
        lists). Mahalanobis neighbours are chosen among ``CANDIDATE_FACTOR * n_neighbors``
        Euclidean candidates, which keeps far-apart points that only look close through a
        rank-deficient metric out of the graph. ``None`` uses all pairs: O(n^2) memory, for small n
        only (and with rank-deficient Mahalanobis metrics prone to spurious shortcuts).
    alpha : float, default 1.0
        Density normalisation ``W = P^-alpha K P^-alpha`` (1: Laplace-Beltrami, 0: graph Laplacian).
    remove_harmonics : bool, default False
        Compute ``max(3 n_components + 3, n_components + 6)`` candidate eigenvectors, score them by local linear
        regression (Dsilva et al. 2018, on a subsample of at most ``LLR_SUBSAMPLE`` points) and keep
        the ``n_components`` with the largest residuals (new directions, not harmonics), in
        eigenvalue order.
    device : {"cpu", "auto", "cuda"}, default "cpu"
        Where the k-NN search, the Mahalanobis re-ranking, the kernel graph and the eigensolver
        run (``"auto"``: a CUDA device when one is usable). The CUDA path computes the same
        quantities (float64 throughout) with the same Lanczos driver; results agree with the CPU
        path to rounding, up to the usual sign/rotation freedom inside degenerate eigenspaces.
        The default stays ``"cpu"`` until the CUDA path has been validated on hardware (see
        the README).
    n_jobs : int, optional
        CPU threads (None: 1, -1: all CPUs).
    random_state : int, Generator or None
        Seeds the eigensolver's start vector and the LLR subsample.

    Attributes
    ----------
    epsilon_ : float
        Kernel bandwidth used.
    eigenvalues_ : ndarray of shape (n_components,)
        Largest non-trivial eigenvalues ``a_1 >= a_2 >= ...`` of the normalised kernel
        ``T = Q^-1/2 W Q^-1/2`` (a_0 = 1 excluded). ``-log(a_p) / (2 epsilon_)`` is independent of
        epsilon to first order (the eigenvalues of the Laplace-Beltrami operator up to a constant).
    embedding_ : ndarray of shape (n, n_components)
        Diffusion coordinates ``phi_p = Q^-1/2 v_p`` (right eigenvectors of the Markov matrix
        ``Q^-1 W``), each scaled to unit root-mean-square and signed so that its entry of largest
        magnitude is positive. Within a (near-)degenerate eigenspace the basis is arbitrary.
    residuals_ : ndarray
        LLR residuals of the candidate eigenvectors (only with ``remove_harmonics``).
    selected_ : ndarray of int
        0-based indices of the kept eigenvectors among the non-trivial ones.
    neighbor_recall_ : float or None
        Mahalanobis only (sparse): the fraction of the kept neighbours of a random sample of
        points that a search over ``RECALL_FACTOR`` times more Euclidean candidates keeps too.
        Values well below 1 mean the metric is so anisotropic that the Euclidean candidates
        truncate the Mahalanobis neighbourhoods (raise ``CANDIDATE_FACTOR``).
    kernel_matrix_ : scipy.sparse.csr_matrix of shape (n, n)
        The symmetric normalised kernel T.
    n_features_in_ : int

    Warns
    -----
    DisconnectedGraphWarning
        Several eigenvalues equal 1 (the graph falls apart: raise n_neighbors or epsilon).
    CandidateRecallWarning
        The Euclidean candidates miss Mahalanobis neighbours (see ``neighbor_recall_``).
    EigensolverWarning
        The eigensolver stopped before its tolerance.

    Notes
    -----
    Memory is O(n k) for the sparse kernel. The eigensolver is a thick-restart Lanczos method in
    float64 with the trivial eigenvector ``sqrt(q)`` deflated; inputs are converted to float64 once.

    References
    ----------
    .. [1] R. R. Coifman and S. Lafon, "Diffusion maps", ACHA 21 (2006).
    .. [2] T. Bertalan, F. Dietrich, I. G. Kevrekidis et al., "Transformations between deep neural
       networks", arXiv:2007.05646.
    .. [3] C. J. Dsilva, R. Talmon, R. R. Coifman, I. G. Kevrekidis, "Parsimonious representation of
       nonlinear dynamical systems through manifold learning", ACHA 44 (2018).
    """

    def __init__(self, n_components=10, *, metric="euclidean", epsilon="auto", k_epsilon=10,
                 n_neighbors=32, alpha=1.0, remove_harmonics=False, device="cpu", n_jobs=None,
                 random_state=None):
        self.n_components = n_components
        self.metric = metric
        self.epsilon = epsilon
        self.k_epsilon = k_epsilon
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.remove_harmonics = remove_harmonics
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- parameter checks ----------------------------------------------------------------------

    def _check_params(self):
        check_positive_int(self.n_components, "n_components")
        check_choice(self.metric, "metric", ("euclidean", "mahalanobis"))
        if isinstance(self.epsilon, str):
            check_choice(self.epsilon, "epsilon", ("auto",))
        elif (isinstance(self.epsilon, bool) or not isinstance(self.epsilon, numbers.Real)
              or not np.isfinite(self.epsilon) or self.epsilon <= 0):
            raise ValueError(f"epsilon must be 'auto' or a positive number; got {self.epsilon!r}.")
        check_positive_int(self.k_epsilon, "k_epsilon")
        if self.n_neighbors is not None:
            check_positive_int(self.n_neighbors, "n_neighbors")
            if self.k_epsilon > self.n_neighbors:
                raise ValueError(
                    f"k_epsilon ({self.k_epsilon}) must not exceed n_neighbors "
                    f"({self.n_neighbors}); lower k_epsilon or raise n_neighbors."
                )
        if (isinstance(self.alpha, bool) or not isinstance(self.alpha, numbers.Real)
                or not np.isfinite(self.alpha) or self.alpha < 0):
            raise ValueError(f"alpha must be a non-negative number (usually 0, 0.5 or 1); got {self.alpha!r}.")
        if not isinstance(self.remove_harmonics, (bool, np.bool_)):
            raise TypeError(f"remove_harmonics must be True or False; got {self.remove_harmonics!r}.")
        threads = check_n_jobs(self.n_jobs)
        return threads, resolve_device(self.device)

    def _precisions(self, precisions, precision_factors, Y, n_threads=1):
        """Factors G (n, r, m) of the per-point precisions (None for the Euclidean metric), from
        exactly one of ``precisions`` (n, m, m) and ``precision_factors`` (n, r, m)."""
        name, fname = "precisions", "precision_factors"
        given = [a for a, v in ((name, precisions), (fname, precision_factors)) if v is not None]
        if self.metric == "euclidean":
            if given:
                raise ValueError(
                    f"{given[0]} are only used with metric='mahalanobis'; got metric='euclidean'. "
                    f"Pass metric='mahalanobis' or drop {given[0]}."
                )
            return None
        if len(given) == 2:
            raise ValueError(
                f"pass either {name} (n, m, m) or {fname} (n, r, m), not both: they describe the "
                "same metric."
            )
        if not given:
            raise ValueError(
                f"metric='mahalanobis' needs {name}: one (m, m) precision matrix per point, or "
                f"{fname}: one (r, m) factor G with precision G^T G per point (see "
                "precisions_from_neighborhoods and precisions_from_jacobians)."
            )
        n, m = Y.shape
        if precisions is not None:
            C = _as_float_stack(precisions, name, n=n, shape=(n, m, m))
            return _precision_factors(C, name, n_threads)
        return _check_factors(precision_factors, fname, n, m)

    # -- fit -----------------------------------------------------------------------------------

    def fit(self, Y, precisions=None, *, precision_factors=None):
        """Compute the diffusion coordinates of the rows of ``Y``.

        Parameters
        ----------
        Y : array_like of shape (n, m)
            Points (e.g. activations of m neurons for n inputs).
        precisions : array_like of shape (n, m, m), optional
            Per-point precision matrices; with ``metric="mahalanobis"`` this or
            ``precision_factors`` is required; rejected otherwise.
        precision_factors : array_like of shape (n, r, m), optional
            The precisions as factors, ``C_i = G_i^T G_i`` (``factors=True`` of
            :func:`precisions_from_jacobians` / :func:`precisions_from_neighborhoods`): the same
            metric in O(n r m) memory, for wide layers where n (m, m) matrices do not fit. Exactly
            one of ``precisions`` and ``precision_factors``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad parameters, NaN/inf, mis-shaped or missing precisions, too few points for the
            requested neighbours or components, an ``epsilon="auto"`` of zero (duplicates, or
            squared distances that underflow float64), squared distances that overflow float64,
            or an ``alpha`` so large that the density normalisation over/underflows.
        MemoryError
            When the k-NN lists and kernel graph (about ``100 n k`` bytes) exceed
            :func:`latentbridge._validation.available_memory`.
        """
        threads, device = self._check_params()
        Y = as_float_matrix(Y, "Y", dtype=np.float64, min_rows=2)
        n, m = Y.shape
        G = self._precisions(precisions, precision_factors, Y, threads)
        if self.n_neighbors is None and n > DENSE_MAX_POINTS:
            raise ValueError(
                f"n_neighbors=None (all pairs) needs O(n^2) memory; Y has {n} points (limit "
                f"{DENSE_MAX_POINTS}). Pass n_neighbors (e.g. 32) for a sparse kernel."
            )
        k = n - 1 if self.n_neighbors is None else self.n_neighbors
        if k > n - 1:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} needs more than {self.n_neighbors} points; Y has "
                f"{n}. Lower n_neighbors or pass n_neighbors=None (all pairs)."
            )
        if self.k_epsilon > k:
            raise ValueError(f"k_epsilon={self.k_epsilon} needs more than {self.k_epsilon} points; Y has {n}.")
        rng = check_random_state(self.random_state)
        n_eig = self.n_components
        if self.remove_harmonics:
            n_eig = max(3 * self.n_components + 3, self.n_components + 6)
            n_eig = min(n_eig, n - 1)
        if n_eig > n - 1 or self.n_components > n - 1:
            raise ValueError(
                f"n_components={self.n_components} needs at least {self.n_components + 2} points; "
                f"Y has {n}."
            )
        ncv = max(2 * n_eig + 1, n_eig + 32)
        kc = k if G is None else min(n - 1, CANDIDATE_FACTOR * k)
        check_allocation(
            n * k * (16 + 16 + 32 + 24) + n * kc * 16 + n * (ncv + 2) * 8 + (n * n * 24 if n <= 200 else 0),
            f"DiffusionMaps.fit k-NN lists and kernel graph (n, n_neighbors) = ({n}, {k}) float64")
        core, dev = _core(), kernels(device)
        idx, d2 = self._neighbors(dev, device, Y, G, None, None, k, threads)
        _check_finite_distances(d2, "Y" if G is None else "Y and precisions")
        if self.epsilon == "auto":
            eps = float(core.median_kth_distance(d2, self.k_epsilon))
            if not eps > 0:
                far = np.abs(Y[idx[:, self.k_epsilon - 1]] - Y).max(axis=1)
                if np.median(far) > 0:
                    raise ValueError(
                        "epsilon='auto' is 0: the squared distances between the rows of Y underflow "
                        f"float64 (median distance to the k_epsilon-th neighbour ~{np.median(far):.3g}). "
                        "Rescale Y (e.g. Y / Y.std()) or pass a positive epsilon.")
                raise ValueError(
                    "epsilon='auto' is 0: at least half of the points have k_epsilon duplicates. "
                    "Remove duplicates, raise k_epsilon or pass a positive epsilon."
                )
        else:
            eps = float(self.epsilon)
        self.neighbor_recall_ = None
        if G is not None and self.n_neighbors is not None:
            self.neighbor_recall_ = self._neighbor_recall(dev, Y, G, idx, k, rng, threads)
            if self.neighbor_recall_ < MIN_NEIGHBOR_RECALL:
                warnings.warn(
                    f"only {self.neighbor_recall_:.1%} of the Mahalanobis neighbours survive a "
                    f"{RECALL_FACTOR}x wider candidate search: the metrics are too anisotropic for "
                    f"{CANDIDATE_FACTOR} x n_neighbors Euclidean candidates, which biases the "
                    "spectrum. Raise latentbridge.diffusion.CANDIDATE_FACTOR.",
                    CandidateRecallWarning, stacklevel=2)
        g = dev.diffusion_graph(idx, d2, eps, float(self.alpha), threads)
        if not (np.all(np.isfinite(g["q"])) and np.all(g["q"] > 0) and np.all(np.isfinite(g["data"]))):
            raise ValueError(
                f"alpha={self.alpha!r} is too large for this data: the density normalisation "
                "p^-alpha over- or underflows float64. Use alpha in [0, 1].")
        sq = np.sqrt(g["q"])
        z = (sq / np.linalg.norm(sq))[:, None]
        seed = int(rng.integers(0, 2**63 - 1))
        vals, vecs, info = dev.eigsh_largest(
            g["indptr"], g["indices"], g["data"], n_eig, z, 0, EIGSH_TOL, 0, seed, threads
        )
        if not info["converged"]:
            warnings.warn(
                f"the eigensolver stopped after {info['n_matvec']} products with residual "
                f"{info['max_residual']:.2e} (tolerance {EIGSH_TOL:.0e}); the embedding may be "
                "inaccurate.", EigensolverWarning, stacklevel=2)
        if vals[0] > 1.0 - CONNECTED_TOL:
            n_one = int(np.sum(vals > 1.0 - CONNECTED_TOL)) + 1
            warnings.warn(
                f"the kernel graph is disconnected: {n_one} eigenvalues equal 1 (one per connected "
                "component). Raise n_neighbors or epsilon.", DisconnectedGraphWarning, stacklevel=2)
        phi = vecs / sq[:, None]
        phi /= np.sqrt(np.mean(phi * phi, axis=0))
        phi = _canonical_signs(phi)
        if self.remove_harmonics:
            self.residuals_ = _llr_residuals(phi, rng)
            order = np.argsort(-self.residuals_, kind="stable")[: self.n_components]
            sel = np.sort(order)
        else:
            sel = np.arange(self.n_components)
        self.selected_ = sel
        self.epsilon_ = eps
        self.eigenvalues_ = vals[sel].copy()
        self.embedding_ = np.ascontiguousarray(phi[:, sel])
        self.kernel_matrix_ = sp.csr_matrix((g["data"], g["indices"], g["indptr"]), shape=(n, n))
        self.n_features_in_ = m
        self.device_ = device
        self._fit_Y = Y
        self._fit_G = G
        self._p = g["p"]
        self._n_threads = threads
        self._eig_info = info
        return self

    def fit_transform(self, Y, precisions=None, *, precision_factors=None):
        """Fit and return ``embedding_`` (arguments as in :meth:`fit`)."""
        return self.fit(Y, precisions, precision_factors=precision_factors).embedding_

    def _neighbor_recall(self, dev, Y, G, idx, k, rng, threads):
        """Fraction of the kept Mahalanobis neighbours that a search over RECALL_FACTOR times
        more Euclidean candidates also keeps, on a random sample of RECALL_SAMPLE points."""
        n = Y.shape[0]
        kc = min(n - 1, CANDIDATE_FACTOR * k)
        big = min(n - 1, RECALL_FACTOR * kc)
        if big <= kc:
            return 1.0
        rows = np.sort(rng.choice(n, size=min(n, RECALL_SAMPLE), replace=False))
        cand, _ = dev.knn_sqeuclidean(Y, np.ascontiguousarray(Y[rows]), big + 1, threads)
        drop = cand == rows[:, None]
        drop[~drop.any(axis=1), -1] = True  # one entry per row goes: the point itself or the last
        cand = np.ascontiguousarray(cand[~drop].reshape(len(rows), big))
        ref, _ = dev.mahalanobis_rerank(Y, G, np.ascontiguousarray(Y[rows]),
                                         np.ascontiguousarray(G[rows]), cand, k, threads)
        hits = sum(len(np.intersect1d(a, b, assume_unique=True)) for a, b in zip(idx[rows], ref))
        return hits / (len(rows) * k)

    def _neighbors(self, dev, device, Y, G, Yq, Gq, k, threads):
        """k-NN (Euclidean, or Mahalanobis re-ranked from Euclidean candidates) on ``dev``, the
        extension module of ``device``."""
        n = Y.shape[0]
        limit = n - 1 if Yq is None else n
        if G is None:
            return dev.knn_sqeuclidean(Y, Yq, k, threads)
        kc = limit if self.n_neighbors is None else min(limit, CANDIDATE_FACTOR * k)
        cand, _ = dev.knn_sqeuclidean(Y, Yq, kc, threads)
        # CPU: queries in kd-tree order, so consecutive ones share candidates that stay in cache
        order = _core().kdtree_order(Y) if Yq is None and device == "cpu" else None
        return dev.mahalanobis_rerank(Y, G, Yq, Gq, cand, k, threads, order)

    # -- out of sample -------------------------------------------------------------------------

    def transform(self, Y_new, precisions=None, *, precision_factors=None):
        """Diffusion coordinates of new points by the Nystrom extension.

        ``phi_p(y) = (1 / a_p) sum_j M(y, j) phi_p(j)`` with ``M(y, j)`` the Markov kernel row of
        y over its ``n_neighbors`` nearest training points (all of them for ``n_neighbors=None``),
        normalised with the training densities exactly as in :meth:`fit`.

        Parameters
        ----------
        Y_new : array_like of shape (n_new, m)
        precisions : array_like of shape (n_new, m, m), optional
            Precisions at the new points. With ``metric="mahalanobis"`` and no precisions, each
            new point gets the coordinates of its nearest (Euclidean) training point.
        precision_factors : array_like of shape (n_new, r, m), optional
            The new points' precisions as factors ``G_i^T G_i`` (instead of ``precisions``).

        Returns
        -------
        embedding : ndarray of shape (n_new, n_components)

        Raises
        ------
        ValueError
            Wrong number of features, NaN/inf, or squared distances that overflow float64.

        Warns
        -----
        NystromWarning
            When a kept eigenvalue is below ``NYSTROM_MIN_EIGENVALUE``.
        """
        check_is_fitted(self, "embedding_")
        Yn = as_float_matrix(Y_new, "Y_new", dtype=np.float64)
        if Yn.shape[1] != self.n_features_in_:
            raise ValueError(
                f"Y_new has {Yn.shape[1]} features but the model was fitted with {self.n_features_in_}."
            )
        dev = kernels(self.device_)
        Y, threads = self._fit_Y, self._n_threads
        n = Y.shape[0]
        if self.metric == "mahalanobis" and precisions is None and precision_factors is None:
            idx, _ = dev.knn_sqeuclidean(Y, Yn, 1, threads)
            return self.embedding_[idx[:, 0]].copy()
        Gq = self._precisions(precisions, precision_factors, Yn, threads)
        G = self._fit_G
        if Gq is not None:
            r = max(G.shape[1], Gq.shape[1])
            G, Gq = _pad_rank(G, r), _pad_rank(Gq, r)
        k = n if self.n_neighbors is None else self.n_neighbors
        L = self.embedding_.shape[1]
        check_allocation(Yn.shape[0] * k * (8 * L + 48),
                         f"DiffusionMaps.transform neighbour lists (n_new, k) = ({Yn.shape[0]}, {k}) float64")
        idx, d2 = self._neighbors(dev, self.device_, Y, G, Yn, Gq, k, threads)
        _check_finite_distances(d2, "Y_new" if Gq is None else "Y_new and precisions")
        small = np.abs(self.eigenvalues_) < NYSTROM_MIN_EIGENVALUE
        if small.any():
            warnings.warn(
                f"{int(small.sum())} eigenvalue(s) below {NYSTROM_MIN_EIGENVALUE:g}: the Nystrom "
                "extension divides by them, so those coordinates are unreliable.",
                NystromWarning, stacklevel=2)
        # M(y, j) = K(y, j) p_j^-alpha / sum_j K(y, j) p_j^-alpha: p(y)^-alpha cancels, and the
        # kernel is shifted by the smallest distance so that far-away points do not underflow.
        # In log space: p^-alpha may under- or overflow on its own.
        with np.errstate(over="ignore", under="ignore"):
            logw = -(d2 - d2[:, :1]) / (2.0 * self.epsilon_) - float(self.alpha) * np.log(self._p[idx])
            logw -= logw.max(axis=1, keepdims=True)
            Wr = np.exp(logw)
        Mr = Wr / Wr.sum(axis=1, keepdims=True)
        out = np.einsum("nk,nkc->nc", Mr, self.embedding_[idx])
        with np.errstate(divide="ignore", invalid="ignore"):
            return out / self.eigenvalues_

    def inverse_transform(self, embedding):
        """Points in the original space from diffusion coordinates (k-NN interpolation).

        Inverse-distance weighting of the ``n_components + 1`` training points nearest in the
        embedding (exact linear interpolation on a curve); a coordinate that equals a training
        point's returns that point.

        Parameters
        ----------
        embedding : array_like of shape (n_new, n_components)

        Returns
        -------
        Y : ndarray of shape (n_new, m)
        """
        check_is_fitted(self, "embedding_")
        E = as_float_matrix(embedding, "embedding", dtype=np.float64)
        L = self.embedding_.shape[1]
        if E.shape[1] != L:
            raise ValueError(f"embedding must have {L} columns (n_components); got {E.shape[1]}.")
        k = min(L + 1, self.embedding_.shape[0])
        check_allocation(E.shape[0] * k * (16 + 8 * (L + self._fit_Y.shape[1])),
                         f"DiffusionMaps.inverse_transform neighbour lists (n_new, k) = ({E.shape[0]}, {k})")
        return _idw(self.embedding_, self._fit_Y, E, k, self._n_threads, kernels(self.device_))


def _check_finite_distances(d2, name):
    if not np.isfinite(d2).all():
        raise ValueError(
            f"squared distances between the rows of {name} overflow float64 (|values| too large, "
            "around 1e154 or more); rescale the data.")


def _idw(X, values, Q, k, threads, dev=None):
    """Inverse-distance-weighted k-NN interpolation of values sampled at the rows of X (k-NN search
    on ``dev``, an extension module; default the CPU's)."""
    idx, d2 = (dev or _core()).knn_sqeuclidean(np.ascontiguousarray(X), Q, k, threads)
    _check_finite_distances(d2, "embedding")
    # distances recomputed relative to the largest difference of each query (no under/overflow)
    diff = Q[:, None, :] - X[idx]
    s = np.abs(diff).max(axis=(1, 2))
    s = np.where(s > 0, s, 1.0)
    rel = np.linalg.norm(diff / s[:, None, None], axis=2)
    exact = rel[:, 0] * s <= 1e-12 * max(1.0, float(np.abs(X).max()))
    w = rel[:, :1] / np.where(rel > 0, rel, 1.0)
    w[exact] = 0.0
    w[exact, 0] = 1.0
    w /= w.sum(axis=1, keepdims=True)
    return np.einsum("nk,nkc->nc", w, values[idx])


# ----------------------------------------------------------------------------------------------
# transformations between networks


class NetworkTransformation(BaseEstimator):
    """Map activations of network A to those of network B through diffusion maps (Algorithm 2).

    ``T = psi^-1 o O o phi``: ``phi`` embeds A's activations, ``O`` is orthogonal (estimated from
    corresponding points by Procrustes, block-diagonal over groups of (near-)degenerate
    eigenvalues and a sign flip elsewhere), ``psi^-1`` interpolates back to B's activations.

    Parameters
    ----------
    n_components : int, default 1
        Diffusion coordinates used (the intrinsic dimension, after harmonics are removed).
    metric, epsilon, k_epsilon, n_neighbors, alpha, remove_harmonics, device, n_jobs, random_state
        Passed to both :class:`DiffusionMaps` (``metric`` defaults to ``"mahalanobis"`` here).
    degenerate_rtol : float, default 0.1
        Consecutive eigenvalues whose ``-log a`` differ by less than this fraction (in either
        network) share one orthogonal block.

    Attributes
    ----------
    dmap_a_, dmap_b_ : DiffusionMaps
    orthogonal_ : ndarray of shape (n_components, n_components)
        ``phi_a @ orthogonal_ ~ phi_b`` on the pairs.
    blocks_ : list of ndarray
        Index groups of the blocks of ``orthogonal_``.
    """

    def __init__(self, n_components=1, *, metric="mahalanobis", epsilon="auto", k_epsilon=10,
                 n_neighbors=32, alpha=1.0, remove_harmonics=False, degenerate_rtol=0.1,
                 device="cpu", n_jobs=None, random_state=None):
        self.n_components = n_components
        self.metric = metric
        self.epsilon = epsilon
        self.k_epsilon = k_epsilon
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.remove_harmonics = remove_harmonics
        self.degenerate_rtol = degenerate_rtol
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _dmap(self):
        return DiffusionMaps(
            self.n_components, metric=self.metric, epsilon=self.epsilon, k_epsilon=self.k_epsilon,
            n_neighbors=self.n_neighbors, alpha=self.alpha, remove_harmonics=self.remove_harmonics,
            device=self.device, n_jobs=self.n_jobs, random_state=self.random_state)

    def fit(self, Y_a, Y_b, precisions_a=None, precisions_b=None, pairs=None, *,
            precision_factors_a=None, precision_factors_b=None):
        """Embed both networks and estimate the orthogonal map between the embeddings.

        Parameters
        ----------
        Y_a, Y_b : array_like of shape (n_a, m_a), (n_b, m_b)
            Activations of the two networks.
        precisions_a, precisions_b : array_like of shape (n, m, m), optional
            Per-point precisions (for ``metric="mahalanobis"`` these or the factors are required).
        pairs : tuple (idx_a, idx_b), optional
            Indices of corresponding points (the same input fed to both networks); at least as many
            as the largest orthogonal block. None: row i of Y_a corresponds to row i of Y_b.
        precision_factors_a, precision_factors_b : array_like of shape (n, r, m), optional
            The precisions as factors ``C_i = G_i^T G_i`` (see :meth:`DiffusionMaps.fit`);
            per network, exactly one of the precisions and the factors.

        Returns
        -------
        self
        """
        if (isinstance(self.degenerate_rtol, bool) or not isinstance(self.degenerate_rtol, numbers.Real)
                or not self.degenerate_rtol >= 0):
            raise ValueError(f"degenerate_rtol must be a non-negative number; got {self.degenerate_rtol!r}.")
        self.dmap_a_ = self._dmap().fit(Y_a, precisions_a, precision_factors=precision_factors_a)
        self.dmap_b_ = self._dmap().fit(Y_b, precisions_b, precision_factors=precision_factors_b)
        na, nb = self.dmap_a_.embedding_.shape[0], self.dmap_b_.embedding_.shape[0]
        if pairs is None:
            if na != nb:
                raise ValueError(
                    f"Y_a and Y_b have {na} and {nb} rows; pass pairs=(idx_a, idx_b) to say which "
                    "points correspond."
                )
            ia = ib = np.arange(na)
        else:
            if not isinstance(pairs, (tuple, list)) or len(pairs) != 2:
                raise TypeError("pairs must be a tuple (idx_a, idx_b) of index arrays.")
            ia, ib = (np.asarray(p) for p in pairs)
            if ia.ndim != 1 or ib.ndim != 1 or ia.shape != ib.shape:
                raise ValueError(f"pairs must be two 1-D index arrays of the same length; got shapes {ia.shape} and {ib.shape}.")
            if ia.dtype.kind not in "iu" or ib.dtype.kind not in "iu":
                raise TypeError("pairs must hold integer indices.")
            if ia.size and (ia.min() < 0 or ia.max() >= na or ib.min() < 0 or ib.max() >= nb):
                raise ValueError(f"pairs indices out of range (Y_a has {na} rows, Y_b has {nb}).")
        L = self.n_components
        ga = -np.log(np.clip(self.dmap_a_.eigenvalues_, 1e-300, None))
        gb = -np.log(np.clip(self.dmap_b_.eigenvalues_, 1e-300, None))
        blocks, start = [], 0
        for p in range(1, L + 1):
            joined = p < L and any(
                abs(g[p] - g[p - 1]) <= self.degenerate_rtol * max(abs(g[p]), abs(g[p - 1]))
                for g in (ga, gb))
            if not joined:
                blocks.append(np.arange(start, p))
                start = p
        largest = max(len(b) for b in blocks)
        if ia.size < largest:
            raise ValueError(
                f"pairs has {ia.size} correspondences but the largest degenerate eigenspace has "
                f"dimension {largest}; pass at least {largest} pairs."
            )
        A = self.dmap_a_.embedding_[ia]
        B = self.dmap_b_.embedding_[ib]
        O = np.zeros((L, L))
        for blk in blocks:
            U, _, Vt = np.linalg.svd(A[:, blk].T @ B[:, blk])
            O[np.ix_(blk, blk)] = U @ Vt
        self.orthogonal_ = O
        self.blocks_ = blocks
        return self

    def transform(self, Y_a_new, precisions=None, *, precision_factors=None):
        """Predicted activations of network B for new activations of network A.

        Parameters
        ----------
        Y_a_new : array_like of shape (n_new, m_a)
        precisions : array_like of shape (n_new, m_a, m_a), optional
            Precisions at the new points (Nystrom); without them, nearest-neighbour embedding.
        precision_factors : array_like of shape (n_new, r, m_a), optional
            The same as factors ``G_i^T G_i`` (instead of ``precisions``).

        Returns
        -------
        Y_b_hat : ndarray of shape (n_new, m_b)
        """
        check_is_fitted(self, "orthogonal_")
        phi = self.dmap_a_.transform(Y_a_new, precisions, precision_factors=precision_factors)
        if not np.isfinite(phi).all():
            raise ValueError(
                f"the Nystrom extension of network A is not finite: eigenvalue(s) "
                f"{self.dmap_a_.eigenvalues_} include 0 (duplicated points or n_components="
                f"{self.n_components} beyond the rank of the kernel). Lower n_components.")
        return self.dmap_b_.inverse_transform(phi @ self.orthogonal_)
