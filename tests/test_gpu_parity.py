"""GPU kernels against the CPU path (skipped with the probe's reason when no device is usable)."""

import numpy as np
import pytest
from conftest import readonly, tolerance

import latentbridge as lb

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


# ---- the tiled kernel (cuda/src/distance.cu) at sizes that are not multiples of its tiles ---------------
# Tiles are 128 x 128 (float) and 128 x 64 (double) with panels of 8 columns of d; 16-byte vector
# loads need d a multiple of 4 (float) / 2 (double) and 16-byte aligned rows, else a scalar path runs.

# Sizes stay small: .ci/gpu-check also runs this file under compute-sanitizer memcheck and racecheck.
_TILE_CASES = [(1, 1), (7, 3), (127, 5), (129, 17), (200, 512), (129, 513), (1000, 33), (4099, 5)]


def _cdist64(X, Y):
    from scipy.spatial.distance import cdist

    return cdist(np.asarray(X, np.float64), np.asarray(Y, np.float64))


def _check_symmetric(sym):
    assert np.array_equal(sym, sym.T), "Y = X must give an exactly symmetric matrix"
    assert np.all(np.diag(sym) == 0)


@pytest.mark.parametrize("n, d", _TILE_CASES, ids=[f"{n}x{d}" for n, d in _TILE_CASES])
def test_tiled_kernel_matches_cdist(dtype, n, d):
    rng = np.random.default_rng(n * 1000 + d)
    X = readonly(rng.standard_normal((n, d)).astype(dtype) + 3)  # an offset: the mean shift matters
    m = n // 2 + 3  # another number of rows, not a multiple of the tile either
    Y = readonly(rng.standard_normal((m, d)).astype(dtype) + 3)
    got = lb.pairwise_distances(X, Y, device="cuda")
    np.testing.assert_allclose(got, _cdist64(X, Y), **tolerance(dtype))
    sym = lb.pairwise_distances(X, device="cuda")
    _check_symmetric(sym)
    np.testing.assert_allclose(sym, _cdist64(X, X), **tolerance(dtype))


@pytest.mark.parametrize("metric", ["sqeuclidean", "cosine"])
def test_tiled_kernel_other_metrics_several_tiles(dtype, metric):
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 36)).astype(dtype) + 1
    X[7] = X[5]  # an exact duplicate: recomputed directly, distance 0
    ref = cdist(X.astype(np.float64), X.astype(np.float64), metric=metric)
    sym = lb.pairwise_distances(X, metric=metric, device="cuda")
    _check_symmetric(sym)
    np.testing.assert_allclose(sym, ref, **tolerance(dtype))
    assert sym[5, 7] == 0 or metric == "cosine"


@pytest.mark.parametrize("d", [12, 17, 64])
def test_tiled_kernel_offset_torch_inputs(dtype, d):
    """Contiguous torch views whose data pointer is not 16-byte aligned (storage offset 1), and a
    row slice: the kernel must fall back to scalar loads and stay correct."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    tdt = getattr(torch, np.dtype(dtype).name)
    n = 261
    gen = torch.Generator(device="cpu").manual_seed(d)
    flat = (torch.randn(n * d + 1, generator=gen, dtype=tdt) + 2).cuda()
    X = flat[1:].view(n, d)  # data pointer offset by one element
    assert X.is_contiguous() and X.data_ptr() % 16 != 0
    Y = X[5:140]  # a row slice: offset 5 d elements
    Xh, Yh = X.cpu().numpy(), Y.cpu().numpy()
    got = lb.pairwise_distances(X, Y)
    assert got.is_cuda
    np.testing.assert_allclose(got.cpu().numpy(), _cdist64(Xh, Yh), **tolerance(dtype))
    sym = lb.pairwise_distances(X).cpu().numpy()
    _check_symmetric(sym)
    np.testing.assert_allclose(sym, _cdist64(Xh, Xh), **tolerance(dtype))
    # the output tensor itself need not be 16-byte aligned either: m = 135 rows, odd
    assert got.shape == (n, 135)


def test_tiled_kernel_non_contiguous_torch_input_is_refused():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    X = torch.randn(40, 30, device="cuda")
    with pytest.raises(ValueError, match="contiguous"):
        lb.pairwise_distances(X.T)
