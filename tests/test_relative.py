"""Relative and relative-geodesic representations."""

import numpy as np
import pytest

import latentbridge as lb


@pytest.fixture
def latent():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 6))
    X.setflags(write=False)
    return X


def test_relative_cosine_definition_and_invariance(latent):
    X = latent
    A = X[:7]
    R = lb.relative_representation(X, A)
    ref = (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (A / np.linalg.norm(A, axis=1,
                                                                               keepdims=True)).T
    np.testing.assert_allclose(R, ref, atol=1e-12)
    Q = np.linalg.qr(np.random.default_rng(1).standard_normal((6, 6)))[0]
    np.testing.assert_allclose(lb.relative_representation(3 * X @ Q, 3 * A @ Q), R, atol=1e-12)


def test_relative_euclidean(latent):
    X = latent
    A = X[:5]
    R = lb.relative_representation(X, A, similarity="euclidean")
    ref = -np.sqrt(((X[:, None] - A[None]) ** 2).sum(-1))
    np.testing.assert_allclose(R, ref, atol=1e-10)
    Q = np.linalg.qr(np.random.default_rng(2).standard_normal((6, 6)))[0]
    np.testing.assert_allclose(
        lb.relative_representation(X @ Q + 4, A @ Q + 4, similarity="euclidean"), R, atol=1e-10)
    assert lb.relative_representation(X.astype(np.float32), A.astype(np.float32)).dtype == np.float32


def test_relative_bad_input(latent):
    with pytest.raises(ValueError, match="anchors must live in X's space"):
        lb.relative_representation(latent, latent[:3, :2])
    with pytest.raises(ValueError, match="similarity must be one of"):
        lb.relative_representation(latent, latent[:3], similarity="dot")


@pytest.mark.parametrize("n_steps", [1, 4, 16])
def test_geodesic_linear_decoder_closed_form(latent, n_steps):
    rng = np.random.default_rng(3)
    W = rng.standard_normal((6, 9))
    Z, A = latent[:10], latent[10:14]
    diff = np.linalg.norm((A[None] - Z[:, None]) @ W, axis=-1)     # (10, 4)
    L = lb.geodesic_energies(Z, A, lambda B: B @ W, n_steps=n_steps, quantity="length")
    E = lb.geodesic_energies(Z, A, lambda B: B @ W, n_steps=n_steps, batch_size=17)
    np.testing.assert_allclose(L, diff, rtol=1e-10)
    np.testing.assert_allclose(E, diff ** 2 / 2, rtol=1e-10)     # independent of n_steps


def test_geodesic_nonlinear_converges_with_steps(latent):
    dec = lambda B: np.c_[np.sin(B), B ** 2]  # noqa: E731
    Z, A = latent[:5], latent[5:8]
    fine = lb.geodesic_energies(Z, A, dec, n_steps=512)
    coarse = lb.geodesic_energies(Z, A, dec, n_steps=8)
    # energy of a polyline underestimates the curve's: Riemann sums of |D'|^2 converge from below
    assert np.all(coarse <= fine * (1 + 1e-9))
    np.testing.assert_allclose(coarse, fine, rtol=0.25)
    from scipy.stats import spearmanr

    assert spearmanr(coarse.ravel(), fine.ravel())[0] > 0.95


def test_geodesic_spherical_metric():
    # decoder = identity on a quarter circle from (1,0) to (0,1): angle pi/2 along the path
    Z, A = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    L = lb.geodesic_energies(Z, A, lambda B: B, n_steps=2000, quantity="length",
                             output_metric="spherical")
    assert L[0, 0] == pytest.approx(np.pi / 2, rel=1e-9)


def test_geodesic_bad_input(latent):
    with pytest.raises(TypeError, match="decoder must be callable"):
        lb.geodesic_energies(latent, latent[:2], None)
    with pytest.raises(ValueError, match="batch_size"):
        lb.geodesic_energies(latent, latent[:2], lambda B: B, n_steps=8, batch_size=4)
    with pytest.raises(ValueError, match="one output"):
        lb.geodesic_energies(latent, latent[:2], lambda B: B[:1])
    with pytest.raises(ValueError, match="NaN"):
        lb.geodesic_energies(latent, latent[:2], lambda B: B * np.nan)


def test_relative_geodesic_estimator(latent):
    W = np.random.default_rng(4).standard_normal((6, 3))
    est = lb.RelativeGeodesic(lambda B: np.tanh(B @ W), n_steps=6)
    with pytest.raises(lb.NotFittedError):
        est.transform(latent)
    R = est.fit(latent[:5]).transform(latent)
    assert R.shape == (60, 5)
    np.testing.assert_allclose(np.diag(R[:5]), 0.0, atol=1e-12)
    np.testing.assert_allclose(
        R, lb.geodesic_energies(latent, latent[:5], est.decoder, n_steps=6), atol=0)
    assert est.get_params()["n_steps"] == 6


def test_geodesic_torch_decoder_if_available(latent):
    torch = pytest.importorskip("torch")
    W = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    Zt = torch.as_tensor(np.array(latent))
    E = lb.geodesic_energies(Zt[:5], Zt[5:8], lambda B: torch.tanh(B @ W), n_steps=8)
    Wn = W.numpy()
    ref = lb.geodesic_energies(latent[:5], latent[5:8], lambda B: np.tanh(B @ Wn), n_steps=8)
    np.testing.assert_allclose(E, ref, rtol=1e-12)


def test_geodesic_duck_typed_tensor_framework(latent, monkeypatch):
    """A torch-like framework (as_tensor, no_grad, .detach().cpu().numpy()) without torch."""
    import contextlib
    import sys
    import types

    calls = {"no_grad": 0}

    class Tensor:
        __module__ = "faketorch"

        def __init__(self, a):
            self.a = np.asarray(a)
            self.dtype, self.device = self.a.dtype, "cpu"

        def __matmul__(self, W):
            return Tensor(self.a @ W)

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.a

    @contextlib.contextmanager
    def no_grad():
        calls["no_grad"] += 1
        yield

    mod = types.ModuleType("faketorch")
    mod.as_tensor = lambda a, dtype=None, device=None: Tensor(np.asarray(a, dtype=dtype))
    mod.no_grad = no_grad
    monkeypatch.setitem(sys.modules, "faketorch", mod)
    W = np.random.default_rng(5).standard_normal((6, 3))
    seen = []

    def decoder(B):
        seen.append(type(B))
        return B @ W

    E = lb.geodesic_energies(Tensor(latent[:4]), Tensor(latent[4:6]), decoder, n_steps=4)
    assert seen and all(t is Tensor for t in seen) and calls["no_grad"] == len(seen)
    ref = lb.geodesic_energies(latent[:4], latent[4:6], lambda B: B @ W, n_steps=4)
    np.testing.assert_allclose(E, ref, rtol=1e-12)
