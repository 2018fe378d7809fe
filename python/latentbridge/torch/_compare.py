"""Layer x layer comparison of two PyTorch models fed the same samples."""

from __future__ import annotations

import contextlib
import itertools

import numpy as np

from .._streaming_cka import StreamingLinearCKA
from .._validation import check_allocation, check_positive_int, check_random_state
from .._warnings import warn_user
from ..compare import METRICS, ComparisonResult, compare_pair
from ._activations import (
    LayerRecorder,
    batch_count,
    check_pool,
    check_width,
    iter_batches,
    pool_output,
    resolve_layers,
    to_numpy_features,
)
from ._model_calls import progress_bar

__all__ = ["compare_layers"]

#: Default size of the seeded subsample used by the measures that need the samples themselves.
DEFAULT_MAX_SAMPLES = 5000


def _streams_linear_cka(metric, options):
    return metric == "cka" and options.get("kernel", "linear") == "linear"


class _Reservoir:
    """A seeded uniform subsample of at most ``k`` rows of a stream of unknown length (Algorithm R:
    row t replaces a random slot j in [0, t] when j < k). The same rows are kept for every layer of
    both models, in stream order."""

    def __init__(self, k, rng):
        self.k, self.rng, self.seen = k, rng, 0
        self.rows = {}
        self.order = np.full(k, -1, dtype=np.int64)

    def add(self, feats):
        b = next(iter(feats.values())).shape[0]
        t = self.seen + np.arange(b)
        slot = np.where(t < self.k, t, self.rng.integers(0, t + 1))
        take = np.flatnonzero(slot < self.k)
        # several rows of one batch may draw the same slot: the later row wins, as in the serial rule
        last = len(take) - 1 - np.unique(slot[take][::-1], return_index=True)[1]
        take = take[last]
        for key, x in feats.items():
            if key not in self.rows:
                check_allocation(self.k * x.shape[1] * x.itemsize, f"subsample of {key} ({self.k} rows)")
                self.rows[key] = np.zeros((self.k, x.shape[1]), dtype=x.dtype)
            self.rows[key][slot[take]] = x[take]
        self.order[slot[take]] = t[take]
        self.seen += b

    def arrays(self):
        m = min(self.seen, self.k)
        keep = np.argsort(self.order[:m], kind="stable")
        return {key: rows[:m][keep] for key, rows in self.rows.items()}


def _paired_batches(inputs, inputs_b, batch_size):
    """(index, batch for A, batch for B): the same batch twice, or two streams checked to match."""
    if inputs_b is None:
        for index, batch in enumerate(iter_batches(inputs, batch_size, "inputs")):
            yield index, batch, batch
        return
    stream_a = iter_batches(inputs, batch_size, "inputs")
    stream_b = iter_batches(inputs_b, batch_size, "inputs_b")
    for index, (ba, bb) in enumerate(itertools.zip_longest(stream_a, stream_b)):
        if ba is None or bb is None:
            longer = "inputs_b" if ba is None else "inputs"
            raise ValueError(f"{longer} has more batches than the other ({index} matched); inputs and "
                             "inputs_b must yield batches of the same samples.")
        if ba.size != bb.size:
            raise ValueError(f"batch {index}: inputs has {ba.size} samples, inputs_b {bb.size}; both must "
                             "yield the same samples in batches of the same sizes.")
        yield index, ba, bb


def _pooled(outputs, batch, pool, layout, prefix, firsts):
    feats = {}
    for layer, t in outputs.items():
        where = f"{prefix} layer {layer!r}, batch {batch[0]}"
        if t.ndim == 0 or t.shape[0] != batch[1].size:
            raise ValueError(f"{where}: the output's first axis ({tuple(t.shape)}) is not the batch "
                             f"({batch[1].size} samples); use a callable pool.")
        x = to_numpy_features(pool_output(t, pool, layout=layout, mask=batch[1].mask, where=where), where)
        check_width(firsts.get(layer), x, where)
        firsts.setdefault(layer, x[:1])
        feats[layer] = x
    return feats


def compare_layers(model_a, model_b, inputs, *, layers_a=None, layers_b=None, metrics=("cka",),
                   pool="mean", inputs_b=None, batch_size=256, max_samples=None, device=None,
                   progress=True, seed=0, layout=None, metric_options=None):
    """Compare every layer of one PyTorch model with every layer of another, on the same samples.

    Both models see the same samples in the same order (the same batches, or ``inputs_b`` for B).
    Activations are pooled per layer as in :func:`latentbridge.torch.activations`.

    * Linear CKA (``"cka"``, the default; ``metric_options={"cka": {"debiased": True}}`` for the
      unbiased estimator) is streamed over *all* samples as exact float64 feature-space statistics: no
      (n, features) matrix is kept, memory is ``8 (P Q + sum p_a^2 + sum q_b^2)`` bytes (P, Q the total
      widths of the compared layers of A and B) whatever n, and the values equal
      :func:`latentbridge.cka` on the full activations to float64 rounding.
    * Every other measure (``"rtd"``, ``"mutual_knn"``, ``"svcca"``, ``"pwcca"``, CKA with
      ``kernel="rbf"``, ...) needs the samples themselves: it uses one seeded uniform subsample of at
      most ``max_samples`` rows (the same rows for every layer of both models), kept as
      ``max_samples * (P + Q)`` float32 values.

    Parameters
    ----------
    model_a, model_b : torch.nn.Module
    inputs : tensor, ndarray or iterable of batches
        As in :func:`latentbridge.torch.activations`; fed to both models unless ``inputs_b`` is given.
    layers_a, layers_b : sequence of str, optional
        Module names (``model.named_modules()``); None: every leaf module (a warning past 100).
    metrics : str or sequence of str, default ("cka",)
        Names accepted by :func:`latentbridge.compare_many`.
    pool, layout : see :func:`latentbridge.torch.activations`.
    inputs_b : same kinds as ``inputs``, optional
        What model B is fed (e.g. another tokenisation of the same texts); must yield batches of the
        same sizes as ``inputs``, or a ValueError names the first batch that differs.
    batch_size : int, default 256
    max_samples : int, optional
        Subsample size for the measures that need the samples (default 5000); at least 2.
    device : str or torch.device, optional
        Where both models run (moved there for the call, moved back after); default: each model's own.
    progress : bool, default True
        Progress bars over batches and over the sampled comparisons.
    seed : int, default 0
        Seeds the subsample (and is passed as the ``seed`` of RTD unless set in ``metric_options``).
    metric_options : dict of str -> dict, optional
        Keyword arguments per metric, e.g. ``{"rtd": {"trials": 10}, "cka": {"debiased": True}}``.

    Returns
    -------
    ComparisonResult
        ``result["cka"][i, j]`` compares A's layer ``result.names[i]`` with B's layer
        ``result.columns[j]``; ``result.to_pandas("cka")`` has A's layers as index and B's as columns;
        ``result.info`` records the sample counts and options. A layer that is constant over the
        samples gives NaN with a warning naming it.

    Raises
    ------
    ValueError
        As :func:`activations` (unknown layers, empty inputs, pools that do not fit, NaN activations),
        plus batches of different sizes between ``inputs`` and ``inputs_b``, unknown metrics,
        ``max_samples`` < 2, fewer than 2 samples.
    RuntimeError
        One of the models raised (the message names the model and the batch).

    Examples
    --------
    >>> import torch, latentbridge.torch as lbt
    >>> a = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> b = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    >>> res = lbt.compare_layers(a, b, torch.randn(500, 4), progress=False)
    >>> res["cka"].shape
    (3, 3)
    """
    layers_a = resolve_layers(model_a, layers_a, "layers_a")
    layers_b = resolve_layers(model_b, layers_b, "layers_b")
    check_pool(pool, layout)
    batch_size = check_positive_int(batch_size, "batch_size")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {sorted(METRICS)}.")
    options = {m: dict((metric_options or {}).get(m) or {}) for m in metrics}
    if "rtd" in options:
        options["rtd"].setdefault("seed", seed)
    max_samples = DEFAULT_MAX_SAMPLES if max_samples is None else \
        check_positive_int(max_samples, "max_samples", minimum=2)
    streamed = [m for m in metrics if _streams_linear_cka(m, options[m])]
    sampled = [m for m in metrics if m not in streamed]
    rng = check_random_state(seed)

    stats, reservoir = None, (_Reservoir(max_samples, rng) if sampled else None)
    firsts_a, firsts_b, n_samples = {}, {}, 0
    with contextlib.ExitStack() as stack:
        rec_a = stack.enter_context(LayerRecorder(model_a, layers_a, device=device, model_name="model_a"))
        rec_b = stack.enter_context(LayerRecorder(model_b, layers_b, device=device, model_name="model_b"))
        batches = progress_bar(_paired_batches(inputs, inputs_b, batch_size), progress,
                               batch_count(inputs, batch_size), "compare_layers")
        for index, batch_a, batch_b in batches:
            fa = _pooled(rec_a(batch_a, index), (index, batch_a), pool, layout, "model_a", firsts_a)
            fb = _pooled(rec_b(batch_b, index), (index, batch_b), pool, layout, "model_b", firsts_b)
            if streamed:
                if stats is None:
                    stats = StreamingLinearCKA([fa[k].shape[1] for k in layers_a],
                                               [fb[k].shape[1] for k in layers_b],
                                               debiased=bool(options["cka"].get("debiased", False)))
                stats.update([fa[k] for k in layers_a], [fb[k] for k in layers_b])
            if reservoir is not None:
                reservoir.add({**{("a", k): v for k, v in fa.items()},
                               **{("b", k): v for k, v in fb.items()}})
            n_samples += batch_a.size
    if n_samples < 2:
        raise ValueError(f"inputs gave {n_samples} sample; comparing layers needs at least 2.")

    result = ComparisonResult(names=list(layers_a), column_names=list(layers_b),
                              info={"n_samples": n_samples, "pool": pool if isinstance(pool, str) else "callable",
                                    "metric_options": {m: {k: v for k, v in o.items() if _jsonable(v)}
                                                       for m, o in options.items()}})
    if streamed:
        mat = stats.result()
        _warn_constant(mat, layers_a, layers_b)
        result.matrices["cka"] = mat
    if sampled:
        subsample = reservoir.arrays()
        result.info["n_subsample"] = int(next(iter(subsample.values())).shape[0])
        for m in sampled:
            result.matrices[m] = np.full((len(layers_a), len(layers_b)), np.nan)
        pairs = [(m, i, j) for m in sampled for i in range(len(layers_a)) for j in range(len(layers_b))]
        for m, i, j in progress_bar(pairs, progress, len(pairs), "compare_layers: sampled measures"):
            result.matrices[m][i, j] = compare_pair(subsample[("a", layers_a[i])],
                                                    subsample[("b", layers_b[j])], m, options[m])
    result.matrices = {m: result.matrices[m] for m in metrics}
    return result


def _jsonable(v):
    return isinstance(v, (bool, int, float, str)) or v is None


def _warn_constant(mat, layers_a, layers_b):
    for name, axis, layers in (("model_a", 1, layers_a), ("model_b", 0, layers_b)):
        dead = [layers[k] for k in np.flatnonzero(np.isnan(mat).all(axis=axis))]
        if dead:
            warn_user(f"{name}: layer(s) {dead} are constant over the samples; their CKA is NaN.",
                      UserWarning)
