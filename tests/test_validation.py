"""The one rule for scalar parameters (check_scalar / check_bool) and its use by the estimators:
a value of the wrong type is a TypeError, a value of the right type outside the range a ValueError;
strings never pass as numbers, booleans never pass as numbers or numbers as booleans."""

import io
import math
import os
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

import latentbridge as lb
from latentbridge import _validation
from latentbridge._validation import (
    as_float_matrix,
    available_memory,
    check_allocation,
    check_bool,
    check_choice,
    check_n_jobs,
    check_positive_int,
    check_random_state,
    check_same_rows,
    check_scalar,
    result_dtype,
)

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


# ---- the array rule, one helper at a time (what the mutation run of _validation checks) -----------

def test_as_float_matrix_dtypes_layout_and_copies():
    X64 = np.arange(6.0).reshape(2, 3)
    assert as_float_matrix(X64) is X64                       # already right: no copy at all
    X32 = X64.astype(np.float32)
    assert as_float_matrix(X32) is X32
    for src in (np.float16, np.int8, np.uint16, np.int64, bool):
        got = as_float_matrix(X64.astype(src))
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, X64.astype(src).astype(np.float64))
    F = np.asfortranarray(X64)
    got = as_float_matrix(F)
    assert got.flags.c_contiguous and got is not F and np.array_equal(got, X64)
    assert as_float_matrix(X64, dtype=np.float32).dtype == np.float32
    assert as_float_matrix(X32, dtype="float64").dtype == np.float64
    assert as_float_matrix([[1, 2], [3, 4]]).dtype == np.float64
    with pytest.raises(TypeError, match=r"^internal: compute dtype must be float32 or float64, "
                                        r"got int64$"):
        as_float_matrix(X64, dtype=np.int64)
    inf = np.array([[1.0, np.inf]])
    assert as_float_matrix(inf, allow_nonfinite=True)[0, 1] == np.inf
    assert as_float_matrix(np.ones((1, 1)), min_rows=1, min_cols=1).shape == (1, 1)
    assert as_float_matrix(np.ones((2, 3)), min_rows=2, min_cols=3).shape == (2, 3)


class _FakeDeviceArray:
    __cuda_array_interface__ = {"shape": (2, 2), "typestr": "<f4", "data": (0, False),
                                "version": 3}


@pytest.mark.parametrize("value,exc,message", [
    ("abc", TypeError, r"^A must be a numeric 2-D array; got a str\.$"),
    (b"abc", TypeError, r"^A must be a numeric 2-D array; got a bytes\.$"),
    (sparse.csr_matrix(np.eye(2)), TypeError,
     r"^A is a sparse matrix; sparse input is not supported \(latentbridge's kernels work on "
     r"dense rows\)\. Convert it with X\.toarray\(\) if it fits in memory\.$"),
    (_FakeDeviceArray(), TypeError,
     r"^A is a GPU array; this function takes host arrays\. Move it with \.cpu\(\)\.numpy\(\) "
     r"\(torch\) or \.get\(\) \(cupy\)\.$"),
    ([[1.0, 2.0], [3.0]], TypeError, r"^A could not be converted to a numeric array: "),
    (np.ones((2, 2), dtype=np.complex64), TypeError,
     r"^A is complex \(complex64\); latentbridge works with real arrays\. Pass X\.real, "
     r"np\.abs\(X\) or stack real and imaginary parts as features\.$"),
    (np.array([["a"]]), TypeError, r"^A must be a numeric array; got dtype <U1\. Convert it with "
                                   r"np\.asarray\(X, dtype=np\.float64\)\.$"),
    (np.ones((2, 2), dtype=np.longdouble), TypeError,
     r"^A has dtype float128; only float16/32/64, integer and bool arrays are supported\. "
     r"Convert it with X\.astype\(np\.float64\)\.$"),
    (np.ones(3), ValueError, r"^A must be 2-D with shape \(n_samples, n_features\); got shape "
                             r"\(3,\)\. Reshape your data: X\.reshape\(-1, 1\) for a single "
                             r"feature or X\.reshape\(1, -1\) for a single sample\.$"),
    (np.ones((1, 2, 2)), ValueError, r"^A must be 2-D with shape \(n_samples, n_features\); got "
                                     r"shape \(1, 2, 2\)\.$"),
    (np.ones((1, 3)), ValueError, r"^A has 1 sample\(s\) \(rows, shape=\(1, 3\)\); at least 2 "
                                  r"required\.$"),
    (np.ones((3, 1)), ValueError, r"^A has 1 feature\(s\) \(shape=\(3, 1\)\) while a minimum of 2 "
                                  r"is required \(columns are features\)\.$"),
    (np.array([[0.0, 1.0, 2.0], [3.0, 4.0, np.nan]]), ValueError,
     r"^A contains NaN or infinity \(first at row 1, column 2\)\. Remove or impute those entries "
     r"first\.$"),
])
def test_as_float_matrix_messages_name_the_argument(value, exc, message):
    if isinstance(value, np.ndarray) and value.dtype == np.longdouble \
            and np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("long double is float64 on this platform")
    with pytest.raises(exc, match=message):
        as_float_matrix(value, "A", min_rows=2, min_cols=2)


def test_result_dtype():
    f32, f64 = np.ones(2, np.float32), np.ones(2)
    assert result_dtype(f32, f32) == np.float32
    assert result_dtype(f32, None) == np.float32
    assert result_dtype(f32, f64) == np.float64
    assert result_dtype(np.ones(2, np.int32)) == np.float64
    assert result_dtype() == np.float64 and result_dtype(None) == np.float64


def test_check_same_rows_names_both_arguments():
    check_same_rows(np.ones((3, 1)), np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"^A and B must have the same number of rows \(the same "
                                         r"samples in the same order\); got 3 and 4\.$"):
        check_same_rows(np.ones((3, 1)), np.ones((4, 1)), names=("A", "B"))
    with pytest.raises(ValueError, match=r"^X and Y must have"):
        check_same_rows(np.ones((3, 1)), np.ones((4, 1)))


def test_check_n_jobs(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert check_n_jobs(None) == 1
    assert check_n_jobs(3) == 3 and type(check_n_jobs(np.int64(3))) is int
    assert check_n_jobs(-1) == 8 and check_n_jobs(-2) == 7 and check_n_jobs(-8) == 1
    assert check_n_jobs(-100) == 1
    assert check_n_jobs(64) == 64 and check_n_jobs(1000) == 64      # max(64, 4 * 8)
    monkeypatch.setattr(os, "cpu_count", lambda: 20)
    assert check_n_jobs(1000) == 80 and check_n_jobs(80) == 80
    monkeypatch.setattr(os, "cpu_count", lambda: None)               # unknown: one CPU
    assert check_n_jobs(-1) == 1 and check_n_jobs(100) == 64
    for bad in (0, True, 2.0, "2"):
        with pytest.raises(ValueError, match=r"^n_jobs must be a non-zero integer or None \(None "
                                             r"= 1 thread, -1 = all CPUs\); got " + re.escape(repr(bad))):
            check_n_jobs(bad)


def test_check_scalar_edges():
    with pytest.raises(ValueError, match=r"^internal: kind must be one of \('real', 'int'\); got "
                                         r"'complex'$"):
        check_scalar(1.0, "x", kind="complex")
    # integers beyond float64 are of the right type and out of range
    with pytest.raises(ValueError, match=r"^x must be a finite number; got inf\.$"):
        check_scalar(10 ** 400, "x")
    with pytest.raises(ValueError, match=r"^x must be a finite number; got -inf\.$"):
        check_scalar(-(10 ** 400), "x")
    assert check_scalar(10 ** 400, "x", finite=False) == math.inf
    assert check_scalar(-(10 ** 400), "x", finite=False) == -math.inf
    assert check_scalar(10 ** 400, "n", kind="int") == 10 ** 400
    for value, bounds in [(0.0, dict(minimum=0.0)), (1.0, dict(maximum=1.0)),
                          (0.5, dict(minimum=0.0, maximum=1.0, include_minimum=False,
                                     include_maximum=False))]:
        assert check_scalar(value, "x", **bounds) == value
    with pytest.raises(ValueError, match=r"^x must be <= 1\.0; got 2\.0\.$"):
        check_scalar(2.0, "x", maximum=1.0)
    with pytest.raises(ValueError, match=r"^x must be in \(0\.0, 1\.0\]; got 0\.0\.$"):
        check_scalar(0.0, "x", minimum=0.0, maximum=1.0, include_minimum=False)
    with pytest.raises(TypeError, match=r"^x must be a real number; got 'a' \(str\)\.$"):
        check_scalar("a", "x")


def test_check_positive_int_and_choice():
    assert check_positive_int(1, "k") == 1 and check_positive_int(5, "k", maximum=5) == 5
    assert check_positive_int(0, "k", minimum=0) == 0
    with pytest.raises(ValueError, match=r"^k must be >= 1; got 0\.$"):
        check_positive_int(0, "k")
    with pytest.raises(ValueError, match=r"^k must be in \[1, 5\]; got 6\.$"):
        check_positive_int(6, "k", maximum=5)
    with pytest.raises(TypeError, match=r"^k must be an integer; got 1\.5 \(float\)\.$"):
        check_positive_int(1.5, "k")
    assert check_choice("b", "mode", ("a", "b")) == "b"
    with pytest.raises(ValueError, match=r"^mode must be one of \('a', 'b'\); got 'c'\.$"):
        check_choice("c", "mode", ["a", "b"])


def test_check_random_state():
    g = np.random.default_rng(1)
    assert check_random_state(g) is g
    a, b = check_random_state(7), np.random.default_rng(7)
    assert a.integers(0, 10 ** 9, 5).tolist() == b.integers(0, 10 ** 9, 5).tolist()
    rs = np.random.RandomState(3)
    expected = np.random.default_rng(np.random.RandomState(3).randint(0, 2 ** 31 - 1))
    assert check_random_state(rs).integers(0, 10 ** 9, 5).tolist() == \
        expected.integers(0, 10 ** 9, 5).tolist()
    assert isinstance(check_random_state(None), np.random.Generator)
    assert isinstance(check_random_state(np.int64(4)), np.random.Generator)
    for bad in (True, 1.5, "0"):
        with pytest.raises(TypeError, match=r"^seed/random_state must be None, an int or a numpy "
                                            r"Generator; got " + re.escape(repr(bad))):
            check_random_state(bad)


@pytest.mark.parametrize("text,expected", [
    ("123", 123), (" 512M ", 512 << 20), ("2 GiB", 2 << 30), ("1.5g", int(1.5 * (1 << 30))),
    ("8G", 8 << 30), ("3kb", 3 << 10), ("4 KiB", 4 << 10), ("7b", 7), ("1t", 1 << 40),
    ("2TB", 2 << 40), ("1 tib", 1 << 40), ("5mb", 5 << 20), ("6 MiB", 6 << 20), ("9k", 9 << 10),
    ("0", 0),
])
def test_memory_limit_units(monkeypatch, text, expected):
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", text)
    assert available_memory() == expected


@pytest.mark.parametrize("text", ["abc", "-1G", "inf", "nan", "10 X", "1.2.3M", "G"])
def test_memory_limit_bad_values(monkeypatch, text):
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", text)
    with pytest.raises(ValueError, match=r"^LATENTBRIDGE_MEMORY_LIMIT must be a number of bytes "
                                         r"with an optional unit \(K, M, G, T\), e\.g\. '8G'; got "
                                         + re.escape(repr(text)) + r"\.$"):
        available_memory()


def test_available_memory_sources(monkeypatch):
    """Without the variable: psutil, else /proc/meminfo's MemAvailable, else sysconf pages (each
    replaced here by a stand-in whose answer is known)."""
    import builtins
    import sys
    import types

    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "   ")          # blank counts as unset
    fake = types.SimpleNamespace(virtual_memory=lambda: types.SimpleNamespace(available=12345))
    monkeypatch.setitem(sys.modules, "psutil", fake)
    assert available_memory() == 12345
    monkeypatch.setitem(sys.modules, "psutil", None)                 # import psutil fails
    real_open = builtins.open
    meminfo = "MemTotal:       100 kB\nMemAvailable:    2048 kB\n"

    def fake_open(path, *args, **kwargs):
        if path == "/proc/meminfo":
            return io.StringIO(meminfo)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    assert available_memory() == 2048 * 1024
    meminfo = "MemTotal:       100 kB\n"                             # no MemAvailable line
    monkeypatch.setattr(os, "sysconf", {"SC_AVPHYS_PAGES": 10, "SC_PAGE_SIZE": 4096}.__getitem__)
    assert available_memory() == 40960
    meminfo = "MemAvailable: lots\n"                                 # unreadable: next source
    assert available_memory() == 40960

    def no_sysconf(name):
        raise ValueError(name)

    monkeypatch.setattr(os, "sysconf", no_sysconf)
    assert available_memory() is None


def test_check_allocation(monkeypatch):
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "1M")
    assert check_allocation(1 << 20, "x") == 1 << 20 and type(check_allocation(10.0, "x")) is int
    with pytest.raises(MemoryError, match=r"^out \(3, 4\) needs 1\.5 MiB \(1572864 bytes\) but the "
                                          r"limit is 1\.0 MiB \(LATENTBRIDGE_MEMORY_LIMIT\)\. Use "
                                          r"fewer rows \(or process them in blocks\), float32 "
                                          r"input, or raise LATENTBRIDGE_MEMORY_LIMIT if the "
                                          r"memory really is there\.$"):
        check_allocation(3 << 19, "out (3, 4)")
    for limit, nbytes, text in [("100", 101, r"101 bytes \(101 bytes\) but the limit is 100 bytes"),
                                ("2K", 3000, r"2\.9 KiB \(3000 bytes\) but the limit is 2\.0 KiB"),
                                ("1G", 3 << 29, r"1\.5 GiB .* limit is 1\.0 GiB"),
                                ("1T", 3 << 39, r"1\.5 TiB .* limit is 1\.0 TiB")]:
        monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", limit)
        with pytest.raises(MemoryError, match=text):
            check_allocation(nbytes, "x")
    monkeypatch.delenv("LATENTBRIDGE_MEMORY_LIMIT")
    floor = _validation.UNQUERIED_BYTES
    assert floor == 16 << 20
    monkeypatch.setattr(_validation, "available_memory", lambda: floor - 1)
    with pytest.raises(MemoryError, match=r"needs 16\.0 MiB \(16777216 bytes\) but the limit is "
                                          r"16\.0 MiB \(available memory\)\."):
        check_allocation(floor, "x")

    def not_asked():
        raise AssertionError("the operating system was asked for a small allocation")

    monkeypatch.setattr(_validation, "available_memory", not_asked)
    assert check_allocation(floor - 1, "x") == floor - 1   # small: not checked against the OS
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "   ")    # blank counts as unset
    assert check_allocation(floor - 1, "x") == floor - 1
    monkeypatch.delenv("LATENTBRIDGE_MEMORY_LIMIT")
    monkeypatch.setattr(_validation, "available_memory", lambda: None)  # unknown: never refused
    assert check_allocation(10 ** 30, "x") == 10 ** 30


def test_defaults_of_the_helpers():
    assert as_float_matrix(np.ones((3, 1))).shape == (3, 1)          # one column is enough
    with pytest.raises(ValueError, match=r"^X must be 2-D"):           # the default name
        as_float_matrix(np.ones(3))
    assert check_n_jobs(1) == 1
    with pytest.raises(TypeError, match=r"^flag must be True or False; got 1 \(int\)\.$"):
        check_bool(1, "flag")


def test_available_memory_without_the_variable(monkeypatch):
    import sys
    import types

    monkeypatch.delenv("LATENTBRIDGE_MEMORY_LIMIT", raising=False)
    fake = types.SimpleNamespace(virtual_memory=lambda: types.SimpleNamespace(available=4321))
    monkeypatch.setitem(sys.modules, "psutil", fake)
    assert available_memory() == 4321
