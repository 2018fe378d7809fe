"""Input validation: the single place where arrays are checked, promoted and made contiguous.

Every public function calls these helpers before reaching C++ or CUDA, so the rules (and the wording
of the messages) are the same everywhere:

* rows are samples; 2-D inputs are ``(n_samples, n_features)``;
* float32 stays float32 only when *every* floating input is float32, anything else computes in
  float64 (integers and booleans are promoted to float64); complex, object and string arrays raise
  ``TypeError``;
* one documented copy is made when an array is not C-contiguous or has another dtype, never more;
* NaN and infinity raise ``ValueError`` naming the argument;
* an output or work array that would not fit in memory raises ``MemoryError`` with the size asked
  for (:func:`check_allocation`) before anything is allocated.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from ._interop import is_cuda_array

__all__ = [
    "as_float_matrix",
    "result_dtype",
    "check_n_jobs",
    "check_same_rows",
    "check_scalar",
    "check_bool",
    "check_positive_int",
    "check_choice",
    "check_random_state",
    "check_allocation",
    "available_memory",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _numeric_dtype(X, name):
    kind = X.dtype.kind
    if kind in "fiub":
        if kind == "f" and X.dtype not in _FLOATS and X.dtype.itemsize > 8:
            raise TypeError(
                f"{name} has dtype {X.dtype}; only float16/32/64, integer and bool arrays are "
                "supported. Convert it with X.astype(np.float64)."
            )
        return X.dtype
    if kind == "c":
        raise TypeError(
            f"{name} is complex ({X.dtype}); latentbridge works with real arrays. "
            "Pass X.real, np.abs(X) or stack real and imaginary parts as features."
        )
    raise TypeError(
        f"{name} must be a numeric array; got dtype {X.dtype}. Convert it with "
        "np.asarray(X, dtype=np.float64)."
    )


def result_dtype(*arrays):
    """Compute dtype for a call: float32 only when every input is float32, else float64."""
    arrays = [a for a in arrays if a is not None]
    if arrays and all(np.asarray(a).dtype == np.float32 for a in arrays):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def as_float_matrix(X, name="X", *, dtype=None, min_rows=1, min_cols=1, allow_nonfinite=False):
    """Return ``X`` as a C-contiguous float32/float64 2-D array, copying only when needed.

    Parameters
    ----------
    X : array_like
        The input; lists, numpy arrays and anything with ``__array__`` are accepted.
    name : str
        Name of the argument, used in error messages.
    dtype : numpy dtype, optional
        Target dtype (float32 or float64). By default float32/float64 stay as they are and every
        other numeric dtype becomes float64.
    min_rows, min_cols : int
        Smallest accepted number of rows and columns.
    allow_nonfinite : bool
        Skip the NaN/infinity check.

    Raises
    ------
    TypeError
        For non-numeric, complex or object input.
    ValueError
        For a wrong number of dimensions, too few rows or columns, or NaN/infinity.
    """
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be a numeric 2-D array; got a {type(X).__name__}.")
    if type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name} is a sparse matrix; sparse input is not supported (latentbridge's kernels "
            "work on dense rows). Convert it with X.toarray() if it fits in memory."
        )
    if is_cuda_array(X):
        raise TypeError(
            f"{name} is a GPU array; this function takes host arrays. Move it with .cpu().numpy() "
            "(torch) or .get() (cupy)."
        )
    try:
        X = np.asarray(X)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name} could not be converted to a numeric array: {exc}") from None
    src = _numeric_dtype(X, name)
    if X.ndim != 2:
        hint = (" Reshape your data: X.reshape(-1, 1) for a single feature or X.reshape(1, -1) "
                "for a single sample.") if X.ndim == 1 else ""
        raise ValueError(
            f"{name} must be 2-D with shape (n_samples, n_features); got shape {X.shape}.{hint}"
        )
    if dtype is None:
        dtype = src if src in _FLOATS else np.dtype(np.float64)
    dtype = np.dtype(dtype)
    if dtype not in _FLOATS:
        raise TypeError(f"internal: compute dtype must be float32 or float64, got {dtype}")
    if X.shape[0] < min_rows:
        raise ValueError(
            f"{name} has {X.shape[0]} sample(s) (rows, shape={X.shape}); at least {min_rows} "
            "required."
        )
    if X.shape[1] < min_cols:
        raise ValueError(
            f"{name} has {X.shape[1]} feature(s) (shape={X.shape}) while a minimum of {min_cols} "
            "is required (columns are features)."
        )
    if src.kind == "f" and not allow_nonfinite and X.size and not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(
            f"{name} contains NaN or infinity (first at row {bad[0]}, column {bad[1]}). "
            "Remove or impute those entries first."
        )
    return np.ascontiguousarray(X, dtype=dtype)


def check_same_rows(X, Y, names=("X", "Y")):
    """Raise ValueError unless X and Y have the same number of rows."""
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of rows (the same samples in "
            f"the same order); got {X.shape[0]} and {Y.shape[0]}."
        )


def check_n_jobs(n_jobs):
    """Translate scikit-learn's ``n_jobs`` into a positive thread count.

    None means 1, -1 means every CPU, -2 every CPU but one, and so on. Counts above
    ``max(64, 4 * cpu_count)`` are capped there: more threads than that only cost memory and
    thread start-up (and could exhaust the process's thread limit).
    """
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(
            f"n_jobs must be a non-zero integer or None (None = 1 thread, -1 = all CPUs); "
            f"got {n_jobs!r}."
        )
    n_cpu = os.cpu_count() or 1
    n_jobs = int(n_jobs)
    return min(n_jobs, max(64, 4 * n_cpu)) if n_jobs > 0 else max(1, n_cpu + 1 + n_jobs)


_KINDS = {"real": (numbers.Real, "a real number"), "int": (numbers.Integral, "an integer")}


def check_scalar(value, name, *, kind="real", minimum=None, maximum=None, include_minimum=True,
                 include_maximum=True, finite=True):
    """Return ``value`` as a Python float or int after checking its type, then its range.

    The one rule for scalar parameters: a value of the wrong type raises ``TypeError``; a value of
    the right type outside the accepted range raises ``ValueError``. Strings never pass as numbers
    (``"1.0"`` is a TypeError), and neither do booleans (``True`` is not 1) nor 0-d arrays.

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        Name of the parameter, used in the messages.
    kind : {"real", "int"}, default "real"
        ``"real"`` accepts any ``numbers.Real`` (Python and numpy floats and integers) and returns a
        float; ``"int"`` accepts ``numbers.Integral`` and returns an int.
    minimum, maximum : number, optional
        Bounds of the accepted range (none when None).
    include_minimum, include_maximum : bool, default True
        Whether the bounds themselves are accepted (``[minimum, ...`` versus ``(minimum, ...``).
    finite : bool, default True
        Reject infinity (``"real"`` only; NaN is always rejected) with ValueError.

    Raises
    ------
    TypeError
        ``value`` is not of ``kind`` (strings, booleans, None, arrays, ...).
    ValueError
        NaN, infinity (when ``finite``) or a value outside the range.
    """
    if kind not in _KINDS:
        raise ValueError(f"internal: kind must be one of {tuple(_KINDS)}; got {kind!r}")
    base, description = _KINDS[kind]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, base):
        raise TypeError(f"{name} must be {description}; got {value!r} ({type(value).__name__}).")
    try:
        value = int(value) if kind == "int" else float(value)
    except OverflowError:   # an integer beyond float64: of the right type, out of range
        value = np.inf if value > 0 else -np.inf
    if kind == "real" and (np.isnan(value) or (finite and np.isinf(value))):
        raise ValueError(f"{name} must be a finite number; got {value!r}.")
    low_ok = minimum is None or (value >= minimum if include_minimum else value > minimum)
    high_ok = maximum is None or (value <= maximum if include_maximum else value < maximum)
    if not (low_ok and high_ok):
        accepted = _describe_range(minimum, maximum, include_minimum, include_maximum)
        raise ValueError(f"{name} must be {accepted}; got {value!r}.")
    return value


def _describe_range(minimum, maximum, include_minimum, include_maximum):
    if maximum is None:
        return f"{'>=' if include_minimum else '>'} {minimum}"
    if minimum is None:
        return f"{'<=' if include_maximum else '<'} {maximum}"
    return (f"in {'[' if include_minimum else '('}{minimum}, {maximum}"
            f"{']' if include_maximum else ')'}")


def check_bool(value, name):
    """Return ``value`` as a bool; TypeError unless it is ``True``/``False`` (or a numpy bool).

    Integers, strings and None are rejected: ``0``/``"no"`` are not silently read as booleans.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r} ({type(value).__name__}).")
    return bool(value)


def check_positive_int(value, name, *, minimum=1, maximum=None):
    """Return ``value`` as int after checking minimum <= value (<= maximum) (:func:`check_scalar`)."""
    return check_scalar(value, name, kind="int", minimum=minimum, maximum=maximum)


def check_choice(value, name, choices):
    """Raise ValueError unless value is one of choices."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}.")
    return value


def check_random_state(seed):
    """Return a numpy Generator for None, an int, a Generator or a RandomState."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.RandomState):
        return np.random.default_rng(seed.randint(0, 2**31 - 1))
    if seed is None or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise TypeError(f"seed/random_state must be None, an int or a numpy Generator; got {seed!r}.")


# ---- memory limits ------------------------------------------------------------------------------

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
          "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40,
          "tib": 1 << 40}


def _parse_bytes(text):
    """'123', '512M', '2 GiB', '1.5g' -> bytes (binary units)."""
    s = text.strip().lower()
    num = s.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
    unit = s[len(num):].strip()
    try:
        value = float(num)
    except ValueError:
        value = -1.0
    if unit not in _UNITS or not np.isfinite(value) or value < 0:
        raise ValueError(
            f"LATENTBRIDGE_MEMORY_LIMIT must be a number of bytes with an optional unit (K, M, G, T), "
            f"e.g. '8G'; got {text!r}."
        )
    return int(value * _UNITS[unit])


def _format_bytes(n):
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def available_memory():
    """Bytes a new allocation may use: ``LATENTBRIDGE_MEMORY_LIMIT`` when set, else the memory the
    operating system reports as available (psutil when installed, ``MemAvailable`` of
    /proc/meminfo on Linux, else free physical pages from ``os.sysconf``); None when unknown."""
    env = os.environ.get("LATENTBRIDGE_MEMORY_LIMIT", "").strip()
    if env:
        return _parse_bytes(env)
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return int(psutil.virtual_memory().available)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


#: Allocations below this many bytes are not checked against the operating system's figure: asking
#: it costs about as much as computing a distance matrix of 100 points, and no machine that runs
#: Python is short of 16 MiB. ``LATENTBRIDGE_MEMORY_LIMIT``, when set, still applies to them.
UNQUERIED_BYTES = 16 << 20


def check_allocation(nbytes, what):
    """Raise MemoryError before allocating ``nbytes`` when they exceed :func:`available_memory`
    (below :data:`UNQUERIED_BYTES` only when ``LATENTBRIDGE_MEMORY_LIMIT`` is set).

    Parameters
    ----------
    nbytes : int
        Bytes the caller is about to allocate (the output plus its working arrays).
    what : str
        What is allocated, with its shape, e.g. ``"pairwise_distances output (n, m) = (10, 20)
        float64"``; it starts the message.

    Raises
    ------
    MemoryError
        Naming ``what``, the size asked for and the limit, and how to lift it.
    """
    nbytes = int(nbytes)
    if nbytes < UNQUERIED_BYTES and not os.environ.get("LATENTBRIDGE_MEMORY_LIMIT", "").strip():
        return nbytes  # no query of the operating system (psutil: about 50 us) for small arrays
    limit = available_memory()
    if limit is not None and nbytes > limit:
        source = ("LATENTBRIDGE_MEMORY_LIMIT" if os.environ.get("LATENTBRIDGE_MEMORY_LIMIT", "").strip()
                  else "available memory")
        raise MemoryError(
            f"{what} needs {_format_bytes(nbytes)} ({nbytes} bytes) but the limit is "
            f"{_format_bytes(limit)} ({source}). Use fewer rows (or process them in blocks), "
            "float32 input, or raise LATENTBRIDGE_MEMORY_LIMIT if the memory really is there."
        )
    return nbytes
