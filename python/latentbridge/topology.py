"""Topological comparison of representations: Vietoris-Rips barcodes, R-Cross-Barcodes and RTD.

The persistence engine is the C++ core (``_core.rips_barcodes``, ``_core.r_cross_barcode_h1``);
this module validates input, computes distance matrices with :func:`pairwise_distances` (on a
CUDA device when available), applies the reference normalisation of the RTD paper and runs
independent problems on threads with the GIL released.
"""

from __future__ import annotations

import math

import numpy as np

from . import _core
from ._validation import (
    as_float_matrix,
    check_allocation,
    check_bool,
    check_choice,
    check_n_jobs,
    check_positive_int,
    check_random_state,
    check_same_rows,
    check_scalar,
)
from ._warnings import warn_user
from .distance import METRICS as POINT_METRICS
from .distance import pairwise_distances

__all__ = ["vr_barcode", "r_cross_barcode", "rtd"]

NORMS = ("quantile", "median", "mean", None)
# The metrics of r_cross_barcode, rtd and rtd_lite: those of pairwise_distances, or the distance
# matrices themselves ("precomputed": weighted graphs, Algorithm 1's own input in the RTD paper)
METRICS = POINT_METRICS + ("precomputed",)
_F32_MAX = float(np.finfo(np.float32).max)
# vr_barcode's symmetry rule for D: numpy's allclose(D, D.T, rtol, atol), with +inf equal to +inf
_VR_SYMMETRY_RTOL, _VR_SYMMETRY_ATOL = 1e-6, 1e-12
# metric="precomputed": |D - D.T| at most this times D's largest entry
_PRECOMPUTED_SYMMETRY = 1e-12


def vr_barcode(D, *, maxdim=1, threshold=None, return_pairs=False, n_jobs=None):
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
    return_pairs : bool, default False
        Also return the persistence pairs: the edges whose lengths are each bar's birth and
        death (see Returns).
    n_jobs : int, optional
        CPU threads (None: 1, -1: all CPUs) of the checks of D and of the homology engine
        (``maxdim`` 1..3): the simplices are listed and sorted concurrently and the reduction runs
        as a two-stage pipeline. The result does not depend on it.

    Returns
    -------
    barcodes : list of ndarray
        ``maxdim + 1`` float64 arrays of shape (k, 2), one per degree, each row a ``(birth,
        death)`` pair sorted by birth then death. Bars of zero length are dropped; essential
        classes have death ``inf`` (H0 always has one ``[0, inf)`` bar per connected component).
    pairs : list of ndarray
        Only with ``return_pairs``: ``maxdim + 1`` int64 arrays aligned row for row with
        ``barcodes``. Degree 0: shape (k, 3), rows ``(v, d1, d2)``: a vertex ``v`` of the
        component that dies and the edge ``(d1, d2)`` that merges it, ``D[d1, d2] = death``. All
        vertices are born at 0, so which component dies is a convention: of the two merged, the
        one whose least vertex number is larger, and ``v`` is that least vertex (an essential
        row ``(v, -1, -1)`` names the least vertex of its component). Degree
        ``k >= 1``: shape (k, 4), rows ``(b1, b2, d1, d2)``: the birth edge, the longest edge of
        the simplex that creates the class (``D[b1, b2] = birth``), and the death edge, the
        longest edge of the simplex that kills it (``D[d1, d2] = death``). An essential class
        has ``d1 = d2 = -1``. Each edge is ascending (``b1 < b2``, ``d1 < d2``); among edges of
        equal length the engine's own filtration order decides: the latest edge in it, which
        for ``maxdim`` 1..3 (the homology engine, ordered by diameter, degree, then increasing
        colexicographic index) is the one of greatest index ``b2 (b2 - 1) / 2 + b1``, and
        otherwise (the cohomology engine, decreasing index) the one of least index. The edges
        are those that decided the bars. One exception to that order: the homology engine never
        sorts the simplices of degree ``maxdim + 1``, it meets each at the birth of its latest
        facet, so in degree ``maxdim`` a tie between killing simplices of equal diameter is
        decided in that order: the death edge (and, among classes born together, which one dies)
        may then differ from the standard reduction in (diameter, degree, colex) order, while the
        bars and the lengths of all edges are the same.

    Raises
    ------
    ValueError
        If D is empty, not square, not symmetric, has a non-zero diagonal, a negative entry,
        NaN, or a finite entry above float32's maximum (3.4e38, which would become an absent
        edge); if maxdim or threshold is out of range; if n_jobs is 0 or not an integer.
    TypeError
        If D is not numeric, maxdim is not an integer or return_pairs is not a bool.
    OverflowError
        If the simplices of degree ``maxdim + 1`` cannot be numbered in 64 bits.
    MemoryError
        If the engine's model of what it holds exceeds the available memory
        (``LATENTBRIDGE_MEMORY_LIMIT``). For ``maxdim`` 1..3 (the homology engine): 8 n^2 bytes
        (the float32 matrix and its copy), n^2 / 8 (bit sets), 2 n^2 + n^2 / 16 more for
        ``maxdim=2`` (a slot and a bit per edge) and 40 bytes for each simplex of
        degrees 1..maxdim (56 above degree 1 with ``n_jobs`` >= 2), the simplices counted by an
        upper bound on the cliques of the threshold graph. Otherwise the float32 copy, the
        engine's matrix, the edge list and the H1 reduction (about 36 n^2 bytes for maxdim=0,
        60 n^2 otherwise), or for maxdim >= 2 an upper bound on the simplex lists (56 bytes for
        each clique of the threshold graph that the engine stores). A high maxdim on a dense
        complex explodes combinatorially: this turns that into an error instead of a hang.

    Notes
    -----
    H0 is computed by union-find over the sorted edges. For ``maxdim`` 1..3 (and fewer than
    65536 points) the higher degrees are computed by streaming homology kept reduced to zero
    differentials [3]_: the simplices are taken in the order (diameter, degree, colexicographic
    index), every class is kept written in the live simplices, a new simplex whose boundary is
    non-zero kills the latest live simplex of it (the elder rule), and the simplices of degree
    ``maxdim + 1`` are never listed, only visited from their latest facet when it is born.
    Otherwise the algorithm is Ripser's [1]_: degree by degree, the coboundary matrix is reduced
    in reverse filtration order (cohomology) with clearing, implicit coboundaries in the
    combinatorial number system and zero-persistence (emergent) pairs detected without
    reduction; ties in diameter are broken by reverse colexicographic index there. Both are exact
    and give the same barcodes. Conventions (float32 values, Z/2 coefficients, dropped
    zero-length bars) follow giotto-ph [2]_ and ripser, whose barcodes this reproduces exactly.
    The pairs are recorded by the C++ engine where it emits each bar: the simplex whose class
    dies and the simplex that kills it, or the merging edge of the union-find; with distinct
    distances they are giotto-ph's ``return_generators`` edges.

    References
    ----------
    .. [1] U. Bauer, "Ripser: efficient computation of Vietoris-Rips persistence barcodes",
       J. Appl. Comput. Topol. 5, 391-423 (2021).
    .. [2] J. Perez, S. Hess, R. Lupo et al., "giotto-ph: A Python library for high-performance
       computation of persistent homology of Vietoris-Rips filtrations", arXiv:2107.05412.
    .. [3] C. Kapulkin and N. Kershaw, "RedZeD: Computing persistent homology by Reduction to
       Zero Differentials", arXiv:2606.06310.

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
    return_pairs = check_bool(return_pairs, "return_pairs")
    n_threads = check_n_jobs(n_jobs)
    if threshold is not None:
        threshold = check_scalar(threshold, "threshold", minimum=0, finite=False)
        # above float32's range every edge is kept: pass +inf (a C++ narrowing cast of an
        # out-of-range double to float is undefined behaviour)
        threshold = threshold if threshold <= _F32_MAX else np.inf
    D = as_float_matrix(D, "D", allow_nonfinite=True)
    n = D.shape[0]
    # the C++ resource models: the homology engine's needs the float32 matrix to count the
    # simplices (and includes it); the cohomology engine's copies, edges and H1 tables are checked
    # before that copy, its simplex lists of degree >= 2 after.
    homology = _core.rips_homology_applies(n, maxdim)
    D32, enclosing = _checked_vr_matrix(D, n_threads, copy=homology)
    if threshold is None:
        threshold = enclosing   # (the engine's default, a float32 value: computed once here)
    if not homology:
        check_allocation(_core.rips_workspace_bytes(n, maxdim),
                         f"vr_barcode matrices and edges for D ({n}, {n})")
        if D32 is None:
            D32 = np.ascontiguousarray(D, dtype=np.float32)
        if maxdim >= 2 and math.comb(n, maxdim + 2) < 2**63:   # else the engine raises OverflowError
            check_allocation(_core.rips_simplex_bytes(D32, maxdim, threshold),
                             f"vr_barcode simplices of degrees 2..{maxdim} for D ({n}, {n})")
    else:
        check_allocation(_core.rips_homology_bytes(D32, maxdim, threshold, n_threads),
                         f"vr_barcode matrices and simplices of degrees 1..{maxdim} for D ({n}, {n})")
    if not return_pairs:
        return [_sorted(b) for b in _core.rips_barcodes(D32, maxdim, threshold,
                                                        n_threads=n_threads)]
    bars, pairs = _core.rips_barcodes(D32, maxdim, threshold, return_pairs=True,
                                      n_threads=n_threads)
    sorted_pairs = [_sorted(b, p) for b, p in zip(bars, pairs)]
    return [b for b, _ in sorted_pairs], [p for _, p in sorted_pairs]


def r_cross_barcode(P, Q, *, dim=1, norm="quantile", metric="euclidean", device="auto",
                    n_jobs=None, return_pairs=False):
    """R-Cross-Barcode of two representations of the same samples.

    Parameters
    ----------
    P, Q : array_like of shape (n_samples, n_features_P) and (n_samples, n_features_Q)
        Two representations of the same samples, in the same row order (numpy arrays or
        anything numpy converts; computed in float64). With ``metric="precomputed"``, their
        (n_samples, n_samples) distance matrices ``w`` and ``w~`` instead (see ``metric``).
    dim : {1, 0, 2}, default 1
        Homology degree of the barcode. Degree 1 uses the structured reduction (see Notes);
        degrees 0 and 2 reduce the doubled 2n x 2n matrix with the generic engine.
    norm : {"quantile", "median", "mean", None}, default "quantile"
        Each distance matrix is divided by its 0.9-quantile, median or mean, taken over the full
        n x n matrix (diagonal included, numpy's linear interpolation), or left as it is.
    metric : {"euclidean", "sqeuclidean", "cosine", "precomputed"}, default "euclidean"
        Metric of the distance matrices. ``"precomputed"`` takes P and Q as the weights of two
        complete graphs on the same vertices (the input of Algorithm 1 of the RTD paper): square,
        finite, non-negative, with a zero diagonal and symmetric up to ``1e-12`` times the
        largest entry (the two triangles are then averaged). They are normalised like computed
        distances.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where the distance matrices are computed (unused with ``metric="precomputed"``); the
        reduction runs on the CPU.
    n_jobs : int, optional
        CPU threads (None: 1, -1: all CPUs) of the distances (from 256 samples on: below, thread
        start-up costs more than it saves) and of the degree-1 reduction (its
        neighbour lists, the search for the columns that are not zero-persistence pairs, and the
        reduction of those columns, taken further side by side in rounds and stored in
        filtration order). The result does not depend on it.
    return_pairs : bool, default False
        Also return the edges of the 2n x 2n matrix whose lengths are each bar's birth and death.

    Returns
    -------
    bars : ndarray of shape (k, 2)
        The finite bars ``(birth, death)`` (float64 holding float32 values), sorted by birth
        then death.
    pairs : ndarray of int64
        Only with ``return_pairs``: aligned row for row with ``bars``, in the vertex numbers of
        the official 2n x 2n matrix ``M = [[0, w^T], [w, min(w, w~)]]`` (0..n-1 the first block,
        n..2n-1 the second). Shape (k, 4), rows ``(b1, b2, d1, d2)`` with ``M[b1, b2] = birth``
        and ``M[d1, d2] = death`` (see :func:`vr_barcode`); for ``dim=0`` shape (k, 3), rows
        ``(v, d1, d2)``. In degree 1 a birth edge is always ``(n + i, n + j)``, an entry of
        ``min(w, w~)`` where ``w~ < w``; a death edge is ``(n + i, n + j)`` (a triangle of the
        second block) or the cross edge ``(i, n + j)``, ``i < j``, of length ``w_ij`` (its twin
        ``(j, n + i)`` has the same length).

    Raises
    ------
    ValueError
        If P and Q have different numbers of rows or fewer than 2 rows, contain NaN or infinity,
        if a normalisation constant is zero, if a (normalised) distance exceeds float32's range
        (possible with ``norm=None``), or for an unknown option. With ``metric="precomputed"``
        also if P or Q is not square, not symmetric, has a non-zero diagonal or a negative entry.
    TypeError
        For non-numeric input, or a ``return_pairs`` that is not a bool.
    MemoryError
        If the distance matrices and the reduction (about 80 n^2 bytes in degree 1, 178 n^2 in
        degree 0, 274 n^2 in degree 2) exceed the available memory (``LATENTBRIDGE_MEMORY_LIMIT``).

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

    Two exact engines reduce the cone form. Cohomology (Ripser's reduction with clearing and
    emergent pairs) is fastest when the representative cocycles stay small; when the first
    representation is noise and the second has structure they are cuts of O(n^2) edges and its
    cost grows like n^4. Streaming homology, which keeps every edge's class reduced to the edges
    still alive (the reduction-to-zero-differentials view of RedZeD [2]_), carries paths instead.
    The cohomology engine runs first under a budget of ``2e-6 n^2`` CPU seconds: once 1/16 of it
    is spent, the homology engine takes over as soon as the time so far, projected over all the
    columns to reduce, exceeds it, and past four budgets in any case (nearly equal
    representations spend most of their time in their last columns, which the projection cannot
    foresee). Both give the same barcode; only the time differs.

    References
    ----------
    .. [1] S. Barannikov, I. Trofimov, N. Balabin, E. Burnaev, "Representation Topology
       Divergence: A Method for Comparing Neural Network Representations", ICML 2022.
    .. [2] C. Kapulkin, N. Kershaw, "RedZeD: Computing persistent homology by Reduction to Zero
       Differentials", arXiv:2606.06310, 2026.

    Examples
    --------
    >>> import numpy as np, latentbridge as lb
    >>> P = np.random.default_rng(0).standard_normal((50, 3))
    >>> lb.r_cross_barcode(P, P).shape
    (0, 2)
    """
    dim = check_positive_int(dim, "dim", minimum=0, maximum=2)
    check_choice(norm, "norm", NORMS)
    check_choice(metric, "metric", METRICS)
    return_pairs = check_bool(return_pairs, "return_pairs")
    n_threads = check_n_jobs(n_jobs)
    P, Q = _check_pair(P, Q, metric)
    n = P.shape[0]
    per_problem = _core.r_cross_workspace_bytes(n) if dim == 1 else _core.rips_workspace_bytes(2 * n, dim)
    check_allocation(_DISTANCE_BYTES_PER_PAIR * n * n + per_problem,
                     f"r_cross_barcode distance matrices and reduction for ({n}, {n})")
    # the two matrices side by side on 2+ threads (the quantile's selection releases the GIL)
    threads = _preparation_threads(n, n_threads)
    r1, r2 = _run_threads(
        lambda item: _normalised_distances(item[0], item[1], norm, metric, device, threads),
        [(P, "P"), (Q, "Q")], threads)
    w, m = _cross_matrices(r1, r2, ("P", "Q"), threads)
    del r1, r2  # 16 n^2 bytes the engine does not read
    return _r_cross_of_matrices(w, m, dim, n_threads, return_pairs)


def rtd(P, Q, *, trials=10, batch=500, symmetric=True, dim=1, norm="quantile", seed=None,
        n_jobs=None, device="auto", metric="euclidean", return_trials=False):
    """Representation Topology Divergence between two representations of the same samples.

    Parameters
    ----------
    P, Q : array_like of shape (n_samples, n_features_P) and (n_samples, n_features_Q)
        Two representations of the same samples, in the same row order; with
        ``metric="precomputed"`` their (n_samples, n_samples) distance matrices, of which each
        trial takes the rows and columns of its subset.
    trials : int, default 10
        Number of random subsets averaged.
    batch : int, default 500
        Rows per subset. Each trial draws one subset of row indices and uses it for both P and
        Q. ``batch > n_samples`` is clamped to ``n_samples`` with a warning (every trial then
        uses all rows, so the trials are identical); pass ``batch=n_samples`` (and
        ``trials=1``) to use the whole set without it.
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
        CPU threads: the trials and both directions run in parallel (None: 1, -1: all CPUs);
        the distances of a batch of 256 or more rows are threaded too.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where the distance matrices are computed (unused with ``metric="precomputed"``).
    metric : {"euclidean", "sqeuclidean", "cosine", "precomputed"}, default "euclidean"
        Metric of the distance matrices (see :func:`r_cross_barcode`; the checks of a
        precomputed matrix are made once, on the whole matrix).
    return_trials : bool, default False
        Return the value of every trial instead of their mean, e.g. to report mean +- std as
        the paper does.

    Returns
    -------
    float or ndarray of shape (trials,)
        The mean over trials of the total length of the finite R-Cross-Barcode bars; with
        ``return_trials`` the per-trial totals themselves (float64, in the order the subsets
        are drawn), whose mean is that value. With ``symmetric``, each trial's value is already
        the mean of its two directions, ``(RTD(P, Q) + RTD(Q, P)) / 2`` on the same subset.

    Raises
    ------
    ValueError
        If P and Q have different numbers of rows or fewer than 2 rows, contain NaN or
        infinity, for out-of-range trials/batch, a negative seed, a zero normalisation constant
        or an unknown option; for a precomputed P or Q that is not a distance matrix (see
        :func:`r_cross_barcode`).
    TypeError
        For non-numeric input, a bad seed, or a ``symmetric``/``return_trials`` that is not a
        bool.
    MemoryError
        If the matrices of the trials held at once plus one reduction per thread exceed the
        available memory (``LATENTBRIDGE_MEMORY_LIMIT``).

    Warns
    -----
    UserWarning
        When ``batch`` exceeds the number of samples (the value is computed with
        ``batch = n_samples``).

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
    check_choice(metric, "metric", METRICS)
    symmetric = check_bool(symmetric, "symmetric")
    return_trials = check_bool(return_trials, "return_trials")
    n_threads = check_n_jobs(n_jobs)
    try:
        rng = check_random_state(seed)
    except ValueError as exc:   # numpy's message for a negative int does not name the argument
        raise ValueError(f"seed must be None, a non-negative int or a numpy Generator; got "
                         f"{seed!r} ({exc}).") from None
    P, Q = _check_pair(P, Q, metric)
    n = P.shape[0]
    if batch > n:
        warn_user(
            f"rtd: batch={batch} exceeds the {n} samples of P and Q; every trial uses all {n} rows "
            f"(identical subsets). Pass batch={n} (and trials=1) to use the whole set, or a "
            "smaller batch for random subsets.", UserWarning)
    size = min(batch, n)
    check_allocation(8 * (trials * size + n), f"rtd subsets ({trials}, {size})")
    subsets = [rng.permutation(n)[:size] for _ in range(trials)]

    totals = []
    # Trials whose matrices are held at once: as many as fit in about 256 MiB (so the threads stay
    # busy to the end), and never fewer than the threads need.
    per_group = max((n_threads + 1) // 2, min(trials, (1 << 28) // (16 * size * size)), 1)
    per_group = min(per_group, trials)
    directions = 2 if symmetric else 1
    engine = (_core.r_cross_workspace_bytes(size) if dim == 1
              else _core.rips_workspace_bytes(2 * size, dim))
    check_allocation(
        per_group * directions * 8 * size * size                   # the (w, m) pairs held
        + _DISTANCE_BYTES_PER_PAIR * size * size                   # one subset's distances
        + min(n_threads, per_group * directions) * engine,         # concurrent reductions
        f"rtd matrices of {per_group} trial(s) of ({size}, {size}) on {n_threads} thread(s)")
    threads = _preparation_threads(size, n_threads)
    for start in range(0, trials, per_group):
        problems = []
        for idx in subsets[start:start + per_group]:
            r1 = _normalised_distances(P, "P", norm, metric, device, threads, rows=idx)
            r2 = _normalised_distances(Q, "Q", norm, metric, device, threads, rows=idx)
            problems.append(_cross_matrices(r1, r2, ("P", "Q"), threads))
            if symmetric:
                problems.append(_cross_matrices(r2, r1, ("Q", "P"), threads))
        if dim == 1:
            results = _core.r_cross_barcode_h1_batch(problems, n_threads)
        else:
            results = _run_threads(lambda wm: _doubled_barcode(wm[0], wm[1], dim), problems,
                                   n_threads)
        sums = [float(np.sum(b[:, 1] - b[:, 0])) for b in results]
        step = 2 if symmetric else 1
        totals += [float(np.mean(sums[t:t + step])) for t in range(0, len(sums), step)]
    if return_trials:
        return np.asarray(totals, dtype=np.float64)
    return float(np.mean(totals))


# ---- helpers -----------------------------------------------------------------------------------

# Bytes per n^2 of the two float64 distance matrices, their float64 minimum and the float32 (w, m)
_DISTANCE_BYTES_PER_PAIR = 8 + 8 + 8 + 4 + 4 + 2


def _check_float32_range(D, name):
    """Finite values beyond float32 would become +inf (absent edges): refuse them. D has no
    negative entries (checked, or distances), so its largest entry settles the common case."""
    big = _F32_MAX
    if D.dtype.itemsize <= 4 or D.max() <= big:   # float16/float32 hold nothing beyond it
        return
    magnitude = np.abs(D)
    if np.any((magnitude > big) & (magnitude != np.inf)):
        raise ValueError(
            f"{name} has finite entries above {big:.3g}, which float32 (the precision of the "
            "persistence engine) cannot hold; rescale the data (or use norm='quantile').")


def _check_distance_matrix(D, name, *, precomputed=False):
    """D checked as a distance matrix: square, no NaN, >= 0, zero diagonal, symmetric.

    For :func:`vr_barcode` (``precomputed=False``): ``+inf`` entries are absent edges, the
    dtype is kept and symmetry is checked to ``rtol=1e-6`` (the engine reads one triangle).
    For ``metric="precomputed"`` (``precomputed=True``): float64, at least 2 rows, finite,
    symmetric up to ``1e-12`` times the largest entry, and returned as ``(D + D.T) / 2``
    (``D`` itself when it is exactly symmetric).
    """
    where = " with metric='precomputed'" if precomputed else ""
    D = as_float_matrix(D, name, dtype=np.float64 if precomputed else None,
                        min_rows=2 if precomputed else 1, allow_nonfinite=not precomputed)
    if D.shape[0] != D.shape[1]:
        raise ValueError(f"{name} must be a square distance matrix{where}; got shape {D.shape}.")
    least = D.min()        # NaN when D holds one: one pass for both checks (D has >= 1 row)
    if np.isnan(least):
        bad = np.argwhere(np.isnan(D))[0]
        raise ValueError(f"{name} contains NaN (first at row {bad[0]}, column {bad[1]}).")
    if least < 0:
        raise ValueError(f"{name} has negative entries; distances must be >= 0.")
    if np.any(np.diagonal(D) != 0):
        raise ValueError(
            f"{name} must have a zero diagonal (vertex weights are not supported); set "
            f"np.fill_diagonal({name}, 0) if the diagonal holds round-off."
        )
    if precomputed:
        asymmetry = float(np.max(np.abs(D - D.T)))
        if asymmetry > _PRECOMPUTED_SYMMETRY * float(np.max(D)):
            raise ValueError(
                f"{name} must be symmetric{where} (to {_PRECOMPUTED_SYMMETRY:g} of its largest "
                f"entry; the largest difference |{name}[i, j] - {name}[j, i]| is "
                f"{asymmetry:.3g}); pass "
                f"({name} + {name}.T) / 2 if it holds round-off.")
        return (D + D.T) / 2
    if not _nearly_symmetric(D):
        raise ValueError(f"{name} must be symmetric; pass ({name} + {name}.T) / 2 if it holds "
                         "round-off.")
    return D


def _checked_vr_matrix(D, n_threads, copy):
    """vr_barcode's checks of D (those of :func:`_check_distance_matrix` and
    :func:`_check_float32_range`) in one threaded C++ pass, which also gives D's enclosing radius
    (float32) and, with ``copy``, its float32 copy (D itself when float32; else None). When the
    pass finds a problem, the Python checks name it. D is a matrix from as_float_matrix."""
    if D.shape[0] == D.shape[1]:
        D32 = None
        if D.dtype == np.float32:
            D32 = D
            clean, enclosing = _core.check_distance_matrix(
                D, _VR_SYMMETRY_RTOL, _VR_SYMMETRY_ATOL, n_threads)
        else:
            if copy:
                D32 = np.empty(D.shape, dtype=np.float32)
            clean, enclosing = _core.check_distance_matrix(
                D, _VR_SYMMETRY_RTOL, _VR_SYMMETRY_ATOL, n_threads, D32)
        if clean:
            return D32, enclosing
    _check_distance_matrix(D, "D")
    _check_float32_range(D, "D")
    raise AssertionError("internal: the C++ check refused a matrix that the Python checks accept")


def _nearly_symmetric(D, tile=128):
    """numpy's ``allclose(D, D.T, rtol, atol)`` with vr_barcode's tolerances on the finite entries
    of a matrix with no negative entries, and ``+inf`` (an absent edge) at mirrored places:
    |D[i, j] - D[j, i]| <= atol + rtol D[j, i] at (i, j) and at (j, i), so <= atol + rtol
    min(D[i, j], D[j, i]); or both equal (both +inf). Visits each pair of mirrored square tiles
    once (cache-friendly, small temporaries)."""
    n = D.shape[0]
    for r in range(0, n, tile):
        for c in range(r, n, tile):
            upper, lower = D[r:r + tile, c:c + tile], D[c:c + tile, r:r + tile].T
            equal = upper == lower
            if equal.all():          # the common case (distances from points): one pass
                continue
            with np.errstate(invalid="ignore"):       # inf - inf: equal, caught by ==
                close = (np.abs(upper - lower)
                         <= _VR_SYMMETRY_ATOL + _VR_SYMMETRY_RTOL * np.minimum(upper, lower))
            if not np.all(close | equal):
                return False
    return True


def _check_pair(P, Q, metric):
    """The two inputs of r_cross_barcode/rtd/rtd_lite: float64 point clouds, or distance matrices
    for ``metric="precomputed"``, with the same number of rows."""
    if metric == "precomputed":
        P = _check_distance_matrix(P, "P", precomputed=True)
        Q = _check_distance_matrix(Q, "Q", precomputed=True)
    else:
        P = as_float_matrix(P, "P", dtype=np.float64, min_rows=2)
        Q = as_float_matrix(Q, "Q", dtype=np.float64, min_rows=2)
    check_same_rows(P, Q, ("P", "Q"))
    return P, Q


def _normalised_distances(X, name, norm, metric, device, n_jobs, rows=None):
    """The float64 distance matrix of X (of its ``rows``), divided by the constant of ``norm``.

    X is a point cloud checked by :func:`_check_pair`, or for ``metric="precomputed"`` its
    checked distance matrix (of which the rows and columns ``rows`` are taken; always a copy).
    """
    if metric == "precomputed":
        r = np.array(X if rows is None else X[np.ix_(rows, rows)], dtype=np.float64, order="C")
    else:
        r = pairwise_distances(X if rows is None else X[rows], metric=metric, device=device,
                               n_jobs=n_jobs)
        r = np.asarray(r, dtype=np.float64)
    if norm is None:
        return r
    if norm == "quantile":
        # np.quantile(r, 0.9) from the strict upper triangle: bit for bit when r is exactly symmetric
        # (computed distances); a precomputed r passes the symmetry check within 1e-12 relative
        scale = _core.symmetric_quantile(r, 0.9)
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
            f"scale them (too many coinciding rows in {name}, or zero entries in a precomputed "
            f"{name}); use norm=None or another norm."
        )
    r /= scale
    return r


def _cross_matrices(r1, r2, names, n_threads=1):
    """The float32 inputs of the engine: w = r1 and m = min(r1, r2), snapped as the reference.

    The reference sets entries below ``eps = mean(r1) * 1e-6`` to zero in ``w`` and in the
    float64 ``min(r1, r2)``. Rounding to float32 is monotone, so ``m`` is the float32 minimum of
    the two rounded and snapped matrices: one C++ pass on ``n_threads`` makes both.
    """
    r1, r2 = (np.ascontiguousarray(r, dtype=np.float64) for r in (r1, r2))
    eps = r1.mean() * 1e-6
    w = np.empty(r1.shape, dtype=np.float32)
    m = np.empty(r1.shape, dtype=np.float32)
    beyond = _core.r_cross_inputs(r1, r2, eps, w, m, n_threads)
    if beyond:  # a finite entry float32 cannot hold: the message of the range check
        r, name = (r1, names[0]) if beyond == 1 else (r2, names[1])
        _check_float32_range(r, f"the (normalised) distance matrix of {name}")
    return w, m


def _r_cross_of_matrices(w, m, dim, n_threads, return_pairs):
    """The R-Cross-Barcode of degree dim from the engine's (w, m), sorted; with its pairs if asked."""
    if dim == 1:
        result = _core.r_cross_barcode_h1(w, m, n_threads, return_pairs=return_pairs)
        return _sorted(*result) if return_pairs else _sorted(result)
    return _doubled_barcode(w, m, dim, return_pairs)


def _doubled_barcode(w, m, dim, return_pairs=False):
    n = w.shape[0]
    M = np.zeros((2 * n, 2 * n), dtype=np.float32)
    M[n:, :n] = w
    M[:n, n:] = w.T
    M[n:, n:] = m
    if not return_pairs:
        bars = _core.rips_barcodes(M, dim, None)[dim]
        return _sorted(bars[np.isfinite(bars[:, 1])])
    bars, pairs = _core.rips_barcodes(M, dim, None, return_pairs=True)
    finite = np.isfinite(bars[dim][:, 1])
    return _sorted(bars[dim][finite], pairs[dim][finite])


def _sorted(bars, pairs=None):
    """Bars sorted by birth then death (float64, shape (k, 2)); with ``pairs``, also the pairs in
    the same order."""
    bars = np.asarray(bars, dtype=np.float64).reshape(-1, 2)
    order = np.lexsort((bars[:, 1], bars[:, 0]))
    if pairs is None:
        return bars[order]
    return bars[order], np.asarray(pairs, dtype=np.int64)[order]


#: Below this many points the distance matrices and the engine's inputs are made on one thread:
#: starting threads costs more than they save (64-D, 100 points: both matrices in 1.4 ms on two
#: threads against 0.5 ms on one; even from 256 points on). The reductions keep their threads.
_THREADED_PREPARATION_POINTS = 256


def _preparation_threads(n, n_threads):
    """Threads for the distances and inputs of an n-point problem (see the constant above)."""
    return n_threads if n >= _THREADED_PREPARATION_POINTS else 1


def _run_threads(fn, items, n_threads):
    if n_threads <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(n_threads, len(items))) as pool:
        return list(pool.map(fn, items))
