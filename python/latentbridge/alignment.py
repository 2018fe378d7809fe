"""Maps between latent spaces, fitted from paired (or class-labelled) samples.

Every estimator is a scikit-learn estimator (regressor, transformer, multi-output): ``fit(X, Y)``
learns the map from X's space (n, p) to Y's space (n, q), ``transform(X)`` returns the prediction of
Y as an (n, q) matrix, ``predict(X)`` the same shaped like the ``Y`` of ``fit`` (1-D when ``Y`` was
1-D), and ``score(X, Y)`` is scikit-learn's ``RegressorMixin.score``: the coefficient of
determination ``R^2 = 1 - sum_i (y_ij - p_ij)^2 / sum_i (y_ij - mean_j)^2`` averaged uniformly over
Y's columns (``r2_score(..., multioutput="uniform_average")``; a constant column counts 1 when
predicted exactly, else 0). Every affine map is exposed the same way: ``coef_`` of shape (q, p) and
``intercept_`` of shape (q,), so that ``transform(X) = X @ coef_.T + intercept_``.

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

import numpy as np

from sklearn.base import (
    ClassNamePrefixFeaturesOutMixin,
    MultiOutputMixin,
    RegressorMixin,
    TransformerMixin,
)

from ._base import BaseEstimator, check_features, check_is_fitted, record_features
from ._stats import CrossStats, backend_for
from ._validation import (
    as_float_matrix,
    check_bool,
    check_n_jobs,
    check_positive_int,
    check_same_rows,
    check_scalar,
)
from ._warnings import warn_user

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

def _pair(estimator, X, Y, *, reset, min_rows=1, spaces=None):
    """X (n, p) and Y (n, q) as float matrices; a 1-D Y is one target column.

    Returns ``(X_checked, Y_checked, y_is_1d)``. ``reset`` (re)sets the fitted feature count and
    names (scikit-learn's bookkeeping); ``spaces=(p, q)`` requires those widths (later chunks of
    ``partial_fit``).
    """
    X_raw = X
    X = as_float_matrix(X, "X", min_rows=min_rows)
    if Y is None:
        raise ValueError(
            f"{type(estimator).__name__} requires y to be passed, but the target y is None: pass "
            "Y (n_samples, n_targets), the rows paired with those of X."
        )
    if not hasattr(Y, "ndim"):          # lists and other array-likes
        try:
            Y = np.asarray(Y)
        except (ValueError, TypeError):
            pass                        # as_float_matrix says what is wrong with it
    y_is_1d = getattr(Y, "ndim", None) == 1
    Y = as_float_matrix(np.reshape(Y, (-1, 1)) if y_is_1d else Y, "Y", min_rows=min_rows)
    check_same_rows(X, Y)
    if spaces is not None and X.shape[1] != spaces[0]:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{spaces[0]} features as input: every partial_fit chunk must come from the same "
            "spaces as the first."
        )
    if spaces is not None and Y.shape[1] != spaces[1]:
        raise ValueError(
            f"Y has {Y.shape[1]} columns but earlier partial_fit chunks had {spaces[1]}: every "
            "chunk must come from the same spaces as the first."
        )
    record_features(estimator, X_raw, reset=reset)
    return X, Y, y_is_1d


class _FittedOutputs:
    """Output feature names ``<classname>0, <classname>1, ...`` for ``set_output``/pipelines.

    The number of outputs is ``n_targets_`` (the columns of the fitted target space).
    """

    @property
    def _n_features_out(self):
        return self.n_targets_


class _AffineMap(_FittedOutputs, ClassNamePrefixFeaturesOutMixin, MultiOutputMixin,
                 RegressorMixin, TransformerMixin, BaseEstimator):
    """transform/predict of a fitted affine map ``X @ coef_.T + intercept_``.

    A regressor (``score`` is RegressorMixin's uniform-average R^2) and a transformer (the map
    into the target space, always (n, q)); multi-output.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _map(self, X):
        check_is_fitted(self, "coef_")
        X = check_features(self, X, reset=False)
        out = X.astype(np.float64, copy=False) @ self.coef_.T + self.intercept_
        return out.astype(X.dtype, copy=False)

    def transform(self, X):
        """Map rows of X (n, p) into the target space: returns (n, q)."""
        return self._map(X)

    def predict(self, X):
        """The map of X shaped like the ``Y`` of ``fit``: (n, q), or (n,) when ``Y`` was 1-D."""
        out = self._map(X)
        return out.ravel() if self._y_is_1d else out

    def _set_affine(self, coef, intercept, y_is_1d=False):
        self.coef_ = np.ascontiguousarray(coef, dtype=np.float64)
        self.intercept_ = np.asarray(intercept, dtype=np.float64).reshape(-1)
        self.n_targets_ = int(self.coef_.shape[0])
        self._y_is_1d = bool(y_is_1d)


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
        scale = check_bool(self.scale, "scale")
        center = check_bool(self.center, "center")
        X, Y, y_is_1d = _pair(self, X, Y, reset=True)
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
        self._set_affine(coef, my - mx @ coef.T, y_is_1d)
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

        fit_intercept = check_bool(self.fit_intercept, "fit_intercept")
        X, Y, y_is_1d = _pair(self, X, Y, reset=True)
        X64 = X.astype(np.float64)
        Y64 = Y.astype(np.float64)
        mx = X64.mean(axis=0) if fit_intercept else np.zeros(X.shape[1])
        my = Y64.mean(axis=0) if fit_intercept else np.zeros(Y.shape[1])
        W, _, rank, _ = lstsq(X64 - mx, Y64 - my, lapack_driver="gelsd")
        self.rank_ = int(rank)
        self._set_affine(W.T, my - mx @ W, y_is_1d)
        return self


# ---- RidgeMap -------------------------------------------------------------------------------

class RidgeMap(_AffineMap):
    """Ridge regression map from streamed float64 sufficient statistics, with fast CV over alphas.

    Minimises ``||Y - X W - 1 b^T||_F^2 + alpha ||W||_F^2`` (intercept not penalised): the same
    estimator as scikit-learn's ``Ridge(alpha, fit_intercept=True)``. Only the sufficient
    statistics ``X^T X``, ``X^T Y``, column sums and ``sum ||y||^2`` are kept (float64,
    O(p^2 + p q) memory), so :meth:`RidgeMap.partial_fit` over row chunks of any total size gives the same
    map as :meth:`RidgeMap.fit` on the concatenation (McNeely-White et al. fit 1.3M ImageNet features this
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
    afresh. ``fit`` solves at once; after ``partial_fit`` the solve (one O(p^3) eigendecomposition)
    runs lazily, when a fitted attribute or ``transform`` is first used after the last chunk, so
    streaming many chunks costs one solve.
    """

    def __init__(self, *, alpha=1.0, alphas=None, fit_intercept=True, n_jobs=None, device="cpu"):
        self.alpha = alpha
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.n_jobs = n_jobs
        self.device = device

    def _check_params(self):
        check_bool(self.fit_intercept, "fit_intercept")
        if self.alphas is None:
            return None, check_scalar(self.alpha, "alpha", minimum=0.0)
        if isinstance(self.alphas, (str, bytes)) or not np.iterable(self.alphas):
            raise TypeError(f"alphas must be a sequence of numbers; got {self.alphas!r}.")
        candidates = np.asarray(self.alphas, dtype=object).reshape(-1)
        if candidates.size == 0:
            raise ValueError("alphas must be a non-empty sequence of finite numbers >= 0; got an "
                             "empty one.")
        alphas = np.array([check_scalar(a, f"alphas[{i}]", minimum=0.0)
                           for i, a in enumerate(candidates)])
        return alphas, None

    def fit(self, X, Y):
        """Fit on all rows of X (n, p) and Y (n, q) (statistics accumulated in row blocks)."""
        self.__dict__.pop("stats_", None)
        self.partial_fit(X, Y)
        self._solve()                   # solved now: predict/transform leave the estimator as is
        return self

    def partial_fit(self, X, Y):
        """Add a chunk of paired rows to the statistics and re-solve."""
        self._check_params()
        st = self.__dict__.get("stats_")
        X, Y, y_is_1d = _pair(self, X, Y, reset=st is None,
                              spaces=None if st is None else (st.p, st.q))
        if st is None:
            st = CrossStats(X.shape[1], Y.shape[1], n_threads=check_n_jobs(self.n_jobs),
                            backend=backend_for(self.device))
            self._y_is_1d = y_is_1d
        st.update(X, Y)
        self.stats_ = st
        for name in self._LAZY:         # solved on first use (one O(p^3) solve, not per chunk)
            self.__dict__.pop(name, None)
        self._solved = False
        return self

    _LAZY = ("coef_", "intercept_", "alpha_", "cv_values_", "n_targets_", "n_samples_seen_")

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
        self._set_affine(W.T, my - mx @ W, self._y_is_1d)


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
        warn_user(
            f"W_B has rank {rank} < n_classes = {c}: no map reproduces A's logits exactly; the "
            "returned map matches them in least squares.", UserWarning)
    coef = (W_A.T @ P).T                 # (d_B, d_A)
    intercept = (b_A - b_B) @ P
    M = LinearMap()
    M._set_affine(coef, intercept)
    M.n_features_in_ = W_A.shape[1]
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

class ICP(_FittedOutputs, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
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
        class_restricted = check_bool(self.class_restricted, "class_restricted")
        max_iter = check_positive_int(self.max_iter, "max_iter")
        tol = check_scalar(self.tol, "tol", minimum=0.0)
        X = check_features(self, X, reset=True)
        if Y is None:
            raise ValueError(
                "ICP requires y to be passed, but the target y is None: pass Y (m, q), the target "
                "point set (its rows need not be paired with those of X)."
            )
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
        self.n_targets_ = Y.shape[1]
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def transform(self, X):
        """Map X (n, p) with the fitted inner estimator: returns (n, q)."""
        check_is_fitted(self, "estimator_")
        X = check_features(self, X, reset=False)
        return np.asarray(self.estimator_.transform(X))


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
    on standardised inputs and targets, squared loss, Adam.

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
    n_iter_ : int
        Training epochs run (``max_iter`` when the MLP did not converge).
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
        from sklearn.neural_network import MLPRegressor

        k = check_positive_int(self.k, "k")
        alpha = check_scalar(self.alpha, "alpha", minimum=0.0)
        max_iter = check_positive_int(self.max_iter, "max_iter")
        learning_rate_init = check_scalar(self.learning_rate_init, "learning_rate_init",
                                          minimum=0.0, include_minimum=False)
        X, Y, y_is_1d = _pair(self, X, Y, reset=True, min_rows=2)
        X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
        self.x_mean_, self.x_std_ = X64.mean(0), X64.std(0)
        self.x_std_[self.x_std_ == 0] = 1.0
        self.y_mean_, self.y_std_ = Y64.mean(0), Y64.std(0)
        self.y_std_[self.y_std_ == 0] = 1.0
        width = k * X.shape[1]
        mlp = MLPRegressor(
            hidden_layer_sizes=(width, width), activation="relu", solver="adam",
            alpha=alpha, max_iter=max_iter, learning_rate_init=learning_rate_init,
            random_state=self.random_state,
        )
        target = (Y64 - self.y_mean_) / self.y_std_
        mlp.fit((X64 - self.x_mean_) / self.x_std_, target.ravel() if y_is_1d else target)
        self.mlp_ = mlp                 # set once trained: a failed fit leaves no fitted network
        self.n_iter_ = mlp.n_iter_
        self.n_targets_ = Y.shape[1]
        self._y_is_1d = y_is_1d
        return self

    def _map(self, X):
        check_is_fitted(self, "mlp_")
        X = check_features(self, X, reset=False)
        Z = self.mlp_.predict((X.astype(np.float64) - self.x_mean_) / self.x_std_)
        Z = Z.reshape(X.shape[0], -1) * self.y_std_ + self.y_mean_
        return Z.astype(X.dtype, copy=False)
