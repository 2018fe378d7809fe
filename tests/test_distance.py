"""pairwise_distances against scipy's cdist (an independent oracle) and its promised properties."""

import sys
from types import ModuleType, SimpleNamespace

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


# ---- the torch / cupy CUDA-array path, run on the CPU with stand-ins --------------------------------
# No GPU is needed: the device memory is emulated (numbered devices, fake pointers), torch and cupy
# arrays live in it, and _cuda.pairwise_distances_device is replaced by an emulation of the binding's
# contract (cuda/bindings/module_cuda.cpp): X, Y and out are pointers to C-contiguous row-major
# arrays on `device` (Y = 0 means Y = X, and then m = n), n, m, d are sizes, double_precision picks
# float64 over float32, metric is a name, stream a cudaStream_t handle and device the device id. It
# reads the memory the way the kernel does, so a wrong pointer, size, dtype or device fails there.

class _DeviceMemory:
    """Allocations on numbered devices, addressed by integer pointers with gaps between them."""

    def __init__(self):
        self.blocks = {}
        self._next = 0x7F0000001000

    def alloc(self, device, values):
        raw = np.ascontiguousarray(values).reshape(-1).view(np.uint8).copy()
        ptr = self._next
        self._next += raw.size + 0x1000
        self.blocks[ptr] = (device, raw)
        return ptr

    def array(self, ptr, device, shape, dtype):
        """The row-major array of ``shape`` and ``dtype`` that a kernel on ``device`` sees at ptr."""
        if type(ptr) is not int or ptr not in self.blocks:
            raise RuntimeError(f"illegal address {ptr!r}")
        owner, raw = self.blocks[ptr]
        if owner != device:
            raise RuntimeError(f"pointer {ptr:#x} is on device {owner}, the kernel on {device}")
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if nbytes > raw.size:
            raise RuntimeError(f"read of {nbytes} bytes past an allocation of {raw.size}")
        return raw[:nbytes].view(dtype).reshape(shape)


class _EmulatedCudaArray:
    """An array in emulated device memory, described by ``__cuda_array_interface__``: C-contiguous
    (strides None), unless a test sets ``strides`` (bytes) to describe another layout."""

    strides = None

    def __init__(self, memory, values, device_id):
        values = np.ascontiguousarray(values)
        self.memory, self.device_id = memory, device_id
        self.shape, self.np_dtype = values.shape, values.dtype
        self.ptr = memory.alloc(device_id, values)

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.np_dtype.str, "data": (self.ptr, False),
                "strides": self.strides, "version": 3}

    def values(self):
        return self.memory.array(self.ptr, self.device_id, self.shape, self.np_dtype)


class _CudaTensor(_EmulatedCudaArray):
    """A torch CUDA tensor: its type reads as torch.Tensor, ``device`` is a torch.device."""

    __module__ = "torch"

    @property
    def device(self):
        import torch

        return torch.device("cuda", self.device_id)

    def isfinite(self):
        import torch

        return torch.from_numpy(np.isfinite(self.values()))


class _CupyArray(_EmulatedCudaArray):
    """A cupy array: its type reads as cupy.ndarray, ``device`` is a cupy.cuda.Device."""

    __module__ = "cupy"

    @property
    def device(self):
        return sys.modules["cupy"].cuda.Device(self.device_id)


_CudaTensor.__name__ = "Tensor"
_CupyArray.__name__ = "ndarray"


@pytest.fixture
def cuda_standins(monkeypatch):
    """CUDA made usable on the CPU: resolve_device accepts "cuda" (and records what it was asked),
    torch.empty / torch.cuda.current_stream and a cupy module allocate in emulated device memory and
    name one current stream per device, and _cuda.pairwise_distances_device records its arguments
    and computes what the kernel would, from the memory its pointers address."""
    import torch

    import latentbridge
    from latentbridge import distance

    s = SimpleNamespace(memory=_DeviceMemory(), resolved=[], calls=[], current_device=0,
                              streams={0: 0x5000, 1: 0x5100})
    monkeypatch.setattr(distance._backend, "resolve_device",
                        lambda device: s.resolved.append(device) or "cuda")

    def pairwise_distances_device(X, Y, out, n, m, d, double_precision, metric, stream, device):
        s.calls.append((X, Y, out, n, m, d, double_precision, metric, stream, device))
        for value in (X, Y, out, n, m, d, stream, device):
            if type(value) is not int:
                raise TypeError(f"an int was expected; got {value!r}")
        if type(double_precision) is not bool or type(metric) is not str:
            raise TypeError("double_precision must be a bool and metric a str")
        if X == 0 or out == 0:
            raise ValueError("null pointer")
        if Y == 0:
            m = n
        dtype = np.float64 if double_precision else np.float32
        A = s.memory.array(X, device, (n, d), dtype)
        B = A if Y == 0 else s.memory.array(Y, device, (m, d), dtype)
        s.memory.array(out, device, (n, m), dtype)[...] = cdist(A, B, metric)

    fake_cuda = ModuleType("latentbridge._cuda")
    fake_cuda.pairwise_distances_device = pairwise_distances_device
    monkeypatch.setitem(sys.modules, "latentbridge._cuda", fake_cuda)
    monkeypatch.setattr(latentbridge, "_cuda", fake_cuda, raising=False)

    real_empty = torch.empty

    def empty(*size, **kwargs):
        meta = real_empty(*size, **{**kwargs, "device": "meta"})  # torch's own argument rules
        device = torch.device(kwargs.get("device") or "cpu")
        if device.type != "cuda":
            return real_empty(*size, **kwargs)
        index = s.current_device if device.index is None else device.index
        values = np.full(tuple(meta.shape), np.nan, str(meta.dtype).removeprefix("torch."))
        return _CudaTensor(s.memory, values, index)

    def current_stream(device=None):
        index = s.current_device if device is None else torch.device(device).index
        return SimpleNamespace(cuda_stream=s.streams[index])

    monkeypatch.setattr(torch, "empty", empty)
    monkeypatch.setattr(torch.cuda, "current_stream", current_stream)

    class Device:
        def __init__(self, device=None):
            self.id = s.current_device if device is None else int(device)

        def __enter__(self):
            self.previous, s.current_device = s.current_device, self.id
            return self

        def __exit__(self, *exc):
            s.current_device = self.previous

    def get_current_stream(device_id=-1):
        return SimpleNamespace(ptr=s.streams[s.current_device if device_id < 0 else device_id])

    cupy = ModuleType("cupy")
    cupy.float32, cupy.float64 = np.float32, np.float64
    cupy.cuda = SimpleNamespace(Device=Device, get_current_stream=get_current_stream)
    cupy.empty = lambda shape, dtype=float, order="C": _CupyArray(
        s.memory, np.full(shape, np.nan, dtype), s.current_device)
    cupy.isfinite = lambda A: np.isfinite(A.values())
    monkeypatch.setitem(sys.modules, "cupy", cupy)

    s.array = {"torch": lambda values, device=0: _CudaTensor(s.memory, values, device),
               "cupy": lambda values, device=0: _CupyArray(s.memory, values, device)}
    return s


@pytest.mark.parametrize("framework", ["torch", "cupy"])
@pytest.mark.parametrize("device_id", [0, 1])
@pytest.mark.parametrize("with_y", [False, True], ids=["Y=None", "Y"])
@pytest.mark.parametrize("metric", METRICS)
def test_cuda_arrays_reach_the_kernel_with_pointers_sizes_stream_and_device(
        cuda_standins, framework, device_id, with_y, metric, dtype):
    """What the device kernel gets: X's pointer, Y's (0 for Y = X), a fresh (n, m) output of the
    inputs' dtype on their device, n, m, d, the precision flag, the metric, the current stream of
    that device (not of the current device, which stays 0) and its id; the output is returned and
    holds the distances of the inputs (scipy's cdist)."""
    s = cuda_standins
    rng = np.random.default_rng(7)
    Xh = rng.normal(size=(5, 4)).astype(dtype)
    Yh = rng.normal(size=(3, 4)).astype(dtype) if with_y else None
    X = s.array[framework](Xh, device_id)
    Y = s.array[framework](Yh, device_id) if with_y else None
    got = lb.pairwise_distances(X, Y, metric=metric, device="auto")
    m = 3 if with_y else 5
    assert s.resolved == ["cuda"]
    assert s.calls == [(X.ptr, Y.ptr if with_y else 0, got.ptr, 5, m, 4, dtype == np.float64,
                        metric, s.streams[device_id], device_id)]
    assert type(got) is type(X) and got.device_id == device_id and s.current_device == 0
    assert got.shape == (5, m) and got.np_dtype == dtype
    assert got.ptr not in (X.ptr, 0 if Y is None else Y.ptr)
    np.testing.assert_allclose(got.values(), oracle(Xh, Xh if Yh is None else Yh, metric),
                               **tolerance(dtype))
    if framework == "torch":
        import torch

        assert got.device == torch.device("cuda", device_id)


@pytest.mark.parametrize("framework", ["torch", "cupy"])
def test_cuda_array_with_device_cpu_is_refused_even_with_cuda(cuda_standins, framework):
    X = cuda_standins.array[framework](np.ones((2, 2)))
    for Y in (None, X):
        with pytest.raises(ValueError, match=r"^X is a CUDA array but device='cpu'; move it to the "
                                             r"host first \(\.cpu\(\)\.numpy\(\) for torch, \.get\(\) "
                                             r"for cupy\) or use device='auto'/'cuda'\.$"):
            lb.pairwise_distances(X, Y, device="cpu")
    assert cuda_standins.calls == [] and cuda_standins.resolved == []


def test_cuda_arrays_without_a_usable_device_raise_before_any_work(cuda_standins, monkeypatch):
    from latentbridge import distance

    def no_cuda(device):
        raise RuntimeError(f"device={device!r}: no CUDA here")

    monkeypatch.setattr(distance._backend, "resolve_device", no_cuda)
    X = cuda_standins.array["torch"](np.ones((2, 2)))
    with pytest.raises(RuntimeError, match=r"^device='cuda': no CUDA here$"):
        lb.pairwise_distances(X, device="auto")
    assert cuda_standins.calls == [] and len(cuda_standins.memory.blocks) == 1


def test_cuda_arrays_of_mixed_kinds_are_refused(cuda_standins):
    """Both CUDA arrays, of one framework: a host array (numpy or a CPU torch tensor) or another
    framework's array next to a CUDA array is named in the message."""
    import torch

    s = cuda_standins
    tensor, cupy_array = s.array["torch"](np.ones((2, 2))), s.array["cupy"](np.ones((2, 2)))
    host = np.ones((2, 2))
    head = r"^X and Y must both be CUDA arrays of the same framework \(torch or cupy\); got "
    for X, Y, kinds in [
        (tensor, cupy_array, "torch.Tensor and cupy.ndarray"),
        (cupy_array, tensor, "cupy.ndarray and torch.Tensor"),
        (host, tensor, "numpy.ndarray on the host and torch.Tensor"),
        (cupy_array, host, "cupy.ndarray and numpy.ndarray on the host"),
        (torch.ones(2, 2), tensor, "torch.Tensor on the host and torch.Tensor"),
    ]:
        with pytest.raises(TypeError, match=head + kinds + r"\.$"):
            lb.pairwise_distances(X, Y, device="cuda")
    assert s.calls == []


@pytest.mark.parametrize("framework", ["torch", "cupy"])
def test_cuda_arrays_that_do_not_fit_together_are_refused(cuda_standins, framework):
    """Different dtypes, column counts or devices, each with its message; a bad X or Y is named."""
    new = cuda_standins.array[framework]
    X = new(np.ones((5, 4), np.float32))
    with pytest.raises(TypeError, match=r"^X and Y on the GPU must have the same dtype; convert one "
                                        r"of them\.$"):
        lb.pairwise_distances(X, new(np.ones((3, 4))), device="cuda")
    with pytest.raises(ValueError, match=r"^X and Y must have the same number of columns; got 4 "
                                         r"and 2\.$"):
        lb.pairwise_distances(X, new(np.ones((3, 2), np.float32)), device="cuda")
    with pytest.raises(ValueError, match=r"^X and Y must be on the same GPU; got X on device 0 and "
                                         r"Y on device 1\. Copy Y to X's device first "
                                         r"\(Y\.to\(X\.device\) for torch, cupy\.asarray\(Y\) "
                                         r"inside `with X\.device:` for cupy\)\.$"):
        lb.pairwise_distances(X, new(np.ones((3, 4), np.float32), 1), device="cuda")
    integers = new(np.ones((3, 4), np.int32))
    for args, name in (((integers,), "X"), ((integers, X), "X"), ((X, integers), "Y")):
        with pytest.raises(TypeError, match=rf"^{name} on the GPU must be float32 or float64; got "
                                            r"typestr <i4\."):
            lb.pairwise_distances(*args, device="cuda")
    assert cuda_standins.calls == []


@pytest.mark.parametrize("framework", ["torch", "cupy"])
def test_the_kernel_gets_finite_c_contiguous_rows_only(cuda_standins, framework):
    """The kernel takes no strides: n rows of d entries, one after another. An array described with
    other strides (a transposed view) or holding NaN/infinity is refused, naming X or Y, before any
    work; explicit C strides, and any row stride for a single row, are that layout and accepted."""
    s = cuda_standins
    new = s.array[framework]
    rng = np.random.default_rng(3)
    Xh, Yh = rng.normal(size=(5, 4)), rng.normal(size=(1, 4))
    ok_x, ok_y = new(Xh), new(Yh)
    transposed = new(np.ones((5, 4)))
    transposed.strides = (8, 40)  # the (5, 4) transpose of a C-contiguous (4, 5) array
    bad = new(np.where(np.eye(5, 4) > 0, np.nan, 1.0))
    for X, Y, message in [
        (transposed, None, r"^X must be C-contiguous on the device; call \.contiguous\(\) first\.$"),
        (ok_x, transposed, r"^Y must be C-contiguous on the device; call \.contiguous\(\) first\.$"),
        (bad, None, r"^X contains NaN or infinity\.$"),
        (ok_x, bad, r"^Y contains NaN or infinity\.$"),
    ]:
        with pytest.raises(ValueError, match=message):
            lb.pairwise_distances(X, Y, device="cuda")
    assert s.calls == []
    ok_x.strides, ok_y.strides = (32, 8), (800, 8)
    got = lb.pairwise_distances(ok_x, ok_y, device="cuda")
    np.testing.assert_allclose(got.values(), oracle(Xh, Yh, "euclidean"), rtol=1e-10, atol=1e-12)
