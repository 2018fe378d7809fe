"""Geometric harmonics: extend any function sampled on a point set to new points (Nystrom).

Coifman and Lafon, "Geometric harmonics" (ACHA 21, 2006): the eigenvectors ``psi_l`` of the
Gaussian kernel matrix ``K_ij = exp(-|x_i - x_j|^2 / (2 epsilon))`` of the training points, with
eigenvalues ``sigma_l``, extend to any point x by the Nystrom formula
``Psi_l(x) = (1 / sigma_l) sum_j k(x, x_j) psi_l(j)``. A function f sampled at the training points
is projected onto the harmonics whose eigenvalue is above ``delta`` times the largest and extended
term by term:

    f(x) ~ sum_{l: sigma_l > delta sigma_0} <psi_l, f> Psi_l(x).

In the transformation between networks (Bertalan et al., arXiv:2007.05646, Algorithm 2) the points
are network B's diffusion coordinates and f is any function of B's inputs sampled there (another
neuron, an output, a decoder's image): fitted on ``(dmap_b.embedding_, f)``, the estimator is
evaluated at ``phi_a @ O``, A's coordinates mapped into B's.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from threadpoolctl import threadpool_limits

from .._base import BaseEstimator, check_features, check_is_fitted
from .._validation import (
    as_float_matrix,
    check_allocation,
    check_choice,
    check_n_jobs,
    check_positive_int,
    check_scalar,
)
from ..distance import pairwise_distances

__all__ = ["GeometricHarmonics"]

#: Largest training set (the kernel matrix is dense, its eigendecomposition O(n^3)).
_MAX_POINTS = 6000


class GeometricHarmonics(RegressorMixin, BaseEstimator):
    """Extend functions sampled on points to new points by geometric harmonics (Nystrom).

    Parameters
    ----------
    epsilon : "auto" or float, default "auto"
        Kernel ``exp(-|x - x_j|^2 / (2 epsilon))`` (the convention of
        :class:`~latentbridge.DiffusionMaps`). ``"auto"``: the median over the training points of
        the squared distance to the ``k_epsilon``-th nearest neighbour.
    k_epsilon : int, default 10
        Neighbour rank used by ``epsilon="auto"``.
    delta : float, default 1e-6
        Keep the harmonics with ``sigma_l > delta * sigma_0``: larger values extend more smoothly
        (fewer, smoother harmonics) and interpolate the training values less exactly.
    n_harmonics : int, optional
        At most this many harmonics (the largest eigenvalues); default all above ``delta``.
    n_jobs : int, optional
        BLAS threads of the eigendecomposition and the kernel products (None: 1, -1: all CPUs).

    Attributes
    ----------
    epsilon_ : float
        Bandwidth used.
    eigenvalues_ : ndarray of shape (``n_harmonics_``,)
        The kept ``sigma_l``, descending.
    n_harmonics_ : int
        Number of kept harmonics.
    dual_coef_ : ndarray of shape (n, q)
        ``sum_l psi_l <psi_l, f> / sigma_l``: predictions are ``k(x, X_fit) @ dual_coef_``.
    X_fit_ : ndarray of shape (n, p)
        The training points.
    n_features_in_ : int

    Notes
    -----
    At a training point the extension is the projection of f onto the kept harmonics, so a
    function spanned by them (in particular each kept ``psi_l`` itself) is reproduced exactly there;
    with ``delta`` small enough the estimator interpolates. Memory and time are those of the dense
    n x n kernel (at most 6000 training points: subsample larger sets).

    References
    ----------
    .. [1] R. R. Coifman and S. Lafon, "Geometric harmonics: a novel tool for multiscale
       out-of-sample extension of empirical functions", ACHA 21 (2006).
    .. [2] T. Bertalan, F. Dietrich, I. G. Kevrekidis et al., "Transformations between deep neural
       networks", arXiv:2007.05646.

    Examples
    --------
    >>> import numpy as np, latentbridge as lb
    >>> t = np.linspace(0, 1, 200)[:, None]
    >>> gh = lb.GeometricHarmonics().fit(t, np.sin(3 * t[:, 0]))
    >>> bool(abs(gh.predict([[0.5]])[0] - np.sin(1.5)) < 1e-3)
    True
    """

    def __init__(self, *, epsilon="auto", k_epsilon=10, delta=1e-6, n_harmonics=None, n_jobs=None):
        self.epsilon = epsilon
        self.k_epsilon = k_epsilon
        self.delta = delta
        self.n_harmonics = n_harmonics
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y may be (n, q): q functions extended at once
        tags.target_tags.single_output = True
        return tags

    def fit(self, X, y):
        """Eigendecompose the kernel of the points ``X`` and project the values ``y``.

        Parameters
        ----------
        X : array_like of shape (n, p)
            Training points (e.g. diffusion coordinates).
        y : array_like of shape (n,) or (n, q)
            The function values at the training points.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            NaN/inf, mismatched rows, too few or too many points, bad parameters, or an
            ``epsilon="auto"`` of 0 (duplicated points).
        """
        if isinstance(self.epsilon, str):
            check_choice(self.epsilon, "epsilon", ("auto",))
        else:
            check_scalar(self.epsilon, "epsilon", minimum=0.0, include_minimum=False)
        k = check_positive_int(self.k_epsilon, "k_epsilon")
        delta = check_scalar(self.delta, "delta", minimum=0.0, maximum=1.0, include_maximum=False)
        if self.n_harmonics is not None:
            check_positive_int(self.n_harmonics, "n_harmonics")
        threads = check_n_jobs(self.n_jobs)
        X = check_features(self, X, reset=True, min_rows=2)
        X = np.asarray(X, dtype=np.float64)
        if y is None:
            raise ValueError("GeometricHarmonics requires y to be passed, but the target y is None: pass the "
                             "function values at the rows of X.")
        n = X.shape[0]
        Y = np.asarray(y)
        if Y.ndim not in (1, 2):  # before as_float_matrix, whose message would ask for 2-D only
            raise ValueError(f"y must be 1-D of shape ({n},) or 2-D of shape ({n}, q): one value or row "
                             f"of values per row of X; got shape {Y.shape}.")
        values = as_float_matrix(Y[:, None] if Y.ndim == 1 else Y, "y", dtype=np.float64)
        if values.shape[0] != n:
            raise ValueError(f"X and y must have the same number of rows; got {n} and {values.shape[0]}.")
        if n > _MAX_POINTS:
            raise ValueError(
                f"X has {n} points; geometric harmonics eigendecompose the dense n x n kernel (at "
                f"most {_MAX_POINTS} points). Fit on a random subsample of the points.")
        if self.epsilon == "auto" and k > n - 1:
            raise ValueError(f"k_epsilon={k} needs more than {k} points; X has {n}.")
        check_allocation(4 * 8 * n * n, f"GeometricHarmonics kernel ({n}, {n}) float64")
        D2 = _sqdist(X, X)
        if self.epsilon == "auto":
            eps = float(np.median(np.partition(D2, k, axis=1)[:, k]))  # column 0 is the point itself
            if not eps > 0:
                raise ValueError(
                    "epsilon='auto' is 0: at least half of the points have k_epsilon duplicates. "
                    "Remove duplicates, raise k_epsilon or pass a positive epsilon.")
        else:
            eps = float(self.epsilon)
        with threadpool_limits(limits=threads, user_api="blas"):
            sigma, psi = np.linalg.eigh(np.exp(-D2 / (2.0 * eps)))
        sigma, psi = sigma[::-1], psi[:, ::-1]
        keep = int(np.sum(sigma > delta * sigma[0]))
        if self.n_harmonics is not None:
            keep = min(keep, int(self.n_harmonics))
        keep = max(keep, 1)
        sigma, psi = sigma[:keep], psi[:, :keep]
        self.epsilon_ = eps
        self.eigenvalues_ = sigma
        self.n_harmonics_ = keep
        with threadpool_limits(limits=threads, user_api="blas"):
            self.dual_coef_ = psi @ ((psi.T @ values) / sigma[:, None])
        self.X_fit_ = X
        self._y_1d = Y.ndim == 1
        return self

    def predict(self, X):
        """The extended function at new points.

        Parameters
        ----------
        X : array_like of shape (n_new, p)

        Returns
        -------
        values : ndarray of shape (n_new,) or (n_new, q)
            Shaped like the ``y`` of :meth:`fit`.
        """
        check_is_fitted(self, "dual_coef_")
        X = np.asarray(check_features(self, X, reset=False), dtype=np.float64)
        check_allocation(8 * X.shape[0] * self.X_fit_.shape[0],
                         f"GeometricHarmonics.predict kernel rows ({X.shape[0]}, {self.X_fit_.shape[0]})")
        with threadpool_limits(limits=check_n_jobs(self.n_jobs), user_api="blas"):
            out = np.exp(-_sqdist(X, self.X_fit_) / (2.0 * self.epsilon_)) @ self.dual_coef_
        return out[:, 0] if self._y_1d else out


def _sqdist(A, B):
    """Exact squared Euclidean distances (n_a, n_b), never negative."""
    return pairwise_distances(A, B, metric="sqeuclidean")
