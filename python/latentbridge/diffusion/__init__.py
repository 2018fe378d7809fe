"""Mahalanobis diffusion maps and transformations between networks.

Implements Algorithms 1 and 2 of Bertalan, Dietrich, Kevrekidis et al., "Transformations between deep
neural networks" (arXiv:2007.05646), as a staged pipeline:

* :mod:`.precisions`: per-point precisions (or their low-rank factors) from neighbourhoods or
  Jacobians, and the validation of what ``fit`` accepts;
* :mod:`.graph`: nearest neighbours (Euclidean, or Mahalanobis re-ranked among Euclidean
  candidates), the bandwidth and the normalised kernel graph;
* :mod:`.spectrum`: eigenpairs of the kernel, diffusion coordinates, harmonic removal;
* :mod:`.maps`: the :class:`DiffusionMaps` estimator (validate -> graph -> spectrum -> coordinates);
* :mod:`.transformation`: :class:`NetworkTransformation` (``T = psi^-1 o O o phi``; O from pairs
  or by ICP);
* :mod:`.harmonics`: :class:`GeometricHarmonics`, the Nystrom extension of any function sampled on
  the points (another network's neuron, output or decoder image over the embedding);
* :mod:`.dimension`: :func:`intrinsic_dimension` and :func:`whitney_check` (2 d + 1 measurements);
* :mod:`.exceptions`: the warnings.
"""

from .exceptions import (
    CandidateRecallWarning,
    DiffusionMapsWarning,
    DisconnectedGraphWarning,
    EigensolverWarning,
    NystromWarning,
    WhitneyWarning,
)
from .dimension import WhitneyCheck, intrinsic_dimension, whitney_check
from .harmonics import GeometricHarmonics
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
    "WhitneyWarning",
    "GeometricHarmonics",
    "intrinsic_dimension",
    "whitney_check",
    "WhitneyCheck",
]
