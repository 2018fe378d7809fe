"""The :class:`NetworkTransformation` estimator: ``T = psi^-1 o O o phi`` between two networks.

Bertalan, Dietrich, Kevrekidis et al., "Transformations between deep neural networks"
(arXiv:2007.05646), Algorithm 2: embed the activations of both networks with diffusion maps (a
nested :class:`~latentbridge.diffusion.DiffusionMaps`, cloned for each network), estimate the
orthogonal map ``O`` between the two embeddings from corresponding points, and interpolate back to
network B's activations.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

from .._base import BaseEstimator, check_is_fitted
from .._validation import check_choice, check_scalar
from ..alignment import ICP, Procrustes
from ..distance import pairwise_distances
from .maps import DiffusionMaps

__all__ = ["NetworkTransformation"]


class NetworkTransformation(BaseEstimator):
    """Map activations of network A to those of network B through diffusion maps (Algorithm 2).

    ``T = psi^-1 o O o phi``: ``phi`` embeds A's activations, ``O`` is orthogonal (estimated from
    corresponding points by Procrustes, block-diagonal over groups of (near-)degenerate
    eigenvalues and a sign flip elsewhere), ``psi^-1`` interpolates back to B's activations.

    Parameters
    ----------
    diffusion_maps : DiffusionMaps, optional
        The embedding of each network, cloned twice in :meth:`NetworkTransformation.fit` (its parameters are reachable
        as ``diffusion_maps__n_components`` and so on). Default
        ``DiffusionMaps(n_components=1, metric="mahalanobis")``. ``n_components`` is the
        dimension of the map (the intrinsic dimension, after harmonics are removed).
    degenerate_rtol : float, default 0.1
        Consecutive eigenvalues whose ``-log a`` differ by less than this fraction (in either
        network) share one orthogonal block.
    orthogonal : {"pairs", "icp"}, default "pairs"
        How ``O`` is estimated. ``"pairs"``: Procrustes on corresponding points (block-diagonal,
        see above). ``"icp"``: no correspondences needed; iterative closest point
        (:class:`latentbridge.ICP` with an uncentred :class:`latentbridge.Procrustes`) between the
        two embeddings, started from every sign flip ``diag(+-1)`` (the paper's O for simple
        eigenvalues) when ``n_components <= 6`` and from the identity otherwise, at most 100 ICP
        iterations each, keeping the start with the smallest final mean squared matching distance
        (of two equal ones, the start whose first differing sign is +1); at most 1000 points of
        each embedding (evenly spaced rows) take part. ICP cannot resolve a symmetry of the sampled
        manifold (an interval sampled uniformly looks the same with ``phi_1`` flipped): it needs
        embeddings whose point clouds have no such symmetry, and it gives a full orthogonal O.

    Attributes
    ----------
    dmap_a_, dmap_b_ : DiffusionMaps
        The fitted embeddings of networks A and B.
    orthogonal_ : ndarray of shape (n_components, n_components)
        ``phi_a @ orthogonal_ ~ phi_b`` on the pairs.
    blocks_ : list of ndarray
        Index groups of the blocks of ``orthogonal_`` (``orthogonal="pairs"``; one block of all
        components with ``"icp"``).
    matching_error_ : float
        ``orthogonal="icp"`` only: the mean squared distance from each mapped point of A's
        embedding to its nearest point of B's (relative to B's mean squared norm, ``n_components``
        for unit-RMS coordinates).

    Examples
    --------
    >>> import latentbridge as lb
    >>> nt = lb.NetworkTransformation(lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=20))
    >>> nt.set_params(diffusion_maps__n_components=1).diffusion_maps.n_components
    1

    References
    ----------
    .. [1] T. Bertalan, F. Dietrich, I. G. Kevrekidis et al., "Transformations between deep neural
       networks", arXiv:2007.05646.
    """

    def __init__(self, diffusion_maps=None, *, degenerate_rtol=0.1, orthogonal="pairs"):
        self.diffusion_maps = diffusion_maps
        self.degenerate_rtol = degenerate_rtol
        self.orthogonal = orthogonal

    def _embedding_template(self):
        if self.diffusion_maps is None:
            return DiffusionMaps(1, metric="mahalanobis")
        if not isinstance(self.diffusion_maps, DiffusionMaps):
            raise TypeError(
                "diffusion_maps must be a latentbridge.DiffusionMaps (or None for "
                f"DiffusionMaps(1, metric='mahalanobis')); got {self.diffusion_maps!r}.")
        return self.diffusion_maps

    def fit(self, Y_a, Y_b, precisions_a=None, precisions_b=None, pairs=None, *,
            precision_factors_a=None, precision_factors_b=None):
        """Embed both networks and estimate the orthogonal map between the embeddings.

        Parameters
        ----------
        Y_a, Y_b : array_like of shape (n_a, m_a), (n_b, m_b)
            Activations of the two networks.
        precisions_a, precisions_b : array_like of shape (n, m, m), optional
            Per-point precisions (for ``metric="mahalanobis"`` these or the factors are required).
        pairs : tuple (idx_a, idx_b), optional
            Indices of corresponding points (the same input fed to both networks); at least as many
            as the largest orthogonal block. None: row i of Y_a corresponds to row i of Y_b. Must
            be None with ``orthogonal="icp"`` (the rows need not correspond; n_a may differ from n_b).
        precision_factors_a, precision_factors_b : array_like of shape (n, r, m), optional
            The precisions as factors ``C_i = G_i^T G_i`` (see :meth:`DiffusionMaps.fit`);
            per network, exactly one of the precisions and the factors.

        Returns
        -------
        self
        """
        rtol = check_scalar(self.degenerate_rtol, "degenerate_rtol", minimum=0.0)
        method = check_choice(self.orthogonal, "orthogonal", ("pairs", "icp"))
        if method == "icp" and pairs is not None:
            raise ValueError(
                "orthogonal='icp' estimates O without correspondences; pass pairs=None, or "
                "orthogonal='pairs' to use the pairs.")
        template = self._embedding_template()
        # fitted attributes are set only at the end: a fit that fails leaves the object as it was
        dmap_a = clone(template).fit(Y_a, precisions=precisions_a, precision_factors=precision_factors_a)
        dmap_b = clone(template).fit(Y_b, precisions=precisions_b, precision_factors=precision_factors_b)
        A, B = dmap_a.embedding_, dmap_b.embedding_
        matching_error = None
        if method == "icp":
            blocks = [np.arange(A.shape[1])]
            O, matching_error = _icp_orthogonal(A, B)
        else:
            ia, ib = _check_pairs(pairs, A.shape[0], B.shape[0])
            blocks = _degenerate_blocks(dmap_a.eigenvalues_, dmap_b.eigenvalues_, rtol)
            largest = max(len(b) for b in blocks)
            if ia.size < largest:
                raise ValueError(
                    f"pairs has {ia.size} correspondences but the largest degenerate eigenspace has "
                    f"dimension {largest}; pass at least {largest} pairs."
                )
            Ap, Bp = A[ia], B[ib]
            O = np.zeros((A.shape[1], A.shape[1]))
            for blk in blocks:  # per block, the Procrustes solution U V^T of Ap_blk^T Bp_blk
                U, _, Vt = np.linalg.svd(Ap[:, blk].T @ Bp[:, blk])
                O[np.ix_(blk, blk)] = U @ Vt
        self.dmap_a_, self.dmap_b_, self.blocks_, self.orthogonal_ = dmap_a, dmap_b, blocks, O
        if matching_error is None:
            vars(self).pop("matching_error_", None)  # "icp" only: none left from an earlier fit
        else:
            self.matching_error_ = matching_error
        return self

    def transform(self, Y_a_new, precisions=None, *, precision_factors=None):
        """Predicted activations of network B for new activations of network A.

        Parameters
        ----------
        Y_a_new : array_like of shape (n_new, m_a)
        precisions : array_like of shape (n_new, m_a, m_a), optional
            Precisions at the new points (Nystrom); without them, nearest-neighbour embedding.
        precision_factors : array_like of shape (n_new, r, m_a), optional
            The same as factors ``G_i^T G_i`` (instead of ``precisions``).

        Returns
        -------
        Y_b_hat : ndarray of shape (n_new, m_b)
        """
        check_is_fitted(self, "orthogonal_")
        phi = self.dmap_a_.transform(Y_a_new, precisions, precision_factors=precision_factors)
        if not np.isfinite(phi).all():
            raise ValueError(
                f"the Nystrom extension of network A is not finite: eigenvalue(s) "
                f"{self.dmap_a_.eigenvalues_} include 0 (duplicated points or n_components="
                f"{self.dmap_a_.n_components} beyond the rank of the kernel). Lower n_components.")
        return self.dmap_b_.inverse_transform(phi @ self.orthogonal_)


def _check_pairs(pairs, na, nb):
    """(idx_a, idx_b) integer index arrays of corresponding points."""
    if pairs is None:
        if na != nb:
            raise ValueError(
                f"Y_a and Y_b have {na} and {nb} rows; pass pairs=(idx_a, idx_b) to say which "
                "points correspond."
            )
        return np.arange(na), np.arange(nb)
    if not isinstance(pairs, (tuple, list)) or len(pairs) != 2:
        raise TypeError("pairs must be a tuple (idx_a, idx_b) of index arrays.")
    ia, ib = (np.asarray(p) for p in pairs)
    if ia.ndim != 1 or ib.ndim != 1 or ia.shape != ib.shape:
        raise ValueError(f"pairs must be two 1-D index arrays of the same length; got shapes {ia.shape} and {ib.shape}.")
    if ia.dtype.kind not in "iu" or ib.dtype.kind not in "iu":
        raise TypeError("pairs must hold integer indices.")
    if ia.size and (ia.min() < 0 or ia.max() >= na or ib.min() < 0 or ib.max() >= nb):
        raise ValueError(f"pairs indices out of range (Y_a has {na} rows, Y_b has {nb}).")
    return ia, ib


def _degenerate_blocks(eigenvalues_a, eigenvalues_b, rtol):
    """Groups of consecutive components whose ``-log a`` differ by at most ``rtol`` relative (in
    either network): each group shares one orthogonal block."""
    ga = -np.log(np.clip(eigenvalues_a, 1e-300, None))
    gb = -np.log(np.clip(eigenvalues_b, 1e-300, None))
    L = ga.shape[0]
    blocks, start = [], 0
    for p in range(1, L + 1):
        joined = p < L and any(
            abs(g[p] - g[p - 1]) <= rtol * max(abs(g[p]), abs(g[p - 1])) for g in (ga, gb))
        if not joined:
            blocks.append(np.arange(start, p))
            start = p
    return blocks


#: ICP: at most this many points of each embedding, and sign-flip starts up to this many components.
_ICP_MAX_POINTS = 1000
_ICP_MAX_SIGN_COMPONENTS = 6


def _icp_orthogonal(A, B):
    """(O, error): the orthogonal O with ``A @ O`` closest (ICP) to the unpaired points B, the
    best over the sign-flip starts, and its mean squared matching distance relative to B's mean
    squared norm."""
    A = A[_evenly_spaced(A.shape[0], _ICP_MAX_POINTS)]
    B = B[_evenly_spaced(B.shape[0], _ICP_MAX_POINTS)]
    L = A.shape[1]
    if L <= _ICP_MAX_SIGN_COMPONENTS:
        starts = np.array(np.meshgrid(*[[1.0, -1.0]] * L, indexing="ij")).reshape(L, -1).T
    else:
        starts = np.ones((1, L))
    best = (np.inf, None)
    for signs in starts:
        icp = ICP(estimator=Procrustes(center=False), max_iter=100).fit(A * signs, B)
        O = signs[:, None] * icp.estimator_.rotation_
        err = _matching_error(A @ O, B)
        if err < best[0]:
            best = (err, O)
    return best[1], best[0] / float(np.mean(np.sum(B * B, axis=1)))


def _matching_error(P, B):
    """Mean squared distance from each row of P to its nearest row of B."""
    return float(np.mean(pairwise_distances(P, B, metric="sqeuclidean").min(axis=1)))


def _evenly_spaced(n, limit):
    """At most ``limit`` evenly spaced indices of range(n)."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.intp))
