"""The :class:`DiffusionMaps` estimator: validate -> graph -> spectrum -> coordinates.

Bertalan, Dietrich, Kevrekidis et al., "Transformations between deep neural networks"
(arXiv:2007.05646), Algorithm 1, with the fixes of the package notes: pairs are restricted to
Euclidean candidates and re-ranked in the Mahalanobis metric, epsilon comes from the distance to the
``k_epsilon``-th neighbour in that metric, the eigensolve is float64 with the trivial eigenvector
deflated. The stages live in :mod:`.graph` and :mod:`.spectrum`; the hot paths (k-NN, quadratic
forms, kernel graph, eigensolver) run in C++ or CUDA.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin

from .._backend import kernels, resolve_device
from .._base import BaseEstimator, check_is_fitted, record_features
from .._validation import (
    as_float_matrix,
    check_allocation,
    check_bool,
    check_choice,
    check_n_jobs,
    check_positive_int,
    check_random_state,
    check_scalar,
)
from .._warnings import warn_user
from .exceptions import CandidateRecallWarning, NystromWarning
from .graph import (
    auto_epsilon,
    check_finite_distances,
    euclidean_candidates,
    kernel_graph,
    nearest_neighbors,
    neighbor_recall,
)
from .precisions import metric_factors, pad_rank
from .spectrum import (
    diffusion_spectrum,
    harmonic_residuals,
    intrinsic_eigenvalues,
    n_candidate_eigenpairs,
    non_harmonic_columns,
)

__all__ = ["DiffusionMaps"]

#: Below this neighbor_recall_, fit warns (CandidateRecallWarning).
_MIN_NEIGHBOR_RECALL = 0.9
#: Nystrom warns when an eigenvalue is below this (it divides by the eigenvalue).
_NYSTROM_MIN_EIGENVALUE = 1e-10
#: Largest n accepted with n_neighbors=None (the all-pairs kernel needs O(n^2) memory).
_DENSE_MAX_POINTS = 8000


class DiffusionMaps(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Diffusion maps with a Euclidean or per-point Mahalanobis kernel (the paper's Algorithm 1).

    Parameters
    ----------
    n_components : int, default 10
        Number of non-trivial eigenpairs kept (the constant eigenvector is excluded).
    metric : {"euclidean", "mahalanobis"}, default "euclidean"
        ``"mahalanobis"`` uses ``d2_ij = (y_i - y_j)^T (C_i + C_j) (y_i - y_j)`` with the precision
        matrices (or their factors) passed to :meth:`DiffusionMaps.fit` (datafold and Singer-Coifman use
        ``0.5 (C_i + C_j)``; the factor is absorbed by ``epsilon="auto"``).
    epsilon : "auto" or float, default "auto"
        Kernel ``exp(-d2 / (2 epsilon))``. ``"auto"``: the median over the points of ``d2`` to the
        ``k_epsilon``-th nearest neighbour (in the chosen metric, the point itself excluded).
    k_epsilon : int, default 10
        Neighbour rank used by ``epsilon="auto"``; at most ``n_neighbors``.
    n_neighbors : int or None, default 32
        Neighbours per point in the sparse kernel (the graph is the symmetric union of the k-NN
        lists). Mahalanobis neighbours are chosen among ``candidate_factor * n_neighbors``
        Euclidean candidates, which keeps far-apart points that only look close through a
        rank-deficient metric out of the graph. ``None`` uses all pairs: O(n^2) memory, for small n
        only (at most 8000 points; with rank-deficient Mahalanobis metrics prone to spurious
        shortcuts).
    alpha : float, default 1.0
        Density normalisation ``W = P^-alpha K P^-alpha`` (1: Laplace-Beltrami, 0: graph Laplacian).
    remove_harmonics : bool, default False
        Compute ``max(3 n_components + 3, n_components + 6)`` candidate eigenvectors, score them by
        local linear regression (Dsilva et al. 2018, on a subsample of at most 2000 points) and
        keep the ``n_components`` with the largest residuals (new directions, not harmonics), in
        eigenvalue order.
    candidate_factor : int, default 3
        Mahalanobis only: neighbours are re-ranked among ``candidate_factor * n_neighbors``
        Euclidean candidates. Raise it when ``neighbor_recall_`` is low (strongly anisotropic
        metrics, :class:`~latentbridge.diffusion.CandidateRecallWarning`); the re-ranking cost grows linearly with it.
    tol : float, default 1e-8
        Residual tolerance of the Lanczos eigensolver, ``|T v - a v| <= tol`` (T's largest
        eigenvalue is 1).
    device : {"cpu", "auto", "cuda"}, default "cpu"
        Where the k-NN search, the Mahalanobis re-ranking, the kernel graph and the eigensolver
        run (``"auto"``: a CUDA device when one is usable). The CUDA path computes the same
        quantities (float64 throughout) with the same Lanczos driver; results agree with the CPU
        path to rounding, up to the usual sign/rotation freedom inside degenerate eigenspaces.
        The default stays ``"cpu"`` until the CUDA path has been validated on hardware (see
        the README).
    n_jobs : int, optional
        CPU threads (None: 1, -1: all CPUs).
    random_state : int, Generator or None
        Seeds the eigensolver's start vector, the recall sample and the LLR subsample.

    Attributes
    ----------
    epsilon_ : float
        Kernel bandwidth used.
    eigenvalues_ : ndarray of shape (n_components,)
        Largest non-trivial eigenvalues ``a_1 >= a_2 >= ...`` of the normalised kernel
        ``T = Q^-1/2 W Q^-1/2`` (a_0 = 1 excluded). ``-log(a_p) / (2 epsilon_)`` is independent of
        epsilon to first order (the eigenvalues of the Laplace-Beltrami operator up to a constant).
    intrinsic_eigenvalues_ : ndarray of shape (n_components,)
        The paper's ``lambda_p = a_p^(1 / (2 epsilon_))`` (Bertalan et al., Algorithm 1), with
        ``a_p`` clipped to [0, 1] first: the eigenvalues of the diffusion at unit time, independent of
        epsilon. As epsilon -> 0 and n -> infinity, ``a_p ~ exp(-epsilon_ mu_p / 2)`` for the
        Euclidean kernel, so ``-4 log lambda_p -> mu_p``, the p-th eigenvalue of the Neumann
        Laplacian of the data manifold (``(p pi / L)^2`` on an interval of length L); with the
        Mahalanobis distance ``(y_i - y_j)^T (C_i + C_j) (y_i - y_j)`` (twice the squared length
        in the metric C) ``-8 log lambda_p -> mu_p`` of the Laplacian in that metric.
    embedding_ : ndarray of shape (n, n_components)
        Diffusion coordinates ``phi_p = Q^-1/2 v_p`` (right eigenvectors of the Markov matrix
        ``Q^-1 W``), each scaled to unit root-mean-square and signed so that its entry of largest
        magnitude is positive. Within a (near-)degenerate eigenspace the basis is arbitrary.
    residuals_ : ndarray
        LLR residuals of the candidate eigenvectors (only with ``remove_harmonics``).
    selected_ : ndarray of int
        0-based indices of the kept eigenvectors among the non-trivial ones.
    neighbor_recall_ : float or None
        Mahalanobis only (sparse): the fraction of the kept neighbours of a random sample of
        256 points that a search over 4 times more Euclidean candidates keeps too. Values well
        below 1 mean the metric is so anisotropic that the Euclidean candidates truncate the
        Mahalanobis neighbourhoods (raise ``candidate_factor``).
    kernel_matrix_ : scipy.sparse.csr_matrix of shape (n, n)
        The symmetric normalised kernel T.
    device_ : str
        The device the fit ran on ("cpu" or "cuda").
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``Y`` was a dataframe with string column names.

    Warns
    -----
    DisconnectedGraphWarning
        Several eigenvalues equal 1 (the graph falls apart: raise n_neighbors or epsilon).
    CandidateRecallWarning
        The Euclidean candidates miss Mahalanobis neighbours (see ``neighbor_recall_``).
    EigensolverWarning
        The eigensolver stopped before its tolerance.

    Notes
    -----
    Memory is O(n k) for the sparse kernel plus O(n r m) for rank-r precision factors. The
    eigensolver is a thick-restart Lanczos method in float64 with the trivial eigenvector
    ``sqrt(q)`` deflated; inputs are converted to float64 once.

    References
    ----------
    .. [1] R. R. Coifman and S. Lafon, "Diffusion maps", ACHA 21 (2006).
    .. [2] T. Bertalan, F. Dietrich, I. G. Kevrekidis et al., "Transformations between deep neural
       networks", arXiv:2007.05646.
    .. [3] C. J. Dsilva, R. Talmon, R. R. Coifman, I. G. Kevrekidis, "Parsimonious representation of
       nonlinear dynamical systems through manifold learning", ACHA 44 (2018).
    """

    def __init__(self, n_components=10, *, metric="euclidean", epsilon="auto", k_epsilon=10,
                 n_neighbors=32, alpha=1.0, remove_harmonics=False, candidate_factor=3, tol=1e-8,
                 device="cpu", n_jobs=None, random_state=None):
        self.n_components = n_components
        self.metric = metric
        self.epsilon = epsilon
        self.k_epsilon = k_epsilon
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.remove_harmonics = remove_harmonics
        self.candidate_factor = candidate_factor
        self.tol = tol
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state

    @property
    def _n_features_out(self):
        """Output columns, for ``get_feature_names_out`` (diffusionmaps0, ...); derived."""
        return self.embedding_.shape[1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]  # coordinates are float64 always
        return tags

    # -- stage 1: validation -------------------------------------------------------------------

    def _check_params(self):
        """Validated parameters (ValueError/TypeError naming the parameter)."""
        check_positive_int(self.n_components, "n_components")
        check_choice(self.metric, "metric", ("euclidean", "mahalanobis"))
        if isinstance(self.epsilon, str):
            check_choice(self.epsilon, "epsilon", ("auto",))
        else:
            check_scalar(self.epsilon, "epsilon", minimum=0.0, include_minimum=False)
        check_positive_int(self.k_epsilon, "k_epsilon")
        if self.n_neighbors is not None:
            check_positive_int(self.n_neighbors, "n_neighbors")
            if self.k_epsilon > self.n_neighbors:
                raise ValueError(
                    f"k_epsilon ({self.k_epsilon}) must not exceed n_neighbors "
                    f"({self.n_neighbors}); lower k_epsilon or raise n_neighbors."
                )
        check_scalar(self.alpha, "alpha", minimum=0.0)
        check_bool(self.remove_harmonics, "remove_harmonics")
        check_positive_int(self.candidate_factor, "candidate_factor")
        check_scalar(self.tol, "tol", minimum=0.0, maximum=1.0, include_minimum=False,
                     include_maximum=False)
        return check_n_jobs(self.n_jobs), resolve_device(self.device)

    def _check_sizes(self, n):
        """(k, n_eig): neighbours per point and eigenpairs to compute for n points."""
        if self.n_neighbors is None and n > _DENSE_MAX_POINTS:
            raise ValueError(
                f"n_neighbors=None (all pairs) needs O(n^2) memory; Y has {n} points (limit "
                f"{_DENSE_MAX_POINTS}). Pass n_neighbors (e.g. 32) for a sparse kernel."
            )
        k = n - 1 if self.n_neighbors is None else self.n_neighbors
        if k > n - 1:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} needs more than {self.n_neighbors} points; Y has "
                f"{n}. Lower n_neighbors or pass n_neighbors=None (all pairs)."
            )
        if self.k_epsilon > k:
            raise ValueError(f"k_epsilon={self.k_epsilon} needs more than {self.k_epsilon} points; Y has {n}.")
        if self.n_components > n - 1:
            raise ValueError(
                f"n_components={self.n_components} needs at least {self.n_components + 1} points (the "
                f"trivial eigenvector comes first); Y has {n}."
            )
        return k, n_candidate_eigenpairs(self.n_components, self.remove_harmonics, n)

    # -- fit -----------------------------------------------------------------------------------

    def fit(self, Y, y=None, *, precisions=None, precision_factors=None):
        """Compute the diffusion coordinates of the rows of ``Y``.

        Parameters
        ----------
        Y : array_like of shape (n, m)
            Points (e.g. activations of m neurons for n inputs).
        y : None
            Ignored: scikit-learn's target argument (pipelines pass one), so the precisions
            are passed by keyword.
        precisions : array_like of shape (n, m, m), optional
            Per-point precision matrices; with ``metric="mahalanobis"`` this or
            ``precision_factors`` is required; rejected otherwise.
        precision_factors : array_like of shape (n, r, m), optional
            The precisions as factors, ``C_i = G_i^T G_i`` (``factors=True`` of
            :func:`precisions_from_jacobians` / :func:`precisions_from_neighborhoods`): the same
            metric in O(n r m) memory, for wide layers where n (m, m) matrices do not fit. Exactly
            one of ``precisions`` and ``precision_factors``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad parameters, NaN/inf, mis-shaped or missing precisions, too few points for the
            requested neighbours or components, an ``epsilon="auto"`` of zero (duplicates, or
            squared distances that underflow float64), squared distances that overflow float64,
            or an ``alpha`` so large that the density normalisation over/underflows.
        TypeError
            A parameter of the wrong type (e.g. a string ``alpha``), non-numeric arrays.
        MemoryError
            When the k-NN lists and kernel graph (about ``100 n k`` bytes) exceed
            ``latentbridge._validation.available_memory()``.
        """
        _check_no_precisions_as_target(y)
        threads, device = self._check_params()
        Y_in = Y
        Y = as_float_matrix(Y, "Y", dtype=np.float64, min_rows=2)
        G = metric_factors(self.metric, precisions, precision_factors, Y, threads)
        n = Y.shape[0]
        k, n_eig = self._check_sizes(n)
        kc = k if G is None else min(n - 1, self.candidate_factor * k)
        check_allocation(
            kernels("cpu").diffusion_workspace_bytes(n, k, kc, n_eig),
            f"DiffusionMaps.fit k-NN lists and kernel graph (n, n_neighbors) = ({n}, {k}) float64")
        rng = check_random_state(self.random_state)

        # stage 2: the kernel graph
        idx, d2 = nearest_neighbors(device, Y, G, k, candidate_factor=self.candidate_factor,
                                    n_threads=threads)
        check_finite_distances(d2, "Y" if G is None else "Y and precisions")
        eps = auto_epsilon(Y, idx, d2, self.k_epsilon) if self.epsilon == "auto" else float(self.epsilon)
        recall = None
        if G is not None and self.n_neighbors is not None:
            recall = neighbor_recall(device, Y, G, idx, self.candidate_factor, rng, threads)
            self._warn_recall(recall)
        graph = kernel_graph(device, idx, d2, eps, self.alpha, threads)

        # stage 3: the spectrum
        seed = int(rng.integers(0, 2**63 - 1))
        vals, phi, _ = diffusion_spectrum(device, graph, n_eig, tol=float(self.tol), seed=seed,
                                          n_threads=threads)

        # stage 4: the coordinates
        if self.remove_harmonics:
            self.residuals_ = harmonic_residuals(phi, rng)
            selected = non_harmonic_columns(self.residuals_, self.n_components)
        else:
            selected = np.arange(self.n_components)
        self.selected_ = selected
        self.epsilon_ = eps
        self.eigenvalues_ = vals[selected].copy()
        self.intrinsic_eigenvalues_ = intrinsic_eigenvalues(self.eigenvalues_, eps)
        self.embedding_ = np.ascontiguousarray(phi[:, selected])
        self.neighbor_recall_ = recall
        self.kernel_matrix_ = graph.to_csr()
        self.device_ = device
        record_features(self, Y_in, reset=True)
        # what transform needs of the training set (not derivable from the attributes above)
        self._train_Y, self._train_factors, self._train_density = Y, G, graph.density
        return self

    def _warn_recall(self, recall):
        if recall < _MIN_NEIGHBOR_RECALL:
            warn_user(
                f"only {recall:.1%} of the Mahalanobis neighbours survive a wider candidate "
                f"search: the metrics are too anisotropic for {self.candidate_factor} x "
                "n_neighbors Euclidean candidates, which biases the spectrum. Raise "
                "candidate_factor.", CandidateRecallWarning)

    def fit_transform(self, Y, y=None, *, precisions=None, precision_factors=None):
        """Fit and return ``embedding_`` (arguments as in :meth:`fit`)."""
        return self.fit(Y, y, precisions=precisions, precision_factors=precision_factors).embedding_

    # -- out of sample -------------------------------------------------------------------------

    def transform(self, Y_new, precisions=None, *, precision_factors=None):
        """Diffusion coordinates of new points by the Nystrom extension.

        ``phi_p(y) = (1 / a_p) sum_j M(y, j) phi_p(j)`` with ``M(y, j)`` the Markov kernel row of
        y over its ``n_neighbors`` nearest training points (all of them for ``n_neighbors=None``),
        normalised with the training densities exactly as in :meth:`fit`.

        Parameters
        ----------
        Y_new : array_like of shape (n_new, m)
        precisions : array_like of shape (n_new, m, m), optional
            Precisions at the new points. With ``metric="mahalanobis"`` and no precisions, each
            new point gets the coordinates of its nearest (Euclidean) training point.
        precision_factors : array_like of shape (n_new, r, m), optional
            The new points' precisions as factors ``G_i^T G_i`` (instead of ``precisions``).

        Returns
        -------
        embedding : ndarray of shape (n_new, n_components)

        Raises
        ------
        ValueError
            Wrong number of features, NaN/inf, or squared distances that overflow float64.

        Warns
        -----
        NystromWarning
            When a kept eigenvalue is below 1e-10.
        """
        check_is_fitted(self, "embedding_")
        Yn = as_float_matrix(Y_new, "Y_new", dtype=np.float64)
        record_features(self, Y_new, reset=False)
        threads = check_n_jobs(self.n_jobs)
        Y, device = self._train_Y, self.device_
        if self.metric == "mahalanobis" and precisions is None and precision_factors is None:
            idx, _ = euclidean_candidates(device, Y, Yn, 1, threads)
            return self.embedding_[idx[:, 0]].copy()
        Gq = metric_factors(self.metric, precisions, precision_factors, Yn, threads)
        G = self._train_factors
        if Gq is not None:
            r = max(G.shape[1], Gq.shape[1])
            G, Gq = pad_rank(G, r), pad_rank(Gq, r)
        k = Y.shape[0] if self.n_neighbors is None else self.n_neighbors
        L = self.embedding_.shape[1]
        check_allocation(Yn.shape[0] * k * (8 * L + 48),
                         f"DiffusionMaps.transform neighbour lists (n_new, k) = ({Yn.shape[0]}, {k}) float64")
        idx, d2 = nearest_neighbors(device, Y, G, k, queries=Yn, query_factors=Gq,
                                    candidate_factor=self.candidate_factor, n_threads=threads)
        check_finite_distances(d2, "Y_new" if Gq is None else "Y_new and precisions")
        small = np.abs(self.eigenvalues_) < _NYSTROM_MIN_EIGENVALUE
        if small.any():
            warn_user(
                f"{int(small.sum())} eigenvalue(s) below {_NYSTROM_MIN_EIGENVALUE:g}: the Nystrom "
                "extension divides by them, so those coordinates are unreliable.",
                NystromWarning)
        # M(y, j) = K(y, j) p_j^-alpha / sum_j K(y, j) p_j^-alpha: p(y)^-alpha cancels, and the
        # kernel is shifted by the smallest distance so that far-away points do not underflow.
        # In log space: p^-alpha may under- or overflow on its own.
        with np.errstate(over="ignore", under="ignore"):
            logw = (-(d2 - d2[:, :1]) / (2.0 * self.epsilon_)
                    - float(self.alpha) * np.log(self._train_density[idx]))
            logw -= logw.max(axis=1, keepdims=True)
            Wr = np.exp(logw)
        Mr = Wr / Wr.sum(axis=1, keepdims=True)
        out = np.einsum("nk,nkc->nc", Mr, self.embedding_[idx])
        with np.errstate(divide="ignore", invalid="ignore"):
            return out / self.eigenvalues_

    def inverse_transform(self, embedding):
        """Points in the original space from diffusion coordinates (k-NN interpolation).

        Inverse-distance weighting of the ``n_components + 1`` training points nearest in the
        embedding (exact linear interpolation on a curve); a coordinate that equals a training
        point's returns that point.

        Parameters
        ----------
        embedding : array_like of shape (n_new, n_components)

        Returns
        -------
        Y : ndarray of shape (n_new, m)
        """
        check_is_fitted(self, "embedding_")
        E = as_float_matrix(embedding, "embedding", dtype=np.float64)
        L = self.embedding_.shape[1]
        if E.shape[1] != L:
            raise ValueError(f"embedding must have {L} columns (n_components); got {E.shape[1]}.")
        k = min(L + 1, self.embedding_.shape[0])
        Y = self._train_Y
        check_allocation(E.shape[0] * k * (16 + 8 * (L + Y.shape[1])),
                         f"DiffusionMaps.inverse_transform neighbour lists (n_new, k) = ({E.shape[0]}, {k})")
        return _idw(self.embedding_, Y, E, k, check_n_jobs(self.n_jobs), self.device_)


def _check_no_precisions_as_target(y):
    """TypeError for a 3-D ``y``: precisions passed where scikit-learn puts the target."""
    if getattr(y, "ndim", None) == 3:  # no numpy call: y may be any array-like
        raise TypeError(
            "fit's second argument is scikit-learn's target y (ignored); pass the precisions by "
            "keyword: fit(Y, precisions=C) or fit(Y, precision_factors=G).")


def _idw(X, values, Q, k, n_threads, device):
    """Inverse-distance-weighted k-NN interpolation of values sampled at the rows of X."""
    idx, d2 = euclidean_candidates(device, np.ascontiguousarray(X), Q, k, n_threads)
    check_finite_distances(d2, "embedding")
    # distances recomputed relative to the largest difference of each query (no under/overflow)
    diff = Q[:, None, :] - X[idx]
    s = np.abs(diff).max(axis=(1, 2))
    s = np.where(s > 0, s, 1.0)
    rel = np.linalg.norm(diff / s[:, None, None], axis=2)
    exact = rel[:, 0] * s <= 1e-12 * max(1.0, float(np.abs(X).max()))
    w = rel[:, :1] / np.where(rel > 0, rel, 1.0)
    w[exact] = 0.0
    w[exact, 0] = 1.0
    w /= w.sum(axis=1, keepdims=True)
    return np.einsum("nk,nkc->nc", w, values[idx])
