"""Stitching through network B: a fitted map scored through B's own head or decoder, and zero-shot
stitching on relative coordinates.

* :func:`stitched_score`: ``score(head_b(mapping(X_a)), target)``: the direct-alignment papers'
  metric (Lähner & Moeller: reconstruction error through B's decoder; McNeely-White et al.:
  accuracy through B's classifier), with any head: a torch module, a callable on tensors, or a
  numpy callable.
* :class:`RelativeStitching`: Moschella et al.'s zero-shot stitching. A head is fitted on B's
  relative coordinates (similarities to B's embeddings of a set of anchor samples) and applied
  unchanged to A's relative coordinates to A's embeddings of the same anchor samples; no pair of
  A/B embeddings of the training data is ever needed.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.base import clone

from .._base import BaseEstimator, check_is_fitted
from .._validation import as_float_matrix, check_choice, check_positive_int
from ..evaluation import _apply_mapping
from .._interop import to_numpy
from ..relative import RelativeGeodesic, relative_representation
from ._model_calls import bound_call, evaluating, finite_or_raise, model_device, row_batches

__all__ = ["stitched_score", "RelativeStitching"]

SCORES = ("accuracy", "mse")
SIMILARITIES = ("cosine", "euclidean", "geodesic")


# ---- stitched_score ------------------------------------------------------------------------------

def _module_dtype(module):
    for t in list(module.parameters()) + list(module.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.get_default_dtype()


def _torch_runner(head, device):
    """numpy batch -> head outputs, the batch given to ``head`` as a tensor (the module's dtype, or
    torch's default dtype for a plain callable) on ``device``."""
    dtype = _module_dtype(head) if isinstance(head, torch.nn.Module) else torch.get_default_dtype()
    call = bound_call(head, dtype, device)
    return lambda z: call(torch.as_tensor(z).to(device=device, dtype=dtype))


def _first_call(head, z, device):
    """Call ``head`` on the first batch, choosing how: a module gets tensors; a plain callable gets
    the numpy batch, and tensors when it rejects numpy with a TypeError/AttributeError.
    Returns ``(runner, outputs)``."""
    if isinstance(head, torch.nn.Module):
        run = _torch_runner(head, device)
        return run, run(z)
    try:
        return head, head(z)
    except (TypeError, AttributeError) as numpy_error:
        run = _torch_runner(head, device)
        try:
            return run, run(z)
        except Exception:
            raise numpy_error from None


def _check_target(target, score, n):
    """The target as an array (accuracy: (n,) integer labels; mse: (n, k) floats)."""
    if score == "accuracy":
        y = np.asarray(target)
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(f"target must be 1-D with one label per row of X_a ({n}); got shape "
                             f"{y.shape}.")
        if y.dtype.kind not in "iub":
            raise ValueError(f"target must hold integer class indices for score='accuracy'; got "
                             f"dtype {y.dtype}. Map labels to indices first.")
        return y.astype(np.int64)
    if score == "mse":
        T = np.asarray(target)
        if T.ndim < 1 or T.shape[0] != n:
            raise ValueError(f"target must have one row per row of X_a ({n}); got shape {T.shape}.")
        return as_float_matrix(T.reshape(n, -1), "target", dtype=np.float64)
    return target


class _Scorer:
    """Streams ``accuracy`` (correct count) and ``mse`` (sum of squares) over batches; keeps the
    outputs for a callable score."""

    def __init__(self, score, target):
        self.score, self.target, self.total, self.kept = score, target, 0.0, []

    def add(self, out, lo, hi):
        if callable(self.score):
            self.kept.append(out)
            return
        O = out.reshape(out.shape[0], -1)
        if self.score == "mse":
            T = self.target[lo:hi]
            if T.shape[1] != O.shape[1]:
                raise ValueError(f"head_b returns {O.shape[1]} values per sample but target has "
                                 f"{T.shape[1]}; for score='mse' target is what head_b should "
                                 "reproduce (e.g. B's input for B's decoder).")
            self.total += float(np.sum((O - T) ** 2))
            return
        y = self.target[lo:hi]
        if O.shape[1] == 1:  # one logit: class 1 when the logit is positive
            if y.size and (y.min() < 0 or y.max() > 1):
                raise ValueError("target must hold 0/1 labels for a head with a single output "
                                 "column (a logit, thresholded at 0).")
            pred = (O[:, 0] > 0).astype(np.int64)
        else:
            if y.size and (y.min() < 0 or y.max() >= O.shape[1]):
                raise ValueError(f"target must hold class indices in [0, {O.shape[1]}) (the "
                                 "columns of head_b's outputs).")
            pred = np.argmax(O, axis=1)
        self.total += float(np.sum(pred == y))

    def result(self, n, width):
        if callable(self.score):
            return float(self.score(np.concatenate(self.kept, axis=0), self.target))
        return self.total / (n * width) if self.score == "mse" else self.total / n


def stitched_score(mapping, X_a, head_b, target, *, score="accuracy", batch_size=1024,
                   device=None):
    """Score of the stitched network ``head_b(mapping(X_a))``: A's representation, translated into
    B's space, read by B's own head or decoder.

    Parameters
    ----------
    mapping : fitted estimator with ``transform``, callable, or None
        Sends A's representation (n, d_A) to B's space (n, d_B); None is the identity.
    X_a : array (n, d_A)
        Network A's representation.
    head_b : torch.nn.Module or callable
        The rest of network B. A module runs in eval mode (restored afterwards) under
        ``torch.no_grad`` with tensors of its parameters' dtype on ``device``. A plain callable
        is first given numpy batches; when it rejects them with a TypeError or AttributeError (a
        function wrapping torch modules), it gets tensors of torch's default dtype on ``device``.
        Outputs are (b, ...), torch or numpy.
    target : array or object
        ``score="accuracy"``: (n,) integer class indices; ``score="mse"``: (n, ...) what
        ``head_b`` should output (e.g. B's input, for B's decoder); a callable score: anything
        it accepts.
    score : {"accuracy", "mse"} or callable, default "accuracy"
        * ``"accuracy"``: ``mean_i [argmax_c o_ic == target_i]`` over the output columns; with a
          single output column it is a logit: ``mean_i [(o_i > 0) == target_i]`` (0/1 labels).
        * ``"mse"``: ``sum_i ||o_i - t_i||^2 / (n k)``, the mean over all n k output values
          (trailing dims flattened).
        * callable: ``score(outputs, target)`` with all outputs as one numpy array (n, ...).
    batch_size : int, default 1024
        Rows per call of ``head_b``.
    device : str or torch.device, optional
        Where a torch head runs (default: a module's device, else the CPU).

    Returns
    -------
    float

    Raises
    ------
    TypeError
        ``head_b`` or ``mapping`` of the wrong kind.
    ValueError
        An unknown ``score``; a target of the wrong shape or type, or labels outside the
        classes; mapped features without one row per sample; NaN or infinity in the mapped
        features or in ``head_b``'s outputs (the batch is named).

    References
    ----------
    Lähner & Moeller, "On the direct alignment of latent spaces" (2023); McNeely-White, Beveridge
    & Draper, "Inception and ResNet features are (almost) equivalent" (2020).
    """
    if not callable(score):
        check_choice(score, "score", SCORES)
    if not callable(head_b):
        raise TypeError(f"head_b must be a torch module or a callable; got {head_b!r}.")
    batch_size = check_positive_int(batch_size, "batch_size")
    X_a = as_float_matrix(X_a, "X_a")
    n = X_a.shape[0]
    target = _check_target(target, score, n)
    Z = np.asarray(_apply_mapping(mapping, X_a))
    if Z.ndim < 2 or Z.shape[0] != n:
        raise ValueError(f"mapping returned shape {Z.shape} for X_a of shape {X_a.shape}; it must "
                         "give one row per sample.")
    Z = as_float_matrix(Z.reshape(n, -1), "mapping(X_a)")
    scorer, run = _Scorer(score, target), None
    dev = model_device(head_b, device)
    with evaluating(head_b), torch.no_grad():
        for b, lo, hi in row_batches(n, batch_size):
            if run is None:
                run, out = _first_call(head_b, Z[lo:hi], dev)
            else:
                out = run(Z[lo:hi])
            out = to_numpy(out).astype(np.float64, copy=False)
            if out.ndim < 1 or out.shape[0] != hi - lo:
                raise ValueError(f"head_b returned shape {out.shape} for a batch of {hi - lo} "
                                 "rows; it must give one output row per input row.")
            finite_or_raise(out, "head_b's outputs", b, lo, hi)
            scorer.add(out, lo, hi)
    return scorer.result(n, out[0].size)


# ---- RelativeStitching -------------------------------------------------------------------------

def _default_head():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000)


class RelativeStitching(BaseEstimator):
    """Zero-shot stitching on relative coordinates (Moschella et al. 2023).

    ``fit(X_b, y, anchors=anchors_b)`` fits ``head`` on B's relative coordinates
    ``r_b(x) = (sim(x, a^B_1), ..., sim(x, a^B_k))``; ``predict(X_a, anchors=anchors_a)`` applies
    the same fitted head to A's relative coordinates ``r_a(x) = (sim(x, a^A_1), ...)``, where
    ``a^A_j`` and ``a^B_j`` are A's and B's embeddings of the same k anchor samples, in the same
    order. When the two latent spaces differ by a transformation the similarity is invariant to
    (cosine: rotations and isotropic rescaling; Euclidean: rotations and translations), ``r_a``
    equals ``r_b`` on every sample and the stitched accuracy is exactly B's own.

    Parameters
    ----------
    head : estimator, optional
        Any scikit-learn style estimator (``fit``/``predict``); cloned before fitting. Default
        ``LogisticRegression(max_iter=1000)``. A pipeline with a ``StandardScaler`` first helps
        with Euclidean or geodesic coordinates, which are not bounded like cosines.
    similarity : {"cosine", "euclidean", "geodesic"}, default "cosine"
        ``"cosine"`` and ``"euclidean"`` are :func:`latentbridge.relative_representation`;
        ``"geodesic"`` is :class:`latentbridge.RelativeGeodesic` (pullback energies or lengths of
        the straight latent path to each anchor, through a decoder of each network).
    decoder_a, decoder_b : callable, optional
        With ``similarity="geodesic"``: decoders (or heads) of A's and B's latent spaces. A
        ``torch.nn.Module`` gets tensors of its parameters' dtype on its device and runs in eval
        mode (restored afterwards); any other callable gets numpy arrays.
    n_steps, quantity, output_metric
        Passed to :class:`latentbridge.RelativeGeodesic` (``similarity="geodesic"`` only).

    Attributes
    ----------
    head_ : the fitted head
    n_anchors_ : int
    n_features_in_ : int
        B's dimension.
    classes_ : ndarray, when the head has them

    References
    ----------
    Moschella, Maiorca, Fumero, Norelli, Locatello & Rodolà, "Relative representations enable
    zero-shot latent space communication", ICLR 2023.
    """

    def __init__(self, head=None, *, similarity="cosine", decoder_a=None, decoder_b=None,
                 n_steps=8, quantity="energy", output_metric="euclidean"):
        self.head = head
        self.similarity = similarity
        self.decoder_a = decoder_a
        self.decoder_b = decoder_b
        self.n_steps = n_steps
        self.quantity = quantity
        self.output_metric = output_metric

    def relative_coordinates(self, X, anchors, decoder=None):
        """``(n, k)`` similarities (or geodesic energies) of the rows of X to the k anchors."""
        check_choice(self.similarity, "similarity", SIMILARITIES)
        if self.similarity != "geodesic":
            return relative_representation(X, anchors, similarity=self.similarity)
        if not callable(decoder):
            raise TypeError("similarity='geodesic' needs decoder_a and decoder_b: callables from "
                            "each network's latent codes to its outputs.")
        geodesic = RelativeGeodesic(decoder, n_steps=self.n_steps, quantity=self.quantity,
                                    output_metric=self.output_metric)
        if not isinstance(decoder, torch.nn.Module):
            return geodesic.fit(anchors).transform(X)
        # a torch decoder gets tensors of its own dtype and device, in eval mode
        dtype, dev = _module_dtype(decoder), model_device(decoder, None)
        with evaluating(decoder):
            return geodesic.fit(torch.as_tensor(anchors, dtype=dtype, device=dev)).transform(
                torch.as_tensor(X, dtype=dtype, device=dev))

    def fit(self, X_b, y, *, anchors):
        """Fit the head on B's relative coordinates to ``anchors`` (B's embeddings, (k, d_B))."""
        X_b = as_float_matrix(X_b, "X_b")
        anchors = as_float_matrix(anchors, "anchors")
        R = self.relative_coordinates(X_b, anchors, self.decoder_b)
        head = _default_head() if self.head is None else self.head
        if not (hasattr(head, "fit") and hasattr(head, "predict")):
            raise TypeError(f"head must be an estimator with fit and predict; got {head!r}.")
        # a fresh copy: the user's head stays unfitted (scikit-learn's clone, else a deep copy)
        head = clone(head) if hasattr(head, "get_params") else copy.deepcopy(head)
        head.fit(R, y)
        self.head_ = head
        self.n_anchors_ = anchors.shape[0]
        self.n_features_in_ = X_b.shape[1]
        if hasattr(self.head_, "classes_"):
            self.classes_ = self.head_.classes_
        return self

    def _relative_a(self, X_a, anchors):
        check_is_fitted(self, "head_")
        anchors = as_float_matrix(anchors, "anchors")
        if anchors.shape[0] != self.n_anchors_:
            raise ValueError(
                f"anchors has {anchors.shape[0]} rows but the head was fitted on {self.n_anchors_} "
                "anchors of B: pass A's embeddings of the same anchor samples, in the same order.")
        return self.relative_coordinates(as_float_matrix(X_a, "X_a"), anchors, self.decoder_a)

    def predict(self, X_a, *, anchors):
        """Predictions for A's samples X_a, from A's relative coordinates to ``anchors`` (A's
        embeddings of the anchor samples used in ``fit``)."""
        R = self._relative_a(X_a, anchors)
        return self.head_.predict(R)

    def score(self, X_a, y, *, anchors):
        """The head's ``score`` (accuracy for a classifier) on A's relative coordinates."""
        R = self._relative_a(X_a, anchors)
        return float(self.head_.score(R, y))

