"""How the torch helpers run a model: the rules shared by precisions and stitching.

* A ``torch.nn.Module`` runs in eval mode; every submodule's train/eval flag and every parameter's
  ``requires_grad`` are restored afterwards, also when it raises (:func:`evaluating`).
* Its parameters are never modified: they are read through ``torch.func.functional_call`` as
  detached copies in the compute dtype on the chosen device (no copy when they already match;
  :func:`bound_call`). A plain callable is called as it is.
* ``device=None`` means the module's own device, else the CPU (:func:`model_device`).
* Inputs ``(n, *input_shape)``: tensors stay tensors, anything else becomes a checked numpy array;
  the compute dtype is float64 for float64 inputs and float32 otherwise (:func:`as_model_input`).
* Work goes in row batches with an optional progress bar (:func:`row_batches`, :func:`progress_bar`); non-finite results
  name the batch and its samples (:func:`finite_or_raise`).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch.func import functional_call

from .._progress import progress_bar  # the torch-free progress rule, re-exported here
from .._validation import as_float_matrix

__all__ = ["evaluating", "model_device", "bound_call", "progress_bar", "as_model_input",
           "row_batches", "finite_or_raise"]


@contextlib.contextmanager
def evaluating(model):
    """Run ``model`` (if it is a ``torch.nn.Module``) in eval mode; restore every submodule's
    train/eval flag and every parameter's ``requires_grad`` on exit, also on error."""
    if not isinstance(model, torch.nn.Module):
        yield
        return
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        model.eval()
        yield
    finally:
        for m, training in modes:
            m.training = training
        for p, requires_grad in grads:
            p.requires_grad_(requires_grad)


def model_device(model, device):
    """``device`` as a torch.device; None means the device of the model's first parameter or
    buffer (the CPU for a plain callable or a module without any)."""
    if device is not None:
        return torch.device(device)
    if isinstance(model, torch.nn.Module):
        for t in list(model.parameters()) + list(model.buffers()):
            return t.device
    return torch.device("cpu")


def bound_call(model, dtype, device):
    """A function ``x -> model(x)`` that runs in ``dtype`` on ``device``.

    For a module, its parameters and floating buffers are passed through
    ``torch.func.functional_call`` as detached tensors of that dtype and device (a copy only when
    they differ), so the module itself is left untouched. A plain callable is called as it is.
    """
    if not isinstance(model, torch.nn.Module):
        return model
    state = {}
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        t = t.detach()
        state[name] = t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device)
    return lambda x: functional_call(model, state, (x,))


def as_model_input(X, name="X"):
    """Check a batch of model inputs ``(n, *input_shape)``; returns ``(X, compute dtype)``.

    A torch tensor stays a tensor (on its device); anything else becomes a C-contiguous numpy array.
    The compute dtype is float64 when X is float64 and float32 otherwise.
    """
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be a tensor or numeric array; got a {type(X).__name__}.")
    if not torch.is_tensor(X):
        X = np.asarray(X)
    shape = tuple(X.shape)
    if len(shape) < 2:
        raise ValueError(f"{name} must have shape (n_samples, *input_shape); got shape {shape}. "
                         "Use X.reshape(-1, 1) for scalar inputs.")
    if math.prod(shape) == 0:
        raise ValueError(f"{name} is empty (shape {shape}); pass at least one sample of at least "
                         "one value.")
    if torch.is_tensor(X):
        if X.is_complex():
            raise TypeError(f"{name} is complex ({X.dtype}); pass real inputs.")
        X = X.detach()
        if X.is_floating_point() and not bool(torch.isfinite(X).all()):
            bad = int(torch.nonzero(~torch.isfinite(X.reshape(shape[0], -1)))[0, 0])
            raise ValueError(f"{name} contains NaN or infinity (first in sample {bad}); remove or "
                             "impute those entries first.")
        return X, torch.float64 if X.dtype == torch.float64 else torch.float32
    np_dtype = np.float64 if X.dtype == np.float64 else np.float32
    flat = as_float_matrix(X.reshape(shape[0], -1), name, dtype=np_dtype)
    return flat.reshape(shape), torch.float64 if np_dtype is np.float64 else torch.float32


def row_batches(n, batch_size, progress=False, desc=None):
    """``(batch index, first row, end row)`` of consecutive batches, optionally with a progress
    bar."""
    ranges = [(b, lo, min(n, lo + batch_size)) for b, lo in enumerate(range(0, n, batch_size))]
    return progress_bar(ranges, progress, len(ranges), desc)


def finite_or_raise(A, what, b, lo, hi):
    """Raise ValueError naming the batch when the numpy array ``A`` holds NaN or infinity."""
    if not np.isfinite(A).all():
        raise ValueError(f"{what} contain NaN or infinity in batch {b} (samples {lo} to {hi - 1}); "
                         "check the model and these inputs (e.g. a division by zero or an "
                         "overflow in float32).")
