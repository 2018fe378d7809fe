"""Maps between latent spaces, fitted from paired (or class-labelled) samples.

Every estimator follows scikit-learn: ``fit(X, Y)`` learns the map from X's space (n, p) to Y's
space (n, q), ``transform(X)`` returns the prediction of Y, ``score(X, Y)`` is the coefficient of
determination R^2 averaged over Y's columns (scikit-learn's ``r2_score`` convention), and
``get_params``/``set_params`` come from :class:`~latentbridge._base.BaseEstimator`. Every affine map
is exposed the same way: ``coef_`` of shape (q, p) and ``intercept_`` of shape (q,), so that
``transform(X) = X @ coef_.T + intercept_``.

Statistics are formed in float64 (streamed through :class:`~latentbridge._stats.CrossStats`); the
output of ``transform`` is float32 only when the input is float32.

References
----------
Lähner & Moeller, "On the direct alignment of latent spaces" (2023).
McNeely-White, Beveridge & Draper, "Inception and ResNet features are (almost) equivalent" (2020);
"Same features, different day: weakly supervised feature learning ..." (face verification, LFW).
Golub, Heath & Wahba, "Generalized cross-validation as a method for choosing a good ridge
parameter", Technometrics 21 (1979).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np

from ._base import BaseEstimator, check_is_fitted
from ._stats import CrossStats, backend_for
from ._validation import (
    as_float_matrix,
    check_n_jobs,
    check_positive_int,
    check_same_rows,
)

__all__ = [
    "Procrustes",
    "LinearMap",
    "RidgeMap",
    "analytic_map",
    "class_means",
    "ICP",
    "StitchingMLP",
]


# ---- shared helpers ---------------------------------------------------------------------------

def _pair(X, Y, *, min_rows=1):
    X = as_float_matrix(X, "X", min_rows=min_rows)
    Y = as_float_matrix(Y, "Y", min_rows=min_rows)
    check_same_rows(X, Y)
    return X, Y


def _r2(Y, P):
    """Coefficient of determination averaged over columns (scikit-learn's r2_score)."""
    Y = np.asarray(Y, dtype=np.float64)
    P = np.asarray(P, dtype=np.float64)
    ss_res = ((Y - P) ** 2).sum(axis=0)
    ss_tot = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    out = np.ones_like(ss_res)
    ok = ss_tot > 0
    out[ok] = 1.0 - ss_res[ok] / ss_tot[ok]
    out[~ok & (ss_res > 0)] = 0.0
    return float(out.mean())


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}.")
    return bool(value)


def _check_alpha(alpha, name="alpha"):
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a non-negative number; got {alpha!r}.") from None
    if not np.isfinite(a) or a < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {alpha!r}.")
    return a


class _AffineMap(BaseEstimator):
    """transform/score/fit_transform of a fitted affine map ``X @ coef_.T + intercept_``."""

    def _check_X(self, X):
        check_is_fitted(self, "coef_")
        X = as_float_matrix(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features but {type(self).__name__} was fitted with "
                f"{self.n_features_in_}; pass data from the same space as in fit."
            )
        return X

    def transform(self, X):
        """Map rows of X (n, p) into the target space: returns (n, q)."""
        X = self._check_X(X)
        out = X.astype(np.float64, copy=False) @ self.coef_.T + self.intercept_
        return out.astype(X.dtype, copy=False)

    def predict(self, X):
        """Alias of :meth:`transform` (scikit-learn regressor API)."""
        return self.transform(X)

    def fit_transform(self, X, Y):
        """``fit(X, Y).transform(X)``."""
        return self.fit(X, Y).transform(X)

    def score(self, X, Y):
        """R^2 of ``transform(X)`` against Y, averaged over Y's columns."""
        P = self.transform(X)
        Y = as_float_matrix(Y, "Y")
        check_same_rows(P, Y, ("X", "Y"))
        if Y.shape[1] != P.shape[1]:
            raise ValueError(f"Y must have {P.shape[1]} columns (the fitted target space); got "
                             f"{Y.shape[1]}.")
        return _r2(Y, P)

    def _set_affine(self, coef, intercept, n_features):
        self.coef_ = np.ascontiguousarray(coef, dtype=np.float64)
        self.intercept_ = np.asarray(intercept, dtype=np.float64).reshape(-1)
        self.n_features_in_ = int(n_features)
        self.n_targets_ = int(self.coef_.shape[0])


# ---- Procrustes ------------------------------------------------------------------------------

class Procrustes(_AffineMap):
    """Orthogonal map (optionally with isotropic scale and translation).

    Fits ``Y ~ s (X - m_X) R + m_Y`` with ``R`` orthogonal (p == q) or with orthonormal rows/columns
    (p != q: ``R`` of shape (p, q) with ``R^T R = I`` or ``R R^T = I``), minimising the squared
    Frobenius error; ``s = 1`` unless ``scale=True``; ``m_X = m_Y = 0`` unless ``center=True``.
    ``R = U V^T`` from the SVD ``U S V^T`` of ``(X - m_X)^T (Y - m_Y)`` and
    ``s = trace(S) / ||X - m_X||_F^2`` (Schönemann 1966). ``center=True, scale=False`` is the rigid
    (Euclidean-group) alignment of Lähner & Moeller.

    Parameters
    ----------
    scale : bool, default False
        Fit the isotropic scale ``s``.
    center : bool, default True
        Remove the means (fit a translation).

    Attributes
    ----------
    rotation_ : ndarray (p, q)
    scale_ : float
    mean_x_, mean_y_ : ndarray (p,), (q,)
    coef_ : ndarray (q, p) equal to ``scale_ * rotation_.T``
    intercept_ : ndarray (q,)
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np, latentbridge as lb
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(50, 3))
    >>> Q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    >>> bool(np.allclose(lb.Procrustes().fit(X, X @ Q + 1).transform(X), X @ Q + 1))
    True
    """

    def __init__(self, *, scale=False, center=True):
        self.scale = scale
        self.center = center

    def fit(self, X, Y):
        """Fit the map from paired rows of X (n, p) and Y (n, q)."""
        scale = _check_bool(self.scale, "scale")
        center = _check_bool(self.center, "center")
        X, Y = _pair(X, Y)
        p, q = X.shape[1], Y.shape[1]
        if center:
            st = CrossStats(p, q, want_xx=False)
            st.update(X, Y)
            M, mx, my = st.cxy(), st.mean_x(), st.mean_y()
            x_ss = float(st.xx_diag().sum()) if scale else None
        else:
            X64, Y64 = X.astype(np.float64, copy=False), Y.astype(np.float64, copy=False)
            M, mx, my = X64.T @ Y64, np.zeros(p), np.zeros(q)
            x_ss = float(np.einsum("ij,ij->", X64, X64)) if scale else None
        U, S, Vt = np.linalg.svd(M, full_matrices=False)
        R = U @ Vt
        s = 1.0
        if scale:
            s = float(S.sum() / x_ss) if x_ss > 0 else 0.0
        self.rotation_, self.scale_ = R, s
        self.mean_x_, self.mean_y_ = mx, my
        coef = s * R.T
        self._set_affine(coef, my - mx @ coef.T, p)
        return self


# ---- LinearMap ------------------------------------------------------------------------------

class LinearMap(_AffineMap):
    """Least-squares linear (affine) map ``Y ~ X W + b``.

    Minimises ``||Y - X W - 1 b^T||_F^2``; when the system is under-determined (rank(X_c) < p, e.g.
    fewer anchor pairs than dimensions) the minimum-norm ``W`` is returned (LAPACK ``gelsd``), as in
    Lähner & Moeller. The intercept is not part of the norm.

    Parameters
    ----------
    fit_intercept : bool, default True

    Attributes
    ----------
    coef_ : ndarray (q, p)
    intercept_ : ndarray (q,)
    rank_ : int
        Numerical rank of the (centred) X.
    n_features_in_ : int
    """

    def __init__(self, *, fit_intercept=True):
        self.fit_intercept = fit_intercept

    def fit(self, X, Y):
        """Fit from paired rows of X (n, p) and Y (n, q)."""
        from scipy.linalg import lstsq

        fit_intercept = _check_bool(self.fit_intercept, "fit_intercept")
        X, Y = _pair(X, Y)
        X64 = X.astype(np.float64)
        Y64 = Y.astype(np.float64)
        mx = X64.mean(axis=0) if fit_intercept else np.zeros(X.shape[1])
        my = Y64.mean(axis=0) if fit_intercept else np.zeros(Y.shape[1])
        W, _, rank, _ = lstsq(X64 - mx, Y64 - my, lapack_driver="gelsd")
        self.rank_ = int(rank)
        self._set_affine(W.T, my - mx @ W, X.shape[1])
        return self


# ---- RidgeMap -------------------------------------------------------------------------------

class RidgeMap(_AffineMap):
    """Ridge regression map from streamed float64 sufficient statistics, with fast CV over alphas.

    Minimises ``||Y - X W - 1 b^T||_F^2 + alpha ||W||_F^2`` (intercept not penalised): the same
    estimator as scikit-learn's ``Ridge(alpha, fit_intercept=True)``. Only the sufficient
    statistics ``X^T X``, ``X^T Y``, column sums and ``sum ||y||^2`` are kept (float64,
    O(p^2 + p q) memory), so :meth:`partial_fit` over row chunks of any total size gives the same
    map as :meth:`fit` on the concatenation (McNeely-White et al. fit 1.3M ImageNet features this
    way).

    Parameters
    ----------
    alpha : float, default 1.0
        Penalty used when ``alphas`` is None.
    alphas : sequence of float, optional
        Candidate penalties. The one with the smallest generalised cross-validation error
        (Golub, Heath & Wahba 1979) ``GCV(a) = n RSS(a) / (n - df(a))^2`` summed over outputs, with
        ``df(a) = fit_intercept + sum_k s_k / (s_k + a)`` (``s_k`` the eigenvalues of the centred
        ``X^T X``), is chosen. Every candidate is evaluated from ONE eigendecomposition of ``X^T X``
        and the streamed statistics, in O(p q) per alpha: no solve per alpha and no pass over the
        data. GCV is the rotation-invariant form of leave-one-out CV (it replaces the leverages
        h_ii by their mean); unlike scikit-learn's exact leave-one-out it needs no second pass
        over the rows, which is what makes it usable with ``partial_fit``.
    fit_intercept : bool, default True
    n_jobs : int, optional
        Threads of the native accumulation kernel (None: 1, -1: all CPUs).
    device : {"cpu", "auto", "cuda"}, default "cpu"
        Where the statistics are accumulated ("auto": a CUDA device when one is usable). The solve
        (p x p eigendecomposition) runs on the CPU in float64.

    Attributes
    ----------
    coef_ : ndarray (q, p)
    intercept_ : ndarray (q,)
    alpha_ : float
        The penalty used (``alpha``, or the GCV choice among ``alphas``).
    cv_values_ : ndarray (len(alphas),)
        GCV error per candidate (mean over outputs), only when ``alphas`` is given.
    n_samples_seen_ : int
    n_features_in_ : int

    Notes
    -----
    Eigen-directions of ``X^T X`` whose eigenvalue is at its rounding level
    (``<= p eps max eigenvalue``) are treated as exactly null (their data term is rounding noise):
    they get no weight whatever ``alpha``, which is the exact ridge solution for rank-deficient X
    and keeps data of large magnitude (e.g. 1e30) with a small ``alpha`` from amplifying rounding.

    The statistics stay in ``stats_``; ``partial_fit`` adds a chunk to them and ``fit`` starts
    afresh. The solve (one O(p^3) eigendecomposition) runs lazily, when a fitted attribute or
    ``transform`` is first used after the last chunk, so streaming many chunks costs one solve.
    """

    def __init__(self, *, alpha=1.0, alphas=None, fit_intercept=True, n_jobs=None, device="cpu"):
        self.alpha = alpha
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.n_jobs = n_jobs
        self.device = device

    def _check_params(self):
        _check_bool(self.fit_intercept, "fit_intercept")
        if self.alphas is None:
            return None, _check_alpha(self.alpha)
        try:
            alphas = np.asarray(self.alphas, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise TypeError(f"alphas must be a sequence of numbers; got {self.alphas!r}.") from None
        if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
            raise ValueError(f"alphas must be a non-empty sequence of finite numbers >= 0; got "
                             f"{self.alphas!r}.")
        return alphas, None

    def fit(self, X, Y):
        """Fit on all rows of X (n, p) and Y (n, q) (statistics accumulated in row blocks)."""
        self.__dict__.pop("stats_", None)
        return self.partial_fit(X, Y)

    def partial_fit(self, X, Y):
        """Add a chunk of paired rows to the statistics and re-solve."""
        self._check_params()
        X, Y = _pair(X, Y)
        st = getattr(self, "stats_", None)
        if st is None:
            st = CrossStats(X.shape[1], Y.shape[1], n_threads=check_n_jobs(self.n_jobs),
                            backend=backend_for(self.device))
        elif X.shape[1] != st.p or Y.shape[1] != st.q:
            raise ValueError(
                f"partial_fit chunk has shapes X (.., {X.shape[1]}), Y (.., {Y.shape[1]}) but "
                f"earlier chunks had ({st.p}, {st.q}); every chunk must come from the same spaces."
            )
        st.update(X, Y)
        self.stats_ = st
        for name in self._LAZY:         # solved on first use (one O(p^3) solve, not per chunk)
            self.__dict__.pop(name, None)
        self._solved = False
        return self

    _LAZY = ("coef_", "intercept_", "alpha_", "cv_values_", "n_targets_", "n_samples_seen_",
             "n_features_in_")

    def __getattr__(self, name):
        # Fitted attributes after partial_fit are computed when first read.
        d = self.__dict__
        if name in RidgeMap._LAZY and "stats_" in d and not d.get("_solved", True):
            self._solve()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _solve(self):
        self._solved = True
        alphas, alpha = self._check_params()
        st = self.stats_
        n, p, q = st.n, st.p, st.q
        fit_intercept = bool(self.fit_intercept)
        if fit_intercept:
            A, B = st.cxx(), st.cxy()
            mx, my = st.mean_x(), st.mean_y()
            yy = float(st.yy_diag().sum())
        else:
            dx, dy = st.shift_x, st.shift_y
            # raw (uncentred) statistics from the shifted ones
            A = st._sym(st.Sxx) + np.outer(st.sx, dx) + np.outer(dx, st.sx) + n * np.outer(dx, dx)
            B = (np.asarray(st.Sxy) + np.outer(st.sx, dy) + np.outer(dx, st.sy)
                 + n * np.outer(dx, dy))
            yy = float(st.syy.sum() + 2 * st.sy @ dy + n * dy @ dy)
            mx, my = np.zeros(p), np.zeros(q)
        s, V = np.linalg.eigh(A)
        s = np.clip(s, 0.0, None)
        VB = V.T @ B                      # (p, q): the data term in the eigenbasis
        # Directions with eigenvalues at the rounding level of X^T X are numerically null: their
        # data term is rounding noise too. A penalty below that level cannot regularise them, so
        # they are dropped (the minimum-norm solution), as for alpha = 0.
        null_tol = s.max(initial=0.0) * p * np.finfo(np.float64).eps
        VB[s <= null_tol] = 0.0
        vb2 = np.einsum("ij,ij->i", VB, VB)
        if alphas is not None:
            gcv = np.empty(alphas.size)
            for i, a in enumerate(alphas):
                with np.errstate(divide="ignore", invalid="ignore"):
                    f = np.where(s + a > 0, 1.0 / (s + a), 0.0)
                # RSS = yy - 2 tr(W^T B) + tr(W^T A W), W = V diag(f) VB
                rss = yy - np.sum((2 * f - s * f * f) * vb2)
                df = float(fit_intercept) + float(np.sum(s * f))
                denom = (n - df) ** 2
                gcv[i] = n * max(rss, 0.0) / denom / q if denom > 0 else np.inf
            best = int(np.argmin(gcv))
            alpha = float(alphas[best])
            self.cv_values_ = gcv
        elif hasattr(self, "cv_values_"):
            del self.cv_values_
        if alpha > 0:
            W = V @ (VB / (s + alpha)[:, None])
        else:
            tol = s.max(initial=0.0) * p * np.finfo(np.float64).eps
            inv = np.where(s > tol, 1.0 / np.where(s > tol, s, 1.0), 0.0)
            W = V @ (VB * inv[:, None])   # minimum-norm least squares
        self.alpha_ = alpha
        self.n_samples_seen_ = n
        self._set_affine(W.T, my - mx @ W, p)


# ---- analytic map and class means -----------------------------------------------------------

def analytic_map(W_A, W_B, b_A=None, b_B=None):
    """The map that makes classifier B reproduce classifier A's logits exactly.

    Given linear classifiers ``logits_A = F_A @ W_A.T + b_A`` and ``logits_B = F_B @ W_B.T + b_B``
    (weights in (n_classes, d) layout), returns a fitted :class:`LinearMap` ``M`` with
    ``M.transform(F_A) @ W_B.T + b_B == F_A @ W_A.T + b_A`` whenever ``W_B`` has full row rank
    (n_classes <= d_B). In homogeneous coordinates ``M = pinv(C_B) C_A`` with ``C = [W | b]``
    (McNeely-White et al.): ``M(f) = (f W_A^T + b_A - b_B) pinv(W_B^T)``. The stitched network
    therefore has exactly A's accuracy whatever B is, so accuracy after mapping alone does not show
    that two representations are similar.

    Parameters
    ----------
    W_A : array (n_classes, d_A)
    W_B : array (n_classes, d_B)
    b_A, b_B : array (n_classes,), optional (zero when None)

    Returns
    -------
    LinearMap
        Fitted: ``coef_`` (d_B, d_A), ``intercept_`` (d_B,), ``rank_`` = rank of W_B.

    Warns
    -----
    UserWarning
        When W_B does not have full row rank (the logits are then matched in least squares only).
    """
    W_A = as_float_matrix(W_A, "W_A").astype(np.float64, copy=False)
    W_B = as_float_matrix(W_B, "W_B").astype(np.float64, copy=False)
    c = W_A.shape[0]
    if W_B.shape[0] != c:
        raise ValueError(
            f"W_A and W_B must have one row per class in the same order; got {c} and "
            f"{W_B.shape[0]} rows. Pass the weights in (n_classes, d) layout (torch's "
            "nn.Linear.weight layout)."
        )

    def bias(b, name):
        if b is None:
            return np.zeros(c)
        b = np.asarray(b, dtype=np.float64).reshape(-1)
        if b.shape[0] != c:
            raise ValueError(f"{name} must have n_classes = {c} entries; got {b.shape[0]}.")
        if not np.all(np.isfinite(b)):
            raise ValueError(f"{name} contains NaN or infinity.")
        return b

    b_A, b_B = bias(b_A, "b_A"), bias(b_B, "b_B")
    P = np.linalg.pinv(W_B.T)            # (c, d_B)
    rank = int(np.linalg.matrix_rank(W_B))
    if rank < c:
        warnings.warn(
            f"W_B has rank {rank} < n_classes = {c}: no map reproduces A's logits exactly; the "
            "returned map matches them in least squares.", UserWarning, stacklevel=2)
    coef = (W_A.T @ P).T                 # (d_B, d_A)
    intercept = (b_A - b_B) @ P
    M = LinearMap()
    M._set_affine(coef, intercept, W_A.shape[1])
    M.rank_ = rank
    return M


def class_means(X, y):
    """Mean of the rows of X per class.

    Parameters
    ----------
    X : array (n, d)
    y : array (n,) of class labels (any sortable values)

    Returns
    -------
    means : ndarray (n_classes, d)
        Row k is the mean of the rows with label ``classes[k]`` (float64 accumulation; float32
        output for float32 X).
    classes : ndarray (n_classes,)
        The sorted distinct labels.
    """
    X = as_float_matrix(X, "X")
    y = _labels(y, X.shape[0], "y")
    classes, inv = np.unique(y, return_inverse=True)
    sums = np.zeros((classes.size, X.shape[1]))
    np.add.at(sums, inv, X)
    means = sums / np.bincount(inv, minlength=classes.size)[:, None]
    return means.astype(X.dtype, copy=False), classes


def _labels(y, n, name):
    y = np.asarray(y)
    if y.ndim != 1:
        y = y.reshape(-1) if y.ndim == 2 and 1 in y.shape else y
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array with one label per row ({n}); got shape "
                         f"{np.shape(y)}.")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return y


# ---- ICP ------------------------------------------------------------------------------------

class ICP(BaseEstimator):
    """Iterative closest point alignment of two unpaired point sets.

    Alternates (1) nearest neighbours of the mapped source rows among the target rows (restricted
    to the target rows of the same class when labels are given and ``class_restricted``) and
    (2) re-fitting ``estimator`` on the matched pairs, until the mean squared matching distance
    changes by less than ``tol`` (relative) or the matches stop changing. The start is the
    estimator fitted on the class means when labels are given (Lähner & Moeller), else the
    identity map (same dimension needed).

    Parameters
    ----------
    estimator : estimator, optional
        Any map with fit(X, Y)/transform(X) (deep-copied; default ``Procrustes()``: rigid).
    class_restricted : bool, default True
        Match only within the same class when labels are passed to ``fit``.
    max_iter : int, default 50
    tol : float, default 1e-6

    Attributes
    ----------
    estimator_ : the fitted inner estimator
    n_iter_ : int
    converged_ : bool
        False when ``max_iter`` was reached first (ICP can also converge to a poor local optimum:
        compare ``history_`` and held-out metrics; Lähner & Moeller report that class-restricted
        ICP degraded accuracy).
    history_ : ndarray
        Mean squared matching distance after each iteration.
    matches_ : ndarray (n,)
        Index of the target row matched to each source row at the end.
    """

    def __init__(self, *, estimator=None, class_restricted=True, max_iter=50, tol=1e-6):
        self.estimator = estimator
        self.class_restricted = class_restricted
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, Y, labels_x=None, labels_y=None):
        """Align source rows X (n, p) to target rows Y (m, q); rows are NOT paired.

        Without labels the start is the identity map (needs p == q); with labels it is the
        estimator fitted on the class means (both sets must contain every class).
        """
        class_restricted = _check_bool(self.class_restricted, "class_restricted")
        max_iter = check_positive_int(self.max_iter, "max_iter")
        tol = _check_alpha(self.tol, "tol")
        X = as_float_matrix(X, "X")
        Y = as_float_matrix(Y, "Y")
        if (labels_x is None) != (labels_y is None):
            raise ValueError("pass both labels_x and labels_y, or neither.")
        est = Procrustes() if self.estimator is None else copy.deepcopy(self.estimator)
        if not (hasattr(est, "fit") and hasattr(est, "transform")):
            raise TypeError(f"estimator must have fit and transform methods; got {est!r}.")
        if labels_x is not None:
            lx = _labels(labels_x, X.shape[0], "labels_x")
            ly = _labels(labels_y, Y.shape[0], "labels_y")
            mx, cx = class_means(X, lx)
            my, cy = class_means(Y, ly)
            if not np.array_equal(cx, cy):
                raise ValueError("labels_x and labels_y must contain the same classes; got "
                                 f"{cx.tolist()} and {cy.tolist()}.")
            est.fit(mx, my)
            groups = [(np.flatnonzero(lx == c), np.flatnonzero(ly == c)) for c in cx] \
                if class_restricted else None
        else:
            if X.shape[1] != Y.shape[1]:
                raise ValueError(
                    f"without labels ICP starts from the identity map, which needs X and Y of the "
                    f"same dimension; got {X.shape[1]} and {Y.shape[1]}. Pass labels_x/labels_y "
                    "(class means give the start) or fit the estimator on a few pairs first."
                )
            groups = None
        mapper = est.transform if labels_x is not None else (lambda Z: Z)
        history, prev, matches = [], None, None
        converged = False
        n_iter = 0
        for it in range(max_iter):
            new, err = _nearest(np.asarray(mapper(X)), Y, groups)
            history.append(err)
            n_iter = it + 1
            if matches is not None and (
                np.array_equal(new, matches)
                or abs(prev - err) <= tol * max(prev, np.finfo(np.float64).tiny)
            ):
                converged = True
                break
            matches, prev = new, err
            est.fit(X, Y[matches])
            mapper = est.transform
        self.estimator_ = est
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.history_ = np.asarray(history)
        self.matches_ = matches
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        """Map X with the fitted inner estimator."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.transform(X)


def _nearest(Z, Y, groups, block=2048):
    from .distance import pairwise_distances

    Z = np.ascontiguousarray(Z, dtype=np.float64)
    Y64 = np.ascontiguousarray(Y, dtype=np.float64)
    if Z.shape[1] != Y64.shape[1]:
        raise ValueError(f"the estimator maps X to {Z.shape[1]} dimensions but Y has "
                         f"{Y64.shape[1]}.")
    match = np.empty(Z.shape[0], dtype=np.intp)
    dist = np.empty(Z.shape[0])
    parts = groups if groups is not None else [(np.arange(Z.shape[0]), np.arange(Y.shape[0]))]
    for ix, iy in parts:
        Yg = Y64[iy]
        for r0 in range(0, ix.size, block):
            rows = ix[r0:r0 + block]
            D = pairwise_distances(Z[rows], Yg, metric="sqeuclidean")
            j = np.argmin(D, axis=1)
            match[rows] = iy[j]
            dist[rows] = D[np.arange(rows.size), j]
    return match, float(dist.mean())


# ---- MLP stitching --------------------------------------------------------------------------

class StitchingMLP(_AffineMap):
    """Non-linear stitching baseline: a 3-layer ReLU MLP ``l -> k l -> k l -> q``.

    The baseline of Lähner & Moeller (k = 1, 2, 4), trained with scikit-learn's ``MLPRegressor``
    (optional dependency: ``pip install scikit-learn``) on standardised inputs, squared loss, Adam.

    Parameters
    ----------
    k : int, default 2
        Width multiplier of the two hidden layers (``k * p`` units each).
    alpha : float, default 1e-4
        L2 penalty.
    max_iter : int, default 500
    learning_rate_init : float, default 1e-3
    random_state : int, optional

    Attributes
    ----------
    mlp_ : the fitted ``sklearn.neural_network.MLPRegressor``
    n_features_in_ : int
    """

    def __init__(self, *, k=2, alpha=1e-4, max_iter=500, learning_rate_init=1e-3,
                 random_state=None):
        self.k = k
        self.alpha = alpha
        self.max_iter = max_iter
        self.learning_rate_init = learning_rate_init
        self.random_state = random_state

    def fit(self, X, Y):
        """Train the MLP on paired rows of X (n, p) and Y (n, q)."""
        try:
            from sklearn.neural_network import MLPRegressor
        except ImportError:
            raise ImportError(
                "StitchingMLP needs scikit-learn: pip install scikit-learn "
                "(or latentbridge[sklearn])."
            ) from None
        k = check_positive_int(self.k, "k")
        X, Y = _pair(X, Y, min_rows=2)
        X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
        self.x_mean_, self.x_std_ = X64.mean(0), X64.std(0)
        self.x_std_[self.x_std_ == 0] = 1.0
        self.y_mean_, self.y_std_ = Y64.mean(0), Y64.std(0)
        self.y_std_[self.y_std_ == 0] = 1.0
        width = k * X.shape[1]
        self.mlp_ = MLPRegressor(
            hidden_layer_sizes=(width, width), activation="relu", solver="adam",
            alpha=_check_alpha(self.alpha), max_iter=check_positive_int(self.max_iter, "max_iter"),
            learning_rate_init=float(self.learning_rate_init), random_state=self.random_state,
        )
        self.mlp_.fit((X64 - self.x_mean_) / self.x_std_, (Y64 - self.y_mean_) / self.y_std_)
        self.n_features_in_ = X.shape[1]
        self.n_targets_ = Y.shape[1]
        return self

    def transform(self, X):
        """Map rows of X (n, p) to (n, q)."""
        check_is_fitted(self, "mlp_")
        X = as_float_matrix(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features but StitchingMLP was fitted with "
                             f"{self.n_features_in_}.")
        Z = self.mlp_.predict((X.astype(np.float64) - self.x_mean_) / self.x_std_)
        Z = Z.reshape(X.shape[0], -1) * self.y_std_ + self.y_mean_
        return Z.astype(X.dtype, copy=False)
