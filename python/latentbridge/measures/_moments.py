"""Feature-space second moments shared by the linear measures (shape metrics, CCA, Bures, ENSD, GULP).

Every linear measure of this package is a function of the centred scatter matrices
``S_xx = X_c^T X_c`` (p, p), ``S_yy = Y_c^T Y_c`` (q, q) and ``S_xy = X_c^T Y_c`` (p, q), with
``X_c``, ``Y_c`` the column-centred representations. They are accumulated once, in float64, by the
project's streamed statistics engine (:class:`latentbridge._stats.CrossStats`), in O(n (p + q)^2)
time and O((p + q)^2) memory: no n x n matrix is formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._stats import CrossStats, backend_for
from .._validation import check_allocation, check_n_jobs, check_scalar
from .._warnings import warn_user
from ..similarity import _pair

__all__ = ["RegularisationWarning", "Moments", "centred_moments", "whitener", "psd_eigh", "nuclear_norm",
           "DEFAULT_RIDGE"]

#: ridge (in units of the mean variance of the representation) used when the CCA family is asked
#: for a value where rank(X) + rank(Y) > n - 1 and no ridge was given
DEFAULT_RIDGE = 0.1


class RegularisationWarning(UserWarning):
    """A measure returned a documented regularised value because the plain one is undefined."""


@dataclass
class Moments:
    """Centred scatter matrices of two representations of the same n samples (float64)."""

    n: int
    sxx: np.ndarray
    syy: np.ndarray
    sxy: np.ndarray


def centred_moments(X, Y, *, n_jobs=None, device="cpu", min_rows=2):
    """Validate X and Y and return their centred scatter matrices (:class:`Moments`).

    Raises
    ------
    ValueError
        Fewer than ``min_rows`` rows, different row counts, NaN/infinity, or a constant
        representation (all rows equal: every linear measure is undefined).
    MemoryError
        When the three scatter matrices would not fit in memory.
    """
    X, Y = _pair(X, Y, min_rows, rescale=True)
    p, q = X.shape[1], Y.shape[1]
    check_allocation(8 * 3 * (p * p + q * q + p * q),
                     f"scatter matrices (p, q) = ({p}, {q}) float64")
    st = CrossStats(p, q, want_yy=True, n_threads=check_n_jobs(n_jobs), backend=backend_for(device))
    st.update(X, Y)
    return Moments(n=X.shape[0], sxx=st.cxx(), syy=st.cyy(), sxy=st.cxy())


def psd_eigh(S):
    """Eigenvalues (clipped at 0) and eigenvectors of a symmetric PSD matrix, and its rank.

    Directions with eigenvalue at most ``p * eps * lambda_max`` are treated as absent: they are
    below the rounding of the float64 accumulation.
    """
    w, V = np.linalg.eigh(S)
    w = np.clip(w, 0.0, None)
    tol = w.max(initial=0.0) * S.shape[0] * np.finfo(np.float64).eps
    return w, V, int(np.sum(w > tol)), tol


def whitener(S, *, alpha=0.0, ridge=0.0):
    """Partial whitening matrix ``M = ((1 - alpha) S + (alpha + ridge) mu I)^(-1/2)`` and rank(S).

    ``mu = tr(S) / p`` is the mean eigenvalue, so ``M`` is invariant to rescaling the data up to a
    scalar factor (the measures built on it are normalised). With ``alpha = ridge = 0`` the
    inverse square root is taken on the range of ``S`` only (a pseudo-inverse): its absent
    directions are dropped.
    """
    w, V, rank, tol = psd_eigh(S)
    mu = float(w.sum()) / S.shape[0]
    shrink = (1.0 - alpha) * w + (alpha + ridge) * mu
    keep = w > tol if alpha + ridge == 0 else shrink > 0
    inv_sqrt = np.zeros_like(w)
    inv_sqrt[keep] = 1.0 / np.sqrt(shrink[keep])
    return (V * inv_sqrt) @ V.T, rank


def nuclear_norm(A):
    """Sum of the singular values of A."""
    return float(np.linalg.svd(A, compute_uv=False).sum())


def check_ridge(ridge, kx, ky, n, what):
    """The ridge to use for the CCA family: ``ridge`` when given, else 0 where the plain value is
    defined (rank(X) + rank(Y) <= n - 1) and :data:`DEFAULT_RIDGE` with a warning where not."""
    if ridge is not None:
        return check_scalar(ridge, "ridge", minimum=0.0)
    if kx + ky <= n - 1:
        return 0.0
    warn_user(
        f"{what}: rank(X) + rank(Y) = {kx} + {ky} > n - 1 = {n - 1} (fewer samples than features), "
        f"so {kx + ky - (n - 1)} canonical correlation(s) equal 1 whatever the data; returning the "
        f"ridge-regularised value (ridge = {DEFAULT_RIDGE} x the mean variance). Pass more samples, "
        "or ridge= explicitly to choose the regularisation and silence this warning.",
        RegularisationWarning)
    return DEFAULT_RIDGE
