"""The kernel graph of a diffusion map: nearest neighbours, bandwidth and the normalised kernel.

Stage 2 of :meth:`DiffusionMaps.fit <latentbridge.diffusion.DiffusionMaps.fit>` (Bertalan, Dietrich,
Kevrekidis et al., arXiv:2007.05646, Algorithm 1, steps 2-3; Coifman and Lafon 2006):

1. k nearest neighbours of every point: Euclidean, or in the Mahalanobis metric
   ``d2_ij = |G_i (y_i - y_j)|^2 + |G_j (y_i - y_j)|^2`` re-ranked exactly among
   ``candidate_factor * k`` Euclidean candidates (:func:`nearest_neighbors`);
2. the bandwidth ``epsilon``: the median over the points of ``d2`` to the ``k_epsilon``-th neighbour
   (:func:`auto_epsilon`);
3. the kernel ``K_ij = exp(-d2_ij / (2 epsilon))`` on the union of the neighbour lists (symmetric,
   with the diagonal), ``p = K 1``, ``W = P^-alpha K P^-alpha``, ``q = W 1`` and the symmetric
   ``T = Q^-1/2 W Q^-1/2`` in CSR form (:func:`kernel_graph`).

Every function runs on ``device`` ("cpu" or "cuda", already resolved) through the extension module
that :func:`latentbridge._backend.kernels` returns; the bench times these functions directly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .._backend import kernels

__all__ = ["KernelGraph", "euclidean_candidates", "mahalanobis_neighbors", "nearest_neighbors",
           "neighbor_recall", "auto_epsilon", "kernel_graph", "check_finite_distances"]

#: neighbor_recall compares with a search over this many times more candidates ...
_RECALL_FACTOR = 4
#: ... on this many random points.
_RECALL_SAMPLE = 256


class KernelGraph(NamedTuple):
    """The normalised kernel ``T = Q^-1/2 W Q^-1/2`` in CSR form and the two normalisations.

    Attributes
    ----------
    indptr, indices, data : ndarray
        CSR arrays of the symmetric (n, n) matrix T.
    density : ndarray of shape (n,)
        ``p = K 1``, the kernel density estimate (its ``-alpha`` power normalises K).
    degree : ndarray of shape (n,)
        ``q = W 1``; ``sqrt(q)`` is T's eigenvector of eigenvalue 1.
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    density: np.ndarray
    degree: np.ndarray

    @property
    def n_points(self):
        return self.degree.shape[0]

    def to_csr(self):
        """T as a :class:`scipy.sparse.csr_matrix` (sharing the arrays)."""
        n = self.n_points
        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=(n, n))


def check_finite_distances(d2, name):
    """ValueError when squared distances overflowed float64."""
    if not np.isfinite(d2).all():
        raise ValueError(
            f"squared distances between the rows of {name} overflow float64 (|values| too large, "
            "around 1e154 or more); rescale the data.")


def euclidean_candidates(device, Y, queries, k, n_threads):
    """(idx, d2) of the k Euclidean nearest rows of ``Y`` for each query (``queries=None``: the
    rows of Y themselves, each point excluded from its own list), nearest first."""
    return kernels(device).knn_sqeuclidean(Y, queries, k, n_threads)


def mahalanobis_neighbors(device, Y, G, queries, query_factors, candidates, k, n_threads):
    """(idx, d2): the k candidates nearest in the Mahalanobis metric of the factors ``G`` of the
    rows of Y and ``query_factors`` of the queries (None: the rows of Y), nearest first; invalid
    (-1) candidates are skipped. On the CPU the points are visited in kd-tree order, so that
    consecutive ones share candidates that stay in cache."""
    order = kernels("cpu").kdtree_order(Y) if queries is None and device == "cpu" else None
    return kernels(device).mahalanobis_rerank(Y, G, queries, query_factors, candidates, k,
                                              n_threads, order)


def nearest_neighbors(device, Y, G, k, *, queries=None, query_factors=None, candidate_factor=3,
                      n_threads=1):
    """(idx, d2): k nearest neighbours, Euclidean (``G=None``) or Mahalanobis re-ranked among
    ``candidate_factor * k`` Euclidean candidates (all of them when that reaches the number of
    available points). ``queries=None``: the rows of Y, each excluding itself."""
    if G is None:
        return euclidean_candidates(device, Y, queries, k, n_threads)
    limit = Y.shape[0] - 1 if queries is None else Y.shape[0]
    cand, _ = euclidean_candidates(device, Y, queries, min(limit, candidate_factor * k), n_threads)
    return mahalanobis_neighbors(device, Y, G, queries, query_factors, cand, k, n_threads)


def neighbor_recall(device, Y, G, idx, candidate_factor, rng, n_threads=1):
    """Fraction of the kept Mahalanobis neighbours ``idx`` (n, k) that a search among
    ``_RECALL_FACTOR`` times more Euclidean candidates keeps too, on ``_RECALL_SAMPLE`` random
    points (1.0 when no wider search is possible)."""
    n, k = idx.shape
    kc = min(n - 1, candidate_factor * k)
    big = min(n - 1, _RECALL_FACTOR * kc)
    if big <= kc:
        return 1.0
    rows = np.sort(rng.choice(n, size=min(n, _RECALL_SAMPLE), replace=False))
    Yr = np.ascontiguousarray(Y[rows])
    cand, _ = euclidean_candidates(device, Y, Yr, big + 1, n_threads)
    drop = cand == rows[:, None]
    drop[~drop.any(axis=1), -1] = True  # one entry per row goes: the point itself or the last
    cand = np.ascontiguousarray(cand[~drop].reshape(len(rows), big))
    ref, _ = mahalanobis_neighbors(device, Y, G, Yr, np.ascontiguousarray(G[rows]), cand, k,
                                   n_threads)
    hits = sum(len(np.intersect1d(a, b, assume_unique=True)) for a, b in zip(idx[rows], ref))
    return hits / (len(rows) * k)


def auto_epsilon(Y, idx, d2, k_epsilon):
    """The median over the points of the squared distance to the ``k_epsilon``-th neighbour;
    ValueError when it is 0 (duplicates, or squared distances that underflow float64)."""
    eps = float(kernels("cpu").median_kth_distance(d2, k_epsilon))
    if eps > 0:
        return eps
    far = np.abs(Y[idx[:, k_epsilon - 1]] - Y).max(axis=1)
    if np.median(far) > 0:
        raise ValueError(
            "epsilon='auto' is 0: the squared distances between the rows of Y underflow "
            f"float64 (median distance to the k_epsilon-th neighbour ~{np.median(far):.3g}). "
            "Rescale Y (e.g. Y / Y.std()) or pass a positive epsilon.")
    raise ValueError(
        "epsilon='auto' is 0: at least half of the points have k_epsilon duplicates. "
        "Remove duplicates, raise k_epsilon or pass a positive epsilon."
    )


def kernel_graph(device, idx, d2, epsilon, alpha, n_threads=1):
    """The :class:`KernelGraph` of the neighbour lists (idx, d2) (see the module docstring);
    ValueError when ``alpha`` is so large that ``p^-alpha`` over- or underflows."""
    g = kernels(device).diffusion_graph(idx, d2, float(epsilon), float(alpha), n_threads)
    if not (np.all(np.isfinite(g["q"])) and np.all(g["q"] > 0) and np.all(np.isfinite(g["data"]))):
        raise ValueError(
            f"alpha={alpha!r} is too large for this data: the density normalisation "
            "p^-alpha over- or underflows float64. Use alpha in [0, 1].")
    return KernelGraph(g["indptr"], g["indices"], g["data"], g["p"], g["q"])
