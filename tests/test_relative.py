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


# ---- what the mutation run left unchecked (issue 17) ------------------------------------------------

def _polyline_energy(z, a, decoder, n_steps, quantity="energy"):
    """By hand: the decoder at the N + 1 points of the straight path, then (N / 2) sum |o_j - o_j-1|^2
    (energy) or sum |o_j - o_j-1| (length)."""
    t = np.linspace(0.0, 1.0, n_steps + 1)[:, None]
    o = decoder((1 - t) * z + t * a)
    step = np.linalg.norm(np.diff(o, axis=0), axis=1)
    return 0.5 * n_steps * np.sum(step ** 2) if quantity == "energy" else np.sum(step)


def _wavy(B):
    return np.c_[np.sin(2 * B), B[:, :1] * B[:, 1:2]]


def test_geodesic_defaults_are_eight_steps_and_energy(latent):
    Z, A = latent[:3, :2], latent[3:5, :2]
    got = lb.geodesic_energies(Z, A, _wavy)
    ref = [[_polyline_energy(z, a, _wavy, 8) for a in A] for z in Z]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    est = lb.RelativeGeodesic(_wavy).fit(A)
    np.testing.assert_allclose(est.transform(Z), ref, rtol=1e-12)


def _batch_spy(decoder):
    sizes = []

    def spy(B):
        sizes.append(len(B))
        return decoder(B)
    return spy, sizes


def test_geodesic_default_batch_is_at_most_4096_points():
    """n_steps = 16: 17 points a path; 4096 points hold 240 whole paths (4080 points), 4097 would
    hold 241. 20 x 13 = 260 paths: a first call of 4080 points, then 20 paths."""
    rng = np.random.default_rng(7)
    Z, A = rng.standard_normal((20, 2)), rng.standard_normal((13, 2))
    W = rng.standard_normal((2, 3))
    spy, sizes = _batch_spy(lambda B: B @ W)
    lb.geodesic_energies(Z, A, spy, n_steps=16)
    assert sizes == [4080, 340]
    spy, sizes = _batch_spy(lambda B: B @ W)
    lb.RelativeGeodesic(spy, n_steps=16).fit(A).transform(Z)
    assert sizes == [4080, 340]


def test_relative_geodesic_passes_its_parameters(latent):
    Z, A = latent[:4, :2], latent[4:7, :2]
    spy, sizes = _batch_spy(_wavy)
    est = lb.RelativeGeodesic(spy, n_steps=5, quantity="length", output_metric="spherical",
                              batch_size=12)
    got = est.fit(A).transform(Z)
    ref = lb.geodesic_energies(Z, A, _wavy, n_steps=5, quantity="length",
                               output_metric="spherical")
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert max(sizes) == 12                      # two 6-point paths a call


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"n_steps": 0}, r"^n_steps must be"),
    ({"n_steps": 8, "batch_size": 8}, r"^batch_size must be"),     # fewer than n_steps + 1 points
    ({"quantity": "action"}, r"^quantity must be one of \('energy', 'length'\)"),
    ({"output_metric": "cosine"}, r"^output_metric must be one of \('euclidean', 'spherical'\)"),
])
def test_geodesic_bad_arguments_are_named(latent, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        lb.geodesic_energies(latent[:2], latent[2:4], lambda B: B, **kwargs)


def test_geodesic_batch_of_exactly_one_path(latent):
    spy, sizes = _batch_spy(lambda B: B)
    lb.geodesic_energies(latent[:2], latent[2:4], spy, n_steps=8, batch_size=9)
    assert sizes == [9, 9, 9, 9]


def test_relative_representation_names_the_bad_argument(latent):
    bad = np.array(latent)
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"^X contains NaN or infinity"):
        lb.relative_representation(bad, latent[:3])
    with pytest.raises(ValueError, match=r"^anchors contains NaN or infinity"):
        lb.relative_representation(latent, bad[:3])


@pytest.mark.parametrize("similarity", ["cosine", "euclidean"])
def test_relative_representation_mixed_dtypes_in_float64(latent, similarity):
    X32 = latent.astype(np.float32)
    got = lb.relative_representation(X32, latent[:4], similarity=similarity)
    ref = lb.relative_representation(X32.astype(np.float64), latent[:4], similarity=similarity)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_relative_geodesic_fit_records_and_validates_the_anchors(latent):
    est = lb.RelativeGeodesic(lambda B: B)
    est.fit(latent[:3].tolist())
    assert isinstance(est.anchors_, np.ndarray) and est.n_features_in_ == 6
    est.fit(latent[:3, :4])                          # a refit starts over
    assert est.n_features_in_ == 4
    with pytest.raises(ValueError, match="4 features"):
        est.transform(latent)
    bad = np.array(latent[:3])
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"^anchors contains NaN or infinity"):
        est.fit(bad)
    with pytest.raises(ValueError, match=r"^Z contains NaN or infinity"):
        est.transform(np.where(np.isfinite(bad), bad, np.nan)[:, :4])
    with pytest.raises(TypeError, match=r"^decoder must be callable \(batch -> outputs\); got 3\."):
        lb.RelativeGeodesic(3).fit(latent[:3])


def test_relative_geodesic_keeps_torch_anchors_and_passes_tensors(latent):
    torch = pytest.importorskip("torch")
    At, Zt = torch.as_tensor(np.array(latent[:3])), torch.as_tensor(np.array(latent[3:6]))
    W = torch.as_tensor(np.random.default_rng(8).standard_normal((6, 2)))
    seen = []

    def decoder(B):
        seen.append(type(B))
        return torch.tanh(B @ W)                     # fails on a numpy batch

    est = lb.RelativeGeodesic(decoder, n_steps=4).fit(At)
    assert est.anchors_ is At
    got = est.transform(Zt)
    assert set(seen) == {torch.Tensor}
    Wn = W.numpy()
    ref = lb.geodesic_energies(latent[3:6], latent[:3], lambda B: np.tanh(B @ Wn), n_steps=4)
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_geodesic_bad_input_names_and_messages(latent):
    bad = np.array(latent[:3])
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match=r"^Z contains NaN or infinity"):
        lb.geodesic_energies(bad, latent[:2], lambda B: B)
    with pytest.raises(ValueError, match=r"^anchors contains NaN or infinity"):
        lb.geodesic_energies(latent[:2], bad, lambda B: B)
    with pytest.raises(ValueError, match=r"^decoder returned NaN or infinity\.$"):
        lb.geodesic_energies(latent[:2], latent[2:4], lambda B: np.full(B.shape, np.inf))
    with pytest.raises(ValueError) as err:
        lb.geodesic_energies(latent[:1], latent[1:2], lambda B: B[:2], n_steps=4)
    assert str(err.value) == ("decoder returned 2 outputs for a batch of 5 latent codes; it must "
                              "map each row to one output.")
    with pytest.raises(ValueError) as err:
        lb.geodesic_energies(latent[:1], latent[1:2], lambda B: np.float64(1.0), n_steps=4)
    assert str(err.value) == ("decoder returned a scalar outputs for a batch of 5 latent codes; it "
                              "must map each row to one output.")


def test_geodesic_decoder_with_one_number_per_row(latent):
    """A decoder may return shape (b,) (one scalar output per latent code)."""
    Z, A = latent[:2, :2], latent[2:4, :2]
    dec = lambda B: np.sin(B[:, 0]) * B[:, 1]  # noqa: E731
    got = lb.geodesic_energies(Z, A, dec, n_steps=6)
    ref = [[_polyline_energy(z, a, lambda P: dec(P)[:, None], 6) for a in A] for z in Z]
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_geodesic_spherical_through_a_zero_output():
    """The identity decoder on the path (-1, 0) -> (1, 0) with N = 2 passes the origin: a zero output
    has no direction and is taken as the zero vector (cosine 0 with its neighbours: two right
    angles), never divided by its zero norm."""
    L = lb.geodesic_energies(np.array([[-1.0, 0.0]]), np.array([[1.0, 0.0]]), lambda B: B,
                             n_steps=2, quantity="length", output_metric="spherical")
    assert L[0, 0] == pytest.approx(np.pi, rel=1e-12)


def test_geodesic_decoder_receives_the_dtype_of_z(latent):
    seen = []

    def dec(B):
        seen.append(B.dtype)
        return B * 2.0

    lb.geodesic_energies(latent[:2].astype(np.float32), latent[2:3].astype(np.float32), dec)
    assert seen == [np.float32]


def test_geodesic_framework_without_no_grad_gets_its_dtype_and_device(latent, monkeypatch):
    """A cupy-like framework: as_tensor(a, dtype, device) and no no_grad; the path points are made
    with Z's dtype and device."""
    import sys
    import types

    made = []

    class Arr:
        __module__ = "fakecupy"

        def __init__(self, a, device="gpu:1"):
            self.a = np.asarray(a)
            self.dtype, self.device = self.a.dtype, device

        def __matmul__(self, W):
            return Arr(self.a @ W)

        def numpy(self):
            return self.a

        def detach(self):                          # torch-like: detach().cpu().numpy()
            return self

        cpu = detach

    def as_tensor(a, dtype=None, device=None):
        made.append((dtype, device))
        return Arr(np.asarray(a, dtype=dtype), device)

    mod = types.ModuleType("fakecupy")
    mod.as_tensor = as_tensor
    monkeypatch.setitem(sys.modules, "fakecupy", mod)
    W = np.random.default_rng(9).standard_normal((6, 2))
    E = lb.geodesic_energies(Arr(latent[:2]), Arr(latent[2:4]), lambda B: B @ W, n_steps=3)
    assert made and all(m == (np.dtype(np.float64), "gpu:1") for m in made)
    ref = lb.geodesic_energies(latent[:2], latent[2:4], lambda B: B @ W, n_steps=3)
    np.testing.assert_allclose(E, ref, rtol=1e-12)


def test_geodesic_spherical_cosines_are_clipped_to_one():
    """Normalised (1, 1, 1) has u.u = 1 + 2^-52 in float64: a constant decoder has length 0 (not
    arccos of 1 + 2^-52, NaN), and outputs flipping from -(1, 1, 1) to (1, 1, 1) are a half turn,
    pi (not arccos of -1 - 2^-52)."""
    v = np.ones(3)
    u = v / np.linalg.norm(v)
    assert u @ u > 1.0                                  # the rounding this test is about
    kw = {"quantity": "length", "output_metric": "spherical"}
    flat = lb.geodesic_energies(np.zeros((1, 1)), np.ones((1, 1)),
                                lambda B: np.tile(v, (len(B), 1)), n_steps=4, **kw)
    assert flat[0, 0] == 0.0
    flip = lb.geodesic_energies(-np.ones((1, 1)), np.ones((1, 1)), lambda B: np.sign(B) * v,
                                n_steps=1, **kw)
    assert flip[0, 0] == pytest.approx(np.pi, rel=1e-12)


def test_geodesic_half_precision_torch_decoder_gets_half_precision():
    torch = pytest.importorskip("torch")
    Z = torch.tensor([[0.0, 1.0]], dtype=torch.float16)
    A = torch.tensor([[1.0, 0.0]], dtype=torch.float16)
    seen = []

    def dec(B):
        seen.append(B.dtype)
        return B.float() * 2.0

    E = lb.geodesic_energies(Z, A, dec, n_steps=2)
    assert seen == [torch.float16]
    assert E[0, 0] == pytest.approx(0.5 * 2.0 * 4.0, rel=1e-3)   # linear: |2 (a - z)|^2 / 2 = 4
