"""Hypothesis strategies shared by the fuzz tests: matrices of every shape, dtype, layout and
magnitude the public entry points may receive, plus the expected outcome of the validation.

The number of examples per test is ``LATENTBRIDGE_FUZZ_EXAMPLES`` (default 25, so the default run
stays short); set it to 10000 for a long local run.
"""

import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

N_EXAMPLES = int(os.environ.get("LATENTBRIDGE_FUZZ_EXAMPLES", "25"))
# derandomised by default (CI reproducible); a long run explores new cases each time
FUZZ = settings(
    max_examples=N_EXAMPLES,
    deadline=None,
    derandomize="LATENTBRIDGE_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=list(HealthCheck),
)

GOOD_DTYPES = ("float32", "float64", "float16", "int32", "int64", "uint8", "bool")
BAD_DTYPES = ("complex128", "object", "str")
MAGNITUDES = (1.0, 1e30, 1e-30, 1e3, 1e-3)


class Case:
    """A generated array and what validation must say about it."""

    def __init__(self, array, values, error):
        self.array = array      # what is passed to the function
        self.values = values    # float64 copy of the values the function must see (None: bad)
        self.error = error      # None, ValueError or TypeError

    def __repr__(self):
        a = self.array
        return (f"Case(shape={getattr(a, 'shape', None)}, dtype={getattr(a, 'dtype', None)}, "
                f"error={self.error}, values={self.values!r})")


def compute_dtype(*cases):
    """float32 only when every input is float32 (the library's promotion rule)."""
    return np.float32 if all(c.array.dtype == np.float32 for c in cases) else np.float64


@st.composite
def values(draw, n, d, structure=None):
    """float64 (n, d) values: random, duplicated rows, collinear rows, or a constant."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    structure = structure or draw(st.sampled_from(("random", "random", "duplicates", "collinear",
                                                   "constant", "integers")))
    if structure == "integers":
        V = rng.integers(-3, 4, size=(n, d)).astype(np.float64)
    else:
        V = rng.standard_normal((n, d))
    if structure == "duplicates" and n > 1:
        V = V[rng.integers(0, max(1, n // 2), size=n)]
    elif structure == "collinear" and n > 0:
        V = np.outer(rng.standard_normal(n), rng.standard_normal(d)) + rng.standard_normal(d)
    elif structure == "constant" and n > 0:
        V = np.repeat(V[:1], n, axis=0)
    return V


@st.composite
def matrices(draw, n=None, d=None, *, max_rows=9, max_cols=5, bad=True, min_rows=0, min_cols=0,
             structure=None):
    """A Case with a (n, d) array of a random dtype, layout, magnitude and write flag."""
    n = draw(st.integers(min_rows, max_rows)) if n is None else n
    d = draw(st.integers(min_cols, max_cols)) if d is None else d
    V = draw(values(n, d, structure))
    dtype = draw(st.sampled_from(GOOD_DTYPES + (BAD_DTYPES if bad else ())))
    mag = draw(st.sampled_from(MAGNITUDES))
    error = None
    if dtype in ("float32", "float64", "float16"):
        with np.errstate(over="ignore", under="ignore"):
            A = (V * mag).astype(dtype)
        if dtype == "float16" and n * d and not np.isfinite(A).all():
            A = V.astype(dtype)     # float16 cannot hold 1e30: keep the unit magnitude
        if n * d and draw(st.integers(0, 9)) == 0:
            A[draw(st.integers(0, n - 1)), draw(st.integers(0, d - 1))] = draw(
                st.sampled_from((np.nan, np.inf, -np.inf)))
            error = ValueError
    elif dtype == "bool":
        A = V > 0
    elif dtype in ("int32", "int64", "uint8"):
        A = np.clip(np.round(V * 3), 0 if dtype == "uint8" else -100, 100).astype(dtype)
    elif dtype == "complex128":
        A = V + 1j * V
        error = TypeError
    elif dtype == "object":
        A = V.astype(object)
        error = TypeError
    else:
        A = V.astype(str)
        error = TypeError
    layout = draw(st.sampled_from(("C", "F", "strided", "reversed")))
    if layout == "F":
        A = np.asfortranarray(A)
    elif layout == "strided":
        big = np.zeros((2 * n, 2 * d), dtype=A.dtype)
        big[::2, ::2] = A
        A = big[::2, ::2]
    elif layout == "reversed":
        A = np.ascontiguousarray(A[::-1])[::-1]
    if draw(st.booleans()):
        A.setflags(write=False)
    vals = None if error is TypeError else np.asarray(A, dtype=np.float64)
    if error is None and (n < min_rows or d < min_cols):
        error = ValueError
    return Case(A, vals, error)


def as_used(case, dtype):
    """The float64 values the library computes with after casting to the compute dtype."""
    return case.values.astype(dtype).astype(np.float64)


def first_error(*cases, empty_ok=False):
    """The exception type(s) the validation must raise; when several arguments are bad in
    different ways the first one validated decides, so either type is accepted."""
    errors = {c.error for c in cases if c.error is not None}
    if not empty_ok and any(c.array.shape[0] == 0 or c.array.shape[1] == 0 for c in cases):
        errors.add(ValueError)
    if not errors:
        return None
    return errors.pop() if len(errors) == 1 else (TypeError, ValueError)


def with_value_error(err, cond):
    """Add a function-specific ValueError condition to the validation outcome ``err``."""
    if not cond:
        return err
    if err is None or err is ValueError:
        return ValueError
    return (TypeError, ValueError)


def truncate(case, n):
    """Keep the first n rows of a case (the NaN that made it invalid may be cut away)."""
    case.array = case.array[:n]
    if case.values is not None:
        case.values = case.values[:n]
        if case.error is ValueError and np.isfinite(case.values).all():
            case.error = None
    return case
