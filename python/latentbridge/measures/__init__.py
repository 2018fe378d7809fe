"""The standard representational similarity measures and one registry of what each promises.

``registry()`` maps every measure name (the new ones here and the existing CKA, SVCCA, PWCCA,
mutual kNN and RTD) to a :class:`MeasureInfo`: the function, whether it is a similarity or a
distance, its value on identical inputs, whether it is symmetric and a metric, and the
transformations of either input it is invariant to. The test suite checks every declared
invariance (and a non-invariance) of every entry, so the table cannot drift from the code.

Invariance vocabulary (a transformation T applied to a representation A of shape (n, d)):

``"orthogonal"``         A Q for an orthogonal Q (d, d)
``"isotropic_scaling"``  c A for a scalar c > 0
``"translation"``        A + 1 b^T (the same vector added to every row)
``"invertible_linear"``  A M for an invertible M (d, d)
``"permutation"``        A P for a permutation P of the units (columns)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from ._moments import RegularisationWarning
from .cca import cca
from .dimensions import ensd
from .functional import disagreement
from .neighbors import cknna, jaccard_knn, rank_similarity, second_order_cosine
from .predictive import gulp, regression_predictivity
from .rsa import rsa
from .shape import bures_distance, bures_similarity, procrustes_distance, shape_distance
from .spectral import imd

__all__ = ["registry", "MeasureInfo", "INVARIANCES", "RegularisationWarning", "procrustes_distance",
           "shape_distance", "cca", "rsa", "jaccard_knn", "rank_similarity", "second_order_cosine",
           "cknna", "bures_distance", "bures_similarity", "ensd", "gulp", "regression_predictivity",
           "imd", "disagreement"]

INVARIANCES = ("orthogonal", "isotropic_scaling", "translation", "invertible_linear", "permutation")


@dataclass(frozen=True)
class MeasureInfo:
    """What a registered measure promises (for its default parameters).

    Attributes
    ----------
    name : str
    func : callable ``func(X, Y, **options) -> float``
    kind : {"similarity", "distance"}
        Larger means more alike (similarity) or less alike (distance).
    identical_value : float or None
        The value of ``func(X, X)``; None when it depends on X (e.g. ENSD returns the participation
        ratio of X) or is below its bound for a regularised estimator.
    symmetric : bool
        ``func(X, Y) == func(Y, X)``.
    metric : bool
        A metric (pseudometric) in the mathematical sense on representations modulo the
        invariances: symmetric, zero on identical inputs, triangle inequality.
    invariances : frozenset of str
        Transformations (see :data:`INVARIANCES`) of either input that leave the value unchanged.
    """

    name: str
    func: Callable
    kind: str
    identical_value: Optional[float]
    symmetric: bool
    metric: bool
    invariances: frozenset


_RIGID = ("orthogonal", "isotropic_scaling", "translation", "permutation")
_ANGULAR = ("orthogonal", "isotropic_scaling", "permutation")

# name, kind, identical value, symmetric, metric, invariances
_TABLE = (
    ("cka", "similarity", 1.0, True, False, _RIGID),
    ("minibatch_cka", "similarity", 1.0, True, False, _RIGID),
    ("svcca", "similarity", 1.0, True, False, _RIGID),
    ("pwcca", "similarity", 1.0, False, False, ("isotropic_scaling", "translation", "permutation")),
    ("mutual_knn", "similarity", 1.0, True, False, _ANGULAR),
    ("rtd", "distance", 0.0, True, False, _RIGID),
    ("rtd_lite", "distance", 0.0, True, False, _RIGID),
    ("procrustes_distance", "distance", 0.0, True, True, _RIGID),
    ("shape_distance", "distance", 0.0, True, True, _RIGID),
    ("cca", "similarity", 1.0, True, False, INVARIANCES),
    ("rsa", "similarity", 1.0, True, False, ("isotropic_scaling", "permutation")),
    ("jaccard_knn", "similarity", 1.0, True, False, _ANGULAR),
    ("rank_similarity", "similarity", 1.0, True, False, _ANGULAR),
    ("second_order_cosine", "similarity", 1.0, True, False, _ANGULAR),
    ("cknna", "similarity", 1.0, False, False, _ANGULAR),
    ("bures_distance", "distance", 0.0, True, True, ("orthogonal", "translation", "permutation")),
    ("bures_similarity", "similarity", 1.0, True, False, _RIGID),
    ("ensd", "similarity", None, True, False, _RIGID),
    ("gulp", "distance", 0.0, True, True, _RIGID),
    ("regression_predictivity", "similarity", None, False, False,
     ("orthogonal", "translation", "permutation")),
    ("imd", "distance", 0.0, True, False, _RIGID),
    ("disagreement", "distance", 0.0, True, True, ("isotropic_scaling",)),
)


def _functions():
    from .. import similarity, topology
    from ..rtd_lite import rtd_lite   # the module's name is shadowed by the function's

    found = {name: globals().get(name) for name, *_ in _TABLE}
    for name in ("cka", "minibatch_cka", "svcca", "pwcca", "mutual_knn"):
        found[name] = getattr(similarity, name)
    found["rtd"] = topology.rtd
    found["rtd_lite"] = rtd_lite
    return found


def registry():
    """Every registered measure: a new dict name -> :class:`MeasureInfo` on each call.

    Returns
    -------
    dict of str to MeasureInfo
        The measure's name -> its function, kind, identical value, symmetry, metric flag and
        invariances; a fresh dict on each call, so editing it changes nothing registered.

    Examples
    --------
    >>> from latentbridge.measures import registry
    >>> info = registry()["procrustes_distance"]
    >>> info.kind, info.identical_value, info.metric, "orthogonal" in info.invariances
    ('distance', 0.0, True, True)
    """
    funcs = _functions()
    return {name: MeasureInfo(name, funcs[name], kind, value, symmetric, metric, frozenset(inv))
            for name, kind, value, symmetric, metric, inv in _TABLE}
