"""Per-point Mahalanobis precisions of a torch model: from its Jacobians or from input bursts.

The diffusion-map method of Bertalan, Dietrich, Kevrekidis et al. (arXiv:2007.05646, Algorithm 1
step 1) needs, at every sample, a local precision matrix of the network's activations. Both helpers
here only produce the raw material from the model, batch by batch, and hand it to the array
functions of :mod:`latentbridge.diffusion`, which own the linear algebra:

* :func:`jacobian_precisions`: ``J_i = dy/dx`` at each sample by ``torch.func`` (reverse mode,
  vectorised over the batch), then :func:`latentbridge.precisions_from_jacobians`;
* :func:`burst_precisions`: the network applied to short perturbations of each sample, then
  :func:`latentbridge.precisions_from_neighborhoods`.

How models are run (eval mode restored, parameters read as copies in the compute dtype, inputs
checked) is :mod:`latentbridge.torch._model_calls`; results are numpy arrays.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.func import jacrev, vmap

from .._validation import check_allocation, check_positive_int, check_random_state
from ..diffusion import precisions_from_jacobians, precisions_from_neighborhoods
from ._model_calls import (
    as_model_input,
    bound_call,
    evaluating,
    finite_or_raise,
    model_device,
    row_batches,
)

__all__ = ["jacobian_precisions", "burst_precisions"]


def _as_output_rows(out, n_rows, who):
    """A model output (n_rows, ...) as a 2-D tensor (n_rows, m): trailing dims flattened."""
    if not torch.is_tensor(out):
        raise TypeError(f"{who} must return a torch tensor; got {type(out).__name__}.")
    if out.ndim < 1 or out.shape[0] != n_rows:
        raise ValueError(f"{who} returned shape {tuple(out.shape)} for a batch of {n_rows} "
                         "samples; it must map (b, *input_shape) to (b, m) (or (b, ...), "
                         "flattened).")
    return out.reshape(n_rows, -1)


class _Collected:
    """Per-batch precisions (b, m, m), written into one preallocated (n, m, m) array, or per-batch
    factors (b, r_b, m), stacked at the end with every block zero-padded to the largest r_b."""

    def __init__(self, n, m, factors, name):
        self.n, self.m, self.factors, self.blocks = n, m, factors, []
        if not factors:
            check_allocation(n * m * m * 8, f"{name} output (n, m, m) = ({n}, {m}, {m}) float64 "
                             "(pass factors=True for O(n r m) memory)")
            self.out = np.empty((n, m, m))
        self.name, self.filled = name, 0

    def add(self, block):
        if self.factors:
            self.blocks.append(block)
        else:
            self.out[self.filled:self.filled + block.shape[0]] = block
        self.filled += block.shape[0]

    def result(self):
        if not self.factors:
            return self.out
        n, m = self.n, self.m
        r = max(G.shape[1] for G in self.blocks)
        check_allocation(n * r * m * 8, f"{self.name} factors (n, r, m) = ({n}, {r}, {m}) float64")
        out = np.zeros((n, r, m))
        lo = 0
        for G in self.blocks:
            out[lo:lo + G.shape[0], :G.shape[1]] = G
            lo += G.shape[0]
        return out


def _prepared(f, X, batch_size, device):
    """Checked ``(X, compute dtype, device, batch_size)`` for the precision helpers."""
    if not callable(f):
        raise TypeError(f"f must be a torch module or callable (batch -> outputs); got {f!r}.")
    batch_size = check_positive_int(batch_size, "batch_size")
    X, dtype = as_model_input(X)
    return X, dtype, model_device(f, device), batch_size


def _probe_width(call, X, dtype, device, who):
    """m, the number of output values per sample, from one forward pass on the first sample."""
    with torch.no_grad():
        x0 = torch.as_tensor(X[:1]).to(device=device, dtype=dtype)
        return _as_output_rows(call(x0), 1, who).shape[1]


# ---- Jacobians -------------------------------------------------------------------------------

def jacobian_precisions(f, X, *, rcond=None, factors=False, batch_size=64, device=None,
                        progress=False):
    """Local precisions ``C_i = pinv(J_i J_i^T)`` from the Jacobians of a torch model.

    ``J_i = d f(x_i) / d x_i`` (m outputs by d inputs, the input flattened) is computed for each
    sample with respect to its own input row by ``torch.func.vmap(torch.func.jacrev(...))``, then
    the result is exactly ``latentbridge.precisions_from_jacobians(J, rcond=rcond,
    factors=factors)`` (applied batch by batch: it is a per-sample operation).

    Parameters
    ----------
    f : torch.nn.Module or callable
        Maps a batch ``(b, *input_shape)`` to ``(b, m)``; outputs with more trailing dims are
        flattened to ``m = prod(output_shape[1:])``. Each output row must depend only on its own
        input row (no batch statistics: a module runs in eval mode). A module's parameters and
        floating buffers are read as copies in the compute dtype on ``device``
        (``torch.func.functional_call``); a plain callable is called as it is and must accept
        inputs of that dtype and device.
    X : torch.Tensor or array_like of shape ``(n, *input_shape)``
        The samples. Computation runs in float64 when X is float64, else in float32; the
        precisions are always computed in float64 from the Jacobians.
    rcond : float, optional
        Passed to :func:`latentbridge.precisions_from_jacobians`.
    factors : bool, default False
        Return low-rank factors ``G`` (n, r, m) with ``C_i = G_i^T G_i`` instead of the
        (n, m, m) precisions (r <= min(m, d); batches are zero-padded to the largest rank).
    batch_size : int, default 64
        Samples per vectorised Jacobian. Memory per batch: the Jacobian block (b, m, d) in the
        compute dtype plus reverse-mode buffers of about m times one forward pass of b samples.
    device : str or torch.device, optional
        Where the model runs; default the device of the module's first parameter (the CPU for a
        plain callable).
    progress : bool, default False
        A progress bar over the batches (tqdm when installed, else a counter on stderr).

    Returns
    -------
    ndarray (n, m, m) float64, or (n, r, m) with ``factors=True``

    Raises
    ------
    TypeError
        ``f`` not callable, or returning something other than a tensor.
    ValueError
        X empty, 1-D or non-finite; an output whose first axis is not the batch; NaN or infinity
        in the outputs or Jacobians (the batch and its samples are named); invalid ``rcond``.
    MemoryError
        When the output or a Jacobian block would not fit (checked before allocating).

    Notes
    -----
    With ``y = f(x)`` near ``x_i``, an isotropic input burst of scale sigma has output covariance
    ``sigma^2 J_i J_i^T``, so ``C_i`` is the Mahalanobis metric in burst units (Bertalan et al.,
    Algorithm 1 step 1; the noise-free alternative to :func:`burst_precisions`).

    References
    ----------
    Bertalan, Dietrich, Kevrekidis et al., "Transformations between deep neural networks",
    arXiv:2007.05646.
    """
    X, dtype, dev, batch_size = _prepared(f, X, batch_size, device)
    n, d = X.shape[0], math.prod(X.shape[1:])
    with evaluating(f):
        call = bound_call(f, dtype, dev)
        m = _probe_width(call, X, dtype, dev, "f")
        collected = _Collected(n, m, factors, "jacobian_precisions")
        check_allocation(3 * min(n, batch_size) * m * d * 8,
                         f"Jacobian block (batch_size, m, d) = ({min(n, batch_size)}, {m}, {d}) "
                         "(lower batch_size)")

        def row(x):
            out = _as_output_rows(call(x.unsqueeze(0)), 1, "f").reshape(-1)
            return out, out

        jac = vmap(jacrev(row, has_aux=True))
        for b, lo, hi in row_batches(n, batch_size, progress, "jacobian_precisions"):
            xb = torch.as_tensor(X[lo:hi]).to(device=dev, dtype=dtype)
            J, out = jac(xb)
            finite_or_raise(out.detach().cpu().numpy(), "f's outputs", b, lo, hi)
            J = J.detach().reshape(hi - lo, m, d).cpu().numpy().astype(np.float64, copy=False)
            finite_or_raise(J, "f's Jacobians", b, lo, hi)
            collected.add(precisions_from_jacobians(J, rcond=rcond, factors=factors))
    return collected.result()


# ---- bursts ----------------------------------------------------------------------------------

def _repeat_rows(xb, k):
    """Each row of the batch repeated k times in place: row i*k + j is a copy of row i."""
    if torch.is_tensor(xb):
        return xb.repeat_interleave(k, dim=0)
    return np.repeat(xb, k, axis=0)


def burst_precisions(f, X, perturb, *, n_burst=16, seed=0, rank=None, rcond=None, ridge=0.0,
                     factors=False, batch_size=16, device=None, progress=False):
    """Local precisions from bursts: the inverse covariance of f over perturbations of each sample.

    For every sample ``x_i``, ``n_burst`` perturbed copies ``x_i^(j)`` are drawn by ``perturb``,
    pushed through ``f`` under ``torch.no_grad``, and
    ``latentbridge.precisions_from_neighborhoods(Y, rank=rank, rcond=rcond, ridge=ridge,
    factors=factors)`` is applied to the neighbourhoods ``Y[i, j] = f(x_i^(j))`` (Bertalan et
    al., Algorithm 1 step 1: ``C_i = pinv(cov_j f(x_i^(j)))``, truncated or Tikhonov-regularised).

    Parameters
    ----------
    f : torch.nn.Module or callable
        Maps a batch ``(b, *input_shape)`` to ``(b, m)`` (trailing output dims flattened); see
        :func:`jacobian_precisions` for how modules are run.
    X : torch.Tensor or array_like of shape ``(n, *input_shape)``
        The samples (compute dtype: float64 when X is float64, else float32).
    perturb : callable
        ``perturb(X_batch, rng) -> X_batch'``: ``X_batch`` holds each sample of the batch repeated
        ``n_burst`` times (row ``i * n_burst + j`` is burst j of sample i) as a numpy array when
        X is not a tensor, else as a tensor in the compute dtype on ``device``; ``rng`` is a numpy
        Generator. It returns perturbed inputs of the same shape (numpy or torch). The
        perturbations should vary the inputs a little along the directions the metric should
        ignore less (e.g. ``X + sigma * rng.standard_normal(X.shape)``).
    n_burst : int, default 16
        Perturbed copies per sample (q >= 2; the covariance has rank <= q - 1).
    seed : int, numpy Generator or None, default 0
        Seeds the Generator given to ``perturb``. Results are deterministic for a given seed,
        batch size and ``perturb`` (the draws are made batch after batch).
    rank, rcond, ridge, factors
        Passed to :func:`latentbridge.precisions_from_neighborhoods`.
    batch_size : int, default 16
        Samples per batch; each forward pass sees ``batch_size * n_burst`` inputs.
    device : str or torch.device, optional
        As in :func:`jacobian_precisions`.
    progress : bool, default False
        A progress bar over the batches (tqdm when installed, else a counter on stderr).

    Returns
    -------
    ndarray (n, m, m) float64, or (n, r, m) with ``factors=True``

    Raises
    ------
    TypeError
        ``f`` or ``perturb`` not callable, or an output that is not a tensor/array.
    ValueError
        ``n_burst`` < 2; X empty, 1-D or non-finite; ``perturb`` changing the shape or returning
        NaN/inf; NaN or infinity in f's outputs (the batch is named); invalid
        ``rank``/``rcond``/``ridge``.
    MemoryError
        When the output would not fit (checked before allocating).

    References
    ----------
    Bertalan, Dietrich, Kevrekidis et al., "Transformations between deep neural networks",
    arXiv:2007.05646.
    """
    if not callable(perturb):
        raise TypeError(f"perturb must be a callable (X_batch, rng) -> X_batch'; got {perturb!r}.")
    n_burst = check_positive_int(n_burst, "n_burst", minimum=2)
    rng = check_random_state(seed)
    X, dtype, dev, batch_size = _prepared(f, X, batch_size, device)
    n = X.shape[0]
    if torch.is_tensor(X):
        X = X.to(device=dev, dtype=dtype)
    with evaluating(f), torch.no_grad():
        call = bound_call(f, dtype, dev)
        m = _probe_width(call, X, dtype, dev, "f")
        collected = _Collected(n, m, factors, "burst_precisions")
        for b, lo, hi in row_batches(n, batch_size, progress, "burst_precisions"):
            reps = _repeat_rows(X[lo:hi], n_burst)
            moved = perturb(reps, rng)
            if tuple(np.shape(moved)) != tuple(reps.shape):
                raise ValueError(f"perturb returned shape {tuple(np.shape(moved))} for a batch of "
                                 f"shape {tuple(reps.shape)}; it must keep the shape.")
            moved = torch.as_tensor(moved).to(device=dev, dtype=dtype)
            finite_or_raise(moved.cpu().numpy(), "perturb's outputs", b, lo, hi)
            Y = _as_output_rows(call(moved), reps.shape[0], "f")
            Y = Y.cpu().numpy().astype(np.float64, copy=False)
            finite_or_raise(Y, "f's outputs", b, lo, hi)
            collected.add(precisions_from_neighborhoods(
                Y.reshape(hi - lo, n_burst, m), rank=rank, rcond=rcond, ridge=ridge,
                factors=factors))
    return collected.result()
