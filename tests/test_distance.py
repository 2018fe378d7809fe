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


def test_cancellation_near_duplicates_in_two_far_clusters(dtype):
    """Two tight clusters 2e4 apart: the shift (the mean of all rows) sits between them, so every
    within-cluster pair cancels in the GEMM form and is recomputed directly; those recomputed
    distances must be square-rooted for "euclidean" and left squared for "sqeuclidean"."""
    rng = np.random.default_rng(12)
    base = rng.standard_normal((1, 24)) * 1e3 + 1e4
    X = np.vstack([base + rng.standard_normal((60, 24)) * 1e-2,
                   -base + rng.standard_normal((60, 24)) * 1e-2]).astype(dtype)
    rtol = 1e-3 if dtype == np.float32 else 1e-9
    for metric in ("euclidean", "sqeuclidean"):
        ref = oracle(X, X, metric)
        within = np.zeros(ref.shape, bool)
        within[:60, :60] = within[60:, 60:] = True
        np.fill_diagonal(within, False)
        assert np.all(ref[within] < 1.0)  # the pairs that cancel: small against |x|^2 ~ 1e8
        for Y in (None, X[::-1].copy()):
            got = lb.pairwise_distances(X, Y, metric=metric, device="cpu", n_jobs=2)
            want = ref if Y is None else ref[:, ::-1]
            np.testing.assert_allclose(got, want, rtol=rtol, atol=0, err_msg=metric)


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


# ---- extreme magnitudes: the power-of-two rescaling, checked here and not only through topology ----

@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype, magnitude", [
    (np.float64, 1e150), (np.float64, 1e-150), (np.float32, 1e18), (np.float32, 1e-18)])
def test_extreme_magnitudes_match_cdist_on_rescaled_data(metric, dtype, magnitude):
    """Data at 1e150 / 1e-150 (float64) or 1e18 / 1e-18 (float32): squared norms would overflow or
    underflow in the dtype. The oracle is cdist on the data divided by the magnitude (float64,
    values near 1), scaled back by hand: magnitude for euclidean, magnitude^2 for sqeuclidean,
    nothing for cosine (scale-free)."""
    rng = np.random.default_rng(40)
    X0 = rng.standard_normal((37, 6)) + 2.0
    Y0 = rng.standard_normal((29, 6))
    X, Y = (X0 * magnitude).astype(dtype), (Y0 * magnitude).astype(dtype)
    # the oracle sees exactly the values the function sees (rounding to dtype included)
    Xr, Yr = X.astype(np.float64) / magnitude, Y.astype(np.float64) / magnitude
    factor = {"euclidean": magnitude, "sqeuclidean": magnitude ** 2, "cosine": 1.0}[metric]
    expected = cdist(Xr, Yr, metric) * factor
    got = lb.pairwise_distances(X, Y, metric=metric, device="cpu")
    assert got.dtype == dtype and np.all(np.isfinite(got))
    rtol = 2e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=rtol,
                               atol=rtol * factor if metric == "cosine" else 0)
    sym = lb.pairwise_distances(X, metric=metric, device="cpu")
    np.testing.assert_allclose(sym.astype(np.float64), cdist(Xr, Xr, metric) * factor, rtol=rtol,
                               atol=rtol * factor)
    assert np.array_equal(sym, sym.T) and np.all(np.diag(sym) == 0)


def test_magnitudes_on_both_sides_of_the_rescaling_threshold_agree():
    """The same point set scaled by powers of two just inside and far outside the range the kernel
    takes as is: distances scale exactly with the factor (powers of two are exact)."""
    rng = np.random.default_rng(41)
    X = rng.standard_normal((50, 8))
    ref = lb.pairwise_distances(X, device="cpu")
    for e in (-520, -490, 480, 500):
        got = lb.pairwise_distances(np.ldexp(X, e), device="cpu")
        np.testing.assert_allclose(np.ldexp(got, -e), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_magnitudes_just_above_the_overflow_threshold(metric, sign):
    """float64 data at 5e153 with d = 6: above sqrt(max / (16 d)) = 1.4e153, where squared norms
    (about 1e308 d) would overflow; all-negative data too (the magnitude is max |x|, not max x).
    Oracle: cdist on the data divided by the magnitude, scaled back by hand."""
    rng = np.random.default_rng(42)
    X0 = sign * (rng.uniform(1.0, 3.0, (11, 6)))
    Y0 = sign * (rng.uniform(1.0, 3.0, (9, 6)))
    magnitude = 5e153
    factor = magnitude if metric == "euclidean" else 1.0
    got = lb.pairwise_distances(X0 * magnitude, Y0 * magnitude, metric=metric, device="cpu")
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, cdist(X0, Y0, metric) * factor, rtol=1e-10,
                               atol=1e-12 * factor)


class _FakeDeviceArray:
    """Anything exposing ``__cuda_array_interface__`` counts as device memory."""

    __cuda_array_interface__ = {"shape": (2, 2), "typestr": "<f4", "data": (0, False),
                                "version": 3}


def test_device_arrays_are_dispatched_with_every_argument(monkeypatch):
    """A spy stands in for the CUDA-array path: a device array as X or as Y (and never a host
    pair) sends the call there with the arguments unchanged."""
    from latentbridge import distance

    calls = []
    monkeypatch.setattr(distance, "_pairwise_device_array",
                        lambda *args: calls.append(args) or "device result")
    dev, host = _FakeDeviceArray(), np.ones((2, 2))
    for X, Y in ((dev, None), (dev, dev), (host, dev), (dev, host)):
        assert lb.pairwise_distances(X, Y, metric="cosine", device="cuda") == "device result"
        assert calls.pop() == (X, Y, "cosine", "cuda")
    lb.pairwise_distances(host, host, device="cpu")
    lb.pairwise_distances(host, device="cpu")
    assert calls == []


def test_device_array_with_device_cpu_is_refused():
    with pytest.raises(ValueError, match=r"^X is a CUDA array but device='cpu'; move it to the "
                                         r"host first"):
        lb.pairwise_distances(_FakeDeviceArray(), device="cpu")


def test_host_arrays_go_to_the_kernels_of_the_resolved_device(monkeypatch):
    """Spies for the device resolution and the kernel module: what resolve_device answers is the
    module asked for, and the kernel gets the checked arrays, the output, metric and threads."""
    from latentbridge import distance

    seen = []

    class Kernels:
        def pairwise_distances(self, X, Y, out, metric, n_threads):
            seen.append((X.shape, Y, out.shape, metric, n_threads))
            out[:] = 7.0

    monkeypatch.setattr(distance._backend, "resolve_device", lambda device: "cuda")
    monkeypatch.setattr(distance._backend, "kernels",
                        lambda resolved: seen.append(resolved) or Kernels())
    got = lb.pairwise_distances(np.ones((3, 2)), metric="sqeuclidean", device="auto", n_jobs=3)
    assert seen == ["cuda", ((3, 2), None, (3, 3), "sqeuclidean", 3)]
    assert np.all(got == 7.0)


def test_output_too_large_names_its_size(monkeypatch):
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "95")
    with pytest.raises(MemoryError, match=r"^pairwise_distances output \(n, m\) = \(3, 4\) float64 "
                                          r"needs 96 bytes \(96 bytes\)"):
        lb.pairwise_distances(np.ones((3, 2)), np.ones((4, 2)), device="cpu")
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "96")
    assert lb.pairwise_distances(np.ones((3, 2)), np.ones((4, 2)), device="cpu").shape == (3, 4)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match=r"^X contains NaN"):
        lb.pairwise_distances(np.array([[np.nan, 1.0]]), device="cpu")
    with pytest.raises(ValueError, match=r"^Y contains NaN"):
        lb.pairwise_distances(np.ones((1, 2)), np.array([[np.nan, 1.0]]), device="cpu")


def test_squared_distance_beyond_float32_is_inf_without_a_warning():
    """Documented: a squared distance above the dtype's range comes back as inf (no overflow
    warning; pytest turns warnings into errors here)."""
    X = np.array([[0.0], [3e19]], dtype=np.float32)
    got = lb.pairwise_distances(X, metric="sqeuclidean", device="cpu")
    assert got.dtype == np.float32 and got[0, 1] == np.inf and got[0, 0] == 0


def test_float32_tensors_on_the_host_keep_float32():
    """The dtype rule looks at what numpy makes of an input without a numpy dtype (a CPU torch
    tensor): float32 stays float32."""
    torch = pytest.importorskip("torch")
    X = torch.ones((3, 2), dtype=torch.float32)
    got = lb.pairwise_distances(X, device="cpu")
    assert got.dtype == np.float32 and np.all(got == 0)


def test_opposite_corners_just_above_the_threshold():
    """max |x| = 6.6e153 with d = 6, just above sqrt(max / (16 d)) = 1.4e153: the squared distance
    between opposite corners (216 * 2.2e153^2 = 1e309) overflows float64 unless the data is
    rescaled; the distance itself (3.2e154) does not."""
    m = 2.2e153
    X0 = np.array([[3.0] * 6, [-3.0] * 6, [3.0, -3.0] * 3])
    got = lb.pairwise_distances(X0 * m, device="cpu")
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, cdist(X0, X0) * m, rtol=1e-12)
