"""Many models, one call: every pairwise similarity between a set of representations.

The pairs run on any :class:`concurrent.futures.Executor` (a thread pool, a process pool, or a Dask
distributed client's ``client.get_executor()``), so a comparison that outgrows one machine runs on a
cluster unchanged.
"""

from __future__ import annotations

import concurrent.futures
import sys
from dataclasses import dataclass, field

import numpy as np

from ._validation import as_float_matrix
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
    """

    names: list
    matrices: dict = field(default_factory=dict)
    column_names: list = None
    info: dict = field(default_factory=dict)

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

    def save(self, path):
        """Write the result to ``path`` (a ``.npz`` file: labels, matrices and ``info`` as JSON)."""
        import json

        arrays = {f"metric:{m}": np.asarray(v, dtype=np.float64) for m, v in self.matrices.items()}
        np.savez(path, names=np.array(self.names, dtype=str), columns=np.array(self.columns, dtype=str),
                 square=np.array(self.column_names is None), info=np.array(json.dumps(self.info)), **arrays)

    @classmethod
    def load(cls, path):
        """Read a result written by :meth:`save`."""
        import json

        with np.load(path, allow_pickle=False) as z:
            matrices = {k[len("metric:"):]: z[k] for k in z.files if k.startswith("metric:")}
            names = [str(s) for s in z["names"]]
            columns = None if bool(z["square"]) else [str(s) for s in z["columns"]]
            info = json.loads(str(z["info"]))
        return cls(names=names, matrices=matrices, column_names=columns, info=info)

    def __repr__(self):
        rows, cols = self.names, self.columns
        what = (f"{len(rows)} representations" if self.column_names is None
                else f"{len(rows)} x {len(cols)}")
        lines = [f"ComparisonResult({what}, metrics={self.metrics})"]
        width = max(len(n) for n in rows)
        for metric, mat in self.matrices.items():
            lines.append(f"[{metric}]")
            lines.append(" " * (width + 1) + " ".join(f"{n[:9]:>9}" for n in cols))
            for name, row in zip(rows, mat):
                lines.append(f"{name:<{width}} " + " ".join(f"{v:9.4f}" for v in row))
        return "\n".join(lines)


class _TextProgress:
    """Fallback progress display on stderr when tqdm is not installed."""

    def __init__(self, total, desc):
        self.total, self.done, self.desc = total, 0, desc

    def update(self, k=1):
        self.done += k
        print(f"\r{self.desc}: {self.done}/{self.total}", end="", file=sys.stderr, flush=True)

    def close(self):
        print(file=sys.stderr)


def _progress(total, desc, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc)
    except ImportError:
        return _TextProgress(total, desc)


def compare_many(reps, *, metrics=("cka", "rtd"), executor=None, progress=True, metric_options=None):
    """Compare every pair of representations under several metrics.

    Parameters
    ----------
    reps : dict of str -> array_like of shape (n_samples, n_features_i)
        Activations of M models (or layers) on the *same* samples in the same order; feature counts
        may differ.
    metrics : sequence of str
        Any name of :func:`latentbridge.measures.registry` (``"cka"``, ``"rtd"``, ``"svcca"``,
        ``"procrustes_distance"``, ``"rsa"``, ...). The diagonal is the measure's value on identical
        inputs (computed when it depends on the representation, e.g. ENSD).
    executor : concurrent.futures.Executor, optional
        Runs the pairs (``executor.submit``); ``None`` runs them in this thread. A Dask
        ``distributed.Client(...).get_executor()`` runs them on a cluster.
    progress : bool
        Show a progress bar (tqdm when installed, else a counter on stderr).
    metric_options : dict of str -> dict, optional
        Keyword arguments per metric, e.g. ``{"rtd": {"trials": 10, "batch": 500}}``. RTD defaults to
        ``trials=5, batch=min(300, n), seed=0`` here so that the matrix is reproducible.

    Returns
    -------
    ComparisonResult
        ``result["cka"]`` is an (M, M) array labelled by ``result.names``; ``result.to_pandas()``.

    Raises
    ------
    ValueError
        Fewer than two representations, different numbers of rows, unknown metric, bad arrays.
    """
    if not isinstance(reps, dict) or len(reps) < 2:
        raise ValueError("reps must be a dict of at least two name -> array entries.")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {sorted(METRICS)}.")
    metric_options = dict(metric_options or {})
    names = [str(k) for k in reps]
    arrays = [as_float_matrix(v, f"reps[{k!r}]", min_rows=2) for k, v in reps.items()]
    n_rows = {a.shape[0] for a in arrays}
    if len(n_rows) != 1:
        sizes = ", ".join(f"{k}: {a.shape[0]}" for k, a in zip(names, arrays))
        raise ValueError(f"every representation must have the same rows (samples); got {sizes}.")
    M = len(names)
    result = ComparisonResult(names=names)
    jobs = []
    for metric in metrics:
        self_value, symmetric = METRICS[metric].identical_value, METRICS[metric].symmetric
        mat = np.full((M, M), np.nan)
        if self_value is not None:
            np.fill_diagonal(mat, self_value)
        result.matrices[metric] = mat
        for i in range(M):
            for j in range(M):
                if (i == j and self_value is not None) or (symmetric and j < i):
                    continue
                jobs.append((metric, i, j))
    bar = _progress(len(jobs), "compare_many", progress)
    try:
        if executor is None:
            for metric, i, j in jobs:
                result.matrices[metric][i, j] = compare_pair(arrays[i], arrays[j], metric, metric_options.get(metric))
                if bar:
                    bar.update(1)
        else:
            futures = {
                executor.submit(compare_pair, arrays[i], arrays[j], metric, metric_options.get(metric)): (metric, i, j)
                for metric, i, j in jobs
            }
            for fut in concurrent.futures.as_completed(futures):
                metric, i, j = futures[fut]
                result.matrices[metric][i, j] = fut.result()
                if bar:
                    bar.update(1)
    finally:
        if bar:
            bar.close()
    for metric in metrics:
        if METRICS[metric].symmetric:
            mat = result.matrices[metric]
            upper = np.triu_indices(M, 1)
            mat[(upper[1], upper[0])] = mat[upper]
    return result
