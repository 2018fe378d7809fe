"""Mahalanobis diffusion maps and transformations between networks.

Implements Algorithms 1 and 2 of Bertalan, Dietrich, Kevrekidis et al., "Transformations between deep
neural networks" (arXiv:2007.05646), as a staged pipeline:

* :mod:`.precisions`: per-point precisions (or their low-rank factors) from neighbourhoods or
  Jacobians, and the validation of what ``fit`` accepts;
* :mod:`.graph`: nearest neighbours (Euclidean, or Mahalanobis re-ranked among Euclidean
  candidates), the bandwidth and the normalised kernel graph;
* :mod:`.spectrum`: eigenpairs of the kernel, diffusion coordinates, harmonic removal;
* :mod:`.maps`: the :class:`DiffusionMaps` estimator (validate -> graph -> spectrum -> coordinates);
* :mod:`.transformation`: :class:`NetworkTransformation` (``T = psi^-1 o O o phi``);
* :mod:`.exceptions`: the warnings.
"""

from .exceptions import (
    CandidateRecallWarning,
    DiffusionMapsWarning,
    DisconnectedGraphWarning,
    EigensolverWarning,
    NystromWarning,
)
from .maps import DiffusionMaps
from .precisions import precisions_from_jacobians, precisions_from_neighborhoods
from .transformation import NetworkTransformation

__all__ = [
    "DiffusionMaps",
    "NetworkTransformation",
    "precisions_from_neighborhoods",
    "precisions_from_jacobians",
    "DiffusionMapsWarning",
    "DisconnectedGraphWarning",
    "NystromWarning",
    "EigensolverWarning",
    "CandidateRecallWarning",
]
