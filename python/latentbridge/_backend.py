"""Device selection: a lazy, cached CUDA probe and the one place that maps a device to its kernels.

The probe never runs at ``import latentbridge`` (initialising CUDA before ``fork()`` breaks CUDA in
child processes, and import should stay cheap); it runs the first time a function is called with
``device="auto"`` or ``"cuda"``, or when :func:`cuda_available` / :func:`show_config` is called.
``LATENTBRIDGE_DISABLE_CUDA=1`` forces the CPU.
"""

from __future__ import annotations

import functools
import os
import platform
import sys

DEVICES = ("auto", "cpu", "cuda")

__all__ = ["cuda_status", "cuda_available", "resolve_device", "kernels", "show_config", "config"]


@functools.lru_cache(maxsize=None)
def cuda_status():
    """Return ``(available, reason)``; the reason explains a missing device or build."""
    if os.environ.get("LATENTBRIDGE_DISABLE_CUDA", "0").strip() not in ("", "0"):
        return False, "disabled by the environment variable LATENTBRIDGE_DISABLE_CUDA"
    try:
        from . import _cuda
    except ImportError as exc:
        return False, f"latentbridge was built without CUDA support or its CUDA module failed to load ({exc})"
    n, msg = _cuda.device_count()
    if n == 0:
        return False, f"no usable CUDA device: {msg}"
    return True, f"{n} device(s); device 0 is {_cuda.device_name(0)}"


def cuda_available():
    """True when the CUDA extension is built and a CUDA device is usable.

    Returns
    -------
    bool
        The first element of ``latentbridge._backend.cuda_status()``; ``show_config()`` prints the reason when False.
    """
    return cuda_status()[0]


def resolve_device(device):
    """Map ``"auto" | "cpu" | "cuda"`` to ``"cpu"`` or ``"cuda"``.

    Raises
    ------
    ValueError
        For any other value.
    RuntimeError
        For ``"cuda"`` when no CUDA device is usable (with the probe's reason).
    """
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}; got {device!r}.")
    if device == "cpu":
        return "cpu"
    ok, reason = cuda_status()
    if device == "cuda" and not ok:
        raise RuntimeError(
            f"device='cuda' was requested but CUDA is unavailable: {reason}. Use device='cpu' "
            "or 'auto', or rebuild with `pip install . -Ccmake.define.LATENTBRIDGE_CUDA=ON` on a "
            "machine with the CUDA toolkit."
        )
    return "cuda" if ok else "cpu"


def kernels(resolved):
    """Extension module for an already-resolved device; both expose the same function names."""
    if resolved == "cuda":
        from . import _cuda

        return _cuda
    from . import _core

    return _core


def config():
    """Build and runtime configuration as a dict (what :func:`show_config` prints)."""
    from . import __version__, _core

    info = dict(_core.build_info())
    ok, reason = cuda_status()
    cfg = {
        "latentbridge": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": __import__("numpy").__version__,
        "scipy": __import__("scipy").__version__,
        "compiler": info["compiler"],
        "eigen": info["eigen"],
        "cpu_simd": info["simd"],
        "cpu_simd_available": ", ".join(info["simd_available"]),
        "cpu_threads": info["hardware_threads"],
        "cuda_available": ok,
        "cuda_status": reason,
    }
    if ok:
        from . import _cuda

        cfg.update({f"cuda_{k}": v for k, v in dict(_cuda.build_info()).items()})
    return cfg


def show_config(file=None):
    """Print the version, build options, CPU threads and CUDA status (with the reason).

    Parameters
    ----------
    file : file-like, optional
        Where to print (default ``sys.stdout``); ``latentbridge._backend.config()`` returns the same as a dict.
    """
    cfg = config()
    width = max(len(k) for k in cfg)
    for key, value in cfg.items():
        print(f"{key:<{width}}  {value}", file=file or sys.stdout)
