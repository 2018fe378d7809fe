"""latentbridge.torch stitching: stitched_score against scores computed by hand in numpy, and
RelativeStitching on spaces related by a similarity-preserving transform (zero-shot accuracy equals
B's own, computed here with numpy cosines and a scikit-learn head) and on unrelated spaces (chance)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from sklearn.linear_model import LogisticRegression  # noqa: E402
from scipy.stats import ortho_group  # noqa: E402

from latentbridge import NotFittedError  # noqa: E402
from latentbridge.torch import RelativeStitching, stitched_score  # noqa: E402

torch.set_num_threads(1)


def linear_head(d, c, seed=0, dropout=False):
    torch.manual_seed(seed)
    layers = [torch.nn.Dropout(0.5)] if dropout else []
    return torch.nn.Sequential(*layers, torch.nn.Linear(d, c))


def numpy_weights(head):
    lin = head[-1]
    return lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()


# ---- stitched_score -----------------------------------------------------------------------------

def test_accuracy_through_a_torch_head_matches_the_hand_computation():
    rng = np.random.default_rng(0)
    X_a = rng.standard_normal((50, 4))
    M = rng.standard_normal((4, 3))
    head = linear_head(3, 5, dropout=True)
    head.train()
    y = rng.integers(0, 5, 50)
    W, b = numpy_weights(head)
    logits = (X_a @ M) @ W.T + b
    expected = np.mean(np.argmax(logits, axis=1) == y)
    got = stitched_score(lambda Z: Z @ M, X_a, head, y, batch_size=7)
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0 < expected < 1
    assert head.training and head[0].training  # eval mode during scoring, restored after


class Affine:
    """A fitted map with transform (the estimator path)."""

    def __init__(self, M, t):
        self.M, self.t = M, t

    def transform(self, X):
        return X @ self.M + self.t


def test_mse_through_a_decoder_wrapped_in_a_lambda():
    rng = np.random.default_rng(1)
    X_a = rng.standard_normal((30, 3))
    M, t = rng.standard_normal((3, 2)), rng.standard_normal(2)
    torch.manual_seed(1)
    dec = torch.nn.Linear(2, 6)
    target = rng.standard_normal((30, 2, 3))
    W, b = dec.weight.detach().double().numpy(), dec.bias.detach().double().numpy()
    recon = np.tanh((X_a @ M + t) @ W.T + b)
    expected = np.mean((recon - target.reshape(30, 6)) ** 2)
    got = stitched_score(Affine(M, t), X_a, lambda z: torch.tanh(dec(z)).reshape(-1, 2, 3),
                         target, score="mse", batch_size=8)
    assert got == pytest.approx(expected, rel=1e-6)  # the torch path runs in float32


def test_numpy_head_single_logit_and_callable_score():
    rng = np.random.default_rng(2)
    X_a = rng.standard_normal((40, 3))
    w = rng.standard_normal(3)
    y = rng.integers(0, 2, 40)
    expected = np.mean((X_a @ w > 0) == y)
    assert stitched_score(None, X_a, lambda z: (z @ w)[:, None], y) == pytest.approx(expected)
    seen = {}

    def median_abs(outputs, target):
        seen["shape"] = outputs.shape
        return np.median(np.abs(outputs[:, 0] - target))

    got = stitched_score(None, X_a, lambda z: (z @ w)[:, None], y.astype(float),
                         score=median_abs, batch_size=9)
    assert seen["shape"] == (40, 1)
    assert got == pytest.approx(np.median(np.abs(X_a @ w - y)))


def test_stitched_score_bad_input():
    X_a = np.random.default_rng(3).standard_normal((6, 3))
    head = linear_head(3, 4)
    y = np.array([0, 1, 2, 3, 0, 1])
    with pytest.raises(ValueError, match="score must be one of"):
        stitched_score(None, X_a, head, y, score="f1")
    with pytest.raises(TypeError, match="head_b must be"):
        stitched_score(None, X_a, "head", y)
    with pytest.raises(ValueError, match="one label per row"):
        stitched_score(None, X_a, head, y[:5])
    with pytest.raises(ValueError, match="integer class indices"):
        stitched_score(None, X_a, head, y.astype(float))
    with pytest.raises(ValueError, match=r"class indices in \[0, 4\)"):
        stitched_score(None, X_a, head, y + 1)
    with pytest.raises(ValueError, match="one row per sample"):
        stitched_score(lambda X: X[:3], X_a, head, y)
    with pytest.raises(ValueError, match="target has 5"):
        stitched_score(None, X_a, head, np.zeros((6, 5)), score="mse")
    with pytest.raises(ValueError, match=r"NaN or infinity in batch 1 \(samples 4 to 5\)"):
        stitched_score(None, np.r_[np.ones((4, 3)), -np.ones((2, 3))],
                       lambda z: np.where(z < 0, np.nan, z), y % 3, batch_size=4)
    with pytest.raises(ValueError, match="X_a contains NaN"):
        stitched_score(None, np.full((2, 3), np.nan), head, y[:2])


# ---- RelativeStitching --------------------------------------------------------------------------

def blobs(n, d, rng, n_classes=3, spread=0.6):
    centres = 2.0 * rng.standard_normal((n_classes, d))
    y = rng.integers(0, n_classes, n)
    return centres[y] + spread * rng.standard_normal((n, d)), y


def numpy_cosine(X, A):
    return (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (A / np.linalg.norm(A, axis=1,
                                                                                  keepdims=True)).T


@pytest.fixture
def related_spaces():
    rng = np.random.default_rng(4)
    A, y = blobs(300, 6, rng)
    Q = ortho_group.rvs(6, random_state=5)
    B = 3.0 * A @ Q
    anchors = rng.choice(300, 20, replace=False)
    return A, B, y, anchors, Q


def test_cosine_zero_shot_accuracy_equals_b_own_head(related_spaces):
    A, B, y, idx, _ = related_spaces
    train, test = slice(0, 200), slice(200, 300)
    own = LogisticRegression(max_iter=1000).fit(numpy_cosine(B[train], B[idx]), y[train])
    own_acc = own.score(numpy_cosine(B[test], B[idx]), y[test])
    assert own_acc > 0.9
    st = RelativeStitching().fit(B[train], y[train], anchors=B[idx])
    assert st.score(A[test], y[test], anchors=A[idx]) == pytest.approx(own_acc, abs=1e-12)
    np.testing.assert_array_equal(st.predict(A[test], anchors=A[idx]),
                                  own.predict(numpy_cosine(B[test], B[idx])))
    np.testing.assert_array_equal(st.classes_, [0, 1, 2])


def test_unrelated_space_fails(related_spaces):
    _, B, y, idx, _ = related_spaces
    unrelated = np.random.default_rng(6).standard_normal(B.shape)
    st = RelativeStitching().fit(B[:200], y[:200], anchors=B[idx])
    assert st.score(unrelated[200:], y[200:], anchors=unrelated[idx]) < 0.6  # chance is 1/3


def test_euclidean_is_invariant_to_rotation_and_translation(related_spaces):
    A, _, y, idx, Q = related_spaces
    B = A @ Q + 5.0
    own = LogisticRegression(max_iter=1000).fit(
        -np.linalg.norm(B[:200, None] - B[None, idx], axis=2), y[:200])
    st = RelativeStitching(similarity="euclidean").fit(B[:200], y[:200], anchors=B[idx])
    np.testing.assert_array_equal(
        st.predict(A[200:], anchors=A[idx]),
        own.predict(-np.linalg.norm(B[200:, None] - B[None, idx], axis=2)))


def test_geodesic_through_equivalent_decoders(related_spaces):
    A, B, y, idx, Q = related_spaces
    W = np.random.default_rng(7).standard_normal((6, 4))
    decoder_b = lambda Z: np.tanh(Z @ W / 3.0)  # noqa: E731
    decoder_a = lambda Z: decoder_b(3.0 * Z @ Q)  # A's decoder = B's decoder after the map  # noqa: E731
    st = RelativeStitching(similarity="geodesic", decoder_a=decoder_a, decoder_b=decoder_b,
                           n_steps=4)
    st.fit(B[:200], y[:200], anchors=B[idx])
    pred_b = st.head_.predict(st.relative_coordinates(B[200:], B[idx], decoder_b))
    pred_a = st.predict(A[200:], anchors=A[idx])
    assert np.mean(pred_a == pred_b) == 1.0
    assert np.mean(pred_b == y[200:]) > 0.8


def test_geodesic_through_equivalent_torch_decoders(related_spaces):
    A, B, y, idx, Q = related_spaces
    torch.manual_seed(8)
    decoder_b = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh()).double()
    to_b = torch.nn.Linear(6, 6, bias=False).double()
    with torch.no_grad():
        to_b.weight.copy_(torch.as_tensor(3.0 * Q.T))  # z -> 3 z Q, A's space into B's
    decoder_a = torch.nn.Sequential(to_b, decoder_b)
    decoder_a.train()
    st = RelativeStitching(similarity="geodesic", decoder_a=decoder_a, decoder_b=decoder_b,
                           quantity="length", n_steps=3)
    st.fit(B[:200], y[:200], anchors=B[idx])
    with torch.no_grad():
        dec = lambda Z: decoder_b(torch.as_tensor(Z)).numpy()  # noqa: E731
        t = np.linspace(0.0, 1.0, 4)[:, None]
        R_b = np.array([[np.sum(np.linalg.norm(np.diff(dec((1 - t) * z + t * a), axis=0), axis=1))
                         for a in B[idx]] for z in B[200:]])  # polyline lengths, by hand
    np.testing.assert_array_equal(st.predict(A[200:], anchors=A[idx]), st.head_.predict(R_b))
    assert decoder_a.training and to_b.training


def test_relative_stitching_bad_input(related_spaces):
    A, B, y, idx, _ = related_spaces
    with pytest.raises(NotFittedError):
        RelativeStitching().predict(A, anchors=A[idx])
    st = RelativeStitching().fit(B[:200], y[:200], anchors=B[idx])
    with pytest.raises(ValueError, match="same anchor samples"):
        st.predict(A, anchors=A[idx[:-1]])
    with pytest.raises(ValueError, match="features"):
        st.predict(A[:, :5], anchors=A[idx])
    with pytest.raises(ValueError, match="similarity must be one of"):
        RelativeStitching(similarity="dot").fit(B, y, anchors=B[idx])
    with pytest.raises(TypeError, match="decoder_a and decoder_b"):
        RelativeStitching(similarity="geodesic").fit(B, y, anchors=B[idx])
    with pytest.raises(TypeError, match="head must be"):
        RelativeStitching(head=object()).fit(B, y, anchors=B[idx])
    user_head = LogisticRegression(max_iter=500)
    RelativeStitching(head=user_head).fit(B, y, anchors=B[idx])
    assert not hasattr(user_head, "coef_")  # cloned, not fitted in place
