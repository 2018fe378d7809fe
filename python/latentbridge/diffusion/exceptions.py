"""The warnings of :mod:`latentbridge.diffusion` (one base class, one subclass per condition)."""

__all__ = ["DiffusionMapsWarning", "DisconnectedGraphWarning", "NystromWarning",
           "CandidateRecallWarning", "EigensolverWarning", "WhitneyWarning"]


class DiffusionMapsWarning(UserWarning):
    """Base class of the warnings of :mod:`latentbridge.diffusion`."""


class DisconnectedGraphWarning(DiffusionMapsWarning):
    """The kernel graph is disconnected: several eigenvalues equal 1 (epsilon or k too small)."""


class NystromWarning(DiffusionMapsWarning):
    """An eigenvalue is (near) zero, so the Nystrom extension divides by (almost) zero."""


class CandidateRecallWarning(DiffusionMapsWarning):
    """Euclidean candidates miss many Mahalanobis neighbours (strongly anisotropic metrics)."""


class EigensolverWarning(DiffusionMapsWarning):
    """The eigensolver stopped before reaching its tolerance."""


class WhitneyWarning(DiffusionMapsWarning):
    """Fewer measurements than Whitney's ``2 d + 1``: the activation manifold may fold onto itself."""
