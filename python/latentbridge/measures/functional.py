"""Functional similarity: how often two classifiers' predictions differ."""

from __future__ import annotations

import numpy as np

from .._validation import as_float_matrix

__all__ = ["disagreement"]


def _labels(pred, name):
    """1-D labels as given, or the argmax of 2-D scores (n, n_classes)."""
    arr = np.asarray(pred)
    if arr.ndim == 2:
        return as_float_matrix(arr, name).argmax(axis=1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D labels (n,) or 2-D class scores (n, n_classes); got "
                         f"shape {arr.shape}.")
    if arr.dtype.kind not in "iubfUS":
        raise TypeError(f"{name} must hold integer, boolean, float or string labels; got dtype "
                        f"{arr.dtype}.")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return arr


def disagreement(pred_a, pred_b, *, y=None):
    """Fraction of inputs on which two classifiers disagree, optionally relative to their error.

    ``D = mean_i 1[a_i != b_i]`` for the predicted labels a, b (2-D inputs are class scores and
    are reduced by argmax). With true labels ``y``, ``D / err`` is returned, where
    ``err = (err_a + err_b) / 2`` is the mean error rate (1 - accuracy) of the two classifiers: 0
    when they agree everywhere, about 1 when they disagree as often as they err (the
    normalisation of Fort et al. 2019 and of the RTD paper, made symmetric).

    Without y, a metric on predictions (the normalised Hamming distance), 0 on identical inputs.
    On class scores it is invariant to positive rescaling of the scores, not to translation or
    permutation of the classes.

    Parameters
    ----------
    pred_a, pred_b : array (n,) of labels or (n, n_classes) of scores
    y : array (n,), optional
        True labels.

    Returns
    -------
    float >= 0

    Raises
    ------
    ValueError
        Empty or mismatched lengths, NaN/infinity, wrong dimensions, or ``y`` given while both
        classifiers are always right (err = 0: the normalised value is undefined).
    TypeError
        Labels of an unsupported dtype.

    References
    ----------
    Fort, Hu & Lakshminarayanan, "Deep ensembles: a loss landscape perspective", 2019. Barannikov,
    Trofimov, Sotnikov, Trimbach, Korotin, Filippov & Burnaev, "Representation topology
    divergence: a method for comparing neural network representations", ICML 2022.
    """
    a, b = _labels(pred_a, "pred_a"), _labels(pred_b, "pred_b")
    if a.shape[0] == 0 or a.shape[0] != b.shape[0]:
        raise ValueError(f"pred_a and pred_b must be non-empty with the same number of inputs; got "
                         f"{a.shape[0]} and {b.shape[0]}.")
    d = float(np.mean(a != b))
    if y is None:
        return d
    y = _labels(y, "y")
    if y.ndim != 1 or y.shape[0] != a.shape[0]:
        raise ValueError(f"y must be 1-D labels with one entry per input ({a.shape[0]}); got shape "
                         f"{y.shape}.")
    err = 0.5 * (float(np.mean(a != y)) + float(np.mean(b != y)))
    if err == 0:
        raise ValueError("both classifiers are always right on y: the disagreement normalised by "
                         "the error rate is undefined (call without y for the raw fraction).")
    return d / err
