"""pairwise_distances against scipy's cdist (an independent oracle) and its promised properties."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import latentbridge as lb
from latentbridge import _core

from conftest import readonly, tolerance

METRICS = ["euclidean", "sqeuclidean", "cosine"]


def oracle(X, Y, metric):
    return cdist(np.asarray(X, np.float64), np.asarray(Y, np.float64), metric)


@pytest.fixture(params=_core.build_info()["simd_available"])
def isa(request):
    """Run a test with each instruction-set variant of the CPU kernel this machine supports."""
    before = _core.simd_isa()
    _core.set_simd_isa(request.param)
    yield request.param
    _core.set_simd_isa(before)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 5, 3), (130, 97, 33), (301, 600, 270), (50, 40, 600)])
def test_matches_cdist(isa, dtype, metric, shape):
    n, m, d = shape
    rng = np.random.default_rng(n * 1000 + m + d)
    X = readonly(rng.standard_normal((n, d)).astype(dtype) + 3)
    Y = readonly(rng.standard_normal((m, d)).astype(dtype))
    got = lb.pairwise_distances(X, Y, metric=metric, device="cpu", n_jobs=2)
    assert got.dtype == dtype and got.shape == (n, m)
    np.testing.assert_allclose(got, oracle(X, Y, metric), **tolerance(dtype))


@pytest.mark.parametrize("metric", METRICS)
def test_self_distances_symmetric_zero_diagonal(isa, dtype, metric):
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((333, 21)) * 10 + 100).astype(dtype)
    got = lb.pairwise_distances(X, metric=metric, n_jobs=2, device="cpu")
    assert np.array_equal(got, got.T)
    assert np.all(np.diag(got) == 0)
    assert np.all(got >= 0)
    np.testing.assert_allclose(got, oracle(X, X, metric), **tolerance(dtype))


def test_cancellation_near_duplicates(dtype):
    """Far from the origin and nearly coincident: the GEMM form alone would be badly wrong."""
    rng = np.random.default_rng(2)
    base = rng.standard_normal((1, 64)) * 1e3 + 1e4
    X = (base + rng.standard_normal((200, 64)) * 1e-2).astype(dtype)
    got = lb.pairwise_distances(X, X[::-1].copy(), device="cpu")
    ref = oracle(X, X[::-1], "euclidean")
    np.testing.assert_allclose(got, ref, rtol=1e-3 if dtype == np.float32 else 1e-9, atol=0)
    dup = lb.pairwise_distances(np.vstack([X[:3], X[:3]]), device="cpu")
    assert dup[0, 3] == 0 and dup[1, 4] == 0 and np.all(dup >= 0)


def test_y_none_equals_x_twice(dtype, tol):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((257, 31)).astype(dtype)
    for metric in METRICS:
        a = lb.pairwise_distances(X, metric=metric, device="cpu")
        b = lb.pairwise_distances(X, X, metric=metric, device="cpu")
        np.testing.assert_allclose(a, b, **tol(dtype))


def test_thread_counts_agree():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((700, 80)).astype(np.float32)
    Y = rng.standard_normal((500, 80)).astype(np.float32)
    ref = lb.pairwise_distances(X, Y, n_jobs=1, device="cpu")
    for n_jobs in (2, 3, -1):
        assert np.array_equal(lb.pairwise_distances(X, Y, n_jobs=n_jobs, device="cpu"), ref)


def test_dtype_promotion_and_inputs():
    rng = np.random.default_rng(5)
    X32 = rng.standard_normal((20, 4)).astype(np.float32)
    X64 = X32.astype(np.float64)
    assert lb.pairwise_distances(X32, device="cpu").dtype == np.float32
    assert lb.pairwise_distances(X32, X64, device="cpu").dtype == np.float64
    ints = rng.integers(-5, 5, size=(10, 3))
    got = lb.pairwise_distances(ints, device="cpu")
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, oracle(ints, ints, "euclidean"), atol=1e-12)
    boolean = rng.integers(0, 2, size=(6, 5)).astype(bool)
    np.testing.assert_allclose(lb.pairwise_distances(boolean, device="cpu"),
                               oracle(boolean, boolean, "euclidean"), atol=1e-12)
    # lists, Fortran order, strided views, read-only views
    F = np.asfortranarray(X64)
    strided = np.repeat(X64, 2, axis=1)[:, ::2]
    np.testing.assert_allclose(lb.pairwise_distances(F, device="cpu"), oracle(X64, X64, "euclidean"), atol=1e-12)
    np.testing.assert_allclose(lb.pairwise_distances(strided, X64.tolist(), device="cpu"),
                               oracle(X64, X64, "euclidean"), atol=1e-12)
    ro = readonly(X64)[::3]
    np.testing.assert_allclose(lb.pairwise_distances(ro, device="cpu"), oracle(ro, ro, "euclidean"), atol=1e-12)


def test_cosine_zero_rows_follow_sklearn():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    got = lb.pairwise_distances(X, metric="cosine", device="cpu")
    expected = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    np.testing.assert_allclose(got, expected, atol=1e-15)
    anti = lb.pairwise_distances(np.array([[1.0, 1.0]]), np.array([[-2.0, -2.0]]), metric="cosine")
    np.testing.assert_allclose(anti, [[2.0]])


def test_zero_width_features():
    got = lb.pairwise_distances(np.zeros((3, 1)), np.ones((2, 1)), device="cpu")
    np.testing.assert_allclose(got, np.ones((3, 2)))


@pytest.mark.parametrize(
    "X, Y, exc, match",
    [
        (np.array([[np.nan, 1.0]]), None, ValueError, "X contains NaN"),
        (np.ones((2, 2)), np.array([[np.inf, 0.0]]), ValueError, "Y contains NaN or infinity"),
        (np.ones((3, 2)), np.ones((3, 4)), ValueError, "same number of columns"),
        (np.ones(3), None, ValueError, "2-D"),
        (np.ones((2, 2, 2)), None, ValueError, "2-D"),
        (np.ones((0, 3)), None, ValueError, "at least 1 required"),
        (np.ones((3, 0)), None, ValueError, "column"),
        ("abc", None, TypeError, "numeric"),
        (np.array([["a", "b"]]), None, TypeError, "numeric"),
        (np.ones((2, 2), dtype=complex), None, TypeError, "complex"),
        (np.array([[object(), 1]], dtype=object), None, TypeError, "numeric"),
    ],
)
def test_bad_input(X, Y, exc, match):
    with pytest.raises(exc, match=match):
        lb.pairwise_distances(X, Y, device="cpu")


def test_bad_options():
    X = np.ones((2, 2))
    with pytest.raises(ValueError, match="metric must be one of"):
        lb.pairwise_distances(X, metric="manhattan")
    with pytest.raises(ValueError, match="device must be one of"):
        lb.pairwise_distances(X, device="tpu")
    with pytest.raises(ValueError, match="n_jobs"):
        lb.pairwise_distances(X, n_jobs=0)


def test_core_rejects_wrong_layout_without_copy():
    """The binding never converts silently: a non-contiguous array is a TypeError."""
    X = np.ones((4, 6))[:, ::2]
    out = np.empty((4, 4))
    with pytest.raises(TypeError):
        _core.pairwise_distances(X, None, out, "euclidean", 1)
    with pytest.raises(ValueError, match="out must have shape"):
        _core.pairwise_distances(np.ones((4, 3)), None, np.empty((3, 3)), "euclidean", 1)
