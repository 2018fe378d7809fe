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

from .diffusion import DiffusionMaps, NetworkTransformation, precisions_from_jacobians, precisions_from_neighborhoods
from .diffusion import GeometricHarmonics, intrinsic_dimension, whitney_check

__all__ += ["DiffusionMaps", "NetworkTransformation", "precisions_from_jacobians", "precisions_from_neighborhoods"]
__all__ += ["GeometricHarmonics", "intrinsic_dimension", "whitney_check"]

from .alignment import ICP, LinearMap, Procrustes, RidgeMap, StitchingMLP, analytic_map, class_means
from .evaluation import mrr, retrieval_ranks, stitched_accuracy, top_k_accuracy, verification_accuracy
from .relative import RelativeGeodesic, geodesic_energies, relative_representation
from .similarity import cka, minibatch_cka, mutual_knn, pwcca, svcca

__all__ += ["Procrustes", "LinearMap", "RidgeMap", "analytic_map", "class_means", "ICP",
            "StitchingMLP", "relative_representation", "geodesic_energies", "RelativeGeodesic",
            "cka", "minibatch_cka", "svcca", "pwcca", "mutual_knn", "mrr", "top_k_accuracy",
            "retrieval_ranks", "stitched_accuracy", "verification_accuracy"]

from .topology import r_cross_barcode, rtd, vr_barcode
from .rtd_lite import rtd_lite

__all__ += ["vr_barcode", "r_cross_barcode", "rtd", "rtd_lite"]

from . import measures
from .measures import (bures_distance, bures_similarity, cca, cknna, disagreement, ensd, gulp, imd,
                       jaccard_knn, procrustes_distance, rank_similarity, regression_predictivity, rsa,
                       second_order_cosine, shape_distance)

__all__ += ["measures", "procrustes_distance", "shape_distance", "cca", "rsa", "jaccard_knn",
            "rank_similarity", "second_order_cosine", "cknna", "bures_distance", "bures_similarity",
            "ensd", "gulp", "regression_predictivity", "imd", "disagreement"]

from .compare import ComparisonResult, compare_many

__all__ += ["ComparisonResult", "compare_many"]
