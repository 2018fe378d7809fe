"""Topological comparison of representations: Vietoris-Rips barcodes, R-Cross-Barcodes and RTD.

The persistence engine is the C++ core (``_core.rips_barcodes``, ``_core.r_cross_barcode_h1``);
this module validates input, computes distance matrices with :func:`pairwise_distances` (on a
CUDA device when available), applies the reference normalisation of the RTD paper and runs
independent problems on threads with the GIL released.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import _core
from ._validation import (
    as_float_matrix,
    check_choice,
    check_n_jobs,
    check_positive_int,
    check_random_state,
    check_same_rows,
)
from .distance import pairwise_distances

__all__ = ["vr_barcode", "r_cross_barcode", "rtd"]

NORMS = ("quantile", "median", "mean", None)


def vr_barcode(D, *, maxdim=1, threshold=None):
    """Vietoris-Rips persistence barcodes of a distance matrix.

    Parameters
    ----------
    D : array_like of shape (n, n)
        Symmetric matrix of pairwise distances with a zero diagonal. ``+inf`` marks a missing
        edge. Values are rounded to float32 before the reduction, as in ripser and giotto-ph.
    maxdim : int, default 1
        Largest homology degree computed (0, 1, 2, ...).
    threshold : float, optional
        Simplices with a diameter above it are left out. ``None`` uses the enclosing radius
        ``min_i max_j D[i, j]``, beyond which the complex is a cone, so the barcode is complete.

    Returns
    -------
    barcodes : list of ndarray
        ``maxdim + 1`` float64 arrays of shape (k, 2), one per degree, each row a ``(birth,
        death)`` pair sorted by birth then death. Bars of zero length are dropped; essential
        classes have death ``inf`` (H0 always has one ``[0, inf)`` bar per connected component).

    Raises
    ------
    ValueError
        If D is not square, not symmetric, has a non-zero diagonal, a negative entry or NaN; if
        maxdim or threshold is out of range.
    TypeError
        If D is not numeric or maxdim is not an integer.
    OverflowError
        If the simplices of degree ``maxdim + 1`` cannot be numbered in 64 bits.

    Notes
    -----
    The algorithm is Ripser's (Bauer 2021): H0 by union-find over the sorted edges, then, degree
    by degree, the coboundary matrix is reduced in reverse filtration order (cohomology) with
    clearing, implicit coboundaries in the combinatorial number system and zero-persistence
    (emergent) pairs detected without reduction. The filtration is ordered by diameter with ties
    broken by reverse colexicographic index. Conventions (float32 values, Z/2 coefficients,
    dropped zero-length bars) follow giotto-ph/ripser, whose barcodes this reproduces exactly.

    References
    ----------
    .. [1] U. Bauer, "Ripser: efficient computation of Vietoris-Rips persistence barcodes",
       J. Appl. Comput. Topol. 5, 391-423 (2021).
    .. [2] J. Perez, S. Hess, R. Lupo et al., "giotto-ph: A Python library for high-performance
       computation of persistent homology of Vietoris-Rips filtrations", arXiv:2107.05412.

    Examples
    --------
    >>> import numpy as np, latentbridge as lb
    >>> t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    >>> X = np.c_[np.cos(t), np.sin(t)]
    >>> h0, h1 = lb.vr_barcode(lb.pairwise_distances(X))
    >>> len(h1)
    1
    """
    maxdim = check_positive_int(maxdim, "maxdim", minimum=0, maximum=61)
    D = _check_distance_matrix(D, "D")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
            raise TypeError(f"threshold must be a real number or None; got {threshold!r}.")
        if np.isnan(threshold) or threshold < 0:
            raise ValueError(f"threshold must be a non-negative number or None; got {threshold!r}.")
        threshold = float(threshold)
    D32 = np.ascontiguousarray(D, dtype=np.float32)
    return [_sorted(b) for b in _core.rips_barcodes(D32, maxdim, threshold)]


def r_cross_barcode(P, Q, *, dim=1, norm="quantile", metric="euclidean", device="auto",
                    n_jobs=None):
    """R-Cross-Barcode of two representations of the same samples.

    Parameters
    ----------
    P, Q : array_like of shape (n_samples, n_features_P) and (n_samples, n_features_Q)
        Two representations of the same samples, in the same row order (numpy arrays or
        anything numpy converts; computed in float64).
    dim : {1, 0, 2}, default 1
        Homology degree of the barcode. Degree 1 uses the structured reduction (see Notes);
        degrees 0 and 2 reduce the doubled 2n x 2n matrix with the generic engine.
    norm : {"quantile", "median", "mean", None}, default "quantile"
        Each distance matrix is divided by its 0.9-quantile, median or mean, taken over the full
        n x n matrix (diagonal included, numpy's linear interpolation), or left as it is.
    metric : {"euclidean", "sqeuclidean", "cosine"}, default "euclidean"
        Metric of the distance matrices.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where the distance matrices are computed; the reduction runs on the CPU.
    n_jobs : int, optional
        CPU threads (None: 1, -1: all CPUs).

    Returns
    -------
    bars : ndarray of shape (k, 2)
        The finite bars ``(birth, death)`` (float64 holding float32 values), sorted by birth
        then death.

    Raises
    ------
    ValueError
        If P and Q have different numbers of rows or fewer than 2 rows, contain NaN or infinity,
        if a normalisation constant is zero, or for an unknown option.
    TypeError
        For non-numeric input.

    Notes
    -----
    With ``w`` and ``w~`` the normalised distance matrices of P and Q, the barcode is that of the
    Vietoris-Rips filtration of the 2n x 2n matrix ``[[0, w^T], [w, min(w, w~)]]`` after the
    reference code's snapping of entries below ``mean(w) * 1e-6`` to zero; this reproduces the
    official implementation (github.com/IlyaTrofimov/RTD) bar for bar. In degree 1 the first
    block together with the cross edges is a contractible subcomplex, so the barcode equals the
    relative cohomology of the cone form with n + 1 vertices: each edge ``(i, j)`` enters at
    ``min(w, w~)_ij`` and has, besides its ordinary triangles, one cone triangle at ``w_ij``.
    Only the n(n - 1)/2 edges of one block are reduced, and no 2n x 2n matrix is built.

    References
    ----------
    .. [1] S. Barannikov, I. Trofimov, N. Balabin, E. Burnaev, "Representation Topology
       Divergence: A Method for Comparing Neural Network Representations", ICML 2022.

    Examples
    --------
    >>> import numpy as np, latentbridge as lb
    >>> P = np.random.default_rng(0).standard_normal((50, 3))
    >>> lb.r_cross_barcode(P, P).shape
    (0, 2)
    """
    dim = check_positive_int(dim, "dim", minimum=0, maximum=2)
    check_choice(norm, "norm", NORMS)
    n_threads = check_n_jobs(n_jobs)
    P = as_float_matrix(P, "P", dtype=np.float64, min_rows=2)
    Q = as_float_matrix(Q, "Q", dtype=np.float64, min_rows=2)
    check_same_rows(P, Q, ("P", "Q"))
    r1 = _normalised_distances(P, "P", norm, metric, device, n_jobs)
    r2 = _normalised_distances(Q, "Q", norm, metric, device, n_jobs)
    w, m = _cross_matrices(r1, r2)
    if dim == 1:
        return _sorted(_core.r_cross_barcode_h1(w, m, n_threads))
    return _doubled_barcode(w, m, dim)


def rtd(P, Q, *, trials=10, batch=500, symmetric=True, dim=1, norm="quantile", seed=None,
        n_jobs=None, device="auto"):
    """Representation Topology Divergence between two representations of the same samples.

    Parameters
    ----------
    P, Q : array_like of shape (n_samples, n_features_P) and (n_samples, n_features_Q)
        Two representations of the same samples, in the same row order.
    trials : int, default 10
        Number of random subsets averaged.
    batch : int, default 500
        Rows per subset (all rows when ``batch >= n_samples``). Each trial draws one subset of
        row indices and uses it for both P and Q.
    symmetric : bool, default True
        Average ``RTD(P, Q)`` and ``RTD(Q, P)`` (the paper's symmetric RTD); otherwise only the
        direction P -> Q.
    dim : {1, 0, 2}, default 1
        Homology degree of the R-Cross-Barcodes.
    norm : {"quantile", "median", "mean", None}, default "quantile"
        Normalisation of each distance matrix (see :func:`r_cross_barcode`).
    seed : None, int or numpy.random.Generator
        Seeds the subset draws; an int makes the result reproducible.
    n_jobs : int, optional
        CPU threads: the trials and both directions run in parallel (None: 1, -1: all CPUs).
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where the distance matrices are computed.

    Returns
    -------
    float
        The mean over trials of the total length of the finite R-Cross-Barcode bars (averaged
        over both directions when ``symmetric``).

    Raises
    ------
    ValueError
        If P and Q have different numbers of rows or fewer than 2 rows, contain NaN or
        infinity, for out-of-range trials/batch, a zero normalisation constant or an unknown
        option.
    TypeError
        For non-numeric input or a bad seed.

    Notes
    -----
    This is the official ``rtd`` of github.com/IlyaTrofimov/RTD (``calc_embed_dist`` per subset,
    ``h1sum`` of the bars, the two directions averaged) with the subsets drawn from ``seed``
    instead of numpy's global random state. Each subset's barcodes are independent problems;
    they run on ``n_jobs`` threads inside the C++ core.

    References
    ----------
    .. [1] S. Barannikov, I. Trofimov, N. Balabin, E. Burnaev, "Representation Topology
       Divergence: A Method for Comparing Neural Network Representations", ICML 2022.

    Examples
    --------
    >>> import numpy as np, latentbridge as lb
    >>> rng = np.random.default_rng(0)
    >>> P = rng.standard_normal((200, 8))
    >>> lb.rtd(P, P, trials=2, batch=100, seed=0)
    0.0
    """
    trials = check_positive_int(trials, "trials")
    batch = check_positive_int(batch, "batch", minimum=2)
    dim = check_positive_int(dim, "dim", minimum=0, maximum=2)
    check_choice(norm, "norm", NORMS)
    if not isinstance(symmetric, (bool, np.bool_)):
        raise TypeError(f"symmetric must be True or False; got {symmetric!r}.")
    n_threads = check_n_jobs(n_jobs)
    rng = check_random_state(seed)
    P = as_float_matrix(P, "P", dtype=np.float64, min_rows=2)
    Q = as_float_matrix(Q, "Q", dtype=np.float64, min_rows=2)
    check_same_rows(P, Q, ("P", "Q"))
    n = P.shape[0]
    size = min(batch, n)
    subsets = [rng.permutation(n)[:size] for _ in range(trials)]

    totals = []
    # Trials whose matrices are held at once: as many as fit in about 256 MiB (so the threads stay
    # busy to the end), and never fewer than the threads need.
    per_group = max((n_threads + 1) // 2, min(trials, (1 << 28) // (16 * size * size)), 1)
    for start in range(0, trials, per_group):
        problems = []
        for idx in subsets[start:start + per_group]:
            r1 = _normalised_distances(P[idx], "P", norm, "euclidean", device, n_jobs)
            r2 = _normalised_distances(Q[idx], "Q", norm, "euclidean", device, n_jobs)
            problems.append(_cross_matrices(r1, r2))
            if symmetric:
                problems.append(_cross_matrices(r2, r1))
        if dim == 1:
            results = _core.r_cross_barcode_h1_batch(problems, n_threads)
        else:
            results = _run_threads(lambda wm: _doubled_barcode(wm[0], wm[1], dim), problems,
                                   n_threads)
        sums = [float(np.sum(b[:, 1] - b[:, 0])) for b in results]
        step = 2 if symmetric else 1
        totals += [float(np.mean(sums[t:t + step])) for t in range(0, len(sums), step)]
    return float(np.mean(totals))


# ---- helpers -----------------------------------------------------------------------------------

def _check_distance_matrix(D, name):
    D = as_float_matrix(D, name, allow_nonfinite=True)
    if D.shape[0] != D.shape[1]:
        raise ValueError(f"{name} must be a square distance matrix; got shape {D.shape}.")
    if np.isnan(D).any():
        bad = np.argwhere(np.isnan(D))[0]
        raise ValueError(f"{name} contains NaN (first at row {bad[0]}, column {bad[1]}).")
    if (D < 0).any():
        raise ValueError(f"{name} has negative entries; distances must be >= 0.")
    if np.any(np.diagonal(D) != 0):
        raise ValueError(
            f"{name} must have a zero diagonal (vertex weights are not supported); set "
            f"np.fill_diagonal({name}, 0) if the diagonal holds round-off."
        )
    finite = np.isfinite(D)
    if not np.array_equal(finite, finite.T) or not np.allclose(
            np.where(finite, D, 0), np.where(finite, D, 0).T, rtol=1e-6, atol=1e-12):
        raise ValueError(f"{name} must be symmetric; pass ({name} + {name}.T) / 2 if it holds "
                         "round-off.")
    return D


def _normalised_distances(X, name, norm, metric, device, n_jobs):
    r = pairwise_distances(X, metric=metric, device=device, n_jobs=n_jobs)
    r = np.asarray(r, dtype=np.float64)
    if norm is None:
        return r
    if norm == "quantile":
        scale = np.quantile(r, 0.9)
        what = "0.9-quantile"
    elif norm == "median":
        scale = np.median(r)
        what = "median"
    else:
        scale = r.mean()
        what = "mean"
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(
            f"the {what} of {name}'s pairwise distances is {scale}, so norm={norm!r} cannot "
            f"scale them (too many coinciding rows in {name}); use norm=None or another norm."
        )
    r /= scale
    return r


def _cross_matrices(r1, r2):
    """The float32 inputs of the engine: w = r1 and m = min(r1, r2), snapped as the reference."""
    eps = r1.mean() * 1e-6
    w = r1.astype(np.float32)
    w[r1 < eps] = 0.0
    m64 = np.minimum(r1, r2)
    m = m64.astype(np.float32)
    m[m64 < eps] = 0.0
    return w, m


def _doubled_barcode(w, m, dim):
    n = w.shape[0]
    M = np.zeros((2 * n, 2 * n), dtype=np.float32)
    M[n:, :n] = w
    M[:n, n:] = w.T
    M[n:, n:] = m
    bars = _core.rips_barcodes(M, dim, None)[dim]
    return _sorted(bars[np.isfinite(bars[:, 1])])


def _sorted(bars):
    bars = np.asarray(bars, dtype=np.float64).reshape(-1, 2)
    return bars[np.lexsort((bars[:, 1], bars[:, 0]))]


def _run_threads(fn, items, n_threads):
    if n_threads <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(n_threads, len(items))) as pool:
        return list(pool.map(fn, items))
