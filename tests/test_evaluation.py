"""Retrieval metrics, stitched accuracy and the LFW verification protocol."""

import codecs
import re

import numpy as np
import pytest

import latentbridge as lb


def test_mrr_hand_computed():
    # cosine similarities of query i to candidates: chosen so the ranks are 1, 2, 3
    Y = np.eye(3)
    X = np.array([[1.0, 0.1, 0.0],       # closest to y0 -> rank 1
                  [0.9, 0.5, 0.0],       # y0 closer than y1 -> rank 2
                  [0.6, 0.5, 0.1]])      # y0, y1 closer than y2 -> rank 3
    np.testing.assert_array_equal(lb.retrieval_ranks(X, Y), [1, 2, 3])
    assert lb.mrr(X, Y) == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert lb.top_k_accuracy(X, Y, k=1) == pytest.approx(1 / 3)
    assert lb.top_k_accuracy(X, Y, k=2) == pytest.approx(2 / 3)
    # ties count in the query's favour: only strictly closer candidates push the rank
    assert lb.mrr(np.ones((3, 2)), np.ones((3, 2))) == 1.0


def test_mrr_euclidean_and_blocks():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    Y = X + 0.3 * rng.standard_normal((50, 4))
    D = np.sqrt(((X[:, None] - Y[None]) ** 2).sum(-1))
    ranks = 1 + (D < np.diag(D)[:, None]).sum(1)
    from latentbridge.evaluation import retrieval_ranks

    np.testing.assert_array_equal(retrieval_ranks(X, Y, metric="euclidean", block=7), ranks)
    assert lb.mrr(X, Y, metric="euclidean") == pytest.approx(np.mean(1 / ranks))


def test_stitched_accuracy():
    rng = np.random.default_rng(1)
    F = rng.standard_normal((100, 5))
    W = rng.standard_normal((4, 5))
    y = np.argmax(F @ W.T, axis=1)
    assert lb.stitched_accuracy(F, y, W) == 1.0
    assert lb.stitched_accuracy(F, y, W, mapping=lambda Z: -Z) < 0.5
    y2 = y.copy()
    y2[:10] = (y2[:10] + 1) % 4
    assert lb.stitched_accuracy(F, y2, W) == 0.9
    with pytest.raises(ValueError, match="integer class indices"):
        lb.stitched_accuracy(F, y + 4, W)
    with pytest.raises(ValueError, match="mapping must send"):
        lb.stitched_accuracy(F[:, :3], y, W)
    with pytest.raises(TypeError, match="mapping must be"):
        lb.stitched_accuracy(F, y, W, mapping=3)


def _pairs(rng, n_pairs=400, d=16, noise=0.4):
    ids = rng.standard_normal((n_pairs, d))
    same = np.tile([True] * 10 + [False] * 10, n_pairs // 20)
    f1 = ids + noise * rng.standard_normal((n_pairs, d))
    other = rng.standard_normal((n_pairs, d))
    f2 = np.where(same[:, None], ids, other) + noise * rng.standard_normal((n_pairs, d))
    return f1, f2, same


def test_verification_threshold_protocol_by_hand():
    rng = np.random.default_rng(2)
    f1, f2, same = _pairs(rng)
    acc, std = lb.verification_accuracy(f1, f2, same, return_std=True)
    # by hand: contiguous folds, best threshold on the other nine, cosine distance
    u1 = f1 / np.linalg.norm(f1, axis=1, keepdims=True)
    u2 = f2 / np.linalg.norm(f2, axis=1, keepdims=True)
    dist = 1 - (u1 * u2).sum(1)
    accs = []
    for test in np.array_split(np.arange(400), 10):
        train = np.setdiff1d(np.arange(400), test)
        cands = np.sort(dist[train])
        cands = np.r_[cands[0] - 1, (cands[1:] + cands[:-1]) / 2, cands[-1] + 1]
        scores = [np.mean((dist[train] <= t) == same[train]) for t in cands]
        t = cands[int(np.argmax(scores))]
        accs.append(np.mean((dist[test] <= t) == same[test]))
    assert acc == pytest.approx(np.mean(accs))
    assert std == pytest.approx(np.std(accs))
    assert acc > 0.9


def test_verification_through_a_map():
    rng = np.random.default_rng(3)
    f1, f2, same = _pairs(rng)
    Q = np.linalg.qr(rng.standard_normal((16, 16)))[0]
    f2_b = f2 @ Q                                  # network B: a rotated space
    chance = lb.verification_accuracy(f1, f2_b, same)
    mapped = lb.verification_accuracy(f1, f2_b, same, mapping=lb.Procrustes())
    direct = lb.verification_accuracy(f1, f2, same)
    assert chance < 0.7 < mapped
    assert mapped == pytest.approx(direct, abs=0.03)
    ridge = lb.verification_accuracy(f1, f2_b @ rng.standard_normal((16, 20)), same,
                                     mapping=lb.RidgeMap(alpha=1e-3))
    assert ridge > 0.85


def test_verification_bad_input():
    f = np.ones((20, 3))
    with pytest.raises(ValueError, match="one entry per pair"):
        lb.verification_accuracy(f, f, np.ones(5, bool))
    with pytest.raises(ValueError, match="different spaces"):
        lb.verification_accuracy(f, np.ones((20, 4)), np.ones(20, bool))
    with pytest.raises(ValueError, match="booleans"):
        lb.verification_accuracy(f, f, np.full(20, 2))
    with pytest.raises(ValueError, match="folds must be"):
        lb.verification_accuracy(f, f, np.ones(20, bool), folds=1)


def test_digits_networks_reproduce_the_papers_findings():
    pytest.importorskip("sklearn")
    from latentbridge.datasets import digits_networks, train_digits_network

    data, nets = digits_networks(seeds=(0, 1), architectures=("relu",), epochs=15)
    again = train_digits_network("relu", 0, data=data, epochs=15)
    np.testing.assert_array_equal(again.W, nets["relu", 0].W)           # deterministic
    A, B = nets["relu", 0], nets["relu", 1]
    assert A.test_accuracy > 0.9 and A.features(data.X_test).shape == (len(data.y_test), 32)
    FA, FB = A.features(data.X_train), B.features(data.X_train)
    FAt, FBt = A.features(data.X_test), B.features(data.X_test)
    rigid = lb.Procrustes().fit(FA, FB).score(FAt, FBt)
    linear = lb.LinearMap().fit(FA, FB).score(FAt, FBt)
    assert linear > rigid                                               # Lähner & Moeller
    # McNeely-White: the analytic map gives exactly A's accuracy, even into an untrained network
    R = train_digits_network("relu", 7, data=data, epochs=0)
    M = lb.analytic_map(A.W, R.W, A.b, R.b)
    acc = lb.stitched_accuracy(FAt, data.y_test, R.W, R.b, mapping=M)
    assert acc == A.test_accuracy
    assert R.test_accuracy < 0.5
    ridge = lb.RidgeMap(alpha=1e-3).fit(FA, R.features(data.X_train))
    assert lb.stitched_accuracy(FAt, data.y_test, R.W, R.b, mapping=ridge) < 0.5
    # Moschella et al.: relative representations match samples across seeds
    idx = np.random.default_rng(0).choice(len(FA), 200, replace=False)
    ra = lb.relative_representation(FAt, FA[idx])
    rb = lb.relative_representation(FBt, FB[idx])
    assert lb.mrr(ra, rb) > 10 * lb.mrr(FAt, FBt)


class _SpyMap:
    """An estimator that records what each fit received (in a list shared across the per-fold deep
    copies) and maps by the least-squares matrix of those pairs (no intercept)."""

    calls = []

    def fit(self, X, Y):
        type(self).calls.append((np.array(X, copy=True), np.array(Y, copy=True)))
        self.W_ = np.linalg.lstsq(X, Y, rcond=None)[0]
        return self

    def transform(self, X):
        return np.asarray(X) @ self.W_


def test_verification_fits_the_map_on_the_matched_training_pairs_only():
    rng = np.random.default_rng(4)
    f1, f2, same = _pairs(rng, n_pairs=200, d=6)
    Q = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    f2 = f2 @ Q * 3.0                                   # B's space: rotated and scaled
    _SpyMap.calls = []
    acc = lb.verification_accuracy(f1, f2, same, folds=5, mapping=_SpyMap())
    u1 = f1 / np.linalg.norm(f1, axis=1, keepdims=True)
    u2 = f2 / np.linalg.norm(f2, axis=1, keepdims=True)
    folds = np.array_split(np.arange(200), 5)
    assert len(_SpyMap.calls) == 5
    accs = []
    for test, (X_fit, Y_fit) in zip(folds, _SpyMap.calls):
        train = np.setdiff1d(np.arange(200), test)
        rows = train[same[train]]                       # matched pairs of the other folds
        np.testing.assert_allclose(X_fit, u1[rows], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(Y_fit, u2[rows], rtol=1e-12, atol=1e-15)
        # the rest of the protocol by hand with that fold's map
        Z = u1 @ np.linalg.lstsq(u1[rows], u2[rows], rcond=None)[0]
        dist = 1 - (Z * u2).sum(1) / np.linalg.norm(Z, axis=1)
        cands = np.sort(dist[train])
        cands = np.r_[cands[0] - 1, (cands[1:] + cands[:-1]) / 2, cands[-1] + 1]
        scores = [np.mean((dist[train] <= t) == same[train]) for t in cands]
        t = cands[int(np.argmax(scores))]
        accs.append(np.mean((dist[test] <= t) == same[test]))
    assert acc == pytest.approx(np.mean(accs), abs=1e-12)
    assert acc > 0.9


# ---- the threshold search and the argument checks, pinned by brute force (mutation survivors) ----

def _threshold_by_brute_force(dist, same):
    """Every cut between sorted distinct distances (and below / above all of them), scored on the
    pairs; the first best wins (the smallest threshold among equally accurate ones)."""
    u = np.unique(dist)
    cands = np.r_[u[0] - 1.0, (u[1:] + u[:-1]) / 2, u[-1] + 1.0]
    scores = [np.sum((dist <= t) == same) for t in cands]
    return cands[int(np.argmax(scores))]


@pytest.mark.parametrize("case", range(40))
def test_best_threshold_against_brute_force(case):
    from latentbridge.evaluation import _best_threshold

    rng = np.random.default_rng(100 + case)
    n = int(rng.integers(1, 12))
    dist = rng.integers(0, 5, size=n) / 4.0 if case % 2 else rng.standard_normal(n)  # ties / not
    same = rng.random(n) < [0.0, 1.0, 0.5, 0.8][case % 4]      # none, all, some matched
    got = _best_threshold(dist.copy(), same.copy())
    assert got == pytest.approx(_threshold_by_brute_force(dist, same), abs=1e-15)


def test_stitched_accuracy_bias_and_label_range():
    F = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    W = np.eye(2)                                       # logits = F; the bias decides row 3's class
    assert lb.stitched_accuracy(F, [0, 1, 1], W, b_B=[0.0, 0.5]) == 1.0
    assert lb.stitched_accuracy(F, [0, 1, 0], W, b_B=[0.5, 0.0]) == 1.0
    assert lb.stitched_accuracy(F, [0, 1, 1], W, b_B=[0.5, 0.0]) == pytest.approx(2 / 3)
    W3 = np.vstack([W, [0.0, 0.0]])                     # 3 classes, 2 features
    assert lb.stitched_accuracy(F, [0, 1, 2], W3, b_B=[0.0, 0.0, 5.0]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match=r"\[0, 3\) \(the rows of W_B\)"):
        lb.stitched_accuracy(F, [0, 1, 3], W3)
    with pytest.raises(ValueError, match="b_B must have n_classes = 3 entries; got 2"):
        lb.stitched_accuracy(F, [0, 1, 2], W3, b_B=[0.0, 1.0])
    with pytest.raises(ValueError, match=r"one label per row of F_A \(3\)"):
        lb.stitched_accuracy(F, [0, 1], W)
    with pytest.raises(ValueError, match=r"one label per row of F_A \(3\)"):
        lb.stitched_accuracy(F, np.zeros((3, 1), dtype=int), W)
    with pytest.raises(ValueError, match=r"shape \(3, 2\) but B's classifier takes 3"):
        lb.stitched_accuracy(F, [0, 1, 2], np.ones((3, 3)))
    # the mapped features may be float32 or non-unit: the logits are plain float64 products
    assert lb.stitched_accuracy(F, [0, 1, 0], W, mapping=lambda Z: 3.0 * Z.astype(np.float32),
                                b_B=[1.0, 0.0]) == 1.0


@pytest.mark.parametrize("call, name", [
    (lambda A, B: lb.retrieval_ranks(A, B), "X"), (lambda A, B: lb.retrieval_ranks(B, A), "Y"),
    (lambda A, B: lb.stitched_accuracy(A, [0, 0, 0, 0], np.ones((2, 3))), "F_A"),
    (lambda A, B: lb.stitched_accuracy(B, [0, 0, 0, 0], A), "W_B"),
    (lambda A, B: lb.verification_accuracy(A, B, [1, 0, 1, 0], folds=2), "emb_1"),
    (lambda A, B: lb.verification_accuracy(B, A, [1, 0, 1, 0], folds=2), "emb_2")])
def test_errors_name_the_argument(call, name):
    bad = np.ones((4, 3))
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match=rf"^{name} contains NaN"):
        call(bad, np.ones((4, 3)))


def test_retrieval_and_verification_option_errors():
    X = np.ones((4, 3))
    with pytest.raises(ValueError, match="^metric must be one of"):
        lb.retrieval_ranks(X, X, metric="l1")
    with pytest.raises(ValueError, match="^k must be"):
        lb.top_k_accuracy(X, X, k=0)
    with pytest.raises(ValueError, match=r"^emb_1 and emb_2 must have the same number of rows"):
        lb.verification_accuracy(X, X[:3], [1, 0, 1, 0])
    with pytest.raises(ValueError, match="fewer than 2 matched pairs"):
        lb.verification_accuracy(np.eye(4), np.eye(4), [True, True, False, False], folds=2,
                                 mapping=lb.LinearMap())
    # exactly 2 matched pairs in each training split is enough
    E = np.random.default_rng(8).standard_normal((8, 2))
    acc = lb.verification_accuracy(E, E, [True, True, False, False] * 2, folds=2,
                                   mapping=lb.Procrustes())
    assert 0.0 <= acc <= 1.0
    with pytest.raises(ValueError, match=r"sends emb_1 to shape \(4, 2\); expected \(4, 3\)"):
        lb.verification_accuracy(X, X, [1, 0, 1, 0], folds=2, mapping=lambda Z: Z[:, :2])


def test_retrieval_mixed_dtypes_and_many_blocks():
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((30, 4)), rng.standard_normal((30, 4))
    D = 1 - (X @ Y.T) / np.outer(np.linalg.norm(X, axis=1), np.linalg.norm(Y, axis=1))
    ranks = 1 + (D < np.diag(D)[:, None]).sum(1)
    from latentbridge.evaluation import retrieval_ranks

    np.testing.assert_array_equal(retrieval_ranks(X, Y, block=4), ranks)
    got = retrieval_ranks(X.astype(np.float32), Y)          # promoted to float64, not float32
    np.testing.assert_array_equal(got, ranks)
    assert got.dtype == np.int64
    assert lb.top_k_accuracy(X, Y, k=2) == pytest.approx(np.mean(ranks <= 2))
    assert lb.top_k_accuracy(X, Y) == pytest.approx(np.mean(ranks <= 1))


def test_verification_with_a_callable_and_unnormalised_maps():
    """A callable is applied as is (no fit); the mapped feature is not re-normalised but the
    distance divides by its norm, so scaling the map changes nothing."""
    rng = np.random.default_rng(6)
    f1, f2, same = _pairs(rng, n_pairs=100, d=5)
    base = lb.verification_accuracy(f1, f2, same, folds=5)
    assert lb.verification_accuracy(f1, f2, same, folds=5, mapping=lambda Z: 0.01 * Z) == base
    assert lb.verification_accuracy(f1, f2, same, folds=5, mapping=lambda Z: 50.0 * Z) == base
    # a different scale per row too: each mapped feature is divided by its own norm
    scales = np.random.default_rng(7).uniform(0.05, 20.0, size=(100, 1))
    assert lb.verification_accuracy(f1, f2, same, folds=5, mapping=lambda Z: scales * Z) == base
    # an estimator with fit/transform is fitted per fold; identity-like maps keep the accuracy
    assert lb.verification_accuracy(f1, f2, same, folds=5, mapping=lb.Procrustes()) > 0.8


def test_verification_threshold_is_inclusive_on_exact_distances():
    """Distances 0, 2 (cos 1, -1) and 1 (orthogonal) are exact. Fold 0 trains fold 1's threshold
    at the midpoint 1, and fold 1's pairs lie exactly at 1: "same" is predicted for dist <= t."""
    e1 = np.tile([1.0, 0.0], (4, 1))
    e2 = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    same = [True, False, True, True]
    # fold 1 (test, both at 1 <= 1): 2/2; fold 0 (t = 1 + 1 from fold 1's two equal distances):
    # dist 0 -> same (right), dist 2 <= 2 -> same (wrong): 1/2
    acc, std = lb.verification_accuracy(e1, e2, same, folds=2, return_std=True)
    assert acc == 0.75 and std == 0.25


class _TransformOnly:
    """Already fitted elsewhere: transform but no fit, so it is applied as is."""

    def transform(self, X):
        return np.asarray(X)[:, ::-1]


def test_verification_applies_a_transform_only_object_and_zero_rows():
    rng = np.random.default_rng(9)
    f1, f2, same = _pairs(rng, n_pairs=60, d=4)
    flipped = lb.verification_accuracy(f1, f2[:, ::-1], same, folds=3, mapping=_TransformOnly())
    assert flipped == lb.verification_accuracy(f1, f2, same, folds=3)
    # a map that sends some features to zero: their cosine distance is 1 (not NaN)
    zero = np.arange(60) % 4 == 0
    u1 = f1 / np.linalg.norm(f1, axis=1, keepdims=True)
    u2 = f2 / np.linalg.norm(f2, axis=1, keepdims=True)
    dist = np.where(zero, 1.0, 1.0 - (u1 * u2).sum(1))
    accs = []
    for test in np.array_split(np.arange(60), 3):
        train = np.setdiff1d(np.arange(60), test)
        t = _threshold_by_brute_force(dist[train], same[train])
        accs.append(np.mean((dist[test] <= t) == same[test]))
    got = lb.verification_accuracy(f1, f2, same, folds=3, mapping=lambda Z: np.where(
        zero[:, None], 0.0, Z))
    assert got == pytest.approx(np.mean(accs), abs=1e-12)


def test_top_k_metric_folds_bound_and_pair_count_message():
    # Euclidean and cosine ranks differ here: the metric must reach retrieval_ranks
    X = np.array([[1.0, 0.0], [10.0, 0.0]])
    Y = np.array([[5.0, 0.0], [0.0, 1.0]])      # cosine: y0 is x0's match; Euclidean: y1 is nearer
    assert lb.top_k_accuracy(X, Y, k=1, metric="cosine") == 0.5
    assert lb.top_k_accuracy(X, Y, k=1, metric="euclidean") == 0.0
    f = np.ones((20, 3))
    with pytest.raises(ValueError, match="folds"):
        lb.verification_accuracy(f, f, np.ones(20, bool), folds=21)
    with pytest.raises(ValueError, match=r"one entry per pair \(20\)"):
        lb.verification_accuracy(f, f, np.ones(5, bool))


def test_verification_same_as_zero_one_integers_and_bad_values():
    """same may be 0/1 integers: the same result as booleans; anything else is refused with the
    whole message."""
    rng = np.random.default_rng(40)
    f1, f2, same = _pairs(rng)
    ref = lb.verification_accuracy(f1, f2, same, return_std=True)
    assert lb.verification_accuracy(f1, f2, same.astype(np.int64), return_std=True) == ref
    mapped = lb.verification_accuracy(f1, f2, same, mapping=lb.Procrustes())
    assert lb.verification_accuracy(f1, f2, same.astype(np.int64),
                                    mapping=lb.Procrustes()) == mapped
    bad = same.astype(np.int64)
    bad[0] = 2
    with pytest.raises(ValueError, match=r"^same must hold booleans \(True for matched pairs\) or "
                                         r"0/1\.$"):
        lb.verification_accuracy(f1, f2, bad)


# ---- verification at full float64 resolution, fresh maps per fold, whole messages (mutation run) ----

def _one_ulp_pairs(second_row):
    """Eight pairs in two folds, each fold two matched pairs at distance 0 and two mismatched pairs
    whose features differ from them only in the last place: only a threshold between 0 and that tiny
    distance separates them, and then both folds score 1 (a coarser distance ties them: 1/2)."""
    e1 = np.tile([1.0, 0.0], (8, 1))
    e2 = np.array([[1.0, 0.0], [1.0, 0.0], second_row, second_row] * 2)
    return e1, e2, [True, True, False, False] * 2


def test_verification_separates_distances_one_unit_in_the_last_place_apart():
    c = np.nextafter(1.0, 0.0)                       # 1 - 2^-53, the largest double below 1
    row = [c, 2.0**-26]                               # c^2 + 2^-52 rounds to exactly 1: unit norm
    assert np.linalg.norm(row) == 1.0 and 1.0 - c == 2.0**-53
    e1, e2, same = _one_ulp_pairs(row)
    assert lb.verification_accuracy(e1, e2, same, folds=2) == 1.0


class _Float32Output:
    """A fitted-per-fold map whose transform returns float32 rows (as a float32 pipeline would)."""

    def __init__(self, Z):
        self.Z = Z

    def fit(self, X, Y):
        return self

    def transform(self, X):
        return self.Z.astype(np.float32)


def test_verification_takes_the_norm_of_a_float32_map_output_in_float64():
    """Mapped rows [1, 2^-12] are exact in float32, where 1 + 2^-24 rounds to 1 (norm 1, distance 0,
    tied with the row [1, 0]); in float64 the norm is sqrt(1 + 2^-24) and the distance is positive."""
    Z = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 2.0**-12], [1.0, 2.0**-12]] * 2)
    assert np.linalg.norm(Z[2].astype(np.float32)) == 1.0
    assert 1.0 - 1.0 / np.linalg.norm(Z[2]) > 0.0
    e1, e2, same = _one_ulp_pairs([1.0, 0.0])
    assert lb.verification_accuracy(e1, e2, same, folds=2, mapping=_Float32Output(Z)) == 1.0


class _Remembering:
    """An estimator that keeps what it was fitted on in a list made by its constructor (as a
    warm-started model keeps its state): a fresh copy per fold must start from an empty list."""

    def __init__(self):
        self.history = []

    def fit(self, X, Y):
        self.history.append(len(X))
        self.seen_before_ = len(self.history) - 1
        _Remembering.fits.append(self)
        return self

    def transform(self, X):
        return np.asarray(X)


def test_verification_fits_an_independent_copy_per_fold_and_leaves_the_callers_map_alone():
    rng = np.random.default_rng(41)
    f1, f2, same = _pairs(rng, n_pairs=60, d=4)
    mapping = _Remembering()
    _Remembering.fits = []
    got = lb.verification_accuracy(f1, f2, same, folds=3, mapping=mapping)
    assert mapping.history == [] and not hasattr(mapping, "seen_before_")
    assert len(_Remembering.fits) == 3
    assert [m.seen_before_ for m in _Remembering.fits] == [0, 0, 0]
    assert len({id(m.history) for m in _Remembering.fits}) == 3
    assert got == lb.verification_accuracy(f1, f2, same, folds=3)   # transform is the identity


def test_verification_messages_in_full():
    f = np.ones((20, 3))
    with pytest.raises(ValueError, match=r"^emb_1 \(3 features\) and emb_2 \(4\) live in different "
                                         r"spaces; pass mapping= \(e\.g\. RidgeMap\(\)\) to map A to "
                                         r"B\.$"):
        lb.verification_accuracy(f, np.ones((20, 4)), np.ones(20, bool))
    with pytest.raises(ValueError, match=r"^a training split holds fewer than 2 matched pairs; use "
                                         r"fewer folds or more pairs\.$"):
        lb.verification_accuracy(np.eye(4), np.eye(4), [True, True, False, False], folds=2,
                                 mapping=lb.LinearMap())


def test_retrieval_of_float32_pairs_counts_the_float32_distances():
    """Two float32 inputs are ranked on the distances pairwise_distances computes for them (float32,
    no float64 copies); on this lattice, where many distances tie exactly, float32 rounding breaks
    some ties differently from float64, so the two precisions give different ranks."""
    from latentbridge.distance import pairwise_distances
    from latentbridge.evaluation import retrieval_ranks

    rng = np.random.default_rng(0)
    X = (rng.integers(-3, 4, (12, 3)) / 7).astype(np.float32)
    Y = (X[rng.permutation(12)] + rng.integers(-1, 2, (12, 3)) / 7).astype(np.float32)
    for metric in ("euclidean", "cosine"):
        for A, B in ((X, Y), (X.astype(np.float64), Y.astype(np.float64))):
            D = pairwise_distances(A, B, metric=metric)
            np.testing.assert_array_equal(retrieval_ranks(A, B, metric=metric),
                                          1 + (D < np.diag(D)[:, None]).sum(1))
    assert not np.array_equal(retrieval_ranks(X, Y, metric="euclidean"),
                              retrieval_ranks(X.astype(np.float64), Y, metric="euclidean"))


def test_retrieval_and_stitching_messages_in_full():
    F = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match=r"^X and Y must have the same number of columns to be "
                                         r"compared; got 2 and 3\. Map one space into the other "
                                         r"first, or use relative representations\.$"):
        lb.retrieval_ranks(F, np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"^y must hold integer class indices in \[0, 2\) \(the "
                                         r"rows of W_B\); map labels to indices first\.$"):
        lb.stitched_accuracy(F, [0, 1, 2], np.eye(2))
    with pytest.raises(ValueError, match=r"^the mapped features have shape \(3, 2\) but B's "
                                         r"classifier takes 3 features: the mapping must send A's "
                                         r"space to B's\.$"):
        lb.stitched_accuracy(F, [0, 1, 2], np.ones((3, 3)))


def test_stitching_checks_the_mapped_row_count_and_flattens_the_bias():
    F = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    W = np.eye(2)
    # a map that drops a row (right width, wrong length) is refused before any prediction
    with pytest.raises(ValueError, match=r"^the mapped features have shape \(2, 2\)"):
        lb.stitched_accuracy(F, [0, 1, 1], W, mapping=lambda Z: Z[:2])
    # a bias kept as a (1, C) row or a (C, 1) column (as some frameworks store it) is the same bias
    for bias in ([[0.0, 0.5]], [[0.0], [0.5]]):
        assert lb.stitched_accuracy(F, [0, 1, 1], W, b_B=bias) == 1.0
        assert lb.stitched_accuracy(F, [0, 1, 0], W, b_B=np.flip(bias)) == 1.0


# ---- read_lfw_pairs (the reader's own tests are in test_evaluation_lfw.py) ----------------------

def test_lfw_reader_names_file_and_line_of_a_bad_image_number_in_every_field(tmp_path):
    """A bad image number in each of the four image fields: the message names the file, the line,
    the field's value and the person, in full."""
    from latentbridge.evaluation import read_lfw_pairs

    good = ["1\t1", "Ann\t1\t2", "Ann\t1\tBob\t3"]
    for line, field, bad in ((2, 1, "0"), (2, 2, "-1"), (3, 1, "x"), (3, 3, "0")):
        rows = [r.split("\t") for r in good]
        rows[line - 1][field] = bad
        path = tmp_path / f"pairs-{line}-{field}.txt"
        path.write_text("\n".join("\t".join(r) for r in rows) + "\n")
        person = rows[line - 1][0 if field < 3 else 2]
        with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}, line {line}: image number "
                                             rf"'{re.escape(bad)}' of '{person}' is not a positive "
                                             rf"integer; is this an LFW pairs file\?$"):
            read_lfw_pairs(path)


def test_lfw_reader_header_message_and_encoding(tmp_path, monkeypatch):
    from latentbridge import evaluation as evaluation_module

    path = tmp_path / "pairs.txt"
    path.write_text("ten folds\nAnn 1 2\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}, line 1: the header must be "
                                         r"'n_folds n' or 'n' \(integers\); got 'ten folds'\.$"):
        evaluation_module.read_lfw_pairs(path)
    # the file is read as UTF-8 whatever the locale's encoding (a spy records what open receives)
    path.write_text("1 1\nJosé 1 2\nJosé 1 Zoë 1\n", encoding="utf-8")
    opened = []

    def spy_open(file, *args, **kwargs):
        opened.append(kwargs.get("encoding"))
        return open(file, *args, **kwargs)

    monkeypatch.setattr(evaluation_module, "open", spy_open, raising=False)
    p = evaluation_module.read_lfw_pairs(path)
    assert [codecs.lookup(e).name for e in opened] == ["utf-8"]
    assert p.second.tolist() == ["José/José_0002.jpg", "Zoë/Zoë_0001.jpg"]
