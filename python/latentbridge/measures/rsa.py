"""Representational similarity analysis: correlate the dissimilarity matrices of two representations."""

from __future__ import annotations

import numpy as np

from .._validation import as_float_matrix, check_allocation, check_choice, check_same_rows

__all__ = ["rsa", "rdm_vector", "unit_rows", "RDM_KINDS", "RDM_COMPARISONS"]

RDM_KINDS = ("correlation", "euclidean", "cosine")
RDM_COMPARISONS = ("spearman", "pearson", "kendall")
_BLOCK = 1024  # rows of the distance matrix formed at a time


def unit_rows(A, name, *, centre=False):
    """Rows of A (centred over the features first when ``centre``) scaled to unit norm; ValueError
    naming the first row that is zero (constant when centred): its cosine/correlation is undefined."""
    A = A - A.mean(axis=1, keepdims=True) if centre else A
    norms = np.linalg.norm(A, axis=1)
    bad = np.flatnonzero(norms == 0)
    if bad.size:
        what = "constant" if centre else "all zero"
        raise ValueError(
            f"row {bad[0]} of {name} is {what}: its {'correlation' if centre else 'cosine'} "
            "similarity to the other rows is undefined. Remove such rows or use the Euclidean "
            "variant (metric='euclidean' / rdm='euclidean').")
    return A / norms[:, None]


def rdm_vector(A, rdm="correlation", name="X"):
    """The upper triangle (i < j, row by row) of the representational dissimilarity matrix of A.

    ``correlation``: 1 - Pearson correlation of rows i and j (across features); ``cosine``:
    1 - cosine similarity; ``euclidean``: the Euclidean distance ||a_i - a_j||. float64, length
    n (n - 1) / 2; distances are formed in row blocks by :func:`latentbridge.pairwise_distances`.
    """
    from ..distance import pairwise_distances

    check_choice(rdm, "rdm", RDM_KINDS)
    A = as_float_matrix(A, name, dtype=np.float64, min_rows=3)
    if rdm != "euclidean":
        A = unit_rows(A, name, centre=rdm == "correlation")
    metric = "euclidean" if rdm == "euclidean" else "cosine"
    n = A.shape[0]
    out = np.empty(n * (n - 1) // 2)
    pos = 0
    for r0 in range(0, n - 1, _BLOCK):
        r1 = min(n - 1, r0 + _BLOCK)
        D = pairwise_distances(A[r0:r1], A[r0:], metric=metric, device="cpu")
        for i in range(r1 - r0):
            row = D[i, i + 1:]
            out[pos:pos + row.size] = row
            pos += row.size
    return out


def _pearson(a, b, what):
    """Pearson correlation of two RDM vectors; ValueError when either is constant.

    Constancy is tested on the entries themselves: the deviations from a rounded mean of equal
    entries are a uniform rounding offset, not zero. The deviations are scaled to a largest
    magnitude of 1 before they are squared, so that tiny or huge dissimilarities neither underflow
    nor overflow.
    """
    if not ((a != a[0]).any() and (b != b[0]).any()):
        raise ValueError(
            f"the {what} of one representation is constant (all pairs equally dissimilar): the "
            "correlation between the RDMs is undefined.")
    a = a - a.mean()
    b = b - b.mean()
    a /= np.abs(a).max()
    b /= np.abs(b).max()
    return float(np.clip(float(a @ b) / np.sqrt(float(a @ a) * float(b @ b)), -1.0, 1.0))


def rsa(X, Y, *, rdm="correlation", compare="spearman"):
    """Representational similarity analysis (Kriegeskorte et al. 2008).

    The correlation between the upper triangles (i < j) of the representational dissimilarity
    matrices (RDMs) of X and Y:

    * ``rdm="correlation"``: ``RDM_ij = 1 - corr(x_i, x_j)``, the Pearson correlation of rows i and
      j across the features; ``"cosine"``: ``1 - cos(x_i, x_j)``; ``"euclidean"``:
      ``||x_i - x_j||``;
    * ``compare="spearman"`` (ranks, ties averaged), ``"pearson"`` or ``"kendall"`` (tau-b).

    In [-1, 1], 1 on identical inputs, symmetric, not a metric. With the default RDM it is
    invariant to isotropic scaling and unit permutations of either representation, not to
    rotations or translations (a correlation RDM centres each row over its features); the
    Euclidean RDM is invariant to translations and orthogonal maps as well.

    Parameters
    ----------
    X : array (n, p)
    Y : array (n, q)
    rdm : {"correlation", "euclidean", "cosine"}
    compare : {"spearman", "pearson", "kendall"}

    Returns
    -------
    float in [-1, 1]

    Raises
    ------
    ValueError
        Fewer than 3 rows, different row counts, NaN/infinity, a row that is constant
        (correlation RDM) or zero (cosine RDM), an RDM whose entries are all equal.
    MemoryError
        The two RDM vectors (n (n - 1) / 2 float64 entries each, plus the ranks for Spearman)
        do not fit in memory.

    Notes
    -----
    O(n^2 (p + q)) time and O(n^2) memory: RSA needs the RDMs. rsatoolbox's "euclidean" RDM is the
    squared distance divided by the number of features, a monotone transform of ours (Spearman
    and Kendall agree, Pearson does not).

    References
    ----------
    Kriegeskorte, Mur & Bandettini, "Representational similarity analysis - connecting the
    branches of systems neuroscience", Front. Syst. Neurosci. 2008.
    """
    check_choice(rdm, "rdm", RDM_KINDS)
    check_choice(compare, "compare", RDM_COMPARISONS)
    X = as_float_matrix(X, "X", min_rows=3)
    Y = as_float_matrix(Y, "Y", min_rows=3)
    check_same_rows(X, Y)
    n = X.shape[0]
    n_pairs = n * (n - 1) // 2
    check_allocation(8 * n_pairs * (4 if compare != "pearson" else 2) + 8 * n * _BLOCK * 2,
                     f"rsa RDM vectors (n (n - 1) / 2,) = ({n_pairs},) float64")
    a = rdm_vector(X, rdm, "X")
    b = rdm_vector(Y, rdm, "Y")
    if compare == "kendall":
        from scipy.stats import kendalltau

        _pearson(a, b, f"{rdm} RDM")  # same check for constant RDMs
        return float(kendalltau(a, b).statistic)
    if compare == "spearman":
        from scipy.stats import rankdata

        a, b = rankdata(a), rankdata(b)
    return _pearson(a, b, f"{rdm} RDM")
