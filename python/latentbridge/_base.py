"""A minimal scikit-learn style base estimator: parameters come from ``__init__``'s signature."""

from __future__ import annotations

import inspect

__all__ = ["BaseEstimator", "NotFittedError", "check_is_fitted"]


class NotFittedError(ValueError, AttributeError):
    """Raised when a method that needs a fitted estimator is called before ``fit``."""


class BaseEstimator:
    """Base class: ``get_params``/``set_params``/``__repr__`` from the ``__init__`` signature.

    Subclasses store their parameters unchanged in ``__init__`` (no validation there) and set
    fitted attributes, whose names end with an underscore, in ``fit``.
    """

    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep=True):
        """Parameters of this estimator (nested estimators' as ``name__param`` when deep)."""
        out = {}
        for name in self._param_names():
            value = getattr(self, name)
            out[name] = value
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update({f"{name}__{k}": v for k, v in value.get_params(deep=True).items()})
        return out

    def set_params(self, **params):
        """Set parameters (``name__param`` reaches nested estimators); returns ``self``."""
        valid = self._param_names()
        nested = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for {type(self).__name__}; valid parameters "
                    f"are {valid}."
                )
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub in nested.items():
            getattr(self, name).set_params(**sub)
        return self

    def __repr__(self):
        sig = inspect.signature(type(self).__init__)
        parts = []
        for name in self._param_names():
            value = getattr(self, name)
            default = sig.parameters[name].default
            if default is inspect.Parameter.empty or not _same(value, default):
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _same(a, b):
    try:
        return bool(a == b) if type(a) is type(b) else a is b
    except Exception:  # arrays and other objects without a scalar ==
        return a is b


def check_is_fitted(estimator, attributes=None):
    """Raise :class:`NotFittedError` unless ``fit`` has set the fitted attributes."""
    if attributes is None:
        fitted = [k for k in vars(estimator) if k.endswith("_") and not k.startswith("__")]
    else:
        attributes = [attributes] if isinstance(attributes, str) else list(attributes)
        fitted = [a for a in attributes if hasattr(estimator, a)]
        fitted = fitted if len(fitted) == len(attributes) else []
    if not fitted:
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before using this estimator."
        )
