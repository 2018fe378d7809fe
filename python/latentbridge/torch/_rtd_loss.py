"""A differentiable Representation Topology Divergence: the RTD-AE loss on the C++ engine.

The R-Cross-Barcode is piecewise smooth in the distances: where they are distinct, the pairing of
simplices stays fixed under small changes, and every bar is the difference of two entries of the
doubled matrix ``[[0, w^T], [w, min(w, w~)]]``, the lengths of its birth and death edges. The
forward pass runs the engine (``r_cross_barcode`` with its pairs) on the detached matrices; the
backward pass sends each bar's gradient to those two entries, and from there autograd reaches
the points through the distance computation and the normalisation.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import as_float_matrix, check_bool, check_choice, check_positive_int, check_scalar
from ..topology import NORMS, _cross_matrices, _r_cross_of_matrices

__all__ = ["rtd_loss"]

_QUANTILES = {"quantile": 0.9, "median": 0.5}


def rtd_loss(P, Q, *, dim=1, symmetric=True, norm="quantile", p=1.0, card=None):
    """Representation Topology Divergence as a differentiable loss (RTD-AE).

    Parameters
    ----------
    P, Q : torch.Tensor of shape (n_samples, n_features_P) and (n_samples, n_features_Q)
        Two representations of the same samples, in the same row order (floating point, on any
        device; the reduction runs on the CPU). Gradients flow to whichever requires them;
        detach one to keep it fixed (RTD-AE's ``immovable``).
    dim : {1, 2}, default 1
        Homology degree of the R-Cross-Barcodes (degree 0 has no finite bar).
    symmetric : bool, default True
        Average the two directions, ``(L(P, Q) + L(Q, P)) / 2``, as the RTD-AE loss does;
        otherwise only ``L(P, Q)``.
    norm : {"quantile", "median", "mean", None}, default "quantile"
        Each distance matrix is divided by its 0.9-quantile, median or mean over the full n x n
        matrix (numpy's linear interpolation), as :func:`latentbridge.rtd` does; the constant is
        differentiated too, so the loss is invariant to rescaling P or Q and its gradient knows it.
    p : float, default 1.0
        Exponent of the bar lengths (RTD-AE's ``lp``); ``p=1`` gives RTD itself.
    card : int, optional
        Keep only the ``card`` longest bars of each barcode (RTD-AE keeps 50); None: all of them.

    Returns
    -------
    torch.Tensor
        A scalar in P's dtype and device: with ``b`` and ``d`` the birth and death of the bars of
        ``R-Cross-Barcode_dim(P, Q)``, ``L(P, Q) = sum (d - b)^p``. With ``p=1``, ``card=None``,
        ``symmetric=True`` it equals ``latentbridge.rtd(P, Q, trials=1, batch=n)`` on the whole
        set (up to float32 rounding, which the engine uses to order the filtration).

    Raises
    ------
    TypeError
        If P or Q is not a floating-point torch tensor, or an option has the wrong type.
    ValueError
        If P or Q contains NaN or infinity, is not 2-D, has fewer than 2 rows, their row counts
        differ, a normalisation constant is zero, or an option is out of range.

    Notes
    -----
    With ``w`` and ``w~`` the normalised distance matrices of P and Q, the engine pairs each bar
    with its birth edge and its death edge in ``M = [[0, w^T], [w, min(w, w~)]]``
    (:func:`latentbridge.r_cross_barcode` with ``return_pairs=True``). The loss is
    ``sum_bars (M[d1, d2] - M[b1, b2])^p`` with the pairs held fixed, so

    ``dL / dM[e] = p (d - b)^(p - 1) ([e is the death edge] - [e is the birth edge])``.

    An entry of the cross block is ``w_ij``; an entry of the second block is ``min(w_ij, w~_ij)``
    and its gradient goes to the matrix that attains the minimum (``w`` on a tie). Each entry's
    gradient is split between ``(i, j)`` and ``(j, i)`` (the engine reads the symmetrised matrix).
    The gradient is that of the loss wherever the distances are distinct; where the pairing
    changes, the loss is continuous but not differentiable.

    References
    ----------
    .. [1] I. Trofimov, D. Cherniavskii, E. Tulchinskii, N. Balabin, E. Burnaev, S. Barannikov,
       "Learning Topology-Preserving Data Representations", ICLR 2023 (RTD-AE).
    .. [2] S. Barannikov, I. Trofimov, N. Balabin, E. Burnaev, "Representation Topology
       Divergence: A Method for Comparing Neural Network Representations", ICML 2022.

    Examples
    --------
    >>> import torch
    >>> from latentbridge.torch import rtd_loss
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.randn(40, 5, generator=g, dtype=torch.float64)
    >>> Z = torch.randn(40, 2, generator=g, dtype=torch.float64, requires_grad=True)
    >>> loss = rtd_loss(X, Z)
    >>> loss.backward()
    >>> Z.grad.shape
    torch.Size([40, 2])
    """
    P = _check_points(P, "P")
    Q = _check_points(Q, "Q")
    if P.shape[0] != Q.shape[0]:
        raise ValueError(f"P and Q must have the same number of rows (the same samples); got "
                         f"{P.shape[0]} and {Q.shape[0]}.")
    dim = check_positive_int(dim, "dim", minimum=1, maximum=2)
    symmetric = check_bool(symmetric, "symmetric")
    check_choice(norm, "norm", NORMS)
    p = check_scalar(p, "p", minimum=0, include_minimum=False)
    if card is not None:
        card = check_positive_int(card, "card")
    r1 = _normalised_distances(P, "P", norm)
    r2 = _normalised_distances(Q, "Q", norm).to(r1.dtype)
    loss = _CrossBarcodeLoss.apply(r1, r2, dim, p, card)
    if symmetric:
        loss = (loss + _CrossBarcodeLoss.apply(r2, r1, dim, p, card)) / 2
    return loss.to(P.dtype)


def _check_points(X, name):
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (use torch.as_tensor); got "
                        f"{type(X).__name__}.")
    if not X.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got {X.dtype}. Convert it with "
                        f"{name}.double() or {name}.float().")
    # NaN/inf, shape and row checks with the package's messages (on a detached float64 host copy:
    # numpy has no bfloat16)
    as_float_matrix(X.detach().to("cpu", torch.float64).numpy(), name, min_rows=2)
    return X


def _normalised_distances(X, name, norm):
    """Euclidean distances of X's rows divided by the constant of ``norm`` (differentiable)."""
    if X.dtype not in (torch.float32, torch.float64):   # half precisions: cdist lacks them
        X = X.float()
    r = torch.cdist(X, X, compute_mode="donot_use_mm_for_euclid_dist")
    if norm is None:
        return r
    if norm == "mean":
        scale = r.mean()
    else:   # numpy's linear interpolation between the two order statistics around q (k - 1)
        flat = r.reshape(-1)
        pos = _QUANTILES[norm] * (flat.numel() - 1)
        lo = int(np.floor(pos))
        below = torch.kthvalue(flat, lo + 1).values
        above = torch.kthvalue(flat, min(lo + 2, flat.numel())).values
        scale = below + (pos - lo) * (above - below)
    if not (torch.isfinite(scale) and scale > 0):
        raise ValueError(f"the normalisation constant of {name}'s pairwise distances is "
                         f"{float(scale)}, so norm={norm!r} cannot scale them (too many "
                         f"coinciding rows in {name}); use norm=None or another norm.")
    return r / scale


class _CrossBarcodeLoss(torch.autograd.Function):
    """sum (death - birth)^p over R-Cross-Barcode_dim(r1, r2), from normalised distance matrices."""

    @staticmethod
    def forward(ctx, r1, r2, dim, p, card):
        a1 = r1.detach().to("cpu", torch.float64).numpy()
        a2 = r2.detach().to("cpu", torch.float64).numpy()
        a1 = (a1 + a1.T) / 2
        a2 = (a2 + a2.T) / 2
        w, m = _cross_matrices(a1, a2, ("P", "Q"))
        _, pairs = _r_cross_of_matrices(w, m, dim, 1, True)
        n = a1.shape[0]
        birth = _edge_sources(pairs[:, 0], pairs[:, 1], a1, a2, n)
        death = _edge_sources(pairs[:, 2], pairs[:, 3], a1, a2, n)
        length = np.maximum(death[3] - birth[3], 0.0)
        keep = np.argsort(-length, kind="stable")[:card] if card is not None else slice(None)
        length = length[keep]
        birth = [part[keep] for part in birth]
        death = [part[keep] for part in death]
        ctx.n, ctx.dtype, ctx.device = n, r1.dtype, r1.device
        # dL/d(length) for each bar; (d - b)^(p - 1) at a zero-length bar is taken as 0 for p < 1
        slope = p * np.where(length > 0, length, 1.0) ** (p - 1) if p != 1 else np.ones_like(length)
        ctx.edges = (birth[:3], death[:3], slope)
        return torch.as_tensor(np.sum(length ** p), dtype=r1.dtype, device=r1.device)

    @staticmethod
    def backward(ctx, grad):
        n = ctx.n
        birth, death, slope = ctx.edges
        out = np.zeros((3, n, n))   # the gradients of r1, r2 and of the constant zero block
        for (src, i, j), sign in ((death, 1.0), (birth, -1.0)):
            # half to (i, j), half to (j, i): the forward read the symmetrised matrices
            np.add.at(out, (src, i, j), sign * slope / 2)
            np.add.at(out, (src, j, i), sign * slope / 2)
        g = torch.as_tensor(out, dtype=ctx.dtype, device=ctx.device) * grad
        return g[0], g[1], None, None, None


def _edge_sources(u, v, a1, a2, n):
    """For edges (u, v) of the doubled matrix: which input holds each length (0: r1, 1: r2, 2:
    none, the constant zero block), its row and column there, and the length. Cross edges are
    entries of r1; second-block edges of min(r1, r2), held by the input that attains it (r1 on a
    tie)."""
    i, j = u % n, v % n
    second_block = (u >= n) & (v >= n)
    src = (second_block & (a2[i, j] < a1[i, j])).astype(np.intp)
    src[(u < n) & (v < n)] = 2
    length = np.choose(src, [a1[i, j], a2[i, j], np.zeros(len(src))])
    return src, i, j, length
