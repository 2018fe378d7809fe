"""Property-based tests of the diffusion-map entry points (DiffusionMaps fit/transform/
inverse_transform, precisions_from_neighborhoods/jacobians, NetworkTransformation): random shapes
(0, 1, 2, 3 rows...), neighbour counts larger than n, huge/tiny magnitudes, duplicated/collinear/
constant points, NaN/inf, every dtype and layout, read-only arrays, mis-shaped or invalid precisions
and bad parameters. Every case matches an independent numpy oracle (the k-NN graph and Algorithm 1
written out densely, numpy pinv, the Nystrom formula) or raises ValueError/TypeError; the documented
DiffusionMapsWarning subclasses are allowed. LATENTBRIDGE_FUZZ_EXAMPLES scales the number of cases
(see tests/_fuzz.py)."""

import warnings

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import latentbridge as lb
from latentbridge.diffusion import DiffusionMapsWarning
from _fuzz import FUZZ, as_used, first_error, matrices, with_value_error
from test_diffusion import _dense_spectrum

EIG_TOL = 1e-7


def quiet(fn, *args, **kw):
    """Call fn with the documented diffusion-map warnings silenced (any other warning errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiffusionMapsWarning)
        return fn(*args, **kw)


def sqdist(A, B):
    """Squared distances summed coordinate by coordinate (the C++ kernel's rounding)."""
    out = np.zeros((A.shape[0], B.shape[0]))
    for t in range(A.shape[1]):
        u = A[:, t][:, None] - B[:, t][None, :]
        out += u * u
    return out


def knn_oracle(D, k, exclude_self):
    """Indices and values of the k smallest entries per row, ties broken by index."""
    n, m = D.shape
    idx = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        cols = np.arange(m)
        if exclude_self:
            cols = cols[cols != i]
        order = np.lexsort((cols, D[i, cols]))[:k]
        idx[i] = cols[order]
    return idx, np.take_along_axis(D, idx, axis=1)


def algorithm1_oracle(Y, C, k, k_eps, n_comp, epsilon, alpha):
    """Algorithm 1 on the symmetric union of the k-NN lists (Mahalanobis: all pairs, k = n - 1)."""
    n = Y.shape[0]
    if C is None:
        D = sqdist(Y, Y)
    else:
        diff = Y[None, :, :] - Y[:, None, :]
        D = np.einsum("ija,iab,ijb->ij", diff, C, diff) + np.einsum("ija,jab,ijb->ij", diff, C, diff)
    idx, d2 = knn_oracle(D, k, True)
    if epsilon == "auto":
        epsilon = np.median(d2[:, k_eps - 1])
    A = np.zeros((n, n), dtype=bool)
    A[np.repeat(np.arange(n), k), idx.ravel()] = True
    A |= A.T
    np.fill_diagonal(A, True)
    a, phi = _dense_spectrum(np.where(A, np.exp(-D / (2 * epsilon)), 0.0), alpha, n_comp)
    return epsilon, a[1 : n_comp + 1], phi, a


def simple_columns(a_all, n_comp):
    """Components whose eigenvalue is separated from its neighbours (eigenvector defined up to sign)."""
    gaps = np.abs(np.diff(a_all))
    ok = []
    for c in range(1, n_comp + 1):
        left = gaps[c - 1]
        right = gaps[c] if c < len(gaps) else np.inf
        ok.append(min(left, right) > 1e-5)
    return np.array(ok)


def assert_same_up_to_sign(got, ref, cols, tol):
    for c in np.flatnonzero(cols):
        s = np.sign(np.dot(got[:, c], ref[:, c])) or 1.0
        np.testing.assert_allclose(got[:, c], s * ref[:, c], atol=tol, rtol=0)


EPSILONS = st.one_of(st.just("auto"), st.just("auto"), st.sampled_from((1e-3, 0.5, 2.0, 1e6)))
BAD_EPSILONS = st.sampled_from((0.0, -1.0, np.nan, np.inf, "median", None, True, [1.0]))


@st.composite
def dmap_params(draw):
    # mostly valid combinations (so that most cases reach the oracle), sometimes anything
    n_neighbors = draw(st.one_of(st.none(), st.integers(1, 5), st.integers(1, 12)))
    k_eps = draw(st.one_of(st.integers(1, min(2, n_neighbors or 2)), st.integers(1, min(2, n_neighbors or 2)),
                           st.integers(1, 12)))
    eps = draw(st.one_of(EPSILONS, BAD_EPSILONS)) if draw(st.integers(0, 15)) == 0 else draw(EPSILONS)
    alpha = draw(st.sampled_from((0.0, 0.5, 1.0) * 6 + (-1.0, np.nan, 1e6)))
    metric = draw(st.sampled_from(("euclidean",) * 14 + ("cosine", None)))
    return dict(n_components=draw(st.one_of(st.integers(1, 2), st.integers(1, 10))),
                n_neighbors=n_neighbors, k_epsilon=k_eps, epsilon=eps, alpha=alpha, metric=metric)


def param_error(p):
    """True when the parameters alone are invalid: ValueError, or TypeError for an epsilon that is
    neither a string nor a real number (see epsilon_type_error)."""
    eps = p["epsilon"]
    bad = not (eps == "auto" if isinstance(eps, str) else
               (isinstance(eps, float) and np.isfinite(eps) and eps > 0))
    bad |= p["metric"] not in ("euclidean", "mahalanobis")
    bad |= not (np.isfinite(p["alpha"]) and p["alpha"] >= 0)
    bad |= p["n_neighbors"] is not None and p["k_epsilon"] > p["n_neighbors"]
    return bad


def epsilon_type_error(p, err):
    """``err`` widened to TypeError when epsilon has the wrong type (None, a bool, a list):
    _validation's rule, wrong type -> TypeError, wrong value -> ValueError."""
    eps = p["epsilon"]
    if isinstance(eps, str) or (isinstance(eps, float) and not isinstance(eps, bool)):
        return err
    return TypeError if err is None else (TypeError, ValueError)


def fit_error(n, p):
    k = n - 1 if p["n_neighbors"] is None else p["n_neighbors"]
    return n < 2 or k > n - 1 or p["k_epsilon"] > k or p["n_components"] > n - 1


@FUZZ
@given(Y=st.one_of(matrices(max_rows=10, max_cols=4, min_rows=3, min_cols=1, bad=False),
                  matrices(max_rows=10, max_cols=4)), p=dmap_params(), seed=st.integers(0, 2**31))
def test_fit(Y, p, seed):
    """fit matches Algorithm 1 on the k-NN graph written out in numpy, or raises."""
    dm = lb.DiffusionMaps(**p, random_state=seed)
    n = Y.array.shape[0]
    err = first_error(Y)
    err = with_value_error(err, param_error(p) or (Y.error is None and fit_error(n, p)))
    err = epsilon_type_error(p, err)
    if err is not None:
        with pytest.raises(err):
            quiet(dm.fit, Y.array)
        return
    A = as_used(Y, np.float64)
    k = n - 1 if p["n_neighbors"] is None else p["n_neighbors"]
    D = sqdist(A, A)
    np.fill_diagonal(D, np.inf)
    if not np.isfinite(np.where(np.isinf(D), 0, D)).all():
        with pytest.raises(ValueError, match="overflow"):
            quiet(dm.fit, Y.array)
        return
    kth = np.sort(D, axis=1)[:, p["k_epsilon"] - 1]
    if p["epsilon"] == "auto" and not np.median(kth) > 0:
        # duplicates (or distances below 1e-154): never a silent epsilon of 0
        with pytest.raises(ValueError, match="epsilon='auto' is 0"):
            quiet(dm.fit, Y.array)
        return
    if p["alpha"] > 100:
        try:
            quiet(dm.fit, Y.array)
        except ValueError as e:
            assert "alpha" in str(e)
            return
    else:
        quiet(dm.fit, Y.array)
    event("fit: compared with the oracle")
    eps, a, phi, a_all = algorithm1_oracle(A, None, k, p["k_epsilon"], p["n_components"],
                                           p["epsilon"], p["alpha"])
    L = p["n_components"]
    assert dm.embedding_.shape == (n, L) and dm.eigenvalues_.shape == (L,)
    assert np.isfinite(dm.embedding_).all() and np.isfinite(dm.eigenvalues_).all()
    np.testing.assert_allclose(dm.epsilon_, eps, rtol=1e-12)
    np.testing.assert_allclose(dm.eigenvalues_, a, atol=EIG_TOL)
    assert np.all(np.diff(dm.eigenvalues_) <= 1e-12) and np.all(dm.eigenvalues_ <= 1 + 1e-9)
    np.testing.assert_allclose(np.sqrt(np.mean(dm.embedding_**2, axis=0)), 1.0, rtol=1e-9)
    assert_same_up_to_sign(dm.embedding_, phi, simple_columns(a_all, L), 1e-4)


@st.composite
def precision_case(draw, n, m):
    """(precisions array, expected error or None, float64 values) for n points in R^m."""
    kind = draw(st.sampled_from(("good",) * 10 + ("rank1", "wrong_n", "wrong_m", "nonsym",
                                 "nan", "negdef", "zero", "flat", "complex", "object", "none")))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    r = 1 if kind == "rank1" else draw(st.integers(1, max(1, m)))
    G = rng.standard_normal((n, r, m))
    C = np.einsum("nra,nrb->nab", G, G) + 0.1 * np.eye(m)
    mag = draw(st.sampled_from((1.0, 1e-30, 1e30, 2.0**-10)))
    C = C * mag
    err = None
    if kind == "wrong_n":
        C = np.concatenate([C, C[:1]])
        err = ValueError
    elif kind == "wrong_m":
        C = np.zeros((n, m + 1, m + 1)) + np.eye(m + 1)
        err = ValueError
    elif kind == "nonsym" and m > 1:
        C[:, 0, 1] += 1.0 * mag
        err = ValueError
    elif kind == "nan" and n and m:
        C[draw(st.integers(0, n - 1)), 0, 0] = draw(st.sampled_from((np.nan, np.inf)))
        err = ValueError
    elif kind == "negdef" and m:
        C = -C
        err = ValueError
    elif kind == "zero" and n and m:
        C[0] = 0.0
        err = ValueError
    elif kind == "flat":
        C = C.reshape(n, m * m)
        err = ValueError
    elif kind == "complex":
        C = C + 0j
        err = TypeError
    elif kind == "object":
        C = C.astype(object)
        err = TypeError
    elif kind == "none":
        return None, ValueError, None
    vals = C if err is None else None
    layout = draw(st.sampled_from(("C", "F", "T")))
    if layout == "F":
        C = np.asfortranarray(C)
    elif layout == "T" and C.ndim == 3:
        C = np.ascontiguousarray(C.transpose(0, 2, 1)).transpose(0, 2, 1)
    if draw(st.booleans()):
        C.setflags(write=False)
    return C, err, vals


@FUZZ
@given(Y=st.one_of(matrices(max_rows=9, max_cols=3, min_rows=3, min_cols=1, bad=False),
                  matrices(max_rows=9, max_cols=3)), data=st.data(),
       n_neighbors=st.one_of(st.none(), st.integers(1, 10)), k_eps=st.integers(1, 3), n_comp=st.integers(1, 3))
def test_fit_mahalanobis(Y, data, n_neighbors, k_eps, n_comp):
    n, m = Y.array.shape
    C, cerr, Cv = data.draw(precision_case(n, m))
    p = dict(n_components=n_comp, n_neighbors=n_neighbors, k_epsilon=k_eps, epsilon="auto", alpha=1.0,
             metric="mahalanobis")
    dm = lb.DiffusionMaps(**p, random_state=0)
    err = first_error(Y)
    if err is None and cerr is not None and n > 0 and m > 0:
        err = cerr
    elif err is None and cerr is not None:
        err = (TypeError, ValueError)
    err = with_value_error(err, param_error(p) or (Y.error is None and fit_error(n, p)))
    if err is not None:
        with pytest.raises(err):
            quiet(dm.fit, Y.array, precisions=C)
        return
    A = as_used(Y, np.float64)
    diff = A[None, :, :] - A[:, None, :]
    with np.errstate(over="ignore", invalid="ignore"):
        D = np.einsum("ija,iab,ijb->ij", diff, Cv, diff) * 2
    if not np.isfinite(D).all() or np.abs(D).max() > 1e300:
        try:
            quiet(dm.fit, Y.array, precisions=C)
        except ValueError as e:
            assert "overflow" in str(e)
        return
    np.fill_diagonal(D, np.inf)
    kth = np.sort(D, axis=1)[:, k_eps - 1]
    if not np.median(kth) > 1e-290:
        # zero: duplicates; below 1e-290: the quadratic forms underflow in some rounding order
        try:
            quiet(dm.fit, Y.array, precisions=C)
        except ValueError as e:
            assert "epsilon='auto' is 0" in str(e)
        return
    quiet(dm.fit, Y.array, precisions=C)
    assert dm.embedding_.shape == (n, n_comp) and np.isfinite(dm.embedding_).all()
    assert np.all(dm.eigenvalues_ <= 1 + 1e-9) and np.all(np.diff(dm.eigenvalues_) <= 1e-12)
    k = n - 1 if n_neighbors is None else n_neighbors
    event("mahalanobis: fitted")
    if k == n - 1:      # every pair is a candidate: the oracle is exact
        event("mahalanobis: compared with the oracle")
        eps, a, phi, a_all = algorithm1_oracle(A, Cv, k, k_eps, n_comp, "auto", 1.0)
        np.testing.assert_allclose(dm.epsilon_, eps, rtol=1e-8)
        np.testing.assert_allclose(dm.eigenvalues_, a, atol=1e-6)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(3)
    Y = rng.standard_normal((40, 3))
    out = {}
    for nn in (5, None):
        for alpha in (0.0, 1.0):
            out[nn, alpha] = (Y, quiet(lb.DiffusionMaps(3, n_neighbors=nn, k_epsilon=4, alpha=alpha,
                                                        random_state=0).fit, Y))
    return out


def nystrom_oracle(dm, Ytr, Q, k, alpha):
    D = sqdist(Q, Ytr)
    idx, d2 = knn_oracle(D, k, False)
    Dtr = sqdist(Ytr, Ytr)
    n = Ytr.shape[0]
    kk = n - 1 if dm.n_neighbors is None else dm.n_neighbors
    ti, _ = knn_oracle(np.where(np.eye(n, dtype=bool), np.inf, Dtr), kk, True)
    Adj = np.zeros((n, n), dtype=bool)
    Adj[np.repeat(np.arange(n), kk), ti.ravel()] = True
    Adj |= Adj.T
    np.fill_diagonal(Adj, True)
    p = np.where(Adj, np.exp(-Dtr / (2 * dm.epsilon_)), 0).sum(1)
    logw = -(d2 - d2[:, :1]) / (2 * dm.epsilon_) - alpha * np.log(p[idx])
    W = np.exp(logw - logw.max(1, keepdims=True))
    M = W / W.sum(1, keepdims=True)
    return np.einsum("nk,nkc->nc", M, dm.embedding_[idx]) / dm.eigenvalues_


@FUZZ
@given(Q=st.one_of(matrices(d=3, max_rows=6), matrices(max_rows=6, max_cols=4)), nn=st.sampled_from((5, None)), alpha=st.sampled_from((0.0, 1.0)))
def test_transform(fitted, Q, nn, alpha):
    Y, dm = fitted[nn, alpha]
    err = with_value_error(first_error(Q), Q.error is None and Q.array.shape[1] != 3)
    if err is not None:
        with pytest.raises(err):
            quiet(dm.transform, Q.array)
        return
    Qv = as_used(Q, np.float64)
    if np.abs(Qv).max() > 1e150:
        with pytest.raises(ValueError, match="overflow"):
            quiet(dm.transform, Q.array)
        return
    event("transform: compared with the oracle")
    got = quiet(dm.transform, Q.array)
    k = Y.shape[0] if nn is None else nn
    ref = nystrom_oracle(dm, Y, Qv, k, alpha)
    assert got.shape == ref.shape and np.isfinite(got).all()
    np.testing.assert_allclose(got, ref, rtol=1e-7, atol=1e-7 * np.abs(ref).max())
    # a training point is (almost) mapped onto its own coordinates when the kernel is all-pairs
    if nn is None:
        back = quiet(dm.transform, Y[:3])
        np.testing.assert_allclose(back, dm.embedding_[:3], atol=1e-6)


@FUZZ
@given(E=st.one_of(matrices(d=3, max_rows=6), matrices(max_rows=6, max_cols=4)))
def test_inverse_transform(fitted, E):
    Y, dm = fitted[5, 1.0]
    err = with_value_error(first_error(E), E.error is None and E.array.shape[1] != 3)
    if err is not None:
        with pytest.raises(err):
            dm.inverse_transform(E.array)
        return
    Ev = as_used(E, np.float64)
    if np.abs(Ev).max() > 1e150:
        with pytest.raises(ValueError, match="overflow"):
            dm.inverse_transform(E.array)
        return
    event("inverse_transform: compared with the oracle")
    got = dm.inverse_transform(E.array)
    X = dm.embedding_
    idx, _ = knn_oracle(sqdist(Ev, X), 4, False)
    dist = np.linalg.norm(Ev[:, None, :] - X[idx], axis=2)
    w = np.where(dist[:, :1] <= 1e-12 * max(1.0, np.abs(X).max()),
                 (np.arange(4) == 0).astype(float)[None, :], 1.0 / np.maximum(dist, 1e-300))
    w /= w.sum(1, keepdims=True)
    ref = np.einsum("nk,nkc->nc", w, Y[idx])
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9 * np.abs(Y).max())
    # the interpolant passes through the training points
    np.testing.assert_allclose(dm.inverse_transform(X[:4]), Y[:4], rtol=0, atol=1e-12)


@st.composite
def stacks(draw, min_mid=0):
    """A Case whose array is 3-D (n, q, m), built from a (n, q*m) matrices() case."""
    n = draw(st.one_of(st.integers(1, 5), st.integers(0, 5)))
    q = draw(st.one_of(st.integers(2, 4), st.integers(min_mid, 4)))
    m = draw(st.one_of(st.integers(1, 3), st.integers(0, 3)))
    case = draw(st.one_of(matrices(n, q * m, bad=False), matrices(n, q * m)))
    A = case.array.reshape(n, q, m)
    if draw(st.booleans()):
        A = np.asfortranarray(A)
    case.array = A
    if case.values is not None:
        case.values = case.values.reshape(n, q, m)
    return case


def pinv_oracle(S, tol):
    w, V = np.linalg.eigh(S)
    w = np.maximum(w, 0)
    keep = w > tol * w[-1]
    return (V[:, keep] / w[keep]) @ V[:, keep].T, w


def check_factors(G, C, max_rank):
    """factors=True: G (n, r, m), r <= max_rank, with G_i^T G_i the dense precision C_i."""
    n, m, _ = C.shape
    assert G.dtype == np.float64 and G.shape[0] == n and G.shape[2] == m
    assert 1 <= G.shape[1] <= max(1, max_rank)
    gram = np.einsum("nra,nrb->nab", G, G)
    for g, c in zip(gram, C):
        np.testing.assert_allclose(g, c, rtol=1e-10, atol=1e-10 * np.abs(c).max())


@FUZZ
@given(N=stacks(), ridge=st.sampled_from((0.0,) * 4 + (0.1,) * 3 + (-1.0, np.nan)),
       rank=st.sampled_from((None,) * 6 + (1, 2, 0)),
       k=st.integers(-6, 6))
def test_precisions_from_neighborhoods(N, ridge, rank, k):
    n, q, m = N.array.shape
    err = N.error
    bad = n == 0 or q * m == 0 or q < 2 or not ridge >= 0 or (ridge > 0 and rank is not None)
    bad |= rank is not None and not 1 <= rank <= m
    err = with_value_error(err, bad)
    call = lambda X: lb.precisions_from_neighborhoods(X, ridge=ridge, rank=rank)
    if err is not None:
        with pytest.raises(err):
            call(N.array)
        return
    V = N.values
    D = V - V.mean(1, keepdims=True)
    s = np.abs(D).max(axis=(1, 2))
    if (s[s > 0] < 1e-140).any():    # the precision ~ 1/s^2 is beyond float64
        with pytest.raises(ValueError, match="overflows"):
            call(N.array)
        return
    event("neighborhoods: computed")
    C = call(N.array)
    assert C.shape == (n, m, m) and C.dtype == np.float64 and np.isfinite(C).all()
    assert np.array_equal(C, C.transpose(0, 2, 1))
    for i in range(n):
        si = s[i] if s[i] > 0 else 1.0
        Ds = D[i] / si
        cov = Ds.T @ Ds / (q - 1)
        scale = np.abs(C[i]).max()
        w = np.linalg.eigvalsh(C[i])
        assert w[0] >= -1e-9 * max(scale, 1e-300)
        if ridge > 0:
            tr = np.trace(cov)
            ref = np.linalg.inv(cov + ridge * tr * np.eye(m)) / si / si if tr > 0 else np.zeros((m, m))
            np.testing.assert_allclose(C[i], ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max())
        elif rank is None:
            ref, wc = pinv_oracle(cov, max(q, m) * np.finfo(float).eps)
            if wc[-1] > 0 and (wc[wc > 0].min() if (wc > 0).any() else 0) > 1e-6 * wc[-1] and \
                    (wc <= 1e-6 * wc[-1]).sum() == (wc <= max(q, m) * 2.3e-16 * wc[-1]).sum():
                ref = ref / si / si
                np.testing.assert_allclose(C[i], ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())
    # scaling the samples by 2^k divides the precisions by exactly 4^k
    if 1e-100 < np.abs(V).max() < 1e100 and (s[s > 0] > 1e-100).all():
        np.testing.assert_array_equal(call(np.ldexp(V, k)), np.ldexp(C, -2 * k))
    if ridge > 0:
        with pytest.raises(ValueError, match="not ridge"):
            lb.precisions_from_neighborhoods(N.array, ridge=ridge, factors=True)
    else:
        check_factors(lb.precisions_from_neighborhoods(N.array, rank=rank, factors=True), C,
                      min(q - 1, m))


@FUZZ
@given(J=stacks(), rcond=st.sampled_from((None,) * 6 + (1e-3, 1e-3, -0.1, 1.0, np.nan)), k=st.integers(-6, 6))
def test_precisions_from_jacobians(J, rcond, k):
    n, m, d = J.array.shape
    bad = n == 0 or m * d == 0 or (rcond is not None and not 0 <= rcond < 1)
    err = with_value_error(J.error, bad)
    call = lambda X: lb.precisions_from_jacobians(X, rcond=rcond)
    if err is not None:
        with pytest.raises(err):
            call(J.array)
        return
    V = J.values
    s = np.abs(V).max(axis=(1, 2))
    if (s[s > 0] < 1e-140).any():
        with pytest.raises(ValueError, match="overflows"):
            call(J.array)
        return
    event("jacobians: computed")
    C = call(J.array)
    assert C.shape == (n, m, m) and np.isfinite(C).all() and np.array_equal(C, C.transpose(0, 2, 1))
    for i in range(n):
        si = s[i] if s[i] > 0 else 1.0
        sv = np.linalg.svd(V[i] / si, compute_uv=False)
        if sv.size and sv[0] > 0 and sv[-1] > 1e-4 * sv[0] and m <= d:   # well conditioned, full rank
            ref = np.linalg.inv((V[i] / si) @ (V[i] / si).T) / si / si
            np.testing.assert_allclose(C[i], ref, rtol=1e-7, atol=1e-7 * np.abs(ref).max())
        if sv.size and sv[0] == 0:
            assert not C[i].any()
    if 1e-100 < np.abs(V).max() < 1e100 and (s[s > 0] > 1e-100).all():
        np.testing.assert_array_equal(call(np.ldexp(V, k)), np.ldexp(C, -2 * k))
    check_factors(lb.precisions_from_jacobians(J.array, rcond=rcond, factors=True), C, min(m, d))


# ---- invariances -------------------------------------------------------------------------------

@st.composite
def cloud(draw):
    n = draw(st.integers(8, 40))
    d = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.standard_normal((n, d))


@FUZZ
@given(Y=cloud(), seed=st.integers(0, 2**32 - 1), nn=st.sampled_from((None, 3, 6)),
       log_scale=st.sampled_from((-30, -3, 0, 3, 30)))
def test_invariances(Y, seed, nn, log_scale):
    """Permuting the points permutes the embedding (per-component sign for simple eigenvalues);
    rigid motions and uniform scaling keep the eigenvalues with epsilon='auto'; a seed fixes the
    result bit for bit."""
    n, d = Y.shape
    nn = None if nn is None else min(nn, n - 1)
    L = min(3, n - 2)
    make = lambda: lb.DiffusionMaps(L, n_neighbors=nn, k_epsilon=min(3, nn or 3), random_state=seed)
    base = quiet(make().fit, Y)
    a_all = np.concatenate([[1.0], base.eigenvalues_, [-np.inf]])
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    pm = quiet(make().fit, Y[perm])
    np.testing.assert_allclose(pm.eigenvalues_, base.eigenvalues_, atol=1e-9)
    assert_same_up_to_sign(pm.embedding_, base.embedding_[perm], simple_columns(a_all, L), 1e-5)
    Qm = np.linalg.qr(rng.standard_normal((d, d)))[0]
    c = 10.0**log_scale
    moved = c * (Y @ Qm + rng.standard_normal(d))
    mv = quiet(make().fit, moved)
    np.testing.assert_allclose(mv.eigenvalues_, base.eigenvalues_, atol=1e-7)
    np.testing.assert_allclose(mv.epsilon_, base.epsilon_ * c * c, rtol=1e-7)
    again = quiet(make().fit, Y)
    assert np.array_equal(again.embedding_, base.embedding_)
    assert np.array_equal(again.eigenvalues_, base.eigenvalues_)


@FUZZ
@given(Ya=st.one_of(matrices(max_rows=9, max_cols=3, min_rows=4, min_cols=1, bad=False),
                   matrices(max_rows=9, max_cols=3)), seed=st.integers(0, 2**31), L=st.integers(1, 3),
       rtol=st.sampled_from((0.1, 0.1, 0.1, 0.0, -1.0, np.nan)),
       pairs=st.sampled_from(("none", "all") * 3 + ("bad", "float")))
def test_network_transformation(Ya, seed, L, rtol, pairs):
    """Y_b = Y_a: the orthogonal map is the identity and transform matches inverse_transform of
    the Nystrom embedding; bad inputs raise."""
    n = Ya.array.shape[0]
    nt = lb.NetworkTransformation(
        lb.DiffusionMaps(L, metric="euclidean", n_neighbors=None, k_epsilon=1, random_state=seed),
        degenerate_rtol=rtol)
    pr = {"none": None, "all": (np.arange(n), np.arange(n)), "bad": (np.arange(n), np.arange(n) + 1),
          "float": (np.arange(n) * 1.0, np.arange(n) * 1.0)}[pairs]
    err = with_value_error(first_error(Ya), not rtol >= 0 or (Ya.error is None and (n < 2 or L > n - 1)))
    if err is None:     # both embeddings are fitted before the pairs are looked at
        A = as_used(Ya, np.float64)
        D = sqdist(A, A)
        np.fill_diagonal(D, np.inf)
        if not np.median(D.min(1)) > 0 or not np.isfinite(np.where(np.isinf(D), 0, D)).all():
            err = ValueError
    if err is None and pairs in ("bad", "float"):
        err = ValueError if pairs == "bad" else TypeError
    if err is not None:
        with pytest.raises(err):
            quiet(nt.fit, Ya.array, Ya.array, pairs=pr)
        return
    event("network: fitted")
    quiet(nt.fit, Ya.array, Ya.array, pairs=pr)
    O = nt.orthogonal_
    np.testing.assert_allclose(O, np.eye(L), atol=1e-8)
    phi = quiet(nt.dmap_a_.transform, A[:2])
    if not np.isfinite(phi).all():    # Nystrom divided by an eigenvalue 0: a clear error, not NaN
        assert (np.abs(nt.dmap_a_.eigenvalues_) < 1e-10).any()
        with pytest.raises(ValueError, match="Lower n_components"):
            quiet(nt.transform, A[:2])
        return
    out = quiet(nt.transform, A[:2])
    ref = nt.dmap_b_.inverse_transform(phi)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12 * np.abs(A).max())


def test_memory_limit(monkeypatch):
    """The k-NN lists, the kernel graph and the Nystrom/interpolation buffers are checked against
    LATENTBRIDGE_MEMORY_LIMIT before they are allocated."""
    Y = np.random.default_rng(0).standard_normal((300, 3))
    dm = lb.DiffusionMaps(2, n_neighbors=10, k_epsilon=5, random_state=0).fit(Y)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "64K")
    with pytest.raises(MemoryError, match=r"DiffusionMaps.fit .*\(300, 299\)"):
        lb.DiffusionMaps(2, n_neighbors=None, k_epsilon=5).fit(Y)
    with pytest.raises(MemoryError, match=r"DiffusionMaps.fit"):
        lb.DiffusionMaps(2, n_neighbors=100, k_epsilon=5).fit(Y)
    with pytest.raises(MemoryError, match=r"DiffusionMaps.transform"):
        dm.transform(np.zeros((1000, 3)))
    with pytest.raises(MemoryError, match=r"DiffusionMaps.inverse_transform"):
        dm.inverse_transform(np.zeros((1000, 2)))
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "1G")
    assert dm.transform(np.zeros((1000, 3))).shape == (1000, 2)


@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_extreme_magnitudes(scale):
    """Beyond the strategies' 1e+-30: squared distances that under/overflow float64 raise a
    ValueError saying so (never 'duplicates', never a C++ message); precisions are computed on
    rescaled samples, so 1e200 works and 1e-200 (precision ~1e400) raises."""
    rng = np.random.default_rng(1)
    Y = rng.standard_normal((12, 2)) * scale
    with pytest.raises(ValueError, match="underflow" if scale < 1 else "overflow"):
        lb.DiffusionMaps(2, n_neighbors=5, k_epsilon=3).fit(Y)
    dm = lb.DiffusionMaps(2, n_neighbors=5, k_epsilon=3, random_state=0).fit(Y / scale)
    if scale > 1:
        with pytest.raises(ValueError, match="Y_new .*overflow"):
            dm.transform(Y)
        with pytest.raises(ValueError, match="embedding .*overflow"):
            dm.inverse_transform(np.full((1, 2), scale))
    N = rng.standard_normal((3, 6, 2))
    J = rng.standard_normal((3, 2, 2))
    if scale > 1:
        np.testing.assert_allclose(lb.precisions_from_neighborhoods(np.ldexp(N, 600)),
                                   np.ldexp(lb.precisions_from_neighborhoods(N), -1200), rtol=1e-12)
        got = lb.precisions_from_jacobians(np.ldexp(J, 500))
        ref = np.ldexp(np.linalg.inv(np.einsum("nab,ncb->nac", J, J)), -1000)
        np.testing.assert_allclose(got, ref, rtol=1e-9)
    else:
        with pytest.raises(ValueError, match=r"neighborhoods\[0\].*overflows"):
            lb.precisions_from_neighborhoods(N * scale)
        with pytest.raises(ValueError, match=r"neighborhoods\[0\].*overflows"):
            lb.precisions_from_neighborhoods(N * scale, ridge=0.1)
        with pytest.raises(ValueError, match=r"jacobians\[0\].*overflows"):
            lb.precisions_from_jacobians(J * scale)


def test_alpha_overflow_and_zero_size_stacks():
    Y = np.random.default_rng(2).standard_normal((10, 2))
    with pytest.raises(ValueError, match="alpha=.* is too large"):
        lb.DiffusionMaps(2, n_neighbors=4, k_epsilon=2, alpha=1e10).fit(Y)
    with pytest.raises(ValueError, match=r"neighborhoods has 0 (row|sample)"):
        lb.precisions_from_neighborhoods(np.zeros((0, 3, 2)))
    with pytest.raises(ValueError, match=r"jacobians has 0 (row|sample)"):
        lb.precisions_from_jacobians(np.zeros((0, 3, 2)))


def test_network_transformation_zero_eigenvalue():
    """Found by the fuzzer: duplicated points give an eigenvalue 0, the Nystrom extension divides
    by it; transform raises a ValueError instead of returning NaN (with a RuntimeWarning)."""
    Y = np.array([[-7.0], [-4.0], [-5.0], [-5.0]])
    dm = lb.DiffusionMaps(3, metric="euclidean", n_neighbors=None, k_epsilon=1, random_state=0)
    nt = quiet(lb.NetworkTransformation(dm).fit, Y, Y)
    assert nt.dmap_a_.eigenvalues_[-1] == 0.0
    with pytest.raises(ValueError, match="Lower n_components"):
        quiet(nt.transform, Y[:2])
