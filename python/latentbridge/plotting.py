"""Figures for barcodes, embeddings and similarity matrices (matplotlib, an optional dependency).

Every function draws into ``ax`` when given (else a new figure) and returns the Axes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_barcode", "plot_embedding", "plot_similarity_matrix", "plot_layer_similarity"]


def _axes(ax, figsize):
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'latentbridge[plot]'") from None
    _, ax = plt.subplots(figsize=figsize)
    return ax


def _annotate(ax, mat):
    """Write each cell's value, dark on bright cells and bright on dark ones (NaN cells say nan)."""
    finite = mat[np.isfinite(mat)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            bright = (mat[i, j] - lo) / (hi - lo + 1e-300) > 0.5
            ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="black" if bright else "white")


def plot_barcode(bars, *, ax=None, title=None, color="C0", max_bars=200):
    """Draw persistence bars (an (k, 2) array of [birth, death]) as horizontal segments.

    Longest bars first; at most ``max_bars`` are drawn. Infinite deaths are drawn to the right edge
    with an arrow.

    Parameters
    ----------
    bars : array_like of shape (k, 2)
        ``[birth, death]`` rows, e.g. one degree of :func:`latentbridge.vr_barcode`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure when None.
    title : str, optional
        Axes title (default: "barcode (k bars)").
    color : matplotlib color, default "C0"
        Colour of the bars.
    max_bars : int, default 200
        Draw only this many of the longest bars.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn into.
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
    """Scatter two columns of an embedding, coloured by ``labels`` when given.

    Parameters
    ----------
    embedding : array_like of shape (n, k), k >= 2
        Rows are points, e.g. :class:`latentbridge.DiffusionMaps` coordinates.
    labels : array_like of shape (n,), optional
        Colour values (a legend is drawn for at most 20 distinct labels).
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure when None.
    title : str, optional
        Axes title (default: "embedding").
    components : tuple of two int, default (0, 1)
        The columns on the x and y axes.
    cmap : str, default "tab10"
        Colour map of the labels.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn into.
    """
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
    """Heat map of an M x M similarity matrix (or a ComparisonResult and its first metric).

    Parameters
    ----------
    matrix : array_like of shape (M, M) or ComparisonResult
        The matrix; a :class:`latentbridge.ComparisonResult` gives its first metric and its names.
    names : sequence of str, optional
        Row and column labels (default: 0..M-1, or the result's names).
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure when None.
    title : str, optional
        Axes title (default: the metric, or "similarity").
    cmap : str, default "viridis"
        Colour map.
    annotate : bool, default True
        Write the values in the cells.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn into.
    """
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
        _annotate(ax, mat)
    ax.set_title(title or "similarity")
    return ax


def plot_layer_similarity(result, metric=None, *, ax=None, title=None, cmap="magma", annotate=None,
                          label_a="model A", label_b="model B"):
    """Heat map of a layer x layer comparison (:func:`latentbridge.torch.compare_layers`).

    Rows are the layers of A (top to bottom in network order), columns the layers of B.

    Parameters
    ----------
    result : ComparisonResult
        A (possibly rectangular) result; ``metric`` picks the matrix (default: its first metric).
    metric : str, optional
        The metric to draw; ValueError when the result lacks it.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure when None.
    title : str, optional
        Axes title (default: "<metric>: layers of <label_a> x <label_b>").
    cmap : str, default "magma"
        Colour map.
    annotate : bool, optional
        Write the values in the cells (default: when the matrix has at most 12 x 12 cells).
    label_a, label_b : str
        Axis titles.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn into.
    """
    if not hasattr(result, "matrices"):
        raise TypeError(f"result must be a ComparisonResult; got {type(result).__name__}.")
    metric = result.metrics[0] if metric is None else metric
    if metric not in result.matrices:
        raise ValueError(f"metric {metric!r} is not in the result; it has {result.metrics}.")
    mat = np.asarray(result[metric], dtype=np.float64)
    rows, cols = list(result.names), list(result.columns)
    ax = _axes(ax, (1.5 + 0.6 * len(cols), 1.0 + 0.5 * len(rows)))
    im = ax.imshow(mat, cmap=cmap, aspect="auto", origin="upper")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=metric)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel(label_b)
    ax.set_ylabel(label_a)
    if annotate if annotate is not None else max(mat.shape) <= 12:
        _annotate(ax, mat)
    ax.set_title(title or f"{metric}: layers of {label_a} x {label_b}")
    return ax
