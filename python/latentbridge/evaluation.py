"""Evaluation protocols for aligned representations: retrieval, stitching and face verification.

* :func:`mrr` and :func:`top_k_accuracy`: row i of X should retrieve row i of Y.
* :func:`stitched_accuracy`: features of network A -> a map -> the classifier of network B.
* :func:`verification_accuracy`: the LFW 10-fold open-set protocol through a fitted map
  (McNeely-White et al.); :func:`read_lfw_pairs` reads LFW's public ``pairs.txt`` for it.
"""

from __future__ import annotations

import copy
import os
from typing import NamedTuple

import numpy as np

from ._validation import (
    as_float_matrix,
    check_choice,
    check_positive_int,
    check_same_rows,
)

__all__ = ["mrr", "top_k_accuracy", "retrieval_ranks", "stitched_accuracy",
           "verification_accuracy", "read_lfw_pairs", "LFWPairs"]

METRICS = ("cosine", "euclidean")


def retrieval_ranks(X, Y, *, metric="cosine", block=2048):
    """Rank of the true match of each query: ``1 + #{j : d(x_i, y_j) < d(x_i, y_i)}``.

    Strictly closer candidates only, so ties count in the query's favour (DESIGN.md's convention).
    Distances are computed in row blocks (memory O(block * n)).

    Parameters
    ----------
    X : array (n, d)  queries
    Y : array (n, d)  candidates; Y[i] is the match of X[i]
    metric : {"cosine", "euclidean"}
    block : int, default 2048
        Query rows per block of distances (memory O(block * n)); the ranks do not depend on it.

    Returns
    -------
    ndarray (n,) of int, in [1, n]
    """
    from .distance import pairwise_distances

    check_choice(metric, "metric", METRICS)
    X = as_float_matrix(X, "X")
    Y = as_float_matrix(Y, "Y")
    check_same_rows(X, Y)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"X and Y must have the same number of columns to be compared; got {X.shape[1]} and "
            f"{Y.shape[1]}. Map one space into the other first, or use relative representations."
        )
    if X.dtype != Y.dtype:
        X, Y = X.astype(np.float64), Y.astype(np.float64)
    n = X.shape[0]
    ranks = np.empty(n, dtype=np.int64)
    for r0 in range(0, n, block):
        D = pairwise_distances(X[r0:r0 + block], Y, metric=metric)
        rows = np.arange(D.shape[0])
        own = D[rows, r0 + rows]
        ranks[r0:r0 + block] = 1 + np.count_nonzero(D < own[:, None], axis=1)
    return ranks


def mrr(X, Y, *, metric="cosine"):
    """Mean reciprocal rank of the true matches: ``mean_i 1 / rank_i``.

    The rank is :func:`retrieval_ranks`' (1 + the number of candidates strictly closer than the
    true match).

    Parameters
    ----------
    X, Y : arrays (n, d); row i of X should retrieve row i of Y.
    metric : {"cosine", "euclidean"}

    Returns
    -------
    float in (0, 1]; 1 means every query ranks its match first.

    Examples
    --------
    >>> import numpy as np, latentbridge as lb
    >>> lb.mrr(np.eye(3), np.eye(3))
    1.0
    """
    return float(np.mean(1.0 / retrieval_ranks(X, Y, metric=metric)))


def top_k_accuracy(X, Y, *, k=1, metric="cosine"):
    """Fraction of queries whose true match is among the k closest candidates (rank <= k).

    Parameters
    ----------
    X, Y : arrays (n, d); row i of X should retrieve row i of Y.
    k : int, default 1
    metric : {"cosine", "euclidean"}

    Returns
    -------
    float in [0, 1]; ties count against the query (the rank of :func:`retrieval_ranks`).

    Raises
    ------
    ValueError
        Mismatched shapes, NaN/inf, or k < 1.
    """
    k = check_positive_int(k, "k")
    return float(np.mean(retrieval_ranks(X, Y, metric=metric) <= k))


def _apply_mapping(mapping, F, name="mapping"):
    if mapping is None:
        return F
    if hasattr(mapping, "transform"):
        return np.asarray(mapping.transform(F))
    if callable(mapping):
        return np.asarray(mapping(F))
    raise TypeError(f"{name} must be None, a fitted estimator with transform(), or a callable; "
                    f"got {mapping!r}.")


def stitched_accuracy(F_A, y, W_B, b_B=None, *, mapping=None):
    """Accuracy of the stitched network: A's features -> ``mapping`` -> B's linear classifier.

    ``pred = argmax_c (mapping(F_A) @ W_B.T + b_B)``; the accuracy is ``mean(pred == y)``.

    Parameters
    ----------
    F_A : array (n, d_A)
        Network A's features (the input of its classifier).
    y : array (n,) of int
        True class indices in [0, n_classes) (rows of W_B).
    W_B : array (n_classes, d_B)
        Network B's classifier weights (torch ``nn.Linear.weight`` layout).
    b_B : array (n_classes,), optional
    mapping : fitted estimator (with ``transform``), callable, or None (identity; d_A == d_B)

    Returns
    -------
    float in [0, 1]
    """
    F_A = as_float_matrix(F_A, "F_A")
    W_B = as_float_matrix(W_B, "W_B").astype(np.float64, copy=False)
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != F_A.shape[0]:
        raise ValueError(f"y must be 1-D with one label per row of F_A ({F_A.shape[0]}); got "
                         f"shape {y.shape}.")
    if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= W_B.shape[0])):
        raise ValueError(f"y must hold integer class indices in [0, {W_B.shape[0]}) (the rows of "
                         "W_B); map labels to indices first.")
    Z = _apply_mapping(mapping, F_A).astype(np.float64, copy=False)
    if Z.ndim != 2 or Z.shape[0] != F_A.shape[0] or Z.shape[1] != W_B.shape[1]:
        raise ValueError(
            f"the mapped features have shape {Z.shape} but B's classifier takes {W_B.shape[1]} "
            "features: the mapping must send A's space to B's."
        )
    logits = Z @ W_B.T
    if b_B is not None:
        b = np.asarray(b_B, dtype=np.float64).reshape(-1)
        if b.shape[0] != W_B.shape[0]:
            raise ValueError(f"b_B must have n_classes = {W_B.shape[0]} entries; got {b.shape[0]}.")
        logits += b
    return float(np.mean(np.argmax(logits, axis=1) == y))


def _best_threshold(dist, same):
    """Threshold t maximising accuracy of (dist <= t) == same; midpoints between sorted values."""
    order = np.argsort(dist, kind="stable")
    d, s = dist[order], same[order].astype(np.int64)
    # predicting "same" for the first i pairs: correct = (same among first i) + (diff after i)
    cum_same = np.concatenate([[0], np.cumsum(s)])
    n_diff_total = d.size - s.sum()
    cum_diff = np.concatenate([[0], np.cumsum(1 - s)])
    correct = cum_same + (n_diff_total - cum_diff)
    # only cut between distinct distances
    valid = np.concatenate([[True], d[1:] != d[:-1], [True]])
    correct = np.where(valid, correct, -1)
    i = int(np.argmax(correct))
    if i == 0:
        return d[0] - 1.0
    if i == d.size:
        return d[-1] + 1.0
    return 0.5 * (d[i - 1] + d[i])


def verification_accuracy(emb_1, emb_2, same, *, folds=10, mapping=None, return_std=False):
    """Face-verification accuracy with the LFW 10-fold protocol, optionally through a fitted map.

    Pairs i = (x1_i, x2_i) with ``same[i]`` True for matched (same identity) pairs. ``emb_1`` are
    network A's features of the first images, ``emb_2`` network B's features of the second images
    (the same network for the usual single-model protocol). Both are L2-normalised per row.

    The pairs are cut into ``folds`` contiguous folds (LFW's pairs.txt order: fold k is the k-th
    block of pairs). For each held-out fold:

    1. when ``mapping`` is an estimator, a fresh copy is fitted on the MATCHED pairs of the other
       folds: ``fit(emb_1[train & same], emb_2[train & same])``;
    2. the distance of a pair is ``1 - (M f_1) . f_2 / ||M f_1||`` (the mapped feature is not
       re-normalised; f_2 is unit norm, so this is the cosine distance);
    3. the threshold maximising accuracy on the other folds (predict "same" when the distance is
       <= threshold; candidate thresholds at midpoints of sorted distances) is applied to the
       held-out fold.

    The result is the mean held-out accuracy over folds. With ``mapping=None`` the identity is used
    (A and B must share a space); between unrelated networks that gives chance accuracy.

    Parameters
    ----------
    emb_1 : array (n_pairs, d_A)
    emb_2 : array (n_pairs, d_B)
    same : array (n_pairs,) of bool
    folds : int, default 10
    mapping : None, an (unfitted) estimator with fit/transform (copied per fold), or a callable
        applied as is (already fitted elsewhere)
    return_std : bool, default False
        Also return the standard deviation of the fold accuracies (LFW reports mean +- std).

    Returns
    -------
    float, or (mean, std)
    """
    E1 = as_float_matrix(emb_1, "emb_1").astype(np.float64, copy=False)
    E2 = as_float_matrix(emb_2, "emb_2").astype(np.float64, copy=False)
    check_same_rows(E1, E2, ("emb_1", "emb_2"))
    same = np.asarray(same)
    if same.ndim != 1 or same.shape[0] != E1.shape[0]:
        raise ValueError(f"same must be 1-D with one entry per pair ({E1.shape[0]}); got shape "
                         f"{same.shape}.")
    if same.dtype != bool:
        if not np.isin(same, (0, 1)).all():
            raise ValueError("same must hold booleans (True for matched pairs) or 0/1.")
        same = same.astype(bool)
    folds = check_positive_int(folds, "folds", minimum=2, maximum=E1.shape[0])
    if mapping is None and E1.shape[1] != E2.shape[1]:
        raise ValueError(f"emb_1 ({E1.shape[1]} features) and emb_2 ({E2.shape[1]}) live in "
                         "different spaces; pass mapping= (e.g. RidgeMap()) to map A to B.")
    E1 = E1 / np.maximum(np.linalg.norm(E1, axis=1, keepdims=True), np.finfo(np.float64).tiny)
    E2 = E2 / np.maximum(np.linalg.norm(E2, axis=1, keepdims=True), np.finfo(np.float64).tiny)
    fold_of = np.empty(E1.shape[0], dtype=np.intp)
    for k, idx in enumerate(np.array_split(np.arange(E1.shape[0]), folds)):
        fold_of[idx] = k
    fits = mapping is not None and hasattr(mapping, "fit") and hasattr(mapping, "transform")
    accs = []
    for k in range(folds):
        test, train = fold_of == k, fold_of != k
        if fits:
            sel = train & same
            if sel.sum() < 2:
                raise ValueError("a training split holds fewer than 2 matched pairs; use fewer "
                                 "folds or more pairs.")
            M = copy.deepcopy(mapping).fit(E1[sel], E2[sel])
            Z = np.asarray(M.transform(E1), dtype=np.float64)
        else:
            Z = _apply_mapping(mapping, E1).astype(np.float64, copy=False)
        if Z.shape != (E1.shape[0], E2.shape[1]):
            raise ValueError(f"the mapping sends emb_1 to shape {Z.shape}; expected "
                             f"{(E1.shape[0], E2.shape[1])}.")
        norms = np.linalg.norm(Z, axis=1)
        cos = np.einsum("ij,ij->i", Z, E2) / np.where(norms > 0, norms, 1.0)
        dist = 1.0 - cos
        t = _best_threshold(dist[train], same[train])
        accs.append(float(np.mean((dist[test] <= t) == same[test])))
    accs = np.asarray(accs)
    if return_std:
        return float(accs.mean()), float(accs.std())
    return float(accs.mean())


class LFWPairs(NamedTuple):
    """The pairs of an LFW ``pairs.txt`` file, in the file's order (fold by fold).

    Attributes
    ----------
    first : ndarray (n_pairs,) of str
        Image path of the first image of each pair, relative to the LFW image folder
        (``"Name/Name_0001.jpg"``).
    second : ndarray (n_pairs,) of str
        Image path of the second image.
    same : ndarray (n_pairs,) of bool
        True for matched pairs (the same person).
    fold : ndarray (n_pairs,) of int
        Fold index in [0, n_folds); contiguous blocks, as :func:`verification_accuracy` cuts them.
    """

    first: np.ndarray
    second: np.ndarray
    same: np.ndarray
    fold: np.ndarray


def _lfw_image(name, number, path, lineno):
    try:
        k = int(number)
    except ValueError:
        k = 0
    if k < 1:
        raise ValueError(f"{path}, line {lineno}: image number {number!r} of {name!r} is not a "
                         "positive integer; is this an LFW pairs file?")
    return f"{name}/{name}_{k:04d}.jpg"


def read_lfw_pairs(path):
    r"""Read LFW's public pairs file (``pairs.txt``, or ``pairsDevTrain.txt`` / ``pairsDevTest.txt``).

    Format (Huang et al. 2007, the "View 2" protocol): a header ``n_folds<TAB>n`` (or a single ``n``
    for the one-fold development files), then for each fold ``n`` matched lines
    ``name<TAB>i<TAB>j`` followed by ``n`` mismatched lines ``name1<TAB>i<TAB>name2<TAB>j``. Image
    ``i`` of ``name`` is ``name/name_{i:04d}.jpg``. Fields may be separated by any whitespace.

    Parameters
    ----------
    path : str or os.PathLike
        The pairs file.

    Returns
    -------
    LFWPairs
        ``(first, second, same, fold)`` with ``2 * n * n_folds`` pairs; pass features of ``first``
        and ``second`` with ``same`` to :func:`verification_accuracy` with ``folds=n_folds``.

    Raises
    ------
    ValueError
        A malformed header, a line with the wrong number of fields for its place, a non-positive
        image number, or a pair count that does not match the header (the message names the line).
    TypeError
        ``path`` is not a path.

    Examples
    --------
    >>> import pathlib, tempfile, latentbridge as lb
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "pairs.txt"
    >>> _ = f.write_text("1 1\nAnn 1 2\nAnn 1 Bob 3\n")
    >>> p = lb.evaluation.read_lfw_pairs(f)
    >>> p.first.tolist(), p.second.tolist(), p.same.tolist()
    (['Ann/Ann_0001.jpg', 'Ann/Ann_0001.jpg'], ['Ann/Ann_0002.jpg', 'Bob/Bob_0003.jpg'], [True, False])
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike naming the pairs file; got {path!r}.")
    with open(path, encoding="utf-8") as fh:
        lines = [(i + 1, line.split()) for i, line in enumerate(fh)]
    lines = [(i, f) for i, f in lines if f]
    if not lines:
        raise ValueError(f"{path} is empty; expected LFW's pairs.txt format.")
    head_no, head = lines[0]
    try:
        numbers = [int(v) for v in head]
    except ValueError:
        numbers = []
    if len(numbers) == 1:
        n_folds, per = 1, numbers[0]
    elif len(numbers) == 2:
        n_folds, per = numbers
    else:
        raise ValueError(f"{path}, line {head_no}: the header must be 'n_folds n' or 'n' (integers); "
                         f"got {' '.join(head)!r}.")
    if n_folds < 1 or per < 1:
        raise ValueError(f"{path}, line {head_no}: fold and pair counts must be positive; got "
                         f"{n_folds} and {per}.")
    body = lines[1:]
    expected = 2 * per * n_folds
    if len(body) != expected:
        raise ValueError(f"{path}: the header announces {n_folds} fold(s) of {per} matched + {per} "
                         f"mismatched pairs ({expected} lines) but the file has {len(body)}.")
    first, second, same, fold = [], [], [], []
    for k, (lineno, f) in enumerate(body):
        matched = (k % (2 * per)) < per
        if matched and len(f) != 3:
            raise ValueError(f"{path}, line {lineno}: a matched pair needs 3 fields (name i j); got "
                             f"{len(f)}.")
        if not matched and len(f) != 4:
            raise ValueError(f"{path}, line {lineno}: a mismatched pair needs 4 fields (name1 i "
                             f"name2 j); got {len(f)}.")
        if matched:
            first.append(_lfw_image(f[0], f[1], path, lineno))
            second.append(_lfw_image(f[0], f[2], path, lineno))
        else:
            first.append(_lfw_image(f[0], f[1], path, lineno))
            second.append(_lfw_image(f[2], f[3], path, lineno))
        same.append(matched)
        fold.append(k // (2 * per))
    return LFWPairs(np.asarray(first), np.asarray(second), np.asarray(same, dtype=bool),
                    np.asarray(fold, dtype=np.int64))
