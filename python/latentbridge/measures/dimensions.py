"""Effective number of shared dimensions (ENSD) of two representations.

Computed in feature space from the centred scatter matrices (:mod:`._moments`), with the Gram
matrices ``K_x = X_c X_c^T`` and ``K_y = Y_c Y_c^T`` never formed: ``tr K_x = tr S_xx``,
``tr(K_x^2) = ||S_xx||_F^2`` and ``tr(K_x K_y) = ||S_xy||_F^2``.
"""

from __future__ import annotations

import numpy as np

from ._moments import centred_moments

__all__ = ["ensd", "participation_ratio"]


def _frob2(A):
    return float(np.einsum("ij,ij->", A, A))


def participation_ratio(S):
    """``PR = tr(S)^2 / tr(S^2)`` of a scatter matrix: the effective number of dimensions."""
    return float(np.trace(S)) ** 2 / _frob2(S)


def ensd(X, Y, *, n_jobs=None):
    """Effective number of shared dimensions (Giaffar et al. 2023).

    ``ENSD(X, Y) = tr(K_x) tr(K_y) tr(K_x K_y) / (tr(K_x^2) tr(K_y^2))
    = PR(X) PR(Y) tr(K_x K_y) / (tr K_x tr K_y)``, with column-centred Gram matrices
    ``K = X_c X_c^T`` and ``PR(X) = tr(K_x)^2 / tr(K_x^2)`` the participation ratio.

    It is not bounded by 1: ``ENSD(X, X) = PR(X)`` (the effective dimensionality of X).
    Symmetric; invariant to translation, isotropic scaling,
    orthogonal maps and unit permutations; not a metric.

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)
    n_jobs : int, optional
        Threads of the scatter-matrix accumulation.

    Returns
    -------
    float >= 0

    Raises
    ------
    ValueError
        Fewer than 2 rows, different row counts, NaN/infinity, a constant representation.

    References
    ----------
    Giaffar, Rangel Buitrago, Shen & Turner, "The effective number of shared dimensions: a simple
    method for revealing shared structure between datasets", bioRxiv 2023.07.27.550815.
    """
    m = centred_moments(X, Y, n_jobs=n_jobs)
    return float(np.trace(m.sxx) * np.trace(m.syy) * _frob2(m.sxy)
                 / (_frob2(m.sxx) * _frob2(m.syy)))
