"""torch/cupy interop: recognising framework arrays, bringing them to the host, describing CUDA arrays.

Nothing here imports torch or cupy: arrays are recognised by duck typing (the
``__cuda_array_interface__`` protocol, ``detach``/``as_tensor``), so latentbridge works without
either installed and never pays their import time.

* :func:`is_cuda_array` -- a device array (torch CUDA tensor, cupy array, ...), not a numpy array;
* :func:`tensor_module` -- the module of a torch-like tensor, to build tensors of the same kind;
* :func:`to_numpy` -- any array-like as a host numpy array;
* :func:`as_host_matrix` -- a checked float matrix on the host plus the tensor module to come back to;
* :func:`cuda_array_info` -- pointer, shape and dtype of a CUDA array, checked for the kernels.
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["is_cuda_array", "tensor_module", "to_numpy", "as_host_matrix", "cuda_framework",
           "cuda_array_info"]


def is_cuda_array(A):
    """True for an array exposing ``__cuda_array_interface__`` (device memory), numpy excluded."""
    return hasattr(A, "__cuda_array_interface__") and not isinstance(A, np.ndarray)


def tensor_module(A):
    """The top-level module of a torch-like tensor, or None.

    torch-like: the array has ``detach`` and its top-level module has ``as_tensor`` (torch, or any
    framework with the same two entry points). Used to hand a decoder tensors of the framework,
    dtype and device of the caller's input.
    """
    if isinstance(A, np.ndarray):
        return None
    module = sys.modules.get(type(A).__module__.split(".")[0])
    if module is not None and hasattr(module, "as_tensor") and hasattr(A, "detach"):
        return module
    return None


def to_numpy(A):
    """``A`` as a numpy array on the host: torch ``detach().cpu().numpy()``, cupy ``.get()``,
    anything else ``np.asarray``."""
    if isinstance(A, np.ndarray):
        return A
    if hasattr(A, "detach"):
        return A.detach().cpu().numpy()
    if hasattr(A, "get") and is_cuda_array(A):
        return A.get()
    return np.asarray(A)


def as_host_matrix(A, name):
    """``(host float matrix, tensor module or None)`` for an input that may be a tensor.

    The matrix follows :func:`latentbridge._validation.as_float_matrix`; the module is
    :func:`tensor_module` of ``A`` (None for numpy and array-likes).
    """
    from ._validation import as_float_matrix

    module = tensor_module(A)
    return as_float_matrix(to_numpy(A) if module is not None else A, name), module


def cuda_framework(A):
    """``"torch"`` or ``"cupy"`` for a CUDA array of those frameworks; TypeError otherwise."""
    root = type(A).__module__.split(".")[0]
    if root not in ("torch", "cupy"):
        raise TypeError(
            f"GPU arrays of type {type(A).__module__}.{type(A).__name__} are not supported; pass a "
            "torch tensor, a cupy array or a numpy array."
        )
    return root


def cuda_array_info(A, name):
    """``(device pointer, shape, typestr)`` of a 2-D float32/float64 C-contiguous finite CUDA array.

    Raises
    ------
    TypeError
        Unsupported framework or dtype.
    ValueError
        Not 2-D, not C-contiguous, empty, or containing NaN/infinity.
    """
    framework = cuda_framework(A)
    cai = A.__cuda_array_interface__
    shape, typestr = tuple(cai["shape"]), cai["typestr"]
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D with shape (n_samples, n_features); got {shape}.")
    if typestr not in ("<f4", "<f8"):
        raise TypeError(
            f"{name} on the GPU must be float32 or float64; got typestr {typestr}. Convert it "
            "on the device first (x.float() / x.double())."
        )
    itemsize = int(typestr[-1])
    strides = cai.get("strides")
    if strides is not None and tuple(strides) != (shape[1] * itemsize, itemsize) and shape[0] > 1:
        raise ValueError(f"{name} must be C-contiguous on the device; call .contiguous() first.")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {shape}); at least one row and column needed.")
    if framework == "torch":
        finite = bool(A.isfinite().all())
    else:
        finite = bool(sys.modules["cupy"].isfinite(A).all())
    if not finite:
        raise ValueError(f"{name} contains NaN or infinity.")
    return cai["data"][0], shape, typestr
