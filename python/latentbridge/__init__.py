"""latentbridge: did two networks learn the same thing, and how do I translate one into the other?

Compare representations (RTD / R-Cross-Barcodes, CKA, SVCCA), align them (orthogonal, linear, ridge,
analytic classifier maps, ICP, MLP stitching), re-express them in model-independent coordinates
(relative representations, Mahalanobis diffusion maps) and build transformations between networks,
from activations alone, with a C++/CUDA core.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("latentbridge")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

from ._backend import cuda_available, show_config
from ._base import NotFittedError
from .distance import pairwise_distances

__all__ = [
    "__version__",
    "cuda_available",
    "show_config",
    "NotFittedError",
    "pairwise_distances",
]
