"""GPU kernels against the CPU path (skipped with the probe's reason when no device is usable)."""

import numpy as np
import pytest

import latentbridge as lb

from conftest import readonly, tolerance

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (300, 200, 17), (513, 129, 260)])
def test_pairwise_cuda_matches_cpu(dtype, metric, shape):
    n, m, d = shape
    rng = np.random.default_rng(0)
    X = readonly(rng.standard_normal((n, d)).astype(dtype) + 2)
    Y = readonly(rng.standard_normal((m, d)).astype(dtype))
    ref = lb.pairwise_distances(X, Y, metric=metric, device="cpu")
    got = lb.pairwise_distances(X, Y, metric=metric, device="cuda")
    assert got.dtype == ref.dtype and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, **tolerance(dtype))
    sym = lb.pairwise_distances(X, metric=metric, device="cuda")
    assert np.array_equal(sym, sym.T) and np.all(np.diag(sym) == 0)
    np.testing.assert_allclose(sym, lb.pairwise_distances(X, metric=metric, device="cpu"), **tolerance(dtype))


def test_float64_relative_accuracy():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((1000, 512)) + 10
    from scipy.spatial.distance import cdist

    got = lb.pairwise_distances(X, X[:300], device="cuda")
    ref = cdist(X, X[:300])
    mask = ref > 0
    assert np.max(np.abs(got[mask] - ref[mask]) / ref[mask]) < 1e-12


@pytest.mark.parametrize("framework", ["torch", "cupy"])
def test_device_arrays_stay_on_device(framework, dtype):
    fw = pytest.importorskip(framework)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 33)).astype(dtype)
    Y = rng.standard_normal((100, 33)).astype(dtype)
    if framework == "torch":
        Xd, Yd = fw.as_tensor(X, device="cuda"), fw.as_tensor(Y, device="cuda")
        got = lb.pairwise_distances(Xd, Yd)
        assert got.is_cuda
        host = got.cpu().numpy()
    else:
        Xd, Yd = fw.asarray(X), fw.asarray(Y)
        got = lb.pairwise_distances(Xd, Yd)
        assert isinstance(got, fw.ndarray)
        host = got.get()
    np.testing.assert_allclose(host, lb.pairwise_distances(X, Y, device="cpu"), **tolerance(dtype))
