"""Intrinsic dimension of activations, and Whitney's count of the measurements that embed it.

Bertalan, Dietrich, Kevrekidis et al. (arXiv:2007.05646) observe the input space of a network
(intrinsic dimension d) through m selected neurons. By Whitney's embedding theorem m >= 2 d + 1
generic smooth measurements embed a d-dimensional manifold one-to-one (no folding); fewer can fold
it onto itself (the output alone of a non-monotone function is such a fold), and then no map from
those measurements can recover the input or the other network's neurons.

* :func:`intrinsic_dimension`: the maximum-likelihood estimate of Levina and Bickel (2004) with the
  averaging of MacKay and Ghahramani (2005);
* :func:`whitney_check`: compares the number of measurements with ``2 d + 1`` and warns
  (:class:`~latentbridge.diffusion.WhitneyWarning`) when it is smaller.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import as_float_matrix, check_bool, check_n_jobs, check_positive_int, check_scalar
from .._warnings import warn_user
from .exceptions import WhitneyWarning
from .graph import euclidean_candidates

__all__ = ["intrinsic_dimension", "whitney_check", "WhitneyCheck"]


def intrinsic_dimension(Y, *, n_neighbors=10, n_jobs=None):
    """Maximum-likelihood estimate of the intrinsic dimension of the rows of ``Y`` (Levina-Bickel).

    With ``T_j(y)`` the Euclidean distance from y to its j-th nearest neighbour, the local estimate
    at y with k neighbours is ``m_k(y) = [(1 / (k - 1)) sum_{j=1}^{k-1} log(T_k(y) / T_j(y))]^-1``
    (Levina and Bickel 2004, equation 8); the estimates are combined as
    ``d = [mean_y 1 / m_k(y)]^-1`` (MacKay and Ghahramani 2005), which is unbiased where averaging
    ``m_k`` itself is not.

    Parameters
    ----------
    Y : array_like of shape (n, m)
        Points (e.g. the activations of m neurons for n inputs).
    n_neighbors : int, default 10
        k, the neighbours per point (at least 2, at most n - 1). Small k sees the local
        dimension; noise of scale s inflates the estimate at distances comparable to s.
    n_jobs : int, optional
        CPU threads of the neighbour search (None: 1, -1: all CPUs).

    Returns
    -------
    dimension : float
        The estimate (not rounded).

    Raises
    ------
    ValueError
        NaN/inf, fewer than ``n_neighbors + 1`` points, ``n_neighbors < 2``, or duplicated
        points (a zero neighbour distance has no logarithm: remove duplicates first).

    References
    ----------
    .. [1] E. Levina and P. J. Bickel, "Maximum likelihood estimation of intrinsic dimension",
       NeurIPS 17 (2004).
    .. [2] D. J. C. MacKay and Z. Ghahramani, "Comments on 'Maximum likelihood estimation of
       intrinsic dimension' by E. Levina and P. Bickel" (2005).
    """
    k = check_positive_int(n_neighbors, "n_neighbors")
    if k < 2:
        raise ValueError(f"n_neighbors must be at least 2 (the estimate compares neighbour distances); got {k}.")
    Y = as_float_matrix(Y, "Y", dtype=np.float64, min_rows=k + 1)
    _, d2 = euclidean_candidates("cpu", Y, None, k, check_n_jobs(n_jobs))
    if not np.all(d2[:, 0] > 0):
        bad = int(np.flatnonzero(~(d2[:, 0] > 0))[0])
        raise ValueError(
            f"Y[{bad}] has a duplicate: zero neighbour distances have no logarithm. Remove duplicated "
            "rows (e.g. numpy.unique(Y, axis=0)) before estimating the dimension.")
    log_t = 0.5 * np.log(d2)
    inverse_local = np.mean(log_t[:, -1:] - log_t[:, :-1], axis=1)  # 1 / m_k(y)
    mean_inverse = float(np.mean(inverse_local))
    if mean_inverse <= 0:
        raise ValueError("Y has too many ties among neighbour distances to estimate a dimension.")
    return 1.0 / mean_inverse


class WhitneyCheck(NamedTuple):
    """The result of :func:`~latentbridge.whitney_check`.

    Attributes
    ----------
    dimension : float
        The intrinsic dimension d used (estimated, or the one given).
    n_measurements : int
        m, the number of measurements (columns of Y: the selected neurons).
    required : int
        ``2 round(d) + 1`` (at least 3), Whitney's count for a generic embedding.
    sufficient : bool
        ``n_measurements >= required``.
    """

    dimension: float
    n_measurements: int
    required: int
    sufficient: bool


def whitney_check(Y, *, dimension=None, n_neighbors=10, warn=True, n_jobs=None):
    """Whether the m measurements (columns of ``Y``) are enough to embed the data without folding.

    Whitney's theorem: ``m >= 2 d + 1`` generic smooth measurements of a d-dimensional manifold
    embed it one-to-one. The condition is sufficient, not necessary (a monotone 1-D curve is
    embedded by one measurement), so a failed check flags a risk: the activation manifold may
    fold onto itself, and a transformation built on it can confuse distant inputs.

    Parameters
    ----------
    Y : array_like of shape (n, m)
        The measurements (e.g. selected neurons' activations for n inputs).
    dimension : float, optional
        The intrinsic dimension d when known (e.g. the input dimension of the network); default
        :func:`intrinsic_dimension` of Y.
    n_neighbors : int, default 10
        Passed to :func:`intrinsic_dimension` (unused when ``dimension`` is given).
    warn : bool, default True
        Warn (:class:`~latentbridge.diffusion.WhitneyWarning`) when the check fails.
    n_jobs : int, optional
        CPU threads of the neighbour search.

    Returns
    -------
    WhitneyCheck
        ``(dimension, n_measurements, required, sufficient)``.

    Raises
    ------
    ValueError
        Bad ``Y`` (see :func:`intrinsic_dimension`) or a non-positive ``dimension``.

    Warns
    -----
    WhitneyWarning
        When ``n_measurements < 2 round(d) + 1`` and ``warn`` is true (the estimate is rounded
        to the nearest integer, at least 1).

    References
    ----------
    .. [1] H. Whitney, "Differentiable manifolds", Annals of Mathematics 37 (1936).
    .. [2] T. Bertalan, F. Dietrich, I. G. Kevrekidis et al., "Transformations between deep neural
       networks", arXiv:2007.05646.
    """
    warn = check_bool(warn, "warn")
    Y = as_float_matrix(Y, "Y", dtype=np.float64, min_rows=2)
    if dimension is None:
        d = intrinsic_dimension(Y, n_neighbors=n_neighbors, n_jobs=n_jobs)
    else:
        d = check_scalar(dimension, "dimension", minimum=0.0, include_minimum=False)
    m = Y.shape[1]
    required = 2 * max(1, round(d)) + 1
    result = WhitneyCheck(float(d), int(m), int(required), bool(m >= required))
    if warn and not result.sufficient:
        warn_user(
            f"{m} measurement(s) of a {d:.2f}-dimensional manifold: Whitney's theorem guarantees an "
            f"embedding without folding only from {required} (2 d + 1) generic measurements. Select "
            "more neurons (e.g. hidden units as well as the outputs).", WhitneyWarning)
    return result
