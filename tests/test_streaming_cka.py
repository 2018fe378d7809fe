"""StreamingLinearCKA (the layer x layer linear CKA of compare_layers) against the Gram-space
definitions of linear CKA written out here, over batches whose means drift (so the shifted sums of
the first batch do not vanish), far from the origin, with constant layers and at the size limits."""

import numpy as np
import pytest

from latentbridge._streaming_cka import StreamingLinearCKA


def _hsic(K, L, debiased):
    """HSIC of two n x n Gram matrices: biased tr(K H L H) / (n - 1)^2, or the unbiased HSIC_1 of
    Song et al. (2012) with zero-diagonal Grams."""
    n = len(K)
    if not debiased:
        H = np.eye(n) - 1.0 / n
        return np.trace(K @ H @ L @ H) / (n - 1) ** 2
    Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(n)
    middle = (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
    return (np.trace(Kt @ Lt) + middle - 2.0 / (n - 2) * (one @ Kt @ Lt @ one)) / (n * (n - 3))


def _gram_cka(X, Y, debiased):
    """Linear CKA (Kornblith et al. 2019) from the Grams of the column-centred float64 data."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    Y = np.asarray(Y, dtype=np.float64).reshape(len(Y), -1)
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    K, L = Xc @ Xc.T, Yc @ Yc.T
    return _hsic(K, L, debiased) / np.sqrt(_hsic(K, K, debiased) * _hsic(L, L, debiased))


def _stream(layers_a, layers_b, edges, debiased):
    st = StreamingLinearCKA([int(np.prod(x.shape[1:])) for x in layers_a],
                            [int(np.prod(y.shape[1:])) for y in layers_b], debiased=debiased)
    for lo, hi in zip(edges[:-1], edges[1:]):
        st.update([x[lo:hi] for x in layers_a], [y[lo:hi] for y in layers_b])
    return st


def _drifting_layers(n=48, seed=0):
    """Two layers of A (widths 3, 5), three of B (3, 1, 2), related, with means that move along the rows."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 3.0, n)[:, None]
    Z = rng.standard_normal((n, 4))
    a0 = Z[:, :3] @ rng.standard_normal((3, 3)) + t * [1.0, -2.0, 0.5]
    a1 = np.tanh(Z @ rng.standard_normal((4, 5))) + 0.3 * rng.standard_normal((n, 5)) - 2.0 * t
    b0 = Z[:, 1:] ** 2 + rng.standard_normal((n, 3)) + t * [0.0, 1.5, -1.0]
    b1 = Z[:, :1] + 0.5 * rng.standard_normal((n, 1)) + 4.0 * t
    b2 = rng.standard_normal((n, 2)) + t
    return [a0, a1], [b0, b1, b2]


def _oracle(layers_a, layers_b, debiased):
    return np.array([[_gram_cka(x, y, debiased) for y in layers_b] for x in layers_a])


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("edges", [[0, 48], [0, 5, 17, 30, 48], [0, 4, 8, 40, 41, 48]])
def test_streamed_cka_matches_the_gram_definition_over_drifting_batches(debiased, edges):
    A, B = _drifting_layers()
    got = _stream(A, B, edges, debiased).result()
    ref = _oracle(A, B, debiased)
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)


@pytest.mark.parametrize("debiased", [False, True])
def test_far_from_the_origin_the_shift_keeps_full_precision(debiased):
    """Columns offset by 1e6 (each by a different amount): uncentred sums of squares would lose about
    ten of the sixteen digits; shifted by the first batch's means nothing is lost."""
    A, B = _drifting_layers(seed=1)
    offset = lambda M: M + 1e6 * np.arange(1, M.shape[1] + 1)  # noqa: E731
    A, B = [offset(x) for x in A], [offset(y) for y in B]
    got = _stream(A, B, [0, 10, 30, 48], debiased).result()
    np.testing.assert_allclose(got, _oracle(A, B, debiased), rtol=1e-9, atol=0)


def test_float32_layers_are_accumulated_in_float64():
    A, B = _drifting_layers(seed=2)
    A32, B32 = [x.astype(np.float32) for x in A], [y.astype(np.float32) for y in B]
    got = _stream(A32, B32, [0, 20, 48], debiased=True).result()
    np.testing.assert_allclose(got, _oracle(A32, B32, True), rtol=1e-10, atol=0)


def test_layers_with_several_axes_are_flattened_per_sample():
    rng = np.random.default_rng(3)
    conv = rng.standard_normal((30, 2, 3, 2))          # (batch, channels, h, w): 12 features
    dense = conv.reshape(30, -1)[:, :4] @ rng.standard_normal((4, 3)) + rng.standard_normal((30, 3))
    got = _stream([conv], [dense], [0, 11, 30], debiased=False).result()
    assert got[0, 0] == pytest.approx(_gram_cka(conv.reshape(30, 12), dense, False), rel=1e-10)


@pytest.mark.parametrize("debiased", [False, True])
def test_a_constant_layer_gives_nan_in_its_row_or_column_only(debiased):
    A, B = _drifting_layers(seed=4)
    A = [A[0], np.full((48, 2), 3.5)]
    B = [np.full((48, 1), -1.0), B[0], B[2]]
    got = _stream(A, B, [0, 7, 48], debiased).result()   # pytest turns any warning into an error
    assert np.isnan(got[1]).all() and np.isnan(got[:, 0]).all()
    ref = _oracle(A[:1], B[1:], debiased)
    np.testing.assert_allclose(got[:1, 1:], ref, rtol=1e-10, atol=0)


def test_two_samples_give_one_and_one_sample_is_refused():
    """Two samples: both centred Grams are (d^2 / 2) [[1, -1], [-1, 1]], so biased CKA is exactly 1."""
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    assert _stream([X], [Y], [0, 1, 2], False).result()[0, 0] == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"^linear CKA needs at least 2 samples; got 1\.$"):
        _stream([X[:1]], [Y[:1]], [0, 1], False).result()


def test_debiased_needs_four_samples():
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    X[:, 0] += Y[:, 0]
    got = _stream([X], [Y], [0, 2, 4], True).result()[0, 0]
    assert got == pytest.approx(_gram_cka(X, Y, True), rel=1e-10)
    with pytest.raises(ValueError, match=r"^linear CKA needs at least 4 samples; got 3\.$"):
        _stream([X[:3]], [Y[:3]], [0, 3], True).result()


def test_nothing_accumulated_is_refused():
    with pytest.raises(ValueError, match="at least 2 samples; got 0"):
        StreamingLinearCKA([2], [3]).result()


def test_the_memory_check_asks_for_the_statistics_it_keeps(monkeypatch):
    """The bytes asked of check_allocation are those of the arrays kept for any number of samples:
    the cross products (P x Q), each layer's Gram block, and per feature the shift and the column
    sum, all float64. One byte less than that is refused with a message naming the statistics."""
    widths_a, widths_b = [3, 5], [3, 1, 2]
    A, B = _drifting_layers()
    st = _stream(A, B, [0, 10, 48], debiased=False)
    kept = st.cross.nbytes + sum(g.nbytes for side in (st.a, st.b) for g in side.gram)
    kept += sum(side.u.nbytes + side.shift.nbytes for side in (st.a, st.b))
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(kept))
    StreamingLinearCKA(widths_a, widths_b)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", str(kept - 1))
    with pytest.raises(MemoryError, match=r"streamed linear CKA statistics \(8 features of A x 6 of "
                                          r"B, float64\)"):
        StreamingLinearCKA(widths_a, widths_b)
