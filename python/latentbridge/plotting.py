"""Figures for barcodes, embeddings and similarity matrices (matplotlib, an optional dependency).

Every function draws into ``ax`` when given (else a new figure) and returns the Axes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_barcode", "plot_embedding", "plot_similarity_matrix"]


def _axes(ax, figsize):
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'latentbridge[plot]'") from None
    _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_barcode(bars, *, ax=None, title=None, color="C0", max_bars=200):
    """Draw persistence bars (an (k, 2) array of [birth, death]) as horizontal segments.

    Longest bars first; at most ``max_bars`` are drawn. Infinite deaths are drawn to the right edge
    with an arrow.
    """
    bars = np.asarray(bars, dtype=np.float64).reshape(-1, 2)
    ax = _axes(ax, (6, 4))
    finite = np.isfinite(bars[:, 1])
    right = float(np.max(bars[finite, 1])) * 1.05 if finite.any() else 1.0
    order = np.argsort(-(np.where(finite, bars[:, 1], right) - bars[:, 0]))[:max_bars]
    for y, (b, d) in enumerate(bars[order]):
        if np.isfinite(d):
            ax.hlines(y, b, d, color=color, lw=1.5)
        else:
            ax.annotate("", xy=(right, y), xytext=(b, y), arrowprops={"arrowstyle": "->", "color": color})
    ax.set_xlabel("filtration value")
    ax.set_ylabel("bar")
    ax.set_ylim(-1, max(len(order), 1))
    ax.set_title(title or f"barcode ({len(bars)} bars)")
    return ax


def plot_embedding(embedding, *, labels=None, ax=None, title=None, components=(0, 1), cmap="tab10"):
    """Scatter two columns of an embedding, coloured by ``labels`` when given."""
    emb = np.asarray(embedding, dtype=np.float64)
    if emb.ndim != 2 or emb.shape[1] < 2:
        raise ValueError(f"embedding must be 2-D with at least two columns; got shape {emb.shape}.")
    a, b = components
    ax = _axes(ax, (5, 5))
    sc = ax.scatter(emb[:, a], emb[:, b], c=labels, s=6, cmap=cmap if labels is not None else None)
    if labels is not None and len(np.unique(labels)) <= 20:
        ax.legend(*sc.legend_elements(), fontsize="small", loc="best", markerscale=0.8)
    ax.set_xlabel(f"component {a + 1}")
    ax.set_ylabel(f"component {b + 1}")
    ax.set_title(title or "embedding")
    return ax


def plot_similarity_matrix(matrix, names=None, *, ax=None, title=None, cmap="viridis", annotate=True):
    """Heat map of an M x M similarity matrix (or a ComparisonResult and its first metric)."""
    if hasattr(matrix, "matrices"):
        names = names or matrix.names
        title = title or matrix.metrics[0]
        matrix = matrix.matrices[matrix.metrics[0]]
    mat = np.asarray(matrix, dtype=np.float64)
    if mat.ndim != 2 or mat.shape[0] != mat.shape[1]:
        raise ValueError(f"matrix must be square; got shape {mat.shape}.")
    names = list(names) if names is not None else [str(i) for i in range(mat.shape[0])]
    ax = _axes(ax, (1.0 + 0.8 * len(names), 0.8 + 0.8 * len(names)))
    im = ax.imshow(mat, cmap=cmap)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    if annotate:
        lo, hi = np.nanmin(mat), np.nanmax(mat)
        for i in range(mat.shape[0]):
            for j in range(mat.shape[1]):
                bright = (mat[i, j] - lo) / (hi - lo + 1e-300) > 0.5
                ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if bright else "white")
    ax.set_title(title or "similarity")
    return ax
