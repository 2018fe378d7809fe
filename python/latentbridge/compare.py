"""Many models, one call: every pairwise similarity between a set of representations.

The pairs run on any :class:`concurrent.futures.Executor` (a thread pool, a process pool, or a Dask
distributed client's ``client.get_executor()``), so a comparison that outgrows one machine runs on a
cluster unchanged. Each pair is one idempotent task (it only reads its two arrays and returns a
value), so a task lost with its worker is simply run again; a measure that raises on one pair costs
that pair only (NaN, its error kept in :attr:`ComparisonResult.errors`).
"""

from __future__ import annotations

import concurrent.futures
import json
import math
from dataclasses import dataclass, field

import numpy as np

from ._progress import progress_counter
from ._validation import as_float_matrix, check_choice, check_positive_int
from ._warnings import warn_user
from .measures import registry

__all__ = ["compare_many", "ComparisonResult", "compare_pair", "METRICS"]


def _rtd_options(X):
    """RTD's defaults here, so that a matrix of RTD values is reproducible."""
    return {"seed": 0, "trials": 5, "batch": min(300, X.shape[0])}


# name -> latentbridge.measures.MeasureInfo (func, kind, identical_value, symmetric, ...) of every
# registered measure
METRICS = registry()
_DEFAULT_OPTIONS = {"rtd": _rtd_options}


def compare_pair(X, Y, metric, options=None):
    """One similarity value between two representations (module level, so executors can pickle it)."""
    defaults = _DEFAULT_OPTIONS.get(metric)
    options = {**(defaults(X) if defaults else {}), **(options or {})}
    return float(METRICS[metric].func(X, Y, **options))


@dataclass
class ComparisonResult:
    """Labelled matrices, one per metric: M x M for :func:`compare_many`, layers of A x layers of B
    for :func:`latentbridge.torch.compare_layers`.

    Attributes
    ----------
    names : list of str
        Row labels (the first argument of each comparison).
    matrices : dict of str -> ndarray of shape (len(names), len(columns))
        ``matrices[metric][i, j]`` compares ``names[i]`` (first argument) with ``columns[j]``.
    column_names : list of str, optional
        Column labels (the second argument); ``None`` means the same as ``names`` (a square result).
    info : dict, optional
        What produced the result (e.g. the number of samples, the options); saved with it.
    errors : dict of (str, str, str) -> str, optional
        The pairs whose measure raised: ``(row name, column name, metric) -> "ExceptionType: message"``
        (the order that was computed; a symmetric measure's mirrored cell is NaN too). Those cells are
        NaN; every other value is kept. Empty when every pair succeeded.
    """

    names: list
    matrices: dict = field(default_factory=dict)
    column_names: list = None
    info: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)

    def __getitem__(self, metric):
        return self.matrices[metric]

    @property
    def metrics(self):
        """The metric names, in the order of ``matrices`` (a new list)."""
        return list(self.matrices)

    @property
    def columns(self):
        """Column labels (``names`` when the result is square)."""
        return list(self.names if self.column_names is None else self.column_names)

    def to_pandas(self, metric=None):
        """A labelled ``pandas.DataFrame`` (rows ``names``, columns ``columns``) for one metric, or a
        dict of them (``metric=None``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install pandas") from None
        if metric is None:
            return {m: self.to_pandas(m) for m in self.matrices}
        return pd.DataFrame(self.matrices[metric], index=self.names, columns=self.columns)

    def to_dict(self):
        """The result as plain JSON-ready data.

        Returns
        -------
        dict
            ``{"names": [...], "columns": [...], "metrics": {metric: rows as lists}, "info": {...},
            "errors": [[row, column, metric, message], ...]}``; NaN values become ``None`` (JSON has no
            NaN).
        """
        def plain(v):
            return None if math.isnan(v) else float(v)

        return {"names": list(self.names), "columns": self.columns,
                "metrics": {m: [[plain(v) for v in row] for row in np.asarray(mat, dtype=np.float64)]
                            for m, mat in self.matrices.items()},
                "info": dict(self.info), "errors": [[*key, msg] for key, msg in self.errors.items()]}

    def save(self, path):
        """Write the result to ``path`` (a ``.npz`` file: labels, matrices, ``info`` and ``errors`` as JSON)."""
        arrays = {f"metric:{m}": np.asarray(v, dtype=np.float64) for m, v in self.matrices.items()}
        errors = [[*key, msg] for key, msg in self.errors.items()]
        np.savez(path, names=np.array(self.names, dtype=str), columns=np.array(self.columns, dtype=str),
                 square=np.array(self.column_names is None), info=np.array(json.dumps(self.info)),
                 errors=np.array(json.dumps(errors)), **arrays)

    @classmethod
    def load(cls, path):
        """Read a result written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            matrices = {k[len("metric:"):]: z[k] for k in z.files if k.startswith("metric:")}
            names = [str(s) for s in z["names"]]
            columns = None if bool(z["square"]) else [str(s) for s in z["columns"]]
            info = json.loads(str(z["info"]))
            errors = json.loads(str(z["errors"])) if "errors" in z.files else []
        return cls(names=names, matrices=matrices, column_names=columns, info=info,
                   errors={(row, col, metric): msg for row, col, metric, msg in errors})

    def __repr__(self):
        rows, cols = self.names, self.columns
        what = (f"{len(rows)} representations" if self.column_names is None
                else f"{len(rows)} x {len(cols)}")
        failed = f", {len(self.errors)} failed pair(s) in .errors" if self.errors else ""
        lines = [f"ComparisonResult({what}, metrics={self.metrics}{failed})"]
        width = max(len(n) for n in rows)
        for metric, mat in self.matrices.items():
            lines.append(f"[{metric}]")
            lines.append(" " * (width + 1) + " ".join(f"{n[:9]:>9}" for n in cols))
            for name, row in zip(rows, mat):
                lines.append(f"{name:<{width}} " + " ".join(f"{v:9.4f}" for v in row))
        return "\n".join(lines)


@dataclass(frozen=True)
class _Measure:
    """One measure of a run: its label (the key of its matrix), what a pair task calls (a registry
    name or a callable) and the shortcuts its registry entry allows."""

    label: str
    call: object
    identical_value: float = None
    symmetric: bool = False


def _measures(metrics):
    """Registry names and callables -> ``[_Measure, ...]``; ValueError/TypeError naming the bad entry."""
    metrics = [metrics] if isinstance(metrics, str) or callable(metrics) else list(metrics)
    out, unknown = [], []
    for m in metrics:
        if isinstance(m, str):
            if m in METRICS:
                out.append(_Measure(m, m, METRICS[m].identical_value, METRICS[m].symmetric))
            else:
                unknown.append(m)
        elif callable(m):
            label = getattr(m, "__name__", None)
            if not isinstance(label, str):
                raise TypeError(f"metrics: the callable {m!r} has no __name__ to label its matrix; wrap it in a "
                                "def (functools.partial objects have none).")
            out.append(_Measure(label, m))
        else:
            raise TypeError(f"metrics entries must be names of latentbridge.measures.registry() or callables "
                            f"f(X, Y, **options) -> float; got {type(m).__name__} {m!r}.")
    if unknown or not metrics:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {sorted(METRICS)}.")
    labels = [m.label for m in out]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise ValueError(f"metrics: the label(s) {twice} appear more than once; each matrix needs its own "
                         "name (give callables distinct __name__s).")
    return out


def _named_arrays(reps, name, minimum):
    """``(names, float matrices)`` of a dict of representations with at least ``minimum`` entries."""
    if not isinstance(reps, dict) or len(reps) < minimum:
        what = "at least two" if minimum == 2 else "at least one"
        raise ValueError(f"{name} must be a dict of {what} name -> array entries; got "
                         f"{type(reps).__name__} of length {len(reps) if hasattr(reps, '__len__') else '?'}.")
    return [str(k) for k in reps], [as_float_matrix(v, f"{name}[{k!r}]", min_rows=2) for k, v in reps.items()]


def _pair_task(X, Y, measure, options, attempt):
    """One pair's value, run by an executor's worker: ``(value, None)``, or ``(nan, exception)`` when the
    measure raised. It only reads its inputs, so running it again (``attempt`` > 0, after its worker was
    lost) gives the same value; ``attempt`` only makes a resubmission a new task for executors that
    merge equal calls (Dask's pure tasks)."""
    del attempt
    try:
        if isinstance(measure, str):
            return compare_pair(X, Y, measure, options), None
        return float(measure(X, Y, **(options or {}))), None
    except Exception as exc:  # the measure's error belongs to this pair only
        return math.nan, exc


def _run_pairs(jobs, task_args, executor, retries, record):
    """Run ``_pair_task(*task_args(job), attempt)`` for every job and call ``record(job, outcome)`` once
    per job.

    ``executor=None`` runs them in this thread. On an executor, a task whose future raises (its worker
    died, its pool broke, it was cancelled) is submitted again, up to ``retries`` times; once the
    executor refuses new work (``concurrent.futures.BrokenExecutor``, e.g. a process pool that lost a
    process) the remaining jobs run in this thread. Returns ``(the refusal or None, jobs run here)``.
    """
    if executor is None:
        for job in jobs:
            record(job, _pair_task(*task_args(job), 0))
        return None, 0
    pending, here, refusal = {}, [], None

    def submit(job, attempt):
        nonlocal refusal
        if refusal is None:
            try:
                pending[executor.submit(_pair_task, *task_args(job), attempt)] = (job, attempt)
                return
            except concurrent.futures.BrokenExecutor as exc:
                refusal = exc
        here.append(job)

    try:
        for job in jobs:
            submit(job, 0)
        while pending:
            finished, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                job, attempt = pending.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # the task was lost, not the measure's error
                    if attempt < retries:
                        submit(job, attempt + 1)
                        continue
                    outcome = (math.nan, exc)
                record(job, outcome)
    finally:
        for future in pending:
            future.cancel()
    for job in here:
        record(job, _pair_task(*task_args(job), 0))
    return refusal, len(here)


def _describe(exc):
    return f"{type(exc).__name__}: {exc}"


def compare_many(reps, *, metrics=("cka", "rtd"), executor=None, progress=True, metric_options=None,
                 reps_b=None, retries=2, on_error="record"):
    """Compare every pair of representations under several measures, on any executor.

    Each pair is one task ``measure(reps[a], reps[b])``; the tasks run in this thread or on an executor
    (a cluster), survive lost workers, and a measure that raises on one pair costs only that pair.

    Parameters
    ----------
    reps : dict of str -> array_like of shape (n_samples, n_features_i)
        Activations of M models (or layers) on the *same* samples in the same order; feature counts
        may differ. At least two entries (one when ``reps_b`` is given).
    metrics : str, callable or sequence of them
        Names of :func:`latentbridge.measures.registry` (``"cka"``, ``"rtd"``, ``"svcca"``,
        ``"procrustes_distance"``, ``"rsa"``, ...) or callables ``f(X, Y, **options) -> float`` (a
        measure of your own, labelled by its ``__name__``; treated as not symmetric, its diagonal
        computed). For a square result a registered measure's diagonal is its value on identical inputs
        (computed when it depends on the representation, e.g. ENSD, and for a constant
        representation, where the measure may be undefined: then NaN and an entry in ``errors``),
        and a symmetric measure is computed once per unordered pair.
    executor : concurrent.futures.Executor, optional
        Runs the pairs (``executor.submit``); ``None`` runs them in this thread. A Dask
        ``distributed.Client(...).get_executor()`` runs them on a cluster; each task carries its two
        arrays.
    progress : bool, default True
        A progress bar over the pairs on stderr (tqdm when installed, else a ``done/total`` counter).
    metric_options : dict of str -> dict, optional
        Keyword arguments per measure label, e.g. ``{"rtd": {"trials": 10, "batch": 500}}``. RTD
        defaults to ``trials=5, batch=min(300, n), seed=0`` here so that the matrix is reproducible.
    reps_b : dict of str -> array_like, optional
        A second set (e.g. the layers of another model): the result is then rectangular,
        ``result[m][i, j]`` comparing ``reps``' entry i (first argument) with ``reps_b``'s entry j, every
        pair computed.
    retries : int, default 2
        How many times a pair whose task was lost (its future raised: a killed worker, a broken process
        pool, a cancelled task) is run again. When the executor refuses new work (a
        ``concurrent.futures.BrokenExecutor``), the remaining pairs run in this thread, with a warning.
        Dask also re-runs the tasks of a lost worker by itself.
    on_error : {"record", "raise"}, default "record"
        A measure that raises on a pair: ``"record"`` makes that cell NaN, keeps the error in
        ``result.errors`` and every other value, and issues one ``RuntimeWarning`` summarising the
        failed pairs; ``"raise"`` re-raises the first error (the remaining tasks are cancelled).

    Returns
    -------
    ComparisonResult
        ``result["cka"]`` is an (M, M) array (M x M_b with ``reps_b``) labelled by ``result.names`` (and
        ``result.columns``); ``result.errors`` maps ``(name_i, name_j, metric)`` to
        ``"ExceptionType: message"`` for the pairs whose measure raised; ``result.info["n_samples"]``.

    Raises
    ------
    ValueError
        Too few representations, different numbers of rows, unknown or repeated metric, bad arrays, a
        negative ``retries``, an unknown ``on_error``.
    TypeError
        A ``metrics`` entry that is neither a name nor a callable.

    Notes
    -----
    Values do not depend on the executor, the order of completion or the retries: the same pairs are
    computed by the same functions with the same options (RTD seeded), so a run on a cluster that lost
    a worker equals the serial run. A job is resubmitted only after its future failed, so each pair is
    recorded (and counted by the progress bar) once.

    Examples
    --------
    >>> import numpy as np, latentbridge as lb
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((50, 4))
    >>> res = lb.compare_many({"A": A, "A rotated": A[:, ::-1], "noise": rng.standard_normal((50, 3))},
    ...                       metrics="cka", progress=False)
    >>> round(float(res["cka"][0, 1]), 6), res.errors
    (1.0, {})
    """
    metrics = _measures(metrics)
    retries = check_positive_int(retries, "retries", minimum=0)
    check_choice(on_error, "on_error", ("record", "raise"))
    square = reps_b is None
    names, arrays = _named_arrays(reps, "reps", 2 if square else 1)
    columns, column_arrays = (names, arrays) if square else _named_arrays(reps_b, "reps_b", 1)
    n_rows = {a.shape[0] for a in arrays + column_arrays}
    if len(n_rows) != 1:
        sizes = ", ".join(f"{k}: {a.shape[0]}" for k, a in zip(names, arrays))
        if not square:
            sizes += "; reps_b: " + ", ".join(f"{k}: {a.shape[0]}" for k, a in zip(columns, column_arrays))
        raise ValueError(f"every representation must have the same rows (samples); got {sizes}.")
    metric_options = dict(metric_options or {})

    result = ComparisonResult(names=names, column_names=None if square else columns,
                              info={"n_samples": int(arrays[0].shape[0])})
    # a constant representation is the one where "the value on identical inputs" may not exist (CKA,
    # RTD, ... are undefined there): its diagonal entry is computed like any pair, errors included
    constant = [bool(np.all(a == a[:1])) for a in arrays] if square else []
    jobs = []
    for measure in metrics:
        mat = np.full((len(names), len(columns)), np.nan)
        result.matrices[measure.label] = mat
        for i in range(len(names)):
            for j in range(len(columns)):
                if square and i == j and measure.identical_value is not None and not constant[i]:
                    mat[i, i] = measure.identical_value
                elif not (square and measure.symmetric and j < i):
                    jobs.append((measure, i, j))

    def task_args(job):
        measure, i, j = job
        return arrays[i], column_arrays[j], measure.call, metric_options.get(measure.label)

    bar = progress_counter(len(jobs), "compare_many", progress)
    def record(job, outcome):
        value, exc = outcome
        measure, i, j = job
        if exc is not None:
            if on_error == "raise":
                raise exc
            result.errors[(names[i], columns[j], measure.label)] = _describe(exc)
        result.matrices[measure.label][i, j] = value
        if bar:
            bar.update(1)

    try:
        refusal, ran_here = _run_pairs(jobs, task_args, executor, retries, record)
    finally:
        if bar:
            bar.close()
    if square:
        upper = np.triu_indices(len(names), 1)
        for measure in metrics:
            if measure.symmetric:
                mat = result.matrices[measure.label]
                mat[(upper[1], upper[0])] = mat[upper]
    if refusal is not None:
        warn_user(f"compare_many: the executor stopped accepting work ({_describe(refusal)}); "
                  f"{ran_here} pair(s) ran in this process instead.", RuntimeWarning)
    if result.errors:
        (row, col, label), message = next(iter(result.errors.items()))
        warn_user(f"compare_many: {len(result.errors)} of {len(jobs)} pair(s) failed and are NaN (see "
                  f"result.errors); the first, ({row!r}, {col!r}, {label!r}): {message}",
                  RuntimeWarning)
    return result
