"""The estimator base: scikit-learn's ``BaseEstimator``, the fitted-state check and the per-fit input
bookkeeping (feature count and names) that every latentbridge estimator shares.

latentbridge's estimators are scikit-learn estimators: ``get_params``/``set_params``, ``clone``,
``repr`` and ``__sklearn_tags__`` come from :class:`sklearn.base.BaseEstimator`, so they work in
pipelines, grid searches and ``cross_val_score``. What is ours is the array rule
(:func:`latentbridge._validation.as_float_matrix`: float32 kept, NaN/inf and non-numeric input
rejected with messages that name the argument) and :class:`NotFittedError`, a subclass of
scikit-learn's, so ``except sklearn.exceptions.NotFittedError`` catches it too.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator as _SklearnBaseEstimator
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted as _sklearn_check_is_fitted
from sklearn.utils.validation import validate_data

from ._validation import as_float_matrix

__all__ = ["BaseEstimator", "NotFittedError", "check_is_fitted", "check_features",
           "record_features"]


class NotFittedError(_SklearnNotFittedError):
    """Raised when a method that needs a fitted estimator is called before ``fit``.

    A subclass of :class:`sklearn.exceptions.NotFittedError` (itself a ValueError and an
    AttributeError).
    """


class BaseEstimator(_SklearnBaseEstimator):
    """Base class of every latentbridge estimator: :class:`sklearn.base.BaseEstimator`.

    Subclasses store their parameters unchanged in ``__init__`` (no validation there, scikit-learn's
    rule) and set fitted attributes, whose names end with an underscore, in ``fit``. Mixins
    (``RegressorMixin``, ``TransformerMixin``, ...) go to the left of this class.
    """


def check_is_fitted(estimator, attributes=None):
    """Raise :class:`NotFittedError` unless ``fit`` has set the fitted attributes.

    Parameters
    ----------
    estimator : estimator instance
    attributes : str or list of str, optional
        Attributes that must all exist; by default any attribute ending with ``_`` (or
        ``__sklearn_is_fitted__``) shows that the estimator is fitted (scikit-learn's rule).
    """
    try:
        _sklearn_check_is_fitted(estimator, attributes)
    except _SklearnNotFittedError as exc:
        raise NotFittedError(str(exc)) from None


def check_features(estimator, X, *, reset, name="X", min_rows=1):
    """``as_float_matrix(X)`` plus scikit-learn's bookkeeping of the input's columns.

    With ``reset=True`` (in ``fit``) sets ``n_features_in_`` and, for a dataframe with string
    column names, ``feature_names_in_``; with ``reset=False`` (``transform``/``predict``) raises
    ValueError when the number of columns differs from the fitted one and warns when the column
    names differ.

    Returns
    -------
    ndarray (n, p), float32 or float64, C-contiguous (see ``as_float_matrix``).
    """
    X_checked = as_float_matrix(X, name, min_rows=min_rows)
    record_features(estimator, X, reset=reset)
    return X_checked


def record_features(estimator, X, *, reset):
    """scikit-learn's feature bookkeeping for an ``X`` already checked by ``as_float_matrix``.

    The raw ``X`` is passed because it still carries a dataframe's column names.
    """
    validate_data(estimator, X, skip_check_array=True, reset=reset)
