"""Shape metrics: distances between representations up to rotation (Procrustes, Williams et al.'s
generalized shape metrics) and the Bures distance/similarity between their Gram matrices.

All are computed in feature space from the centred scatter matrices (:mod:`._moments`): with
``S_xy = X_c^T Y_c``, ``min_Q ||X_c - Y_c Q||_F^2 = ||X_c||_F^2 + ||Y_c||_F^2 - 2 ||S_xy||_*`` over
orthogonal Q (the representation with fewer features zero-padded), and ``||S_xy||_*`` is also the
fidelity ``tr((K_x^1/2 K_y K_x^1/2)^1/2)`` of the Gram matrices ``K = X_c X_c^T``.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_bool, check_scalar
from ._moments import centred_moments, check_ridge, nuclear_norm, whitener

__all__ = ["procrustes_distance", "shape_distance", "bures_distance", "bures_similarity"]


def _shape_cosine(m, alpha, what):
    """cos of the angle between the partially whitened, centred representations."""
    if alpha == 1.0:  # no whitening: ||S_xy||_* / (||X_c||_F ||Y_c||_F)
        den = np.sqrt(np.trace(m.sxx) * np.trace(m.syy))
        return float(np.clip(nuclear_norm(m.sxy) / den, 0.0, 1.0))
    Mx, kx = whitener(m.sxx, alpha=alpha)
    My, ky = whitener(m.syy, alpha=alpha)
    if alpha == 0.0:
        ridge = check_ridge(None, kx, ky, m.n, what)
        if ridge:
            Mx, _ = whitener(m.sxx, ridge=ridge)
            My, _ = whitener(m.syy, ridge=ridge)
    cross = nuclear_norm(Mx @ m.sxy @ My)
    norm_x = float(np.einsum("ij,ij->", Mx @ m.sxx, Mx))   # ||X_c M_x||_F^2 = tr(M S M)
    norm_y = float(np.einsum("ij,ij->", My @ m.syy, My))
    return float(np.clip(cross / np.sqrt(norm_x * norm_y), 0.0, 1.0))


def shape_distance(X, Y, *, alpha=1.0, angular=True, n_jobs=None):
    """Generalized shape metric of Williams et al. (2021) between two representations.

    Each representation is centred, partially whitened and compared up to an orthogonal map:

    * ``X_a = X_c M_x`` with ``M_x = ((1 - alpha) S_x + alpha mu_x I)^(-1/2)``, ``S_x = X_c^T X_c``
      and ``mu_x = tr(S_x) / p`` its mean eigenvalue (so the metric does not depend on the scale of
      X); ``alpha = 1`` leaves X_c unchanged (Procrustes), ``alpha = 0`` whitens it completely
      (CCA: the value then depends only on the canonical correlations);
    * ``cos(theta) = ||X_a^T Y_a||_* / (||X_a||_F ||Y_a||_F)`` (nuclear norm: the best orthogonal
      alignment, the smaller representation zero-padded);
    * ``angular=True``: ``theta = arccos(cos(theta))`` in [0, pi/2];
      ``angular=False``: ``min_Q ||X_a / ||X_a||_F - Y_a Q / ||Y_a||_F||_F = sqrt(2 - 2 cos(theta))``
      in [0, sqrt(2)].

    Both are metrics (on representations modulo the invariances below): symmetric, zero on
    identical inputs, and they satisfy the triangle inequality.

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)
    alpha : float in [0, 1], default 1.0
    angular : bool, default True
    n_jobs : int, optional
        Threads of the scatter-matrix accumulation.

    Returns
    -------
    float

    Warns
    -----
    RegularisationWarning
        ``alpha = 0`` with rank(X) + rank(Y) > n - 1 (fewer samples than features): the whitened
        representations then share directions whatever the data; the value returned uses
        ``M = (S + 0.1 mu I)^(-1/2)`` instead.

    Raises
    ------
    ValueError
        Fewer than 2 rows, different row counts, NaN/infinity, a constant representation, alpha
        outside [0, 1].

    Notes
    -----
    Invariant to translations, isotropic scalings, orthogonal maps and permutations of the units of
    each representation; with ``alpha = 0`` also to every invertible linear map. O(n (p + q)^2)
    time, O((p + q)^2) memory. netrep (the authors' library) scales the whitened data differently
    for 0 < alpha < 1 and its Euclidean variant is not normalised; the angular metric at alpha = 0
    and alpha = 1 is the same.

    References
    ----------
    Williams, Kunz, Kornblith & Linderman, "Generalized shape metrics on neural representations",
    NeurIPS 2021.
    """
    alpha = check_scalar(alpha, "alpha", minimum=0.0, maximum=1.0)
    angular = check_bool(angular, "angular")
    cos = _shape_cosine(centred_moments(X, Y, n_jobs=n_jobs), alpha, "shape_distance(alpha=0)")
    if angular:
        return float(np.arccos(cos))
    return float(np.sqrt(max(2.0 - 2.0 * cos, 0.0)))


def procrustes_distance(X, Y, *, n_jobs=None):
    """Orthogonal Procrustes distance after centring and Frobenius normalisation.

    ``d(X, Y) = min_Q ||X_c / ||X_c||_F - Y_c Q / ||Y_c||_F||_F = sqrt(2 - 2 ||X_c^T Y_c||_* /
    (||X_c||_F ||Y_c||_F))`` over orthogonal Q (zero-padding the representation with fewer
    features), in [0, sqrt(2)]. It is :func:`shape_distance` with ``alpha=1, angular=False``, a
    metric invariant to translation, isotropic scaling, orthogonal maps and unit permutations.

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)
    n_jobs : int, optional

    Returns
    -------
    float

    References
    ----------
    Schönemann, "A generalized solution of the orthogonal Procrustes problem", Psychometrika 1966;
    Williams et al., NeurIPS 2021 (see :func:`shape_distance`).
    """
    return shape_distance(X, Y, alpha=1.0, angular=False, n_jobs=n_jobs)


def bures_distance(X, Y, *, n_jobs=None):
    """Bures distance between the centred Gram matrices ``K_x = X_c X_c^T / n``, ``K_y = Y_c Y_c^T / n``.

    ``d_B(K_x, K_y)^2 = tr K_x + tr K_y - 2 tr((K_x^1/2 K_y K_x^1/2)^1/2)
    = (||X_c||_F^2 + ||Y_c||_F^2 - 2 ||X_c^T Y_c||_*) / n``, i.e. the unnormalised Procrustes
    distance divided by sqrt(n). A metric, invariant to translation, orthogonal maps and unit
    permutations, NOT to scaling (see :func:`bures_similarity` for the normalised version).

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)
    n_jobs : int, optional

    Returns
    -------
    float >= 0

    References
    ----------
    Bhatia, Jain & Lim, "On the Bures-Wasserstein distance between positive definite matrices",
    Expositiones Mathematicae 2019; Tang, Maddox, Dickens, Diethe & Damianou, "Similarity of neural
    networks with gradients", arXiv:2003.11498, 2020.
    """
    m = centred_moments(X, Y, n_jobs=n_jobs)
    d2 = (np.trace(m.sxx) + np.trace(m.syy) - 2.0 * nuclear_norm(m.sxy)) / m.n
    return float(np.sqrt(max(d2, 0.0)))


def bures_similarity(X, Y, *, n_jobs=None):
    """Normalised Bures similarity (Tang et al. 2020) of the centred Gram matrices.

    ``NBS(K_x, K_y) = tr((K_x^1/2 K_y K_x^1/2)^1/2) / sqrt(tr K_x tr K_y)
    = ||X_c^T Y_c||_* / (||X_c||_F ||Y_c||_F)`` in [0, 1] (1 on identical inputs); it is the cosine
    of :func:`shape_distance` (``alpha=1``). Invariant to translation, isotropic scaling,
    orthogonal maps and unit permutations.

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)
    n_jobs : int, optional

    Returns
    -------
    float in [0, 1]

    References
    ----------
    Tang, Maddox, Dickens, Diethe & Damianou, "Similarity of neural networks with gradients",
    arXiv:2003.11498, 2020.
    """
    m = centred_moments(X, Y, n_jobs=n_jobs)
    return _shape_cosine(m, 1.0, "bures_similarity")
