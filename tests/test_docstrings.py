"""numpydoc validation of the public API's docstrings (skips when numpydoc is not installed).

Scope: every name in ``__all__`` of latentbridge, latentbridge.torch, latentbridge.measures,
latentbridge.plotting and latentbridge.datasets (submodules and dunder names excluded), and the public
methods and properties that the public classes define themselves.

Checks (numpydoc's error codes), a modest set on purpose:

- GL08 -- the object has a docstring (names and their public methods/properties);
- PR01 -- every parameter of the signature is documented; for a class, a field may be documented in
  its ``Attributes`` section instead (dataclasses and named tuples document their fields there);
- PR02 -- no documented parameter that the signature lacks;
- RT01 -- a function has a ``Returns`` (or ``Yields``) section.

PR01/PR02/RT01 apply to the module-level names; the methods of the estimators follow scikit-learn's
conventions (``fit(X, y)`` returns ``self``) and are only required to have a docstring. The style checks
(see-also sections, examples, descriptions ending in a period, ...) are left out.
"""

import importlib
import inspect

import pytest

validate = pytest.importorskip("numpydoc.validate", reason="numpydoc is not installed (pip install numpydoc)")
docscrape = pytest.importorskip("numpydoc.docscrape")

MODULES = ["latentbridge", "latentbridge.torch", "latentbridge.measures", "latentbridge.plotting",
           "latentbridge.datasets"]
NAME_CHECKS = ("GL08", "PR01", "PR02", "RT01")
METHOD_CHECKS = ("GL08",)


def _public_names():
    out = []
    for modname in MODULES:
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if name.startswith("__") or inspect.ismodule(obj):
                continue
            if not (inspect.isclass(obj) or callable(obj)):
                continue  # constants (tuples, dicts) have no docstring of their own
            out.append(f"{modname}.{name}")
    return out


def _public_methods():
    out = []
    for path in _public_names():
        modname, name = path.rsplit(".", 1)
        obj = getattr(importlib.import_module(modname), name)
        if not inspect.isclass(obj):
            continue
        for attr, value in vars(obj).items():
            if not attr.startswith("_") and (inspect.isfunction(value) or isinstance(value, property)):
                out.append(f"{path}.{attr}")
    return out


def _documented_fields(cls):
    """Names a class documents in its Parameters or Attributes sections."""
    doc = docscrape.ClassDoc(cls)
    return {name.strip() for section in ("Parameters", "Attributes") for p in doc[section] for name in p.name.split(",")}


def _errors(path, checks):
    errors = [(code, msg) for code, msg in validate.validate(path)["errors"] if code in checks]
    modname, name = path.rsplit(".", 1)
    obj = getattr(importlib.import_module(modname), name, None) if modname in MODULES else None
    if inspect.isclass(obj) and not issubclass(obj, BaseException):  # exceptions take *args
        signature = set(inspect.signature(obj).parameters) - {"self", "args", "kwargs"}
        if signature <= _documented_fields(obj):
            errors = [(code, msg) for code, msg in errors if code != "PR01"]
    return errors


def test_the_scope_is_not_empty():
    names = _public_names()
    # a scope that silently lost its modules would pass trivially
    assert len(names) > 60, names
    assert "latentbridge.rtd" in names and "latentbridge.torch.compare_layers" in names
    assert "latentbridge.plotting.plot_barcode" in names and "latentbridge.measures.registry" in names


@pytest.mark.parametrize("path", _public_names())
def test_public_name_docstring(path):
    errors = _errors(path, NAME_CHECKS)
    assert not errors, f"{path}: " + "; ".join(f"{code} {msg}" for code, msg in errors)


@pytest.mark.parametrize("path", _public_methods())
def test_public_method_has_docstring(path):
    errors = _errors(path, METHOD_CHECKS)
    assert not errors, f"{path}: " + "; ".join(f"{code} {msg}" for code, msg in errors)


def test_the_validator_catches_an_undocumented_parameter():
    # the oracle for the checks themselves: a function with a gap in its docstring is reported
    errors = dict(validate.validate(f"{__name__}._badly_documented")["errors"])
    assert "PR01" in errors and "RT01" in errors and "PR02" in errors


def _badly_documented(a, b):
    """Add two numbers.

    Parameters
    ----------
    a : float
        The first.
    c : float
        Not a parameter.
    """
    return a + b
