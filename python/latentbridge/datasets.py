"""Data without a download: small trained networks on scikit-learn's digits, and tones of known pitch.

:func:`digits_networks` trains small multilayer perceptrons (two architectures x two seeds by
default) on the 8x8 digits images that ship with scikit-learn (1,797 images, 10 classes), in plain
numpy on the CPU, in a few seconds, deterministically (every random choice is seeded). Each network
exposes its penultimate features, its linear classifier (weights in (n_classes, d) layout) and its
accuracies, which is what the alignment, similarity and stitching experiments need.

scikit-learn is needed only to read the bundled images (``pip install scikit-learn``).

:func:`pitch_tones` synthesises harmonic tones of known pitch (numpy only), the inputs of the two
real pitch networks in :mod:`latentbridge.torch.crepe`; :func:`render_tones` re-renders them at
other pitches with the nuisance (harmonic amplitudes, phases, noise) fixed.

Architectures (all with ``feature_dim``-dimensional penultimate features and a linear head):

``"relu"``
    64 -> 128 (ReLU) -> feature_dim (ReLU) -> 10
``"tanh"``
    64 -> 64 (tanh) -> 64 (tanh) -> feature_dim (tanh) -> 10
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validation import check_choice, check_positive_int

__all__ = ["DigitsData", "DigitsNetwork", "load_digits_split", "train_digits_network",
           "digits_networks", "ARCHITECTURES", "PitchTones", "pitch_tones", "render_tones"]

ARCHITECTURES = {
    "relu": ((128, "relu"), (None, "relu")),
    "tanh": ((64, "tanh"), (64, "tanh"), (None, "tanh")),
}


@dataclass(frozen=True)
class DigitsData:
    """The digits images scaled to [0, 1] (rows are 64 pixels), split into train and test.

    Attributes
    ----------
    X_train, X_test : ndarray of shape (n, 64)
        Pixel intensities in [0, 1] of the training and held-out images.
    y_train, y_test : ndarray of shape (n,), int
        Their digit labels 0..9.
    """

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class DigitsNetwork:
    """A trained MLP: hidden layers, then a linear classifier on the penultimate features.

    Attributes
    ----------
    architecture : str
    seed : int
    layers : tuple of (W (d_in, d_out), b (d_out,), activation)
        Hidden layers, input to penultimate.
    W : ndarray (n_classes, feature_dim)
        Classifier weights (torch ``nn.Linear.weight`` layout): ``logits = F @ W.T + b``.
    b : ndarray (n_classes,)
    train_accuracy, test_accuracy : float
    """

    architecture: str
    seed: int
    layers: tuple = field(repr=False)
    W: np.ndarray = field(repr=False)
    b: np.ndarray = field(repr=False)
    train_accuracy: float = 0.0
    test_accuracy: float = 0.0

    @property
    def feature_dim(self):
        """Width of the penultimate features (the classifier's input), ``W.shape[1]``."""
        return int(self.W.shape[1])

    def features(self, X):
        """Penultimate activations (n, feature_dim) of images X (n, 64) in [0, 1]."""
        H = np.asarray(X, dtype=np.float64)
        for W, b, act in self.layers:
            H = _act(H @ W + b, act)
        return H

    def head(self, F):
        """Logits (n, n_classes) of features F (n, feature_dim): ``F @ W.T + b``."""
        return np.asarray(F, dtype=np.float64) @ self.W.T + self.b

    def logits(self, X):
        """Logits (n, n_classes) of images X."""
        return self.head(self.features(X))

    def predict(self, X):
        """Predicted classes of images X."""
        return np.argmax(self.logits(X), axis=1)


def _act(Z, name):
    if name == "relu":
        return np.maximum(Z, 0.0)
    return np.tanh(Z)


def _act_grad(H, name):
    """Derivative of the activation expressed through its output H."""
    if name == "relu":
        return (H > 0).astype(H.dtype)
    return 1.0 - H * H


def load_digits_split(*, test_size=0.3, seed=0):
    """scikit-learn's bundled digits, scaled to [0, 1], split by a seeded stratified shuffle.

    Parameters
    ----------
    test_size : float in (0, 1), default 0.3
    seed : int, default 0

    Returns
    -------
    DigitsData
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "the digits networks read scikit-learn's bundled digits images: pip install "
            "scikit-learn (or latentbridge[sklearn])."
        ) from None
    if not isinstance(test_size, float) or not 0 < test_size < 1:
        raise ValueError(f"test_size must be a float in (0, 1); got {test_size!r}.")
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float64) / 16.0
    rng = np.random.default_rng(seed)
    test = np.zeros(y.size, dtype=bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: int(round(test_size * idx.size))]] = True
    return DigitsData(X[~test], X[test], y[~test].astype(np.int64), y[test].astype(np.int64))


def train_digits_network(architecture="relu", seed=0, *, data=None, feature_dim=32, epochs=30,
                         batch_size=128, learning_rate=3e-3, weight_decay=1e-4):
    """Train one network with Adam on the cross-entropy loss (numpy, CPU, deterministic).

    Parameters
    ----------
    architecture : {"relu", "tanh"}
    seed : int
        Seeds the initialisation and the minibatch order.
    data : DigitsData, optional
        Default :func:`load_digits_split` ().
    feature_dim : int, default 32
    epochs, batch_size : int
        ``epochs=0`` returns the untrained network (random weights: the control of McNeely-White
        et al.).
    learning_rate, weight_decay : float
        Adam step size; L2 penalty on the weights (not the biases).

    Returns
    -------
    DigitsNetwork
    """
    check_choice(architecture, "architecture", tuple(ARCHITECTURES))
    feature_dim = check_positive_int(feature_dim, "feature_dim")
    epochs = check_positive_int(epochs, "epochs", minimum=0)
    batch_size = check_positive_int(batch_size, "batch_size")
    data = load_digits_split() if data is None else data
    try:  # tiny matrices: BLAS threads only add overhead (10x slower on 2 cores)
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings threadpoolctl; without it, train as is
        return _train(architecture, seed, data, feature_dim, epochs, batch_size, learning_rate,
                      weight_decay)
    with threadpool_limits(limits=1, user_api="blas"):
        return _train(architecture, seed, data, feature_dim, epochs, batch_size, learning_rate,
                      weight_decay)


def _train(architecture, seed, data, feature_dim, epochs, batch_size, learning_rate, weight_decay):
    rng = np.random.default_rng(seed)
    spec = [(feature_dim if w is None else w, a) for w, a in ARCHITECTURES[architecture]]
    n_classes = int(data.y_train.max()) + 1
    params = []
    d_in = data.X_train.shape[1]
    for width, act in spec:
        gain = np.sqrt(2.0) if act == "relu" else 1.0
        params += [rng.normal(0.0, gain / np.sqrt(d_in), (d_in, width)), np.zeros(width)]
        d_in = width
    params += [rng.normal(0.0, 1.0 / np.sqrt(d_in), (d_in, n_classes)), np.zeros(n_classes)]
    acts = [a for _, a in spec]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    X, y = data.X_train, data.y_train
    Yoh = np.eye(n_classes)[y]
    step = 0
    for _ in range(epochs):
        order = rng.permutation(X.shape[0])
        for s in range(0, X.shape[0], batch_size):
            idx = order[s:s + batch_size]
            hs = [X[idx]]
            for li, act in enumerate(acts):
                hs.append(_act(hs[-1] @ params[2 * li] + params[2 * li + 1], act))
            logits = hs[-1] @ params[-2] + params[-1]
            logits -= logits.max(axis=1, keepdims=True)
            P = np.exp(logits)
            P /= P.sum(axis=1, keepdims=True)
            G = (P - Yoh[idx]) / idx.size
            grads = [None] * len(params)
            grads[-2], grads[-1] = hs[-1].T @ G, G.sum(axis=0)
            back = G @ params[-2].T
            for li in range(len(acts) - 1, -1, -1):
                back = back * _act_grad(hs[li + 1], acts[li])
                grads[2 * li], grads[2 * li + 1] = hs[li].T @ back, back.sum(axis=0)
                back = back @ params[2 * li].T
            step += 1
            for i, (p, g) in enumerate(zip(params, grads)):
                if i % 2 == 0:
                    g = g + weight_decay * p
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                mh = m[i] / (1 - b1 ** step)
                vh = v[i] / (1 - b2 ** step)
                p -= learning_rate * mh / (np.sqrt(vh) + eps)
    layers = tuple((params[2 * i], params[2 * i + 1], acts[i]) for i in range(len(acts)))
    net = DigitsNetwork(architecture, int(seed), layers, params[-2].T.copy(), params[-1].copy())
    tr = float(np.mean(net.predict(data.X_train) == data.y_train))
    te = float(np.mean(net.predict(data.X_test) == data.y_test))
    return DigitsNetwork(architecture, int(seed), layers, net.W, net.b, tr, te)


def digits_networks(*, seeds=(0, 1), architectures=("relu", "tanh"), data=None, **train_kwargs):
    """Train every (architecture, seed) network on one shared split of the digits.

    Parameters
    ----------
    seeds : sequence of int, default (0, 1)
    architectures : sequence of str, default ("relu", "tanh")
    data : DigitsData, optional
        Default :func:`load_digits_split` ().
    **train_kwargs
        Passed to :func:`train_digits_network` (feature_dim, epochs, ...).

    Returns
    -------
    data : DigitsData
    networks : dict mapping (architecture, seed) -> DigitsNetwork

    Examples
    --------
    >>> from latentbridge.datasets import digits_networks
    >>> data, nets = digits_networks(epochs=5)            # doctest: +SKIP
    >>> F = nets["relu", 0].features(data.X_test)         # doctest: +SKIP
    """
    data = load_digits_split() if data is None else data
    nets = {(a, int(s)): train_digits_network(a, int(s), data=data, **train_kwargs)
            for a in architectures for s in seeds}
    return data, nets


# ----------------------------------------------------------------------------------------------
# synthetic tones of known pitch (for the CREPE pitch networks, latentbridge.torch.crepe)


@dataclass(frozen=True)
class PitchTones:
    """Frames of harmonic tones with their pitch and nuisance parameters.

    Attributes
    ----------
    frames : ndarray of shape (n, frame_length), float32
    f0 : ndarray of shape (n,)
        Fundamental frequency in Hz (the pitch).
    amplitudes, phases : ndarray of shape (n, n_harmonics)
        Amplitude and phase (radians) of harmonic h = 1..n_harmonics (0 amplitude above Nyquist).
    noise_seeds : ndarray of shape (n,), int64
        Seed of each frame's noise (the same seed gives the same noise).
    noise : float
    sample_rate : int
    """

    frames: np.ndarray = field(repr=False)
    f0: np.ndarray = field(repr=False)
    amplitudes: np.ndarray = field(repr=False)
    phases: np.ndarray = field(repr=False)
    noise_seeds: np.ndarray = field(repr=False)
    noise: float = 0.0
    sample_rate: int = 16000

    @property
    def log_f0(self):
        """Natural log of the pitch (the coordinate the networks should recover)."""
        return np.log(self.f0)


def _check_nonnegative(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative number; got {value!r}.")
    return float(value)


def render_tones(f0, amplitudes, phases, *, noise=0.0, noise_seeds=None, sample_rate=16000,
                 frame_length=1024):
    """Frames ``x[t] = sum_h a_h sin(2 pi h f0 t / sr + phi_h) / sum_h a_h + noise * e[t]``.

    Harmonics at or above the Nyquist frequency ``sr / 2`` are dropped (amplitude set to 0).
    ``e`` is standard normal noise drawn from ``noise_seeds[i]`` for frame i, so re-rendering a
    frame with another f0 and the same seed keeps its nuisance (harmonics, phases, noise) fixed.

    Parameters
    ----------
    f0 : array_like of shape (n,)
        Positive fundamental frequencies in Hz.
    amplitudes, phases : array_like of shape (n, n_harmonics)
        Non-negative amplitudes (at least one positive below Nyquist per frame) and phases.
    noise : float, default 0.0
        Standard deviation of the additive noise, relative to a signal whose amplitudes sum to 1.
    noise_seeds : array_like of int of shape (n,), optional
        Required when ``noise > 0``.
    sample_rate, frame_length : int

    Returns
    -------
    PitchTones
    """
    sample_rate = check_positive_int(sample_rate, "sample_rate")
    frame_length = check_positive_int(frame_length, "frame_length", minimum=2)
    noise = _check_nonnegative(noise, "noise")
    f0 = np.asarray(f0, dtype=np.float64)
    if f0.ndim != 1 or f0.size == 0 or not np.all(np.isfinite(f0)) or not np.all(f0 > 0):
        raise ValueError("f0 must be a non-empty 1-D array of finite positive frequencies (Hz).")
    n = f0.size
    A = np.asarray(amplitudes, dtype=np.float64)
    P = np.asarray(phases, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != n or P.shape != A.shape:
        raise ValueError(f"amplitudes and phases must both have shape (n, n_harmonics) with n = "
                         f"{n}; got {A.shape} and {P.shape}.")
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(P)) and np.all(A >= 0)):
        raise ValueError("amplitudes must be finite and non-negative, phases finite.")
    harmonics = np.arange(1, A.shape[1] + 1)
    A = np.where(f0[:, None] * harmonics < sample_rate / 2, A, 0.0)
    total = A.sum(axis=1)
    if not np.all(total > 0):
        bad = int(np.flatnonzero(total <= 0)[0])
        raise ValueError(f"tone {bad} (f0 {f0[bad]:.1f} Hz) has no harmonic with a positive amplitude "
                         f"below Nyquist ({sample_rate / 2:g} Hz).")
    if noise > 0 and noise_seeds is None:
        raise ValueError("noise > 0 needs noise_seeds (one integer per frame).")
    seeds = np.zeros(n, dtype=np.int64) if noise_seeds is None else np.asarray(noise_seeds)
    if seeds.shape != (n,) or seeds.dtype.kind not in "iu":
        raise ValueError(f"noise_seeds must be {n} integers; got shape {seeds.shape}, dtype {seeds.dtype}.")
    t = np.arange(frame_length) / sample_rate
    frames = np.empty((n, frame_length), dtype=np.float32)
    for start in range(0, n, 1024):  # bounded temporary (block, n_harmonics, frame_length)
        s = slice(start, start + 1024)
        arg = 2 * np.pi * (f0[s, None] * harmonics)[:, :, None] * t + P[s, :, None]
        frames[s] = np.einsum("nh,nht->nt", A[s] / total[s, None], np.sin(arg))
    if noise > 0:
        for i, seed in enumerate(seeds):
            frames[i] += noise * np.random.default_rng(int(seed)).standard_normal(frame_length)
    return PitchTones(frames, f0, A, P, seeds.astype(np.int64), noise, sample_rate)


def pitch_tones(n, *, seed=0, fmin=65.0, fmax=1000.0, n_harmonics=3, noise=0.01, min_amplitude=0.2,
                rolloff=1.0, sample_rate=16000, frame_length=1024):
    """Synthetic tones of known pitch, with harmonic amplitudes, phases and noise as nuisance.

    ``f0`` is log-uniform in ``[fmin, fmax]``; harmonic h = 1..n_harmonics has the amplitude
    ``u_h / h^rolloff`` with ``u_h`` uniform in ``[min_amplitude, 1]`` and a phase uniform in
    ``[0, 2 pi)``; the noise is Gaussian
    with standard deviation ``noise`` (the amplitudes are normalised to sum 1). Frames start at
    t = 0 and are rendered by :func:`render_tones`, which also re-renders the same tones at other
    pitches with the nuisance fixed (bursts for local precisions)::

        t = pitch_tones(100)
        shifted = render_tones(t.f0 * 1.003, t.amplitudes, t.phases, noise=t.noise,
                               noise_seeds=t.noise_seeds)

    Parameters
    ----------
    n : int
    seed : int, default 0
    fmin, fmax : float
        Pitch range in Hz, ``0 < fmin <= fmax < sample_rate / 2`` (CREPE's 360 bins cover
        31.7 Hz .. 2005.5 Hz).
    n_harmonics : int, default 3
    noise : float, default 0.01
    min_amplitude : float in [0, 1], default 0.2
    rolloff : float >= 0, default 1.0
        Spectral decay of the harmonics. With flat spectra (0) and ``min_amplitude=0`` a weak
        fundamental under a strong third harmonic is a genuinely ambiguous pitch, and CREPE
        tiny answers 3 f0 on 6 % of the tones.
    sample_rate, frame_length : int
        16000 and 1024 for CREPE.

    Returns
    -------
    PitchTones
        ``frames`` (n, frame_length) float32 and the parameters that made them.
    """
    n = check_positive_int(n, "n")
    n_harmonics = check_positive_int(n_harmonics, "n_harmonics")
    sample_rate = check_positive_int(sample_rate, "sample_rate")
    fmin, fmax = _check_nonnegative(fmin, "fmin"), _check_nonnegative(fmax, "fmax")
    if not 0 < fmin <= fmax < sample_rate / 2:
        raise ValueError(f"need 0 < fmin <= fmax < sample_rate / 2 = {sample_rate / 2:g}; got fmin={fmin}, "
                         f"fmax={fmax}.")
    min_amplitude = _check_nonnegative(min_amplitude, "min_amplitude")
    if min_amplitude > 1:
        raise ValueError(f"min_amplitude must be in [0, 1]; got {min_amplitude}.")
    rng = np.random.default_rng(seed)
    f0 = np.exp(rng.uniform(np.log(fmin), np.log(fmax), n))
    rolloff = _check_nonnegative(rolloff, "rolloff")
    amplitudes = rng.uniform(min_amplitude, 1.0, (n, n_harmonics)) / np.arange(1, n_harmonics + 1) ** rolloff
    phases = rng.uniform(0.0, 2 * np.pi, (n, n_harmonics))
    noise_seeds = rng.integers(0, 2**62, n)
    return render_tones(f0, amplitudes, phases, noise=noise, noise_seeds=noise_seeds,
                        sample_rate=sample_rate, frame_length=frame_length)
