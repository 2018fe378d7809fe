"""Measures defined through linear prediction: GULP and cross-validated ridge predictivity."""

from __future__ import annotations

import numpy as np

from .._validation import (
    as_float_matrix,
    check_positive_int,
    check_random_state,
    check_same_rows,
    check_scalar,
)
from ._moments import centred_moments, psd_eigh

__all__ = ["gulp", "regression_predictivity", "DEFAULT_ALPHAS"]

#: ridge penalties searched by :func:`regression_predictivity` when none are given
DEFAULT_ALPHAS = tuple(10.0 ** np.arange(-3, 4))


def _ridge_operator(S, lam):
    """For C = S / tr(S): ``(C + lam I)^(-1/2)`` (pseudo-inverse on the range of C when lam = 0)
    and ``tr((C (C + lam I)^-1)^2)``."""
    C = S / np.trace(S)
    w, V, _, tol = psd_eigh(C)
    inv = np.zeros_like(w)
    keep = w > tol if lam == 0 else np.ones_like(w, dtype=bool)
    inv[keep] = 1.0 / (w[keep] + lam)
    return (V * np.sqrt(inv)) @ V.T, float(np.sum((w * inv) ** 2))


def gulp(X, Y, *, lam=0.01, n_jobs=None):
    """GULP distance (Boix-Adsera et al. 2022): how differently ridge regression on X and on Y
    predicts, in the worst case over bounded linear targets.

    Each representation is centred and scaled to ``||X_c||_F^2 = n`` (as in the authors' code), so
    that ``C_x = X_c^T X_c / n`` has unit trace; with ``C_x^lam = (C_x + lam I)^-1`` and
    ``C_xy = X_c^T Y_c / n``,

    ``d^2 = tr(C_x^lam C_x C_x^lam C_x) + tr(C_y^lam C_y C_y^lam C_y) - 2 tr(C_x^lam C_xy C_y^lam C_yx)``

    which equals ``||H_x - H_y||_F^2`` for the ridge hat matrices
    ``H_x = X_c (X_c^T X_c + n lam I)^-1 X_c^T``. The function returns ``d = sqrt(d^2)``, a metric
    (on representations modulo the invariances: translation, isotropic scaling, orthogonal maps,
    unit permutations; with ``lam = 0`` also every invertible linear map, and ``d^2 = k_x + k_y -
    2 sum_i rho_i^2`` in terms of the canonical correlations).

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)
    lam : float >= 0, default 0.01
        Ridge penalty, relative to the unit total variance. 0: least squares (pseudo-inverse).
    n_jobs : int, optional
        Threads of the scatter-matrix accumulation.

    Returns
    -------
    float >= 0

    Raises
    ------
    ValueError
        Fewer than 2 rows, different row counts, NaN/infinity, a constant representation, a
        negative lam.

    Notes
    -----
    Feature space: O(n (p + q)^2 + p^3 + q^3) time, no n x n matrix. The ReSi benchmark reports
    ``d^2`` (without the square root).

    References
    ----------
    Boix-Adsera, Lawrence, Stepaniants & Rigollet, "GULP: a prediction-based metric between
    representations", NeurIPS 2022.
    """
    lam = check_scalar(lam, "lam", minimum=0.0)
    m = centred_moments(X, Y, n_jobs=n_jobs)
    Mx, t1 = _ridge_operator(m.sxx, lam)
    My, t2 = _ridge_operator(m.syy, lam)
    cxy = m.sxy / np.sqrt(np.trace(m.sxx) * np.trace(m.syy))
    B = Mx @ cxy @ My
    d2 = t1 + t2 - 2.0 * float(np.einsum("ij,ij->", B, B))
    return float(np.sqrt(max(d2, 0.0)))


def regression_predictivity(X, Y, *, alphas=DEFAULT_ALPHAS, cv=5, random_state=0, n_jobs=None):
    """Cross-validated R^2 of a ridge map from X to Y (Brain-Score-style linear predictivity).

    The rows are shuffled (``random_state``) and cut into ``cv`` folds. For each fold a
    :class:`~latentbridge.RidgeMap` (intercept not penalised; penalty chosen among ``alphas`` by
    generalised cross-validation on the training rows) is fitted on the other folds and predicts
    the held-out rows. The pooled, variance-weighted R^2 is returned:

    ``R^2 = 1 - sum_folds ||Y_test - Y_hat||_F^2 / sum_folds ||Y_test - mean(Y_train)||_F^2``.

    At most 1; 0 for a predictor no better than the training mean, negative when worse. Not
    symmetric (X predicts Y). Invariant to translation of either representation, orthogonal maps
    and unit permutations of either (the penalty is rotation invariant, R^2 pools the columns), and
    isotropic scaling of Y; not to rescaling X (the penalty scale changes) or other linear maps.

    Parameters
    ----------
    X : array (n, p)
        Predictor representation.
    Y : array (n, q)
        Target representation.
    alphas : sequence of float > 0, default 10^-3 ... 10^3
    cv : int >= 2, default 5
        Number of folds (at most n / 2, so that every fold has 2 rows).
    random_state : int or Generator, default 0
        Shuffles the rows before they are cut into folds.
    n_jobs : int, optional

    Returns
    -------
    float <= 1

    Raises
    ------
    ValueError
        Different row counts, NaN/infinity, a constant Y, cv outside [2, n / 2], bad alphas.

    References
    ----------
    Schrimpf et al., "Brain-Score: which artificial neural network for object recognition is most
    brain-like?", bioRxiv 2018; Yamins et al., PNAS 2014.
    """
    from ..alignment import RidgeMap

    X = as_float_matrix(X, "X", min_rows=4)
    Y = as_float_matrix(Y, "Y", min_rows=4)
    check_same_rows(X, Y)
    if not (Y != Y[:1]).any():
        raise ValueError("Y is constant (all rows equal): R^2 is undefined. Check that the target "
                         "representation is not collapsed.")
    n = X.shape[0]
    cv = check_positive_int(cv, "cv", minimum=2, maximum=n // 2)
    alphas = [check_scalar(a, "alphas[i]", minimum=0.0, include_minimum=False)
              for a in np.atleast_1d(np.asarray(alphas, dtype=object))]
    if not alphas:
        raise ValueError("alphas must hold at least one penalty.")
    order = check_random_state(random_state).permutation(n)
    sse = sst = 0.0
    for test in np.array_split(order, cv):
        train = np.setdiff1d(order, test, assume_unique=True)
        Ytr = Y[train].astype(np.float64)
        model = RidgeMap(alphas=alphas, n_jobs=n_jobs).fit(X[train], Ytr)
        Yte = Y[test].astype(np.float64)
        sse += float(np.sum((Yte - model.transform(X[test])) ** 2))
        sst += float(np.sum((Yte - Ytr.mean(axis=0)) ** 2))
    return 1.0 - sse / sst
