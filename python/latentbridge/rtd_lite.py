"""RTD-Lite: the cluster (H0) part of RTD from three minimum spanning trees, in O(n^2).

RTD-Lite (Tulchinskii et al., AISTATS 2025) compares the connectivity of two weighted graphs on
the same vertices, the normalised distance matrices ``w`` of P and ``w~`` of Q, through the graph
of their minimum ``m = min(w, w~)``. Its value needs three minimum spanning trees (dense Prim,
O(n^2) time, no persistence reduction); its barcodes follow one tree edge at a time.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_allocation, check_bool, check_choice
from .topology import METRICS, NORMS, _check_pair, _normalised_distances, _sorted

__all__ = ["rtd_lite"]

# Bytes per n^2: w, w~ and m (float64), plus the copies and temporaries of the distance
# computation or of the checks of precomputed matrices (at most five more n x n float64 at once)
_BYTES_PER_PAIR = 64


def rtd_lite(P, Q, *, norm="quantile", metric="euclidean", return_barcodes=False):
    """RTD-Lite between two representations (or weighted graphs) of the same samples.

    Parameters
    ----------
    P, Q : array_like of shape (n_samples, n_features_P) and (n_samples, n_features_Q)
        Two representations of the same samples, in the same row order (computed in float64);
        with ``metric="precomputed"`` their (n_samples, n_samples) distance matrices (weighted
        complete graphs; see :func:`latentbridge.r_cross_barcode` for the checks).
    norm : {"quantile", "median", "mean", None}, default "quantile"
        Each distance matrix is divided by its 0.9-quantile, median or mean over the full n x n
        matrix, as in :func:`latentbridge.rtd`, or left as it is.
    metric : {"euclidean", "sqeuclidean", "cosine", "precomputed"}, default "euclidean"
        Metric of the distance matrices.
    return_barcodes : bool, default False
        Also return the two H0 barcodes (see Returns).

    Returns
    -------
    value : float
        ``(1/2) [(MST(w) - MST(m)) + (MST(w~) - MST(m))]``, where ``m = min(w, w~)`` entrywise and
        ``MST(.)`` is the total weight of a minimum spanning tree; 0 for identical inputs and
        symmetric in P and Q.
    barcodes : dict, only with ``return_barcodes=True``
        ``{"1->2": bars, "2->1": bars}``, float64 arrays of shape (k, 2) sorted by birth then
        death. Each edge ``e = (u, v)`` of the minimum spanning tree of ``m``, taken in order of
        increasing weight ``c_e``, joins two components of the graph of the lighter tree edges.
        Its bar is ``[c_e, a_e]``, where ``a_e`` is the smallest ``t`` at which those two
        components are connected by them together with the edges of weight ``<= t`` of ``w``
        (for "1->2") or of ``w~`` (for "2->1"). Only bars with ``a_e > c_e`` are kept. The bar
        lengths of "1->2" add up to ``MST(w) - MST(m)`` and those of "2->1" to
        ``MST(w~) - MST(m)``, so their total is twice ``value``.

    Raises
    ------
    ValueError
        If P and Q have different numbers of rows or fewer than 2 rows, contain NaN or
        infinity, if a normalisation constant is zero, if a distance overflows float64, for an
        unknown option; for a precomputed P or Q that is not square, not symmetric, has a
        non-zero diagonal or a negative entry.
    TypeError
        For non-numeric input or a ``return_barcodes`` that is not a bool.
    MemoryError
        If the three n x n float64 matrices and their temporaries (about 64 n^2 bytes) exceed
        the available memory (``LATENTBRIDGE_MEMORY_LIMIT``).

    Notes
    -----
    The R-Cross-Barcode_1 of P and Q is the persistent relative homology of the filtrations of
    ``m`` and ``w``; the classes that come from H0 are pairs of components of the graph of
    ``w`` merged in the graph of ``m``. RTD-Lite keeps only those, so it needs no persistence
    reduction. At each scale t, as many bars of "1->2" are alive as the graph of ``w`` has
    more components than that of ``m``, which integrates to ``MST(w) - MST(m)``.

    Each tree is found by Prim's algorithm on the dense matrix (n steps of O(n) numpy work).
    The barcode keeps a spanning tree S of the graph in which the processed edges of the
    tree of ``m`` weigh 0 and the edges of ``w`` their weight (it starts as the tree of ``w``).
    For each edge e = (u, v) of the tree of ``m``, the heaviest edge of the path from u to v in S
    has the weight ``a_e`` at which the two components are first joined. That edge is then
    replaced by e at weight 0, which keeps S a minimum spanning tree. With a breadth-first search
    per edge, this takes O(n^2) time. Distances are not rounded to float32 and are not snapped to
    zero, unlike :func:`latentbridge.rtd`'s reduction.

    References
    ----------
    .. [1] E. Tulchinskii, D. Voronkova, I. Trofimov, E. Burnaev, S. Barannikov, "RTD-Lite:
       Scalable Topological Analysis for Comparing Weighted Graphs in Learning Tasks",
       AISTATS 2025, arXiv:2503.11910.
    .. [2] S. Barannikov, I. Trofimov, N. Balabin, E. Burnaev, "Representation Topology
       Divergence: A Method for Comparing Neural Network Representations", ICML 2022.

    Examples
    --------
    >>> import numpy as np, latentbridge as lb
    >>> P = np.random.default_rng(0).standard_normal((100, 5))
    >>> lb.rtd_lite(P, P)
    0.0
    """
    check_choice(norm, "norm", NORMS)
    check_choice(metric, "metric", METRICS)
    return_barcodes = check_bool(return_barcodes, "return_barcodes")
    P, Q = _check_pair(P, Q, metric)
    n = P.shape[0]
    check_allocation(_BYTES_PER_PAIR * n * n, f"rtd_lite distance matrices ({n}, {n})")
    w = _normalised_distances(P, "P", norm, metric, "auto", None)
    w_tilde = _normalised_distances(Q, "Q", norm, metric, "auto", None)
    for r, name in ((w, "P"), (w_tilde, "Q")):
        if not np.isfinite(r).all():
            raise ValueError(f"the distances of {name} overflow float64 (some are infinite); "
                             f"rescale {name}, e.g. divide it by its largest absolute value.")
    m = np.minimum(w, w_tilde)
    tree_m = _minimum_spanning_tree(m)
    tree_w = _minimum_spanning_tree(w)
    tree_w_tilde = _minimum_spanning_tree(w_tilde)
    mst_m = float(np.sum(tree_m[1]))
    # m <= w entrywise, so MST(m) <= MST(w); clamp the round-off of summing other edges
    gap_w = max(float(np.sum(tree_w[1])) - mst_m, 0.0)
    gap_w_tilde = max(float(np.sum(tree_w_tilde[1])) - mst_m, 0.0)
    value = 0.5 * (gap_w + gap_w_tilde)
    if not return_barcodes:
        return value
    return value, {"1->2": _h0_barcode(tree_m, tree_w, n),
                   "2->1": _h0_barcode(tree_m, tree_w_tilde, n)}


def _minimum_spanning_tree(W):
    """Prim's minimum spanning tree of the complete graph with dense weights W (n, n).

    Returns ``(edges, weights)``: an int64 array (n - 1, 2) and the float64 weights, in the order
    the tree grows from vertex 0. Zero and tied weights are ordinary edges.
    """
    n = W.shape[0]
    edges = np.empty((n - 1, 2), dtype=np.int64)
    weights = np.empty(n - 1, dtype=np.float64)
    outside = np.ones(n, dtype=bool)      # vertices not yet in the tree
    outside[0] = False
    nearest = W[0].astype(np.float64)    # lightest edge from the tree to each outside vertex
    nearest[0] = np.inf
    via = np.zeros(n, dtype=np.int64)     # the tree vertex at the other end of that edge
    for k in range(n - 1):
        v = int(np.argmin(nearest))
        edges[k] = via[v], v
        weights[k] = nearest[v]
        outside[v] = False
        nearest[v] = np.inf
        closer = outside & (W[v] < nearest)
        nearest[closer] = W[v][closer]
        via[closer] = v
    return edges, weights


def _h0_barcode(tree_m, tree_w, n):
    """Bars [c_e, a_e] of the edges e of the tree of m against the graph of w (see rtd_lite)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import breadth_first_order

    m_edges, m_weights = tree_m
    order = np.argsort(m_weights, kind="stable")
    # S: n - 1 edges (ends, weight); processed edges of m's tree weigh -inf so they are never
    # the heaviest of a path (ties with weight-0 edges of w would otherwise be ambiguous)
    ends = tree_w[0].copy()
    weight = tree_w[1].copy()
    slot_of = {(min(a, b), max(a, b)): s for s, (a, b) in enumerate(ends.tolist())}
    ones = np.ones(n - 1)
    bars = []
    for e in order:
        u, v = int(m_edges[e, 0]), int(m_edges[e, 1])
        S = csr_matrix((ones, (ends[:, 0], ends[:, 1])), shape=(n, n))
        _, pred = breadth_first_order(S, u, directed=False, return_predecessors=True)
        heaviest, death = -1, -np.inf
        x = v
        while x != u:                     # walk the path v -> u, keep its heaviest edge
            p = int(pred[x])
            s = slot_of[(min(p, x), max(p, x))]
            if weight[s] > death:
                heaviest, death = s, weight[s]
            x = p
        c = float(m_weights[e])
        if death > c:
            bars.append((c, float(death)))
        a, b = int(ends[heaviest, 0]), int(ends[heaviest, 1])
        del slot_of[(min(a, b), max(a, b))]
        slot_of[(min(u, v), max(u, v))] = heaviest
        ends[heaviest] = u, v
        weight[heaviest] = -np.inf
    return _sorted(np.array(bars, dtype=np.float64))
