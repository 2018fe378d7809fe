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
    replaced by e at weight 0, which keeps S a minimum spanning tree. S is a rooted tree whose
    paths are found by climbing from both ends, so an edge costs the length of its path, at most
    n: O(n^2) in all (measured: about as long as the value itself). Distances are not rounded
    to float32 and are not snapped to zero, unlike :func:`latentbridge.rtd`'s reduction.

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
    """Bars [c_e, a_e] of the edges e of the tree of m against the graph of w (see rtd_lite).

    S is kept as a rooted tree: ``parent[x]`` and ``slot[x]``, the index of the edge from x to
    its parent, whose weight is ``weight[slot[x]]`` (-inf once it is an edge of m's tree, so it is
    never the heaviest of a path). The path u - v is found by climbing from both ends in turn
    until the climbs meet; the exchange re-hangs the cut-off part by reversing the parent
    pointers between the cut and u (or v). Each edge costs O(length of its path) steps.
    """
    m_edges, m_weights = tree_m
    w_edges, weight = tree_w[0], tree_w[1].copy()
    parent = np.full(n, -1, dtype=np.int64)
    slot = np.full(n, -1, dtype=np.int64)
    neighbours = [[] for _ in range(n)]
    for s, (a, b) in enumerate(w_edges.tolist()):
        neighbours[a].append((b, s))
        neighbours[b].append((a, s))
    stack, seen = [0], np.zeros(n, dtype=bool)
    seen[0] = True
    while stack:                                   # root S = w's tree at vertex 0
        x = stack.pop()
        for y, s in neighbours[x]:
            if not seen[y]:
                seen[y] = True
                parent[y], slot[y] = x, s
                stack.append(y)
    parent, slot, weight = parent.tolist(), slot.tolist(), weight.tolist()

    bars = []
    for e in np.argsort(m_weights, kind="stable").tolist():
        u, v = int(m_edges[e, 0]), int(m_edges[e, 1])
        climbs = ([u], [v])
        depth_in = ({u: 0}, {v: 0})
        side, meet = 0, -1
        while meet < 0:                            # climb from u and v in turn until they meet
            top = climbs[side][-1]
            if parent[top] >= 0 or parent[climbs[1 - side][-1]] < 0:
                up = parent[top]
                if up >= 0:
                    climbs[side].append(up)
                    depth_in[side][up] = len(climbs[side]) - 1
                    if up in depth_in[1 - side]:
                        meet = up
            side = 1 - side
        heaviest, death, child, cut_side = -1, -np.inf, -1, -1
        for k in (0, 1):                           # the edges x -> parent[x] below the meeting
            for x in climbs[k][:depth_in[k][meet]]:
                if weight[slot[x]] > death:
                    heaviest, death, child, cut_side = slot[x], weight[slot[x]], x, k
        c = float(m_weights[e])
        if death > c:
            bars.append((c, death))
        # cut child - parent[child]; the cut-off part holds the end of cut_side: re-hang it there
        below, above = (u, v) if cut_side == 0 else (v, u)
        prev, prev_slot, x = above, heaviest, below
        while True:
            nxt, nxt_slot = parent[x], slot[x]
            parent[x], slot[x] = prev, prev_slot
            if x == child:
                break
            prev, prev_slot, x = x, nxt_slot, nxt
        weight[heaviest] = -np.inf
    return _sorted(np.array(bars, dtype=np.float64))
