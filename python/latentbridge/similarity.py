"""Statistical similarity of two representations of the same samples: CKA, SVCCA, PWCCA, mutual kNN.

Rows are samples (the same samples, in the same order, in X and Y); columns are features (neurons).
Each function documents its exact definition: libraries disagree on several of them (biased or
unbiased HSIC in the CKA denominators, the SVCCA summary, the PWCCA weights), so compare numbers
across libraries only with the definitions side by side.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._stats import CrossStats, backend_for
from ._validation import (
    as_float_matrix,
    available_memory,
    check_allocation,
    check_choice,
    check_n_jobs,
    check_positive_int,
    check_random_state,
    check_same_rows,
)

__all__ = ["cka", "minibatch_cka", "svcca", "pwcca", "mutual_knn"]

KERNELS = ("linear", "rbf")


def _unit_scale(A):
    """A scaled by a power of two (exact) into [2^-100, 2^100] when its largest entry is outside.

    Every measure it is applied to is invariant to scaling each representation, and float64
    products of entries near 1e200 (or 1e-200) overflow (underflow): CKA would report a constant
    representation and the SVDs of the CCA family lose the small directions.
    """
    big = max(float(A.max(initial=0.0)), -float(A.min(initial=0.0)))
    if big == 0.0 or 2.0 ** -100 <= big <= 2.0 ** 100:
        return A
    return np.ldexp(A, -int(np.frexp(big)[1])).astype(A.dtype, copy=False)


def _pair(X, Y, min_rows, *, constant_ok=False, rescale=False):
    X = as_float_matrix(X, "X", min_rows=min_rows)
    Y = as_float_matrix(Y, "Y", min_rows=min_rows)
    check_same_rows(X, Y)
    if rescale:
        X, Y = _unit_scale(X), _unit_scale(Y)
    if not constant_ok:
        # all rows equal: every centred statistic is zero up to the rounding of the mean, and a
        # value computed from that rounding noise would be meaningless
        for A, name in ((X, "X"), (Y, "Y")):
            if A.shape[0] and not (A != A[:1]).any():
                raise ValueError(
                    f"{name} is constant (all rows equal): the similarity is undefined. Check that "
                    "the representation is not collapsed."
                )
    return X, Y


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}.")
    return bool(value)


# ---- HSIC pieces ------------------------------------------------------------------------------

def _hsic_unbiased_from(tr_kl, sk, sl, kl_rows, n):
    """Song et al. (2012) unbiased HSIC from its pieces, K~ and L~ the Grams with zero diagonal:

    HSIC_1 = [tr(K~ L~) + (1'K~1)(1'L~1)/((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n (n-3)).
    Arguments: tr_kl = tr(K~ L~); sk = 1'K~1; sl = 1'L~1; kl_rows = 1'K~L~1.
    """
    return (tr_kl + sk * sl / ((n - 1) * (n - 2)) - 2.0 * kl_rows / (n - 2)) / (n * (n - 3))


def _linear_feature_hsics(X, Y, debiased, n_threads, backend=None):
    """(hsic_xy, hsic_xx, hsic_yy) of the linear kernel in feature space, float64, O(n p q)."""
    n = X.shape[0]
    st = CrossStats(X.shape[1], Y.shape[1], want_yy=True, n_threads=n_threads, backend=backend)
    st.update(X, Y)
    Cxx, Cyy, Cxy = st.cxx(), st.cyy(), st.cxy()
    xy = float(np.einsum("ij,ij->", Cxy, Cxy))
    xx = float(np.einsum("ij,ij->", Cxx, Cxx))
    yy = float(np.einsum("ij,ij->", Cyy, Cyy))
    if not debiased:
        return xy / (n - 1) ** 2, xx / (n - 1) ** 2, yy / (n - 1) ** 2
    # With column-centred data (the unbiased HSIC does not change when the features are shifted),
    # K_ii = |x_i|^2 =: kx_i, 1'K~1 = -sum kx, (K~1)_i = -kx_i, so 1'K~L~1 = sum kx ky and
    # tr(K~L~) = ||X'Y||_F^2 - sum kx ky.
    kx = _centred_row_sqnorms(X, st.mean_x())
    ky = _centred_row_sqnorms(Y, st.mean_y())

    def h(t, a, b):
        s_ab = float(a @ b)
        return _hsic_unbiased_from(t - s_ab, -a.sum(), -b.sum(), s_ab, n)

    return h(xy, kx, ky), h(xx, kx, kx), h(yy, ky, ky)


def _centred_row_sqnorms(X, mean, block=8192):
    out = np.empty(X.shape[0])
    for r0 in range(0, X.shape[0], block):
        B = X[r0:r0 + block].astype(np.float64) - mean
        out[r0:r0 + block] = np.einsum("ij,ij->i", B, B)
    return out


def _gram_hsic(K, L, debiased):
    """HSIC of two n x n Gram matrices (float64), O(n^2) memory and time."""
    n = K.shape[0]
    if not debiased:
        # tr(K H L H) / (n-1)^2 with H the centring matrix, via double centring of K only.
        Kc = K - K.mean(axis=0) - K.mean(axis=1)[:, None] + K.mean()
        return float(np.einsum("ij,ij->", Kc, L)) / (n - 1) ** 2
    Kt = K.copy()
    Lt = L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    k1, l1 = Kt.sum(axis=1), Lt.sum(axis=1)
    return _hsic_unbiased_from(float(np.einsum("ij,ij->", Kt, Lt)), float(k1.sum()),
                               float(l1.sum()), float(k1 @ l1), n)


def _gram_bytes(n, debiased):
    """Peak bytes of the Gram-space CKA: K, L and two n x n temporaries (float64)."""
    return 8 * n * n * (4 + 2 * bool(debiased))


def _fits(nbytes):
    limit = available_memory()
    return limit is None or nbytes <= limit


def _median_sigma(D2):
    iu = np.triu_indices(D2.shape[0], 1)
    d = np.sqrt(D2[iu])
    d = d[d > 0]
    return float(np.median(d)) if d.size else 1.0


def _rbf_gram(X, sigma):
    from .distance import pairwise_distances

    D2 = pairwise_distances(X.astype(np.float64, copy=False), metric="sqeuclidean")
    s = _median_sigma(D2) if sigma is None else sigma
    return np.exp(-D2 / (2.0 * s * s)), s


def _check_sigma(sigma):
    if sigma is None:
        return None
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not np.isfinite(sigma) \
            or sigma <= 0:
        raise ValueError(f"sigma must be a positive number or None (median rule); got {sigma!r}.")
    return float(sigma)


def _ratio(xy, xx, yy):
    den = np.sqrt(xx * yy) if xx > 0 and yy > 0 else 0.0
    if den <= 0:
        raise ValueError(
            "CKA is undefined: one representation has zero (or, debiased, non-positive) self-HSIC "
            "- e.g. a constant representation. Check X and Y."
        )
    return float(xy / den)


# ---- CKA ---------------------------------------------------------------------------------------

def cka(X, Y, *, kernel="linear", debiased=False, sigma=None, n_jobs=None, device="cpu"):
    """Centered kernel alignment between two representations of the same n samples.

    ``CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` (Kornblith et al. 2019).

    * ``kernel="linear"``: computed in feature space, O(n p q) time and O(p^2 + q^2 + p q) memory,
      with float64 accumulation of float32 or float64 input:
      ``||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F)`` with column-centred X_c, Y_c.
      No n x n matrix is formed.
    * ``kernel="rbf"``: ``K_ij = exp(-||x_i - x_j||^2 / (2 sigma^2))``, O(n^2) memory (Gram space).
      ``sigma=None`` uses the median rule, separately for X and Y: sigma = the median Euclidean
      distance between distinct rows (the median over pairs i < j of the non-zero distances).
      Kornblith et al. use a fraction of the median: pass ``sigma`` explicitly to reproduce them.
    * ``debiased=True``: the unbiased HSIC estimator of Song et al. (2012) in the numerator AND
      both denominators (HSIC_1 with zero-diagonal Grams; needs n >= 4). Its value can be slightly
      negative for unrelated representations.

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)
    kernel : {"linear", "rbf"}
    debiased : bool, default False
    sigma : float, optional
        RBF bandwidth (both X and Y); None: the median rule above.
    n_jobs : int, optional
        Threads of the native accumulation kernel.
    device : {"cpu", "auto", "cuda"}, default "cpu"
        Where the linear kernel's feature-space products are accumulated ("auto": a CUDA device
        when one is usable); the result is the same float64 quantity.

    Returns
    -------
    float
        In [0, 1] for the biased estimator.

    Raises
    ------
    ValueError
        Different numbers of rows, fewer than 2 (biased) or 4 (debiased) rows, NaN, a constant
        representation (all rows equal), a bad sigma.
    MemoryError
        When the working arrays would exceed the available memory (or
        ``LATENTBRIDGE_MEMORY_LIMIT``): about ``8 n^2 (4 + 2 debiased)`` bytes for the Gram forms
        (RBF, and the linear kernel when n is small against p + q: it then falls back to the
        feature form) and ``24 (p^2 + q^2 + p q)`` bytes for the linear feature form.

    References
    ----------
    Kornblith, Norouzi, Lee & Hinton, "Similarity of neural network representations revisited",
    ICML 2019. Song, Smola, Gretton, Bedo & Borgwardt, "Feature selection via dependence
    maximization", JMLR 2012.

    Examples
    --------
    >>> import numpy as np, latentbridge as lb
    >>> X = np.random.default_rng(0).normal(size=(100, 5))
    >>> round(lb.cka(X, 3 * X @ np.linalg.qr(np.ones((5, 5)) + np.eye(5))[0]), 6)
    1.0
    """
    check_choice(kernel, "kernel", KERNELS)
    debiased = _check_bool(debiased, "debiased")
    sigma = _check_sigma(sigma)
    n_threads = check_n_jobs(n_jobs)
    backend = backend_for(device)
    X, Y = _pair(X, Y, 4 if debiased else 2, rescale=kernel == "linear" or sigma is None)
    n = X.shape[0]
    if kernel == "linear":
        p, q = X.shape[1], Y.shape[1]
        if backend != "cuda" and n * n * (p + q) < n * (p * p + q * q + p * q) and n <= 20000 \
                and _fits(_gram_bytes(n, debiased)):
            Xc = X.astype(np.float64) - X.mean(axis=0, dtype=np.float64)
            Yc = Y.astype(np.float64) - Y.mean(axis=0, dtype=np.float64)
            K, L = Xc @ Xc.T, Yc @ Yc.T
            return _ratio(_gram_hsic(K, L, debiased), _gram_hsic(K, K, debiased),
                          _gram_hsic(L, L, debiased))
        check_allocation(8 * (3 * (p * p + q * q + p * q) + 2 * n),
                         f"cka(kernel='linear') statistics (p, q) = ({p}, {q}) float64")
        return _ratio(*_linear_feature_hsics(X, Y, debiased, n_threads, backend))
    check_allocation(_gram_bytes(n, debiased), f"cka(kernel='rbf') Gram matrices ({n}, {n}) float64")
    K, _ = _rbf_gram(X, sigma)
    L, _ = _rbf_gram(Y, sigma)
    return _ratio(_gram_hsic(K, L, debiased), _gram_hsic(K, K, debiased),
                  _gram_hsic(L, L, debiased))


def minibatch_cka(X, Y=None, *, batch_size=1024, kernel="linear", sigma=None, random_state=None):
    """Minibatch CKA (Nguyen, Raghu & Kornblith 2021) for data that does not fit at once.

    ``CKA_mb = mean_b HSIC_1(K_b, L_b) / sqrt(mean_b HSIC_1(K_b, K_b) mean_b HSIC_1(L_b, L_b))``
    with the unbiased HSIC_1 of Song et al. on each batch b (so the batch average is unbiased).

    Parameters
    ----------
    X : array (n, p), or an iterable of (X_b, Y_b) pairs when Y is None
        With arrays, the rows are shuffled (``random_state``) and cut into batches of
        ``batch_size`` rows (a last batch of fewer than 4 rows is dropped). An iterable (e.g. a
        generator reading from disk) is consumed once, batch by batch.
    Y : array (n, q), optional
    batch_size : int, default 1024 (>= 4)
    kernel : {"linear", "rbf"}
        RBF bandwidths follow :func:`cka`'s rule, per batch when ``sigma`` is None.
    sigma : float, optional
    random_state : int or Generator, optional

    Returns
    -------
    float
    """
    check_choice(kernel, "kernel", KERNELS)
    sigma = _check_sigma(sigma)
    if Y is not None:
        batch_size = check_positive_int(batch_size, "batch_size", minimum=4)
        X, Y = _pair(X, Y, 4, rescale=kernel == "linear" or sigma is None)
        order = check_random_state(random_state).permutation(X.shape[0])
        batches = ((X[order[i:i + batch_size]], Y[order[i:i + batch_size]])
                   for i in range(0, X.shape[0], batch_size)
                   if min(batch_size, X.shape[0] - i) >= 4)
    else:
        if isinstance(X, np.ndarray):
            raise TypeError("minibatch_cka(X) without Y needs an iterable of (X_b, Y_b) pairs; "
                            "pass Y for arrays.")
        batches = X
    sums = np.zeros(3)
    count = 0
    for item in batches:
        try:
            Xb, Yb = item
        except (TypeError, ValueError):
            raise TypeError("each batch must be a pair (X_b, Y_b) of arrays.") from None
        Xb, Yb = _pair(Xb, Yb, 4, constant_ok=True)
        b = Xb.shape[0]
        check_allocation(_gram_bytes(b, True), f"minibatch_cka Gram matrices of a batch ({b}, {b}) "
                         "float64 (lower batch_size)")
        if kernel == "linear":
            Xc = Xb.astype(np.float64) - Xb.mean(axis=0, dtype=np.float64)
            Yc = Yb.astype(np.float64) - Yb.mean(axis=0, dtype=np.float64)
            K, L = Xc @ Xc.T, Yc @ Yc.T
        else:
            K, _ = _rbf_gram(Xb, sigma)
            L, _ = _rbf_gram(Yb, sigma)
        sums += (_gram_hsic(K, L, True), _gram_hsic(K, K, True), _gram_hsic(L, L, True))
        count += 1
    if count == 0:
        raise ValueError("minibatch_cka received no batch of at least 4 rows.")
    return _ratio(*(sums / count))


# ---- CCA family --------------------------------------------------------------------------------

def _orth_basis(Xc, threshold=None):
    """Orthonormal basis (n, k) of the column space of the centred Xc (tolerance-ranked SVD).

    With ``threshold``, only the top singular directions that explain that fraction of the
    variance (sum of squared singular values) are kept.
    """
    U, S, _ = np.linalg.svd(Xc, full_matrices=False)
    tol = S.max(initial=0.0) * max(Xc.shape) * np.finfo(np.float64).eps
    k = int(np.sum(S > tol))
    if threshold is not None and k:
        var = np.cumsum(S[:k] ** 2) / np.sum(S[:k] ** 2)
        k = min(k, int(np.searchsorted(var, threshold - 1e-12)) + 1)
    if k == 0:
        raise ValueError("a representation is constant (zero variance): CCA is undefined.")
    return U[:, :k], k


def _check_threshold(threshold):
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) \
            or not 0 < threshold <= 1:
        raise ValueError(f"threshold must be a number in (0, 1]; got {threshold!r}.")
    return float(threshold)


def _centred64(A):
    return A.astype(np.float64) - A.mean(axis=0, dtype=np.float64)


def svcca(X, Y, *, threshold=0.99):
    """SVCCA similarity (Raghu et al. 2017): mean canonical correlation after an SVD reduction.

    Definition used here: centre the columns; keep, for each of X and Y separately, the fewest
    top singular directions whose squared singular values explain at least ``threshold`` of the
    total variance (k_x and k_y directions); compute the canonical correlations rho_1 >= ... of
    the two reduced representations (the singular values of U_x^T U_y, U the orthonormal bases);
    return the MEAN of all min(k_x, k_y) correlations. (Some libraries average only the top few,
    or report the sum; their numbers differ.)

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)
    threshold : float in (0, 1], default 0.99

    Returns
    -------
    float in [0, 1]

    Notes
    -----
    CCA needs n well above k_x + k_y: with n <= k_x + k_y random data already gives correlations
    near 1.
    """
    threshold = _check_threshold(threshold)
    X, Y = _pair(X, Y, 2, rescale=True)
    Ux, _ = _orth_basis(_centred64(X), threshold)
    Uy, _ = _orth_basis(_centred64(Y), threshold)
    rho = np.clip(np.linalg.svd(Ux.T @ Uy, compute_uv=False), 0.0, 1.0)
    return float(np.clip(rho.mean(), 0.0, 1.0))


def pwcca(X, Y):
    """Projection-weighted CCA (Morcos, Raghu & Bengio 2018).

    Definition used here: centre the columns; canonical correlations rho_i (i < k = min of the
    ranks) and X's canonical variates h_i (unit-norm n-vectors) from the SVD of U_x^T U_y; weights
    ``alpha_i = sum_j |<h_i, x_j>|`` over X's centred columns x_j, normalised to sum 1;
    ``PWCCA = sum_i alpha_i rho_i``. The weights come from X, so pwcca(X, Y) != pwcca(Y, X) in
    general (as in the original).

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    ValueError
        When ``rank(X_c) + rank(Y_c) > n - 1`` (e.g. fewer samples than features): the centred
        columns of X and Y then span subspaces of the (n - 1)-dimensional space of centred
        n-vectors whose dimensions add up to more than n - 1, so they intersect in at least
        ``rank(X_c) + rank(Y_c) - (n - 1)`` dimensions and that many canonical correlations are 1
        whatever the data. No regularised value is returned: use more samples, or reduce the
        features first (PCA, or :func:`svcca` with a variance ``threshold``).
    """
    X, Y = _pair(X, Y, 2, rescale=True)
    Xc, Yc = _centred64(X), _centred64(Y)
    Ux, kx = _orth_basis(Xc)
    Uy, ky = _orth_basis(Yc)
    n = X.shape[0]
    if kx + ky > n - 1:
        raise ValueError(
            f"pwcca needs more samples than the ranks of X and Y together: n = {n} samples but "
            f"rank(X) + rank(Y) = {kx} + {ky} > n - 1 = {n - 1}, so {kx + ky - (n - 1)} canonical "
            "correlation(s) equal 1 whatever the data. Pass more samples, or reduce the features "
            "first (PCA, or svcca with threshold < 1)."
        )
    A, rho, _ = np.linalg.svd(Ux.T @ Uy, full_matrices=False)
    H = Ux @ A                           # (n, k) unit-norm canonical variates of X
    alpha = np.abs(H.T @ Xc).sum(axis=1)
    alpha = alpha / alpha.sum()
    # a weighted mean of values in [0, 1]; the clip removes rounding outside it (1 + 2e-16)
    return float(np.clip(np.sum(alpha * np.clip(rho, 0.0, 1.0)), 0.0, 1.0))


# ---- mutual nearest neighbours -----------------------------------------------------------------

def _knn_indices(X, k, metric, block=2048):
    from .distance import pairwise_distances

    n = X.shape[0]
    out = np.empty((n, k), dtype=np.intp)
    for r0 in range(0, n, block):
        D = pairwise_distances(X[r0:r0 + block], X, metric=metric)
        rows = np.arange(D.shape[0])
        D[rows, r0 + rows] = np.inf      # a point is not its own neighbour
        out[r0:r0 + block] = np.argpartition(D, k - 1, axis=1)[:, :k]
    return out


def mutual_knn(X, Y, *, k=10, metric="cosine"):
    """Mutual k-nearest-neighbour alignment (Huh et al. 2024, "platonic representation").

    For each sample i, N_X(i) and N_Y(i) are its k nearest neighbours among the other samples in X
    and in Y (cosine distance by default; ties broken arbitrarily); the score is
    ``mean_i |N_X(i) & N_Y(i)| / k``, in [0, 1]. Memory O(n k) (distances in row blocks).

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)
    k : int, default 10 (1 <= k < n)
    metric : {"cosine", "euclidean"}

    Returns
    -------
    float
    """
    check_choice(metric, "metric", ("cosine", "euclidean"))
    X, Y = _pair(X, Y, 2, constant_ok=True)
    k = check_positive_int(k, "k", maximum=X.shape[0] - 1)
    check_allocation(4 * X.shape[0] * k * np.dtype(np.intp).itemsize,
                     f"mutual_knn neighbour lists (n, 2 k) = ({X.shape[0]}, {2 * k})")
    both = np.sort(np.hstack([_knn_indices(X, k, metric), _knn_indices(Y, k, metric)]), axis=1)
    shared = np.count_nonzero(both[:, 1:] == both[:, :-1])  # each list has distinct entries
    return float(shared / (k * both.shape[0]))
