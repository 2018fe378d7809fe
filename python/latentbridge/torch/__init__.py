"""The PyTorch bridge: from models, not just arrays.

``import latentbridge`` never imports torch; this subpackage does (``pip install 'latentbridge[torch]'``).

* :func:`activations` - named layers' outputs as (n, features) arrays, by forward hooks, with pooling
  of convolutional maps and token sequences.
* :func:`compare_layers` - layer x layer similarity of two models on the same samples (streamed exact
  linear CKA; RTD, mutual kNN, SVCCA, ... on a seeded subsample).
* :func:`jacobian_precisions`, :func:`burst_precisions` - per-point Mahalanobis precisions for
  :class:`latentbridge.DiffusionMaps` from a model's Jacobians or from input bursts.
* :func:`stitched_score` - a fitted map scored through network B's head or decoder.
* :class:`RelativeStitching` - zero-shot stitching on relative coordinates.
* :func:`rtd_loss` - Representation Topology Divergence as a differentiable loss (RTD-AE).
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError(
        "latentbridge.torch needs PyTorch: pip install 'latentbridge[torch]' (or pip install torch)."
    ) from None

from ._activations import activations
from ._compare import compare_layers

__all__ = ["activations", "compare_layers", "jacobian_precisions", "burst_precisions", "stitched_score",
           "RelativeStitching", "rtd_loss"]

_LAZY = {
    "jacobian_precisions": "._precisions",
    "burst_precisions": "._precisions",
    "stitched_score": "._stitching",
    "RelativeStitching": "._stitching",
    "rtd_loss": "._rtd_loss",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
