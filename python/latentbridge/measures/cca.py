"""Canonical correlation analysis summaries: mean canonical correlation, Yanai's GCD, Pillai's trace.

The canonical correlations rho_1 >= rho_2 >= ... are the singular values of
``S_xx^(-1/2) S_xy S_yy^(-1/2)`` (pseudo-inverse square roots on the ranges of the centred scatter
matrices), computed in feature space in float64 (:mod:`._moments`): O(n (p + q)^2 + p^3 + q^3).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_choice
from ._moments import centred_moments, check_ridge, whitener

__all__ = ["cca", "canonical_correlations", "CCA_KINDS"]

CCA_KINDS = ("mean", "yanai", "pillai")


def canonical_correlations(X, Y, *, ridge=None, n_jobs=None):
    """Canonical correlations of X and Y, descending, and the ranks (k_x, k_y).

    Returns ``(rho, k_x, k_y)`` with ``rho`` of length ``min(k_x, k_y)``. See :func:`cca` for the
    ridge and the warning.
    """
    m = centred_moments(X, Y, n_jobs=n_jobs)
    Mx, kx = whitener(m.sxx)
    My, ky = whitener(m.syy)
    ridge = check_ridge(ridge, kx, ky, m.n, "cca")
    if ridge:
        Mx, _ = whitener(m.sxx, ridge=ridge)
        My, _ = whitener(m.syy, ridge=ridge)
    rho = np.linalg.svd(Mx @ m.sxy @ My, compute_uv=False)[: min(kx, ky)]
    return np.clip(rho, 0.0, 1.0), kx, ky


def cca(X, Y, *, kind="mean", ridge=None, n_jobs=None):
    """A summary of the canonical correlations between two representations.

    With rho_1 >= ... >= rho_k the canonical correlations (k = min(k_x, k_y), k_x = rank(X_c),
    k_y = rank(Y_c)):

    * ``kind="mean"``: the mean canonical correlation ``sum_i rho_i / k`` (as in SVCCA without its
      SVD step);
    * ``kind="yanai"``: Yanai's generalized coefficient of determination
      ``GCD = tr(P_x P_y) / sqrt(tr(P_x) tr(P_y)) = sum_i rho_i^2 / sqrt(k_x k_y)``, P the orthogonal
      projections on the column spaces of X_c and Y_c;
    * ``kind="pillai"``: Pillai's trace ``V = sum_i rho_i^2`` divided by k (so that identical
      representations score 1; Kornblith et al.'s R^2_CCA).

    Each is in [0, 1], 1 on identical inputs, and invariant to translation and to every invertible
    linear map (hence scaling, rotations and permutations) of either representation.

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)
    kind : {"mean", "yanai", "pillai"}
    ridge : float >= 0, optional
        Regularised CCA: ``S + ridge * mu I`` replaces each scatter matrix (mu its mean
        eigenvalue). None: 0 when rank(X) + rank(Y) <= n - 1, else 0.1 with a warning.
    n_jobs : int, optional
        Threads of the scatter-matrix accumulation.

    Returns
    -------
    float in [0, 1]

    Warns
    -----
    RegularisationWarning
        When ``ridge`` is None and rank(X) + rank(Y) > n - 1 (e.g. fewer samples than features):
        at least ``rank(X) + rank(Y) - (n - 1)`` canonical correlations are then 1 whatever the data
        (moskomule/anatome#18), so the ridge-regularised value is returned.

    Raises
    ------
    ValueError
        Fewer than 2 rows, different row counts, NaN/infinity, a constant representation, an
        unknown kind, a negative ridge.

    Notes
    -----
    repsim 0.1.5 names these differently: its ``cca(summary_type="pillai")`` is our "mean" and its
    "yanai" is our "pillai" (both divide by the smaller number of columns); the three agree with
    ours when X and Y have full column rank (and, for "yanai", the same number of columns).

    References
    ----------
    Hotelling, "Relations between two sets of variates", Biometrika 1936. Yanai, "Unification of
    various techniques of multivariate analysis by means of generalized coefficient of
    determination", Kodo Keiryogaku 1974. Pillai, "Some new test criteria in multivariate
    analysis", Ann. Math. Stat. 1955. Kornblith, Norouzi, Lee & Hinton, ICML 2019.
    """
    check_choice(kind, "kind", CCA_KINDS)
    rho, kx, ky = canonical_correlations(X, Y, ridge=ridge, n_jobs=n_jobs)
    if kind == "mean":
        value = rho.sum() / min(kx, ky)
    elif kind == "yanai":
        value = np.sum(rho * rho) / np.sqrt(kx * ky)
    else:
        value = np.sum(rho * rho) / min(kx, ky)
    return float(np.clip(value, 0.0, 1.0))
