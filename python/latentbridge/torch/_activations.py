"""Layer activations of a PyTorch model, by forward hooks, batch by batch.

The pieces: :func:`iter_batches` turns what a user has (a tensor, an array, a DataLoader, a list of
Hugging Face style dict batches) into model calls; :class:`LayerRecorder` hooks the named modules of one
model, puts it in eval mode and restores everything when it exits; :func:`pool_output` turns one layer's
output into an (n, features) matrix. :func:`activations` puts them together; ``compare_layers`` streams
the same pieces into its statistics instead of keeping the activations.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
from dataclasses import dataclass

import numpy as np
import torch

from .._validation import check_choice, check_positive_int
from .._warnings import warn_user
from ._model_calls import evaluating, progress_bar

__all__ = ["activations", "iter_batches", "LayerRecorder", "pool_output", "resolve_layers", "Batch"]

POOLS = ("mean", "max", "flatten", "cls", "last")
LAYOUTS = ("channels", "channels_last", "tokens")
#: compare_layers and activations warn when ``layers=None`` selects more leaf modules than this.
MANY_LAYERS = 100


# ---- which modules ----------------------------------------------------------------------------

def resolve_layers(model, layers, name="layers"):
    """Names of the modules to hook: ``layers`` checked against ``model.named_modules()``.

    ``None`` selects every leaf module (a module without children), with a warning past
    ``MANY_LAYERS`` of them. Unknown names raise a ValueError listing the closest valid names.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    modules = dict(model.named_modules())
    if layers is None:
        leaves = [n for n, m in modules.items() if n and not any(True for _ in m.children())]
        if not leaves:
            raise ValueError(f"{name}=None selects the leaf modules, but the model has no submodules; "
                             f"pass {name} explicitly.")
        if len(leaves) > MANY_LAYERS:
            warn_user(f"{name}=None selected {len(leaves)} leaf modules; pass the layers you want "
                      "to keep the comparison small.", UserWarning)
        return leaves
    if isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise ValueError(f"{name} is empty; pass at least one module name (see model.named_modules()).")
    for layer in layers:
        if not isinstance(layer, str):
            raise TypeError(f"{name} must hold module names (str); got {layer!r}.")
        if layer not in modules:
            close = difflib.get_close_matches(layer, [n for n in modules if n], n=5, cutoff=0.4)
            hint = f" Closest: {close}." if close else f" Valid names: {[n for n in modules if n][:20]}."
            raise ValueError(f"{name}: no module named {layer!r} in the model.{hint}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"{name} lists a module twice: {layers}.")
    return layers


# ---- what the model is called with ------------------------------------------------------------

@dataclass
class Batch:
    """One model call: ``model(*args, **kwargs)`` on ``size`` samples (``mask``: attention mask or None)."""

    args: tuple
    kwargs: dict
    size: int
    mask: object = None


def _leading_size(x, where):
    if not hasattr(x, "shape") or len(x.shape) == 0:
        raise ValueError(f"{where}: the model input must be an array or tensor with a batch axis; "
                         f"got {type(x).__name__}.")
    return int(x.shape[0])


def _as_batch(item, index, name):
    where = f"{name}: batch {index}"
    if isinstance(item, dict):
        if not item:
            raise ValueError(f"{where} is an empty dict.")
        sizes = {_leading_size(v, where) for v in item.values() if hasattr(v, "shape") and len(v.shape)}
        if len(sizes) != 1:
            raise ValueError(f"{where}: the tensors of a dict batch must share their first axis; got "
                             f"sizes {sorted(sizes)}.")
        return Batch((), dict(item), sizes.pop(), item.get("attention_mask"))
    if isinstance(item, (tuple, list)):
        if not item:
            raise ValueError(f"{where} is empty.")
        item = item[0]  # (inputs, labels, ...): the first element is the model input
    return Batch((item,), {}, _leading_size(item, where))


def iter_batches(inputs, batch_size, name="inputs"):
    """Yield :class:`Batch` objects from a tensor/array (split into ``batch_size`` rows) or an iterable
    of batches (tensors; tuples/lists whose first element is the input; dicts, called as
    ``model(**batch)``). Raises ValueError when nothing is yielded."""
    count = 0
    if isinstance(inputs, (torch.Tensor, np.ndarray)):
        if inputs.ndim == 0 or inputs.shape[0] == 0:
            raise ValueError(f"{name} is empty (shape {tuple(inputs.shape)}); pass at least 2 samples.")
        for r0 in range(0, inputs.shape[0], batch_size):
            count += 1
            yield Batch((inputs[r0:r0 + batch_size],), {}, min(batch_size, inputs.shape[0] - r0))
    else:
        if isinstance(inputs, (str, bytes, dict)) or not hasattr(inputs, "__iter__"):
            raise TypeError(f"{name} must be a tensor, an array or an iterable of batches (a DataLoader, "
                            f"a list of tensors, tuples or dicts); got {type(inputs).__name__}.")
        for i, item in enumerate(inputs):
            count += 1
            yield _as_batch(item, i, name)
    if count == 0:
        raise ValueError(f"{name} yielded no batches; pass at least one batch of samples.")


def _model_device_dtype(model):
    for p in model.parameters():
        return p.device, (p.dtype if p.is_floating_point() else None)
    for b in model.buffers():
        return b.device, (b.dtype if b.is_floating_point() else None)
    return torch.device("cpu"), None


def _to_device(x, device, dtype):
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
        if dtype is not None and x.is_floating_point():
            x = x.to(dtype)
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, (tuple, list)):
        return type(x)(_to_device(v, device, dtype) for v in x)
    if isinstance(x, dict):
        return {k: _to_device(v, device, dtype) for k, v in x.items()}
    return x


# ---- hooks and state --------------------------------------------------------------------------

def _first_tensor(out):
    """The tensor a layer output stands for: itself, or the first tensor of a tuple/list/ModelOutput."""
    if isinstance(out, torch.Tensor):
        return out
    values = out.values() if hasattr(out, "values") and callable(out.values) else \
        out if isinstance(out, (tuple, list)) else ()
    for v in values:
        t = _first_tensor(v)
        if t is not None:
            return t
    return None


class LayerRecorder:
    """Context manager: hook ``layers`` of ``model``, run it in eval mode under ``torch.no_grad``.

    On exit (also after an exception) the hooks are removed, every submodule's train/eval flag and the
    model's device are restored. ``recorder(batch)`` runs one batch and returns ``{layer: output}``
    with the raw output tensor of each layer.
    """

    def __init__(self, model, layers, *, device=None, model_name="model"):
        self.model, self.layers, self.model_name = model, list(layers), model_name
        self.device = None if device is None else torch.device(device)
        self._outputs = {}

    def __enter__(self):
        self._stack = contextlib.ExitStack()
        try:
            self._stack.enter_context(evaluating(self.model))  # eval mode, flags restored on exit
            self._home, self.dtype = _model_device_dtype(self.model)
            modules = dict(self.model.named_modules())
            for layer in self.layers:
                self._stack.callback(modules[layer].register_forward_hook(self._hook(layer)).remove)
            if self.device is not None and self.device != self._home:
                self._stack.callback(self.model.to, self._home)
                self.model.to(self.device)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc):
        self._outputs = {}
        self._stack.close()
        return False

    def _hook(self, layer):
        def record(module, args, output):
            self._outputs.setdefault(layer, []).append(output)
        return record

    @property
    def run_device(self):
        return self._home if self.device is None else self.device

    def __call__(self, batch, index):
        self._outputs = {}
        args = _to_device(batch.args, self.run_device, self.dtype)
        kwargs = _to_device(batch.kwargs, self.run_device, self.dtype)
        try:
            with torch.no_grad():
                self.model(*args, **kwargs)
        except Exception as exc:
            raise RuntimeError(f"{self.model_name} raised on batch {index}: {type(exc).__name__}: {exc}") from exc
        out = {}
        for layer in self.layers:
            calls = self._outputs.get(layer, [])
            if len(calls) != 1:
                what = "was not called" if not calls else f"was called {len(calls)} times"
                raise ValueError(f"{self.model_name}: layer {layer!r} {what} in the forward pass of batch "
                                 f"{index}; hook a module that runs exactly once per forward pass.")
            t = _first_tensor(calls[0])
            if t is None:
                raise ValueError(f"{self.model_name}: layer {layer!r} returned no tensor "
                                 f"({type(calls[0]).__name__}).")
            out[layer] = t
        self._outputs = {}
        return out


# ---- pooling ----------------------------------------------------------------------------------

def _auto_layout(t, mask):
    if mask is not None and t.ndim == 3 and tuple(t.shape[:2]) == tuple(mask.shape):
        return "tokens"
    return "channels"


def _pool_tokens(t, mask, pool, where):
    n, T, _ = t.shape
    m = torch.ones((n, T), dtype=torch.bool, device=t.device) if mask is None else mask.to(t.device).bool()
    if tuple(m.shape) != (n, T):
        raise ValueError(f"{where}: attention_mask of shape {tuple(m.shape)} does not fit the token "
                         f"output {tuple(t.shape)}.")
    count = m.sum(dim=1)
    if bool((count == 0).any()):
        raise ValueError(f"{where}: a sample has no unmasked token (attention_mask row of zeros).")
    if pool == "mean":
        return (t * m[..., None]).sum(dim=1) / count[:, None].to(t.dtype)
    if pool == "max":
        return t.masked_fill(~m[..., None], float("-inf")).amax(dim=1)
    if pool == "cls":
        return t[:, 0]
    if pool == "last":
        last = T - 1 - torch.flip(m, dims=[1]).int().argmax(dim=1)  # last unmasked position
        return t[torch.arange(n, device=t.device), last]
    return t.reshape(n, -1)  # flatten


def pool_output(t, pool, *, layout=None, mask=None, where="layer"):
    """One layer's output tensor as an (n, features) float tensor.

    ``layout`` None reads a 3-D output (n, T, D) as tokens when an attention mask of shape (n, T) is
    given, anything else as (n, C, ...) ("channels"). "channels_last" reads (n, ..., C). 2-D outputs
    pass through ``"mean"``, ``"max"`` and ``"flatten"`` unchanged; 1-D outputs become one column.
    """
    if callable(pool):
        params = [p for p in inspect.signature(pool).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        out = pool(t, mask) if len(params) >= 2 else pool(t)
        out = torch.as_tensor(out)
        if out.ndim != 2 or out.shape[0] != t.shape[0]:
            raise ValueError(f"{where}: the pool callable must return (n, features) = ({t.shape[0]}, ...); "
                             f"got shape {tuple(out.shape)}.")
        return out
    if t.ndim <= 1:
        return t.reshape(-1, 1)
    layout = _auto_layout(t, mask) if layout is None else layout
    if t.ndim == 2 and layout != "tokens":
        if pool in ("cls", "last"):
            raise ValueError(f"{where}: pool={pool!r} needs a token output (n, T, D); this layer gives "
                             f"{tuple(t.shape)}. Use pool='mean' or a callable.")
        return t
    if layout == "tokens":
        if t.ndim != 3:
            raise ValueError(f"{where}: layout='tokens' needs an output of shape (n, T, D); got "
                             f"{tuple(t.shape)}.")
        return _pool_tokens(t, mask, pool, where)
    if pool in ("cls", "last"):
        raise ValueError(f"{where}: pool={pool!r} needs a token output (n, T, D) with an attention mask or "
                         f"layout='tokens'; this layer gives {tuple(t.shape)}.")
    if pool == "flatten":
        return t.reshape(t.shape[0], -1)
    axes = tuple(range(2, t.ndim)) if layout == "channels" else tuple(range(1, t.ndim - 1))
    return t.mean(dim=axes) if pool == "mean" else t.amax(dim=axes)


def to_numpy_features(t, where):
    """A pooled tensor as a host ndarray (float32, or float64 for float64 models); non-finite raises."""
    t = t.detach()
    if not t.is_floating_point() or t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{where}: the activations contain NaN or inf; check the model and the inputs "
                         "of this batch.")
    return t.cpu().numpy()


def check_width(first, pooled, where):
    """Every batch of a layer must pool to the same number of features."""
    if first is not None and pooled.shape[1] != first.shape[1]:
        raise ValueError(f"{where}: pooled to {pooled.shape[1]} features, earlier batches to "
                         f"{first.shape[1]} (e.g. pool='flatten' over sequences of different lengths); "
                         "use a pool that gives a fixed width, such as 'mean'.")


def check_pool(pool, layout):
    if not callable(pool):
        check_choice(pool, "pool", POOLS)
    if layout is not None:
        check_choice(layout, "layout", LAYOUTS)


# ---- the public function ----------------------------------------------------------------------

def batch_count(inputs, batch_size):
    """How many batches ``inputs`` gives, when that is known in advance (else None)."""
    if isinstance(inputs, (torch.Tensor, np.ndarray)):
        return -(-len(inputs) // batch_size)
    return len(inputs) if hasattr(inputs, "__len__") else None


def activations(model, inputs, layers, *, pool="mean", layout=None, batch_size=256, max_samples=None,
                device=None, progress=False):
    """Activations of named layers of a PyTorch model, one (n, features) array per layer.

    Forward hooks record each layer's output while ``model`` runs in eval mode under
    ``torch.no_grad``; the hooks are always removed and every submodule's train/eval flag (and the
    model's device, when ``device`` moves it) restored afterwards, also when the model raises.

    Parameters
    ----------
    model : torch.nn.Module
    inputs : tensor, ndarray or iterable of batches
        A tensor or array is split into batches of ``batch_size`` rows (floating numpy arrays are cast
        to the model's parameter dtype). An iterable (a DataLoader, a list) yields batches: tensors;
        tuples or lists whose first element is the model input (``(x, y)`` from a DataLoader); or dicts,
        passed as ``model(**batch)`` (Hugging Face style; an ``attention_mask`` of shape (n, T) marks
        the valid tokens for pooling).
    layers : str, sequence of str or None
        Module names as in ``model.named_modules()``; None takes every leaf module.
    pool : {"mean", "max", "flatten", "cls", "last"} or callable, default "mean"
        How an output with more than 2 dims becomes (n, features). Token outputs (n, T, D) - a 3-D
        output of a dict batch with an ``attention_mask`` of shape (n, T), or ``layout="tokens"`` -:
        ``"mean"`` the mean over unmasked tokens, ``"max"`` their maximum, ``"cls"`` the first token,
        ``"last"`` the last unmasked token, ``"flatten"`` all of them. Otherwise the output is read as
        (n, C, ...): ``"mean"``/``"max"`` reduce every axis after the channel axis, (n, C, ...) ->
        (n, C); ``"flatten"`` keeps everything. A callable gets the output tensor (and the attention
        mask, or None, if it takes two arguments) and returns (n, features). Layer outputs that are
        tuples or ModelOutput objects are read through their first tensor.
    layout : {"channels", "channels_last", "tokens"}, optional
        Overrides how outputs with more than 2 dims are read: (n, C, ...), (n, ..., C) or (n, T, D).
    batch_size : int, default 256
        Rows per model call when ``inputs`` is a tensor or an array.
    max_samples : int, optional
        Stop after this many samples (the first ``max_samples``; the model is not run on the rest).
    device : str or torch.device, optional
        Run there (the model is moved for the call and moved back); default: the model's device.
    progress : bool, default False
        Show a progress bar over batches.

    Returns
    -------
    dict of str -> ndarray of shape (n, features)
        In the order of ``layers``; float32 (float64 for float64 models).

    Raises
    ------
    ValueError
        Unknown layer names (with the closest valid ones), an empty input, a layer that does not run
        exactly once per forward pass, a pool that does not fit a layer's output, NaN/inf activations
        (naming the layer and the batch), ``max_samples`` < 2.
    RuntimeError
        The model raised (the message names the batch; the original exception is chained).

    Examples
    --------
    >>> import torch, latentbridge.torch as lbt
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> acts = lbt.activations(net, torch.randn(100, 4), ["1", "2"])
    >>> acts["1"].shape, acts["2"].shape
    ((100, 8), (100, 2))
    """
    layers = resolve_layers(model, layers)
    check_pool(pool, layout)
    batch_size = check_positive_int(batch_size, "batch_size")
    if max_samples is not None:
        max_samples = check_positive_int(max_samples, "max_samples", minimum=2)
    chunks = {layer: [] for layer in layers}
    seen = 0
    with LayerRecorder(model, layers, device=device) as record:
        batches = progress_bar(iter_batches(inputs, batch_size), progress, batch_count(inputs, batch_size),
                               "activations")
        for index, batch in enumerate(batches):
            outputs = record(batch, index)
            keep = batch.size if max_samples is None else min(batch.size, max_samples - seen)
            for layer, t in outputs.items():
                where = f"layer {layer!r}, batch {index}"
                if t.ndim == 0 or t.shape[0] != batch.size:
                    raise ValueError(f"{where}: the output's first axis ({tuple(t.shape)}) is not the "
                                     f"batch ({batch.size} samples); use a callable pool.")
                pooled = to_numpy_features(pool_output(t, pool, layout=layout, mask=batch.mask,
                                                       where=where)[:keep], where)
                check_width(chunks[layer][0] if chunks[layer] else None, pooled, where)
                chunks[layer].append(pooled)
            seen += keep
            if max_samples is not None and seen >= max_samples:
                batches.close()
                break
    return {layer: np.concatenate(parts, axis=0) for layer, parts in chunks.items()}
