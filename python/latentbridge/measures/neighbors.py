"""Neighbourhood measures: how much the k-nearest-neighbour structure of two representations agrees.

For each sample i, ``N_X(i)`` is the list of its k nearest other samples in X, ordered by distance
(ties by index), found by the project's exact C++ k-NN (``_core.knn_sqeuclidean``; for the cosine
metric on unit-normalised rows, where the squared Euclidean distance is ``2 - 2 cos``). Memory is
O(n k) apart from CKNNA's n-row-block inner products.
"""

from __future__ import annotations

import numpy as np

from .._validation import (
    as_float_matrix,
    check_allocation,
    check_choice,
    check_n_jobs,
    check_positive_int,
    check_same_rows,
)
from .rsa import unit_rows

__all__ = ["jaccard_knn", "rank_similarity", "second_order_cosine", "cknna", "knn_lists"]

METRICS = ("cosine", "euclidean")
_BLOCK = 2048


def _inputs(X, Y, k):
    X = as_float_matrix(X, "X", dtype=np.float64, min_rows=2)
    Y = as_float_matrix(Y, "Y", dtype=np.float64, min_rows=2)
    check_same_rows(X, Y)
    n = X.shape[0]
    k = check_positive_int(k, "k", maximum=n - 1)
    check_allocation(8 * n * k * 6, f"neighbour lists (n, k) = ({n}, {k})")
    return X, Y, k


def knn_lists(A, k, metric="cosine", name="X", n_jobs=None):
    """Indices (n, k) int64 of the k nearest other rows of A, nearest first (ties by index)."""
    from .. import _core

    check_choice(metric, "metric", METRICS)
    A = unit_rows(A, name) if metric == "cosine" else A
    idx, _ = _core.knn_sqeuclidean(np.ascontiguousarray(A, dtype=np.float64), None, int(k),
                                   check_n_jobs(n_jobs))
    return idx


def _shared(idx_x, idx_y):
    """For the pairs (i, j) in both N_X(i) and N_Y(i): i, and the 0-based ranks of j in each list."""
    n, k = idx_x.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    key_x = rows * n + idx_x.ravel()
    key_y = rows * n + idx_y.ravel()
    keys, pos_x, pos_y = np.intersect1d(key_x, key_y, assume_unique=True, return_indices=True)
    return keys // n, pos_x % k, pos_y % k


def jaccard_knn(X, Y, *, k=10, metric="cosine", n_jobs=None):
    """Mean Jaccard similarity of the k-NN sets: ``mean_i |N_X(i) & N_Y(i)| / |N_X(i) | N_Y(i)|``.

    In [0, 1], 1 on identical inputs, symmetric. With ``metric="cosine"`` (default) invariant to
    isotropic scaling, orthogonal maps and unit permutations, not to translation; with
    ``"euclidean"`` also to translation.

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)
    k : int, 1 <= k < n, default 10
    metric : {"cosine", "euclidean"}
    n_jobs : int, optional
        Threads of the k-NN search.

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    ValueError
        Fewer than 2 rows, different row counts, NaN/infinity, k outside [1, n - 1], an all-zero
        row with the cosine metric.

    References
    ----------
    Schumacher, Wolf, Hönig, Rudolph, "Effects of random seeds on the accuracy and convergence of
    graph neural networks", 2021; Klabunde, Schumacher, Strohmaier & Lemmerich, "Similarity of
    neural network models: a survey of functional and representational measures", 2023.
    """
    X, Y, k = _inputs(X, Y, k)
    rows, _, _ = _shared(knn_lists(X, k, metric, "X", n_jobs), knn_lists(Y, k, metric, "Y", n_jobs))
    s = np.bincount(rows, minlength=X.shape[0]).astype(np.float64)
    return float(np.mean(s / (2 * k - s)))


def rank_similarity(X, Y, *, k=10, metric="cosine", n_jobs=None):
    """Rank similarity of the k-NN lists (Wang et al. 2020).

    For each i, with ``J_i = N_X(i) & N_Y(i)``, r_X(j) and r_Y(j) the 1-based ranks of j in the two
    lists and ``v(J) = sum_{t=1}^{|J|} 1/t``:

    ``s_i = (1 / v(J_i)) sum_{j in J_i} 2 / ((1 + |r_X(j) - r_Y(j)|) (r_X(j) + r_Y(j)))``
    (0 when J_i is empty); the score is ``mean_i s_i``, in [0, 1], 1 on identical inputs,
    symmetric. Invariances as :func:`jaccard_knn`.

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)
    k : int, 1 <= k < n, default 10
    metric : {"cosine", "euclidean"}
    n_jobs : int, optional

    Returns
    -------
    float in [0, 1]

    References
    ----------
    Wang, Rao, Guo, Wang, Liu & Guan, "Towards understanding the instability of network embedding",
    IEEE TKDE 2020; Klabunde et al. 2023 (the normalisation used here).
    """
    X, Y, k = _inputs(X, Y, k)
    rows, rx, ry = _shared(knn_lists(X, k, metric, "X", n_jobs), knn_lists(Y, k, metric, "Y", n_jobs))
    rx, ry = rx + 1.0, ry + 1.0
    n = X.shape[0]
    score = np.bincount(rows, weights=2.0 / ((1.0 + np.abs(rx - ry)) * (rx + ry)), minlength=n)
    count = np.bincount(rows, minlength=n)
    harmonic = np.concatenate([[1.0], np.cumsum(1.0 / np.arange(1, k + 1))])  # v(0) unused
    return float(np.mean(score / harmonic[count]))


def _pair_dots(U, rows, cols, block=1 << 16):
    out = np.empty(rows.size)
    for s in range(0, rows.size, block):
        out[s:s + block] = np.einsum("ij,ij->i", U[rows[s:s + block]], U[cols[s:s + block]])
    return out


def second_order_cosine(X, Y, *, k=10, n_jobs=None):
    """Second-order cosine similarity (Hamilton et al. 2016).

    For each i, over the union ``U_i = N_X(i) | N_Y(i)`` of its k cosine-nearest neighbours in X
    and in Y, the vectors ``s_X(i) = (cos(x_i, x_j))_{j in U_i}`` and ``s_Y(i)`` of first-order
    cosine similarities are compared by their cosine; the score is ``mean_i cos(s_X(i), s_Y(i))``,
    in [-1, 1], 1 on identical inputs, symmetric. A row whose vector s is zero (every neighbour
    orthogonal to it) contributes 0. Invariant to isotropic scaling, orthogonal maps and unit
    permutations, not to translation.

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)
    k : int, 1 <= k < n, default 10
    n_jobs : int, optional

    Returns
    -------
    float in [-1, 1]

    Notes
    -----
    The ReSi benchmark compares vectors of cosine *distances* instead; we follow the paper.

    References
    ----------
    Hamilton, Leskovec & Jurafsky, "Cultural shift or linguistic drift? Comparing two computational
    measures of semantic change", EMNLP 2016.
    """
    X, Y, k = _inputs(X, Y, k)
    Ux, Uy = unit_rows(X, "X"), unit_rows(Y, "Y")
    n = X.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    keys = np.union1d(rows * n + knn_lists(Ux, k, "euclidean", "X", n_jobs).ravel(),
                      rows * n + knn_lists(Uy, k, "euclidean", "Y", n_jobs).ravel())
    i, j = keys // n, keys % n
    sx, sy = _pair_dots(Ux, i, j), _pair_dots(Uy, i, j)
    num = np.bincount(i, weights=sx * sy, minlength=n)
    den = np.sqrt(np.bincount(i, weights=sx * sx, minlength=n)
                  * np.bincount(i, weights=sy * sy, minlength=n))
    cos = np.zeros(n)  # rows with a zero vector s contribute 0
    np.divide(num, den, out=cos, where=den > 0)
    return float(np.mean(np.clip(cos, -1.0, 1.0)))


def _top_inner_products(A, k):
    """Indices (n, k) of the k largest inner products <a_i, a_j>, j != i (ties by index)."""
    n = A.shape[0]
    out = np.empty((n, k), dtype=np.int64)
    for r0 in range(0, n, _BLOCK):
        G = A[r0:r0 + _BLOCK] @ A.T
        local = np.arange(G.shape[0])
        G[local, r0 + local] = -np.inf
        # stable sort on -G orders by (inner product desc, index asc)
        out[r0:r0 + _BLOCK] = np.argsort(-G, axis=1, kind="stable")[:, :k]
    return out


def _masked_hsic(i, j, a, b, n):
    """Unbiased HSIC (Song et al. 2012) of the n x n matrices K~, L~ that are zero except
    ``K~[i, j] = a``, ``L~[i, j] = b`` (zero diagonal, not necessarily symmetric):

    ``[tr(K~ L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n (n-3))``.
    """
    import scipy.sparse as sp

    K = sp.csr_matrix((a, (i, j)), shape=(n, n))
    L = sp.csr_matrix((b, (i, j)), shape=(n, n))
    tr_kl = float(K.multiply(L.T).sum())
    kl_sum = float(np.asarray(K.sum(axis=0)).ravel() @ np.asarray(L.sum(axis=1)).ravel())
    return (tr_kl + a.sum() * b.sum() / ((n - 1) * (n - 2)) - 2.0 * kl_sum / (n - 2)) / (n * (n - 3))


def cknna(X, Y, *, k=10):
    """Centered kernel nearest-neighbour alignment (Huh et al. 2024).

    CKA restricted to mutual nearest neighbours. With the linear kernels ``K_ij = <x_i, x_j>``,
    ``L_ij = <y_i, y_j>`` and ``N_K(i)`` the k samples j != i of largest ``K_ij`` (ties by index):

    ``Align(K, L) = HSIC_1(M o K, M o L)``, ``M_ij = 1[j in N_K(i) and j in N_L(i)]``, with HSIC_1
    the unbiased estimator of Song et al. (2012) (the masked matrices have zero diagonals and need
    not be symmetric), and ``CKNNA = Align(K, L) / sqrt(Align(K, K) Align(L, L))``, where
    ``Align(K, K)`` masks with ``N_K`` alone.

    1 on identical inputs; invariant to isotropic scaling, orthogonal maps and unit permutations,
    not to translation (the kernel is not centred before the neighbours are chosen). Not
    symmetric in general (the masked matrices are not symmetric).

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)
    k : int, 1 <= k < n, default 10

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Fewer than 4 rows, different row counts, NaN/infinity, k outside [1, n - 1], or
        ``Align(K, K) Align(L, L) <= 0`` (e.g. when the neighbour kernels are degenerate).

    Notes
    -----
    O(n^2 (p + q)) time (exact maximum-inner-product neighbours in row blocks), O(n k + n B)
    memory (B = 2048 rows per block); the masked HSICs are O(n k). The platonic-representation
    code adds 1e-6 to the denominator; we raise instead when it is not positive.

    References
    ----------
    Huh, Cheung, Wang & Isola, "The platonic representation hypothesis", ICML 2024. Song, Smola,
    Gretton, Bedo & Borgwardt, JMLR 2012.
    """
    X, Y, k = _inputs(X, Y, k)
    n = X.shape[0]
    if n < 4:
        raise ValueError(f"cknna needs at least 4 rows (the unbiased HSIC); X and Y have {n}.")
    nx, ny = _top_inner_products(X, k), _top_inner_products(Y, k)
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    jx, jy = nx.ravel(), ny.ravel()
    kx, ly = _pair_dots(X, rows, jx), _pair_dots(Y, rows, jy)
    kk = _masked_hsic(rows, jx, kx, kx, n)
    ll = _masked_hsic(rows, jy, ly, ly, n)
    i, pos, _ = _shared(nx, ny)
    j = nx[i, pos]
    kl = _masked_hsic(i, j, _pair_dots(X, i, j), _pair_dots(Y, i, j), n)
    if not kk * ll > 0:
        raise ValueError(
            "cknna is undefined: the neighbour-masked self-alignment of X or Y is not positive "
            f"(Align(K, K) = {kk:.3g}, Align(L, L) = {ll:.3g}). Raise k or check the inputs.")
    return float(kl / np.sqrt(kk * ll))
