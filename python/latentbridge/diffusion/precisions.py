"""Per-point Mahalanobis metrics: precisions from neighbourhoods or Jacobians, and their factors.

The diffusion-map distance of Bertalan, Dietrich, Kevrekidis et al. (arXiv:2007.05646, Algorithm 1)
is ``d2_ij = (y_i - y_j)^T (C_i + C_j) (y_i - y_j)`` with one symmetric positive semi-definite
precision ``C_i`` per point. The engine works on factors ``G_i`` (r, m) with ``C_i = G_i^T G_i``:
``d2_ij = |G_i (y_i - y_j)|^2 + |G_j (y_i - y_j)|^2`` costs O(r m) per pair instead of O(m^2), and n
factors take O(n r m) memory instead of O(n m^2) (a 2048-wide layer: 32 MiB per (m, m) matrix).
This module computes precisions and their factors, and validates what ``fit`` accepts.
"""

from __future__ import annotations

import numpy as np

from .._backend import kernels
from .._validation import as_float_matrix, check_bool, check_positive_int, check_scalar

__all__ = ["precisions_from_neighborhoods", "precisions_from_jacobians", "factors_from_precisions",
           "check_precision_factors", "metric_factors", "pad_rank"]


def as_float_stack(A, name, *, n=None, shape=None):
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
    return kernels("cpu").batched_eigh(np.ascontiguousarray(A, dtype=np.float64), n_threads)


# ----------------------------------------------------------------------------------------------
# precisions from neighbourhoods and Jacobians


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
    N = as_float_stack(neighborhoods, "neighborhoods", shape="(n, q, m)")
    n, q, m = N.shape
    if q < 2:
        raise ValueError(f"neighborhoods needs at least 2 samples per point (axis 1); got {q}.")
    ridge = check_scalar(ridge, "ridge", minimum=0.0)
    if ridge > 0 and (rank is not None or rcond is not None):
        raise ValueError("use either ridge (Tikhonov) or rank/rcond (truncated pseudo-inverse), not both.")
    factors = check_bool(factors, "factors")
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
    J = as_float_stack(jacobians, "jacobians", shape="(n, m, d)")
    n, m, d = J.shape
    rcond = _check_rcond(rcond)
    factors = check_bool(factors, "factors")
    scale = np.abs(J).max(axis=(1, 2))
    scale = np.where(scale > 0, scale, 1.0)
    U, sv, _ = np.linalg.svd(J / scale[:, None, None], full_matrices=False)
    tol = (max(m, d) * np.finfo(np.float64).eps) if rcond is None else rcond
    keep = sv > tol * sv[:, :1]
    G = _kept_factors(1.0 / np.where(keep, sv, 1.0), U.transpose(0, 2, 1), keep)
    return _finish_factors(G, scale, "jacobians", factors)


def _check_rcond(rcond):
    if rcond is None:
        return None
    return check_scalar(rcond, "rcond", minimum=0.0, maximum=1.0, include_maximum=False)


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
# what DiffusionMaps accepts: precisions (n, m, m) or factors (n, r, m), as factors


def factors_from_precisions(C, name, n_threads=1):
    """Factors G (n, r, m) with ``C_i = G_i^T G_i`` (``G_i = sqrt(w) V^T`` over the eigenpairs
    above ``1e-12`` times the largest), r the largest rank over the points; ValueError unless
    every ``C_i`` is symmetric positive semi-definite and non-zero."""
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


def check_precision_factors(G, name, n, m):
    """Validated precision factors: float64 (n, r, m), r >= 1, finite, no all-zero factor."""
    if isinstance(G, (str, bytes)):
        raise TypeError(f"{name} must be a numeric 3-D array; got a {type(G).__name__}.")
    shape = np.shape(G)
    if len(shape) != 3 or shape[0] != n or shape[2] != m or shape[1] < 1:
        raise ValueError(
            f"{name} must have shape (n, r, m) = ({n}, r, {m}) with r >= 1, one factor G_i with "
            f"precision G_i^T G_i per point; got shape {shape}."
        )
    G = as_float_stack(G, name)
    zero = np.flatnonzero(~G.any(axis=(1, 2)))
    if zero.size:
        raise ValueError(f"{name}[{zero[0]}] is zero; every point needs a non-zero precision.")
    return G


def metric_factors(metric, precisions, precision_factors, Y, n_threads=1):
    """The factors (n, r, m) of the metric of the rows of ``Y``: None for ``"euclidean"``, else
    from exactly one of ``precisions`` (n, m, m) and ``precision_factors`` (n, r, m)."""
    name, fname = "precisions", "precision_factors"
    given = [a for a, v in ((name, precisions), (fname, precision_factors)) if v is not None]
    if metric == "euclidean":
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
        C = as_float_stack(precisions, name, n=n, shape=(n, m, m))
        return factors_from_precisions(C, name, n_threads)
    return check_precision_factors(precision_factors, fname, n, m)


def pad_rank(G, r):
    """G (n, r0, m) padded with zero rows to (n, r, m), r >= r0 (the precisions do not change)."""
    if G.shape[1] == r:
        return G
    out = np.zeros((G.shape[0], r, G.shape[2]))
    out[:, : G.shape[1]] = G
    return out
