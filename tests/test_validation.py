"""The one rule for scalar parameters (check_scalar / check_bool) and its use by the estimators:
a value of the wrong type is a TypeError, a value of the right type outside the range a ValueError;
strings never pass as numbers, booleans never pass as numbers or numbers as booleans."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

import latentbridge as lb
from latentbridge._validation import as_float_matrix, check_bool, check_scalar

WRONG_TYPES_FOR_NUMBERS = ["1.0", b"1", True, np.bool_(False), None, [1.0], np.array(1.0), 1j,
                           object()]


@pytest.mark.parametrize("value", WRONG_TYPES_FOR_NUMBERS, ids=repr)
@pytest.mark.parametrize("kind", ["real", "int"])
def test_wrong_type_is_type_error(value, kind):
    with pytest.raises(TypeError, match="alpha must be (a real number|an integer); got"):
        check_scalar(value, "alpha", kind=kind)


@pytest.mark.parametrize("value,expected", [(2, 2.0), (np.float32(0.5), 0.5), (np.int64(3), 3.0),
                                            (1e-300, 1e-300)])
def test_real_values_come_back_as_float(value, expected):
    out = check_scalar(value, "x", minimum=0.0)
    assert type(out) is float and out == expected


def test_int_kind():
    assert type(check_scalar(np.int32(4), "n", kind="int")) is int
    with pytest.raises(TypeError, match="n must be an integer"):
        check_scalar(4.0, "n", kind="int")          # a float is the wrong type, even if whole
    with pytest.raises(ValueError, match=r"n must be in \[1, 3\]; got 4"):
        check_scalar(4, "n", kind="int", minimum=1, maximum=3)


@pytest.mark.parametrize("value,bounds,message", [
    (-1.0, dict(minimum=0.0), r"x must be >= 0.0; got -1.0"),
    (0.0, dict(minimum=0.0, include_minimum=False), r"x must be > 0.0; got 0.0"),
    (1.0, dict(maximum=1.0, include_maximum=False), r"x must be < 1.0; got 1.0"),
    (2.0, dict(minimum=0.0, maximum=1.0), r"x must be in \[0.0, 1.0\]; got 2.0"),
    (1.0, dict(minimum=0.0, maximum=1.0, include_maximum=False), r"x must be in \[0.0, 1.0\)"),
    (float("nan"), {}, "x must be a finite number; got nan"),
    (float("inf"), {}, "x must be a finite number; got inf"),
    (-math.inf, dict(finite=False, minimum=0.0), "x must be >= 0.0; got -inf"),
])
def test_right_type_out_of_range_is_value_error(value, bounds, message):
    with pytest.raises(ValueError, match=message):
        check_scalar(value, "x", **bounds)


def test_infinity_when_allowed_but_never_nan():
    assert check_scalar(math.inf, "threshold", finite=False, minimum=0.0) == math.inf
    with pytest.raises(ValueError, match="finite"):
        check_scalar(math.nan, "threshold", finite=False)


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(-10, 10), st.floats(-10, 10))
def test_range_property(value, a, b):
    """For any float: returned unchanged exactly when finite and inside [lo, hi], else ValueError."""
    lo, hi = min(a, b), max(a, b)
    inside = math.isfinite(value) and lo <= value <= hi
    if inside:
        assert check_scalar(value, "v", minimum=lo, maximum=hi) == value
    else:
        with pytest.raises(ValueError):
            check_scalar(value, "v", minimum=lo, maximum=hi)


@given(st.text())
def test_strings_never_pass(text):
    with pytest.raises(TypeError):
        check_scalar(text, "v")


def test_check_bool():
    assert check_bool(np.bool_(True), "flag") is True and check_bool(False, "flag") is False
    for value in (1, 0, "True", None, np.array(True)):
        with pytest.raises(TypeError, match="flag must be True or False"):
            check_bool(value, "flag")


# ---- the estimators follow the rule ---------------------------------------------------------------

@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4))
    return X, X @ rng.standard_normal((4, 4))


@pytest.mark.parametrize("make,error,message", [
    (lambda: lb.RidgeMap(alpha="1.0"), TypeError, "alpha must be a real number"),
    (lambda: lb.RidgeMap(alpha=-1.0), ValueError, "alpha must be >= 0"),
    (lambda: lb.RidgeMap(alpha=np.nan), ValueError, "alpha must be a finite number"),
    (lambda: lb.RidgeMap(alphas=["1.0", 2.0]), TypeError, r"alphas\[0\] must be a real number"),
    (lambda: lb.RidgeMap(alphas=[1.0, -2.0]), ValueError, r"alphas\[1\] must be >= 0"),
    (lambda: lb.RidgeMap(alphas=2.0), TypeError, "alphas must be a sequence"),
    (lambda: lb.RidgeMap(fit_intercept=1), TypeError, "fit_intercept must be True or False"),
    (lambda: lb.LinearMap(fit_intercept="yes"), TypeError, "fit_intercept must be True or False"),
    (lambda: lb.Procrustes(center=0), TypeError, "center must be True or False"),
    (lambda: lb.ICP(tol="1e-6"), TypeError, "tol must be a real number"),
    (lambda: lb.ICP(max_iter=2.0), TypeError, "max_iter must be an integer"),
    (lambda: lb.ICP(max_iter=0), ValueError, "max_iter must be >= 1"),
    (lambda: lb.StitchingMLP(alpha="1e-4"), TypeError, "alpha must be a real number"),
    (lambda: lb.StitchingMLP(learning_rate_init=0.0), ValueError, "learning_rate_init must be > 0"),
    (lambda: lb.StitchingMLP(k=True), TypeError, "k must be an integer"),
])
def test_estimator_parameters_follow_the_rule(make, error, message, pair):
    with pytest.raises(error, match=message):
        make().fit(*pair)


def test_geodesic_parameters_follow_the_rule(pair):
    X = pair[0]
    with pytest.raises(TypeError, match="n_steps must be an integer"):
        lb.geodesic_energies(X[:2], X[2:4], np.tanh, n_steps="8")
    with pytest.raises(ValueError, match="n_steps must be >= 1"):
        lb.geodesic_energies(X[:2], X[2:4], np.tanh, n_steps=0)


# ---- array messages that scikit-learn's checks and users rely on -----------------------------------

def test_array_messages():
    with pytest.raises(TypeError, match="X is a sparse matrix; sparse input is not supported"):
        as_float_matrix(sparse.csr_matrix(np.eye(3)), "X")
    with pytest.raises(ValueError, match=r"got shape \(3,\)\. Reshape your data: X.reshape"):
        as_float_matrix(np.ones(3), "X")
    with pytest.raises(ValueError, match=r"Y has 1 sample\(s\) .* at least 2 required"):
        as_float_matrix(np.ones((1, 3)), "Y", min_rows=2)
    with pytest.raises(ValueError, match=r"X has 0 feature\(s\) \(shape=\(4, 0\)\) while a minimum"):
        as_float_matrix(np.ones((4, 0)), "X")
