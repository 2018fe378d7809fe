"""Property-based tests of the entry points that reach the C++ distance kernel and the similarity
measures: random shapes (0, 1, 2 rows...), dtypes (float16/32/64, ints, bool, and complex/object/str
which must raise TypeError), layouts (Fortran, strided, reversed views), read-only arrays, huge and
tiny magnitudes, duplicated/collinear/constant points, NaN/inf. Every case either matches an
independent oracle (scipy cdist, numpy formulas) or raises the documented ValueError/TypeError.
LATENTBRIDGE_FUZZ_EXAMPLES scales the number of cases (see tests/_fuzz.py)."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

import latentbridge as lb
from latentbridge.compare import compare_many
from _fuzz import FUZZ, as_used, compute_dtype, first_error, matrices, truncate, with_value_error

TOL = {np.float32: 2e-4, np.float64: 1e-9}


def cosine_oracle(A, B):
    na = np.linalg.norm(A, axis=1)
    nb = np.linalg.norm(B, axis=1)
    Au = np.divide(A, na[:, None], out=np.zeros_like(A), where=na[:, None] > 0)
    Bu = np.divide(B, nb[:, None], out=np.zeros_like(B), where=nb[:, None] > 0)
    return np.clip(1.0 - Au @ Bu.T, 0.0, 2.0)


def distance_oracle(A, B, metric):
    """float64 reference distances and the absolute tolerance scale of each entry."""
    if metric == "cosine":
        return cosine_oracle(A, B), np.ones((A.shape[0], B.shape[0]))
    D = cdist(A, B, "euclidean")
    scale = np.add.outer(np.linalg.norm(A - A.mean(0), axis=1),
                         np.linalg.norm(B - A.mean(0), axis=1)) + D
    if metric == "sqeuclidean":
        return D * D, scale * scale
    return D, scale


def check_distances(got, A, B, metric, dtype, sym):
    ref, scale = distance_oracle(A, B, metric)
    if sym:
        np.fill_diagonal(ref, 0.0)     # Y = X: exact zeros, zero-norm rows included
    assert got.dtype == dtype and got.shape == ref.shape
    g = got.astype(np.float64)
    with np.errstate(over="ignore"):
        ref_rounded = ref.astype(dtype).astype(np.float64)
    over = np.isinf(ref_rounded)    # beyond the dtype's range: inf is the only answer
    assert np.array_equal(np.isinf(g), over), "inf exactly where the true value overflows"
    ok = ~over
    assert np.all(g[ok] >= 0)
    tol = TOL[dtype]
    err = np.abs(g[ok] - ref[ok])
    bound = tol * scale[ok] if metric != "cosine" else np.full(err.shape, 5 * tol)
    bound += np.abs(ref[ok]) * tol + float(np.finfo(dtype).tiny)    # + underflow to zero
    assert np.all(err <= bound), (err - bound).max()
    if sym:
        assert np.array_equal(got, got.T) and np.all(np.diag(got) == 0)


@FUZZ
@given(X=matrices(), Y=st.one_of(st.none(), matrices()),
       metric=st.sampled_from(("euclidean", "sqeuclidean", "cosine")), n_jobs=st.sampled_from((1, 2, -1)))
def test_pairwise_distances(X, Y, metric, n_jobs):
    cases = [X] if Y is None else [X, Y]
    err = first_error(*cases)
    err = with_value_error(err, Y is not None and X.array.shape[1] != Y.array.shape[1])
    if err is not None:
        with pytest.raises(err):
            lb.pairwise_distances(X.array, None if Y is None else Y.array, metric=metric,
                                  n_jobs=n_jobs, device="cpu")
        return
    dtype = compute_dtype(*cases)
    got = lb.pairwise_distances(X.array, None if Y is None else Y.array, metric=metric,
                                n_jobs=n_jobs, device="cpu")
    A = as_used(X, dtype)
    B = A if Y is None else as_used(Y, dtype)
    check_distances(got, A, B, metric, dtype, Y is None)


@FUZZ
@given(X=matrices(bad=False, min_rows=1, min_cols=1), seed=st.integers(0, 2**32 - 1),
       k=st.integers(-4, 4), metric=st.sampled_from(("euclidean", "sqeuclidean", "cosine")))
def test_pairwise_invariances(X, seed, k, metric):
    """Permuting points permutes the matrix; 2^k scaling scales euclidean distances by exactly 2^k
    (cosine: unchanged); rigid motions preserve euclidean distances."""
    assume(X.error is None)
    rng = np.random.default_rng(seed)
    A = np.ascontiguousarray(X.array, dtype=np.float64)
    D = lb.pairwise_distances(A, metric=metric)
    perm = rng.permutation(A.shape[0])
    Dp = lb.pairwise_distances(A[perm], metric=metric)
    scale = np.abs(D).max(initial=0.0)
    np.testing.assert_allclose(Dp, D[np.ix_(perm, perm)], rtol=1e-9, atol=1e-9 * scale + 1e-15)
    big = np.max(np.abs(A), initial=0.0)
    if 1e-100 < big < 1e100:
        Ds = lb.pairwise_distances(np.ldexp(A, k), metric=metric)
        expect = D if metric == "cosine" else np.ldexp(D, k * (2 if metric == "sqeuclidean" else 1))
        np.testing.assert_allclose(Ds, expect, rtol=1e-12, atol=0)
    if metric == "euclidean" and A.shape[1] > 0:
        Q = np.linalg.qr(rng.standard_normal((A.shape[1], A.shape[1])))[0]
        t = rng.standard_normal(A.shape[1]) * big
        Dr = lb.pairwise_distances(A @ Q + t, metric=metric)
        np.testing.assert_allclose(Dr, D, rtol=1e-7, atol=1e-7 * (scale + big))


# ---- similarity measures -------------------------------------------------------------------------

def hsic_biased(K, L):
    n = K.shape[0]
    H = np.eye(n) - 1.0 / n
    return np.trace(K @ H @ L @ H) / (n - 1) ** 2


def hsic_unbiased(K, L):
    n = K.shape[0]
    K, L = K.copy(), L.copy()
    np.fill_diagonal(K, 0)
    np.fill_diagonal(L, 0)
    one = np.ones(n)
    return (np.trace(K @ L) + one @ K @ one * (one @ L @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ K @ L @ one) / (n * (n - 3))


def cka_oracle(A, B, kernel, debiased, sigma):
    def gram(Z):
        if kernel == "linear":
            Zc = Z - Z.mean(0)
            return Zc @ Zc.T
        D2 = cdist(Z, Z, "sqeuclidean")
        if sigma is None:
            d = np.sqrt(D2[np.triu_indices(len(Z), 1)])
            d = d[d > 0]
            s = np.median(d) if d.size else 1.0
        else:
            s = sigma
        return np.exp(-D2 / (2 * s * s))

    h = hsic_unbiased if debiased else hsic_biased
    K, L = gram(A), gram(B)
    xy, xx, yy = h(K, L), h(K, K), h(L, L)
    # size of the HSIC terms that rounding alone produces, relative to the Grams' magnitude
    noise = 1e-9 * max(np.sum(K * K), np.sum(L * L)) / (len(K) - 1) ** 2
    return xy, xx, yy, noise


def constant(case):
    V = case.values
    return V is not None and V.shape[0] > 0 and not (V != V[:1]).any()


@FUZZ
@given(X=matrices(), Y=matrices(), kernel=st.sampled_from(("linear", "rbf")),
       debiased=st.booleans(), sigma=st.sampled_from((None, None, 0.5, 3.0)), n_rows=st.integers(0, 9))
def test_cka(X, Y, kernel, debiased, sigma, n_rows):
    truncate(X, n_rows), truncate(Y, n_rows)
    call = lambda: lb.cka(X.array, Y.array, kernel=kernel, debiased=debiased, sigma=sigma)
    err = first_error(X, Y)
    err = with_value_error(err, (X.array.shape[0] != Y.array.shape[0]
                        or X.array.shape[0] < (4 if debiased else 2) or constant(X) or constant(Y)))
    if err is not None:
        with pytest.raises(err):
            call()
        return
    A, B = as_used(X, np.float64), as_used(Y, np.float64)
    if kernel == "rbf" and sigma is not None:   # a fixed sigma acts on the data's own scale
        assume(max(np.abs(A).max(), np.abs(B).max()) < 1e10)
    xy, xx, yy, noise = cka_oracle(A, B, kernel, debiased, sigma)
    rel = max(abs(xy), abs(xx), abs(yy))
    if xx <= max(1e-9 * rel, noise) or yy <= max(1e-9 * rel, noise) or not np.isfinite(rel):
        # degenerate to rounding (e.g. an RBF Gram matrix of ones): either a ValueError or a value
        try:
            v = call()
        except ValueError:
            return
        assert np.isfinite(v)
        return
    expect = xy / np.sqrt(xx * yy)
    got = call()
    assert isinstance(got, float)
    assert abs(got - expect) <= 1e-6 + 1e-6 * abs(expect), (got, expect)
    if not debiased:
        assert -1e-9 <= got <= 1 + 1e-9


@FUZZ
@given(X=matrices(bad=False, min_rows=4, min_cols=1, max_rows=12),
       Y=matrices(bad=False, min_rows=4, min_cols=1, max_rows=12),
       kernel=st.sampled_from(("linear", "rbf")), seed=st.integers(0, 100))
def test_minibatch_cka_single_batch(X, Y, kernel, seed):
    """One batch holding every row equals the debiased CKA of the whole data."""
    n = min(X.array.shape[0], Y.array.shape[0])
    truncate(X, n), truncate(Y, n)
    if X.error or Y.error or constant(X) or constant(Y):
        with pytest.raises(ValueError):
            lb.minibatch_cka(X.array, Y.array, batch_size=64, kernel=kernel, random_state=seed)
        return
    A, B = as_used(X, np.float64)[:n], as_used(Y, np.float64)[:n]
    xy, xx, yy, noise = cka_oracle(A, B, kernel, True, None)
    tiny = max(1e-9 * max(abs(xy), abs(xx), abs(yy)), noise)
    try:
        got = lb.minibatch_cka(X.array, Y.array, batch_size=64, kernel=kernel, random_state=seed)
    except ValueError:
        assert xx <= tiny or yy <= tiny
        return
    if xx > tiny and yy > tiny:
        expect = xy / np.sqrt(xx * yy)
        assert abs(got - expect) <= 1e-6 + 1e-6 * abs(expect)


def centred_rank(case):
    """Numerical rank of the centred float64 values (the SVD tolerance rule of the CCA family:
    singular values above max(S) * max(shape) * eps)."""
    A = case.values - case.values.mean(axis=0)
    S = np.linalg.svd(A, compute_uv=False)
    return int(np.sum(S > S.max(initial=0.0) * max(A.shape) * np.finfo(np.float64).eps))


def pwcca_degenerate(X, Y):
    """rank(X_c) + rank(Y_c) > n - 1: some canonical correlations are 1 whatever the data, and
    pwcca refuses."""
    return centred_rank(X) + centred_rank(Y) > X.values.shape[0] - 1


@FUZZ
@given(X=matrices(), Y=matrices(), threshold=st.sampled_from((0.5, 0.99, 1.0)),
       seed=st.integers(0, 2**32 - 1), fn=st.sampled_from(("svcca", "pwcca")))
def test_cca_family(X, Y, threshold, seed, fn):
    """Result in [0, 1]; invariant to rotations and scaling of either space; (X, X) gives 1."""
    f = (lambda a, b: lb.svcca(a, b, threshold=threshold)) if fn == "svcca" else lb.pwcca
    err = first_error(X, Y)
    err = with_value_error(err, (X.array.shape[0] != Y.array.shape[0] or X.array.shape[0] < 2
                        or constant(X) or constant(Y)))
    if err is None and fn == "pwcca" and pwcca_degenerate(X, Y):
        with pytest.raises(ValueError, match="pwcca needs more samples"):
            f(X.array, Y.array)
        return
    if err is not None:
        with pytest.raises(err):
            f(X.array, Y.array)
        return
    got = f(X.array, Y.array)
    assert 0.0 <= got <= 1.0
    A = as_used(X, np.float64)
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((A.shape[1], A.shape[1])))[0]
    if fn == "svcca" or A.shape[1] == 1:
        rot = f(8.0 * A @ Q, Y.array)
        assert abs(rot - got) <= 1e-6 or (fn == "svcca" and threshold < 1)
    if fn == "svcca" or not pwcca_degenerate(X, X):
        self_value = f(X.array, X.array)
        assert abs(self_value - 1.0) <= 1e-6


def knn_sets(A, k, metric):
    D = cosine_oracle(A, A) if metric == "cosine" else cdist(A, A)
    np.fill_diagonal(D, np.inf)
    order = np.argsort(D, axis=1, kind="stable")
    kth = np.take_along_axis(D, order[:, k - 1:k + 1], axis=1)
    gap_ok = np.all(kth[:, 1] - kth[:, 0] > 1e-6 * (1 + np.abs(kth[:, 0]))) if k < len(A) - 1 \
        else True
    return [set(r[:k]) for r in order], gap_ok


@FUZZ
@given(X=matrices(), Y=matrices(), k=st.integers(-1, 12), metric=st.sampled_from(("cosine", "euclidean")))
def test_mutual_knn(X, Y, k, metric):
    n = min(X.array.shape[0], Y.array.shape[0])
    truncate(X, n), truncate(Y, n)
    call = lambda: lb.mutual_knn(X.array, Y.array, k=k, metric=metric)
    err = first_error(X, Y)
    err = with_value_error(err, (n < 2 or not 1 <= k <= n - 1))
    if err is not None:
        with pytest.raises(err):
            call()
        return
    got = call()
    assert 0.0 <= got <= 1.0
    assert lb.mutual_knn(X.array, X.array, k=k, metric=metric) == 1.0
    A, B = as_used(X, np.float64)[:n], as_used(Y, np.float64)[:n]
    sa, ok_a = knn_sets(A, k, metric)
    sb, ok_b = knn_sets(B, k, metric)
    if ok_a and ok_b:     # no tie at the k-th neighbour: the answer is unique
        expect = np.mean([len(a & b) / k for a, b in zip(sa, sb)])
        assert abs(got - expect) < 1e-12


@FUZZ
@given(X=matrices(), anchors=matrices(), similarity=st.sampled_from(("cosine", "euclidean")))
def test_relative_representation(X, anchors, similarity):
    err = first_error(X, anchors)
    err = with_value_error(err, X.array.shape[1] != anchors.array.shape[1])
    if err is not None:
        with pytest.raises(err):
            lb.relative_representation(X.array, anchors.array, similarity=similarity)
        return
    dtype = compute_dtype(X, anchors)
    got = lb.relative_representation(X.array, anchors.array, similarity=similarity)
    assert got.dtype == dtype and got.shape == (X.array.shape[0], anchors.array.shape[0])
    A, B = as_used(X, dtype), as_used(anchors, dtype)
    metric = "cosine" if similarity == "cosine" else "euclidean"
    check_distances((1.0 - got if similarity == "cosine" else -got).astype(dtype), A, B, metric,
                    dtype, False)


@FUZZ
@given(X=matrices(), Y=matrices(), metric=st.sampled_from(("cosine", "euclidean")),
       k=st.integers(-1, 12), seed=st.integers(0, 2**32 - 1))
def test_retrieval(X, Y, metric, k, seed):
    """mrr and top_k_accuracy against a brute-force rank count; a row permutation of both sides
    leaves them unchanged."""
    n = min(X.array.shape[0], Y.array.shape[0])
    truncate(X, n), truncate(Y, n)
    err = first_error(X, Y)
    err = with_value_error(err, X.array.shape[1] != Y.array.shape[1])
    if err is not None:
        with pytest.raises(err):
            lb.mrr(X.array, Y.array, metric=metric)
        return
    if k < 1:
        with pytest.raises(ValueError):
            lb.top_k_accuracy(X.array, Y.array, k=k, metric=metric)
        return
    dtype = compute_dtype(X, Y)
    got_mrr = lb.mrr(X.array, Y.array, metric=metric)
    got_top = lb.top_k_accuracy(X.array, Y.array, k=k, metric=metric)
    A, B = as_used(X, dtype)[:n], as_used(Y, dtype)[:n]
    D = cosine_oracle(A, B) if metric == "cosine" else cdist(A, B)
    own = np.diag(D)
    scale = 1.0 if metric == "cosine" else D.max(initial=0.0)
    margin = (1e-4 if dtype == np.float32 else 1e-9) * (scale + 1e-300)
    lo = 1 + np.count_nonzero(D < own[:, None] - margin, axis=1)   # surely closer
    hi = 1 + np.count_nonzero(D < own[:, None] + margin, axis=1)   # possibly closer (rounding)
    # identical candidates (bitwise equal rows) are never "strictly closer" than the match
    assert np.mean(1 / hi) - 1e-12 <= got_mrr <= np.mean(1 / lo) + 1e-12
    assert np.mean(hi <= k) - 1e-12 <= got_top <= np.mean(lo <= k) + 1e-12
    dup = np.array([[np.array_equal(B[i], B[j]) for j in range(n)] for i in range(n)])
    if dup.all(axis=1).all():
        assert got_mrr == 1.0
    perm = np.random.default_rng(seed).permutation(n)
    if margin and np.all(lo == hi):
        assert lb.mrr(X.array[perm], Y.array[perm], metric=metric) == pytest.approx(got_mrr)


@FUZZ
@given(reps=st.lists(matrices(max_rows=8), min_size=0, max_size=4),
       metrics=st.lists(st.sampled_from(("cka", "svcca", "pwcca", "mutual_knn")), min_size=1,
                        max_size=2, unique=True), n_rows=st.integers(0, 8))
def test_compare_many(reps, metrics, n_rows):
    """compare_many equals the pairwise calls; bad input raises before any work."""
    for c in reps:
        truncate(c, n_rows)
    named = {f"m{i}": c.array for i, c in enumerate(reps)}
    opts = {"mutual_knn": {"k": 1}}
    err = first_error(*reps) if reps else None
    err = with_value_error(err, (len(reps) < 2 or min(c.array.shape[0] for c in reps) < 2
                                 or len({c.array.shape[0] for c in reps}) != 1))
    err = with_value_error(err, any(constant(c) for c in reps) and set(metrics) - {"mutual_knn"})
    err = with_value_error(err, err is None and "pwcca" in metrics and any(
        pwcca_degenerate(a, b) for a in reps for b in reps if a is not b))
    if err is not None:
        with pytest.raises(err):
            compare_many(named, metrics=metrics, progress=False, metric_options=opts, on_error="raise")
        return
    res = compare_many(named, metrics=metrics, progress=False, metric_options=opts)
    from latentbridge.compare import compare_pair
    for m in metrics:
        mat = res[m]
        for i in range(len(reps)):
            for j in range(len(reps)):
                if i != j:
                    ref = compare_pair(reps[i].array, reps[j].array, m, opts.get(m))
                    assert mat[i, j] == pytest.approx(ref, rel=1e-9, abs=1e-12)


@FUZZ
@given(X=matrices(bad=False, min_rows=4, min_cols=1, structure="random"),
       Y=matrices(bad=False, min_rows=4, min_cols=1, structure="random"),
       kx=st.integers(-900, 900), ky=st.integers(-900, 900),
       fn=st.sampled_from(("cka", "cka_debiased", "cka_rbf", "svcca", "pwcca", "minibatch")))
def test_similarity_scale_invariance(X, Y, kx, ky, fn):
    """The scale-invariant measures give the same value after scaling each representation by any
    power of two that keeps it finite (2^+-900: far beyond where float64 squares overflow)."""
    n = min(X.array.shape[0], Y.array.shape[0])
    truncate(X, n), truncate(Y, n)
    if X.error or Y.error:
        return
    A, B = as_used(X, np.float64), as_used(Y, np.float64)
    f = {
        "cka": lb.cka,
        "cka_debiased": lambda a, b: lb.cka(a, b, debiased=True),
        "cka_rbf": lambda a, b: lb.cka(a, b, kernel="rbf"),
        "svcca": lb.svcca,
        "pwcca": lb.pwcca,
        "minibatch": lambda a, b: lb.minibatch_cka(a, b, batch_size=8, random_state=0),
    }[fn]
    try:
        ref = f(A, B)
    except ValueError:
        with pytest.raises(ValueError):
            f(np.ldexp(A, kx), np.ldexp(B, ky))
        return
    assert f(np.ldexp(A, kx), np.ldexp(B, ky)) == pytest.approx(ref, rel=1e-7, abs=1e-9)


def knn_sets_kdtree(A, k, metric):
    """Exact neighbour sets of distinct continuous points from scipy's kd-tree (cosine: the
    Euclidean order of the unit vectors), and whether no k-th neighbour is (nearly) tied."""
    from scipy.spatial import cKDTree

    if metric == "cosine":
        A = A / np.linalg.norm(A, axis=1, keepdims=True)
    dist, idx = cKDTree(A).query(A, k + 2)          # column 0: the point itself
    gap_ok = bool(np.all(dist[:, k + 1] - dist[:, k] > 1e-9 * (1 + dist[:, k])))
    return [set(r[1:k + 1]) for r in idx], gap_ok


@settings(parent=FUZZ, max_examples=max(2, FUZZ.max_examples // 12))  # 2100 x 2100 matrices
@given(n=st.integers(2049, 2150), d=st.integers(1, 3), ties=st.booleans(),
       metric=st.sampled_from(("cosine", "euclidean")), k=st.integers(1, 6),
       seed=st.integers(0, 2**32 - 1))
def test_row_blocks_beyond_2048(n, d, ties, metric, k, seed):
    """mutual_knn and retrieval_ranks work in blocks of 2048 query rows: sizes just above that,
    on continuous or integer-grid (tie-heavy) data, against brute-force oracles on the full matrix."""
    rng = np.random.default_rng(seed)
    if ties:
        X = rng.integers(-3, 4, size=(n, d)).astype(np.float64)
        Y = X + rng.integers(-1, 2, size=(n, d))
    else:
        X = rng.standard_normal((n, d))
        Y = X + 0.3 * rng.standard_normal((n, d))
    # retrieval: the rank lies between the counts of surely and possibly closer candidates
    D = cosine_oracle(X, Y) if metric == "cosine" else cdist(X, Y)
    own = np.diag(D)[:, None]
    margin = 1e-9 * (1.0 if metric == "cosine" else D.max())
    lo = 1 + np.count_nonzero(D < own - margin, axis=1)
    hi = 1 + np.count_nonzero(D < own + margin, axis=1)
    ranks = lb.retrieval_ranks(X, Y, metric=metric)
    assert np.all((lo <= ranks) & (ranks <= hi))
    # mutual kNN: exact on continuous data whose k-th neighbours are not tied; invariants always
    got = lb.mutual_knn(X, Y, k=k, metric=metric)
    assert 0.0 <= got <= 1.0
    if not ties:
        sa, ok_a = knn_sets_kdtree(X, k, metric)
        sb, ok_b = knn_sets_kdtree(Y, k, metric)
        if ok_a and ok_b:
            assert abs(got - np.mean([len(a & b) / k for a, b in zip(sa, sb)])) < 1e-12
