"""Pairwise distances between the rows of two matrices, on the CPU or a CUDA device."""

from __future__ import annotations

import numpy as np

from . import _backend
from ._interop import cuda_array_info, cuda_framework, is_cuda_array
from ._validation import (
    as_float_matrix,
    check_allocation,
    check_choice,
    check_n_jobs,
    result_dtype,
)

__all__ = ["pairwise_distances", "METRICS"]

METRICS = ("euclidean", "sqeuclidean", "cosine")


def pairwise_distances(X, Y=None, *, metric="euclidean", device="auto", n_jobs=None):
    """Distances between every row of ``X`` and every row of ``Y``.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Rows are points. numpy arrays (and anything numpy converts) are computed on the CPU or the
        GPU and returned as numpy; torch or cupy CUDA tensors are computed on their device and the
        result stays there (same framework, same device).
    Y : array_like of shape (m, d), optional
        Second set of points; ``None`` means ``Y = X``, in which case the result is exactly
        symmetric with an exactly zero diagonal.
    metric : {"euclidean", "sqeuclidean", "cosine"}
        ``"cosine"`` is ``1 - x.y / (|x| |y|)``, clipped to [0, 2]; a row of zero norm is at
        distance 1 from every other row (scikit-learn's convention).
    device : {"auto", "cpu", "cuda"}
        ``"auto"`` uses a CUDA device when one is usable.
    n_jobs : int, optional
        CPU threads (None: 1, -1: all CPUs).

    Returns
    -------
    D : ndarray of shape (n, m)
        float32 when every input is float32, float64 otherwise (integers are promoted to float64).

    Raises
    ------
    ValueError
        Wrong shapes, mismatched columns, empty input, NaN or infinity, unknown metric or device,
        CUDA arrays X and Y on different devices.
    TypeError
        Non-numeric, complex or string input; a CUDA array with a host array or with a CUDA
        array of another framework or dtype.

    Notes
    -----
    The kernel uses the GEMM form ``|x|^2 + |y|^2 - 2 x.y`` on data shifted by the mean of all
    rows, with norms and the epilogue in float64; pairs whose squared distance is below 2 % (float32)
    or 1 % (float64) of ``|x|^2 + |y|^2`` are recomputed directly as ``sum (x_k - y_k)^2``, so
    cancellation never costs more than about 1e-4 (float32) or 1e-12 (float64) relative accuracy.
    Results are never negative.

    Inputs of any finite magnitude are handled: when the largest absolute entry is so large that
    squared norms could overflow (above about ``sqrt(max / (16 d))`` of the dtype, e.g. 1e17 in
    float32 with d = 1000) or so small that products would underflow (below
    ``sqrt(tiny / eps)``, about 3e-16 in float32 and 1e-146 in float64), both inputs are scaled by
    a power of two (exact), and the distances scaled back. A squared distance that exceeds the
    dtype's range is returned as ``inf`` (float32 inputs near 1e20, for instance): pass float64
    input when that matters.

    Memory: the (n, m) output, checked against the available memory (or
    ``LATENTBRIDGE_MEMORY_LIMIT``) first: ``MemoryError`` names the size when it would not fit.
    The result does not depend on ``n_jobs`` (each output entry is computed by one thread in a
    fixed order), so it is bit-for-bit reproducible.

    Examples
    --------
    >>> import numpy as np, latentbridge as lb
    >>> lb.pairwise_distances(np.array([[0.0, 0.0], [3.0, 4.0]]))
    array([[0., 5.],
           [5., 0.]])
    """
    check_choice(metric, "metric", METRICS)
    if is_cuda_array(X) or (Y is not None and is_cuda_array(Y)):
        return _pairwise_device_array(X, Y, metric, device)
    n_threads = check_n_jobs(n_jobs)
    dtype = result_dtype(_float_probe(X), None if Y is None else _float_probe(Y))
    Xc = as_float_matrix(X, "X", dtype=dtype)
    Yc = None
    if Y is not None:
        Yc = as_float_matrix(Y, "Y", dtype=dtype)
        if Yc.shape[1] != Xc.shape[1]:
            raise ValueError(
                f"X and Y must have the same number of columns (features); got X with "
                f"{Xc.shape[1]} and Y with {Yc.shape[1]}."
            )
    resolved = _backend.resolve_device(device)
    n, m = Xc.shape[0], Xc.shape[0] if Yc is None else Yc.shape[0]
    check_allocation(n * m * dtype.itemsize,
                     f"pairwise_distances output (n, m) = ({n}, {m}) {dtype.name}")
    Xc, Yc, exponent = _rescale(Xc, Yc)
    out = np.empty((n, m), dtype=dtype)
    _backend.kernels(resolved).pairwise_distances(Xc, Yc, out, metric, n_threads)
    if exponent and metric != "cosine":
        with np.errstate(over="ignore"):  # a squared distance beyond the dtype's range is inf
            np.ldexp(out, exponent if metric == "euclidean" else 2 * exponent, out=out)
    return out


def _rescale(X, Y):
    """Scale X and Y by one power of two when their magnitude would overflow or underflow.

    Returns (X, Y, e) with the distances of the originals equal to 2**e times those of the scaled
    arrays (e = 0: nothing done, no copy).
    """
    fi = np.finfo(X.dtype)
    big = max(max(float(A.max(initial=0.0)), -float(A.min(initial=0.0)))   # no |A| temporary
              for A in (X, Y) if A is not None)
    d = max(X.shape[1], 1)
    hi = np.sqrt(float(fi.max) / (16.0 * d))
    lo = np.sqrt(float(fi.tiny) / float(fi.eps))
    if big == 0.0 or lo <= big <= hi:
        return X, Y, 0
    e = int(np.frexp(big)[1])                 # big = f 2**e with f in [0.5, 1)
    scale = lambda A: None if A is None else np.ldexp(A, -e).astype(X.dtype, copy=False)
    return scale(X), scale(Y), e


def _float_probe(A):
    """A stand-in with A's dtype for the promotion rule, without converting A."""
    dt = getattr(A, "dtype", None)
    if isinstance(dt, np.dtype):
        return np.empty(0, dtype=dt)
    return np.asarray(A)


# ---- torch / cupy CUDA arrays: computed where they live, returned there -----------------------------

def _pairwise_device_array(X, Y, metric, device):
    if device == "cpu":
        raise ValueError(
            "X is a CUDA array but device='cpu'; move it to the host first (.cpu().numpy() for "
            "torch, .get() for cupy) or use device='auto'/'cuda'."
        )
    _backend.resolve_device("cuda")
    from . import _cuda

    arrays = [X] if Y is None else [X, Y]
    kinds = [f"{type(a).__module__}.{type(a).__name__}" + ("" if is_cuda_array(a) else " on the host")
             for a in arrays]
    if not all(is_cuda_array(a) for a in arrays) or len({cuda_framework(a) for a in arrays}) != 1:
        raise TypeError(
            "X and Y must both be CUDA arrays of the same framework (torch or cupy); got "
            f"{' and '.join(kinds)}."
        )
    fw = cuda_framework(X)
    infos = [cuda_array_info(a, name) for name, a in zip(("X", "Y"), arrays)]
    if len(infos) == 2:
        if infos[0][2] != infos[1][2]:
            raise TypeError("X and Y on the GPU must have the same dtype; convert one of them.")
        if infos[0][1][1] != infos[1][1][1]:
            raise ValueError(
                f"X and Y must have the same number of columns; got {infos[0][1][1]} and "
                f"{infos[1][1][1]}."
            )
    device_of = (lambda A: A.device.index) if fw == "torch" else (lambda A: A.device.id)
    device_id = device_of(X)
    if Y is not None and device_of(Y) != device_id:
        raise ValueError(
            f"X and Y must be on the same GPU; got X on device {device_id} and Y on device "
            f"{device_of(Y)}. Copy Y to X's device first (Y.to(X.device) for torch, "
            "cupy.asarray(Y) inside `with X.device:` for cupy)."
        )
    n, d = infos[0][1]
    m = n if Y is None else infos[1][1][0]
    double = infos[0][2] == "<f8"
    if fw == "torch":
        import torch

        out = torch.empty((n, m), dtype=torch.float64 if double else torch.float32, device=X.device)
        stream = torch.cuda.current_stream(X.device).cuda_stream
    else:
        import cupy

        with cupy.cuda.Device(device_id):  # cupy keeps a current stream per device: X's one
            out = cupy.empty((n, m), dtype=cupy.float64 if double else cupy.float32)
            stream = cupy.cuda.get_current_stream().ptr
    _cuda.pairwise_distances_device(
        infos[0][0], 0 if Y is None else infos[1][0], out.__cuda_array_interface__["data"][0],
        n, m, d, double, metric, stream, device_id,
    )
    return out
